"""Strict RLP encoding and decoding.

Decoding is canonical-only: a single byte below 0x80 wrapped in a string header,
length prefixes with leading zeros, long-form lengths under 56, lengths that run
past the input, and trailing bytes are all rejected with :class:`RLPDecodeError`.
Nesting depth and input size are bounded so hostile input cannot exhaust memory
or the stack.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

#: A decoded RLP item: a byte string or a (nested) list of items.
Item: TypeAlias = "bytes | list[Item]"
#: What :func:`encode` accepts (lists and tuples of these, nested).
Encodable: TypeAlias = "bytes | bytearray | memoryview | int | str | list[Any] | tuple[Any, ...]"

#: Default bound on nesting depth when decoding untrusted input.
MAX_DEPTH = 64
#: Default bound on the size of a single decoded input (matches the 16 MiB message cap).
MAX_INPUT = 16 * 1024 * 1024


class RLPError(ValueError):
    """Base class of every RLP failure."""


class RLPDecodeError(RLPError):
    """The input is not canonical, well-formed RLP (or breaks a bound)."""


class RLPEncodeError(RLPError):
    """The value cannot be encoded as RLP."""


def _length_prefix(length: int, offset: int) -> bytes:
    if length < 56:
        return bytes((offset + length,))
    if length < 0x100:  # the common long forms spelled out (hot in trie and receipt encoding)
        return bytes((offset + 56, length))
    if length < 0x10000:
        return bytes((offset + 57, length >> 8, length & 0xFF))
    lb = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((offset + 55 + len(lb),)) + lb


def encode_length(length: int, offset: int) -> bytes:
    """The header for a payload of ``length`` bytes (``offset`` 0x80 for strings, 0xC0 for lists)."""
    return _length_prefix(length, offset)


def encode_int(value: int) -> bytes:
    """Big-endian minimal bytes of a non-negative integer (0 -> b'')."""
    if value < 0:
        raise RLPEncodeError(f"cannot encode negative integer {value}")
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def encode_bytes(value: bytes) -> bytes:
    """Encode one byte string."""
    n = len(value)
    if n == 1 and value[0] < 0x80:
        return bytes(value)
    if n < 56:
        return bytes((0x80 + n,)) + value
    return _length_prefix(n, 0x80) + value


def encode_raw_list(encoded_items: Sequence[bytes | memoryview]) -> bytes:
    """Wrap already-encoded items (bytes or views of them) in a list header (no re-encoding)."""
    payload = b"".join(encoded_items)
    return _length_prefix(len(payload), 0xC0) + payload


def _encode(item: object, out: list[bytes]) -> int:
    """Append the encoding of ``item`` to ``out``; return its length."""
    if isinstance(item, (bytes, bytearray, memoryview)):
        b = bytes(item)
    elif isinstance(item, bool):
        b = b"\x01" if item else b""
    elif isinstance(item, int):
        b = encode_int(item)
    elif isinstance(item, str):
        b = item.encode()
    elif isinstance(item, (list, tuple)):
        idx = len(out)
        out.append(b"")  # placeholder for the header
        total = 0
        for sub in item:
            total += _encode(sub, out)
        header = _length_prefix(total, 0xC0)
        out[idx] = header
        return total + len(header)
    elif isinstance(item, RawRLP):
        out.append(item.encoded)
        return len(item.encoded)
    else:
        raise RLPEncodeError(f"cannot RLP-encode {type(item).__name__}")
    n = len(b)
    if n == 1 and b[0] < 0x80:
        out.append(b)
        return 1
    header = _length_prefix(n, 0x80)
    out.append(header)
    out.append(b)
    return n + len(header)


class RawRLP:
    """An already-encoded RLP item, embedded as-is by :func:`encode`."""

    __slots__ = ("encoded",)

    def __init__(self, encoded: bytes) -> None:
        self.encoded = bytes(encoded)

    def __repr__(self) -> str:
        return f"RawRLP({self.encoded.hex()})"


def encode(item: object) -> bytes:
    """Encode bytes, non-negative ints, strings (UTF-8), :class:`RawRLP` and nested lists."""
    out: list[bytes] = []
    _encode(item, out)
    return b"".join(out)


def read_header(data: bytes | memoryview, pos: int, end: int) -> tuple[bool, int, int]:
    """Parse the header at ``pos``: return (is_list, payload_start, payload_length).

    Checks canonical form and that the payload fits before ``end``.
    """
    if pos >= end:
        raise RLPDecodeError("unexpected end of input")
    b0 = data[pos]
    if b0 < 0x80:
        return False, pos, 1
    if b0 < 0xB8:
        length = b0 - 0x80
        start = pos + 1
        if length == 1:
            if start >= end:
                raise RLPDecodeError("string runs past end of input")
            if data[start] < 0x80:
                raise RLPDecodeError("single byte below 0x80 must not have a string header")
        is_list = False
    elif b0 < 0xC0:
        ll = b0 - 0xB7
        start = pos + 1 + ll
        if start > end:
            raise RLPDecodeError("length of length runs past end of input")
        if data[pos + 1] == 0:
            raise RLPDecodeError("leading zero in long length")
        length = int.from_bytes(data[pos + 1 : start], "big")
        if length < 56:
            raise RLPDecodeError("long-form length used for a short string")
        is_list = False
    elif b0 < 0xF8:
        length = b0 - 0xC0
        start = pos + 1
        is_list = True
    else:
        ll = b0 - 0xF7
        start = pos + 1 + ll
        if start > end:
            raise RLPDecodeError("length of length runs past end of input")
        if data[pos + 1] == 0:
            raise RLPDecodeError("leading zero in long length")
        length = int.from_bytes(data[pos + 1 : start], "big")
        if length < 56:
            raise RLPDecodeError("long-form length used for a short list")
        is_list = True
    if start + length > end:
        raise RLPDecodeError(f"item of {length} bytes at offset {pos} runs past end of input ({end - start} available)")
    return is_list, start, length


def _decode_at(data: bytes, pos: int, end: int, depth: int, max_depth: int) -> tuple[Item, int]:
    is_list, start, length = read_header(data, pos, end)
    stop = start + length
    if not is_list:
        return data[start:stop], stop
    if depth >= max_depth:
        raise RLPDecodeError(f"nesting deeper than {max_depth}")
    items: list[Item] = []
    p = start
    while p < stop:
        item, p = _decode_at(data, p, stop, depth + 1, max_depth)
        items.append(item)
    return items, stop


def decode(
    data: bytes | bytearray | memoryview,
    *,
    max_depth: int = MAX_DEPTH,
    max_size: int = MAX_INPUT,
    allow_trailing: bool = False,
) -> Item:
    """Decode one canonical RLP item from ``data``.

    Raises :class:`RLPDecodeError` on any non-canonical form, on truncation, on
    trailing bytes (unless ``allow_trailing``), and when ``max_depth`` or
    ``max_size`` is exceeded.
    """
    if not isinstance(data, bytes):
        data = bytes(data)
    if len(data) > max_size:
        raise RLPDecodeError(f"input of {len(data)} bytes exceeds limit of {max_size}")
    if not data:
        raise RLPDecodeError("empty input")
    item, end = _decode_at(data, 0, len(data), 0, max_depth)
    if end != len(data) and not allow_trailing:
        raise RLPDecodeError(f"{len(data) - end} trailing bytes after RLP item")
    return item


def decode_int(value: bytes | memoryview, *, max_bytes: int = 32) -> int:
    """Decode a canonical RLP integer payload (no leading zeros; at most ``max_bytes``)."""
    n = len(value)
    if n == 0:
        return 0
    if n > max_bytes:
        raise RLPDecodeError(f"integer of {n} bytes exceeds {max_bytes}")
    if value[0] == 0:
        raise RLPDecodeError("integer has leading zero bytes")
    return int.from_bytes(value, "big")


def item_length(data: bytes | memoryview, pos: int = 0) -> int:
    """Total encoded length (header + payload) of the item starting at ``pos``."""
    _, start, length = read_header(data, pos, len(data))
    return start + length - pos
