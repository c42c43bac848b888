"""The block store: raw headers, bodies and receipts in one SQLite file.

Everything is kept exactly as it travels on the wire (raw RLP), so serving is a
lookup and a copy, never a re-encode. A block becomes visible through the
``canonical`` index in the same transaction that writes its data, so a process
killed at any moment leaves either the whole block or none of it.

Receipts are stored per block in the eth/69 form (no blooms: smaller, and the
bloom is derived from the logs when an eth/68 peer asks).

Headers, bodies and receipts live in separate tables: a mainnet body or receipt
list is hundreds of kilobytes (SQLite overflow pages), and reading a header must
not walk them (schema 1 kept all three in one row; it is migrated on open).

Each canonical block records how it is known to be on the canonical chain
(:class:`~ethp2p.trust.proof.Proof`: checkpoint, accumulator, peer agreement,
imported unanchored, or unproven). Schema 2 had no such record: its blocks are
migrated as unproven (the genesis excepted) until ``ethp2p verify`` or a fetch
links them to an anchor again.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..chain.header import Header
from ..trust.proof import Proof

SCHEMA_VERSION = 3

#: The tables of a schema-3 store.
_TABLES = frozenset({"meta", "headers", "bodies", "receipts", "canonical"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS headers (
    hash   BLOB PRIMARY KEY,
    number INTEGER NOT NULL,
    header BLOB NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS headers_number ON headers(number);
CREATE TABLE IF NOT EXISTS bodies (
    hash BLOB PRIMARY KEY,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS receipts (
    hash     BLOB PRIMARY KEY,
    receipts BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS canonical (
    number INTEGER PRIMARY KEY,
    hash   BLOB NOT NULL,
    proof  INTEGER NOT NULL DEFAULT 0
);
"""

#: Schema 1 -> 2: one ``blocks`` row per block split into headers / bodies / receipts.
_MIGRATE_1_TO_2 = """
INSERT OR IGNORE INTO headers(hash, number, header) SELECT hash, number, header FROM blocks;
INSERT OR IGNORE INTO bodies(hash, body) SELECT hash, body FROM blocks WHERE body IS NOT NULL;
INSERT OR IGNORE INTO receipts(hash, receipts) SELECT hash, receipts FROM blocks WHERE receipts IS NOT NULL;
DROP TABLE blocks;
UPDATE meta SET value=CAST('2' AS BLOB) WHERE key='schema';
"""

#: Schema 2 -> 3: every canonical block records its proof; what was stored before is unproven
#: (the genesis, which the store's own meta names, is its own checkpoint).
_MIGRATE_2_TO_3 = f"""
ALTER TABLE canonical ADD COLUMN proof INTEGER NOT NULL DEFAULT {int(Proof.UNPROVEN)};
UPDATE canonical SET proof={int(Proof.CHECKPOINT)}
    WHERE number=0 AND hash=(SELECT value FROM meta WHERE key='genesis');
UPDATE meta SET value=CAST('3' AS BLOB) WHERE key='schema';
"""


class StoreError(Exception):
    """The store file is unusable (wrong schema, other chain, corrupt)."""


@dataclass(frozen=True, slots=True)
class StoredBlock:
    """One block as stored: raw header, and body/receipts when present."""

    number: int
    hash: bytes
    header: bytes
    body: bytes | None
    receipts: bytes | None


@dataclass(frozen=True, slots=True)
class BlockRecord:
    """A block to write. ``body``/``receipts`` may be None when not (yet) known; ``proof`` says
    how it is known to be canonical."""

    number: int
    hash: bytes
    header: bytes
    body: bytes | None = None
    receipts: bytes | None = None
    proof: Proof = Proof.UNPROVEN


@dataclass(frozen=True, slots=True)
class CanonicalEntry:
    """One row of the canonical index with its proof and raw header (None if that header is not
    stored), and with ``data`` its body and receipts (None where not stored)."""

    number: int
    hash: bytes
    proof: Proof
    header: bytes | None
    body: bytes | None = None
    receipts: bytes | None = None


#: SQLite page size of new stores (existing files keep theirs).
PAGE_SIZE = 32768

#: Bytes of block data written between two requests to drop the store file's cached pages.
DROP_CACHE_EVERY = 64 << 20


class BlockStore:
    """SQLite-backed store of raw chain data (WAL mode; one writer, many readers).

    History is written once and read rarely, so by default a writing store asks
    the kernel (``posix_fadvise``) every ``DROP_CACHE_EVERY`` bytes to drop the
    cached pages it appended to the file: a long fetch does not fill the page
    cache with cold data and evict what the machine's other programs (or a
    server reading the same file) need. ``drop_page_cache=False`` keeps them.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        genesis_hash: bytes | None = None,
        readonly: bool = False,
        drop_page_cache: bool = True,
    ) -> None:
        self.path = Path(path)
        self._drop_page_cache = drop_page_cache and not readonly and hasattr(os, "posix_fadvise")
        self._unadvised = 0
        # Only what this store appends is dropped: the file's older pages (B-tree interior
        # pages, blocks a server on the same file is reading) stay cached.
        self._size_at_open = self.path.stat().st_size if self.path.exists() else 0
        self._real_path = os.path.realpath(self.path)  # now: a later chdir must not change it
        self._advised_upto = self._size_at_open
        if readonly and not self.path.exists():
            raise StoreError(f"store {self.path} does not exist")
        uri = f"file:{self.path}?mode=ro" if readonly else str(self.path)
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(uri, uri=readonly, check_same_thread=False, isolation_level=None)
            if readonly:
                try:
                    row = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
                except sqlite3.OperationalError:  # no meta table (a damaged file is the outer error)
                    row = None
                if row is None:
                    raise StoreError(f"{self.path} is not an ethp2p block store")
                version = _schema_number(row[0], self.path)
                if version != SCHEMA_VERSION:  # an older one is migrated by opening it for writing
                    raise StoreError(
                        f"store {self.path} has schema {version}, this ethp2p reads {SCHEMA_VERSION}"
                        + (
                            " (open it once for writing, e.g. 'ethp2p verify', to migrate it)"
                            if 0 < version < SCHEMA_VERSION
                            else ""
                        )
                    )
                self._check_tables()
                self._check_genesis_value()
            if not readonly:
                # Only takes effect on a new file. Bodies and receipt lists run to hundreds of KB:
                # in 32 KB pages a block is written with ~60% less CPU than in 4 KB pages and read
                # back ~1.5x faster, for ~4% more space (bench/floors.py, SQLite write).
                self._db.execute(f"PRAGMA page_size={PAGE_SIZE}")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            if not readonly:
                self._check_current()
                self._db.executescript(_SCHEMA)
                self._check_meta(genesis_hash)
        except sqlite3.DatabaseError as e:
            raise StoreError(f"cannot open store {self.path}: {e}") from None

    def _tables(self) -> set[str]:
        """The tables the file holds now."""
        return {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}

    def _check_tables(self) -> None:
        """A current-schema store holds every table: one dropped is damage (re-creating it empty
        would make its blocks vanish without a word)."""
        missing = sorted(_TABLES - self._tables())
        if missing:
            raise StoreError(f"store {self.path} is damaged: table(s) {', '.join(missing)} missing")

    def _check_genesis_value(self) -> None:
        row = self._db.execute("SELECT value FROM meta WHERE key='genesis'").fetchone()
        if row is not None and (not isinstance(row[0], bytes) or len(row[0]) != 32):
            raise StoreError(f"store {self.path} is damaged: its genesis hash {row[0]!r} is not 32 bytes")

    def _check_current(self) -> None:
        """Before a writing open creates what is missing: a store of this schema must lack nothing."""
        tables = self._tables()
        if "meta" not in tables:  # a new file (or one only a peer cache wrote to), unless it holds blocks
            if tables & _TABLES:  # (a new store's meta is created first, so this is damage, not a crash)
                raise StoreError(f"store {self.path} is damaged: table(s) meta missing")
            return
        row = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is not None and _schema_number(row[0], self.path) == SCHEMA_VERSION:
            self._check_tables()

    def _check_meta(self, genesis_hash: bytes | None) -> None:
        row = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is None:
            self._db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION).encode(),))
            version = SCHEMA_VERSION
        else:
            version = _schema_number(row[0], self.path)
        self._check_genesis_value()
        if version == 1:
            self._db.executescript("BEGIN IMMEDIATE;" + _MIGRATE_1_TO_2 + "COMMIT;")
            version = 2
        if version == 2:
            self._db.executescript("BEGIN IMMEDIATE;" + _MIGRATE_2_TO_3 + "COMMIT;")
            version = 3
        if version != SCHEMA_VERSION:
            raise StoreError(f"store {self.path} has schema {version}, this ethp2p needs {SCHEMA_VERSION}")
        if genesis_hash is not None:
            row = self._db.execute("SELECT value FROM meta WHERE key='genesis'").fetchone()
            if row is None:
                self._db.execute("INSERT INTO meta VALUES ('genesis', ?)", (genesis_hash,))
            elif bytes(row[0]) != genesis_hash:
                raise StoreError(
                    f"store {self.path} holds the chain with genesis 0x{bytes(row[0]).hex()[:16]}…, "
                    f"not 0x{genesis_hash.hex()[:16]}…"
                )

    @property
    def genesis_hash(self) -> bytes | None:
        row = self._db.execute("SELECT value FROM meta WHERE key='genesis'").fetchone()
        return bytes(row[0]) if row else None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> BlockStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- writing ----------------------------------------------------------------------------

    def put_blocks(self, blocks: Iterable[BlockRecord]) -> int:
        """Write blocks (and their canonical index entries) in one atomic transaction.

        A body or receipts value of None keeps what is already stored. Returns
        the number of blocks written.
        """
        blocks = list(blocks)
        if not blocks:
            return 0
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                cur.executemany(
                    "INSERT INTO headers(hash, number, header) VALUES (?,?,?) ON CONFLICT(hash) DO NOTHING",
                    [(b.hash, b.number, b.header) for b in blocks],
                )
                cur.executemany(
                    "INSERT OR REPLACE INTO bodies(hash, body) VALUES (?,?)",
                    [(b.hash, b.body) for b in blocks if b.body is not None],
                )
                cur.executemany(
                    "INSERT OR REPLACE INTO receipts(hash, receipts) VALUES (?,?)",
                    [(b.hash, b.receipts) for b in blocks if b.receipts is not None],
                )
                cur.executemany(
                    "INSERT OR REPLACE INTO canonical(number, hash, proof) VALUES (?,?,?)",
                    [(b.number, b.hash, int(b.proof)) for b in blocks],
                )
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            if self._drop_page_cache:
                self._unadvised += sum(len(b.body or b"") + len(b.receipts or b"") for b in blocks)
                if self._unadvised >= DROP_CACHE_EVERY:
                    self._drop_cached_pages()
        return len(blocks)

    def _drop_cached_pages(self) -> None:
        """Ask the kernel to drop the cached pages this store appended to the file.

        New blocks go to the end of the file (SQLite appends pages when a checkpoint
        grows it), so the advice covers the file's growth since the last advice, plus
        the window before it again, for pages that were still dirty then (the kernel
        only drops clean pages).

        The advice goes through SQLite's own descriptor of the file: opening and
        closing a second one would release every POSIX lock this process holds on
        the file (SQLite's included), which could let another process delete a
        WAL that still holds commits.
        """
        self._unadvised = 0
        fd = _descriptor_of(self._real_path)
        if fd is None:
            self._drop_page_cache = False  # no /proc here: keep the page cache as it is
            return
        try:
            size = os.fstat(fd).st_size
            start = min(max(self._size_at_open, self._advised_upto - DROP_CACHE_EVERY), size)
            os.posix_fadvise(fd, start, size - start, os.POSIX_FADV_DONTNEED)
            self._advised_upto = size
        except OSError:
            # Only advice: a descriptor closed meanwhile or a filesystem that refuses it loses nothing.
            pass

    def set_meta(self, key: str, value: bytes) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def get_meta(self, key: str) -> bytes | None:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return bytes(row[0]) if row else None

    def total_difficulty(self, number: int) -> int | None:
        """The total difficulty at block ``number``, if recorded (era1 imports and proven pre-merge epochs)."""
        raw = self.get_meta(f"td:{number}")
        return int.from_bytes(raw, "big") if raw else None

    def set_total_difficulty(self, number: int, td: int) -> None:
        """Record the total difficulty at block ``number`` (eth/68 Status announces it; the next epoch's
        accumulator proof starts from it)."""
        self.set_meta(f"td:{number}", td.to_bytes(32, "big"))

    # ---- reading ----------------------------------------------------------------------------

    def canonical_hash(self, number: int) -> bytes | None:
        row = self._db.execute("SELECT hash FROM canonical WHERE number=?", (number,)).fetchone()
        return bytes(row[0]) if row else None

    def number_of(self, block_hash: bytes) -> int | None:
        """The number of a canonical block with this hash (None if unknown)."""
        row = self._db.execute(
            "SELECT b.number FROM headers b JOIN canonical c ON c.number=b.number AND c.hash=b.hash WHERE b.hash=?",
            (block_hash,),
        ).fetchone()
        return int(row[0]) if row else None

    def header_by_number(self, number: int) -> bytes | None:
        row = self._db.execute(
            "SELECT b.header FROM canonical c JOIN headers b ON b.hash=c.hash WHERE c.number=?", (number,)
        ).fetchone()
        return bytes(row[0]) if row else None

    def header_by_hash(self, block_hash: bytes) -> bytes | None:
        row = self._db.execute("SELECT header FROM headers WHERE hash=?", (block_hash,)).fetchone()
        return bytes(row[0]) if row else None

    def headers_by_numbers(self, numbers: Sequence[int]) -> list[bytes | None]:
        """Raw canonical headers for each number (None where missing), in order."""
        if not numbers:
            return []
        lo, hi = min(numbers), max(numbers)
        found: dict[int, bytes] = {}
        if hi - lo <= 4 * len(numbers):
            for n, h in self._db.execute(
                "SELECT c.number, b.header FROM canonical c JOIN headers b ON b.hash=c.hash "
                "WHERE c.number BETWEEN ? AND ?",
                (lo, hi),
            ):
                found[n] = bytes(h)
        else:
            for n in numbers:
                h = self.header_by_number(n)
                if h is not None:
                    found[n] = h
        return [found.get(n) for n in numbers]

    def body(self, block_hash: bytes) -> bytes | None:
        row = self._db.execute("SELECT body FROM bodies WHERE hash=?", (block_hash,)).fetchone()
        return bytes(row[0]) if row else None

    def receipts(self, block_hash: bytes) -> bytes | None:
        """The block's receipts as stored (eth/69 per-block list encoding)."""
        row = self._db.execute("SELECT receipts FROM receipts WHERE hash=?", (block_hash,)).fetchone()
        return bytes(row[0]) if row else None

    def block(self, block_hash: bytes) -> StoredBlock | None:
        row = self._db.execute(_SELECT_BLOCK + "WHERE h.hash=?", (block_hash,)).fetchone()
        return _stored(row) if row else None

    def canonical_blocks(self, start: int, end: int) -> Iterator[StoredBlock]:
        """Canonical blocks with start <= number <= end, in order (gaps skipped)."""
        cur = self._db.execute(
            _SELECT_BLOCK + "JOIN canonical c ON c.hash=h.hash WHERE c.number BETWEEN ? AND ? ORDER BY c.number",
            (start, end),
        )
        for row in cur:
            yield _stored(row)

    def canonical_entries(
        self, start: int, end: int, *, data: bool = False, descending: bool = False
    ) -> list[CanonicalEntry]:
        """Every canonical index row in [start, end], in order of number (``descending``: highest first),
        including rows whose header is missing; with ``data`` also bodies and receipts. Read a bounded
        range at a time (the rows are returned as a list)."""
        cols = "c.number, c.hash, c.proof, h.header" + (", b.body, r.receipts" if data else "")
        joins = "LEFT JOIN headers h ON h.hash=c.hash "
        if data:
            joins += "LEFT JOIN bodies b ON b.hash=c.hash LEFT JOIN receipts r ON r.hash=c.hash "
        order = "DESC" if descending else "ASC"
        rows = self._db.execute(
            f"SELECT {cols} FROM canonical c {joins}WHERE c.number BETWEEN ? AND ? ORDER BY c.number {order}",
            (start, end),
        ).fetchall()
        return [
            CanonicalEntry(
                int(r[0]),
                bytes(r[1]),
                _proof(r[2]),
                bytes(r[3]) if r[3] is not None else None,
                *(
                    (bytes(r[4]) if r[4] is not None else None, bytes(r[5]) if r[5] is not None else None)
                    if data
                    else ()
                ),
            )
            for r in rows
        ]

    def block_range(self) -> tuple[int, int] | None:
        """(lowest, highest) canonical block numbers stored, or None if empty."""
        row = self._db.execute("SELECT MIN(number), MAX(number) FROM canonical").fetchone()
        if row is None or row[0] is None:
            return None
        return int(row[0]), int(row[1])

    def contiguous_range(self) -> tuple[int, int] | None:
        """(lowest, highest) of the run of consecutive canonical blocks starting at the lowest one."""
        rng = self.block_range()
        if rng is None:
            return None
        lo = rng[0]
        row = self._db.execute(
            "SELECT MIN(c.number) FROM canonical c LEFT JOIN canonical d ON d.number = c.number + 1 "
            "WHERE d.number IS NULL AND c.number >= ?",
            (lo,),
        ).fetchone()
        return lo, int(row[0])

    def longest_run(self) -> tuple[int, int] | None:
        """(first, last) of the longest run of consecutive canonical blocks (of equally long runs, the
        highest), or None if the store is empty.

        A store that lacks blocks 1..N-1 (it fetched N..M; every store has the genesis) gives N..M,
        not the lone genesis. Two streamed scans of the canonical index (its integer key only, as
        :meth:`contiguous_range`): each run's first and last blocks, paired in order.
        """
        firsts = self._db.execute(
            "SELECT c.number FROM canonical c LEFT JOIN canonical d ON d.number = c.number - 1 "
            "WHERE d.number IS NULL ORDER BY c.number"
        )
        lasts = self._db.execute(
            "SELECT c.number FROM canonical c LEFT JOIN canonical d ON d.number = c.number + 1 "
            "WHERE d.number IS NULL ORDER BY c.number"
        )
        best: tuple[int, int] | None = None
        for (first,), (last,) in zip(firsts, lasts, strict=True):
            if best is None or last - first >= best[1] - best[0]:  # ascending: a tie goes to the higher
                best = int(first), int(last)
        return best

    def complete_numbers(self, start: int, end: int, *, proven: bool = False) -> set[int]:
        """Numbers in [start, end] whose header, body and receipts are all stored
        (with ``proven``, only those proven to be on the canonical chain)."""
        sql = (
            "SELECT c.number FROM canonical c JOIN bodies b ON b.hash=c.hash JOIN receipts r ON r.hash=c.hash "
            "WHERE c.number BETWEEN ? AND ?"
        )
        if proven:
            sql += f" AND c.proof IN ({_PROVEN_SQL})"
        return {int(r[0]) for r in self._db.execute(sql, (start, end))}

    def complete_runs(
        self, start: int, end: int, *, receipts: bool = True, proven: bool = False
    ) -> Iterator[tuple[int, int]]:
        """Runs ``(first, last)`` of consecutive numbers in [start, end] whose header, body and
        (with ``receipts``) receipts are all stored (with ``proven``: and proven canonical), in
        order; streamed, so memory does not grow with the range."""
        sql = (
            "SELECT c.number FROM canonical c JOIN headers h ON h.hash=c.hash JOIN bodies b ON b.hash=c.hash "
            + ("JOIN receipts r ON r.hash=c.hash " if receipts else "")
            + "WHERE c.number BETWEEN ? AND ?"
            + (f" AND c.proof IN ({_PROVEN_SQL})" if proven else "")
            + " ORDER BY c.number"
        )
        cur = self._db.execute(sql, (start, end))
        first: int | None = None  # the run being built is first..last
        last = 0
        for (n,) in cur:
            if first is not None and n == last + 1:
                last = n
                continue
            if first is not None:
                yield first, last
            first = last = int(n)
        if first is not None:
            yield first, last

    # ---- proofs -----------------------------------------------------------------------------

    def proof(self, number: int) -> Proof | None:
        """How canonical block ``number`` is known to be canonical (None if it is not stored)."""
        row = self._db.execute("SELECT proof FROM canonical WHERE number=?", (number,)).fetchone()
        return _proof(row[0]) if row else None

    def proofs(self, start: int, end: int) -> dict[int, Proof]:
        """The proof of each stored canonical block in [start, end]."""
        cur = self._db.execute("SELECT number, proof FROM canonical WHERE number BETWEEN ? AND ?", (start, end))
        return {int(n): _proof(p) for n, p in cur}

    def proof_counts(self, start: int = 0, end: int = (1 << 63) - 1) -> dict[Proof, int]:
        """How many stored canonical blocks in [start, end] have each proof."""
        cur = self._db.execute(
            "SELECT proof, COUNT(*) FROM canonical WHERE number BETWEEN ? AND ? GROUP BY proof", (start, end)
        )
        return {_proof(p): int(c) for p, c in cur}

    def set_proofs(self, proofs: Iterable[tuple[int, Proof]]) -> int:
        """Record new proofs for stored canonical blocks, in one transaction; returns how many changed."""
        rows = [(int(p), n) for n, p in proofs]
        if not rows:
            return 0
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                cur.executemany("UPDATE canonical SET proof=? WHERE number=?", rows)
                changed = cur.rowcount
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        return changed

    def lowest_proven_above(self, number: int) -> int | None:
        """The lowest stored proven canonical block above ``number`` (None if there is none)."""
        row = self._db.execute(
            f"SELECT MIN(number) FROM canonical WHERE number > ? AND proof IN ({_PROVEN_SQL})", (number,)
        ).fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def proven_link_above(self, number: int) -> tuple[int, bytes, Proof] | None:
        """If block ``number + 1`` is stored and proven: (``number``, the hash it links to, its proof)."""
        row = self._db.execute(
            "SELECT h.header, c.proof FROM canonical c JOIN headers h ON h.hash=c.hash WHERE c.number=?",
            (number + 1,),
        ).fetchone()
        if row is None or not _proof(row[1]).proven:
            return None
        return number, Header(bytes(row[0])).parent_hash, _proof(row[1])

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM canonical").fetchone()[0])

    def change_token(self) -> tuple[int, int]:
        """A value that differs whenever the stored blocks may have changed since it was read: a commit
        by another connection (SQLite's ``data_version``) or by this one (its ``total_changes``). Cheap
        (microseconds), where re-reading the range scans the whole index (about 0.1 s per million blocks)."""
        (version,) = self._db.execute("PRAGMA data_version").fetchone()
        return int(version), self._db.total_changes


_PROVEN_SQL = ",".join(str(int(p)) for p in Proof if p.proven)


def _proof(value: object) -> Proof:
    """A stored proof code; an unknown one (a newer ethp2p, or damage) reads as unproven."""
    try:
        if isinstance(value, int | float | str | bytes):  # what SQLite can hand back
            return Proof(int(value))
    except ValueError:
        pass
    return Proof.UNPROVEN


def _schema_number(value: object, path: Path) -> int:
    try:
        if isinstance(value, bytes | bytearray | memoryview):
            return int(bytes(value))
    except ValueError:
        pass
    raise StoreError(f"store {path} has an unreadable schema version {value!r}") from None


def _descriptor_of(real_path: str) -> int | None:
    """A descriptor this process already has open on ``real_path`` (from Linux's /proc), or None."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return None
    for name in names:
        try:
            if os.readlink(f"/proc/self/fd/{name}") == real_path:
                return int(name)
        except (OSError, ValueError):
            continue
    return None


_SELECT_BLOCK = (
    "SELECT h.number, h.hash, h.header, b.body, r.receipts FROM headers h "
    "LEFT JOIN bodies b ON b.hash=h.hash LEFT JOIN receipts r ON r.hash=h.hash "
)


def _stored(row: tuple) -> StoredBlock:
    return StoredBlock(
        int(row[0]),
        bytes(row[1]),
        bytes(row[2]),
        bytes(row[3]) if row[3] is not None else None,
        bytes(row[4]) if row[4] is not None else None,
    )
