"""Importing history into a block store: era1 archives, RLP chain files and derived block sets.

Every file is checked completely before anything is written: hashes, parent links
inside the file, body and receipt roots, and its place on the canonical chain. A
refused file leaves the store unchanged (a chain file is read twice: a checking
pass over it, then a writing pass that re-checks each block as it goes).

How each imported block is proven (:class:`~ethp2p.trust.proof.Proof`):

* A mainnet era1 file must hold exactly one pre-merge epoch whose accumulator root
  is the shipped root of that epoch, and, when its name is canonical
  (``mainnet-EEEEE-<root prefix>.era1``), have the shipped SHA-256 of that name.
  Its blocks are ``accumulator``.
* Chain files, derived block sets and era1 files of other networks are proven by
  linkage from above (:class:`~ethp2p.trust.linkage.DownwardLinker`), walking the
  file's headers from the top down: a block is ``checkpoint`` when parent hashes
  link it down from a checkpoint in the file; it inherits the proof of a proven
  stored block that links down into the file (the block right above the file's top,
  or above any gap in it); a pre-merge epoch the file covers completely, with the
  total difficulty before it known (0 before genesis, else recorded in the store),
  is checked against the shipped accumulator root and its blocks are
  ``accumulator`` (this takes precedence over checkpoint linkage inside the epoch,
  as for era1 files). The rest is ``unanchored``: imported because the user vouches
  for it, proven by nothing.
* A block that is already stored with the same hash keeps the stronger of its
  stored proof and the file's (:func:`~ethp2p.trust.proof.stronger`).

A file is refused when it contradicts an anchor: a block at a checkpoint's height
with another hash, a block above a checkpoint that does not link to it, a complete
pre-merge epoch whose root is not the shipped one, a block at a height where the
store holds a *proven* block with another hash, or a block that does not link to
a proven stored neighbour (the block above not linking to it, or it not linking to
the block below). The error names the lowest contradicting block (in chain order
the first; for a fork that crosses a checkpoint, the checkpoint's height) and the
anchor it contradicts, and says how many more there are.
"""

from __future__ import annotations

import hashlib
import json
import mmap
from array import array
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..chain.body import EMPTY_BODY
from ..chain.header import Header, HeaderError
from ..chain.verify import (
    VerificationError,
    check_body,
    empty_body_for,
    verify_body,
    verify_header_chain,
    verify_receipts,
)
from ..eth.chainspec import ChainSpec
from ..formats.chainfile import ChainFileError, iter_chain_file
from ..formats.era1 import EPOCH_SIZE, Era1Error, accumulator_root, read_era1
from ..trust.anchors import Anchors, anchors_for
from ..trust.checksums import ChecksumError, canonical_era1_name, mainnet_era1_checksums
from ..trust.linkage import DownwardLinker, Expected
from ..trust.proof import Proof, stronger
from .blocks import BlockRecord, BlockStore

BATCH = 2048
Progress = Callable[[int], None]
#: Blocks of the store read at a time while deciding proofs (aligned like the accumulator's epochs).
WINDOW = EPOCH_SIZE


class ChainImportError(ValueError):
    """A file could not be imported (unreadable, malformed, failed verification, or contradicts an anchor)."""


@dataclass
class ImportResult:
    """What one file added, and how its blocks are proven."""

    path: str
    kind: str
    blocks: int
    first: int | None
    last: int | None
    #: How many of the imported blocks are now recorded with each proof.
    proofs: dict[Proof, int] = field(default_factory=dict)
    #: Pre-merge epochs the file proved by their shipped accumulator root.
    epochs: list[int] = field(default_factory=list)
    #: Remarks for the summary (e.g. why blocks are unanchored).
    notes: list[str] = field(default_factory=list)

    @property
    def unanchored(self) -> int:
        """Blocks imported without a proof (the user vouches for them)."""
        return self.proofs.get(Proof.UNANCHORED, 0) + self.proofs.get(Proof.UNPROVEN, 0)

    def describe_proofs(self) -> str:
        """One line: how many blocks each proof covers, e.g. ``10,965 checkpoint, 35 unanchored``."""
        parts = []
        for proof in (Proof.CHECKPOINT, Proof.ACCUMULATOR, Proof.PEER_AGREEMENT, Proof.UNANCHORED, Proof.UNPROVEN):
            count = self.proofs.get(proof, 0)
            if count:
                text = f"{count:,} {proof.label}"
                if proof is Proof.ACCUMULATOR and self.epochs:
                    text += f" (epoch{'s' if len(self.epochs) > 1 else ''} {', '.join(map(str, self.epochs))})"
                parts.append(text)
        return ", ".join(parts) if parts else "no blocks"


def ensure_genesis(store: BlockStore, spec: ChainSpec) -> None:
    """Store the genesis block (header, empty body, empty receipts) if the spec knows it.

    The empty body is the one its header calls for: with an empty withdrawals list when the genesis
    is at Shanghai or later. A store written before that was so holds ``[[], []]`` there, which
    ``ethp2p verify`` reports and peers would refuse; it is mended here.
    """
    if spec.genesis_header is None:
        return
    body = empty_body_for(Header(spec.genesis_header))
    stored = store.canonical_hash(0)
    mend = stored == spec.genesis_hash and body != EMPTY_BODY and store.body(stored) == EMPTY_BODY
    if stored is None or mend:
        store.put_blocks([BlockRecord(0, spec.genesis_hash, spec.genesis_header, body, b"\xc0", Proof.CHECKPOINT)])


def _write(
    store: BlockStore, records: Iterable[BlockRecord], progress: Progress | None
) -> tuple[int, dict[Proof, int]]:
    batch: list[BlockRecord] = []
    total = 0
    counts: dict[Proof, int] = {}
    for r in records:
        batch.append(r)
        counts[r.proof] = counts.get(r.proof, 0) + 1
        if len(batch) >= BATCH:
            total += store.put_blocks(batch)
            if progress:
                progress(len(batch))
            batch = []
    if batch:
        total += store.put_blocks(batch)
        if progress:
            progress(len(batch))
    return total, counts


def _short(h: bytes) -> str:
    return f"0x{h.hex()[:16]}…"


class _Scan:
    """The headers of one file, fed in ascending order: checks what needs only headers and keeps per
    block just its number, hash and parent hash, then decides every block's proof from the top down."""

    def __init__(
        self, store: BlockStore, anchors: Anchors, spec: ChainSpec, path: str | Path, *, check_epochs: bool = True
    ) -> None:
        self.store, self.anchors, self.spec, self.path = store, anchors, spec, path
        self.numbers = array("q")
        self.hashes = bytearray()
        self.parents = bytearray()
        #: Epochs proven by their accumulator root, and (last block, total difficulty) at each one's end.
        self.epochs: list[int] = []
        self.epoch_tds: dict[int, tuple[int, int]] = {}
        self.problems: dict[int, str] = {}
        self._acc = anchors.accumulator if check_epochs else None
        self._genesis = Header(spec.genesis_header) if spec.genesis_header is not None else None
        self._prev: Header | None = None
        self._td: int | None = None  # total difficulty at the last block fed (None: not known)
        self._td_source = ""
        self._records: list[tuple[bytes, int]] | None = None
        self._epoch_start: tuple[int, str] = (0, "")

    def __len__(self) -> int:
        return len(self.numbers)

    def hash_at(self, i: int) -> bytes:
        return bytes(self.hashes[32 * i : 32 * i + 32])

    def _problem(self, number: int, message: str) -> None:
        self.problems.setdefault(number, message)

    def _td_before(self, number: int) -> int | None:
        if number == 0:
            self._td_source = "0 before genesis"
            return 0
        td = self.store.total_difficulty(number - 1)
        if td is not None:
            self._td_source = f"recorded in the store at block {number - 1:,}"
            return td
        if number == 1:
            self._td_source = "the genesis difficulty"
            return self.spec.genesis_difficulty
        return None

    def add(self, h: Header) -> None:
        """One more header (its number above the last one's); checks its link to the one before."""
        n, prev = h.number, self._prev
        try:
            if prev is None:
                self._td = self._td_before(n)
                if n == 1 and self._genesis is not None:
                    verify_header_chain([h], 1, parent=self._genesis)
            elif n <= prev.number:
                raise ChainImportError(f"{self.path}: block {n:,} follows block {prev.number:,}: blocks must ascend")
            elif n == prev.number + 1:
                verify_header_chain([h], n, parent=prev)
            else:  # a gap: the running total difficulty goes on only from one the store recorded
                self._td, self._records = self._td_before(n), None
        except VerificationError as e:
            raise ChainImportError(f"{self.path}: {e}") from None
        self._prev = h
        self.numbers.append(n)
        self.hashes += h.hash
        self.parents += h.parent_hash
        if self._td is None:
            return
        acc = self._acc
        epoch = acc.epoch_of(n) if acc is not None else None
        if acc is not None and epoch is not None and n == acc.bounds(epoch)[0]:
            self._records = []
            self._epoch_start = (self._td, self._td_source)
        self._td += h.difficulty
        if self._records is None or acc is None or epoch is None:  # (epoch is None whenever acc is)
            return
        self._records.append((h.hash, self._td))
        first, last = acc.bounds(epoch)
        if n == last:
            if acc.matches(epoch, self._records):
                self.epochs.append(epoch)
                self.epoch_tds[epoch] = (last, self._td)
            else:
                root = accumulator_root(self._records)
                td_before, source = self._epoch_start
                self._problem(
                    first,
                    f"epoch {epoch} (blocks {first:,}..{last:,}): its headers give accumulator root 0x{root.hex()}, "
                    f"the shipped root of epoch {epoch} is 0x{acc.root(epoch).hex()} "
                    f"(total difficulty before it {td_before:,}, {source})",
                )
            self._records = None
            self._td_source = f"computed from the file through epoch {epoch}"

    def decide(self, *, accumulator_proven: bool = False) -> tuple[list[Proof], list[str]]:
        """Each block's proof (walking down), and notes; raises ChainImportError on a contradiction."""
        store, anchors = self.store, self.anchors
        acc = anchors.accumulator
        verified = set(self.epochs)
        count = len(self.numbers)
        out: list[Proof] = [Proof.UNANCHORED] * count
        notes: list[str] = []
        linker = DownwardLinker(anchors)
        window: tuple[int, dict[int, tuple[bytes, Proof]]] | None = None
        for i in range(count - 1, -1, -1):
            n = self.numbers[i]
            h = self.hash_at(i)
            p = bytes(self.parents[32 * i : 32 * i + 32])
            if i == count - 1 or self.numbers[i + 1] != n + 1:
                # The store's block right above (the file's top, or a gap in the file) may link down into it.
                linker.expect = None
                above = _proven_link_above(store, n)
                if above is not None:
                    if above[1] != h:
                        self._problem(
                            n,
                            f"block {n:,} has hash {_short(h)}, but the store's block {n + 1:,} "
                            f"({above[2].label}) links to {_short(above[1])}",
                        )
                    else:
                        linker.expect = Expected(n, h, above[2])
                else:
                    raw = store.header_by_number(n + 1)
                    if raw is not None and _parent_of(raw) != h:
                        notes.append(
                            f"the store's block {n + 1:,} (not proven) does not link to the imported block {n:,}"
                        )
            if window is None or not window[0] <= n < window[0] + WINDOW:
                lo = n - n % WINDOW
                window = (lo, {e.number: (e.hash, e.proof) for e in store.canonical_entries(lo, lo + WINDOW - 1)})
            stored = window[1].get(n)
            recorded: Proof | None = None
            if stored is not None and stored[1].proven:
                if stored[0] != h:
                    self._problem(
                        n,
                        f"block {n:,} has hash {_short(h)}, the store holds block {n:,} {_short(stored[0])} "
                        f"proven by {stored[1].label}",
                    )
                else:
                    recorded = stored[1]
            epoch = acc.epoch_of(n) if acc is not None else None
            if accumulator_proven or (epoch is not None and epoch in verified):
                recorded = stronger(recorded, Proof.ACCUMULATOR) if recorded is not None else Proof.ACCUMULATOR
            step = linker.step(n, h, p, recorded)
            if step.problem is not None:
                self._problem(n, step.problem)
            proof = step.proof or Proof.UNANCHORED
            if stored is not None and stored[0] == h:
                proof = stronger(proof, stored[1])
            out[i] = proof
            if n > 0 and (i == 0 or self.numbers[i - 1] != n - 1):
                below_hash = store.canonical_hash(n - 1)
                below_proof = store.proof(n - 1)
                if below_hash is not None and below_proof is not None and below_proof.proven and below_hash != p:
                    self._problem(
                        n,
                        f"block {n:,} does not link to the store's block {n - 1:,} {_short(below_hash)} "
                        f"({below_proof.label}): its parent hash is {_short(p)}",
                    )
        if self.problems:
            lowest = min(self.problems)
            more = len(self.problems) - 1
            tail = f" ({more:,} more contradiction{'s' if more > 1 else ''} above it)" if more else ""
            raise ChainImportError(f"{self.path}: refused, it contradicts an anchor: {self.problems[lowest]}{tail}")
        unanchored = sum(1 for pr in out if not pr.proven)
        if unanchored:
            notes.append(
                f"{unanchored:,} block(s) are unanchored: no checkpoint, accumulator root or proven stored block "
                "links down to them (a --checkpoint NUMBER:HASH at or above them would)"
            )
        return out, notes


def _proven_link_above(store: BlockStore, number: int) -> tuple[int, bytes, Proof] | None:
    """``store.proven_link_above``, with a stored header that does not decode counting as no link."""
    try:
        return store.proven_link_above(number)
    except HeaderError:
        return None


def _parent_of(raw: bytes) -> bytes | None:
    try:
        return Header(raw).parent_hash
    except HeaderError:
        return None


def _anchors(spec: ChainSpec, anchors: Anchors | None) -> Anchors:
    return anchors if anchors is not None else anchors_for(spec.genesis_hash)


def _check_era1_name(path: Path, data: bytes) -> tuple[int, str] | None:
    """A canonical mainnet era1 name must come with its shipped SHA-256; returns (epoch, root prefix)."""
    canon = canonical_era1_name(path.name)
    if canon is None:
        return None
    try:
        sums = mainnet_era1_checksums()
    except ChecksumError as e:
        raise ChainImportError(f"{path}: cannot check its name: {e}") from None
    want = sums.get(path.name)
    if want is None:
        raise ChainImportError(
            f"{path}: named like a mainnet era1 file, but no file of that name is in the shipped checksum list"
        )
    got = hashlib.sha256(data).digest()
    if got != want:
        raise ChainImportError(
            f"{path}: its SHA-256 {got.hex()} is not the shipped checksum {want.hex()} of {path.name} "
            "(a renamed or altered file)"
        )
    return canon


def import_era1(
    store: BlockStore,
    path: str | Path,
    spec: ChainSpec,
    progress: Progress | None = None,
    *,
    anchors: Anchors | None = None,
) -> ImportResult:
    """Import one era1 archive: its own checks (hashes, links, accumulator record, index), then on mainnet
    the shipped root of its epoch (and the shipped checksum of a canonical name); elsewhere linkage."""
    anchors = _anchors(spec, anchors)
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ChainImportError(f"cannot read {path}: {e.strerror}") from None
    canon = _check_era1_name(path, data)
    try:
        era = read_era1(data)
    except Era1Error as e:
        raise ChainImportError(f"{path}: {e}") from None
    del data
    first, last = era.blocks[0], era.blocks[-1]
    if first.number == 0 and first.hash != spec.genesis_hash:
        raise ChainImportError(f"{path}: block 0 is not {spec.name}'s genesis")
    acc = anchors.accumulator
    epochs: list[int] = []
    if acc is not None:
        epoch = acc.epoch_of(first.number)
        if epoch is None:
            raise ChainImportError(
                f"{path}: starts at block {first.number:,}, beyond the pre-merge history era1 files hold "
                f"(blocks 0..{acc.last_block:,})"
            )
        lo, hi = acc.bounds(epoch)
        if (first.number, last.number) != (lo, hi):
            raise ChainImportError(
                f"{path}: holds blocks {first.number:,}..{last.number:,}, not exactly epoch {epoch} "
                f"(blocks {lo:,}..{hi:,})"
            )
        if era.accumulator_root != acc.root(epoch):
            raise ChainImportError(
                f"{path}: epoch {epoch} (blocks {lo:,}..{hi:,}): its accumulator root 0x{era.accumulator_root.hex()} "
                f"is not the shipped root of epoch {epoch}, 0x{acc.root(epoch).hex()} (a forged or foreign era1 file)"
            )
        if canon is not None and (canon[0] != epoch or not acc.root(epoch).hex().startswith(canon[1])):
            raise ChainImportError(
                f"{path}: its name says epoch {canon[0]} with root 0x{canon[1]}…, it holds epoch {epoch}"
            )
        epochs = [epoch]
    records: list[BlockRecord] = []
    scan = _Scan(store, anchors, spec, path, check_epochs=False)
    for b in era.blocks:
        h = Header(b.header)
        try:
            body = verify_body(h, b.body)
            receipts = verify_receipts(h, b.receipts, form=68, tx_count=len(body.transactions))
        except VerificationError as e:
            raise ChainImportError(f"{path}: {e}") from None
        scan.add(h)
        records.append(BlockRecord(b.number, b.hash, b.header, b.body, receipts))
    proofs, notes = scan.decide(accumulator_proven=bool(epochs))
    n, counts = _write(store, (_with_proof(r, p) for r, p in zip(records, proofs, strict=True)), progress)
    # Total difficulty of the last block: eth/68 Status announces it, and the next epoch's proof starts from it.
    store.set_total_difficulty(last.number, last.total_difficulty)
    return ImportResult(str(path), "era1", n, first.number, last.number, counts, epochs, notes)


def _with_proof(r: BlockRecord, proof: Proof) -> BlockRecord:
    return BlockRecord(r.number, r.hash, r.header, r.body, r.receipts, proof)


@contextmanager
def _mapped(path: Path) -> Iterator[bytes | mmap.mmap]:
    """The file's contents, memory-mapped (read in full where it can't be mapped, e.g. a pipe)."""
    try:
        f = open(path, "rb")
    except OSError as e:
        raise ChainImportError(f"cannot read {path}: {e.strerror}") from None
    with f:
        try:
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (ValueError, OSError):  # empty, or not mappable
            try:
                data = f.read()
            except OSError as e:
                raise ChainImportError(f"cannot read {path}: {e.strerror}") from None
            yield data
            return
        try:
            yield mm
        finally:
            try:
                mm.close()
            except BufferError:  # a view is still alive (an exception mid-iteration): the GC unmaps it
                pass


def _chain_blocks(data: bytes | mmap.mmap, path: Path) -> Iterator[tuple[Header, bytes]]:
    blocks = iter_chain_file(data)
    try:
        for b in blocks:
            yield Header(b.header), b.body
    except (ChainFileError, HeaderError) as e:
        raise ChainImportError(f"{path}: {e}") from None
    finally:
        blocks.close()


def import_chain_file(
    store: BlockStore,
    path: str | Path,
    spec: ChainSpec,
    progress: Progress | None = None,
    *,
    anchors: Anchors | None = None,
) -> ImportResult:
    """Import a geth-export RLP chain file (headers and bodies; such files carry no receipts).

    Pass one checks every header, link and body and decides each block's proof
    keeping only numbers and hashes; pass two writes, checking each block again.
    """
    anchors = _anchors(spec, anchors)
    path = Path(path)
    with _mapped(path) as data:
        scan = _Scan(store, anchors, spec, path)
        for h, body in _chain_blocks(data, path):
            scan.add(h)
            try:
                check_body(h, body)
            except VerificationError as e:
                raise ChainImportError(f"{path}: {e}") from None
        proofs, notes = scan.decide()

        def records() -> Iterator[BlockRecord]:
            i = 0
            for h, body in _chain_blocks(data, path):
                if i >= len(scan) or h.hash != scan.hash_at(i):
                    raise ChainImportError(f"{path}: the file changed while it was being imported")
                try:
                    check_body(h, body)
                except VerificationError as e:
                    raise ChainImportError(f"{path}: {e}") from None
                yield BlockRecord(h.number, h.hash, h.raw, body, None, proofs[i])
                i += 1
            if i != len(scan):
                raise ChainImportError(f"{path}: the file changed while it was being imported")

        n, counts = _write(store, records(), progress)
    for epoch in scan.epochs:
        store.set_total_difficulty(*scan.epoch_tds[epoch])
    first = scan.numbers[0] if len(scan) else None
    last = scan.numbers[-1] if len(scan) else None
    return ImportResult(str(path), "chain", n, first, last, counts, list(scan.epochs), notes)


def import_derived(
    store: BlockStore,
    path: str | Path,
    spec: ChainSpec,
    progress: Progress | None = None,
    *,
    anchors: Anchors | None = None,
) -> ImportResult:
    """Import the isolated real blocks of a ``mainnet_blocks.json`` set (each verified on its own;
    consecutive ones must link)."""
    anchors = _anchors(spec, anchors)
    path = Path(path)
    try:
        blocks = json.loads(path.read_text())["blocks"]
        if not isinstance(blocks, list):
            raise TypeError("'blocks' is not a list")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ChainImportError(f"{path}: not a derived block set ({e})") from None
    by_number: dict[int, tuple[Header, BlockRecord]] = {}
    for i, b in enumerate(blocks):
        where = f"block {b.get('number')!r}" if isinstance(b, dict) else f"entry {i}"
        try:
            if not isinstance(b, dict):
                raise TypeError("not an object")
            h = Header(bytes.fromhex(b["header_rlp"]))
            body_raw = bytes.fromhex(b["body_rlp"])
            body = verify_body(h, body_raw)
            receipts = None
            if b.get("receipts_eth69_rlp"):
                receipts = verify_receipts(
                    h, bytes.fromhex(b["receipts_eth69_rlp"]), form=69, tx_count=len(body.transactions)
                )
        except (VerificationError, ValueError, KeyError, TypeError) as e:
            raise ChainImportError(f"{path}: {where}: {e}") from None
        have = by_number.get(h.number)
        if have is not None and have[0].hash != h.hash:
            raise ChainImportError(f"{path}: two different blocks numbered {h.number:,}")
        by_number[h.number] = (h, BlockRecord(h.number, h.hash, h.raw, body_raw, receipts))
    order = sorted(by_number)
    scan = _Scan(store, anchors, spec, path)
    for number in order:
        scan.add(by_number[number][0])
    proofs, notes = scan.decide()
    n, counts = _write(store, (_with_proof(by_number[k][1], p) for k, p in zip(order, proofs, strict=True)), progress)
    for epoch in scan.epochs:
        store.set_total_difficulty(*scan.epoch_tds[epoch])
    return ImportResult(
        str(path),
        "derived",
        n,
        order[0] if order else None,
        order[-1] if order else None,
        counts,
        list(scan.epochs),
        notes,
    )


def import_file(
    store: BlockStore,
    path: str | Path,
    spec: ChainSpec,
    progress: Progress | None = None,
    *,
    anchors: Anchors | None = None,
) -> ImportResult:
    """Import a file by its kind: ``.era1``, ``.json`` (derived set) or anything else as an RLP chain file.

    ``anchors`` (default: those of ``spec``'s chain, :func:`~ethp2p.trust.anchors.anchors_for`)
    decide how its blocks are proven and what is refused.
    """
    p = Path(path)
    if not p.exists():
        raise ChainImportError(f"no such file: {p}")
    if p.suffix == ".era1":
        return import_era1(store, p, spec, progress, anchors=anchors)
    if p.suffix == ".json":
        return import_derived(store, p, spec, progress, anchors=anchors)
    return import_chain_file(store, p, spec, progress, anchors=anchors)
