"""A third-party client full-syncing real mainnet history: from ``ethp2p serve`` and from its own kind.

In one run, on loopback (the whole run inside a private network namespace of its own), a fresh
@ethereumjs/client 0.10.5 (``--network mainnet``, empty data dir, discv4 on, one boot node)
full-syncs blocks 1..``--blocks`` (at most 16,383: the era1 history in tests/vectors)

* from ``ethp2p serve`` of the era1 store (``--discovery``), and, with ``--no-pacing``, the
  same unpaced (``--unpaced``);
* from another @ethereumjs/client that first imported the same blocks from an RLP chain file
  (written from the store; the import is not timed).

Reported per source: seconds from the client's start to its log's last "Imported blocks" line
reaching the target, blocks/s, and (ethp2p) how many answers were paced and for how long.

Run (needs `unshare -n`, i.e. root or user namespaces; the interop peer from
tests/interop/install_peer.sh):
    .venv/bin/python bench/ethereumjs_sync.py [--blocks 16383] [--unpaced]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.interop.ethereumjs import EthereumJS, installed  # noqa: E402
from tests.support.servers import start_servers  # noqa: E402
from tests.support.stores import mainnet_store  # noqa: E402

from ethp2p.formats.chainfile import write_chain_file  # noqa: E402
from ethp2p.store.blocks import BlockStore  # noqa: E402

IMPORTED = re.compile(r"Imported blocks count=\d+ first=\d+ last=(\d+)")


def sync_from(enode: str, workdir: Path, target: int, limit: float) -> float:
    """Start a fresh client with ``enode`` as its boot node; seconds until it has imported ``target``."""
    client = EthereumJS(workdir, None, None, extra_args=("--network", "mainnet", "--bootnodes", enode), discovery=True)
    start = time.monotonic()
    try:
        client.start(timeout=60)
        while time.monotonic() - start < limit:
            heights = [int(x) for x in IMPORTED.findall(client.log_path.read_text(errors="replace"))]
            if max(heights, default=0) >= target:
                return time.monotonic() - start
            time.sleep(0.2)
        raise TimeoutError(f"the client imported only {max(heights, default=0)} of {target} in {limit:g} s")
    finally:
        client.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--blocks", type=int, default=16_383, help="sync blocks 1..N (N <= 16,383)")
    ap.add_argument("--unpaced", action="store_true", help="also time ethp2p serve --no-pacing")
    ap.add_argument("--limit", type=float, default=600.0, help="give up on one sync after this many seconds")
    args = ap.parse_args()
    if not 1 <= args.blocks <= 16_383:
        ap.error("--blocks must be 1..16383")
    if os.environ.get("ETHP2P_NETNS") != "private":
        # Everything below binds 0.0.0.0 or dials what discv4 finds: run it in a namespace of its own.
        argv = [sys.executable, *sys.argv]
        script = 'ip link set lo up && ETHP2P_NETNS=private exec "$@"'
        sys.exit(subprocess.call(["unshare", "-n", "sh", "-c", script, "sh", *argv]))
    if not installed():
        sys.exit("@ethereumjs/client is not installed (bash tests/interop/install_peer.sh)")
    with tempfile.TemporaryDirectory(prefix="ejs-sync-") as tmp:
        work = Path(tmp)
        (ROOT / ".cache" / "bench").mkdir(parents=True, exist_ok=True)
        store = mainnet_store(ROOT / ".cache" / "bench" / "mainnet-era1.db")
        results: list[tuple[str, float, str]] = []
        for paced in (True, False) if args.unpaced else (True,):
            extra = ["--discovery"] + ([] if paced else ["--no-pacing"])
            (server,) = start_servers(1, store, work, network_args=["--network", "mainnet"], extra=extra)
            try:
                seconds = sync_from(
                    server.enode, work / f"ejs-{'paced' if paced else 'unpaced'}", args.blocks, args.limit
                )
            finally:
                out = server.stop()
            m = re.search(r"answers paced for a client's importer: (\d+) \(([\d.]+) s", out)
            note = f"{m.group(1)} answers paced, {m.group(2)} s held" if m else "no answer paced"
            results.append(("ethp2p serve" + ("" if paced else " --no-pacing"), seconds, note))
        chain = work / "chain.rlp"
        with BlockStore(store, readonly=True) as s:
            write_chain_file(chain, ((b.header, b.body or b"\xc2\xc0\xc0") for b in s.canonical_blocks(1, args.blocks)))
        t = time.monotonic()
        ref = EthereumJS(work / "reference", None, chain, extra_args=("--network", "mainnet"), discovery=True)
        ref.start(timeout=args.limit)
        load = time.monotonic() - t
        try:
            seconds = sync_from(ref.enode or "", work / "ejs-reference", args.blocks, args.limit)
        finally:
            ref.stop()
        results.append(("@ethereumjs/client", seconds, f"it imported the chain file first in {load:.0f} s"))
    print(f"@ethereumjs/client 0.10.5 full-syncing mainnet blocks 1..{args.blocks:,} on loopback, from:")
    for name, seconds, note in results:
        print(f"  {name:28s} {seconds:6.1f} s  {args.blocks / seconds:5.0f} blocks/s  ({note})")


if __name__ == "__main__":
    main()
