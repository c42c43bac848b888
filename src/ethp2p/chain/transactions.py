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


def _i(b: object) -> int:
    assert isinstance(b, bytes)
    return int.from_bytes(b, "big")


def _sender(sighash: bytes, parity: int, r: int, s: int) -> bytes | None:
    if not (0 < r < SECP256K1_N and 0 < s < SECP256K1_N) or parity not in (0, 1):
        return None
    sig = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes((parity,))
    try:
        pub = recover(sig, sighash)
    except InvalidKey:
        return None
    return keccak(pub.to_bytes())[12:]


def decode_transaction(encoding: bytes | memoryview) -> Transaction:
    """Decode one consensus-encoded transaction (legacy list, or ``type || rlp(fields)``)."""
    raw = bytes(encoding)
    h = keccak(raw)
    if raw[0] >= 0xC0:
        f = rlp.decode(raw)
        nonce, gas_price, gas, to, value, data, v, r, s = f[:9]
        vi = _i(v)
        if vi in (27, 28):
            chain_id, parity = None, vi - 27
            sighash = keccak(rlp.encode([nonce, gas_price, gas, to, value, data]))
        else:
            chain_id, parity = (vi - 35) // 2, (vi - 35) % 2
            sighash = keccak(rlp.encode([nonce, gas_price, gas, to, value, data, chain_id, 0, 0]))
        return Transaction(h, 0, chain_id, _i(nonce), _i(gas), to or None, _i(value), data, _i(gas_price),
                           None, None, None, 0, 0, 0, _sender(sighash, parity, _i(r), _i(s)))
    t = raw[0]
    f = rlp.decode(raw[1:])
    unsigned = f[:-3]
    sighash = keccak(bytes((t,)) + rlp.encode(unsigned))
    sender = _sender(sighash, _i(f[-3]), _i(f[-2]), _i(f[-1]))
    if t == 1:
        chain_id, nonce, gas_price, gas, to, value, data, al = f[:8]
        return Transaction(h, 1, _i(chain_id), _i(nonce), _i(gas), to or None, _i(value), data, _i(gas_price),
                           None, None, None, 0, len(al), 0, sender)
    chain_id, nonce, tip, fee, gas, to, value, data, al = f[:9]
    blob_fee = _i(f[9]) if t == 3 else None
    blobs = len(f[10]) if t == 3 else 0
    auths = len(f[9]) if t == 4 else 0
    return Transaction(h, t, _i(chain_id), _i(nonce), _i(gas), to or None, _i(value), data, None,
                       _i(fee), _i(tip), blob_fee, blobs, len(al), auths, sender)
