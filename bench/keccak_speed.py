"""Keccak-f[1600] throughput of every implementation this machine's Python can reach.

Verification is bounded by keccak (bench/floors.py): every transaction, every
receipt's consensus encoding, every trie node and every frame MAC goes through it.
This measures, on one core, the implementations ethp2p could call:

- ethp2p.crypto.keccak: what ethp2p uses (safe-pysha3's XKCP sponge, through the C
  extension when it is built);
- safe-pysha3's keccak_256 hasher object (the same sponge, from Python);
- OpenSSL's SHA3-256, through hashlib (the system OpenSSL) and through cryptography
  (the OpenSSL it bundles). SHA3-256 runs the same permutation as Keccak-256 at the
  same rate; only the padding byte differs, and neither OpenSSL build here offers
  Keccak's padding (hashlib has no keccak; cryptography refuses "KECCAK-256"), so
  these rows are a reference for what a faster permutation would give, not a path
  ethp2p can take.

Run:  .venv/bin/python bench/keccak_speed.py
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import sha3  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402

from ethp2p import accel  # noqa: E402
from ethp2p.crypto.keccak import keccak  # noqa: E402


def _openssl_via_cryptography(data: bytes) -> bytes:
    h = hashes.Hash(hashes.SHA3_256())
    h.update(data)
    return h.finalize()


def _keccak_via_cryptography_available() -> str:
    class Keccak256(hashes.HashAlgorithm):
        name = "KECCAK-256"
        digest_size = 32
        block_size = 136

    try:
        hashes.Hash(Keccak256())
        return "offers KECCAK-256"
    except Exception as e:  # noqa: BLE001 - any refusal is the answer
        return f"no KECCAK-256 ({type(e).__name__})"


def rate(fn: Callable[[bytes], bytes], size: int, budget: int = 20_000_000, repeats: int = 5) -> tuple[float, float]:
    """(MB/s, microseconds per call) for inputs of ``size`` bytes, best of ``repeats``."""
    data = b"\x5a" * size
    n = max(1000, budget // size)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(n):
            fn(data)
        best = min(best, time.perf_counter() - t)
    return n * size / best / 1e6, best / n * 1e6


def main() -> None:
    import ssl

    from cryptography.hazmat.backends.openssl import backend

    print("command: python bench/keccak_speed.py")
    print(
        f"ethp2p keccak: {accel.implementation()}; hashlib: {ssl.OPENSSL_VERSION}; "
        f"cryptography's {backend.openssl_version_text()}: {_keccak_via_cryptography_available()}"
    )
    rows: list[tuple[str, Callable[[bytes], bytes]]] = [
        ("ethp2p.crypto.keccak (Keccak-256)", keccak),
        ("pysha3 keccak_256 object (Keccak-256)", lambda d: sha3.keccak_256(d).digest()),
        ("hashlib sha3_256 (SHA3-256, reference)", lambda d: hashlib.sha3_256(d).digest()),
        ("cryptography SHA3_256 (SHA3-256, reference)", _openssl_via_cryptography),
    ]
    sizes = (32, 532, 100_000)
    print(f"{'':46}" + "".join(f"{s:>10,} B" for s in sizes) + "   (MB/s; us/call in brackets for 32 B)")
    for name, fn in rows:
        cells = [rate(fn, s) for s in sizes]
        print(f"{name:46}" + "".join(f"{mb:12.0f}" for mb, _ in cells) + f"   [{cells[0][1]:.2f} us]")


if __name__ == "__main__":
    main()
