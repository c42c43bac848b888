"""The sans-IO inbound gate: per-address pending and session bounds and the connect throttle, `now` passed in."""

from __future__ import annotations

import pytest

from ethp2p.peers.admission import InboundGate, InboundLimits, PendingSlot, Refusal, address_key


def _gate(**kw: float | int) -> InboundGate:
    return InboundGate(InboundLimits(**{"max_pending": 10, **kw}))  # type: ignore[arg-type]


def test_one_address_gets_its_share_of_pending_handshakes_and_others_still_get_in() -> None:
    gate = _gate(max_pending_per_address=3)
    held = [gate.admit("127.0.0.2", 0.0) for _ in range(3)]
    assert all(isinstance(s, PendingSlot) for s in held)
    assert gate.admit("127.0.0.2", 0.0) is Refusal.PENDING_PER_ADDRESS
    assert isinstance(gate.admit("127.0.0.3", 0.0), PendingSlot)
    held[0].release()  # type: ignore[union-attr]
    held[0].release()  # type: ignore[union-attr]  # idempotent: counted once
    assert gate.pending == 3 and isinstance(gate.admit("127.0.0.2", 0.0), PendingSlot)


def test_all_pending_slots_are_bounded() -> None:
    gate = _gate(max_pending=2)
    assert isinstance(gate.admit("10.0.0.1", 0), PendingSlot) and isinstance(gate.admit("10.0.0.2", 0), PendingSlot)
    assert gate.admit("10.0.0.3", 0) is Refusal.PENDING_FULL


def test_repeat_connects_are_throttled_and_refill_with_time() -> None:
    gate = _gate(connect_burst=4, connect_rate=2.0)
    for _ in range(4):
        slot = gate.admit("127.0.0.1", 0.0)  # loopback is not exempt
        assert isinstance(slot, PendingSlot)
        slot.release()
    assert gate.admit("127.0.0.1", 0.1) is Refusal.THROTTLED
    assert isinstance(gate.admit("127.0.0.1", 0.6), PendingSlot)  # one token back after 0.5 s
    assert gate.admit("127.0.0.1", 0.6) is Refusal.THROTTLED
    assert isinstance(gate.admit("127.0.0.9", 0.6), PendingSlot)  # another address is unaffected


def test_sessions_per_address_are_bounded_when_a_handshake_is_promoted() -> None:
    gate = _gate(max_sessions_per_address=2)
    slots = [gate.admit("::ffff:127.0.0.5", 0.0) for _ in range(3)]
    sessions = [s.promote() for s in slots]  # type: ignore[union-attr]
    assert sessions[2] is None and gate.sessions == 2 and gate.pending == 1
    slots[2].release()  # type: ignore[union-attr]
    sessions[0].release()  # type: ignore[union-attr]
    sessions[0].release()  # type: ignore[union-attr]
    assert gate.sessions == 1 and gate.pending == 0
    with pytest.raises(RuntimeError):
        slots[0].promote()  # type: ignore[union-attr]


def test_the_address_table_is_bounded() -> None:
    gate = _gate(max_pending=2, max_addresses=2)
    held = gate.admit("10.0.0.1", 0)
    free = gate.admit("10.0.0.2", 0)
    assert isinstance(free, PendingSlot)
    free.release()
    assert isinstance(gate.admit("10.0.0.3", 0), PendingSlot)  # the idle entry was forgotten
    assert gate.tracked == 2 and isinstance(held, PendingSlot)


def test_addresses_are_counted_by_ipv4_or_ipv6_slash_64() -> None:
    assert address_key("::ffff:127.0.0.2") == "127.0.0.2"
    assert address_key("2001:db8::1") == address_key("2001:db8::ffff") == "2001:db8::/64"
    assert InboundLimits.for_inbound(1).max_pending_per_address == 2
    with pytest.raises(ValueError):
        InboundLimits(max_pending=0)
