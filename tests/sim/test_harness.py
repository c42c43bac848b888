"""Mainnet in a box: the real client against simulated networks of real ``ethp2p serve`` nodes.

Each node is a separate process in a network namespace of its own, on its own address of
198.18.0.0/15 behind a bridge (``tests/sim/netns.py``); the client runs in the suite's private
namespace at 198.18.0.1. Run one by hand, with every node's log kept: ``./dev.sh sim NAME --keep DIR``.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.sim import roles, scenarios
from tests.sim.harness import Simulation
from tests.sim.netns import BRIDGE, unavailable

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(unavailable() is not None, reason=f"simulation: {unavailable()}"),
]


def _links() -> str:
    return subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout


def test_harness_leaves_nothing_behind(tmp_path: Path, mainnet_store_path: Path) -> None:
    """Two nodes come up on their own addresses and reach each other over the bridge; on exit the
    processes are gone and so are the bridge and every veth pair."""
    from ethp2p.eth.chainspec import MAINNET

    before = _links()
    with Simulation(tmp_path, MAINNET) as sim:
        a = sim.add(roles.ARCHIVE, mainnet_store_path)
        b = sim.add(roles.ARCHIVE, mainnet_store_path)
        sim.start()
        assert a.address != b.address and a.enode.endswith(f"@{a.address}:30303")
        assert BRIDGE in _links() and "sim1h" in _links()
        done = sim.client("probe", b.enode, "--timeout", "20", timeout=60)
        assert done.returncode == 0 and "eth/70" in done.stdout, done.stdout + done.stderr
        procs = [n.host.proc for n in sim.nodes]
    assert all(p is not None and p.poll() is not None for p in procs)
    after = _links()
    assert BRIDGE not in after and "sim0h" not in after and "sim1h" not in after
    assert after.count("\n") == before.count("\n")


def test_a_node_serves_the_range_it_fetched_to_another_host(tmp_path: Path, mainnet_store_path: Path) -> None:
    """A node that fetched 10,000..16,383 serves that range (not "0..0") to a client on another address."""
    report = scenarios.mid_range(tmp_path, mainnet_store_path)
    print(report.text())
    assert report.returncode == 0, report.text()
    assert "then served (10000, 16383)" in report.lines[0]
    assert report.stored == report.matching == scenarios.TOP + 1 - 10_000 and not report.wrong
    relay = report.answered["n02-relay"]
    assert relay[1][1] > 0  # it served the bodies


@pytest.mark.interop
def test_ethereumjs_on_a_host_of_its_own_is_found_and_used(tmp_path: Path) -> None:
    """@ethereumjs/client on its own address, found by the client through discv4 from an ethp2p
    boot node; the three ethp2p nodes hold no receipts, so the fetch completes only through it."""
    from tests.interop.ethereumjs import installed

    if not installed():
        pytest.skip("@ethereumjs/client is not installed (tests/interop/install_peer.sh could not run npm)")
    report = scenarios.ethereumjs(tmp_path, tmp_path)  # its chain is geth's test chain, not the source
    print(report.text())
    assert report.returncode == 0, report.text()
    assert report.stored == report.matching == 601 and not report.wrong
    assert "by peer-agreement" in report.stdout
    # The ethp2p nodes' store holds no receipts: the client's 600 receipt lists came from ethereumjs,
    # the fourth peer it used.
    from ethp2p.store.blocks import BlockStore

    with (
        BlockStore(tmp_path / "ethtest.db", readonly=True) as served,
        BlockStore(tmp_path / "client.db", readonly=True) as got,
    ):
        top = served.canonical_hash(600)
        assert top is not None and served.receipts(top) is None and got.receipts(top) is not None
    assert re.search(r"^peers: .*, 4 used$", report.stdout, re.M), report.stdout
