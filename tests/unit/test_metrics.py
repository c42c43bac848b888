"""The metrics' building blocks: address parsing, bounded labels for hostile client ids, monotonic counters."""

from __future__ import annotations

import pytest
from prometheus_client import Counter, generate_latest

from ethp2p.metrics import BoundedLabels, FetchMetrics, MetricsAddressError, client_name, parse_address


def test_addresses() -> None:
    assert parse_address("127.0.0.1:9109") == ("127.0.0.1", 9109)
    assert parse_address("[::1]:9109") == ("::1", 9109)
    for bad in ("9109", "host:", ":9109", ":99999", "abc:def", "h:0", "h:-1", ""):
        with pytest.raises(MetricsAddressError, match="HOST:PORT"):
            parse_address(bad)


def test_client_labels_stay_bounded_whatever_peers_call_themselves() -> None:
    labels = BoundedLabels(("geth",), extra=2)
    assert labels(client_name("Geth/v1.14.0-stable/linux-amd64/go1.22")) == "geth"
    assert labels("Foo") == "foo" and labels("bar") == "bar"
    assert labels("baz") == "other"  # the extra slots are taken
    assert labels("foo") == "foo" and labels("geth") == "geth"  # admitted names keep theirs
    fresh = BoundedLabels(extra=5)
    for hostile in ("", "x" * 33, 'a"b', "a\nb", "other", "ünïcode", "-lead"):
        assert fresh(hostile) == "other", hostile
    many = {labels(f"client{i}") for i in range(10_000)} | {labels("geth"), labels("foo"), labels("bar")}
    assert many == {"geth", "foo", "bar", "other"}


def test_counters_follow_running_totals_and_never_go_down() -> None:
    m = FetchMetrics()
    c = Counter("t", "test", ["kind"], registry=m.registry)
    m._advance_by_label(c, {"a": 2, "b": 1}, BoundedLabels(extra=1))
    m._advance_by_label(c, {"a": 5, "b": 3}, BoundedLabels(extra=1))
    m._advance(m.received, 10)
    m._advance(m.received, 7)  # a dip (a session moving from live to ended) adds nothing
    m._advance(m.received, 12)
    text = generate_latest(m.registry).decode()
    assert 't_total{kind="a"} 5.0' in text and 't_total{kind="other"} 3.0' in text
    assert "ethp2p_received_bytes_total 12.0" in text


def test_inbound_refusals_are_counted_by_reason_with_bounded_labels() -> None:
    """Each way the listener refuses a connection has its label; a serving node's metrics count them
    by it (the server's stop line too: tests/integration/hostile/test_inbound_slots.py). The server
    here is a stand-in holding only what ``ServeMetrics.update`` reads; the events are the listener's."""
    from types import SimpleNamespace

    from ethp2p.metrics import ServeMetrics
    from ethp2p.peers.admission import Refusal
    from ethp2p.peers.listener import REFUSALS, InboundDropped, InboundFailed, InboundRefused, refusal_label
    from ethp2p.serve.server import ServerStats
    from ethp2p.transport.stream import TransportError

    assert refusal_label(InboundDropped(Refusal.THROTTLED)) == "throttled"
    assert refusal_label(InboundRefused(told=True)) == "sessions_full"
    assert refusal_label(InboundRefused(told=True, per_address=True)) == "address_sessions_full"
    assert refusal_label(InboundRefused(told=False)) is None  # the handshake failed before it was told
    assert refusal_label(InboundFailed(TransportError("x"))) is None
    assert set(REFUSALS) == {r.name.lower() for r in Refusal} | {"sessions_full", "address_sessions_full"}
    stats = ServerStats(rejected_full=7, refused={"throttled": 5, "pending_per_address": 2}, handshake_failures=3)
    server = SimpleNamespace(
        discovery=None, peers=set(), stats=stats, requests_served=lambda: {}, traffic=lambda: (0, 0)
    )
    m = ServeMetrics()
    m.update(server)  # type: ignore[arg-type]
    text = generate_latest(m.registry).decode()
    assert 'ethp2p_inbound_refused_total{reason="throttled"} 5.0' in text
    assert 'ethp2p_inbound_refused_total{reason="pending_per_address"} 2.0' in text
    assert "ethp2p_inbound_handshake_failures_total 3.0" in text and "ethp2p_rejected_full_total 7.0" in text
