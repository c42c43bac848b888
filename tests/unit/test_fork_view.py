"""The ``fork`` adversary's store view and the fork file helpers, on the real mainnet data (no sockets)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ethp2p import rlp
from ethp2p.chain.header import EXTRA_DATA, PARENT_HASH, Header
from ethp2p.chain.verify import verify_body, verify_header_chain, verify_receipts
from ethp2p.eth.chainspec import MAINNET
from ethp2p.formats.chainfile import iter_chain_file
from ethp2p.formats.era1 import Era1Error, read_era1
from ethp2p.serve.adversary import FORK_MARKER, ForkedStore, ForkError, Misbehaviour, fork_header
from ethp2p.serve.handler import StoreHandler
from ethp2p.serve.server import HistoryServer, store_head
from ethp2p.store.blocks import BlockStore
from tests.conftest import VECTORS, load_vector
from tests.support.forks import era1_blocks, era1_bytes, forked_blocks, write_forged_era1, write_fork_chain_file

F = 9000
HEAD = 16383
REAL_ROOTS = [
    f["accumulator_root"] for f in json.loads((VECTORS / "mainnet/era1/era1_summary.json").read_text())["files"]
]
DERIVED = load_vector("mainnet/derived/mainnet_blocks.json")["blocks"]


@pytest.fixture(scope="module")
def store(mainnet_store_path: Path):
    with BlockStore(mainnet_store_path, readonly=True) as s:
        yield s


@pytest.fixture(scope="module")
def view(store: BlockStore) -> ForkedStore:
    return ForkedStore(store, F)


def _fields(raw: bytes) -> list[bytes]:
    return [bytes(x) for x in rlp.split_list(raw)]


def test_forged_header_changes_only_parent_and_extra_data() -> None:
    """Every derived block (frontier to prague: txs, receipts, withdrawals, blobs) still matches its
    body and receipts under the forged header: only the parent hash and extraData differ."""
    parent = b"\x42" * 32
    checked = 0
    for b in DERIVED:
        raw = bytes.fromhex(b["header_rlp"])
        forged = Header(fork_header(raw, parent))
        real_f, forged_f = _fields(raw), _fields(forged.raw)
        changed = {i for i, (x, y) in enumerate(zip(real_f, forged_f, strict=True)) if x != y}
        assert changed == {PARENT_HASH, EXTRA_DATA}, b["number"]
        assert forged.parent_hash == parent and forged.extra_data.startswith(FORK_MARKER)
        assert len(forged.extra_data) <= 32
        body = verify_body(forged, bytes.fromhex(b["body_rlp"]))
        if "receipts_eth69_rlp" in b:  # most have receipts
            verify_receipts(forged, bytes.fromhex(b["receipts_eth69_rlp"]), form=69, tx_count=len(body.transactions))
            checked += 1
    assert checked >= 60


def test_view_is_real_below_the_fork_and_a_linked_fork_above(store: BlockStore, view: ForkedStore) -> None:
    numbers = list(range(F - 50, F + 50))
    served = [Header(r) for r in view.headers_by_numbers(numbers)]  # type: ignore[arg-type]
    real = [Header(r) for r in store.headers_by_numbers(numbers)]  # type: ignore[arg-type]
    assert served[:50] == real[:50]
    assert all(s.hash != r.hash for s, r in zip(served[50:], real[50:], strict=True))
    verify_header_chain(served, F - 50)
    assert served[50].parent_hash == real[49].hash  # branches off the real block F-1
    assert [view.header_by_number(n) for n in numbers] == [s.raw for s in served]
    assert view.canonical_hash(F) == served[50].hash and view.canonical_hash(F - 1) == real[49].hash


def test_by_hash_serves_the_fork_and_not_the_real_chain_above_it(store: BlockStore, view: ForkedStore) -> None:
    n = 9003  # has an ommer: a non-empty body
    real_hash = store.canonical_hash(n)
    fork_hash = view.canonical_hash(n)
    assert real_hash is not None and fork_hash is not None and real_hash != fork_hash
    assert view.number_of(fork_hash) == n and view.header_by_hash(fork_hash) == view.header_by_number(n)
    assert view.body(fork_hash) == store.body(real_hash) != b"\xc2\xc0\xc0"
    assert view.receipts(fork_hash) == store.receipts(real_hash)
    blk = view.block(fork_hash)
    assert blk is not None and (blk.number, blk.hash, blk.body) == (n, fork_hash, store.body(real_hash))
    # The liar does not have the real chain at or above the fork point...
    for h in (real_hash, store.canonical_hash(F)):
        assert h is not None
        assert (view.number_of(h), view.header_by_hash(h), view.body(h), view.receipts(h), view.block(h)) == (None,) * 5
    # ... but below it the real hashes work.
    below = store.canonical_hash(F - 1)
    assert below is not None and view.number_of(below) == F - 1 and view.body(below) == store.body(below)


def test_isolated_blocks_above_the_head_are_not_served(store: BlockStore, view: ForkedStore) -> None:
    rich = next(b for b in DERIVED if int(b["number"]) == 22869878)
    real_hash = bytes.fromhex(rich["hash"])
    assert store.number_of(real_hash) == 22869878  # the real store has it
    assert view.header_by_number(22869878) is None and view.body(real_hash) is None
    assert view.block_range() == view.contiguous_range() == (0, HEAD)
    assert [b.number for b in view.canonical_blocks(HEAD - 1, 30_000_000)] == [HEAD - 1, HEAD]


def test_head_and_handler_see_the_fork(store: BlockStore, view: ForkedStore) -> None:
    head = store_head(view, MAINNET)  # type: ignore[arg-type]
    real = store_head(store, MAINNET)
    assert (head.number, head.total_difficulty, head.earliest) == (real.number, real.total_difficulty, real.earliest)
    assert head.hash == view.canonical_hash(HEAD) != real.hash
    handler = StoreHandler(view)  # type: ignore[arg-type]
    fork_hash = view.canonical_hash(9005)
    assert fork_hash is not None
    assert handler.block_bodies([fork_hash, store.canonical_hash(9006)]) == [store.body(store.canonical_hash(9005))]  # type: ignore[arg-type, list-item]


def test_forked_blocks_agree_from_store_and_from_era1(store: BlockStore) -> None:
    """One fork: the store path (ForkedStore) and the era1 path give the same blocks."""
    from_store = forked_blocks(store, F, F - 2, F + 200)
    from_era1 = forked_blocks(era1_blocks(), F, F - 2, F + 200)
    assert [(b.number, b.hash, b.header, b.body) for b in from_store] == [
        (b.number, b.hash, b.header, b.body) for b in from_era1
    ]
    assert [b.hash for b in from_era1[:2]] == [b.hash for b in era1_blocks()[F - 2 : F]]


def test_fork_block_must_fit_the_store(store: BlockStore) -> None:
    for bad in (0, -3, HEAD + 1, 22869878):
        with pytest.raises(ForkError):
            ForkedStore(store, bad)
    first = ForkedStore(store, 1)  # branches off the genesis
    assert Header(first.header_by_number(1)).parent_hash == MAINNET.genesis_hash  # type: ignore[arg-type]
    assert first.canonical_hash(0) == MAINNET.genesis_hash
    top = ForkedStore(store, HEAD)  # only the head is forged
    assert top.canonical_hash(HEAD - 1) == store.canonical_hash(HEAD - 1)
    assert top.canonical_hash(HEAD) != store.canonical_hash(HEAD)


def test_history_server_wiring(store: BlockStore) -> None:
    srv = HistoryServer(store, MAINNET, port=0, misbehave=Misbehaviour.FORK)  # not started: no socket
    assert srv.fork_block == 8192  # the middle of 0..16383
    assert isinstance(srv.store, ForkedStore) and type(srv.handler) is StoreHandler and srv.misconduct is None
    assert srv.head.hash == srv.store.canonical_hash(HEAD) != store.canonical_hash(HEAD)
    assert HistoryServer(store, MAINNET, port=0, misbehave=Misbehaviour.FORK, fork_block=F).fork_block == F
    with pytest.raises(ValueError, match="fork_block"):
        HistoryServer(store, MAINNET, port=0, fork_block=F)
    with pytest.raises(ValueError, match="fork_block"):
        HistoryServer(store, MAINNET, port=0, misbehave=Misbehaviour.SHORT, fork_block=F)
    with pytest.raises(ForkError):
        HistoryServer(store, MAINNET, port=0, misbehave=Misbehaviour.FORK, fork_block=HEAD + 1)


def test_era1_writer_rebuilds_the_real_archive() -> None:
    """The writer is right: the real blocks written again read back identical, with the real root."""
    epoch1 = list(era1_blocks()[8192:])
    back = read_era1(era1_bytes(epoch1))
    assert back.blocks == read_era1(VECTORS / "mainnet/era1/mainnet-00001-a5364e9a.era1").blocks
    assert back.accumulator_root.hex() == REAL_ROOTS[1]


@pytest.mark.parametrize(("epoch", "fork_block"), [(1, F), (1, 5000), (0, 100)])
def test_forged_era1_is_self_consistent_but_not_the_real_epoch(tmp_path: Path, epoch: int, fork_block: int) -> None:
    path = tmp_path / "forged.era1"
    written = write_forged_era1(path, fork_block, epoch=epoch)
    got = read_era1(path)  # hashes, links, block index and accumulator all check out
    first = epoch * 8192
    assert got.start_block == first and len(got.blocks) == 8192 and got.blocks == written
    assert got.accumulator_root.hex() != REAL_ROOTS[epoch]
    real = era1_blocks()
    for b in (got.blocks[0], got.blocks[-1], got.blocks[max(0, fork_block - first)]):
        forged = b.number >= fork_block
        assert (b.hash != real[b.number].hash) is forged
        assert (b.body, b.receipts, b.total_difficulty) == (
            real[b.number].body,
            real[b.number].receipts,
            real[b.number].total_difficulty,
        )
    if fork_block <= first:  # the whole epoch is forged: it links to the forged previous epoch
        assert Header(got.blocks[0].header).parent_hash == forked_blocks(real, fork_block, first - 1, first - 1)[0].hash
    # A forged block swapped into the real archive breaks it: the fork is only consistent with itself.
    mixed = list(real[first : first + 8192])
    mixed[-1] = got.blocks[-1]
    with pytest.raises(Era1Error):
        read_era1(era1_bytes(mixed))


def test_fork_chain_file_parses_and_links(tmp_path: Path, store: BlockStore) -> None:
    path = tmp_path / "fork.rlp"
    last = F + 100
    written = write_fork_chain_file(path, era1_blocks(), F, last)
    blocks = list(iter_chain_file(path.read_bytes()))
    assert [b.number for b in blocks] == list(range(1, last + 1))
    assert [(b.hash, b.header, b.body) for b in blocks] == [(w.hash, w.header, w.body) for w in written]
    headers = [Header(b.header) for b in blocks]
    verify_header_chain(headers, 1, parent=Header(store.header_by_number(0)))  # type: ignore[arg-type]
    for h, b in zip(headers, blocks, strict=True):
        verify_body(h, b.body)
    assert blocks[F - 2].hash == store.canonical_hash(F - 1) and blocks[F - 1].hash != store.canonical_hash(F)
    # The same file from the store (one fork implementation either way).
    other = tmp_path / "fork-from-store.rlp"
    write_fork_chain_file(other, store, F, last)
    assert other.read_bytes() == path.read_bytes()
