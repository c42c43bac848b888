"""ethp2p against @ethereumjs/client 0.10.5 on loopback: eth/68 handshake, headers, bodies, receipts."""

from __future__ import annotations

import asyncio
import time

import pytest

from ethp2p.chain.genesis import load_genesis
from ethp2p.chain.header import Header
from ethp2p.chain.verify import verify_body, verify_header_chain, verify_receipts
from ethp2p.enode import Enode
from ethp2p.peers.eth_peer import EthPeer, RequestTimeout
from ethp2p.probe import format_probe, probe
from tests.conftest import VECTORS
from tests.interop.ethereumjs import EthereumJS

pytestmark = pytest.mark.interop

SPEC = load_genesis(VECTORS / "ethtest/genesis.json")


async def _headers(peer: EthPeer) -> list[Header]:
    raw = await peer.request_headers(0, 1024)
    return [Header(h) for h in raw]


async def test_fetch_all_headers_and_bodies_at_eth68(ethereumjs_ethtest: EthereumJS) -> None:
    peer = await EthPeer.connect(ethereumjs_ethtest.enode or "", SPEC)
    try:
        assert peer.eth_version == 68  # it offers eth/66-68; we offer 68-70
        assert "ethereumjs" in peer.client_id.lower()
        headers = await _headers(peer)
        assert len(headers) == 601
        assert headers[0].hash == SPEC.genesis_hash
        verify_header_chain(headers, 0)
        assert headers[-1].hash.hex().startswith("44e3809c")
        bodies: list[bytes] = []
        hashes = [h.hash for h in headers[1:]]
        while len(bodies) < len(hashes):
            got = await peer.request_bodies(hashes[len(bodies) : len(bodies) + 128])
            assert got, "peer stopped answering bodies"
            bodies += [bytes(b) for b in got]
        assert len(bodies) == 600
        for h, b in zip(headers[1:], bodies, strict=True):
            verify_body(h, b)
    finally:
        await peer.disconnect()


async def test_stock_client_never_answers_receipts_and_we_time_out(ethereumjs_ethtest: EthereumJS) -> None:
    peer = await EthPeer.connect(ethereumjs_ethtest.enode or "", SPEC)
    try:
        headers = await _headers(peer)
        start = time.monotonic()
        with pytest.raises(RequestTimeout, match="did not answer"):
            await peer.request_receipts([h.hash for h in headers[1:5]], timeout=1.5)
        assert time.monotonic() - start < 5
        # The session survives the timeout: the peer still answers headers.
        assert len(await peer.request_headers(1, 3)) == 3
    finally:
        await peer.disconnect()


async def test_patched_client_serves_receipts_that_match_every_root(ethereumjs_ethtest_receipts: EthereumJS) -> None:
    """With the harness's three edits to ethereumjs, all 600 receipt lists verify (block 11 is 10.6 MB)."""
    peer = await EthPeer.connect(ethereumjs_ethtest_receipts.enode or "", SPEC, request_timeout=20)
    try:
        headers = (await _headers(peer))[1:]
        bodies = []
        for i in range(0, 600, 200):
            bodies += await peer.request_bodies([h.hash for h in headers[i : i + 200]])
        tx_counts = [len(verify_body(h, b).transactions) for h, b in zip(headers, bodies, strict=False)]
        done = 0
        requests = 0
        while done < 600:
            msg = await peer.request_receipts([h.hash for h in headers[done : done + 256]])
            requests += 1
            assert msg.receipts, f"no receipts from block {done + 1}"
            for lst in msg.receipts:  # a prefix of what we asked, ending where the size limit hit
                verify_receipts(headers[done], lst, form=68, tx_count=tx_counts[done])
                done += 1
        assert requests >= 3  # block 11's 10.6 MB list ends one answer early
    finally:
        await peer.disconnect()


async def test_probe_prints_status(ethereumjs_ethtest: EthereumJS) -> None:
    result = await probe(Enode.parse(ethereumjs_ethtest.enode or ""), SPEC, timeout=10)
    text = format_probe(result)
    assert result.error is None, text
    assert result.eth_version == 68
    assert f"0x{SPEC.genesis_hash.hex()}" in text and "network id:    3503995874084926" in text
    assert result.head_number == 600 and result.head_hash is not None and result.head_hash.hex().startswith("44e3809c")


async def test_fetch_payloads_from_patched_client(ethereumjs_ethtest_receipts: EthereumJS) -> None:
    from ethp2p.fetch import fetch_payloads_for_peer

    peer = await EthPeer.connect(ethereumjs_ethtest_receipts.enode or "", SPEC, request_timeout=20)
    try:
        outcome = await fetch_payloads_for_peer(peer, 0, 600)
    finally:
        await peer.disconnect()
    assert outcome.missing_blocks == [] and outcome.faults == []
    assert [p.number for p in outcome.payloads] == list(range(601))
    assert outcome.fetch_stats.receipts_requests >= 2


async def test_fetch_payloads_from_stock_client_reports_missing(ethereumjs_ethtest: EthereumJS) -> None:
    from ethp2p.fetch import fetch_payloads_for_peer

    peer = await EthPeer.connect(ethereumjs_ethtest.enode or "", SPEC)
    try:
        start = time.monotonic()
        outcome = await fetch_payloads_for_peer(peer, 1, 600)
        assert time.monotonic() - start < 15  # headers and bodies, then one receipts timeout (adaptive, <= 8 s)
    finally:
        await peer.disconnect()
    with_receipts = {n for n in range(1, 601)} - {p.number for p in outcome.payloads}
    assert outcome.missing_blocks == sorted(with_receipts) and len(with_receipts) > 500
    assert [f.kind for f in outcome.faults] == ["timeout"]
    # Blocks whose header proves no receipts were delivered without asking.
    assert all(p.receipts == b"\xc0" for p in outcome.payloads)


def test_probe_command_prints_status(ethereumjs_ethtest: EthereumJS) -> None:
    import subprocess
    import sys

    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "ethp2p.cli",
            "probe",
            "--genesis",
            str(VECTORS / "ethtest/genesis.json"),
            ethereumjs_ethtest.enode or "",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "negotiated:    eth/68" in r.stdout and "head header:   #600 0x44e3809c" in r.stdout
    assert "capabilities:  eth/66, eth/67, eth/68" in r.stdout or "eth/68" in r.stdout


async def test_session_admits_ethereumjs_with_probed_head(ethereumjs_ethtest: EthereumJS) -> None:
    from ethp2p.peers.limits import p2p_limits
    from ethp2p.peers.network import connect

    async with connect(
        SPEC, bootnodes=[ethereumjs_ethtest.enode or ""], timeout=20, limits=p2p_limits(peer_start_warmup=0)
    ) as net:
        (peer,) = net.pool.snapshot()
        for _ in range(50):
            if peer.head_number is not None:
                break
            await asyncio.sleep(0.1)
        assert peer.eth_version == 68 and peer.head_number == 600
        assert net.p2p_stats.sessions_established == 1 and net.p2p_stats.probes_ok == 1


async def test_discv4_with_ethereumjs_then_rlpx_dial(tmp_path) -> None:
    """ethereumjs (discv4 on) uses ethp2p as its boot node: they bond, each finds the other, and
    ethp2p dials it over RLPx from what discovery returned (no enode given to the network)."""
    from ethp2p.peers.limits import p2p_limits
    from ethp2p.peers.network import PeerNetwork
    from tests.interop.ethereumjs import installed

    if not installed():
        pytest.skip("@ethereumjs/client is not installed")
    # No TCP listener: ethereumjs can't dial us, so the session in the pool is our outbound dial.
    async with PeerNetwork(SPEC, limits=p2p_limits(peer_start_warmup=0), discovery_bootnodes=[]) as net:
        assert net.discovery is not None
        me = net.discovery.enode.url()
        client = EthereumJS(
            tmp_path / "ejs",
            VECTORS / "ethtest/genesis.json",
            VECTORS / "ethtest/chain.rlp",
            extra_args=("--bootnodes", me),
            discovery=True,
        )
        try:
            await asyncio.to_thread(client.start, 60)
            await asyncio.wait_for(net.pool.wait_for_size(1), 30)
            (peer,) = net.pool.snapshot()
            assert peer.direction == "outbound" and peer.eth_version == 68
            assert net.p2p_stats.discovered_count >= 1  # ethereumjs came to us through discv4
            assert net.discovery is not None and len(net.discovery.table) >= 1
            ejs_id = bytes.fromhex((client.enode or "")[8:136])
            assert peer.peer_id == ejs_id
        finally:
            await asyncio.to_thread(client.stop)
