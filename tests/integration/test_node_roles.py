"""The roles of today's mainnet nodes (#22 "Mainnet in a box"), played by real ``ethp2p serve``
processes on 127.0.0.1 from the shipped mainnet blocks 0..16,383, and what ``ethp2p fetch`` makes of them:

* ``--eth-versions``: an eth/68-only node;
* ``--answer-delay``: latency, without holding up other requests, pings or sessions;
* ``--expire-before``: an expired-history node (headers of every block, bodies and receipts from a cut);
* ``--grow-from``/``--grow-every``/``--grow-by``: a node whose chain grows, announced by BlockRangeUpdate;
* fetches against them: blocks no peer serves end within seconds, with what the peers announce;
  expired nodes are asked only for what they announce; a growing peer is asked for its new blocks.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ethp2p.eth import messages as m
from ethp2p.eth.chainspec import MAINNET
from ethp2p.peers.eth_peer import EthPeer, IncompatiblePeer, RequestTimeout
from ethp2p.store.blocks import BlockStore
from ethp2p.transport.stream import ConnectionLost
from tests.support.servers import ServerProcess, start_servers

NET = ["--network", "mainnet"]
CUT = 8192  # the first block of epoch 1: expired nodes keep bodies and receipts from here on
LAST = 16_383


@pytest.fixture(scope="module")
def chain(mainnet_store_path: Path) -> dict[int, tuple[bytes, bytes, bytes, bytes]]:
    """(hash, header, body, receipts) of the blocks these tests look at, read from the era1-backed store."""
    out = {}
    with BlockStore(mainnet_store_path, readonly=True) as s:
        for n in (0, 1, 2, 100, 999, 1000, 1001, 4000, CUT - 2, CUT - 1, CUT, CUT + 1, LAST):
            (b,) = s.canonical_blocks(n, n)
            assert b.body is not None and b.receipts is not None
            out[n] = (b.hash, b.header, b.body, b.receipts)
    return out


def _one(store: Path, work: Path, *extra: str) -> ServerProcess:
    (s,) = start_servers(1, store, work, network_args=NET, extra=list(extra))
    return s


def _stats(output: str) -> dict[str, int]:
    """The counts ``ethp2p serve`` prints when it stops: requests answered, range updates sent, and
    (expired nodes) requests that reached an expired block."""
    out: dict[str, int] = {}
    m1 = re.search(r"requests answered: headers (\d+), bodies (\d+), receipts (\d+); range updates sent: (\d+)", output)
    assert m1, output
    out["headers"], out["bodies"], out["receipts"], out["range_updates"] = map(int, m1.groups())
    m2 = re.search(r"requests that reached a block below \d+: bodies (\d+), receipts (\d+)", output)
    if m2:
        out["expired_bodies"], out["expired_receipts"] = map(int, m2.groups())
    return out


def _fetch(store: Path, servers: list[ServerProcess], rng: str, *extra: str) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", "ethp2p.cli", "fetch", rng, "--store", str(store), *NET]
    args += ["--bootnodes", ",".join(s.enode for s in servers), "--no-discovery", "--dns", ""]
    args += ["--peers", str(len(servers)), "--warmup", "1", "--timeout", "60", *extra]
    t0 = time.monotonic()
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300)
    print(f"fetch {rng} took {time.monotonic() - t0:.1f} s:\n{proc.stdout}")
    return proc


# ---- serving options ----------------------------------------------------------------------------


async def test_an_eth68_only_node(mainnet_store_path: Path, tmp_path: Path, chain: dict) -> None:
    node = _one(mainnet_store_path, tmp_path, "--eth-versions", "68")
    try:
        with pytest.raises((ConnectionLost, IncompatiblePeer), match="useless_peer|no eth version"):
            await EthPeer.connect(node.enode, MAINNET, versions=(69, 70))  # no version in common
        peer = await EthPeer.connect(node.enode, MAINNET)  # we offer 68, 69 and 70
        try:
            assert peer.eth_version == 68 and isinstance(peer.status, m.StatusV68) and peer.block_range is None
            assert await peer.request_headers(1, 2) == [chain[1][1], chain[2][1]]
        finally:
            await peer.disconnect()
    finally:
        out = node.stop()
    assert "eth versions offered: eth/68" in out, out


async def test_eth69_and_70_without_68(mainnet_store_path: Path, tmp_path: Path) -> None:
    node = _one(mainnet_store_path, tmp_path, "--eth-versions", "70,69")
    try:
        with pytest.raises((ConnectionLost, IncompatiblePeer), match="useless_peer|no eth version"):
            await EthPeer.connect(node.enode, MAINNET, versions=(68,))
        peer = await EthPeer.connect(node.enode, MAINNET)
        assert peer.eth_version == 70 and peer.block_range == (0, LAST)
        await peer.disconnect()
    finally:
        node.stop()


async def test_answers_are_delayed_without_holding_up_anything_else(
    mainnet_store_path: Path, tmp_path: Path, chain: dict
) -> None:
    """With --answer-delay 2, requests wait their 2 s each at once (not one after another), while
    pings on the same session and another session's requests go on."""
    node = _one(mainnet_store_path, tmp_path, "--answer-delay", "2")
    a = await EthPeer.connect(node.enode, MAINNET)
    b = await EthPeer.connect(node.enode, MAINNET)
    try:
        t0 = time.monotonic()
        pending = [
            asyncio.create_task(a.request_headers(n, 1, timeout=30)) for n in (0, 1, 2, 100, 999, 1000, 1001, 4000)
        ]
        bodies = asyncio.create_task(b.request_bodies([chain[CUT][0]], timeout=30))
        await a.ping(10)  # the session's read loop is not blocked by the waiting answers
        await b.ping(10)
        assert not any(t.done() for t in pending) and not bodies.done()
        got = await asyncio.gather(*pending)
        assert got == [[chain[n][1]] for n in (0, 1, 2, 100, 999, 1000, 1001, 4000)]
        assert await bodies == [chain[CUT][2]]
        print(f"8 delayed answers on one session and 1 on another in {time.monotonic() - t0:.2f} s")
        with pytest.raises(RequestTimeout):  # a peer that gives up sooner sees a timeout, as with real latency
            await a.request_headers(0, 1, timeout=0.5)
        assert await a.request_headers(LAST, 1, timeout=30) == [chain[LAST][1]]  # the session goes on
    finally:
        await a.disconnect()
        await b.disconnect()
        out = node.stop()
    assert "answering each request after 2 s" in out
    assert _stats(out)["headers"] >= 10 and _stats(out)["bodies"] == 1


@pytest.mark.parametrize("version", [68, 69, 70])
async def test_an_expired_history_node(mainnet_store_path: Path, tmp_path: Path, chain: dict, version: int) -> None:
    """Headers of every stored block; bodies and receipts only from the cut; eth/69+ announce the cut."""
    node = _one(mainnet_store_path, tmp_path, "--expire-before", str(CUT))
    peer = await EthPeer.connect(node.enode, MAINNET, versions=(version,))
    try:
        if version >= 69:
            assert isinstance(peer.status, m.StatusV69)
            assert (peer.status.earliest_block, peer.status.latest_block) == (CUT, LAST) == peer.block_range
        assert peer.status.head_hash == chain[LAST][0]
        assert await peer.request_headers(0, 3) == [chain[n][1] for n in (0, 1, 2)]
        assert await peer.request_headers(CUT - 1, 2) == [chain[CUT - 1][1], chain[CUT][1]]
        below, at, above = chain[CUT - 1][0], chain[CUT][0], chain[CUT + 1][0]
        assert await peer.request_bodies([chain[100][0]]) == []
        assert await peer.request_bodies([at, above]) == [chain[CUT][2], chain[CUT + 1][2]]
        assert await peer.request_bodies([at, below, above]) == [chain[CUT][2]]  # ends before the expired one
        assert list((await peer.request_receipts([below])).receipts) == []
        receipts = list((await peer.request_receipts([at])).receipts)
        assert len(receipts) == 1 and (version == 68 or receipts == [chain[CUT][3]])
    finally:
        await peer.disconnect()
        out = node.stop()
    assert f"serving mainnet blocks {CUT}..{LAST}" in out
    st = _stats(out)
    assert (st["expired_bodies"], st["expired_receipts"]) == (2, 1), out


async def test_a_growing_node_announces_and_serves_its_new_blocks(
    mainnet_store_path: Path, tmp_path: Path, chain: dict
) -> None:
    """--grow-from 1000: at first nothing above its latest block is served; each step raises it and
    an eth/69 peer is told (BlockRangeUpdate) and then served the new blocks."""
    node = _one(mainnet_store_path, tmp_path, "--grow-from", "1000", "--grow-every", "1", "--grow-by", "3000")
    peer = await EthPeer.connect(node.enode, MAINNET, versions=(69,))
    try:
        assert peer.block_range is not None and isinstance(peer.status, m.StatusV69)
        first = peer.block_range[1]
        assert first in range(1000, LAST, 3000) and peer.status.latest_block == first
        # Step by step (every second) it reaches the store's top, 16,383; pings flush the updates to us.
        seen = [first]
        for _ in range(200):
            await peer.ping(10)
            if peer.block_range[1] != seen[-1]:
                seen.append(peer.block_range[1])
            if seen[-1] == LAST:
                break
            await asyncio.sleep(0.05)
        assert seen[-1] == LAST and len(seen) >= 2 and seen == sorted(seen), seen
        assert all(n in range(1000, LAST, 3000) for n in seen[:-1]), seen
        assert await peer.request_headers(LAST, 1) == [chain[LAST][1]]
        assert await peer.request_bodies([chain[CUT][0]]) == [chain[CUT][2]]
    finally:
        await peer.disconnect()
        out = node.stop()
    assert "growing from block 1000 by 3000 every 1 s" in out and _stats(out)["range_updates"] >= len(seen) - 1


async def test_a_growing_node_serves_nothing_above_its_latest_block(
    mainnet_store_path: Path, tmp_path: Path, chain: dict
) -> None:
    node = _one(mainnet_store_path, tmp_path, "--grow-from", "1000", "--grow-every", "3600")
    peer = await EthPeer.connect(node.enode, MAINNET, versions=(69,))
    try:
        assert peer.block_range == (0, 1000) and peer.status.head_hash == chain[1000][0]
        assert await peer.request_headers(999, 3) == [chain[999][1], chain[1000][1]]
        assert await peer.request_headers(chain[1001][0], 1) == []
        assert await peer.request_bodies([chain[1000][0], chain[1001][0]]) == [chain[1000][2]]
    finally:
        await peer.disconnect()
        node.stop()


# ---- what a fetch makes of them -------------------------------------------------------------------


@pytest.fixture()
def expired_nodes(mainnet_store_path: Path, tmp_path: Path) -> Iterator[list[ServerProcess]]:
    servers = start_servers(3, mainnet_store_path, tmp_path, network_args=NET, extra=["--expire-before", str(CUT)])
    yield servers
    for s in servers:
        s.stop()


def test_blocks_no_peer_serves_end_the_fetch_within_seconds(expired_nodes: list[ServerProcess], tmp_path: Path) -> None:
    """Every peer announces 8192..16383: a fetch of 0..100 gets their headers (to prove the blocks)
    but gives up on the blocks after the short grace for expired history, not the 30 s stall timeout,
    and says what the peers announce."""
    r = _fetch(tmp_path / "f.db", expired_nodes, "0..100", "--stall-timeout", "30")
    assert r.returncode == 1, r.stdout + r.stderr[-3000:]
    assert "given up: no peer serves blocks 1..100: the 3 peers announce 8192..16383" in r.stdout
    assert "missing: 100 (first [1, 2, 3, 4, 5])" in r.stdout and "1 already stored" in r.stdout  # the genesis
    assert "no peer serves 100 blocks" not in r.stdout  # not the 30 s "unserved" give-up
    assert "unproven" not in r.stdout  # the headers were served and proven
    stats = [_stats(s.stop()) for s in expired_nodes]
    assert sum(st["headers"] for st in stats) >= 1
    assert all(st["bodies"] == st["receipts"] == st["expired_bodies"] == st["expired_receipts"] == 0 for st in stats)


def test_expired_nodes_are_asked_only_for_what_they_announce(
    expired_nodes: list[ServerProcess], mainnet_store_path: Path, tmp_path: Path
) -> None:
    archive = start_servers(2, mainnet_store_path, tmp_path, network_args=NET)
    try:
        r = _fetch(tmp_path / "f.db", archive + expired_nodes[:2], f"0..{LAST}")
        assert r.returncode == 0, r.stdout + r.stderr[-3000:]
        assert "missing: 0" in r.stdout and f"verified blocks: {LAST:,} new" in r.stdout
    finally:
        archive_stats = [_stats(s.stop()) for s in archive]
    expired_stats = [_stats(s.stop()) for s in expired_nodes[:2]]
    assert all(st["expired_bodies"] == st["expired_receipts"] == 0 for st in expired_stats), expired_stats
    assert sum(st["bodies"] + st["receipts"] for st in expired_stats) > 0  # they did serve blocks 8,192 and up
    assert sum(st["bodies"] for st in archive_stats) > 0
    used = re.search(r"peers: (\d+) found \(.*\), (\d+) connected, (\d+) used", r.stdout)
    serving = sum(st["bodies"] > 0 for st in archive_stats + expired_stats)
    assert used and used.groups() == ("4", "4", str(serving)), r.stdout


def test_a_growing_peer_is_asked_for_its_new_blocks(mainnet_store_path: Path, tmp_path: Path) -> None:
    """Blocks 4,001..8,191 come only from a node that starts at 4,000 and grows by 1,000 every 2 s:
    an expired node (bodies from 8,192) serves their headers but not their bodies. The fetch ends
    complete, so the growing node was asked for blocks above what it announced at connect, once
    its BlockRangeUpdates said it had them (it sent at least one to our fetch, its only peer)."""
    expired = _one(mainnet_store_path, tmp_path, "--expire-before", str(CUT))
    growing = _one(mainnet_store_path, tmp_path, "--grow-from", "4000", "--grow-every", "2", "--grow-by", "1000")
    try:
        r = _fetch(tmp_path / "f.db", [expired, growing], f"0..{CUT - 1}")
        assert r.returncode == 0, r.stdout + r.stderr[-3000:]
        assert "missing: 0" in r.stdout and f"verified blocks: {CUT - 1:,} new" in r.stdout
    finally:
        grown, cut = _stats(growing.stop()), _stats(expired.stop())
    assert grown["range_updates"] >= 1 and grown["bodies"] > 0, grown
    assert cut["bodies"] == cut["receipts"] == cut["expired_bodies"] == cut["expired_receipts"] == 0, cut
