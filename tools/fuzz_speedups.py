"""Differential fuzzing of the C extension against the pure-Python reference.

For a given time, mutates real mainnet receipt lists (eth/69 and eth/68 forms), bodies and transactions
from the vectors (1-5 random changes each, header-boundary bytes included) and checks that
every C entry point gives the reference's result or rejects what the reference rejects.
Meant to run under AddressSanitizer and UBSan: see tools/asan_speedups.sh.

Run:  python tools/fuzz_speedups.py SEED SECONDS   (with the ethp2p to test first on sys.path)
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # for tests.* (after the ethp2p under test)

from tests.conftest import load_vector  # noqa: E402
from tests.support.mutants import mutants  # noqa: E402
from tests.unit.test_speedups import (  # noqa: E402
    _body_roots_py,
    _norm_fields,
    _or_none,
    _py_receipt_fields,
    _py_tx_fields,
    _tx_encodings,
)

import ethp2p._speedups as C  # noqa: E402
from ethp2p.chain import receipts as R  # noqa: E402
from ethp2p.chain.trie import ordered_trie_root_py  # noqa: E402

blocks = load_vector("mainnet/derived/mainnet_blocks.json")["blocks"]
l69 = [
    bytes.fromhex(b["receipts_eth69_rlp"])
    for b in blocks
    if b.get("receipts_eth69_rlp") and len(b["receipts_eth69_rlp"]) < 40000
]
l68 = [R.receipts69_to_68_py(x) for x in l69]
bodies = [bytes.fromhex(b["body_rlp"]) for b in blocks if len(b["body_rlp"]) < 40000]
txs = [t for t in _tx_encodings() if len(t) < 4000]
rng = random.Random(int(sys.argv[1]))


deadline = time.time() + float(sys.argv[2])
n = accepted = 0
print("C extension under test:", C.__file__)
while time.time() < deadline:
    kind = rng.randrange(4)
    src = rng.choice(l69 if kind == 0 else l68 if kind == 1 else bodies if kind == 2 else txs)
    m = src
    for _ in range(rng.randint(1, 5)):
        m = mutants(m, rng, 1, header_bytes=True)[0] if m else m
    if kind == 0:
        want = _or_none(R.receipts69_root_py, m)
        accepted += want is not None
        assert C.receipts69_root(m) == want
        assert C.receipts69_shape(m) == _or_none(R.receipts69_shape_py, m)
        assert C.receipts69_to_68(m) == _or_none(R.receipts69_to_68_py, m)
        assert _norm_fields(C.receipts69_fields(m)) == _norm_fields(_py_receipt_fields(m))
    elif kind == 1:
        want68 = _or_none(R.receipts68_root_py, m)
        accepted += want68 is not None
        assert C.receipts68_root(m) == want68
    elif kind == 3:
        wantt = _py_tx_fields(m)
        accepted += wantt is not None
        assert C.tx_fields(m) == wantt
    else:
        wantb = _body_roots_py(m)
        accepted += wantb is not None
        assert C.body_roots(m) == wantb
    if rng.random() < 0.05:
        items = [rng.randbytes(rng.randint(0, 70)) for _ in range(rng.randint(0, 300))]
        assert C.ordered_trie_root(items) == ordered_trie_root_py(items)
    n += 1
print(f"ok: {n:,} inputs, {accepted:,} of them valid; C and Python agreed on all")
