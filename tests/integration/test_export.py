"""ethp2p export: the fixed schema, chunked and resumable files, values against JSON-RPC dumps.

The store is real mainnet data: blocks 0-16,383 (era1) and the isolated derived blocks from
Frontier to Prague (``tests/vectors/mainnet/derived``), so it spans pre- and post-London blocks.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from ethp2p import rlp
from ethp2p.export import TABLES, ExportOptions, arrow_schema, parse_file_name, plan_export, run_export
from ethp2p.store.blocks import BlockStore
from tests.conftest import VECTORS, load_vector

DERIVED = {int(b["number"]): b for b in load_vector("mainnet/derived/mainnet_blocks.json")["blocks"]}
ALL_TYPES = 22869878
LONDON = 12_965_000
GOLDEN = Path(__file__).parents[1] / "golden/export_schema.txt"
RPC_BLOCKS = sorted((VECTORS / "mainnet/jsonrpc_blocks").glob("*.json"))


def _sql(query: str) -> duckdb.DuckDBPyRelation:
    """``duckdb.sql`` for a query that has a result (typed as such)."""
    rel = duckdb.sql(query)
    assert rel is not None, query
    return rel


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ethp2p.cli", *args], capture_output=True, text=True, timeout=300)


def _golden() -> dict[str, str]:
    """``{"blocks (binary)": schema text, ...}`` from the golden file."""
    out: dict[str, str] = {}
    key = None
    for line in GOLDEN.read_text().splitlines():
        if line.startswith("== "):
            key = line[3:]
            out[key] = ""
        elif key is not None and line:
            out[key] += line + "\n"
    return out


def _schema_text(schema) -> str:
    return schema.to_string(show_schema_metadata=False) + "\n"


def _expected_counts(store_path: Path, start: int, end: int) -> dict[str, int]:
    """Rows each table must have, counted from the raw stored RLP (not through the exporter)."""
    from ethp2p.chain.body import BlockBody

    n = {t: 0 for t in TABLES}
    with BlockStore(store_path, readonly=True) as st:
        for e in st.canonical_entries(start, end, data=True):
            if e.body is None or e.receipts is None:
                continue  # not exported: a block is exported with its body and receipts
            body = BlockBody.decode(e.body)
            n["blocks"] += 1
            n["transactions"] += len(body.transactions)
            n["receipts"] += len(body.transactions)
            n["ommers"] += len(body.ommers())
            n["withdrawals"] += len(body.withdrawals or [])
            n["logs"] += sum(len(rlp.split_list(rlp.split_list(r)[3])) for r in rlp.split_list(e.receipts))
    return n


def test_the_schema_is_the_golden_one() -> None:
    golden = _golden()
    assert set(golden) == {f"{t} ({m})" for t in TABLES for m in ("binary", "hex")}
    for t, cols in TABLES.items():
        assert _schema_text(arrow_schema(cols)) == golden[f"{t} (binary)"], t
        assert _schema_text(arrow_schema(cols, hex=True)) == golden[f"{t} (hex)"], t


def test_pre_and_post_london_chunks_read_as_one_dataset(mainnet_store_path: Path, tmp_path: Path) -> None:
    """Chunks of 1,000,000 blocks put the era1 history and the Frontier..Berlin blocks in chunks
    where every base fee (and chain id, withdrawal, topic3...) is null, and the later blocks in
    chunks where they are not; every file has the golden schema and DuckDB reads each table's
    files as one dataset with the row counts the store holds."""
    out = tmp_path / "pq"
    r = _cli(
        "export", "--store", str(mainnet_store_path), "--out", str(out), "--chunk-size", "1000000", "--allow-missing"
    )
    assert r.returncode == 0, r.stderr
    unanchored = _sql(f"SELECT count(*) FROM '{out}/*__blocks__*.parquet' WHERE proof = 'unanchored'").fetchall()[0][0]
    assert "not exported, missing from the store" in r.stdout, r.stdout
    assert (
        unanchored > 50
        and f"not proven canonical: {unanchored:,} exported blocks ({unanchored:,} unanchored)" in r.stdout
    )
    golden = _golden()
    files = sorted(out.glob("*.parquet"))
    pieces: dict[str, set] = {t: set() for t in TABLES}
    for f in files:
        parsed = parse_file_name(f.name)
        assert parsed is not None and parsed.network == "mainnet", f.name
        assert _schema_text(pq.read_schema(f)) == golden[f"{parsed.table} (binary)"], f.name
        assert parsed.chunk.start // 1_000_000 == parsed.chunk.end // 1_000_000  # inside one chunk
        pieces[parsed.table].add(parsed.chunk)
    # Every piece has every table, even where it is empty; a piece is a run of stored blocks.
    assert all(p == pieces["blocks"] for p in pieces.values()) and len(pieces["blocks"]) > 10
    con = duckdb.connect()
    want = _expected_counts(mainnet_store_path, 0, ALL_TYPES)
    for t in TABLES:
        got = con.execute(f"SELECT count(*) FROM '{out}/mainnet__{t}__*.parquet'").fetchall()[0][0]
        assert got == want[t], t
    pre = f"{out}/mainnet__blocks__00000000000_to_00000016383.parquet"  # the era1 history, one piece
    post = f"{out}/mainnet__blocks__00022*.parquet"
    assert con.execute(f"SELECT count(base_fee_per_gas), count(*) FROM '{pre}'").fetchall()[0] == (0, 16_384)
    assert con.execute(f"SELECT count(*) = count(base_fee_per_gas), count(*) > 2 FROM '{post}'").fetchall()[0] == (
        True,
        True,
    )
    # One typed column across all of them: the base fee summed over the post-London blocks.
    total = con.execute(
        f"SELECT sum(base_fee_per_gas), typeof(any_value(base_fee_per_gas)) "
        f"FROM '{out}/mainnet__blocks__*.parquet' WHERE number >= {LONDON}"
    ).fetchall()[0]
    from ethp2p.chain.header import Header

    with BlockStore(mainnet_store_path, readonly=True) as st:
        fees = [
            Header(e.header).base_fee
            for e in st.canonical_entries(LONDON, ALL_TYPES, data=True)
            if e.header is not None and e.body is not None and e.receipts is not None
        ]
    assert len(fees) > 10 and total == (sum(fees), "UBIGINT")  # type: ignore[arg-type]
    types = dict(
        con.execute(f"SELECT type, count(*) FROM '{out}/mainnet__transactions__*.parquet' GROUP BY type").fetchall()
    )
    assert set(types) == {0, 1, 2, 3, 4}
    # Gas used per transaction adds up to each block's.
    bad = con.execute(
        f"SELECT b.number FROM '{out}/mainnet__blocks__*.parquet' b JOIN "
        f"(SELECT block_number, sum(gas_used) g FROM '{out}/mainnet__receipts__*.parquet' GROUP BY 1) r "
        f"ON r.block_number = b.number WHERE r.g <> b.gas_used"
    ).fetchall()
    assert bad == []


def _rpc_int(v: str | None) -> int | None:
    return None if v is None else int(v, 16)


def test_values_match_json_rpc_dumps(mainnet_store_path: Path) -> None:
    """Every block, transaction and receipt field the JSON-RPC dumps of the same blocks carry."""
    import ethp2p

    checked = {"blocks": 0, "transactions": 0, "receipts": 0}
    with ethp2p.open_store(mainnet_store_path) as h:
        for path in RPC_BLOCKS:
            rpc = json.loads(path.read_text())
            if isinstance(rpc, dict) and "result" in rpc:
                rpc = rpc["result"]
            if (
                not isinstance(rpc, dict)
                or "number" not in rpc
                or not all(isinstance(t, dict) for t in rpc["transactions"])
            ):
                continue  # a dump of another shape (a list of blocks, hashes only)
            n = int(rpc["number"], 16)
            blocks = list(h.blocks(n, n))
            if not blocks:
                continue
            b = blocks[0]
            assert "0x" + b.hash.hex() == rpc["hash"] and "0x" + b.miner.hex() == rpc["miner"]
            assert b.size == int(rpc["size"], 16), n
            assert (b.gas_used, b.gas_limit, b.timestamp) == tuple(
                int(rpc[k], 16) for k in ("gasUsed", "gasLimit", "timestamp")
            )
            assert b.base_fee_per_gas == _rpc_int(rpc.get("baseFeePerGas"))
            assert b.difficulty == int(rpc["difficulty"], 16) and "0x" + b.nonce.hex() == rpc["nonce"]
            assert "0x" + b.logs_bloom.hex() == rpc["logsBloom"] and "0x" + b.mix_hash.hex() == rpc["mixHash"]
            assert b.transaction_count == len(rpc["transactions"]) and b.ommer_count == len(rpc["uncles"])
            if "withdrawals" in rpc:
                ws = list(h.withdrawals(n, n))
                assert [(w.index, w.validator_index, "0x" + w.address.hex(), w.amount_gwei) for w in ws] == [
                    (int(w["index"], 16), int(w["validatorIndex"], 16), w["address"], int(w["amount"], 16))
                    for w in rpc["withdrawals"]
                ]
            checked["blocks"] += 1
            for got, want in zip(h.transactions(n, n), rpc["transactions"], strict=True):
                assert got.from_address is not None  # the store has the senders of these blocks
                assert "0x" + got.hash.hex() == want["hash"] and "0x" + got.from_address.hex() == want["from"]
                assert got.to_address == (bytes.fromhex(want["to"][2:]) if want.get("to") else None)
                assert (got.nonce, got.value, got.gas_limit, got.type) == (
                    int(want["nonce"], 16),
                    int(want["value"], 16),
                    int(want["gas"], 16),
                    int(want.get("type", "0x0"), 16),
                )
                assert "0x" + got.input.hex() == want["input"]
                assert (got.v, int.from_bytes(got.r, "big"), int.from_bytes(got.s, "big")) == (
                    int(want["v"], 16),
                    int(want["r"], 16),
                    int(want["s"], 16),
                )
                assert got.y_parity == (
                    int(want["yParity"], 16)
                    if "yParity" in want
                    else (got.v - 27 if got.v in (27, 28) else (got.v - 35) % 2)
                )
                if got.type in (0, 1):
                    assert got.gas_price == int(want["gasPrice"], 16)
                else:
                    assert got.max_fee_per_gas == int(want["maxFeePerGas"], 16)
                    assert got.max_priority_fee_per_gas == int(want["maxPriorityFeePerGas"], 16)
                if got.type == 0:  # the dump leaves chainId out of legacy transactions: it is in v (EIP-155)
                    v = int(want["v"], 16)
                    assert got.chain_id == (None if v in (27, 28) else (v - 35) // 2)
                else:
                    assert got.chain_id == int(want["chainId"], 16)
                checked["transactions"] += 1
    rpc_receipts = json.loads((VECTORS / "mainnet/jsonrpc_receipts/trin-receipts-15573637.json").read_text())["result"]
    with ethp2p.open_store(mainnet_store_path) as h:
        got_logs = list(h.logs(15573637, 15573637))
        for rec, want in zip(h.receipts(15573637, 15573637), rpc_receipts, strict=True):
            assert "0x" + rec.transaction_hash.hex() == want["transactionHash"]
            assert (rec.status, rec.gas_used, rec.cumulative_gas_used, rec.effective_gas_price) == (
                int(want["status"], 16),
                int(want["gasUsed"], 16),
                int(want["cumulativeGasUsed"], 16),
                int(want["effectiveGasPrice"], 16),
            )
            assert rec.contract_address == (
                bytes.fromhex(want["contractAddress"][2:]) if want["contractAddress"] else None
            )
            assert rec.log_count == len(want["logs"])
            checked["receipts"] += 1
    want_logs = [lg for r in rpc_receipts for lg in r["logs"]]
    assert [
        (
            "0x" + lg.address.hex(),
            lg.log_index,
            ["0x" + t.hex() for t in (lg.topic0, lg.topic1, lg.topic2, lg.topic3) if t],
            "0x" + lg.data.hex(),
        )
        for lg in got_logs
    ] == [(w["address"], int(w["logIndex"], 16), w["topics"], w["data"]) for w in want_logs]
    assert checked["blocks"] >= 7 and checked["transactions"] > 500 and checked["receipts"] == len(rpc_receipts)


def test_jsonl_matches_rpc_view(mainnet_store_path: Path, tmp_path: Path) -> None:
    rpc = json.loads((VECTORS / "mainnet/jsonrpc_blocks/nimbus-Prague.json").read_text())
    n = int(rpc["number"], 16)
    out = tmp_path / "jl"
    r = _cli("export", "--store", str(mainnet_store_path), "--format", "jsonl", "--out", str(out), f"{n}..{n}")
    assert r.returncode == 0, r.stderr
    files = {parse_file_name(p.name).table: p for p in out.glob("*.jsonl")}  # type: ignore[union-attr]
    assert set(files) == set(TABLES)  # empty tables are files too, as in Parquet
    txs = [json.loads(line) for line in files["transactions"].read_text().splitlines()]
    assert len(txs) == len(rpc["transactions"]) > 0
    for got, want in zip(txs, rpc["transactions"], strict=True):
        assert got["hash"] == want["hash"] and got["from_address"] == want["from"].lower()
        assert got["nonce"] == int(want["nonce"], 16) and got["value"] == str(int(want["value"], 16))
        assert got["to_address"] == (want["to"].lower() if want.get("to") else None)


def _dataset(out: Path) -> dict[str, tuple[int, int]]:
    """(rows, a checksum of every row) per table, read back with DuckDB."""
    con = duckdb.connect()
    return {
        t: con.execute(
            f"SELECT count(*), coalesce(sum(hash(COLUMNS(*))), 0) FROM '{out}/*__{t}__*.parquet'"
        ).fetchall()[0]
        for t in TABLES
    }


def test_interrupted_export_resumes_without_half_written_chunks(mainnet_store_path: Path, tmp_path: Path) -> None:
    """SIGKILL an export mid-way: every chunk file present is complete; the rerun skips them,
    writes the rest, and the result equals an uninterrupted export."""
    clean = tmp_path / "clean"
    args = ["export", "0..16383", "--store", str(mainnet_store_path), "--chunk-size", "100", "--jobs", "1"]
    assert _cli(*args, "--out", str(clean)).returncode == 0
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ethp2p.cli", *args, "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(out.glob("*.parquet"))) < 60:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = sorted(out.glob("*.parquet"))
    assert 60 <= len(done) < 164 * len(TABLES)
    for f in done:  # complete: readable, with its footer and the golden schema
        assert pq.ParquetFile(f).metadata.num_rows >= 0
    r = _cli(*args, "--out", str(out))
    assert r.returncode == 0, r.stderr
    parsed = [(f, parse_file_name(f.name)) for f in done]
    complete_chunks = len(
        {
            c.chunk
            for f, c in parsed
            if c is not None and all((out / f.name.replace(f"__{c.table}__", f"__{t}__")).exists() for t in TABLES)
        }
    )
    assert all(c is not None for _, c in parsed)
    assert f"{complete_chunks:,} already written" in r.stdout, r.stdout
    assert not list(out.glob(".*.tmp"))
    assert _dataset(out) == _dataset(clean)


def test_killed_parallel_export_leaves_no_orphan_writer(mainnet_store_path: Path, tmp_path: Path) -> None:
    """With --jobs 2 the chunks are written by worker processes: a SIGKILL of the export ends
    them too (within a second), and the rerun completes the same dataset."""
    clean, out = tmp_path / "clean", tmp_path / "killed"
    args = ["export", "0..16383", "--store", str(mainnet_store_path), "--chunk-size", "100", "--jobs", "2"]
    assert _cli(*args, "--out", str(clean)).returncode == 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "ethp2p.cli", *args, "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(out.glob("*.parquet"))) < 60:
        time.sleep(0.005)
    children = _children(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert children, "the export ran no worker processes"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(c) for c in children):
        time.sleep(0.05)
    assert not any(_alive(c) for c in children)
    r = _cli(*args, "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert not list(out.glob(".*.tmp")) and _dataset(out) == _dataset(clean)


def _children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_ctrl_c_inside_a_chunk_leaves_no_file_of_it(mainnet_store_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    opts = ExportOptions(out, 0, 2999, chunk_size=1000)
    seen = 0

    def interrupt(n: int) -> None:
        nonlocal seen
        seen += n
        if seen > 1500:
            raise KeyboardInterrupt

    with BlockStore(mainnet_store_path, readonly=True) as st, pytest.raises(KeyboardInterrupt):
        run_export(st, opts, on_blocks=interrupt)
    names = sorted(p.name for p in out.iterdir() if not p.name.startswith(".ethp2p"))
    assert names == sorted(f"mainnet__{t}__00000000000_to_00000000999.parquet" for t in TABLES)
    with BlockStore(mainnet_store_path, readonly=True) as st:
        result = run_export(st, opts)
    assert (result.chunks_written, result.chunks_skipped) == (2, 1)


def test_extending_an_export_replaces_its_short_last_chunk(mainnet_store_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    base = [
        "export",
        "--store",
        str(mainnet_store_path),
        "--out",
        str(out),
        "--chunk-size",
        "1000",
        "--tables",
        "blocks",
    ]
    assert _cli(*base, "0..1500").returncode == 0
    assert (out / "mainnet__blocks__00000001000_to_00000001500.parquet").exists()
    r = _cli(*base, "0..2999")
    assert r.returncode == 0 and "1 already written" in r.stdout and "replaced 1 shorter chunk" in r.stdout, r.stdout
    assert sorted(p.name for p in out.glob("*.parquet")) == [
        f"mainnet__blocks__{a:011d}_to_{b:011d}.parquet" for a, b in ((0, 999), (1000, 1999), (2000, 2999))
    ]
    assert _sql(f"SELECT count(*), count(DISTINCT number) FROM '{out}/*.parquet'").fetchall() == [(3000, 3000)]
    # A shorter range inside a written chunk is already there.
    r = _cli(*base, "1200..1300")
    assert r.returncode == 0 and "1 already written" in r.stdout, r.stdout
    # Another chunk size in the same directory would overlap: refused, saying so.
    r = _cli(*base, "0..2999", "--chunk-size", "700")
    assert (
        r.returncode == 2 and "holds chunks of 1,000 blocks, not 700" in r.stderr and len(r.stderr.splitlines()) == 1
    ), r.stderr
    # Files that would not read as one dataset with those there: refused, whatever the chunks.
    for other, msg in (
        (["--hex"], "holds hashes and bytes as binary"),
        (["--exclude-columns", "extra_data"], "holds table blocks with other columns"),
    ):
        r = _cli(*base, "3000..3999", *other)
        assert r.returncode == 2 and msg in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
    # Without the directory's record (an export from before it was kept), the files themselves say it.
    (out / ".ethp2p-export-parquet.json").unlink()
    r = _cli(*base, "0..2999", "--chunk-size", "700")
    assert r.returncode == 2 and "another chunk size" in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
    # Another table may join with its own columns.
    assert _cli(*base[:-2], "--tables", "ommers", "0..2999").returncode == 0


def test_missing_blocks_are_an_error_unless_allowed(mainnet_store_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    r = _cli("export", "--store", str(mainnet_store_path), "--out", str(out), "16000..20000")
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r.stderr
    assert (
        "lacks 3,617 of the 4,001 blocks" in r.stderr and "16,384..20,000" in r.stderr and "--allow-missing" in r.stderr
    )
    assert not out.exists() or not list(out.glob("*.parquet"))
    r = _cli("export", "--store", str(mainnet_store_path), "--out", str(out), "16000..20000", "--allow-missing")
    assert r.returncode == 0 and "missing from the store: 3,617 blocks (16,384..20,000)" in r.stdout, r.stdout
    assert _sql(f"SELECT count(*) FROM '{out}/*__blocks__*.parquet'").fetchall() == [(384,)]


def test_dry_run_prints_the_plan_and_writes_nothing(mainnet_store_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    r = _cli(
        "export", "--store", str(mainnet_store_path), "--out", str(out), "0..16383", "--chunk-size", "4096", "--dry"
    )
    assert r.returncode == 0, r.stderr
    assert "chunks: 4 (4 to write, 0 already written); blocks to export: 16,384" in r.stdout, r.stdout
    assert re.search(r"estimate \(from \d+ sampled blocks\)", r.stdout) and "MB" in r.stdout, r.stdout
    assert not list(out.glob("*")) if out.exists() else True


def test_tables_columns_hex_and_bad_options(mainnet_store_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    r = _cli(
        "export",
        "--store",
        str(mainnet_store_path),
        "--out",
        str(out),
        f"{ALL_TYPES}..{ALL_TYPES}",
        "--tables",
        "transactions,logs",
        "--exclude-columns",
        "input,data",
        "--hex",
        "--compression",
        "snappy",
    )
    assert r.returncode == 0, r.stderr
    tables = {parse_file_name(p.name).table for p in out.glob("*.parquet")}  # type: ignore[union-attr]
    assert tables == {"transactions", "logs"}
    tx = pq.read_table(next(out.glob("*__transactions__*")))
    assert "input" not in tx.column_names and tx.schema.field("hash").type == "string"
    import ethp2p

    with ethp2p.open_store(mainnet_store_path) as h:
        first = next(h.transactions(ALL_TYPES, ALL_TYPES, senders=False))
    assert tx.column("hash")[0].as_py() == "0x" + first.hash.hex()
    assert pq.ParquetFile(next(out.glob("*__logs__*"))).metadata.row_group(0).column(0).compression == "SNAPPY"
    r = _cli(
        "export",
        "--store",
        str(mainnet_store_path),
        "--out",
        str(tmp_path / "p"),
        "0..10",
        "--tables",
        "blocks",
        "--include-columns",
        "number,hash",
    )
    assert r.returncode == 0, r.stderr
    assert pq.read_schema(next((tmp_path / "p").glob("*.parquet"))).names == ["number", "hash"]
    for bad, msg in (
        (["--tables", "blocks,traces"], "unknown table traces"),
        (["--include-columns", "numbr"], "no table exported has column numbr"),
        (["--tables", "logs", "--include-columns", "number"], "no table exported has column number"),
        (["--format", "jsonl", "--compression", "zstd"], "--compression is for Parquet"),
        (["--chunk-size", "0"], "chunk size must be at least 1"),
    ):
        r = _cli("export", "--store", str(mainnet_store_path), "--out", str(tmp_path / "bad"), "0..10", *bad)
        assert r.returncode == 2 and msg in r.stderr and len(r.stderr.splitlines()) == 1, (bad, r.stderr)


def test_a_second_export_into_the_same_directory_is_refused(mainnet_store_path: Path, tmp_path: Path) -> None:
    import fcntl

    out = tmp_path / "o"
    out.mkdir()
    fd = os.open(out / ".ethp2p-export.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        r = _cli("export", "--store", str(mainnet_store_path), "--out", str(out), "0..10")
        assert r.returncode == 2 and "another export is writing to" in r.stderr, r.stderr
    finally:
        os.close(fd)


def test_export_errors_are_clear(tmp_path: Path) -> None:
    r = _cli("export", "--store", str(tmp_path / "none.db"), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "store not found" in r.stderr
    r = _cli("export", "--store", str(tmp_path / "none.db"), "--out", str(tmp_path / "o"), "5..1")
    assert r.returncode == 2 and "bad range" in r.stderr


def test_plan_counts_what_is_stored(mainnet_store_path: Path, tmp_path: Path) -> None:
    with BlockStore(mainnet_store_path, readonly=True) as st:
        plan = plan_export(st, ExportOptions(tmp_path, 990_000, 1_000_100, chunk_size=5000, allow_missing=True))
    # Only what is stored, in runs: a file's name is exactly the blocks it holds.
    assert [(c.chunk.start, c.chunk.end, c.blocks) for c in plan.chunks] == [
        (990_001, 990_004, 4),
        (990_016, 990_016, 1),
        (1_000_001, 1_000_030, 30),
        (1_000_040, 1_000_050, 11),
    ]
    assert plan.stored == 46 and plan.missing == 10_101 - 46


def test_partial_pieces_are_replaced_once_their_chunk_is_stored(mainnet_store_path: Path, tmp_path: Path) -> None:
    """--allow-missing writes the runs it has under their own names; an export once the store has
    the whole chunk supersedes them, and never a block twice."""
    from ethp2p.eth.chainspec import MAINNET
    from ethp2p.store.importer import ensure_genesis, import_file
    from tests.support.stores import ERA1_FILES

    half = tmp_path / "half.db"
    with BlockStore(half, genesis_hash=MAINNET.genesis_hash) as st:
        ensure_genesis(st, MAINNET)
        import_file(st, ERA1_FILES[0], MAINNET)  # blocks 0..8191
    out = tmp_path / "o"
    common = ["--out", str(out), "--chunk-size", "10000", "--tables", "blocks,ommers", "0..16383"]
    r = _cli("export", "--store", str(half), "--allow-missing", *common)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.glob("*blocks*")) == ["mainnet__blocks__00000000000_to_00000008191.parquet"]
    r = _cli("export", "--store", str(mainnet_store_path), *common)
    assert r.returncode == 0 and "replaced 2 shorter chunk file(s)" in r.stdout, r.stdout
    assert sorted(p.name for p in out.glob("*blocks*")) == [
        "mainnet__blocks__00000000000_to_00000009999.parquet",
        "mainnet__blocks__00000010000_to_00000016383.parquet",
    ]
    assert _sql(f"SELECT count(*), count(DISTINCT number) FROM '{out}/*blocks*.parquet'").fetchall() == [(16384, 16384)]


def test_a_range_starting_inside_a_short_chunk_grows_to_take_it_in(mainnet_store_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    base = [
        "export",
        "--store",
        str(mainnet_store_path),
        "--out",
        str(out),
        "--chunk-size",
        "1000",
        "--tables",
        "blocks",
    ]
    assert _cli(*base, "0..1500").returncode == 0
    r = _cli(*base, "1400..2500")
    assert r.returncode == 0 and "replaced 1 shorter chunk" in r.stdout, r.stdout + r.stderr
    assert sorted(p.name for p in out.glob("*.parquet")) == [
        f"mainnet__blocks__{a:011d}_to_{b:011d}.parquet" for a, b in ((0, 999), (1000, 1999), (2000, 2500))
    ]
    assert _sql(f"SELECT count(*), count(DISTINCT number) FROM '{out}/*.parquet'").fetchall() == [(2501, 2501)]


def test_leftover_duplicates_and_temporaries_are_cleaned_up(mainnet_store_path: Path, tmp_path: Path) -> None:
    """What an export killed between a chunk's rename and its superseding can leave: a shorter
    file inside a complete one, and temporaries. The next export removes both."""
    out = tmp_path / "o"
    base = [
        "export",
        "--store",
        str(mainnet_store_path),
        "--out",
        str(out),
        "--chunk-size",
        "1000",
        "--tables",
        "blocks",
    ]
    assert _cli(*base, "0..999").returncode == 0
    whole = out / "mainnet__blocks__00000000000_to_00000000999.parquet"
    short = out / "mainnet__blocks__00000000000_to_00000000499.parquet"
    short.write_bytes(whole.read_bytes())  # stands for the superseded file the kill left
    (out / f".{whole.name}.99999.tmp").write_bytes(b"half")
    r = _cli(*base, "0..1999")
    assert r.returncode == 0, r.stderr
    assert not short.exists() and not list(out.glob(".*.tmp"))
    assert _sql(f"SELECT count(*), count(DISTINCT number) FROM '{out}/*.parquet'").fetchall() == [(2000, 2000)]


def test_row_types_are_the_tables_columns() -> None:
    from dataclasses import fields

    from ethp2p.export.schema import column_names
    from ethp2p.history import ROW_TYPES

    assert set(ROW_TYPES) == set(TABLES)
    for table, cls in ROW_TYPES.items():
        assert tuple(f.name for f in fields(cls)) == column_names(table), table


def test_open_store_rows_and_arrow_agree_with_the_export(mainnet_store_path: Path, tmp_path: Path) -> None:
    import ethp2p

    out = tmp_path / "o"
    r = _cli("export", "--store", str(mainnet_store_path), "--out", str(out), f"{ALL_TYPES}..{ALL_TYPES}")
    assert r.returncode == 0, r.stderr
    with ethp2p.open_store(mainnet_store_path) as h:
        assert h.network == "mainnet" and h.range == (0, ALL_TYPES)
        for t in TABLES:
            table = h.arrow(t, ALL_TYPES, ALL_TYPES)
            assert table.equals(pq.read_table(next(out.glob(f"*__{t}__*")))), t
        logs = list(h.logs(ALL_TYPES, ALL_TYPES))
        assert [lg.log_index for lg in logs] == list(range(len(logs))) and logs
        hexed = h.arrow("logs", ALL_TYPES, ALL_TYPES, columns=["address", "topic0"], hex=True)
        assert (
            hexed.column_names == ["address", "topic0"]
            and hexed.column("address")[0].as_py() == "0x" + logs[0].address.hex()
        )
        with pytest.raises(ValueError, match="no column nope"):
            h.arrow("logs", 0, 1, columns=["nope"])
    with pytest.raises(FileNotFoundError):
        ethp2p.open_store(tmp_path / "none.db")


def test_fetch_export_writes_chunks_as_blocks_are_stored(mainnet_store_path: Path, tmp_path: Path) -> None:
    from tests.support.servers import start_servers

    servers = start_servers(1, mainnet_store_path, tmp_path, network_args=["--network", "mainnet"])
    try:
        out = tmp_path / "x"
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "ethp2p.cli",
                "fetch",
                "0..4095",
                "--store",
                str(tmp_path / "f.db"),
                "--bootnodes",
                servers[0].enode,
                "--no-discovery",
                "--dns",
                "",
                "--timeout",
                "60",
                "--warmup",
                "0",
                "--export",
                str(out),
                "--chunk-size",
                "1000",
                "--tables",
                "blocks,transactions",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        for s in servers:
            s.stop()
    assert r.returncode == 0, r.stdout + r.stderr
    assert "export: 5 chunks written as their blocks were stored" in r.stdout, r.stdout
    names = sorted(p.name for p in out.glob("*.parquet"))
    assert len(names) == 10 and names[-1] == "mainnet__transactions__00000004000_to_00000004095.parquet"
    got = _sql(f"SELECT count(*), min(number), max(number), min(proof) FROM '{out}/*__blocks__*.parquet'").fetchall()
    assert got == [(4096, 0, 4095, "accumulator")] or got == [(4096, 0, 4095, "checkpoint")]


def schema_markdown() -> str:
    """The README's schema section, generated from ethp2p.export.schema."""
    type_names = {
        "u8": "uint8",
        "u32": "uint32",
        "u64": "uint64",
        "u256": "decimal string",
        "hash": "32 bytes",
        "address": "20 bytes",
        "bytes": "bytes",
        "str": "string",
    }
    out = []
    for t, cols in TABLES.items():
        out += [
            f"<details><summary><b>{t}</b> ({len(cols)} columns)</summary>",
            "",
            "| column | type | notes |",
            "|---|---|---|",
        ]
        for c in cols:
            notes = "; ".join(x for x in (c.doc, "null" if c.nullable else "") if x)
            out.append(f"| `{c.name}` | {type_names[c.kind]} | {notes} |")
        out += ["", "</details>", ""]
    return "\n".join(out)


def test_the_readme_documents_the_schema() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    start, end = (
        "<!-- export-schema: generated by tests/integration/test_export.py::schema_markdown -->\n",
        "<!-- /export-schema -->",
    )
    assert start in readme and end in readme
    assert readme.split(start, 1)[1].split(end, 1)[0] == schema_markdown(), "regenerate the README's schema section"


def test_fetch_export_into_an_unusable_directory_fails_before_the_fetch(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    r = _cli(
        "fetch",
        "0..10",
        "--store",
        str(tmp_path / "f.db"),
        "--bootnodes",
        "",
        "--no-discovery",
        "--dns",
        "",
        "--timeout",
        "5",
        "--export",
        str(afile / "sub"),
    )
    assert r.returncode == 2 and "cannot write to" in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
