"""The chunked request helpers: headers, bodies and receipts from one peer.

Transport failures and timeouts propagate as the peer layer's exceptions
(``RequestTimeout``, ``PeerDisconnected``); answers that cannot be right raise
:class:`InvalidResponse`; short answers are normal and are continued.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from .. import rlp
from ..chain.header import Header, HeaderError
from ..chain.receipts import MAX_RECEIPTS
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
#: EIP-7975 bounds on one block's receipts gathered over eth/70 continuations. A receipt's
#: encoding may exceed its transaction's gas limit / 8 (log data costs 8 gas a byte, a log's
#: address and topics more) by at most this many bytes (its type, status, cumulative gas and
#: list headers); without the transaction's gas limit, the block's gas limit stands in for it.
RECEIPT_OVERHEAD = 64
#: Most bytes of one block's receipts gathered over continuations, whatever its header says
#: (with the header the bound is gas limit / 8 + RECEIPT_OVERHEAD per receipt it can hold) ...
MAX_CONTINUED_RECEIPTS_BYTES = 64 * 2**20
#: ... and most seconds from the answer that flagged a block incomplete to its last piece.
CONTINUATION_DEADLINE = 60.0


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


class _Continued:
    """One block's receipts arriving in eth/70 pieces, checked piece by piece (EIP-7975): each
    receipt within its transaction's gas limit / 8 (+ RECEIPT_OVERHEAD), the total within the
    block's, cumulative gas rising from piece to piece (so a peer that restarts from index 0
    instead of continuing where asked is caught at once, not at the root check), the count
    within the transaction count and the gas within gas used (``check_partial_receipts``)."""

    def __init__(
        self, peer: FetchPeer, header: Header | None, tx_count: int | None, gas_limits: Sequence[int] | None
    ) -> None:
        self.peer, self.header, self.tx_count, self.gas_limits = peer, header, tx_count, gas_limits
        self.items: list[bytes] = []
        self.size = 0
        self.last_gas = 0
        self.cap = MAX_CONTINUED_RECEIPTS_BYTES
        if header is not None:
            self.cap = min(self.cap, header.gas_limit // 8 + RECEIPT_OVERHEAD * max_receipts_for(header))
        self.what = f"block {header.number}" if header is not None else "a continued block"

    def _fail(self, message: str) -> InvalidResponse:
        report(self.peer, FaultKind.RECEIPTS, message)
        return InvalidResponse(FaultKind.RECEIPTS, message, number=self.header.number if self.header else None)

    def add(self, list_raw: bytes | memoryview) -> int:
        """Take the receipts of one piece (a receipt list); how many it held."""
        try:
            piece = rlp.split_list(list_raw, max_items=MAX_RECEIPTS)
        except rlp.RLPError as e:
            raise self._fail(f"{self.what}: malformed receipt list: {e}") from None
        for raw in piece:
            i = len(self.items)
            limit = None
            if self.gas_limits is not None and i < len(self.gas_limits):
                limit = self.gas_limits[i]
            elif self.header is not None:
                limit = self.header.gas_limit
            if limit is not None and len(raw) > limit // 8 + RECEIPT_OVERHEAD:
                raise self._fail(
                    f"{self.what}: receipt {i} is {len(raw):,} bytes, more than {limit:,} gas of logs can make"
                )
            try:
                gas = rlp.decode_int(rlp.string_payload(rlp.split_list(raw, max_items=4)[2]), max_bytes=8)
            except (rlp.RLPError, IndexError):
                raise self._fail(f"{self.what}: receipt {i} is malformed") from None
            if gas <= self.last_gas:
                raise self._fail(
                    f"{self.what}: receipt {i} has cumulative gas {gas:,}, not above the previous one's "
                    f"{self.last_gas:,}: the answer does not continue at index {i}"
                )
            self.size += len(raw)
            if self.size > self.cap:
                raise self._fail(f"{self.what}: receipts reach {self.size:,} bytes, more than {self.cap:,} allowed")
            self.items.append(bytes(raw))
            self.last_gas = gas
        _check_piece(self.peer, self.items, self.header, self.tx_count)
        return len(piece)


async def request_receipts(
    peer: FetchPeer,
    hashes: Sequence[bytes],
    *,
    headers: Sequence[Header] | None = None,
    tx_counts: Sequence[int | None] | None = None,
    tx_gas_limits: Sequence[Sequence[int] | None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[list[ReceiptsResult], int]:
    """One round of receipts for a prefix of ``hashes`` in the peer's version's form.

    At eth/70, a list flagged incomplete is continued from the next index (same peer) until
    whole; each piece is checked as EIP-7975 asks (see :class:`_Continued`) against the header
    when ``headers`` are given, and against each transaction's gas limit when ``tx_gas_limits``
    are. A block whose pieces take more than CONTINUATION_DEADLINE seconds (by ``clock``) is
    left missing (a timeout fault). Returns ``(results, requests)``; results may be fewer than
    ``hashes`` (a prefix).
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
        block = _Continued(peer, header, tx_count, tx_gas_limits[idx] if tx_gas_limits is not None else None)
        block.add(lists[-1])
        deadline = clock() + CONTINUATION_DEADLINE
        rounds = max_receipts_for(header) + 1 if header is not None else MAX_RECEIPT_CONTINUATIONS
        for _ in range(rounds):
            more = await peer.request_receipts([hashes[idx]], first_index=len(block.items))
            requests += 1
            if len(more.receipts) > 1:
                report(peer, FaultKind.RECEIPTS, "continuation answered more than one block")
                raise InvalidResponse(FaultKind.RECEIPTS, "continuation answered more than one block")
            if not more.receipts:
                # The peer gave up on the rest: the block stays incomplete (missing).
                results.pop()
                return results, requests
            added = block.add(more.receipts[0])
            if not added and more.last_block_incomplete:
                report(peer, FaultKind.RECEIPTS, "empty continuation flagged incomplete")
                raise InvalidResponse(FaultKind.RECEIPTS, "empty continuation flagged incomplete")
            if not more.last_block_incomplete:
                break
            if clock() > deadline:
                report(
                    peer,
                    FaultKind.TIMEOUT,
                    f"{block.what}: receipts still incomplete {CONTINUATION_DEADLINE:g} s into their continuation",
                )
                results.pop()
                return results, requests
        else:
            report(peer, FaultKind.RECEIPTS, f"more than {rounds} continuation rounds")
            raise InvalidResponse(FaultKind.RECEIPTS, f"more than {rounds} continuation rounds")
        results[-1] = ReceiptsResult(rlp.encode_raw_list(block.items), form)
    return results, requests


async def request_receipts_chunked_partial_with_stats(
    peer: FetchPeer,
    hashes: Sequence[bytes],
    *,
    headers: Sequence[Header] | None = None,
    tx_counts: Sequence[int | None] | None = None,
    tx_gas_limits: Sequence[Sequence[int] | None] | None = None,
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
                tx_gas_limits=tx_gas_limits[pos:end] if tx_gas_limits is not None else None,
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
