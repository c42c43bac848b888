"""Imports are anchored: era1 files against the shipped accumulator roots and checksums, chain files and
derived block sets by linkage from above; a file that contradicts an anchor is refused whole."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ethp2p.eth.chainspec import MAINNET
from ethp2p.store.blocks import BlockStore
from ethp2p.store.importer import ChainImportError, ensure_genesis, import_file
from ethp2p.trust import Anchors, Checkpoint, Proof, anchors_for, mainnet_accumulator
from tests.support.forks import chain_file_bytes, era1_blocks, write_forged_era1, write_fork_chain_file
from tests.support.stores import DERIVED, ERA1_FILES

ERA0, ERA1 = ERA1_FILES
CHECKPOINT_1 = 10_965


def _store(path: Path, *era1: Path) -> BlockStore:
    store = BlockStore(path, genesis_hash=MAINNET.genesis_hash)
    ensure_genesis(store, MAINNET)
    for f in era1:
        import_file(store, f, MAINNET)
    return store


def _runs(store: BlockStore, lo: int, hi: int) -> list[tuple[int, int, Proof]]:
    """The stored proofs in [lo, hi] as (first, last, proof) runs."""
    runs: list[tuple[int, int, Proof]] = []
    for n, p in sorted(store.proofs(lo, hi).items()):
        if runs and runs[-1][2] is p and runs[-1][1] == n - 1:
            runs[-1] = (runs[-1][0], n, p)
        else:
            runs.append((n, n, p))
    return runs


def _snapshot(store: BlockStore) -> tuple[int, dict[int, Proof], dict[int, bytes | None]]:
    proofs = store.proofs(0, 1 << 40)
    return store.count(), proofs, {n: store.canonical_hash(n) for n in proofs}


# ---- era1 ------------------------------------------------------------------------------------


def test_era1_imports_are_accumulator_proven_by_the_shipped_roots(tmp_path: Path) -> None:
    store = BlockStore(tmp_path / "s.db", genesis_hash=MAINNET.genesis_hash)
    acc = mainnet_accumulator()
    results = [import_file(store, f, MAINNET) for f in ERA1_FILES]
    assert [r.epochs for r in results] == [[0], [1]]
    assert [r.proofs for r in results] == [{Proof.ACCUMULATOR: 8192}, {Proof.ACCUMULATOR: 8192}]
    assert results[1].describe_proofs() == "8,192 accumulator (epoch 1)"
    assert store.proof_counts() == {Proof.ACCUMULATOR: 16_384}
    # The files' roots are the shipped ones, and the total difficulty at each epoch's end is recorded.
    blocks = era1_blocks()
    for epoch in (0, 1):
        assert ERA1_FILES[epoch].name.split("-")[2].removesuffix(".era1") == acc.root(epoch).hex()[:8]
        last = blocks[8191 + 8192 * epoch]
        assert store.total_difficulty(last.number) == last.total_difficulty
    # The checkpoint in epoch 1 is an accumulator block too; re-importing changes nothing.
    assert store.proof(CHECKPOINT_1) is Proof.ACCUMULATOR
    again = import_file(store, ERA1, MAINNET)
    assert again.proofs == {Proof.ACCUMULATOR: 8192} and store.count() == 16_384


def test_a_stored_genesis_keeps_its_checkpoint_proof(tmp_path: Path) -> None:
    store = _store(tmp_path / "s.db")
    r = import_file(store, ERA0, MAINNET)
    assert r.proofs == {Proof.CHECKPOINT: 1, Proof.ACCUMULATOR: 8191}
    assert store.proof(0) is Proof.CHECKPOINT


def test_a_forged_era1_file_is_refused_naming_its_epoch_and_both_roots(tmp_path: Path) -> None:
    store = _store(tmp_path / "s.db", ERA0)
    before = _snapshot(store)
    forged = tmp_path / "epoch1-fork.era1"
    blocks = write_forged_era1(forged, 9000, epoch=1)
    assert blocks[9000 - 8192].hash != era1_blocks()[9000].hash  # really a fork, and read_era1 accepts it
    with pytest.raises(ChainImportError) as e:
        import_file(store, forged, MAINNET)
    msg = str(e.value)
    assert "epoch 1" in msg and mainnet_accumulator().root(1).hex() in msg and "forged" in msg
    from ethp2p.formats.era1 import read_era1

    assert read_era1(forged).accumulator_root.hex() in msg
    assert _snapshot(store) == before
    # A forged epoch 0 (from block 1 on) is refused the same way.
    forged0 = tmp_path / "epoch0-fork.era1"
    write_forged_era1(forged0, 1, epoch=0)
    with pytest.raises(ChainImportError, match="epoch 0"):
        import_file(store, forged0, MAINNET)
    assert _snapshot(store) == before


def test_era1_files_under_canonical_names_must_have_the_shipped_checksum(tmp_path: Path) -> None:
    store = _store(tmp_path / "s.db")
    before = _snapshot(store)
    # The real epoch 0 file under epoch 1's canonical name: its SHA-256 is not that name's.
    wrong = tmp_path / ERA1.name
    shutil.copy(ERA0, wrong)
    with pytest.raises(ChainImportError, match="SHA-256 .* is not the shipped checksum") as e:
        import_file(store, wrong, MAINNET)
    assert ERA1.name in str(e.value)
    # A canonical-looking name that is in no list.
    unknown = tmp_path / "mainnet-00000-deadbeef.era1"
    shutil.copy(ERA0, unknown)
    with pytest.raises(ChainImportError, match="no file of that name is in the shipped checksum list"):
        import_file(store, unknown, MAINNET)
    # A forged file under the real name is caught by the checksum before anything else.
    forged = tmp_path / "x" / ERA0.name
    forged.parent.mkdir()
    write_forged_era1(forged, 100, epoch=0)
    with pytest.raises(ChainImportError, match="not the shipped checksum"):
        import_file(store, forged, MAINNET)
    assert _snapshot(store) == before
    # The real file under any non-canonical name is proven by its root alone.
    plain = tmp_path / "history.era1"
    shutil.copy(ERA0, plain)
    assert import_file(store, plain, MAINNET).epochs == [0]


def test_era1_without_an_accumulator_goes_through_linkage(tmp_path: Path) -> None:
    main = anchors_for(MAINNET.genesis_hash)
    no_acc = Anchors(main.checkpoints, None)
    store = _store(tmp_path / "s.db")
    r = import_file(store, ERA1, MAINNET, anchors=no_acc)
    assert r.epochs == [] and r.proofs == {
        Proof.CHECKPOINT: CHECKPOINT_1 - 8192 + 1,
        Proof.UNANCHORED: 16_383 - CHECKPOINT_1,
    }
    assert _runs(store, 8192, 16_383) == [
        (8192, CHECKPOINT_1, Proof.CHECKPOINT),
        (CHECKPOINT_1 + 1, 16_383, Proof.UNANCHORED),
    ]
    # Epoch 0 below it: linked down from the stored checkpoint-proven block 8,192.
    r = import_file(store, ERA0, MAINNET, anchors=no_acc)
    assert r.proofs == {Proof.CHECKPOINT: 8192}
    # A user checkpoint at the top proves the rest; one that contradicts the file refuses it.
    top = era1_blocks()[16_383]
    anchored = no_acc.with_checkpoints([Checkpoint(16_383, top.hash)])
    assert import_file(store, ERA1, MAINNET, anchors=anchored).proofs == {Proof.CHECKPOINT: 8192}
    lying = no_acc.with_checkpoints([Checkpoint(16_000, b"\x42" * 32)])
    fresh = _store(tmp_path / "t.db")
    with pytest.raises(ChainImportError, match=r"block 16,000 .*--checkpoint"):
        import_file(fresh, ERA1, MAINNET, anchors=lying)
    assert fresh.count() == 1


# ---- chain files -----------------------------------------------------------------------------


def test_a_chain_file_of_the_real_blocks_is_proven_up_to_the_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "real.rlp"
    path.write_bytes(chain_file_bytes(era1_blocks()[1:11_001]))
    store = _store(tmp_path / "s.db")
    r = import_file(store, path, MAINNET)
    assert (r.kind, r.blocks, r.first, r.last, r.epochs) == ("chain", 11_000, 1, 11_000, [])
    assert r.proofs == {Proof.CHECKPOINT: CHECKPOINT_1, Proof.UNANCHORED: 35}
    assert any("35 block(s) are unanchored" in n for n in r.notes)
    assert _runs(store, 0, 11_000) == [
        (0, CHECKPOINT_1, Proof.CHECKPOINT),
        (CHECKPOINT_1 + 1, 11_000, Proof.UNANCHORED),
    ]
    # Epoch 1's era1 file then proves the unanchored ones; the checkpoint-proven keep the stronger proof.
    r = import_file(store, ERA1, MAINNET)
    assert r.proofs == {Proof.CHECKPOINT: CHECKPOINT_1 - 8192 + 1, Proof.ACCUMULATOR: 16_383 - CHECKPOINT_1}
    assert store.proof(11_000) is Proof.ACCUMULATOR and store.proof(CHECKPOINT_1) is Proof.CHECKPOINT


def test_a_chain_file_covering_whole_epochs_is_proven_by_their_roots(tmp_path: Path) -> None:
    path = tmp_path / "all.rlp"
    path.write_bytes(chain_file_bytes(era1_blocks()))
    store = _store(tmp_path / "s.db")
    r = import_file(store, path, MAINNET)
    assert r.epochs == [0, 1] and r.proofs == {Proof.CHECKPOINT: 1, Proof.ACCUMULATOR: 16_383}
    assert store.total_difficulty(16_383) == era1_blocks()[16_383].total_difficulty
    assert store.receipts(era1_blocks()[5].hash) is None  # chain files carry no receipts
    # Epoch 1 alone, starting from the total difficulty recorded at block 8,191.
    store2 = _store(tmp_path / "t.db", ERA0)
    path1 = tmp_path / "e1.rlp"
    path1.write_bytes(chain_file_bytes(era1_blocks()[8192:]))
    assert import_file(store2, path1, MAINNET).epochs == [1]


def test_a_fork_crossing_a_checkpoint_is_refused_naming_the_block(tmp_path: Path) -> None:
    path = tmp_path / "fork.rlp"
    forged = write_fork_chain_file(path, era1_blocks(), 9000, 12_000)
    assert forged[CHECKPOINT_1 - 1].hash != era1_blocks()[CHECKPOINT_1].hash
    store = _store(tmp_path / "s.db")
    with pytest.raises(ChainImportError) as e:
        import_file(store, path, MAINNET)
    msg = str(e.value)
    assert "block 10,965 has hash" in msg and "checkpoint #10,965" in msg and "history index" in msg
    assert "1 more contradiction" in msg
    assert store.count() == 1 and store.canonical_hash(9000) is None


def test_a_fork_inside_an_epoch_is_refused_by_its_root_or_the_stored_chain(tmp_path: Path) -> None:
    blocks = era1_blocks()
    # Blocks 0..8191 forked at 5,000: epoch 0 complete in the file, its root is not mainnet's.
    from ethp2p.store.importer import import_chain_file
    from tests.support.forks import forked_blocks

    path = tmp_path / "e0.rlp"
    path.write_bytes(chain_file_bytes(forked_blocks(blocks[:8192], 5000, 0, 8191)))
    store = _store(tmp_path / "s.db")
    with pytest.raises(ChainImportError, match=r"epoch 0 \(blocks 0\.\.8,191\).*shipped root of epoch 0"):
        import_chain_file(store, path, MAINNET)
    assert store.count() == 1
    # Blocks 1..8191 of it (epoch 0 not complete): linked from the stored proven block 8,192 it contradicts it.
    path.write_bytes(chain_file_bytes(forked_blocks(blocks[:8192], 5000, 1, 8191)))
    store = _store(tmp_path / "t.db", ERA1)
    with pytest.raises(
        ChainImportError, match=r"block 8,191 has hash .* the store's block 8,192 \(accumulator\) links to"
    ):
        import_file(store, path, MAINNET)
    # Where the store holds proven blocks, a fork of them is refused at its first forged block.
    store = _store(tmp_path / "u.db", ERA0)
    before = _snapshot(store)
    path.write_bytes(chain_file_bytes(forked_blocks(blocks[:8192], 5000, 4000, 6000)))
    with pytest.raises(
        ChainImportError, match=r"block 5,000 has hash .* the store holds block 5,000 .* proven by accumulator"
    ):
        import_file(store, path, MAINNET)
    assert _snapshot(store) == before
    # The real blocks 1..8191 under a proven 8,192 inherit its proof.
    path.write_bytes(chain_file_bytes(blocks[1:8192]))
    store = _store(tmp_path / "v.db", ERA1)
    assert import_file(store, path, MAINNET).proofs == {Proof.ACCUMULATOR: 8191}


def test_malformed_chain_files_are_refused_cleanly(tmp_path: Path) -> None:
    store = _store(tmp_path / "s.db")
    blocks = era1_blocks()
    import dataclasses

    from ethp2p.serve.adversary import fork_header
    from tests.support.forks import forked_blocks

    forged3 = forked_blocks(blocks[:5], 2, 0, 4)[3]  # links to the forged block 2
    orphan1 = dataclasses.replace(blocks[1], header=fork_header(blocks[1].header, b"\x01" * 32))
    cases = {
        "garbage.rlp": (b"\xff" * 100, "bad block at offset 0"),
        "truncated.rlp": (chain_file_bytes(blocks[1:10])[:-7], "offset"),
        "descending.rlp": (chain_file_bytes([blocks[2], blocks[1]]), "block 1 follows block 2"),
        "unlinked.rlp": (chain_file_bytes([blocks[1], blocks[2], forged3]), "block 3 does not link to block 2"),
        "bad-body.rlp": (
            chain_file_bytes([blocks[1], blocks[2], dataclasses.replace(blocks[3], body=blocks[1].body)]),
            "block 3: ommers hash mismatch",
        ),
        "not-genesis.rlp": (chain_file_bytes([orphan1]), "block 1 does not link to block 0"),
    }
    for name, (data, why) in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(ChainImportError, match=why) as e:
            import_file(store, p, MAINNET)
        assert str(e.value).startswith(str(p)), e.value
    assert store.count() == 1
    empty = tmp_path / "empty.rlp"
    empty.write_bytes(b"")
    assert import_file(store, empty, MAINNET).blocks == 0


# ---- derived block sets ----------------------------------------------------------------------


def test_the_derived_block_set_imports_unanchored(tmp_path: Path) -> None:
    data = json.loads(DERIVED.read_text())
    numbers = sorted(b["number"] for b in data["blocks"])
    main = anchors_for(MAINNET.genesis_hash)
    assert not [n for n in numbers if main.checkpoint(n) is not None]  # none sits at a checkpoint height
    store = _store(tmp_path / "s.db")
    r = import_file(store, DERIVED, MAINNET)
    assert r.proofs == {Proof.UNANCHORED: len(numbers)} and r.unanchored == len(numbers)
    # Over proven stored blocks (era1 0..16,383) blocks 1..5 keep their proof.
    store = _store(tmp_path / "t.db", *ERA1_FILES)
    r = import_file(store, DERIVED, MAINNET)
    assert r.proofs == {Proof.ACCUMULATOR: 5, Proof.UNANCHORED: len(numbers) - 5}
    # A checkpoint the user gives at one of them proves it and the consecutive blocks it links down to.
    top = next(b for b in data["blocks"] if b["number"] == 1_000_030)
    anchors = main.with_checkpoints([Checkpoint(1_000_030, bytes.fromhex(top["hash"].removeprefix("0x")))])
    store = _store(tmp_path / "u.db")
    r = import_file(store, DERIVED, MAINNET, anchors=anchors)
    assert _runs(store, 1_000_000, 1_000_030) == [(1_000_001, 1_000_030, Proof.CHECKPOINT)]
    assert r.proofs[Proof.CHECKPOINT] == 30
    # One that contradicts a block of the set refuses it.
    wrong = main.with_checkpoints([Checkpoint(200_000, b"\x01" * 32)])
    store = _store(tmp_path / "w.db")
    with pytest.raises(ChainImportError, match=r"block 200,000 has hash .*--checkpoint"):
        import_file(store, DERIVED, MAINNET, anchors=wrong)
    assert store.count() == 1


def test_hostile_derived_sets_are_refused_cleanly(tmp_path: Path) -> None:
    from ethp2p.serve.adversary import fork_header

    store = _store(tmp_path / "s.db")
    real = json.loads(DERIVED.read_text())["blocks"]
    by_number = {b["number"]: b for b in real}

    def forged(n: int, parent: bytes) -> dict:
        return dict(by_number[n], header_rlp=fork_header(bytes.fromhex(by_number[n]["header_rlp"]), parent).hex())

    cases = {
        "notjson.json": ("{", "not a derived block set"),
        "nolist.json": (json.dumps({"blocks": 5}), "not a derived block set"),
        "notobjects.json": (json.dumps({"blocks": [1, 2]}), "entry 0: not an object"),
        "badhex.json": (json.dumps({"blocks": [dict(by_number[1], header_rlp="zz")]}), "block 1: non-hexadecimal"),
        "badbody.json": (
            json.dumps({"blocks": [dict(by_number[3], body_rlp=by_number[1]["body_rlp"])]}),
            "ommers hash",
        ),
        "duplicate.json": (
            json.dumps({"blocks": [by_number[3], forged(3, b"\x01" * 32)]}),
            "two different blocks numbered 3",
        ),
        "unlinked.json": (
            json.dumps({"blocks": [by_number[1], forged(2, b"\x01" * 32)]}),
            "block 2 does not link to block 1",
        ),
    }
    for name, (text, why) in cases.items():
        p = tmp_path / name
        p.write_text(text)
        with pytest.raises(ChainImportError, match=why):
            import_file(store, p, MAINNET)
    assert store.count() == 1
