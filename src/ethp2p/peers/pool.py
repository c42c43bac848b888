"""The pool of live peers, and ``NetworkPeer``: one session plus what we know about it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence

from ..chain.header import Header, HeaderError
from ..eth import messages as m
from ..eth.chainspec import ChainSpec
from ..faults import FaultKind, PeerFault
from ..p2p.disconnect import DisconnectReason
from .eth_peer import EthPeer, PeerError, RequestTimeout


async def fetch_best_header(peer: NetworkPeer) -> Header | None:
    """The header of the peer's Status best hash, if the peer serves it (None: it does not, the
    request failed, or it sent another header): the only way a Status head claim is believed."""
    best = peer.status.head_hash
    try:
        raw = await peer.request_headers(best, 1)
        header = Header(raw[0]) if raw else None
    except (PeerError, HeaderError):
        return None
    return header if header is not None and header.hash == best else None


class NetworkPeer:
    """A live, compatible peer in the pool: identity, head, served range and request methods.

    Request methods are :class:`EthPeer`'s, plus accounting: a timeout or a bad
    answer costs reputation through ``on_fault``, a peer that keeps timing out is
    dropped, and a good answer is rewarded.
    """

    def __init__(
        self,
        session: EthPeer,
        *,
        direction: str,
        on_fault: Callable[[NetworkPeer, FaultKind, str], None] | None = None,
        on_success: Callable[[NetworkPeer], None] | None = None,
        max_consecutive_timeouts: int = 3,
    ) -> None:
        self.session = session
        self.direction = direction
        self.head_number: int | None = None
        self.head_hash: bytes | None = None
        self.consecutive_timeouts = 0
        self.max_consecutive_timeouts = max_consecutive_timeouts
        self._on_fault = on_fault
        self._on_success = on_success
        # Faults the session finds itself (a bad message in its read loop) reach the pool too.
        session.on_fault = self._session_fault

    # ---- identity and state -----------------------------------------------------------------

    @property
    def peer_id(self) -> bytes:
        return self.session.peer_id

    @property
    def eth_version(self) -> int:
        return self.session.eth_version

    @property
    def spec(self) -> ChainSpec:
        """The chain this peer was admitted for (its fork rules check fetched headers)."""
        return self.session.spec

    @property
    def client_id(self) -> str:
        return self.session.client_id

    @property
    def address(self) -> tuple[str, int] | None:
        return self.session.address

    @property
    def block_range(self) -> tuple[int, int] | None:
        """(earliest, latest) the peer says it serves (eth/69+ Status and BlockRangeUpdate)."""
        return self.session.block_range

    @property
    def status(self) -> m.Status:
        return self.session.status

    @property
    def closed(self) -> bool:
        return self.session.closed

    async def wait_closed(self) -> None:
        await self.session.wait_closed()

    async def disconnect(self, reason: DisconnectReason = DisconnectReason.REQUESTED) -> None:
        """End the session, telling the peer ``reason``."""
        await self.session.disconnect(reason)

    def __repr__(self) -> str:
        return (
            f"<NetworkPeer {self.peer_id.hex()[:12]} eth/{self.eth_version} head={self.head_number} {self.client_id!r}>"
        )

    # ---- faults -----------------------------------------------------------------------------

    def report_fault(self, kind: FaultKind, message: str) -> None:
        """Record a fault on the session, which passes it on to ``on_fault``."""
        self.session.report_fault(kind, message)

    def _session_fault(self, kind: FaultKind, message: str) -> None:
        if self._on_fault is not None:
            self._on_fault(self, kind, message)

    async def _call(self, coro):
        try:
            result = await coro
        except RequestTimeout as e:
            self.consecutive_timeouts += 1
            self.report_fault(FaultKind.TIMEOUT, str(e))
            raise
        except PeerFault as e:  # too many items, a wrong-type answer
            self.report_fault(e.kind, str(e))
            raise
        self.consecutive_timeouts = 0
        if self._on_success is not None:
            self._on_success(self)
        return result

    # ---- requests ---------------------------------------------------------------------------

    async def request_headers(
        self, origin: int | bytes, amount: int, *, skip: int = 0, reverse: bool = False, timeout: float | None = None
    ) -> list[bytes]:
        return await self._call(
            self.session.request_headers(origin, amount, skip=skip, reverse=reverse, timeout=timeout)
        )

    async def request_bodies(self, hashes: Sequence[bytes], *, timeout: float | None = None) -> list[bytes]:
        return await self._call(self.session.request_bodies(hashes, timeout=timeout))

    async def request_receipts(
        self, hashes: Sequence[bytes], *, first_index: int = 0, timeout: float | None = None
    ) -> m.Receipts:
        return await self._call(self.session.request_receipts(hashes, first_index=first_index, timeout=timeout))


class PeerPool:
    """Live peers by id; safe to use from concurrent tasks (and threads)."""

    def __init__(self) -> None:
        self._peers: dict[bytes, NetworkPeer] = {}
        self._lock = threading.Lock()
        self._changed = asyncio.Condition() if _loop_running() else None

    def add_peer(self, peer: NetworkPeer) -> bool:
        """Add ``peer``; False (and nothing changes) if a peer with its id is already in."""
        with self._lock:
            if peer.peer_id in self._peers:
                return False
            self._peers[peer.peer_id] = peer
        self._notify()
        return True

    def remove_peer(self, peer_id: bytes) -> NetworkPeer | None:
        with self._lock:
            peer = self._peers.pop(peer_id, None)
        self._notify()
        return peer

    def get(self, peer_id: bytes) -> NetworkPeer | None:
        with self._lock:
            return self._peers.get(peer_id)

    def get_peer_head(self, peer_id: bytes) -> int | None:
        """The probed head of a peer (None if unknown or not in the pool)."""
        peer = self.get(peer_id)
        return peer.head_number if peer else None

    def update_peer_head(self, peer_id: bytes, number: int, block_hash: bytes | None = None) -> bool:
        """Record a head proven by a fetched header; False if the peer is gone."""
        peer = self.get(peer_id)
        if peer is None:
            return False
        peer.head_number = number
        if block_hash is not None:
            peer.head_hash = block_hash
        self._notify()
        return True

    def snapshot(self) -> list[NetworkPeer]:
        """The peers now in the pool (a copy; safe to iterate while the pool changes)."""
        with self._lock:
            return list(self._peers.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._peers)

    def __contains__(self, peer_id: object) -> bool:
        with self._lock:
            return peer_id in self._peers

    def count(self, direction: str) -> int:
        with self._lock:
            return sum(1 for p in self._peers.values() if p.direction == direction)

    def _notify(self) -> None:
        cond = self._changed
        if cond is None:
            return

        async def wake() -> None:
            async with cond:
                cond.notify_all()

        try:
            asyncio.get_running_loop().create_task(wake())
        except RuntimeError:
            pass

    async def wait_for_size(self, n: int) -> None:
        """Return once the pool holds at least ``n`` peers."""
        if self._changed is None:
            self._changed = asyncio.Condition()
        async with self._changed:
            await self._changed.wait_for(lambda: len(self) >= n)


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:
        return False
