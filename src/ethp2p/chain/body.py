"""Block bodies as raw RLP: ``[transactions, ommers]`` or ``[transactions, ommers, withdrawals]``.

Transactions stay in their wire form: a legacy transaction is an RLP list, a typed
one (EIP-2718: types 1, 2, 3, 4) is an RLP string whose payload is
``type || rlp(fields)``. The transactions root is built from the consensus
encodings (the list itself, or the string's payload).
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import rlp
from ..crypto.keccak import keccak
from .trie import ordered_trie_root

#: The body of a block without transactions, ommers or withdrawals (pre-Shanghai / post-Shanghai).
EMPTY_BODY = b"\xc2\xc0\xc0"
EMPTY_BODY_WITH_WITHDRAWALS = b"\xc3\xc0\xc0\xc0"
#: Known transaction types (legacy is 0 and has no type byte).
TX_TYPES = frozenset({0, 1, 2, 3, 4})
#: Upper bound on transactions in one body (a 60M-gas block holds < 3,000 transfers).
MAX_TRANSACTIONS = 100_000


class BodyError(ValueError):
    """The bytes are not a well-formed block body."""


@dataclass(frozen=True, slots=True)
class BlockBody:
    """A split body: each element is a ``memoryview`` into ``raw``."""

    raw: bytes
    transactions: list[memoryview]
    ommers_raw: memoryview
    withdrawals: list[memoryview] | None

    @classmethod
    def decode(cls, raw: bytes | memoryview) -> BlockBody:
        raw = bytes(raw)
        try:
            parts = rlp.split_list(raw, max_items=4)
        except rlp.RLPError as e:
            raise BodyError(f"body is not an RLP list: {e}") from None
        if len(parts) not in (2, 3):
            raise BodyError(f"body has {len(parts)} elements, expected 2 or 3")
        if not all(rlp.is_list_item(p) for p in parts):
            raise BodyError("body elements must be lists")
        try:
            txs = rlp.split_list(parts[0], max_items=MAX_TRANSACTIONS)
            withdrawals = rlp.split_list(parts[2], max_items=MAX_TRANSACTIONS) if len(parts) == 3 else None
        except rlp.RLPError as e:
            raise BodyError(f"body: {e}") from None
        return cls(raw, txs, parts[1], withdrawals)

    def transaction_encodings(self) -> list[bytes | memoryview]:
        """Consensus (EIP-2718) encodings of the transactions, as the transactions trie keys them."""
        out: list[bytes | memoryview] = []
        for i, tx in enumerate(self.transactions):
            if tx[0] >= 0xC0:
                out.append(tx)
                continue
            try:
                payload = rlp.string_payload(tx)
            except rlp.RLPError as e:
                raise BodyError(f"transaction {i}: {e}") from None
            if len(payload) < 2 or payload[0] not in TX_TYPES or payload[0] == 0 or payload[1] < 0xC0:
                raise BodyError(f"transaction {i}: not a typed transaction (type byte {payload[:1].hex() or 'none'})")
            out.append(payload)
        return out

    def transaction_types(self) -> list[int]:
        return [0 if tx[0] >= 0xC0 else rlp.string_payload(tx)[0] for tx in self.transactions]

    def transactions_root(self) -> bytes:
        return ordered_trie_root(self.transaction_encodings())

    def ommers_hash(self) -> bytes:
        return keccak(self.ommers_raw)

    def withdrawals_root(self) -> bytes | None:
        if self.withdrawals is None:
            return None
        for i, w in enumerate(self.withdrawals):
            if not rlp.is_list_item(w):
                raise BodyError(f"withdrawal {i} is not a list")
        return ordered_trie_root(self.withdrawals)

    def ommers(self) -> list[memoryview]:
        try:
            return rlp.split_list(self.ommers_raw, max_items=16)
        except rlp.RLPError as e:
            raise BodyError(f"ommers: {e}") from None
