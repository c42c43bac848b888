"""The export tables: one fixed schema per table, the same for every range and every file.

Each column has a *kind* that fixes its Arrow type whatever the data holds:

* ``u8``/``u32``/``u64``: unsigned integers (``uint8``/``uint32``/``uint64``);
* ``hash`` (32 bytes), ``address`` (20 bytes), ``bytes``: ``binary``, or ``0x`` hex strings with ``hex``;
* ``u256``: a decimal ``string`` (no Arrow integer holds 256 bits; DuckDB: ``value::HUGEINT``
  or ``value::DECIMAL(38,0)`` for values that fit);
* ``str``: a ``string``.

A nullable column is typed all the same: ``base_fee_per_gas`` is ``uint64`` in a chunk of
pre-London blocks, where every value is null, as in one after London.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

KINDS = ("u8", "u32", "u64", "u256", "hash", "address", "bytes", "str")
#: Kinds stored as raw bytes (``binary``), or as ``0x`` hex strings with ``hex``.
BINARY_KINDS = frozenset({"hash", "address", "bytes"})


@dataclass(frozen=True, slots=True)
class Column:
    """One column of an export table."""

    name: str
    kind: str
    nullable: bool = False
    doc: str = ""


def _c(name: str, kind: str, doc: str = "", *, null: bool = False) -> Column:
    assert kind in KINDS, kind
    return Column(name, kind, null, doc)


_BLOCK_REF = (
    _c("block_number", "u64", "number of the block holding it"),
    _c("block_hash", "hash", "hash of that block"),
)

#: Every table's columns, in file order.
TABLES: dict[str, tuple[Column, ...]] = {
    "blocks": (
        _c("number", "u64"),
        _c("hash", "hash"),
        _c("parent_hash", "hash"),
        _c("ommers_hash", "hash"),
        _c("miner", "address", "the header's coinbase (fee recipient)"),
        _c("state_root", "hash"),
        _c("transactions_root", "hash"),
        _c("receipts_root", "hash"),
        _c("logs_bloom", "bytes", "256 bytes"),
        _c("difficulty", "u256"),
        _c("gas_limit", "u64"),
        _c("gas_used", "u64"),
        _c("timestamp", "u64", "seconds since 1970"),
        _c("extra_data", "bytes"),
        _c("mix_hash", "hash", "prev_randao after the merge"),
        _c("nonce", "bytes", "8 bytes"),
        _c("base_fee_per_gas", "u64", "from London (EIP-1559)", null=True),
        _c("withdrawals_root", "hash", "from Shanghai", null=True),
        _c("blob_gas_used", "u64", "from Cancun", null=True),
        _c("excess_blob_gas", "u64", "from Cancun", null=True),
        _c("parent_beacon_block_root", "hash", "from Cancun", null=True),
        _c("requests_hash", "hash", "from Prague", null=True),
        _c("size", "u64", "bytes of the block's RLP (header and body)"),
        _c("transaction_count", "u32"),
        _c("ommer_count", "u32"),
        _c("withdrawal_count", "u32", "null before Shanghai", null=True),
        _c(
            "proof",
            "str",
            "how ethp2p knows the block is canonical: checkpoint, accumulator, peer-agreement, unanchored or unproven",
        ),
    ),
    "transactions": (
        *_BLOCK_REF,
        _c("transaction_index", "u32"),
        _c("hash", "hash"),
        _c("type", "u8", "0 legacy, 1 access list, 2 EIP-1559, 3 blob, 4 set code"),
        _c("chain_id", "u64", "null for legacy transactions signed before EIP-155", null=True),
        _c("nonce", "u64"),
        _c("from_address", "address", "recovered from the signature; null if it does not recover", null=True),
        _c("to_address", "address", "null for contract creation", null=True),
        _c("value", "u256", "wei"),
        _c("input", "bytes"),
        _c("gas_limit", "u64"),
        _c("gas_price", "u256", "types 0 and 1 (the price paid by any type: receipts.effective_gas_price)", null=True),
        _c("max_fee_per_gas", "u256", "types 2, 3, 4", null=True),
        _c("max_priority_fee_per_gas", "u256", "types 2, 3, 4", null=True),
        _c("max_fee_per_blob_gas", "u256", "type 3", null=True),
        _c("blob_hash_count", "u32", "blob versioned hashes (type 3)"),
        _c("access_list_size", "u32", "entries in the access list"),
        _c("authorization_count", "u32", "set-code authorizations (type 4)"),
        _c("y_parity", "u8", "the signature's y parity (legacy: from v)"),
        _c("v", "u256", "v as signed (legacy: 27/28, or chain_id * 2 + 35/36; typed: the y parity)"),
        _c("r", "hash", "the signature's r, 32 bytes big-endian"),
        _c("s", "hash", "the signature's s, 32 bytes big-endian"),
    ),
    "receipts": (
        *_BLOCK_REF,
        _c("transaction_index", "u32"),
        _c("transaction_hash", "hash"),
        _c("type", "u8"),
        _c("status", "u8", "1 success, 0 failure; null before Byzantium", null=True),
        _c("post_state", "hash", "the state root receipts held before Byzantium", null=True),
        _c("cumulative_gas_used", "u64"),
        _c("gas_used", "u64"),
        _c("effective_gas_price", "u256", "wei per gas the sender paid"),
        _c("contract_address", "address", "the created contract's address (contract creation)", null=True),
        _c("blob_gas_used", "u64", "blob transactions: 131,072 per blob", null=True),
        _c("log_count", "u32"),
    ),
    "logs": (
        *_BLOCK_REF,
        _c("transaction_index", "u32"),
        _c("transaction_hash", "hash"),
        _c("log_index", "u32", "position in the block"),
        _c("address", "address"),
        _c("topic0", "hash", null=True),
        _c("topic1", "hash", null=True),
        _c("topic2", "hash", null=True),
        _c("topic3", "hash", null=True),
        _c("data", "bytes"),
    ),
    "withdrawals": (
        *_BLOCK_REF,
        _c("withdrawal_index", "u32", "position in the block"),
        _c("index", "u64", "the consensus layer's withdrawal index"),
        _c("validator_index", "u64"),
        _c("address", "address"),
        _c("amount_gwei", "u64"),
    ),
    "ommers": (
        *_BLOCK_REF,
        _c("ommer_index", "u32", "position in the block"),
        _c("hash", "hash"),
        _c("number", "u64"),
        _c("parent_hash", "hash"),
        _c("miner", "address"),
        _c("difficulty", "u256"),
        _c("gas_limit", "u64"),
        _c("gas_used", "u64"),
        _c("timestamp", "u64"),
        _c("extra_data", "bytes"),
    ),
}

#: Tables written when ``--tables`` is not given.
DEFAULT_TABLES = ("blocks", "transactions", "receipts", "logs", "withdrawals", "ommers")


class SchemaError(ValueError):
    """An unknown table or column was asked for."""


def column_names(table: str) -> tuple[str, ...]:
    return tuple(c.name for c in TABLES[table])


def select_columns(
    table: str, include: frozenset[str] | None = None, exclude: frozenset[str] = frozenset()
) -> tuple[Column, ...]:
    """The columns of ``table`` to write: all, or only ``include``, less ``exclude`` (file order kept).

    A name in ``include``/``exclude`` that no selected table has is the caller's to report."""
    return tuple(c for c in TABLES[table] if (include is None or c.name in include) and c.name not in exclude)


def arrow_type(kind: str, hex: bool) -> pa.DataType:
    import pyarrow as pa

    if kind in BINARY_KINDS:
        return pa.string() if hex else pa.binary()
    return {"u8": pa.uint8(), "u32": pa.uint32(), "u64": pa.uint64(), "u256": pa.string(), "str": pa.string()}[kind]


def arrow_schema(columns: tuple[Column, ...], *, hex: bool = False) -> pa.Schema:
    """The Arrow schema of these columns (``hex``: binary kinds as ``0x`` strings)."""
    import pyarrow as pa

    return pa.schema([pa.field(c.name, arrow_type(c.kind, hex), nullable=c.nullable) for c in columns])
