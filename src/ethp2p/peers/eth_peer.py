"""A live eth-protocol session with one peer: the asyncio driver of an :class:`~ethp2p.eth.session.EthSession`.

:class:`EthPeer` dials (or accepts) a devp2p connection and runs the sans-IO eth session core
on it: it feeds the core the peer's eth messages, Pongs and ``time.monotonic()``, sends what the
core queues, wakes the core at its next deadline (request timeouts, keep-alive), resolves request
futures from the core's events, and answers the peer's requests through a :class:`RequestHandler`.
Every protocol rule (Status checks, request ids per EIP-2481, response checks, adaptive timeouts,
keep-alive) lives in the core.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .. import __version__
from ..crypto.keys import PrivateKey
from ..enode import Enode
from ..eth import codec as eth_codec
from ..eth import messages as m
from ..eth import session as eth_session
from ..eth.chainspec import ChainSpec
from ..eth.session import (  # noqa: F401  (ChainHead, PeerCounters, REQUEST_KINDS: re-exported, their old home)
    PING_INTERVAL,
    PONG_TIMEOUT,
    REQUEST_KINDS,
    REQUEST_TIMEOUT,
    STATUS_TIMEOUT,
    ChainHead,
    EthSession,
    PeerCounters,
    Request,
)
from ..faults import FaultKind, PeerFault
from ..p2p.connection import ConnectionClosed, LocalIdentity, MessageReceived, PongReceived
from ..p2p.disconnect import DisconnectReason
from ..p2p.messages import Capability
from ..transport.stream import ConnectionLost, P2PStream, TransportError

log = logging.getLogger(__name__)

#: eth versions advertised by default (highest wins in negotiation).
DEFAULT_ETH_VERSIONS: tuple[int, ...] = (68, 69, 70)
#: The client id we send in Hello.
CLIENT_ID = f"ethp2p/v{__version__}/python"
#: Answers waiting out their delay at once, per session (each holds only its request meanwhile).
MAX_DELAYED_ANSWERS = 64


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


@dataclass(frozen=True, slots=True)
class Misconduct:
    """**Test adversaries only**: how our side of a session breaks the eth protocol on purpose.

    ``serve.adversary`` builds these; a normal session has none. The default breaks nothing.
    """

    #: Rewrites the Status we send (wrong genesis, foreign fork id, a lie about the head); the
    #: peer's Status is then not checked either.
    rewrite_status: Callable[[m.Status], m.Status] | None = None
    #: Runs before we answer a peer's request; True means it answered (or stayed silent) itself.
    serve_request: Callable[[EthPeer, Request], Awaitable[bool]] | None = None


class AnswerGate(Protocol):
    """Holds some answers back until something the server waits for (``serve.pacing``)."""

    def holds(self, peer: EthPeer, request: Request) -> bool:
        """True when the answer to ``request`` must wait for :meth:`wait`."""
        ...

    async def wait(self, peer: EthPeer, request: Request) -> None:
        """Return when the answer may go out (bounded by the gate)."""
        ...


def traffic(peers: Iterable[EthPeer]) -> tuple[int, int]:
    """Bytes received and sent so far on the connections of ``peers`` (live ones count as they go)."""
    received = sent = 0
    for peer in peers:
        p2p = peer.conn.core
        received += p2p.bytes_in
        sent += p2p.bytes_out
    return received, sent


def eth_message_count(name: str, version: int) -> int:
    """Message-id space of a capability (only eth is offered)."""
    if name == "eth":
        return eth_codec.message_count(version)
    return 0


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
        conn = await P2PStream.accept(reader, writer, local, timeout=timeout)
    except TransportError:
        return False
    await conn.disconnect(reason)
    return True


class EthPeer:
    """One peer speaking eth/68, eth/69 or eth/70 over a devp2p connection (the asyncio driver)."""

    def __init__(
        self,
        conn: P2PStream,
        core: EthSession,
        *,
        handler: RequestHandler | None = None,
        misconduct: Misconduct | None = None,
        answer_delay: float = 0.0,
        answer_gate: AnswerGate | None = None,
    ) -> None:
        """Drive ``core`` (whose Status is queued) over ``conn``; :meth:`connect` and :meth:`accept` build both.

        ``answer_delay`` (seconds, simulated latency): each answer to the peer's requests is sent that
        long after the request arrived, without holding up other requests or the session (at most
        :data:`MAX_DELAYED_ANSWERS` wait at once; beyond that the peer's next messages wait to be read).
        ``answer_gate`` holds back the answers it chooses the same way (after any ``answer_delay``)."""
        if not 0.0 <= answer_delay < math.inf:
            raise ValueError(f"answer delay must be a number of seconds of at least 0, got {answer_delay}")
        self.conn = conn
        #: The sans-IO eth session core: every protocol rule and counter lives there.
        self.core = core
        self.spec = core.spec
        self.handler: RequestHandler = handler or EmptyHandler()
        self.misconduct = misconduct or Misconduct()
        self.answer_delay = answer_delay
        self.answer_gate = answer_gate
        self._delay_slots = asyncio.Semaphore(MAX_DELAYED_ANSWERS)
        self.closed_event: ConnectionClosed | None = None
        #: Faults reported about this peer (by the fetch layer and the read loop): (kind, message), most recent last.
        self.faults: list[tuple[FaultKind, str]] = []
        #: Called with each reported fault (the pool's ``NetworkPeer`` sets it to turn faults into reputation).
        self.on_fault: Callable[[FaultKind, str], None] | None = None
        #: The futures of requests awaiting an answer, by request id.
        self._waiters: dict[int, asyncio.Future[eth_session.Response]] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self._closed = asyncio.Event()
        self._pong_event = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0

    # ---- identity and state -----------------------------------------------------------------

    @property
    def peer_id(self) -> bytes:
        """The peer's 64-byte public key."""
        return self.conn.remote_pubkey

    @property
    def client_id(self) -> str:
        """The client id of the peer's Hello."""
        return self.conn.hello.client_id

    @property
    def capabilities(self) -> tuple[Capability, ...]:
        """The capabilities of the peer's Hello."""
        return self.conn.hello.capabilities

    @property
    def address(self) -> tuple[str, int] | None:
        """The peer's (host, port)."""
        return self.conn.remote_address

    @property
    def closed(self) -> bool:
        """Whether the session is over."""
        return self._closed.is_set()

    @property
    def eth_version(self) -> int:
        """The negotiated eth version."""
        return self.core.version

    @property
    def status(self) -> m.Status:
        """The peer's Status."""
        assert self.core.peer_status is not None
        return self.core.peer_status

    @property
    def block_range(self) -> tuple[int, int] | None:
        """Served block range announced by eth/69+ Status or BlockRangeUpdate (earliest, latest)."""
        return self.core.block_range

    @property
    def counters(self) -> PeerCounters:
        """Per-session traffic and fault counts."""
        return self.core.counters

    @property
    def request_timeout(self) -> float:
        """The request timeout before any round trip is measured."""
        return self.core.request_timeout

    @property
    def srtt(self) -> float | None:
        """The smoothed round trip of answered requests (None before the first)."""
        return self.core.srtt

    @property
    def rttvar(self) -> float:
        """The round trip's smoothed variation."""
        return self.core.rttvar

    def current_timeout(self) -> float:
        """The request timeout adapted to this peer's round trips (see :meth:`EthSession.current_timeout`)."""
        return self.core.current_timeout()

    def __repr__(self) -> str:
        return f"<EthPeer {self.peer_id.hex()[:16]} eth/{self.eth_version} {self.client_id!r}>"

    # ---- setup ------------------------------------------------------------------------------

    @staticmethod
    def local_identity(
        key: PrivateKey, versions: Sequence[int], listen_port: int = 0, client_id: str = CLIENT_ID
    ) -> LocalIdentity:
        """Our Hello: client id, eth capabilities and key."""
        caps = [Capability("eth", v) for v in sorted(versions)]
        return LocalIdentity(key, client_id, caps, listen_port, eth_message_count)

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
        misconduct: Misconduct | None = None,
        answer_delay: float = 0.0,
        answer_gate: AnswerGate | None = None,
        client_id: str = CLIENT_ID,
        local_host: str | None = None,
    ) -> EthPeer:
        """Dial ``enode`` (from the source address ``local_host`` if given), run RLPx + Hello (saying
        ``client_id``) + Status, and start the session (``answer_delay``, ``answer_gate``: see
        :class:`EthPeer`)."""
        node = Enode.parse(enode) if isinstance(enode, str) else enode
        if node.host is None or not node.tcp_port:
            raise TransportError(f"enode has no address: {node.url()}")
        local = cls.local_identity(key or PrivateKey.generate(), versions, client_id=client_id)
        conn = await P2PStream.dial(
            node.host, node.tcp_port, local, node.pubkey, timeout=handshake_timeout, local_host=local_host
        )
        return await cls._start(
            conn, spec, head, handler, request_timeout, handshake_timeout, misconduct, answer_delay, answer_gate
        )

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
        misconduct: Misconduct | None = None,
        answer_delay: float = 0.0,
        answer_gate: AnswerGate | None = None,
    ) -> EthPeer:
        """Run the recipient side on an accepted stream and start the session.

        ``misconduct`` exists for test adversaries only (see :class:`Misconduct`); ``answer_delay``
        simulates latency and ``answer_gate`` holds answers back (see :class:`EthPeer`).
        """
        local = cls.local_identity(key, versions, listen_port)
        conn = await P2PStream.accept(reader, writer, local, timeout=handshake_timeout)
        return await cls._start(
            conn, spec, head, handler, request_timeout, handshake_timeout, misconduct, answer_delay, answer_gate
        )

    @classmethod
    async def _start(
        cls,
        conn: P2PStream,
        spec: ChainSpec,
        head: ChainHead | None,
        handler: RequestHandler | None,
        request_timeout: float,
        handshake_timeout: float,
        misconduct: Misconduct | None,
        answer_delay: float = 0.0,
        answer_gate: AnswerGate | None = None,
    ) -> EthPeer:
        try:
            eth = next((p for p in conn.protocols if p.name == "eth"), None)
            if eth is None:
                await conn.disconnect(DisconnectReason.USELESS_PEER, "no shared eth version")
                raise IncompatiblePeer(
                    f"peer offers no eth version we speak (it has {', '.join(map(str, conn.hello.capabilities))})"
                )
            core = EthSession(
                spec,
                eth.version,
                time.monotonic(),
                head=head,
                first_request_id=secrets.randbits(32),
                request_timeout=request_timeout,
                status_timeout=handshake_timeout,
                status_rewrite=misconduct.rewrite_status if misconduct is not None else None,
            )
            peer = cls(
                conn, core, handler=handler, misconduct=misconduct, answer_delay=answer_delay, answer_gate=answer_gate
            )
            await peer._exchange_status()
            short = conn.remote_pubkey.hex()[:8]
            peer._tasks.append(asyncio.create_task(peer._read_loop(), name=f"eth-read-{short}"))
            peer._arm_timer()
            return peer
        except BaseException:
            conn.abort()  # every way the Status exchange fails (or is cancelled) closes the socket
            raise

    async def _exchange_status(self) -> None:
        """Send our Status and read the peer's, until the core says the exchange is done or failed."""
        conn, core = self.conn, self.core
        await self._send_queued()
        while True:
            deadline = core.next_deadline()
            assert deadline is not None
            try:
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    event = await conn.next_event()
            except TimeoutError:
                events = core.handle_timer(time.monotonic())
            else:
                if isinstance(event, ConnectionClosed):
                    core.connection_lost()
                    raise PeerDisconnected(f"peer left during Status exchange: {event.describe()}", event)
                if not (isinstance(event, MessageReceived) and event.protocol == "eth"):
                    continue
                events = core.receive_message(event.code, event.payload, time.monotonic())
            for ev in events:
                if isinstance(ev, eth_session.StatusExchanged):
                    return
                if isinstance(ev, eth_session.StatusTimedOut):
                    await conn.disconnect(DisconnectReason.SUBPROTOCOL_ERROR, "no Status")
                    raise PeerDisconnected(f"peer sent no Status within {ev.timeout:g}s")
                if isinstance(ev, eth_session.StatusRejected):
                    await conn.disconnect(DisconnectReason.USELESS_PEER, str(ev.mismatch))
                    raise IncompatiblePeer(f"incompatible peer: {ev.mismatch}", ev.mismatch)
                if isinstance(ev, eth_session.FaultDetected):
                    await conn.disconnect(DisconnectReason.BREACH_OF_PROTOCOL, ev.message)
                    raise PeerMisbehaved(ev.kind, ev.message)

    # ---- running ----------------------------------------------------------------------------

    async def _send_queued(self) -> None:
        """Send the eth messages the core has queued."""
        for code, payload in self.core.messages_to_send():
            await self.conn.send_message("eth", code, payload)

    async def _read_loop(self) -> None:
        conn, core = self.conn, self.core
        try:
            while True:
                event = await conn.next_event()
                if isinstance(event, MessageReceived):
                    if event.protocol == "eth":
                        if await self._on_events(core.receive_message(event.code, event.payload, time.monotonic())):
                            return
                        if core.has_messages_to_send:
                            await self._send_queued()
                elif isinstance(event, PongReceived):
                    core.pong_received(time.monotonic())
                    self._pong_event.set()
                elif isinstance(event, ConnectionClosed):
                    self._finish(event)
                    return
                # PingReceived: the p2p core queued the Pong; next_event flushed it.
        except ConnectionLost as e:
            self._finish(e.event)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # never let a peer crash the node
            log.exception("unexpected error in session with %r", self)
            self._finish(await conn.disconnect(DisconnectReason.SUBPROTOCOL_ERROR, f"internal error: {e}"))

    async def _on_events(self, events: list[eth_session.Event]) -> bool:
        """Act on the core's events from one message; True when the session is over."""
        for ev in events:
            if type(ev) is eth_session.ResponseReceived:
                fut = self._waiters.get(ev.request_id)
                if fut is not None and not fut.done():
                    fut.set_result(ev.message)
            elif isinstance(ev, eth_session.RequestReceived):
                await self._serve(ev.request)
            elif isinstance(ev, eth_session.ResponseRejected):
                fut = self._waiters.get(ev.request_id)
                if fut is not None and not fut.done():
                    fut.set_exception(PeerMisbehaved(ev.kind, ev.message))
            elif isinstance(ev, eth_session.FaultDetected):
                log.debug("%r broke the eth protocol: %s", self, ev.message)
                self._finish(await self.conn.disconnect(DisconnectReason.BREACH_OF_PROTOCOL, ev.message))
                self.report_fault(ev.kind, ev.message)  # after the disconnect: the pool only scores it
                return True
            elif isinstance(ev, eth_session.UnsolicitedResponse):
                self.report_fault(
                    FaultKind.UNSOLICITED, f"answer to request id {ev.request_id}, never sent or already answered"
                )
            # LateResponse: an answer to a request that timed out; counted by the core, dropped.
        return False

    async def _serve(self, request: Request) -> None:
        gate = self.answer_gate
        if self.answer_delay > 0 or (gate is not None and gate.holds(self, request)):
            # Answered later by a task of its own: the read loop goes on (pings, other requests,
            # the answers a gate waits for).
            await self._delay_slots.acquire()
            self._spawn(self._serve_later(request))
            return
        await self._answer(request)

    async def _answer(self, request: Request) -> None:
        hook = self.misconduct.serve_request
        if hook is not None and await hook(self, request):
            return  # the adversary answered (or chose not to) itself
        self.core.send(self.answer(request))

    async def _serve_later(self, request: Request) -> None:
        """Answer ``request`` after :attr:`answer_delay` seconds and once :attr:`answer_gate` lets it
        (the answer reflects the store then)."""
        try:
            if self.answer_delay > 0:
                await asyncio.sleep(self.answer_delay)
            if self.answer_gate is not None and not self.closed:
                await self.answer_gate.wait(self, request)
            if self.closed:
                return
            with contextlib.suppress(RuntimeError, TransportError, OSError):
                await self._answer(request)
                await self._send_queued()
        finally:
            self._delay_slots.release()

    def _arm_timer(self) -> None:
        """Make sure the timer fires no later than the core's next deadline."""
        deadline = self.core.next_deadline()
        if deadline is None:
            return
        timer = self._timer
        if timer is not None:
            if self._timer_at <= deadline:
                return  # it fires first; _on_timer re-arms
            timer.cancel()
        self._timer_at = deadline
        self._timer = asyncio.get_running_loop().call_later(max(0.0, deadline - time.monotonic()), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self.closed:
            return
        try:
            for ev in self.core.handle_timer(time.monotonic(), self.conn.core.bytes_in):
                if isinstance(ev, eth_session.RequestTimedOut):
                    fut = self._waiters.get(ev.request_id)
                    if fut is not None and not fut.done():
                        fut.set_exception(
                            RequestTimeout(f"{self!r} did not answer {ev.kind} request within {ev.timeout:.2f}s")
                        )
                elif isinstance(ev, eth_session.PingDue):
                    self._spawn(self._send_ping())
                elif isinstance(ev, eth_session.PeerUnresponsive):
                    self._spawn(self._drop(DisconnectReason.PING_TIMEOUT, "no Pong"))
        finally:
            # Every request deadline and the keep-alive hang off this one timer: it is re-armed
            # even if acting on an event failed, or this peer's requests would wait forever.
            self._arm_timer()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.append(task)
        task.add_done_callback(self._forget_task)

    def _forget_task(self, task: asyncio.Task[Any]) -> None:
        with contextlib.suppress(ValueError):
            self._tasks.remove(task)

    async def _send_ping(self) -> None:
        with contextlib.suppress(ConnectionLost, RuntimeError):
            await self.conn.send_ping()

    async def _drop(self, reason: DisconnectReason, error: str) -> None:
        if not self.closed:
            self._finish(await self.conn.disconnect(reason, error))

    def _finish(self, event: ConnectionClosed | None) -> None:
        if self._closed.is_set():
            return
        self.closed_event = event
        self._closed.set()
        self.conn.close_transport()  # however the session ended, its socket goes with it
        self.core.connection_lost()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        text = event.describe() if event else "connection lost"
        for fut in self._waiters.values():
            if not fut.done():
                fut.set_exception(PeerDisconnected(text, event))
        self._waiters.clear()
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()

    async def wait_closed(self) -> None:
        """Wait until the session is over."""
        await self._closed.wait()

    async def disconnect(self, reason: DisconnectReason = DisconnectReason.REQUESTED) -> None:
        """End the session politely."""
        if not self.closed:
            self._finish(await self.conn.disconnect(reason))
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def send_block_range_update(self, msg: m.BlockRangeUpdate) -> None:
        """Tell an eth/69+ peer which blocks we now serve."""
        if self.eth_version < 69:
            raise ValueError("BlockRangeUpdate needs eth/69+")
        self.core.send(msg)
        await self._send_queued()

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

    def answer(self, msg: Request) -> m.Message:
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

    async def _request(self, make: Callable[[int], Request], timeout: float | None) -> eth_session.Response:
        if self.closed:
            raise PeerDisconnected("session is closed", self.closed_event)
        core = self.core
        try:
            request_id = core.request(make, time.monotonic(), timeout=timeout)
        except RuntimeError as e:  # the core closed (a fault) before the driver finished closing
            raise PeerDisconnected(f"session is closed: {e}", self.closed_event) from None
        fut: asyncio.Future[eth_session.Response] = asyncio.get_running_loop().create_future()
        self._waiters[request_id] = fut
        self._arm_timer()
        try:
            await self._send_queued()
            # The timeout (and the round trip) counts from when the request left, not from when it
            # was queued: time blocked on a full socket buffer is not the peer's.
            core.request_sent(request_id, time.monotonic(), self.conn.core.bytes_in)
            return await fut
        except (ConnectionLost, RuntimeError) as e:
            raise PeerDisconnected(f"session closed while sending: {e}", self.closed_event) from None
        finally:
            self._waiters.pop(request_id, None)
            core.cancel_request(request_id)

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
        msg = await self._request(lambda rid: m.GetBlockHeaders(rid, origin, amount, skip, reverse), timeout)
        assert isinstance(msg, m.BlockHeaders)
        return list(msg.headers)  # type: ignore[arg-type]

    async def request_bodies(self, hashes: Sequence[bytes], *, timeout: float | None = None) -> list[bytes]:
        """Raw body RLPs for a prefix of ``hashes`` (the peer may answer fewer)."""
        hashes = list(hashes)
        msg = await self._request(lambda rid: m.GetBlockBodies(rid, hashes), timeout)
        assert isinstance(msg, m.BlockBodies)
        return list(msg.bodies)  # type: ignore[arg-type]

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
        version = self.eth_version
        msg = await self._request(lambda rid: m.make_get_receipts(version, rid, hashes, first_index), timeout)
        assert isinstance(msg, m.Receipts)
        return msg

    # ---- FetchPeer conformance (fetch.types.FetchPeer) -------------------------------------------

    @property
    def head_number(self) -> int | None:
        """A lone session knows no proven head (the pool's ``NetworkPeer`` learns one by probing)."""
        return None
