"""HistoryServer's inbound bounds: sessions over the cap hear TOO_MANY_PEERS, half-open floods are dropped.

The server runs in-process on 127.0.0.1 so the test can read its counters; the peers are real
ethp2p client sessions and raw TCP connections that never start a handshake.
"""

from __future__ import annotations

import asyncio

import pytest

from ethp2p.chain.genesis import load_genesis
from ethp2p.p2p.disconnect import DisconnectReason
from ethp2p.peers.eth_peer import EthPeer, PeerDisconnected
from ethp2p.peers.limits import inbound_handshake_slots
from ethp2p.serve.server import HistoryServer
from ethp2p.store.blocks import BlockStore
from tests.support.servers import ETHTEST_GENESIS, ethtest_store, start_servers

SPEC = load_genesis(ETHTEST_GENESIS)


@pytest.fixture()
async def server(tmp_path):
    store = BlockStore(ethtest_store(tmp_path / "s.db"), genesis_hash=SPEC.genesis_hash)
    srv = HistoryServer(store, SPEC, port=0, max_inbound=1, handshake_timeout=1.5)
    await srv.start()
    yield srv
    await srv.close()
    store.close()


Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _silent(srv: HistoryServer) -> Conn:
    """A TCP connection that never sends its auth message (a half-open handshake)."""
    return await asyncio.open_connection("127.0.0.1", srv.port)


async def _closed_by_server(conn: Conn, timeout: float = 5.0) -> bool:
    """True once the server has closed (or reset) this connection without sending anything."""
    try:
        return await asyncio.wait_for(conn[0].read(1), timeout) == b""
    except ConnectionResetError:
        return True


def test_slots_are_twice_the_cap_and_at_least_two() -> None:
    assert [inbound_handshake_slots(n) for n in (0, 1, 2, 200)] == [2, 2, 4, 400]


async def test_peer_over_the_cap_hears_too_many_peers_while_a_handshake_is_half_open(server: HistoryServer) -> None:
    first = await EthPeer.connect(server.enode, SPEC)
    silent = await _silent(server)  # holds one handshake slot
    await asyncio.sleep(0.1)
    # The cap of 1 session is reached and a handshake is pending, yet the next peer still
    # completes a handshake and is told why it is refused.
    with pytest.raises(PeerDisconnected) as info:
        await EthPeer.connect(server.enode, SPEC)
    assert info.value.event is not None and info.value.event.reason == DisconnectReason.TOO_MANY_PEERS
    assert server.stats.rejected_full == 1
    assert len(await first.request_headers(0, 3)) == 3  # the admitted session is unaffected
    # The silent connection is dropped when its handshake times out.
    assert await _closed_by_server(silent)
    await first.disconnect()
    silent[1].close()


async def test_half_open_flood_beyond_the_slots_is_dropped_unanswered(server: HistoryServer) -> None:
    slots = inbound_handshake_slots(server.max_inbound)
    held = [await _silent(server) for _ in range(slots)]
    await asyncio.sleep(0.1)
    extra = await _silent(server)
    # Dropped at once, long before the handshake timeout.
    assert await _closed_by_server(extra, timeout=1.0)
    assert server.stats.rejected_full == 1
    # Once the held handshakes time out, the server takes a real peer again.
    for w in held:
        assert await _closed_by_server(w)
        w[1].close()
    peer = await EthPeer.connect(server.enode, SPEC)
    assert len(await peer.request_headers(0, 2)) == 2
    await peer.disconnect()
    extra[1].close()


async def test_sessions_per_address_is_a_serve_option(tmp_path) -> None:
    """``serve --sessions-per-address N`` (for many honest peers behind one NAT, or fewer): with 1, a
    second session from the same address is told TOO_MANY_PEERS though the server has room, and the
    stop line names the reason. (Real ``ethp2p serve`` process; peers from 127.0.0.1.)"""
    (proc,) = start_servers(
        1,
        ethtest_store(tmp_path / "s.db"),
        tmp_path,
        network_args=["--genesis", str(ETHTEST_GENESIS)],
        extra=["--sessions-per-address", "1", "--handshakes-per-address", "2"],
    )
    try:
        first = await EthPeer.connect(proc.enode, SPEC)
        # The address's share is checked once the session is made (its Status known), then it is told.
        try:
            second = await EthPeer.connect(proc.enode, SPEC)
            await asyncio.wait_for(second.wait_closed(), 5)
            told = second.closed_event
        except PeerDisconnected as e:
            told = e.event
        assert told is not None and told.reason == DisconnectReason.TOO_MANY_PEERS, told
        assert len(await first.request_headers(0, 2)) == 2
        await first.disconnect()
        await asyncio.sleep(0.2)
        again = await EthPeer.connect(proc.enode, SPEC)  # the address's one session is free again
        await again.disconnect()
    finally:
        out = proc.stop()
    assert "inbound connections refused: sessions of the address full (told too many peers): 1;" in out, out
