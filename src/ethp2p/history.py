"""Reading a store from a notebook: ``ethp2p.open_store(path)``.

Typed rows of the export tables (same columns, same meaning, see :mod:`ethp2p.export.schema`)
over a block range, one block at a time, or the same as Arrow tables::

    import ethp2p

    with ethp2p.open_store("mainnet.db") as history:
        for tx in history.transactions(12_000_000, 12_000_010):
            print(tx.hash.hex(), tx.from_address, tx.value)
        logs = history.arrow("logs", 12_000_000, 12_000_999)      # a pyarrow.Table
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .export.chunks import Chunk
from .export.rows import SENDER_COLUMNS, Row, RowReader
from .export.run import network_name, stored_blocks
from .export.schema import TABLES, arrow_schema, column_names, select_columns
from .export.writers import to_arrow
from .store.blocks import BlockStore, StoreError
from .trust import Proof

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True, slots=True)
class BlockRow:
    """A row of the ``blocks`` table."""

    number: int
    hash: bytes
    parent_hash: bytes
    ommers_hash: bytes
    miner: bytes
    state_root: bytes
    transactions_root: bytes
    receipts_root: bytes
    logs_bloom: bytes
    difficulty: int
    gas_limit: int
    gas_used: int
    timestamp: int
    extra_data: bytes
    mix_hash: bytes
    nonce: bytes
    base_fee_per_gas: int | None
    withdrawals_root: bytes | None
    blob_gas_used: int | None
    excess_blob_gas: int | None
    parent_beacon_block_root: bytes | None
    requests_hash: bytes | None
    size: int
    transaction_count: int
    ommer_count: int
    withdrawal_count: int | None
    proof: str


@dataclass(frozen=True, slots=True)
class TransactionRow:
    """A row of the ``transactions`` table (256-bit values as ints)."""

    block_number: int
    block_hash: bytes
    transaction_index: int
    hash: bytes
    type: int
    chain_id: int | None
    nonce: int
    from_address: bytes | None
    to_address: bytes | None
    value: int
    input: bytes
    gas_limit: int
    gas_price: int | None
    max_fee_per_gas: int | None
    max_priority_fee_per_gas: int | None
    max_fee_per_blob_gas: int | None
    blob_hash_count: int
    access_list_size: int
    authorization_count: int
    y_parity: int
    v: int
    r: bytes
    s: bytes


@dataclass(frozen=True, slots=True)
class ReceiptRow:
    """A row of the ``receipts`` table."""

    block_number: int
    block_hash: bytes
    transaction_index: int
    transaction_hash: bytes
    type: int
    status: int | None
    post_state: bytes | None
    cumulative_gas_used: int
    gas_used: int
    effective_gas_price: int
    contract_address: bytes | None
    blob_gas_used: int | None
    log_count: int


@dataclass(frozen=True, slots=True)
class LogRow:
    """A row of the ``logs`` table."""

    block_number: int
    block_hash: bytes
    transaction_index: int
    transaction_hash: bytes
    log_index: int
    address: bytes
    topic0: bytes | None
    topic1: bytes | None
    topic2: bytes | None
    topic3: bytes | None
    data: bytes


@dataclass(frozen=True, slots=True)
class WithdrawalRow:
    """A row of the ``withdrawals`` table."""

    block_number: int
    block_hash: bytes
    withdrawal_index: int
    index: int
    validator_index: int
    address: bytes
    amount_gwei: int


@dataclass(frozen=True, slots=True)
class OmmerRow:
    """A row of the ``ommers`` table."""

    block_number: int
    block_hash: bytes
    ommer_index: int
    hash: bytes
    number: int
    parent_hash: bytes
    miner: bytes
    difficulty: int
    gas_limit: int
    gas_used: int
    timestamp: int
    extra_data: bytes


#: The row type of each table.
ROW_TYPES: dict[str, type] = {
    "blocks": BlockRow,
    "transactions": TransactionRow,
    "receipts": ReceiptRow,
    "logs": LogRow,
    "withdrawals": WithdrawalRow,
    "ommers": OmmerRow,
}


def _typed(table: str) -> Any:
    """A function from a raw row tuple to the table's row type (256-bit strings to ints)."""
    cls = ROW_TYPES[table]
    u256 = [i for i, c in enumerate(TABLES[table]) if c.kind == "u256"]
    if not u256:
        return lambda row: cls(*row)

    def make(row: Row) -> Any:
        values = list(row)
        for i in u256:
            if values[i] is not None:
                values[i] = int(values[i])
        return cls(*values)

    return make


class History:
    """Read access to a block store as the export tables (see :func:`open_store`)."""

    def __init__(self, store: BlockStore) -> None:
        self.store = store
        self.network = network_name(store.genesis_hash)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def range(self) -> tuple[int, int] | None:
        """(lowest, highest) stored block numbers, or None for an empty store."""
        return self.store.block_range()

    def proof_counts(self) -> dict[Proof, int]:
        """How many stored blocks are proven how."""
        return self.store.proof_counts()

    def _rows(self, table: str, start: int, end: int, senders: bool = True) -> Iterator[Row]:
        reader = RowReader(frozenset({table}), senders=senders)
        for blk in stored_blocks(self.store, Chunk(start, end), receipts=table in ("receipts", "logs")):
            yield from reader.block_rows(*blk)[table]

    def blocks(self, start: int, end: int) -> Iterator[BlockRow]:
        """Stored blocks ``start..end`` (blocks whose body is not stored are skipped; receipts and
        logs skip blocks whose receipts are not stored)."""
        make = _typed("blocks")
        return (make(r) for r in self._rows("blocks", start, end))

    def transactions(self, start: int, end: int, *, senders: bool = True) -> Iterator[TransactionRow]:
        """Transactions of blocks ``start..end``; ``senders=False`` skips sender recovery (``from_address`` None)."""
        make = _typed("transactions")
        return (make(r) for r in self._rows("transactions", start, end, senders))

    def receipts(self, start: int, end: int) -> Iterator[ReceiptRow]:
        make = _typed("receipts")
        return (make(r) for r in self._rows("receipts", start, end))

    def logs(self, start: int, end: int) -> Iterator[LogRow]:
        make = _typed("logs")
        return (make(r) for r in self._rows("logs", start, end, senders=False))

    def withdrawals(self, start: int, end: int) -> Iterator[WithdrawalRow]:
        make = _typed("withdrawals")
        return (make(r) for r in self._rows("withdrawals", start, end))

    def ommers(self, start: int, end: int) -> Iterator[OmmerRow]:
        make = _typed("ommers")
        return (make(r) for r in self._rows("ommers", start, end))

    def arrow(
        self, table: str, start: int, end: int, *, columns: list[str] | None = None, hex: bool = False
    ) -> pa.Table:
        """Table ``table`` for blocks ``start..end`` as a ``pyarrow.Table`` with the export schema
        (``columns``: only these; ``hex``: binary kinds as ``0x`` strings)."""
        import pyarrow as pa

        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}; tables: {', '.join(TABLES)}")
        if columns is not None and not columns:
            raise ValueError("columns=[] selects nothing; leave it out for every column")
        cols = select_columns(table, frozenset(columns) if columns is not None else None)
        if columns is not None and len(cols) != len(set(columns)):
            unknown = sorted(set(columns) - {c.name for c in cols})
            raise ValueError(f"table {table} has no column {', '.join(unknown)}")
        names = column_names(table)
        idx = [names.index(c.name) for c in cols]
        schema = arrow_schema(cols, hex=hex)
        senders = any((table, c.name) in SENDER_COLUMNS for c in cols)
        batches, buf = [], []
        for row in self._rows(table, start, end, senders):
            buf.append(row)
            if len(buf) >= 50_000:
                batches.append(to_arrow(buf, cols, idx, schema))
                buf = []
        batches.append(to_arrow(buf, cols, idx, schema))
        return pa.concat_tables(batches)


def open_store(path: str | Path) -> History:
    """Open an ethp2p block store read-only, for reading its history as tables."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"store not found: {p}")
    try:
        return History(BlockStore(p, readonly=True))
    except StoreError as e:
        raise ValueError(str(e)) from None
