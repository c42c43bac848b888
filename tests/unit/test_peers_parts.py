"""Peer-layer parts on their own: limits, reputation and back-off, the peer cache, the pool."""

from __future__ import annotations

import pytest

from ethp2p.crypto.keys import PrivateKey
from ethp2p.faults import FaultKind
from ethp2p.peers.limits import P2pLimits, p2p_limits
from ethp2p.peers.pool import PeerPool
from ethp2p.peers.reputation import BANNED_REPUTATION, PENALTIES, UNIT, Reputation
from ethp2p.store.peers import PeerCache, StoredPeer, now_ms, parse_addr


def test_limits_defaults_and_overrides() -> None:
    d = p2p_limits()
    assert (d.request_timeout, d.max_headers_per_request, d.max_outbound, d.max_inbound) == (4.0, 1024, 400, 200)
    assert (d.max_concurrent_dials, d.peer_refill_interval, d.peer_cache_max, d.peer_start_warmup) == (
        200,
        0.5,
        5000,
        2.0,
    )
    assert d.peer_cache_ttl_ms == 7 * 24 * 3600 * 1000 and d.max_concurrent_probes == 24
    assert p2p_limits(max_outbound=3).max_outbound == 3
    with pytest.raises(TypeError, match="unknown"):
        p2p_limits(max_outbund=3)
    with pytest.raises(ValueError):
        P2pLimits(request_timeout=-1)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_penalty_table_covers_every_fault_kind() -> None:
    """Every FaultKind has a penalty, nothing else has one, and only the enum is accepted."""
    assert set(PENALTIES) == set(FaultKind)
    assert PENALTIES[FaultKind.BODY] == 16 * UNIT and PENALTIES[FaultKind.BREACH] == BANNED_REPUTATION
    with pytest.raises(TypeError, match="FaultKind"):
        Reputation().penalize(b"\x01" * 64, "bodies")  # type: ignore[arg-type]


def test_reputation_bans_and_backoff() -> None:
    clock = Clock()
    rep = Reputation(ban_duration=60, backoff_base=5, backoff_max=40, clock=clock)
    pid = b"\x01" * 64
    for _ in range(3):
        assert not rep.penalize(pid, FaultKind.HEADERS)
    assert rep.penalize(pid, FaultKind.HEADERS)  # 4 x 16 units passes the 50-unit line
    assert rep.score(pid) <= BANNED_REPUTATION and rep.is_banned(pid) and not rep.may_dial(pid)
    clock.t += 61
    assert not rep.is_banned(pid)
    assert rep.penalize(b"\x02" * 64, FaultKind.BREACH)  # breaches ban at once
    other = b"\x03" * 64
    delays = []
    for _ in range(5):
        rep.dial_failed(other)
        start = clock.t
        while not rep.may_dial(other):
            clock.t += 1
        delays.append(clock.t - start)
    assert delays == [5, 10, 20, 40, 40]  # exponential, capped
    rep.dial_failed(b"\x04" * 64, useless=True)
    clock.t += 10_000
    assert not rep.may_dial(b"\x04" * 64)  # useless peers are never redialled


def test_peer_cache_merge_ttl_cap_and_corruption(tmp_path) -> None:
    path = tmp_path / "p.db"
    cache = PeerCache(path)
    ids = [PrivateKey.generate().public_key.to_bytes() for _ in range(6)]
    now = now_ms()
    for i, pid in enumerate(ids):
        cache.upsert_peer(StoredPeer(pid, f"127.0.0.{i + 1}:30303", None, now - i * 1000))
    cache.upsert_peer(StoredPeer(ids[0], None, "127.0.0.1:30301", now - 5, 77))  # merged, not replaced
    assert cache.flush() == 6
    cache._db.execute("INSERT INTO peers VALUES (?, ?, NULL, ?, NULL)", (b"junk", "x", now))  # noqa: SLF001
    loaded = cache.load_peers(expire_before_ms=now - 3500, max_peers=2)
    assert (loaded.total, loaded.corrupted, loaded.expired, loaded.capped) == (7, 1, 2, 2)
    assert [p.peer_id for p in loaded.peers] == ids[:2]  # most recent first
    first = loaded.peers[0]
    assert (first.tcp_addr, first.udp_addr, first.aimd_batch_limit) == ("127.0.0.1:30303", "127.0.0.1:30301", 77)
    cache.close()
    assert PeerCache(path).count() == 4  # expired and corrupted rows were removed


def test_parse_addr() -> None:
    assert parse_addr("[::1]:30303") == ("::1", 30303)
    for bad in ("localhost:1", "1.2.3.4", "1.2.3.4:0", "1.2.3.4:70000"):
        with pytest.raises(ValueError):
            parse_addr(bad)


class FakePeer:
    """Stands in for a NetworkPeer in pool bookkeeping (no session needed for these methods)."""

    def __init__(self, pid: bytes, direction: str = "outbound") -> None:
        self.peer_id = pid
        self.direction = direction
        self.head_number = None
        self.head_hash = None


def test_pool_bookkeeping() -> None:
    pool = PeerPool()
    a, b = FakePeer(b"a" * 64), FakePeer(b"b" * 64, "inbound")
    assert pool.add_peer(a) and pool.add_peer(b)  # type: ignore[arg-type]
    assert not pool.add_peer(FakePeer(b"a" * 64))  # type: ignore[arg-type]
    assert len(pool) == 2 and pool.count("inbound") == 1
    assert pool.get_peer_head(a.peer_id) is None
    assert pool.update_peer_head(a.peer_id, 42, b"\x01" * 32) and pool.get_peer_head(a.peer_id) == 42
    snap = pool.snapshot()
    pool.remove_peer(a.peer_id)
    assert len(snap) == 2 and len(pool) == 1
    assert not pool.update_peer_head(a.peer_id, 43)
