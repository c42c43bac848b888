"""ethp2p export: Parquet (read back with DuckDB) and JSON Lines, checked against the stored receipts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ethp2p import rlp
from tests.conftest import load_vector

DERIVED = {int(b["number"]): b for b in load_vector("mainnet/derived/mainnet_blocks.json")["blocks"]}
ALL_TYPES = 22869878


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ethp2p.cli", *args], capture_output=True, text=True, timeout=300)


def test_parquet_export_read_back_with_duckdb(mainnet_store_path: Path, tmp_path: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    out = tmp_path / "pq"
    r = _cli("export", "--store", str(mainnet_store_path), "--format", "parquet", "--out", str(out), f"{ALL_TYPES}..{ALL_TYPES}")
    assert r.returncode == 0, r.stderr
    b = DERIVED[ALL_TYPES]
    con = duckdb.connect()
    blocks = con.execute(f"SELECT number, hash, transaction_count FROM '{out}/blocks.parquet'").fetchall()
    assert blocks == [(ALL_TYPES, "0x" + b["hash"], b["tx_count"] if isinstance(b["tx_count"], int) else int(b["tx_count"]))]
    types = dict(con.execute(f"SELECT type, count(*) FROM '{out}/transactions.parquet' GROUP BY type").fetchall())
    assert set(types) == {0, 1, 2, 3, 4}
    receipts = rlp.split_list(bytes.fromhex(b["receipts_eth69_rlp"]))
    n_logs = sum(len(rlp.split_list(rlp.split_list(x)[3])) for x in receipts)
    assert con.execute(f"SELECT count(*) FROM '{out}/logs.parquet'").fetchone()[0] == n_logs
    # Every transaction has a recovered sender and gas used adds up to the header's.
    missing_from, gas = con.execute(
        f"SELECT count(*) FILTER (WHERE from_address IS NULL), sum(gas_used) FROM '{out}/transactions.parquet'"
    ).fetchone()
    assert missing_from == 0
    header_gas = con.execute(f"SELECT gas_used FROM '{out}/blocks.parquet'").fetchone()[0]
    assert gas == header_gas


def test_jsonl_export_matches_rpc_view(mainnet_store_path: Path, tmp_path: Path) -> None:
    rpc = json.loads((Path(__file__).parents[1] / "vectors/mainnet/jsonrpc_blocks/nimbus-Prague.json").read_text())
    n = int(rpc["number"], 16)
    out = tmp_path / "jl"
    r = _cli("export", "--store", str(mainnet_store_path), "--format", "jsonl", "--out", str(out), f"{n}..{n}")
    assert r.returncode == 0, r.stderr
    txs = [json.loads(line) for line in (out / "transactions.jsonl").read_text().splitlines()]
    assert len(txs) == len(rpc["transactions"]) > 0
    for got, want in zip(txs, rpc["transactions"]):
        assert got["hash"] == want["hash"] and got["from_address"] == want["from"].lower()
        assert got["nonce"] == int(want["nonce"], 16) and got["value"] == str(int(want["value"], 16))
        assert got["to_address"] == (want["to"].lower() if want.get("to") else None)


def test_export_errors_are_clear(tmp_path: Path) -> None:
    r = _cli("export", "--store", str(tmp_path / "none.db"), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "store not found" in r.stderr
    r = _cli("export", "--store", str(tmp_path / "none.db"), "--out", str(tmp_path / "o"), "5..1")
    assert r.returncode == 2 and "bad range" in r.stderr
