"""Checking peer data against block headers (pure functions, usable on their own).

Each check raises :class:`VerificationError` (with ``kind`` naming what failed)
or returns normally. Nothing a peer sends is trusted before one of these passes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..accel import speedups as _c
from ..eth.chainspec import ChainSpec
from ..faults import FaultKind, PeerFault
from .body import BlockBody, BodyError
from .header import EMPTY_OMMERS_HASH, Header
from .receipts import (
    ReceiptError,
    receipt_count,
    receipts68_root,
    receipts69_root,
    receipts69_shape,
)
from .trie import EMPTY_TRIE_ROOT


class VerificationError(PeerFault, ValueError):
    """Data does not match its header. ``kind``: a :class:`FaultKind` (headers, body, receipts, fork-fields)."""


def verify_header_chain(headers: Sequence[Header], first: int, *, parent: Header | None = None) -> None:
    """Headers are ``first, first+1, ...`` and each links to the one before (and to ``parent``)."""
    prev = parent
    for i, h in enumerate(headers):
        want = first + i
        if h.number != want:
            raise VerificationError(FaultKind.HEADERS, f"header {i} is block {h.number}, expected {want}", want)
        if prev is not None and h.parent_hash != prev.hash:
            raise VerificationError(FaultKind.HEADERS, f"block {want} does not link to block {prev.number}", want)
        prev = h


def header_proves_empty_body(header: Header) -> bool:
    """True if the header alone shows the body is empty (no txs, no ommers, no withdrawals)."""
    return (
        header.transactions_root == EMPTY_TRIE_ROOT
        and header.ommers_hash == EMPTY_OMMERS_HASH
        and header.withdrawals_root in (None, EMPTY_TRIE_ROOT)
    )


def empty_body_for(header: Header) -> bytes:
    """The body RLP of a header that proves its body empty."""
    return b"\xc3\xc0\xc0\xc0" if header.withdrawals_root is not None else b"\xc2\xc0\xc0"


def verify_body(header: Header, body_raw: bytes | memoryview) -> BlockBody:
    """Check a body against its header: transactions root, ommers hash, withdrawals root and presence."""
    n = header.number
    try:
        body = BlockBody.decode(body_raw)
    except BodyError as e:
        raise VerificationError(FaultKind.BODY, f"block {n}: {e}", n) from None
    _check_body_roots(
        header,
        body.withdrawals is not None,
        body.ommers_hash(),
        lambda: (body.transactions_root(), body.withdrawals_root()),
    )
    return body


def _check_body_roots(
    header: Header, has_withdrawals: bool, ommers_hash: bytes, roots: Callable[[], tuple[bytes, bytes | None]]
) -> None:
    """The body checks against ``header``, in order: withdrawals presence, ommers hash, then the
    (transactions root, withdrawals root) that ``roots`` computes (BodyError there is a body fault)."""
    n = header.number
    if has_withdrawals != (header.withdrawals_root is not None):
        raise VerificationError(FaultKind.BODY, f"block {n}: withdrawals present in body and header disagree", n)
    if ommers_hash != header.ommers_hash:
        raise VerificationError(FaultKind.BODY, f"block {n}: ommers hash mismatch", n)
    try:
        tx_root, w_root = roots()
    except BodyError as e:
        raise VerificationError(FaultKind.BODY, f"block {n}: {e}", n) from None
    if tx_root != header.transactions_root:
        raise VerificationError(FaultKind.BODY, f"block {n}: transactions root mismatch", n)
    if w_root != header.withdrawals_root:
        raise VerificationError(FaultKind.BODY, f"block {n}: withdrawals root mismatch", n)


def check_body(header: Header, body_raw: bytes | memoryview) -> int:
    """Check a body against its header as :func:`verify_body` does; return its transaction count.

    With the C extension the body is checked in one call without building a
    :class:`BlockBody`; a body it finds malformed goes through :func:`verify_body`,
    which raises the precise error.
    """
    got = _c.body_roots(body_raw) if _c is not None else None
    if got is None:
        return len(verify_body(header, body_raw).transactions)
    tx_root, count, ommers_hash, w_root = got
    _check_body_roots(header, w_root is not None, ommers_hash, lambda: (tx_root, w_root))
    return count


def verify_receipts(
    header: Header,
    list_raw: bytes | memoryview,
    *,
    form: int,
    tx_count: int | None = None,
) -> bytes:
    """Check one block's receipt list against its header and return it in eth/69 (stored) form.

    ``form`` is the eth version the list arrived in (68: with blooms, which the
    receipts root covers, so they need no recomputing; 69/70: without, so they are
    rebuilt from the logs). ``tx_count``, when known from the body, must equal the
    number of receipts.
    """
    n = header.number
    try:
        if form == 68:
            # The blooms on the wire need no recomputing: the receipts root commits to them.
            root, count, stored = receipts68_root(list_raw)
        else:
            root, count = receipts69_root(list_raw)
            stored = bytes(list_raw)
    except ReceiptError as e:
        raise VerificationError(FaultKind.RECEIPTS, f"block {n}: {e}", n) from None
    if tx_count is not None and count != tx_count:
        raise VerificationError(FaultKind.RECEIPTS, f"block {n}: {count} receipts for {tx_count} transactions", n)
    if root != header.receipts_root:
        raise VerificationError(FaultKind.RECEIPTS, f"block {n}: receipts root mismatch", n)
    return stored


#: Every transaction costs at least this much gas, so gas used bounds the receipt count.
MIN_TX_GAS = 21_000
#: The least gas one transaction's receipt can account for: 21,000 less the largest refund, half of
#: it before London (EIP-3529 cut the cap to a fifth), so a block of refund-heavy transactions
#: (storage cleared, GasToken) can hold more than gas used / 21,000 of them.
MIN_RECEIPT_GAS = MIN_TX_GAS // 2


def max_receipts_for(header: Header) -> int:
    """Most receipts a block can have: one per :data:`MIN_RECEIPT_GAS` (10,500) gas used."""
    return header.gas_used // MIN_RECEIPT_GAS


def check_partial_receipts(list_raw: bytes | memoryview, *, start: int, header: Header, tx_count: int | None) -> int:
    """Sanity checks for an eth/70 partial list (EIP-7975); returns how many receipts it holds.

    The pieces so far must not exceed the transaction count, and the cumulative
    gas of the last receipt must not exceed the block's gas used.
    """
    n = header.number
    try:
        count, gas = receipts69_shape(list_raw)
    except ReceiptError as e:
        raise VerificationError(FaultKind.RECEIPTS, f"block {n}: {e}", n) from None
    if tx_count is not None and start + count > tx_count:
        raise VerificationError(
            FaultKind.RECEIPTS, f"block {n}: partial receipts reach index {start + count}, block has {tx_count} txs", n
        )
    if start + count > max_receipts_for(header):
        raise VerificationError(
            FaultKind.RECEIPTS, f"block {n}: {start + count} receipts cannot fit in {header.gas_used} gas used", n
        )
    if gas > header.gas_used:
        raise VerificationError(
            FaultKind.RECEIPTS, f"block {n}: cumulative gas {gas} exceeds gas used {header.gas_used}", n
        )
    return count


def verify_fork_fields(header: Header, spec: ChainSpec) -> None:
    """Header fields present exactly as the fork at this block requires (London..Prague)."""
    n, t = header.number, header.timestamp
    want = 15
    if spec.is_active_block("london", n):
        want = 16
    if spec.is_active_time("shanghai", t):
        want = 17
    if spec.is_active_time("cancun", t):
        want = 20
    if spec.is_active_time("prague", t):
        want = 21
    got = header.field_count
    if got != want and not (want == 21 and got == 22):
        raise VerificationError(FaultKind.FORK_FIELDS, f"block {n}: header has {got} fields, its fork needs {want}", n)


__all__ = [
    "VerificationError",
    "check_body",
    "check_partial_receipts",
    "empty_body_for",
    "header_proves_empty_body",
    "receipt_count",
    "verify_body",
    "verify_fork_fields",
    "verify_header_chain",
    "verify_receipts",
]
