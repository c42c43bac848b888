"""Exporting stored history as blocks, transactions and logs tables (JSON Lines or Parquet).

Columns (hashes, addresses and byte strings are ``0x`` hex; 256-bit quantities are
decimal strings so no reader overflows):

* ``blocks``: number, hash, parent_hash, timestamp, miner, gas_limit, gas_used,
  base_fee_per_gas, difficulty, extra_data, state_root, transactions_root,
  receipts_root, transaction_count, ommer_count, withdrawal_count, blob_gas_used,
  excess_blob_gas, parent_beacon_block_root, requests_hash
* ``transactions``: block_number, block_hash, transaction_index, hash, type, chain_id,
  nonce, from_address, to_address, value, input, gas_limit, gas_price, max_fee_per_gas,
  max_priority_fee_per_gas, max_fee_per_blob_gas, blob_count, access_list_size,
  authorization_count, status, post_state, cumulative_gas_used, gas_used, log_count
* ``logs``: block_number, block_hash, transaction_index, transaction_hash, log_index,
  address, topic0, topic1, topic2, topic3, data

Parquet needs pyarrow (``pip install ethp2p[export]``); JSON Lines needs nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import rlp
from .chain.body import BlockBody
from .chain.header import Header
from .chain.transactions import decode_transaction
from .store.blocks import BlockStore

TABLES = ("blocks", "transactions", "logs")
ROW_GROUP = 50_000


class ExportError(Exception):
    """The export cannot be done (missing pyarrow, bad range, unwritable directory)."""


def _hex(b: bytes | memoryview | None) -> str | None:
    return None if b is None else "0x" + bytes(b).hex()


@dataclass
class ExportResult:
    blocks: int = 0
    transactions: int = 0
    logs: int = 0
    files: tuple[str, ...] = ()


def rows(store: BlockStore, start: int, end: int) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(table, row)`` for every stored block in ``start..end`` (blocks without a body are skipped)."""
    for blk in store.canonical_blocks(start, end):
        if blk.body is None:
            continue
        h = Header(blk.header)
        body = BlockBody.decode(blk.body)
        encodings = body.transaction_encodings()
        yield "blocks", {
            "number": h.number,
            "hash": _hex(h.hash),
            "parent_hash": _hex(h.parent_hash),
            "timestamp": h.timestamp,
            "miner": _hex(h.coinbase),
            "gas_limit": h.gas_limit,
            "gas_used": h.gas_used,
            "base_fee_per_gas": h.base_fee,
            "difficulty": str(h.difficulty),
            "extra_data": _hex(h.extra_data),
            "state_root": _hex(h.state_root),
            "transactions_root": _hex(h.transactions_root),
            "receipts_root": _hex(h.receipts_root),
            "transaction_count": len(encodings),
            "ommer_count": len(body.ommers()),
            "withdrawal_count": len(body.withdrawals) if body.withdrawals is not None else None,
            "blob_gas_used": h.blob_gas_used,
            "excess_blob_gas": h.excess_blob_gas,
            "parent_beacon_block_root": _hex(h.parent_beacon_root),
            "requests_hash": _hex(h.requests_hash),
        }
        receipts = rlp.split_list(blk.receipts) if blk.receipts is not None else []
        prev_gas = 0
        log_index = 0
        for i, enc in enumerate(encodings):
            tx = decode_transaction(enc)
            status = post_state = cum = None
            logs: list[memoryview] = []
            if i < len(receipts):
                f = rlp.split_list(receipts[i])
                st = bytes(rlp.string_payload(f[1]))
                if len(st) == 32:
                    post_state = _hex(st)
                else:
                    status = int.from_bytes(st, "big")
                cum = int.from_bytes(rlp.string_payload(f[2]), "big")
                logs = rlp.split_list(f[3])
            yield "transactions", {
                "block_number": h.number,
                "block_hash": _hex(h.hash),
                "transaction_index": i,
                "hash": _hex(tx.hash),
                "type": tx.type,
                "chain_id": tx.chain_id,
                "nonce": tx.nonce,
                "from_address": _hex(tx.sender),
                "to_address": _hex(tx.to),
                "value": str(tx.value),
                "input": _hex(tx.input),
                "gas_limit": tx.gas_limit,
                "gas_price": None if tx.gas_price is None else str(tx.gas_price),
                "max_fee_per_gas": None if tx.max_fee_per_gas is None else str(tx.max_fee_per_gas),
                "max_priority_fee_per_gas": None if tx.max_priority_fee_per_gas is None else str(tx.max_priority_fee_per_gas),
                "max_fee_per_blob_gas": None if tx.max_fee_per_blob_gas is None else str(tx.max_fee_per_blob_gas),
                "blob_count": tx.blob_hashes,
                "access_list_size": tx.access_list_size,
                "authorization_count": tx.authorization_count,
                "status": status,
                "post_state": post_state,
                "cumulative_gas_used": cum,
                "gas_used": None if cum is None else cum - prev_gas,
                "log_count": len(logs),
            }
            if cum is not None:
                prev_gas = cum
            for log in logs:
                addr, topics_raw, data = rlp.split_list(log)
                topics = [_hex(rlp.string_payload(t)) for t in rlp.split_list(topics_raw)]
                topics += [None] * (4 - len(topics))
                yield "logs", {
                    "block_number": h.number,
                    "block_hash": _hex(h.hash),
                    "transaction_index": i,
                    "transaction_hash": _hex(tx.hash),
                    "log_index": log_index,
                    "address": _hex(rlp.string_payload(addr)),
                    "topic0": topics[0],
                    "topic1": topics[1],
                    "topic2": topics[2],
                    "topic3": topics[3],
                    "data": _hex(rlp.string_payload(data)),
                }
                log_index += 1


def export(store: BlockStore, out: str | Path, *, fmt: str = "parquet", start: int = 0, end: int | None = None) -> ExportResult:
    """Write ``blocks``, ``transactions`` and ``logs`` files for ``start..end`` into ``out``."""
    if fmt not in ("parquet", "jsonl"):
        raise ExportError(f"unknown format {fmt!r} (parquet or jsonl)")
    rng = store.block_range()
    if end is None:
        end = rng[1] if rng else 0
    outdir = Path(out)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ExportError(f"cannot create {outdir}: {e.strerror}") from None
    result = ExportResult()
    counts = {t: 0 for t in TABLES}
    if fmt == "jsonl":
        files = {t: open(outdir / f"{t}.jsonl", "w") for t in TABLES}
        try:
            for table, row in rows(store, start, end):
                files[table].write(json.dumps(row) + "\n")
                counts[table] += 1
        finally:
            for f in files.values():
                f.close()
        names = tuple(str(outdir / f"{t}.jsonl") for t in TABLES)
    else:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise ExportError("Parquet export needs pyarrow: pip install 'ethp2p[export]' (or use --format jsonl)") from None
        buffers: dict[str, list[dict[str, Any]]] = {t: [] for t in TABLES}
        writers: dict[str, Any] = {}
        schemas: dict[str, Any] = {}

        def flush(table: str) -> None:
            buf = buffers[table]
            if not buf:
                return
            batch = pa.Table.from_pylist(buf, schema=schemas.get(table))
            if table not in writers:
                schemas[table] = batch.schema
                writers[table] = pq.ParquetWriter(outdir / f"{table}.parquet", batch.schema)
            writers[table].write_table(batch)
            buffers[table] = []

        try:
            for table, row in rows(store, start, end):
                buffers[table].append(row)
                counts[table] += 1
                if len(buffers[table]) >= ROW_GROUP:
                    flush(table)
            for t in TABLES:
                flush(t)
        finally:
            for w in writers.values():
                w.close()
        names = tuple(str(outdir / f"{t}.parquet") for t in TABLES if t in writers)
    result.blocks, result.transactions, result.logs = counts["blocks"], counts["transactions"], counts["logs"]
    result.files = names
    return result
