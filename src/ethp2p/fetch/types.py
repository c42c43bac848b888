"""Result types of the fetch helpers (kept apart from the request logic)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from ..chain.header import Header
from ..eth import messages as m
from ..faults import FaultKind, PeerFault

T = TypeVar("T")


class FetchPeer(Protocol):
    """What the fetch helpers need from a peer (``EthPeer`` and the pool's peers fit)."""

    eth_version: int

    async def request_headers(
        self, origin: int | bytes, amount: int, *, skip: int = 0, reverse: bool = False, timeout: float | None = None
    ) -> list[bytes]: ...

    async def request_bodies(self, hashes: list[bytes], *, timeout: float | None = None) -> list[bytes]: ...

    async def request_receipts(
        self, hashes: list[bytes], *, first_index: int = 0, timeout: float | None = None
    ) -> m.Receipts: ...


class FetchError(Exception):
    """Base class of fetch failures that are the peer's fault or the transport's."""


class InvalidResponse(PeerFault, FetchError):
    """The peer answered with data that cannot be right (wrong headers, more items than asked,
    another chain than the proven one: kind ``FaultKind.WRONG_CHAIN``, with the block in ``number``)."""


class HeaderCountMismatch(FetchError):
    """A strict header fetch got fewer (or more) headers than it needed."""

    def __init__(self, expected: int, got: int) -> None:
        super().__init__(f"expected {expected} headers, got {got}")
        self.expected = expected
        self.got = got


@dataclass
class HeadersChunkedResponse:
    """Verified headers (consecutive, linked) and how many requests it took."""

    headers: list[Header]
    requests: int


@dataclass
class ChunkedResponse(Generic[T]):
    """One result per requested item (None where the peer did not deliver) and the request count."""

    results: list[T | None]
    requests: int
    #: True if the helper stopped because a request timed out (``stop_on_timeout``).
    timed_out: bool = False


@dataclass
class ReceiptsResult:
    """One block's receipts as received: the list in ``form`` (68 or 69 shape), whole."""

    raw: bytes
    form: int


@dataclass
class FetchStageStats:
    """Per-stage cost of one fetch: wall milliseconds, requests and bytes received."""

    headers_ms: float = 0.0
    bodies_ms: float = 0.0
    receipts_ms: float = 0.0
    verify_ms: float = 0.0
    headers_requests: int = 0
    bodies_requests: int = 0
    receipts_requests: int = 0
    headers_bytes: int = 0
    bodies_bytes: int = 0
    receipts_bytes: int = 0
    bodies_skipped_empty: int = 0
    receipts_skipped_empty: int = 0

    def add(self, other: "FetchStageStats") -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class BlockPayload:
    """One verified block: raw header, raw body and receipts in eth/69 (stored) form."""

    number: int
    hash: bytes
    header: bytes
    body: bytes
    receipts: bytes


@dataclass
class Fault:
    """Something a peer got wrong, with the block it concerns."""

    number: int | None
    kind: FaultKind
    message: str


@dataclass
class PayloadFetchOutcome:
    """What ``fetch_payloads_for_peer`` got: verified payloads, blocks still missing, costs and faults."""

    payloads: list[BlockPayload] = field(default_factory=list)
    missing_blocks: list[int] = field(default_factory=list)
    fetch_stats: FetchStageStats = field(default_factory=FetchStageStats)
    faults: list[Fault] = field(default_factory=list)
