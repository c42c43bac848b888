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
