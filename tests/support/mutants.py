"""Randomly corrupted copies of encoded data, for differential tests of parsers."""

from __future__ import annotations

import random

#: Byte values that sit at RLP header boundaries (lengths, list/string kinds, tx types).
HEADER_BYTES = (0x00, 0x01, 0x04, 0x05, 0x7F, 0x80, 0x81, 0x88, 0x89, 0xA0, 0xB8, 0xC0, 0xE1, 0xF8, 0xF9, 0xFF)


def mutants(data: bytes, rng: random.Random, count: int, *, header_bytes: bool = False) -> list[bytes]:
    """``count`` copies of ``data``, each with one random change: a byte replaced, a bit flipped,
    1-3 bytes deleted, a byte inserted, or (``header_bytes``) a byte set to a header-boundary value."""
    out = []
    for _ in range(count):
        b = bytearray(data)
        kind = rng.randrange(5 if header_bytes else 4)
        i = rng.randrange(len(b))
        if kind == 0:
            b[i] = rng.randrange(256)
        elif kind == 1:
            b[i] ^= 1 << rng.randrange(8)
        elif kind == 2:
            del b[i : i + rng.randrange(1, 4)]
        elif kind == 3:
            b[i:i] = bytes([rng.randrange(256)])
        else:
            b[i] = rng.choice(HEADER_BYTES)
        out.append(bytes(b))
    return out
