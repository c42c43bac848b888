"""Merkle-Patricia trie roots, computed in one pass from a full key/value set.

ethp2p never keeps a trie: it only needs roots (transactions, receipts,
withdrawals, genesis state) to check data against headers. The root is built
bottom-up from keys sorted once, without materialising trie nodes as objects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache

from ..crypto.keccak import keccak, keccak_256 as _keccak256
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


def _node(keys: list[bytes], values: list[bytes], lo: int, hi: int, depth: int) -> bytes:
    """RLP encoding of the node holding keys[lo:hi] below nibble ``depth``."""
    first = keys[lo]
    if hi - lo == 1:
        return _list([encode_bytes(_hex_prefix(first[depth:], True)), encode_bytes(values[lo])])
    prefix = _common_prefix_len(first, keys[hi - 1], depth)
    if prefix:
        child = _node(keys, values, lo, hi, depth + prefix)
        return _list([encode_bytes(_hex_prefix(first[depth : depth + prefix], False)), _ref(child)])
    slots = [_EMPTY] * 17
    i = lo
    if len(first) == depth:
        slots[16] = encode_bytes(values[lo])
        i += 1
    while i < hi:
        nib = keys[i][depth]
        j = i + 1
        while j < hi and keys[j][depth] == nib:
            j += 1
        slots[nib] = _ref(_node(keys, values, i, j, depth + 1))
        i = j
    return _list(slots)


def trie_root(pairs: Mapping[bytes, bytes]) -> bytes:
    """Root of the trie mapping each key to its value (empty values are absent)."""
    items = sorted((_nibbles(bytes(k)), bytes(v)) for k, v in pairs.items() if len(v))
    if not items:
        return EMPTY_TRIE_ROOT
    keys = [k for k, _ in items]
    values = [v for _, v in items]
    return keccak(_node(keys, values, 0, len(keys), 0))


def secure_trie_root(pairs: Mapping[bytes, bytes]) -> bytes:
    """Root of a "secure" trie, whose keys are keccak256 of the given keys."""
    return trie_root({keccak(k): v for k, v in pairs.items()})


def _index_key(i: int) -> bytes:
    return encode_bytes(encode_int(i))


# ---- ordered tries (keys rlp(0), rlp(1), ...) ---------------------------------------------------
#
# The shape of an ordered trie depends only on the item count, so it is worked out
# once per count (a "plan": nested tuples naming, for every node, its children or
# its leaf) and cached. Computing a root is then: encode and hash every leaf in one
# pass, and fold the branches over the leaf references. Same result as trie_root.

_LEAF, _EXT, _BRANCH = 0, 1, 2


def _build_plan(keys: list[bytes], idx: list[int], lo: int, hi: int, depth: int) -> tuple:
    first = keys[lo]
    if hi - lo == 1:
        return (_LEAF, idx[lo])
    prefix = _common_prefix_len(first, keys[hi - 1], depth)
    if prefix:
        path = encode_bytes(_hex_prefix(first[depth : depth + prefix], False))
        return (_EXT, path, _build_plan(keys, idx, lo, hi, depth + prefix))
    slots: list[tuple | None] = [None] * 16
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
        slots[nib] = _build_plan(keys, idx, i, j, depth + 1)
        i = j
    return (_BRANCH, tuple(slots), value)


def _leaf_paths(plan: tuple, keys: dict[int, bytes], depth: int, out: list[bytes]) -> None:
    """Fill ``out[i]``: the RLP of leaf i's hex-prefixed remaining path."""
    kind = plan[0]
    if kind == _LEAF:
        out[plan[1]] = encode_bytes(_hex_prefix(keys[plan[1]][depth:], True))
    elif kind == _EXT:
        # The extension's path length is the number of nibbles its RLP stands for.
        _leaf_paths(plan[2], keys, depth + _ext_len(plan[1]), out)
    else:
        for child in plan[1]:
            if child is not None:
                _leaf_paths(child, keys, depth + 1, out)


def _ext_len(path_rlp: bytes) -> int:
    compact = path_rlp[1:] if path_rlp[0] >= 0x80 else path_rlp
    odd = (compact[0] >> 4) & 1
    return (len(compact) - 1) * 2 + odd


@lru_cache(maxsize=512)
def _ordered_plan(n: int) -> tuple[tuple, tuple[bytes, ...]]:
    order = sorted(range(n), key=_index_key)
    keys = [_nibbles(_index_key(i)) for i in order]
    plan = _build_plan(keys, order, 0, n, 0)
    paths: list[bytes] = [b""] * n
    _leaf_paths(plan, dict(zip(order, keys)), 0, paths)
    return plan, tuple(paths)


def _fold(plan: tuple, refs: list[bytes], values: Sequence[bytes | bytearray | memoryview]) -> bytes:
    """The RLP of the node ``plan`` given every leaf's reference."""
    kind = plan[0]
    if kind == _BRANCH:
        slots = [_EMPTY if c is None else (refs[c[1]] if c[0] == _LEAF else _ref(_fold(c, refs, values))) for c in plan[1]]
        v = plan[2]
        slots.append(_EMPTY if v < 0 else encode_bytes(bytes(values[v])))
        return _list(slots)
    if kind == _EXT:
        child = plan[2]
        ref = refs[child[1]] if child[0] == _LEAF else _ref(_fold(child, refs, values))
        return _list([plan[1], ref])
    raise AssertionError("a single leaf is handled by the caller")


def _leaf_ref(path: bytes, value: bytes | bytearray | memoryview) -> bytes:
    n = len(value)
    if n == 1 and value[0] < 0x80:
        node = _list([path, bytes(value)])
    else:
        vh = encode_length(n, 0x80)
        node = b"".join((encode_length(len(path) + len(vh) + n, 0xC0), path, vh, value))
    return node if len(node) < 32 else b"\xa0" + _keccak256(node).digest()


def ordered_trie_root(items: Sequence[bytes | bytearray | memoryview]) -> bytes:
    """Root of the trie keyed by ``rlp(index)`` (transactions, receipts, withdrawals)."""
    n = len(items)
    if n == 0:
        return EMPTY_TRIE_ROOT
    plan, paths = _ordered_plan(n)
    if n == 1:
        return keccak(_list([paths[0], encode_bytes(bytes(items[0]))]))
    refs = [_leaf_ref(p, v) for p, v in zip(paths, items)]
    return keccak(_fold(plan, refs, items))
