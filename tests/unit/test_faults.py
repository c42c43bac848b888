"""Every FaultKind is emitted by some real code path, and each path reports the kind it should.

Real parts wherever they can run in a unit test: the verifiers on real (corrupted) mainnet
data, two real ``EthPeer`` sessions talking over 127.0.0.1, a real ``PeerNetwork`` dialling a
closed 127.0.0.1 port, a real ``RangeFetcher``. Stand-ins, where no real part can run here:
``VectorPeer`` serves real mainnet headers from the vectors in place of a remote node, and the
range fetcher's prover is a stub holding only the agreed heights (running peer agreement needs
several live peers; tests/integration/test_anchored_fetch.py covers it end to end).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from types import SimpleNamespace

import pytest

from ethp2p import rlp
from ethp2p.chain.genesis import load_genesis
from ethp2p.chain.header import Header
from ethp2p.chain.verify import VerificationError, verify_fork_fields
from ethp2p.crypto.keys import PrivateKey
from ethp2p.enode import Enode
from ethp2p.eth import codec as eth_codec
from ethp2p.eth import messages as m
from ethp2p.eth.chainspec import network
from ethp2p.faults import FaultKind, PeerFault, report
from ethp2p.fetch.head import _walk
from ethp2p.fetch.requests import request_headers_batch
from ethp2p.fetch.types import InvalidResponse
from ethp2p.fetch.verifier import BlockToVerify, verify_blocks
from ethp2p.peers.eth_peer import EthPeer, Misconduct, PeerDisconnected, PeerMisbehaved, RequestTimeout
from ethp2p.peers.network import PeerNetwork, _Candidate
from ethp2p.peers.pool import NetworkPeer
from ethp2p.peers.reputation import PENALTIES
from ethp2p.store.blocks import BlockStore
from ethp2p.sync.range import RangeFetcher
from ethp2p.trust.anchors import Anchors, Checkpoint
from tests.conftest import load_vector
from tests.support.peers import FakePeer
from tests.support.servers import ETHTEST_GENESIS

BLOCKS = load_vector("mainnet/derived/mainnet_blocks.json")["blocks"]
MAINNET = network("mainnet")
ETHTEST = load_genesis(ETHTEST_GENESIS)

#: Every kind a test below has seen emitted (checked against the enum at the end).
SEEN: set[FaultKind] = set()


def _seen(kind: FaultKind) -> FaultKind:
    SEEN.add(kind)
    return kind


class Recorder:
    """Collects what ``faults.report`` hands a peer (the pool would turn it into reputation)."""

    def __init__(self) -> None:
        self.faults: list[tuple[FaultKind, str]] = []

    def report_fault(self, kind: FaultKind, message: str) -> None:
        self.faults.append((kind, message))


class VectorPeer(FakePeer):
    """Serves headers out of the mainnet vectors (a stand-in for a remote node: see the module doc)."""

    def __init__(self, answers: Sequence[list[bytes]]) -> None:
        super().__init__(eth_version=69)
        self._answers = list(answers)

    async def request_headers(
        self, origin: int | bytes, amount: int, *, skip: int = 0, reverse: bool = False, timeout: float | None = None
    ) -> list[bytes]:
        return self._answers.pop(0)


def _raw_header(number: int) -> bytes:
    return bytes.fromhex(next(b for b in BLOCKS if b["number"] == number)["header_rlp"])


def _block_with_txs() -> dict:
    return next(b for b in BLOCKS if b["tx_count"] > 0 and b.get("receipts_eth69_rlp"))


# ---- verification: body, receipts, fork fields, headers -------------------------------------------


def test_corrupted_body_is_body() -> None:
    b = _block_with_txs()
    body = bytearray.fromhex(b["body_rlp"])
    body[len(body) // 2] ^= 1
    [res] = verify_blocks(
        [BlockToVerify(bytes.fromhex(b["header_rlp"]), bytes(body), bytes.fromhex(b["receipts_eth69_rlp"]), 69)]
    )
    assert not res.ok and res.kind is _seen(FaultKind.BODY)


def test_corrupted_receipts_are_receipts() -> None:
    b = _block_with_txs()
    [res] = verify_blocks([BlockToVerify(bytes.fromhex(b["header_rlp"]), bytes.fromhex(b["body_rlp"]), b"\xc0", 69)])
    assert not res.ok and res.kind is _seen(FaultKind.RECEIPTS)


def test_header_missing_its_forks_field_is_fork_fields() -> None:
    """A post-London mainnet header with its base fee cut off does not fit London."""
    b = next(x for x in BLOCKS if x["fork"] == "london")
    fields = rlp.decode(bytes.fromhex(b["header_rlp"]))
    with pytest.raises(VerificationError) as info:
        verify_fork_fields(Header(rlp.encode(fields[:-1])), MAINNET)
    assert info.value.kind is _seen(FaultKind.FORK_FIELDS) and isinstance(info.value, PeerFault)


async def test_unlinked_headers_are_headers() -> None:
    peer = VectorPeer([[_raw_header(1), _raw_header(3)]])
    with pytest.raises(InvalidResponse) as info:
        await request_headers_batch(peer, 1, 2)
    assert info.value.kind is FaultKind.HEADERS and [k for k, _ in peer.faults] == [_seen(FaultKind.HEADERS)]


async def test_header_against_a_checkpoint_is_wrong_chain() -> None:
    """The head walk finds block 2 contradicting a checkpoint: reported and raised as wrong-chain."""
    anchors = Anchors({2: Checkpoint(2, b"\x11" * 32)})
    peer = VectorPeer([[_raw_header(n) for n in (1, 2, 3)]])
    with pytest.raises(InvalidResponse) as info:
        await _walk(peer, 1, 3, 1, anchors)  # type: ignore[arg-type]
    assert info.value.kind is FaultKind.WRONG_CHAIN and info.value.number == 2
    assert [k for k, _ in peer.faults] == [_seen(FaultKind.WRONG_CHAIN)]


# ---- a live session pair on 127.0.0.1: timeout, too many items, bad message, breach ---------------


class _Handler:
    """What the serving side answers: ``headers`` for every header request; ``silent`` answers nothing."""

    def __init__(self) -> None:
        self.headers: list[bytes] = []
        self.silent = False

    async def serve_request(self, peer: EthPeer, msg: object) -> bool:
        return self.silent

    def block_headers(self, request: m.GetBlockHeaders) -> list[bytes]:
        return self.headers

    def block_bodies(self, hashes: Sequence[bytes]) -> list[bytes]:
        return []

    def receipts(self, hashes: Sequence[bytes], version: int, first_index: int) -> tuple[list[bytes], bool]:
        return [], False


@contextlib.asynccontextmanager
async def _pair() -> AsyncIterator[tuple[NetworkPeer, EthPeer, _Handler, list[tuple[FaultKind, str]]]]:
    """(client wrapped as a pool peer, the serving side, its handler, faults the pool was told of)."""
    key, handler = PrivateKey.generate(), _Handler()
    accepted: asyncio.Future[EthPeer] = asyncio.get_running_loop().create_future()

    async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        misconduct = Misconduct(serve_request=handler.serve_request)
        accepted.set_result(
            await EthPeer.accept(reader, writer, ETHTEST, key=key, handler=handler, misconduct=misconduct)
        )

    server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    told: list[tuple[FaultKind, str]] = []
    client = await EthPeer.connect(Enode(key.public_key.to_bytes(), "127.0.0.1", port, port), ETHTEST)
    serving = await asyncio.wait_for(accepted, 5)
    peer = NetworkPeer(client, direction="outbound", on_fault=lambda p, k, msg: told.append((k, msg)))
    try:
        yield peer, serving, handler, told
    finally:
        await client.disconnect()
        await serving.disconnect()
        server.close()
        await server.wait_closed()


async def test_unanswered_request_is_timeout() -> None:
    async with _pair() as (peer, _, handler, told):
        handler.silent = True
        with pytest.raises(RequestTimeout):
            await peer.request_headers(0, 1, timeout=0.2)
        assert [k for k, _ in told] == [_seen(FaultKind.TIMEOUT)] and peer.consecutive_timeouts == 1


async def test_more_items_than_asked_is_too_many_items() -> None:
    async with _pair() as (peer, _, handler, told):
        handler.headers = [_raw_header(n) for n in (1, 2, 3)]
        with pytest.raises(PeerMisbehaved):
            await peer.request_headers(1, 2)
        assert [k for k, _ in told] == [_seen(FaultKind.TOO_MANY_ITEMS)]


async def _sent_then_closed(send: Callable[[EthPeer], object]) -> list[tuple[FaultKind, str]]:
    async with _pair() as (peer, serving, _, told):
        await send(serving)  # type: ignore[misc]
        await asyncio.wait_for(peer.wait_closed(), 5)
        assert peer.session.faults == told  # recorded on the session and passed on to the pool once
        return told


async def test_undecodable_message_is_bad_message() -> None:
    """A BlockHeaders whose payload is not RLP fails to decode: bad-message, and the session ends."""
    told = await _sent_then_closed(lambda s: s.conn.send_message("eth", m.BLOCK_HEADERS_CODE, b"\xff\x00"))
    assert [k for k, _ in told] == [_seen(FaultKind.BAD_MESSAGE)]


async def test_second_status_is_breach() -> None:
    async def again(serving: EthPeer) -> None:
        await serving.conn.send_message("eth", *eth_codec.encode_message(serving.status, serving.eth_version))

    told = await _sent_then_closed(again)
    assert [k for k, _ in told] == [_seen(FaultKind.BREACH)] and "Status sent twice" in told[0][1]


async def test_unsolicited_answers_are_unsolicited_and_the_third_ends_the_session() -> None:
    async def junk(serving: EthPeer) -> None:
        for rid in (10**6, 10**6 + 1, 10**6 + 2):  # ids the peer never sent
            await serving.conn.send_message("eth", *eth_codec.encode_message(m.BlockHeaders(rid, []), 69))

    told = await _sent_then_closed(junk)
    assert [k for k, _ in told] == [_seen(FaultKind.UNSOLICITED)] * 3
    assert "3 unsolicited answers" in told[-1][1]


# ---- the peer network's dial, the range fetcher's batch failures -----------------------------------------


async def test_refused_dial_is_failed_dial() -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    network = PeerNetwork(ETHTEST)
    penalized: list[FaultKind] = []
    real = network.reputation.penalize

    def spy(peer_id: bytes, kind: FaultKind) -> bool:
        penalized.append(kind)
        return real(peer_id, kind)

    network.reputation.penalize = spy  # type: ignore[method-assign]
    pid = PrivateKey.generate().public_key.to_bytes()
    await network._dial(_Candidate(Enode(pid, "127.0.0.1", port, port), "static"))
    assert penalized == [_seen(FaultKind.FAILED_DIAL)]
    assert network.reputation.score(pid) == PENALTIES[FaultKind.FAILED_DIAL] and not network.reputation.may_dial(pid)


def test_range_batch_failures_have_kinds(tmp_path: Path) -> None:
    """Wrong chain just below an agreed head is near-agreed-head; a broken session is disconnected."""
    from ethp2p.trust.proof import Proof

    store = BlockStore(str(tmp_path / "s.db"), genesis_hash=ETHTEST.genesis_hash)
    try:
        fetcher = RangeFetcher(lambda: [], store, 1, 10, anchors=Anchors())
        fetcher._proofs[9] = (Proof.PEER_AGREEMENT, "agreement")
        fetcher._prover = SimpleNamespace(agreed_heights=[10])  # type: ignore[assignment]  # a stub: see the module doc
        wrong = InvalidResponse(FaultKind.WRONG_CHAIN, "another block 9", number=9)
        assert fetcher._batch_fault(wrong) is _seen(FaultKind.NEAR_AGREED_HEAD)
        assert (
            fetcher._batch_fault(InvalidResponse(FaultKind.WRONG_CHAIN, "far below", number=2)) is None
        )  # chased down
        assert fetcher._batch_fault(PeerDisconnected("peer left")) is _seen(FaultKind.DISCONNECTED)
        assert fetcher._batch_fault(OSError("reset")) is FaultKind.DISCONNECTED
        assert fetcher._batch_fault(RequestTimeout("slow")) is FaultKind.TIMEOUT
        fetcher._fault(FaultKind.NEAR_AGREED_HEAD, "x")
        assert fetcher.stats.fault_kinds == {"near-agreed-head": 1}  # counted (and labelled) by the value
    finally:
        store.close()


def test_only_fault_kinds_are_accepted() -> None:
    with pytest.raises(TypeError):
        report(Recorder(), "bodies", "x")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        InvalidResponse("headers", "x")  # type: ignore[arg-type]


def test_every_kind_was_emitted() -> None:
    """Runs last in this module: each kind above came from its real path (pytest keeps file order)."""
    assert SEEN == set(FaultKind), sorted(set(FaultKind) - SEEN)
