"""Rows of the export tables, read from stored raw blocks.

:class:`RowReader` turns one stored block (raw header, body and eth/69 receipts) into a tuple per
row of each wanted table, with every column of :data:`~ethp2p.export.schema.TABLES` in order.
It does only the work the wanted tables and columns need: no transaction is decoded for a
blocks-only export, and no sender is recovered (an ECDSA recovery per transaction, most of the
cost) unless ``from_address`` or ``contract_address`` is written.
"""

from __future__ import annotations

from typing import Any

from .. import rlp
from ..chain.body import BlockBody
from ..chain.header import Header
from ..chain.receipts import receipt_fields
from ..chain.transactions import decode_transaction
from ..crypto.keccak import keccak
from ..trust import Proof

Row = tuple[Any, ...]

#: Tables whose rows need the block's transactions decoded.
_TX_TABLES = frozenset({"transactions", "receipts", "logs"})
#: Blob gas each blob of a blob transaction uses (EIP-4844).
GAS_PER_BLOB = 131_072
#: Columns whose values need each transaction's sender recovered.
SENDER_COLUMNS = frozenset({("transactions", "from_address"), ("receipts", "contract_address")})
#: Proof labels as the ``proof`` column spells them.
_PROOF_LABEL = {p: p.name.lower().replace("_", "-") for p in Proof}


class RowError(ValueError):
    """A stored block could not be turned into rows (the store holds data it should not)."""


def _int(b: bytes | memoryview) -> int:
    return int.from_bytes(rlp.string_payload(b), "big")


class RowReader:
    """Rows of ``tables`` from stored blocks; ``senders``: recover transaction senders."""

    def __init__(self, tables: frozenset[str], *, senders: bool = True) -> None:
        self.tables = tables
        self.senders = senders
        self._txs = bool(tables & _TX_TABLES)

    def block_rows(
        self, header_raw: bytes, body_raw: bytes, receipts_raw: bytes | None, proof: Proof
    ) -> dict[str, list[Row]]:
        """``{table: [row, ...]}`` for one block (every wanted table present, possibly empty)."""
        try:
            return self._rows(header_raw, body_raw, receipts_raw, proof)
        except (rlp.RLPError, ValueError, IndexError) as e:
            raise RowError(str(e)) from None

    def _rows(
        self, header_raw: bytes, body_raw: bytes, receipts_raw: bytes | None, proof: Proof
    ) -> dict[str, list[Row]]:
        t = self.tables
        h = Header(header_raw)
        number, bhash = h.number, h.hash
        body = BlockBody.decode(body_raw)
        out: dict[str, list[Row]] = {name: [] for name in t}
        ommers = body.ommers()
        if "blocks" in t:
            payload = len(header_raw) + len(rlp.list_payload(body_raw))
            size = len(rlp.encode_length(payload, 0xC0)) + payload
            out["blocks"].append(
                (
                    number,
                    bhash,
                    h.parent_hash,
                    h.ommers_hash,
                    h.coinbase,
                    h.state_root,
                    h.transactions_root,
                    h.receipts_root,
                    h.logs_bloom,
                    str(h.difficulty),
                    h.gas_limit,
                    h.gas_used,
                    h.timestamp,
                    h.extra_data,
                    h.mix_hash,
                    h.nonce,
                    h.base_fee,
                    h.withdrawals_root,
                    h.blob_gas_used,
                    h.excess_blob_gas,
                    h.parent_beacon_root,
                    h.requests_hash,
                    size,
                    len(body.transactions),
                    len(ommers),
                    len(body.withdrawals) if body.withdrawals is not None else None,
                    _PROOF_LABEL[proof],
                )
            )
        if "ommers" in t:
            rows = out["ommers"]
            for i, raw in enumerate(ommers):
                o = Header(bytes(raw))
                rows.append(
                    (
                        number,
                        bhash,
                        i,
                        o.hash,
                        o.number,
                        o.parent_hash,
                        o.coinbase,
                        str(o.difficulty),
                        o.gas_limit,
                        o.gas_used,
                        o.timestamp,
                        o.extra_data,
                    )
                )
        if "withdrawals" in t and body.withdrawals:
            rows = out["withdrawals"]
            for i, w in enumerate(body.withdrawals):
                index, validator, address, amount = rlp.split_list(w)
                rows.append(
                    (number, bhash, i, _int(index), _int(validator), bytes(rlp.string_payload(address)), _int(amount))
                )
        if self._txs and body.transactions:
            self._transaction_rows(h, body, receipts_raw, out)
        return out

    def _transaction_rows(
        self, h: Header, body: BlockBody, receipts_raw: bytes | None, out: dict[str, list[Row]]
    ) -> None:
        number, bhash, base_fee = h.number, h.hash, h.base_fee
        txs_out, receipts_out, logs_out = out.get("transactions"), out.get("receipts"), out.get("logs")
        receipts: list = []
        if receipts_out is not None or logs_out is not None:
            if receipts_raw is None:
                raise RowError(f"block {number}: no receipts stored")
            receipts = receipt_fields(receipts_raw)
            if len(receipts) != len(body.transactions):
                raise RowError(f"block {number}: {len(receipts)} receipts for {len(body.transactions)} transactions")
        senders = self.senders
        prev_gas = 0
        log_index = 0
        num = int.from_bytes
        for i, enc in enumerate(body.transaction_encodings()):
            tx = decode_transaction(enc, recover_sender=senders)
            if txs_out is not None:
                txs_out.append(
                    (
                        number,
                        bhash,
                        i,
                        tx.hash,
                        tx.type,
                        tx.chain_id,
                        tx.nonce,
                        tx.sender,
                        tx.to,
                        str(tx.value),
                        tx.input,
                        tx.gas_limit,
                        _opt_str(tx.gas_price),
                        _opt_str(tx.max_fee_per_gas),
                        _opt_str(tx.max_priority_fee_per_gas),
                        _opt_str(tx.max_fee_per_blob_gas),
                        tx.blob_hashes,
                        tx.access_list_size,
                        tx.authorization_count,
                        tx.y_parity,
                        str(tx.v),
                        _word(tx.r),
                        _word(tx.s),
                    )
                )
            if not receipts:
                continue
            status_raw, gas_raw, logs = receipts[i]
            if receipts_out is not None:
                status, post_state = (None, status_raw) if len(status_raw) == 32 else (num(status_raw, "big"), None)
                cum = num(gas_raw, "big")
                if tx.gas_price is not None:
                    price = tx.gas_price
                else:
                    fee, tip = tx.max_fee_per_gas or 0, tx.max_priority_fee_per_gas or 0
                    price = fee if base_fee is None else min(fee, base_fee + tip)
                created = None
                if tx.to is None and tx.sender is not None:
                    created = keccak(rlp.encode([tx.sender, tx.nonce]))[12:]
                blob_gas = GAS_PER_BLOB * tx.blob_hashes if tx.type == 3 else None
                receipts_out.append(
                    (
                        number,
                        bhash,
                        i,
                        tx.hash,
                        tx.type,
                        status,
                        post_state,
                        cum,
                        cum - prev_gas,
                        str(price),
                        created,
                        blob_gas,
                        len(logs),
                    )
                )
                prev_gas = cum
            if logs_out is not None:
                for address, topics, data in logs:
                    if len(topics) > 4:
                        raise RowError(f"block {number}: a log with {len(topics)} topics")
                    t4 = topics + [None] * (4 - len(topics))
                    logs_out.append((number, bhash, i, tx.hash, log_index, address, t4[0], t4[1], t4[2], t4[3], data))
                    log_index += 1
            else:
                log_index += len(logs)


def _word(v: int) -> bytes:
    """A 256-bit signature value as 32 bytes (a value past 256 bits, which no valid signature
    has, cannot be a row)."""
    try:
        return v.to_bytes(32, "big")
    except OverflowError:
        raise RowError(f"a signature value of {v.bit_length()} bits") from None


def _opt_str(v: int | None) -> str | None:
    return None if v is None else str(v)
