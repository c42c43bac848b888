"""era1 archives (e2store): pre-merge blocks with headers, bodies, receipts and total difficulty.

An e2store file is a sequence of records, each an 8-byte header (2-byte type,
4-byte little-endian length, 2 reserved zero bytes) followed by the data. era1
holds: a version record, then per block a snappy-*framed* header, body and
receipts record and a total-difficulty record (u256 little-endian), then the
epoch accumulator root and a block index. The accumulator root is the SSZ
``hash_tree_root`` of the list of (block hash, total difficulty) records.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cramjam

from ..crypto.keccak import keccak

TYPE_VERSION = b"\x65\x32"
TYPE_HEADER = b"\x03\x00"
TYPE_BODY = b"\x04\x00"
TYPE_RECEIPTS = b"\x05\x00"
TYPE_TOTAL_DIFFICULTY = b"\x06\x00"
TYPE_ACCUMULATOR = b"\x07\x00"
TYPE_BLOCK_INDEX = b"\x66\x32"

#: Blocks per era1 epoch (and the SSZ list limit of the accumulator).
EPOCH_SIZE = 8192
#: Largest record we read (compressed); era1 records are far smaller.
MAX_RECORD = 64 * 1024 * 1024
#: Largest decompressed record.
MAX_DECOMPRESSED = 128 * 1024 * 1024


class Era1Error(ValueError):
    """The file is not a valid era1 archive (the message says where)."""


@dataclass(frozen=True, slots=True)
class Era1Block:
    """One block of an era1 archive, as raw RLP."""

    number: int
    hash: bytes
    header: bytes
    body: bytes
    receipts: bytes
    total_difficulty: int


@dataclass(frozen=True, slots=True)
class Era1File:
    """A read and checked era1 archive."""

    blocks: list[Era1Block]
    accumulator_root: bytes
    start_block: int


def _records(data: memoryview) -> Iterator[tuple[bytes, memoryview, int]]:
    pos, end = 0, len(data)
    while pos < end:
        if end - pos < 8:
            raise Era1Error(f"truncated record header at offset {pos}")
        rtype = bytes(data[pos : pos + 2])
        length = int.from_bytes(data[pos + 2 : pos + 6], "little")
        if data[pos + 6] or data[pos + 7]:
            raise Era1Error(f"record at offset {pos} has non-zero reserved bytes")
        if length > MAX_RECORD or pos + 8 + length > end:
            raise Era1Error(f"record at offset {pos} claims {length} bytes, beyond the file or the limit")
        yield rtype, data[pos + 8 : pos + 8 + length], pos
        pos += 8 + length


def _unframe(value: memoryview, what: str, offset: int) -> bytes:
    try:
        out = bytes(cramjam.snappy.decompress(bytes(value)))
    except Exception as e:  # cramjam's DecompressionError
        raise Era1Error(f"{what} record at offset {offset}: bad snappy frame: {e}") from None
    if len(out) > MAX_DECOMPRESSED:
        raise Era1Error(f"{what} record at offset {offset} decompresses beyond {MAX_DECOMPRESSED} bytes")
    return out


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def accumulator_root(records: list[tuple[bytes, int]]) -> bytes:
    """SSZ hash_tree_root of ``List[HeaderRecord(block_hash, total_difficulty), 8192]``."""
    if len(records) > EPOCH_SIZE:
        raise ValueError("more than one epoch of records")
    layer = [_sha(h + td.to_bytes(32, "little")) for h, td in records]
    zero = bytes(32)
    width = EPOCH_SIZE
    while width > 1:
        if len(layer) % 2:
            layer.append(zero)
        layer = [_sha(layer[i] + layer[i + 1]) for i in range(0, len(layer), 2)]
        zero = _sha(zero + zero)
        width //= 2
    root = layer[0] if layer else zero
    return _sha(root + len(records).to_bytes(32, "little"))


def read_era1(source: str | Path | bytes, *, verify: bool = True) -> Era1File:
    """Read an era1 archive; with ``verify``, check hashes, the accumulator and the index."""
    data = memoryview(Path(source).read_bytes() if not isinstance(source, bytes) else source)
    records = _records(data)
    try:
        first_type, _, _ = next(records)
    except StopIteration:
        raise Era1Error("empty file") from None
    if first_type != TYPE_VERSION:
        raise Era1Error("file does not start with an e2store version record")
    from ..chain.header import Header, HeaderError

    blocks: list[Era1Block] = []
    pending: dict[bytes, bytes] = {}
    acc_root: bytes | None = None
    index: tuple[int, int] | None = None
    for rtype, value, offset in records:
        if rtype in (TYPE_HEADER, TYPE_BODY, TYPE_RECEIPTS):
            if rtype in pending:
                raise Era1Error(f"record at offset {offset}: block tuple out of order")
            pending[rtype] = _unframe(value, {TYPE_HEADER: "header", TYPE_BODY: "body"}.get(rtype, "receipts"), offset)
        elif rtype == TYPE_TOTAL_DIFFICULTY:
            if len(pending) != 3:
                raise Era1Error(f"total difficulty at offset {offset} without header, body and receipts")
            if len(value) != 32:
                raise Era1Error(f"total difficulty at offset {offset} is not 32 bytes")
            try:
                header = Header(pending[TYPE_HEADER])
            except HeaderError as e:
                raise Era1Error(f"header before offset {offset}: {e}") from None
            blocks.append(
                Era1Block(
                    header.number,
                    header.hash,
                    header.raw,
                    pending[TYPE_BODY],
                    pending[TYPE_RECEIPTS],
                    int.from_bytes(value, "little"),
                )
            )
            pending = {}
        elif rtype == TYPE_ACCUMULATOR:
            if len(value) != 32:
                raise Era1Error("accumulator record is not 32 bytes")
            acc_root = bytes(value)
        elif rtype == TYPE_BLOCK_INDEX:
            if len(value) < 16:
                raise Era1Error("block index is too short")
            start = int.from_bytes(value[:8], "little")
            count = int.from_bytes(value[-8:], "little")
            if len(value) != 16 + 8 * count:
                raise Era1Error("block index length does not match its count")
            index = (start, count)
        # Other record types are skipped, as e2store allows.
    if pending:
        raise Era1Error("file ends inside a block tuple")
    if not blocks:
        raise Era1Error("no blocks in file")
    if acc_root is None or index is None:
        raise Era1Error("missing accumulator or block index")
    start = blocks[0].number
    if verify:
        if index != (start, len(blocks)):
            raise Era1Error(f"block index says {index[1]} blocks from {index[0]}, file has {len(blocks)} from {start}")
        for i, b in enumerate(blocks):
            if b.number != start + i:
                raise Era1Error(f"block {i} of the file is number {b.number}, expected {start + i}")
            if i and Header(b.header).parent_hash != blocks[i - 1].hash:
                raise Era1Error(f"block {b.number} does not link to its parent")
            if keccak(b.header) != b.hash:
                raise Era1Error(f"block {b.number} hash mismatch")
        root = accumulator_root([(b.hash, b.total_difficulty) for b in blocks])
        if root != acc_root:
            raise Era1Error(f"accumulator root {root.hex()} does not match the file's {acc_root.hex()}")
    return Era1File(blocks, acc_root, start)
