"""Merkle-Patricia trie roots, computed in one pass from a full key/value set.

ethp2p never keeps a trie: it only needs roots (transactions, receipts,
withdrawals, genesis state) to check data against headers. The root is built
bottom-up from keys sorted once, without materialising trie nodes as objects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from ..accel import speedups as _c
from ..crypto.keccak import keccak
from ..crypto.keccak import keccak_256 as _keccak256
from ..rlp import encode_bytes, encode_int, encode_length

#: keccak256(rlp(b"")): the root of an empty trie.
EMPTY_TRIE_ROOT = bytes.fromhex("56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421")

_EMPTY = b"\x80"


def _nibbles(key: bytes) -> bytes:
    out = bytearray(len(key) * 2)
    out[0::2] = bytes(b >> 4 for b in key)
    out[1::2] = bytes(b & 0x0F for b in key)
    return bytes(out)


def _hex_prefix(nibbles: bytes, leaf: bool) -> bytes:
    flag = 2 if leaf else 0
    n = len(nibbles)
    if n & 1:
        first = bytes((((flag + 1) << 4) | nibbles[0],))
        rest = nibbles[1:]
    else:
        first = bytes((flag << 4,))
        rest = nibbles
    return first + bytes((rest[i] << 4) | rest[i + 1] for i in range(0, len(rest), 2))


def _list(items: list[bytes]) -> bytes:
    payload = b"".join(items)
    return encode_length(len(payload), 0xC0) + payload


def _ref(node: bytes) -> bytes:
    """How a parent refers to a child node: inline if short, else by hash."""
    if len(node) < 32:
        return node
    return b"\xa0" + keccak(node)


def _common_prefix_len(a: bytes, b: bytes, start: int) -> int:
    n = min(len(a), len(b))
    i = start
    while i < n and a[i] == b[i]:
        i += 1
    return i - start


# A trie's shape depends only on its sorted keys. It is worked out as a "plan"
# (nested tuples: a leaf names its item, a branch its 16 children and value, an
# extension its path and child), every leaf's path is recorded alongside; the
# root is then: encode and hash every leaf in one pass, and fold the branches
# over the leaf references. Ordered tries (keys rlp(0), rlp(1), ...) have one
# shape per item count, so their plan is cached.

_LEAF, _EXT, _BRANCH = 0, 1, 2

#: A node of a trie's plan: ``(_LEAF, item)``, ``(_EXT, path, child)`` or ``(_BRANCH, 16 slots, value item or -1)``.
_Plan = tuple[Any, ...]


def _build_plan(keys: list[bytes], idx: Sequence[int], lo: int, hi: int, depth: int, paths: list[bytes]) -> _Plan:
    """Plan of the node holding sorted nibble keys[lo:hi] below ``depth``.

    ``idx[k]`` is the item index of the k-th sorted key; leaves name items by it
    and their paths go to ``paths[item]``.
    """
    first = keys[lo]
    if hi - lo == 1:
        paths[idx[lo]] = encode_bytes(_hex_prefix(first[depth:], True))
        return (_LEAF, idx[lo])
    prefix = _common_prefix_len(first, keys[hi - 1], depth)
    if prefix:
        path = encode_bytes(_hex_prefix(first[depth : depth + prefix], False))
        return (_EXT, path, _build_plan(keys, idx, lo, hi, depth + prefix, paths))
    slots: list[_Plan | None] = [None] * 16
    value = -1
    i = lo
    if len(first) == depth:
        value = idx[lo]
        i += 1
    while i < hi:
        nib = keys[i][depth]
        j = i + 1
        while j < hi and keys[j][depth] == nib:
            j += 1
        slots[nib] = _build_plan(keys, idx, i, j, depth + 1, paths)
        i = j
    return (_BRANCH, tuple(slots), value)


def _fold(plan: _Plan, refs: list[bytes], values: Sequence[bytes | bytearray | memoryview]) -> bytes:
    """The RLP of the node ``plan`` (a branch or extension) given every leaf's reference."""
    if plan[0] == _BRANCH:
        slots = [
            _EMPTY if c is None else (refs[c[1]] if c[0] == _LEAF else _ref(_fold(c, refs, values))) for c in plan[1]
        ]
        v = plan[2]
        slots.append(_EMPTY if v < 0 else encode_bytes(bytes(values[v])))
        return _list(slots)
    child = plan[2]  # an extension's child is always a branch
    return _list([plan[1], _ref(_fold(child, refs, values))])


def _leaf(path: bytes, value: bytes | bytearray | memoryview) -> bytes:
    n = len(value)
    if n == 1 and value[0] < 0x80:
        return _list([path, bytes(value)])
    vh = encode_length(n, 0x80)
    return b"".join((encode_length(len(path) + len(vh) + n, 0xC0), path, vh, value))


def _root(plan: _Plan, paths: Sequence[bytes], values: Sequence[bytes | bytearray | memoryview]) -> bytes:
    if plan[0] == _LEAF:
        return keccak(_leaf(paths[0], values[0]))
    h = _keccak256
    refs = []
    for path, value in zip(paths, values, strict=True):
        node = _leaf(path, value)
        refs.append(node if len(node) < 32 else b"\xa0" + h(node).digest())
    return keccak(_fold(plan, refs, values))


def trie_root(pairs: Mapping[bytes, bytes]) -> bytes:
    """Root of the trie mapping each key to its value (empty values are absent)."""
    items = sorted((_nibbles(bytes(k)), bytes(v)) for k, v in pairs.items() if len(v))
    if not items:
        return EMPTY_TRIE_ROOT
    keys = [k for k, _ in items]
    paths = [b""] * len(keys)
    plan = _build_plan(keys, range(len(keys)), 0, len(keys), 0, paths)
    return _root(plan, paths, [v for _, v in items])


def secure_trie_root(pairs: Mapping[bytes, bytes]) -> bytes:
    """Root of a "secure" trie, whose keys are keccak256 of the given keys."""
    return trie_root({keccak(k): v for k, v in pairs.items()})


def _index_key(i: int) -> bytes:
    return encode_bytes(encode_int(i))


@lru_cache(maxsize=512)
def _ordered_plan(n: int) -> tuple[_Plan, tuple[bytes, ...]]:
    """Plan of the ordered trie of ``n`` items, with leaf paths by item index."""
    order = sorted(range(n), key=_index_key)
    paths = [b""] * n
    plan = _build_plan([_nibbles(_index_key(i)) for i in order], order, 0, n, 0, paths)
    return plan, tuple(paths)


def ordered_trie_root_py(items: Sequence[bytes | bytearray | memoryview]) -> bytes:
    """Root of the trie keyed by ``rlp(index)`` (transactions, receipts, withdrawals); pure Python."""
    n = len(items)
    if n == 0:
        return EMPTY_TRIE_ROOT
    plan, paths = _ordered_plan(n)
    return _root(plan, paths, items)


#: Root of the trie keyed by ``rlp(index)`` (transactions, receipts, withdrawals): the C
#: extension's when it is built, else :func:`ordered_trie_root_py` (the same results).
ordered_trie_root = _c.ordered_trie_root if _c is not None else ordered_trie_root_py
