"""Re-checking a stored canonical chain (``ethp2p verify``): every block against its header, the links
between stored blocks, the anchors, and the pre-merge accumulator roots; then re-linking proofs.

Two streaming passes over the store, one epoch-sized window (8,192 blocks) at a time:

1. **Upward**: each block's header hashes to its canonical hash (and is block ``number``),
   its body and receipts (eth/69 form) match the header, no checkpoint is
   contradicted; each pre-merge epoch held completely in the range whose total
   difficulty before it is known (0 for epoch 0, the store's record at the block
   before it, or carried from the previous epoch this run proved) is checked
   against the shipped accumulator root.
2. **Downward**: consecutive stored blocks must link; proofs are re-derived with
   :class:`~ethp2p.trust.linkage.DownwardLinker` (seeded by a proven stored block
   just above the range).

The rules for the new proof of a block:

* a block with a problem (hash, body, receipts, link, checkpoint) becomes ``unproven``
  (a later fetch fetches it again); so does one whose header is unusable;
* a block in an epoch proven by its root this run is ``accumulator`` (a block
  recorded as ``checkpoint`` keeps that: the stronger proof);
* otherwise its recorded proof, when proven, stands (a fetch does not keep the
  bridge headers it proved a run with) -- except in an epoch whose root does *not*
  match: there nothing recorded is trusted and only linkage found this run proves;
* otherwise the proof linkage gives it (from a checkpoint, or inherited from the
  proven block above), else ``unanchored`` if it was imported so, else ``unproven``.

A broken link between blocks ``n`` and ``n + 1`` is reported at ``n`` (it is not what
the block above links to), unless ``n + 1`` is not proven and ``n`` is a checkpoint's
own block: then at ``n + 1``. An accumulator mismatch is reported at the epoch's first
block and marks no block by itself.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ..chain.header import Header, HeaderError
from ..chain.verify import VerificationError, check_body, verify_receipts
from ..crypto.keccak import keccak
from ..formats.era1 import EPOCH_SIZE, accumulator_root
from ..trust.anchors import MAX_BLOCK_NUMBER, Anchors
from ..trust.linkage import DownwardLinker, Expected
from ..trust.proof import Proof, stronger
from .blocks import BlockStore

Progress = Callable[[int], None]
#: Kinds of problem, in the order they are checked.
KINDS = ("hash", "body", "receipts", "checkpoint", "link", "accumulator")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the stored chain: at block ``number`` (an epoch's first block for
    ``accumulator``), of ``kind`` (one of :data:`KINDS`)."""

    number: int
    kind: str
    message: str

    def __str__(self) -> str:
        return f"block {self.number:,}: {self.kind}: {self.message}"


@dataclass
class VerifyReport:
    """What :func:`verify_store` found and changed in ``start..end``."""

    start: int
    end: int
    #: Canonical blocks checked.
    checked: int = 0
    problems: list[Problem] = field(default_factory=list)
    #: Stored blocks in the range per proof, after re-linking.
    proofs: dict[Proof, int] = field(default_factory=dict)
    #: Blocks whose proof became stronger / weaker (:func:`~ethp2p.trust.proof.stronger`'s order).
    upgraded: int = 0
    downgraded: int = 0
    #: (proof before, proof after) -> how many blocks changed so.
    changes: dict[tuple[Proof, Proof], int] = field(default_factory=dict)
    #: Pre-merge epochs whose stored headers match / do not match the shipped accumulator root.
    epochs_proven: list[int] = field(default_factory=list)
    epochs_failed: list[int] = field(default_factory=list)
    #: Blocks stored without a body / without receipts (not a problem: e.g. chain-file imports).
    missing_bodies: int = 0
    missing_receipts: int = 0
    #: False when the new proofs were only computed, not written.
    written: bool = True

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        """A human summary: the counts, each problem, and what changed."""
        out = [f"checked {self.checked:,} blocks in {self.start:,}..{self.end:,}: {len(self.problems):,} problem(s)"]
        out += [f"  {p}" for p in self.problems]
        if self.epochs_proven or self.epochs_failed:
            out.append(
                f"accumulator: {len(self.epochs_proven):,} epoch(s) match the shipped roots"
                + (
                    f", {len(self.epochs_failed):,} do not ({', '.join(map(str, self.epochs_failed))})"
                    if self.epochs_failed
                    else ""
                )
            )
        proofs = ", ".join(f"{n:,} {p.label}" for p, n in sorted(self.proofs.items()) if n)
        out.append(f"proofs: {proofs or 'no blocks'}")
        verb = "" if self.written else " (not written)"
        out.append(f"re-linked{verb}: {self.upgraded:,} upgraded, {self.downgraded:,} downgraded")
        for (a, b), n in sorted(self.changes.items()):
            out.append(f"  {n:,} {a.label} -> {b.label}")
        if self.missing_bodies or self.missing_receipts:
            out.append(f"without a body: {self.missing_bodies:,}; without receipts: {self.missing_receipts:,}")
        return out


def _short(h: bytes) -> str:
    return f"0x{h.hex()[:16]}…"


def _windows(lo: int, hi: int, *, descending: bool = False) -> Iterator[tuple[int, int]]:
    """[lo, hi] cut at multiples of EPOCH_SIZE."""
    first = lo - lo % EPOCH_SIZE
    starts = range(first, hi + 1, EPOCH_SIZE)
    for s in reversed(starts) if descending else starts:
        yield max(s, lo), min(s + EPOCH_SIZE - 1, hi)


class _Problems:
    """Problems by block (the first of each kind), plus epoch problems."""

    def __init__(self) -> None:
        self.by_block: dict[int, list[Problem]] = {}

    def add(self, number: int, kind: str, message: str) -> None:
        have = self.by_block.setdefault(number, [])
        if not any(p.kind == kind for p in have):
            have.append(Problem(number, kind, message))

    def marks(self, number: int) -> bool:
        """True if block ``number`` has a problem of its own (an accumulator mismatch is the epoch's)."""
        return any(p.kind != "accumulator" for p in self.by_block.get(number, ()))

    def has(self, number: int, *kinds: str) -> bool:
        return any(p.kind in kinds for p in self.by_block.get(number, ()))

    def all(self) -> list[Problem]:
        order = {k: i for i, k in enumerate(KINDS)}
        return sorted((p for ps in self.by_block.values() for p in ps), key=lambda p: (p.number, order.get(p.kind, 99)))


def verify_store(
    store: BlockStore,
    anchors: Anchors,
    start: int = 0,
    end: int | None = None,
    *,
    progress: Progress | None = None,
    write: bool = True,
) -> VerifyReport:
    """Re-check the stored canonical chain in [start, end] (default: to the highest stored block),
    report each problem, and re-link proofs (written to the store unless ``write`` is False)."""
    rng = store.block_range()
    top = rng[1] if rng is not None else start - 1
    end = top if end is None else min(end, MAX_BLOCK_NUMBER)
    report = VerifyReport(start, end, written=write)
    if rng is None or start > end:
        report.proofs = store.proof_counts(start, max(start, end))
        return report
    lo, hi = max(start, rng[0]), min(end, rng[1])
    problems = _Problems()
    bad_headers: set[int] = set()
    verified, failed = _check_upward(store, anchors, start, end, lo, hi, problems, bad_headers, report, progress, write)
    changes = _relink(store, anchors, lo, hi, problems, bad_headers, verified, failed, write)
    report.problems = problems.all()
    report.epochs_proven, report.epochs_failed = sorted(verified), sorted(failed)
    report.changes = {k: v for k, v in changes.items() if v}
    for (before, after), n in report.changes.items():
        if stronger(after, before) is after:
            report.upgraded += n
        else:
            report.downgraded += n
    if write:
        report.proofs = store.proof_counts(start, end)
    else:
        counts = Counter(store.proof_counts(start, end))
        for (before, after), n in report.changes.items():
            counts[before] -= n
            counts[after] += n
        report.proofs = {p: n for p, n in counts.items() if n}
    return report


def _check_upward(
    store: BlockStore,
    anchors: Anchors,
    start: int,
    end: int,
    lo: int,
    hi: int,
    problems: _Problems,
    bad_headers: set[int],
    report: VerifyReport,
    progress: Progress | None,
    write: bool,
) -> tuple[set[int], set[int]]:
    """Pass one: blocks against their headers and the checkpoints; epochs against the accumulator."""
    acc = anchors.accumulator
    verified: set[int] = set()
    failed: set[int] = set()
    carry: tuple[int, int] | None = None  # (last block, total difficulty) of the last epoch proven this run
    for wlo, whi in _windows(lo, hi):
        entries = store.canonical_entries(wlo, whi, data=True)
        epoch = acc.epoch_of(wlo) if acc is not None else None
        epoch_rows: list[tuple[bytes, int]] | None = None
        if acc is not None and epoch is not None:
            first, last = acc.bounds(epoch)
            if start <= first and last <= end:
                epoch_rows = []
        for e in entries:
            n = e.number
            report.checked += 1
            h: Header | None = None
            if e.header is None:
                problems.add(n, "hash", f"its canonical hash {_short(e.hash)} names a header that is not stored")
            else:
                try:
                    h = Header(e.header)
                except HeaderError as err:
                    problems.add(n, "hash", f"its stored header does not decode: {err}")
                if h is not None and (keccak(e.header) != e.hash or h.number != n):
                    what = f"block {h.number:,}'s" if h.number != n else f"hashes to {_short(h.hash)},"
                    problems.add(n, "hash", f"its stored header is {what} not the canonical {_short(e.hash)}")
                    h = None
            if h is None:
                bad_headers.add(n)
                epoch_rows = None
                continue
            why = anchors.contradiction(n, e.hash, h.parent_hash)
            if why is not None:
                problems.add(n, "checkpoint", why)
            count: int | None = None
            if e.body is None:
                report.missing_bodies += 1
            else:
                try:
                    count = check_body(h, e.body)
                except VerificationError as err:
                    problems.add(n, "body", str(err))
            if e.receipts is None:
                report.missing_receipts += 1
            else:
                try:
                    verify_receipts(h, e.receipts, form=69, tx_count=count)
                except VerificationError as err:
                    problems.add(n, "receipts", str(err))
            # (epoch_rows is a list only when there is an accumulator)
            if epoch_rows is not None and acc is not None and n <= acc.last_block:
                epoch_rows.append((e.hash, h.difficulty))
        if progress is not None:
            progress(len(entries))
        if acc is None or epoch is None or epoch_rows is None:
            continue
        first, last = acc.bounds(epoch)
        if len(epoch_rows) != last - first + 1:
            continue  # not all held: nothing to check
        if epoch == 0:
            td, source = 0, "0 before genesis"
        elif carry is not None and carry[0] == first - 1:
            td, source = carry[1], f"carried from epoch {epoch - 1}"
        else:
            stored_td = store.total_difficulty(first - 1)
            if stored_td is None:
                continue  # the total difficulty before it is not known
            td, source = stored_td, f"recorded in the store at block {first - 1:,}"
        records = []
        for block_hash, difficulty in epoch_rows:
            td += difficulty
            records.append((block_hash, td))
        if acc.matches(epoch, records):
            verified.add(epoch)
            carry = (last, td)
            if write and store.total_difficulty(last) != td:
                store.set_total_difficulty(last, td)
        else:
            failed.add(epoch)
            carry = None
            td_before = records[0][1] - epoch_rows[0][1]
            problems.add(
                first,
                "accumulator",
                f"epoch {epoch} (blocks {first:,}..{last:,}): the stored headers give accumulator root "
                f"0x{accumulator_root(records).hex()}, the shipped root is 0x{acc.root(epoch).hex()} "
                f"(total difficulty before it {td_before:,}, {source})",
            )
    return verified, failed


def _parent_of(raw: bytes | None) -> bytes | None:
    if raw is None:
        return None
    try:
        return Header(raw).parent_hash
    except HeaderError:
        return None


@dataclass(slots=True)
class _Above:
    """The block just above the one being walked: its number, parent hash, and whether it is proven now."""

    number: int
    parent: bytes
    proven: bool
    before: Proof | None = None  # its recorded proof (None: outside the range, not re-linked)
    after: Proof | None = None


def _relink(
    store: BlockStore,
    anchors: Anchors,
    lo: int,
    hi: int,
    problems: _Problems,
    bad_headers: set[int],
    verified: set[int],
    failed: set[int],
    write: bool,
) -> Counter[tuple[Proof, Proof]]:
    """Pass two, from the top down: links between stored blocks, and each block's new proof."""
    acc = anchors.accumulator
    changes: Counter[tuple[Proof, Proof]] = Counter()
    pending: list[tuple[int, Proof]] = []
    linker = DownwardLinker(anchors)
    above: _Above | None = None
    try:
        seed = store.proven_link_above(hi)
    except HeaderError:
        seed = None
    if seed is not None:
        linker.expect = Expected(*seed)
        above = _Above(hi + 1, seed[1], True)

    def record(number: int, before: Proof, after: Proof) -> None:
        if before != after:
            changes[(before, after)] += 1
            pending.append((number, after))

    for wlo, whi in _windows(lo, hi, descending=True):
        for e in store.canonical_entries(wlo, whi, descending=True):
            n = e.number
            if above is not None and above.number != n + 1:
                above = None  # a gap: nothing links across it
            parent = _parent_of(e.header) if n not in bad_headers else None
            if parent is None:
                linker.expect = None
                record(n, e.proof, Proof.UNPROVEN)
                above = None
                continue
            if above is not None and above.parent != e.hash:
                cp = anchors.checkpoint(n)
                if not above.proven and cp is not None and cp.hash == e.hash and above.before is not None:
                    # The checkpoint's own block is right: the one above it is the one that does not link.
                    if not problems.has(n + 1, "checkpoint", "link"):
                        problems.add(
                            n + 1,
                            "link",
                            f"block {n + 1:,} does not link to checkpoint block {n:,}: "
                            f"its parent hash is {_short(above.parent)}, block {n:,} is {_short(e.hash)}",
                        )
                    if above.after is not None and above.after is not Proof.UNPROVEN:
                        if above.before != above.after:
                            changes[(above.before, above.after)] -= 1
                        record(n + 1, above.before, Proof.UNPROVEN)
                elif not problems.has(n, "checkpoint", "link"):
                    how = "proven" if above.proven else "not proven"
                    problems.add(
                        n,
                        "link",
                        f"block {n:,} ({_short(e.hash)}) is not the parent of block {n + 1:,} "
                        f"({how}), which links to {_short(above.parent)}",
                    )
            epoch = acc.epoch_of(n) if acc is not None else None
            own = problems.marks(n)
            recorded: Proof | None = None
            if not own:
                if e.proof.proven and epoch not in failed:
                    recorded = e.proof
                if epoch is not None and epoch in verified:
                    recorded = stronger(recorded, Proof.ACCUMULATOR) if recorded is not None else Proof.ACCUMULATOR
            step = linker.step(n, e.hash, parent, recorded)
            if step.problem is not None and not own:
                kind = "checkpoint" if anchors.contradiction(n, e.hash, parent) else "link"
                problems.add(n, kind, step.problem)
                own = True
            if own:
                after = Proof.UNPROVEN
            elif step.proof is not None:
                after = step.proof
            else:
                after = Proof.UNANCHORED if e.proof is Proof.UNANCHORED else Proof.UNPROVEN
            record(n, e.proof, after)
            above = _Above(n, parent, after.proven, e.proof, after)
        if write and pending:
            store.set_proofs(pending)
        pending = []
    return changes
