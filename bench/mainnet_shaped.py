"""A mainnet-shaped benchmark chain: real mainnet bodies and receipts under new, linked headers.

Every block ``i >= 1`` reuses the transactions, withdrawals and receipts of one of
the real post-merge mainnet blocks in ``tests/vectors/mainnet/derived`` (in turn),
under a new header that links to block ``i - 1`` and carries the source block's
transactions, receipts and withdrawals roots and logs bloom. So the chain is as
large and as varied as recent mainnet (all five transaction types, ~250 KB of
body + eth/68 receipts per block), serving nodes serve it from an ordinary block
store, and every check a client makes (links, transactions root, withdrawals
root, receipts root, fork fields) runs for real and passes.

The chain's genesis (written next to the store as ``genesis.json``) activates
every fork up to Prague at genesis, so every header has Prague's 21 fields.
The source blocks from before Shanghai get an empty withdrawals list.

Left out on purpose: mainnet block 15,537,394 (the merge block) has a 1.6 MB
receipt list, six times the others; cycling it would make every 12th block an
outlier and the average ~370 KB instead of recent mainnet's ~270 KB.

Run:  .venv/bin/python bench/mainnet_shaped.py --blocks 100000 --out .cache/bench/shaped
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "src"):  # ethp2p, and tests.support for the genesis config
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from tests.support.longchain import prague_at_genesis  # noqa: E402

from ethp2p import rlp  # noqa: E402
from ethp2p.chain.genesis import EMPTY_REQUESTS_HASH, chainspec_from_genesis  # noqa: E402
from ethp2p.chain.header import Header  # noqa: E402
from ethp2p.chain.trie import EMPTY_TRIE_ROOT  # noqa: E402
from ethp2p.crypto.keccak import keccak  # noqa: E402
from ethp2p.eth.chainspec import ChainSpec  # noqa: E402
from ethp2p.store.blocks import BlockRecord, BlockStore  # noqa: E402
from ethp2p.store.importer import ensure_genesis  # noqa: E402

DERIVED = ROOT / "tests/vectors/mainnet/derived/mainnet_blocks.json"
#: The first post-merge block; the chain reuses blocks from here on.
MERGE_BLOCK = 15537394
#: The merge block itself: a 1.6 MB receipt list (see the module docstring).
OUTLIERS = frozenset({MERGE_BLOCK})
SLOT_SECONDS = 12
GENESIS_TIME = 1_700_000_000

#: Every fork through Prague active at genesis; chain id chosen to collide with no public network.
GENESIS: dict = {
    "config": prague_at_genesis(7_000_271),
    "nonce": "0x0",
    "timestamp": hex(GENESIS_TIME),
    "extraData": "0x657468703270206d61696e6e65742d73686170656420626573746e6574",
    "gasLimit": "0x2255100",
    "difficulty": "0x0",
    "mixHash": "0x" + "00" * 32,
    "coinbase": "0x" + "00" * 20,
    "alloc": {},
    "number": "0x0",
    "gasUsed": "0x0",
    "parentHash": "0x" + "00" * 32,
    "baseFeePerGas": "0x3b9aca00",
    "excessBlobGas": "0x0",
    "blobGasUsed": "0x0",
}


@dataclass(frozen=True, slots=True)
class SourceBlock:
    """A real mainnet block's payloads, as the chain reuses them."""

    number: int
    fields: tuple[bytes, ...]  # the source header's fields (RLP payloads), Prague-complete
    body: bytes  # [txs, ommers, withdrawals]
    receipts69: bytes
    receipts68_size: int


def load_sources(path: Path = DERIVED) -> list[SourceBlock]:
    """The post-merge derived blocks with receipts, each made Prague-shaped."""
    out = []
    for b in json.loads(path.read_text())["blocks"]:
        n = int(b["number"])
        if n < MERGE_BLOCK or n in OUTLIERS or not b.get("receipts_eth69_rlp"):
            continue
        header = Header(bytes.fromhex(b["header_rlp"]))
        fields = [bytes(rlp.string_payload(f)) for f in rlp.split_list(header.raw)]
        body = bytes.fromhex(b["body_rlp"])
        parts = [bytes(p) for p in rlp.split_list(body)]
        if len(parts) == 2:  # before Shanghai: no withdrawals yet
            parts.append(b"\xc0")
            body = rlp.encode_raw_list(parts)
        if len(fields) < 17:
            fields.append(EMPTY_TRIE_ROOT)
        if len(fields) < 20:
            fields += [b"", b"", bytes(32)]
        if len(fields) < 21:
            fields.append(EMPTY_REQUESTS_HASH)
        out.append(
            SourceBlock(
                n, tuple(fields[:21]), body, bytes.fromhex(b["receipts_eth69_rlp"]), len(b["receipts_eth68_rlp"]) // 2
            )
        )
    if not out:
        raise SystemExit(f"no post-merge blocks with receipts in {path}")
    return out


def genesis_spec() -> ChainSpec:
    """The benchmark chain's ChainSpec."""
    return chainspec_from_genesis(GENESIS, name="mainnet-shaped")


def shaped_header(src: SourceBlock, number: int, parent_hash: bytes) -> bytes:
    """The new header for block ``number``: the source's roots, linked to ``parent_hash``."""
    f = list(src.fields)
    f[0] = parent_hash
    f[8] = _uint(number)
    f[11] = _uint(GENESIS_TIME + SLOT_SECONDS * number)
    return rlp.encode_raw_list([rlp.encode_bytes(x) for x in f])


def _uint(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def generate(count: int, sources: list[SourceBlock], genesis_hash: bytes) -> Iterator[BlockRecord]:
    """Blocks 1..count, each linked to the one before (block 0 is the genesis)."""
    parent = genesis_hash
    for n in range(1, count + 1):
        src = sources[(n - 1) % len(sources)]
        raw = shaped_header(src, n, parent)
        h = keccak(raw)
        yield BlockRecord(n, h, raw, src.body, src.receipts69)
        parent = h


def build(out: Path, count: int, *, batch: int = 512, quiet: bool = False) -> tuple[Path, Path]:
    """Write ``out/genesis.json`` and ``out/chain.db`` (blocks 0..count); reuse them if complete."""
    out.mkdir(parents=True, exist_ok=True)
    genesis_path = out / "genesis.json"
    db = out / "chain.db"
    genesis_path.write_text(json.dumps(GENESIS, indent=1))
    spec = genesis_spec()
    sources = load_sources()
    with BlockStore(db, genesis_hash=spec.genesis_hash) as store:
        ensure_genesis(store, spec)
        have = store.contiguous_range()
        start = have[1] + 1 if have else 1
        if start > count:
            return genesis_path, db
        t0 = time.monotonic()
        pending: list[BlockRecord] = []
        for rec in generate(count, sources, spec.genesis_hash):
            if rec.number < start:
                continue
            pending.append(rec)
            if len(pending) >= batch:
                store.put_blocks(pending)
                pending.clear()
                if not quiet and rec.number % (batch * 16) == 0:
                    rate = (rec.number - start + 1) / max(time.monotonic() - t0, 1e-9)
                    print(f"  {rec.number:,}/{count:,} blocks written ({rate:,.0f}/s)", flush=True)
        if pending:
            store.put_blocks(pending)
    return genesis_path, db


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--blocks", type=int, default=100_000)
    ap.add_argument("--out", type=Path, default=ROOT / ".cache/bench/shaped")
    args = ap.parse_args()
    sources = load_sources()
    avg68 = sum(len(s.body) + s.receipts68_size for s in sources) / len(sources)
    print(
        f"{len(sources)} source blocks ({', '.join(str(s.number) for s in sources)}), "
        f"{avg68 / 1000:.0f} KB body + eth/68 receipts on average"
    )
    g, db = build(args.out, args.blocks)
    print(f"genesis: {g}\nstore:   {db} ({db.stat().st_size / 1e9:.1f} GB)")


if __name__ == "__main__":
    main()
