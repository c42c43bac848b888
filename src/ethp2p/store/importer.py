"""Importing history into a block store: era1 archives, RLP chain files and derived block sets.

Every block is verified before it is written (hashes, parent links inside a file,
body and receipt roots), and each batch is one atomic transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ..chain.body import EMPTY_BODY
from ..chain.header import Header
from ..chain.verify import VerificationError, verify_body, verify_header_chain, verify_receipts
from ..eth.chainspec import ChainSpec
from ..formats.chainfile import ChainFileError, iter_chain_file
from ..formats.era1 import Era1Error, read_era1
from ..trust.proof import Proof
from .blocks import BlockRecord, BlockStore

BATCH = 2048
Progress = Callable[[int], None]


class ImportError_(ValueError):
    """A file could not be imported (unreadable, malformed, or it failed verification)."""


@dataclass
class ImportResult:
    """What one file added."""

    path: str
    kind: str
    blocks: int
    first: int | None
    last: int | None


def ensure_genesis(store: BlockStore, spec: ChainSpec) -> None:
    """Store the genesis block (header, empty body, empty receipts) if the spec knows it."""
    if spec.genesis_header is None or store.canonical_hash(0) is not None:
        return
    store.put_blocks([BlockRecord(0, spec.genesis_hash, spec.genesis_header, EMPTY_BODY, b"\xc0", Proof.CHECKPOINT)])


def _write(store: BlockStore, records: Iterable[BlockRecord], progress: Progress | None) -> int:
    batch: list[BlockRecord] = []
    total = 0
    for r in records:
        batch.append(r)
        if len(batch) >= BATCH:
            total += store.put_blocks(batch)
            if progress:
                progress(len(batch))
            batch = []
    if batch:
        total += store.put_blocks(batch)
        if progress:
            progress(len(batch))
    return total


def import_era1(store: BlockStore, path: str | Path, spec: ChainSpec, progress: Progress | None = None) -> ImportResult:
    """Import one era1 archive (accumulator root, block hashes and all roots checked)."""
    try:
        era = read_era1(path)
    except (OSError, Era1Error) as e:
        raise ImportError_(f"{path}: {e}") from None
    if era.blocks[0].number == 0 and era.blocks[0].hash != spec.genesis_hash:
        raise ImportError_(f"{path}: block 0 is not {spec.name}'s genesis")

    def records() -> Iterable[BlockRecord]:
        for b in era.blocks:
            h = Header(b.header)
            try:
                body = verify_body(h, b.body)
                receipts = verify_receipts(h, b.receipts, form=68, tx_count=len(body.transactions))
            except VerificationError as e:
                raise ImportError_(f"{path}: {e}") from None
            yield BlockRecord(b.number, b.hash, b.header, b.body, receipts)

    n = _write(store, records(), progress)
    last = era.blocks[-1]
    # Total difficulty of the last block: eth/68 Status announces it.
    store.set_total_difficulty(last.number, last.total_difficulty)
    return ImportResult(str(path), "era1", n, era.blocks[0].number, last.number)


def import_chain_file(
    store: BlockStore, path: str | Path, spec: ChainSpec, progress: Progress | None = None
) -> ImportResult:
    """Import a geth-export RLP chain file (headers and bodies; such files carry no receipts)."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ImportError_(f"cannot read {path}: {e.strerror}") from None
    first: int | None = None
    last: int | None = None
    prev: Header | None = None
    if spec.genesis_header is not None:
        prev = Header(spec.genesis_header)

    def records() -> Iterable[BlockRecord]:
        nonlocal first, last, prev
        try:
            for b in iter_chain_file(data):
                h = Header(b.header)
                if prev is not None and h.number == prev.number + 1:
                    verify_header_chain([h], h.number, parent=prev)
                verify_body(h, b.body)
                first = h.number if first is None else first
                last = h.number
                prev = h
                yield BlockRecord(h.number, h.hash, h.raw, b.body, None)
        except (ChainFileError, VerificationError, ValueError) as e:
            raise ImportError_(f"{path}: {e}") from None

    n = _write(store, records(), progress)
    return ImportResult(str(path), "chain", n, first, last)


def import_derived(store: BlockStore, path: str | Path, spec: ChainSpec, progress: Progress | None = None) -> ImportResult:
    """Import the isolated real blocks of a ``mainnet_blocks.json`` set (each verified on its own)."""
    try:
        blocks = json.loads(Path(path).read_text())["blocks"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ImportError_(f"{path}: not a derived block set ({e})") from None

    def records() -> Iterable[BlockRecord]:
        for b in blocks:
            try:
                h = Header(bytes.fromhex(b["header_rlp"]))
                body_raw = bytes.fromhex(b["body_rlp"])
                body = verify_body(h, body_raw)
                receipts = None
                if b.get("receipts_eth69_rlp"):
                    receipts = verify_receipts(
                        h, bytes.fromhex(b["receipts_eth69_rlp"]), form=69, tx_count=len(body.transactions)
                    )
            except (VerificationError, ValueError, KeyError) as e:
                raise ImportError_(f"{path}: block {b.get('number')}: {e}") from None
            yield BlockRecord(h.number, h.hash, h.raw, body_raw, receipts)

    n = _write(store, records(), progress)
    numbers = [int(b["number"]) for b in blocks]
    return ImportResult(str(path), "derived", n, min(numbers, default=None), max(numbers, default=None))


def import_file(store: BlockStore, path: str | Path, spec: ChainSpec, progress: Progress | None = None) -> ImportResult:
    """Import a file by its kind: ``.era1``, ``.json`` (derived set) or anything else as an RLP chain file."""
    p = Path(path)
    if not p.exists():
        raise ImportError_(f"no such file: {p}")
    if p.suffix == ".era1":
        return import_era1(store, p, spec, progress)
    if p.suffix == ".json":
        return import_derived(store, p, spec, progress)
    return import_chain_file(store, p, spec, progress)
