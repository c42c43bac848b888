"""``ethp2p head`` proves the head of a 100,000-block chain from baseline 0 in a few header requests
(issue #22, "Mainnet in a box": the walk starts at each peer's Status best hash, not at block 0)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ethp2p.chain.header import Header
from ethp2p.store.blocks import BlockStore
from tests.support.longchain import LongChain
from tests.support.servers import ServerProcess, private_loopback, start_servers

HEAD_LINE = re.compile(
    r"head: #(\d+) 0x([0-9a-f]{64}) \(peer-agreement: peer agreement: (\d+) peers on distinct /32 networks serve it; "
    r"linked headers from (\d+) peer\(s\), (\d+) requests\)"
)


def _stored_top(chain: LongChain) -> Header:
    with BlockStore(chain.store, readonly=True) as s:
        assert s.contiguous_range() == (0, chain.head_number)
        top = Header(s.header_by_number(chain.head_number) or b"")
    assert top.hash == chain.head_hash
    return top


def _servers(chain: LongChain, work: Path, honest: int, lying: int) -> list[ServerProcess]:
    """``honest + lying`` serving processes of the chain, each on its own loopback address (a /32
    "network" of its own); the ``lying`` ones claim a made-up head in Status (and serve the chain)."""
    hosts = private_loopback(honest + lying)
    net = ["--genesis", str(chain.genesis)]
    servers = start_servers(honest, chain.store, work, network_args=net, hosts=hosts[:honest])
    if lying:
        try:
            servers += start_servers(
                lying, chain.store, work, network_args=net, hosts=hosts[honest:], extra=["--misbehave", "lying-head"]
            )
        except BaseException:
            for s in servers:
                s.stop()
            raise
    return servers


def _head(chain: LongChain, servers: Sequence[ServerProcess]) -> tuple[subprocess.CompletedProcess[str], float]:
    """The real CLI, from baseline 0, dialling only ``servers``; its result and wall time."""
    t0 = time.monotonic()
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "ethp2p.cli",
            "head",
            "--genesis",
            str(chain.genesis),
            "--bootnodes",
            ",".join(s.enode for s in servers),
            "--dns",
            "",
            "--no-discovery",
            "--peers",
            str(len(servers)),
            "--baseline",
            "0",
            "--agreement-prefix",
            "32",
            "--timeout",
            "30",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return r, time.monotonic() - t0


def _proven_head(r: subprocess.CompletedProcess[str]) -> tuple[int, bytes, int, int, int]:
    """(number, hash, agreeing peers, peers walked, requests) from a proven head's line."""
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    m = HEAD_LINE.search(r.stdout)
    assert m is not None, r.stdout
    number, hash_hex, agreeing, walked, requests = m.groups()
    return int(number), bytes.fromhex(hash_hex), int(agreeing), int(walked), int(requests)


def test_head_of_a_100k_block_chain_is_proven_by_three_peers_from_baseline_0(
    long_chain: LongChain, tmp_path: Path
) -> None:
    top = _stored_top(long_chain)
    servers = _servers(long_chain, tmp_path, 3, 0)
    try:
        r, wall = _head(long_chain, servers)
        print(f"\nethp2p head, {long_chain.head_number + 1:,}-block chain, 3 peers: {wall:.2f} s wall\n{r.stdout}")
        number, block_hash, agreeing, walked, requests = _proven_head(r)
        assert number == 99_999 and block_hash == top.hash
        assert agreeing == 3 and walked == 3
        # Per peer: its best-hash header (unless the probe on joining fetched it already), one walk
        # request from there (a short answer: nothing above it), one agreement request. Walking up
        # from 0 in rounds of 1,024 headers would take 98 requests per peer.
        assert 6 <= requests <= 9, r.stdout
    finally:
        for s in servers:
            s.stop()


def test_a_peer_whose_status_head_is_made_up_still_counts_at_100k(long_chain: LongChain, tmp_path: Path) -> None:
    """Two honest peers and one whose Status best hash is made up (it serves the chain all the same):
    that peer's walk starts at the head the others proved, not at block 0, so it is found to serve
    #99,999 and is the third peer to agree. (Walking from 0 stopped at the round limit, 64 rounds,
    #65,472: about 65,000 headers fetched for nothing, and too low to be asked to agree: not proven.)"""
    top = _stored_top(long_chain)
    servers = _servers(long_chain, tmp_path, 2, 1)
    try:
        r, wall = _head(long_chain, servers)
        print(f"\nethp2p head, 2 honest peers + 1 lying-head: {wall:.2f} s wall\n{r.stdout}")
        number, block_hash, agreeing, walked, requests = _proven_head(r)
        assert number == 99_999 and block_hash == top.hash
        assert agreeing == 3 and walked == 3
        # As above, plus the liar's made-up best hash asked for (once on joining, maybe once more).
        assert 6 <= requests <= 10, r.stdout
    finally:
        for s in servers:
            s.stop()
