"""``ethp2p serve --misbehave fork --fork-block 9000``: a lying peer serving a self-consistent fork
of real mainnet history, over real sockets.

Everything it serves verifies (roots, links, genesis); only an anchor tells it from the
canonical chain. That is the point: this is the peer the anchored-history checks must catch.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from ethp2p.chain.header import EMPTY_OMMERS_HASH, Header
from ethp2p.chain.verify import verify_body, verify_header_chain, verify_receipts
from ethp2p.cli import main
from ethp2p.eth.chainspec import MAINNET
from ethp2p.eth.messages import StatusV69
from ethp2p.fetch import fetch_payloads_for_peer
from ethp2p.peers.eth_peer import EthPeer
from ethp2p.serve.adversary import FORK_MARKER
from ethp2p.store.blocks import BlockStore, StoredBlock
from tests.support.forks import forked_blocks
from tests.support.servers import ServerProcess, start_servers

F = 9000
HEAD = 16383


@pytest.fixture(scope="module")
def liar(tmp_path_factory: pytest.TempPathFactory, mainnet_store_path: Path) -> Iterator[ServerProcess]:
    work = tmp_path_factory.mktemp("fork")
    (server,) = start_servers(
        1,
        mainnet_store_path,
        work,
        network_args=["--network", "mainnet"],
        extra=["--misbehave", "fork", "--fork-block", str(F)],
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def real(mainnet_store_path: Path) -> Iterator[BlockStore]:
    with BlockStore(mainnet_store_path, readonly=True) as s:
        yield s


@pytest.fixture(scope="module")
def fork(real: BlockStore) -> dict[int, StoredBlock]:
    """The fork the liar serves, computed here independently of the server process."""
    return {b.number: b for b in forked_blocks(real, F, F - 20, HEAD)}


@pytest.fixture
async def peer(liar: ServerProcess) -> AsyncIterator[EthPeer]:
    p = await EthPeer.connect(liar.enode, MAINNET)
    try:
        yield p
    finally:
        await p.disconnect()


async def test_headers_are_real_below_the_fork_and_a_linked_fork_from_it(
    peer: EthPeer, real: BlockStore, fork: dict[int, StoredBlock]
) -> None:
    start = F - 100
    got = [Header(r) for r in await peer.request_headers(start, 300)]
    assert len(got) == 300
    want_real = [Header(r) for r in real.headers_by_numbers(range(start, start + 300))]  # type: ignore[arg-type]
    assert got[:100] == want_real[:100]  # below the fork: the real chain
    for g, r in zip(
        got[100:], want_real[100:], strict=True
    ):  # from it on: every header differs, only in parent and extraData
        assert g.hash != r.hash and g.extra_data.startswith(FORK_MARKER)
        assert (g.number, g.transactions_root, g.ommers_hash, g.receipts_root, g.state_root, g.difficulty) == (
            r.number,
            r.transactions_root,
            r.ommers_hash,
            r.receipts_root,
            r.state_root,
            r.difficulty,
        )
        assert g.hash == fork[g.number].hash
    verify_header_chain(got, start)  # links throughout, across the fork point too
    assert got[100].parent_hash == real.canonical_hash(F - 1)


async def test_fetch_verifies_every_forked_block(peer: EthPeer, real: BlockStore, fork: dict[int, StoredBlock]) -> None:
    """Bodies and receipts verify against the forged headers: the fork is self-consistent."""
    outcome = await fetch_payloads_for_peer(peer, 8990, 9100)
    assert outcome.faults == [] and outcome.missing_blocks == [] and not peer.faults
    assert [p.number for p in outcome.payloads] == list(range(8990, 9101))
    fetched_bodies = 0
    for p in outcome.payloads:
        h = Header(p.header)
        body = verify_body(h, p.body)
        verify_receipts(h, p.receipts, form=69, tx_count=len(body.transactions))
        if p.number < F:
            assert p.hash == real.canonical_hash(p.number)
        else:
            assert p.hash == fork[p.number].hash != real.canonical_hash(p.number)
            fetched_bodies += h.ommers_hash != EMPTY_OMMERS_HASH
    assert fetched_bodies >= 5  # blocks with ommers: bodies that came over the wire, checked against forged headers
    assert outcome.fetch_stats.bodies_requests >= 1


async def test_status_announces_the_forked_head(peer: EthPeer, real: BlockStore, fork: dict[int, StoredBlock]) -> None:
    assert peer.status is not None
    assert peer.status.genesis_hash == MAINNET.genesis_hash
    assert peer.status.head_hash == fork[HEAD].hash != real.canonical_hash(HEAD)
    if isinstance(peer.status, StatusV69):
        assert (peer.status.earliest_block, peer.status.latest_block) == (0, HEAD)
    assert [Header(r).number for r in await peer.request_headers(peer.status.head_hash, 1)] == [HEAD]


async def test_real_hashes_above_the_fork_are_unknown(
    peer: EthPeer, real: BlockStore, fork: dict[int, StoredBlock]
) -> None:
    n = 9003  # a block with an ommer, so its body is not empty
    real_hash = real.canonical_hash(n)
    assert real_hash is not None
    assert await peer.request_headers(real_hash, 1) == []
    assert await peer.request_headers(real.canonical_hash(HEAD), 1, reverse=True) == []  # type: ignore[arg-type]
    assert await peer.request_bodies([real_hash]) == []
    assert list((await peer.request_receipts([real_hash])).receipts) == []
    # The forged hash of the same block is answered, with the real body; below the fork real hashes work.
    assert await peer.request_bodies([fork[n].hash]) == [real.body(real_hash)]
    below = real.canonical_hash(F - 1)
    assert below is not None
    assert [Header(r).hash for r in await peer.request_headers(below, 2)] == [below, fork[F].hash]


def test_cli_refuses_fork_block_misuse(mainnet_store_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["serve", "--store", str(mainnet_store_path), "--port", "0", "--network", "mainnet"]
    cases = [
        (["--fork-block", str(F)], "--fork-block is only for --misbehave fork"),
        (["--misbehave", "short", "--fork-block", str(F)], "--fork-block is only for --misbehave fork"),
        (["--misbehave", "fork", "--fork-block", "0"], "--fork-block must be at least 1"),
        (["--misbehave", "fork", "--fork-block", str(HEAD + 1)], "at most the head"),
    ]
    for extra, text in cases:
        assert main(base + extra) == 2
        err = capsys.readouterr().err
        assert err.startswith("ethp2p: error: ") and text in err and err.count("\n") == 1, err
        assert "Traceback" not in err
