"""Finding the chain head by fetching headers, never by believing a Status message."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from ..chain.header import Header
from ..peers.eth_peer import PeerError
from ..peers.pool import NetworkPeer, PeerPool
from .requests import request_headers_batch
from .types import InvalidResponse

_rotation = itertools.count()


@dataclass
class DiscoveredHead:
    """The highest block proven by linked headers, who proved it, and what each probed peer gave."""

    number: int
    hash: bytes | None
    peer_id: bytes | None
    per_peer: dict[bytes, int] = field(default_factory=dict)
    requests: int = 0


async def _walk(peer: NetworkPeer, baseline: int, probe_limit: int, max_rounds: int) -> tuple[Header | None, int]:
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
            raise InvalidResponse("headers", f"header {start} changed between requests")
        last = headers[-1]
        if len(headers) < probe_limit:
            break
        start = last.number  # overlap one header so the next batch must link to this one
    return last, requests


async def discover_head_p2p(
    pool: PeerPool,
    baseline: int,
    probe_peers: int = 3,
    probe_limit: int = 1024,
    *,
    max_rounds: int = 64,
) -> DiscoveredHead:
    """The highest block number above ``baseline`` that peers actually serve, proven by linked headers.

    Asks up to ``probe_peers`` peers (a rotating start, so repeated calls spread the
    load) for headers from ``baseline`` on, ``probe_limit`` per request, following
    full answers upward. A peer's Status claim is never used. Each probed peer's
    head in the pool is updated to what it proved. If no peer serves even the
    baseline, the result's number is ``baseline`` with no hash.
    """
    peers = [p for p in pool.snapshot() if not p.closed]
    result = DiscoveredHead(baseline, None, None)
    if not peers or probe_peers <= 0:
        return result
    offset = next(_rotation) % len(peers)
    chosen = (peers[offset:] + peers[:offset])[:probe_peers]
    for peer in chosen:
        try:
            last, n = await _walk(peer, baseline, max(2, probe_limit), max_rounds)
        except (PeerError, InvalidResponse):
            continue
        result.requests += n
        if last is None:
            continue
        result.per_peer[peer.peer_id] = last.number
        current = pool.get_peer_head(peer.peer_id)
        if current is None or last.number >= current:
            pool.update_peer_head(peer.peer_id, last.number, last.hash)
        if last.number > result.number or result.hash is None:
            result.number, result.hash, result.peer_id = last.number, last.hash, peer.peer_id
    return result


async def re_probe_peer_head(pool: PeerPool, peer: NetworkPeer, probe_block: int) -> bool:
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
        peer.report_fault("headers", "malformed header in head probe")
        return False
    if header.number != probe_block:
        peer.report_fault("headers", f"asked for header {probe_block}, got {header.number}")
        return False
    current = pool.get_peer_head(peer.peer_id)
    if current is None or probe_block > current:
        pool.update_peer_head(peer.peer_id, probe_block, header.hash)
    return True
