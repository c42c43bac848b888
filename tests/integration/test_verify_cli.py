"""`ethp2p verify` and `ethp2p import` on the command line: summaries, exit codes, one-line errors."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.support.forks import era1_blocks, write_fork_chain_file
from tests.support.stores import ERA1_FILES


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ethp2p.cli", *args], capture_output=True, text=True, timeout=120)


def test_import_says_how_blocks_are_proven_and_verify_finds_problems(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    r = _cli("import", *map(str, ERA1_FILES), "--store", str(store))
    assert r.returncode == 0, r.stderr
    assert "8192 era1 blocks (0..8191): 1 checkpoint, 8,191 accumulator (epoch 0)" in r.stdout, r.stdout
    assert "8,192 accumulator (epoch 1)" in r.stdout
    # A chain file of a fork that crosses checkpoint 10,965 is refused, naming the block, by a store
    # holding nothing but the genesis; and by this one, whose proven blocks it contradicts from 9,000 on.
    fork = tmp_path / "fork.rlp"
    write_fork_chain_file(fork, list(era1_blocks()), 9_000, 12_000)
    r = _cli("import", str(fork), "--store", str(tmp_path / "fresh.db"))
    assert r.returncode == 2 and "block 10,965 has hash" in r.stderr and "checkpoint #10,965" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    r = _cli("import", str(fork), "--store", str(store))
    assert r.returncode == 2 and "block 9,000 has hash" in r.stderr and "proven by accumulator" in r.stderr
    r = _cli("verify", "--store", str(store))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "checked 16,384 blocks in 0..16,383: 0 problem(s)" in r.stdout and "16,383 accumulator" in r.stdout
    # Point block 100's canonical entry at a header that is not there: found, named, exit 1.
    con = sqlite3.connect(store)
    con.execute("UPDATE canonical SET hash=? WHERE number=100", (b"\x01" * 32,))
    con.commit()
    con.close()
    r = _cli("verify", "--store", str(store), "0..200")
    assert r.returncode == 1 and "block 100: hash:" in r.stdout, r.stdout
    r = _cli("verify", "--store", str(tmp_path / "none.db"))
    assert r.returncode == 2 and "store not found" in r.stderr
    r = _cli("verify", "--store", str(store), "9..1")
    assert r.returncode == 2 and "bad range" in r.stderr
    r = _cli("verify", "--store", str(store), "--checkpoint", "10965:0x" + "11" * 32)
    assert r.returncode == 2 and "contradicts" in r.stderr
