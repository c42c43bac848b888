"""Merkle-Patricia trie roots against the ethereum/tests TrieTests vectors."""

from __future__ import annotations

import pytest

from ethp2p import rlp
from ethp2p.chain.trie import EMPTY_TRIE_ROOT, ordered_trie_root, secure_trie_root, trie_root
from ethp2p.crypto.keccak import keccak
from tests.conftest import load_vector


def _b(s: str | None) -> bytes:
    if s is None:
        return b""
    if s.startswith("0x"):
        return bytes.fromhex(s[2:])
    return s.encode()


def _apply(ops) -> dict[bytes, bytes]:
    state: dict[bytes, bytes] = {}
    items = ops.items() if isinstance(ops, dict) else ops
    for k, v in items:
        value = _b(v)
        if value:
            state[_b(k)] = value
        else:
            state.pop(_b(k), None)
    return state


def _cases(path: str):
    data = load_vector(path)
    return [pytest.param(v, id=k) for k, v in sorted(data.items())]


@pytest.mark.parametrize("case", _cases("trie/trietest.json") + _cases("trie/trieanyorder.json"))
def test_plain_trie_roots(case) -> None:
    assert trie_root(_apply(case["in"])) == _b(case["root"])


@pytest.mark.parametrize(
    "case",
    _cases("trie/trietest_secureTrie.json")
    + _cases("trie/trieanyorder_secureTrie.json")
    + _cases("trie/hex_encoded_securetrie_test.json"),
)
def test_secure_trie_roots(case) -> None:
    assert secure_trie_root(_apply(case["in"])) == _b(case["root"])


def test_empty_root() -> None:
    assert EMPTY_TRIE_ROOT == keccak(rlp.encode(b""))
    assert ordered_trie_root([]) == EMPTY_TRIE_ROOT
    assert trie_root({}) == EMPTY_TRIE_ROOT


@pytest.mark.parametrize("n", [1, 2, 16, 127, 128, 129, 300, 1000])
def test_ordered_root_matches_generic_trie(n: int) -> None:
    items = [keccak(i.to_bytes(4, "big")) * (1 + i % 3) for i in range(n)]
    expected = trie_root({rlp.encode(i): v for i, v in enumerate(items)})
    assert ordered_trie_root(items) == expected
