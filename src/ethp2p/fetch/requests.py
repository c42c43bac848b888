"""The chunked request helpers: headers, bodies and receipts from one peer.

Transport failures and timeouts propagate as the peer layer's exceptions
(``RequestTimeout``, ``PeerDisconnected``); answers that cannot be right raise
:class:`InvalidResponse`; short answers are normal and are continued.
"""

from __future__ import annotations

from collections.abc import Sequence

from .. import rlp
from ..chain.header import Header, HeaderError
from ..chain.verify import VerificationError, check_partial_receipts, max_receipts_for, verify_header_chain
from ..faults import FaultKind, report
from ..peers.eth_peer import RequestTimeout
from .types import (
    ChunkedResponse,
    FetchPeer,
    HeaderCountMismatch,
    HeadersChunkedResponse,
    InvalidResponse,
    ReceiptsResult,
)

#: The seed's default: headers per GetBlockHeaders.
MAX_HEADERS_PER_REQUEST = 1024
#: Hashes per GetBlockBodies / GetReceipts (servers cap at 1,024 and 2 MiB anyway).
MAX_BODIES_PER_REQUEST = 128
MAX_RECEIPTS_PER_REQUEST = 256
#: Most eth/70 continuation rounds for one block when its header is unknown. With the header,
#: the bound is its receipt capacity (gas used / 21,000): every round must add a receipt.
MAX_RECEIPT_CONTINUATIONS = 1024


async def request_headers_batch(
    peer: FetchPeer, start: int, limit: int, *, parent: Header | None = None
) -> list[Header]:
    """One GetBlockHeaders from ``start``: the headers are checked to be ``start, start+1, ...`` and linked."""
    raw = await peer.request_headers(start, limit)
    if len(raw) > limit:
        report(peer, FaultKind.HEADERS, f"{len(raw)} headers for a request of {limit}")
        raise InvalidResponse(FaultKind.HEADERS, f"{len(raw)} headers for a request of {limit}")
    try:
        headers = [Header(h) for h in raw]
    except HeaderError as e:
        report(peer, FaultKind.HEADERS, str(e))
        raise InvalidResponse(FaultKind.HEADERS, f"malformed header: {e}") from None
    try:
        verify_header_chain(headers, start, parent=parent)
    except VerificationError as e:
        report(peer, FaultKind.HEADERS, str(e))
        raise InvalidResponse(FaultKind.HEADERS, str(e)) from None
    return headers


async def request_headers_chunked_with_stats(
    peer: FetchPeer,
    start: int,
    count: int,
    *,
    max_per_request: int = MAX_HEADERS_PER_REQUEST,
    parent: Header | None = None,
) -> HeadersChunkedResponse:
    """Up to ``count`` headers from ``start`` in requests of at most ``max_per_request``.

    Stops early on an empty or short answer (the peer has no more); every chunk
    links to the previous one.
    """
    headers: list[Header] = []
    requests = 0
    prev = parent
    while len(headers) < count:
        want = min(max_per_request, count - len(headers))
        got = await request_headers_batch(peer, start + len(headers), want, parent=prev)
        requests += 1
        headers += got
        if len(got) < want:
            break
        prev = got[-1]
    return HeadersChunkedResponse(headers, requests)


async def request_headers_chunked_strict(
    peer: FetchPeer, start: int, count: int, *, max_per_request: int = MAX_HEADERS_PER_REQUEST
) -> HeadersChunkedResponse:
    """Like :func:`request_headers_chunked_with_stats`, but every header must arrive."""
    res = await request_headers_chunked_with_stats(peer, start, count, max_per_request=max_per_request)
    if len(res.headers) != count:
        raise HeaderCountMismatch(count, len(res.headers))
    return res


async def request_bodies_chunked_partial_with_stats(
    peer: FetchPeer,
    hashes: Sequence[bytes],
    *,
    max_per_request: int = MAX_BODIES_PER_REQUEST,
    stop_on_timeout: bool = False,
) -> ChunkedResponse[bytes]:
    """Raw bodies for ``hashes`` (None where the peer had none); partial answers are continued.

    With ``stop_on_timeout`` a timed-out request ends the fetch with what arrived so far
    (``timed_out`` set) instead of raising.
    """
    results: list[bytes | None] = [None] * len(hashes)
    requests = 0
    pos = 0
    while pos < len(hashes):
        chunk = list(hashes[pos : pos + max_per_request])
        requests += 1
        try:
            got = await peer.request_bodies(chunk)
        except RequestTimeout:
            if not stop_on_timeout:
                raise
            return ChunkedResponse(results, requests, timed_out=True)
        if len(got) > len(chunk):
            report(peer, FaultKind.BODY, f"{len(got)} bodies for {len(chunk)} hashes")
            raise InvalidResponse(FaultKind.BODY, f"{len(got)} bodies for {len(chunk)} hashes")
        if not got:
            break
        for i, body in enumerate(got):
            results[pos + i] = bytes(body)
        pos += len(got)
    return ChunkedResponse(results, requests)


def _check_piece(peer: FetchPeer, items: list[bytes], header: Header | None, tx_count: int | None) -> None:
    """EIP-7975 sanity checks on a receipt list received so far (when the header is known)."""
    if header is None:
        return
    try:
        check_partial_receipts(rlp.encode_raw_list(items), start=0, header=header, tx_count=tx_count)
    except VerificationError as e:
        report(peer, FaultKind.RECEIPTS, str(e))
        raise InvalidResponse(FaultKind.RECEIPTS, str(e)) from None


async def request_receipts(
    peer: FetchPeer,
    hashes: Sequence[bytes],
    *,
    headers: Sequence[Header] | None = None,
    tx_counts: Sequence[int | None] | None = None,
) -> tuple[list[ReceiptsResult], int]:
    """One round of receipts for a prefix of ``hashes`` in the peer's version's form.

    At eth/70, a list flagged incomplete is continued from the next index (same
    peer) until whole; each piece is sanity-checked against the header (count
    within the transaction count, cumulative gas within gas used) when
    ``headers`` are given. Returns ``(results, requests)``; results may be fewer
    than ``hashes`` (a prefix).
    """
    version = peer.eth_version
    form = 68 if version == 68 else 69
    msg = await peer.request_receipts(list(hashes))
    requests = 1
    lists = list(msg.receipts)
    if len(lists) > len(hashes):
        report(peer, FaultKind.RECEIPTS, f"{len(lists)} receipt lists for {len(hashes)} hashes")
        raise InvalidResponse(FaultKind.RECEIPTS, f"{len(lists)} receipt lists for {len(hashes)} hashes")
    if msg.last_block_incomplete and version < 70:
        report(peer, FaultKind.RECEIPTS, "lastBlockIncomplete before eth/70")
        raise InvalidResponse(FaultKind.RECEIPTS, "lastBlockIncomplete before eth/70")
    results = [ReceiptsResult(bytes(x), form) for x in lists]
    if msg.last_block_incomplete:
        if not lists:
            report(peer, FaultKind.RECEIPTS, "incomplete flag on an empty answer")
            raise InvalidResponse(FaultKind.RECEIPTS, "lastBlockIncomplete set on an empty answer")
        idx = len(lists) - 1
        header = headers[idx] if headers is not None else None
        tx_count = tx_counts[idx] if tx_counts is not None else None
        items = [bytes(x) for x in rlp.split_list(lists[-1])]
        rounds = max_receipts_for(header) + 1 if header is not None else MAX_RECEIPT_CONTINUATIONS
        for _ in range(rounds):
            _check_piece(peer, items, header, tx_count)
            more = await peer.request_receipts([hashes[idx]], first_index=len(items))
            requests += 1
            if len(more.receipts) > 1:
                report(peer, FaultKind.RECEIPTS, "continuation answered more than one block")
                raise InvalidResponse(FaultKind.RECEIPTS, "continuation answered more than one block")
            if not more.receipts:
                # The peer gave up on the rest: the block stays incomplete (missing).
                results.pop()
                return results, requests
            piece = [bytes(x) for x in rlp.split_list(more.receipts[0])]
            if not piece and more.last_block_incomplete:
                report(peer, FaultKind.RECEIPTS, "empty continuation flagged incomplete")
                raise InvalidResponse(FaultKind.RECEIPTS, "empty continuation flagged incomplete")
            items += piece
            if not more.last_block_incomplete:
                break
        else:
            report(peer, FaultKind.RECEIPTS, f"more than {rounds} continuation rounds")
            raise InvalidResponse(FaultKind.RECEIPTS, f"more than {rounds} continuation rounds")
        _check_piece(peer, items, header, tx_count)
        results[-1] = ReceiptsResult(rlp.encode_raw_list(items), form)
    return results, requests


async def request_receipts_chunked_partial_with_stats(
    peer: FetchPeer,
    hashes: Sequence[bytes],
    *,
    headers: Sequence[Header] | None = None,
    tx_counts: Sequence[int | None] | None = None,
    max_per_request: int = MAX_RECEIPTS_PER_REQUEST,
    stop_on_timeout: bool = False,
) -> ChunkedResponse[ReceiptsResult]:
    """Receipts for ``hashes`` (None where missing); partial answers continued, empty ones stop."""
    results: list[ReceiptsResult | None] = [None] * len(hashes)
    requests = 0
    pos = 0
    while pos < len(hashes):
        end = min(pos + max_per_request, len(hashes))
        try:
            got, n = await request_receipts(
                peer,
                hashes[pos:end],
                headers=headers[pos:end] if headers is not None else None,
                tx_counts=tx_counts[pos:end] if tx_counts is not None else None,
            )
        except RequestTimeout:
            if not stop_on_timeout:
                raise
            return ChunkedResponse(results, requests + 1, timed_out=True)
        requests += n
        if not got:
            break
        for i, r in enumerate(got):
            results[pos + i] = r
        pos += len(got)
    return ChunkedResponse(results, requests)
