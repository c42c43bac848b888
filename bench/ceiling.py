"""The in-process receive pipeline ceiling: the client's work on the same bytes, no sockets.

Responses are built by the serving code (StoreHandler + eth codec) from a store,
snappy-compressed and framed by a real RLPx frame codec (AES-CTR + keccak MACs),
all before timing. Timed, on one core: what a client does with those frames:
frame MAC check + decryption, snappy decompression, eth message decoding, and
then for headers: parse, hash and link every header; for bodies and receipts:
every body and receipt list checked against its header (transactions, ommers,
withdrawals and receipts roots). Nothing else (no event loop, no sockets).

Run:  .venv/bin/python bench/ceiling.py [--store DIR] [--blocks N] [--version 68|69]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

from ethp2p.chain.header import Header  # noqa: E402
from ethp2p.chain.verify import verify_body, verify_header_chain, verify_receipts  # noqa: E402
from ethp2p.crypto.keccak import keccak_256  # noqa: E402
from ethp2p.crypto.keys import PrivateKey  # noqa: E402
from ethp2p.eth import codec  # noqa: E402
from ethp2p.eth import messages as m  # noqa: E402
from ethp2p.rlpx.frame import FrameCodec  # noqa: E402
from ethp2p.rlpx.secrets import Secrets  # noqa: E402
from ethp2p.rlpx.snappy import compress, decompress  # noqa: E402
from ethp2p.serve.handler import StoreHandler  # noqa: E402
from ethp2p.store.blocks import BlockStore  # noqa: E402

_T = TypeVar("_T")

MAX_MESSAGE = 16 * 1024 * 1024


def _codec_pair() -> tuple[FrameCodec, FrameCodec]:
    """A sender and a receiver frame codec sharing fresh random secrets."""
    aes, mac = os.urandom(32), os.urandom(32)
    a, b = os.urandom(32), os.urandom(32)
    pub = PrivateKey.generate().public_key
    send = Secrets(pub, aes, mac, egress_mac=keccak_256(a), ingress_mac=keccak_256(b))
    recv = Secrets(pub, aes, mac, egress_mac=keccak_256(b), ingress_mac=keccak_256(a))
    return FrameCodec(send), FrameCodec(recv)


def _frames(tx: FrameCodec, messages: list[tuple[int, bytes]]) -> list[bytes]:
    return [tx.encode_message(code, compress(payload)) for code, payload in messages]


def _all(items: list[_T | None]) -> list[_T]:
    """``items``, every one of which the bench chain must have."""
    assert all(x is not None for x in items), "the bench chain lacks blocks this bench needs"
    return [x for x in items if x is not None]


def _receive(rx: FrameCodec, wire: list[bytes], version: int) -> list[m.Message]:
    out = []
    for chunk in wire:
        for code, payload in rx.feed(chunk):
            out.append(codec.decode_message(code - 0x10, decompress(payload, MAX_MESSAGE), version))
    return out


def header_ceiling(store: BlockStore, first: int, count: int, version: int, rounds: int = 3) -> float:
    """Headers/s through frames -> snappy -> decode -> parse, hash, link (best of ``rounds``)."""
    handler = StoreHandler(store)
    msgs = []
    for i, start in enumerate(range(first, first + count, 1024)):
        req = m.GetBlockHeaders(i, start, min(1024, first + count - start))
        code, payload = codec.encode_message(m.BlockHeaders(i, handler.block_headers(req)), version)
        msgs.append((0x10 + code, payload))
    best = 0.0
    for _ in range(rounds):
        tx, rx = _codec_pair()
        wire = _frames(tx, msgs)
        t0 = time.perf_counter()
        parent = None
        n = first
        for msg in _receive(rx, wire, version):
            assert isinstance(msg, m.BlockHeaders)
            headers = [Header(raw) for raw in msg.headers]
            for h in headers:
                h.hash  # noqa: B018 - hashing is part of the work
            verify_header_chain(headers, n, parent=parent)
            parent = headers[-1]
            n += len(headers)
        dt = time.perf_counter() - t0
        assert n == first + count
        best = max(best, count / dt)
    return best


def payload_ceiling(store: BlockStore, first: int, count: int, version: int, rounds: int = 2) -> float:
    """Verified blocks/s (bodies + receipts checked against their headers) on the same path."""
    handler = StoreHandler(store)
    raws = store.headers_by_numbers(list(range(first, first + count)))
    ordered = [Header(r) for r in raws]  # type: ignore[arg-type]
    hashes = [h.hash for h in ordered]
    body_msgs: list[tuple[int, bytes]] = []
    receipt_msgs: list[tuple[int, bytes]] = []
    # Like a client: ask for up to 128 blocks, take the prefix served (2 MiB soft limit), go on.
    i = 0
    while i < count:
        bodies = handler.block_bodies(hashes[i : i + 128])
        code, payload = codec.encode_message(m.BlockBodies(len(body_msgs), bodies), version)
        body_msgs.append((0x10 + code, payload))
        i += len(bodies)
    i = 0
    while i < count:
        receipts, _ = handler.receipts(hashes[i : i + 128], min(version, 69), 0)
        code, payload = codec.encode_message(m.Receipts(len(receipt_msgs), receipts), version)
        receipt_msgs.append((0x10 + code, payload))
        i += len(receipts)
    best = 0.0
    for _ in range(rounds):
        tx, rx = _codec_pair()
        wire_b = _frames(tx, body_msgs)
        wire_r = _frames(tx, receipt_msgs)
        t0 = time.perf_counter()
        got_bodies = [b for mb in _receive(rx, wire_b, version) if isinstance(mb, m.BlockBodies) for b in mb.bodies]
        got_receipts = [r for mr in _receive(rx, wire_r, version) if isinstance(mr, m.Receipts) for r in mr.receipts]
        assert len(got_bodies) == len(got_receipts) == count
        for h, body, rec in zip(ordered, got_bodies, got_receipts, strict=True):
            b = verify_body(h, body)
            verify_receipts(h, rec, form=68 if version == 68 else 69, tx_count=len(b.transactions))
        dt = time.perf_counter() - t0
        best = max(best, count / dt)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", type=Path, default=ROOT / ".cache/bench/shaped", help="directory from mainnet_shaped.py")
    ap.add_argument("--headers", type=int, default=100_000)
    ap.add_argument("--blocks", type=int, default=2_000)
    ap.add_argument("--version", type=int, default=69, choices=(68, 69, 70))
    args = ap.parse_args()
    with BlockStore(args.store / "chain.db", readonly=True) as store:
        hi = store.block_range()[1]  # type: ignore[index]
        nh = min(args.headers, hi)
        print(f"command: python bench/ceiling.py {' '.join(sys.argv[1:])}")
        print(f"headers/s ceiling (1..{nh:,}): {header_ceiling(store, 1, nh, args.version):,.0f}")
        nb = min(args.blocks, hi)
        print(
            f"verified blocks/s ceiling (1..{nb:,}, eth/{args.version}): "
            f"{payload_ceiling(store, 1, nb, args.version):,.0f}"
        )


if __name__ == "__main__":
    main()
