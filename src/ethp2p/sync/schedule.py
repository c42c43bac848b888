"""The range fetch's scheduler: which blocks each peer fetches next, and what a failed block costs.

Pure logic, driven by :class:`~ethp2p.sync.range.RangeFetcher`: no IO, no asyncio, no clock reads.
Every decision that depends on time takes ``now`` (seconds, any monotonic origin). It holds:

* the work queue (a min-heap of proven block numbers waiting for their bodies) and the priority
  queue of escalated blocks, which every peer tries first, one block at a time;
* batches: consecutive runs of waiting blocks inside a peer's serving window, at most the peer's
  limit long;
* the bytes in flight: every batch reserves its expected size (blocks x the average block seen so
  far, :data:`INITIAL_BLOCK_ESTIMATE` before any arrived) until it is returned, and a batch is cut
  (or not handed out) so that the reservations of one peer stay within its share (at most
  :data:`MAX_PEER_INFLIGHT_BYTES`, :data:`INFLIGHT_SECONDS` of what its batches deliver per second,
  and an equal part of the total among the peers that want work; a batch at most half of it) and
  those of all peers within :data:`MAX_INFLIGHT_BYTES`: what the fetch has asked for and not yet
  received, verified and handed on is bounded by construction, however many peers it has, and with
  many peers the total is spread over all of them, a thin link holding only a few seconds of data;
* per-peer AIMD limits (grow by :data:`AIMD_STEP` after a complete answer, halve after a partial
  one or a failure), capped so that a batch's expected size stays under :data:`MAX_BATCH_BYTES`;
* per-block-per-peer back-off: a block a peer did not deliver is not offered to that peer again
  until its retry time, so another peer gets it first; after :data:`ESCALATE_AFTER` peers it is
  escalated; after :data:`MAX_ATTEMPTS` attempts in all it is given up on (reported missing);
* peers banned from the fetch, and the blocks in flight per peer;
* the end conditions: the count of blocks still outstanding, and "no peer can serve the waiting
  blocks" (for ``give_up_after`` seconds no live peer's window covers any of them, not counting
  peers that left one out of :data:`UNSERVED_AFTER` answers), after which they are given up on;
  blocks below every live peer's announced earliest block (expired history, which does not come
  back) are given up on sooner, after :data:`EXPIRED_AFTER` seconds.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

INITIAL_BATCH = 128
MIN_BATCH = 8
MAX_BATCH = 1024
AIMD_STEP = 64
#: A block that failed on this many peers goes to the priority queue.
ESCALATE_AFTER = 3
#: Give up on a block (report it missing) after this many failed attempts in all.
MAX_ATTEMPTS = 24
#: A peer that left a block out of this many answers no longer counts as able to serve it (once is
#: not enough: an answer cut short before one block leaves out the blocks after it too).
UNSERVED_AFTER = 3
#: The back-off of a block doubles with each attempt, up to this many times the base.
MAX_BACKOFF_FACTOR = 64
#: Seconds to wait, once blocks below every live peer's announced earliest block (their history has
#: expired) wait, for a peer that serves them to join before giving up on them.
EXPIRED_AFTER = 3.0
#: A batch is cut so that its expected size (blocks x average block seen so far) stays under this.
MAX_BATCH_BYTES = 16 * 1024 * 1024
#: A block's expected size before any block has arrived (a batch of INITIAL_BATCH is MAX_BATCH_BYTES).
INITIAL_BLOCK_ESTIMATE = MAX_BATCH_BYTES // INITIAL_BATCH
#: Most expected bytes of the batches one peer has in flight (two full batches: the default two
#: workers per peer), and of all peers' batches together. A worker that finds no room waits.
MAX_PEER_INFLIGHT_BYTES = 2 * MAX_BATCH_BYTES
MAX_INFLIGHT_BYTES = 256 * 1024 * 1024
#: What a peer may have in flight before any batch of it came back (so that 24 peers that join at
#: once do not fill the total with big first batches), and the least it may have afterwards.
START_PEER_INFLIGHT_BYTES = 8 * 1024 * 1024
MIN_PEER_INFLIGHT_BYTES = 2 * 1024 * 1024
#: Afterwards a peer may have this many seconds of what its batches deliver per second in flight
#: (within the two bounds above): about four seconds of its link with two batches at a time, enough
#: to keep a thin link busy without holding megabytes that would take it half a minute to send.
INFLIGHT_SECONDS = 8.0
#: Weight of the newest batch in a peer's delivery rate (an exponentially weighted mean).
RATE_WEIGHT = 0.3
#: A peer that took a batch or was refused one for lack of room counts, for this many seconds, among
#: the peers the total is shared by (its worker asks again at least every second while it waits).
WAITING_FOR = 2.0

Window = tuple[int, int]


def serving_top(head: int | None, block_range: Window | None) -> int | None:
    """The highest block a peer serves: the latest of its eth/69 ``block_range`` when it announced
    one (BlockRangeUpdate keeps that current as the peer's chain grows, while ``head`` is probed once,
    at connect), else its proven ``head`` (None: not known)."""
    return block_range[1] if block_range is not None else head


def serving_window(start: int, end: int, head: int | None, block_range: Window | None) -> Window:
    """The part of ``start..end`` a peer can serve: inside its eth/69 ``block_range`` when it
    announced one, else not above its proven ``head`` (see :func:`serving_top`; empty when ``hi < lo``)."""
    lo, hi = start, end
    top = serving_top(head, block_range)
    if top is not None:
        hi = min(hi, top)
    if block_range is not None:
        lo = max(lo, block_range[0])
    return lo, hi


@dataclass(frozen=True)
class Batch:
    """Blocks ``first..last`` given to one peer (``escalated``: a single block off the priority queue)."""

    first: int
    last: int
    escalated: bool = False
    #: The expected bytes reserved for it while in flight (released by :meth:`Schedule.returned`).
    reserved: int = field(default=0, compare=False)
    #: When it was handed out (the ``now`` of :meth:`Schedule.take`).
    taken_at: float = field(default=0.0, compare=False)

    @property
    def numbers(self) -> range:
        return range(self.first, self.last + 1)

    def __len__(self) -> int:
        return self.last - self.first + 1


@dataclass(frozen=True)
class Failure:
    """What reporting undelivered blocks decided: those given up on (too many attempts, now missing)
    and how many were escalated to the priority queue."""

    dropped: tuple[int, ...] = ()
    escalated: int = 0


@dataclass(frozen=True)
class GiveUp:
    """Waiting blocks no live peer can serve, to report missing (``first``: the first time since a
    peer last could, when the driver says so once)."""

    numbers: tuple[int, ...]
    first: bool


class Schedule:
    """The scheduling state of one range fetch (see the module docstring).

    Peers are named twice: by ``key`` (their id bytes: AIMD limits are learned per id, and seeded
    from the peer cache) and by ``name`` (a short printable label: back-off, bans, in-flight).
    """

    def __init__(
        self,
        *,
        initial_batch: int = INITIAL_BATCH,
        max_batch: int = MAX_BATCH,
        limits: dict[bytes, int] | None = None,
        give_up_after: float = 30.0,
        expired_after: float = EXPIRED_AFTER,
        peer_bytes: int = MAX_PEER_INFLIGHT_BYTES,
        total_bytes: int = MAX_INFLIGHT_BYTES,
        start_peer_bytes: int = START_PEER_INFLIGHT_BYTES,
    ) -> None:
        self.initial_batch = initial_batch
        #: Bounds on the expected bytes in flight, per peer and in all (see the module docstring).
        self.peer_bytes = peer_bytes
        self.total_bytes = total_bytes
        self.start_peer_bytes = start_peer_bytes
        #: Expected bytes reserved by the batches in flight, by peer name and in all.
        self.reserved: dict[str, int] = {}
        self.reserved_total = 0
        self.max_batch = max_batch
        self.give_up_after = give_up_after
        #: Learned batch limit per peer key (the dict passed in is updated in place).
        self.limits: dict[bytes, int] = limits if limits is not None else {}
        #: Blocks counted as outstanding and not yet finished (stored, given up on or unprovable).
        self.outstanding = 0
        #: Blocks escalated so far, and blocks and bytes delivered (for the average block size).
        self.escalations = 0
        self.delivered_blocks = 0
        self.delivered_bytes = 0
        self._todo: list[int] = []  # min-heap of block numbers waiting
        self._top = -1  # the highest block number ever queued
        self._queued: set[int] = set()
        self._priority: list[int] = []  # escalated blocks, oldest first
        self._avoid: dict[int, dict[str, float]] = {}  # block -> peer name -> retry-after time
        self._attempts: dict[int, int] = {}
        self._unserved: dict[int, dict[str, int]] = {}  # block -> peer name -> answers that left it out
        self._inflight: dict[str, list[Window]] = {}
        #: Peer name -> when it last took a batch or was refused one for room (see :meth:`share`).
        self._wanting: dict[str, float] = {}
        self._refused_room: set[str] = set()  # peers whose last take was refused for room alone
        #: Peer name -> bytes per second its returned batches delivered, a weighted mean (:meth:`allowance`).
        self.rates: dict[str, float] = {}
        self._banned: set[str] = set()
        self._unservable_since: float | None = None
        self._giving_up = False
        self.expired_after = expired_after
        self._expired_floor: int | None = None
        self._expired_since: float | None = None
        self._expired_giving_up = False

    # ---- the queue ----------------------------------------------------------------------------

    def push(self, numbers: Iterable[int]) -> None:
        """Queue ``numbers`` (proven blocks waiting for their bodies); ones already queued are ignored."""
        for n in numbers:
            if n not in self._queued:
                self._queued.add(n)
                heapq.heappush(self._todo, n)
                if n > self._top:
                    self._top = n

    @property
    def queued(self) -> int:
        """How many blocks wait in the work queue (not counting escalated ones)."""
        return len(self._todo)

    @property
    def escalated_waiting(self) -> int:
        """How many escalated blocks wait in the priority queue."""
        return len(self._priority)

    def lowest_queued(self) -> int | None:
        """The lowest block in the work queue (None when it is empty)."""
        return self._todo[0] if self._todo else None

    def queue_preview(self, k: int = 3) -> list[int]:
        """A few waiting blocks, the lowest first (for a stall report)."""
        return self._todo[:k]

    def waiting(self) -> list[int]:
        """Every waiting block, queued or escalated, sorted."""
        return sorted(set(self._todo) | set(self._priority))

    # ---- handing out batches ------------------------------------------------------------------

    def take(self, key: bytes, name: str, window: Window, now: float) -> Batch | None:
        """The next batch for peer ``name`` serving ``window``, removed from the queue and marked in
        flight (None if nothing fits now: banned, empty window, every fitting block backed off, or no
        room for it in the bytes in flight). A peer that gets a batch or is refused one for room
        counts as wanting work (:meth:`share`); one with nothing it could fetch does not."""
        lo, hi = window
        self._refused_room.discard(name)
        if hi < lo or name in self._banned:
            self._wanting.pop(name, None)
            return None
        room = self._room(name, now)
        if room < 1:
            # No room for its bytes. Whether it wants work is told cheaply, without the scan below
            # (every returned batch wakes the workers refused so): a waiting block may be in its window.
            if self._may_serve(lo, hi):
                self._wanting[name] = now
                self._refused_room.add(name)
            else:
                self._wanting.pop(name, None)
            return None
        for i, n in enumerate(self._priority):
            if lo <= n <= hi and self._avoid.get(n, {}).get(name, 0) <= now and not self._left_out(n, name):
                self._wanting[name] = now
                self._priority.pop(i)
                self._queued.discard(n)
                return self._start(name, Batch(n, n, escalated=True), now)
        limit = min(self.limit(key), room)
        skipped: list[int] = []
        batch: list[int] = []
        todo, avoid, unserved = self._todo, self._avoid, self._unserved
        while todo and len(batch) < limit:
            n = heapq.heappop(todo)
            if (
                n < lo
                or n > hi
                or (batch and n != batch[-1] + 1)
                or avoid.get(n, {}).get(name, 0) > now
                or (unserved and n in unserved and self._left_out(n, name))
            ):
                skipped.append(n)
                if batch and (n > hi or n != batch[-1] + 1):
                    break
                continue
            batch.append(n)
        if not batch:
            self._wanting.pop(name, None)  # nothing it could fetch now: it does not count for a share
        else:
            self._wanting[name] = now
        for n in skipped:
            heapq.heappush(todo, n)
        if not batch:
            return None
        for n in batch:
            self._queued.discard(n)
        return self._start(name, Batch(batch[0], batch[-1]), now)

    def _may_serve(self, lo: int, hi: int) -> bool:
        """True if a waiting block may lie in ``lo..hi``: an escalated one does, or the queue's lowest
        is at most ``hi`` and its highest ever queued at least ``lo`` (an over-estimate, in O(1) for
        the queue: a peer counted so may find nothing when it asks again, and then stops counting)."""
        if any(lo <= n <= hi for n in self._priority):
            return True
        return bool(self._todo) and self._todo[0] <= hi and self._top >= lo

    def _left_out(self, n: int, name: str) -> bool:
        """True once peer ``name`` left block ``n`` out of :data:`UNSERVED_AFTER` answers: it is not
        asked for it again (the blocks after it then come in batches of their own)."""
        left_out = self._unserved.get(n)
        return left_out is not None and left_out.get(name, 0) >= UNSERVED_AFTER

    def block_estimate(self) -> int:
        """A block's expected size in bytes: the average delivered so far, else INITIAL_BLOCK_ESTIMATE."""
        if self.delivered_blocks:
            return max(1, self.delivered_bytes // self.delivered_blocks)
        return INITIAL_BLOCK_ESTIMATE

    def share(self, name: str, now: float) -> int:
        """The expected bytes peer ``name`` may have in flight: its :meth:`allowance`, or less when the
        total divided among the peers that want work is less. Those are the peers with
        batches in flight, those that took a batch or were refused one for room in the last
        :data:`WAITING_FOR` seconds (between two batches a peer still counts), and ``name``.

        The shares add up to no more than the total, so every peer that wants work keeps batches in
        flight and its link busy. Without shares, on thin links the first peers to ask held the whole
        total in big batches and the rest waited (24 peers at 4-10 Mbit/s: 10 used, 32% of link
        capacity); with shares counted only among peers refused for room, the total stayed full and
        a returned batch's room went to whichever worker woke first, leaving links idle (64%)."""
        wanting = self._wanting
        for k in [k for k, t in wanting.items() if now - t > WAITING_FOR or k in self._banned]:
            del wanting[k]
        peers = len(self.reserved.keys() | wanting.keys() | {name})
        return min(self.allowance(name), self.total_bytes // peers)

    def allowance(self, name: str) -> int:
        """What peer ``name`` may have in flight by its own speed: :data:`START_PEER_INFLIGHT_BYTES`
        until a batch of it came back, then :data:`INFLIGHT_SECONDS` of its delivery rate, within
        :data:`MIN_PEER_INFLIGHT_BYTES` and the per-peer bound (and never more than that bound)."""
        rate = self.rates.get(name)
        if rate is None:
            return min(self.peer_bytes, self.start_peer_bytes)
        return min(self.peer_bytes, max(MIN_PEER_INFLIGHT_BYTES, int(rate * INFLIGHT_SECONDS)))

    def refused_for_room(self, name: str) -> bool:
        """True if the last batch peer ``name`` asked for was refused for lack of room (bytes in
        flight), not for lack of blocks it could fetch: room comes back with the next returned batch."""
        return name in self._refused_room

    def _room(self, name: str, now: float) -> int:
        """How many blocks peer ``name`` may take now within the byte bounds: at most half its share
        (see :meth:`share`), and at least one when it has nothing in flight and the total has room
        for one, or when nothing at all is in flight (so that blocks larger than a bound still get
        fetched)."""
        estimate = self.block_estimate()
        mine = self.reserved.get(name, 0)
        free_total = self.total_bytes - self.reserved_total
        share = self.share(name, now)
        # A batch is at most half the share, so that a peer has two in flight and its link is not idle
        # while an answer is verified and the next request goes out.
        blocks = max(0, min(share - mine, share // 2, free_total)) // estimate
        if blocks == 0 and mine == 0 and (free_total >= estimate or self.reserved_total == 0):
            return 1
        return blocks

    def _start(self, name: str, batch: Batch, now: float) -> Batch:
        self._inflight.setdefault(name, []).append((batch.first, batch.last))
        size = (batch.last - batch.first + 1) * self.block_estimate()
        self.reserved[name] = self.reserved.get(name, 0) + size
        self.reserved_total += size
        return Batch(batch.first, batch.last, batch.escalated, size, now)

    def returned(self, name: str, batch: Batch, now: float | None = None, delivered: int | None = None) -> None:
        """``batch`` is no longer in flight at ``name`` (answered or failed; report which separately).

        With ``now`` and ``delivered`` (the bytes of its blocks that came: 0 for a failure), those
        bytes over the time it was out update the peer's delivery rate, and so what it may have in
        flight (:meth:`allowance`)."""
        if now is not None and delivered is not None:
            rate = delivered / max(now - batch.taken_at, 0.01)
            old = self.rates.get(name)
            self.rates[name] = rate if old is None else old + RATE_WEIGHT * (rate - old)
        self._inflight[name].remove((batch.first, batch.last))
        left = self.reserved.get(name, 0) - batch.reserved
        if left > 0:
            self.reserved[name] = left
        else:
            self.reserved.pop(name, None)
        self.reserved_total -= batch.reserved

    def in_flight(self) -> dict[str, list[Window]]:
        """The batches in flight, by peer name (peers with none left out)."""
        return {k: list(v) for k, v in self._inflight.items() if v}

    # ---- AIMD ---------------------------------------------------------------------------------

    def limit(self, key: bytes) -> int:
        """The peer's AIMD batch limit, cut to :data:`MAX_BATCH_BYTES` at the average block size seen."""
        limit = self.limits.setdefault(key, self.initial_batch)
        if self.delivered_blocks:
            avg = max(1, self.delivered_bytes // self.delivered_blocks)
            limit = min(limit, max(MIN_BATCH, MAX_BATCH_BYTES // avg))
        return limit

    def adjust(self, key: bytes, complete: bool) -> int:
        """Grow the peer's limit after a ``complete`` answer, halve it otherwise; returns the new limit."""
        cur = self.limit(key)
        new = min(self.max_batch, cur + AIMD_STEP) if complete else max(MIN_BATCH, cur // 2)
        self.limits[key] = new
        return new

    def delivered(self, blocks: int, size: int) -> None:
        """``blocks`` verified blocks of ``size`` bytes in all arrived (the average caps batch sizes)."""
        self.delivered_blocks += blocks
        self.delivered_bytes += size

    # ---- failures -----------------------------------------------------------------------------

    def failed(
        self, numbers: Sequence[int], name: str, backoff: float, now: float, *, answered: bool = False
    ) -> Failure:
        """Blocks peer ``name`` did not deliver: keep them from it for ``backoff`` seconds (doubling per
        attempt), escalate those that failed on :data:`ESCALATE_AFTER` peers, give up on those tried
        :data:`MAX_ATTEMPTS` times (the driver finishes them and reports them missing), queue the rest again.

        ``answered``: the peer answered the batch without these blocks (rather than failing it); after
        :data:`UNSERVED_AFTER` such answers it no longer counts as able to serve one in :meth:`unservable`."""
        retry: list[int] = []
        dropped: list[int] = []
        escalated = 0
        if answered:
            for n in numbers:
                left_out = self._unserved.setdefault(n, {})
                left_out[name] = left_out.get(name, 0) + 1
        for n in numbers:
            attempts = self._attempts.get(n, 0) + 1
            self._attempts[n] = attempts
            tried = self._avoid.setdefault(n, {})
            tried[name] = now + backoff * min(2 ** (attempts - 1), MAX_BACKOFF_FACTOR)
            if attempts >= MAX_ATTEMPTS:
                dropped.append(n)
            elif len(tried) >= ESCALATE_AFTER and n not in self._priority:
                self._priority.append(n)
                escalated += 1
            else:
                retry.append(n)
        self.push(retry)
        self.escalations += escalated
        return Failure(tuple(dropped), escalated)

    def ban(self, name: str) -> None:
        """No more batches for peer ``name`` in this fetch."""
        self._banned.add(name)

    def banned(self, name: str) -> bool:
        return name in self._banned

    # ---- the end ------------------------------------------------------------------------------

    def expect(self, count: int) -> None:
        """``count`` more blocks must be finished before the fetch is done."""
        self.outstanding += count

    def finish(self, count: int) -> bool:
        """``count`` blocks are finished (stored, given up on or unprovable); True once none is left."""
        self.outstanding -= count
        return self.done

    @property
    def done(self) -> bool:
        return self.outstanding <= 0

    def unservable(self, peers: Iterable[tuple[str, Window]], now: float) -> GiveUp | None:
        """The waiting blocks to give up on, given the (name, serving window) of each live unbanned peer.

        None while a batch is in flight or some peer may serve a waiting block (its window covers it
        and it has not left it out of :data:`UNSERVED_AFTER` answers); once none may for
        ``give_up_after`` seconds, all the waiting blocks (and from then on at once, until some peer
        may serve one again)."""
        waiting = self.waiting()
        if not waiting or any(self._inflight.values()):
            return None
        lo_w, hi_w = waiting[0], waiting[-1]
        for name, (lo, hi) in peers:
            if (
                lo <= hi
                and not (hi < lo_w or lo > hi_w)
                and any(lo <= n <= hi and not self._left_out(n, name) for n in waiting)
            ):
                self._unservable_since = None
                self._giving_up = False
                return None
        if self._unservable_since is None:
            self._unservable_since = now
        if self._giving_up or now - self._unservable_since >= self.give_up_after:
            first = not self._giving_up
            self._giving_up = True
            return GiveUp(tuple(waiting), first)
        return None

    def expired(self, floors: Sequence[int | None], now: float) -> GiveUp | None:
        """The waiting blocks below the earliest block every live peer serves, to give up on after only
        ``expired_after`` seconds (not :meth:`unservable`'s ``give_up_after``).

        ``floors``: the eth/69 earliest block each live unbanned peer announced (None for one that
        announced no range: it may serve any block). A node's earliest block only rises (its history
        expires), unlike its latest (its chain grows), so blocks below every peer's are not coming
        from these peers; the grace is for more peers to join. The clock starts when such a block
        first waits and starts again when a peer that serves lower blocks joins; once it has run out,
        later ones are given up on at once (``first`` is False), until such a peer joins."""
        known = [f for f in floors if f is not None]
        floor = min(known) if known and len(known) == len(floors) else None
        if floor is None or (self._expired_floor is not None and floor < self._expired_floor):
            self._expired_since = None
            self._expired_giving_up = False
        self._expired_floor = floor
        if floor is None:
            return None
        lowest = min(self._todo[0] if self._todo else floor, min(self._priority, default=floor))
        if lowest >= floor:
            return None
        if self._expired_since is None:
            self._expired_since = now
        if not self._expired_giving_up and now - self._expired_since < self.expired_after:
            return None
        first = not self._expired_giving_up
        self._expired_giving_up = True
        return GiveUp(
            tuple(sorted({n for n in self._todo if n < floor} | {n for n in self._priority if n < floor})), first
        )

    def give_up(self, numbers: Iterable[int]) -> None:
        """Take ``numbers`` off both queues (the driver finishes them and reports them missing)."""
        lost = set(numbers)
        self._todo = [n for n in self._todo if n not in lost]
        heapq.heapify(self._todo)
        self._priority = [n for n in self._priority if n not in lost]
        self._queued -= lost
        self.forget(lost)

    def forget(self, numbers: Iterable[int]) -> None:
        """Drop what is kept per block (attempts, back-off, who answered without it) for blocks that
        are stored or given up on, so that memory follows the blocks still to fetch."""
        for n in numbers:
            self._attempts.pop(n, None)
            self._avoid.pop(n, None)
            self._unserved.pop(n, None)
