"""discover_head_p2p proves the head by fetching linked headers; a lying Status is ignored."""

from __future__ import annotations

from pathlib import Path

from ethp2p.chain.genesis import load_genesis
from ethp2p.eth.messages import StatusV69
from ethp2p.fetch import discover_head_p2p, re_probe_peer_head
from ethp2p.peers.limits import p2p_limits
from ethp2p.peers.network import PeerNetwork
from tests.support.servers import ETHTEST_GENESIS, ethtest_store, start_servers

SPEC = load_genesis(ETHTEST_GENESIS)
NET = ["--genesis", str(ETHTEST_GENESIS)]


async def test_head_is_proven_by_headers_not_status(tmp_path: Path) -> None:
    store = ethtest_store(tmp_path / "e.db")
    honest = start_servers(2, store, tmp_path, network_args=NET)
    liar = start_servers(1, store, tmp_path, network_args=NET, extra=["--misbehave", "lying-head"])
    try:
        async with PeerNetwork(SPEC, limits=p2p_limits(peer_start_warmup=0)) as net:
            net.add_candidates([s.enode for s in honest + liar])
            await net.wait_for_peers(3, timeout=20)
            liar_id = bytes.fromhex(liar[0].enode[8:136])
            liar_peer = net.pool.get(liar_id)
            assert liar_peer is not None and isinstance(liar_peer.status, StatusV69)
            assert liar_peer.status.latest_block > 1_000_000  # its claim
            # Every rotation, with any subset of peers, gives the proven head: 600.
            for probe_peers in (1, 2, 3, 3, 3):
                head = await discover_head_p2p(net.pool, 100, probe_peers=probe_peers, probe_limit=128)
                assert head.number == 600 and head.hash is not None
                assert all(v == 600 for v in head.per_peer.values())
                assert head.requests >= 4  # 100 -> 600 in linked steps of 128 (overlapping by one)
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
