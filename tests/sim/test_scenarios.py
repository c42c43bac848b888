"""Mainnet in a box: the real client against simulated networks of real ``ethp2p serve`` nodes.

Each node is a separate process in a network namespace of its own, on its own address of
198.18.0.0/15 behind a bridge (``tests/sim/netns.py``); the client runs in the suite's private
namespace at 198.18.0.1. Run one by hand, with every node's log kept: ``./dev.sh sim NAME --keep DIR``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.sim import roles, scenarios
from tests.sim.netns import unavailable

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(unavailable() is not None, reason=f"simulation: {unavailable()}"),
]


def _archive(role: roles.Role) -> bool:
    return role.name == "archive"


def _expired(role: roles.Role) -> bool:
    return role.name.startswith("expired")


def _found(stdout: str) -> dict[str, int]:
    """The peers line of the fetch summary: found (by source), connected, used."""
    m = re.search(r"^peers: (\d+) found \(([^)]*)\), (\d+) connected, (\d+) used", stdout, re.M)
    assert m is not None, stdout
    out = {"found": int(m.group(1)), "connected": int(m.group(3)), "used": int(m.group(4))}
    for part in m.group(2).split(","):
        source, n = part.strip().rsplit(" ", 1)
        out[source] = int(n)
    return out


@pytest.mark.parametrize("via", ["discv4", "dns"])
def test_sixteen_nodes_found_from_one_boot_node_or_the_dns_tree(
    tmp_path: Path, mainnet_store_path: Path, via: str
) -> None:
    """16 nodes, 8 of which have expired blocks 0..8,191: the client finds them all (through discv4
    from one boot node, or from the DNS tree alone), fetches 0..8,191 from the archive nodes only, and
    says how many peers it found and used."""
    report = scenarios.discovery(tmp_path, mainnet_store_path, via=via)
    print(report.text())
    assert report.returncode == 0, report.text()
    assert report.stored == report.matching == scenarios.CUT and not report.wrong
    peers = _found(report.stdout)
    assert peers["found"] >= 16 and peers["connected"] >= 16
    if via == "discv4":
        assert peers["discv4"] >= 15  # all but the boot node, found through it
    else:
        assert peers["DNS"] == 16 and peers.get("boot nodes", 0) == 0
    # Nobody asked an expired node for what it doesn't keep; the archive nodes served the bodies.
    assert report.bodies_from(_expired) == 0
    serving = [name for name, (role, (_, bodies, _)) in report.answered.items() if _archive(role) and bodies]
    assert len(serving) >= 2, report.text()
    assert peers["used"] == len(serving)


def test_every_role_at_once(tmp_path: Path, mainnet_store_path: Path) -> None:
    """Archive, expired, growing, eth/68-, 69- and 70-only, slow, starved, silent, flapping and fork
    nodes together: the client fetches 0..16,383, stores exactly mainnet's blocks and bans the liar."""
    report = scenarios.mixed_roles(tmp_path, mainnet_store_path)
    print(report.text())
    assert report.returncode == 0, report.text()
    assert report.stored == report.matching == scenarios.TOP + 1 and not report.wrong
    # The liar is banned, named with its first diverging block (it forks at 8,292).
    assert re.search(rf"wrong chain \(banned\): {report.node_of('fork')}: first diverging block 8,292", report.stdout)
    # The silent node's requests timed out (faults, not a stall); the slow one's were answered.
    assert re.search(rf"fault: {report.node_of('silent')}: .*did not answer", report.stdout), report.stdout
    slow = next(a for r, a in report.answered.values() if r.name == "slow")
    assert slow[1] > 0
    # eth/68 nodes announce no range and serve every block; they were used too.
    assert next(a for r, a in report.answered.values() if r.name == "eth68")[1] > 0


def test_a_range_no_peer_serves_ends_saying_so(tmp_path: Path, mainnet_store_path: Path) -> None:
    """Every node announces 8,192..16,383: a fetch of 0..8,191 ends, long before its stall timeout
    (set far out of reach), listing the blocks as missing and saying that no peer serves them and
    what the peers announce; no node is asked for a body or a receipt list."""
    report = scenarios.unserved(tmp_path, mainnet_store_path)
    print(report.text())
    assert report.returncode != 0
    assert re.search(
        r"given up: no peer serves blocks 1\.\.8,191: the 4 peers announce 8192\.\.16383", report.stdout
    ), report.text()
    missing = int(re.search(r"missing: (\d+)", report.stdout).group(1))  # type: ignore[union-attr]
    assert missing > 0 and report.stored + missing == scenarios.CUT and not report.wrong
    assert report.bodies_from(lambda r: True) == 0
