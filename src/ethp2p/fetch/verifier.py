"""Where fetched blocks are checked against their headers: inline, in threads, or in worker processes.

:func:`verify_blocks` is the pure check (the same rules as
:func:`ethp2p.chain.verify.check_body` and :func:`~ethp2p.chain.verify.verify_receipts`),
taking and returning only bytes so that it can run in another process.
:class:`InlineVerifier` runs it in the calling thread; :class:`ThreadVerifier` spreads a
batch over threads (with the C extension, whose checks release the GIL, they use other
cores with nothing copied); :class:`ProcessVerifier` spreads it over worker processes (for
pure Python). Either way verification, most of a fetch's CPU time, runs beside the event
loop while it keeps the sockets busy. Results are the same in all three.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Protocol

from ..chain.header import Header
from ..chain.verify import VerificationError, check_body, verify_receipts
from ..faults import FaultKind
from ..workers import exit_with_parent

log = logging.getLogger(__name__)

#: Most worker processes a :class:`ProcessVerifier` starts.
MAX_WORKERS = 16


@dataclass(frozen=True, slots=True)
class BlockToVerify:
    """One block as received: raw header, raw body, and its receipt list in ``form`` (68 or 69 shape)."""

    header: bytes
    body: bytes
    receipts: bytes
    form: int


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """Outcome for one block: ``stored`` receipts (eth/69 form) when valid, else ``kind`` and ``message``.

    ``stored`` is None for a valid list that arrived in eth/69 form (the stored form is
    the list as received), so a worker process does not send it back.
    """

    ok: bool
    stored: bytes | None = None
    kind: FaultKind | None = None
    message: str = ""


def verify_blocks(blocks: Sequence[BlockToVerify]) -> list[VerifyResult]:
    """Check each block's body and receipts against its header (pure; runs in any process)."""
    out: list[VerifyResult] = []
    for b in blocks:
        try:
            h = Header(b.header)
            tx_count = check_body(h, b.body)
            stored = verify_receipts(h, b.receipts, form=b.form, tx_count=tx_count)
        except VerificationError as e:
            out.append(VerifyResult(False, kind=e.kind, message=str(e)))
            continue
        out.append(VerifyResult(True, stored=None if b.form != 68 else stored))
    return out


class BlockVerifier(Protocol):
    """Something that checks a batch of fetched blocks; results in input order."""

    async def verify(self, blocks: Sequence[BlockToVerify]) -> list[VerifyResult]: ...


class InlineVerifier:
    """Verifies in the calling thread (no processes; what tests and single-block fetches use)."""

    async def verify(self, blocks: Sequence[BlockToVerify]) -> list[VerifyResult]:
        return verify_blocks(blocks)

    def peak_rss(self) -> int:
        """No worker processes: 0."""
        return 0

    def describe(self) -> str:
        """Where blocks are verified, for summaries."""
        return "inline"

    def close(self) -> None:
        """Nothing to release."""


INLINE = InlineVerifier()


class ThreadVerifier:
    """Verifies in ``workers`` threads of this process, a batch split as :class:`ProcessVerifier` does.

    Only useful with the C extension (:mod:`ethp2p.accel`): its checks release the GIL
    while they hash, so threads run them on other cores without copying any block to
    another process. In pure Python the threads would only take turns.
    """

    def __init__(self, workers: int | None = None) -> None:
        self.workers = _worker_count(workers)
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="ethp2p-verify")

    async def verify(self, blocks: Sequence[BlockToVerify]) -> list[VerifyResult]:
        return await _spread(self._pool, blocks, self.workers) if blocks else []

    def peak_rss(self) -> int:
        """No worker processes (the threads' memory is this process's): 0."""
        return 0

    def describe(self) -> str:
        """Where blocks are verified, for summaries."""
        return f"{self.workers} thread{'s' * (self.workers != 1)}"

    def close(self) -> None:
        """Stop the threads (pending work is cancelled)."""
        self._pool.shutdown(wait=True, cancel_futures=True)


def _split(blocks: Sequence[BlockToVerify], workers: int) -> list[Sequence[BlockToVerify]]:
    """Contiguous slices of about equal bytes, one per worker (fewer for small batches)."""
    total = sum(len(b.body) + len(b.receipts) for b in blocks)
    parts = min(workers, len(blocks))
    if parts <= 1:
        return [blocks]
    share = total / parts
    out: list[Sequence[BlockToVerify]] = []
    lo, acc = 0, 0
    for i, b in enumerate(blocks):
        acc += len(b.body) + len(b.receipts)
        if acc >= share * (len(out) + 1) and len(out) < parts - 1:
            out.append(blocks[lo : i + 1])
            lo = i + 1
    out.append(blocks[lo:])
    return [s for s in out if s]


async def _spread(pool: Executor, blocks: Sequence[BlockToVerify], workers: int) -> list[VerifyResult]:
    """Verify ``blocks`` in ``pool``, split by :func:`_split`; results in input order."""
    loop = asyncio.get_running_loop()
    parts = await asyncio.gather(*(loop.run_in_executor(pool, verify_blocks, list(s)) for s in _split(blocks, workers)))
    return [r for part in parts for r in part]


def _worker_count(workers: int | None) -> int:
    """``workers``, or one per core when None; ValueError outside 1..MAX_WORKERS."""
    n = default_workers() if workers is None else workers
    if not 1 <= n <= MAX_WORKERS:
        raise ValueError(f"verify workers must be 1..{MAX_WORKERS}, got {n}")
    return n


def default_workers() -> int:
    """One worker per core (the event loop mostly waits on sockets), at most :data:`MAX_WORKERS`."""
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1))


def _worker_init(parent: int) -> None:
    """In each worker: leave Ctrl-C to the parent, and exit when the parent is gone (even if SIGKILLed)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    exit_with_parent(parent, poll=0.5, code=0)


class ProcessVerifier:
    """Verifies in ``workers`` processes; a batch is split by bytes so the workers share it.

    Workers start on first use (spawned, so nothing of the parent's event loop or
    threads is inherited). If the pool breaks (a worker killed from outside), the
    verifier logs it and verifies inline from then on: a fetch never stalls on it.
    """

    def __init__(self, workers: int | None = None) -> None:
        self.workers = _worker_count(workers)
        self._pool: ProcessPoolExecutor | None = None
        self._broken = False

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_init,
                initargs=(os.getpid(),),
            )
        return self._pool

    async def verify(self, blocks: Sequence[BlockToVerify]) -> list[VerifyResult]:
        if not blocks:
            return []
        if self._broken:
            return verify_blocks(blocks)
        try:
            return await _spread(self._executor(), blocks, self.workers)
        except BrokenProcessPool as e:
            log.warning("verification workers failed (%s); verifying in this process from now on", e)
            self._broken = True
            return verify_blocks(blocks)

    def describe(self) -> str:
        """Where blocks are verified, for summaries."""
        return f"{self.workers} process{'es' * (self.workers != 1)}"

    def peak_rss(self) -> int:
        """The largest peak resident memory, in bytes, of this process's live workers (0 if unknown).

        Read from each worker's ``VmHWM`` (Linux); ``getrusage(RUSAGE_CHILDREN)`` would
        report the parent's size at the moment it forked the worker instead.
        """
        peak = 0
        for child in multiprocessing.active_children():
            try:
                with open(f"/proc/{child.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            peak = max(peak, int(line.split()[1]) * 1024)
            except (OSError, ValueError, IndexError):
                continue
        return peak

    def close(self) -> None:
        """Stop the workers (pending work is cancelled)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


__all__ = [
    "BlockToVerify",
    "BlockVerifier",
    "INLINE",
    "InlineVerifier",
    "ProcessVerifier",
    "ThreadVerifier",
    "VerifyResult",
    "default_workers",
    "verify_blocks",
]
