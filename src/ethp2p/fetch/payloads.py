"""``fetch_payloads_for_peer``: a block range from one peer, every byte verified against its header.

Outcomes a caller can tell apart:

* **transport failure** (``PeerDisconnected``) on any request, or a **timeout** of a
  header request: the peer layer's exception propagates;
* **timeout of a body or receipts request** (the peer answered headers but not
  this): the blocks not yet delivered are in ``missing_blocks`` and a ``timeout``
  fault is recorded (the peer is alive but does not serve the data);
* **invalid headers** (wrong numbers, broken parent links, malformed, too many):
  :class:`InvalidResponse` is raised and the fault is reported to the peer;
* **nothing**: the peer has none of the range: an outcome with no payloads and
  every block in ``missing_blocks``;
* **partial**: blocks whose body or receipts were not delivered are in ``missing_blocks``;
* **invalid bodies or receipts**: those blocks are in ``missing_blocks``, the fault is
  in ``outcome.faults`` and reported to the peer; no invalid byte reaches a payload.
"""

from __future__ import annotations

import asyncio
import time

from ..chain.header import Header
from ..chain.trie import EMPTY_TRIE_ROOT
from ..chain.verify import (
    VerificationError,
    empty_body_for,
    header_proves_empty_body,
    verify_fork_fields,
)
from .requests import (
    MAX_HEADERS_PER_REQUEST,
    report,
    request_bodies_chunked_partial_with_stats,
    request_headers_chunked_with_stats,
    request_receipts_chunked_partial_with_stats,
)
from .types import InvalidResponse
from .verifier import INLINE, BlockToVerify, BlockVerifier
from .types import BlockPayload, ChunkedResponse, Fault, FetchPeer, FetchStageStats, PayloadFetchOutcome, ReceiptsResult

EMPTY_RECEIPTS = b"\xc0"


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000.0


async def fetch_payloads_for_peer(
    peer: FetchPeer,
    start: int,
    end: int,
    *,
    max_headers_per_request: int = MAX_HEADERS_PER_REQUEST,
    parent: Header | None = None,
    verifier: BlockVerifier = INLINE,
) -> PayloadFetchOutcome:
    """Fetch blocks ``start..end`` (inclusive) from ``peer``: headers, then bodies and receipts at once.

    ``verifier`` decides where bodies and receipts are checked (in this thread by
    default; a :class:`~ethp2p.fetch.verifier.ThreadVerifier` or
    :class:`~ethp2p.fetch.verifier.ProcessVerifier` uses other cores).
    """
    if end < start:
        raise ValueError(f"empty range {start}..{end}")
    count = end - start + 1
    stats = FetchStageStats()
    outcome = PayloadFetchOutcome(fetch_stats=stats)

    t0 = time.perf_counter()
    hres = await request_headers_chunked_with_stats(
        peer, start, count, max_per_request=max_headers_per_request, parent=parent
    )
    stats.headers_ms = _ms(t0)
    stats.headers_requests = hres.requests
    headers = hres.headers
    stats.headers_bytes = sum(len(h.raw) for h in headers)
    spec = getattr(peer, "spec", None)
    if spec is not None:
        # Field presence per fork (base fee from London, withdrawals root from Shanghai, ...).
        for h in headers:
            try:
                verify_fork_fields(h, spec)
            except VerificationError as e:
                report(peer, e.kind, str(e))
                raise InvalidResponse(e.kind, str(e)) from None

    bodies: list[bytes | None] = [None] * len(headers)
    need_body: list[int] = []
    for i, h in enumerate(headers):
        if header_proves_empty_body(h):
            bodies[i] = empty_body_for(h)
            stats.bodies_skipped_empty += 1
        else:
            need_body.append(i)
    receipts: list[ReceiptsResult | None] = [None] * len(headers)
    need_receipts: list[int] = []
    for i, h in enumerate(headers):
        if h.receipts_root == EMPTY_TRIE_ROOT:
            receipts[i] = ReceiptsResult(EMPTY_RECEIPTS, 69)
            stats.receipts_skipped_empty += 1
        else:
            need_receipts.append(i)

    async def get_bodies() -> ChunkedResponse[bytes]:
        t = time.perf_counter()
        try:
            return await request_bodies_chunked_partial_with_stats(
                peer, [headers[i].hash for i in need_body], stop_on_timeout=True
            )
        finally:
            stats.bodies_ms = _ms(t)

    async def get_receipts() -> ChunkedResponse[ReceiptsResult]:
        t = time.perf_counter()
        try:
            return await request_receipts_chunked_partial_with_stats(
                peer,
                [headers[i].hash for i in need_receipts],
                headers=[headers[i] for i in need_receipts],
                stop_on_timeout=True,
            )
        finally:
            stats.receipts_ms = _ms(t)

    empty_b: ChunkedResponse[bytes] = ChunkedResponse([], 0)
    empty_r: ChunkedResponse[ReceiptsResult] = ChunkedResponse([], 0)
    bres, rres = await asyncio.gather(
        get_bodies() if need_body else _done(empty_b),
        get_receipts() if need_receipts else _done(empty_r),
    )
    stats.bodies_requests = bres.requests
    stats.receipts_requests = rres.requests
    for what, res in (("bodies", bres), ("receipts", rres)):
        if res.timed_out:
            outcome.faults.append(Fault(None, "timeout", f"{what} request timed out"))
            report(peer, "timeout", f"{what} request timed out")
    for i, b in zip(need_body, bres.results):
        bodies[i] = b
        if b is not None:
            stats.bodies_bytes += len(b)
    for i, r in zip(need_receipts, rres.results):
        receipts[i] = r
        if r is not None:
            stats.receipts_bytes += len(r.raw)

    t = time.perf_counter()
    ready: list[int] = []
    checks: list[BlockToVerify] = []
    for i, (body, rec) in enumerate(zip(bodies, receipts)):
        if body is not None and rec is not None:
            ready.append(i)
            checks.append(BlockToVerify(headers[i].raw, body, rec.raw, rec.form))
    results = await verifier.verify(checks)
    delivered = set()
    for i, check, res in zip(ready, checks, results):
        h = headers[i]
        if not res.ok:
            outcome.faults.append(Fault(h.number, res.kind, res.message))
            report(peer, res.kind, res.message)
            continue
        stored = res.stored if res.stored is not None else check.receipts
        outcome.payloads.append(BlockPayload(h.number, h.hash, h.raw, check.body, stored))
        delivered.add(h.number)
    stats.verify_ms = _ms(t)
    outcome.missing_blocks = [n for n in range(start, end + 1) if n not in delivered]
    return outcome


async def _done(value):  # type: ignore[no-untyped-def]
    return value
