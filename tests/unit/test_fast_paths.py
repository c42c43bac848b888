"""The optimised hot paths give exactly the results of the straightforward ones.

* receipts: the single-pass scanners in ethp2p.chain.receipts against the
  split-everything reference (tests/support/reference_receipts.py) on every real
  mainnet receipt list in the vectors, and on many randomly corrupted copies (same
  bytes out, or both reject);
* ordered trie roots: the per-count plan against the generic trie_root.
"""

from __future__ import annotations

import os
import random

import pytest

from ethp2p.chain import receipts as fast
from ethp2p.chain.trie import _index_key, ordered_trie_root, trie_root
from tests.conftest import load_vector
from tests.support import reference_receipts as ref
from tests.support.mutants import mutants as _mutants

LISTS69 = [
    bytes.fromhex(b["receipts_eth69_rlp"])
    for b in load_vector("mainnet/derived/mainnet_blocks.json")["blocks"]
    if b.get("receipts_eth69_rlp")
]
LISTS68 = [ref.receipts69_to_68(x) for x in LISTS69]
SMALL69 = [x for x in LISTS69 if 10 < len(x) < 20_000]
SMALL68 = [ref.receipts69_to_68(x) for x in SMALL69]


def _same(f_fast, f_ref, data: bytes) -> None:
    try:
        want = f_ref(data)
    except ref.ReceiptError:
        with pytest.raises(fast.ReceiptError):
            f_fast(data)
        return
    got = f_fast(data)
    if isinstance(want, list):
        assert [bytes(x) for x in got] == [bytes(x) for x in want]
    else:
        assert bytes(got) == bytes(want)


def _stricter(f_fast, f_ref, data: bytes) -> None:
    """The fast function may reject more (it checks logs too); what it accepts, the reference accepts alike."""
    try:
        got = f_fast(data)
    except fast.ReceiptError:
        return
    assert [bytes(x) for x in got] == [bytes(x) for x in f_ref(data)]


def test_real_lists_convert_identically() -> None:
    assert len(LISTS69) > 60
    for l69, l68 in zip(LISTS69, LISTS68, strict=True):
        assert fast.receipts69_to_consensus(l69) == ref.receipts69_to_consensus(l69)
        assert fast.receipts69_to_68(l69) == l68
        assert fast.receipts68_to_69(l68) == l69
        assert [bytes(x) for x in fast.receipts68_to_consensus(l68)] == [
            bytes(x) for x in ref.receipts68_to_consensus(l68)
        ]
        cons, stored = fast.receipts68_split(l68, check_blooms=False)
        assert stored == l69 and [bytes(x) for x in cons] == ref.receipts69_to_consensus(l69)
        assert [bytes(x) for x in fast.receipts69_items(l69)] == [bytes(x) for x in ref.receipts69_items(l69)]


@pytest.mark.parametrize("seed", range(4))
def test_corrupted_lists_are_rejected_or_converted_identically(seed: int) -> None:
    rng = random.Random(seed)
    for l69, l68 in zip(SMALL69, SMALL68, strict=True):
        for m in _mutants(l69, rng, 40):
            _same(fast.receipts69_to_consensus, ref.receipts69_to_consensus, m)
            _stricter(fast.receipts69_items, ref.receipts69_items, m)
        for m in _mutants(l68, rng, 40):
            _same(fast.receipts68_to_69, ref.receipts68_to_69, m)
            _same(fast.receipts68_to_consensus, ref.receipts68_to_consensus, m)


def test_bloom_cache_does_not_change_blooms() -> None:
    for l69 in SMALL69[:20]:
        for r in ref.receipts69_items(l69):
            logs = ref._split69(r)[3]
            assert fast.logs_bloom(logs) == ref.logs_bloom(logs)
            assert fast.logs_bloom(logs) == ref.logs_bloom(logs)  # second time from the cache


@pytest.mark.parametrize("n", [*range(0, 140), 255, 256, 257, 1000, 1024, 5000, 70_000])
def test_ordered_root_matches_generic_trie(n: int) -> None:
    rng = random.Random(n)
    for short in (False, True):
        values = [os.urandom(rng.randint(1, 8) if short else rng.randint(1, 120)) for _ in range(n)]
        want = trie_root({_index_key(i): v for i, v in enumerate(values)})
        assert ordered_trie_root(values) == want
        assert ordered_trie_root([memoryview(v) for v in values]) == want


def test_header_scanner_is_as_strict_as_the_decoder() -> None:
    """Header() on corrupted real headers: whatever it accepts decodes strictly to the same fields."""
    from ethp2p import rlp
    from ethp2p.chain.header import Header, HeaderError

    raws = [bytes.fromhex(b["header_rlp"]) for b in load_vector("mainnet/derived/mainnet_blocks.json")["blocks"]]
    rng = random.Random(7)
    accepted = 0
    for raw in raws:
        assert Header(raw)._fields == rlp.decode(raw)
        for mutant in _mutants(raw, rng, 60):
            try:
                h = Header(mutant)
            except HeaderError:
                continue
            accepted += 1
            assert h._fields == rlp.decode(mutant)
    assert accepted > 0  # some byte changes (inside hashes, say) leave a valid header
