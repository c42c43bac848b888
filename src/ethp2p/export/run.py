"""Planning and running an export: which chunks to write, then each chunk's table files.

An export is resumable: chunk files that exist are skipped, a chunk is written under a hidden
temporary name and renamed when complete, and a lock keeps two exports out of one directory.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

from ..eth.chainspec import NETWORKS
from ..store.blocks import BlockStore
from ..trust import Proof
from ..workers import exit_with_parent
from .chunks import (
    Chunk,
    aligned,
    contained,
    existing_chunks,
    file_name,
    overlap,
    parse_file_name,
    plan_chunks,
    temp_target,
)
from .rows import SENDER_COLUMNS, Row, RowError, RowReader
from .schema import DEFAULT_TABLES, TABLES, Column, column_names, select_columns
from .writers import COMPRESSIONS, JsonlTableWriter, ParquetTableWriter, TableWriter, WriteError

FORMATS = ("parquet", "jsonl")
#: Blocks read from the store at a time while a chunk is written.
READ_BATCH = 64
#: Blocks sampled for ``--dry``'s row and size estimate.
SAMPLE_BLOCKS = 32
LOCK_NAME = ".ethp2p-export.lock"


class ExportError(Exception):
    """The export cannot be done as asked (bad options, blocks missing, unwritable directory)."""


class DirectoryBusy(ExportError):
    """Another export holds the output directory's lock."""


@dataclass(frozen=True)
class ExportOptions:
    """What to export and how (the ``ethp2p export`` options)."""

    out: Path
    start: int | None = None
    end: int | None = None
    fmt: str = "parquet"
    tables: tuple[str, ...] = DEFAULT_TABLES
    include_columns: frozenset[str] | None = None
    exclude_columns: frozenset[str] = frozenset()
    hex: bool = False
    compression: str = "zstd"
    chunk_size: int = 1000
    #: Export the blocks that are stored when some of the range is missing (else an error).
    allow_missing: bool = False
    #: Write only chunks whose blocks are all stored, quietly leaving the rest (``fetch --export``).
    complete_chunks_only: bool = False
    #: Only blocks proven canonical count as stored (``fetch --export``: a block the fetch may
    #: still replace is not exported).
    proven_only: bool = False
    #: The network part of file names (default: from the store's genesis).
    network: str | None = None


@dataclass
class PlannedChunk:
    """One chunk of the plan: the tables to write, those already written, what it supersedes."""

    chunk: Chunk
    blocks: int
    write: tuple[str, ...]
    done: tuple[str, ...]
    supersedes: dict[str, tuple[Chunk, ...]] = field(default_factory=dict)


@dataclass
class ExportPlan:
    """Everything an export will do, worked out before any file is touched."""

    network: str
    out: Path
    fmt: str
    start: int
    end: int
    chunk_size: int
    columns: dict[str, tuple[Column, ...]]
    chunks: list[PlannedChunk]
    stored: int
    missing: int
    missing_spans: list[tuple[int, int]]
    unproven: dict[Proof, int]
    estimate: dict[str, float] = field(default_factory=dict)
    estimate_bytes: float = 0.0
    estimate_sample: int = 0

    @property
    def to_write(self) -> list[PlannedChunk]:
        return [c for c in self.chunks if c.write]

    def lines(self) -> list[str]:
        """The plan as ``--dry`` prints it."""
        todo = self.to_write
        blocks = sum(c.blocks for c in todo)
        out = [
            f"export plan: {self.network} blocks {self.start:,}..{self.end:,} into {self.out} ({self.fmt}, "
            f"{self.chunk_size:,} blocks per chunk)",
            "  tables: " + "; ".join(f"{t} ({len(cols)} columns)" for t, cols in self.columns.items()),
            f"  chunks: {len(self.chunks):,} ({len(todo):,} to write, "
            f"{len(self.chunks) - len(todo):,} already written); "
            f"blocks to export: {blocks:,}",
        ]
        if self.missing:
            out.append(f"  missing from the store: {self.missing:,} blocks ({describe_spans(self.missing_spans)})")
        if self.estimate_sample:
            rows = ", ".join(f"{t} {n:,.0f}" for t, n in self.estimate.items())
            out.append(
                f"  estimate (from {self.estimate_sample} sampled blocks): rows {rows}; "
                f"about {self.estimate_bytes / 1e6:,.1f} MB"
            )
        return out


@dataclass
class ExportResult:
    """What an export wrote."""

    plan: ExportPlan
    blocks: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    chunks_written: int = 0
    chunks_skipped: int = 0
    files: list[Path] = field(default_factory=list)
    superseded: list[Path] = field(default_factory=list)
    bytes: int = 0
    seconds: float = 0.0

    def lines(self) -> list[str]:
        """The summary ``ethp2p export`` prints."""
        p = self.plan
        total = sum(self.rows.values())
        rate = total / self.seconds if self.seconds else 0.0
        out = [
            f"exported {self.blocks:,} blocks ({p.network} {p.start:,}..{p.end:,}) in {self.chunks_written:,} chunks, "
            f"{self.chunks_skipped:,} already written; {len(self.files):,} files, {self.bytes / 1e6:,.1f} MB, "
            f"in {self.seconds:.1f} s ({rate:,.0f} rows/s)",
            "rows: " + ", ".join(f"{t} {n:,}" for t, n in self.rows.items()),
        ]
        if self.superseded:
            out.append(f"replaced {len(self.superseded)} shorter chunk file(s) the new chunks contain")
        if p.missing:
            spans = describe_spans(p.missing_spans)
            out.append(f"not exported, missing from the store: {p.missing:,} blocks ({spans})")
        weak = sum(p.unproven.values())
        if weak:
            kinds = ", ".join(f"{n:,} {k.name.lower()}" for k, n in p.unproven.items())
            out.append(
                f"not proven canonical: {weak:,} exported blocks ({kinds}); the blocks table's proof column says which"
            )
        out.append(f"into {p.out}")
        return out


def describe_spans(spans: list[tuple[int, int]], limit: int = 5) -> str:
    """``a..b, c, ...`` for the first ``limit`` spans."""
    parts = [f"{a:,}" if a == b else f"{a:,}..{b:,}" for a, b in spans[:limit]]
    return ", ".join(parts) + (f", ... ({len(spans):,} spans)" if len(spans) > limit else "")


def network_name(genesis_hash: bytes | None) -> str:
    """The network a store's genesis names (``chain-<hash prefix>`` for other chains)."""
    for name, spec in NETWORKS.items():
        if spec.genesis_hash == genesis_hash:
            return name
    return "chain-" + genesis_hash.hex()[:8] if genesis_hash else "chain-unknown"


def _columns(opts: ExportOptions) -> dict[str, tuple[Column, ...]]:
    unknown = [t for t in opts.tables if t not in TABLES]
    if unknown or not opts.tables:
        raise ExportError(f"unknown table {', '.join(unknown) or '(none)'}; tables: {', '.join(TABLES)}")
    names = {n for t in opts.tables for n in column_names(t)}
    asked = (opts.include_columns or frozenset()) | opts.exclude_columns
    stray = sorted(asked - names)
    if stray:
        raise ExportError(f"no table exported has column {', '.join(stray)} (columns are listed in the README)")
    out: dict[str, tuple[Column, ...]] = {}
    for t in dict.fromkeys(opts.tables):
        cols = select_columns(t, opts.include_columns, opts.exclude_columns)
        if not cols:
            raise ExportError(
                f"no column of table {t} is selected; leave it out of --tables or include one of its columns"
            )
        out[t] = cols
    return out


def _check_options(opts: ExportOptions) -> None:
    if opts.fmt not in FORMATS:
        raise ExportError(f"unknown format {opts.fmt!r} ({' or '.join(FORMATS)})")
    if opts.compression not in COMPRESSIONS:
        raise ExportError(f"unknown compression {opts.compression!r} ({', '.join(COMPRESSIONS)})")
    if opts.chunk_size < 1:
        raise ExportError(f"chunk size must be at least 1, got {opts.chunk_size}")
    if opts.fmt == "jsonl" and opts.hex:
        raise ExportError("--hex is for Parquet; JSON Lines always has hashes, addresses and bytes as 0x strings")
    if opts.fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ExportError(
                "Parquet export needs pyarrow: pip install 'ethp2p[export]' (or use --format jsonl)"
            ) from None


def plan_export(store: BlockStore, opts: ExportOptions, *, estimate: bool = False) -> ExportPlan:
    """Work out the files to write, what is missing and what is already written (nothing is written).

    The plan covers only stored blocks: a chunk's file holds the chunk's blocks in the range, or
    (with ``allow_missing``) each run of them that is stored, so its name is always the exact
    range it holds; with ``complete_chunks_only`` a chunk waits until all its blocks are there."""
    _check_options(opts)
    columns = _columns(opts)
    start, end = opts.start, opts.end
    if start is None or end is None:
        rng = store.block_range()
        if rng is None:
            raise ExportError("the store holds no blocks")
        start = rng[0] if start is None else start
        end = rng[1] if end is None else end
    if end < start:
        raise ExportError(f"bad range {start}..{end}")
    need = {"receipts": bool(set(columns) & _RECEIPT_TABLES), "proven": opts.proven_only}
    runs = list(store.complete_runs(start, end, **need))
    stored = sum(b - a + 1 for a, b in runs)
    spans = _gaps(runs, start, end)
    missing = sum(b - a + 1 for a, b in spans)
    if missing and not (opts.allow_missing or opts.complete_chunks_only):
        raise ExportError(
            f"the store lacks {missing:,} of the {end - start + 1:,} blocks in {start:,}..{end:,} "
            f"({describe_spans(spans)}); fetch them first (ethp2p fetch START..END), or export what is there "
            "with --allow-missing"
        )
    network = opts.network or network_name(store.genesis_hash)
    ext = "parquet" if opts.fmt == "parquet" else "jsonl"
    _check_layout(opts.out, ext, _layout(network, opts, columns))
    have = existing_chunks(opts.out, network, ext)
    planned: list[PlannedChunk] = []
    for piece in _pieces(runs, start, end, opts.chunk_size, opts.complete_chunks_only):
        piece = _widened(store, opts, have, columns, piece, need)
        write, done, supersedes = [], [], {}
        for table in columns:
            o = overlap(have.get(table, []), piece)
            if o.covered:
                done.append(table)
                continue
            write.append(table)
            if o.inside:
                supersedes[table] = o.inside
        planned.append(PlannedChunk(piece, piece.blocks, tuple(write), tuple(done), supersedes))
    unproven: dict[Proof, int] = {}
    for pc in planned:
        if pc.write:
            for p, n in store.proof_counts(pc.chunk.start, pc.chunk.end).items():
                if not p.proven:
                    unproven[p] = unproven.get(p, 0) + n
    plan = ExportPlan(
        network,
        opts.out,
        opts.fmt,
        start,
        end,
        opts.chunk_size,
        columns,
        planned,
        stored,
        missing,
        spans,
        unproven,
    )
    if estimate:
        _estimate(store, opts, plan)
    return plan


#: Tables whose rows need the blocks' receipts stored.
_RECEIPT_TABLES = frozenset({"receipts", "logs"})


def _pieces(runs: list[tuple[int, int]], start: int, end: int, size: int, complete_only: bool) -> Iterator[Chunk]:
    """The files of the plan: each run of stored blocks cut at multiples of ``size``; with
    ``complete_only``, only the pieces that are a whole chunk (within ``start..end``)."""
    for a, b in runs:
        for piece in plan_chunks(a, b, size):
            whole = aligned(piece.start, size)
            if not complete_only or piece == Chunk(max(whole.start, start), min(whole.end, end)):
                yield piece


def _widened(
    store: BlockStore,
    opts: ExportOptions,
    have: dict[str, list[Chunk]],
    columns: dict[str, tuple[Column, ...]],
    piece: Chunk,
    need: dict[str, bool],
) -> Chunk:
    """``piece``, grown to take in the files already written that hold part of it (a shorter
    chunk from an export of another range), so the new file supersedes them; an error if such a
    file reaches outside the piece's chunk (another chunk size) or the store lacks what it adds."""
    whole = aligned(piece.start, opts.chunk_size)
    lo, hi = piece.start, piece.end
    for table in columns:
        for c in overlap(have.get(table, []), piece).crossing:
            if c.start < whole.start or c.end > whole.end:
                raise ExportError(
                    f"{opts.out} holds {table} for blocks {c.start:,}..{c.end:,}, across chunk "
                    f"{whole.start:,}..{whole.end:,}: it was written with another chunk size; export to another "
                    "directory or use that chunk size"
                )
            lo, hi = min(lo, c.start), max(hi, c.end)
    if (lo, hi) == (piece.start, piece.end):
        return piece
    if list(store.complete_runs(lo, hi, **need)) != [(lo, hi)]:
        raise ExportError(
            f"{opts.out} holds blocks of {lo:,}..{hi:,} in files a new chunk would overlap, and the store lacks "
            f"some of those blocks to write them again; export to another directory"
        )
    return Chunk(lo, hi)


def _gaps(runs: list[tuple[int, int]], start: int, end: int) -> list[tuple[int, int]]:
    gaps = []
    nxt = start
    for a, b in runs:
        if a > nxt:
            gaps.append((nxt, a - 1))
        nxt = b + 1
    if nxt <= end:
        gaps.append((nxt, end))
    return gaps


def _needs_senders(columns: dict[str, tuple[Column, ...]]) -> bool:
    return any((t, c.name) in SENDER_COLUMNS for t, cols in columns.items() for c in cols)


def stored_blocks(
    store: BlockStore, chunk: Chunk, *, receipts: bool = True
) -> Iterator[tuple[bytes, bytes, bytes | None, Proof]]:
    """The chunk's stored blocks with header, body and (with ``receipts``) receipts, read a
    bounded batch at a time; without ``receipts``, receipts are given where stored, else None."""
    a = chunk.start
    while a <= chunk.end:
        b = min(a + READ_BATCH - 1, chunk.end)
        for e in store.canonical_entries(a, b, data=True):
            if e.header is not None and e.body is not None and (e.receipts is not None or not receipts):
                yield e.header, e.body, e.receipts, e.proof
        a = b + 1


def _estimate(store: BlockStore, opts: ExportOptions, plan: ExportPlan) -> None:
    """Rows and bytes of the plan's chunks to write, from up to SAMPLE_BLOCKS stored blocks
    (a run of blocks from the start of chunks spread over the plan)."""
    todo = [c for c in plan.to_write if c.blocks]
    if not todo:
        return
    reader = RowReader(frozenset(plan.columns), senders=False)
    picked = todo[:: max(1, len(todo) // SAMPLE_BLOCKS)][:SAMPLE_BLOCKS]
    per_chunk = max(1, SAMPLE_BLOCKS // len(picked))
    rows: dict[str, list[Row]] = {t: [] for t in plan.columns}
    sampled = 0
    for pc in picked:
        for n, blk in enumerate(stored_blocks(store, pc.chunk, receipts=bool(set(plan.columns) & _RECEIPT_TABLES))):
            if n >= per_chunk:
                break
            for t, r in reader.block_rows(*blk).items():
                rows[t].extend(r)
            sampled += 1
    if not sampled:
        return
    scale = sum(c.blocks for c in todo) / sampled
    plan.estimate = {t: len(r) * scale for t, r in rows.items()}
    plan.estimate_sample = sampled
    # The sample written for real (same writers, same compression) into a scratch directory; a
    # file's fixed overhead (schema, footer), measured on an empty one, counted once per file.
    sample_bytes = empty_bytes = 0
    with tempfile.TemporaryDirectory() as scratch:
        for t, cols in plan.columns.items():
            for name, sample in (("empty", []), ("sample", rows[t])):
                w = _writer(Path(scratch) / f"{t}.{name}", cols, t, opts)
                w.add(sample)
                size = w.commit()
                if name == "empty":
                    empty_bytes += size
                else:
                    sample_bytes += size
    plan.estimate_bytes = max(0, sample_bytes - empty_bytes) * scale + empty_bytes * len(plan.to_write)


def _writer(path: Path, cols: tuple[Column, ...], table: str, opts: ExportOptions) -> TableWriter:
    if opts.fmt == "parquet":
        return ParquetTableWriter(path, cols, column_names(table), hex=opts.hex, compression=opts.compression)
    return JsonlTableWriter(path, cols, column_names(table))


class _Layout(TypedDict):
    """What every file of an export directory shares (recorded in its layout file)."""

    network: str
    chunk_size: int
    hex: bool
    tables: dict[str, list[str]]


def _layout(network: str, opts: ExportOptions, columns: dict[str, tuple[Column, ...]]) -> _Layout:
    """What every file of an export directory shares: chunk size, hex or binary, each table's columns."""
    return {
        "network": network,
        "chunk_size": opts.chunk_size,
        "hex": opts.hex,
        "tables": {t: [c.name for c in cols] for t, cols in columns.items()},
    }


def _layout_path(out: Path, ext: str) -> Path:
    return out / f".ethp2p-export-{ext}.json"


def _check_layout(out: Path, ext: str, layout: _Layout) -> None:
    """Refuse an export whose files would not read as one dataset with those already in ``out``
    (another chunk size, hex against binary, other columns of a table)."""
    path = _layout_path(out, ext)
    try:
        old = json.loads(path.read_text())
    except FileNotFoundError:
        return
    except (OSError, ValueError) as e:
        raise ExportError(f"cannot read {path}: {e}; remove it if the directory holds no export") from None
    if not isinstance(old, dict) or old.get("network") != layout["network"]:
        return
    hint = "export to another directory, or with the same options"
    size, hexed, tables = old.get("chunk_size"), old.get("hex"), old.get("tables")
    if not isinstance(size, int) or not isinstance(hexed, bool) or not isinstance(tables, dict):
        raise ExportError(f"{path} is not an export layout ethp2p wrote; remove it if the directory holds no export")
    if size != layout["chunk_size"]:
        raise ExportError(f"{out} holds chunks of {size:,} blocks, not {layout['chunk_size']:,}; {hint}")
    if hexed != layout["hex"]:
        were = "0x strings (--hex)" if hexed else "binary"
        raise ExportError(f"{out} holds hashes and bytes as {were}; {hint}")
    for t, names in layout["tables"].items():
        had = tables.get(t)
        if had is not None and had != names:
            more = [n for n in names if n not in had]
            fewer = [n for n in had if n not in names] if isinstance(had, list) else []
            diff = (
                "; ".join(
                    x
                    for x in (
                        f"it has no {', '.join(more)}" if more else "",
                        f"it has {', '.join(fewer)} too" if fewer else "",
                    )
                    if x
                )
                or "other order"
            )
            raise ExportError(f"{out} holds table {t} with other columns ({diff}); {hint}")


def _write_layout(out: Path, ext: str, layout: _Layout) -> None:
    """Record ``layout`` (merged with the tables already recorded) for the next export into ``out``."""
    path = _layout_path(out, ext)
    try:
        old = json.loads(path.read_text())
        tables = old.get("tables", {}) if isinstance(old, dict) and old.get("network") == layout["network"] else {}
    except (OSError, ValueError):
        tables = {}
    merged = {**layout, "tables": {**tables, **layout["tables"]}}
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(merged, indent=1) + "\n")
        os.replace(tmp, path)
    except OSError as e:
        raise ExportError(f"cannot write {path}: {e.strerror or e}") from None


@contextmanager
def directory_lock(out: Path) -> Iterator[None]:
    """Hold the export lock of ``out`` (another export writing there is an error)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = os.open(out / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise ExportError(f"cannot write to {out}: {e.strerror or e}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DirectoryBusy(f"another export is writing to {out}") from None
        yield
    finally:
        os.close(fd)


@dataclass
class ChunkOutcome:
    """What writing one chunk produced."""

    blocks: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    bytes: int = 0


def run_export(
    store: BlockStore,
    opts: ExportOptions,
    *,
    on_blocks: Callable[[int], None] | None = None,
    on_plan: Callable[[ExportPlan], None] | None = None,
    jobs: int = 1,
) -> ExportResult:
    """Plan (holding the directory's lock) and write every file the plan has to write; complete
    chunk files are never rewritten. ``on_plan`` sees the plan before anything is written.

    ``jobs`` > 1 writes that many chunks at once, each in its own process (with its own read-only
    connection to the store); progress then comes a chunk at a time."""
    t0 = time.monotonic()
    with directory_lock(opts.out):
        plan = plan_export(store, opts)
        if on_plan is not None:
            on_plan(plan)
        ext = "parquet" if plan.fmt == "parquet" else "jsonl"
        _remove_leftovers(opts.out, plan.network, ext)
        result = ExportResult(plan, rows={t: 0 for t in plan.columns})
        senders = _needs_senders(plan.columns)
        todo = []
        for pc in plan.chunks:
            if pc.write:
                todo.append(pc)
            elif pc.done:
                result.chunks_skipped += 1
                if on_blocks is not None:
                    on_blocks(pc.blocks)
        if jobs > 1 and len(todo) > 1:
            outcomes = _in_processes(store.path, opts, plan, todo, senders, min(jobs, len(todo)), on_blocks)
        else:
            outcomes = (
                (pc, _write_chunk(store, opts, plan.network, plan.columns, pc, senders, on_blocks)) for pc in todo
            )
        for pc, outcome in outcomes:
            if not result.chunks_written:
                _write_layout(opts.out, ext, _layout(plan.network, opts, plan.columns))
            result.chunks_written += 1
            result.blocks += outcome.blocks
            result.bytes += outcome.bytes
            result.files += outcome.files
            for t, n in outcome.rows.items():
                result.rows[t] += n
            for t, olds in pc.supersedes.items():
                for old in olds:
                    path = opts.out / file_name(plan.network, t, old, ext)
                    _unlink(path)
                    result.superseded.append(path)
    result.seconds = time.monotonic() - t0
    return result


def _unlink(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as e:
        raise ExportError(f"cannot remove {path}: {e.strerror or e}") from None


def _remove_leftovers(out: Path, network: str, ext: str) -> None:
    """Delete what an interrupted export can leave (the lock says none is running): temporary
    files, and shorter chunk files that a complete one now holds."""
    for p in out.iterdir():
        target = temp_target(p.name)
        f = parse_file_name(target) if target is not None else None
        if f is not None and f.network == network:
            _unlink(p)
    for table, chunks in existing_chunks(out, network, ext).items():
        for c in contained(chunks):
            _unlink(out / file_name(network, table, c, ext))


def _in_processes(
    store_path: Path,
    opts: ExportOptions,
    plan: ExportPlan,
    todo: list[PlannedChunk],
    senders: bool,
    jobs: int,
    on_blocks: Callable[[int], None] | None,
) -> Iterator[tuple[PlannedChunk, ChunkOutcome]]:
    """Chunks written by ``jobs`` worker processes, yielded as they complete."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

    ctx = multiprocessing.get_context("spawn")  # no fork of a process that may run threads
    with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_exit_with_parent, initargs=(os.getpid(),)) as pool:
        pending: dict[Future[ChunkOutcome], PlannedChunk] = {}
        queue = list(reversed(todo))
        try:
            while queue or pending:
                while queue and len(pending) < 2 * jobs:  # a bounded backlog, not every chunk at once
                    pc = queue.pop()
                    pending[
                        pool.submit(_chunk_in_worker, store_path, opts, plan.network, plan.columns, pc, senders)
                    ] = pc
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    pc = pending.pop(fut)
                    outcome = fut.result()
                    if on_blocks is not None:
                        on_blocks(outcome.blocks)
                    yield pc, outcome
        except BaseException:
            for fut in pending:
                fut.cancel()
            raise


_worker_stores: dict[Path, BlockStore] = {}


def _exit_with_parent(parent: int) -> None:
    """In each worker: exit when the export that started it is gone (even SIGKILLed), so no
    orphan writes into a directory a new export has taken over."""
    exit_with_parent(parent, poll=0.2, code=1)


def _chunk_in_worker(
    store_path: Path,
    opts: ExportOptions,
    network: str,
    columns: dict[str, tuple[Column, ...]],
    pc: PlannedChunk,
    senders: bool,
) -> ChunkOutcome:
    store = _worker_stores.get(store_path)
    if store is None:
        store = _worker_stores[store_path] = BlockStore(store_path, readonly=True)
    return _write_chunk(store, opts, network, columns, pc, senders, None)


def _write_chunk(
    store: BlockStore,
    opts: ExportOptions,
    network: str,
    columns: dict[str, tuple[Column, ...]],
    pc: PlannedChunk,
    senders: bool,
    on_blocks: Callable[[int], None] | None,
) -> ChunkOutcome:
    """Write the tables ``pc`` needs for its chunk: every file complete under its name, or none."""
    ext = "parquet" if opts.fmt == "parquet" else "jsonl"
    out = ChunkOutcome()
    writers: dict[str, TableWriter] = {}
    committed: set[str] = set()
    try:
        for t in pc.write:
            writers[t] = _writer(opts.out / file_name(network, t, pc.chunk, ext), columns[t], t, opts)
        reader = RowReader(frozenset(pc.write), senders=senders)
        pending = 0
        for blk in stored_blocks(store, pc.chunk, receipts=bool(set(pc.write) & _RECEIPT_TABLES)):
            try:
                tables = reader.block_rows(*blk)
            except RowError as e:
                raise ExportError(f"a stored block in {pc.chunk.start:,}..{pc.chunk.end:,} is malformed: {e}") from None
            for t, rows in tables.items():
                writers[t].add(rows)
            out.blocks += 1
            pending += 1
            if on_blocks is not None and pending >= 16:
                on_blocks(pending)
                pending = 0
        if on_blocks is not None and pending:
            on_blocks(pending)
        for t, w in writers.items():
            out.bytes += w.commit()
            committed.add(t)
            out.rows[t] = w.rows
            out.files.append(w.path)
    except WriteError as e:
        raise ExportError(f"chunk {pc.chunk.start:,}..{pc.chunk.end:,}: {e}") from None
    except OSError as e:
        raise ExportError(f"cannot write chunk {pc.chunk.start:,}..{pc.chunk.end:,}: {e.strerror or e}") from None
    finally:
        for t, w in writers.items():
            if t not in committed:
                w.abort()
    return out
