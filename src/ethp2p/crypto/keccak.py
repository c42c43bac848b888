"""Keccak-256 (the pre-NIST padding Ethereum uses), via safe-pysha3."""

from __future__ import annotations

import sha3

from ..accel import speedups as _c

keccak_256 = sha3.keccak_256
"""The incremental hasher class (``update``, ``digest``, ``copy``)."""

EMPTY_KECCAK = bytes.fromhex("c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")


def keccak_py(data: bytes | bytearray | memoryview) -> bytes:
    """keccak256(data) as 32 bytes, through pysha3's hasher object."""
    digest: bytes = sha3.keccak_256(data).digest()  # sha3 has no type information
    return digest


#: keccak256(data) as 32 bytes (one C call into pysha3's sponge when the extension is built).
keccak = _c.keccak256 if _c is not None else keccak_py


def keccak_many(items: list[bytes | memoryview]) -> list[bytes]:
    """keccak256 of each item (one call site for batch hashing on hot paths)."""
    k = keccak
    return [k(x) for x in items]
