"""Fetching a block range from many peers at once into a store (resumable, bounded memory).

* The range is cut into batches; each peer has ``in_flight`` workers taking batches
  sized by the peer's own AIMD limit (grows by a step after a complete answer,
  halves after a partial one or a failure; kept in the peer cache as
  ``aimd_batch_limit``).
* A peer only gets blocks it can serve: not above its proven head, and inside its
  eth/69 block range when it announced one. Peers far behind are skipped and
  re-probed now and then.
* Blocks a peer did not deliver go back on the queue marked "not from that peer"
  (per-block-per-peer back-off), so one peer that keeps omitting one block cannot
  hold the range back. A block that failed on several peers is escalated to a
  priority queue that every peer tries first, one block at a time.
* Verified payloads pass through a bounded queue (in blocks and in bytes) to a
  single writer that commits them to the store in batches: fetching slows down
  when writing can't keep up. Batches are also cut to an expected size in bytes,
  so memory stays flat whether blocks are 1 KB or 1 MB.
* Blocks already complete in the store are skipped: a re-run fetches only what is missing.
* A watchdog reports when nothing has been stored for ``stall_timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..fetch import FetchStageStats, InvalidResponse, fetch_payloads_for_peer
from ..fetch.verifier import INLINE, BlockVerifier
from ..fetch.types import BlockPayload, FetchPeer
from ..peers.eth_peer import PeerError
from ..store.blocks import BlockRecord, BlockStore

log = logging.getLogger(__name__)

INITIAL_BATCH = 128
MIN_BATCH = 8
MAX_BATCH = 1024
AIMD_STEP = 64
#: A block that failed on this many peers goes to the priority queue.
ESCALATE_AFTER = 3
#: Give up on a block (report it missing) after this many failed attempts in all.
MAX_ATTEMPTS = 24
#: Verified blocks buffered between fetchers and the writer.
MAX_BUFFERED_BLOCKS = 4096
WRITE_BATCH = 1024
#: Verified bytes buffered between fetchers and the writer (mainnet blocks are ~250 KB).
MAX_BUFFERED_BYTES = 64 * 1024 * 1024
#: A batch is cut so that its expected size (blocks x average block seen so far) stays under this.
MAX_BATCH_BYTES = 16 * 1024 * 1024


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
    escalated: int = 0
    stalls: list[str] = field(default_factory=list)
    peers_used: int = 0
    max_buffered: int = 0
    batch_limits: dict[str, int] = field(default_factory=dict)


def _name(peer: object) -> str:
    pid = getattr(peer, "peer_id", None)
    return pid.hex()[:12] if isinstance(pid, bytes) else repr(peer)


def _runs(numbers: Sequence[int], size: int) -> list[tuple[int, int]]:
    """Consecutive runs of sorted ``numbers``, each at most ``size`` long."""
    out: list[tuple[int, int]] = []
    i = 0
    while i < len(numbers):
        j = i
        while j + 1 < len(numbers) and numbers[j + 1] == numbers[j] + 1 and j + 1 - i < size:
            j += 1
        out.append((numbers[i], numbers[j]))
        i = j + 1
    return out


class RangeFetcher:
    """Fetches ``start..end`` from the peers ``peers()`` returns, into ``store``."""

    def __init__(
        self,
        peers: Callable[[], Sequence[FetchPeer]],
        store: BlockStore,
        start: int,
        end: int,
        *,
        in_flight: int = 2,
        initial_batch: int = INITIAL_BATCH,
        max_batch: int = MAX_BATCH,
        max_buffered_blocks: int = MAX_BUFFERED_BLOCKS,
        stall_timeout: float = 30.0,
        on_blocks: Callable[[int], None] | None = None,
        batch_limits: dict[bytes, int] | None = None,
        reprobe: Callable[[FetchPeer, int], object] | None = None,
        numbers: Sequence[int] | None = None,
        verifier: BlockVerifier = INLINE,
    ) -> None:
        """``numbers`` restricts the fetch to those blocks within ``start..end`` (e.g. isolated blocks);
        ``verifier`` is where bodies and receipts are checked (see :mod:`ethp2p.fetch.verifier`)."""
        if end < start:
            raise ValueError(f"empty range {start}..{end}")
        self.peers = peers
        self.store = store
        self.start, self.end = start, end
        self.in_flight = in_flight
        self.initial_batch = initial_batch
        self.max_batch = max_batch
        self.stall_timeout = stall_timeout
        self.on_blocks = on_blocks
        self.reprobe = reprobe
        self.verifier = verifier
        self.numbers = sorted(set(numbers)) if numbers is not None else None
        self.stats = RangeStats()
        #: Learned batch limit per peer id (seeded from the peer cache).
        self.limits: dict[bytes, int] = dict(batch_limits or {})
        self._todo: list[int] = []  # min-heap of block numbers waiting
        self._queued: set[int] = set()
        self._priority: list[int] = []  # escalated blocks, tried by every peer first
        self._avoid: dict[int, dict[str, float]] = {}  # block -> peer name -> retry-after time
        self._attempts: dict[int, int] = {}
        self._outstanding = 0
        self._done = asyncio.Event()
        self._buffer: asyncio.Queue[tuple[list[BlockPayload], int] | None] = asyncio.Queue(
            maxsize=max(1, max_buffered_blocks // max(1, initial_batch))
        )
        self._buffered_blocks = 0
        self._buffered_bytes = 0
        self._max_buffered = max_buffered_blocks
        self._space = asyncio.Condition()
        self._last_progress = time.monotonic()
        self._inflight: dict[str, list[tuple[int, int]]] = {}

    # ---- queue --------------------------------------------------------------------------------

    def _push(self, numbers: Sequence[int]) -> None:
        for n in numbers:
            if n not in self._queued:
                self._queued.add(n)
                heapq.heappush(self._todo, n)

    def _peer_window(self, peer: FetchPeer) -> tuple[int, int]:
        lo, hi = self.start, self.end
        head = getattr(peer, "head_number", None)
        if head is not None:
            hi = min(hi, head)
        rng = getattr(peer, "block_range", None)
        if rng is not None:
            lo, hi = max(lo, rng[0]), min(hi, rng[1])
        return lo, hi

    def _take(self, peer: FetchPeer, name: str) -> tuple[int, int] | None:
        """The next batch this peer may fetch, removed from the queue (None if nothing fits now)."""
        now = time.monotonic()
        lo, hi = self._peer_window(peer)
        if hi < lo:
            return None
        # Escalated blocks first, one at a time.
        for i, n in enumerate(self._priority):
            if lo <= n <= hi and self._avoid.get(n, {}).get(name, 0) <= now:
                self._priority.pop(i)
                self._queued.discard(n)
                return n, n
        limit = self._limit(peer)
        skipped: list[int] = []
        batch: list[int] = []
        while self._todo and len(batch) < limit:
            n = heapq.heappop(self._todo)
            if n < lo or n > hi or self._avoid.get(n, {}).get(name, 0) > now or (batch and n != batch[-1] + 1):
                skipped.append(n)
                if batch and (n > hi or n != batch[-1] + 1):
                    break
                continue
            batch.append(n)
        for n in skipped:
            heapq.heappush(self._todo, n)
        for n in batch:
            self._queued.discard(n)
        return (batch[0], batch[-1]) if batch else None

    def _limit(self, peer: FetchPeer) -> int:
        """The peer's AIMD batch limit, cut to MAX_BATCH_BYTES at the average block size seen."""
        pid = getattr(peer, "peer_id", b"")
        limit = self.limits.setdefault(pid, self.initial_batch)
        if self.stats.verified_blocks:
            avg = max(1, self.stats.bytes // self.stats.verified_blocks)
            limit = min(limit, max(MIN_BATCH, MAX_BATCH_BYTES // avg))
        return limit

    def _adjust(self, peer: FetchPeer, complete: bool) -> None:
        pid = getattr(peer, "peer_id", b"")
        cur = self._limit(peer)
        self.limits[pid] = min(self.max_batch, cur + AIMD_STEP) if complete else max(MIN_BATCH, cur // 2)
        self.stats.batch_limits[_name(peer)] = self.limits[pid]

    def _failed(self, numbers: Sequence[int], name: str, backoff: float) -> None:
        """Blocks a peer did not deliver: avoid that peer for a while, escalate or give up."""
        now = time.monotonic()
        retry: list[int] = []
        for n in numbers:
            self._attempts[n] = self._attempts.get(n, 0) + 1
            tried = self._avoid.setdefault(n, {})
            tried[name] = now + backoff * min(2 ** (self._attempts[n] - 1), 64)
            if self._attempts[n] >= MAX_ATTEMPTS:
                self.stats.missing.append(n)
                self._finish(1)
            elif len(tried) >= ESCALATE_AFTER and n not in self._priority:
                self._priority.append(n)
                self.stats.escalated += 1
            else:
                retry.append(n)
        self._push(retry)

    def _finish(self, k: int) -> None:
        self._outstanding -= k
        if self._outstanding <= 0:
            self._done.set()

    # ---- writer -------------------------------------------------------------------------------

    async def _writer(self) -> None:
        pending: list[BlockPayload] = []
        pending_bytes = 0
        while True:
            item = await self._buffer.get()
            if item is not None:
                pending.extend(item[0])
                pending_bytes += item[1]
            if pending and (item is None or len(pending) >= WRITE_BATCH or self._buffer.empty()):
                rows = [BlockRecord(p.number, p.hash, p.header, p.body, p.receipts) for p in pending]
                await asyncio.to_thread(self.store.put_blocks, rows)
                n, size = len(pending), pending_bytes
                pending, pending_bytes = [], 0
                async with self._space:
                    self._buffered_blocks -= n
                    self._buffered_bytes -= size
                    self._space.notify_all()
                self._finish(n)
                self._last_progress = time.monotonic()
                if self.on_blocks:
                    self.on_blocks(n)
            if item is None:
                return

    async def _hand_over(self, payloads: list[BlockPayload], size: int) -> None:
        """Queue verified payloads (``size`` bytes in all) for the writer, waiting for room."""
        async with self._space:
            await self._space.wait_for(
                lambda: self._buffered_blocks == 0
                or (self._buffered_blocks < self._max_buffered and self._buffered_bytes + size <= MAX_BUFFERED_BYTES)
            )
            self._buffered_blocks += len(payloads)
            self._buffered_bytes += size
            self.stats.max_buffered = max(self.stats.max_buffered, self._buffered_blocks)
        await self._buffer.put((payloads, size))

    # ---- workers ------------------------------------------------------------------------------

    async def _worker(self, peer: FetchPeer) -> None:
        name = _name(peer)
        idle = 0.05
        while not self._done.is_set():
            if getattr(peer, "closed", False):
                return
            batch = self._take(peer, name)
            if batch is None:
                lo, hi = self._peer_window(peer)
                if hi < lo and self.reprobe is not None and self._todo:
                    # Far behind (or nothing in its range): ask it again about later blocks.
                    with contextlib.suppress(Exception):
                        await self.reprobe(peer, self._todo[0])
                await asyncio.sleep(idle)
                idle = min(idle * 2, 1.0)
                continue
            idle = 0.05
            a, b = batch
            self._inflight.setdefault(name, []).append(batch)
            self.stats.batches += 1
            try:
                outcome = await fetch_payloads_for_peer(peer, a, b, verifier=self.verifier)
            except (PeerError, InvalidResponse, OSError) as e:
                self.stats.failed_batches += 1
                self.stats.faults.append(f"{name}: blocks {a}..{b}: {type(e).__name__}: {e}")
                self._adjust(peer, complete=False)
                self._failed(list(range(a, b + 1)), name, backoff=2.0)
                if getattr(peer, "closed", False):
                    return
                await asyncio.sleep(0.5)
                continue
            finally:
                self._inflight[name].remove(batch)
            self.stats.stage.add(outcome.fetch_stats)
            for f in outcome.faults:
                self.stats.faults.append(f"{name}: block {f.number}: {f.kind}: {f.message}")
            if outcome.payloads:
                self.stats.verified_blocks += len(outcome.payloads)
                size = sum(len(p.header) + len(p.body) + len(p.receipts) for p in outcome.payloads)
                self.stats.bytes += size
                self.stats.blocks_by_peer[name] = self.stats.blocks_by_peer.get(name, 0) + len(outcome.payloads)
                await self._hand_over(outcome.payloads, size)
            self._adjust(peer, complete=not outcome.missing_blocks)
            if outcome.missing_blocks:
                self._failed(outcome.missing_blocks, name, backoff=1.0)

    async def _watchdog(self) -> None:
        while not self._done.is_set():
            await asyncio.sleep(min(self.stall_timeout, 5.0))
            idle = time.monotonic() - self._last_progress
            if idle >= self.stall_timeout:
                stuck = {k: v for k, v in self._inflight.items() if v}
                msg = (
                    f"no block stored for {idle:.0f}s: {len(self._todo)} queued (first {self._todo[:3]}), "
                    f"{len(self._priority)} escalated, in flight {stuck}, peers {len(self.peers())}"
                )
                log.warning(msg)
                self.stats.stalls.append(msg)
                self._last_progress = time.monotonic()

    def _unservable(self, since: float) -> bool:
        """True once, for ``stall_timeout`` seconds, no live peer's window covers any waiting block."""
        waiting = set(self._todo) | set(self._priority)
        if not waiting or any(v for v in self._inflight.values()):
            self._unservable_since = None
            return False
        lo_w, hi_w = min(waiting), max(waiting)
        for peer in self.peers():
            lo, hi = self._peer_window(peer)
            if lo <= hi and not (hi < lo_w or lo > hi_w) and any(lo <= n <= hi for n in waiting):
                self._unservable_since = None
                return False
        now = time.monotonic()
        if getattr(self, "_unservable_since", None) is None:
            self._unservable_since = now
        if now - self._unservable_since >= self.stall_timeout:  # type: ignore[operator]
            self.stats.stalls.append(f"no peer serves blocks {lo_w}..{hi_w} ({len(waiting)} waiting); giving up on them")
            return True
        return False

    async def run(self) -> RangeStats:
        """Fetch until every block is stored or given up on; returns the stats."""
        t0 = time.monotonic()
        have = await asyncio.to_thread(self.store.complete_numbers, self.start, self.end)
        wanted = self.numbers if self.numbers is not None else range(self.start, self.end + 1)
        todo = [n for n in wanted if self.start <= n <= self.end and n not in have]
        self.stats.skipped_present = len(have)
        self._outstanding = len(todo)
        self._push(todo)
        if not todo:
            self.stats.seconds = time.monotonic() - t0
            return self.stats
        writer = asyncio.create_task(self._writer())
        watchdog = asyncio.create_task(self._watchdog())
        workers: dict[int, list[asyncio.Task]] = {}
        used: set[str] = set()
        try:
            while not self._done.is_set():
                for peer in self.peers():
                    key = id(peer)
                    if key not in workers and not getattr(peer, "closed", False):
                        workers[key] = [asyncio.create_task(self._worker(peer)) for _ in range(self.in_flight)]
                        used.add(_name(peer))
                for t in (t for ts in workers.values() for t in ts if t.done() and not t.cancelled()):
                    if t.exception() is not None:
                        # Peer faults are handled inside the worker; anything else is a bug
                        # (in a verifier, say): end the fetch with it instead of stalling.
                        raise t.exception()  # type: ignore[misc]
                alive = [t for ts in workers.values() for t in ts if not t.done()]
                if not alive and not self.peers():
                    await asyncio.sleep(0.5)
                    if not self.peers():
                        break
                if self._unservable(since=t0):
                    break
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.25):
                        await self._done.wait()
        finally:
            self._done.set()  # a worker that missed its cancellation still stops at its next turn
            for ts in workers.values():
                for t in ts:
                    t.cancel()
            await asyncio.gather(*(t for ts in workers.values() for t in ts), return_exceptions=True)
            await self._buffer.put(None)
            await writer
            watchdog.cancel()
            await asyncio.gather(watchdog, return_exceptions=True)
        leftover = sorted(set(self._todo) | set(self._priority))
        self.stats.missing = sorted(set(self.stats.missing) | set(leftover))
        self.stats.peers_used = len(used)
        self.stats.seconds = time.monotonic() - t0
        return self.stats


async def fetch_range_into_store(
    peers: Sequence[FetchPeer] | Callable[[], Sequence[FetchPeer]],
    start: int,
    end: int,
    store: BlockStore,
    **kw,  # type: ignore[no-untyped-def]
) -> RangeStats:
    """Fetch blocks ``start..end`` from ``peers`` (a list, or a function giving the live ones) into ``store``."""
    source = peers if callable(peers) else (lambda: peers)
    return await RangeFetcher(source, store, start, end, **kw).run()  # type: ignore[arg-type]
