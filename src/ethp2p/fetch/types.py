"""Result types of the fetch helpers (kept apart from the request logic)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from ..chain.header import Header
from ..eth import messages as m
from ..eth.chainspec import ChainSpec
from ..faults import FaultKind, PeerFault
from ..p2p.disconnect import DisconnectReason

T = TypeVar("T")


class FetchPeer(Protocol):
    """Everything the fetch and sync code reads from a peer: ``EthPeer`` (one session) and the pool's
    ``NetworkPeer`` fit it (checked by mypy), and so do the typed fakes in ``tests/support``."""

    @property
    def peer_id(self) -> bytes:
        """The peer's node id (64 bytes)."""
        ...

    @property
    def eth_version(self) -> int:
        """The negotiated eth protocol version (68, 69, 70)."""
        ...

    @property
    def spec(self) -> ChainSpec:
        """The chain the peer was admitted for (its fork rules check the headers it sends)."""
        ...

    @property
    def address(self) -> tuple[str, int] | None:
        """The peer's (host, port), when known (peer agreement counts distinct networks by it)."""
        ...

    @property
    def head_number(self) -> int | None:
        """The highest block the peer is known to hold, proven by a fetched header (None: not probed)."""
        ...

    @property
    def block_range(self) -> tuple[int, int] | None:
        """(earliest, latest) the peer says it serves (eth/69+; None before eth/69)."""
        ...

    @property
    def closed(self) -> bool:
        """True once the session has ended."""
        ...

    def report_fault(self, kind: FaultKind, message: str) -> None:
        """Record something the peer got wrong (``faults.report`` is the one caller)."""
        ...

    async def disconnect(self, reason: DisconnectReason = DisconnectReason.REQUESTED) -> None:
        """End the session, telling the peer ``reason``."""
        ...

    async def request_headers(
        self, origin: int | bytes, amount: int, *, skip: int = 0, reverse: bool = False, timeout: float | None = None
    ) -> list[bytes]: ...

    async def request_bodies(self, hashes: Sequence[bytes], *, timeout: float | None = None) -> list[bytes]: ...

    async def request_receipts(
        self, hashes: Sequence[bytes], *, first_index: int = 0, timeout: float | None = None
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

    def add(self, other: FetchStageStats) -> None:
        """Add ``other``'s costs to these, counter by counter (every field is a number)."""
        for counter in fields(self):
            total = getattr(self, counter.name) + getattr(other, counter.name)
            setattr(self, counter.name, total)


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
    #: Of ``missing_blocks``, those whose body or whose receipts the peer did not send (a block can be
    #: in both; one missing for another reason, e.g. a failed check, is in neither).
    missing_bodies: list[int] = field(default_factory=list)
    missing_receipts: list[int] = field(default_factory=list)
    fetch_stats: FetchStageStats = field(default_factory=FetchStageStats)
    faults: list[Fault] = field(default_factory=list)


if TYPE_CHECKING:  # mypy checks here that both kinds of peer fit FetchPeer (never run)
    from ..peers.eth_peer import EthPeer
    from ..peers.pool import NetworkPeer

    def _both_fit(session: EthPeer, pooled: NetworkPeer) -> tuple[FetchPeer, FetchPeer]:
        return session, pooled
