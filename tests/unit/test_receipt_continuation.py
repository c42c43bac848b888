"""eth/70 receipt continuation (EIP-7975) checks, on real mainnet receipts (block 22,869,878: 301
receipts, Prague) served in pieces by a stand-in peer: each piece is checked as it arrives
(receipt size against its transaction's gas limit / 8, the block's total against its gas limit,
the answer continuing where asked, a deadline for the whole block), not only at the root check."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from ethp2p import rlp
from ethp2p.chain.header import Header
from ethp2p.chain.transactions import decode_transaction
from ethp2p.chain.verify import max_receipts_for
from ethp2p.eth import messages as m
from ethp2p.faults import FaultKind
from ethp2p.fetch import requests as rq
from ethp2p.fetch.types import InvalidResponse
from tests.conftest import load_vector
from tests.support.peers import FakePeer

BLOCK = next(b for b in load_vector("mainnet/derived/mainnet_blocks.json")["blocks"] if b["number"] == 22_869_878)
HEADER = Header(bytes.fromhex(BLOCK["header_rlp"]))
RECEIPTS = [bytes(x) for x in rlp.split_list(bytes.fromhex(BLOCK["receipts_eth69_rlp"]))]
TXS = rlp.split_list(rlp.split_list(bytes.fromhex(BLOCK["body_rlp"]))[0])
GAS_LIMITS = [
    decode_transaction(tx if rlp.is_list_item(tx) else rlp.string_payload(tx), recover_sender=False).gas_limit
    for tx in TXS
]


class Pieces(FakePeer):
    """Serves one block's receipts at eth/70, ``size`` at a time from the index asked (or as
    ``serve(first_index)`` says: a list of raw receipts and whether more follow)."""

    def __init__(self, receipts: Sequence[bytes], size: int = 50, serve=None) -> None:
        super().__init__(eth_version=70)
        self.receipts = list(receipts)
        self.size = size
        self.serve = serve or self._honest
        self.asked: list[int] = []

    def _honest(self, first: int) -> tuple[list[bytes], bool]:
        piece = self.receipts[first : first + self.size]
        return piece, first + len(piece) < len(self.receipts)

    async def request_receipts(
        self, hashes: Sequence[bytes], *, first_index: int = 0, timeout: float | None = None
    ) -> m.Receipts:
        self.asked.append(first_index)
        piece, more = self.serve(first_index)
        return m.make_receipts(70, len(self.asked), [rlp.encode_raw_list(piece)], more)


async def _fetch(peer: Pieces, header: Header = HEADER, **kw) -> list:
    results, _ = await rq.request_receipts(peer, [header.hash], headers=[header], **kw)
    return results


def test_the_real_block_fits_the_bounds() -> None:
    assert len(RECEIPTS) == len(GAS_LIMITS) == 301
    assert all(len(r) <= g // 8 + rq.RECEIPT_OVERHEAD for r, g in zip(RECEIPTS, GAS_LIMITS, strict=True))


async def test_an_honest_peer_is_continued_to_the_whole_list() -> None:
    peer = Pieces(RECEIPTS)
    [got] = await _fetch(peer, tx_gas_limits=[GAS_LIMITS], tx_counts=[301])
    assert got.raw == bytes.fromhex(BLOCK["receipts_eth69_rlp"]) and peer.asked == [0, 50, 100, 150, 200, 250, 300]
    assert peer.faults == []


async def test_a_peer_that_restarts_from_index_zero_is_caught_at_its_first_piece() -> None:
    peer = Pieces(RECEIPTS, serve=lambda first: (RECEIPTS[:50], True))
    with pytest.raises(InvalidResponse) as e:
        await _fetch(peer)
    assert e.value.kind is FaultKind.RECEIPTS and "does not continue at index 50" in str(e.value)
    assert peer.asked == [0, 50] and [k for k, _ in peer.faults] == [FaultKind.RECEIPTS]


async def test_a_piece_that_skips_back_a_little_is_caught_too() -> None:
    peer = Pieces(RECEIPTS, serve=lambda first: (RECEIPTS[max(first - 1, 0) : first + 50], True))
    with pytest.raises(InvalidResponse, match="does not continue at index 50"):
        await _fetch(peer)


async def test_a_receipt_larger_than_its_transactions_gas_limit_allows_is_refused() -> None:
    # Receipt 12 is 5,021 bytes; say its transaction had only 21,000 gas (2,625 bytes of logs at most).
    limits = list(GAS_LIMITS)
    limits[12] = 21_000
    with pytest.raises(InvalidResponse, match="receipt 12 is 5,021 bytes, more than 21,000 gas"):
        await _fetch(Pieces(RECEIPTS), tx_gas_limits=[limits])
    # Without the transactions, the block's gas limit bounds every receipt.
    low = _with_gas_limit(HEADER, 39_000)  # 4,875 bytes of logs at most
    with pytest.raises(InvalidResponse, match="receipt 12 is 5,021 bytes, more than 39,000 gas"):
        await _fetch(Pieces(RECEIPTS), header=low)


def _with_gas_limit(header: Header, gas_limit: int, gas_used: int | None = None) -> Header:
    fields = rlp.split_list(header.raw)
    fields[9] = memoryview(rlp.encode(gas_limit))
    if gas_used is not None:
        fields[10] = memoryview(rlp.encode(gas_used))
    return Header(rlp.encode_raw_list(fields))


async def test_a_block_whose_receipts_outgrow_its_gas_limit_is_refused() -> None:
    """Every receipt within its own bound, but together more than gas limit / 8 + overhead each."""
    # 5,125 bytes of logs, + 64 per receipt the block can hold (gas used: at most its limit)
    low = _with_gas_limit(HEADER, 41_000, 41_000)
    assert len(RECEIPTS[12]) <= low.gas_limit // 8 + rq.RECEIPT_OVERHEAD
    cap = low.gas_limit // 8 + rq.RECEIPT_OVERHEAD * max_receipts_for(low)
    assert sum(map(len, RECEIPTS)) > cap
    with pytest.raises(InvalidResponse, match=f"more than {cap:,} allowed"):
        await _fetch(Pieces(RECEIPTS), header=low)


async def test_a_block_cap_holds_without_a_header(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rq, "MAX_CONTINUED_RECEIPTS_BYTES", 20_000)
    peer = Pieces(RECEIPTS)
    with pytest.raises(InvalidResponse, match="more than 20,000 allowed"):
        await rq.request_receipts(peer, [HEADER.hash])
    assert len(peer.asked) < 7


async def test_a_block_still_incomplete_at_the_deadline_is_left_missing() -> None:
    now = [0.0]

    def clock() -> float:
        now[0] += 25.0  # each piece takes 25 s
        return now[0]

    assert rq.CONTINUATION_DEADLINE == 60.0

    peer = Pieces(RECEIPTS, size=20)
    results = await _fetch(peer, clock=clock)
    assert results == [] and len(peer.asked) == 4  # the first answer, then 25, 50 and 75 s of continuations
    assert [k for k, _ in peer.faults] == [FaultKind.TIMEOUT] and "still incomplete" in peer.faults[0][1]
