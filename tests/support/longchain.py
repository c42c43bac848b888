"""A long chain for tests, built in seconds: linked Prague headers over empty bodies, in a normal store.

Blocks 0..count-1 (block 0 is the genesis of a network of its own, written as ``genesis.json``
next to the store, so the chain is a ``--genesis FILE`` network; every fork through Prague is
active at genesis, so every header has Prague's 21 fields). Each block ``n`` has no transactions,
no ommers, no withdrawals and no receipts, and a header that links to block ``n - 1``, with the
number and a timestamp of 12 seconds a slot: everything a client checks of it (numbers, links,
the empty roots against the empty bodies) holds. Deterministic: the same ``count`` gives the
same hashes on every run.

Fast because only the parent hash, number and timestamp change from block to block: each header
is the same byte template with those three spliced in (no RLP encoder per block), and all blocks
go into the store in a few large transactions (:meth:`BlockStore.put_blocks`). 100,000 blocks
take about 3.5 s on the suite's 2-core machine (0.8 s to make the headers, the rest SQLite).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ethp2p import rlp
from ethp2p.chain.genesis import EMPTY_REQUESTS_HASH, chainspec_from_genesis
from ethp2p.chain.header import EMPTY_OMMERS_HASH
from ethp2p.chain.trie import EMPTY_TRIE_ROOT
from ethp2p.crypto.keccak import keccak
from ethp2p.eth.chainspec import ChainSpec
from ethp2p.store.blocks import BlockRecord, BlockStore
from ethp2p.store.importer import ensure_genesis
from ethp2p.trust.proof import Proof

#: Blocks in the chain tests use by default (0..99,999).
LONG_CHAIN_BLOCKS = 100_000
SLOT_SECONDS = 12
GENESIS_TIME = 1_700_000_000
GAS_LIMIT = 30_000_000
BASE_FEE = 7  # the floor EIP-1559 falls to on a chain of empty blocks
#: The body of a post-Shanghai block with nothing in it: [txs=[], ommers=[], withdrawals=[]].
EMPTY_BODY = b"\xc3\xc0\xc0\xc0"
EMPTY_RECEIPTS = b"\xc0"
#: Blocks per store transaction.
BATCH = 25_000
#: Every header's extra data, the genesis's included.
EXTRA_DATA = b"ethp2p long test chain"


def prague_at_genesis(chain_id: int) -> dict:
    """A geth genesis ``config`` with every fork through Prague active at genesis (Cancun's and
    Prague's blob schedules), for test and benchmark chains of their own ``chain_id``."""
    return {
        "chainId": chain_id,
        "homesteadBlock": 0,
        "eip150Block": 0,
        "eip155Block": 0,
        "eip158Block": 0,
        "byzantiumBlock": 0,
        "constantinopleBlock": 0,
        "petersburgBlock": 0,
        "istanbulBlock": 0,
        "berlinBlock": 0,
        "londonBlock": 0,
        "mergeNetsplitBlock": 0,
        "terminalTotalDifficulty": 0,
        "shanghaiTime": 0,
        "cancunTime": 0,
        "pragueTime": 0,
        "blobSchedule": {
            "cancun": {"target": 3, "max": 6, "baseFeeUpdateFraction": 3338477},
            "prague": {"target": 6, "max": 9, "baseFeeUpdateFraction": 5007716},
        },
    }


#: Every fork through Prague active at genesis; a chain id of its own (no public network has it).
GENESIS: dict = {
    "config": prague_at_genesis(7_100_001),
    "nonce": "0x0",
    "timestamp": hex(GENESIS_TIME),
    "extraData": "0x" + EXTRA_DATA.hex(),
    "gasLimit": hex(GAS_LIMIT),
    "difficulty": "0x0",
    "mixHash": "0x" + "00" * 32,
    "coinbase": "0x" + "00" * 20,
    "alloc": {},
    "number": "0x0",
    "gasUsed": "0x0",
    "parentHash": "0x" + "00" * 32,
    "baseFeePerGas": hex(BASE_FEE),
    "excessBlobGas": "0x0",
    "blobGasUsed": "0x0",
}


@dataclass(frozen=True, slots=True)
class LongChain:
    """A built chain: its genesis file and store, its top block, and how long the build took."""

    genesis: Path
    store: Path
    head_number: int
    head_hash: bytes
    build_seconds: float


def genesis_spec() -> ChainSpec:
    """The long chain's ChainSpec."""
    return chainspec_from_genesis(GENESIS, name="longchain")


def _templates() -> tuple[bytes, bytes, bytes]:
    """The header bytes around the three fields that change: (before number, between number and
    timestamp, after timestamp), each already RLP-encoded; the parent hash comes first of all."""
    e = rlp.encode_bytes
    mid = b"".join(
        e(f) for f in (EMPTY_OMMERS_HASH, bytes(20), EMPTY_TRIE_ROOT, EMPTY_TRIE_ROOT, EMPTY_TRIE_ROOT, bytes(256), b"")
    )  # ommers hash, coinbase, state root, transactions root, receipts root, bloom, difficulty 0
    gas = e(rlp.encode_int(GAS_LIMIT)) + e(b"")  # gas limit, gas used 0
    tail = b"".join(
        e(f)
        for f in (
            EXTRA_DATA,
            bytes(32),  # mix hash (prevRandao)
            bytes(8),  # nonce
            rlp.encode_int(BASE_FEE),  # base fee
            EMPTY_TRIE_ROOT,  # withdrawals root
            b"",  # blob gas used
            b"",  # excess blob gas
            bytes(32),  # parent beacon block root
            EMPTY_REQUESTS_HASH,  # requests hash
        )
    )
    return mid, gas, tail


def generate(count: int, genesis_hash: bytes) -> Iterator[BlockRecord]:
    """Blocks 1..count-1, each linked to the one before (block 0 is the genesis)."""
    mid, gas, tail = _templates()
    e, i = rlp.encode_bytes, rlp.encode_int
    parent = genesis_hash
    for n in range(1, count):
        payload = b"".join((b"\xa0", parent, mid, e(i(n)), gas, e(i(GENESIS_TIME + SLOT_SECONDS * n)), tail))
        raw = rlp.encode_length(len(payload), 0xC0) + payload
        h = keccak(raw)
        yield BlockRecord(n, h, raw, EMPTY_BODY, EMPTY_RECEIPTS, Proof.UNANCHORED)
        parent = h


def _put(store: BlockStore, batch: list[BlockRecord]) -> None:
    """One transaction; in hash order, as the header, body and receipt tables are keyed by hash
    (written in that order they fill their B-trees page after page: about half the time of block order)."""
    store.put_blocks(sorted(batch, key=lambda r: r.hash))


def build_long_chain(out: Path, count: int = LONG_CHAIN_BLOCKS) -> LongChain:
    """Write ``out/genesis.json`` and ``out/chain.db`` holding blocks 0..count-1 (reused when complete)."""
    if count < 2:
        raise ValueError("a long chain has at least 2 blocks")
    out.mkdir(parents=True, exist_ok=True)
    genesis_path = out / "genesis.json"
    db = out / "chain.db"
    genesis_path.write_text(json.dumps(GENESIS, indent=1))
    spec = genesis_spec()
    t0 = time.monotonic()
    with BlockStore(db, genesis_hash=spec.genesis_hash, drop_page_cache=False) as store:
        if store.contiguous_range() != (0, count - 1):
            ensure_genesis(store, spec)
            batch: list[BlockRecord] = []
            for rec in generate(count, spec.genesis_hash):
                batch.append(rec)
                if len(batch) >= BATCH:
                    _put(store, batch)
                    batch = []
            _put(store, batch)
        head = store.canonical_hash(count - 1)
    assert head is not None
    return LongChain(genesis_path, db, count - 1, head, time.monotonic() - t0)
