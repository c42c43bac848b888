"""The work no fetch of verified blocks can skip, per mainnet-shaped block, with ethp2p's libraries.

For blocks of the benchmark chain (bench/mainnet_shaped.py), each step below is
timed alone on one core, on the bytes it really handles, with nothing else around
it (no event loop, no sockets, no Python parsing). The steps are what any client and
server of this design must do for every block fetched at eth/69 and verified:

server  read body + receipts from SQLite (the store's own queries)
server  snappy-compress the BlockBodies and Receipts messages (cramjam)
server  frame them: AES-CTR + keccak MAC (ethp2p.rlpx.frame, cryptography + pysha3)
client  check MAC + decrypt the same frames
client  snappy-decompress
client  keccak over every transaction and every receipt's consensus encoding, once
        (the bytes the two trie roots must hash; trie nodes not counted)
client  keccak of every log address and topic, uncached (the blooms eth/69 leaves out)
        (both keccak steps call ethp2p.crypto.keccak.keccak once per item: the C
        extension's one call into pysha3's sponge when it is built, else pysha3's hasher)
client  write the block to a SQLite store (WAL, one transaction per 64 blocks)

Their sum is a floor on CPU per block; two cores can then verify at most
2,000 / floor blocks per second, even if everything else cost nothing.

Run:  .venv/bin/python bench/floors.py [--store DIR] [--blocks N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from bench.ceiling import _all, _codec_pair  # noqa: E402
from ethp2p import accel  # noqa: E402
from ethp2p.chain.body import BlockBody  # noqa: E402
from ethp2p.chain.receipts import receipts69_items, receipts69_to_consensus  # noqa: E402
from ethp2p.crypto.keccak import keccak  # noqa: E402
from ethp2p.eth import codec  # noqa: E402
from ethp2p.eth import messages as m  # noqa: E402
from ethp2p.rlp import split_list, string_payload  # noqa: E402
from ethp2p.rlpx.snappy import compress, decompress  # noqa: E402
from ethp2p.serve.handler import StoreHandler  # noqa: E402
from ethp2p.store.blocks import BlockRecord, BlockStore  # noqa: E402

BATCH = 64


def _best(f: Callable[[], object], rounds: int = 3) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t0)
    return best


def _log_keys(list69: bytes) -> list[bytes]:
    """Every log address and topic of an eth/69 receipt list (what its blooms hash)."""
    out = []
    for r in receipts69_items(list69):
        for log in split_list(split_list(r)[3]):
            addr, topics, _ = split_list(log)
            out.append(bytes(string_payload(addr)))
            out.extend(bytes(string_payload(t)) for t in split_list(topics))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", type=Path, default=ROOT / ".cache/bench/shaped", help="directory from mainnet_shaped.py")
    ap.add_argument("--blocks", type=int, default=1_000)
    args = ap.parse_args()
    print(f"command: python bench/floors.py {' '.join(sys.argv[1:])}".rstrip())
    with BlockStore(args.store / "chain.db", readonly=True) as store:
        n = min(args.blocks, store.block_range()[1])  # type: ignore[index]
        numbers = list(range(1, n + 1))
        headers = _all(list(store.headers_by_numbers(numbers)))
        hashes = _all([store.canonical_hash(i) for i in numbers])
        handler = StoreHandler(store)
        bodies = _all([store.body(h) for h in hashes])
        lists69 = [bytes(handler.receipts([h], 69, 0)[0][0]) for h in hashes]

        def read() -> None:
            for h in hashes:
                store.body(h)
                store.receipts(h)

        t_read = _best(read)

    msgs = []
    for i in range(0, n, BATCH):
        for msg in (m.BlockBodies(i, bodies[i : i + BATCH]), m.Receipts(i, lists69[i : i + BATCH])):
            code, payload = codec.encode_message(msg, 69)
            msgs.append((0x10 + code, payload))
    wire_bytes = sum(len(p) for _, p in msgs)
    t_compress = _best(lambda: [compress(p) for _, p in msgs])
    compressed = [(c, compress(p)) for c, p in msgs]
    comp_bytes = sum(len(p) for _, p in compressed)

    def encrypt() -> list[bytes]:
        tx, _ = _codec_pair()
        return [tx.encode_message(c, p) for c, p in compressed]

    t_encrypt = _best(encrypt)

    def decrypt() -> float:
        """Seconds to check and decrypt the frames (encrypting them first is not timed)."""
        tx, rx = _codec_pair()
        frames = [tx.encode_message(c, p) for c, p in compressed]
        t0 = time.perf_counter()
        for f in frames:
            rx.feed(f)
        return time.perf_counter() - t0

    t_decrypt = min(decrypt() for _ in range(3))
    t_decompress = _best(lambda: [decompress(p, 1 << 26) for _, p in compressed])

    leaves: list[bytes | memoryview] = []
    for body, list69 in zip(bodies, lists69, strict=True):
        leaves.extend(bytes(t) for t in BlockBody.decode(body).transactions)
        leaves.extend(receipts69_to_consensus(list69))
    t_keccak = _best(lambda: [keccak(x) for x in leaves])
    keys = [k for list69 in lists69 for k in _log_keys(list69)]
    t_blooms = _best(lambda: [keccak(k) for k in keys])

    with tempfile.TemporaryDirectory() as tmp:
        rows = [
            BlockRecord(i, h, hd, b, r)
            for i, h, hd, b, r in zip(numbers, hashes, headers, bodies, lists69, strict=True)
        ]
        with BlockStore(Path(tmp) / "w.db", genesis_hash=b"\x00" * 32) as out:
            t0 = time.perf_counter()
            for i in range(0, n, BATCH):
                out.put_blocks(rows[i : i + BATCH])
            t_write = time.perf_counter() - t0

    steps = [
        ("server: SQLite read body + receipts", t_read),
        ("server: snappy compress", t_compress),
        ("server: AES-CTR + MAC (frame out)", t_encrypt),
        ("client: MAC check + AES-CTR (frame in)", t_decrypt),
        ("client: snappy decompress", t_decompress),
        ("client: keccak of txs + receipts, once", t_keccak),
        ("client: keccak of log addresses/topics", t_blooms),
        ("client: SQLite write (WAL, 64/txn)", t_write),
    ]
    size = sum(len(b) + len(r) for b, r in zip(bodies, lists69, strict=True)) / n
    print(f"keccak through {'the C extension (pysha3 sponge, one call per item)' if accel.speedups else 'pysha3'}")
    print(
        f"{n:,} blocks; per block: {size / 1e3:.0f} KB body + eth/69 receipts, {wire_bytes / n / 1e3:.0f} KB in "
        f"messages, {comp_bytes / n / 1e3:.0f} KB on the wire, {len(leaves) / n:.0f} leaves, "
        f"{len(keys) / n:.0f} log keys"
    )
    total = 0.0
    for name, t in steps:
        ms = t / n * 1000
        total += ms
        print(f"  {name:42} {ms:6.3f} ms/block")
    print(
        f"  {'floor (sum)':42} {total:6.3f} ms/block -> at most {2000 / total:,.0f} blocks/s on 2 cores, "
        f"{1000 / total:,.0f} on 1"
    )


if __name__ == "__main__":
    main()
