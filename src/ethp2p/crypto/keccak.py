"""Keccak-256 (the pre-NIST padding Ethereum uses), via safe-pysha3."""

from __future__ import annotations

import sha3

keccak_256 = sha3.keccak_256
"""The incremental hasher class (``update``, ``digest``, ``copy``)."""

EMPTY_KECCAK = bytes.fromhex("c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")


def keccak(data: bytes | bytearray | memoryview) -> bytes:
    """keccak256(data) as 32 bytes."""
    return sha3.keccak_256(data).digest()


def keccak_many(items: "list[bytes | memoryview]") -> list[bytes]:
    """keccak256 of each item (one call site for batch hashing on hot paths)."""
    k = sha3.keccak_256
    return [k(x).digest() for x in items]
