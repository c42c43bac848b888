"""Receipt lists in their three shapes, converted without decoding more than needed.

* **eth/69 form** (also eth/70, and what ethp2p stores): each receipt is
  ``[tx-type, post-state-or-status, cumulative-gas, logs]``, no bloom.
* **eth/68 form**: the consensus encoding on the wire: a legacy receipt is the list
  ``[status, cumulative-gas, bloom, logs]``; a typed one is a byte string holding
  ``type || rlp([status, cumulative-gas, bloom, logs])``.
* **consensus encoding** (what the receipts trie holds): the list itself (legacy) or
  ``type || rlp(...)`` (typed).

Blooms are rebuilt from logs where a form lacks them.
"""

from __future__ import annotations

from collections.abc import Sequence

from .. import rlp
from ..accel import speedups as _c
from ..crypto.keccak import keccak_256
from ..rlp import read_header
from .body import TX_TYPES
from .trie import ordered_trie_root

BLOOM_SIZE = 256
EMPTY_BLOOM = bytes(BLOOM_SIZE)
#: Upper bound on receipts in one block's list and logs in one receipt.
MAX_RECEIPTS = 100_000
MAX_LOGS = 100_000
MAX_TOPICS = 4


class ReceiptError(ValueError):
    """A receipt list is malformed."""


#: keccak-derived bloom bits of recently seen addresses and topics (the same
#: contracts and event signatures recur in every block, so this saves most hashing).
_BITS_CACHE: dict[bytes, int] = {}
_BITS_CACHE_MAX = 200_000


def _bloom_bits(value: bytes) -> int:
    bits = _BITS_CACHE.get(value)
    if bits is None:
        h = keccak_256(value).digest()
        bits = (
            (1 << (((h[0] << 8) | h[1]) & 2047))
            | (1 << (((h[2] << 8) | h[3]) & 2047))
            | (1 << (((h[4] << 8) | h[5]) & 2047))
        )
        if len(_BITS_CACHE) >= _BITS_CACHE_MAX:
            _BITS_CACHE.clear()
        _BITS_CACHE[value] = bits
    return bits


def combine_blooms(blooms: Sequence[bytes]) -> bytes:
    """OR of several blooms (a block's bloom is the OR of its receipts')."""
    acc = 0
    for b in blooms:
        acc |= int.from_bytes(b, "big")
    return acc.to_bytes(BLOOM_SIZE, "big")


# ---- single-pass scanners ----------------------------------------------------------------------
#
# The receipt and log layouts are fixed, so one pass over the bytes checks every
# header for canonical form and bounds (as strictly as ethp2p.rlp does) and finds
# the pieces, without creating an object per RLP item. They work on ``bytes`` and
# offsets; ``end`` is always the end of the enclosing item.


def _item(buf: bytes, pos: int, end: int, what: str) -> tuple[bool, int, int]:
    """(is_list, payload_start, payload_end) of the item at ``pos`` (must fit before ``end``)."""
    try:
        is_list, start, length = read_header(buf, pos, end)
    except rlp.RLPError as e:
        raise ReceiptError(f"{what}: {e}") from None
    return is_list, start, start + length


def _list_at(buf: bytes, pos: int, end: int, what: str) -> tuple[int, int]:
    if pos >= end:
        raise ReceiptError(f"{what}: unexpected end of input")
    b = buf[pos]
    if 0xC0 <= b < 0xF8:
        stop = pos + 1 + b - 0xC0
        if stop > end:
            raise ReceiptError(f"{what}: runs past the end of its list")
        return pos + 1, stop
    if b == 0xF8 or b == 0xF9:
        # Long lists of up to 64 KiB (most receipts and logs), checked as ethp2p.rlp does.
        start = pos + 2 + (b - 0xF8)
        if start > end or buf[pos + 1] == 0:
            raise ReceiptError(f"{what}: bad long list header")
        length = buf[pos + 1] if b == 0xF8 else (buf[pos + 1] << 8) | buf[pos + 2]
        if length < 56:
            raise ReceiptError(f"{what}: long-form length used for a short list")
        stop = start + length
        if stop > end:
            raise ReceiptError(f"{what}: runs past the end of its list")
        return start, stop
    is_list, start, stop = _item(buf, pos, end, what)
    if not is_list:
        raise ReceiptError(f"{what} must be a list")
    return start, stop


#: Topic-list headers by topic count (each topic is 0xa0 + 32 bytes).
_TOPICS_LONG = {0x42: 2, 0x63: 3, 0x84: 4}


def _scan_logs(buf: bytes, pos: int, end: int) -> int:
    """Check the logs list payload ``buf[pos:end]`` and return its bloom as an int."""
    acc = 0
    count = 0
    bits = _bloom_bits
    cached = _BITS_CACHE.get
    while pos < end:
        ls, le = _list_at(buf, pos, end, "log")
        if le - ls < 22 or buf[ls] != 0x94:
            raise ReceiptError("log must be [address, topics, data] with a 20-byte address")
        key = buf[ls + 1 : ls + 21]
        acc |= cached(key) or bits(key)
        p = ls + 21
        t = buf[p]
        if t == 0xC0:
            k = 0
            p += 1
        elif t == 0xE1:
            k = 1
            p += 1
        elif t == 0xF8 and p + 1 < le and buf[p + 1] in _TOPICS_LONG:
            k = _TOPICS_LONG[buf[p + 1]]
            p += 2
        else:
            raise ReceiptError("log topics must be a list of at most 4 topics of 32 bytes")
        if p + 33 * k >= le:
            raise ReceiptError("log topics run past the end of the log")
        for _ in range(k):
            if buf[p] != 0xA0:
                raise ReceiptError("log topic must be 32 bytes")
            key = buf[p + 1 : p + 33]
            acc |= cached(key) or bits(key)
            p += 33
        d = buf[p]
        if d < 0x80:
            p += 1
        elif d < 0xB8:
            if d == 0x81 and (p + 1 >= le or buf[p + 1] < 0x80):
                raise ReceiptError("log data: single byte below 0x80 must not have a string header")
            p += 1 + d - 0x80
        else:
            is_list, _, p = _item(buf, p, le, "log data")
            if is_list:
                raise ReceiptError("log data must be a string")
        if p != le:
            raise ReceiptError("log must be [address, topics, data]")
        pos = le
        count += 1
        if count > MAX_LOGS:
            raise ReceiptError(f"more than {MAX_LOGS} logs in one receipt")
    return acc


def _status_gas(buf: bytes, p: int, end: int) -> int:
    """Check status (empty, 1 or a 32-byte root) and cumulative gas at ``p``; return the offset after."""
    if p >= end:
        raise ReceiptError("receipt too short")
    s = buf[p]
    if s == 0x80 or s == 0x01:
        p += 1
    elif s == 0xA0:
        p += 33
    else:
        raise ReceiptError("receipt status must be empty, 1 or a 32-byte post-state root")
    if p >= end:
        raise ReceiptError("receipt too short")
    g = buf[p]
    if 0 < g <= 0x80:
        p += 1
    elif 0x81 <= g <= 0x88 and p + 1 < end and buf[p + 1] != 0 and (g != 0x81 or buf[p + 1] >= 0x80):
        p += 1 + g - 0x80
    else:
        raise ReceiptError("receipt cumulative gas is not a canonical 64-bit integer")
    if p > end:
        raise ReceiptError("receipt too short")
    return p


def _receipt_list(list_raw: bytes | memoryview) -> tuple[bytes, int, int]:
    buf = bytes(list_raw)
    start, stop = _list_at(buf, 0, len(buf), "receipt list")
    if stop != len(buf):
        raise ReceiptError("receipt list: trailing bytes after the list")
    return buf, start, stop


def _scan69(buf: bytes, pos: int, end: int) -> tuple[int, int, int, int, int]:
    """One eth/69 receipt at ``pos``: (type, status offset, logs offset, logs payload start, end)."""
    rs, re_ = _list_at(buf, pos, end, "receipt")
    if rs >= re_:
        raise ReceiptError("eth/69 receipt must be [type, status, cumulative-gas, logs]")
    t = buf[rs]
    if t == 0x80:
        tx_type = 0
    elif 0 < t < 0x80:
        tx_type = t
    else:
        raise ReceiptError("receipt type is not a canonical small integer")
    if tx_type not in TX_TYPES:
        raise ReceiptError(f"unknown receipt type {tx_type}")
    logs_at = _status_gas(buf, rs + 1, re_)
    ls, le = _list_at(buf, logs_at, re_, "receipt logs")
    if le != re_:
        raise ReceiptError("eth/69 receipt must be [type, status, cumulative-gas, logs]")
    return tx_type, rs + 1, logs_at, ls, re_


def logs_bloom(logs_raw: bytes | memoryview) -> bytes:
    """The 2048-bit bloom of an encoded logs list (addresses and topics of every log)."""
    buf = bytes(logs_raw)
    start, stop = _list_at(buf, 0, len(buf), "logs")
    if stop != len(buf):
        raise ReceiptError("logs: trailing bytes after the list")
    return _scan_logs(buf, start, stop).to_bytes(BLOOM_SIZE, "big")


# ---- eth/69 form -------------------------------------------------------------------------------


def receipts69_items(list_raw: bytes | memoryview) -> list[memoryview]:
    """The receipts of an eth/69-form list (each checked for shape, logs included)."""
    buf, pos, stop = _receipt_list(list_raw)
    mv = memoryview(buf)
    out = []
    while pos < stop:
        _, _, _, ls, end = _scan69(buf, pos, stop)
        _scan_logs(buf, ls, end)
        out.append(mv[pos:end])
        pos = end
        if len(out) > MAX_RECEIPTS:
            raise ReceiptError(f"receipt list: more than {MAX_RECEIPTS} receipts")
    return out


_BLOOM_HEADER = b"\xb9\x01\x00"


def receipts69_to_consensus(list_raw: bytes | memoryview, *, start: int = 0) -> list[bytes]:
    """Consensus encodings of an eth/69-form list (blooms rebuilt from logs)."""
    buf, pos, stop = _receipt_list(list_raw)
    out = []
    i = 0
    join = b"".join
    while pos < stop:
        tx_type, s, logs_at, ls, end = _scan69(buf, pos, stop)
        bloom = _scan_logs(buf, ls, end).to_bytes(BLOOM_SIZE, "big")
        if i >= start:
            size = end - s + 259
            body = join((rlp.encode_length(size, 0xC0), buf[s:logs_at], _BLOOM_HEADER, bloom, buf[logs_at:end]))
            out.append(body if tx_type == 0 else bytes((tx_type,)) + body)
        pos = end
        i += 1
        if i > MAX_RECEIPTS:
            raise ReceiptError(f"receipt list: more than {MAX_RECEIPTS} receipts")
    return out


def receipts69_to_68(list_raw: bytes | memoryview) -> bytes:
    """An eth/69-form list re-encoded for eth/68 (blooms rebuilt); ReceiptError if malformed."""
    # The C extension when it is built and accepts the list; else the reference, which raises
    # the precise ReceiptError for a malformed list.
    if _c is not None and (got := _c.receipts69_to_68(list_raw)) is not None:
        return got
    return receipts69_to_68_py(list_raw)


def receipts69_to_68_py(list_raw: bytes | memoryview) -> bytes:
    """:func:`receipts69_to_68` in pure Python (the reference)."""
    items = []
    for enc in receipts69_to_consensus(list_raw):
        items.append(enc if enc[0] >= 0xC0 else rlp.encode_bytes(enc))
    return rlp.encode_raw_list(items)


# ---- eth/68 form -------------------------------------------------------------------------------


def _scan68(buf: bytes, pos: int, end: int) -> tuple[int, int, int, int, int, int, int]:
    """One eth/68 receipt: (type, consensus start, status offset, bloom offset, logs offset, logs start, end)."""
    b = buf[pos] if pos < end else 0
    if b >= 0xC0:
        tx_type = 0
        cs = pos
        fs, fe = _list_at(buf, pos, end, "receipt")
        item_end = fe
    else:
        is_list, ps, item_end = _item(buf, pos, end, "typed receipt")
        if item_end - ps < 2 or buf[ps] not in TX_TYPES or buf[ps] == 0:
            raise ReceiptError("typed receipt has an unknown type byte")
        tx_type = buf[ps]
        cs = ps
        if buf[ps + 1] < 0xC0:
            raise ReceiptError("typed receipt body must be a list")
        fs, fe = _list_at(buf, ps + 1, item_end, "receipt")
        if fe != item_end:
            raise ReceiptError("typed receipt: trailing bytes after its list")
    bloom_at = _status_gas(buf, fs, fe)
    if bloom_at + 259 > fe or buf[bloom_at : bloom_at + 3] != _BLOOM_HEADER:
        raise ReceiptError("receipt bloom must be 256 bytes")
    logs_at = bloom_at + 259
    ls, le = _list_at(buf, logs_at, fe, "receipt logs")
    if le != fe:
        raise ReceiptError("eth/68 receipt must be [status, cumulative-gas, bloom, logs]")
    return tx_type, cs, fs, bloom_at, logs_at, ls, item_end


def receipts68_to_consensus(list_raw: bytes | memoryview, *, check_blooms: bool = True) -> list[memoryview]:
    """Consensus encodings of an eth/68 list, zero-copy; each bloom is checked against its logs."""
    return receipts68_split(list_raw, check_blooms=check_blooms)[0]


def receipts68_split(list_raw: bytes | memoryview, *, check_blooms: bool = True) -> tuple[list[memoryview], bytes]:
    """One pass over an eth/68 list: (consensus encodings, zero-copy; the list in eth/69 form)."""
    buf, pos, stop = _receipt_list(list_raw)
    mv = memoryview(buf)
    consensus: list[memoryview] = []
    items: list[bytes] = []
    join = b"".join
    while pos < stop:
        tx_type, cs, fs, bloom_at, logs_at, ls, end = _scan68(buf, pos, stop)
        if check_blooms and _scan_logs(buf, ls, end) != int.from_bytes(buf[bloom_at + 3 : bloom_at + 259], "big"):
            raise ReceiptError(f"receipt {len(items)}: bloom does not match its logs")
        consensus.append(mv[cs:end])
        t = b"\x80" if tx_type == 0 else bytes((tx_type,))
        size = 1 + (bloom_at - fs) + (end - logs_at)
        items.append(join((rlp.encode_length(size, 0xC0), t, buf[fs:bloom_at], buf[logs_at:end])))
        pos = end
        if len(items) > MAX_RECEIPTS:
            raise ReceiptError(f"receipt list: more than {MAX_RECEIPTS} receipts")
    return consensus, rlp.encode_raw_list(items)


def receipts68_to_69(list_raw: bytes | memoryview, *, check_blooms: bool = True) -> bytes:
    """An eth/68 list converted to the eth/69 form ethp2p stores (blooms checked, then dropped)."""
    return receipts68_split(list_raw, check_blooms=check_blooms)[1]


def receipts_root(consensus: Sequence[bytes | memoryview]) -> bytes:
    """The receipts trie root over consensus encodings."""
    return ordered_trie_root(consensus)


def receipts68_root(list_raw: bytes | memoryview) -> tuple[bytes, int, bytes]:
    """(receipts root, receipt count, the list in eth/69 form) of an eth/68 list.

    The blooms on the wire are not recomputed (the receipts root commits to them) and
    the logs are not scanned. Raises :class:`ReceiptError` if the list is malformed; the
    C extension, when built, does it in one call, and a list it rejects goes through the
    pure-Python path for the precise error.
    """
    # The C extension when it is built and accepts the list; else the reference, which raises
    # the precise ReceiptError for a malformed list.
    if _c is not None and (got := _c.receipts68_root(list_raw)) is not None:
        return got
    return receipts68_root_py(list_raw)


def receipts68_root_py(list_raw: bytes | memoryview) -> tuple[bytes, int, bytes]:
    """:func:`receipts68_root` in pure Python (the reference)."""
    consensus, stored = receipts68_split(list_raw, check_blooms=False)
    return ordered_trie_root(consensus), len(consensus), stored


def receipts69_root_py(list_raw: bytes | memoryview) -> tuple[bytes, int]:
    """(receipts root, receipt count) of an eth/69-form list; pure Python."""
    consensus = receipts69_to_consensus(list_raw)
    return ordered_trie_root(consensus), len(consensus)


def receipts69_root(list_raw: bytes | memoryview) -> tuple[bytes, int]:
    """(receipts root, receipt count) of an eth/69-form list, blooms rebuilt from the logs.

    Raises :class:`ReceiptError` if the list is malformed. The C extension, when built,
    does the whole list in one call; for a list it rejects, the pure-Python path runs
    and raises the precise error.
    """
    # The C extension when it is built and accepts the list; else the reference, which raises
    # the precise ReceiptError for a malformed list.
    if _c is not None and (got := _c.receipts69_root(list_raw)) is not None:
        return got
    return receipts69_root_py(list_raw)


def receipts69_shape(list_raw: bytes | memoryview) -> tuple[int, int]:
    """(receipt count, last receipt's cumulative gas or 0) of an eth/69-form list, checked but not hashed.

    Raises :class:`ReceiptError` if the list is malformed (through the pure-Python path
    when the C extension rejects it).
    """
    # The C extension when it is built and accepts the list; else the reference, which raises
    # the precise ReceiptError for a malformed list.
    if _c is not None and (got := _c.receipts69_shape(list_raw)) is not None:
        return got
    return receipts69_shape_py(list_raw)


def receipts69_shape_py(list_raw: bytes | memoryview) -> tuple[int, int]:
    """:func:`receipts69_shape` in pure Python (the reference)."""
    items = receipts69_items(list_raw)
    gas = rlp.decode_int(rlp.string_payload(rlp.split_list(items[-1])[2]), max_bytes=8) if items else 0
    return len(items), gas


def receipt_count(list_raw: bytes | memoryview) -> int:
    """Number of receipts in a list of either form."""
    try:
        return len(rlp.split_list(list_raw, max_items=MAX_RECEIPTS))
    except rlp.RLPError as e:
        raise ReceiptError(f"receipt list: {e}") from None


#: One log as ``(address, [topics], data)``; one receipt as ``(status, cumulative_gas, logs)``.
LogFields = tuple[bytes, list[bytes], bytes]
ReceiptFields = tuple[bytes, bytes, list[LogFields]]


def receipt_fields(list_raw: bytes) -> list[ReceiptFields]:
    """Each receipt ``[type, status, cumulative gas, logs]`` of an eth/69-form list: status and
    gas as their string payloads, logs as ``(address, [topics], data)``. Raises RLPError if the
    list is malformed. With the C extension, its ``receipts69_fields`` does the work."""
    if _c is not None:
        got = _c.receipts69_fields(list_raw)
        if got is None:
            raise rlp.RLPDecodeError("malformed eth/69 receipt list")
        return got
    return receipt_fields_py(list_raw)


def receipt_fields_py(list_raw: bytes) -> list[ReceiptFields]:
    """:func:`receipt_fields` in pure Python (the reference the C extension is tested against)."""
    sp = rlp.string_payload
    out: list[ReceiptFields] = []
    for r in rlp.split_list(list_raw):
        f = rlp.split_list(r)
        if len(f) != 4:
            raise rlp.RLPDecodeError(f"a receipt with {len(f)} fields")
        sp(f[0])
        logs: list[LogFields] = []
        for log in rlp.split_list(f[3]):
            parts = rlp.split_list(log)
            if len(parts) != 3:
                raise rlp.RLPDecodeError(f"a log with {len(parts)} fields")
            addr, topics, data = parts
            logs.append((bytes(sp(addr)), [bytes(sp(t)) for t in rlp.split_list(topics)], bytes(sp(data))))
        out.append((bytes(sp(f[1])), bytes(sp(f[2])), logs))
    return out
