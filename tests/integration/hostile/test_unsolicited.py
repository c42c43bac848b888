"""Unsolicited answers against a real ``ethp2p serve`` (issue #23, item 6).

A server never sends requests, so every BlockHeaders, BlockBodies or Receipts it receives answers
nothing: each is a fault, rejected on its request id without decoding the rest, and the third
(``eth.session.MAX_UNSOLICITED``) ends the session with breach of protocol and a reason in the
server's log. The server goes on serving the next peer.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from ethp2p.chain.genesis import load_genesis
from ethp2p.eth import codec
from ethp2p.eth import messages as m
from ethp2p.eth.session import MAX_UNSOLICITED
from ethp2p.p2p.disconnect import DisconnectReason
from ethp2p.peers.eth_peer import EthPeer
from ethp2p.transport.stream import ConnectionLost
from tests.support.servers import ETHTEST_GENESIS, ServerProcess, ethtest_store

SPEC = load_genesis(ETHTEST_GENESIS)


async def test_a_server_disconnects_a_client_that_sends_unsolicited_answers(tmp_path: Path) -> None:
    server = ServerProcess(
        ethtest_store(tmp_path / "ethtest.db"), network_args=["--genesis", str(ETHTEST_GENESIS)], workdir=tmp_path
    )
    try:
        enode = server.wait_ready()
        peer = await EthPeer.connect(enode, SPEC)
        v = peer.eth_version
        answers: list[m.Message] = [
            m.BlockHeaders(1, [b"\xc0"]),
            m.BlockBodies(2, [b"\xc2\xc0\xc0"]),
            m.make_receipts(v, 3, [b"\xc0"], False),
        ]
        sent = 0
        with contextlib.suppress(ConnectionLost, RuntimeError, OSError):
            for i in range(5000):  # the server hangs up long before
                if peer.closed:
                    break
                await peer.conn.send_message("eth", *codec.encode_message(answers[i % 3], v))
                sent += 1
                if sent >= MAX_UNSOLICITED:
                    await asyncio.sleep(0.01)
        await asyncio.wait_for(peer.wait_closed(), 10)
        ev = peer.closed_event
        assert ev is not None and ev.by_peer and ev.reason == DisconnectReason.BREACH_OF_PROTOCOL, ev
        assert sent < 1000, f"the server took {sent} unsolicited answers"

        # The next peer is served as usual.
        ok = await EthPeer.connect(enode, SPEC)
        assert len(await ok.request_headers(0, 3)) == 3
        await ok.disconnect()
    finally:
        log = server.stop()
    assert f"{MAX_UNSOLICITED} unsolicited answers" in log, log
