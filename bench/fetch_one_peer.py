"""Benchmark: one ethp2p client fetching from one ethp2p server process on loopback.

Measures (a) headers/s for blocks 0-16,383 (1,024 per request, every header parsed,
hashed and linked) and (b) verified blocks/s of fetch_payloads_for_peer over the same
range (headers, bodies, receipts, all roots checked). The data is real mainnet era1
history (blocks 0-16,383: ommers but no transactions), so (b) mostly measures headers
and ommer bodies; mainnet-shaped blocks with transactions are the Performance issue's job.

Run:  .venv/bin/python bench/fetch_one_peer.py [--rounds N] [--version 68|69|70]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.servers import start_servers  # noqa: E402
from tests.support.stores import mainnet_store  # noqa: E402

from ethp2p.eth.chainspec import MAINNET  # noqa: E402
from ethp2p.fetch import fetch_payloads_for_peer, request_headers_chunked_with_stats  # noqa: E402
from ethp2p.peers.eth_peer import EthPeer  # noqa: E402


async def run(enode: str, version: int, rounds: int) -> dict[str, float]:
    peer = await EthPeer.connect(enode, MAINNET, versions=(version,))
    best_h = best_p = 0.0
    try:
        for _ in range(rounds):
            t = time.perf_counter()
            res = await request_headers_chunked_with_stats(peer, 0, 16384)
            dt = time.perf_counter() - t
            assert len(res.headers) == 16384
            best_h = max(best_h, 16384 / dt)
            t = time.perf_counter()
            out = await fetch_payloads_for_peer(peer, 0, 16383)
            dt = time.perf_counter() - t
            assert not out.missing_blocks
            best_p = max(best_p, 16384 / dt)
    finally:
        await peer.disconnect()
    return {"headers_per_s": best_h, "verified_blocks_per_s": best_p}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--version", type=int, default=70, choices=(68, 69, 70))
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ethp2p-bench-"))
    store = mainnet_store(work / "mainnet.db", derived=False)
    (server,) = start_servers(1, store, work, network_args=["--network", "mainnet"])
    try:
        cpu0 = time.process_time()
        res = asyncio.run(run(server.enode, args.version, args.rounds))
        cpu = time.process_time() - cpu0
    finally:
        server.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"command: {' '.join(['python', 'bench/fetch_one_peer.py', *sys.argv[1:]])}")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"1 server process + 1 client process on loopback; eth/{args.version}; best of {args.rounds}"
    )
    print(f"headers/s (0-16,383, parsed+hashed+linked): {res['headers_per_s']:,.0f}")
    print(f"verified blocks/s (fetch_payloads_for_peer 0-16,383): {res['verified_blocks_per_s']:,.0f}")
    print(f"client CPU: {cpu:.2f} s for {args.rounds * 2 * 16384:,} blocks fetched; peak RSS {rss:.0f} MB")


if __name__ == "__main__":
    main()
