"""Fetching a block range from several peers at once into a store.

The range is cut into batches; each peer runs a worker that takes the next batch,
fetches it with :func:`~ethp2p.fetch.fetch_payloads_for_peer`, and hands verified
payloads to the writer. Blocks a peer did not deliver go back on the queue as
smaller batches for *another* peer; a peer that fails a batch (timeout,
disconnect, invalid data) sits out for a back-off period. Blocks already complete
in the store are skipped, so a re-run resumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..fetch import FetchStageStats, InvalidResponse, fetch_payloads_for_peer
from ..fetch.types import BlockPayload, FetchPeer
from ..peers.eth_peer import PeerError
from ..store.blocks import BlockRecord, BlockStore

DEFAULT_BATCH = 512
#: A block that failed on this many different peers is given up on (reported missing).
MAX_ATTEMPTS = 8


@dataclass
class RangeStats:
    """What a range fetch did."""

    verified_blocks: int = 0
    skipped_present: int = 0
    bytes: int = 0
    batches: int = 0
    failed_batches: int = 0
    stage: FetchStageStats = field(default_factory=FetchStageStats)
    blocks_by_peer: dict[str, int] = field(default_factory=dict)
    faults: list[str] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)
    seconds: float = 0.0


def _ranges(numbers: Sequence[int], size: int) -> list[tuple[int, int]]:
    """Consecutive runs of ``numbers`` (sorted), cut to at most ``size`` blocks each."""
    out: list[tuple[int, int]] = []
    i = 0
    while i < len(numbers):
        j = i
        while j + 1 < len(numbers) and numbers[j + 1] == numbers[j] + 1 and j + 1 - i < size:
            j += 1
        out.append((numbers[i], numbers[j]))
        i = j + 1
    return out


def _name(peer: object) -> str:
    pid = getattr(peer, "peer_id", None)
    return pid.hex()[:12] if isinstance(pid, bytes) else repr(peer)


async def fetch_range_into_store(
    peers: Sequence[FetchPeer],
    start: int,
    end: int,
    store: BlockStore,
    *,
    batch_size: int = DEFAULT_BATCH,
    on_blocks: Callable[[int], None] | None = None,
) -> RangeStats:
    """Fetch blocks ``start..end`` from ``peers`` into ``store``, verified; returns the stats."""
    t0 = time.monotonic()
    stats = RangeStats()
    have = store.complete_numbers(start, end)
    todo = [n for n in range(start, end + 1) if n not in have]
    stats.skipped_present = len(have)
    if not peers:
        stats.missing = todo
        return stats
    queue: asyncio.Queue[tuple[int, int, frozenset[str]]] = asyncio.Queue()
    for a, b in _ranges(todo, batch_size):
        queue.put_nowait((a, b, frozenset()))
    attempts: dict[int, int] = {}
    outstanding = len(todo)
    done = asyncio.Event()
    if outstanding == 0:
        done.set()
    active = {_name(p) for p in peers}

    def finish(numbers: Sequence[int]) -> None:
        nonlocal outstanding
        outstanding -= len(numbers)
        if outstanding <= 0:
            done.set()

    def give_back(numbers: list[int], tried: frozenset[str]) -> None:
        retry = []
        for n in numbers:
            attempts[n] = attempts.get(n, 0) + 1
            if attempts[n] >= MAX_ATTEMPTS or tried >= active:
                stats.missing.append(n)
            else:
                retry.append(n)
        finish([n for n in numbers if n not in retry])
        for a, b in _ranges(retry, max(1, batch_size // 4)):
            queue.put_nowait((a, b, tried))

    def write(payloads: list[BlockPayload]) -> None:
        store.put_blocks(BlockRecord(p.number, p.hash, p.header, p.body, p.receipts) for p in payloads)

    async def worker(peer: FetchPeer) -> None:
        name = _name(peer)
        backoff = 0.5
        while not done.is_set():
            try:
                a, b, tried = await asyncio.wait_for(queue.get(), 0.5)
            except TimeoutError:
                continue
            if name in tried and len(tried) < len(active):
                # Someone else should try this one; put it back and let another worker take it.
                queue.put_nowait((a, b, tried))
                await asyncio.sleep(0.05)
                continue
            stats.batches += 1
            try:
                outcome = await fetch_payloads_for_peer(peer, a, b)
            except (PeerError, InvalidResponse) as e:
                stats.failed_batches += 1
                stats.faults.append(f"{name}: blocks {a}..{b}: {e}")
                give_back(list(range(a, b + 1)), tried | {name})
                if getattr(peer, "closed", False):
                    active.discard(name)
                    return
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 8.0)
                continue
            backoff = 0.5
            stats.stage.add(outcome.fetch_stats)
            for f in outcome.faults:
                stats.faults.append(f"{name}: block {f.number}: {f.kind}: {f.message}")
            if outcome.payloads:
                await asyncio.to_thread(write, outcome.payloads)
                n = len(outcome.payloads)
                stats.verified_blocks += n
                stats.bytes += sum(len(p.header) + len(p.body) + len(p.receipts) for p in outcome.payloads)
                stats.blocks_by_peer[name] = stats.blocks_by_peer.get(name, 0) + n
                finish([p.number for p in outcome.payloads])
                if on_blocks:
                    on_blocks(n)
            if outcome.missing_blocks:
                give_back(outcome.missing_blocks, tried | {name})

    tasks = [asyncio.create_task(worker(p)) for p in peers]
    try:
        while not done.is_set():
            if all(t.done() for t in tasks):
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), 0.5)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    # Anything still queued when every worker quit is missing.
    while not queue.empty():
        a, b, _ = queue.get_nowait()
        stats.missing.extend(range(a, b + 1))
    stats.missing.sort()
    stats.seconds = time.monotonic() - t0
    return stats
