"""Block headers kept as raw RLP: hashed once, fields decoded lazily on first use."""

from __future__ import annotations

from functools import cached_property

from .. import rlp
from ..crypto.keccak import keccak

#: Field positions in the header list (later forks append fields).
PARENT_HASH, OMMERS_HASH, COINBASE, STATE_ROOT, TRANSACTIONS_ROOT, RECEIPTS_ROOT, LOGS_BLOOM = range(7)
DIFFICULTY, NUMBER, GAS_LIMIT, GAS_USED, TIMESTAMP, EXTRA_DATA, MIX_HASH, NONCE = range(7, 15)
BASE_FEE, WITHDRAWALS_ROOT, BLOB_GAS_USED, EXCESS_BLOB_GAS, PARENT_BEACON_ROOT, REQUESTS_HASH = range(15, 21)
BLOCK_ACCESS_LIST_HASH = 21

MIN_FIELDS = 15
#: Fields beyond those known (future forks) are accepted and kept in ``raw``, up to this many in all.
MAX_FIELDS = 32
#: Largest header we accept (mainnet headers are ~500-700 bytes; extraData is at most 32 bytes).
MAX_HEADER_SIZE = 4096

#: keccak256(rlp([])): the ommers hash of a block without ommers.
EMPTY_OMMERS_HASH = bytes.fromhex("1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347")

_FIXED_SIZES = {
    PARENT_HASH: 32,
    OMMERS_HASH: 32,
    COINBASE: 20,
    STATE_ROOT: 32,
    TRANSACTIONS_ROOT: 32,
    RECEIPTS_ROOT: 32,
    LOGS_BLOOM: 256,
    MIX_HASH: 32,
    NONCE: 8,
    WITHDRAWALS_ROOT: 32,
    PARENT_BEACON_ROOT: 32,
    REQUESTS_HASH: 32,
    BLOCK_ACCESS_LIST_HASH: 32,
}
_INT_FIELDS = {
    DIFFICULTY: 32,
    NUMBER: 8,
    GAS_LIMIT: 8,
    GAS_USED: 8,
    TIMESTAMP: 8,
    BASE_FEE: 32,
    BLOB_GAS_USED: 8,
    EXCESS_BLOB_GAS: 8,
}


class HeaderError(ValueError):
    """The bytes are not a well-formed block header."""


def _bytes_field(i: int) -> cached_property[bytes]:
    """A header field read as its bytes (computed once per header)."""
    return cached_property(lambda self: self._bytes(i))


def _int_field(i: int) -> cached_property[int]:
    """A header field read as a big-endian integer (computed once per header)."""
    return cached_property(lambda self: self._int(i))


def _opt_bytes_field(i: int) -> cached_property[bytes | None]:
    """A field a header may lack (a later fork's), as bytes or None."""
    return cached_property(lambda self: self._opt_bytes(i))


def _opt_int_field(i: int) -> cached_property[int | None]:
    """A field a header may lack (a later fork's), as an integer or None."""
    return cached_property(lambda self: self._opt_int(i))


class Header:
    """One block header.

    ``raw`` is the exact RLP received or stored; :attr:`hash` is its keccak,
    computed once. Structure is checked on construction (a list of 15-22 strings
    with the right sizes); integer fields are decoded when first read.
    """

    __slots__ = ("raw", "_fields", "__dict__")

    def __init__(self, raw: bytes | memoryview) -> None:
        raw = bytes(raw)
        if len(raw) > MAX_HEADER_SIZE:
            raise HeaderError(f"header of {len(raw)} bytes exceeds {MAX_HEADER_SIZE}")
        try:
            is_list, pos, length = rlp.header(raw)
        except rlp.RLPError as e:
            raise HeaderError(f"header is not an RLP list: {e}") from None
        end = pos + length
        if not is_list or end != len(raw):
            raise HeaderError("header is not exactly one RLP list")
        # One pass over the fields: canonical string headers, bounds, sizes.
        fields: list[bytes] = []
        fixed, ints = _FIXED_SIZES, _INT_FIELDS
        i = 0
        while pos < end:
            b0 = raw[pos]
            if b0 < 0x80:
                start, stop = pos, pos + 1
            elif b0 < 0xB8:
                start = pos + 1
                stop = start + b0 - 0x80
                if b0 == 0x81 and (start >= end or raw[start] < 0x80):
                    raise HeaderError(f"header field {i}: single byte below 0x80 must not have a string header")
            elif b0 < 0xC0:
                try:
                    _, start, n = rlp.header(raw, pos)
                except rlp.RLPError as e:
                    raise HeaderError(f"header field {i}: {e}") from None
                stop = start + n
            else:
                raise HeaderError(f"header field {i}: expected an RLP string, got a list")
            if stop > end:
                raise HeaderError(f"header field {i} runs past the end of the header")
            size = stop - start
            want = fixed.get(i)
            if want is not None and size != want:
                raise HeaderError(f"header field {i} is {size} bytes, must be {want}")
            limit = ints.get(i)
            if limit is not None and (size > limit or (size and raw[start] == 0)):
                raise HeaderError(f"header field {i} is not a canonical integer of at most {limit} bytes")
            fields.append(raw[start:stop])
            pos = stop
            i += 1
            if i > MAX_FIELDS:
                raise HeaderError(f"header has more than {MAX_FIELDS} fields")
        if i < MIN_FIELDS:
            raise HeaderError(f"header has {i} fields, needs at least {MIN_FIELDS}")
        self.raw = raw
        self._fields = fields

    def __repr__(self) -> str:
        return f"<Header #{self.number} {self.hash.hex()[:16]}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Header) and other.raw == self.raw

    def __hash__(self) -> int:
        return hash(self.hash)

    @cached_property
    def hash(self) -> bytes:
        """keccak256 of the raw RLP (the block hash)."""
        return keccak(self.raw)

    @property
    def field_count(self) -> int:
        return len(self._fields)

    def _bytes(self, i: int) -> bytes:
        return self._fields[i]

    def _int(self, i: int) -> int:
        return int.from_bytes(self._fields[i], "big")

    def _opt_bytes(self, i: int) -> bytes | None:
        return self._fields[i] if i < len(self._fields) else None

    def _opt_int(self, i: int) -> int | None:
        return int.from_bytes(self._fields[i], "big") if i < len(self._fields) else None

    parent_hash = _bytes_field(PARENT_HASH)
    ommers_hash = _bytes_field(OMMERS_HASH)
    coinbase = _bytes_field(COINBASE)
    state_root = _bytes_field(STATE_ROOT)
    transactions_root = _bytes_field(TRANSACTIONS_ROOT)
    receipts_root = _bytes_field(RECEIPTS_ROOT)
    logs_bloom = _bytes_field(LOGS_BLOOM)
    difficulty = _int_field(DIFFICULTY)
    number = _int_field(NUMBER)
    gas_limit = _int_field(GAS_LIMIT)
    gas_used = _int_field(GAS_USED)
    timestamp = _int_field(TIMESTAMP)
    extra_data = _bytes_field(EXTRA_DATA)
    mix_hash = _bytes_field(MIX_HASH)
    nonce = _bytes_field(NONCE)
    base_fee = _opt_int_field(BASE_FEE)
    withdrawals_root = _opt_bytes_field(WITHDRAWALS_ROOT)
    blob_gas_used = _opt_int_field(BLOB_GAS_USED)
    excess_blob_gas = _opt_int_field(EXCESS_BLOB_GAS)
    parent_beacon_root = _opt_bytes_field(PARENT_BEACON_ROOT)
    requests_hash = _opt_bytes_field(REQUESTS_HASH)
    block_access_list_hash = _opt_bytes_field(BLOCK_ACCESS_LIST_HASH)

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly view (hex strings for bytes), with the fields this header has."""
        out: dict[str, object] = {
            "hash": "0x" + self.hash.hex(),
            "parentHash": "0x" + self.parent_hash.hex(),
            "sha3Uncles": "0x" + self.ommers_hash.hex(),
            "miner": "0x" + self.coinbase.hex(),
            "stateRoot": "0x" + self.state_root.hex(),
            "transactionsRoot": "0x" + self.transactions_root.hex(),
            "receiptsRoot": "0x" + self.receipts_root.hex(),
            "logsBloom": "0x" + self.logs_bloom.hex(),
            "difficulty": self.difficulty,
            "number": self.number,
            "gasLimit": self.gas_limit,
            "gasUsed": self.gas_used,
            "timestamp": self.timestamp,
            "extraData": "0x" + self.extra_data.hex(),
            "mixHash": "0x" + self.mix_hash.hex(),
            "nonce": "0x" + self.nonce.hex(),
        }
        optional = {
            "baseFeePerGas": self.base_fee,
            "withdrawalsRoot": self.withdrawals_root,
            "blobGasUsed": self.blob_gas_used,
            "excessBlobGas": self.excess_blob_gas,
            "parentBeaconBlockRoot": self.parent_beacon_root,
            "requestsHash": self.requests_hash,
            "blockAccessListHash": self.block_access_list_hash,
        }
        for k, v in optional.items():
            if v is not None:
                out[k] = "0x" + v.hex() if isinstance(v, bytes) else v
        return out


def header_number(raw: bytes | memoryview) -> int:
    """The block number of a raw header without building a :class:`Header` (hot path)."""
    fields = rlp.split_list(raw, max_items=MAX_FIELDS)
    if len(fields) < MIN_FIELDS:
        raise HeaderError(f"header has {len(fields)} fields, needs at least {MIN_FIELDS}")
    return rlp.decode_int(rlp.string_payload(fields[NUMBER]), max_bytes=8)
