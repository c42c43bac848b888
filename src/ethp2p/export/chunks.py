"""Chunk files: block ranges aligned to the chunk size, named by network, table and range.

``mainnet__blocks__00018000000_to_00018000999.parquet`` holds table ``blocks`` for blocks
18,000,000..18,000,999, every one of them: a file's name is the exact range of blocks it holds.
Chunks are aligned to multiples of the chunk size, so exports of different ranges with one chunk
size share their files. A file may hold less than its chunk (the first or last chunk of a range,
or a run of stored blocks when some are missing); it is superseded (deleted) once a file holding
more of that chunk is written, so extending an export never leaves two files holding one block.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

#: Digits of the zero-padded block numbers in file names.
NUMBER_DIGITS = 11
_NAME = re.compile(
    r"^(?P<net>[a-z0-9-]+)__(?P<table>[a-z]+)__(?P<start>\d{11,})_to_(?P<end>\d{11,})\.(?P<ext>parquet|jsonl)$"
)


@dataclass(frozen=True, slots=True, order=True)
class Chunk:
    """The blocks ``start..end`` (inclusive) of one chunk file."""

    start: int
    end: int

    @property
    def blocks(self) -> int:
        return self.end - self.start + 1


@dataclass(frozen=True, slots=True)
class ChunkFile:
    """A chunk file's parsed name."""

    network: str
    table: str
    chunk: Chunk
    ext: str


def file_name(network: str, table: str, chunk: Chunk, ext: str) -> str:
    return f"{network}__{table}__{chunk.start:0{NUMBER_DIGITS}d}_to_{chunk.end:0{NUMBER_DIGITS}d}.{ext}"


def parse_file_name(name: str) -> ChunkFile | None:
    """The parts of a chunk file name, or None for any other file."""
    m = _NAME.match(name)
    if m is None:
        return None
    return ChunkFile(m["net"], m["table"], Chunk(int(m["start"]), int(m["end"])), m["ext"])


def temp_name(name: str) -> str:
    """Where this process writes a chunk file before it is complete: a hidden name no reader
    globs, its own per process."""
    return f".{name}.{os.getpid()}.tmp"


def temp_target(name: str) -> str | None:
    """The chunk file name a temporary name is for (None if it is not one)."""
    if not (name.startswith(".") and name.endswith(".tmp")):
        return None
    base, _, pid = name[1:-4].rpartition(".")
    return base if pid.isdigit() and parse_file_name(base) is not None else None


def plan_chunks(start: int, end: int, size: int) -> list[Chunk]:
    """``start..end`` cut at multiples of ``size``."""
    if size < 1:
        raise ValueError("chunk size must be at least 1")
    out = []
    a = start
    while a <= end:
        b = min((a // size + 1) * size - 1, end)
        out.append(Chunk(a, b))
        a = b + 1
    return out


def existing_chunks(out: Path, network: str, ext: str) -> dict[str, list[Chunk]]:
    """The chunk files already in ``out`` for ``network`` and format ``ext``, by table."""
    found: dict[str, list[Chunk]] = {}
    if not out.is_dir():
        return found
    for p in out.iterdir():
        f = parse_file_name(p.name)
        if f is not None and f.network == network and f.ext == ext:
            found.setdefault(f.table, []).append(f.chunk)
    for chunks in found.values():
        chunks.sort()
    return found


@dataclass(frozen=True, slots=True)
class Overlap:
    """How the existing files of a table meet a planned chunk."""

    #: A file already holds every block of the chunk (it is the chunk, or a longer one).
    covered: bool
    #: Shorter files inside the chunk, superseded once the chunk is written.
    inside: tuple[Chunk, ...]
    #: Files that hold some of the chunk's blocks and some outside it (another chunk size).
    crossing: tuple[Chunk, ...]


def overlap(existing: list[Chunk], chunk: Chunk) -> Overlap:
    """How ``existing`` chunk files of one table meet ``chunk``."""
    covered = False
    inside: list[Chunk] = []
    crossing: list[Chunk] = []
    for c in existing:
        if c.end < chunk.start or c.start > chunk.end:
            continue
        if c.start <= chunk.start and chunk.end <= c.end:
            covered = True
        elif chunk.start <= c.start and c.end <= chunk.end:
            inside.append(c)
        else:
            crossing.append(c)
    return Overlap(covered, tuple(inside), tuple(crossing))


def contained(chunks: list[Chunk]) -> list[Chunk]:
    """The chunks that lie inside another one of ``chunks`` (left by an interrupted supersede)."""
    out = []
    reach = -1
    for c in sorted(chunks, key=lambda c: (c.start, -c.end)):
        if c.end <= reach:
            out.append(c)
        reach = max(reach, c.end)
    return out


def aligned(number: int, size: int) -> Chunk:
    """The aligned chunk of ``size`` blocks that holds block ``number``."""
    a = number // size * size
    return Chunk(a, a + size - 1)
