"""eth protocol: message codecs (EIP-2481 and geth vectors), eth/69 and eth/70 forms, fork ids, Status."""

from __future__ import annotations

import dataclasses
import os
from typing import Protocol, runtime_checkable

import pytest

from ethp2p import rlp
from ethp2p.eth import codec
from ethp2p.eth import messages as m
from ethp2p.eth.chainspec import HOODI, MAINNET, NETWORKS, SEPOLIA, network
from ethp2p.eth.errors import EthProtocolError
from ethp2p.eth.forkid import ForkId, ForkIdMismatch, decode_fork_id
from ethp2p.eth.status import StatusMismatch, make_status, validate_status
from tests.conftest import load_vector

# ---- message vectors ---------------------------------------------------------------------------

_GETH_CODES = {
    "GetBlockHeadersPacket": m.GET_BLOCK_HEADERS_CODE,
    "BlockHeadersPacket": m.BLOCK_HEADERS_CODE,
    "GetBlockBodiesPacket": m.GET_BLOCK_BODIES_CODE,
    "BlockBodiesPacket": m.BLOCK_BODIES_CODE,
    "ReceiptsPacket[*ReceiptList68]": m.RECEIPTS_CODE,
    "ReceiptsPacket[*ReceiptList69]": m.RECEIPTS_CODE,
    "PooledTransactionsPacket": m.POOLED_TRANSACTIONS_CODE,
}
GETH = load_vector("eth/geth_protocol_messages.json")


@runtime_checkable
class _Request(Protocol):
    """A request or response message (each carries its request id)."""

    request_id: int


@pytest.mark.parametrize("vec", GETH["messages"], ids=lambda v: v["description"][:50])
@pytest.mark.parametrize("version", [68, 69])
def test_geth_message_vectors_round_trip(vec: dict, version: int) -> None:
    raw = bytes.fromhex(vec["rlp"])
    code = _GETH_CODES[vec["go_type"]]
    msg = codec.decode_message(code, raw, version)
    assert isinstance(msg, _Request) and msg.request_id == 1111
    assert codec.encode_message(msg, version) == (code, raw)


def test_geth_vectors_decode_to_the_described_values() -> None:
    get = next(bytes.fromhex(v["rlp"]) for v in GETH["messages"] if "origin=hash" in v["description"])
    msg = codec.decode_message(m.GET_BLOCK_HEADERS_CODE, get, 69)
    assert isinstance(msg, m.GetBlockHeaders)
    assert msg.origin == bytes.fromhex("00" * 28 + "deadc0de") and msg.amount == 5 and msg.skip == 5 and not msg.reverse
    num = next(bytes.fromhex(v["rlp"]) for v in GETH["messages"] if "number 9999" in v["description"])
    msg = codec.decode_message(m.GET_BLOCK_HEADERS_CODE, num, 69)
    assert isinstance(msg, m.GetBlockHeaders) and msg.origin == 9999
    bodies = next(bytes.fromhex(v["rlp"]) for v in GETH["messages"] if v["go_type"] == "BlockBodiesPacket")
    msg = codec.decode_message(m.BLOCK_BODIES_CODE, bodies, 69)
    assert isinstance(msg, m.BlockBodies)
    txs = rlp.split_list(msg.bodies[0])[0]
    assert [bytes(t).hex() for t in rlp.split_list(txs)] == GETH["transactions_hex"]


EIP2481 = load_vector("eth/eip2481_messages.json")
_EIP2481_CODES = {
    "GetBlockHeadersPacket66": m.GET_BLOCK_HEADERS_CODE,
    "BlockHeadersPacket66": m.BLOCK_HEADERS_CODE,
    "GetBlockBodiesPacket66": m.GET_BLOCK_BODIES_CODE,
    "BlockBodiesPacket66": m.BLOCK_BODIES_CODE,
    "GetReceiptsPacket66": m.GET_RECEIPTS_CODE,
    "ReceiptsPacket66": m.RECEIPTS_CODE,
    "GetPooledTransactionsPacket66": m.GET_POOLED_TRANSACTIONS_CODE,
    "PooledTransactionsPacket66": m.POOLED_TRANSACTIONS_CODE,
}


@pytest.mark.parametrize(
    "vec", [v for v in EIP2481["messages"] if v["type"] in _EIP2481_CODES], ids=lambda v: v["type"]
)
def test_eip2481_vectors_at_eth68(vec: dict) -> None:
    raw = bytes.fromhex(vec["rlp"].removeprefix("0x"))
    code = _EIP2481_CODES[vec["type"]]
    msg = codec.decode_message(code, raw, 68)
    assert isinstance(msg, _Request) and msg.request_id == vec["data"]["RequestId"]
    assert codec.encode_message(msg, 68) == (code, raw)


def test_removed_node_data_messages_are_unknown() -> None:
    vec = next(v for v in EIP2481["messages"] if v["type"] == "GetNodeDataPacket66")
    with pytest.raises(EthProtocolError, match="unknown"):
        codec.decode_message(0x0D, bytes.fromhex(vec["rlp"].removeprefix("0x")), 68)


# ---- eth/69 and eth/70 forms -------------------------------------------------------------------


def test_message_counts() -> None:
    assert codec.message_count(68) == 17
    assert codec.message_count(69) == 18 and codec.message_count(70) == 18
    with pytest.raises(ValueError):
        codec.message_count(67)


def test_eth70_get_receipts_and_receipts() -> None:
    hashes = [os.urandom(32) for _ in range(3)]
    code, payload = codec.encode_message(m.make_get_receipts(70, 7, hashes, 5), 70)
    assert rlp.decode(payload) == [b"\x07", b"\x05", hashes]
    assert codec.decode_message(code, payload, 70) == m.GetReceipts(7, hashes, 5)
    lists = [rlp.encode([[0, 1, 21000, []]]), rlp.encode([])]
    code, payload = codec.encode_message(m.make_receipts(70, 7, lists, True), 70)
    assert rlp.decode(payload)[1] == b"\x01"
    got = codec.decode_message(code, payload, 70)
    assert isinstance(got, m.Receipts)
    assert got.last_block_incomplete and [bytes(x) for x in got.receipts] == lists
    # The same request at eth/69 has no index and cannot carry one.
    code, payload = codec.encode_message(m.GetReceipts(7, hashes), 69)
    assert rlp.decode(payload) == [b"\x07", hashes]
    with pytest.raises(ValueError):
        m.make_get_receipts(69, 7, hashes, 1)
    with pytest.raises(ValueError):
        m.make_receipts(69, 7, lists, True)


def test_eth70_receipts_flag_must_be_boolean() -> None:
    payload = rlp.encode([1, 2, []])
    with pytest.raises(EthProtocolError, match="0 or 1"):
        codec.decode_message(m.RECEIPTS_CODE, payload, 70)


def test_status_forms_round_trip() -> None:
    s68 = make_status(MAINNET, 68)
    assert isinstance(s68, m.StatusV68) and s68.total_difficulty == MAINNET.genesis_difficulty
    s69 = make_status(SEPOLIA, 69, head_number=100, head_hash=b"\x11" * 32, earliest=0)
    s70 = make_status(HOODI, 70)
    for status, version in ((s68, 68), (s69, 69), (s70, 70)):
        code, payload = codec.encode_message(status, version)
        assert code == m.STATUS_CODE
        assert codec.decode_message(code, payload, version) == status
    # eth/69 Status field order per the spec.
    fields = rlp.decode(codec.encode_message(s69, 69)[1])
    assert fields[2] == SEPOLIA.genesis_hash and fields[5] == b"\x64" and fields[6] == b"\x11" * 32


def test_status_tolerates_extra_fields() -> None:
    s = make_status(MAINNET, 69)
    fields = rlp.decode(codec.encode_message(s, 69)[1])
    assert isinstance(fields, list)
    payload = rlp.encode([*fields, b"future"])
    assert codec.decode_message(m.STATUS_CODE, payload, 69) == s


def test_block_range_update() -> None:
    msg = m.BlockRangeUpdate(10, 20, b"\x22" * 32)
    code, payload = codec.encode_message(msg, 69)
    assert code == 0x11 and codec.decode_message(code, payload, 70) == msg
    with pytest.raises(EthProtocolError, match="unknown"):
        codec.decode_message(0x11, payload, 68)


def test_announcements_are_decoded_for_ignoring() -> None:
    nph = m.NewPooledTransactionHashes(b"\x02\x03", (100, 200), (b"\x01" * 32, b"\x02" * 32))
    code, payload = codec.encode_message(nph, 68)
    assert codec.decode_message(code, payload, 68) == nph
    assert codec.decode_message(m.TRANSACTIONS_CODE, rlp.encode([b"a", b"b"]), 69) == m.Transactions(2)
    nbh = codec.decode_message(m.NEW_BLOCK_HASHES_CODE, rlp.encode([[b"\x01" * 32, 5]]), 68)
    assert nbh == m.NewBlockHashes(((b"\x01" * 32, 5),))
    assert isinstance(codec.decode_message(m.NEW_BLOCK_CODE, rlp.encode([[[], [], []], 17]), 69), m.NewBlock)


# ---- hostile input -----------------------------------------------------------------------------

_BAD = [
    (m.STATUS_CODE, b"", "empty"),
    (m.STATUS_CODE, rlp.encode([69, 1]), "short"),
    (m.GET_BLOCK_HEADERS_CODE, rlp.encode([1, [b"\x00\x01", 1, 0, 0]]), "leading zero origin"),
    (m.GET_BLOCK_HEADERS_CODE, rlp.encode([1, [1, 1, 0, 2]]), "reverse=2"),
    (m.GET_BLOCK_HEADERS_CODE, rlp.encode([b"\x01" * 9, [1, 1, 0, 0]]), "huge request id"),
    (m.BLOCK_HEADERS_CODE, rlp.encode([1, [b"not a list"]]), "header not a list"),
    (m.BLOCK_HEADERS_CODE, rlp.encode([1, []]) + b"\x00", "trailing byte"),
    (m.GET_BLOCK_BODIES_CODE, rlp.encode([1, [b"\x01" * 31]]), "short hash"),
    (m.BLOCK_BODIES_CODE, b"\xf9\xff\xff", "truncated"),
    (m.RECEIPTS_CODE, rlp.encode([1, [b"x"]]), "receipt list not a list"),
    (m.NEW_POOLED_TRANSACTION_HASHES_CODE, rlp.encode([b"\x02", [1, 2], [b"\x01" * 32]]), "length mismatch"),
    (0x0B, rlp.encode([]), "unknown code"),
    (0x12, rlp.encode([]), "beyond eth/69"),
]


@pytest.mark.parametrize(("code", "payload", "why"), _BAD, ids=[b[2] for b in _BAD])
def test_malformed_messages_raise_protocol_error(code: int, payload: bytes, why: str) -> None:
    with pytest.raises(EthProtocolError):
        codec.decode_message(code, payload, 69)


def test_tiny_item_flood_is_bounded() -> None:
    payload = rlp.encode_raw_list([rlp.encode(1), rlp.encode_raw_list([b"\xc0"] * (codec.MAX_LIST_ITEMS + 1))])
    with pytest.raises(EthProtocolError, match="more than"):
        codec.decode_message(m.BLOCK_BODIES_CODE, payload, 69)


def test_random_bytes_never_crash_the_decoder() -> None:
    import random

    rng = random.Random(1234)
    for _ in range(3000):
        code = rng.choice(list(range(0x12)))
        payload = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 64)))
        try:
            codec.decode_message(code, payload, rng.choice((68, 69, 70)))
        except EthProtocolError:
            pass


# ---- fork ids ----------------------------------------------------------------------------------

FORKS = load_vector("forkid/geth_forkid_tests.json")


@pytest.mark.parametrize("net", FORKS["creation"], ids=lambda n: n["network"])
def test_geth_fork_id_creation(net: dict) -> None:
    spec = NETWORKS[net["network"]]
    assert spec.genesis_hash.hex() == net["genesis_hash"]
    for case in net["cases"]:
        got = spec.fork_id(case["head"], case["time"])
        assert (got.hash.hex(), got.next) == (case["fork_hash"], case["fork_next"]), case["comment"]


_KINDS = {"ErrRemoteStale": "remote-stale", "ErrLocalIncompatibleOrStale": "local-incompatible-or-stale"}


@pytest.mark.parametrize("case", FORKS["validation"], ids=lambda c: c["comment"][:60])
def test_geth_fork_id_validation(case: dict) -> None:
    spec = MAINNET
    if case["config"] == "mainnet_without_time_forks":
        spec = dataclasses.replace(MAINNET, time_forks={})
    remote = ForkId(bytes.fromhex(case["remote"]["fork_hash"]), case["remote"]["fork_next"])
    if case["want_error"] is None:
        spec.check_fork_id(remote, case["head"], case["time"])
    else:
        with pytest.raises(ForkIdMismatch) as info:
            spec.check_fork_id(remote, case["head"], case["time"])
        assert info.value.kind == _KINDS[case["want_error"]]


EIP2124 = load_vector("forkid/eip2124_tests.json")


@pytest.mark.parametrize("case", EIP2124["validation_local_mainnet_petersburg"], ids=lambda c: c["comment"][:60])
def test_eip2124_validation_table(case: dict) -> None:
    petersburg = {k: v for k, v in MAINNET.block_forks.items() if v <= 7_280_000}
    spec = dataclasses.replace(MAINNET, block_forks=petersburg, time_forks={})
    remote = ForkId(bytes.fromhex(case["remote"]["fork_hash"]), case["remote"]["fork_next"])
    if case["want_error"] is None:
        spec.check_fork_id(remote, case["head"])
    else:
        with pytest.raises(ForkIdMismatch) as info:
            spec.check_fork_id(remote, case["head"])
        assert info.value.kind == _KINDS[case["want_error"]]


@pytest.mark.parametrize("case", FORKS["encoding"], ids=lambda c: c["rlp"])
def test_fork_id_encoding(case: dict) -> None:
    fid = ForkId(bytes.fromhex(case["fork_hash"]), case["fork_next"])
    assert fid.encode().hex() == case["rlp"]
    assert decode_fork_id(rlp.decode(bytes.fromhex(case["rlp"]))) == fid


# ---- Status validation -------------------------------------------------------------------------


def _peer_status(spec=MAINNET, version=69, **kw) -> m.Status:
    latest = spec.fork_id(30_000_000, 2_000_000_000)  # a synced peer
    s = make_status(spec, version, head_number=23_000_000, head_hash=b"\x33" * 32)
    return dataclasses.replace(s, **{"fork_id": latest, **kw})


def test_status_of_synced_peer_is_accepted_by_fresh_node() -> None:
    validate_status(MAINNET, 0, None, _peer_status(), 69)
    validate_status(MAINNET, 0, None, _peer_status(version=70), 70)
    validate_status(MAINNET, 0, None, _peer_status(version=68), 68)


@pytest.mark.parametrize(
    ("change", "kind"),
    [
        ({"network_id": 5}, "network"),
        ({"genesis_hash": b"\x00" * 32}, "genesis"),
        ({"fork_id": ForkId(b"\xde\xad\xbe\xef", 0)}, "forkid"),
        ({"version": 68}, "version"),
        ({"earliest_block": 10, "latest_block": 5}, "range"),
    ],
)
def test_status_mismatches(change: dict, kind: str) -> None:
    with pytest.raises(StatusMismatch) as info:
        validate_status(MAINNET, 0, None, _peer_status(**change), 69)
    assert info.value.kind == kind


def test_status_of_other_network_is_rejected() -> None:
    with pytest.raises(StatusMismatch) as info:
        validate_status(MAINNET, 0, None, _peer_status(SEPOLIA), 69)
    assert info.value.kind == "network"


def test_network_lookup() -> None:
    assert network("Mainnet") is MAINNET
    with pytest.raises(ValueError, match="unknown network"):
        network("ropsten")
