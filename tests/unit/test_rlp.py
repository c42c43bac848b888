"""RLP codec and splitter against the ethereum/tests RLP vectors, plus strictness cases."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ethp2p import rlp
from tests.conftest import load_vector

VALID = load_vector("rlp/rlptest.json")
INVALID = load_vector("rlp/invalidRLPTest.json")
RANDOM_VALID = load_vector("rlp/RandomRLPTests-example.json")


def _to_item(value):
    """Convert a vector's JSON input to what rlp.encode takes."""
    if isinstance(value, str):
        if value.startswith("#"):
            return int(value[1:])
        return value.encode("latin-1")
    if isinstance(value, int):
        return value
    return [_to_item(v) for v in value]


def _decoded_form(value):
    """The shape rlp.decode returns for a vector input (ints come back as bytes)."""
    if isinstance(value, list):
        return [_decoded_form(v) for v in value]
    item = _to_item(value)
    if isinstance(item, int):
        return rlp.encode_int(item)
    return item


def _hex(s: str) -> bytes:
    return bytes.fromhex(s[2:] if s.startswith("0x") else s)


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_vectors_encode_and_decode(name: str) -> None:
    case = VALID[name]
    expected = _hex(case["out"])
    assert rlp.encode(_to_item(case["in"])) == expected
    assert rlp.decode(expected) == _decoded_form(case["in"])


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_vectors_rejected(name: str) -> None:
    data = _hex(INVALID[name]["out"])
    with pytest.raises(rlp.RLPDecodeError):
        rlp.decode(data)


def test_random_valid_example_decodes() -> None:
    for case in RANDOM_VALID.values():
        data = _hex(case["out"])
        item = rlp.decode(data)
        assert rlp.encode(item) == data


@pytest.mark.parametrize(
    "data, fragment",
    [
        (b"\x81\x05", "single byte"),
        (b"\xb8\x05hello", "long-form"),
        (b"\xb9\x00\x38" + b"a" * 56, "leading zero"),
        (b"\x83ab", "past end"),
        (b"\x80\x80", "trailing"),
        (b"", "empty input"),
    ],
)
def test_strictness_messages(data: bytes, fragment: str) -> None:
    with pytest.raises(rlp.RLPDecodeError, match=fragment):
        rlp.decode(data)


def test_depth_and_size_bounds() -> None:
    deep = b"\xc0"
    for _ in range(100):
        deep = rlp.encode([rlp.RawRLP(deep)])
    with pytest.raises(rlp.RLPDecodeError, match="nesting"):
        rlp.decode(deep)
    assert rlp.decode(deep, max_depth=200) is not None
    with pytest.raises(rlp.RLPDecodeError, match="exceeds limit"):
        rlp.decode(rlp.encode(b"x" * 100), max_size=50)


def test_decode_int_is_strict() -> None:
    assert rlp.decode_int(b"") == 0
    assert rlp.decode_int(b"\x01\x00") == 256
    with pytest.raises(rlp.RLPDecodeError, match="leading zero"):
        rlp.decode_int(b"\x00\x01")
    with pytest.raises(rlp.RLPDecodeError, match="exceeds"):
        rlp.decode_int(b"\x01" * 33)
    with pytest.raises(rlp.RLPEncodeError):
        rlp.encode(-1)


def test_splitter_returns_views_of_each_element() -> None:
    items = [b"dog", [b"cat", b""], b"x" * 70, 0, 1024]
    data = rlp.encode(items)
    parts = rlp.split_list(data)
    assert [rlp.decode(p) for p in parts] == rlp.decode(data)
    assert all(isinstance(p, memoryview) for p in parts)
    assert bytes(rlp.string_payload(parts[2])) == b"x" * 70
    inner = rlp.split_payload(rlp.list_payload(parts[1]))
    assert rlp.encode_raw_list([bytes(p) for p in inner]) == bytes(parts[1])
    with pytest.raises(rlp.RLPDecodeError, match="more than 2"):
        rlp.split_list(data, max_items=2)
    with pytest.raises(rlp.RLPDecodeError, match="expected an RLP list"):
        rlp.split_list(rlp.encode(b"abc"))
    with pytest.raises(rlp.RLPDecodeError):
        rlp.split_list(rlp.encode([b"\x05"])[:-1] + b"\x81\x05")


# An empty payload is a valid (empty) list payload, so that one vector does not apply here.
@pytest.mark.parametrize("name", sorted(n for n in INVALID if n != "emptyEncoding"))
def test_splitter_rejects_invalid_vectors(name: str) -> None:
    data = _hex(INVALID[name]["out"])
    with pytest.raises(rlp.RLPDecodeError):
        # The splitter looks one level deep; the elements it returns must then decode strictly.
        for part in rlp.split_payload(data):
            rlp.decode(part)


_items = st.recursive(
    st.binary(max_size=80),
    lambda children: st.lists(children, max_size=6),
    max_leaves=30,
)


@given(_items)
def test_roundtrip_property(item) -> None:
    data = rlp.encode(item)
    assert rlp.decode(data) == item
    assert rlp.item_length(data) == len(data)


@given(st.binary(max_size=64))
def test_decode_never_raises_untyped(data: bytes) -> None:
    try:
        rlp.decode(data)
    except rlp.RLPDecodeError:
        pass
