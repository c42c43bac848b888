"""Proving a range's headers before any body is fetched: linkage down from anchors, epoch roots, peer agreement.

A block is proven when parent hashes link it, through headers fetched here, down
from an anchor at or above it: a checkpoint (shipped, the genesis, or the user's),
a proven block already in the store, or (above every checkpoint) a hash enough
peers on distinct networks agree on. A pre-merge block is also proven when all
headers of its epoch give the epoch's shipped accumulator root.

:func:`plan_segments` (pure) cuts the wanted blocks into segments and lists, per
segment, the ways to prove it, cheapest first (counted in headers fetched beyond
the wanted ones). :class:`HeaderProver` runs them against live peers:

* a link route fetches headers from the anchor down in chunks (several peers at
  once) and joins a chunk only where it links to the proven chunk above it; a
  chunk that does not is a ``wrong-chain`` fault of the peer that sent it, which
  is dropped and banned, and the chunk is fetched elsewhere;
* an epoch route fetches a whole epoch from one peer (so a mismatch with the root
  is that peer's fault) starting from a proven total difficulty;
* when a route can't be served (no peer holds those headers), the next one is tried;
  blocks no route proves are reported unprovable, never stored.

Proven headers are handed on (``on_proven``) as they are proven, top chunk first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ..chain.header import Header
from ..chain.verify import VerificationError, verify_fork_fields
from ..faults import report
from ..fetch.requests import MAX_HEADERS_PER_REQUEST, request_headers_batch, request_headers_chunked_with_stats
from ..fetch.types import FetchPeer, InvalidResponse
from ..peers.eth_peer import PeerError
from ..trust.accumulator import epoch_records
from ..trust.agreement import Answer, agree, networks_among, spread_over_networks
from ..trust.anchors import MAX_AGREEMENT_PEERS, Anchors
from ..trust.proof import Proof
from .schedule import serving_top

log = logging.getLogger(__name__)

#: Headers per chunk of a link route (one GetBlockHeaders).
CHUNK = MAX_HEADERS_PER_REQUEST
#: Chunks of one link route in flight at once (on different peers where there are several).
MAX_PARALLEL_CHUNKS = 8
#: Epochs an epoch route may prove first only to learn the total difficulty before a wanted one.
MAX_PREREQUISITE_EPOCHS = 2
#: Seconds to wait for a peer when the live ones only don't reach the headers wanted (their heads are lower).
NONE_SERVES_WAIT = 2.0
#: Most heights tried for peer agreement (the range's end, then the highest heads peers report).
MAX_AGREEMENT_HEIGHTS = 4


class RouteFailed(Exception):
    """A route can't prove its blocks (no peer serves the headers, or peers don't agree)."""


@dataclass(frozen=True, slots=True)
class LinkRoute:
    """Fetch headers from the segment's lowest block up to ``top``; header ``top`` must hash to
    ``anchor_hash`` (None: the hash peers agree on at ``top``)."""

    top: int
    anchor_hash: bytes | None
    proof: Proof
    source: str


@dataclass(frozen=True, slots=True)
class EpochRoute:
    """Fetch all of ``epoch`` (after ``prerequisites``, proven only for the total difficulty before it)
    and match its accumulator root."""

    epoch: int
    prerequisites: tuple[int, ...] = ()

    @property
    def source(self) -> str:
        return f"accumulator root of epoch {self.epoch}"


Route = LinkRoute | EpochRoute


@dataclass
class Segment:
    """Blocks ``lo..hi`` of which ``wanted`` are to be proven, and the routes to try in order."""

    lo: int
    hi: int
    wanted: list[int]
    routes: list[Route]
    #: Headers fetched beyond the wanted ones by the first route.
    extra: int = 0


class ChainFacts(Protocol):
    """What planning needs to know about the proven blocks already stored."""

    def link_above(self, number: int) -> tuple[int, bytes, Proof] | None:
        """If block ``number + 1`` is stored and proven: (number, its parent hash, its proof)."""

    def lowest_proven_above(self, number: int) -> int | None:
        """The lowest stored proven block above ``number``."""

    def proven_td(self, number: int) -> tuple[int, bytes] | None:
        """(total difficulty, hash) of block ``number`` if it is stored, proven and its TD is recorded."""


def _runs(numbers: Sequence[int]) -> list[list[int]]:
    out: list[list[int]] = []
    for n in numbers:
        if out and n == out[-1][-1] + 1:
            out[-1].append(n)
        else:
            out.append([n])
    return out


def _pieces(wanted: Sequence[int], anchors: Anchors) -> list[list[int]]:
    """Runs of ``wanted``, cut at every pre-merge epoch boundary."""
    acc = anchors.accumulator
    out: list[list[int]] = []
    for run in _runs(wanted):
        piece: list[int] = []
        for n in run:
            piece.append(n)
            epoch = acc.epoch_of(n) if acc is not None else None
            if epoch is not None and acc is not None and n == acc.bounds(epoch)[1]:
                out.append(piece)
                piece = []
        if piece:
            out.append(piece)
    return out


def _cut_at_checkpoints(piece: list[int], anchors: Anchors) -> list[list[int]]:
    """``piece`` cut after every checkpoint inside it (each part but the top one ends at its anchor)."""
    out: list[list[int]] = [[]]
    for n in piece:
        out[-1].append(n)
        if anchors.checkpoint(n) is not None and n != piece[-1]:
            out.append([])
    return out


def _link_routes(hi: int, anchors: Anchors, facts: ChainFacts) -> list[LinkRoute]:
    """The anchors at or above ``hi`` to link down from, best first: the nearest proven stored block
    (one proven by peer agreement only where no checkpoint lies above and agreement is allowed),
    the nearest checkpoint, else (unless strict) the hash peers agree on at ``hi``."""
    out: list[LinkRoute] = []
    cp = anchors.checkpoint_at_or_above(hi)
    stored = facts.lowest_proven_above(hi)
    if stored is not None and (cp is None or stored <= cp.number):
        link = facts.link_above(stored - 1)
        weak = link is not None and link[2] is Proof.PEER_AGREEMENT
        if link is not None and not (weak and (cp is not None or anchors.strict)):
            out.append(LinkRoute(stored - 1, link[1], link[2], f"stored block #{stored:,} ({link[2].label})"))
    if cp is not None:
        out.append(LinkRoute(cp.number, cp.hash, Proof.CHECKPOINT, f"checkpoint {cp}"))
    elif not anchors.strict:
        out.append(LinkRoute(hi, None, Proof.PEER_AGREEMENT, f"peer agreement at #{hi:,}"))
    return out


def _epoch_route(epoch: int, anchors: Anchors, facts: ChainFacts, planned: set[int]) -> tuple[EpochRoute, int] | None:
    """The epoch route for ``epoch`` and how many epochs' headers it fetches in all (None: too many)."""
    acc = anchors.accumulator
    assert acc is not None
    prereq: list[int] = []
    k = epoch
    while k > 0 and (k - 1) not in planned and facts.proven_td(acc.bounds(k)[0] - 1) is None:
        k -= 1
        prereq.insert(0, k)
        if len(prereq) > MAX_PREREQUISITE_EPOCHS:
            return None
    return EpochRoute(epoch, tuple(prereq)), len(prereq) + 1


def plan_segments(wanted: Sequence[int], anchors: Anchors, facts: ChainFacts) -> list[Segment]:
    """Cut sorted ``wanted`` block numbers into segments, each with its routes cheapest first.

    A pre-merge epoch's wanted blocks are proven by the epoch's root when that
    fetches no more headers than linking down from the anchor above them; otherwise
    they, like later blocks, are cut at checkpoints and linked down from the anchor
    above each part. Consecutive parts that link down from the same anchor become
    one segment, so a bridge of headers up to an anchor is fetched once.
    """
    acc = anchors.accumulator
    planned_epochs: set[int] = set()
    out: list[Segment] = []
    for piece in _pieces(wanted, anchors):
        lo, hi = piece[0], piece[-1]
        epoch = acc.epoch_of(lo) if acc is not None else None
        prev = out[-1] if out else None
        if (
            epoch is not None
            and prev is not None
            and prev.routes
            and isinstance(prev.routes[0], EpochRoute)
            and prev.routes[0].epoch == epoch
        ):
            # Another run in an epoch already proven by its root: its headers come with it.
            prev.hi, prev.wanted, prev.extra = hi, prev.wanted + piece, prev.extra - len(piece)
            continue
        parts = _cut_at_checkpoints(piece, anchors)
        links = [_link_routes(part[-1], anchors, facts) for part in parts]
        top_link = links[-1][0] if links[-1] else None
        link_cost = top_link.top - hi if top_link is not None else None
        epoch_route: EpochRoute | None = None
        epoch_cost = 0
        if epoch is not None and acc is not None:
            got = _epoch_route(epoch, anchors, facts, planned_epochs)
            if got is not None:
                epoch_route = got[0]
                size = sum(acc.bounds(e)[1] - acc.bounds(e)[0] + 1 for e in (*epoch_route.prerequisites, epoch))
                epoch_cost = size - len(piece)
        if epoch_route is not None and (link_cost is None or epoch_cost <= link_cost):
            out.append(Segment(lo, hi, list(piece), [epoch_route, *links[-1]], epoch_cost))
            planned_epochs.add(epoch_route.epoch)
            continue
        for part, part_links in zip(parts, links, strict=True):
            routes: list[Route] = [*part_links, *([epoch_route] if epoch_route is not None else [])]
            link = part_links[0] if part_links else None
            extra = link.top - part[-1] if link is not None else epoch_cost
            prev = out[-1] if out else None
            if link is not None and prev is not None and prev.routes and _same_anchor(prev, link, part):
                if link.anchor_hash is None:  # agreement: one round, at the higher block
                    link = LinkRoute(part[-1], None, Proof.PEER_AGREEMENT, f"peer agreement at #{part[-1]:,}")
                    prev.routes[0] = link
                prev.hi = part[-1]
                prev.wanted += part
                prev.routes += [r for r in routes[1:] if r not in prev.routes]
                prev.extra = extra
                continue
            out.append(Segment(part[0], part[-1], list(part), routes, extra))
    return out


def _same_anchor(prev: Segment, link: LinkRoute, part: list[int]) -> bool:
    """Whether ``part`` can join ``prev``: both link down from the same anchor, or both from peer
    agreement with at most :data:`CHUNK` x 8 blocks between them (fetched as a bridge)."""
    first = prev.routes[0]
    if not isinstance(first, LinkRoute):
        return False
    if link.anchor_hash is None:
        return first.anchor_hash is None and part[0] - prev.hi <= CHUNK * 8
    return first == link


@dataclass
class ProofStats:
    """What proving cost and found."""

    header_requests: int = 0
    headers: int = 0
    header_bytes: int = 0
    #: Headers fetched only to reach an anchor (bridges, the rest of an epoch, prerequisite epochs).
    extra_headers: int = 0
    seconds: float = 0.0
    #: Route description -> blocks it proved.
    anchors_used: dict[str, int] = field(default_factory=dict)
    #: One line per block range no route could prove, with the reasons.
    unprovable: list[str] = field(default_factory=list)


class HeaderProver:
    """Runs the routes of planned segments against the peers ``peers()`` returns.

    ``on_proven(headers, proof, source)`` receives proven headers of wanted blocks and the
    anchor they were proven from;
    ``on_unprovable(numbers, reason)`` the wanted blocks no route proved;
    ``on_wrong_chain(peer, number, message, evidence)`` every peer caught on another
    chain at block ``number``, with the headers it sent (the caller bans it, and can
    find its first diverging block once the proven chain covers them). ``room()`` is awaited
    before more headers are fetched, so proven headers waiting for their bodies stay bounded.
    """

    def __init__(
        self,
        peers: Callable[[], Sequence[FetchPeer]],
        anchors: Anchors,
        facts: ChainFacts,
        *,
        on_proven: Callable[[list[Header], Proof, str], None],
        on_unprovable: Callable[[list[int], str], None],
        on_wrong_chain: Callable[[FetchPeer, int, str, Sequence[Header]], None],
        banned: Callable[[FetchPeer], bool],
        room: Callable[[], Awaitable[None]],
        record_td: Callable[[int, int], Awaitable[None]] | None = None,
        peer_wait: float = 10.0,
        max_segments: int = 4,
    ) -> None:
        self.peers = peers
        self.anchors = anchors
        self.facts = facts
        self.on_proven = on_proven
        self.on_unprovable = on_unprovable
        self.on_wrong_chain = on_wrong_chain
        self.banned = banned
        self.room = room
        self.record_td = record_td
        self.peer_wait = peer_wait
        self.max_segments = max_segments
        self.stats = ProofStats()
        self._busy: dict[int, int] = {}  # id(peer) -> prover requests in flight
        self._epochs: dict[int, asyncio.Future[tuple[int, bytes]]] = {}
        #: Heights peer-agreement anchors were found at (blocks just below them may still reorg).
        self.agreed_heights: set[int] = set()
        self._wanted: set[int] = set()

    # ---- peers --------------------------------------------------------------------------------

    def _usable(self, hi: int, tried: set[int]) -> list[FetchPeer]:
        """Live, unbanned peers not tried yet that may hold header ``hi`` (headers are kept below
        a node's latest block even where its bodies have expired, so only the top bound counts)."""
        out = []
        for p in self.peers():
            if p.closed or self.banned(p) or id(p) in tried:
                continue
            top = serving_top(p.head_number, p.block_range)
            if top is not None and hi > top:
                continue
            out.append(p)
        return out

    async def _pick(self, hi: int, tried: set[int], what: str) -> FetchPeer:
        """The least busy usable peer. With none, wait for one: up to ``peer_wait`` while no live
        peer is left untried, but only :data:`NONE_SERVES_WAIT` when live peers simply don't reach ``hi``."""
        start = time.monotonic()
        while True:
            usable = self._usable(hi, tried)
            if usable:
                return min(usable, key=lambda p: self._busy.get(id(p), 0))
            untried = [p for p in self.peers() if not p.closed and not self.banned(p) and id(p) not in tried]
            wait = min(self.peer_wait, NONE_SERVES_WAIT) if untried else self.peer_wait
            if time.monotonic() - start >= wait:
                raise RouteFailed(f"no peer served {what}")
            await asyncio.sleep(0.25)

    async def _headers(self, peer: FetchPeer, start: int, count: int) -> list[Header]:
        """``count`` linked headers from ``start`` (fewer if the peer has fewer), fork fields checked."""
        self._busy[id(peer)] = self._busy.get(id(peer), 0) + 1
        try:
            if count <= CHUNK:
                got = await request_headers_batch(peer, start, count)
                self.stats.header_requests += 1
            else:
                res = await request_headers_chunked_with_stats(peer, start, count)
                self.stats.header_requests += res.requests
                got = res.headers
        finally:
            self._busy[id(peer)] -= 1
        self.stats.headers += len(got)
        self.stats.header_bytes += sum(len(h.raw) for h in got)
        for h in got:
            try:
                verify_fork_fields(h, peer.spec)
            except VerificationError as e:
                report(peer, e.kind, str(e))
                raise InvalidResponse(e.kind, str(e)) from None
        return got

    def _emit(self, headers: Iterable[Header], proof: Proof, source: str, remaining: set[int]) -> None:
        mine = [h for h in headers if h.number in remaining]
        if not mine:
            return
        mine.sort(key=lambda h: h.number)
        for h in mine:
            remaining.discard(h.number)
        self.stats.anchors_used[source] = self.stats.anchors_used.get(source, 0) + len(mine)
        self.on_proven(mine, proof, source)

    # ---- link routes --------------------------------------------------------------------------

    async def _whole(self, x: int, y: int, tried: set[int], what: str | None = None) -> tuple[list[Header], FetchPeer]:
        """Headers ``x..y`` whole from one peer, trying peers not in ``tried`` (which it adds to) until
        one has them all; RouteFailed (saying ``what`` was wanted) when none is left."""
        while True:
            peer = await self._pick(y, tried, what or f"headers {x:,}..{y:,}")
            tried.add(id(peer))
            try:
                got = await self._headers(peer, x, y - x + 1)
            except (PeerError, InvalidResponse, OSError) as e:
                log.debug("headers %d..%d from %r: %s", x, y, peer, e)
                continue
            if len(got) == y - x + 1:
                return got, peer

    async def _agree(self, number: int) -> tuple[int, bytes]:
        """(height, hash): the highest block at most ``number`` whose hash enough peers on distinct
        networks serve (``number`` itself, else a lower head some peers report), or RouteFailed."""
        rule = self.anchors.agreement
        deadline = time.monotonic() + self.peer_wait

        def address(p: FetchPeer) -> str | None:
            return p.address[0] if p.address else None

        while networks_among(self._usable(number, set()), address, rule) < rule.min_peers:
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.25)
        heights = [number] + sorted(
            {h for h in (_top_of(p) for p in self._usable(0, set())) if h is not None and h < number}, reverse=True
        )[: MAX_AGREEMENT_HEIGHTS - 1]
        reason = ""
        for height in heights:
            peers = spread_over_networks(self._usable(height, set()), address, rule, MAX_AGREEMENT_PEERS)

            async def ask(p: FetchPeer, height: int = height) -> Answer:
                try:
                    got = await self._headers(p, height, 1)
                except (PeerError, InvalidResponse, OSError):
                    got = []
                return Answer(p.peer_id, address(p), got[0].hash if got else None)

            answers = await asyncio.gather(*(ask(p) for p in peers))
            result = agree(answers, rule)
            if result.block_hash is None:
                reason = reason or f"peer agreement on block {height:,} failed: {result.reason}"
                continue
            by_id = {p.peer_id: p for p in peers}
            agreed = result.block_hash
            for pid in result.dissenters():
                other = next(a.block_hash for a in answers if a.peer_id == pid and a.block_hash is not None)
                self.on_wrong_chain(
                    by_id[pid],
                    height,
                    f"block {height:,} is 0x{other.hex()[:16]}… on this peer; {result.support[agreed]} peers on "
                    f"distinct networks agree on 0x{agreed.hex()[:16]}…",
                    (),
                )
            self.agreed_heights.add(height)
            return height, agreed
        raise RouteFailed(reason)

    async def _link(self, seg: Segment, route: LinkRoute, remaining: set[int]) -> None:
        top, expect = route.top, route.anchor_hash
        if expect is None:
            top, expect = await self._agree(route.top)
            above = sorted(n for n in remaining if n > top)
            if above:
                # Beyond what enough peers serve (a range past the head): not proven, said so.
                remaining.difference_update(above)
                reason = f"above block {top:,}, the highest block enough peers on distinct networks agree on"
                self.stats.unprovable.append(f"{describe_span(above)}: {reason}")
                self.on_unprovable(above, reason)
            if top < seg.lo:
                return
        spans: list[tuple[int, int]] = []
        y = top
        while y >= seg.lo:
            x = max(seg.lo, y - CHUNK + 1)
            spans.append((x, y))
            y = x - 1
        liars: set[int] = set()
        tasks: dict[int, asyncio.Task[tuple[list[Header], FetchPeer]]] = {}  # chunk index -> its fetch
        launched = 0
        try:
            for i, (x, y) in enumerate(spans):
                while launched < len(spans) and launched < i + MAX_PARALLEL_CHUNKS:
                    await self.room()
                    tasks[launched] = asyncio.create_task(self._whole(*spans[launched], set(liars)))
                    launched += 1
                headers, peer = await tasks.pop(i)
                while headers[-1].hash != expect:
                    self.on_wrong_chain(
                        peer,
                        y,
                        f"block {y:,} is 0x{headers[-1].hash.hex()[:16]}… on this peer; the chain proven down from "
                        f"{route.source} has 0x{expect.hex()[:16]}…",
                        headers,
                    )
                    liars.add(id(peer))
                    headers, peer = await self._whole(x, y, set(liars))
                for h in headers:
                    why = self.anchors.contradiction(h.number, h.hash, h.parent_hash)
                    if why is not None:
                        raise RouteFailed(f"the chain linked down from {route.source} contradicts an anchor: {why}")
                expect = headers[0].parent_hash
                self.stats.extra_headers += sum(1 for h in headers if h.number not in self._wanted)
                self._emit(headers, route.proof, route.source, remaining)
        finally:
            for t in tasks.values():
                t.cancel()
            await asyncio.gather(*tasks.values(), return_exceptions=True)

    # ---- epoch routes -------------------------------------------------------------------------

    def reserve_epoch(self, epoch: int) -> None:
        """Announce that an epoch route of ``epoch`` will run (others may wait for its total difficulty)."""
        self._epochs.setdefault(epoch, asyncio.get_running_loop().create_future())

    async def _epoch_start(self, epoch: int, allowed: set[int]) -> tuple[int, bytes | None]:
        """(total difficulty before ``epoch``, hash of the block before it; None before genesis)."""
        acc = self.anchors.accumulator
        assert acc is not None
        if epoch == 0:
            return 0, None
        first = acc.bounds(epoch)[0]
        fut = self._epochs.get(epoch - 1)
        if fut is not None and not (fut.done() and fut.exception() is not None):
            return await self._epoch(epoch - 1, allowed, set())  # proven, or being proven, elsewhere
        known = self.facts.proven_td(first - 1)
        if known is not None:
            return known
        if epoch - 1 in allowed:  # a prerequisite of this route: proven here, at most once
            return await self._epoch(epoch - 1, allowed - {epoch - 1}, set())
        raise RouteFailed(f"the total difficulty before epoch {epoch} is not known")

    async def _epoch(self, epoch: int, allowed: set[int], remaining: set[int]) -> tuple[int, bytes]:
        """Prove ``epoch`` by its root, handing on its ``remaining`` wanted headers; returns (total
        difficulty at its end, hash of its last block). With nothing to hand on, an epoch proven (or
        being proven) by another route is waited for instead of fetched again."""
        fut = self._epochs.get(epoch)
        if fut is not None and not remaining and not (fut.done() and fut.exception() is not None):
            return await asyncio.shield(fut)
        if fut is None or fut.done():
            fut = asyncio.get_running_loop().create_future()
            self._epochs[epoch] = fut
        try:
            result = await self._prove_epoch(epoch, allowed, remaining)
        except BaseException as e:
            if not fut.done():
                fut.set_exception(e if isinstance(e, RouteFailed) else RouteFailed(f"epoch {epoch} was not proven"))
                fut.exception()  # retrieved: those waiting on it re-raise it
            raise
        if not fut.done():
            fut.set_result(result)
        return result

    async def _prove_epoch(self, epoch: int, allowed: set[int], remaining: set[int]) -> tuple[int, bytes]:
        acc = self.anchors.accumulator
        assert acc is not None
        td_before, prev = await self._epoch_start(epoch, allowed)
        first, last = acc.bounds(epoch)
        genesis = self.anchors.checkpoint(0)
        tried: set[int] = set()
        await self.room()
        while True:
            headers, peer = await self._whole(first, last, tried, f"the headers of epoch {epoch} ({first:,}..{last:,})")
            if prev is not None and headers[0].parent_hash != prev:
                why = f"block {first:,} does not link to the proven block {first - 1:,}"
            elif prev is None and genesis is not None and headers[0].hash != genesis.hash:
                why = "block 0 is not the genesis"
            else:
                records, td_end = epoch_records(headers, td_before)
                if acc.matches(epoch, records):
                    self.stats.extra_headers += sum(1 for h in headers if h.number not in self._wanted)
                    self._emit(headers, Proof.ACCUMULATOR, f"accumulator root of epoch {epoch}", remaining)
                    if self.record_td is not None:
                        await self.record_td(last, td_end)
                    return td_end, headers[-1].hash
                why = f"the headers of epoch {epoch} ({first:,}..{last:,}) do not give its accumulator root"
            self.on_wrong_chain(peer, first, why, headers)

    # ---- segments -----------------------------------------------------------------------------

    async def _segment(self, seg: Segment) -> None:
        remaining = set(seg.wanted)
        reasons: list[str] = []
        for route in seg.routes:
            if not remaining:
                break
            try:
                if isinstance(route, LinkRoute):
                    await self._link(Segment(min(remaining), seg.hi, sorted(remaining), [route]), route, remaining)
                else:
                    await self._epoch(route.epoch, set(route.prerequisites), remaining)
            except RouteFailed as e:
                reasons.append(f"{route.source}: {e}")
        if remaining:
            if not seg.routes:
                reasons.append("no anchor at or above it (peer agreement refused: --trust strict)")
            left = sorted(remaining)
            reason = "; ".join(reasons)
            self.stats.unprovable.append(f"{describe_span(left)}: {reason}")
            self.on_unprovable(left, reason)

    async def run(self, segments: Sequence[Segment]) -> None:
        """Prove every segment (up to ``max_segments`` at once, lowest first)."""
        t0 = time.monotonic()
        for seg in segments:
            self._wanted.update(seg.wanted)
            if seg.routes and isinstance(seg.routes[0], EpochRoute):
                self.reserve_epoch(seg.routes[0].epoch)
        gate = asyncio.Semaphore(self.max_segments)

        async def one(seg: Segment) -> None:
            async with gate:
                await self._segment(seg)

        tasks = [asyncio.create_task(one(s)) for s in segments]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for fut in self._epochs.values():
                if not fut.done():
                    fut.cancel()
            self.stats.seconds += time.monotonic() - t0


def _top_of(peer: FetchPeer) -> int | None:
    """The highest block a peer is known to hold (see :func:`~ethp2p.sync.schedule.serving_top`)."""
    return serving_top(peer.head_number, peer.block_range)


def describe_span(numbers: Sequence[int]) -> str:
    """``a..b`` (with the count when not every block between is listed)."""
    lo, hi = numbers[0], numbers[-1]
    if lo == hi:
        return f"block {lo:,}"
    text = f"blocks {lo:,}..{hi:,}"
    return text if hi - lo + 1 == len(numbers) else f"{text} ({len(numbers):,} blocks)"
