"""Hostile bytes on a live session: each breach ends the session with a reason; the server survives.

The server runs in-process here (``HistoryServer`` on 127.0.0.1) so the test can read its
counters; the hostile side is a real ethp2p client session writing bad frames/messages.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from ethp2p import rlp
from ethp2p.chain.genesis import load_genesis
from ethp2p.p2p.disconnect import DisconnectReason
from ethp2p.peers.eth_peer import EthPeer
from ethp2p.serve.server import HistoryServer
from ethp2p.store.blocks import BlockStore
from tests.support.servers import ETHTEST_GENESIS, ethtest_store

SPEC = load_genesis(ETHTEST_GENESIS)


@pytest.fixture()
async def server(tmp_path):
    store = BlockStore(ethtest_store(tmp_path / "s.db"), genesis_hash=SPEC.genesis_hash)
    srv = HistoryServer(store, SPEC, port=0)
    await srv.start()
    yield srv
    await srv.close()
    store.close()


async def _expect_disconnect(srv: HistoryServer, send) -> str:
    peer = await EthPeer.connect(srv.enode, SPEC)
    await send(peer)
    await asyncio.wait_for(peer.wait_closed(), 5)
    assert peer.closed_event is not None and peer.closed_event.by_peer
    # The server is still serving the next peer.
    ok = await EthPeer.connect(srv.enode, SPEC)
    assert len(await ok.request_headers(0, 3)) == 3
    await ok.disconnect()
    return peer.closed_event.describe()


def _raw(peer: EthPeer, code: int, payload: bytes) -> None:
    """Queue an eth message with arbitrary (already snappy-compressed by the core) payload."""
    peer.conn.core.send_message("eth", code, payload)


_BAD_MESSAGES = [
    ("non-canonical integer", 0x03, rlp.encode([1, [b"\x00\x05", 1, 0, 0]])),
    ("truncated list", 0x03, rlp.encode([1, [5, 1, 0, 0]])[:-2]),
    ("trailing garbage", 0x05, rlp.encode([1, [b"\x11" * 32]]) + b"\x00"),
    ("not RLP at all", 0x0F, os.urandom(40)),
    ("second Status", 0x00, rlp.encode([68, 1, 1, b"\x00" * 32, b"\x00" * 32, [b"\x00" * 4, 0]])),
    ("removed message id", 0x0D, rlp.encode([1, []])),
]


@pytest.mark.parametrize(("what", "code", "payload"), _BAD_MESSAGES, ids=[b[0] for b in _BAD_MESSAGES])
async def test_malformed_eth_message_is_breach_of_protocol(
    server: HistoryServer, what: str, code: int, payload: bytes
) -> None:
    async def send(peer: EthPeer) -> None:
        _raw(peer, code, payload)
        await peer.conn.flush()

    text = await _expect_disconnect(server, send)
    assert "breach_of_protocol" in text


async def test_garbage_frame_is_breach_of_protocol(server: HistoryServer) -> None:
    async def send(peer: EthPeer) -> None:
        peer.conn.writer.write(os.urandom(96))
        await peer.conn.writer.drain()

    # The server can't even authenticate the frame; it disconnects (or drops the stream).
    peer = await EthPeer.connect(server.enode, SPEC)
    await send(peer)
    await asyncio.wait_for(peer.wait_closed(), 5)
    assert server.stats.disconnect_reasons, "server recorded no ending"
    assert any("breach_of_protocol" in k for k in server.stats.disconnect_reasons)


async def test_snappy_bomb_is_refused(server: HistoryServer) -> None:
    async def send(peer: EthPeer) -> None:
        # Bypass compression: a block claiming 64 MiB after decompression.
        peer.conn.core._send_frame(16 + 0x03, b"\x80\x80\x80\x20" + b"\x00" * 8, compressed=False)  # noqa: SLF001
        await peer.conn.flush()

    text = await _expect_disconnect(server, send)
    assert "breach_of_protocol" in text


async def test_more_items_than_asked_is_rejected_by_client(server: HistoryServer) -> None:
    """A client-side check: answers with more items than requested are a protocol breach (PeerMisbehaved)."""
    from ethp2p.peers.eth_peer import PeerMisbehaved

    class Greedy:
        def block_headers(self, request):
            return [server.store.header_by_number(n) for n in range(0, 10)]

        def block_bodies(self, hashes):
            return []

        def receipts(self, hashes, version, first_index):
            return [], False

    server.handler = Greedy()
    peer = await EthPeer.connect(server.enode, SPEC)
    with pytest.raises(PeerMisbehaved, match="10 items"):
        await peer.request_headers(0, 2)
    await peer.disconnect()


async def test_disconnect_reasons_both_forms_survive(server: HistoryServer) -> None:
    peer = await EthPeer.connect(server.enode, SPEC)
    await peer.disconnect(DisconnectReason.TOO_MANY_PEERS)
    await asyncio.sleep(0.2)
    assert any("too_many_peers" in k for k in server.stats.disconnect_reasons)


@pytest.mark.parametrize("version", [68, 69])
async def test_first_status_with_non_canonical_integer_is_refused(server: HistoryServer, version: int) -> None:
    """A Status whose numbers are not canonical RLP (a zero written as 0x00, as one JS client once
    sent its total difficulty) gets a Disconnect with a reason at once, not a silent wait."""
    from ethp2p.crypto.keys import PrivateKey
    from ethp2p.enode import Enode
    from ethp2p.transport.stream import ConnectionClosed, P2PStream

    node = server.enode if isinstance(server.enode, Enode) else Enode.parse(server.enode)
    local = EthPeer.local_identity(PrivateKey.generate(), (version,))
    assert node.host is not None
    conn = await P2PStream.dial(node.host, node.tcp_port, local, node.pubkey, timeout=5)
    fork_id = [bytes.fromhex("00000000"), 0]
    g = SPEC.genesis_hash
    if version == 68:  # [version, network, td, head, genesis, forkid] with td = 0x00
        status = [68, SPEC.network_id, b"\x00", g, g, fork_id]
    else:  # [version, network, genesis, forkid, earliest, latest, latest-hash] with earliest = 0x00
        status = [69, SPEC.network_id, g, fork_id, b"\x00", 0, g]
    await conn.send_message("eth", 0x00, rlp.encode(status))
    t0 = asyncio.get_running_loop().time()
    closed = None
    while closed is None:
        event = await asyncio.wait_for(conn.next_event(), 5)
        if isinstance(event, ConnectionClosed):
            closed = event
    assert asyncio.get_running_loop().time() - t0 < 5
    assert closed.by_peer and "breach_of_protocol" in closed.describe()
    assert server.stats.handshake_failures == 1 and server.stats.accepted == 0


@pytest.mark.parametrize("version", [68, 69])
async def test_status_with_a_non_canonical_integer_is_answered_with_a_disconnect(
    server: HistoryServer, version: int
) -> None:
    """A Status whose integer field has a leading zero (the JS client once sent td as 0x00) is a breach,
    said so at once."""
    from ethp2p.crypto.keys import PrivateKey
    from ethp2p.enode import Enode
    from ethp2p.eth import codec
    from ethp2p.eth.status import make_status
    from ethp2p.p2p.connection import ConnectionClosed
    from ethp2p.transport.stream import P2PStream

    node = Enode.parse(server.enode) if isinstance(server.enode, str) else server.enode
    local = EthPeer.local_identity(PrivateKey.generate(), (version,))
    assert node.host is not None
    conn = await P2PStream.dial(node.host, node.tcp_port, local, node.pubkey, timeout=5)
    good = rlp.decode(codec.encode_message(make_status(SPEC, version), version)[1])
    assert isinstance(good, list) and isinstance(good[1], bytes)
    bad = list(good)
    if version == 68:
        bad[1] = b"\x00" + good[1]  # network id with a leading zero
        bad[2] = b"\x00"  # total difficulty 0 written as 0x00
    else:
        bad[1] = b"\x00" + good[1]
    conn.core.send_message("eth", 0x00, rlp.encode(bad))
    await conn.flush()
    async with asyncio.timeout(5):
        while True:
            event = await conn.next_event()
            if isinstance(event, ConnectionClosed):
                break
    assert event.by_peer and event.reason == DisconnectReason.BREACH_OF_PROTOCOL
    assert server.stats.handshake_failures >= 1
    ok = await EthPeer.connect(server.enode, SPEC)  # and the server goes on serving
    assert len(await ok.request_headers(0, 3)) == 3
    await ok.disconnect()
