"""`ethp2p fetch` across a loopback network of honest, slow, partial and adversarial serving processes."""

from __future__ import annotations

import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ethp2p.eth.chainspec import MAINNET
from ethp2p.formats.era1 import read_era1
from ethp2p.serve.adversary import Misbehaviour
from ethp2p.store.blocks import BlockStore
from ethp2p.store.importer import ensure_genesis, import_file
from tests.support.servers import ServerProcess, start_servers
from tests.support.stores import ERA1_FILES

NET = ["--network", "mainnet"]


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory, mainnet_store_path: Path) -> Iterator[list[ServerProcess]]:
    work = tmp_path_factory.mktemp("fetchnet")
    # A partial node: it holds (and announces, at eth/69+) only blocks 0-8,191.
    partial_db = work / "partial.db"
    with BlockStore(partial_db, genesis_hash=MAINNET.genesis_hash) as st:
        ensure_genesis(st, MAINNET)
        import_file(st, ERA1_FILES[0], MAINNET)
    servers = start_servers(2, mainnet_store_path, work, network_args=NET)  # honest
    servers += start_servers(1, partial_db, work, network_args=NET)
    servers += start_servers(1, mainnet_store_path, work, network_args=NET, extra=["--misbehave", "omit-one"])
    for kind in Misbehaviour:
        if kind is not Misbehaviour.OMIT_ONE:
            servers += start_servers(1, mainnet_store_path, work, network_args=NET, extra=["--misbehave", kind.value])
    yield servers
    for s in servers:
        s.stop()


def _fetch(
    store: Path, servers: list[ServerProcess], rng: str = "0..16383", *extra: str, **popen
) -> subprocess.Popen[str]:
    boot = ",".join(s.enode for s in servers)
    peers = str(min(6, len(servers)))
    args = [
        sys.executable,
        "-m",
        "ethp2p.cli",
        "fetch",
        rng,
        "--store",
        str(store),
        "--network",
        "mainnet",
        "--bootnodes",
        boot,
        "--no-discovery",
        "--dns",
        "",
        "--peers",
        peers,
        "--timeout",
        "60",
        "--warmup",
        "1",
        *extra,
    ]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def _stored_count(store: Path) -> int:
    """Blocks a running fetch has committed so far (0 while the file is not there yet)."""
    try:
        con = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=0.1)
        try:
            return int(con.execute("SELECT count(*) FROM canonical").fetchone()[0])
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def _assert_identical_to_era1(store: Path, last: int = 16383) -> None:
    want = {b.number: b for f in ERA1_FILES for b in read_era1(f).blocks if b.number <= last}
    with BlockStore(store, readonly=True) as s:
        got = {b.number: b for b in s.canonical_blocks(0, last + 1)}
    assert set(got) == set(want)
    for n, w in want.items():
        h, header, body, receipts = got[n].hash, got[n].header, got[n].body, got[n].receipts
        assert (h, header, body, receipts) == (w.hash, w.header, w.body, b"\xc0"), n


def test_fetch_completes_through_a_hostile_network(network: list[ServerProcess], tmp_path: Path) -> None:
    store = tmp_path / "out.db"
    proc = _fetch(store, network)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, out + err[-3000:]
    assert "missing: 0" in out and "verified blocks: 16,383 new, 1 already stored" in out, (
        out
    )  # genesis comes from the spec
    faults = int(re.search(r"faults: (\d+)", out).group(1))  # type: ignore[union-attr]
    assert faults > 0  # the adversaries were met and survived
    from ethp2p import accel

    # The summary says how blocks were verified: threads with the C extension, processes without.
    from ethp2p.fetch.verifier import default_workers

    n = default_workers()
    if accel.speedups is not None:
        how = f"(C extension, {n} thread{'s' * (n != 1)})"
    else:
        how = f"(pure Python, {n} process{'es' * (n != 1)})"
    assert how in out, out
    _assert_identical_to_era1(store)


def test_sigkill_then_resume(network: list[ServerProcess], tmp_path: Path) -> None:
    store = tmp_path / "resume.db"
    honest = network[:2] + network[3:4]  # two honest nodes and the one that omits a block
    proc = _fetch(store, honest)
    deadline = time.monotonic() + 120
    killed = False
    target = random.randint(2000, 12000)
    while time.monotonic() < deadline and proc.poll() is None:
        n = _stored_count(store)
        if n >= target:
            proc.send_signal(signal.SIGKILL)
            killed = True
            break
        time.sleep(0.01)
    proc.wait()
    assert killed, "the fetch finished before it could be killed"
    con = sqlite3.connect(store)
    before = con.execute("SELECT count(*) FROM canonical").fetchone()[0]
    con.close()
    proc = _fetch(store, honest, "0..16383", "--verify-workers", "0")  # the resume verifies in-process
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, out + err[-2000:]
    m = re.search(r"verified blocks: ([\d,]+) new, ([\d,]+) already stored", out)
    assert m, out
    new, present = (int(x.replace(",", "")) for x in m.groups())
    assert present >= before - 1 and new + present == 16384  # only what was missing (genesis is pre-stored)
    _assert_identical_to_era1(store)


def test_peak_memory_is_flat_in_range_length(network: list[ServerProcess], tmp_path: Path) -> None:
    rss = {}
    for rng in ("0..4095", "0..16383"):
        proc = _fetch(tmp_path / f"m{rng}.db", network[:2], rng)
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, out + err[-2000:]
        rss[rng] = float(re.search(r"peak memory: (\d+) MB", out).group(1))  # type: ignore[union-attr]
    assert rss["0..16383"] <= rss["0..4095"] * 1.25 + 10, rss


def test_sigterm_stops_cleanly_and_keeps_what_was_fetched(network: list[ServerProcess], tmp_path: Path) -> None:
    store = tmp_path / "term.db"
    slow_enough = network[:2]
    proc = _fetch(store, slow_enough)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        n = _stored_count(store)
        if n > 1000:
            proc.send_signal(signal.SIGTERM)
            break
        time.sleep(0.01)
    out, err = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the fetch finished before SIGTERM arrived")
    assert proc.returncode == 130 and "interrupted; everything fetched so far is stored" in out, out + err
    con = sqlite3.connect(store)
    stored = con.execute("SELECT count(*) FROM canonical").fetchone()[0]
    peers = con.execute("SELECT count(*) FROM peers").fetchone()[0]
    con.close()
    assert stored > 1000 and peers == 2  # the peer cache was flushed on the way out
