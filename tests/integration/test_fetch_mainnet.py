"""The fetch helpers against an ethp2p server holding real mainnet history, at eth/68, 69 and 70."""

from __future__ import annotations

import pytest

from ethp2p import rlp
from ethp2p.eth.chainspec import MAINNET
from ethp2p.fetch import (
    HeaderCountMismatch,
    fetch_payloads_for_peer,
    request_bodies_chunked_partial_with_stats,
    request_headers_chunked_strict,
    request_headers_chunked_with_stats,
    request_receipts_chunked_partial_with_stats,
)
from ethp2p.formats.era1 import read_era1
from ethp2p.peers.eth_peer import EthPeer
from ethp2p.serve.handler import StoreHandler
from ethp2p.serve.server import HistoryServer
from ethp2p.store.blocks import BlockStore
from tests.conftest import load_vector
from tests.support.stores import ERA1_FILES

DERIVED = [b for b in load_vector("mainnet/derived/mainnet_blocks.json")["blocks"] if b.get("receipts_eth69_rlp")]


@pytest.fixture()
async def server(mainnet_store_path):
    store = BlockStore(mainnet_store_path, genesis_hash=MAINNET.genesis_hash)
    srv = HistoryServer(store, MAINNET, port=0)
    await srv.start()
    yield srv
    await srv.close()
    store.close()


@pytest.mark.parametrize("version", [68, 69, 70])
async def test_era1_range_round_trips_byte_identical(server: HistoryServer, version: int) -> None:
    peer = await EthPeer.connect(server.enode, MAINNET, versions=(version,))
    try:
        assert peer.block_range == ((0, 16383) if version >= 69 else None)
        outcome = await fetch_payloads_for_peer(peer, 0, 16383)
    finally:
        await peer.disconnect()
    assert outcome.missing_blocks == [] and outcome.faults == []
    assert outcome.fetch_stats.headers_requests == 16  # 1,024 per request
    source = [b for f in ERA1_FILES for b in read_era1(f).blocks]
    assert len(outcome.payloads) == len(source) == 16384
    for got, want in zip(outcome.payloads, source, strict=True):
        assert (got.number, got.hash, got.header, got.body) == (want.number, want.hash, want.header, want.body)
        assert got.receipts == b"\xc0"


@pytest.mark.parametrize("version", [68, 69, 70])
async def test_derived_blocks_with_receipts_in_every_form(server: HistoryServer, version: int) -> None:
    peer = await EthPeer.connect(server.enode, MAINNET, versions=(version,))
    try:
        for b in DERIVED:
            n = int(b["number"])
            outcome = await fetch_payloads_for_peer(peer, n, n)
            assert outcome.missing_blocks == [], (n, outcome.faults)
            (p,) = outcome.payloads
            assert p.hash.hex() == b["hash"] and p.body.hex() == b["body_rlp"]
            assert p.receipts.hex() == b["receipts_eth69_rlp"]
    finally:
        await peer.disconnect()


async def test_eth70_truncating_server_is_continued(mainnet_store_path) -> None:
    """A server with a 2 KiB soft limit cuts nearly every receipt list; the client continues each one."""
    store = BlockStore(mainnet_store_path, genesis_hash=MAINNET.genesis_hash)
    srv = HistoryServer(store, MAINNET, port=0, handler=StoreHandler(store, soft_limit=2048))
    await srv.start()
    try:
        peer = await EthPeer.connect(srv.enode, MAINNET, versions=(70,))
        big = max(DERIVED, key=lambda b: len(rlp.split_list(bytes.fromhex(b["receipts_eth69_rlp"]))))
        n = int(big["number"])
        outcome = await fetch_payloads_for_peer(peer, n, n)
        assert outcome.missing_blocks == [], outcome.faults
        assert outcome.payloads[0].receipts.hex() == big["receipts_eth69_rlp"]
        # Many continuation rounds were needed for this one block.
        assert outcome.fetch_stats.receipts_requests > 10
        await peer.disconnect()
    finally:
        await srv.close()
        store.close()


async def test_chunked_helpers(server: HistoryServer) -> None:
    peer = await EthPeer.connect(server.enode, MAINNET)
    try:
        res = await request_headers_chunked_with_stats(peer, 16000, 1000, max_per_request=300)
        # Stops at the store's contiguous end (16383): a short answer ends it.
        assert [h.number for h in res.headers] == list(range(16000, 16384))
        assert res.requests == 2
        with pytest.raises(HeaderCountMismatch) as info:
            await request_headers_chunked_strict(peer, 16000, 1000)
        assert (info.value.expected, info.value.got) == (1000, 384)
        derived = [bytes.fromhex(b["hash"]) for b in DERIVED[-5:]]
        unknown = b"\x42" * 32
        bodies = await request_bodies_chunked_partial_with_stats(peer, derived[:3] + [unknown] + derived[3:])
        # The server's answer stops at the unknown hash (a prefix); an empty answer then ends the fetch.
        assert [b is not None for b in bodies.results] == [True, True, True, False, False, False]
        rec = await request_receipts_chunked_partial_with_stats(peer, derived)
        assert [r.raw.hex() if r else None for r in rec.results] == [
            (
                rlp.encode_raw_list(rlp.split_list(bytes.fromhex(b["receipts_eth68_rlp"]))).hex()
                if peer.eth_version == 68
                else b["receipts_eth69_rlp"]
            )
            for b in DERIVED[-5:]
        ]
    finally:
        await peer.disconnect()


async def test_headers_against_the_wrong_fork_rules_are_invalid(server: HistoryServer) -> None:
    """A header set whose fields don't match the fork schedule (here: London fields claimed at genesis) is rejected."""
    import dataclasses

    from ethp2p.fetch import InvalidResponse

    peer = await EthPeer.connect(server.enode, MAINNET)
    try:
        peer.spec = dataclasses.replace(MAINNET, block_forks={**MAINNET.block_forks, "london": 0})
        with pytest.raises(InvalidResponse) as info:
            await fetch_payloads_for_peer(peer, 0, 10)
        assert info.value.kind == "fork-fields" and peer.faults[0][0] == "fork-fields"
    finally:
        await peer.disconnect()


async def test_range_fetch_gives_up_on_blocks_no_peer_serves(server: HistoryServer, tmp_path) -> None:
    """Blocks outside every peer's announced range are reported missing (and unproven: no peer has their
    headers) within the wait for a peer, not waited on forever. The blocks it does serve are proven by
    their epoch's accumulator root (the checkpoint above them, #21,930, is beyond the peer)."""
    from ethp2p.sync.range import fetch_range_into_store

    peer = await EthPeer.connect(server.enode, MAINNET, versions=(69,))
    try:
        assert peer.block_range == (0, 16383)
        with BlockStore(tmp_path / "o.db", genesis_hash=MAINNET.genesis_hash) as out:
            stats = await fetch_range_into_store([peer], 16380, 16390, out, stall_timeout=1.0)
        assert stats.verified_blocks == 4 and stats.missing == list(range(16384, 16391))
        assert stats.unproven == stats.missing and "no peer served headers" in stats.proof.unprovable[0]
        assert stats.proven == {"accumulator": 4}
        assert stats.proof.anchors_used == stats.proven_by == {"accumulator root of epoch 1": 4}
    finally:
        await peer.disconnect()


async def test_a_bug_in_verification_ends_the_range_fetch_with_its_error(server: HistoryServer, tmp_path) -> None:
    """An exception that is no peer's fault (here a broken verifier) ends the fetch with that error, not a stall."""
    import asyncio

    from ethp2p.sync.range import fetch_range_into_store

    class BrokenVerifier:
        async def verify(self, blocks):
            raise RuntimeError("verifier bug")

        def peak_rss(self) -> int:
            return 0

        def close(self) -> None:
            pass

    peer = await EthPeer.connect(server.enode, MAINNET, versions=(69,))
    try:
        with BlockStore(tmp_path / "o.db", genesis_hash=MAINNET.genesis_hash) as out:
            async with asyncio.timeout(30):
                with pytest.raises(RuntimeError, match="verifier bug"):
                    await fetch_range_into_store([peer], 1, 2000, out, verifier=BrokenVerifier(), stall_timeout=60)
            assert out.count() == 0
    finally:
        await peer.disconnect()


async def test_cancelling_a_request_whose_answer_just_arrived_still_cancels(server: HistoryServer) -> None:
    """A fetch cancelled in the same loop pass as its answer arrives stops (Python 3.11's wait_for would
    return the answer and drop the cancellation, leaving a cancelled range fetch running)."""
    import asyncio

    peer = await EthPeer.connect(server.enode, MAINNET, versions=(69,))
    try:
        task = asyncio.create_task(peer.request_headers(0, 1, timeout=30))
        for _ in range(1000):
            if peer._waiters:
                break
            await asyncio.sleep(0)
        assert peer._waiters, "request was never sent"
        # The answer lands and the cancellation is requested before the task runs again.
        next(iter(peer._waiters.values())).set_result(None)  # type: ignore[arg-type]
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await peer.ping(5) >= 0  # the session is still usable
    finally:
        await peer.disconnect()


async def test_proven_blocks_no_peer_serves_bodies_for_are_given_up_without_stalling_the_prover(
    server: HistoryServer,
    tmp_path,
    monkeypatch,
) -> None:
    """A peer that announces (eth/69) it keeps bodies only from block 10,000 on, as history-expiring
    nodes do, still serves the headers that prove blocks below it: those are proven but can't be
    fetched. With room for only 2,048 proven headers waiting, the fetch must give them up (missing)
    and go on proving and fetching the rest, not wait for room forever. (The announcement is the one
    thing changed here: a wrapper around a real session says it, since an ethp2p server announces
    its whole store.)"""
    import asyncio

    from ethp2p.sync import range as range_mod
    from tests.support.peers import AnnouncedRange

    monkeypatch.setattr(range_mod, "MAX_PROVEN_AHEAD", 2048)
    peer = await EthPeer.connect(server.enode, MAINNET, versions=(69,))
    try:
        with BlockStore(tmp_path / "o.db", genesis_hash=MAINNET.genesis_hash) as out:
            async with asyncio.timeout(120):
                stats = await range_mod.fetch_range_into_store(
                    [AnnouncedRange(peer, (10_000, 16_383))], 1, 16_383, out, stall_timeout=1.0
                )
            assert stats.missing == list(range(1, 10_000)) and not stats.unproven
            assert out.complete_numbers(1, 16_383, proven=True) == set(range(10_000, 16_384))
            assert any("giving up" in s for s in stats.stalls)
    finally:
        await peer.disconnect()
