"""A typed stand-in for a remote peer that satisfies ``ethp2p.fetch.types.FetchPeer``.

``FakePeer`` is only for tests about logic above the wire (scheduling, fault kinds of a helper's
checks) that say so; everything else talks to a real server process or a real session on
127.0.0.1. Subclasses override the request methods they need; the others fail loudly.
``AnnouncedRange`` wraps a real peer and changes only what it announces.
"""

from __future__ import annotations

from collections.abc import Sequence

from ethp2p.eth import messages as m
from ethp2p.eth.chainspec import MAINNET, ChainSpec
from ethp2p.faults import FaultKind
from ethp2p.fetch.types import FetchPeer
from ethp2p.p2p.disconnect import DisconnectReason


class FakePeer:
    """Identity, head, served range and fault record of a peer, with no network behind it."""

    def __init__(
        self,
        peer_id: bytes = b"\x01" * 64,
        *,
        spec: ChainSpec = MAINNET,
        eth_version: int = 69,
        head_number: int | None = None,
        block_range: tuple[int, int] | None = None,
        address: tuple[str, int] | None = ("127.0.0.1", 30303),
    ) -> None:
        self.peer_id = peer_id
        self.spec = spec
        self.eth_version = eth_version
        self.head_number = head_number
        self.block_range = block_range
        self.address = address
        self.closed = False
        #: What was reported against it (``faults.report`` calls ``report_fault``), oldest first.
        self.faults: list[tuple[FaultKind, str]] = []
        #: The reasons it was disconnected with.
        self.disconnects: list[DisconnectReason] = []

    def report_fault(self, kind: FaultKind, message: str) -> None:
        self.faults.append((kind, message))

    async def disconnect(self, reason: DisconnectReason = DisconnectReason.REQUESTED) -> None:
        self.disconnects.append(reason)
        self.closed = True

    async def request_headers(
        self, origin: int | bytes, amount: int, *, skip: int = 0, reverse: bool = False, timeout: float | None = None
    ) -> list[bytes]:
        raise NotImplementedError("this fake serves no headers")

    async def request_bodies(self, hashes: Sequence[bytes], *, timeout: float | None = None) -> list[bytes]:
        raise NotImplementedError("this fake serves no bodies")

    async def request_receipts(
        self, hashes: Sequence[bytes], *, first_index: int = 0, timeout: float | None = None
    ) -> m.Receipts:
        raise NotImplementedError("this fake serves no receipts")


class AnnouncedRange:
    """A real peer (``inner``) that announces another served ``block_range`` (as a history-expiring
    node does); everything else, requests included, is the real peer's."""

    def __init__(self, inner: FetchPeer, block_range: tuple[int, int] | None) -> None:
        self.inner = inner
        self.block_range = block_range

    @property
    def peer_id(self) -> bytes:
        return self.inner.peer_id

    @property
    def eth_version(self) -> int:
        return self.inner.eth_version

    @property
    def spec(self) -> ChainSpec:
        return self.inner.spec

    @property
    def address(self) -> tuple[str, int] | None:
        return self.inner.address

    @property
    def head_number(self) -> int | None:
        return self.inner.head_number

    @property
    def closed(self) -> bool:
        return self.inner.closed

    def report_fault(self, kind: FaultKind, message: str) -> None:
        self.inner.report_fault(kind, message)

    async def disconnect(self, reason: DisconnectReason = DisconnectReason.REQUESTED) -> None:
        await self.inner.disconnect(reason)

    async def request_headers(
        self, origin: int | bytes, amount: int, *, skip: int = 0, reverse: bool = False, timeout: float | None = None
    ) -> list[bytes]:
        return await self.inner.request_headers(origin, amount, skip=skip, reverse=reverse, timeout=timeout)

    async def request_bodies(self, hashes: Sequence[bytes], *, timeout: float | None = None) -> list[bytes]:
        return await self.inner.request_bodies(hashes, timeout=timeout)

    async def request_receipts(
        self, hashes: Sequence[bytes], *, first_index: int = 0, timeout: float | None = None
    ) -> m.Receipts:
        return await self.inner.request_receipts(hashes, first_index=first_index, timeout=timeout)


def _both_fit(fake: FakePeer, wrapped: AnnouncedRange) -> tuple[FetchPeer, FetchPeer]:
    return fake, wrapped  # mypy checks that both satisfy the protocol
