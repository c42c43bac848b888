"""Decoding transactions of all five types (for export), with sender recovery."""

from __future__ import annotations

from dataclasses import dataclass

from .. import rlp
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


#: Fields of each transaction type's RLP list, signature (v, r, s) included.
FIELD_COUNTS = {0: 9, 1: 11, 2: 12, 3: 14, 4: 13}


class TransactionError(ValueError):
    """The bytes are not a well-formed transaction."""


def _int(item: memoryview) -> int:
    return int.from_bytes(rlp.string_payload(item), "big")


def _sender(sighash: bytes, parity: int, r: int, s: int) -> bytes | None:
    if not (0 < r < SECP256K1_N and 0 < s < SECP256K1_N) or parity not in (0, 1):
        return None
    sig = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes((parity,))
    try:
        pub = recover(sig, sighash)
    except InvalidKey:
        return None
    return keccak(pub.to_bytes())[12:]


def decode_transaction(encoding: bytes | memoryview, *, recover_sender: bool = True) -> Transaction:
    """Decode one consensus-encoded transaction (legacy list, or ``type || rlp(fields)``).

    Works on the raw field encodings: the signing hash is taken over the original bytes of the
    unsigned fields, never re-encoded. Recovering the sender is most of the cost (an ECDSA
    recovery); without ``recover_sender`` ``sender`` is None."""
    raw = bytes(encoding)
    if not raw:
        raise TransactionError("empty transaction")
    t = 0 if raw[0] >= 0xC0 else raw[0]
    try:
        f = rlp.split_list(memoryview(raw)[1:] if t else raw)
        if len(f) != FIELD_COUNTS.get(t, -1):
            raise TransactionError(f"type {t} transaction with {len(f)} fields")
        v, r, s = _int(f[-3]), _int(f[-2]), _int(f[-1])
        if t == 0:
            nonce, gas_price, gas, to, value, data = f[:6]
            if v in (27, 28):
                chain_id, parity = None, v - 27
                unsigned = b"".join(f[:6])
            else:
                chain_id, parity = (v - 35) // 2, (v - 35) % 2
                unsigned = b"".join(f[:6]) + rlp.encode(chain_id) + b"\x80\x80"
            sender = None
            if recover_sender:
                sender = _sender(keccak(rlp.encode_length(len(unsigned), 0xC0) + unsigned), parity, r, s)
            return Transaction(keccak(raw), 0, chain_id, _int(nonce), _int(gas), _to(to), _int(value),
                               bytes(rlp.string_payload(data)), _int(gas_price), None, None, None, 0, 0, 0, sender)
        sender = None
        if recover_sender:
            unsigned = b"".join(f[:-3])
            sender = _sender(keccak(bytes((t,)) + rlp.encode_length(len(unsigned), 0xC0) + unsigned), v, r, s)
        if t == 1:
            chain_id, nonce, gas_price, gas, to, value, data, al = f[:8]
            return Transaction(keccak(raw), 1, _int(chain_id), _int(nonce), _int(gas), _to(to), _int(value),
                               bytes(rlp.string_payload(data)), _int(gas_price), None, None, None, 0,
                               _count(al), 0, sender)
        chain_id, nonce, tip, fee, gas, to, value, data, al = f[:9]
        return Transaction(
            keccak(raw), t, _int(chain_id), _int(nonce), _int(gas), _to(to), _int(value),
            bytes(rlp.string_payload(data)), None, _int(fee), _int(tip), _int(f[9]) if t == 3 else None,
            _count(f[10]) if t == 3 else 0, _count(al), _count(f[9]) if t == 4 else 0, sender,
        )
    except rlp.RLPError as e:
        raise TransactionError(f"type {t} transaction: {e}") from None


def _to(item: memoryview) -> bytes | None:
    b = bytes(rlp.string_payload(item))
    return b or None


def _count(item: memoryview) -> int:
    return len(rlp.split_list(item))
