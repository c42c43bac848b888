"""`ethp2p verify` and `ethp2p import` on the command line: summaries, exit codes, one-line errors."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from ethp2p.chain.body import EMPTY_BODY, EMPTY_BODY_WITH_WITHDRAWALS
from tests.support.forks import era1_blocks, write_fork_chain_file
from tests.support.servers import ETHTEST_GENESIS, ethtest_store
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


def test_a_shanghai_genesis_is_stored_with_the_body_its_header_calls_for(tmp_path: Path) -> None:
    """geth's test chain starts at Shanghai: its genesis header has a withdrawals root, so its empty body
    is ``[[], [], []]``. ``verify`` finds no problem in a store of it and keeps the genesis checkpoint;
    a store written with the old ``[[], []]`` genesis body is mended by the next ``import``.
    (Before the fix ``verify`` reported "block 0: withdrawals present in body and header disagree" and
    downgraded the genesis to unproven.)"""
    store = tmp_path / "s.db"
    chain = ETHTEST_GENESIS.parent / "chain.rlp"
    r = _cli("import", "--store", str(store), "--genesis", str(ETHTEST_GENESIS), str(chain))
    assert r.returncode == 0, r.stderr
    r = _cli("verify", "--store", str(store))
    assert "checked 601 blocks in 0..600: 0 problem(s)" in r.stdout, r.stdout
    assert "1 checkpoint, 600 unanchored" in r.stdout and "downgraded" not in r.stdout.replace("0 downgraded", "")
    con = sqlite3.connect(store)
    (genesis,) = con.execute("SELECT hash FROM canonical WHERE number=0").fetchone()
    assert con.execute("SELECT body FROM bodies WHERE hash=?", (genesis,)).fetchone() == (EMPTY_BODY_WITH_WITHDRAWALS,)
    # The old genesis body, as stores written before the fix hold it.
    con.execute("UPDATE bodies SET body=? WHERE hash=?", (EMPTY_BODY, genesis))
    con.commit()
    r = _cli("verify", "--store", str(store), "--dry-run", "0..0")
    assert r.returncode == 1 and "block 0: body: block 0: withdrawals present in body and header disagree" in r.stdout
    r = _cli("import", "--store", str(store), "--genesis", str(ETHTEST_GENESIS), str(chain))
    assert r.returncode == 0, r.stderr
    assert con.execute("SELECT body FROM bodies WHERE hash=?", (genesis,)).fetchone() == (EMPTY_BODY_WITH_WITHDRAWALS,)
    con.close()
    r = _cli("verify", "--store", str(store))
    assert r.returncode == 0 and "0 problem(s)" in r.stdout, r.stdout


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path: Path) -> None:
    """``ethp2p verify | head``: when what reads standard output has closed it, the command stops with
    the status of a process killed by SIGPIPE (141) and no traceback, whether the write fails while it
    runs or at its final flush, and ``serve`` does not take it for a listening error. (Before: a
    BrokenPipeError traceback, or "Exception ignored" and 120; serve: "cannot listen on ...".)"""
    store = ethtest_store(tmp_path / "e.db")
    serve = ["serve", "--store", str(store), "--genesis", str(ETHTEST_GENESIS), "--port", "0"]
    for args in (["verify", "--store", str(store)], ["verify", "--help"], serve):
        read_end, write_end = os.pipe()
        os.close(read_end)  # the reader is gone before the first write
        try:
            r = subprocess.run(
                [sys.executable, "-m", "ethp2p.cli", *args],
                stdout=write_end,
                stderr=subprocess.PIPE,
                text=True,
                timeout=120,
            )
        finally:
            os.close(write_end)
        # (``--help`` ends through argparse's own exit, whose status is 0 there.)
        assert r.returncode == (0 if "--help" in args else 141), (args, r.returncode, r.stderr)
        assert "Traceback" not in r.stderr and "Exception ignored" not in r.stderr, r.stderr
        assert "error" not in r.stderr, r.stderr  # (serve said "cannot listen on ...: Broken pipe")
