"""What proving headers costs a long fetch: ``ethp2p fetch`` with its anchor at the range's end and at the
farthest a shipped mainnet checkpoint can be (10,965 blocks above it).

On the mainnet-shaped chain (bench/mainnet_shaped.py) served by ``--servers`` processes on loopback, runs
``ethp2p fetch 1..N`` twice per round, alternating, with ``--checkpoint`` at block N (no bridge: only the
range's own headers are proven) and at block N + 10,964 (a bridge of 10,964 extra headers fetched first,
the worst case for any mainnet block up to 21.93M), and prints wall time, blocks/s and the fetch's own
"proof headers" line for each, and the slowdown of the bridge.

Run:  .venv/bin/python bench/proof_overhead.py [--servers 2] [--blocks 20000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.support.servers import start_servers  # noqa: E402

from bench.mainnet_shaped import build  # noqa: E402
from bench.shaped_fetch import ethp2p_fetch  # noqa: E402

#: Blocks between two shipped mainnet checkpoints: the longest bridge a mainnet fetch below 21.93M needs.
CHECKPOINT_SPACING = 10_965


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chain", type=Path, default=ROOT / ".cache/bench/shaped")
    ap.add_argument("--servers", type=int, default=2)
    ap.add_argument("--blocks", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    n = args.blocks
    far = n + CHECKPOINT_SPACING - 1
    genesis, db = build(args.chain, far, quiet=True)
    work = Path(tempfile.mkdtemp(prefix="ethp2p-proof-"))
    print(f"command: python bench/proof_overhead.py {' '.join(sys.argv[1:])}")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"{args.servers} server processes + 1 client on loopback"
    )
    servers = start_servers(args.servers, db, work, network_args=["--genesis", str(genesis)])
    enodes = [s.enode for s in servers]
    walls: dict[str, list[float]] = {"end": [], "bridge": []}
    try:
        for _ in range(args.rounds):
            for label, anchor in (("end", n), ("bridge", far)):
                r = ethp2p_fetch(enodes, genesis, n, work, chain_db=db, anchor=anchor)
                walls[label].append(float(r["wall"]))
                print(
                    f"anchor at {'the range end' if label == 'end' else f'#{anchor:,} (bridge {anchor - n:,})'}: "
                    f"{r['wall']:.1f} s, {n / r['wall']:,.0f} blocks/s wall\n    {r['summary']}",
                    flush=True,
                )
    finally:
        for s in servers:
            s.stop()
    end, bridge = statistics.median(walls["end"]), statistics.median(walls["bridge"])
    print(
        f"median wall over {args.rounds} round(s): {end:.1f} s with the anchor at the end, {bridge:.1f} s with "
        f"a {far - n:,}-header bridge: {100 * (bridge - end) / end:+.1f}%"
    )


if __name__ == "__main__":
    main()
