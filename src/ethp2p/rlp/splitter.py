"""Zero-copy RLP splitting for hot paths.

These helpers never copy payload bytes: they return :class:`memoryview` slices
into the caller's buffer. They still check canonical headers and bounds, so a
split is as strict as :func:`ethp2p.rlp.decode` at the level it looks at.
"""

from __future__ import annotations

from .codec import RLPDecodeError, read_header


def _as_view(data: bytes | bytearray | memoryview) -> memoryview:
    return data if isinstance(data, memoryview) else memoryview(data)


def header(data: bytes | memoryview, pos: int = 0) -> tuple[bool, int, int]:
    """(is_list, payload_start, payload_length) of the item at ``pos``."""
    return read_header(data, pos, len(data))


def split_list(data: bytes | bytearray | memoryview, *, max_items: int | None = None) -> list[memoryview]:
    """Split one RLP list (the whole of ``data``) into its elements' raw encodings.

    Each returned slice is a complete encoded item (header included), so it can
    be hashed, stored or forwarded as-is. Raises :class:`RLPDecodeError` if
    ``data`` is not exactly one list or holds more than ``max_items`` elements.
    """
    mv = _as_view(data)
    end = len(mv)
    is_list, start, length = read_header(mv, 0, end)
    if not is_list:
        raise RLPDecodeError("expected an RLP list, got a string")
    if start + length != end:
        raise RLPDecodeError(f"{end - start - length} trailing bytes after RLP list")
    return _split_payload(mv, start, start + length, max_items)


def split_payload(payload: bytes | bytearray | memoryview, *, max_items: int | None = None) -> list[memoryview]:
    """Split a list *payload* (no header) into its elements' raw encodings."""
    mv = _as_view(payload)
    return _split_payload(mv, 0, len(mv), max_items)


def _split_payload(mv: memoryview, pos: int, stop: int, max_items: int | None) -> list[memoryview]:
    out: list[memoryview] = []
    append = out.append
    while pos < stop:
        b0 = mv[pos]
        if b0 < 0x80:
            nxt = pos + 1
        elif b0 < 0xB8 and b0 != 0x81:
            nxt = pos + 1 + (b0 - 0x80)
            if nxt > stop:
                raise RLPDecodeError(f"item at offset {pos} runs past end of its list")
        elif 0xC0 <= b0 < 0xF8:
            nxt = pos + 1 + (b0 - 0xC0)
            if nxt > stop:
                raise RLPDecodeError(f"item at offset {pos} runs past end of its list")
        else:
            _, s, ln = read_header(mv, pos, stop)
            nxt = s + ln
        append(mv[pos:nxt])
        if max_items is not None and len(out) > max_items:
            raise RLPDecodeError(f"list has more than {max_items} items")
        pos = nxt
    return out


def string_payload(item: bytes | bytearray | memoryview) -> memoryview:
    """The payload of one encoded RLP string (the whole of ``item``)."""
    mv = _as_view(item)
    n = len(mv)
    if n:
        # The short forms, checked here as read_header would (hot in transaction and log decoding).
        b0 = mv[0]
        if b0 < 0x80:
            if n == 1:
                return mv
        elif b0 < 0xB8 and n == b0 - 0x7F and (b0 != 0x81 or mv[1] >= 0x80):
            return mv[1:]
    is_list, start, length = read_header(mv, 0, n)
    if is_list:
        raise RLPDecodeError("expected an RLP string, got a list")
    if start + length != len(mv):
        raise RLPDecodeError("trailing bytes after RLP string")
    return mv[start : start + length]


def list_payload(item: bytes | bytearray | memoryview) -> memoryview:
    """The payload of one encoded RLP list (the whole of ``item``)."""
    mv = _as_view(item)
    is_list, start, length = read_header(mv, 0, len(mv))
    if not is_list:
        raise RLPDecodeError("expected an RLP list, got a string")
    if start + length != len(mv):
        raise RLPDecodeError("trailing bytes after RLP list")
    return mv[start : start + length]


def is_list_item(item: bytes | memoryview) -> bool:
    """True if the encoded item starts with a list header."""
    return len(item) > 0 and item[0] >= 0xC0
