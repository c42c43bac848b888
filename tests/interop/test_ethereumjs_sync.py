"""A third-party client syncs real mainnet history from an ethp2p server.

``@ethereumjs/client`` starts with ``--network mainnet``, an empty data dir and the
ethp2p server as its only boot node (discv4 on: ethereumjs finds even its boot nodes
through discv4, so the server runs ``--discovery``); it bonds with ethp2p over discv4,
dials it over RLPx at eth/68, and downloads and imports mainnet blocks (the era1 data,
1-16,383; the test stops once 8,000 are in) from ethp2p. Its log is the proof.
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
        deadline = time.monotonic() + 150
        imported = 0
        while time.monotonic() < deadline:
            log = client.log_path.read_text(errors="replace")
            heights = [int(x) for x in re.findall(r"Imported blocks count=\d+ first=\d+ last=(\d+)", log)]
            imported = max(heights, default=0)
            if imported >= 8000:  # it syncs ~150 blocks/s (it executes them); half the range is plenty
                break
            time.sleep(1)
        assert imported >= 5000, f"ethereumjs imported only up to block {imported}:\n{client.tail(60)}"
    finally:
        client.stop()
        out = server.stop()
    assert "sessions served: " in out and "sessions served: 0" not in out, out
