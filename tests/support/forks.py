"""A self-consistent fork of the real mainnet history, as the ``fork`` serving adversary serves it,
written out as files: forged blocks, a geth-export chain file, a forged era1 archive.

There is one fork: :func:`ethp2p.serve.adversary.forge_chain` (which
:class:`~ethp2p.serve.adversary.ForkedStore` serves). From the fork block on every header is
rewritten (parent hash, a marked extraData) and nothing else, so the real bodies, receipts and
total difficulties fit the forged headers: every root and link is valid, only an anchor (a
checkpoint, an accumulator root) tells the fork from the canonical chain.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from pathlib import Path
from typing import overload

import cramjam

from ethp2p.formats import era1
from ethp2p.formats.chainfile import encode_block
from ethp2p.formats.era1 import EPOCH_SIZE, Era1Block, accumulator_root, read_era1
from ethp2p.serve.adversary import ForkedStore, forge_chain
from ethp2p.store.blocks import BlockStore, StoredBlock
from tests.support.stores import ERA1_FILES

#: Blocks the copied era1 files hold (0..LAST_ERA1_BLOCK).
LAST_ERA1_BLOCK = EPOCH_SIZE * len(ERA1_FILES) - 1


@functools.cache
def era1_blocks() -> tuple[Era1Block, ...]:
    """The real mainnet blocks 0-16,383 from the copied era1 files (read once)."""
    return tuple(b for f in ERA1_FILES for b in read_era1(f).blocks)


@overload
def forked_blocks(source: BlockStore, fork_block: int, start: int = 0, end: int | None = None) -> list[StoredBlock]: ...
@overload
def forked_blocks(
    source: Sequence[Era1Block], fork_block: int, start: int = 0, end: int | None = None
) -> list[Era1Block]: ...
def forked_blocks(
    source: BlockStore | Sequence[Era1Block], fork_block: int, start: int = 0, end: int | None = None
) -> list[StoredBlock] | list[Era1Block]:
    """Blocks ``start..end`` (default: to the last one) of the fork from ``fork_block`` on.

    From a store: what a ``fork`` server on it serves (:class:`StoredBlock`, receipts in the
    store's eth/69 form). From consecutive era1 blocks (e.g. :func:`era1_blocks`, which must
    include ``fork_block - 1``): :class:`Era1Block` records with era1 receipts and the real
    total difficulties (forged headers keep their difficulty).
    """
    if isinstance(source, BlockStore):
        view = ForkedStore(source, fork_block)
        rng = view.contiguous_range()
        last = rng[1] if rng else -1
        return list(view.canonical_blocks(start, last if end is None else end))
    blocks = list(source)
    first = blocks[0].number
    if any(b.number != first + i for i, b in enumerate(blocks)):
        raise ValueError("era1 blocks must be consecutive")
    if not first < fork_block <= blocks[-1].number:
        raise ValueError(f"fork block {fork_block} must be in {first + 1}..{blocks[-1].number}")
    end = blocks[-1].number if end is None else min(end, blocks[-1].number)
    split = fork_block - first
    forged = [
        dataclasses.replace(b, header=raw, hash=h)
        for b, (raw, h) in zip(
            blocks[split:], forge_chain((b.header for b in blocks[split:]), blocks[split - 1].hash), strict=True
        )
    ]
    return [b for b in blocks[:split] + forged if start <= b.number <= end]


def chain_file_bytes(blocks: Sequence[StoredBlock | Era1Block]) -> bytes:
    """The blocks as a geth-export RLP chain file: ``[header, transactions, ommers]`` per block."""
    out = bytearray()
    for b in blocks:
        if b.body is None:
            raise ValueError(f"block {b.number} has no body")
        out += encode_block(b.header, b.body)
    return bytes(out)


def write_fork_chain_file(
    path: Path, source: BlockStore | Sequence[Era1Block], fork_block: int, last: int
) -> list[StoredBlock] | list[Era1Block]:
    """Write blocks 1..``last`` of the fork from ``fork_block`` on as an RLP chain file; returns them."""
    blocks = forked_blocks(source, fork_block, 1, last)
    if not blocks or blocks[-1].number != last:
        raise ValueError(f"the source does not reach block {last}")
    path.write_bytes(chain_file_bytes(blocks))
    return blocks


def _record(rtype: bytes, data: bytes) -> bytes:
    """One e2store record: 2-byte type, 4-byte little-endian length, 2 reserved zero bytes, data."""
    return rtype + len(data).to_bytes(4, "little") + b"\x00\x00" + data


def era1_bytes(blocks: Sequence[Era1Block]) -> bytes:
    """An era1 archive of ``blocks`` (at most one epoch, consecutive), with the accumulator root
    and block index of these very blocks."""
    if not blocks or len(blocks) > EPOCH_SIZE:
        raise ValueError(f"an era1 archive holds 1..{EPOCH_SIZE} blocks, not {len(blocks)}")
    out = bytearray(_record(era1.TYPE_VERSION, b""))
    offsets: list[int] = []
    for b in blocks:
        offsets.append(len(out))
        out += _record(era1.TYPE_HEADER, bytes(cramjam.snappy.compress(b.header)))
        out += _record(era1.TYPE_BODY, bytes(cramjam.snappy.compress(b.body)))
        out += _record(era1.TYPE_RECEIPTS, bytes(cramjam.snappy.compress(b.receipts)))
        out += _record(era1.TYPE_TOTAL_DIFFICULTY, b.total_difficulty.to_bytes(32, "little"))
    out += _record(era1.TYPE_ACCUMULATOR, accumulator_root([(b.hash, b.total_difficulty) for b in blocks]))
    index_at = len(out)  # offsets are relative to the block index record's start
    index = blocks[0].number.to_bytes(8, "little")
    index += b"".join((o - index_at).to_bytes(8, "little", signed=True) for o in offsets)
    index += len(blocks).to_bytes(8, "little")
    out += _record(era1.TYPE_BLOCK_INDEX, index)
    return bytes(out)


def write_forged_era1(path: Path, fork_block: int, *, epoch: int = 1) -> list[Era1Block]:
    """Write an era1 archive of ``epoch`` (0 or 1) holding the fork from ``fork_block`` on; returns its blocks.

    It is self-consistent (``read_era1`` accepts it: hashes, links, index and accumulator
    all match its own blocks), but its accumulator root is not the real epoch's.
    """
    first, last = epoch * EPOCH_SIZE, (epoch + 1) * EPOCH_SIZE - 1
    if not 0 <= epoch < len(ERA1_FILES):
        raise ValueError(f"epoch must be 0..{len(ERA1_FILES) - 1}")
    if not 1 <= fork_block <= last:
        raise ValueError(f"fork block {fork_block} must be in 1..{last} for epoch {epoch} to be forged")
    blocks = forked_blocks(era1_blocks()[: last + 1], fork_block, first, last)
    path.write_bytes(era1_bytes(blocks))
    return blocks
