"""SIGKILL during an import leaves a consistent store, and re-running completes the import."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from ethp2p.crypto.keccak import keccak
from tests.support.stores import ERA1_FILES


def _count(db: Path) -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.1)
        try:
            return int(con.execute("SELECT COUNT(*) FROM canonical").fetchone()[0])
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def _check_consistent(db: Path) -> int:
    con = sqlite3.connect(db)
    rows = con.execute(
        "SELECT c.number, c.hash, h.number, h.header, b.body, r.receipts FROM canonical c "
        "LEFT JOIN headers h ON h.hash = c.hash LEFT JOIN bodies b ON b.hash = c.hash "
        "LEFT JOIN receipts r ON r.hash = c.hash"
    ).fetchall()
    con.close()
    for number, h, bnum, header, body, receipts in rows:
        assert bnum == number, f"canonical {number} points at a missing or different block"
        assert keccak(header) == h
        assert body is not None and receipts is not None, f"block {number} visible without its body/receipts"
    return len(rows)


def test_sigkill_mid_import_then_resume(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    args = [sys.executable, "-m", "ethp2p.cli", "import", "--store", str(db), *map(str, ERA1_FILES)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    killed_at = None
    while time.monotonic() < deadline and proc.poll() is None:
        n = _count(db)
        if 2000 < n < 16384:
            proc.send_signal(signal.SIGKILL)
            killed_at = n
            break
        time.sleep(0.005)
    proc.wait()
    assert killed_at is not None, "the import finished before it could be killed"
    before = _check_consistent(db)
    assert 0 < before < 16384
    r = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert _check_consistent(db) == 16384
