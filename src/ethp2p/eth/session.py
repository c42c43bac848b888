"""A sans-IO eth session: the Status handshake, request ids, response checks, adaptive timeouts, keep-alive.

:class:`EthSession` holds the eth protocol's rules for one peer and nothing else. Feed it the
eth messages the p2p layer delivers with :meth:`EthSession.receive_message` and the peer's Pongs
with :meth:`EthSession.pong_received`; start requests with :meth:`EthSession.request`. It returns
events (small frozen dataclasses) and queues the eth messages it wants sent
(:meth:`EthSession.messages_to_send`, ``(code, payload)`` pairs). It never reads a clock: every
call that depends on time takes ``now`` (seconds, any monotonic clock), and the driver calls
:meth:`EthSession.handle_timer` once :meth:`EthSession.next_deadline` has passed.

The asyncio driver is ``ethp2p.peers.eth_peer.EthPeer``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from ..faults import FaultKind
from . import codec
from . import messages as m
from .chainspec import ChainSpec
from .errors import EthProtocolError
from .status import StatusMismatch, make_status, validate_status

#: Default per-request timeout (before any round trip has been measured).
REQUEST_TIMEOUT = 4.0
#: A request whose answer may still be arriving (the peer keeps sending bytes, and has answered no
#: request sent after it) gets more time, up to this many times its timeout in all: a thin link
#: delivering large answers in order is slow, not silent.
MAX_EXTENSION_FACTOR = 8
#: Bytes that must have arrived since the request left (or its last extension) for that: more
#: than pings and announcements, less than any answer chunk a thin link delivers in a second.
EXTENSION_MIN_BYTES = 16 * 1024
#: How long to wait for the peer's Status.
STATUS_TIMEOUT = 10.0
#: Answers to request ids we never sent (or already had answered) are faults; this many end the
#: session (the first ones are penalised and dropped: a peer may repeat an answer once by mistake).
MAX_UNSOLICITED = 3
#: Request ids that timed out or were cancelled, remembered (newest) so that their late answers are
#: dropped undecoded without blame; an answer to an id older than these counts as unsolicited.
MAX_LATE_IDS = 1024
#: Keep-alive: a Ping this long after the handshake (and after each answered one's deadline) ...
PING_INTERVAL = 15.0
#: ... and the peer is unresponsive if no Pong came this long after it.
PONG_TIMEOUT = 20.0

#: A request we send or serve.
Request = m.GetBlockHeaders | m.GetBlockBodies | m.GetReceipts
#: The answer to a :data:`Request`.
Response = m.BlockHeaders | m.BlockBodies | m.Receipts

#: The answer type each request expects.
RESPONSE_TYPES: dict[type, type] = {
    m.GetBlockHeaders: m.BlockHeaders,
    m.GetBlockBodies: m.BlockBodies,
    m.GetReceipts: m.Receipts,
}
#: The kind of each request a peer may send us (the ``kind`` of :attr:`PeerCounters.served_by_kind`).
REQUEST_KINDS: dict[type, str] = {m.GetBlockHeaders: "headers", m.GetBlockBodies: "bodies", m.GetReceipts: "receipts"}


class Phase(enum.Enum):
    """Where the session is in its life."""

    STATUS = "status"  # our Status is queued, theirs not yet in
    ACTIVE = "active"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class ChainHead:
    """What we announce about our own chain in Status."""

    number: int
    hash: bytes
    timestamp: int
    total_difficulty: int
    earliest: int = 0

    @classmethod
    def genesis(cls, spec: ChainSpec) -> ChainHead:
        """A fresh node's head: the genesis block."""
        return cls(0, spec.genesis_hash, spec.genesis_timestamp, spec.genesis_difficulty, 0)


@dataclass
class PeerCounters:
    """Per-session traffic and fault counts."""

    requests_sent: int = 0
    responses: int = 0
    timeouts: int = 0
    #: Answers to request ids never sent or already answered (faults; MAX_UNSOLICITED end the session).
    unsolicited: int = 0
    #: Late answers to requests that had timed out or been cancelled (dropped undecoded, no fault).
    late: int = 0
    requests_served: int = 0
    #: Requests answered, by kind: ``headers``, ``bodies``, ``receipts``.
    served_by_kind: dict[str, int] = field(default_factory=dict)
    ignored_announcements: int = 0


# ---- events ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatusExchanged:
    """The peer's Status arrived and fits our chain: the session is active."""

    status: m.Status


@dataclass(frozen=True, slots=True)
class StatusRejected:
    """The peer's Status does not fit our chain (network, genesis, fork id, version, range); the session is over."""

    mismatch: StatusMismatch


@dataclass(frozen=True, slots=True)
class StatusTimedOut:
    """No Status came within ``timeout`` seconds; the session is over."""

    timeout: float


@dataclass(frozen=True, slots=True)
class FaultDetected:
    """The peer broke the eth protocol (a bad or repeated Status, an undecodable message, an impossible
    BlockRangeUpdate); the session is over and the driver should disconnect with breach of protocol."""

    kind: FaultKind
    message: str


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """The answer to request ``request_id`` passed the checks; ``rtt`` is its round trip in seconds."""

    request_id: int
    message: Response
    rtt: float


@dataclass(frozen=True, slots=True)
class ResponseRejected:
    """The answer to request ``request_id`` is wrong (wrong type, too many items): the request fails
    with ``kind``; the session goes on."""

    request_id: int
    kind: FaultKind
    message: str


@dataclass(frozen=True, slots=True)
class UnsolicitedResponse:
    """An answer to a request id we never sent, or to one already answered: a fault (the driver
    reports it as :attr:`FaultKind.UNSOLICITED`), counted in :attr:`PeerCounters.unsolicited` and
    dropped without being decoded past its request id. The :data:`MAX_UNSOLICITED`-th is a
    :class:`FaultDetected` instead, and ends the session."""

    request_id: int


@dataclass(frozen=True, slots=True)
class LateResponse:
    """An answer to a request of ours that had timed out or been cancelled: dropped without being
    decoded past its request id, counted in :attr:`PeerCounters.late`; no fault (the peer was slow)."""

    request_id: int


@dataclass(frozen=True, slots=True)
class RequestTimedOut:
    """Request ``request_id`` (a ``kind`` request) went unanswered for ``timeout`` seconds; it is dropped."""

    request_id: int
    kind: str
    timeout: float


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """The peer asks for headers, bodies or receipts; answer with :meth:`EthSession.send`."""

    request: Request


@dataclass(frozen=True, slots=True)
class PingDue:
    """Time for a keep-alive Ping (a p2p message: the driver sends it)."""


@dataclass(frozen=True, slots=True)
class PeerUnresponsive:
    """No Pong followed the keep-alive Ping within ``waited`` seconds; the session is over."""

    waited: float


Event = (
    StatusExchanged
    | StatusRejected
    | StatusTimedOut
    | FaultDetected
    | ResponseReceived
    | ResponseRejected
    | UnsolicitedResponse
    | LateResponse
    | RequestTimedOut
    | RequestReceived
    | PingDue
    | PeerUnresponsive
)


@dataclass(slots=True)
class PendingRequest:
    """A request sent and not yet answered."""

    expect: type
    kind: str
    max_items: int
    sent_at: float
    timeout: float
    deadline: float
    #: The connection's received-byte count when the request left (or when its deadline was last
    #: extended): bytes beyond it mean the peer is still sending (see :meth:`EthSession.handle_timer`).
    received_mark: int = 0
    #: A request sent after this one was answered first: the peer skipped this one (no extension).
    overtaken: bool = False


def _max_items(request: Request) -> int:
    return request.amount if isinstance(request, m.GetBlockHeaders) else len(request.hashes)


def _items(msg: Response) -> int:
    if isinstance(msg, m.BlockHeaders):
        return len(msg.headers)
    if isinstance(msg, m.BlockBodies):
        return len(msg.bodies)
    return len(msg.receipts)


class EthSession:
    """One peer's eth/68, eth/69 or eth/70 session state, without IO or clocks.

    Creating it queues our Status; the session is active once the peer's Status has been checked
    (:class:`StatusExchanged`). After :class:`StatusRejected`, :class:`StatusTimedOut`,
    :class:`FaultDetected`, :class:`PeerUnresponsive` or :meth:`connection_lost` it is closed and
    accepts no more input.
    """

    def __init__(
        self,
        spec: ChainSpec,
        version: int,
        now: float,
        *,
        head: ChainHead | None = None,
        first_request_id: int = 0,
        request_timeout: float = REQUEST_TIMEOUT,
        status_timeout: float = STATUS_TIMEOUT,
        ping_interval: float = PING_INTERVAL,
        pong_timeout: float = PONG_TIMEOUT,
        status_rewrite: Callable[[m.Status], m.Status] | None = None,
    ) -> None:
        """Start a session at eth/``version`` and queue our Status for ``head`` (genesis by default).

        ``status_rewrite`` exists for test adversaries only: it rewrites the Status we send, and the
        peer's Status is then not checked.
        """
        self.spec = spec
        self.version = version
        self.head = head or ChainHead.genesis(spec)
        self.request_timeout = request_timeout
        self.status_timeout = status_timeout
        self.ping_interval = ping_interval
        self.pong_timeout = pong_timeout
        self.phase = Phase.STATUS
        self.counters = PeerCounters()
        #: The peer's Status, once exchanged.
        self.peer_status: m.Status | None = None
        #: Served block range announced by eth/69+ Status or BlockRangeUpdate (earliest, latest).
        self.block_range: tuple[int, int] | None = None
        #: Smoothed round trip and its variation (RFC 6298 style), from answered requests.
        self.srtt: float | None = None
        self.rttvar = 0.0
        self._check_status = status_rewrite is None
        self._pending: dict[int, PendingRequest] = {}
        #: Ids of requests that timed out or were cancelled, oldest first (at most MAX_LATE_IDS).
        self._late_ids: dict[int, None] = {}
        self._next_id = first_request_id & 0xFFFFFFFFFFFFFFFF
        self._out: list[tuple[int, bytes]] = []
        self._status_deadline = now + status_timeout
        self._ping_at: float | None = None
        self._ping_sent: float | None = None
        self._pong_deadline: float | None = None
        self._last_pong = now
        h = self.head
        ours = make_status(
            spec,
            version,
            head_number=h.number,
            head_hash=h.hash,
            head_time=h.timestamp,
            total_difficulty=h.total_difficulty,
            earliest=h.earliest,
        )
        #: The Status we sent.
        self.our_status = status_rewrite(ours) if status_rewrite is not None else ours
        self.send(self.our_status)

    # ---- state ------------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        """Whether Status has been exchanged and the session is not over."""
        return self.phase is Phase.ACTIVE

    @property
    def pending(self) -> int:
        """How many requests await an answer."""
        return len(self._pending)

    def pending_request(self, request_id: int) -> PendingRequest | None:
        """The pending request with this id, if any."""
        return self._pending.get(request_id)

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

    def _sample_rtt(self, rtt: float) -> None:
        if self.srtt is None:
            self.srtt, self.rttvar = rtt, rtt / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - rtt)
            self.srtt = 0.875 * self.srtt + 0.125 * rtt

    # ---- output -----------------------------------------------------------------------------

    def messages_to_send(self) -> list[tuple[int, bytes]]:
        """The eth messages queued for the peer as ``(code, payload)`` (and clear the queue)."""
        out = self._out
        self._out = []
        return out

    @property
    def has_messages_to_send(self) -> bool:
        """Whether :meth:`messages_to_send` has anything."""
        return bool(self._out)

    def send(self, msg: m.Message) -> None:
        """Queue any eth message (an answer to :class:`RequestReceived`, a BlockRangeUpdate)."""
        if self.phase is Phase.CLOSED:
            raise RuntimeError("eth session is closed")
        self._out.append(codec.encode_message(msg, self.version))

    def request(self, make: Callable[[int], Request], now: float, *, timeout: float | None = None) -> int:
        """Queue the request ``make(request_id)`` and return its id.

        It times out ``timeout`` seconds from ``now`` (by default :meth:`current_timeout`).
        """
        if self.phase is not Phase.ACTIVE:
            raise RuntimeError(f"cannot send a request in phase {self.phase.value}")
        request_id = self._next_id
        self._next_id = (request_id + 1) & 0xFFFFFFFFFFFFFFFF
        msg = make(request_id)
        self._out.append(codec.encode_message(msg, self.version))
        t = timeout if timeout is not None else self.current_timeout()
        kind = REQUEST_KINDS[type(msg)]
        self._pending[request_id] = PendingRequest(RESPONSE_TYPES[type(msg)], kind, _max_items(msg), now, t, now + t)
        self.counters.requests_sent += 1
        return request_id

    def request_sent(self, request_id: int, now: float, received: int = 0) -> None:
        """The request left at ``now``: its timeout and round trip count from here (no-op if it is
        no longer pending). ``received``: the bytes received on the connection so far."""
        p = self._pending.get(request_id)
        if p is not None:
            p.sent_at = now
            p.deadline = now + p.timeout
            p.received_mark = received

    def cancel_request(self, request_id: int) -> None:
        """Forget a pending request (its caller gave up); a later answer is a :class:`LateResponse`."""
        if self._pending.pop(request_id, None) is not None:
            self._expect_late(request_id)

    def _expect_late(self, request_id: int) -> None:
        """Remember that an answer to ``request_id`` may still come (it timed out or was cancelled)."""
        if len(self._late_ids) >= MAX_LATE_IDS:
            del self._late_ids[next(iter(self._late_ids))]
        self._late_ids[request_id] = None

    # ---- input ------------------------------------------------------------------------------

    def receive_message(self, code: int, payload: bytes | memoryview, now: float) -> list[Event]:
        """Process one eth message (``code`` relative to eth's offset); return the events it produced."""
        if self.phase is Phase.ACTIVE:
            if code in codec.RESPONSE_CODES:
                # An answer to no pending request is rejected on its request id alone (cheap).
                try:
                    rid = codec.peek_request_id(payload)
                except EthProtocolError as e:
                    return [self._fault(FaultKind.BAD_MESSAGE, str(e))]
                if rid not in self._pending:
                    return [self._unexpected_response(rid)]
            try:
                msg = codec.decode_message(code, payload, self.version)
            except EthProtocolError as e:
                return [self._fault(FaultKind.BAD_MESSAGE, str(e))]
            return self._on_message(msg, now)
        if self.phase is Phase.STATUS:
            return [self._on_status(code, payload, now)]
        return []

    def pong_received(self, now: float) -> None:
        """The peer answered a Ping (ours for keep-alive or any other)."""
        self._last_pong = now

    def connection_lost(self) -> None:
        """The connection under the session is gone: close and drop every pending request."""
        self.phase = Phase.CLOSED
        self._pending.clear()

    def _fault(self, kind: FaultKind, message: str) -> FaultDetected:
        self.connection_lost()
        return FaultDetected(kind, message)

    def _on_status(self, code: int, payload: bytes | memoryview, now: float) -> Event:
        if code != m.STATUS_CODE:
            return self._fault(FaultKind.BREACH, f"bad Status: expected Status, got eth message 0x{code:02x}")
        try:
            theirs = codec.decode_message(code, payload, self.version)
        except EthProtocolError as e:
            return self._fault(FaultKind.BREACH, f"bad Status: {e}")
        assert isinstance(theirs, (m.StatusV68, m.StatusV69))
        if self._check_status:
            try:
                validate_status(self.spec, self.head.number, self.head.timestamp, theirs, self.version)
            except StatusMismatch as e:
                self.connection_lost()
                return StatusRejected(e)
        self.phase = Phase.ACTIVE
        self.peer_status = theirs
        if isinstance(theirs, m.StatusV69):
            self.block_range = (theirs.earliest_block, theirs.latest_block)
        self._ping_at = now + self.ping_interval
        return StatusExchanged(theirs)

    def _on_message(self, msg: m.Message, now: float) -> list[Event]:
        if isinstance(msg, (m.BlockHeaders, m.BlockBodies, m.Receipts)):
            return [self._on_response(msg, now)]
        if isinstance(msg, (m.GetBlockHeaders, m.GetBlockBodies, m.GetReceipts)):
            counters = self.counters
            counters.requests_served += 1
            kind = REQUEST_KINDS[type(msg)]
            counters.served_by_kind[kind] = counters.served_by_kind.get(kind, 0) + 1
            return [RequestReceived(msg)]
        if isinstance(msg, m.BlockRangeUpdate):
            if msg.earliest > msg.latest:
                return [self._fault(FaultKind.BREACH, "BlockRangeUpdate with earliest > latest")]
            self.block_range = (msg.earliest, msg.latest)
            return []
        if isinstance(msg, (m.StatusV68, m.StatusV69)):
            return [self._fault(FaultKind.BREACH, "Status sent twice")]
        if isinstance(msg, m.GetPooledTransactions):
            self.send(m.PooledTransactions(msg.request_id, []))  # we keep no transaction pool
            return []
        # Announcements and transaction gossip: decoded, counted, ignored.
        self.counters.ignored_announcements += 1
        return []

    def _unexpected_response(self, request_id: int) -> Event:
        """An answer to no pending request: late (tolerated) or unsolicited (a fault)."""
        if request_id in self._late_ids:
            del self._late_ids[request_id]  # a second late answer to it is unsolicited
            self.counters.late += 1
            return LateResponse(request_id)
        self.counters.unsolicited += 1
        n = self.counters.unsolicited
        if n >= MAX_UNSOLICITED:
            return self._fault(
                FaultKind.UNSOLICITED,
                f"{n} unsolicited answers (the last to request id {request_id}, never sent or already answered)",
            )
        return UnsolicitedResponse(request_id)

    def _on_response(self, msg: Response, now: float) -> Event:
        pending = self._pending.pop(msg.request_id, None)
        if pending is None:  # receive_message checked it is pending
            return self._unexpected_response(msg.request_id)
        for other in self._pending.values():
            if other.sent_at < pending.sent_at:
                other.overtaken = True
        if type(msg) is not pending.expect:
            return ResponseRejected(
                msg.request_id,
                FaultKind.BAD_MESSAGE,
                f"answered a {pending.expect.__name__} request with {type(msg).__name__}",
            )
        n = _items(msg)
        if n > pending.max_items:
            return ResponseRejected(
                msg.request_id, FaultKind.TOO_MANY_ITEMS, f"sent {n} items, asked for at most {pending.max_items}"
            )
        self.counters.responses += 1
        rtt = now - pending.sent_at
        self._sample_rtt(rtt)
        return ResponseReceived(msg.request_id, msg, rtt)

    # ---- timers -----------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` should next be called (None: never, the session is closed)."""
        if self.phase is Phase.ACTIVE:
            deadline = self._pong_deadline if self._pong_deadline is not None else self._ping_at
            for p in self._pending.values():
                if deadline is None or p.deadline < deadline:
                    deadline = p.deadline
            return deadline
        if self.phase is Phase.STATUS:
            return self._status_deadline
        return None

    def handle_timer(self, now: float, received: int | None = None) -> list[Event]:
        """Act on every deadline that has passed by ``now``: Status wait, request timeouts, keep-alive.

        ``received``: the bytes received on the connection so far. A request past its deadline,
        while at least :data:`EXTENSION_MIN_BYTES` have arrived since it left (or since its last
        extension) and no request sent after it has been answered, is waiting for answers still
        coming down a thin link in order, not ignored: it gets another timeout, up to
        :data:`MAX_EXTENSION_FACTOR` timeouts after it left. One the peer skipped (a later request
        answered first) or that only pings and announcements passed is timed out as before;
        without ``received`` a deadline is final."""
        if self.phase is Phase.STATUS:
            if now >= self._status_deadline:
                self.connection_lost()
                return [StatusTimedOut(self.status_timeout)]
            return []
        if self.phase is not Phase.ACTIVE:
            return []
        events: list[Event] = []
        expired = []
        for rid, p in self._pending.items():
            if p.deadline > now:
                continue
            last = p.sent_at + MAX_EXTENSION_FACTOR * p.timeout
            if (
                received is not None
                and received - p.received_mark >= EXTENSION_MIN_BYTES
                and not p.overtaken
                and now < last
            ):
                p.received_mark = received
                p.deadline = min(now + p.timeout, last)
                continue
            expired.append(rid)
        for rid in expired:
            p = self._pending.pop(rid)
            self._expect_late(rid)
            self.counters.timeouts += 1
            events.append(RequestTimedOut(rid, p.kind, p.timeout))
        if self._pong_deadline is not None and now >= self._pong_deadline:
            assert self._ping_sent is not None
            if self._last_pong < self._ping_sent:
                self.connection_lost()
                events.append(PeerUnresponsive(self.pong_timeout))
                return events
            self._ping_at = self._pong_deadline + self.ping_interval
            self._pong_deadline = self._ping_sent = None
        if self._ping_at is not None and self._pong_deadline is None and now >= self._ping_at:
            self._ping_sent = now
            self._pong_deadline = now + self.pong_timeout
            self._ping_at = None
            events.append(PingDue())
        return events
