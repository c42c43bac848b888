"""PeerNetwork on a loopback network of ethp2p serving processes (plus a wrong-chain and a silent node)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from ethp2p.chain.genesis import load_genesis
from ethp2p.crypto.keys import PrivateKey
from ethp2p.fetch import InvalidResponse, fetch_payloads_for_peer
from ethp2p.p2p.disconnect import DisconnectReason
from ethp2p.peers.eth_peer import EthPeer, PeerDisconnected
from ethp2p.peers.limits import p2p_limits
from ethp2p.peers.network import NoPeersError, PeerNetwork, connect
from ethp2p.store.peers import LoadedPeers, PeerCache, StoredPeer, now_ms
from tests.support.servers import ETHTEST_GENESIS, ServerProcess, ethtest_store, start_servers

SPEC = load_genesis(ETHTEST_GENESIS)
NET = ["--genesis", str(ETHTEST_GENESIS)]


@pytest.fixture(scope="module")
def network(
    tmp_path_factory: pytest.TempPathFactory, mainnet_store_path: Path
) -> Iterator[dict[str, list[ServerProcess]]]:
    work = tmp_path_factory.mktemp("net")
    store = ethtest_store(work / "ethtest.db")
    good = start_servers(8, store, work, network_args=NET)
    wrong = start_servers(1, mainnet_store_path, work, network_args=["--network", "mainnet"])
    silent = start_servers(1, store, work, network_args=NET, extra=["--misbehave", "silent"])
    yield {"good": good, "wrong": wrong, "silent": silent}
    for s in good + wrong + silent:
        s.stop()


def _all(net: dict[str, list[ServerProcess]]) -> list[str]:
    return [s.enode for group in net.values() for s in group]


async def test_pool_fills_with_exactly_the_compatible_peers(network) -> None:
    limits = p2p_limits(request_timeout=0.5, head_reprobe_interval=0.3, peer_start_warmup=0, max_consecutive_timeouts=2)
    async with PeerNetwork(SPEC, limits=limits) as net:
        net.add_candidates(_all(network), "bootnode")
        await net.wait_for_peers(8, timeout=20)
        silent_id = bytes.fromhex(network["silent"][0].enode[8:136])
        for _ in range(100):  # the silent node never answers its head probe and is dropped
            probed = all(p.head_number is not None for p in net.pool.snapshot())
            if silent_id not in net.pool and len(net.pool) == 8 and probed:
                break
            await asyncio.sleep(0.1)
        good_ids = {bytes.fromhex(s.enode[8:136]) for s in network["good"]}
        assert {p.peer_id for p in net.pool.snapshot()} == good_ids
        for p in net.pool.snapshot():
            assert p.head_number == 600 and p.eth_version == 70 and p.block_range == (0, 600)
            assert net.pool.get_peer_head(p.peer_id) == 600
        st = net.p2p_stats
        assert st.genesis_mismatch_count == 1
        assert st.sessions_established == 9  # 8 good + the silent one (until dropped)
        assert st.sessions_closed >= 1 and st.probes_ok >= 8
        assert st.disconnects_sent.get("ping_timeout", 0) >= 1
        assert st.dials_attempted == 10


async def test_limits_are_never_exceeded(network) -> None:
    limits = p2p_limits(max_outbound=5, max_concurrent_dials=2, max_concurrent_probes=1, peer_start_warmup=0)
    async with PeerNetwork(SPEC, limits=limits) as net:
        net.add_candidates(_all(network), "bootnode")
        await net.wait_for_peers(5, timeout=20)
        await asyncio.sleep(1.0)  # give the refill loop every chance to overshoot
        st = net.p2p_stats
        assert len(net.pool) == 5
        assert st.max_outbound_seen <= 5
        assert st.max_concurrent_dials_seen <= 2
        assert net.max_probes_seen <= 1


async def test_inbound_cap(tmp_path: Path) -> None:
    limits = p2p_limits(max_inbound=2, peer_start_warmup=0)
    async with PeerNetwork(SPEC, limits=limits, listen=("127.0.0.1", 0)) as net:
        enode = net.enode.url()
        peers = [await EthPeer.connect(enode, SPEC) for _ in range(2)]
        with pytest.raises(PeerDisconnected) as info:
            await EthPeer.connect(enode, SPEC)
        assert info.value.event is not None and info.value.event.reason == DisconnectReason.TOO_MANY_PEERS
        await asyncio.sleep(0.1)
        assert net.pool.count("inbound") == 2 and net.p2p_stats.max_inbound_seen == 2
        assert net.p2p_stats.inbound_rejected == 1
        for p in peers:
            await p.disconnect()


async def test_no_peers_error_says_what_was_tried() -> None:
    dead = f"enode://{PrivateKey.generate().public_key.to_bytes().hex()}@127.0.0.1:1"
    with pytest.raises(NoPeersError, match="dialed 1"):
        async with connect(SPEC, bootnodes=[dead], timeout=1.5, limits=p2p_limits(peer_start_warmup=0)):
            pass


async def test_peer_cache_survives_restart(network, tmp_path: Path) -> None:
    cache = tmp_path / "peers.db"
    limits = p2p_limits(peer_start_warmup=0)
    async with connect(
        SPEC,
        peer_book=PeerCache(cache),
        bootnodes=[s.enode for s in network["good"][:3]],
        min_peers=3,
        timeout=20,
        limits=limits,
    ):
        pass
    # Add an expired and a corrupted entry behind the network's back.
    pc = PeerCache(cache)
    old = PrivateKey.generate().public_key.to_bytes()
    pc.upsert_peer(StoredPeer(old, "127.0.0.1:9", None, now_ms() - 8 * 24 * 3600 * 1000))
    pc.flush()
    pc.close()
    con = sqlite3.connect(cache)
    con.execute("INSERT INTO peers VALUES (?, ?, NULL, ?, NULL)", (b"\x01" * 10, "not an address", now_ms()))
    con.commit()
    con.close()
    async with connect(SPEC, peer_book=PeerCache(cache), bootnodes=[], min_peers=3, timeout=20, limits=limits) as net:
        load = net.cache_load
        assert isinstance(load, LoadedPeers)
        assert (load.total, load.expired, load.corrupted, len(load.peers)) == (5, 1, 1, 3)
        assert len(net.pool) == 3


async def test_misbehaving_peer_is_banned_and_dropped_others_unaffected(tmp_path: Path) -> None:
    store = ethtest_store(tmp_path / "e.db")
    good = start_servers(2, store, tmp_path, network_args=NET)
    bad = start_servers(1, store, tmp_path, network_args=NET, extra=["--misbehave", "wrong-header-numbers"])
    try:
        async with PeerNetwork(SPEC, limits=p2p_limits(peer_start_warmup=0)) as net:
            net.add_candidates([s.enode for s in good + bad], "bootnode")
            await net.wait_for_peers(3, timeout=20)
            bad_id = bytes.fromhex(bad[0].enode[8:136])
            bad_peer = net.pool.get(bad_id)
            assert bad_peer is not None
            for _ in range(4):
                with pytest.raises((InvalidResponse, PeerDisconnected)):
                    await fetch_payloads_for_peer(bad_peer, 10, 20)
                if bad_id not in net.pool:
                    break
            assert bad_id not in net.pool
            assert net.reputation.is_banned(bad_id) and net.p2p_stats.bans == 1
            assert not net.reputation.may_dial(bad_id)
            assert len(net.pool) == 2
            for p in net.pool.snapshot():
                out = await fetch_payloads_for_peer(p, 1, 20)
                assert len(out.payloads) + len(out.missing_blocks) == 20
    finally:
        for s in good + bad:
            s.stop()


async def test_session_finds_peers_through_discv4(tmp_path: Path) -> None:
    """Six serving nodes run discv4 and know one boot node each; a peer network that knows only the
    first one discovers the rest, checks their ENR fork ids, and dials them."""
    store = ethtest_store(tmp_path / "d.db")
    servers = start_servers(1, store, tmp_path, network_args=NET, extra=["--discovery"])
    servers += start_servers(
        5, store, tmp_path, network_args=NET, extra=["--discovery", "--bootnodes", servers[0].enode]
    )
    try:
        async with connect(
            SPEC, bootnodes=[servers[0].enode], min_peers=6, timeout=30, dns=[], limits=p2p_limits(peer_start_warmup=0)
        ) as net:
            ids = {p.peer_id for p in net.pool.snapshot()}
            assert ids == {bytes.fromhex(s.enode[8:136]) for s in servers}
            assert net.p2p_stats.discovered_count >= 5
            assert net.discovery is not None and len(net.discovery.table) >= 5
    finally:
        for s in servers:
            s.stop()
