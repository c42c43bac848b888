"""The C extension (ethp2p._speedups) against the pure-Python reference paths.

The extension is optional for users, but on this machine (gcc and the Python headers
are there) the package's build must produce it: the first test fails if it is missing,
so a broken build cannot pass unnoticed as "pure Python".

Every other test checks that C and Python agree: the same Keccak-256, the same ordered
trie roots (and both equal to the generic trie), and for eth/69 receipt lists the same
(root, count) or both reject, on every real mainnet list in the vectors, on thousands
of randomly corrupted copies, and on lists with enough distinct log keys to make the
C bloom-bits cache evict and collide.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Callable
from typing import TypeVar, cast

import pytest

from ethp2p import accel, rlp
from ethp2p.chain import receipts as fast
from ethp2p.chain.trie import _index_key, ordered_trie_root_py, trie_root
from ethp2p.chain.verify import VerificationError, verify_receipts
from ethp2p.crypto.keccak import keccak_py
from tests.conftest import load_vector
from tests.support import reference_receipts as ref
from tests.support.mutants import mutants

LISTS69 = [
    bytes.fromhex(b["receipts_eth69_rlp"])
    for b in load_vector("mainnet/derived/mainnet_blocks.json")["blocks"]
    if b.get("receipts_eth69_rlp")
]
SMALL69 = [x for x in LISTS69 if 10 < len(x) < 20_000]

_T = TypeVar("_T")
needs_c = pytest.mark.skipif(accel.speedups is None, reason=f"pure Python run ({accel.reason})")
#: The extension, for the tests marked ``needs_c`` (skipped when it is None).
C = cast(accel.Speedups, accel.speedups)


def test_extension_is_built_and_in_use() -> None:
    if os.environ.get("ETHP2P_PURE_PYTHON", "") not in ("", "0"):
        pytest.skip("ETHP2P_PURE_PYTHON is set for this run")
    assert accel.speedups is not None, accel.reason
    assert accel.implementation() == "c"


def test_pure_python_switch() -> None:
    """ETHP2P_PURE_PYTHON=1 selects the reference paths, which give the same roots."""
    code = (
        "import sys\n"
        "from ethp2p import accel\n"
        "from ethp2p.chain.receipts import receipts69_root\n"
        "from ethp2p.chain.trie import ordered_trie_root\n"
        "data = bytes.fromhex(sys.argv[1])\n"
        "root, n = receipts69_root(data)\n"
        "print(accel.implementation(), root.hex(), n, ordered_trie_root([b'a', b'bc']).hex())\n"
    )
    env = dict(os.environ, ETHP2P_PURE_PYTHON="1")
    out = subprocess.run(
        [sys.executable, "-c", code, SMALL69[0].hex()], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    root, n = fast.receipts69_root_py(SMALL69[0])
    assert out == ["python", root.hex(), str(n), ordered_trie_root_py([b"a", b"bc"]).hex()]


@needs_c
def test_keccak_matches_pysha3() -> None:
    rng = random.Random(1)
    for n in [*range(0, 300), 1087, 1088, 1089, 100_000, 1_000_003]:
        data = rng.randbytes(n)
        assert C.keccak256(data) == keccak_py(data)
        assert C.keccak256(memoryview(data)) == keccak_py(data)
    assert C.keccak256(bytearray(b"abc")) == keccak_py(b"abc")
    with pytest.raises(TypeError):
        C.keccak256("not bytes")  # type: ignore[arg-type]  # the wrong type is the test


def _values(rng: random.Random, n: int, kind: str) -> list[bytes]:
    if kind == "short":
        return [rng.randbytes(rng.randint(0, 8)) for _ in range(n)]
    if kind == "edges":  # lengths around every RLP and inline-node boundary
        sizes = [0, 1, 2, 30, 31, 32, 33, 54, 55, 56, 57, 255, 256, 65_536]
        out = []
        for i in range(n):
            size = sizes[i % len(sizes)]
            v = rng.randbytes(size)
            if size == 1:
                v = bytes([rng.choice([0x00, 0x7F, 0x80, 0xFF])])
            out.append(v)
        return out
    return [rng.randbytes(rng.randint(1, 300)) for _ in range(n)]


@needs_c
@pytest.mark.parametrize("n", [*range(0, 140), 255, 256, 257, 1000, 4097, 65_535, 65_536, 65_600])
def test_ordered_root_matches_python_and_generic_trie(n: int) -> None:
    rng = random.Random(n)
    kinds = ["short", "long", "edges"] if n <= 1000 else ["short"]
    for kind in kinds:
        values = _values(rng, n, kind)
        want = ordered_trie_root_py(values)
        assert C.ordered_trie_root(values) == want
        assert C.ordered_trie_root([memoryview(v) for v in values]) == want
        assert C.ordered_trie_root(tuple(bytearray(v) for v in values)) == want
        if kind != "short" or n <= 300:
            nonempty = {_index_key(i): v for i, v in enumerate(values) if v}
            if len(nonempty) == n:  # the generic trie drops empty values; ordered lists never have them
                assert trie_root(nonempty) == want


@needs_c
def test_ordered_root_rejects_non_buffers() -> None:
    with pytest.raises(TypeError):
        C.ordered_trie_root([b"ok", 5])  # type: ignore[list-item]  # the wrong type is the test
    with pytest.raises(TypeError):
        C.ordered_trie_root(5)  # type: ignore[arg-type]  # the wrong type is the test


def _some(x: _T | None) -> _T:
    """``x``, which the test expects the extension to have accepted."""
    assert x is not None
    return x


def _or_none(f: Callable[[bytes], _T], data: bytes) -> _T | None:
    """``f(data)``, or None where the reference rejects the list."""
    try:
        return f(data)
    except fast.ReceiptError:
        return None


def _c_and_python_agree(data: bytes) -> bool:
    """Both reject, or both give the same (root, count); True if accepted."""
    got = C.receipts69_root(data)
    try:
        want = fast.receipts69_root_py(data)
    except fast.ReceiptError:
        assert got is None, "C accepted a list the reference rejects"
        return False
    assert got is not None, "C rejected a list the reference accepts"
    assert got == want
    return True


@needs_c
def test_real_receipt_lists_give_the_same_roots() -> None:
    assert len(LISTS69) > 60
    for l69 in LISTS69:
        assert _c_and_python_agree(l69)
        # and the reference trie over the split-everything conversion agrees too
        assert _some(C.receipts69_root(l69))[0] == ordered_trie_root_py(ref.receipts69_to_consensus(l69))


def _mutants(data: bytes, rng: random.Random, count: int) -> list[bytes]:
    return mutants(data, rng, count, header_bytes=True)


@needs_c
@pytest.mark.parametrize("seed", range(4))
def test_corrupted_receipt_lists_agree(seed: int) -> None:
    rng = random.Random(seed)
    accepted = rejected = 0
    for l69 in SMALL69:
        for m in _mutants(l69, rng, 60):
            if _c_and_python_agree(m):
                accepted += 1
            else:
                rejected += 1
    assert accepted > 100 and rejected > 100  # both outcomes exercised


def _log(address: bytes, topics: list[bytes], data: bytes) -> list:
    return [address, topics, data]


def _receipt69(tx_type: int, status: bytes, gas: int, logs: list) -> list:
    return [rlp.encode_int(tx_type), status, rlp.encode_int(gas), logs]


@needs_c
def test_hand_built_edge_cases_agree() -> None:
    rng = random.Random(5)
    addr = rng.randbytes(20)
    topic = rng.randbytes(32)
    lists = []
    for k in range(5):
        for data in (b"", b"\x00", b"\x7f", b"\x80", rng.randbytes(55), rng.randbytes(56), rng.randbytes(70_000)):
            logs = [_log(addr, [topic] * k, data)]
            for tx_type in (0, 1, 2, 3, 4):
                for status in (b"", b"\x01", rng.randbytes(32)):
                    lists.append(rlp.encode([_receipt69(tx_type, status, 21_000 * (k + 1), logs)]))
    lists.append(rlp.encode([]))
    lists.append(rlp.encode([_receipt69(2, b"\x01", 1, [])]))
    lists.append(rlp.encode([_receipt69(2, b"\x01", 2**64 - 1, [])]))
    # invalid ones: unknown type, 5 topics, status 2, gas with a leading zero, data as a list, trailing bytes
    lists.append(rlp.encode([_receipt69(5, b"\x01", 1, [])]))
    lists.append(rlp.encode([_receipt69(2, b"\x01", 1, [_log(addr, [topic] * 5, b"")])]))
    lists.append(rlp.encode([_receipt69(2, b"\x02", 1, [])]))
    lists.append(rlp.encode([[b"\x02", b"\x01", b"\x00\x05", []]]))
    lists.append(rlp.encode([_receipt69(2, b"\x01", 1, [[addr, [], [b"x"]]])]))
    lists.append(rlp.encode([_receipt69(2, b"\x01", 1, [])]) + b"\x00")
    lists.append(rlp.encode([_receipt69(2, b"\x01", 1, [[addr[:19], [], b""]])]))
    outcomes = [_c_and_python_agree(x) for x in lists]
    assert outcomes.count(False) == 7 and outcomes.count(True) == len(lists) - 7


@needs_c
def test_bloom_cache_evictions_and_collisions_do_not_change_roots() -> None:
    """Far more distinct log keys than the C cache has slots (65,536), seen twice in a different order."""
    rng = random.Random(9)
    keys = [rng.randbytes(32) for _ in range(60_000)]
    addrs = [rng.randbytes(20) for _ in range(20_000)]
    receipts = []
    for r in range(200):
        logs = [
            _log(addrs[(r * 100 + j) % len(addrs)], keys[(r * 300 + 3 * j) % len(keys) :][:3], b"") for j in range(100)
        ]
        receipts.append(_receipt69(2, b"\x01", 21_000 * (r + 1), logs))
    data = rlp.encode(receipts)
    assert _c_and_python_agree(data)
    rng.shuffle(receipts)
    assert _c_and_python_agree(rlp.encode(receipts))
    assert _c_and_python_agree(data)  # now mostly from the cache


@needs_c
def test_rejected_lists_still_raise_the_reference_error() -> None:
    from ethp2p.chain.header import Header

    header = Header(bytes.fromhex(load_vector("mainnet/derived/mainnet_blocks.json")["blocks"][-1]["header_rlp"]))
    bad = rlp.encode([_receipt69(7, b"\x01", 1, [])])
    assert C.receipts69_root(bad) is None
    with pytest.raises(VerificationError, match="unknown receipt type 7"):
        verify_receipts(header, bad, form=69)


# ---- block bodies ---------------------------------------------------------------------------------

BLOCKS = load_vector("mainnet/derived/mainnet_blocks.json")["blocks"]
BODIES = [bytes.fromhex(b["body_rlp"]) for b in BLOCKS]


def _body_roots_py(raw: bytes) -> tuple[bytes, int, bytes, bytes | None] | None:
    from ethp2p.chain.body import BlockBody, BodyError

    try:
        body = BlockBody.decode(raw)
        return (
            ordered_trie_root_py(body.transaction_encodings()),
            len(body.transactions),
            body.ommers_hash(),
            None if body.withdrawals is None else _withdrawals_root_py(body),
        )
    except BodyError:
        return None


def _withdrawals_root_py(body) -> bytes:
    body.withdrawals_root()  # raises BodyError for a withdrawal that is not a list
    return ordered_trie_root_py(body.withdrawals)


@needs_c
def test_real_bodies_give_the_same_roots_and_match_their_headers() -> None:
    from ethp2p.chain.header import Header

    assert len(BODIES) > 60
    for b, raw in zip(BLOCKS, BODIES, strict=True):
        got = C.body_roots(raw)
        assert got is not None and got == _body_roots_py(raw)
        h = Header(bytes.fromhex(b["header_rlp"]))
        assert (got[0], got[1], got[2], got[3]) == (
            h.transactions_root,
            b["tx_count"],
            h.ommers_hash,
            h.withdrawals_root,
        )


@needs_c
@pytest.mark.parametrize("seed", range(3))
def test_corrupted_bodies_agree(seed: int) -> None:
    rng = random.Random(100 + seed)
    accepted = rejected = 0
    for raw in BODIES:
        if len(raw) > 60_000:
            continue
        for m in _mutants(raw, rng, 40):
            want = _body_roots_py(m)
            assert C.body_roots(m) == want
            if want is None:
                rejected += 1
            else:
                accepted += 1
    assert accepted > 100 and rejected > 100


@needs_c
def test_hand_built_bodies_agree() -> None:
    legacy = [b"\x01", b"\x02", b"\x03", b"", b"", b"", b"", b"", b""]
    typed = b"\x02" + rlp.encode([b"\x01", b"\x02"])
    withdrawal = [b"\x01", b"\x02", b"\x33" * 20, b"\x04"]
    cases = [
        rlp.encode([[], []]),
        rlp.encode([[], [], []]),
        rlp.encode([[legacy, typed], [], [withdrawal] * 3]),
        rlp.encode([[legacy] * 300, [[b"\x01"] * 15]]),
        # malformed: 1 or 4 parts, a part that is a string, an unknown or zero tx type, a typed tx
        # whose payload is not a list, a one-byte tx, a withdrawal that is a string, trailing bytes
        rlp.encode([[]]),
        rlp.encode([[], [], [], []]),
        rlp.encode([b"", []]),
        rlp.encode([[b"\x05" + rlp.encode([b"\x01"])], []]),
        rlp.encode([[b"\x00" + rlp.encode([b"\x01"])], []]),
        rlp.encode([[b"\x02\x05\x06"], []]),
        rlp.encode([[b"\x07"], []]),
        rlp.encode([[], [], [b"\x01"]]),
        rlp.encode([[], []]) + b"\x00",
    ]
    outcomes = []
    for raw in cases:
        want = _body_roots_py(raw)
        assert C.body_roots(raw) == want
        outcomes.append(want is not None)
    assert outcomes == [True] * 4 + [False] * 9


def test_check_body_gives_verify_body_results() -> None:
    """check_body (C when built) and verify_body (pure Python) accept, count and reject alike."""
    from ethp2p.chain.header import Header
    from ethp2p.chain.verify import check_body, verify_body

    rng = random.Random(3)
    for b, raw in zip(BLOCKS[::4], BODIES[::4], strict=True):
        h = Header(bytes.fromhex(b["header_rlp"]))
        assert check_body(h, raw) == len(verify_body(h, raw).transactions) == b["tx_count"]
        for m in _mutants(raw, rng, 10) + [BODIES[0]]:
            try:
                want = len(verify_body(h, m).transactions)
            except VerificationError as e:
                with pytest.raises(VerificationError) as got:
                    check_body(h, m)
                assert (got.value.kind, str(got.value)) == (e.kind, str(e))
                continue
            assert check_body(h, m) == want


@needs_c
def test_threads_calling_at_once_get_the_single_threaded_results() -> None:
    """The C functions release the GIL (the receipt scan under its own lock): many threads, same answers."""
    from concurrent.futures import ThreadPoolExecutor

    lists = LISTS69[:40]
    want_r = [C.receipts69_root(x) for x in lists]
    want_b = [C.body_roots(x) for x in BODIES[:40]]

    def work(i: int) -> tuple[list, list]:
        order = list(range(len(lists)))
        random.Random(i).shuffle(order)
        return (
            [(j, C.receipts69_root(lists[j])) for j in order],
            [(j, C.body_roots(BODIES[j])) for j in order],
        )

    with ThreadPoolExecutor(8) as pool:
        for rs, bs in pool.map(work, range(16)):
            assert all(want_r[j] == r for j, r in rs)
            assert all(want_b[j] == b for j, b in bs)


@needs_c
def test_receipt_shape_check_agrees_with_the_reference() -> None:
    """receipts69_shape (eth/70 partial-list checks): same count and last cumulative gas, same rejections."""
    rng = random.Random(11)
    accepted = rejected = 0
    for l69 in LISTS69:
        want = _or_none(fast.receipts69_shape_py, l69)
        assert want is not None and C.receipts69_shape(l69) == want
        assert want[0] == _some(C.receipts69_root(l69))[1]
    for l69 in SMALL69:
        for m in _mutants(l69, rng, 40):
            want = _or_none(fast.receipts69_shape_py, m)
            assert C.receipts69_shape(m) == want
            accepted += want is not None
            rejected += want is None
    for gas in (1, 127, 128, 255, 256, 2**32, 2**64 - 1):
        for status in (b"", b"\x01", b"\x22" * 32):
            data = rlp.encode([_receipt69(2, status, gas, [])])
            assert C.receipts69_shape(data) == _or_none(fast.receipts69_shape_py, data) == (1, gas)
    assert C.receipts69_shape(rlp.encode([])) == (0, 0)
    assert accepted > 100 and rejected > 100


# ---- eth/68 lists ---------------------------------------------------------------------------------

LISTS68 = [ref.receipts69_to_68(x) for x in LISTS69]
SMALL68 = [ref.receipts69_to_68(x) for x in SMALL69]


@needs_c
def test_eth68_lists_give_the_same_root_count_and_stored_form() -> None:
    for l69, l68 in zip(LISTS69, LISTS68, strict=True):
        got = C.receipts68_root(l68)
        assert got == _or_none(fast.receipts68_root_py, l68)
        assert got is not None and got[0] == _some(C.receipts69_root(l69))[0] and got[2] == l69
        assert C.receipts69_to_68(l69) == l68 == fast.receipts69_to_68_py(l69)


@needs_c
@pytest.mark.parametrize("seed", range(3))
def test_corrupted_eth68_lists_and_conversions_agree(seed: int) -> None:
    rng = random.Random(200 + seed)
    outcomes = {True: 0, False: 0}
    for l69, l68 in zip(SMALL69, SMALL68, strict=True):
        for m in mutants(l68, rng, 40, header_bytes=True):
            want = _or_none(fast.receipts68_root_py, m)
            assert C.receipts68_root(m) == want
            outcomes[want is not None] += 1
        for m in mutants(l69, rng, 20, header_bytes=True):
            assert C.receipts69_to_68(m) == _or_none(fast.receipts69_to_68_py, m)
    assert outcomes[True] > 100 and outcomes[False] > 100


@needs_c
def test_hand_built_eth68_lists_agree() -> None:
    rng = random.Random(6)
    addr, topic = rng.randbytes(20), rng.randbytes(32)
    lists = []
    for tx_type in (0, 1, 2, 3, 4):
        for status in (b"", b"\x01", rng.randbytes(32)):
            for data in (b"", rng.randbytes(56), rng.randbytes(70_000)):
                l69 = rlp.encode([_receipt69(tx_type, status, 50_000, [_log(addr, [topic], data)])])
                lists.append(ref.receipts69_to_68(l69))
    lists.append(rlp.encode([]))
    # malformed: bloom of 255 bytes, a typed receipt of unknown type, typed payload not a list, trailing byte
    fields = [b"\x01", rlp.encode_int(5), b"\x00" * 255, []]
    lists.append(rlp.encode([fields]))
    lists.append(rlp.encode([b"\x07" + rlp.encode([b"\x01", b"\x05", b"\x00" * 256, []])]))
    lists.append(rlp.encode([b"\x02\x05"]))
    lists.append(rlp.encode([[b"\x01", b"\x05", b"\x00" * 256, []]]) + b"\x00")
    outcomes = []
    for x in lists:
        want = _or_none(fast.receipts68_root_py, x)
        assert C.receipts68_root(x) == want
        outcomes.append(want is not None)
    assert outcomes == [True] * (len(lists) - 4) + [False] * 4


# ---- export: transaction fields and receipt logs -------------------------------------------

_BODIES = [bytes.fromhex(b["body_rlp"]) for b in load_vector("mainnet/derived/mainnet_blocks.json")["blocks"]]


def _tx_encodings() -> list[bytes]:
    from ethp2p.chain.body import BlockBody

    return [bytes(e) for body in _BODIES for e in BlockBody.decode(body).transaction_encodings()]


def _py_tx_fields(raw: bytes) -> object:
    from ethp2p.chain.transactions import TransactionError, transaction_fields

    try:
        return transaction_fields(raw)
    except TransactionError:
        return None


def _py_receipt_fields(raw: bytes) -> list[fast.ReceiptFields] | None:
    try:
        return fast.receipt_fields_py(raw)
    except rlp.RLPError:
        return None


@needs_c
def test_tx_fields_match_python_on_real_and_corrupted_transactions() -> None:
    """Every derived transaction (all five types), and 30 corrupted copies of a sample of them:
    the same (type, fields, offsets), or both reject."""
    encs = _tx_encodings()
    assert {e[0] if e[0] < 0xC0 else 0 for e in encs} == {0, 1, 2, 3, 4}
    for e in encs:
        assert C.tx_fields(e) == _py_tx_fields(e)
    rng = random.Random(7)
    rejected = 0
    for e in rng.sample(encs, 200):
        for m in _mutants(e, rng, 30):
            got = C.tx_fields(m)
            assert got == _py_tx_fields(m), m.hex()
            rejected += got is None
    assert rejected > 1000  # the corruptions reached the checks


def _norm_fields(rs: list[fast.ReceiptFields] | None) -> list[tuple[bytes, bytes, list[tuple[object, ...]]]] | None:
    """Receipt fields with each log as a tuple, for comparing the two paths."""
    return None if rs is None else [(r[0], r[1], [tuple(x) for x in r[2]]) for r in rs]


@needs_c
def test_receipts69_fields_match_python_on_real_and_corrupted_lists() -> None:
    for l69 in LISTS69:
        got = C.receipts69_fields(l69)
        assert got is not None and [tuple(r[:2]) + ([tuple(x) for x in r[2]],) for r in got] == [
            tuple(r[:2]) + ([tuple(x) for x in r[2]],) for r in fast.receipt_fields_py(l69)
        ]
    rng = random.Random(11)
    rejected = 0
    for l69 in SMALL69:
        for m in _mutants(l69, rng, 60):
            got = C.receipts69_fields(m)
            want = _py_receipt_fields(m)
            assert _norm_fields(got) == _norm_fields(want), m.hex()
            rejected += got is None
    assert rejected > 100


def test_decoded_transactions_are_the_same_in_pure_python(monkeypatch: pytest.MonkeyPatch) -> None:
    from ethp2p.chain import transactions as txm

    encs = _tx_encodings()[::7]
    with_c = [txm.decode_transaction(e) for e in encs]
    monkeypatch.setattr(txm, "_c", None)
    assert [txm.decode_transaction(e) for e in encs] == with_c
