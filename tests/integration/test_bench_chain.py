"""The mainnet-shaped benchmark chain (bench/mainnet_shaped.py) is a valid chain a server serves.

Every header links and carries Prague's fields, every body and receipt list
verifies against its header, and an ethp2p client fetches and verifies it from
an ethp2p server process at eth/68 and eth/69.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from bench.mainnet_shaped import build, genesis_spec, load_sources

from ethp2p.chain.genesis import load_genesis
from ethp2p.chain.header import Header
from ethp2p.chain.verify import verify_body, verify_fork_fields, verify_header_chain, verify_receipts
from ethp2p.fetch import fetch_payloads_for_peer
from ethp2p.peers.eth_peer import EthPeer
from ethp2p.store.blocks import BlockStore
from tests.support.servers import start_servers

COUNT = 30


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return build(tmp_path_factory.mktemp("shaped"), COUNT, quiet=True)


def test_every_block_verifies(chain: tuple[Path, Path]) -> None:
    genesis, db = chain
    spec = load_genesis(genesis)
    assert spec.genesis_hash == genesis_spec().genesis_hash
    sources = load_sources()
    assert len(sources) == 11 and {len(s.fields) for s in sources} == {21}
    with BlockStore(db, readonly=True) as store:
        blocks = list(store.canonical_blocks(0, COUNT))
    assert len(blocks) == COUNT + 1 and blocks[0].hash == spec.genesis_hash
    headers = [Header(b.header) for b in blocks]
    verify_header_chain(headers, 0)
    sizes = []
    for h, b in zip(headers[1:], blocks[1:], strict=True):
        assert b.body is not None and b.receipts is not None
        verify_fork_fields(h, spec)
        body = verify_body(h, b.body)
        verify_receipts(h, b.receipts, form=69, tx_count=len(body.transactions))
        sizes.append(len(b.body) + len(b.receipts))
    assert sum(sizes) / len(sizes) > 150_000  # mainnet-sized, not toy blocks


def test_served_and_fetched_at_68_and_69(chain: tuple[Path, Path], tmp_path: Path) -> None:
    genesis, db = chain
    spec = load_genesis(genesis)
    (server,) = start_servers(1, db, tmp_path, network_args=["--genesis", str(genesis)])

    async def fetch(version: int) -> None:
        peer = await EthPeer.connect(server.enode, spec, versions=(version,))
        try:
            out = await fetch_payloads_for_peer(peer, 1, COUNT)
        finally:
            await peer.disconnect()
        assert not out.missing_blocks and not out.faults
        assert [p.number for p in out.payloads] == list(range(1, COUNT + 1))

    try:
        for v in (68, 69):
            asyncio.run(fetch(v))
    finally:
        server.stop()
