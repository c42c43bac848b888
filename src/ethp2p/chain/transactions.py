"""Decoding transactions of all five types (for export), with sender recovery."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from .. import rlp
from ..accel import speedups as _c
from ..crypto.keccak import keccak
from ..crypto.keys import InvalidKey, recover

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


@dataclass(frozen=True)
class Transaction:
    """The fields an indexer reads; integers as Python ints, addresses and data as bytes."""

    hash: bytes
    type: int
    chain_id: int | None
    nonce: int
    gas_limit: int
    to: bytes | None
    value: int
    input: bytes
    gas_price: int | None
    max_fee_per_gas: int | None
    max_priority_fee_per_gas: int | None
    max_fee_per_blob_gas: int | None
    blob_hashes: int
    access_list_size: int
    authorization_count: int
    sender: bytes | None
    #: The signature: ``v`` as signed (legacy: 27/28 or chain_id * 2 + 35/36; typed: the y parity).
    y_parity: int = 0
    v: int = 0
    r: int = 0
    s: int = 0


#: Fields of each transaction type's RLP list, signature (v, r, s) included.
FIELD_COUNTS = {0: 9, 1: 11, 2: 12, 3: 14, 4: 13}


class TransactionError(ValueError):
    """The bytes are not a well-formed transaction."""


def _sender(sighash: bytes, parity: int, r: int, s: int) -> bytes | None:
    if not (0 < r < SECP256K1_N and 0 < s < SECP256K1_N) or parity not in (0, 1):
        return None
    sig = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes((parity,))
    try:
        pub = recover(sig, sighash)
    except InvalidKey:
        return None
    return keccak(pub.to_bytes())[12:]


#: Positions of the list fields (access list, blob hashes, authorizations) in each type's list.
_LIST_FIELDS = {0: (), 1: (7,), 2: (8,), 3: (8, 10), 4: (8, 9)}

Fields = tuple[int, list["bytes | int"], int, int]


def transaction_fields(raw: bytes) -> Fields:
    """``(type, fields, payload_start, signature_start)`` of a consensus-encoded transaction:
    each item of its RLP list, a string as its payload and a list as its item count, and the
    offsets of the list's payload and of ``v``. The C extension's ``tx_fields`` does the same."""
    if not raw:
        raise TransactionError("empty transaction")
    t = 0 if raw[0] >= 0xC0 else raw[0]
    off = 1 if t else 0
    try:
        is_list, ps, ln = rlp.header(raw, off)
        if not is_list or ps + ln != len(raw):
            raise TransactionError(f"type {t} transaction is not one RLP list")
        items = rlp.split_payload(memoryview(raw)[ps : ps + ln], max_items=16)
        fields: list[bytes | int] = [
            len(rlp.split_list(x, max_items=MAX_LIST_ITEMS)) if rlp.is_list_item(x) else bytes(rlp.string_payload(x))
            for x in items
        ]
    except rlp.RLPError as e:
        raise TransactionError(f"type {t} transaction: {e}") from None
    if len(fields) < 3:
        raise TransactionError(f"type {t} transaction with {len(fields)} fields")
    return t, fields, ps, ps + sum(len(x) for x in items[:-3])


#: Most items a list field may hold (the C extension's bound too).
MAX_LIST_ITEMS = 100_000


def decode_transaction(encoding: bytes | memoryview, *, recover_sender: bool = True) -> Transaction:
    """Decode one consensus-encoded transaction (legacy list, or ``type || rlp(fields)``).

    Works on the raw field encodings: the signing hash is taken over the original bytes of the
    unsigned fields, never re-encoded. Recovering the sender is most of the cost (an ECDSA
    recovery); without ``recover_sender`` ``sender`` is None."""
    raw = bytes(encoding)
    got = _c.tx_fields(raw) if _c is not None else transaction_fields(raw)
    if got is None:
        raise TransactionError("malformed transaction")
    t, f, ps, ss = got
    if len(f) != FIELD_COUNTS.get(t, -1):
        raise TransactionError(f"type {t} transaction with {len(f)} fields")
    lists = _LIST_FIELDS[t]
    for k, x in enumerate(f):
        if isinstance(x, int) != (k in lists):
            what = "a list" if isinstance(x, int) else "a string"
            raise TransactionError(f"type {t} transaction: field {k} is {what}")
    scalars = cast("list[bytes]", f)  # the kinds are checked above: scalars are bytes, lists their counts

    def num(k: int) -> int:
        return int.from_bytes(scalars[k], "big")

    def count(k: int) -> int:
        return cast(int, f[k])

    v, r, s = num(-3), num(-2), num(-1)
    sender = None
    h = keccak(raw)
    if t == 0:
        chain_id: int | None
        if v in (27, 28):
            chain_id, parity, tail = None, v - 27, b""
        elif v < 35:  # (found by tests/fuzz: a negative chain id reached the RLP encoder)
            raise TransactionError(f"legacy transaction with v={v}: neither 27/28 nor chain_id * 2 + 35/36")
        else:
            chain_id, parity = (v - 35) // 2, (v - 35) % 2
            tail = rlp.encode(chain_id) + b"\x80\x80"
        if recover_sender:
            unsigned = raw[ps:ss] + tail
            sender = _sender(keccak(rlp.encode_length(len(unsigned), 0xC0) + unsigned), parity, r, s)
        return Transaction(
            h,
            0,
            chain_id,
            num(0),
            num(2),
            scalars[3] or None,
            num(4),
            scalars[5],
            num(1),
            None,
            None,
            None,
            0,
            0,
            0,
            sender,
            parity,
            v,
            r,
            s,
        )
    if recover_sender:
        unsigned = raw[ps:ss]
        sender = _sender(keccak(bytes((t,)) + rlp.encode_length(len(unsigned), 0xC0) + unsigned), v, r, s)
    if t == 1:
        return Transaction(
            h,
            1,
            num(0),
            num(1),
            num(3),
            scalars[4] or None,
            num(5),
            scalars[6],
            num(2),
            None,
            None,
            None,
            0,
            count(7),
            0,
            sender,
            v,
            v,
            r,
            s,
        )
    return Transaction(
        h,
        t,
        num(0),
        num(1),
        num(4),
        scalars[5] or None,
        num(6),
        scalars[7],
        None,
        num(3),
        num(2),
        num(9) if t == 3 else None,
        count(10) if t == 3 else 0,
        count(8),
        count(9) if t == 4 else 0,
        sender,
        v,
        v,
        r,
        s,
    )
