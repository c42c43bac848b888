"""The simulation roles' view of a store (``ethp2p.serve.roles``) on real mainnet blocks 0..16,383:
what an expired-history node and a growing node serve and announce, through the real StoreHandler."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest

from ethp2p.eth import messages as m
from ethp2p.eth.chainspec import MAINNET
from ethp2p.serve.handler import StoreHandler
from ethp2p.serve.roles import RoleError, ServedView
from ethp2p.serve.server import store_head
from ethp2p.store.blocks import BlockStore


@pytest.fixture()
def store(mainnet_store_path: Path) -> Iterator[BlockStore]:
    with BlockStore(mainnet_store_path, readonly=True) as s:
        yield s


def _hash(store: BlockStore, n: int) -> bytes:
    h = store.canonical_hash(n)
    assert h is not None
    return h


def test_an_expired_node_serves_every_header_but_bodies_and_receipts_only_from_the_cut(store: BlockStore) -> None:
    view = ServedView(store, expire_before=8192)
    handler = StoreHandler(cast(BlockStore, view))
    assert handler.block_headers(m.GetBlockHeaders(1, 0, 3)) == [store.header_by_number(n) for n in (0, 1, 2)]
    assert handler.block_headers(m.GetBlockHeaders(1, _hash(store, 100), 1)) == [store.header_by_number(100)]
    below, at = _hash(store, 8191), _hash(store, 8192)
    assert handler.block_bodies([below]) == [] and handler.receipts([below], 69, 0) == ([], False)
    assert handler.block_bodies([at, _hash(store, 8193)]) == [store.body(at), store.body(_hash(store, 8193))]
    assert handler.block_bodies([at, below]) == [store.body(at)]  # the answer ends before the expired one
    assert handler.receipts([at, below], 69, 0) == ([store.receipts(at)], False)
    assert handler.block_bodies([b"\x01" * 32]) == []  # unknown: the store lacks it anyway
    assert (view.stats.expired_body_requests, view.stats.expired_receipt_requests) == (2, 2)
    head = store_head(cast(BlockStore, view), MAINNET)
    assert (head.earliest, head.number, head.hash) == (8192, 16383, _hash(store, 16383))
    blk = view.block(below)
    assert blk is not None and blk.header == store.header_by_number(8191) and blk.body is None
    assert [b.body is None for b in view.canonical_blocks(8190, 8193)] == [True, True, False, False]


def test_a_growing_node_serves_nothing_above_its_top_until_it_grows(store: BlockStore) -> None:
    view = ServedView(store, top=1000)
    handler = StoreHandler(cast(BlockStore, view))
    head = store_head(cast(BlockStore, view), MAINNET)
    assert (head.earliest, head.number, head.hash) == (0, 1000, _hash(store, 1000))
    assert handler.block_headers(m.GetBlockHeaders(1, 999, 5)) == [store.header_by_number(n) for n in (999, 1000)]
    assert handler.block_headers(m.GetBlockHeaders(1, _hash(store, 1001), 1)) == []
    assert handler.block_headers(m.GetBlockHeaders(1, 1001, 3, reverse=True)) == []  # starts above the top
    assert handler.block_headers(m.GetBlockHeaders(1, 1000, 3, reverse=True, skip=1)) == [
        store.header_by_number(n) for n in (1000, 998, 996)
    ]
    assert handler.block_bodies([_hash(store, 1000), _hash(store, 1001)]) == [store.body(_hash(store, 1000))]
    assert view.number_of(_hash(store, 1001)) is None and view.header_by_hash(_hash(store, 1001)) is None
    assert view.block(_hash(store, 1001)) is None and view.canonical_hash(1001) is None
    assert view.stats.expired_body_requests == 0  # above the top is not expiry
    assert view.grow(5000) is True and view.top == 6000
    assert handler.block_headers(m.GetBlockHeaders(1, 5999, 5)) == [store.header_by_number(n) for n in (5999, 6000)]
    assert view.grow(10_383) is False and view.top is None  # reached the store's top: the cap is gone
    assert store_head(cast(BlockStore, view), MAINNET).number == 16383
    assert view.grow(1) is False


def test_growth_and_expiry_together(store: BlockStore) -> None:
    view = ServedView(store, expire_before=8192, top=9000)
    assert view.longest_run() == (8192, 9000)
    assert view.grow(100) and view.longest_run() == (8192, 9100)


@pytest.mark.parametrize(
    ("kw", "says", "setting"),
    [
        (
            {"expire_before": 16384},
            "expiry cut 16384 is above the store's head (it holds blocks 0..16383)",
            "expire_before",
        ),
        ({"expire_before": -1}, "at least 0", "expire_before"),
        ({"top": 16384}, "start of growth 16384 is outside the store's longest run (blocks 0..16383)", "grow_from"),
        ({"top": 100, "expire_before": 200}, "start of growth 100 is below the expiry cut 200", "grow_from"),
    ],
)
def test_roles_that_do_not_fit_the_store_are_refused(
    store: BlockStore, kw: dict[str, int], says: str, setting: str
) -> None:
    with pytest.raises(RoleError, match=re.escape(says)) as e:
        ServedView(store, **kw)
    assert e.value.setting == setting
