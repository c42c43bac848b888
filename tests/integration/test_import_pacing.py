"""Block-body answers to an @ethereumjs/client-like peer wait for its importer (ethp2p.serve.pacing).

A real ``HistoryServer`` on 127.0.0.1 and a real ethp2p client session that says it is
@ethereumjs/client in its Hello. The client side's importer is a stand-in (``Importer``: it
answers a header by number only up to the height the test sets, as that client does for blocks
it has not imported); the real client syncing through the rule is tests/interop's full-sync test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from ethp2p.chain.genesis import load_genesis
from ethp2p.eth import messages as m
from ethp2p.peers.eth_peer import EthPeer
from ethp2p.serve import pacing
from ethp2p.serve.handler import StoreHandler
from ethp2p.serve.pacing import ImportGate
from ethp2p.serve.server import HistoryServer
from ethp2p.store.blocks import BlockStore
from tests.support.servers import ETHTEST_GENESIS, ethtest_store

SPEC = load_genesis(ETHTEST_GENESIS)
EJS = "EthereumJS/0.10.5/linux/node20.19.5"


class Importer(StoreHandler):
    """The client's side: serves headers by number only up to :attr:`height` (what it has imported)."""

    def __init__(self, store: BlockStore) -> None:
        super().__init__(store)
        self.height = 0
        self.asked: list[int] = []

    def block_headers(self, request: m.GetBlockHeaders) -> list[bytes]:
        if isinstance(request.origin, int):
            self.asked.append(request.origin)
            if request.origin > self.height:
                return []
        return super().block_headers(request)


@pytest.fixture()
def store(tmp_path: Path):
    s = BlockStore(ethtest_store(tmp_path / "s.db"), genesis_hash=SPEC.genesis_hash)
    yield s
    s.close()


async def _server(store: BlockStore, **kw: object) -> HistoryServer:
    srv = HistoryServer(store, SPEC, port=0, **kw)  # type: ignore[arg-type]
    await srv.start()
    return srv


def _hashes(store: BlockStore, first: int, count: int) -> Sequence[bytes]:
    return [b.hash for b in store.canonical_blocks(first, first + count - 1)]


async def test_bodies_wait_until_the_client_holds_the_blocks_below(store: BlockStore) -> None:
    srv = await _server(store)
    importer = Importer(store)
    peer = await EthPeer.connect(srv.enode, SPEC, handler=importer, client_id=EJS)
    try:
        importer.height = 100
        answer = asyncio.ensure_future(peer.request_bodies(_hashes(store, 201, 100)))
        await asyncio.sleep(0.4)
        assert not answer.done(), "answered before the client held block 200"
        assert importer.asked and set(importer.asked) == {200}, importer.asked  # the server asked for it
        importer.height = 200
        bodies = await asyncio.wait_for(answer, 2)
        assert len(bodies) == 100
        # Blocks below what the client holds are answered at once, without asking again.
        asked = len(importer.asked)
        assert len(await peer.request_bodies(_hashes(store, 101, 100))) == 100
        assert len(importer.asked) == asked
    finally:
        await peer.disconnect()
        await srv.close()
    assert srv.stats.answers_paced == 1 and srv.stats.seconds_paced > 0


async def test_a_hold_is_bounded_when_the_client_never_catches_up(
    store: BlockStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pacing, "MAX_HOLD", 0.5)
    srv = await _server(store)
    importer = Importer(store)
    peer = await EthPeer.connect(srv.enode, SPEC, handler=importer, client_id=EJS)
    try:
        bodies = await asyncio.wait_for(peer.request_bodies(_hashes(store, 301, 50)), 3)
        assert len(bodies) == 50
        assert len(importer.asked) >= 2  # it kept asking until the bound
    finally:
        await peer.disconnect()
        await srv.close()


@pytest.mark.parametrize("who", ["other client", "pacing off"])
async def test_other_clients_and_no_pacing_are_answered_at_once(store: BlockStore, who: str) -> None:
    srv = await _server(store, pace_importers=who != "pacing off")
    importer = Importer(store)
    client_id = EJS if who == "pacing off" else "Geth/v1.16.0-stable/linux-amd64/go1.24.4"
    peer = await EthPeer.connect(srv.enode, SPEC, handler=importer, client_id=client_id)
    try:
        bodies = await asyncio.wait_for(peer.request_bodies(_hashes(store, 401, 100)), 2)
        assert len(bodies) == 100
        assert importer.asked == []  # never asked what it holds
    finally:
        await peer.disconnect()
        await srv.close()
    assert srv.stats.answers_paced == 0
    assert all(not isinstance(p.answer_gate, ImportGate) or p.answer_gate.held == 0 for p in srv.peers)
