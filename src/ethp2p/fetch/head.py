"""Finding the chain head by fetching headers, never by believing a Status message."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field

from ..chain.header import Header
from ..faults import FaultKind, report
from ..peers.eth_peer import PeerError
from ..peers.pool import NetworkPeer, PeerPool, fetch_best_header
from ..trust.agreement import Answer, agree, spread_over_networks
from ..trust.anchors import MAX_AGREEMENT_PEERS, Anchors
from ..trust.proof import Proof
from .requests import request_headers_batch
from .types import FetchPeer, InvalidResponse

_rotation = itertools.count()


@dataclass
class DiscoveredHead:
    """The highest block served as linked headers, who served it, and what each probed peer gave.

    ``proof`` says how the head is known to be the canonical chain's: ``CHECKPOINT``
    (it is a checkpoint the anchors hold), ``PEER_AGREEMENT`` (enough peers on
    distinct networks serve the same hash at that height; then ``number`` may be a
    little below the highest block one peer served), or None (only served, not
    proven; ``proof_note`` says why).
    """

    number: int
    hash: bytes | None
    peer_id: bytes | None
    per_peer: dict[bytes, int] = field(default_factory=dict)
    requests: int = 0
    proof: Proof | None = None
    proof_note: str = ""


async def _walk(
    peer: NetworkPeer, baseline: int, probe_limit: int, max_rounds: int, anchors: Anchors | None = None
) -> tuple[Header | None, int]:
    """Follow linked headers upward from ``baseline`` on one peer; returns the last one and the request count."""
    last: Header | None = None
    start = baseline
    requests = 0
    for _ in range(max_rounds):
        headers = await request_headers_batch(peer, start, probe_limit, parent=None)
        requests += 1
        if not headers:
            break
        if last is not None and headers[0].hash != last.hash:
            report(peer, FaultKind.HEADERS, f"header {start} changed between requests")
            raise InvalidResponse(FaultKind.HEADERS, f"header {start} changed between requests")
        if anchors is not None:
            for h in headers:
                why = anchors.contradiction(h.number, h.hash, h.parent_hash)
                if why is not None:
                    report(peer, FaultKind.WRONG_CHAIN, why)
                    raise InvalidResponse(FaultKind.WRONG_CHAIN, why, number=h.number)
        last = headers[-1]
        if len(headers) < probe_limit:
            break
        start = last.number  # overlap one header so the next batch must link to this one
    return last, requests


async def _highest_served(peer: NetworkPeer, lo: int, hi: int) -> tuple[int | None, int]:
    """The highest block in ``lo..hi`` whose header ``peer`` serves (None: not one), by bisection over
    one-header requests (a peer serves its chain up to some block), and the request count: at most
    64 requests for any range (block numbers are below 2^63)."""
    found: int | None = None
    requests = 0
    while lo <= hi:
        mid = (lo + hi + 1) // 2
        got = await request_headers_batch(peer, mid, 1)
        requests += 1
        if got:
            found, lo = mid, mid + 1
        else:
            hi = mid - 1
    return found, requests


async def discover_head_p2p(
    pool: PeerPool,
    baseline: int,
    probe_peers: int = 3,
    probe_limit: int = 1024,
    *,
    max_rounds: int = 64,
    anchors: Anchors | None = None,
) -> DiscoveredHead:
    """The highest block number above ``baseline`` that peers actually serve, and how it is proven.

    Asks up to ``probe_peers`` peers (a rotating start, so repeated calls spread the
    load) for headers from the highest one each has already served (its pool head,
    when above ``baseline``; a peer not probed yet has the header of its Status best
    hash fetched first), ``probe_limit`` per request, following full answers upward
    for at most ``max_rounds`` requests. A peer with no such head starts at the
    highest head any peer in the pool has served, after the others have walked. A
    peer that does not serve the block its walk starts at has its highest header
    between ``baseline`` and there found by bisection, and walks from that. A peer's Status
    claim is never used unless its header was fetched. Each probed peer's
    head in the pool is updated to what it proved. If no peer serves even the
    baseline, the result's number is ``baseline`` with no hash.

    With ``anchors``, headers that contradict a checkpoint are a ``wrong-chain``
    fault, and the head is proven as :class:`DiscoveredHead` describes: a
    checkpoint, or (unless the anchors are strict) the agreement of
    ``anchors.agreement.min_peers`` peers on distinct networks at the highest height
    that many serve.
    """
    peers = [p for p in pool.snapshot() if not p.closed]
    result = DiscoveredHead(baseline, None, None)
    if not peers or probe_peers <= 0:
        return result
    offset = next(_rotation) % len(peers)
    chosen = (peers[offset:] + peers[:offset])[:probe_peers]
    # Each walk starts from the highest header its peer has already served (its pool head: the header
    # of its Status best hash, fetched when it joined or just now, or an earlier walk), not from the
    # baseline: walking up 1,023 headers a round from 0 would take 23,000 rounds to reach today's
    # mainnet (and stop at the round limit, #65,472 from 0, long before).
    known: dict[bytes, int] = {}
    for peer in chosen:
        head = pool.get_peer_head(peer.peer_id)
        if head is None:  # not probed yet (it joined just now): fetch its best-hash header first
            best = await fetch_best_header(peer)
            result.requests += 1
            if best is not None:
                head = best.number
                pool.update_peer_head(peer.peer_id, best.number, best.hash)
        if head is not None and head > baseline:
            known[peer.peer_id] = head
    # A peer with no head of its own above the baseline (its Status best hash is not served: made up,
    # reorged away, pruned) starts at the highest head any peer has served, so those walk last.
    for peer in sorted(chosen, key=lambda p: p.peer_id not in known):
        start = known.get(peer.peer_id)
        if start is None:
            highest = max((h for p in peers if (h := pool.get_peer_head(p.peer_id)) is not None), default=None)
            start = highest if highest is not None and highest > baseline else baseline
        try:
            last, n = await _walk(peer, start, max(2, probe_limit), max_rounds, anchors)
            result.requests += n
            if last is None and start > baseline:
                # It does not serve that block (it is behind, or no longer serves its old head: a
                # reorg, pruning): its highest header below, by bisection, then the walk from there.
                found, n = await _highest_served(peer, baseline, start - 1)
                result.requests += n
                if found is not None:
                    last, n = await _walk(peer, found, max(2, probe_limit), max_rounds, anchors)
                    result.requests += n
        except (PeerError, InvalidResponse):
            continue
        if last is None:
            continue
        result.per_peer[peer.peer_id] = last.number
        current = pool.get_peer_head(peer.peer_id)
        if current is None or last.number >= current:
            pool.update_peer_head(peer.peer_id, last.number, last.hash)
        if last.number > result.number or result.hash is None:
            result.number, result.hash, result.peer_id = last.number, last.hash, peer.peer_id
    if anchors is not None and result.hash is not None:
        await _prove_head(pool, result, anchors)
    return result


async def _prove_head(pool: PeerPool, result: DiscoveredHead, anchors: Anchors) -> None:
    """Fill in ``result.proof``: a checkpoint, else peer agreement at the highest height enough peers serve."""
    cp = anchors.checkpoint(result.number)
    if cp is not None and cp.hash == result.hash:
        result.proof, result.proof_note = Proof.CHECKPOINT, f"checkpoint {cp}"
        return
    if anchors.strict:
        result.proof_note = "not proven: no checkpoint at the head, and peer agreement is refused (strict)"
        return
    rule = anchors.agreement
    live = [p for p in pool.snapshot() if not p.closed]
    peers = spread_over_networks(live, lambda p: p.address[0] if p.address else None, rule, MAX_AGREEMENT_PEERS)
    heights = sorted({result.number, *result.per_peer.values()}, reverse=True)
    note = f"fewer than {rule.min_peers} peers to agree"
    for height in heights:
        asked = [p for p in peers if p.head_number is None or p.head_number >= height]
        if len(asked) < rule.min_peers:
            continue

        async def ask(p: NetworkPeer, height: int = height) -> Answer:
            try:
                got = await request_headers_batch(p, height, 1)
            except (PeerError, InvalidResponse):
                got = []
            return Answer(p.peer_id, p.address[0] if p.address else None, got[0].hash if got else None)

        answers = await asyncio.gather(*(ask(p) for p in asked))
        result.requests += len(asked)
        agreement = agree(answers, rule)
        if agreement.block_hash is not None:
            result.number, result.hash = height, agreement.block_hash
            result.peer_id = agreement.servers[agreement.block_hash][0]
            result.proof = Proof.PEER_AGREEMENT
            result.proof_note = (
                f"peer agreement: {agreement.support[agreement.block_hash]} peers on distinct "
                f"/{rule.ipv4_prefix} networks serve it"
            )
            return
        note = f"at #{height:,}: {agreement.reason}"
    result.proof_note = f"not proven: {note}"


async def re_probe_peer_head(pool: PeerPool, peer: FetchPeer, probe_block: int) -> bool:
    """Ask ``peer`` for block ``probe_block``'s header; if it serves it, raise its head to at least that."""
    try:
        raw = await peer.request_headers(probe_block, 1)
    except PeerError:
        return False
    if not raw:
        return False
    try:
        header = Header(raw[0])
    except ValueError:
        report(peer, FaultKind.HEADERS, "malformed header in head probe")
        return False
    if header.number != probe_block:
        report(peer, FaultKind.HEADERS, f"asked for header {probe_block}, got {header.number}")
        return False
    current = pool.get_peer_head(peer.peer_id)
    if current is None or probe_block > current:
        pool.update_peer_head(peer.peer_id, probe_block, header.hash)
    return True
