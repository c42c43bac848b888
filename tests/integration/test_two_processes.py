"""Two ethp2p processes over loopback: handshake, Status at eth/69 and eth/70, requests, ping, disconnects."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ethp2p.chain.genesis import load_genesis
from ethp2p.chain.header import Header
from ethp2p.chain.verify import verify_body, verify_header_chain
from ethp2p.eth import messages as m
from ethp2p.p2p.disconnect import DisconnectReason
from ethp2p.peers.eth_peer import EthPeer, PeerDisconnected
from tests.support.servers import ETHTEST_GENESIS, ServerProcess, ethtest_store, start_servers

SPEC = load_genesis(ETHTEST_GENESIS)
NET = ["--genesis", str(ETHTEST_GENESIS)]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ethtest_store(tmp_path_factory.mktemp("store") / "ethtest.db")


@pytest.fixture()
def server(store: Path, tmp_path: Path) -> Iterator[ServerProcess]:
    (s,) = start_servers(1, store, tmp_path, network_args=NET)
    yield s
    s.stop()


@pytest.mark.parametrize("version", [69, 70])
async def test_status_requests_ping_and_disconnect(server: ServerProcess, version: int) -> None:
    peer = await EthPeer.connect(server.enode, SPEC, versions=(version,))
    assert peer.eth_version == version
    status = peer.status
    assert isinstance(status, m.StatusV69) and status.version == version
    assert (status.earliest_block, status.latest_block) == (0, 600)
    assert status.genesis_hash == SPEC.genesis_hash
    assert peer.block_range == (0, 600)
    assert peer.client_id.startswith("ethp2p/")
    # The announced head is real: fetch it by hash.
    (head,) = [Header(h) for h in await peer.request_headers(status.latest_hash, 1)]
    assert head.number == 600 and head.hash == status.latest_hash
    headers = [Header(h) for h in await peer.request_headers(0, 1024)]
    assert len(headers) == 601
    verify_header_chain(headers, 0)
    backwards = [Header(h) for h in await peer.request_headers(600, 5, skip=9, reverse=True)]
    assert [h.number for h in backwards] == [600, 590, 580, 570, 560]
    bodies = await peer.request_bodies([h.hash for h in headers[1:101]])
    assert len(bodies) == 100
    for h, b in zip(headers[1:], bodies, strict=False):  # headers beyond the 100 asked
        verify_body(h, b)
    rtt = await peer.ping(timeout=5)
    assert 0 <= rtt < 5
    await peer.disconnect(DisconnectReason.CLIENT_QUITTING)
    out = server.stop()
    assert "peer disconnected: client_quitting" in out, out


async def test_server_full_says_too_many_peers(store: Path, tmp_path: Path) -> None:
    (s,) = start_servers(1, store, tmp_path, network_args=NET, extra=["--max-inbound", "1"])
    try:
        first = await EthPeer.connect(s.enode, SPEC)
        with pytest.raises(PeerDisconnected) as info:
            await EthPeer.connect(s.enode, SPEC)
        assert info.value.event is not None and info.value.event.reason == DisconnectReason.TOO_MANY_PEERS
        await first.disconnect()
    finally:
        s.stop()


async def test_wrong_genesis_is_useless_peer(server: ServerProcess) -> None:
    from ethp2p.eth.chainspec import MAINNET
    from ethp2p.peers.eth_peer import IncompatiblePeer

    with pytest.raises(IncompatiblePeer, match="genesis|network"):
        await EthPeer.connect(server.enode, MAINNET)
