"""The sans-IO eth session core, driven without sockets: time is a number passed in.

Two :class:`EthSession` objects talk to each other through their queues (what one sends is what
the other receives), or one session is fed hand-made and vector messages (geth's eth message
vectors, the Status rules of ``eth/status.py``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from ethp2p.eth import codec
from ethp2p.eth import messages as m
from ethp2p.eth import session as s
from ethp2p.eth.chainspec import MAINNET, SEPOLIA
from ethp2p.eth.forkid import ForkId
from ethp2p.eth.session import ChainHead, EthSession, Phase
from ethp2p.eth.status import make_status
from ethp2p.faults import FaultKind
from tests.conftest import load_vector

GETH = load_vector("eth/geth_protocol_messages.json")
#: A synced mainnet peer's head (block and time well past every scheduled fork).
SYNCED = ChainHead(23_000_000, b"\x33" * 32, 2_000_000_000, MAINNET.genesis_difficulty, 0)
T0 = 1000.0


def _vector(go_type: str) -> bytes:
    return bytes.fromhex(next(v["rlp"] for v in GETH["messages"] if v["go_type"] == go_type))


def _peer_status(at: int = 69, **change: object) -> m.Status:
    """A synced mainnet peer's Status at eth/``at``, with ``change`` applied."""
    ours = make_status(MAINNET, at, head_number=SYNCED.number, head_hash=SYNCED.hash, head_time=SYNCED.timestamp)
    return dataclasses.replace(ours, **change)  # type: ignore[arg-type]


def _feed(session: EthSession, msg: m.Message, now: float = T0, version: int | None = None) -> list[s.Event]:
    code, payload = codec.encode_message(msg, version or session.version)
    return session.receive_message(code, payload, now)


def _fresh(version: int = 69, **kw: object) -> EthSession:
    """Our fresh mainnet node's session, its Status already taken off the queue."""
    session = EthSession(MAINNET, version, T0, **kw)  # type: ignore[arg-type]
    [(code, payload)] = session.messages_to_send()
    assert code == m.STATUS_CODE and codec.decode_message(code, payload, version) == session.our_status
    return session


def _active(version: int = 69, **kw: object) -> EthSession:
    session = _fresh(version, **kw)
    [ev] = _feed(session, _peer_status(version))
    assert isinstance(ev, s.StatusExchanged) and session.active
    return session


def _pump(sender: EthSession, receiver: EthSession, now: float) -> list[s.Event]:
    """Deliver everything ``sender`` queued to ``receiver``; the events it produced."""
    events: list[s.Event] = []
    for code, payload in sender.messages_to_send():
        events += receiver.receive_message(code, payload, now)
    return events


def _pair(version: int) -> tuple[EthSession, EthSession]:
    """Two fresh mainnet nodes' sessions after their Status exchange."""
    a, b = EthSession(MAINNET, version, T0), EthSession(MAINNET, version, T0)
    assert [type(e) for e in _pump(a, b, T0)] == [s.StatusExchanged]
    assert [type(e) for e in _pump(b, a, T0)] == [s.StatusExchanged]
    return a, b


# ---- the Status handshake --------------------------------------------------------------------


@pytest.mark.parametrize("version", [68, 69, 70])
def test_two_sessions_exchange_status_and_a_request(version: int) -> None:
    a, b = _pair(version)
    assert a.peer_status == b.our_status and b.peer_status == a.our_status
    rid = a.request(lambda i: m.GetBlockHeaders(i, 0, 1), T0 + 1)
    [got] = _pump(a, b, T0 + 1)
    assert isinstance(got, s.RequestReceived) and got.request == m.GetBlockHeaders(rid, 0, 1)
    b.send(m.BlockHeaders(rid, [b"\xc0"]))
    [answer] = _pump(b, a, T0 + 1.25)
    assert isinstance(answer, s.ResponseReceived) and answer.request_id == rid and answer.rtt == 0.25
    assert b.counters.requests_served == 1 and b.counters.served_by_kind == {"headers": 1}
    assert a.counters.requests_sent == 1 and a.counters.responses == 1 and a.pending == 0


def test_status_forms_eth68_and_eth69_70() -> None:
    """eth/68 sends total difficulty and has no block range; eth/69 and 70 announce (earliest, latest)."""
    s68 = _fresh(68)
    assert isinstance(s68.our_status, m.StatusV68) and s68.our_status.total_difficulty == MAINNET.genesis_difficulty
    _feed(s68, _peer_status(68))
    assert s68.block_range is None
    for version in (69, 70):
        session = _fresh(version, head=ChainHead(0, MAINNET.genesis_hash, MAINNET.genesis_timestamp, 0, 0))
        assert isinstance(session.our_status, m.StatusV69) and session.our_status.version == version
        _feed(session, _peer_status(version, earliest_block=100, latest_block=SYNCED.number))
        assert session.block_range == (100, SYNCED.number)


@pytest.mark.parametrize(
    ("change", "kind"),
    [
        ({"network_id": 5}, "network"),
        ({"genesis_hash": b"\x00" * 32}, "genesis"),
        ({"fork_id": ForkId(b"\xde\xad\xbe\xef", 0)}, "forkid"),
        ({"version": 70}, "version"),
        ({"earliest_block": 10, "latest_block": 5}, "range"),
    ],
)
def test_status_mismatch_ends_the_session(change: dict[str, object], kind: str) -> None:
    session = _fresh(69)
    [ev] = _feed(session, _peer_status(69, **change))
    assert isinstance(ev, s.StatusRejected) and ev.mismatch.kind == kind
    assert session.phase is Phase.CLOSED and session.peer_status is None and session.next_deadline() is None
    assert _feed(session, _peer_status(69)) == []  # a closed session takes no more input


def test_status_of_another_network_is_rejected() -> None:
    session = _fresh(69)
    other = make_status(SEPOLIA, 69)
    [ev] = _feed(session, other)
    assert isinstance(ev, s.StatusRejected) and ev.mismatch.kind == "network"


def test_status_in_the_wrong_form_for_the_version_is_a_breach() -> None:
    """An eth/68 Status (six fields, with total difficulty) where eth/69 was negotiated does not decode."""
    session = _fresh(69)
    code, payload = codec.encode_message(_peer_status(68), 68)
    [ev] = session.receive_message(code, payload, T0)
    assert isinstance(ev, s.FaultDetected) and ev.kind is FaultKind.BREACH and "expected 7 fields" in ev.message


def test_other_message_before_status_is_a_breach() -> None:
    session = _fresh(69)
    [ev] = session.receive_message(m.GET_BLOCK_HEADERS_CODE, _vector("GetBlockHeadersPacket"), T0)
    assert isinstance(ev, s.FaultDetected) and ev.kind is FaultKind.BREACH and "expected Status" in ev.message
    assert session.phase is Phase.CLOSED


def test_undecodable_status_is_a_breach() -> None:
    session = _fresh(69)
    [ev] = session.receive_message(m.STATUS_CODE, b"\xc3\x01\x02", T0)
    assert isinstance(ev, s.FaultDetected) and ev.kind is FaultKind.BREACH and ev.message.startswith("bad Status:")


def test_no_status_in_time_ends_the_session() -> None:
    session = _fresh(69, status_timeout=10.0)
    assert session.next_deadline() == T0 + 10
    assert session.handle_timer(T0 + 9.99) == []
    [ev] = session.handle_timer(T0 + 10)
    assert ev == s.StatusTimedOut(10.0) and session.phase is Phase.CLOSED


def test_rewritten_status_is_sent_and_the_peers_is_not_checked() -> None:
    """The test adversaries' hook: our Status rewritten (a foreign genesis), theirs taken as it is."""
    session = _fresh(69, status_rewrite=lambda st: dataclasses.replace(st, genesis_hash=b"\x66" * 32))
    assert session.our_status.genesis_hash == b"\x66" * 32
    [ev] = _feed(session, _peer_status(69, network_id=5))
    assert isinstance(ev, s.StatusExchanged)


# ---- requests and responses ------------------------------------------------------------------


def test_geth_vector_answers_are_matched_by_request_id() -> None:
    """geth's BlockHeaders/BlockBodies/Receipts vectors all carry request id 1111."""
    cases: list[tuple[Callable[[int], s.Request], int, str]] = [
        (lambda i: m.GetBlockHeaders(i, 0, 5), m.BLOCK_HEADERS_CODE, "BlockHeadersPacket"),
        (lambda i: m.GetBlockBodies(i, [b"\x00" * 32]), m.BLOCK_BODIES_CODE, "BlockBodiesPacket"),
        (lambda i: m.GetReceipts(i, [b"\x00" * 32]), m.RECEIPTS_CODE, "ReceiptsPacket[*ReceiptList69]"),
    ]
    for make, code, go_type in cases:
        session = _active(69, first_request_id=1111)
        assert session.request(make, T0) == 1111
        [ev] = session.receive_message(code, _vector(go_type), T0 + 0.5)
        assert isinstance(ev, s.ResponseReceived) and ev.request_id == 1111 and ev.rtt == 0.5
        assert session.pending == 0 and session.counters.responses == 1


def test_request_ids_count_up_and_wrap_at_64_bits() -> None:
    session = _active(first_request_id=2**64 - 1)
    ids = [session.request(lambda i: m.GetBlockBodies(i, []), T0) for _ in range(3)]
    assert ids == [2**64 - 1, 0, 1] and session.pending == 3
    sent = [codec.decode_message(c, p, 69) for c, p in session.messages_to_send()]
    assert [x.request_id for x in sent] == ids  # type: ignore[union-attr]


def test_answer_to_no_request_is_unsolicited() -> None:
    session = _active()
    [ev] = session.receive_message(m.BLOCK_HEADERS_CODE, _vector("BlockHeadersPacket"), T0)
    assert ev == s.UnsolicitedResponse(1111) and session.counters.unsolicited == 1


def test_second_answer_to_one_request_is_unsolicited() -> None:
    session = _active(first_request_id=1111)
    session.request(lambda i: m.GetBlockHeaders(i, 0, 5), T0)
    first = session.receive_message(m.BLOCK_HEADERS_CODE, _vector("BlockHeadersPacket"), T0)
    again = session.receive_message(m.BLOCK_HEADERS_CODE, _vector("BlockHeadersPacket"), T0)
    assert isinstance(first[0], s.ResponseReceived) and again == [s.UnsolicitedResponse(1111)]
    assert session.counters.responses == 1 and session.counters.unsolicited == 1


def test_unsolicited_answers_end_the_session_at_the_third() -> None:
    session = _active(first_request_id=1111)
    rid = session.request(lambda i: m.GetBlockHeaders(i, 0, 5), T0)
    answer = _vector("BlockHeadersPacket")  # an answer to request 1111
    assert isinstance(session.receive_message(m.BLOCK_HEADERS_CODE, answer, T0)[0], s.ResponseReceived)
    codes = (m.BLOCK_HEADERS_CODE, m.BLOCK_BODIES_CODE, m.RECEIPTS_CODE)
    first = session.receive_message(codes[1], codec.encode_message(m.BlockBodies(rid, []), 69)[1], T0)
    second = session.receive_message(codes[2], codec.encode_message(m.Receipts(7, []), 69)[1], T0)
    assert first == [s.UnsolicitedResponse(rid)] and second == [s.UnsolicitedResponse(7)] and session.active
    [third] = session.receive_message(codes[0], codec.encode_message(m.BlockHeaders(2**64 - 1, []), 69)[1], T0)
    assert isinstance(third, s.FaultDetected) and third.kind is FaultKind.UNSOLICITED
    assert third.message.startswith(f"{s.MAX_UNSOLICITED} unsolicited answers") and not session.active
    assert session.counters.unsolicited == 3


@pytest.mark.parametrize("code", [m.BLOCK_HEADERS_CODE, m.BLOCK_BODIES_CODE, m.RECEIPTS_CODE])
def test_an_unsolicited_answer_is_rejected_on_its_request_id_without_decoding(code: int) -> None:
    """Everything after the request id is junk a full decode would refuse (a bad-message fault that
    ends the session): it is never looked at."""
    session = _active()
    junk_body = b"\xb8\x02\x00"  # a long-form string header for 2 bytes: not canonical RLP
    payload = b"\xc8" + b"\x82\x04\xd2" + junk_body + b"\x00\x00"
    assert session.receive_message(code, payload, T0) == [s.UnsolicitedResponse(1234)] and session.active
    # A pending request's answer is decoded in full, and the same junk is then a fault.
    rid = session.request(lambda i: m.GetBlockHeaders(i, 0, 1), T0)
    assert rid == 0
    [ev] = session.receive_message(code, b"\xc6\x80" + junk_body + b"\x00\x00", T0)
    assert isinstance(ev, s.FaultDetected) and ev.kind is FaultKind.BAD_MESSAGE


def test_late_answers_are_remembered_for_the_newest_ids_only() -> None:
    session = _active(request_timeout=1.0)
    rids = [session.request(lambda i: m.GetBlockHeaders(i, 0, 1), T0) for _ in range(s.MAX_LATE_IDS + 1)]
    assert len(session.handle_timer(T0 + 2)) == len(rids)
    assert _feed(session, m.BlockHeaders(rids[-1], []), T0 + 3) == [s.LateResponse(rids[-1])]
    assert _feed(session, m.BlockHeaders(rids[0], []), T0 + 3) == [s.UnsolicitedResponse(rids[0])]


def test_answer_of_the_wrong_type_fails_the_request() -> None:
    session = _active(first_request_id=1111)
    session.request(lambda i: m.GetBlockBodies(i, [b"\x00" * 32]), T0)
    [ev] = session.receive_message(m.BLOCK_HEADERS_CODE, _vector("BlockHeadersPacket"), T0)
    assert isinstance(ev, s.ResponseRejected) and ev.kind is FaultKind.BAD_MESSAGE and ev.request_id == 1111
    assert "BlockBodies request with BlockHeaders" in ev.message and session.active and session.pending == 0


@pytest.mark.parametrize("asked", [0, 1, 2])
def test_more_items_than_asked_fails_the_request(asked: int) -> None:
    session = _active()
    rid = session.request(lambda i: m.GetBlockHeaders(i, 0, asked), T0)
    [ev] = _feed(session, m.BlockHeaders(rid, [b"\xc0"] * (asked + 1)))
    assert isinstance(ev, s.ResponseRejected) and ev.kind is FaultKind.TOO_MANY_ITEMS
    assert ev.message == f"sent {asked + 1} items, asked for at most {asked}" and session.active


def test_exactly_as_many_items_as_asked_is_fine() -> None:
    session = _active()
    rid = session.request(lambda i: m.GetBlockBodies(i, [b"\x01" * 32, b"\x02" * 32]), T0)
    [ev] = _feed(session, m.BlockBodies(rid, [b"\xc2\xc0\xc0"] * 2))
    assert isinstance(ev, s.ResponseReceived)


def test_cancelled_request_answer_is_late_not_unsolicited() -> None:
    session = _active()
    rid = session.request(lambda i: m.GetBlockHeaders(i, 0, 1), T0)
    session.cancel_request(rid)
    assert _feed(session, m.BlockHeaders(rid, [])) == [s.LateResponse(rid)]
    assert session.counters.late == 1 and session.counters.unsolicited == 0


# ---- timeouts and the round-trip estimate ------------------------------------------------------


def test_request_times_out_from_now() -> None:
    session = _active(request_timeout=4.0)
    rid = session.request(lambda i: m.GetBlockHeaders(i, 0, 1), T0 + 1)
    assert session.next_deadline() == T0 + 5
    assert session.handle_timer(T0 + 4.99) == []
    [ev] = session.handle_timer(T0 + 5)
    assert ev == s.RequestTimedOut(rid, "headers", 4.0) and session.counters.timeouts == 1 and session.pending == 0
    # The late answer is dropped, no fault; a second one to the same id is unsolicited.
    assert _feed(session, m.BlockHeaders(rid, []), T0 + 6) == [s.LateResponse(rid)]
    assert _feed(session, m.BlockHeaders(rid, []), T0 + 6) == [s.UnsolicitedResponse(rid)]


def test_timeout_and_round_trip_count_from_when_the_request_left() -> None:
    """Time a request spends queued behind a full socket buffer is not the peer's."""
    session = _active(request_timeout=4.0)
    rid = session.request(lambda i: m.GetBlockHeaders(i, 0, 1), T0)
    session.request_sent(rid, T0 + 3)  # the driver got it out 3 s later
    assert session.next_deadline() == T0 + 7 and session.handle_timer(T0 + 5) == []
    [ev] = _feed(session, m.BlockHeaders(rid, []), T0 + 3.5)
    assert isinstance(ev, s.ResponseReceived) and ev.rtt == pytest.approx(0.5)
    session.request_sent(rid, T0 + 9)  # no longer pending: nothing happens
    assert session.pending == 0


def test_a_request_behind_answers_still_arriving_gets_more_time_up_to_a_cap() -> None:
    """On a thin link an answer queued behind others arrives late while bytes keep coming: its
    deadline moves on as long as the connection received enough bytes since the last one, never
    past MAX_EXTENSION_FACTOR timeouts after it left; a peer that sends nothing (or only a few bytes
    of pings), or that answered a later request first, gets no more time."""
    session = _active(request_timeout=4.0)
    rid = session.request(lambda i: m.GetBlockBodies(i, [b"\x01" * 32]), T0)
    session.request_sent(rid, T0, received=1000)
    assert session.handle_timer(T0 + 4, received=50_000) == []  # bytes came: another 4 s
    assert session.next_deadline() == T0 + 8
    assert session.handle_timer(T0 + 8, received=90_000) == []
    [ev] = session.handle_timer(T0 + 12, received=90_100)  # only a ping's worth since T0 + 8: timed out
    assert ev == s.RequestTimedOut(rid, "bodies", 4.0)
    # A peer trickling bytes forever: extended until 8 timeouts (32 s) after the request left.
    session = _active(request_timeout=4.0)
    rid = session.request(lambda i: m.GetBlockBodies(i, [b"\x01" * 32]), T0)
    session.request_sent(rid, T0, received=0)
    now, received = T0, 0
    events: list[s.Event] = []
    while not events:
        assert now <= T0 + s.MAX_EXTENSION_FACTOR * 4.0
        deadline = session.next_deadline()
        assert deadline is not None
        now, received = deadline, received + s.EXTENSION_MIN_BYTES
        events = [e for e in session.handle_timer(now, received=received) if not isinstance(e, s.PingDue)]
    assert now == T0 + s.MAX_EXTENSION_FACTOR * 4.0 and events == [s.RequestTimedOut(rid, "bodies", 4.0)]
    # A request the peer skipped (it answered one sent later) times out although bytes flow.
    session = _active(request_timeout=4.0)
    skipped = session.request(lambda i: m.GetReceipts(i, [b"\x01" * 32]), T0)
    session.request_sent(skipped, T0, received=0)
    later = session.request(lambda i: m.GetBlockBodies(i, [b"\x01" * 32]), T0 + 1)
    session.request_sent(later, T0 + 1, received=0)
    assert isinstance(_feed(session, m.BlockBodies(later, []), T0 + 2)[0], s.ResponseReceived)
    assert session.handle_timer(T0 + 4, received=1_000_000) == [s.RequestTimedOut(skipped, "receipts", 4.0)]
    # Without the byte count (a driver that does not give it) a deadline is final, as before.
    session = _active(request_timeout=4.0)
    rid = session.request(lambda i: m.GetBlockBodies(i, [b"\x01" * 32]), T0)
    assert session.handle_timer(T0 + 4) == [s.RequestTimedOut(rid, "bodies", 4.0)]


def test_explicit_timeout_overrides_the_adaptive_one() -> None:
    session = _active()
    rid = session.request(lambda i: m.GetReceipts(i, []), T0, timeout=0.5)
    pending = session.pending_request(rid)
    assert pending is not None and pending.deadline == T0 + 0.5 and pending.kind == "receipts"


def test_several_requests_time_out_each_at_its_deadline() -> None:
    session = _active(request_timeout=4.0)
    r1 = session.request(lambda i: m.GetBlockHeaders(i, 0, 1), T0)
    r2 = session.request(lambda i: m.GetBlockHeaders(i, 0, 1), T0 + 2)
    assert session.next_deadline() == T0 + 4
    assert [e.request_id for e in session.handle_timer(T0 + 4)] == [r1]  # type: ignore[union-attr]
    assert session.next_deadline() == T0 + 6
    assert [e.request_id for e in session.handle_timer(T0 + 6)] == [r2]  # type: ignore[union-attr]


def _answer_after(session: EthSession, now: float, rtt: float) -> None:
    rid = session.request(lambda i: m.GetBlockHeaders(i, 0, 1), now)
    [ev] = _feed(session, m.BlockHeaders(rid, []), now + rtt)
    assert isinstance(ev, s.ResponseReceived) and ev.rtt == pytest.approx(rtt)


def test_rtt_estimate_follows_rfc6298() -> None:
    session = _active()
    assert session.srtt is None and session.current_timeout() == 4.0  # no samples: the default
    _answer_after(session, T0, 0.4)
    assert session.srtt == pytest.approx(0.4) and session.rttvar == pytest.approx(0.2)
    _answer_after(session, T0 + 1, 0.8)
    assert session.rttvar == pytest.approx(0.75 * 0.2 + 0.25 * 0.4)
    assert session.srtt == pytest.approx(0.875 * 0.4 + 0.125 * 0.8)


def test_adaptive_timeout_has_a_floor_and_a_cap_and_is_used_for_new_requests() -> None:
    session = _active(request_timeout=4.0)
    for k in range(5):
        _answer_after(session, T0 + k, 0.01)
    assert session.current_timeout() == 2.0  # fast peer: the floor min(4 s, 2 s)
    _answer_after(session, T0 + 10, 1.0)
    estimate = 3.0 * (session.srtt + 4.0 * session.rttvar)  # type: ignore[operator]
    assert 2.0 < estimate < 8.0 and session.current_timeout() == pytest.approx(estimate)
    rid = session.request(lambda i: m.GetBlockHeaders(i, 0, 1), T0 + 20)
    assert session.pending_request(rid).deadline == pytest.approx(T0 + 20 + estimate)  # type: ignore[union-attr]
    for k in range(3):
        _answer_after(session, T0 + 30 + k * 20, 10.0)
    assert session.current_timeout() == 8.0  # slow peer: the cap 2 x 4 s


# ---- keep-alive ----------------------------------------------------------------------------------


def test_ping_is_due_after_the_interval_and_a_pong_keeps_the_session() -> None:
    session = _active(ping_interval=15.0, pong_timeout=20.0)
    assert session.next_deadline() == T0 + 15
    assert session.handle_timer(T0 + 14) == []
    assert session.handle_timer(T0 + 15) == [s.PingDue()]
    assert session.next_deadline() == T0 + 35
    session.pong_received(T0 + 15.1)
    assert session.handle_timer(T0 + 35) == [] and session.active
    assert session.next_deadline() == T0 + 50  # the next Ping
    assert session.handle_timer(T0 + 50) == [s.PingDue()]


def test_no_pong_in_time_makes_the_peer_unresponsive() -> None:
    session = _active(ping_interval=15.0, pong_timeout=20.0)
    session.pong_received(T0 + 5)  # a Pong before the Ping does not count
    assert session.handle_timer(T0 + 15) == [s.PingDue()]
    assert session.handle_timer(T0 + 34.9) == []
    assert session.handle_timer(T0 + 35) == [s.PeerUnresponsive(20.0)]
    assert session.phase is Phase.CLOSED and session.next_deadline() is None


def test_request_deadline_comes_before_the_ping() -> None:
    session = _active(ping_interval=15.0)
    session.request(lambda i: m.GetBlockHeaders(i, 0, 1), T0, timeout=3.0)
    assert session.next_deadline() == T0 + 3


# ---- other messages ------------------------------------------------------------------------------


def test_undecodable_message_is_bad_message_and_ends_the_session() -> None:
    session = _active()
    session.request(lambda i: m.GetBlockHeaders(i, 0, 1), T0)
    [ev] = session.receive_message(m.BLOCK_HEADERS_CODE, b"\xff\x00", T0)
    assert isinstance(ev, s.FaultDetected) and ev.kind is FaultKind.BAD_MESSAGE
    assert session.phase is Phase.CLOSED and session.pending == 0
    with pytest.raises(RuntimeError):
        session.request(lambda i: m.GetBlockHeaders(i, 0, 1), T0)


def test_second_status_is_a_breach() -> None:
    session = _active()
    [ev] = _feed(session, _peer_status(69))
    assert ev == s.FaultDetected(FaultKind.BREACH, "Status sent twice")


def test_block_range_update() -> None:
    session = _active()
    assert _feed(session, m.BlockRangeUpdate(5, 500, b"\x01" * 32)) == [] and session.block_range == (5, 500)
    [ev] = _feed(session, m.BlockRangeUpdate(9, 8, b"\x01" * 32))
    assert isinstance(ev, s.FaultDetected) and ev.kind is FaultKind.BREACH and session.block_range == (5, 500)


def test_pooled_transaction_request_gets_an_empty_answer() -> None:
    session = _active()
    assert _feed(session, m.GetPooledTransactions(7, [b"\x01" * 32])) == []
    [(code, payload)] = session.messages_to_send()
    assert codec.decode_message(code, payload, 69) == m.PooledTransactions(7, [])


def test_announcements_are_counted_and_ignored() -> None:
    session = _active()
    assert session.receive_message(m.POOLED_TRANSACTIONS_CODE, _vector("PooledTransactionsPacket"), T0) == []
    assert session.receive_message(m.NEW_BLOCK_HASHES_CODE, b"\xc0", T0) == []
    assert session.counters.ignored_announcements == 2 and not session.has_messages_to_send


def test_requests_from_the_peer_are_counted_by_kind() -> None:
    session = _active(70)
    asks = [("GetBlockHeadersPacket", m.GET_BLOCK_HEADERS_CODE), ("GetBlockBodiesPacket", m.GET_BLOCK_BODIES_CODE)]
    for go_type, code in asks:
        [ev] = session.receive_message(code, _vector(go_type), T0)
        assert isinstance(ev, s.RequestReceived) and ev.request.request_id == 1111
    _feed(session, m.GetReceipts(3, [b"\x01" * 32], 2))
    assert session.counters.served_by_kind == {"headers": 1, "bodies": 1, "receipts": 1}


def test_connection_lost_closes_and_drops_pending_requests() -> None:
    session = _active()
    session.request(lambda i: m.GetBlockHeaders(i, 0, 1), T0)
    session.connection_lost()
    assert session.phase is Phase.CLOSED and session.pending == 0 and session.next_deadline() is None
    assert session.handle_timer(T0 + 100) == []
    with pytest.raises(RuntimeError):
        session.send(m.BlockRangeUpdate(0, 1, b"\x00" * 32))
