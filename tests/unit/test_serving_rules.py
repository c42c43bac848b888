"""StoreHandler's serving rules on real mainnet data: caps, soft limit, prefixes, eth/70 truncation."""

from __future__ import annotations

import pytest

from ethp2p import rlp
from ethp2p.chain.receipts import receipts69_to_68
from ethp2p.eth import messages as m
from ethp2p.eth.chainspec import MAINNET
from ethp2p.serve.handler import MAX_ITEMS, SOFT_RESPONSE_LIMIT, StoreHandler
from ethp2p.store.blocks import BlockStore
from tests.conftest import load_vector

WITH_RECEIPTS = [b for b in load_vector("mainnet/derived/mainnet_blocks.json")["blocks"] if b.get("receipts_eth69_rlp")]


@pytest.fixture()
def handler(mainnet_store_path):
    store = BlockStore(mainnet_store_path, genesis_hash=MAINNET.genesis_hash)
    yield StoreHandler(store)
    store.close()


def test_headers_cap_and_directions(handler: StoreHandler) -> None:
    out = handler.block_headers(m.GetBlockHeaders(1, 0, 5000))
    assert len(out) == MAX_ITEMS == 1024
    assert handler.block_headers(m.GetBlockHeaders(1, 16380, 10)) == [
        handler.store.header_by_number(n) for n in range(16380, 16384)
    ]  # a prefix ending at the first block we lack
    by_hash = handler.block_headers(
        m.GetBlockHeaders(1, handler.store.canonical_hash(100) or b"", 3, skip=1, reverse=True)
    )
    assert by_hash == [handler.store.header_by_number(n) for n in (100, 98, 96)]
    assert handler.block_headers(m.GetBlockHeaders(1, 2, 5, reverse=True)) == [
        handler.store.header_by_number(n) for n in (2, 1, 0)
    ]
    assert handler.block_headers(m.GetBlockHeaders(1, b"\x01" * 32, 3)) == []
    assert handler.block_headers(m.GetBlockHeaders(1, 0, 0)) == []
    assert handler.block_headers(m.GetBlockHeaders(1, 0, 3, skip=2**64 - 1)) == [handler.store.header_by_number(0)]


def test_soft_limit_ends_answers(handler: StoreHandler) -> None:
    small = StoreHandler(handler.store, soft_limit=2000)
    out = small.block_headers(m.GetBlockHeaders(1, 0, 100))
    assert sum(len(h) for h in out[:-1]) < 2000 <= sum(len(h) for h in out)


def test_bodies_prefix_and_unknown_hashes(handler: StoreHandler) -> None:
    hashes = [handler.store.canonical_hash(n) or b"" for n in range(10)]
    assert len(handler.block_bodies(hashes)) == 10
    assert len(handler.block_bodies(hashes[:4] + [b"\x02" * 32] + hashes[4:])) == 4
    assert handler.block_bodies([b"\x02" * 32] + hashes) == []
    assert len(handler.block_bodies(hashes * 200)) == MAX_ITEMS


@pytest.mark.parametrize("version", [68, 69, 70])
def test_receipts_in_each_form(handler: StoreHandler, version: int) -> None:
    hashes = [bytes.fromhex(b["hash"]) for b in WITH_RECEIPTS]
    lists, incomplete = handler.receipts(hashes, version, 0)
    assert not incomplete or version == 70
    size = 0
    for i, (got, b) in enumerate(zip(lists, WITH_RECEIPTS, strict=False)):
        want = b["receipts_eth68_rlp"] if version == 68 else b["receipts_eth69_rlp"]
        if incomplete and i == len(lists) - 1:
            # eth/70 cut the last list where it would cross the soft limit: a strict prefix.
            items = rlp.split_list(got)
            assert 0 < len(items) < len(rlp.split_list(bytes.fromhex(want)))
            assert [bytes(x) for x in items] == [bytes(x) for x in rlp.split_list(bytes.fromhex(want))[: len(items)]]
        else:
            assert got.hex() == want
        size += len(got)
    # The answer stops once it reaches the 2 MiB soft limit (or serves everything below it).
    assert len(lists) == len(WITH_RECEIPTS) or size >= SOFT_RESPONSE_LIMIT or incomplete
    assert lists and (size - len(lists[-1])) < SOFT_RESPONSE_LIMIT


def test_eth70_truncation_and_continuation(handler: StoreHandler) -> None:
    big = max(WITH_RECEIPTS, key=lambda b: len(rlp.split_list(bytes.fromhex(b["receipts_eth69_rlp"]))))
    h = bytes.fromhex(big["hash"])
    want = [bytes(x) for x in rlp.split_list(bytes.fromhex(big["receipts_eth69_rlp"]))]
    small = StoreHandler(handler.store, soft_limit=4096)
    got: list[bytes] = []
    rounds = 0
    while True:
        lists, incomplete = small.receipts([h], 70, len(got))
        rounds += 1
        assert len(lists) == 1
        got += [bytes(x) for x in rlp.split_list(lists[0])]
        if not incomplete:
            break
    assert got == want and rounds > 1
    # The same block at eth/69 is never cut: one whole list (and the answer stops after it).
    lists, incomplete = small.receipts([h, h], 69, 0)
    assert not incomplete and lists[0].hex() == big["receipts_eth69_rlp"] and len(lists) == 1
    # A first index beyond the list ends the answer.
    assert small.receipts([h], 70, len(want) + 1) == ([], False)


def test_eth68_form_rebuilds_blooms(handler: StoreHandler) -> None:
    b = WITH_RECEIPTS[-1]
    assert receipts69_to_68(bytes.fromhex(b["receipts_eth69_rlp"])).hex() == b["receipts_eth68_rlp"]
