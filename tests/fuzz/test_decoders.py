"""Bounded fuzzing of every decoder that takes bytes from the network or from a file.

Each decoder gets random bytes, real inputs from tests/vectors unchanged, and those inputs with
1-5 random changes (tests.support.mutants: bytes replaced, bits flipped, deleted, inserted, set to
RLP header-boundary values). The property: it returns a value or raises its own typed decode
error(s), never anything else (IndexError, UnicodeDecodeError, RecursionError, a bare
ValueError...); where an encoder exists, what it decodes re-encodes to the same bytes (or decodes
again to the same value). Then the C extension against the pure-Python reference
(tools/fuzz_speedups.py's checks, bounded).

Deterministic (``derandomize``: the same examples on every run), no example database written into
the tree, no deadline; ``FUZZ_EXAMPLES`` sets the examples per decoder (the whole module takes
about a minute on the 2-core test machine). Longer runs by hand: tools/fuzz_speedups.py, and
tools/asan_speedups.sh under AddressSanitizer/UBSan (tests/fuzz/test_asan.py).
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ethp2p import rlp
from ethp2p.chain.body import BlockBody, BodyError
from ethp2p.chain.genesis import GenesisError, load_genesis
from ethp2p.chain.header import Header, HeaderError
from ethp2p.chain.receipts import (
    ReceiptError,
    receipt_fields_py,
    receipts68_root_py,
    receipts68_to_69,
    receipts69_root_py,
    receipts69_to_68_py,
)
from ethp2p.chain.transactions import TransactionError, decode_transaction
from ethp2p.discovery import v4wire
from ethp2p.discovery.dns import DNSDiscoveryError, Root, TreeURL, parse_entry
from ethp2p.discovery.enr import ENR, ENRError
from ethp2p.eth import codec as eth_codec
from ethp2p.eth import messages as eth_messages
from ethp2p.eth.errors import EthProtocolError
from ethp2p.formats.chainfile import ChainFileError, iter_chain_file
from ethp2p.formats.era1 import Era1Error, read_era1
from ethp2p.p2p.messages import P2PMessageError, decode_disconnect, decode_hello, encode_disconnect, encode_hello
from ethp2p.rlpx.errors import FrameError, HandshakeError, SnappyError
from ethp2p.rlpx.frame import FrameCodec
from ethp2p.rlpx.handshake import Recipient, decode_ack_plain, decode_auth_plain
from ethp2p.rlpx.snappy import compress, decompress
from tests.conftest import VECTORS, load_vector
from tests.support.mutants import mutants

T = TypeVar("T")

#: Examples per decoder (per parametrized case).
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "600"))

FUZZ = settings(
    derandomize=True,
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


def _mutate(seed: bytes, state: int, changes: int) -> bytes:
    rng = random.Random(state)
    out = seed
    for _ in range(changes):
        out = mutants(out, rng, 1, header_bytes=True)[0] if out else bytes([rng.randrange(256)])
    return out


def inputs(seeds: Sequence[bytes], *, max_random: int = 300) -> st.SearchStrategy[bytes]:
    """Random bytes, the seeds as they are, and the seeds with 1-5 changes (most examples)."""
    pool = [bytes(s) for s in seeds]
    mutated = st.builds(_mutate, st.sampled_from(pool), st.integers(0, 2**32 - 1), st.integers(1, 5))
    return st.one_of(st.binary(max_size=max_random), st.sampled_from(pool), mutated, mutated, mutated)


def texts(seeds: Sequence[str]) -> st.SearchStrategy[str]:
    """Text inputs: the seeds' bytes fuzzed as above, read back as Latin-1 (any byte is a character)."""
    return inputs([s.encode() for s in seeds], max_random=120).map(lambda b: b.decode("latin-1"))


def typed(errors: type[BaseException] | tuple[type[BaseException], ...], fn: Callable[[], T]) -> T | None:
    """``fn()``, or None when it raises one of ``errors``; any other exception fails the test."""
    try:
        return fn()
    except errors:
        return None


def _hex(x: str) -> bytes:
    return bytes.fromhex(x.removeprefix("0x"))


# ---- seeds from tests/vectors ------------------------------------------------------------------

BLOCKS = load_vector("mainnet/derived/mainnet_blocks.json")["blocks"]
SMALL = [b for b in BLOCKS if len(b["body_rlp"]) < 20_000 and len(b.get("receipts_eth69_rlp") or "") < 20_000]
HEADERS = [_hex(b["header_rlp"]) for b in BLOCKS]
BODIES = [_hex(b["body_rlp"]) for b in SMALL]
RECEIPTS69 = [_hex(b["receipts_eth69_rlp"]) for b in SMALL if b.get("receipts_eth69_rlp")]
RECEIPTS68 = [_hex(b["receipts_eth68_rlp"]) for b in SMALL if b.get("receipts_eth68_rlp")]
TXS = [bytes(t) for body in BODIES for t in BlockBody.decode(body).transactions][:200]
RLP_SEEDS = [_hex(v["out"]) for v in load_vector("rlp/rlptest.json").values()] + HEADERS[:5] + BODIES[:5]
ETH_SEEDS = [_hex(m["rlp"]) for m in load_vector("eth/geth_protocol_messages.json")["messages"]] + [
    _hex(m["rlp"]) for m in load_vector("eth/eip2481_messages.json")["messages"]
]
HELLO = _hex(load_vector("p2p/eip8_hello.json")["hex"])
DISCV4 = [_hex(p["hex"]) for p in load_vector("discv4/eip8_packets.json")["packets"]]
ENR_TEXTS = [r["text"] for r in load_vector("enr/real_records.json")["v5_bootnodes"]]
EIP8 = load_vector("rlpx/eip8_handshake.json")


def _dns_seeds() -> list[str]:
    """Every string in the EIP-1459 vectors that looks like a tree entry or URL."""
    found: list[str] = []

    def walk(x: Any) -> None:
        if isinstance(x, str) and x.startswith(("enrtree", "enr:")):
            found.append(x)
        elif isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(load_vector("dnsdisc/eip1459_tree.json"))
    walk(load_vector("dnsdisc/geth_parse_tests.json"))
    return found[:60]


DNS_SEEDS = _dns_seeds()


# ---- RLP ----------------------------------------------------------------------------------------


@FUZZ
@given(inputs(RLP_SEEDS))
def test_rlp_decode(data: bytes) -> None:
    item = typed(rlp.RLPDecodeError, lambda: rlp.decode(data))
    if item is not None:
        assert rlp.encode(item) == data  # the decoder takes only canonical RLP
    parts = typed(rlp.RLPError, lambda: rlp.split_list(data))
    if parts is not None:
        assert rlp.encode_raw_list(parts) == data


def test_rlp_deep_nesting_is_a_decode_error() -> None:
    """Lists nested far deeper than any message: a decode error, not a RecursionError."""
    out = b"\xc0"
    for _ in range(5000):
        n = len(out)
        size = n.to_bytes((n.bit_length() + 7) // 8, "big")
        out = (bytes([0xC0 + n]) if n < 56 else bytes([0xF7 + len(size)]) + size) + out
    with pytest.raises(rlp.RLPDecodeError):
        rlp.decode(out)
    with pytest.raises(rlp.RLPDecodeError):
        rlp.decode(out, max_size=len(out) + 1)


# ---- eth messages at 68, 69, 70 ------------------------------------------------------------------

#: Messages ethp2p receives but never sends (no encoder to round-trip through).
NO_ENCODER = {eth_messages.Transactions, eth_messages.NewBlock, eth_messages.NewBlockHashes}
ETH_CASES = [(v, code) for v in (68, 69, 70) for code in range(eth_codec.message_count(v) + 1)]


@pytest.mark.parametrize(("version", "code"), ETH_CASES, ids=[f"eth{v}-0x{c:02x}" for v, c in ETH_CASES])
def test_eth_messages(version: int, code: int) -> None:
    @settings(FUZZ, max_examples=max(10, EXAMPLES // 5))
    @given(inputs(ETH_SEEDS))
    def check(data: bytes) -> None:
        msg = typed(EthProtocolError, lambda: eth_codec.decode_message(code, data, version))
        if msg is not None and type(msg) not in NO_ENCODER:
            code2, payload = eth_codec.encode_message(msg, version)
            assert code2 == code
            assert eth_codec.decode_message(code, payload, version) == msg

    check()


# ---- p2p Hello and Disconnect --------------------------------------------------------------------


@FUZZ
@given(inputs([HELLO, encode_disconnect(4), b"\xc1\x04", b"\x04", b"\xc0"]))
def test_p2p_hello_and_disconnect(data: bytes) -> None:
    hello = typed(P2PMessageError, lambda: decode_hello(data))
    if hello is not None:
        assert decode_hello(encode_hello(hello)) == hello
    typed(P2PMessageError, lambda: decode_disconnect(data))


# ---- discv4, ENR, DNS ------------------------------------------------------------------------------


@FUZZ
@given(inputs(DISCV4, max_random=400))
def test_discv4_packets(data: bytes) -> None:
    typed(v4wire.PacketError, lambda: v4wire.decode_packet(data))


@FUZZ
@given(inputs([ENR.from_text(t).raw for t in ENR_TEXTS]))
def test_enr_records(data: bytes) -> None:
    enr = typed(ENRError, lambda: ENR.from_rlp(data))
    if enr is not None:
        assert ENR.from_text(enr.text()).raw == data


@FUZZ
@given(texts(ENR_TEXTS))
def test_enr_text(text: str) -> None:
    typed(ENRError, lambda: ENR.from_text(text))


@FUZZ
@given(texts(DNS_SEEDS))
def test_dns_tree_entries(text: str) -> None:
    typed(DNSDiscoveryError, lambda: parse_entry(text))
    typed(DNSDiscoveryError, lambda: Root.parse(text))
    typed(DNSDiscoveryError, lambda: TreeURL.parse(text))


# ---- RLPx: snappy, frames, auth/ack ----------------------------------------------------------------

SNAPPY_SEEDS = [
    compress(HELLO),
    compress(BODIES[0]),
    compress(b"a" * 3000),
    _hex((VECTORS / "snappy/rinkeby-block-272621.go.snappy.hex").read_text().strip())[:4000],
]


@FUZZ
@given(inputs(SNAPPY_SEEDS))
def test_snappy(data: bytes) -> None:
    out = typed(SnappyError, lambda: decompress(data, 16 * 1024 * 1024))
    if out is not None:
        assert decompress(compress(out), len(out)) == out


def _frame_pair() -> tuple[FrameCodec, FrameCodec]:
    from tests.unit.test_rlpx import _legacy_secrets

    return FrameCodec(_legacy_secrets(initiator=True)), FrameCodec(_legacy_secrets(initiator=False))


_SENDER, _ = _frame_pair()
FRAMES = [_SENDER.encode_message(0x10, HELLO), _SENDER.encode_message(0x00, b"\x80" * 40)]
# (each frame above is encoded under the MAC state left by the previous one: feed them in order)


@FUZZ
@given(st.integers(0, len(FRAMES)), inputs([b"".join(FRAMES)], max_random=200))
def test_rlpx_frames_with_a_valid_mac_state(good: int, data: bytes) -> None:
    """A receiver in the right MAC state: the first ``good`` real frames, then fuzzed bytes."""
    _, receiver = _frame_pair()
    for f in FRAMES[:good]:
        receiver.feed(f)
    got = typed(FrameError, lambda: receiver.feed(data))
    if data == b"".join(FRAMES) and good == 0:
        assert got is not None and [code for code, _ in got] == [0x10, 0x00]


AUTHS = [_hex(c["hex"]) for c in EIP8["auth"]]
ACKS = [_hex(c["hex"]) for c in EIP8.get("ack", [])]


@FUZZ
@given(inputs(AUTHS + ACKS, max_random=400))
def test_auth_and_ack_eip8(data: bytes) -> None:
    recipient = Recipient(PrivateKeyB)
    typed(HandshakeError, lambda: recipient.read_auth(data))
    typed(HandshakeError, lambda: decode_auth_plain(data, eip8=True))
    typed(HandshakeError, lambda: decode_auth_plain(data, eip8=False))
    typed(HandshakeError, lambda: decode_ack_plain(data, eip8=True))
    typed(HandshakeError, lambda: decode_ack_plain(data, eip8=False))


def _key_b() -> Any:
    from ethp2p.crypto.keys import PrivateKey

    return PrivateKey(_hex(EIP8["static_key_b"]))


PrivateKeyB = _key_b()


# ---- headers, bodies, transactions, receipts ----------------------------------------------------------


@FUZZ
@given(inputs(HEADERS, max_random=600))
def test_headers(data: bytes) -> None:
    def decode() -> object:
        h = Header(data)
        return h.hash, h.to_dict()

    if typed(HeaderError, decode) is not None:
        assert Header(data).raw == data


@FUZZ
@given(inputs(BODIES, max_random=600))
def test_bodies(data: bytes) -> None:
    typed(BodyError, lambda: BlockBody.decode(data))


@FUZZ
@given(inputs(TXS, max_random=400))
def test_transactions(data: bytes) -> None:
    typed(TransactionError, lambda: decode_transaction(data))


@pytest.mark.parametrize("v", [0, 1, 17, 26, 29, 34])
def test_a_legacy_transaction_with_a_v_below_35_is_a_transaction_error(v: int) -> None:
    """Found by this fuzz: v=17 made a negative chain id ((v - 35) // 2) that the RLP encoder refused
    with RLPEncodeError while building the signing payload."""
    raw = rlp.encode([0, 1, 21000, b"\x11" * 20, 0, b"", v, 1, 1])
    with pytest.raises(TransactionError, match=f"v={v}"):
        decode_transaction(raw)
    with pytest.raises(TransactionError):
        decode_transaction(raw, recover_sender=False)


@FUZZ
@given(inputs(RECEIPTS69 + RECEIPTS68, max_random=400))
def test_receipts(data: bytes) -> None:
    r69 = typed(ReceiptError, lambda: receipts69_root_py(data))
    typed(ReceiptError, lambda: receipts68_root_py(data))
    typed(rlp.RLPError, lambda: receipt_fields_py(data))  # (documented: RLPError for a malformed list)
    as68 = typed(ReceiptError, lambda: receipts69_to_68_py(data))
    if as68 is not None and r69 is not None:
        assert receipts68_to_69(as68) == data  # the two forms convert back and forth


# ---- files: era1 archives, chain files, genesis --------------------------------------------------------


def _small_era1() -> bytes:
    """A valid era1 archive of the real archive's first 16 blocks (tests.support.forks writes it)."""
    from tests.support.forks import era1_bytes

    real = read_era1(VECTORS / "mainnet/era1/mainnet-00000-5ec1ffb8.era1", verify=False)
    return era1_bytes(real.blocks[:16])


ERA1 = _small_era1()
CHAIN = (VECTORS / "ethtest/chain.rlp").read_bytes()[:6000]


@FUZZ
@given(inputs([ERA1], max_random=400))
def test_era1_files(data: bytes) -> None:
    typed(Era1Error, lambda: read_era1(data))


@FUZZ
@given(inputs([CHAIN], max_random=400))
def test_chain_files(data: bytes) -> None:
    typed(ChainFileError, lambda: list(iter_chain_file(data)))


GENESIS = (VECTORS / "ethtest/genesis.json").read_bytes()


def test_genesis_files() -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "genesis.json"

        @settings(FUZZ, max_examples=max(10, EXAMPLES // 3))
        @given(inputs([GENESIS, json.dumps({"config": {}}).encode()], max_random=200))
        def check(data: bytes) -> None:
            path.write_bytes(data)
            typed(GenesisError, lambda: load_genesis(path))

        check()


# ---- the store's rows of stored bytes (what export reads back out of a store file) ------------------


@FUZZ
@given(st.integers(0, 2), st.integers(0, len(SMALL) - 1), st.integers(0, 2**32 - 1), st.integers(1, 5))
def test_export_rows_of_damaged_stored_blocks(part: int, which: int, state: int, changes: int) -> None:
    """A stored header, body or receipt list damaged on disk: rows, or a RowError (the export's
    "a stored block ... is malformed"), never another exception."""
    from ethp2p.export.rows import RowError, RowReader
    from ethp2p.export.schema import TABLES
    from ethp2p.trust.proof import Proof

    b = SMALL[which]
    raw = [_hex(b["header_rlp"]), _hex(b["body_rlp"]), _hex(b.get("receipts_eth69_rlp") or "c0")]
    raw[part] = _mutate(raw[part], state, changes)
    reader = RowReader(frozenset(TABLES), senders=False)
    typed(RowError, lambda: reader.block_rows(raw[0], raw[1], raw[2], Proof.ACCUMULATOR))


# ---- the C extension against the pure-Python reference -------------------------------------------


@pytest.mark.skipif(os.environ.get("ETHP2P_PURE_PYTHON") is not None, reason="pure Python forced")
@settings(FUZZ, max_examples=EXAMPLES * 4)
@given(st.integers(0, 3), st.integers(0, 2**32 - 1), st.integers(1, 5), st.integers(0, 10**6))
def test_c_extension_agrees_with_python(kind: int, state: int, changes: int, pick: int) -> None:
    """tools/fuzz_speedups.py's checks, bounded: every C entry point gives the reference's result on
    mutated real receipt lists (eth/69 and eth/68), bodies and transactions, or rejects what it rejects."""
    from ethp2p import accel
    from ethp2p.chain import receipts as R
    from ethp2p.chain.trie import ordered_trie_root_py
    from tests.unit.test_speedups import _body_roots_py, _norm_fields, _or_none, _py_receipt_fields, _py_tx_fields

    C = accel.speedups
    assert C is not None, f"the C extension is not built: {accel.reason}"
    pool = (RECEIPTS69, RECEIPTS68, BODIES, TXS)[kind]
    m = _mutate(pool[pick % len(pool)], state, changes)
    if kind == 0:
        assert C.receipts69_root(m) == _or_none(R.receipts69_root_py, m)
        assert C.receipts69_shape(m) == _or_none(R.receipts69_shape_py, m)
        assert C.receipts69_to_68(m) == _or_none(R.receipts69_to_68_py, m)
        assert _norm_fields(C.receipts69_fields(m)) == _norm_fields(_py_receipt_fields(m))
    elif kind == 1:
        assert C.receipts68_root(m) == _or_none(R.receipts68_root_py, m)
    elif kind == 2:
        assert C.body_roots(m) == _body_roots_py(m)
    else:
        assert C.tx_fields(m) == _py_tx_fields(m)
    if state % 20 == 0:
        rng = random.Random(state)
        items = [rng.randbytes(rng.randint(0, 70)) for _ in range(rng.randint(0, 300))]
        assert C.ordered_trie_root(items) == ordered_trie_root_py(items)
