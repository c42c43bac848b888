"""``ethp2p demo``: the whole stack on a machine without internet.

Builds a source store from the real mainnet era1 archives shipped in the repository
(blocks 0-16,383), starts a few ``ethp2p serve`` processes on 127.0.0.1, then fetches
the range from them over RLPx/eth (verifying every header, body and receipt list),
stores it, and prints a summary.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from .eth.chainspec import MAINNET
from .fetch.types import FetchStageStats
from .peers.eth_peer import EthPeer, PeerError
from .progress import Progress
from .store.blocks import BlockStore
from .store.importer import ensure_genesis, import_file
from .summary import proof_lines
from .sync.range import fetch_range_into_store
from .transport.stream import TransportError

REPO_ERA1 = Path(__file__).resolve().parents[2] / "tests" / "vectors" / "mainnet" / "era1"


class DemoError(Exception):
    """The demo cannot run (e.g. its data files are missing)."""


def find_era1(directory: str | Path | None = None) -> list[Path]:
    d = Path(directory) if directory else Path(os.environ.get("ETHP2P_DEMO_ERA1", REPO_ERA1))
    files = sorted(d.glob("*.era1"))
    if not files:
        raise DemoError(f"no .era1 files in {d} (run from a clone of the repository, or pass --era1 DIR)")
    return files


def _start_server(store: Path, log: Path) -> tuple[subprocess.Popen[str], str]:
    out = open(log, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ethp2p.cli", "serve", "--store", str(store), "--port", "0", "--host", "127.0.0.1"],
        stdout=out,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        m = re.search(r"(enode://[0-9a-f]{128}@127\.0\.0\.1:\d+)", log.read_text())
        if m:
            return proc, m.group(1)
        if proc.poll() is not None:
            raise DemoError(f"serving node exited:\n{log.read_text()}")
        time.sleep(0.05)
    proc.kill()
    raise DemoError("serving node did not start in 30 s")


def _stage_line(s: FetchStageStats) -> str:
    return (
        f"headers {s.headers_requests} req / {s.headers_bytes / 1e6:.1f} MB, "
        f"bodies {s.bodies_requests} req / {s.bodies_bytes / 1e6:.1f} MB "
        f"({s.bodies_skipped_empty:,} proven empty by their header), "
        f"receipts {s.receipts_requests} req ({s.receipts_skipped_empty:,} proven empty), "
        f"verify {s.verify_ms / 1000:.2f} s"
    )


async def run_demo(workdir: str | Path = "ethp2p-demo", servers: int = 3, era1_dir: str | Path | None = None) -> int:
    """Run the demo; returns a process exit code."""
    try:
        files = find_era1(era1_dir)
    except DemoError as e:
        print(f"ethp2p demo: {e}", file=sys.stderr)
        return 2
    work = Path(workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    source = work / "source.db"
    target = work / "fetched.db"
    print(f"ethp2p demo: real mainnet history from {len(files)} era1 archive(s), served and fetched on 127.0.0.1")
    with BlockStore(source, genesis_hash=MAINNET.genesis_hash) as store:
        ensure_genesis(store, MAINNET)
        if store.count() < 16384:
            for f in files:
                with Progress(f"import {f.name}", unit="blocks") as bar:
                    import_file(store, f, MAINNET, bar.advance)
        rng = store.contiguous_range()
    assert rng is not None
    start, end = rng
    print(f"source store {source}: blocks {start}..{end} (accumulator roots and every block hash checked)")

    procs: list[subprocess.Popen[str]] = []
    peers: list[EthPeer] = []
    try:
        enodes = []
        for i in range(servers):
            proc, enode = _start_server(source, work / f"server-{i}.log")
            procs.append(proc)
            enodes.append(enode)
        print(f"started {servers} serving nodes (separate processes):")
        for url in enodes:
            print(f"  {url[:30]}…{url[-22:]}")
        for url in enodes:
            try:
                peers.append(await EthPeer.connect(url, MAINNET))
            except (PeerError, TransportError) as err:
                print(f"  could not connect to {url[-22:]}: {err}", file=sys.stderr)
        if not peers:
            print("ethp2p demo: no serving node accepted us", file=sys.stderr)
            return 1
        print(f"connected to {len(peers)} peers at eth/{peers[0].eth_version}; fetching blocks {start}..{end}")
        if target.exists():
            target.unlink()
        with BlockStore(target, genesis_hash=MAINNET.genesis_hash) as out:
            with Progress("fetch", total=end - start + 1, unit="blocks") as bar:
                stats = await fetch_range_into_store(peers, start, end, out, on_blocks=bar.advance)
            count = out.count()
    finally:
        for p in peers:
            try:
                await p.disconnect()
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()

    rate = stats.verified_blocks / stats.seconds if stats.seconds else 0.0
    print()
    print(f"verified blocks:  {stats.verified_blocks:,} in {stats.seconds:.1f} s ({rate:,.0f} blocks/s)")
    print(f"bytes fetched:    {stats.bytes / 1e6:.1f} MB (headers, bodies and receipts, raw RLP)")
    print(f"per stage:        {_stage_line(stats.stage)}")
    print("peers used:       " + ", ".join(f"{k}: {v:,}" for k, v in sorted(stats.blocks_by_peer.items())))
    print(f"faults seen:      {len(stats.faults)}" + (f" (first: {stats.faults[0]})" if stats.faults else ""))
    for line in proof_lines(stats):
        key, _, rest = line.partition(": ")
        print(f"{key + ':':<18}{rest}" if not line.startswith(" ") else f"{'':<18}{line.strip()}")
    print(f"missing blocks:   {len(stats.missing)}")
    print(f"stored:           {count:,} blocks in {target}")
    print(f"export it:        ethp2p export --store {target} --format parquet --out {work / 'export'}")
    return 0 if not stats.missing else 1
