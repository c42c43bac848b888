"""BlockStore: atomic writes, canonical index, gap handling, genesis pinning."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from ethp2p.crypto.keccak import keccak
from ethp2p.store.blocks import BlockRecord, BlockStore, StoreError
from ethp2p.trust.proof import Proof


def _rec(n: int, body: bytes | None = b"\xc2\xc0\xc0", receipts: bytes | None = b"\xc0") -> BlockRecord:
    header = bytes([0xC1, n & 0x7F]) if n else b"\xc1\x80"
    return BlockRecord(n, keccak(header + n.to_bytes(8, "big")), header, body, receipts)


def test_put_and_read_back(tmp_path: Path) -> None:
    store = BlockStore(tmp_path / "s.db", genesis_hash=b"\x11" * 32)
    recs = [_rec(i) for i in range(10)]
    assert store.put_blocks(recs) == 10
    assert store.block_range() == (0, 9)
    assert store.count() == 10
    for r in recs:
        assert store.canonical_hash(r.number) == r.hash
        assert store.number_of(r.hash) == r.number
        assert store.header_by_number(r.number) == r.header
        assert store.header_by_hash(r.hash) == r.header
        assert store.body(r.hash) == r.body
        assert store.receipts(r.hash) == r.receipts
    assert [b.number for b in store.canonical_blocks(3, 6)] == [3, 4, 5, 6]
    assert store.headers_by_numbers([2, 50, 4]) == [recs[2].header, None, recs[4].header]
    assert store.complete_numbers(0, 20) == set(range(10))
    store.close()


def test_longest_run_is_the_run_a_server_announces(tmp_path: Path) -> None:
    """The longest run of consecutive stored blocks (of equally long ones, the highest), wherever it starts."""
    store = BlockStore(tmp_path / "s.db")
    assert store.longest_run() is None
    store.put_blocks([_rec(0)])
    assert store.longest_run() == (0, 0)
    store.put_blocks([_rec(3), _rec(8)])  # isolated blocks: the highest
    assert store.longest_run() == (8, 8)
    store.put_blocks([_rec(n) for n in range(10, 20)])  # 8 is now apart from 10..19
    assert store.longest_run() == (10, 19)
    store.put_blocks([_rec(n) for n in range(30, 40)])  # as long: the higher run
    assert store.longest_run() == (30, 39)
    store.put_blocks([_rec(9)])  # 8..19 is now the longest
    assert store.longest_run() == (8, 19)
    store.close()


def test_the_change_token_moves_with_every_write_from_any_connection(tmp_path: Path) -> None:
    """What a serving node checks before re-reading its range (a scan of the whole index): it stays put
    while nothing is written, and moves when this store or another process commits blocks."""
    path = tmp_path / "s.db"
    store = BlockStore(path)
    store.put_blocks([_rec(0)])
    token = store.change_token()
    assert store.change_token() == token
    store.body(_rec(0).hash)  # reading changes nothing
    assert store.change_token() == token
    store.put_blocks([_rec(1)])  # this connection
    assert store.change_token() != token
    token = store.change_token()
    with BlockStore(path) as other:  # another connection, as a fetch writing while serve reads
        other.put_blocks([_rec(2)])
    assert store.change_token() != token
    store.close()


def test_partial_data_is_merged_not_overwritten(tmp_path: Path) -> None:
    store = BlockStore(tmp_path / "s.db")
    r = _rec(5, body=None, receipts=None)
    store.put_blocks([r])
    assert store.complete_numbers(0, 10) == set()
    store.put_blocks([BlockRecord(r.number, r.hash, r.header, b"\xc2\xc0\xc0", None)])
    store.put_blocks([BlockRecord(r.number, r.hash, r.header, None, b"\xc0")])
    assert store.body(r.hash) == b"\xc2\xc0\xc0" and store.receipts(r.hash) == b"\xc0"
    assert store.complete_numbers(0, 10) == {5}


def test_genesis_mismatch_is_refused(tmp_path: Path) -> None:
    BlockStore(tmp_path / "s.db", genesis_hash=b"\x01" * 32).close()
    with pytest.raises(StoreError, match="holds the chain with genesis"):
        BlockStore(tmp_path / "s.db", genesis_hash=b"\x02" * 32)


def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot open store"):
        BlockStore(bad)


def test_failed_batch_leaves_nothing(tmp_path: Path) -> None:
    store = BlockStore(tmp_path / "s.db")
    good = _rec(1)
    bad = BlockRecord(2, b"\x02" * 32, None, None, None)  # type: ignore[arg-type]  # NOT NULL header
    with pytest.raises(sqlite3.IntegrityError):
        store.put_blocks([good, bad])
    assert store.count() == 0 and store.header_by_hash(good.hash) is None


_WRITER = """
import sys
from ethp2p.store.blocks import BlockStore, BlockRecord
from ethp2p.crypto.keccak import keccak
store = BlockStore(sys.argv[1])
n = 0
while True:
    batch = []
    for i in range(200):
        h = keccak(n.to_bytes(8, 'big'))
        batch.append(BlockRecord(n, h, b'\\xc1\\x01' + bytes(500), b'\\xc0' * 100, b'\\xc0'))
        n += 1
    store.put_blocks(batch)
    if n == 2000:
        print('ready', flush=True)
"""


def test_sigkill_mid_write_leaves_whole_batches(tmp_path: Path) -> None:
    db = tmp_path / "kill.db"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(db)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    proc.kill()
    proc.wait()
    store = BlockStore(db)
    count = store.count()
    assert count >= 2000 and count % 200 == 0
    lo, hi = store.block_range()  # type: ignore[misc]
    assert (lo, hi) == (0, count - 1)
    assert store.complete_numbers(0, hi) == set(range(count))
    assert os.path.exists(db)


def test_schema_1_store_is_migrated_on_open(tmp_path: Path) -> None:
    """A store written by schema 1 (one row per block) opens with everything readable."""
    path = tmp_path / "v1.db"
    con = sqlite3.connect(path)
    con.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);"
        "CREATE TABLE blocks (hash BLOB PRIMARY KEY, number INTEGER NOT NULL, header BLOB NOT NULL,"
        " body BLOB, receipts BLOB) WITHOUT ROWID;"
        "CREATE TABLE canonical (number INTEGER PRIMARY KEY, hash BLOB NOT NULL);"
    )
    recs = [_rec(0), _rec(1), _rec(2, body=None, receipts=None)]
    con.execute("INSERT INTO meta VALUES ('schema', ?)", (b"1",))
    con.execute("INSERT INTO meta VALUES ('genesis', ?)", (b"\x22" * 32,))
    for r in recs:
        con.execute("INSERT INTO blocks VALUES (?,?,?,?,?)", (r.hash, r.number, r.header, r.body, r.receipts))
        con.execute("INSERT INTO canonical VALUES (?,?)", (r.number, r.hash))
    con.commit()
    con.close()
    with BlockStore(path, genesis_hash=b"\x22" * 32) as store:
        got = list(store.canonical_blocks(0, 2))
        assert [(b.number, b.hash, b.header, b.body, b.receipts) for b in got] == [
            (r.number, r.hash, r.header, r.body, r.receipts) for r in recs
        ]
        assert store.complete_numbers(0, 2) == {0, 1}
        assert store.get_meta("schema") == b"3"
        # Nothing schema 1 stored was proven (its block 0 is not the genesis the meta names).
        assert store.proofs(0, 2) == {0: Proof.UNPROVEN, 1: Proof.UNPROVEN, 2: Proof.UNPROVEN}
    tables = {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "blocks" not in tables


def test_schema_2_store_is_migrated_with_every_block_unproven_but_the_genesis(tmp_path: Path) -> None:
    """Schema 2 recorded no proofs: its blocks open as unproven until re-linked; the genesis is its own checkpoint."""
    path = tmp_path / "v2.db"
    recs = [_rec(0), _rec(1), _rec(2)]
    con = sqlite3.connect(path)
    con.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);"
        "CREATE TABLE headers (hash BLOB PRIMARY KEY, number INTEGER NOT NULL, header BLOB NOT NULL) WITHOUT ROWID;"
        "CREATE TABLE bodies (hash BLOB PRIMARY KEY, body BLOB NOT NULL);"
        "CREATE TABLE receipts (hash BLOB PRIMARY KEY, receipts BLOB NOT NULL);"
        "CREATE TABLE canonical (number INTEGER PRIMARY KEY, hash BLOB NOT NULL);"
    )
    con.execute("INSERT INTO meta VALUES ('schema', ?)", (b"2",))
    con.execute("INSERT INTO meta VALUES ('genesis', ?)", (recs[0].hash,))
    for r in recs:
        con.execute("INSERT INTO headers VALUES (?,?,?)", (r.hash, r.number, r.header))
        con.execute("INSERT INTO bodies VALUES (?,?)", (r.hash, r.body))
        con.execute("INSERT INTO receipts VALUES (?,?)", (r.hash, r.receipts))
        con.execute("INSERT INTO canonical VALUES (?,?)", (r.number, r.hash))
    con.commit()
    con.close()
    with BlockStore(path, genesis_hash=recs[0].hash) as store:
        assert store.get_meta("schema") == b"3"
        assert store.proofs(0, 2) == {0: Proof.CHECKPOINT, 1: Proof.UNPROVEN, 2: Proof.UNPROVEN}
        assert store.complete_numbers(0, 2) == {0, 1, 2}
        assert store.complete_numbers(0, 2, proven=True) == {0}
        assert store.proof_counts() == {Proof.CHECKPOINT: 1, Proof.UNPROVEN: 2}
        assert store.set_proofs([(1, Proof.ACCUMULATOR), (2, Proof.PEER_AGREEMENT)]) == 2
        assert store.complete_numbers(0, 2, proven=True) == {0, 1, 2}
        assert store.proof(2) is Proof.PEER_AGREEMENT and store.proof(3) is None


def test_a_garbage_schema_value_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.db"
    with BlockStore(path):
        pass
    con = sqlite3.connect(path)
    con.execute("UPDATE meta SET value=? WHERE key='schema'", (b"\xff\x00garbage",))
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="unreadable schema"):
        BlockStore(path)


_RESIDENT = r"""
import ctypes, mmap, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long)
libc.mincore.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p)
libc.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
size = os.path.getsize(sys.argv[1])
fd = os.open(sys.argv[1], os.O_RDONLY)
addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
vec = (ctypes.c_ubyte * pages)()
assert libc.mincore(addr, size, vec) == 0, ctypes.get_errno()
libc.munmap(addr, size)
if len(sys.argv) > 2:  # resident share below and above a split offset
    cut = int(sys.argv[2]) // mmap.PAGESIZE
    print(sum(v & 1 for v in vec[:cut]) / cut, sum(v & 1 for v in vec[cut:]) / (pages - cut))
else:
    print(sum(v & 1 for v in vec) / pages)
"""


def _resident_fraction(path: Path) -> float:
    """Share of the file's pages in the page cache (mincore), measured by another process.

    Another process, because opening and closing a descriptor of the file here
    would drop the store's own POSIX locks.
    """
    out = subprocess.run([sys.executable, "-c", _RESIDENT, str(path)], capture_output=True, text=True, check=True)
    return float(out.stdout)


def _fill(store: BlockStore, megabytes: int) -> None:
    # Synthetic blocks of 1 MB: the store keeps bytes as given, and these tests are about the file.
    store._db.execute("PRAGMA wal_autocheckpoint=64")  # checkpoint every 2 MB, so the file fills early
    for n in range(1, megabytes + 1):
        rec = _rec(n, body=os.urandom(512 * 1024), receipts=os.urandom(512 * 1024))
        store.put_blocks([rec])


@pytest.mark.parametrize("drop", [True, False])
def test_written_history_leaves_the_page_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, drop: bool) -> None:
    import ethp2p.store.blocks as blocks

    monkeypatch.setattr(blocks, "DROP_CACHE_EVERY", 4 << 20)
    path = tmp_path / "s.db"
    store = BlockStore(path, drop_page_cache=drop)
    _fill(store, 48)
    resident = _resident_fraction(path)
    assert path.stat().st_size > 40 << 20
    if drop:
        # At most the pages written since the last advice (a few MB of 48) stay cached.
        assert resident < 0.35, resident
    else:
        assert resident > 0.8, resident
    assert [b.number for b in store.canonical_blocks(1, 48)] == list(range(1, 49))
    store.close()


def test_dropping_the_page_cache_opens_and_closes_no_descriptor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Closing any descriptor of the file would release SQLite's POSIX locks on it:
    # the advice must go through SQLite's own.
    import ethp2p.store.blocks as blocks

    calls: list[int] = []
    real = os.posix_fadvise
    monkeypatch.setattr(blocks, "DROP_CACHE_EVERY", 1 << 20)

    def fadvise(fd: int, offset: int, length: int, advice: int) -> None:
        calls.append(fd)
        real(fd, offset, length, advice)

    monkeypatch.setattr(os, "posix_fadvise", fadvise)
    store = BlockStore(tmp_path / "s.db")
    before = sorted(os.listdir("/proc/self/fd"))
    _fill(store, 4)
    assert sorted(os.listdir("/proc/self/fd")) == before
    assert calls and all(os.readlink(f"/proc/self/fd/{fd}") == str((tmp_path / "s.db").resolve()) for fd in calls)
    store.close()


def test_only_what_the_store_appends_leaves_the_page_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The file's older part (say, blocks a server on the same file reads) stays cached.
    import ethp2p.store.blocks as blocks

    monkeypatch.setattr(blocks, "DROP_CACHE_EVERY", 4 << 20)
    path = tmp_path / "s.db"
    store = BlockStore(path, drop_page_cache=False)
    _fill(store, 24)
    store.close()
    old_size = path.stat().st_size
    with open(path, "rb") as f:  # read it all back into the page cache (no store is open)
        while f.read(1 << 20):
            pass
    store = BlockStore(path)
    store._db.execute("PRAGMA wal_autocheckpoint=64")
    for n in range(100, 124):
        store.put_blocks([_rec(n, body=os.urandom(512 * 1024), receipts=os.urandom(512 * 1024))])
    out = subprocess.run(
        [sys.executable, "-c", _RESIDENT, str(path), str(old_size)], capture_output=True, text=True, check=True
    )
    old_part, new_part = (float(x) for x in out.stdout.split())
    assert path.stat().st_size > old_size + (16 << 20)
    assert old_part > 0.9 and new_part < 0.35, (old_part, new_part)
    store.close()


def test_a_relative_store_path_still_drops_after_a_chdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ethp2p.store.blocks as blocks

    monkeypatch.setattr(blocks, "DROP_CACHE_EVERY", 4 << 20)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path)
    store = BlockStore("s.db")
    monkeypatch.chdir(tmp_path / "elsewhere")
    _fill(store, 24)
    assert store._drop_page_cache
    assert _resident_fraction(tmp_path / "s.db") < 0.35
    store.close()
