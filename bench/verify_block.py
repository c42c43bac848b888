"""Per-block cost of verification and serving conversions on mainnet-shaped blocks (one core).

Times, on the first 11 blocks of the benchmark chain (one of each real source block),
best of 3: body verification (transactions/withdrawals roots), receipt verification
as it arrives at eth/69 (blooms rebuilt) and eth/68 (blooms on the wire), the
server's eth/69 -> eth/68 conversion, and the receipts root and leaf hashing alone.

Rows are computed by whatever ethp2p.accel selected: the C extension when it is built,
pure Python with ETHP2P_PURE_PYTHON=1 (run both to compare; the first line says which).

Run:  .venv/bin/python bench/verify_block.py [--chain DIR]
      ETHP2P_PURE_PYTHON=1 .venv/bin/python bench/verify_block.py
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from bench.mainnet_shaped import build  # noqa: E402
from ethp2p import accel  # noqa: E402
from ethp2p.chain.header import Header  # noqa: E402
from ethp2p.chain.receipts import receipts69_to_68, receipts69_to_consensus, receipts_root  # noqa: E402
from ethp2p.chain.verify import check_body, verify_body, verify_receipts  # noqa: E402
from ethp2p.crypto.keccak import keccak  # noqa: E402
from ethp2p.fetch.verifier import BlockToVerify, verify_blocks  # noqa: E402
from ethp2p.store.blocks import BlockStore  # noqa: E402


class _Block(NamedTuple):
    """A stored block the bench chain holds in full."""

    header: bytes
    body: bytes
    receipts: bytes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chain", type=Path, default=ROOT / ".cache/bench/shaped")
    args = ap.parse_args()
    _, db = build(args.chain, 11, quiet=True)
    with BlockStore(db, readonly=True) as s:
        blocks = [
            _Block(b.header, b.body, b.receipts)
            for b in s.canonical_blocks(1, 11)
            if b.body is not None and b.receipts is not None
        ]
    assert len(blocks) == 11, "the bench chain lacks blocks"
    headers = [Header(b.header) for b in blocks]
    r68 = [receipts69_to_68(b.receipts) for b in blocks]
    cons = [receipts69_to_consensus(b.receipts) for b in blocks]

    def per_block(name: str, f: Callable[[], object]) -> None:
        best = min(_timed(f) for _ in range(3))
        print(f"{name:<34} {best / len(blocks) * 1000:6.2f} ms/block")

    print(f"command: python bench/verify_block.py {' '.join(sys.argv[1:])}")
    print(f"implementation: {accel.implementation()}{' (' + accel.reason + ')' if accel.reason else ''}")
    print(f"{len(blocks)} blocks, {sum(len(c) for c in cons) / len(cons):.0f} receipts per block on average")
    batch = [BlockToVerify(b.header, b.body, b.receipts, 69) for b in blocks]
    per_block("verify_blocks (a fetch's check)", lambda: verify_blocks(batch))
    per_block("check body (count only)", lambda: [check_body(h, b.body) for h, b in zip(headers, blocks, strict=True)])
    per_block("verify body", lambda: [verify_body(h, b.body) for h, b in zip(headers, blocks, strict=True)])
    per_block(
        "verify receipts (eth/69 form)",
        lambda: [verify_receipts(h, b.receipts, form=69) for h, b in zip(headers, blocks, strict=True)],
    )
    per_block(
        "verify receipts (eth/68 form)",
        lambda: [verify_receipts(h, r, form=68) for h, r in zip(headers, r68, strict=True)],
    )
    per_block("serve: eth/69 -> eth/68", lambda: [receipts69_to_68(b.receipts) for b in blocks])
    per_block("receipts root only", lambda: [receipts_root(c) for c in cons])
    per_block("keccak of each receipt only", lambda: [[keccak(x) for x in c] for c in cons])


def _timed(f: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
