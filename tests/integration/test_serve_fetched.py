"""A node serves what it fetched: a store that does not start at the genesis (blocks 10,000..16,383
fetched from a peer) or holds isolated blocks announces and answers what it really holds (#22).

Real parts only: ``ethp2p serve`` and ``ethp2p fetch`` processes on 127.0.0.1, the shipped era1
archives (blocks 0..16,383) as the source of truth.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ethp2p.eth import messages as m
from ethp2p.eth.chainspec import MAINNET
from ethp2p.formats.era1 import Era1Block, read_era1
from ethp2p.peers.eth_peer import EthPeer
from ethp2p.serve.server import HistoryServer
from ethp2p.store.blocks import BlockRecord, BlockStore
from ethp2p.store.importer import ensure_genesis
from tests.support.servers import ServerProcess, start_servers
from tests.support.stores import ERA1_FILES

NET = ["--network", "mainnet"]
FIRST, LAST = 10_000, 16_383
#: The isolated store: lone blocks around one short run (9,000..9,003), the longest.
ISOLATED = [100, 4096, 9000, 9001, 9002, 9003, 12_345]


@pytest.fixture(scope="module")
def era1() -> dict[int, Era1Block]:
    return {b.number: b for f in ERA1_FILES for b in read_era1(f).blocks}


def _fetch(store: Path, server: ServerProcess, rng: str, *extra: str) -> str:
    """``ethp2p fetch RNG`` from ``server`` alone into ``store``; its output (it must exit 0)."""
    args = [sys.executable, "-m", "ethp2p.cli", "fetch", rng, "--store", str(store), *NET, *extra]
    args += ["--bootnodes", server.enode, "--no-discovery", "--dns", "", "--peers", "1", "--warmup", "1"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="module")
def fetched(tmp_path_factory: pytest.TempPathFactory, mainnet_store_path: Path) -> Path:
    """A store made by ``ethp2p fetch 10000..16383`` from an era1-backed server (it also holds the genesis)."""
    work = tmp_path_factory.mktemp("fetched")
    (source,) = start_servers(1, mainnet_store_path, work, network_args=NET)
    try:
        out = _fetch(work / "fetched.db", source, f"{FIRST}..{LAST}")
    finally:
        source.stop()
    assert "missing: 0" in out, out
    return work / "fetched.db"


@pytest.fixture()
def fetched_server(fetched: Path, tmp_path: Path) -> Iterator[ServerProcess]:
    (s,) = start_servers(1, fetched, tmp_path, network_args=NET)
    yield s
    s.stop()


def _assert_identical(store: Path, era1: dict[int, Era1Block], numbers: list[int]) -> None:
    with BlockStore(store, readonly=True) as s:
        got = {b.number: b for b in s.canonical_blocks(1, LAST)}
    assert sorted(got) == numbers
    for n in numbers:
        b, want = got[n], era1[n]
        assert (b.hash, b.header, b.body, b.receipts) == (want.hash, want.header, want.body, b"\xc0"), n


@pytest.mark.parametrize("version", [68, 69, 70])
async def test_a_fetched_store_announces_the_range_it_holds(
    fetched_server: ServerProcess, era1: dict[int, Era1Block], version: int
) -> None:
    """Status: eth/69+ announce 10,000..16,383 (not the lone genesis, 0..0); eth/68 the head 16,383 and its TD."""
    peer = await EthPeer.connect(fetched_server.enode, MAINNET, versions=(version,))
    try:
        status = peer.status
        assert status.head_hash == era1[LAST].hash
        if version >= 69:
            assert isinstance(status, m.StatusV69)
            assert (status.earliest_block, status.latest_block) == (FIRST, LAST) == peer.block_range
        else:
            assert isinstance(status, m.StatusV68) and status.total_difficulty == era1[LAST].total_difficulty
        # What it lacks (1..9,999) is answered empty; what it holds, as stored.
        assert await peer.request_headers(FIRST - 1, 1) == []
        assert await peer.request_bodies([era1[FIRST - 1].hash]) == []
        assert await peer.request_headers(LAST - 1, 4) == [era1[LAST - 1].header, era1[LAST].header]
    finally:
        await peer.disconnect()
    assert f"serving mainnet blocks {FIRST}..{LAST}" in fetched_server.log_path.read_text()


def test_a_fetched_store_serves_its_range_to_another_node(
    fetched: Path, fetched_server: ServerProcess, era1: dict[int, Era1Block], tmp_path: Path
) -> None:
    """``ethp2p fetch`` of 10,000..16,383 from the node that fetched it: complete and byte-identical to era1.

    The node holds no header below 10,000, so it cannot give the headers of epoch 1 that prove the
    range by its accumulator root: the fetch is anchored at its top by ``--checkpoint``, as a user
    who trusts that hash (from a consensus client) would.
    """
    _assert_identical(fetched, era1, list(range(FIRST, LAST + 1)))
    anchor = f"{LAST}:0x{era1[LAST].hash.hex()}"
    out = _fetch(tmp_path / "again.db", fetched_server, f"{FIRST}..{LAST}", "--checkpoint", anchor)
    assert "missing: 0" in out and f"verified blocks: {LAST - FIRST + 1:,} new" in out, out
    _assert_identical(tmp_path / "again.db", era1, list(range(FIRST, LAST + 1)))


async def test_the_announced_range_grows_with_the_store(
    fetched: Path, era1: dict[int, Era1Block], tmp_path: Path
) -> None:
    """Blocks 9,000..9,999 stored under a running server: eth/69 peers are sent the new range."""
    path = tmp_path / "growing.db"
    src, dst = sqlite3.connect(fetched), sqlite3.connect(path)
    src.backup(dst)
    src.close()
    dst.close()
    with BlockStore(path, genesis_hash=MAINNET.genesis_hash) as store:
        async with HistoryServer(store, MAINNET, port=0, range_update_interval=3600) as server:
            peer = await EthPeer.connect(server.enode, MAINNET, versions=(69,))
            try:
                assert peer.block_range == (FIRST, LAST)
                blocks = [era1[n] for n in range(9000, FIRST)]
                store.put_blocks(BlockRecord(b.number, b.hash, b.header, b.body, b"\xc0") for b in blocks)
                assert await server.announce_range() == 1
                await peer.ping(30)  # the update went out before the pong
                assert peer.block_range == (9000, LAST) and server.head.earliest == 9000
            finally:
                await peer.disconnect()


@pytest.fixture()
def isolated_server(mainnet_store_path: Path, tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of a store holding only the genesis and the blocks :data:`ISOLATED` (real mainnet data)."""
    path = tmp_path / "isolated.db"
    with (
        BlockStore(mainnet_store_path, readonly=True) as src,
        BlockStore(path, genesis_hash=MAINNET.genesis_hash) as st,
    ):
        ensure_genesis(st, MAINNET)
        blocks = [next(src.canonical_blocks(n, n)) for n in ISOLATED]
        st.put_blocks(BlockRecord(b.number, b.hash, b.header, b.body, b.receipts) for b in blocks)
    (s,) = start_servers(1, path, tmp_path, network_args=NET)
    yield s
    s.stop()


@pytest.mark.parametrize("version", [68, 69, 70])
async def test_a_store_of_isolated_blocks_serves_each_of_them(
    isolated_server: ServerProcess, era1: dict[int, Era1Block], version: int
) -> None:
    """It announces its longest run (every block of an eth/69 range must be served) and answers for
    every block it holds, by number and by hash; for the blocks between, empty answers."""
    peer = await EthPeer.connect(isolated_server.enode, MAINNET, versions=(version,))
    try:
        assert peer.status.head_hash == era1[9003].hash
        assert peer.block_range == ((9000, 9003) if version >= 69 else None)
        for n in ISOLATED:
            want = era1[n]
            assert await peer.request_headers(n, 1) == [want.header], n
            assert await peer.request_headers(want.hash, 1) == [want.header], n
            assert await peer.request_bodies([want.hash]) == [want.body], n
            assert list((await peer.request_receipts([want.hash])).receipts) == [b"\xc0"], n
        assert await peer.request_headers(8999, 6) == []  # starts in a gap
        assert await peer.request_headers(9001, 6) == [era1[n].header for n in (9001, 9002, 9003)]
        assert await peer.request_bodies([era1[101].hash, era1[100].hash]) == []
        assert await peer.request_bodies([era1[100].hash, era1[4096].hash]) == [era1[100].body, era1[4096].body]
    finally:
        await peer.disconnect()


async def test_the_range_is_re_read_only_when_the_store_changed(tmp_path: Path, era1: dict[int, Era1Block]) -> None:
    """The periodic range check scans the store's index only when the store reports a change (on a
    mainnet store the scan would hold every answer for about 2 s, every two minutes)."""
    with BlockStore(tmp_path / "s.db", genesis_hash=MAINNET.genesis_hash) as store:
        ensure_genesis(store, MAINNET)
        async with HistoryServer(store, MAINNET, port=0, range_update_interval=3600) as server:
            scans = 0
            real = store.longest_run

            def counting() -> tuple[int, int] | None:
                nonlocal scans
                scans += 1
                return real()

            store.longest_run = counting  # type: ignore[method-assign]
            assert await server.announce_range() == 0 and scans == 0  # nothing written: no scan
            store.put_blocks(BlockRecord(n, era1[n].hash, era1[n].header, era1[n].body, b"\xc0") for n in range(1, 5))
            assert await server.announce_range() == 0 and scans == 1  # written: re-read (no eth/69 peer to tell)
            assert server.head.number == 4
            assert await server.announce_range() == 0 and scans == 1
            assert await server.announce_range(force=True) == 0 and scans == 2
