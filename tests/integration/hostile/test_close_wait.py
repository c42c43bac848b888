"""Every socket of a session is closed when the session ends, however it ends: no CLOSE-WAIT left behind.

Against a real ``ethp2p serve`` process, peers end their sessions in each way a peer can: a
Disconnect, a bare TCP close after Status, a close in the middle of the RLPx handshake, a close right
after it (before Hello), and a Status from another chain. Before the fix the server closed none of the
sockets whose peer ended a session (they sat in CLOSE-WAIT until garbage collection); the client side
of a session refused at Status stayed in CLOSE-WAIT as well.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ethp2p.eth.chainspec import MAINNET
from ethp2p.peers.eth_peer import EthPeer, IncompatiblePeer, PeerDisconnected
from ethp2p.transport.stream import TransportError
from tests.support.servers import ServerProcess, ethtest_store, start_servers

from .support import CLOSE_WAIT, ESTABLISHED, LISTEN, NET, SPEC, RawInitiator, socket_states, until

#: Sessions ended each way (all from 127.0.0.1, in two rounds, within the per-address limits: 30
#: connects in all, under the throttle's burst of 32, and at most 2 at once: the server lets go of a
#: handshake slot only once it has read the peer's close, so on a loaded machine 6 at once could
#: leave more than its 8 per address pending and a connection was refused).
EACH = 3


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    store = ethtest_store(tmp_path / "ethtest.db")
    (s,) = start_servers(1, store, tmp_path, network_args=NET)
    yield s
    s.stop()


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


async def _disconnect(url: str) -> None:
    peer = await EthPeer.connect(url, SPEC)
    assert len(await peer.request_headers(0, 2)) == 2
    await peer.disconnect()


async def _tcp_close(url: str) -> None:
    peer = await EthPeer.connect(url, SPEC)
    assert len(await peer.request_headers(0, 2)) == 2
    peer.conn.writer.close()  # a FIN without a Disconnect
    await peer.wait_closed()
    await peer.disconnect()


async def _half_auth(url: str) -> None:
    host, port = url.rsplit("@", 1)[1].rsplit(":", 1)
    _, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"\x01\x20" + os.urandom(100))  # the first third of an EIP-8 auth message
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def _after_rlpx(url: str) -> None:
    raw = await RawInitiator.open(url)
    raw.writer.close()
    await raw.writer.wait_closed()


async def _wrong_chain(url: str) -> None:
    with pytest.raises(IncompatiblePeer):
        await EthPeer.connect(url, MAINNET)


async def test_no_close_wait_after_peers_end_their_sessions(server: ServerProcess) -> None:
    url, pid, port = server.enode, server.proc.pid, _port(server.enode)
    at_once = asyncio.Semaphore(2)

    async def limited(f) -> None:
        async with at_once:
            await f(url)

    for _ in range(2):  # two rounds: the sockets of the first are gone before the second starts
        await asyncio.gather(
            *(limited(f) for f in (_disconnect, _tcp_close, _half_auth, _after_rlpx, _wrong_chain) for _ in range(EACH))
        )
        # The server closes every one of its sockets (a guard against hanging, not a speed check).
        settled = await until(lambda: set(socket_states(pid, port)) <= {LISTEN}, timeout=5)
        states = socket_states(pid, port)
        mine = socket_states(os.getpid(), None)
        print(f"\nserver sockets on port {port}: {dict(states)}; this process: {dict(mine)}")
        assert states[CLOSE_WAIT] == 0, f"{states[CLOSE_WAIT]} server sockets in CLOSE-WAIT"
        assert states[ESTABLISHED] == 0
        assert settled
        # Nor does the client side keep any (the sessions refused at Status included).
        assert mine[CLOSE_WAIT] == 0, f"{mine[CLOSE_WAIT]} client sockets in CLOSE-WAIT"
    out = server.stop()
    # The sessions were real: those that passed Status were served and ended by their peers.
    assert f"sessions served: {4 * EACH}; endings: peer disconnected: requested: {2 * EACH}," in out, out


async def test_no_close_wait_on_the_client_after_a_full_server_refuses_it(tmp_path: Path) -> None:
    """A client told TOO_MANY_PEERS (after Hello, before Status) closes its socket too."""
    store = ethtest_store(tmp_path / "ethtest.db")
    (s,) = start_servers(1, store, tmp_path, network_args=NET, extra=["--max-inbound", "1"])
    try:
        first = await EthPeer.connect(s.enode, SPEC)
        refused = await asyncio.gather(*(EthPeer.connect(s.enode, SPEC) for _ in range(EACH)), return_exceptions=True)
        # (Told TOO_MANY_PEERS, or reset: our Status can reach the server after it closed, and its RST
        # then discards the Disconnect we had not read yet.)
        assert all(isinstance(r, PeerDisconnected | TransportError) for r in refused), refused
        port = _port(s.enode)
        mine = _client_states(port)
        print(f"\nclient sockets to port {port}: {mine}")
        assert mine.count(CLOSE_WAIT) == 0, f"{mine.count(CLOSE_WAIT)} client sockets in CLOSE-WAIT"
        await first.disconnect()
    finally:
        s.stop()


def _client_states(remote_port: int) -> list[str]:
    """States of this process's TCP sockets connected to ``remote_port``."""
    inodes = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    out = []
    for row in Path("/proc/self/net/tcp").read_text().splitlines()[1:]:
        cols = row.split()
        if cols[9] in inodes and int(cols[2].rsplit(":", 1)[1], 16) == remote_port:
            out.append(cols[3])
    return out
