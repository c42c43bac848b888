"""verify_store re-checks a real stored chain (mainnet 0-16,383 plus the derived blocks): it finds broken
links, tampered headers, bodies and receipts and checkpoint contradictions, and re-links proofs."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from ethp2p.crypto.keccak import keccak
from ethp2p.eth.chainspec import MAINNET
from ethp2p.serve.adversary import fork_header
from ethp2p.store.blocks import BlockRecord, BlockStore
from ethp2p.store.verify import VerifyReport, verify_store
from ethp2p.trust import Proof, anchors_for
from tests.support.forks import era1_blocks
from tests.support.stores import DERIVED

ANCHORS = anchors_for(MAINNET.genesis_hash)
DERIVED_COUNT = 81
ISOLATED = DERIVED_COUNT - 5  # the derived blocks above 16,383 (1..5 are era1 blocks too)


@pytest.fixture
def store(mainnet_store_path: Path, tmp_path: Path):
    """A private copy of the shared mainnet store (the shared one must not change)."""
    copy = tmp_path / "copy.db"
    src, dst = sqlite3.connect(mainnet_store_path), sqlite3.connect(copy)
    src.backup(dst)
    src.close()
    dst.close()
    with BlockStore(copy, genesis_hash=MAINNET.genesis_hash) as s:
        yield s


def _kinds(report: VerifyReport) -> set[tuple[int, str]]:
    return {(p.number, p.kind) for p in report.problems}


def _raw(store: BlockStore, sql: str, *args: object) -> None:
    db = sqlite3.connect(store.path)
    with db:
        db.execute(sql, args)
    db.close()


def test_a_sound_store_verifies_clean_and_fast(store: BlockStore) -> None:
    t = time.monotonic()
    seen: list[int] = []
    r = verify_store(store, ANCHORS, progress=seen.append)
    elapsed = time.monotonic() - t
    assert r.ok and r.problems == [], r.lines()
    assert r.checked == 16_384 + ISOLATED and sum(seen) == r.checked
    assert r.epochs_proven == [0, 1] and r.epochs_failed == []
    assert r.proofs == {Proof.CHECKPOINT: 1, Proof.ACCUMULATOR: 16_383, Proof.UNANCHORED: ISOLATED}
    assert r.upgraded == r.downgraded == 0 and r.changes == {}
    assert r.missing_receipts == len(
        [b for b in json.loads(DERIVED.read_text())["blocks"] if not b.get("receipts_eth69_rlp")]
    )
    assert elapsed < 10, elapsed


def test_a_migrated_store_is_relinked_to_the_accumulator(store: BlockStore) -> None:
    # What the schema 2 -> 3 migration leaves (everything unproven), the genesis included.
    store.set_proofs((n, Proof.UNPROVEN) for n in store.proofs(0, 1 << 40))
    assert store.proof_counts() == {Proof.UNPROVEN: 16_384 + ISOLATED}
    r = verify_store(store, ANCHORS)
    assert r.ok and r.epochs_proven == [0, 1]
    assert r.changes == {(Proof.UNPROVEN, Proof.ACCUMULATOR): 16_384} and r.upgraded == 16_384
    assert store.proof_counts(0, 16_383) == {Proof.ACCUMULATOR: 16_384}
    # The isolated blocks link to no anchor: still unproven.
    assert store.proof_counts(16_384) == {Proof.UNPROVEN: ISOLATED}
    assert verify_store(store, ANCHORS).changes == {}


def test_a_migrated_range_without_its_epoch_is_relinked_from_the_checkpoint(store: BlockStore) -> None:
    store.set_proofs((n, Proof.UNPROVEN) for n in range(8192, 16_384))
    # Only part of epoch 1 in range: no root to check, the checkpoint proves 9,000..10,965.
    r = verify_store(store, ANCHORS, 9000, 12_000)
    assert r.ok and r.checked == 3001 and r.epochs_proven == []
    assert r.changes == {(Proof.UNPROVEN, Proof.CHECKPOINT): 10_965 - 9000 + 1}
    assert store.proof(12_000) is Proof.UNPROVEN and store.proof(8192) is Proof.UNPROVEN
    # The whole range: epoch 1's root (from the total difficulty recorded at 8,191) proves the rest.
    r = verify_store(store, ANCHORS, 8192, 16_383)
    assert r.epochs_proven == [1] and store.proof_counts(8192, 16_383) == {
        Proof.ACCUMULATOR: 8192 - (10_965 - 9000 + 1),
        Proof.CHECKPOINT: 10_965 - 9000 + 1,
    }


def test_write_false_only_reports(store: BlockStore) -> None:
    store.set_proofs((n, Proof.UNPROVEN) for n in range(0, 100))
    r = verify_store(store, ANCHORS, 0, 16_383, write=False)
    assert not r.written and r.upgraded == 100 and r.proofs[Proof.ACCUMULATOR] == 16_384
    assert store.proof_counts(0, 99) == {Proof.UNPROVEN: 100}


def test_an_injected_block_that_breaks_the_chain_is_found(store: BlockStore) -> None:
    # Block 5,000 replaced by a self-consistent other block: it links to 4,999 and its body and
    # receipts fit it, but block 5,001 does not link to it.
    real = era1_blocks()[5000]
    forged = fork_header(real.header, era1_blocks()[4999].hash)
    fake = keccak(forged)
    store.put_blocks([BlockRecord(5000, fake, forged, real.body, store.receipts(real.hash), Proof.ACCUMULATOR)])
    r = verify_store(store, ANCHORS)
    assert _kinds(r) == {(5000, "link"), (0, "accumulator")}, r.lines()
    link = next(p for p in r.problems if p.kind == "link")
    assert "block 5,000" in link.message and "block 5,001" in link.message and fake.hex()[:16] in link.message
    acc = next(p for p in r.problems if p.kind == "accumulator")
    assert "epoch 0" in acc.message and ANCHORS.accumulator.root(0).hex() in acc.message  # type: ignore[union-attr]
    assert r.epochs_failed == [0] and r.epochs_proven == [1]
    # The injected block is unproven; above it epoch 1's proof links down through 5,001;
    # below it nothing recorded in the failed epoch is trusted: only the genesis checkpoint stands.
    assert store.proof(5000) is Proof.UNPROVEN
    assert store.proof_counts(5001, 16_383) == {Proof.ACCUMULATOR: 16_383 - 5000}
    assert store.proof_counts(1, 4999) == {Proof.UNPROVEN: 4999} and store.proof(0) is Proof.CHECKPOINT
    assert r.downgraded == 5000 and r.changes[(Proof.ACCUMULATOR, Proof.UNPROVEN)] == 5000
    # Putting the real block back and verifying again restores every proof.
    store.put_blocks([BlockRecord(5000, real.hash, real.header, real.body, None, Proof.UNPROVEN)])
    r = verify_store(store, ANCHORS)
    assert r.ok and store.proof_counts(0, 16_383) == {Proof.CHECKPOINT: 1, Proof.ACCUMULATOR: 16_383}


def test_a_forged_block_at_a_checkpoint_is_a_checkpoint_problem(store: BlockStore) -> None:
    real = era1_blocks()[10_965]
    forged = fork_header(real.header, era1_blocks()[10_964].hash)
    store.put_blocks([BlockRecord(10_965, keccak(forged), forged, real.body, None, Proof.CHECKPOINT)])
    r = verify_store(store, ANCHORS)
    assert (10_965, "checkpoint") in _kinds(r) and (8192, "accumulator") in _kinds(r)
    assert "checkpoint #10,965" in next(p.message for p in r.problems if p.kind == "checkpoint")
    assert store.proof(10_965) is Proof.UNPROVEN


def test_tampered_headers_bodies_and_receipts_are_found(store: BlockStore) -> None:
    blocks = era1_blocks()
    ommers = [b.number for b in blocks[:200] if b.body != b"\xc2\xc0\xc0"]
    body_victim, receipts_victim, header_victim = ommers[0], 12_345, 15_000
    assert body_victim == 3
    # A body swapped for another block's (raw SQLite, as damage or a malicious edit would).
    _raw(store, "UPDATE bodies SET body=? WHERE hash=?", blocks[ommers[1]].body, blocks[body_victim].hash)
    # A receipt list where the header says there is none.
    derived = next(
        b for b in json.loads(DERIVED.read_text())["blocks"] if b.get("receipts_eth69_rlp") and b["tx_count"]
    )
    _raw(
        store,
        "UPDATE receipts SET receipts=? WHERE hash=?",
        bytes.fromhex(derived["receipts_eth69_rlp"]),
        blocks[receipts_victim].hash,
    )
    # A header changed in place (its row keeps the old hash).
    bad_header = bytearray(blocks[header_victim].header)
    bad_header[-20] ^= 1
    _raw(store, "UPDATE headers SET header=? WHERE hash=?", bytes(bad_header), blocks[header_victim].hash)
    r = verify_store(store, ANCHORS)
    kinds = _kinds(r)
    assert {(body_victim, "body"), (receipts_victim, "receipts"), (header_victim, "hash")} <= kinds, r.lines()
    messages = {p.kind: p.message for p in r.problems}
    assert "ommers hash mismatch" in messages["body"] and "receipt" in messages["receipts"]
    assert "hashes to" in messages["hash"]
    for n in (body_victim, receipts_victim, header_victim):
        assert store.proof(n) is Proof.UNPROVEN
    # Epoch 1 cannot be summed without block 15,000's header; its neighbours keep their proofs.
    assert r.epochs_proven == [0]
    assert store.proof(body_victim - 1) is Proof.ACCUMULATOR and store.proof(body_victim + 1) is Proof.ACCUMULATOR
    assert store.proof(header_victim + 1) is Proof.ACCUMULATOR and store.proof(header_victim - 1) is Proof.ACCUMULATOR
    assert not r.ok and any("block 12,345" in line for line in r.lines())


def test_an_empty_range_or_store(tmp_path: Path, store: BlockStore) -> None:
    with BlockStore(tmp_path / "empty.db", genesis_hash=MAINNET.genesis_hash) as empty:
        r = verify_store(empty, ANCHORS)
        assert r.checked == 0 and r.ok and r.proofs == {}
    r = verify_store(store, ANCHORS, 100_000, 100_010)
    assert r.checked == 0 and r.ok
