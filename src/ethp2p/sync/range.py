"""Fetching a block range from many peers at once into a store (resumable, bounded memory).

* Headers come first and are proven before any body is asked for
  (:mod:`ethp2p.sync.prove`): linked down from an anchor at or above them (a
  checkpoint, a proven stored block, or a hash enough peers on distinct networks
  agree on), or matched to their pre-merge epoch's accumulator root. A peer whose
  headers contradict that is a ``wrong-chain`` fault: banned, dropped, its data
  unused. Blocks no anchor proves are reported (``unproven``), never stored; every
  stored block records how it was proven.
* Proven blocks are cut into batches; each peer has ``in_flight`` workers taking batches
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
* Blocks no live peer can serve (outside every window, or left out of three answers by
  every peer whose window holds them) are given up on (reported missing) after
  ``stall_timeout`` seconds, not retried for ever; blocks below every live peer's announced
  earliest block (their history has expired) after a few seconds, with what the peers announce.
* A peer's eth/69 range is followed as it changes: a BlockRangeUpdate that raises its latest block
  makes the new blocks its to fetch (its head is probed only at connect).
* Every scheduling decision above is :class:`~ethp2p.sync.schedule.Schedule`'s (pure, time
  passed in); this module runs the workers, the writer, the watchdog and the prover.
* Verified payloads pass through a bounded queue (in blocks and in bytes) to a
  single writer that commits them to the store in batches: fetching slows down
  when writing can't keep up. Batches are also cut to an expected size in bytes,
  so memory stays flat whether blocks are 1 KB or 1 MB.
* Every body batch also asks the peer for the proven header at the batch's end, so a
  peer on another chain is caught even when it was never asked for headers.
* Blocks already complete and proven in the store are skipped: a re-run fetches only
  what is missing (stored blocks that are not proven are fetched again).
* A watchdog reports when nothing has been stored for ``stall_timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from ..chain.header import Header
from ..faults import FaultKind, PeerFault, report
from ..fetch import FetchStageStats, InvalidResponse, fetch_payloads_for_peer
from ..fetch.types import BlockPayload, FetchPeer, PayloadFetchOutcome
from ..fetch.verifier import INLINE, BlockVerifier
from ..p2p.disconnect import DisconnectReason
from ..peers.eth_peer import PeerError, RequestTimeout
from ..store.blocks import BlockRecord, BlockStore
from ..trust.anchors import Anchors, anchors_for
from ..trust.proof import Proof
from .prove import HeaderProver, ProofStats, describe_span, plan_segments
from .schedule import EXPIRED_AFTER, INITIAL_BATCH, MAX_BATCH, Batch, Schedule, serving_window

log = logging.getLogger(__name__)

#: Verified blocks buffered between fetchers and the writer.
MAX_BUFFERED_BLOCKS = 4096
WRITE_BATCH = 1024
#: Verified bytes buffered between fetchers and the writer (mainnet blocks are ~250 KB).
MAX_BUFFERED_BYTES = 64 * 1024 * 1024
#: Proven headers waiting for their bodies (the prover pauses above this; ~1 KB each in memory).
MAX_PROVEN_AHEAD = 32768


@dataclass
class WrongChain:
    """A peer caught serving another chain than the proven one, and where its chain leaves it."""

    peer: str
    #: The block it was caught at (its hash there contradicts an anchor or the proven chain).
    caught_at: int
    reason: str
    #: The first block whose hash differs from the proven chain, when known exactly.
    first_diverging: int | None = None

    def __str__(self) -> str:
        where = (
            f"first diverging block {self.first_diverging:,}"
            if self.first_diverging is not None
            else f"caught at block {self.caught_at:,}"
        )
        return f"{self.peer}: {where}: {self.reason}"


#: Most peers whose headers are kept (as hashes) to find where their chain diverges.
MAX_EVIDENCE_PEERS = 8
#: Most headers kept per such peer.
MAX_EVIDENCE = 8192
#: Blocks below a peer-agreement anchor within which a peer's other hash may be a reorg, not a lie.
REORG_DEPTH = 64
#: Most single-header requests spent finding where a peer caught on another chain diverges.
MAX_BISECT_STEPS = 32


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
    #: The faults by kind (``timeout``, ``wrong-chain``, ``near-agreed-head``, a check's or an error's name).
    fault_kinds: dict[str, int] = field(default_factory=dict)
    missing: list[int] = field(default_factory=list)
    seconds: float = 0.0
    escalated: int = 0
    stalls: list[str] = field(default_factory=list)
    peers_used: int = 0
    max_buffered: int = 0
    batch_limits: dict[str, int] = field(default_factory=dict)
    #: Stored blocks by how they were proven (``Proof.label`` -> count), and by the anchor they rest on.
    proven: dict[str, int] = field(default_factory=dict)
    proven_by: dict[str, int] = field(default_factory=dict)
    #: Wanted blocks no anchor proved (not stored; also in ``missing``).
    unproven: list[int] = field(default_factory=list)
    #: Blocks given up on (not stored; also in ``missing``), by why: what the peers' answers left out
    #: (``receipts``, ``bodies``, ``bodies and receipts``: every peer whose range holds them answered
    #: without them, :data:`~ethp2p.sync.schedule.UNSERVED_AFTER` times each), ``unserved`` (no live
    #: peer's range holds them), ``expired`` (below the earliest block every live peer announces: see
    #: ``expired_ranges``) or ``attempts`` (not delivered in ``MAX_ATTEMPTS`` attempts).
    given_up: dict[str, list[int]] = field(default_factory=dict)
    #: The eth/69 ranges the live peers announced (-> how many peers) when blocks below all of them
    #: were last given up on (``given_up["expired"]``).
    expired_ranges: dict[tuple[int, int], int] = field(default_factory=dict)
    #: Every peer caught on another chain: who, where it diverges, why (it was banned and dropped).
    wrong_chain: list[WrongChain] = field(default_factory=list)
    #: What proving the headers cost and which anchors it used.
    proof: ProofStats = field(default_factory=ProofStats)


def describe_announced(ranges: dict[tuple[int, int], int]) -> str:
    """What peers announce: "the 3 peers announce 8192..16383", or each range with its count."""
    n = sum(ranges.values())
    if not n:
        return "no peer announces a range"
    who = "the only peer announces" if n == 1 else f"the {n} peers announce"
    if len(ranges) == 1:
        ((lo, hi),) = ranges
        return f"{who} {lo}..{hi}"
    parts = sorted(ranges.items(), key=lambda kv: (-kv[1], kv[0]))
    shown = ", ".join(f"{lo}..{hi} ({k})" for (lo, hi), k in parts[:4])
    return f"{who} {shown}" + (f" and {len(parts) - 4} other ranges" if len(parts) > 4 else "")


def _name(peer: FetchPeer) -> str:
    """A peer's short printable label (its id's first 12 hex digits) in stats, faults and logs."""
    return peer.peer_id.hex()[:12]


def _kind_of(e: Exception) -> FaultKind:
    """The fault kind of a failed batch: the fault's own, a timeout, or a broken session/socket."""
    if isinstance(e, PeerFault):
        return e.kind
    if isinstance(e, RequestTimeout):
        return FaultKind.TIMEOUT
    return FaultKind.DISCONNECTED


def declined(outcome: PayloadFetchOutcome) -> bool:
    """Whether the blocks ``outcome`` is missing were *declined*: the peer answered cleanly and
    left them out. Blocks lost to a timeout or a bad answer (any fault) say nothing about what the
    peer holds, so they only back off and never count towards ``schedule.UNSERVED_AFTER``."""
    return bool(outcome.missing_blocks) and not outcome.faults


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
        reprobe: Callable[[FetchPeer, int], Awaitable[object]] | None = None,
        numbers: Sequence[int] | None = None,
        verifier: BlockVerifier = INLINE,
        anchors: Anchors | None = None,
        peer_wait: float | None = None,
    ) -> None:
        """``numbers`` restricts the fetch to those blocks within ``start..end`` (e.g. isolated blocks);
        ``verifier`` is where bodies and receipts are checked (see :mod:`ethp2p.fetch.verifier`);
        ``anchors`` what headers are proven against (default: those of the store's chain, from its
        genesis: for mainnet the shipped checkpoints and accumulator roots); ``peer_wait`` how long
        proving waits for a peer that can serve some headers (default ``min(stall_timeout, 10)``)."""
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
        if anchors is None:
            genesis = store.genesis_hash
            anchors = anchors_for(genesis) if genesis is not None else Anchors()
        self.anchors = anchors
        self.peer_wait = min(stall_timeout, 10.0) if peer_wait is None else peer_wait
        self.numbers = sorted(set(numbers)) if numbers is not None else None
        self.stats = RangeStats()
        #: Every scheduling decision: queue, batches, AIMD, back-off, escalation, bans, giving up.
        self.schedule = Schedule(
            initial_batch=initial_batch,
            max_batch=max_batch,
            limits=dict(batch_limits or {}),
            give_up_after=stall_timeout,
            expired_after=min(stall_timeout, EXPIRED_AFTER),
        )
        #: Learned batch limit per peer id (seeded from the peer cache; the schedule's, updated in place).
        self.limits: dict[bytes, int] = self.schedule.limits
        self._done = asyncio.Event()
        self._buffer: asyncio.Queue[tuple[list[BlockPayload], int] | None] = asyncio.Queue(
            maxsize=max(1, max_buffered_blocks // max(1, initial_batch))
        )
        self._buffered_blocks = 0
        self._buffered_bytes = 0
        self._max_buffered = max_buffered_blocks
        self._space = asyncio.Condition()
        #: Set (and replaced) whenever a batch comes back, freeing its bytes: wakes the workers the
        #: schedule refused for lack of room at once, instead of at their next poll.
        self._room_freed = asyncio.Event()
        self._last_progress = time.monotonic()
        self._prover: HeaderProver | None = None
        #: One byte per block of the range: 1 once proven (what ended unproven is told apart at the end).
        self._ever_proven = bytearray(end - start + 1)
        #: Proven headers (raw, hash) and how they were proven, of blocks not yet stored or given up
        #: on (raw bytes: a third of a parsed Header's memory; parsed again per batch, hash kept).
        self._headers: dict[int, tuple[bytes, bytes]] = {}
        self._proofs: dict[int, tuple[Proof, str]] = {}
        self._ahead = asyncio.Condition()
        self._liars: dict[str, WrongChain] = {}
        #: What the last clean answer that left a block out lacked (``receipts``, ``bodies`` or both),
        #: for blocks not yet stored or given up on: why they are missing, if they end so.
        self._lacking: dict[int, str] = {}
        self._evidence: dict[str, list[tuple[int, bytes]]] = {}
        self._tasks: set[asyncio.Task] = set()

    # ---- scheduling (every decision is the schedule's; these pass it the peer and the time) ----

    def _peer_window(self, peer: FetchPeer) -> tuple[int, int]:
        return serving_window(self.start, self.end, peer.head_number, peer.block_range)

    def _take(self, peer: FetchPeer, name: str) -> Batch | None:
        """The next batch this peer may fetch, removed from the queue (None if nothing fits now)."""
        return self.schedule.take(peer.peer_id, name, self._peer_window(peer), time.monotonic())

    def _adjust(self, peer: FetchPeer, complete: bool) -> None:
        self.stats.batch_limits[_name(peer)] = self.schedule.adjust(peer.peer_id, complete)

    def _failed(self, numbers: Sequence[int], name: str, backoff: float, *, answered: bool = False) -> None:
        """Blocks a peer did not deliver (``answered``: its answer left them out): avoid that peer for a
        while, escalate or give up."""
        failure = self.schedule.failed(numbers, name, backoff, time.monotonic(), answered=answered)
        self.stats.escalated += failure.escalated
        if failure.dropped:
            self.stats.missing.extend(failure.dropped)
            self.stats.given_up.setdefault("attempts", []).extend(failure.dropped)
            self._forget(failure.dropped)
            self._finish(len(failure.dropped))

    def _finish(self, k: int) -> None:
        if self.schedule.finish(k):
            self._done.set()

    # ---- proofs -------------------------------------------------------------------------------

    def _on_proven(self, headers: list[Header], proof: Proof, source: str) -> None:
        for h in headers:
            self._ever_proven[h.number - self.start] = 1
            self._headers[h.number] = (h.raw, h.hash)
            self._proofs[h.number] = (proof, source)
        self.schedule.push([h.number for h in headers])

    def _on_unprovable(self, numbers: list[int], reason: str) -> None:
        log.warning("not proven: %d blocks from %d: %s", len(numbers), numbers[0], reason)
        self.stats.unproven.extend(numbers)
        self._finish(len(numbers))

    def _header(self, number: int) -> Header:
        raw, block_hash = self._headers[number]
        h = Header(raw)
        h.__dict__["hash"] = block_hash  # proven already: no second keccak
        return h

    def _forget(self, numbers: Sequence[int]) -> None:
        """Drop the proven headers of blocks stored or given up on (room for the prover)."""
        for n in numbers:
            self._headers.pop(n, None)
            self._proofs.pop(n, None)
            self._lacking.pop(n, None)
        self.schedule.forget(numbers)
        self._spawn(self._notify_room())

    async def _notify_room(self) -> None:
        async with self._ahead:
            self._ahead.notify_all()

    async def _room(self) -> None:
        async with self._ahead:
            await self._ahead.wait_for(lambda: len(self._headers) < MAX_PROVEN_AHEAD or self._done.is_set())

    def _is_banned(self, peer: FetchPeer) -> bool:
        return self.schedule.banned(_name(peer))

    def _fault(self, kind: FaultKind, text: str) -> None:
        """Record a peer's fault: its description, and one more of its ``kind`` (counted by its string value)."""
        if not isinstance(kind, FaultKind):
            raise TypeError(f"fault kind must be a FaultKind, not {kind!r}")
        self.stats.faults.append(text)
        self.stats.fault_kinds[kind.value] = self.stats.fault_kinds.get(kind.value, 0) + 1

    def _wrong_chain(
        self,
        peer: FetchPeer,
        number: int,
        message: str,
        evidence: Sequence[Header] = (),
        *,
        first: int | None = None,
        reported: bool = False,
    ) -> None:
        """``peer`` is on another chain: ban it from this fetch, drop it, report why (once)."""
        name = _name(peer)
        self.schedule.ban(name)
        if name in self._liars:
            return
        record = WrongChain(name, number, message, first)
        self._liars[name] = record
        self.stats.wrong_chain.append(record)
        self._fault(FaultKind.WRONG_CHAIN, f"{name}: block {number}: wrong-chain: {message}")
        if evidence and len(self._evidence) < MAX_EVIDENCE_PEERS:
            self._evidence[name] = [(h.number, h.hash) for h in evidence[-MAX_EVIDENCE:]]
        log.warning("peer %s is on another chain (caught at block %d): %s", name, number, message)
        if not reported:
            report(peer, FaultKind.WRONG_CHAIN, message)  # a pool peer is banned by its session too
        if not peer.closed:
            self._spawn(_quietly(peer.disconnect(DisconnectReason.BREACH_OF_PROTOCOL)))

    async def _caught(self, peer: FetchPeer, number: int, message: str) -> None:
        """A peer served another header than the proven one at ``number``: find where its chain
        diverges (a few single-header requests, bounded in count and time), then ban and drop it."""
        name = _name(peer)
        if name in self._liars:
            return
        self.schedule.ban(name)  # no more work for it meanwhile
        first = None
        with contextlib.suppress(Exception):
            async with asyncio.timeout(10.0):
                first = await self._bisect(peer, number)
        self._wrong_chain(peer, number, message, first=first)

    def _batch_fault(self, e: Exception) -> FaultKind | None:
        """The kind to record for a batch that failed with ``e``; None for a wrong chain to chase down.

        Just below a hash peers agreed on, an honest peer may have reorged since: not proof of another
        chain (``NEAR_AGREED_HEAD``, its blocks are fetched elsewhere)."""
        if isinstance(e, InvalidResponse) and e.kind is FaultKind.WRONG_CHAIN and e.number is not None:
            return FaultKind.NEAR_AGREED_HEAD if self._near_agreed_tip(e.number) else None
        return _kind_of(e)

    def _near_agreed_tip(self, number: int) -> bool:
        """True for a block proven by peer agreement within :data:`REORG_DEPTH` of the agreed block."""
        got = self._proofs.get(number)
        if got is None or got[0] is not Proof.PEER_AGREEMENT or self._prover is None:
            return False
        return any(0 <= h - number <= REORG_DEPTH for h in self._prover.agreed_heights)

    def _proven_hash(self, number: int) -> bytes | None:
        h = self._headers.get(number)
        if h is not None:
            return h[1]
        proof = self.store.proof(number)
        return self.store.canonical_hash(number) if proof is not None and proof.proven else None

    async def _bisect(self, peer: FetchPeer, caught: int) -> int | None:
        """The first block at which ``peer``'s chain leaves the proven one (None if it can't be told).

        Two linked chains agree below the block where they part and differ from it on, so a
        bisection over blocks whose proven hash is known finds it."""
        lo, hi, exact = self.start, caught, True
        for _ in range(MAX_BISECT_STEPS):
            if lo >= hi:
                break
            mid = (lo + hi) // 2
            want = await asyncio.to_thread(self._proven_hash, mid)
            if want is None:
                lo, exact = mid + 1, False  # not proven (yet): only what lies above can be told
                continue
            raw = await peer.request_headers(mid, 1)
            if not raw:
                return None
            if Header(raw[0]).hash == want:
                lo = mid + 1
            else:
                hi = mid
        return hi if lo >= hi and exact and hi > self.start else None

    def _refine_divergence(self) -> None:
        """For peers caught on headers they sent: the first of those that differs from the proven chain,
        when the one below it matches (else the divergence is below what they sent)."""
        for name, evidence in self._evidence.items():
            record = self._liars[name]
            if record.first_diverging is not None:
                continue
            matched_below = False
            for n, h in sorted(evidence):
                want = self._proven_hash(n)
                if want is None:
                    matched_below = False
                elif want == h:
                    matched_below = True
                else:
                    if matched_below:
                        record.first_diverging = n
                    break

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _record_td(self, number: int, td: int) -> None:
        await asyncio.to_thread(self.store.set_total_difficulty, number, td)

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
                proofs = [self._proofs[p.number] for p in pending]
                rows = [
                    BlockRecord(p.number, p.hash, p.header, p.body, p.receipts, proof)
                    for p, (proof, _) in zip(pending, proofs, strict=True)
                ]
                await asyncio.to_thread(self.store.put_blocks, rows)
                for proof, source in proofs:
                    self.stats.proven[proof.label] = self.stats.proven.get(proof.label, 0) + 1
                    self.stats.proven_by[source] = self.stats.proven_by.get(source, 0) + 1
                self._forget([r.number for r in rows])
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
                lambda: (
                    self._buffered_blocks == 0
                    or (
                        self._buffered_blocks < self._max_buffered and self._buffered_bytes + size <= MAX_BUFFERED_BYTES
                    )
                )
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
            if peer.closed or self.schedule.banned(name):
                return
            batch = self._take(peer, name)
            if batch is None and self.schedule.refused_for_room(name):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._room_freed.wait(), 1.0)
                continue
            if batch is None:
                lo, hi = self._peer_window(peer)
                lowest = self.schedule.lowest_queued()
                if hi < lo and self.reprobe is not None and lowest is not None:
                    # Far behind (or nothing in its range): ask it again about later blocks.
                    with contextlib.suppress(Exception):
                        await self.reprobe(peer, lowest)
                await asyncio.sleep(idle)
                idle = min(idle * 2, 1.0)
                continue
            idle = 0.05
            a, b = batch.first, batch.last
            self.stats.batches += 1
            size = 0
            try:
                outcome = await fetch_payloads_for_peer(
                    peer,
                    a,
                    b,
                    verifier=self.verifier,
                    headers=[self._header(n) for n in range(a, b + 1)],
                    check_chain=True,
                )
                size = sum(len(p.header) + len(p.body) + len(p.receipts) for p in outcome.payloads)
            except (PeerError, InvalidResponse, OSError) as e:
                self.stats.failed_batches += 1
                kind = self._batch_fault(e)
                if kind is None:
                    assert isinstance(e, InvalidResponse) and e.number is not None
                    await self._caught(peer, e.number, str(e))
                elif kind is FaultKind.NEAR_AGREED_HEAD:
                    self._fault(kind, f"{name}: blocks {a}..{b}: disagrees near the agreed head: {e}")
                else:
                    self._fault(kind, f"{name}: blocks {a}..{b}: {type(e).__name__}: {e}")
                self._adjust(peer, complete=False)
                self._failed(batch.numbers, name, backoff=2.0)
                if peer.closed or self.schedule.banned(name):
                    return
                await asyncio.sleep(0.5)
                continue
            finally:
                self.schedule.returned(name, batch, time.monotonic(), size)
                freed, self._room_freed = self._room_freed, asyncio.Event()
                freed.set()
            self.stats.stage.add(outcome.fetch_stats)
            for f in outcome.faults:
                self._fault(f.kind, f"{name}: block {f.number}: {f.kind}: {f.message}")
            if outcome.payloads:
                self.stats.verified_blocks += len(outcome.payloads)
                self.stats.bytes += size
                self.schedule.delivered(len(outcome.payloads), size)
                self.stats.blocks_by_peer[name] = self.stats.blocks_by_peer.get(name, 0) + len(outcome.payloads)
                await self._hand_over(outcome.payloads, size)
            self._adjust(peer, complete=not outcome.missing_blocks)
            if outcome.missing_blocks:
                answered = declined(outcome)
                if answered:
                    self._note_lacking(outcome)
                self._failed(outcome.missing_blocks, name, backoff=1.0, answered=answered)
            # Let the workers the returned batch woke ask first, so that its room is not always
            # taken back by this one (nothing above need have yielded).
            await asyncio.sleep(0)

    def _note_lacking(self, outcome: PayloadFetchOutcome) -> None:
        """Remember what a clean answer left out of each block it is missing (bodies, receipts, both)."""
        no_body, no_receipts = set(outcome.missing_bodies), set(outcome.missing_receipts)
        for n in outcome.missing_blocks:
            if n in no_body and n in no_receipts:
                self._lacking[n] = "bodies and receipts"
            elif n in no_body:
                self._lacking[n] = "bodies"
            elif n in no_receipts:
                self._lacking[n] = "receipts"

    async def _watchdog(self) -> None:
        while not self._done.is_set():
            await asyncio.sleep(min(self.stall_timeout, 5.0))
            idle = time.monotonic() - self._last_progress
            if idle >= self.stall_timeout:
                queue = self.schedule
                msg = (
                    f"no block stored for {idle:.0f}s: {queue.queued} queued (first {queue.queue_preview(3)}), "
                    f"{queue.escalated_waiting} escalated, in flight {queue.in_flight()}, peers {len(self.peers())}"
                )
                log.warning(msg)
                self.stats.stalls.append(msg)
                self._last_progress = time.monotonic()

    def _unservable(self) -> list[int]:
        """Waiting blocks to give up on: none while a live peer may serve any of them (its window
        covers it, and its answers have not kept leaving it out); all of them once none may for
        ``stall_timeout`` seconds (and from then on at once, until one may)."""
        live = ((_name(p), self._peer_window(p)) for p in self.peers() if not self._is_banned(p) and not p.closed)
        give_up = self.schedule.unservable(live, time.monotonic())
        if give_up is None:
            return []
        if give_up.first:
            lo_w, hi_w = give_up.numbers[0], give_up.numbers[-1]
            self.stats.stalls.append(
                f"no peer serves blocks {lo_w}..{hi_w} ({len(give_up.numbers)} waiting); giving up on them"
            )
        return list(give_up.numbers)

    def _expired(self) -> list[int]:
        """Waiting blocks below the earliest block every live peer announces (their history has
        expired): given up on after the schedule's short grace, with what the peers announce."""
        live = [p for p in self.peers() if not self._is_banned(p) and not p.closed]
        give_up = self.schedule.expired([p.block_range[0] if p.block_range else None for p in live], time.monotonic())
        if give_up is None:
            return []
        ranges: dict[tuple[int, int], int] = {}
        for p in live:
            if p.block_range is not None:
                ranges[p.block_range] = ranges.get(p.block_range, 0) + 1
        self.stats.expired_ranges = ranges
        if give_up.first:
            self.stats.stalls.append(
                f"no peer serves {describe_span(give_up.numbers)}: {describe_announced(ranges)}; giving up on them"
            )
        return list(give_up.numbers)

    def _give_up(self, numbers: Sequence[int], why: str | None = None) -> None:
        """Report ``numbers`` (proven, waiting for bodies no peer serves) missing, making room for more
        (``why``: the reason for all of them; default: what the last answers left out, or ``unserved``)."""
        self.schedule.give_up(numbers)
        self.stats.missing.extend(numbers)
        for n in numbers:
            self.stats.given_up.setdefault(why or self._lacking.get(n, "unserved"), []).append(n)
        self._forget(numbers)
        self._finish(len(numbers))

    def _present(self) -> set[int]:
        """Blocks of the range already stored, complete and proven well enough for these anchors: under
        ``strict`` not by peer agreement; and at a checkpoint's height, with its hash."""
        have = self.store.complete_numbers(self.start, self.end, proven=True)
        if self.anchors.strict and have:
            weak = {n for n, p in self.store.proofs(self.start, self.end).items() if p is Proof.PEER_AGREEMENT}
            have -= weak
        for cp in self.anchors.checkpoints_in(self.start, self.end):
            if cp.number in have and self.store.canonical_hash(cp.number) != cp.hash:
                log.warning(
                    "the stored block %d contradicts checkpoint %s: fetching it again "
                    "(run 'ethp2p verify' with that checkpoint to re-check the store)",
                    cp.number,
                    cp,
                )
                have.discard(cp.number)
        return have

    async def run(self) -> RangeStats:
        """Fetch until every block is stored or given up on; returns the stats."""
        t0 = time.monotonic()
        have = await asyncio.to_thread(self._present)
        wanted = self.numbers if self.numbers is not None else range(self.start, self.end + 1)
        todo = [n for n in wanted if self.start <= n <= self.end and n not in have]
        self.stats.skipped_present = len(have)
        self.schedule.expect(len(todo))
        if not todo:
            self.stats.seconds = time.monotonic() - t0
            return self.stats
        facts = _StoreFacts(self.store)
        segments = await asyncio.to_thread(plan_segments, todo, self.anchors, facts)
        prover = HeaderProver(
            self.peers,
            self.anchors,
            facts,
            on_proven=self._on_proven,
            on_unprovable=self._on_unprovable,
            on_wrong_chain=self._wrong_chain,
            banned=self._is_banned,
            room=self._room,
            record_td=self._record_td,
            peer_wait=self.peer_wait,
        )
        self.stats.proof = prover.stats
        self._prover = prover
        proving = asyncio.create_task(prover.run(segments))
        writer = asyncio.create_task(self._writer())
        watchdog = asyncio.create_task(self._watchdog())
        workers: dict[int, list[asyncio.Task]] = {}
        used: set[str] = set()
        try:
            while not self._done.is_set():
                for peer in self.peers():
                    key = id(peer)
                    if key not in workers and not peer.closed:
                        workers[key] = [asyncio.create_task(self._worker(peer)) for _ in range(self.in_flight)]
                        used.add(_name(peer))
                for t in [proving, writer] + [t for ts in workers.values() for t in ts]:
                    if t.done() and not t.cancelled() and t.exception() is not None:
                        # Peer faults are handled inside the worker; anything else is a bug
                        # (in a verifier, say): end the fetch with it instead of stalling.
                        raise t.exception()
                alive = [t for ts in workers.values() for t in ts if not t.done()]
                if not alive and not [p for p in self.peers() if not self._is_banned(p)]:
                    await asyncio.sleep(0.5)
                    if not [p for p in self.peers() if not self._is_banned(p)]:
                        break
                expired = self._expired()
                if expired:
                    self._give_up(expired, "expired")
                lost = self._unservable()
                if lost:
                    self._give_up(lost)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.25):
                        await self._done.wait()
        finally:
            self._done.set()  # a worker that missed its cancellation still stops at its next turn
            proving.cancel()
            for ts in workers.values():
                for t in ts:
                    t.cancel()
            await asyncio.gather(proving, *(t for ts in workers.values() for t in ts), return_exceptions=True)
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if not writer.done():
                await self._buffer.put(None)
            await asyncio.gather(writer, return_exceptions=True)
            watchdog.cancel()
            await asyncio.gather(watchdog, return_exceptions=True)
        # Missing: every wanted block not in the store now (given up on, never proven, or still queued
        # when the fetch ended), whatever the reason; ``unproven`` says which of them no anchor proved.
        await asyncio.to_thread(self._refine_divergence)
        # The headers came from the prover: its requests are the fetch's header stage.
        self.stats.stage.headers_requests += prover.stats.header_requests
        self.stats.stage.headers_bytes += prover.stats.header_bytes
        self.stats.stage.headers_ms += prover.stats.seconds * 1000.0
        now = await asyncio.to_thread(self.store.complete_numbers, self.start, self.end, proven=True)
        self.stats.missing = [n for n in todo if n not in now]
        told = set(self.stats.unproven)
        cut = [n for n in self.stats.missing if not self._ever_proven[n - self.start] and n not in told]
        if cut:
            # The fetch ended (no peer left, or interrupted) before these were proven.
            self.stats.unproven += cut
            self.stats.proof.unprovable.append(
                f"{describe_span(cut)}: the fetch ended before they were proven (no peer left to serve their headers)"
            )
        self.stats.unproven = sorted(self.stats.unproven)
        self.stats.peers_used = len(used)
        self.stats.seconds = time.monotonic() - t0
        return self.stats


class _StoreFacts:
    """What planning needs from the store about its proven blocks (see :class:`~ethp2p.sync.prove.ChainFacts`)."""

    def __init__(self, store: BlockStore) -> None:
        self.store = store

    def link_above(self, number: int) -> tuple[int, bytes, Proof] | None:
        return self.store.proven_link_above(number)

    def lowest_proven_above(self, number: int) -> int | None:
        return self.store.lowest_proven_above(number)

    def proven_td(self, number: int) -> tuple[int, bytes] | None:
        td = self.store.total_difficulty(number)
        proof = self.store.proof(number)
        h = self.store.canonical_hash(number)
        return (td, h) if td is not None and proof is not None and proof.proven and h is not None else None


async def _quietly(coro) -> None:
    with contextlib.suppress(Exception):
        await coro


async def fetch_range_into_store(
    peers: Sequence[FetchPeer] | Callable[[], Sequence[FetchPeer]],
    start: int,
    end: int,
    store: BlockStore,
    **kw,
) -> RangeStats:
    """Fetch blocks ``start..end`` from ``peers`` (a list, or a function giving the live ones) into ``store``."""
    source = peers if callable(peers) else (lambda: peers)
    return await RangeFetcher(source, store, start, end, **kw).run()
