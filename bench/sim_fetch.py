"""Scenario benchmark: ``ethp2p fetch`` on a simulated network of bandwidth-limited nodes.

``--nodes`` serving nodes, each on a host of its own (tests/sim: a network namespace per node, a
bridge, ``tc tbf`` on each node's link at a rate spread evenly between ``--rate-min`` and
``--rate-max`` Mbit/s), serve the mainnet-shaped chain of bench/mainnet_shaped.py (about 250 KB of
body and receipts per block). Every other node has expired history (bodies and receipts only from
the middle of the range on). The client starts from one boot node and finds the rest through
discv4, then fetches ``1..--blocks``, verified and stored.

Reported: verified blocks/s and MB/s; the same against the link capacity of the peers that hold
the range, as the best time any schedule could take (the bytes the nodes' links carried, measured
on their veth counters, split between the halves in proportion to their raw RLP: the lower half's
over the archive nodes' capacity, or the whole over everyone's, whichever is longer) divided by
the time taken; the time to the first peer and to the first verified block; peers found and used;
the client's CPU seconds per 1,000 blocks and its peak RSS (GNU time).

Run (as root; it makes its own network namespace):
    .venv/bin/python bench/sim_fetch.py [--nodes 24] [--blocks 20000] [--rate-min 20] [--rate-max 50]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.sim import roles  # noqa: E402
from tests.sim.harness import Simulation  # noqa: E402

from bench.mainnet_shaped import build, genesis_spec  # noqa: E402
from ethp2p.store.blocks import BlockStore  # noqa: E402


def _wire_bytes(db: Path, lo: int, hi: int) -> int:
    """Bytes of raw header, body and receipts RLP of blocks lo..hi (what peers must send, before snappy)."""
    total = 0
    with BlockStore(db, readonly=True) as store:
        for b in store.canonical_blocks(lo, hi):
            total += len(b.header) + len(b.body or b"") + len(b.receipts or b"")
    return total


def _sent(index: int) -> int:
    """Bytes node ``index`` has sent over its link: the receive counter of the hub's end of its pair
    (IP and TCP included), from /proc/net/dev, which shows this namespace's devices (/sys does not)."""
    for line in Path("/proc/net/dev").read_text().splitlines():
        name, _, counters = line.partition(":")
        if name.strip() == f"sim{index}h":
            return int(counters.split()[0])
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nodes", type=int, default=24)
    p.add_argument("--blocks", type=int, default=20_000)
    p.add_argument("--rate-min", type=float, default=20.0, help="Mbit/s of the thinnest node link")
    p.add_argument("--rate-max", type=float, default=50.0, help="Mbit/s of the widest node link")
    p.add_argument("--expired-every", type=int, default=2, help="every Nth node has expired history (0: none)")
    p.add_argument("--chain", type=Path, default=ROOT / ".cache/bench/shaped")
    p.add_argument("--keep", type=Path, help="keep the work directory (node logs) here")
    args = p.parse_args()
    if os.environ.get("ETHP2P_NETNS") != "private":
        script = 'ip link set lo up && ETHP2P_NETNS=private exec "$@"'
        os.execvp("unshare", ["unshare", "-n", "sh", "-c", script, "sh", sys.executable, *sys.argv])
    genesis, db = build(args.chain, args.blocks + 1)
    spec = genesis_spec()
    n, count = args.nodes, args.blocks
    cut = count // 2
    with BlockStore(db, readonly=True) as store:
        top_hash = store.canonical_hash(count)
    assert top_hash is not None
    rates = [args.rate_min + (args.rate_max - args.rate_min) * i / max(1, n - 1) for i in range(n)]
    every = args.expired_every
    kinds = [roles.expired(cut) if every and i % every == every - 1 else roles.ARCHIVE for i in range(n)]
    work = args.keep or Path(tempfile.mkdtemp(prefix="ethp2p-simbench-"))
    work.mkdir(parents=True, exist_ok=True)
    low = _wire_bytes(db, 1, cut - 1)
    high = _wire_bytes(db, cut, count)
    archive_cap = sum(r for r, k in zip(rates, kinds, strict=True) if k is roles.ARCHIVE) * 1e6 / 8
    all_cap = sum(rates) * 1e6 / 8
    try:
        with Simulation(work / "sim", spec, network_args=["--genesis", str(genesis)]) as sim:
            for role, rate in zip(kinds, rates, strict=True):
                sim.add(role.with_rate(f"{rate:.0f}mbit"), db)
            t0 = time.monotonic()
            sim.start()
            started = time.monotonic() - t0
            client_db = work / "client.db"
            client_db.unlink(missing_ok=True)  # a kept directory's earlier run
            cmd = ["/usr/bin/time", "-f", "RUSAGE %e %U %S %M", sys.executable, "-m", "ethp2p.cli", "fetch"]
            cmd += [f"1..{count}", "--store", str(client_db), "--genesis", str(genesis), "--dns", ""]
            cmd += ["--bootnodes", sim.boot.enode, "--peers", str(n), "--timeout", "120", "--warmup", "3"]
            cmd += ["--checkpoint", f"{count}:0x{top_hash.hex()}"]
            before = [_sent(i) for i in range(n)]
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
            sent = [_sent(i) - b for i, b in enumerate(before)]
            usage = [x for x in r.stderr.splitlines() if x.startswith("RUSAGE")]
            if r.returncode != 0 or not usage:
                print(r.stdout[-4000:], r.stderr[-4000:], sep="\n")
                return 1
        wall, user, sys_, rss_kb = (float(x) for x in usage[-1].split()[1:])
        m = re.search(r"verified blocks: ([\d,]+) new.*in ([\d.]+) s", r.stdout)
        assert m is not None, r.stdout
        verified, seconds = int(m.group(1).replace(",", "")), float(m.group(2))
        wire = sum(sent)
        # The best time any schedule could take for these wire bytes: the lower half only from the
        # archive nodes, the whole from everyone (split in proportion to the raw bytes of each half).
        wire_low = wire * low / (low + high)
        best = max(wire_low / archive_cap, wire / all_cap)
        with BlockStore(client_db, readonly=True) as got:
            stored = len(got.complete_numbers(1, count))
        mbit = 8 / 1e6
        archive_sent = sum(1 for x, k in zip(sent, kinds, strict=True) if x > 1_000_000 and k is roles.ARCHIVE)
        out = [
            f"ethp2p sim_fetch: {n} nodes ({sum(k is roles.ARCHIVE for k in kinds)} archive, "
            f"{sum(k is not roles.ARCHIVE for k in kinds)} expired below {cut}), "
            f"links {args.rate_min:g}-{args.rate_max:g} Mbit/s, {count:,} mainnet-shaped blocks",
            f"nodes up in {started:.1f} s; client: {verified:,} verified, {stored:,} stored",
            f"fetch: {seconds:.1f} s = {verified / seconds:,.0f} blocks/s; {(low + high) / 1e6:,.0f} MB of raw RLP, "
            f"{wire / 1e6:,.0f} MB on the links ({wire / seconds * mbit:,.0f} Mbit/s)",
            f"nodes that sent more than 1 MB: {sum(1 for x in sent if x > 1_000_000)} of {n} (archive {archive_sent})",
            f"capacity: archive nodes {archive_cap * mbit:,.0f} Mbit/s, all nodes {all_cap * mbit:,.0f} Mbit/s; "
            f"best possible {best:.1f} s; achieved {best / seconds:.0%} of it",
            f"client: {wall:.1f} s wall, {(user + sys_) / count * 1000:.2f} CPU s per 1,000 blocks, "
            f"peak RSS {rss_kb / 1024:.0f} MB",
        ]
        print("\n".join(out))
        for line in r.stdout.splitlines():
            if line.startswith(("peers", "per stage", "first", "proof", "missing")):
                print("  " + line)
        return 0
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
