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
* **partial**: blocks whose body or receipts were not delivered are in ``missing_blocks`` (and in
  ``missing_bodies`` or ``missing_receipts``, saying which);
* **invalid bodies or receipts**: those blocks are in ``missing_blocks``, the fault is
  in ``outcome.faults`` and reported to the peer; no invalid byte reaches a payload.

Payloads are checked against their headers, which is self-consistency, not proof
that the blocks are mainnet's: that is what :mod:`ethp2p.sync` adds (headers proven
by linkage to an anchor first, then passed in here as ``headers`` with
``check_chain``: the peer must be on that chain, or it is a ``wrong-chain`` fault).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from ..chain.header import Header, HeaderError
from ..chain.trie import EMPTY_TRIE_ROOT
from ..chain.verify import (
    VerificationError,
    empty_body_for,
    header_proves_empty_body,
    verify_fork_fields,
)
from ..faults import FaultKind, report
from ..peers.eth_peer import PeerError
from .requests import (
    MAX_HEADERS_PER_REQUEST,
    request_bodies_chunked_partial_with_stats,
    request_headers_chunked_with_stats,
    request_receipts_chunked_partial_with_stats,
)
from .types import (
    BlockPayload,
    ChunkedResponse,
    Fault,
    FetchPeer,
    FetchStageStats,
    InvalidResponse,
    PayloadFetchOutcome,
    ReceiptsResult,
)
from .verifier import INLINE, BlockToVerify, BlockVerifier

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
    headers: Sequence[Header] | None = None,
    check_chain: bool = False,
) -> PayloadFetchOutcome:
    """Fetch blocks ``start..end`` (inclusive) from ``peer``: headers, then bodies and receipts at once.

    ``verifier`` decides where bodies and receipts are checked (in this thread by
    default; a :class:`~ethp2p.fetch.verifier.ThreadVerifier` or
    :class:`~ethp2p.fetch.verifier.ProcessVerifier` uses other cores).

    ``headers`` (blocks ``start..end``, already checked, e.g. proven by linkage) are
    used instead of asking the peer for them. With ``check_chain`` the peer is asked
    for header ``end`` alongside the bodies: another hash there means the peer is on
    another chain (:class:`InvalidResponse` of kind ``wrong-chain``, with the block in
    ``number``; the caller reports it); no such header means it can't serve the range
    (every block missing).
    """
    if end < start:
        raise ValueError(f"empty range {start}..{end}")
    count = end - start + 1
    stats = FetchStageStats()
    outcome = PayloadFetchOutcome(fetch_stats=stats)

    if headers is not None:
        headers = list(headers)
        if len(headers) != count or any(h.number != start + i for i, h in enumerate(headers)):
            raise ValueError(f"headers given for {start}..{end} are not exactly those blocks")
        spot = asyncio.ensure_future(_chain_check(peer, headers[-1])) if check_chain else None
        try:
            return await _fetch_payloads(peer, start, end, headers, stats, outcome, verifier, spot)
        except (PeerError, InvalidResponse, OSError):
            # A peer caught on another chain is dropped at once, which fails its other requests:
            # the wrong chain is what to report, not the disconnect that followed it.
            if spot is not None and spot.done() and not spot.cancelled():
                wrong = spot.exception()
                if isinstance(wrong, InvalidResponse):
                    raise wrong from None
            raise
        finally:
            if spot is not None and not spot.done():
                spot.cancel()
                await asyncio.gather(spot, return_exceptions=True)

    t0 = time.perf_counter()
    hres = await request_headers_chunked_with_stats(
        peer, start, count, max_per_request=max_headers_per_request, parent=parent
    )
    stats.headers_ms = _ms(t0)
    stats.headers_requests = hres.requests
    stats.headers_bytes = sum(len(h.raw) for h in hres.headers)
    # Field presence per fork (base fee from London, withdrawals root from Shanghai, ...).
    for h in hres.headers:
        try:
            verify_fork_fields(h, peer.spec)
        except VerificationError as e:
            report(peer, e.kind, str(e))
            raise InvalidResponse(e.kind, str(e)) from None
    return await _fetch_payloads(peer, start, end, hres.headers, stats, outcome, verifier, None)


async def _chain_check(peer: FetchPeer, proven: Header) -> bool:
    """True if ``peer`` serves ``proven`` at its height; False if it has no header there.
    Raises :class:`InvalidResponse` (``wrong-chain``) if it serves another: not reported to the
    peer here, so the caller can still ask it where its chain leaves the proven one first."""
    raw = await peer.request_headers(proven.number, 1)
    if not raw:
        return False
    try:
        got = Header(raw[0])
    except HeaderError as e:
        report(peer, FaultKind.HEADERS, f"malformed header {proven.number}: {e}")
        raise InvalidResponse(FaultKind.HEADERS, f"malformed header {proven.number}: {e}") from None
    if got.number != proven.number:
        report(peer, FaultKind.HEADERS, f"asked for header {proven.number}, got {got.number}")
        raise InvalidResponse(FaultKind.HEADERS, f"asked for header {proven.number}, got {got.number}")
    if got.hash != proven.hash:
        msg = (
            f"block {proven.number:,} is 0x{got.hash.hex()[:16]}… on this peer, "
            f"0x{proven.hash.hex()[:16]}… on the proven chain"
        )
        raise InvalidResponse(FaultKind.WRONG_CHAIN, msg, number=proven.number)
    return True


async def _fetch_payloads(
    peer: FetchPeer,
    start: int,
    end: int,
    headers: list[Header],
    stats: FetchStageStats,
    outcome: PayloadFetchOutcome,
    verifier: BlockVerifier,
    spot: asyncio.Future[bool] | None,
) -> PayloadFetchOutcome:
    """Bodies and receipts for ``headers`` (a prefix of ``start..end``), verified against them."""
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
            outcome.faults.append(Fault(None, FaultKind.TIMEOUT, f"{what} request timed out"))
            report(peer, FaultKind.TIMEOUT, f"{what} request timed out")
    for i, b in zip(need_body, bres.results, strict=False):
        bodies[i] = b
        if b is not None:
            stats.bodies_bytes += len(b)
    for i, r in zip(need_receipts, rres.results, strict=False):
        receipts[i] = r
        if r is not None:
            stats.receipts_bytes += len(r.raw)

    t = time.perf_counter()
    ready: list[int] = []
    checks: list[BlockToVerify] = []
    if spot is not None and not await spot:
        # The peer has no header at the batch's end: it can't be checked against the chain, so
        # nothing it sent is used (every block missing, to be fetched elsewhere).
        outcome.missing_blocks = list(range(start, end + 1))
        return outcome
    for i, (body, rec) in enumerate(zip(bodies, receipts, strict=True)):
        if body is not None and rec is not None:
            ready.append(i)
            checks.append(BlockToVerify(headers[i].raw, body, rec.raw, rec.form))
        else:
            if body is None:
                outcome.missing_bodies.append(headers[i].number)
            if rec is None:
                outcome.missing_receipts.append(headers[i].number)
    results = await verifier.verify(checks)
    delivered = set()
    for i, check, res in zip(ready, checks, results, strict=False):
        h = headers[i]
        if not res.ok:
            assert res.kind is not None  # a failed result always names its kind
            outcome.faults.append(Fault(h.number, res.kind, res.message))
            report(peer, res.kind, res.message)
            continue
        stored = res.stored if res.stored is not None else check.receipts
        outcome.payloads.append(BlockPayload(h.number, h.hash, h.raw, check.body, stored))
        delivered.add(h.number)
    stats.verify_ms = _ms(t)
    outcome.missing_blocks = [n for n in range(start, end + 1) if n not in delivered]
    return outcome


async def _done(value):
    return value
