"""A live eth-protocol session with one peer (asyncio).

:class:`EthPeer` dials (or accepts) a devp2p connection, runs the eth Status
handshake with genesis and fork-id checks, keeps the connection alive with
pings, answers the peer's requests through a :class:`RequestHandler`, and
offers request methods that match answers to requests by request id (EIP-2481)
under a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ..crypto.keys import PrivateKey
from ..enode import Enode
from ..eth import codec as eth_codec
from ..eth import messages as m
from ..eth.chainspec import ChainSpec
from ..eth.errors import EthProtocolError
from ..eth.status import StatusMismatch, make_status, validate_status
from ..faults import FaultKind, PeerFault
from ..p2p.connection import ConnectionClosed, LocalIdentity, MessageReceived, PingReceived, PongReceived
from ..p2p.disconnect import DisconnectReason
from ..p2p.messages import Capability
from ..transport.connection import Connection, ConnectionLost, TransportError
from .. import __version__

log = logging.getLogger(__name__)

#: eth versions advertised by default (highest wins in negotiation).
DEFAULT_ETH_VERSIONS: tuple[int, ...] = (68, 69, 70)
#: Default per-request timeout (the seed's 4 s).
REQUEST_TIMEOUT = 4.0
#: How long to wait for the peer's Status after Hello.
STATUS_TIMEOUT = 10.0
#: Keep-alive: ping after this much idle time, and drop the peer if no Pong follows in time.
PING_INTERVAL = 15.0
PONG_TIMEOUT = 20.0
#: The client id we send in Hello.
CLIENT_ID = f"ethp2p/v{__version__}/python"


class PeerError(Exception):
    """Base class for failures of a peer session."""


class IncompatiblePeer(PeerError):
    """The peer's Status does not fit our chain (network, genesis, fork id, version)."""

    def __init__(self, message: str, mismatch: Exception | None = None) -> None:
        super().__init__(message)
        self.mismatch = mismatch


class PeerDisconnected(PeerError):
    """The session ended (the peer left, the stream broke, or we disconnected it)."""

    def __init__(self, message: str, event: ConnectionClosed | None = None) -> None:
        super().__init__(message)
        self.event = event


class RequestTimeout(PeerError):
    """The peer did not answer a request in time."""


class PeerMisbehaved(PeerFault, PeerError):
    """The peer sent something it must not send: ``kind`` says what (too many items, an undecodable
    or wrong-type message, a bad Status)."""


@dataclass(frozen=True, slots=True)
class ChainHead:
    """What we announce about our own chain in Status."""

    number: int
    hash: bytes
    timestamp: int
    total_difficulty: int
    earliest: int = 0

    @classmethod
    def genesis(cls, spec: ChainSpec) -> "ChainHead":
        """A fresh node's head: the genesis block."""
        return cls(0, spec.genesis_hash, spec.genesis_timestamp, spec.genesis_difficulty, 0)


class RequestHandler(Protocol):
    """Answers the eth requests a peer sends us (the serving side)."""

    def block_headers(self, request: m.GetBlockHeaders) -> list[bytes]:
        """Raw header RLPs answering ``request``."""
        ...

    def block_bodies(self, hashes: Sequence[bytes]) -> list[bytes]:
        """Raw body RLPs, a prefix of ``hashes`` ending at the first unknown one."""
        ...

    def receipts(self, hashes: Sequence[bytes], version: int, first_index: int) -> tuple[list[bytes], bool]:
        """Raw per-block receipt lists in ``version``'s form, and eth/70's lastBlockIncomplete."""
        ...


class EmptyHandler:
    """A handler with no chain: every answer is empty (a polite non-serving node)."""

    def block_headers(self, request: m.GetBlockHeaders) -> list[bytes]:
        return []

    def block_bodies(self, hashes: Sequence[bytes]) -> list[bytes]:
        return []

    def receipts(self, hashes: Sequence[bytes], version: int, first_index: int) -> tuple[list[bytes], bool]:
        return [], False


@dataclass
class PeerCounters:
    """Per-session traffic and fault counts."""

    requests_sent: int = 0
    responses: int = 0
    timeouts: int = 0
    unsolicited: int = 0
    requests_served: int = 0
    #: Requests answered, by kind: ``headers``, ``bodies``, ``receipts``.
    served_by_kind: dict[str, int] = field(default_factory=dict)
    ignored_announcements: int = 0


#: The kind of each request a peer may send us (the ``kind`` of :attr:`PeerCounters.served_by_kind`).
REQUEST_KINDS: dict[type, str] = {m.GetBlockHeaders: "headers", m.GetBlockBodies: "bodies", m.GetReceipts: "receipts"}


def traffic(peers: Iterable["EthPeer"]) -> tuple[int, int]:
    """Bytes received and sent so far on the connections of ``peers`` (live ones count as they go)."""
    received = sent = 0
    for peer in peers:
        core = peer.conn.core
        received += core.bytes_in
        sent += core.bytes_out
    return received, sent


def eth_message_count(name: str, version: int) -> int:
    """Message-id space of a capability (only eth is offered)."""
    if name == "eth":
        return eth_codec.message_count(version)
    return 0


@dataclass
class _Pending:
    future: asyncio.Future
    expect: type
    max_items: int
    sent_at: float = field(default_factory=time.monotonic)


async def refuse_inbound(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    local: LocalIdentity,
    *,
    timeout: float,
    reason: DisconnectReason = DisconnectReason.TOO_MANY_PEERS,
) -> bool:
    """Complete an inbound handshake only to tell the peer ``reason`` (as geth does when full).

    Returns False if the handshake itself failed.
    """
    try:
        conn = await Connection.accept(reader, writer, local, timeout=timeout)
    except TransportError:
        return False
    await conn.disconnect(reason)
    return True


class EthPeer:
    """One peer speaking eth/68, eth/69 or eth/70 over a devp2p connection."""

    def __init__(
        self,
        conn: Connection,
        spec: ChainSpec,
        version: int,
        status: object,
        *,
        handler: RequestHandler | None = None,
        request_timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        self.conn = conn
        self.spec = spec
        self.eth_version = version
        self.status = status
        self.handler: RequestHandler = handler or EmptyHandler()
        self.request_timeout = request_timeout
        #: Smoothed round trip and its variation (RFC 6298 style), from answered requests.
        self.srtt: float | None = None
        self.rttvar = 0.0
        self.counters = PeerCounters()
        self.closed_event: ConnectionClosed | None = None
        #: Served block range announced by eth/69+ Status or BlockRangeUpdate (earliest, latest).
        self.block_range: tuple[int, int] | None = None
        if isinstance(status, m.StatusV69):
            self.block_range = (status.earliest_block, status.latest_block)
        self._pending: dict[int, _Pending] = {}
        self._ids = itertools.count(secrets.randbits(32))
        self._last_pong = time.monotonic()
        self._tasks: list[asyncio.Task] = []
        self._closed = asyncio.Event()
        self._pong_event = asyncio.Event()
        #: Faults reported about this peer (by the fetch layer and the read loop): (kind, message), most recent last.
        self.faults: list[tuple[FaultKind, str]] = []
        #: Called with each reported fault (the pool's ``NetworkPeer`` sets it to turn faults into reputation).
        self.on_fault: Callable[[FaultKind, str], None] | None = None

    # ---- identity ---------------------------------------------------------------------------

    @property
    def peer_id(self) -> bytes:
        """The peer's 64-byte public key."""
        return self.conn.remote_pubkey

    @property
    def client_id(self) -> str:
        return self.conn.hello.client_id

    @property
    def capabilities(self) -> tuple[Capability, ...]:
        return self.conn.hello.capabilities

    @property
    def address(self) -> tuple[str, int] | None:
        return self.conn.remote_address

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def __repr__(self) -> str:
        return f"<EthPeer {self.peer_id.hex()[:16]} eth/{self.eth_version} {self.client_id!r}>"

    # ---- setup ------------------------------------------------------------------------------

    @staticmethod
    def local_identity(key: PrivateKey, versions: Sequence[int], listen_port: int = 0) -> LocalIdentity:
        """Our Hello: client id, eth capabilities and key."""
        caps = [Capability("eth", v) for v in sorted(versions)]
        return LocalIdentity(key, CLIENT_ID, caps, listen_port, eth_message_count)

    @classmethod
    async def connect(
        cls,
        enode: Enode | str,
        spec: ChainSpec,
        *,
        key: PrivateKey | None = None,
        head: ChainHead | None = None,
        versions: Sequence[int] = DEFAULT_ETH_VERSIONS,
        handler: RequestHandler | None = None,
        request_timeout: float = REQUEST_TIMEOUT,
        handshake_timeout: float = STATUS_TIMEOUT,
    ) -> "EthPeer":
        """Dial ``enode``, run RLPx + Hello + Status, and start the session."""
        node = Enode.parse(enode) if isinstance(enode, str) else enode
        if node.host is None or not node.tcp_port:
            raise TransportError(f"enode has no address: {node.url()}")
        local = cls.local_identity(key or PrivateKey.generate(), versions)
        conn = await Connection.dial(node.host, node.tcp_port, local, node.pubkey, timeout=handshake_timeout)
        return await cls._start(conn, spec, head, handler, request_timeout, handshake_timeout)

    @classmethod
    async def accept(
        cls,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        spec: ChainSpec,
        *,
        key: PrivateKey,
        head: ChainHead | None = None,
        versions: Sequence[int] = DEFAULT_ETH_VERSIONS,
        handler: RequestHandler | None = None,
        request_timeout: float = REQUEST_TIMEOUT,
        handshake_timeout: float = STATUS_TIMEOUT,
        listen_port: int = 0,
        status_transform: "Callable[[m.Status], m.Status] | None" = None,
    ) -> "EthPeer":
        """Run the recipient side on an accepted stream and start the session.

        ``status_transform`` exists for test adversaries only: it rewrites the Status we
        send (wrong genesis, foreign fork id, a lie about the head) and turns off the
        check of the peer's Status.
        """
        local = cls.local_identity(key, versions, listen_port)
        conn = await Connection.accept(reader, writer, local, timeout=handshake_timeout)
        return await cls._start(conn, spec, head, handler, request_timeout, handshake_timeout, status_transform)

    @classmethod
    async def _start(
        cls,
        conn: Connection,
        spec: ChainSpec,
        head: ChainHead | None,
        handler: RequestHandler | None,
        request_timeout: float,
        handshake_timeout: float,
        status_transform: "Callable[[m.Status], m.Status] | None" = None,
    ) -> "EthPeer":
        eth = next((p for p in conn.protocols if p.name == "eth"), None)
        if eth is None:
            await conn.disconnect(DisconnectReason.USELESS_PEER, "no shared eth version")
            raise IncompatiblePeer(
                f"peer offers no eth version we speak (it has {', '.join(map(str, conn.hello.capabilities))})"
            )
        version = eth.version
        head = head or ChainHead.genesis(spec)
        ours = make_status(
            spec,
            version,
            head_number=head.number,
            head_hash=head.hash,
            head_time=head.timestamp,
            total_difficulty=head.total_difficulty,
            earliest=head.earliest,
        )
        if status_transform is not None:
            ours = status_transform(ours)
        try:
            code, payload = eth_codec.encode_message(ours, version)
            await conn.send_message("eth", code, payload)
            async with asyncio.timeout(handshake_timeout):
                theirs = await cls._read_status(conn, version)
        except TimeoutError:
            await conn.disconnect(DisconnectReason.SUBPROTOCOL_ERROR, "no Status")
            raise PeerDisconnected(f"peer sent no Status within {handshake_timeout:g}s") from None
        except EthProtocolError as e:
            await conn.disconnect(DisconnectReason.BREACH_OF_PROTOCOL, str(e))
            raise PeerMisbehaved(FaultKind.BREACH, f"bad Status: {e}") from None
        try:
            if status_transform is None:
                validate_status(spec, head.number, head.timestamp, theirs, version)
        except StatusMismatch as e:
            await conn.disconnect(DisconnectReason.USELESS_PEER, str(e))
            raise IncompatiblePeer(f"incompatible peer: {e}", e) from None
        peer = cls(conn, spec, version, theirs, handler=handler, request_timeout=request_timeout)
        peer._tasks.append(asyncio.create_task(peer._read_loop(), name=f"eth-read-{conn.remote_pubkey.hex()[:8]}"))
        peer._tasks.append(asyncio.create_task(peer._keepalive(), name=f"eth-ping-{conn.remote_pubkey.hex()[:8]}"))
        return peer

    @staticmethod
    async def _read_status(conn: Connection, version: int) -> object:
        while True:
            event = await conn.next_event()
            if isinstance(event, MessageReceived) and event.protocol == "eth":
                if event.code != m.STATUS_CODE:
                    raise EthProtocolError(f"expected Status, got eth message 0x{event.code:02x}")
                return eth_codec.decode_message(event.code, event.payload, version)
            if isinstance(event, ConnectionClosed):
                raise PeerDisconnected(f"peer left during Status exchange: {event.describe()}", event)

    # ---- running ----------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        try:
            while True:
                event = await self.conn.next_event()
                if isinstance(event, MessageReceived):
                    if event.protocol == "eth":
                        await self._on_eth(event.code, event.payload)
                elif isinstance(event, PongReceived):
                    self._last_pong = time.monotonic()
                    self._pong_event.set()
                elif isinstance(event, PingReceived):
                    pass  # the core queued the Pong; next_event flushed it
                elif isinstance(event, ConnectionClosed):
                    self._finish(event)
                    return
        except ConnectionLost as e:
            self._finish(e.event)
        except EthProtocolError as e:
            log.debug("%r broke the eth protocol: %s", self, e)
            self._finish(await self.conn.disconnect(DisconnectReason.BREACH_OF_PROTOCOL, str(e)))
            self.report_fault(FaultKind.BREACH, str(e))  # after the disconnect: the pool only scores it
        except PeerMisbehaved as e:
            log.debug("%r sent a bad message: %s", self, e)
            self._finish(await self.conn.disconnect(DisconnectReason.BREACH_OF_PROTOCOL, str(e)))
            self.report_fault(e.kind, str(e))
        except asyncio.CancelledError:
            raise
        except Exception as e:  # never let a peer crash the node
            log.exception("unexpected error in session with %r", self)
            self._finish(await self.conn.disconnect(DisconnectReason.SUBPROTOCOL_ERROR, f"internal error: {e}"))

    async def _keepalive(self) -> None:
        with contextlib.suppress(asyncio.CancelledError, ConnectionLost, RuntimeError):
            while not self.closed:
                await asyncio.sleep(PING_INTERVAL)
                sent = time.monotonic()
                await self.conn.send_ping()
                await asyncio.sleep(PONG_TIMEOUT)
                if self._last_pong < sent and not self.closed:
                    self._finish(await self.conn.disconnect(DisconnectReason.PING_TIMEOUT, "no Pong"))
                    return

    def _finish(self, event: ConnectionClosed | None) -> None:
        if self._closed.is_set():
            return
        self.closed_event = event
        self._closed.set()
        text = event.describe() if event else "connection lost"
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(PeerDisconnected(text, event))
        self._pending.clear()
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def disconnect(self, reason: DisconnectReason = DisconnectReason.REQUESTED) -> None:
        """End the session politely."""
        if not self.closed:
            self._finish(await self.conn.disconnect(reason))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def send_block_range_update(self, msg: m.BlockRangeUpdate) -> None:
        """Tell an eth/69+ peer which blocks we now serve."""
        if self.eth_version < 69:
            raise ValueError("BlockRangeUpdate needs eth/69+")
        await self._send(msg)

    async def ping(self, timeout: float = PONG_TIMEOUT) -> float:
        """Send a Ping and wait for the Pong; returns the round-trip time in seconds."""
        if self.closed:
            raise PeerDisconnected("session is closed", self.closed_event)
        self._pong_event.clear()
        start = time.monotonic()
        await self.conn.send_ping()
        try:
            async with asyncio.timeout(timeout):
                await self._pong_event.wait()
        except TimeoutError:
            raise RequestTimeout(f"{self!r} sent no Pong within {timeout:g}s") from None
        return time.monotonic() - start

    async def _send(self, msg: object) -> None:
        code, payload = eth_codec.encode_message(msg, self.eth_version)
        await self.conn.send_message("eth", code, payload)

    async def _on_eth(self, code: int, payload: bytes) -> None:
        try:
            msg = eth_codec.decode_message(code, payload, self.eth_version)
        except EthProtocolError as e:
            raise PeerMisbehaved(FaultKind.BAD_MESSAGE, str(e)) from None
        if isinstance(msg, (m.BlockHeaders, m.BlockBodies, m.Receipts)):
            self._on_response(msg)
        elif isinstance(msg, (m.GetBlockHeaders, m.GetBlockBodies, m.GetReceipts)):
            self.counters.requests_served += 1
            kind = REQUEST_KINDS[type(msg)]
            self.counters.served_by_kind[kind] = self.counters.served_by_kind.get(kind, 0) + 1
            hook = getattr(self.handler, "serve_request", None)
            if hook is not None and await hook(self, msg):
                return  # the handler answered (or chose not to) itself
            await self._send(self.answer(msg))
        elif isinstance(msg, m.BlockRangeUpdate):
            if msg.earliest > msg.latest:
                raise EthProtocolError("BlockRangeUpdate with earliest > latest")
            self.block_range = (msg.earliest, msg.latest)
        elif isinstance(msg, (m.StatusV68, m.StatusV69)):
            raise EthProtocolError("Status sent twice")
        elif isinstance(msg, m.GetPooledTransactions):
            await self._send(m.PooledTransactions(msg.request_id, []))
        else:
            # Announcements and transaction gossip: decoded, counted, ignored.
            self.counters.ignored_announcements += 1

    def _sample_rtt(self, rtt: float) -> None:
        if self.srtt is None:
            self.srtt, self.rttvar = rtt, rtt / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - rtt)
            self.srtt = 0.875 * self.srtt + 0.125 * rtt

    def current_timeout(self) -> float:
        """The request timeout adapted to this peer's measured round trips.

        Starts at ``request_timeout`` (4 s by default); once answers have been timed it
        is ``3 x (srtt + 4 x rttvar)``, kept within ``[min(request_timeout, 2 s),
        2 x request_timeout]``: fast peers are given up on sooner, slow ones get longer.
        """
        if self.srtt is None:
            return self.request_timeout
        est = 3.0 * (self.srtt + 4.0 * self.rttvar)
        return min(max(est, min(self.request_timeout, 2.0)), 2.0 * self.request_timeout)

    def report_fault(self, kind: FaultKind, message: str) -> None:
        """Record something this peer got wrong and pass it to :attr:`on_fault` (the pool's reputation).

        Every fault about a live peer ends here (``faults.report`` calls this)."""
        if not isinstance(kind, FaultKind):
            raise TypeError(f"fault kind must be a FaultKind, not {kind!r}")
        self.faults.append((kind, message))
        if len(self.faults) > 100:
            del self.faults[:50]
        if self.on_fault is not None:
            self.on_fault(kind, message)

    def answer(self, msg: m.GetBlockHeaders | m.GetBlockBodies | m.GetReceipts) -> m.Message:
        """The handler's answer to a request, as the message to send."""
        if isinstance(msg, m.GetBlockHeaders):
            return m.BlockHeaders(msg.request_id, self.handler.block_headers(msg))
        if isinstance(msg, m.GetBlockBodies):
            return m.BlockBodies(msg.request_id, self.handler.block_bodies(msg.hashes))
        lists, incomplete = self.handler.receipts(msg.hashes, self.eth_version, msg.first_block_receipt_index)
        return m.make_receipts(self.eth_version, msg.request_id, lists, incomplete)

    async def send_raw(self, data: bytes) -> None:
        """Write bytes to the socket as they are (test adversaries: garbage, cut frames)."""
        self.conn.writer.write(data)
        await self.conn.writer.drain()

    def _on_response(self, msg: m.BlockHeaders | m.BlockBodies | m.Receipts) -> None:
        pending = self._pending.pop(msg.request_id, None)
        if pending is None or pending.future.done():
            self.counters.unsolicited += 1  # late answer to a timed-out request, or junk
            return
        if not isinstance(msg, pending.expect):
            pending.future.set_exception(PeerMisbehaved(FaultKind.BAD_MESSAGE, f"answered a {pending.expect.__name__} request with {type(msg).__name__}"))
            return
        items = msg.headers if isinstance(msg, m.BlockHeaders) else msg.bodies if isinstance(msg, m.BlockBodies) else msg.receipts
        if len(items) > pending.max_items:
            pending.future.set_exception(PeerMisbehaved(FaultKind.TOO_MANY_ITEMS, f"sent {len(items)} items, asked for at most {pending.max_items}"))
            return
        self.counters.responses += 1
        self._sample_rtt(time.monotonic() - pending.sent_at)
        pending.future.set_result(msg)

    async def _request(self, msg_factory, expect: type, max_items: int, timeout: float | None) -> object:
        if self.closed:
            raise PeerDisconnected("session is closed", self.closed_event)
        request_id = next(self._ids) & 0xFFFFFFFFFFFFFFFF
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._pending[request_id] = _Pending(fut, expect, max_items)
        self.counters.requests_sent += 1
        try:
            await self._send(msg_factory(request_id))
            # asyncio.timeout, not wait_for: on 3.11 wait_for drops a cancellation that lands
            # in the same loop pass as the answer, and the cancelled fetch would run on.
            async with asyncio.timeout(timeout if timeout is not None else self.current_timeout()):
                return await fut
        except TimeoutError:
            self.counters.timeouts += 1
            raise RequestTimeout(
                f"{self!r} did not answer {expect.__name__[:-1] if expect is not m.Receipts else 'receipts'} request "
                f"within {timeout if timeout is not None else self.current_timeout():.2f}s"
            ) from None
        except (ConnectionLost, RuntimeError) as e:
            raise PeerDisconnected(f"session closed while sending: {e}", self.closed_event) from None
        finally:
            self._pending.pop(request_id, None)

    async def request_headers(
        self,
        origin: int | bytes,
        amount: int,
        *,
        skip: int = 0,
        reverse: bool = False,
        timeout: float | None = None,
    ) -> list[bytes]:
        """Raw header RLPs from ``origin`` (a number or a 32-byte hash); at most ``amount``."""
        msg = await self._request(
            lambda rid: m.GetBlockHeaders(rid, origin, amount, skip, reverse), m.BlockHeaders, amount, timeout
        )
        return list(msg.headers)  # type: ignore[attr-defined]

    async def request_bodies(self, hashes: Sequence[bytes], *, timeout: float | None = None) -> list[bytes]:
        """Raw body RLPs for a prefix of ``hashes`` (the peer may answer fewer)."""
        hashes = list(hashes)
        msg = await self._request(lambda rid: m.GetBlockBodies(rid, hashes), m.BlockBodies, len(hashes), timeout)
        return list(msg.bodies)  # type: ignore[attr-defined]

    async def request_receipts(
        self, hashes: Sequence[bytes], *, first_index: int = 0, timeout: float | None = None
    ) -> m.Receipts:
        """Receipts for a prefix of ``hashes`` in the negotiated version's form.

        At eth/70, ``first_index`` asks for the first block's receipts from that
        index on, and the answer's ``last_block_incomplete`` says whether the
        last list was cut short.
        """
        hashes = list(hashes)
        if first_index and self.eth_version < 70:
            raise ValueError("firstBlockReceiptIndex needs eth/70")
        msg = await self._request(
            lambda rid: m.make_get_receipts(self.eth_version, rid, hashes, first_index), m.Receipts, len(hashes), timeout
        )
        return msg  # type: ignore[return-value]

    # ---- FetchPeer conformance (fetch.types.FetchPeer) -------------------------------------------

    @property
    def head_number(self) -> int | None:
        """A lone session knows no proven head (the pool's ``NetworkPeer`` learns one by probing)."""
        return None
