"""discover_head_p2p proves the head by fetching linked headers; a lying Status is ignored."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ethp2p.chain.genesis import load_genesis
from ethp2p.eth.messages import StatusV69
from ethp2p.fetch import discover_head_p2p, re_probe_peer_head
from ethp2p.peers.limits import p2p_limits
from ethp2p.peers.network import PeerNetwork
from tests.support.longchain import build_long_chain
from tests.support.servers import ETHTEST_GENESIS, ethtest_store, start_servers

SPEC = load_genesis(ETHTEST_GENESIS)
NET = ["--genesis", str(ETHTEST_GENESIS)]


async def _heads_probed(net: PeerNetwork, n: int) -> None:
    """Until ``n`` peers' joining probes (the header of their Status best hash) have set their heads
    (a guard against hanging, not a speed check)."""
    async with asyncio.timeout(20):
        while sum(net.pool.get_peer_head(p.peer_id) is not None for p in net.pool.snapshot()) < n:
            await asyncio.sleep(0.05)


async def test_head_is_proven_by_headers_not_status(tmp_path: Path) -> None:
    store = ethtest_store(tmp_path / "e.db")
    honest = start_servers(2, store, tmp_path, network_args=NET)
    liar = start_servers(1, store, tmp_path, network_args=NET, extra=["--misbehave", "lying-head"])
    try:
        async with PeerNetwork(SPEC, limits=p2p_limits(peer_start_warmup=0)) as net:
            net.add_candidates([s.enode for s in honest + liar])
            await net.wait_for_peers(3, timeout=20)
            await _heads_probed(net, 2)  # the two honest ones (the liar's best hash is made up)
            liar_id = bytes.fromhex(liar[0].enode[8:136])
            liar_peer = net.pool.get(liar_id)
            assert liar_peer is not None and isinstance(liar_peer.status, StatusV69)
            assert liar_peer.status.latest_block > 1_000_000  # its claim
            # Every rotation, with any subset of peers, gives the proven head: 600.
            for probe_peers in (1, 2, 3, 3, 3):
                head = await discover_head_p2p(net.pool, 100, probe_peers=probe_peers, probe_limit=128)
                assert head.number == 600 and head.hash is not None
                assert all(v == 600 for v in head.per_peer.values())
                # The honest peers' heads were fetched when they joined: their walks start there (one
                # request each). The liar, whose made-up best hash cannot be fetched (asked once more),
                # walks last, from the highest head the pool knows (600: one request), until one
                # walk has set its own head.
                assert probe_peers <= head.requests <= probe_peers + 1
            # The liar's Status head was never probed successfully; its pool head is what it served.
            assert net.pool.get_peer_head(liar_id) in (None, 600)
            assert await re_probe_peer_head(net.pool, liar_peer, 599)
            assert not await re_probe_peer_head(net.pool, liar_peer, 5000)
            assert net.pool.get_peer_head(liar_id) == 600
            # A baseline beyond everything served proves nothing above it.
            head = await discover_head_p2p(net.pool, 700, probe_peers=3)
            assert head.number == 700 and head.hash is None
    finally:
        for s in honest + liar:
            s.stop()


async def test_head_far_above_the_baseline_is_found_in_a_few_requests(tmp_path: Path) -> None:
    """The walk starts at the header each peer already served (its Status best hash, fetched when it
    joined), not at the baseline: one round of 16 headers from 0 still finds 600 (it used to stop at
    #15, and ``ethp2p head`` from 0 at #65,472 on mainnet)."""
    store = ethtest_store(tmp_path / "e.db")
    servers = start_servers(2, store, tmp_path, network_args=NET)
    try:
        async with PeerNetwork(SPEC, limits=p2p_limits(peer_start_warmup=0)) as net:
            net.add_candidates([s.enode for s in servers])
            await net.wait_for_peers(2, timeout=20)
            await _heads_probed(net, 2)
            for p in net.pool.snapshot():  # the probe on joining fetched the best-hash header
                assert net.pool.get_peer_head(p.peer_id) == 600
            head = await discover_head_p2p(net.pool, 0, probe_peers=2, probe_limit=16, max_rounds=1)
            assert head.number == 600 and head.hash is not None and head.requests == 2
            assert set(head.per_peer.values()) == {600}
        # Called at once, before the joining probes are done, it fetches the best-hash headers itself.
        async with PeerNetwork(SPEC, limits=p2p_limits(peer_start_warmup=0)) as net:
            net.add_candidates([s.enode for s in servers])
            await net.wait_for_peers(2, timeout=20)
            head = await discover_head_p2p(net.pool, 0, probe_peers=2, probe_limit=16, max_rounds=1)
            assert head.number == 600 and set(head.per_peer.values()) == {600}
    finally:
        for s in servers:
            s.stop()


async def test_a_peer_behind_with_a_made_up_head_is_found_by_bisection(tmp_path: Path) -> None:
    """Two peers serve blocks 0..4,999; a third serves 0..3,999 of the same chain but claims a made-up
    best hash. Its walk starts at the others' head (#4,999), which it lacks; bisection between the
    baseline and there finds its highest header (#3,999) in 13 one-header requests, and it walks
    from there (walking up from 0 in rounds of 256 would take 16)."""
    full = build_long_chain(tmp_path / "full", 5_000)
    short = build_long_chain(tmp_path / "short", 4_000)
    spec = load_genesis(full.genesis)
    net_args = ["--genesis", str(full.genesis)]
    servers = start_servers(2, full.store, tmp_path, network_args=net_args)
    behind = start_servers(1, short.store, tmp_path, network_args=net_args, extra=["--misbehave", "lying-head"])
    try:
        async with PeerNetwork(spec, limits=p2p_limits(peer_start_warmup=0)) as net:
            net.add_candidates([s.enode for s in servers + behind])
            await net.wait_for_peers(3, timeout=20)
            await _heads_probed(net, 2)
            behind_id = bytes.fromhex(behind[0].enode[8:136])
            assert net.pool.get_peer_head(behind_id) is None  # its best hash is made up
            head = await discover_head_p2p(net.pool, 0, probe_peers=3, probe_limit=256)
            assert head.number == 4_999 and head.hash == full.head_hash
            assert head.per_peer[behind_id] == 3_999 and net.pool.get_peer_head(behind_id) == 3_999
            # 2 honest walks of one request; the one behind: its best hash again (1), the walk from
            # #4,999 (1, empty), bisection of 0..4,998 (13), the walk from #3,999 (1).
            assert head.requests == 2 + 1 + 1 + 13 + 1
    finally:
        for s in servers + behind:
            s.stop()
