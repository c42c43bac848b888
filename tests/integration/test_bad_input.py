"""Bad command lines and damaged files, through the real ``ethp2p`` command: each is refused with exit
status 2 and one ``error:`` line naming the problem, never a traceback, and before any network.

(The first cases of this kind are in test_cli.py's table, ``--metrics`` ones in test_metrics.py.)
Each damaged store here is a copy of geth's test chain store (blocks 0..600), damaged one way.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.servers import ETHTEST_GENESIS, ethtest_store

#: 2^63, the first block number a store cannot hold.
TOO_BIG = str(2**63)
HASH = "0x" + "11" * 32
#: A valid node key's enode (the README's first test key); its port is closed.
ENODE = (
    "enode://4f355bdcb7cc0af728ef3cceb9615d90684bb5b2ca5f859ab0f0b704075871aa385b6b1b8ead809ca67454d9683fcf2ba0"
    "3456d6fe2c4abe2b07f0fbdbb2f1c1@127.0.0.1:1"
)
#: Options that keep a peer-network command off every network but loopback (it fails before dialing anyway).
OFFLINE = ["--no-discovery", "--dns", "", "--bootnodes", ""]
GENESIS = ["--genesis", str(ETHTEST_GENESIS)]


def _sql(*statements: str) -> Callable[[Path], None]:
    """A damage: run SQL statements on the store copy."""

    def damage(path: Path) -> None:
        con = sqlite3.connect(path)
        for st in statements:
            con.execute(st)
        con.commit()
        con.close()

    return damage


def _truncate(path: Path) -> None:
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)


def _random(path: Path) -> None:
    path.write_bytes(os.urandom(64 * 1024))


DAMAGES: dict[str, Callable[[Path], None]] = {
    "schema-text": _sql("UPDATE meta SET value='zz' WHERE key='schema'"),
    "schema-blob": _sql("UPDATE meta SET value=x'ff00' WHERE key='schema'"),
    "schema-int": _sql("UPDATE meta SET value=12345 WHERE key='schema'"),
    "schema-future": _sql("UPDATE meta SET value=CAST('7' AS BLOB) WHERE key='schema'"),
    "genesis-short": _sql("UPDATE meta SET value=x'00ff' WHERE key='genesis'"),
    "truncated": _truncate,
    "random": _random,
    **{f"no-{t}": _sql(f"DROP TABLE {t}") for t in ("headers", "bodies", "receipts", "canonical", "meta")},
}

CASES = [
    # Block numbers of 2^63 and above, wherever a block number is given.
    (["head", *OFFLINE, "--checkpoint", f"{TOO_BIG}:{HASH}"], None, "block number above 9223372036854775807"),
    (["fetch", "1..2", "--store", "{tmp}/f.db", "--checkpoint", f"{TOO_BIG}:{HASH}"], None, "block number above"),
    (["verify", "--store", "{store}", "--checkpoint", f"{TOO_BIG}:{HASH}"], None, "block number above"),
    (["verify", f"0..{TOO_BIG}", "--store", "{store}"], None, "block numbers go up to 9,223,372,036,854,775,807"),
    (["export", f"1..{TOO_BIG}", "--store", "{store}", "--out", "{tmp}/x"], None, "(2^63 - 1)"),
    (["fetch", f"{TOO_BIG}..{TOO_BIG}", "--store", "{tmp}/f.db"], None, "(2^63 - 1)"),
    (
        ["serve", "--store", "{store}", *GENESIS, "--port", "0", "--misbehave", "fork", "--fork-block", TOO_BIG],
        None,
        f"fork block {TOO_BIG} must be above the first stored block",
    ),
    # Waits: negative, zero or NaN seconds.
    (
        ["fetch", "1..2", "--store", "{tmp}/f.db", "--warmup", "-1"],
        None,
        "--warmup: -1 is out of range (0..600 seconds)",
    ),
    (["fetch", "1..2", "--store", "{tmp}/f.db", "--warmup", "nan"], None, "--warmup: nan is out of range"),
    (["fetch", "1..2", "--store", "{tmp}/f.db", "--timeout", "0"], None, "--timeout: 0 is out of range (more than 0"),
    (["fetch", "1..2", "--store", "{tmp}/f.db", "--stall-timeout", "nan"], None, "--stall-timeout: nan is out of"),
    (["probe", "--timeout", "-1", ENODE], None, "--timeout: -1 is out of range"),
    (["peers", *OFFLINE, "--interval", "0"], None, "--interval: 0 is out of range"),
    (["peers", *OFFLINE, "--rounds", "0"], None, "--rounds: must be at least 1, not 0"),
    (["demo", "--servers", "0", "--workdir", "{tmp}/demo"], None, "--servers: 0 is out of range (1..16)"),
    # Peer agreement that can never be met (at most 16 peers are ever asked), or a prefix no address has.
    (["head", *OFFLINE, "--agreement-peers", "17"], None, "--agreement-peers: 17 can never be met: at most 16"),
    (["fetch", "1..2", "--store", "{tmp}/f.db", "--agreement-peers", "1000"], None, "1000 can never be met"),
    (["head", *OFFLINE, "--agreement-peers", "0"], None, "--agreement-peers: must be at least 1"),
    (["head", *OFFLINE, "--agreement-prefix", "33"], None, "--agreement-prefix: 33 is out of range (0..32)"),
    (
        ["serve", "--store", "{store}", *GENESIS, "--sessions-per-address", "0"],
        None,
        "--sessions-per-address: 0 is out",
    ),
    (["serve", "--store", "{store}", *GENESIS, "--handshakes-per-address", "x"], None, "not a whole number: 'x'"),
    # Damaged stores, for each command that opens one.
    (["export", "--store", "{store}", "--out", "{tmp}/x"], "schema-text", "unreadable schema version 'zz'"),
    (["export", "--store", "{store}", "--out", "{tmp}/x"], "schema-blob", "unreadable schema version"),
    (["export", "--store", "{store}", "--out", "{tmp}/x"], "schema-int", "unreadable schema version 12345"),
    (["export", "--store", "{store}", "--out", "{tmp}/x"], "schema-future", "has schema 7, this ethp2p reads 3"),
    (["verify", "--store", "{store}"], "schema-text", "unreadable schema version 'zz'"),
    (["verify", "--store", "{store}"], "schema-future", "has schema 7, this ethp2p needs 3"),
    (["serve", "--store", "{store}", "--port", "0", *GENESIS], "schema-blob", "unreadable schema version"),
    (["fetch", "1..2", "--store", "{store}", *GENESIS, *OFFLINE], "schema-int", "unreadable schema version"),
    (["import", "--store", "{store}", *GENESIS, "{chain}"], "schema-text", "unreadable schema version"),
    (["export", "--store", "{store}", "--out", "{tmp}/x"], "genesis-short", "genesis hash b'\\x00\\xff' is not 32"),
    (["verify", "--store", "{store}"], "genesis-short", "is not 32 bytes"),
    (["export", "--store", "{store}", "--out", "{tmp}/x"], "truncated", "database disk image is malformed"),
    (["verify", "--store", "{store}"], "truncated", "database disk image is malformed"),
    (["export", "--store", "{store}", "--out", "{tmp}/x"], "random", "file is not a database"),
    (["serve", "--store", "{store}", "--port", "0", *GENESIS], "random", "file is not a database"),
    (["head", *OFFLINE, "--store", "{store}"], "random", "cannot open the peer cache in"),
    (["peers", *OFFLINE, "--store", "{store}"], "truncated", "cannot open the peer cache in"),
    *[
        (["export", "--store", "{store}", "--out", "{tmp}/x"], f"no-{t}", f"damaged: table(s) {t} missing")
        for t in ("headers", "bodies", "receipts", "canonical")
    ],
    (["export", "--store", "{store}", "--out", "{tmp}/x"], "no-meta", "is not an ethp2p block store"),
    # A writing open must not re-create a dropped table empty (the store would then pass for sound).
    (["verify", "--store", "{store}"], "no-canonical", "damaged: table(s) canonical missing"),
    (["verify", "--store", "{store}"], "no-meta", "damaged: table(s) meta missing"),
    (["serve", "--store", "{store}", "--port", "0", *GENESIS], "no-bodies", "damaged: table(s) bodies missing"),
    (["import", "--store", "{store}", *GENESIS, "{chain}"], "no-headers", "damaged: table(s) headers missing"),
]


@pytest.fixture(scope="module")
def sound_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ethtest_store(tmp_path_factory.mktemp("ethtest") / "e.db")


@pytest.mark.parametrize(
    ("args", "damage", "says"), CASES, ids=[f"{' '.join(a[:1])}-{d or ''}-{s[:30]}" for a, d, s in CASES]
)
def test_bad_input_is_one_line_error(
    tmp_path: Path, sound_store: Path, args: list[str], damage: str | None, says: str
) -> None:
    store = tmp_path / "s.db"
    shutil.copy(sound_store, store)
    if damage is not None:
        DAMAGES[damage](store)
    chain = ETHTEST_GENESIS.parent / "chain.rlp"
    argv = [a.format(tmp=tmp_path, store=store, chain=chain) for a in args]
    r = subprocess.run(
        [sys.executable, "-m", "ethp2p.cli", *argv], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and says in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()  # (argparse prints its usage before the error line)
    assert [line for line in lines if "error:" in line] == [lines[-1]], r.stderr
    if damage is not None and damage.startswith("no-") and args[0] != "export":
        table = damage.removeprefix("no-")
        con = sqlite3.connect(store)
        names = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        con.close()
        assert table not in names  # left as found, not re-created empty


def test_a_store_with_a_junk_user_version_still_reads(tmp_path: Path, sound_store: Path) -> None:
    """``PRAGMA user_version`` is SQLite's, not ethp2p's (the schema is in the meta table): junk there is
    no damage, and the store reads as before."""
    store = tmp_path / "s.db"
    shutil.copy(sound_store, store)
    _sql("PRAGMA user_version=-77")(store)
    from ethp2p.store.blocks import BlockStore

    with BlockStore(store, readonly=True) as s:
        assert s.count() == 601
    with BlockStore(store) as s:
        assert s.block_range() == (0, 600)
