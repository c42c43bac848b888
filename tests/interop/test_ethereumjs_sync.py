"""A third-party client syncs real mainnet history from an ethp2p server.

``@ethereumjs/client`` starts with ``--network mainnet``, an empty data dir and the
ethp2p server as its only boot node (discv4 on: ethereumjs finds even its boot nodes
through discv4, so the server runs ``--discovery``); it bonds with ethp2p over discv4,
dials it over RLPx at eth/68, and downloads and imports every mainnet block of the era1 data
(1-16,383) from ethp2p. Its log is the proof. The server paces its block-body answers to the
client's importer (ethp2p.serve.pacing: unpaced, that client's fetcher stalls 2-8 s every 5-7
requests and the sync takes about three times as long); its stop line says how many it held.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.interop.ethereumjs import EthereumJS, installed
from tests.support.servers import start_servers

pytestmark = pytest.mark.interop


def test_ethereumjs_imports_mainnet_blocks_from_ethp2p(mainnet_store_path: Path, tmp_path: Path) -> None:
    if not installed():
        pytest.skip("@ethereumjs/client is not installed")
    (server,) = start_servers(
        1, mainnet_store_path, tmp_path, network_args=["--network", "mainnet"], extra=["--discovery"]
    )
    client = EthereumJS(
        tmp_path / "ejs",
        None,
        None,
        extra_args=("--network", "mainnet", "--bootnodes", server.enode),
        discovery=True,
    )
    try:
        client.start(timeout=60)
        # About 60-90 s here (it executes every block); the bound leaves room for a loaded machine.
        deadline = time.monotonic() + 300
        imported = 0
        while time.monotonic() < deadline:
            log = client.log_path.read_text(errors="replace")
            heights = [int(x) for x in re.findall(r"Imported blocks count=\d+ first=\d+ last=(\d+)", log)]
            imported = max(heights, default=0)
            if imported >= 16_383:
                break
            time.sleep(0.5)
        assert imported == 16_383, f"ethereumjs imported only up to block {imported}:\n{client.tail(60)}"
    finally:
        client.stop()
        out = server.stop()
    assert "sessions served: " in out and "sessions served: 0" not in out, out
    assert re.search(r"answers paced for a client's importer: [1-9]", out), out
