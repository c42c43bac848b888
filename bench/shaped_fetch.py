"""Benchmark on the mainnet-shaped chain: ethp2p against its own ceiling and a JS devp2p client.

Starts ``--servers`` ethp2p serving processes on loopback from the chain that
bench/mainnet_shaped.py builds, then measures, in one run on this machine:

(a) headers/s over ``--headers`` headers: ethp2p's header fetch (1,024 per
    request, two requests in flight per peer, every header parsed, hashed and
    linked), against (e) the in-process pipeline ceiling on the same headers
    (bench/ceiling.py) and (d) the JS client on @ethereumjs/devp2p (eth/68).
(b) verified blocks/s: ``ethp2p fetch 1..N`` (the CLI a user runs: range fetcher,
    every body and receipt list checked against its header, stored in SQLite),
    for each N in ``--blocks``; (c) its CPU seconds per 1,000 blocks and peak RSS
    (GNU time), so the RSS of two sizes shows whether memory stays flat.
    The JS client fetches bodies and receipts of ``--js-blocks`` blocks at eth/68
    without verifying them (it has no root checks).

Run:  .venv/bin/python bench/shaped_fetch.py [--servers 2] [--headers 100000] [--blocks 10000,20000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.support.servers import start_servers  # noqa: E402

from bench.ceiling import header_ceiling, payload_ceiling  # noqa: E402
from bench.mainnet_shaped import build  # noqa: E402
from ethp2p import accel  # noqa: E402
from ethp2p.chain.genesis import load_genesis  # noqa: E402
from ethp2p.chain.verify import verify_header_chain  # noqa: E402
from ethp2p.fetch import request_headers_chunked_with_stats  # noqa: E402
from ethp2p.peers.eth_peer import EthPeer  # noqa: E402
from ethp2p.store.blocks import BlockStore  # noqa: E402

NODE_MODULES = ROOT / ".cache/ethereumjs/node_modules"


async def ethp2p_headers(enodes: list[str], spec: object, count: int, version: int) -> float:
    """Headers/s for blocks 1..count over all servers (two 1,024-header requests in flight per peer)."""
    peers = [await EthPeer.connect(e, spec, versions=(version,)) for e in enodes]  # type: ignore[arg-type]
    chunks = [(s, min(1024, count - s + 1)) for s in range(1, count + 1, 1024)]
    results: dict[int, list] = {}
    cursor = iter(chunks)

    async def worker(peer: EthPeer) -> None:
        for start, n in cursor:
            res = await request_headers_chunked_with_stats(peer, start, n)
            assert len(res.headers) == n
            results[start] = res.headers

    try:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(p) for p in peers for _ in range(2)))
        headers = [h for start, _ in chunks for h in results[start]]
        verify_header_chain(headers, 1)
        return count / (time.perf_counter() - t0)
    finally:
        for p in peers:
            await p.disconnect()


def checkpoint_arg(chain_db: Path, number: int) -> str:
    """``--checkpoint NUMBER:HASH`` for block ``number`` of the benchmark chain: the chain has no
    shipped anchors, so the fetch is told the hash to prove its headers against (as a user would
    give one from their consensus client)."""
    with BlockStore(chain_db, readonly=True) as s:
        h = s.canonical_hash(number)
    if h is None:
        raise SystemExit(f"the benchmark chain has no block {number}")
    return f"{number}:0x{h.hex()}"


def ethp2p_fetch(
    enodes: list[str],
    genesis: Path,
    count: int,
    work: Path,
    extra: Sequence[str] = (),
    *,
    chain_db: Path,
    anchor: int | None = None,
) -> dict[str, Any]:
    """``ethp2p fetch 1..count`` under GNU time: wall, CPU and peak RSS of the client process.

    Its headers are proven against a checkpoint at block ``anchor`` (default: ``count``, the
    range's end; higher: a bridge of ``anchor - count`` headers is fetched to reach it)."""
    out = work / f"fetch-{count}.db"
    args = [
        "/usr/bin/time",
        "-f",
        "RUSAGE %e %U %S %M",
        sys.executable,
        "-m",
        "ethp2p.cli",
        "fetch",
        f"1..{count}",
        "--store",
        str(out),
        "--genesis",
        str(genesis),
        "--bootnodes",
        ",".join(enodes),
        "--no-discovery",
        "--dns",
        "",
        "--peers",
        str(len(enodes)),
        "--warmup",
        "0.5",
        "--checkpoint",
        checkpoint_arg(chain_db, anchor if anchor is not None else count),
        *extra,
    ]
    r = subprocess.run(args, capture_output=True, text=True, timeout=7200)
    line = [x for x in r.stderr.splitlines() if x.startswith("RUSAGE")]
    if r.returncode != 0 or not line:
        raise SystemExit(f"ethp2p fetch failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    wall, user, sys_, rss_kb = (float(x) for x in line[-1].split()[1:])
    summary = [x for x in r.stdout.splitlines() if x.startswith(("verified blocks:", "peak memory:", "proof headers:"))]
    with BlockStore(out, readonly=True) as s:
        stored = len(s.complete_numbers(1, count))
    assert stored == count, f"{stored} of {count} blocks stored"
    out.unlink()
    return {
        "blocks": count,
        "wall": wall,
        "cpu": user + sys_,
        "rss_mb": rss_kb / 1024,
        "summary": "\n    ".join(summary),
    }


def js_fetch(enodes: list[str], genesis: Path, genesis_hash: bytes, headers: int, payloads: int) -> dict:
    args = [
        "node",
        str(ROOT / "bench/js/fetch.mjs"),
        str(NODE_MODULES),
        str(genesis),
        genesis_hash.hex(),
        str(headers),
        str(payloads),
        *enodes,
    ]
    r = subprocess.run(args, capture_output=True, text=True, timeout=3600)
    if r.returncode != 0:
        raise SystemExit(f"JS client failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chain", type=Path, default=ROOT / ".cache/bench/shaped")
    ap.add_argument("--servers", type=int, default=2)
    ap.add_argument("--headers", type=int, default=100_000)
    ap.add_argument("--blocks", default="10000,20000", help="comma-separated ethp2p fetch sizes")
    ap.add_argument("--js-blocks", type=int, default=3000)
    ap.add_argument("--version", type=int, default=69, choices=(68, 69, 70))
    ap.add_argument("--keep-page-cache", action="store_true", help="pass --keep-page-cache to ethp2p fetch")
    args = ap.parse_args()
    sizes = [int(x) for x in args.blocks.split(",") if x]
    need = max([args.headers, *sizes])
    genesis, db = build(args.chain, need, quiet=True)
    spec = load_genesis(genesis)
    work = Path(tempfile.mkdtemp(prefix="ethp2p-bench-"))
    print(f"command: python bench/shaped_fetch.py {' '.join(sys.argv[1:])}")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"node {subprocess.run(['node', '--version'], capture_output=True, text=True).stdout.strip()}; "
        f"{args.servers} server processes + 1 client process on loopback, all sharing the cores"
    )
    with BlockStore(db, readonly=True) as store:
        ceil_h = header_ceiling(store, 1, args.headers, args.version)
        ceil_b = payload_ceiling(store, 1, 2000, args.version)
        ceil_b68 = payload_ceiling(store, 1, 2000, 68)
    print(
        f"(e) ceiling, one core, no sockets: {ceil_h:,.0f} headers/s; verified blocks/s (2,000 blocks): "
        f"{ceil_b:,.0f} at eth/{args.version}, {ceil_b68:,.0f} at eth/68"
    )
    servers = start_servers(args.servers, db, work, network_args=["--genesis", str(genesis)])
    enodes = [s.enode for s in servers]
    try:
        hps = asyncio.run(ethp2p_headers(enodes, spec, args.headers, args.version))
        js = js_fetch(enodes, genesis, spec.genesis_hash, args.headers, args.js_blocks)
        print(
            f"(a) ethp2p headers/s (1..{args.headers:,}, eth/{args.version}): {hps:,.0f} "
            f"= {hps / ceil_h:.0%} of the ceiling"
        )
        print(
            f"(d) JS @ethereumjs/devp2p headers/s (same range, eth/68): {js['headers_per_s']:,.0f} "
            f"-> ethp2p is {hps / js['headers_per_s']:.1f}x"
        )
        print(
            f"(d) JS bodies+receipts blocks/s (1..{args.js_blocks:,}, eth/68, NOT verified): "
            f"{js['payload_blocks_per_s']:,.0f}; JS CPU {js['cpu_s']:.1f} s"
        )
        for n in sizes:
            r = ethp2p_fetch(
                enodes, genesis, n, work, ["--keep-page-cache"] if args.keep_page_cache else [], chain_db=db
            )
            print(
                f"(b) ethp2p fetch 1..{n:,} (verified, stored): {n / r['wall']:,.0f} blocks/s wall "
                f"({r['wall']:.1f} s incl. start-up); (c) {r['cpu'] / n * 1000:.2f} CPU s per 1,000 blocks; "
                f"peak RSS {r['rss_mb']:,.0f} MB (the fetch process; verify worker processes, if any, "
                f"in the summary below; CPU includes them); verification in {accel.implementation()}"
            )
            print(f"    {r['summary']}")
    finally:
        for s in servers:
            s.stop()


if __name__ == "__main__":
    main()
