"""Merkle-Patricia trie roots, computed in one pass from a full key/value set.

ethp2p never keeps a trie: it only needs roots (transactions, receipts,
withdrawals, genesis state) to check data against headers. The root is built
bottom-up from keys sorted once, without materialising trie nodes as objects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..crypto.keccak import keccak
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


def ordered_trie_root(items: Sequence[bytes | bytearray | memoryview]) -> bytes:
    """Root of the trie keyed by ``rlp(index)`` (transactions, receipts, withdrawals)."""
    n = len(items)
    if n == 0:
        return EMPTY_TRIE_ROOT
    order = sorted(range(n), key=_index_key)
    keys = [_nibbles(_index_key(i)) for i in order]
    values = [bytes(items[i]) for i in order]
    return keccak(_node(keys, values, 0, n, 0))
