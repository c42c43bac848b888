"""Export throughput on the mainnet-shaped chain: rows/s, on one core and over several.

Exports ``--blocks`` blocks of the chain bench/mainnet_shaped.py builds (real mainnet bodies
and receipts: ~165 transactions, ~500 logs per block) to Parquet in a scratch directory, all six
tables, three ways:

(a) every column, one process (``--jobs 1``): senders recovered (an ECDSA recovery per
    transaction), contract addresses derived;
(b) without ``from_address`` and ``contract_address``, one process: no sender recovery;
(c) every column, ``--jobs`` processes (default: one per core).

Rows/s counts the rows of all tables written. Each figure is the best of ``--rounds`` runs
(run-to-run spread is printed); the CPU time is the process's (and its workers').

Run:  .venv/bin/python bench/export_rows.py [--blocks 2000] [--rounds 2] [--jobs N]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from bench.mainnet_shaped import build  # noqa: E402
from ethp2p import accel  # noqa: E402
from ethp2p.export import ExportOptions, run_export  # noqa: E402
from ethp2p.store.blocks import BlockStore  # noqa: E402

CHAIN = ROOT / ".cache/bench/shaped"


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run(store: BlockStore, blocks: int, jobs: int, exclude: frozenset[str]) -> tuple[float, int, float]:
    """(seconds, rows, CPU seconds) of one export of blocks 1..blocks."""
    out = Path(tempfile.mkdtemp(prefix="ethp2p-bench-export-"))
    try:
        opts = ExportOptions(out, 1, blocks, exclude_columns=exclude, chunk_size=1000)
        c0, t0 = _cpu(), time.monotonic()
        result = run_export(store, opts, jobs=jobs)
        return time.monotonic() - t0, sum(result.rows.values()), _cpu() - c0
    finally:
        shutil.rmtree(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--blocks", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    db = CHAIN / "chain.db"
    if not db.exists():
        build(CHAIN, max(args.blocks + 1, 2001))
    print(f"command: python bench/export_rows.py --blocks {args.blocks} --rounds {args.rounds} --jobs {args.jobs}")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{accel.implementation()}; chain {db} (bench/mainnet_shaped.py)"
    )
    with BlockStore(db, readonly=True) as store:
        for label, jobs, exclude in (
            ("(a) every column, 1 process", 1, frozenset()),
            ("(b) no sender recovery, 1 process", 1, frozenset({"from_address", "contract_address"})),
            (f"(c) every column, {args.jobs} processes", args.jobs, frozenset()),
        ):
            runs = [run(store, args.blocks, jobs, exclude) for _ in range(args.rounds)]
            secs, rows, cpu = min(runs)
            spread = ", ".join(f"{r[1] / r[0]:,.0f}" for r in runs)
            print(
                f"{label}: {rows:,} rows in {secs:.1f} s = {rows / secs:,.0f} rows/s "
                f"({args.blocks / secs:,.0f} blocks/s; CPU {cpu:.1f} s; runs: {spread} rows/s)"
            )


if __name__ == "__main__":
    main()
