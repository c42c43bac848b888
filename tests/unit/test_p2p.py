"""p2p base protocol: Hello (EIP-8 vector), Disconnect forms, capability negotiation, enode URLs."""

from __future__ import annotations

import pytest

from ethp2p import rlp
from ethp2p.crypto.keys import PrivateKey
from ethp2p.enode import Enode, EnodeError
from ethp2p.p2p.capabilities import negotiate
from ethp2p.p2p.disconnect import DisconnectReason, reason_name
from ethp2p.p2p.messages import (
    Capability,
    Hello,
    P2PMessageError,
    decode_disconnect,
    decode_hello,
    encode_disconnect,
    encode_hello,
)
from tests.conftest import load_vector


def test_eip8_hello_vector_ignores_extra_elements() -> None:
    vec = load_vector("p2p/eip8_hello.json")
    hello = decode_hello(bytes.fromhex(vec["hex"]))
    want = vec["decoded_by_rlp"]
    assert hello.version == want["protocolVersion"]
    assert hello.client_id == want["clientId"]
    assert [(c.name, c.version) for c in hello.capabilities] == [tuple(c) for c in want["capabilities"]]
    assert hello.listen_port == want["listenPort"]
    assert hello.node_id.hex() == want["nodeId"]


def test_hello_roundtrip() -> None:
    hello = Hello(5, "ethp2p/0.1", (Capability("eth", 68), Capability("eth", 69)), 30303, bytes(range(64)))
    assert decode_hello(encode_hello(hello)) == hello


@pytest.mark.parametrize(
    "payload",
    [
        rlp.encode([5, b"x", [], 0]),  # too few fields
        rlp.encode([5, b"x", [[b"eth"]], 0, b"\x01" * 64]),  # cap without version
        rlp.encode([5, b"x", [], 0, b"\x01" * 63]),  # short node id
        rlp.encode([5, b"x" * 2000, [], 0, b"\x01" * 64]),  # client id too long
        rlp.encode([5, b"x", [[b"eth", 68]] * 100, 0, b"\x01" * 64]),  # too many caps
        rlp.encode([b"\x00\x05", b"x", [], 0, b"\x01" * 64]),  # non-canonical int
        b"\xc5\x05",  # truncated
    ],
)
def test_bad_hello_is_typed_error(payload: bytes) -> None:
    with pytest.raises(P2PMessageError):
        decode_hello(payload)


@pytest.mark.parametrize(
    "payload, reason",
    [
        (b"\xc1\x04", DisconnectReason.TOO_MANY_PEERS),  # [reason]
        (b"\x04", DisconnectReason.TOO_MANY_PEERS),  # bare reason
        (b"\x80", DisconnectReason.REQUESTED),  # bare empty (0)
        (b"\xc0", None),  # empty list
        (b"", None),  # nothing at all
        (b"\xc1\x80", DisconnectReason.REQUESTED),
        (b"\xc1\x33", 0x33),  # unknown code kept as int
    ],
)
def test_disconnect_forms(payload: bytes, reason) -> None:
    assert decode_disconnect(payload).reason == reason


def test_disconnect_roundtrip_and_names() -> None:
    assert decode_disconnect(encode_disconnect(DisconnectReason.USELESS_PEER)).reason is DisconnectReason.USELESS_PEER
    assert reason_name(DisconnectReason.PING_TIMEOUT) == "ping_timeout"
    assert reason_name(0x33) == "unknown(0x33)"
    with pytest.raises(P2PMessageError):
        decode_disconnect(b"\xc3\x82\x01\x02")


def test_negotiation_picks_highest_shared_version_and_offsets() -> None:
    local = [Capability("eth", 68), Capability("eth", 69), Capability("eth", 70), Capability("snap", 1)]
    remote = [Capability("eth", 66), Capability("eth", 68), Capability("snap", 1), Capability("les", 4)]
    counts = {"eth": 17, "snap": 8}
    protos = negotiate(local, remote, lambda name, version: counts[name])
    assert [(p.name, p.version, p.offset, p.length) for p in protos] == [("eth", 68, 0x10, 17), ("snap", 1, 0x21, 8)]
    assert protos[0].owns(0x10) and protos[0].owns(0x20) and not protos[0].owns(0x21)
    assert negotiate(local, [Capability("les", 2)], lambda n, v: 1) == []


ENODE_CASES = [c for c in load_vector("enr/geth_parse_node_tests.json")["tests"] if not c["input"].startswith("enr:")]


@pytest.mark.parametrize("case", ENODE_CASES, ids=[c["input"][:60] for c in ENODE_CASES])
def test_geth_enode_parse_cases(case) -> None:
    if case["accept"]:
        node = Enode.parse(case["input"])
        want = case["want"]
        assert node.pubkey.hex() == want["pubkey"]
        assert node.tcp_port == want.get("tcp", 0)
        assert node.udp_port == want.get("udp", 0)
        host = want.get("ip") or want.get("hostname")
        assert node.host == host
        assert Enode.parse(node.url()) == node
    else:
        with pytest.raises(EnodeError) as err:
            Enode.parse(case["input"])
        if "want_error_contains" in case:
            assert case["want_error_contains"] in str(err.value)


def test_enode_rejects_point_off_curve() -> None:
    with pytest.raises(EnodeError, match="not a point"):
        Enode.parse("enode://" + "00" * 64 + "@127.0.0.1:30303")


def test_enode_host_check_is_linear_on_a_long_bad_name() -> None:
    """The old host-name pattern backtracked exponentially here (``ethp2p probe`` effectively hung)."""
    key = PrivateKey.generate().public_key.to_bytes().hex()
    for bad in ("a" * 30 + "!", "a" * 5000 + "!", "a." * 200 + "-"):
        with pytest.raises(EnodeError):
            Enode.parse(f"enode://{key}@{bad}:30303")
    assert Enode.parse(f"enode://{key}@node-1.example.org.:30303").host == "node-1.example.org."
    assert Enode.parse(f"enode://{key}@{'a' * 63}.example:30303").host is not None
    with pytest.raises(EnodeError):
        Enode.parse(f"enode://{key}@{'a' * 64}.example:30303")  # a label is at most 63 characters
