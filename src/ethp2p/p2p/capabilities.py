"""Capability negotiation: which shared protocols run, at which version and message-id offset."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .messages import BASE_PROTOCOL_LENGTH, Capability


@dataclass(frozen=True, slots=True)
class NegotiatedProtocol:
    """A shared capability: its version and the message-id range it occupies."""

    name: str
    version: int
    offset: int
    length: int

    def owns(self, code: int) -> bool:
        """True if the absolute message ``code`` belongs to this protocol."""
        return self.offset <= code < self.offset + self.length


def negotiate(
    local: Iterable[Capability],
    remote: Iterable[Capability],
    message_count: Callable[[str, int], int],
) -> list[NegotiatedProtocol]:
    """Match capabilities as devp2p does.

    For each protocol name both sides have, the highest version both support is
    chosen; the chosen protocols are ordered by name and given consecutive
    message-id ranges starting at 0x10, each ``message_count(name, version)`` long.
    """
    local_set = {(c.name, c.version) for c in local}
    best: dict[str, int] = {}
    for cap in remote:
        if (cap.name, cap.version) in local_set and cap.version > best.get(cap.name, -1):
            best[cap.name] = cap.version
    out: list[NegotiatedProtocol] = []
    offset = BASE_PROTOCOL_LENGTH
    for name in sorted(best):
        version = best[name]
        length = message_count(name, version)
        out.append(NegotiatedProtocol(name, version, offset, length))
        offset += length
    return out
