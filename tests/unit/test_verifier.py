"""Verification in worker processes gives exactly the inline results, and never outlives or stalls its owner.

Real mainnet blocks from the vectors (every fork, all transaction types), valid
and corrupted; the worker processes are real spawned processes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ethp2p.fetch.verifier import (
    INLINE,
    MAX_WORKERS,
    BlockToVerify,
    InlineVerifier,
    ProcessVerifier,
    ThreadVerifier,
    _split,
    verify_blocks,
)
from tests.conftest import load_vector

ROOT = Path(__file__).resolve().parents[2]
DERIVED = [b for b in load_vector("mainnet/derived/mainnet_blocks.json")["blocks"] if b.get("receipts_eth69_rlp")]


def _blocks() -> list[BlockToVerify]:
    """Each derived block in eth/69 and eth/68 form, plus corrupted copies of some."""
    out = []
    for b in DERIVED:
        h, body = bytes.fromhex(b["header_rlp"]), bytes.fromhex(b["body_rlp"])
        r69, r68 = bytes.fromhex(b["receipts_eth69_rlp"]), bytes.fromhex(b["receipts_eth68_rlp"])
        out.append(BlockToVerify(h, body, r69, 69))
        out.append(BlockToVerify(h, body, r68, 68))
    bad = []
    with_txs = [blk for blk, b in zip(out, [b for b in DERIVED for _ in (69, 68)], strict=True) if b["tx_count"] > 0]
    for i, blk in enumerate(with_txs[:12]):
        if i % 3 == 0:
            damaged = bytearray(blk.body)
            damaged[len(damaged) // 2] ^= 1
            bad.append(BlockToVerify(blk.header, bytes(damaged), blk.receipts, blk.form))
        elif i % 3 == 1:
            rec = bytearray(blk.receipts)
            rec[-1] ^= 0x40
            bad.append(BlockToVerify(blk.header, blk.body, bytes(rec), blk.form))
        else:
            bad.append(BlockToVerify(blk.header, blk.body, b"\xc0", blk.form))
    mixed = out + bad
    # Interleave the bad ones so a failure in the middle of a worker's slice is exercised.
    return mixed[::2] + mixed[1::2]


BLOCKS = _blocks()


def test_inline_results_valid_and_invalid() -> None:
    res = verify_blocks(BLOCKS)
    assert len(res) == len(BLOCKS)
    good = [r for r in res if r.ok]
    bad = [r for r in res if not r.ok]
    assert len(good) == 2 * len(DERIVED)
    assert len(bad) == 12 and all(r.kind in ("body", "receipts") and r.message for r in bad)
    for blk, r in zip(BLOCKS, res, strict=True):
        if r.ok:
            # eth/69 lists are stored as received (nothing sent back); eth/68 ones stripped of blooms.
            assert (r.stored is None) == (blk.form == 69)
    by_header = {(b.header, b.form): r for b, r in zip(BLOCKS, res, strict=True) if r.ok and b.form == 68}
    for b in DERIVED:
        r = by_header[(bytes.fromhex(b["header_rlp"]), 68)]
        assert r.stored == bytes.fromhex(b["receipts_eth69_rlp"])


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_thread_verifier_matches_inline(workers: int) -> None:
    """Threads (the default with the C extension, which releases the GIL) give the inline results."""
    want = verify_blocks(BLOCKS)
    v = ThreadVerifier(workers)
    try:
        assert asyncio.run(v.verify(BLOCKS)) == want
        for n in (1, 2, 5):
            assert asyncio.run(v.verify(BLOCKS[:n])) == want[:n]
        assert asyncio.run(v.verify([])) == []
        assert v.peak_rss() == 0

        async def concurrent() -> list[list]:  # several batches at once, as a range fetch with many peers does
            return await asyncio.gather(*(v.verify(BLOCKS[i::4]) for i in range(4)))

        assert asyncio.run(concurrent()) == [want[i::4] for i in range(4)]
    finally:
        v.close()
    with pytest.raises(ValueError):
        ThreadVerifier(0)


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_process_verifier_matches_inline(workers: int) -> None:
    want = verify_blocks(BLOCKS)
    v = ProcessVerifier(workers)
    try:
        got = asyncio.run(v.verify(BLOCKS))
        assert got == want
        # Batches of every small size, split over the workers.
        for n in (1, 2, 5):
            assert asyncio.run(v.verify(BLOCKS[:n])) == want[:n]
        assert asyncio.run(v.verify([])) == []
        # Each worker's own peak (a Python process with ethp2p imported: tens of MB, far below
        # what getrusage's RUSAGE_CHILDREN would say if the parent were large when it forked).
        if sys.platform == "linux":
            assert 10 * 2**20 < v.peak_rss() < 500 * 2**20
    finally:
        v.close()
    assert INLINE.peak_rss() == 0


def test_split_covers_the_batch_in_order() -> None:
    parts = _split(BLOCKS, 3)
    assert len(parts) == 3
    assert [b for p in parts for b in p] == list(BLOCKS)
    assert _split(BLOCKS[:2], 3) == [BLOCKS[:1], BLOCKS[1:2]] and _split(BLOCKS, 1) == [BLOCKS]


def test_worker_killed_from_outside_falls_back_inline() -> None:
    want = verify_blocks(BLOCKS)
    v = ProcessVerifier(2)

    async def run() -> None:
        assert await v.verify(BLOCKS[:4]) == want[:4]
        pool = v._pool
        assert pool is not None
        for pid in list(pool._processes):
            os.kill(pid, signal.SIGKILL)
        await asyncio.sleep(0.5)
        assert await v.verify(BLOCKS) == want
        assert v._broken
        assert await v.verify(BLOCKS[:3]) == want[:3]

    try:
        asyncio.run(run())
    finally:
        v.close()


def test_inline_verifier_is_the_same_function() -> None:
    assert asyncio.run(InlineVerifier().verify(BLOCKS)) == verify_blocks(BLOCKS)


def test_worker_count_bounds() -> None:
    with pytest.raises(ValueError):
        ProcessVerifier(0)
    with pytest.raises(ValueError):
        ProcessVerifier(MAX_WORKERS + 1)


def test_workers_exit_when_their_owner_is_killed(tmp_path: Path) -> None:
    """A fetch killed with SIGKILL leaves no verification processes behind."""
    script = textwrap.dedent(
        """
        import asyncio, os, signal, sys
        from ethp2p.fetch.verifier import ProcessVerifier
        from tests.unit.test_verifier import BLOCKS
        v = ProcessVerifier(2)
        asyncio.run(v.verify(BLOCKS))
        print(" ".join(str(p) for p in v._pool._processes), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'src'}")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert r.returncode == -signal.SIGKILL, r.stderr
    pids = [int(p) for p in r.stdout.split()]
    assert len(pids) == 2
    deadline = time.monotonic() + 10
    alive = pids
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [p for p in pids if _alive(p)]
    assert not alive, f"workers still running after their owner died: {alive}"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_a_block_of_refunded_transactions_may_hold_more_receipts_than_gas_used_over_21000() -> None:
    """Three transactions that each cleared storage before London: 31,000 gas each, half refunded,
    so 15,500 gas used each and 46,500 in all (2 x 21,000 would allow only two receipts)."""
    from ethp2p import rlp
    from ethp2p.chain.header import Header
    from ethp2p.chain.verify import max_receipts_for
    from ethp2p.formats.era1 import read_era1
    from tests.support.stores import ERA1_FILES

    real = next(iter(read_era1(ERA1_FILES[0]).blocks)).header
    fields = rlp.decode(real)
    assert isinstance(fields, list)
    fields[9] = (5_000_000).to_bytes(3, "big")  # gasLimit
    fields[10] = (46_500).to_bytes(2, "big")  # gasUsed
    header = Header(rlp.encode(fields))
    assert header.gas_used == 46_500
    assert max_receipts_for(header) >= 3
