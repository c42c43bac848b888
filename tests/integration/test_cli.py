"""The command line: the demo end to end, import/serve round trip, and clear errors for bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import VECTORS


def _cli(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ethp2p.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=timeout
    )


def test_demo_fetches_all_blocks(tmp_path: Path) -> None:
    r = _cli("demo", "--workdir", str(tmp_path / "demo"), "--servers", "2")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "verified blocks:  16,384" in r.stdout
    assert "missing blocks:   0" in r.stdout
    # Every block says how it is proven: the shipped accumulator roots of epochs 0 and 1.
    assert (
        "proven:           16,384 by accumulator (accumulator root of epoch 0: 8,192; "
        "accumulator root of epoch 1: 8,192)"
    ) in r.stdout, r.stdout
    assert (tmp_path / "demo/fetched.db").exists()
    from ethp2p.store.blocks import BlockStore
    from ethp2p.trust.proof import Proof

    with BlockStore(tmp_path / "demo/fetched.db", readonly=True) as s:
        assert s.proof_counts() == {Proof.ACCUMULATOR: 16_384}


def test_import_reports_and_rejects_bad_files(tmp_path: Path) -> None:
    store = str(tmp_path / "s.db")
    r = _cli(
        "import",
        "--store",
        store,
        "--genesis",
        str(VECTORS / "ethtest/genesis.json"),
        str(VECTORS / "ethtest/chain.rlp"),
    )
    assert r.returncode == 0, r.stderr
    assert "600 chain blocks (1..600)" in r.stdout
    bad = tmp_path / "bad.era1"
    bad.write_bytes(b"\x00" * 100)
    r = _cli("import", "--store", str(tmp_path / "m.db"), str(bad))
    assert r.returncode == 2 and "ethp2p: error:" in r.stderr and "Traceback" not in r.stderr
    # A store of one chain refuses another chain's genesis.
    r = _cli("import", "--store", store, str(VECTORS / "mainnet/era1/mainnet-00000-5ec1ffb8.era1"))
    assert r.returncode == 2 and "genesis" in r.stderr


def test_bad_user_input_gives_clear_errors(tmp_path: Path) -> None:
    r = _cli("probe", "enode://nothex@127.0.0.1:1")
    assert r.returncode == 2 and "bad enode URL" in r.stderr
    r = _cli("probe", "--network", "ropsten", "enode://" + "ab" * 64 + "@127.0.0.1:1")
    assert r.returncode == 2 and "unknown network" in r.stderr
    r = _cli("serve", "--store", str(tmp_path / "none.db"))
    assert r.returncode == 2 and "store not found" in r.stderr
    r = _cli("serve", "--store", str(tmp_path / "none.db"), "--genesis", str(tmp_path / "missing.json"))
    assert r.returncode == 2 and "cannot read genesis" in r.stderr
    r = _cli("fetch", "0..1", "--store", str(tmp_path / "f.db"), "--verify-workers", "17")
    assert r.returncode == 2 and "--verify-workers must be 0..16" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["probe", "enode://" + "ab" * 64 + "@[::1:30303"], "Invalid IPv6 URL"),
        (["probe", "enode://" + "ab" * 64 + "@" + "a" * 30 + "!:30303"], "invalid host"),  # was exponential
        (["fetch", "9223372036854775808..9223372036854775809", "--store", "{tmp}/f.db"], "2^63 - 1"),
        (["serve", "--store", "{store}", "--port", "99999"], "--port: 99999 is out of range (0..65535)"),
        (["serve", "--store", "{store}", "--max-inbound", "0"], "--max-inbound: must be at least 1"),
        (["serve", "--store", "{store}", "--max-inbound", "-1"], "--max-inbound: must be at least 1"),
        (["fetch", "1..2", "--store", "{tmp}/f.db", "--peers", "-1"], "--peers: must be at least 1"),
        (["serve", "--store", "{store}", "--port", "0", "--key-file", "{tmp}"], "cannot use key file"),
        (["head", "--genesis", "{tmp}/latin1.json"], "is not UTF-8 text"),
        (["head", "--baseline", "-1"], "--baseline: -1 is out of range (0..9223372036854775807)"),
        (["head", "--probe-peers", "0"], "--probe-peers: 0 is out of range (1..64)"),
        (["import", "--store", "{tmp}/i.db", "{tmp}/empty.rlp"], "no blocks in the file"),
        (["serve", "--store", "{store}", "--eth-versions", "67,68"], "bad --eth-versions '67,68': use a"),
        (["serve", "--store", "{store}", "--eth-versions", ""], "bad --eth-versions '': use a"),
        (["serve", "--store", "{store}", "--answer-delay", "61"], "--answer-delay: 61 is out of range (0..60"),
        (["serve", "--store", "{store}", "--answer-delay", "nan"], "--answer-delay: nan is out of range"),
        (["serve", "--store", "{store}", "--expire-before", "9000"], "--expire-before: expiry cut 9000 is above"),
        (["serve", "--store", "{store}", "--grow-from", "9000"], "--grow-from: start of growth 9000 is outside"),
        (["serve", "--store", "{store}", "--grow-every", "1"], "--grow-every and --grow-by are only for --grow-from"),
        (["serve", "--store", "{store}", "--grow-from", "5", "--grow-by", "0"], "--grow-by: 0 is out of range"),
        (["serve", "--store", "{store}", "--grow-from", "5", "--grow-every", "0"], "--grow-every: 0 is out of range"),
        (["fetch", "1..2", "--store", "{tmp}/f.db", "--dns-resolver", "dns.example"], "must be an IP address"),
        (["head", "--dns-resolver", "127.0.0.1:0"], "bad --dns-resolver '127.0.0.1:0': the port must be 1..65535"),
        (["peers", "--dns-resolver", "[::1"], "bad --dns-resolver '[::1': use HOST[:PORT] or [IPV6]:PORT"),
    ],
)
def test_bad_command_lines_fail_with_one_line(tmp_path: Path, args: list[str], says: str) -> None:
    """Each exits 2 with one ``error:`` line naming the problem, before touching the network."""
    store = tmp_path / "s.db"
    if any("{store}" in a for a in args):
        r = _cli("import", "--store", str(store), str(VECTORS / "mainnet/era1/mainnet-00000-5ec1ffb8.era1"))
        assert r.returncode == 0, r.stderr
    (tmp_path / "latin1.json").write_bytes(b'{"config": "\xe9t\xe9"}')
    (tmp_path / "empty.rlp").write_bytes(b"")
    r = _cli(*(a.format(tmp=tmp_path, store=store) for a in args), timeout=30)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert says in r.stderr and "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()  # (argparse prints its usage before the error line)
    assert [line for line in lines if "error:" in line] == [lines[-1]], r.stderr


def test_fetch_warns_when_verifying_in_pure_python(tmp_path: Path) -> None:
    """Without the C extension (forced here), fetch says so, and why, before it starts."""
    import os

    env = dict(os.environ, ETHP2P_PURE_PYTHON="1")
    args = [
        "fetch",
        "1..2",
        "--store",
        str(tmp_path / "f.db"),
        "--genesis",
        str(VECTORS / "ethtest/genesis.json"),
        "--no-discovery",
        "--dns",
        "",
        "--timeout",
        "1",
        "--warmup",
        "0",
    ]
    r = subprocess.run([sys.executable, "-m", "ethp2p.cli", *args], capture_output=True, text=True, timeout=60, env=env)
    assert "warning: verifying in pure Python" in r.stderr and "ETHP2P_PURE_PYTHON" in r.stderr, r.stderr
    r = subprocess.run([sys.executable, "-m", "ethp2p.cli", *args], capture_output=True, text=True, timeout=60)
    assert "pure Python" not in r.stderr, r.stderr  # the extension is built on this machine


def test_probe_of_a_closed_port_says_why(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    from ethp2p.crypto.keys import PrivateKey

    pub = PrivateKey.generate().public_key.to_bytes().hex()
    r = _cli("probe", "--timeout", "2", f"enode://{pub}@127.0.0.1:{port}")
    assert r.returncode == 1 and "error:" in r.stdout and "cannot connect" in r.stdout


#: The hash of block 600 of geth's test chain (tests/vectors/ethtest/headblock.json).
HEAD_600 = "0x44e3809c9a3cda717f00aea3a9da336d149612c8d5657fbc0028176ef8d94d2a"


def test_head_and_peers_commands(tmp_path: Path) -> None:
    from tests.support.servers import ETHTEST_GENESIS, ethtest_store, start_servers

    store = ethtest_store(tmp_path / "e.db")
    servers = start_servers(2, store, tmp_path, network_args=["--genesis", str(ETHTEST_GENESIS)])
    try:
        boot = ",".join(s.enode for s in servers)
        net = ["--genesis", str(ETHTEST_GENESIS), "--bootnodes", boot, "--timeout", "20"]
        # Two peers on one machine agree on nothing (3 on distinct /16 networks needed): served, not proven.
        r = _cli("head", *net, "--peers", "2")
        assert r.returncode == 1, r.stderr
        assert "head: #600 0x44e3809c" in r.stdout and "NOT PROVEN" in r.stdout and "--checkpoint" in r.stdout
        # Lowering the bar to 2 peers does not help: they share one network.
        r = _cli("head", *net, "--peers", "2", "--agreement-peers", "2")
        assert r.returncode == 1 and "at most 1 peer(s)" in r.stdout, r.stdout
        # A checkpoint the user trusts at the head proves it.
        r = _cli("head", *net, "--peers", "2", "--checkpoint", f"600:{HEAD_600}")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "head: #600 0x44e3809c" in r.stdout and "(checkpoint: checkpoint #600" in r.stdout
        r = _cli("head", *net, "--checkpoint", "600:0x12")
        assert r.returncode == 2 and "bad checkpoint" in r.stderr
        r = _cli("peers", *net, "--peers", "2", "--rounds", "1")
        assert r.returncode == 0, r.stderr
        assert "--- 2 peers" in r.stdout and "head=600" in r.stdout and "established=2" in r.stdout
        assert "peers: 2 found (discv4 0, DNS 0, boot nodes 2, cache 0), 2 connected" in r.stdout, r.stdout
        r = _cli("head", "--genesis", str(ETHTEST_GENESIS), "--bootnodes", "enode://xyz")
        assert r.returncode == 2 and "bad enode URL" in r.stderr
    finally:
        for s in servers:
            s.stop()


def test_fetch_keeps_or_drops_the_page_cache_as_asked(tmp_path: Path) -> None:
    from ethp2p.cli import _load_spec, _open_store, build_parser

    genesis = str(VECTORS / "ethtest/genesis.json")
    for flag, drops in (([], True), (["--keep-page-cache"], False)):
        args = build_parser().parse_args(
            ["fetch", "1..2", "--store", str(tmp_path / "s.db"), "--genesis", genesis, *flag]
        )
        store = _open_store(args, _load_spec(args), create=True)
        assert store._drop_page_cache is drops
        store.close()


def test_version_prints_the_package_version() -> None:
    from ethp2p import __version__

    r = _cli("--version")
    assert r.returncode == 0 and r.stdout == f"ethp2p {__version__}\n", r.stdout + r.stderr


def test_logs_carry_utc_timestamps_as_text_or_json_lines(tmp_path: Path) -> None:
    """-v logs at DEBUG on stderr; --log-format json makes every log line a JSON object."""
    import json
    import re

    from tests.support.servers import ETHTEST_GENESIS, ethtest_store, start_servers

    ts = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
    [server] = start_servers(
        1, ethtest_store(tmp_path / "e.db"), tmp_path, network_args=["--genesis", str(ETHTEST_GENESIS)]
    )
    try:
        probe = ["probe", "--genesis", str(ETHTEST_GENESIS), server.enode]
        r = _cli("-v", "--log-format", "json", *probe)
        assert r.returncode == 0, r.stdout + r.stderr
        lines = r.stderr.splitlines()
        assert lines, "no debug logs with -v"
        for line in lines:
            entry = json.loads(line)
            assert {"ts", "level", "logger", "msg"} <= entry.keys(), entry
            assert ts.match(entry["ts"]), entry
        assert any(json.loads(line)["level"] == "DEBUG" for line in lines)
        r = _cli("-v", *probe)
        assert r.returncode == 0, r.stdout + r.stderr
        first = r.stderr.splitlines()[0].split(" ")
        assert ts.match(first[0]) and first[1] == "DEBUG", r.stderr
        r = _cli(*probe)  # without -v: warnings and errors only
        assert r.returncode == 0 and "DEBUG" not in r.stderr, r.stderr
    finally:
        server.stop()
    r = _cli("--log-format", "xml", "--version")
    assert r.returncode == 2 and "invalid choice" in r.stderr


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("127.0.0.1", ("127.0.0.1", 53)),
        ("198.18.0.53:5353", ("198.18.0.53", 5353)),
        ("::1", ("::1", 53)),
        ("[::1]:5353", ("::1", 5353)),
        ("[fd00::53]", ("fd00::53", 53)),
    ],
)
def test_dns_resolver_addresses(text: str, address: tuple[str, int]) -> None:
    """``--dns-resolver`` takes an IP address with or without a port (IPv6 with a port in brackets)."""
    from ethp2p.cli import _parse_resolver_address

    assert _parse_resolver_address(text) == address
