"""Snappy block compression for devp2p messages (EIP-706), bounded on decode."""

from __future__ import annotations

import cramjam

from .errors import SnappyError


def compress(data: bytes) -> bytes:
    """Compress a message payload (snappy block format, no framing)."""
    return bytes(cramjam.snappy.compress_raw(data))


def decompressed_length(data: bytes | memoryview) -> int:
    """The length a block says it decompresses to (read from its varint header)."""
    try:
        return int(cramjam.snappy.decompress_raw_len(data))
    except Exception as e:  # cramjam raises its own DecompressionError
        raise SnappyError(f"bad snappy header: {e}") from None


def decompress(data: bytes | memoryview, max_len: int) -> bytes:
    """Decompress a snappy block, refusing before any work if it claims more than ``max_len``."""
    n = decompressed_length(data)
    if n > max_len:
        raise SnappyError(f"snappy block claims {n} bytes, above the {max_len}-byte cap")
    try:
        out = cramjam.snappy.decompress_raw(data)
    except Exception as e:
        raise SnappyError(f"corrupt snappy block: {e}") from None
    if len(out) != n:
        raise SnappyError(f"snappy block decompressed to {len(out)} bytes, header said {n}")
    return bytes(out)
