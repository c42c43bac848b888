"""The sans-IO P2PConnection: two instances wired together in memory (no sockets)."""

from __future__ import annotations

import dataclasses
import os

from ethp2p import rlp
from ethp2p.crypto.keys import PrivateKey
from ethp2p.p2p.connection import (
    MAX_HANDSHAKE_FRAME_SIZE,
    ConnectionClosed,
    HandshakeComplete,
    HelloReceived,
    LocalIdentity,
    MessageReceived,
    P2PConnection,
    PingReceived,
    PongReceived,
    State,
)
from ethp2p.p2p.disconnect import DisconnectReason
from ethp2p.p2p.messages import Capability
from ethp2p.rlpx.frame import FrameCodec
from ethp2p.rlpx.handshake import Initiator


def _count(name: str, version: int) -> int:
    return {"eth": 17, "snap": 8}.get(name, 0)


def _identity(caps: list[tuple[str, int]]) -> LocalIdentity:
    return LocalIdentity(
        PrivateKey.generate(), "test/v1", [Capability(n, v) for n, v in caps], 30303, message_count=_count
    )


def _pump(a: P2PConnection, b: P2PConnection) -> tuple[list, list]:
    """Exchange queued bytes until both sides are quiet; return the events of each."""
    ea: list = []
    eb: list = []
    for _ in range(20):
        out_a, out_b = a.data_to_send(), b.data_to_send()
        if not out_a and not out_b:
            break
        eb += b.receive_data(out_a)
        ea += a.receive_data(out_b)
    return ea, eb


def _connected(caps_a=(("eth", 68), ("eth", 69)), caps_b=(("eth", 69), ("eth", 70), ("snap", 1))):
    ida, idb = _identity(list(caps_a)), _identity(list(caps_b))
    a = P2PConnection(ida, remote_pubkey=idb.key.public_key.to_bytes())
    b = P2PConnection(idb)
    ea, eb = _pump(a, b)
    return a, b, ea, eb


def test_handshake_hello_and_negotiation() -> None:
    a, b, ea, eb = _connected()
    assert isinstance(ea[0], HandshakeComplete) and isinstance(eb[0], HandshakeComplete)
    assert eb[0].remote_pubkey == a.local.key.public_key.to_bytes()
    hello_a = next(e for e in ea if isinstance(e, HelloReceived))
    assert hello_a.hello.client_id == "test/v1"
    assert [(p.name, p.version, p.offset) for p in a.protocols] == [("eth", 69, 16)]
    assert [(p.name, p.version, p.offset) for p in b.protocols] == [("eth", 69, 16)]
    assert a.state is State.ACTIVE and b.state is State.ACTIVE
    assert a.snappy and b.snappy


def test_messages_ping_pong_and_disconnect() -> None:
    a, b, _, _ = _connected()
    payload = rlp.encode([1, [os.urandom(100) for _ in range(50)]])
    a.send_message("eth", 3, payload)
    a.send_ping()
    ea, eb = _pump(a, b)
    msgs = [e for e in eb if isinstance(e, MessageReceived)]
    assert msgs == [MessageReceived("eth", 69, 3, payload)]
    assert any(isinstance(e, PingReceived) for e in eb)
    assert any(isinstance(e, PongReceived) for e in ea)
    closing = b.disconnect(DisconnectReason.TOO_MANY_PEERS)
    assert not closing.by_peer
    ea, _ = _pump(a, b)
    closed = [e for e in ea if isinstance(e, ConnectionClosed)]
    assert closed and closed[0].by_peer and closed[0].reason == DisconnectReason.TOO_MANY_PEERS
    assert a.state is State.CLOSED


def test_no_shared_capability_is_useless_peer() -> None:
    _, _, ea, eb = _connected(caps_a=(("eth", 68),), caps_b=(("snap", 1),))
    closed = [e for e in ea + eb if isinstance(e, ConnectionClosed)]
    assert closed
    assert all(e.reason == DisconnectReason.USELESS_PEER for e in closed)


def test_garbage_after_handshake_closes_with_breach_of_protocol() -> None:
    a, b, _, _ = _connected()
    events = b.receive_data(os.urandom(64))
    assert len(events) == 1 and isinstance(events[0], ConnectionClosed)
    assert events[0].reason == DisconnectReason.BREACH_OF_PROTOCOL and "MAC" in (events[0].error or "")
    # Nothing more is accepted.
    assert b.receive_data(os.urandom(64)) == []


def test_message_for_unnegotiated_protocol_is_a_breach() -> None:
    a, b, _, _ = _connected()
    # Forge a frame with an id beyond eth's space via the codec directly.
    a._send_frame(16 + 40, b"\xc0", compressed=True)  # noqa: SLF001 - test reaches into the frame layer
    _, eb = _pump(a, b)
    closed = [e for e in eb if isinstance(e, ConnectionClosed)]
    assert closed and closed[0].reason == DisconnectReason.BREACH_OF_PROTOCOL


def test_snappy_bomb_is_refused() -> None:
    a, b, _, _ = _connected()
    # A snappy block claiming 64 MiB.
    a._send_frame(16 + 3, b"\x80\x80\x80\x20" + b"\x00" * 10, compressed=False)  # noqa: SLF001
    _, eb = _pump(a, b)
    closed = [e for e in eb if isinstance(e, ConnectionClosed)]
    assert closed and "cap" in (closed[0].error or "")


def test_a_first_frame_larger_than_hello_may_be_is_refused_from_its_header() -> None:
    """Before Hello, a frame announcing more than a Hello can be (MAX_HANDSHAKE_FRAME_SIZE) ends the
    connection as soon as its header arrives: its body is never buffered. After Hello, frames up to
    the general cap pass."""
    ida, idb = _identity([("eth", 69)]), _identity([("eth", 69)])
    init = Initiator(ida.key, idb.key.public_key)
    b = P2PConnection(idb)
    b.receive_data(init.auth_message())
    secrets = init.feed(b.data_to_send())  # the ack (and b's Hello, left unread)
    assert secrets is not None
    big = FrameCodec(secrets).encode_message(0x10, bytes(MAX_HANDSHAKE_FRAME_SIZE))  # our first frame
    events = b.receive_data(big[:32])
    assert len(events) == 1 and isinstance(events[0], ConnectionClosed)
    assert events[0].reason == DisconnectReason.BREACH_OF_PROTOCOL and "first frame" in (events[0].error or "")
    # A session past Hello and its first subprotocol message (eth's Status) takes a frame of that size.
    a, b, _, _ = _connected()
    a.send_message("eth", 0, b"status")
    a.send_message("eth", 3, os.urandom(MAX_HANDSHAKE_FRAME_SIZE * 2))
    _, eb = _pump(a, b)
    assert [len(e.payload) for e in eb if isinstance(e, MessageReceived)] == [6, MAX_HANDSHAKE_FRAME_SIZE * 2]


def test_a_large_frame_before_the_first_subprotocol_message_is_refused_from_its_header() -> None:
    """Past Hello, until the peer's first subprotocol message (eth's Status) only small messages can
    come: a frame announcing more than MAX_HANDSHAKE_FRAME_SIZE ends the connection as soon as its
    header arrives, so a peer that has not said what chain it is on cannot make us buffer 16 MiB.
    Ping, Pong and Disconnect in between do not end the handshake."""
    a, b, _, _ = _connected()
    a.send_ping()
    _pump(a, b)
    assert b._codec is not None and b._codec.in_handshake  # noqa: SLF001
    a.send_message("eth", 3, os.urandom(MAX_HANDSHAKE_FRAME_SIZE * 2))
    events = b.receive_data(a.data_to_send()[:32])
    closed = [e for e in events if isinstance(e, ConnectionClosed)]
    assert closed and closed[0].reason == DisconnectReason.BREACH_OF_PROTOCOL
    assert "handshake frame of" in (closed[0].error or "") and f"{MAX_HANDSHAKE_FRAME_SIZE}-byte limit" in (
        closed[0].error or ""
    )
    # The first subprotocol message itself is bounded too.
    a, b, _, _ = _connected()
    a.send_message("eth", 0, os.urandom(MAX_HANDSHAKE_FRAME_SIZE * 2))
    events = b.receive_data(a.data_to_send()[:32])
    assert any(isinstance(e, ConnectionClosed) for e in events)


def test_hello_with_wrong_node_id_is_unexpected_identity() -> None:
    fake_id = PrivateKey.generate().public_key.to_bytes()

    class Liar(P2PConnection):
        """A peer whose Hello names a node id other than its RLPx key."""

        def _make_hello(self):
            return dataclasses.replace(super()._make_hello(), node_id=fake_id)

    ida, idb = _identity([("eth", 69)]), _identity([("eth", 69)])
    a = P2PConnection(ida, remote_pubkey=idb.key.public_key.to_bytes())
    b = Liar(idb)
    ea, _ = _pump(a, b)
    closed = [e for e in ea if isinstance(e, ConnectionClosed)]
    assert closed and closed[0].reason == DisconnectReason.UNEXPECTED_IDENTITY
