"""Types of the C extension ``ethp2p._speedups`` (built from ``_speedups.c``).

Each function takes one bytes-like argument (any object with the buffer protocol) and, except
``keccak256`` and ``ordered_trie_root``, returns None when the input is malformed, so that the
caller falls back to the pure-Python reference, which raises the precise error. The pure-Python
mirrors are named after each function below.
"""

from collections.abc import Sequence

from typing_extensions import Buffer

def keccak256(data: Buffer, /) -> bytes:
    """Keccak-256 of ``data`` (32 bytes); mirrors :func:`ethp2p.crypto.keccak.keccak_py`."""

def ordered_trie_root(items: Sequence[Buffer], /) -> bytes:
    """Root of the trie keyed by rlp(index); mirrors :func:`ethp2p.chain.trie.ordered_trie_root_py`."""

def body_roots(body_raw: Buffer, /) -> tuple[bytes, int, bytes, bytes | None] | None:
    """(transactions root, transaction count, ommers hash, withdrawals root or None) of a block body."""

def receipts69_root(list_raw: Buffer, /) -> tuple[bytes, int] | None:
    """(receipts root, receipt count) of an eth/69-form list; mirrors ``receipts69_root_py``."""

def receipts69_shape(list_raw: Buffer, /) -> tuple[int, int] | None:
    """(receipt count, last cumulative gas or 0) of an eth/69-form list, checked but not hashed."""

def receipts68_root(list_raw: Buffer, /) -> tuple[bytes, int, bytes] | None:
    """(receipts root, receipt count, the list in eth/69 form) of an eth/68 list."""

def receipts69_to_68(list_raw: Buffer, /) -> bytes | None:
    """An eth/69-form list re-encoded for eth/68 (blooms rebuilt); mirrors ``receipts69_to_68_py``."""

def tx_fields(encoding: Buffer, /) -> tuple[int, list[bytes | int], int, int] | None:
    """(type, fields, payload start, signature start) of a consensus-encoded transaction: strings
    as bytes, lists as their item counts; mirrors :func:`ethp2p.chain.transactions.transaction_fields`."""

def receipts69_fields(list_raw: Buffer, /) -> list[tuple[bytes, bytes, list[tuple[bytes, list[bytes], bytes]]]] | None:
    """[(status, cumulative gas, [(address, [topics], data), ...]), ...] of an eth/69-form list;
    mirrors :func:`ethp2p.chain.receipts.receipt_fields_py`."""
