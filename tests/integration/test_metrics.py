"""``--metrics HOST:PORT`` on real processes over loopback: live values during a fetch, a serving
node's counters, and one-line errors for bad addresses and busy ports."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.servers import ETHTEST_GENESIS, start_servers

NET = ["--network", "mainnet"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scrape(port: int) -> dict[str, float] | None:
    """Every sample at ``port``, summed over labels (``name{label=...}`` too); None if nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return None
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name] = out.get(s.name, 0.0) + s.value
            for k, v in sorted(s.labels.items()):
                key = f"{s.name}{{{k}={v}}}"
                out[key] = out.get(key, 0.0) + s.value
    return out


@pytest.mark.parametrize("value", ["9109", "host:", ":99999", "abc:def", "127.0.0.1:0"])
def test_bad_metrics_addresses_are_one_line_errors(tmp_path: Path, value: str) -> None:
    for cmd in (["fetch", "1..2", "--store", str(tmp_path / "f.db")], ["serve", "--store", str(tmp_path / "none.db")]):
        r = subprocess.run(
            [sys.executable, "-m", "ethp2p.cli", *cmd, "--genesis", str(ETHTEST_GENESIS), "--metrics", value],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 2, r.stderr
        assert r.stderr.splitlines() == [
            f"ethp2p: error: bad --metrics {value!r}: use HOST:PORT with a port 1-65535, e.g. 127.0.0.1:9109"
        ], r.stderr
        assert not (tmp_path / "f.db").exists()  # refused before the command set anything up


def test_a_busy_metrics_port_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        for cmd in (
            ["fetch", "1..2", "--store", str(tmp_path / "f.db"), "--no-discovery", "--dns", "", "--timeout", "5"],
            ["serve", "--store", str(tmp_path / "none.db"), "--port", "0"],
        ):
            r = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "ethp2p.cli",
                    *cmd,
                    "--genesis",
                    str(ETHTEST_GENESIS),
                    "--metrics",
                    f"127.0.0.1:{port}",
                ],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert r.returncode == 2, r.stderr
            lines = r.stderr.splitlines()
            assert len(lines) == 1 and lines[0].startswith(
                f"ethp2p: error: cannot serve --metrics at 127.0.0.1:{port}: "
            )
            assert "Traceback" not in r.stderr


def test_metrics_are_live_during_a_fetch_and_count_what_servers_served(
    tmp_path: Path, mainnet_store_path: Path
) -> None:
    serve_ports = [_free_port(), _free_port()]
    servers = [
        start_servers(1, mainnet_store_path, tmp_path, network_args=NET, extra=["--metrics", f"127.0.0.1:{p}"])[0]
        for p in serve_ports
    ]
    try:
        port = _free_port()
        boot = ",".join(s.enode for s in servers)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ethp2p.cli",
                "fetch",
                "0..16383",
                "--store",
                str(tmp_path / "out.db"),
                *NET,
                "--bootnodes",
                boot,
                "--no-discovery",
                "--dns",
                "",
                "--peers",
                "2",
                "--timeout",
                "60",
                "--warmup",
                "1",
                "--metrics",
                f"127.0.0.1:{port}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        live: list[dict[str, float]] = []  # scrapes answered while the fetch was still running
        while proc.poll() is None:
            got = _scrape(port)
            if got is not None and proc.poll() is None:
                live.append(got)
            time.sleep(0.1)
        out, err = proc.communicate()
        assert proc.returncode == 0, out + err
        assert "verified blocks: 16,383 new" in out  # the genesis is stored already
        assert live, "no scrape was answered while the fetch ran"
        assert any(
            m.get("ethp2p_received_bytes_total", 0) > 0 and m.get("ethp2p_sent_bytes_total", 0) > 0 for m in live
        ), live[-1]
        assert any(m.get("ethp2p_peers", 0) >= 1 and m.get("ethp2p_peers{client=ethp2p}", 0) >= 1 for m in live), live[
            -1
        ]
        assert any(m.get("ethp2p_sessions_established_total", 0) >= 2 for m in live), live[-1]
        last = live[-1]
        for name in ("ethp2p_verified_blocks_total", "ethp2p_verified_block_bytes_total", "ethp2p_missing_blocks"):
            assert name in last, sorted(last)
        # Received bytes only grow, scrape after scrape.
        received = [m["ethp2p_received_bytes_total"] for m in live]
        assert received == sorted(received)

        # The serving nodes counted the sessions, requests and bytes (they update every second: poll).
        for p in serve_ports:
            served: dict[str, float] = {}
            for _ in range(100):
                served = _scrape(p) or {}
                if served.get("ethp2p_requests_served_total{kind=headers}", 0) > 0:
                    break
                time.sleep(0.1)
            assert served.get("ethp2p_sessions_served_total", 0) >= 1, served
            assert served.get("ethp2p_sent_bytes_total", 0) > 0 and served.get("ethp2p_received_bytes_total", 0) > 0
            assert served.get("ethp2p_requests_served_total{kind=headers}", 0) > 0, served
            assert "ethp2p_rejected_full_total" in served and "ethp2p_inbound_peers" in served
        scrapes = [_scrape(p) for p in serve_ports]
        assert all(s is not None for s in scrapes), scrapes
        blocks = sum(s.get("ethp2p_requests_served_total{kind=bodies}", 0) for s in scrapes if s is not None)
        assert blocks > 0
    finally:
        for s in servers:
            s.stop()
