"""Each adversarial serving switch, against the fetch helpers, over real sockets with real mainnet data.

For each: the switch does what it says, the outcome is the right one of the four
(exception / nothing / partial / invalid-and-penalised), the fault lands on the peer,
no invalid byte reaches a payload, and nothing waits past its timeout.
"""

from __future__ import annotations

import time

import pytest

from ethp2p.chain.header import Header
from ethp2p.chain.verify import verify_body, verify_receipts
from ethp2p.eth.chainspec import MAINNET
from ethp2p.fetch import InvalidResponse, fetch_payloads_for_peer
from ethp2p.peers.eth_peer import EthPeer, IncompatiblePeer, PeerDisconnected, PeerMisbehaved, RequestTimeout
from ethp2p.serve.adversary import SLOW_DELAY, Misbehaviour
from ethp2p.serve.server import HistoryServer
from ethp2p.store.blocks import BlockStore
from tests.conftest import load_vector

RICH = next(b for b in load_vector("mainnet/derived/mainnet_blocks.json")["blocks"] if int(b["number"]) == 22869878)
RICH_N = int(RICH["number"])
TIMEOUT = 1.0


async def _server(path, kind: Misbehaviour):
    store = BlockStore(path, genesis_hash=MAINNET.genesis_hash)
    srv = HistoryServer(store, MAINNET, port=0, misbehave=kind)
    await srv.start()
    return srv, store


async def _run(path, kind, fn):
    srv, store = await _server(path, kind)
    try:
        peer = await EthPeer.connect(srv.enode, MAINNET, request_timeout=TIMEOUT)
        try:
            return await fn(peer), peer
        finally:
            await peer.disconnect()
    finally:
        await srv.close()
        store.close()


def _check_payloads(outcome) -> None:
    for p in outcome.payloads:
        h = Header(p.header)
        body = verify_body(h, p.body)
        verify_receipts(h, p.receipts, form=69, tx_count=len(body.transactions))


async def test_short_answers_give_partial_outcome(mainnet_store_path) -> None:
    outcome, _ = await _run(mainnet_store_path, Misbehaviour.SHORT, lambda p: fetch_payloads_for_peer(p, 0, 2047))
    assert 0 < len(outcome.payloads) < 2048
    assert outcome.missing_blocks == list(range(len(outcome.payloads), 2048))
    _check_payloads(outcome)


async def test_empty_answers_give_nothing(mainnet_store_path) -> None:
    outcome, _ = await _run(mainnet_store_path, Misbehaviour.EMPTY, lambda p: fetch_payloads_for_peer(p, 100, 199))
    assert outcome.payloads == [] and outcome.missing_blocks == list(range(100, 200))


@pytest.mark.parametrize("kind", [Misbehaviour.SILENT, Misbehaviour.SLOW])
async def test_silent_and_slow_peers_time_out(mainnet_store_path, kind) -> None:
    start = time.monotonic()
    with pytest.raises(RequestTimeout):
        await _run(mainnet_store_path, kind, lambda p: fetch_payloads_for_peer(p, 0, 10))
    assert time.monotonic() - start < SLOW_DELAY  # we gave up at our timeout, not theirs


@pytest.mark.parametrize(
    ("kind", "fault"), [(Misbehaviour.BAD_BODIES, "body"), (Misbehaviour.BAD_RECEIPTS, "receipts")]
)
async def test_bad_bodies_and_receipts_are_missing_and_penalised(mainnet_store_path, kind, fault) -> None:
    outcome, peer = await _run(mainnet_store_path, kind, lambda p: fetch_payloads_for_peer(p, RICH_N, RICH_N))
    assert outcome.payloads == [] and outcome.missing_blocks == [RICH_N]
    assert [f.kind for f in outcome.faults] == [fault]
    assert [k for k, _ in peer.faults] == [fault]


@pytest.mark.parametrize("kind", [Misbehaviour.WRONG_HEADER_NUMBERS, Misbehaviour.BROKEN_HEADER_LINKS])
async def test_wrong_headers_raise_invalid_and_penalise(mainnet_store_path, kind) -> None:
    holder = {}

    async def go(peer):
        holder["peer"] = peer
        return await fetch_payloads_for_peer(peer, 1000, 1100)

    with pytest.raises(InvalidResponse) as info:
        await _run(mainnet_store_path, kind, go)
    assert info.value.kind == "headers"
    assert holder["peer"].faults and holder["peer"].faults[0][0] == "headers"


async def test_too_many_items_is_rejected(mainnet_store_path) -> None:
    with pytest.raises(PeerMisbehaved, match="items"):
        await _run(mainnet_store_path, Misbehaviour.TOO_MANY, lambda p: fetch_payloads_for_peer(p, 0, 99))


@pytest.mark.parametrize(
    "kind", [Misbehaviour.OVERSIZED, Misbehaviour.GARBAGE_FRAME, Misbehaviour.DISCONNECT_MID_RESPONSE]
)
async def test_connection_breakers_end_the_session(mainnet_store_path, kind) -> None:
    start = time.monotonic()
    with pytest.raises(PeerDisconnected) as info:
        await _run(mainnet_store_path, kind, lambda p: fetch_payloads_for_peer(p, 0, 99))
    assert time.monotonic() - start < 3 * TIMEOUT
    if kind is Misbehaviour.OVERSIZED:
        assert "cap" in str(info.value) or "exceeds" in str(info.value)


@pytest.mark.parametrize("kind", [Misbehaviour.WRONG_GENESIS, Misbehaviour.BAD_FORK_ID])
async def test_incompatible_status_is_rejected(mainnet_store_path, kind) -> None:
    srv, store = await _server(mainnet_store_path, kind)
    try:
        with pytest.raises(IncompatiblePeer, match="genesis" if kind is Misbehaviour.WRONG_GENESIS else "fork id"):
            await EthPeer.connect(srv.enode, MAINNET)
    finally:
        await srv.close()
        store.close()


async def test_lying_head_cannot_be_fetched(mainnet_store_path) -> None:
    async def go(peer):
        claimed = peer.status.latest_block
        assert claimed > 1_000_000  # the lie
        return await peer.request_headers(peer.status.head_hash, 1), claimed

    (headers, claimed), _ = await _run(mainnet_store_path, Misbehaviour.LYING_HEAD, go)
    assert headers == []


async def test_truncating_every_receipts_answer_is_continued(mainnet_store_path) -> None:
    outcome, _ = await _run(
        mainnet_store_path, Misbehaviour.TRUNCATE_EVERY_RECEIPTS, lambda p: fetch_payloads_for_peer(p, RICH_N, RICH_N)
    )
    assert outcome.missing_blocks == [] and outcome.faults == []
    assert outcome.payloads[0].receipts.hex() == RICH["receipts_eth69_rlp"]
    assert outcome.fetch_stats.receipts_requests > 3


async def test_request_timeout_adapts_to_round_trips(mainnet_store_path) -> None:
    store = BlockStore(mainnet_store_path, genesis_hash=MAINNET.genesis_hash)
    srv = HistoryServer(store, MAINNET, port=0)
    await srv.start()
    try:
        peer = await EthPeer.connect(srv.enode, MAINNET, request_timeout=4.0)
        assert peer.current_timeout() == 4.0  # no samples yet: the default
        for _ in range(5):
            await peer.request_headers(0, 64)
        assert peer.srtt is not None and peer.srtt < 0.5
        assert peer.current_timeout() == 2.0  # a fast loopback peer: the floor
        peer.core._sample_rtt(10.0)  # noqa: SLF001 - a very slow answer widens it, up to the cap
        assert 2.0 < peer.current_timeout() <= 8.0
        await peer.disconnect()
    finally:
        await srv.close()
        store.close()


async def test_a_block_the_only_peer_never_serves_ends_missing_in_a_range_fetch(mainnet_store_path, tmp_path) -> None:
    """The only peer cuts every bodies answer short before one block (``omit-one``), so that block and
    the next one with a body (always asked for after it) never come. Once the peer has left them out
    of three answers it no longer counts as serving them, and after ``stall_timeout`` they are
    reported missing (before, they were retried with ever longer back-offs up to their 24th attempt,
    about 20 minutes with one peer); every other block of the range is stored."""
    import asyncio

    from ethp2p.sync.range import fetch_range_into_store

    srv, store = await _server(mainnet_store_path, Misbehaviour.OMIT_ONE)
    empty = (b"\xc2\xc0\xc0", b"\xc3\xc0\xc0\xc0")
    with_body = [b.number for b in store.canonical_blocks(1000, 1100) if b.body is not None and b.body not in empty]
    omitted, after = with_body[0], with_body[1]
    assert after < with_body[0] + 20
    try:
        peer = await EthPeer.connect(srv.enode, MAINNET, request_timeout=TIMEOUT)
        try:
            with BlockStore(tmp_path / "o.db", genesis_hash=MAINNET.genesis_hash) as out:
                async with asyncio.timeout(120):  # a bound on a hang, not a speed check
                    stats = await fetch_range_into_store([peer], omitted - 20, omitted + 20, out, stall_timeout=1.0)
                assert stats.missing == [omitted, after] and not stats.unproven
                assert out.complete_numbers(omitted - 20, omitted + 20, proven=True) == (
                    set(range(omitted - 20, omitted + 21)) - {omitted, after}
                )
                assert any("giving up" in s for s in stats.stalls)
        finally:
            await peer.disconnect()
    finally:
        await srv.close()
        store.close()
