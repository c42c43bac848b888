"""A sans-IO devp2p connection: RLPx handshake, framing, Hello and the base protocol.

Feed it bytes from the socket with :meth:`P2PConnection.receive_data`; it returns
events. Whatever it wants to send accumulates in :meth:`P2PConnection.data_to_send`.
It never touches sockets, clocks or tasks: keep-alive deadlines and timeouts belong to the
layers above, and the driver (``ethp2p.transport.stream``) reports a transport that ended
with :meth:`P2PConnection.connection_lost` instead of writing the state itself.

After the first error from the peer the connection queues a Disconnect with a
reason, emits :class:`ConnectionClosed` and accepts no more input.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..crypto.keys import PrivateKey, PublicKey
from ..rlpx.errors import RLPxError
from ..rlpx.frame import FrameCodec
from ..rlpx.handshake import Initiator, Recipient
from ..rlpx.secrets import Secrets
from ..rlpx.snappy import compress, decompress
from .capabilities import NegotiatedProtocol, negotiate
from .disconnect import DisconnectReason, reason_name
from .messages import (
    BASE_PROTOCOL_LENGTH,
    DISCONNECT,
    HELLO,
    MAX_HELLO_SIZE,
    P2P_VERSION,
    PING,
    PING_PAYLOAD,
    PONG,
    PONG_PAYLOAD,
    Capability,
    Hello,
    P2PMessageError,
    decode_disconnect,
    decode_hello,
    encode_disconnect,
    encode_hello,
)

#: Hard cap on any decoded message (payload after decompression).
MAX_MESSAGE_SIZE = 16 * 1024 * 1024
#: Cap on each frame of a connection's handshake, refused from its header alone if larger: the
#: first frame can only be Hello (never compressed; its 1-byte message id and at most
#: MAX_HELLO_SIZE bytes) or a Disconnect, and until the peer's first subprotocol message (eth's
#: Status, a few hundred bytes) only Ping, Pong and Disconnect can come. So a peer that has not yet
#: said what chain it is on cannot make us buffer a 16 MiB frame.
MAX_HANDSHAKE_FRAME_SIZE = 1 + MAX_HELLO_SIZE


class State(enum.Enum):
    """Where the connection is in its life."""

    HANDSHAKE = "handshake"
    AWAIT_HELLO = "await-hello"
    ACTIVE = "active"
    CLOSED = "closed"


class P2PProtocolError(Exception):
    """The peer broke the base protocol; ``reason`` is what we tell it."""

    def __init__(self, message: str, reason: DisconnectReason = DisconnectReason.BREACH_OF_PROTOCOL) -> None:
        super().__init__(message)
        self.reason = reason


# ---- events ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HandshakeComplete:
    """RLPx authentication finished; ``remote_pubkey`` is the peer's proven identity."""

    remote_pubkey: bytes


@dataclass(frozen=True, slots=True)
class HelloReceived:
    """The peer's Hello arrived and capabilities were matched."""

    hello: Hello
    protocols: tuple[NegotiatedProtocol, ...]


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A capability message, with its code relative to the protocol's offset."""

    protocol: str
    version: int
    code: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class PingReceived:
    """The peer pinged; a Pong has already been queued."""


@dataclass(frozen=True, slots=True)
class PongReceived:
    """The peer answered our Ping."""


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The connection is over.

    ``by_peer`` tells whether the peer sent Disconnect (``reason`` is its reason)
    or we ended it (``reason`` is what we sent; ``error`` says why).
    """

    reason: DisconnectReason | int | None
    by_peer: bool
    error: str | None = None

    def describe(self) -> str:
        who = "peer disconnected" if self.by_peer else "we disconnected"
        text = f"{who}: {reason_name(self.reason)}"
        return f"{text} ({self.error})" if self.error else text


Event = HandshakeComplete | HelloReceived | MessageReceived | PingReceived | PongReceived | ConnectionClosed


@dataclass
class LocalIdentity:
    """What we say about ourselves in Hello."""

    key: PrivateKey
    client_id: str
    capabilities: Sequence[Capability]
    listen_port: int = 0
    #: ``message_count(name, version)``: how many message ids a capability uses.
    message_count: Callable[[str, int], int] = field(default=lambda name, version: 0)


class P2PConnection:
    """One devp2p connection's protocol state (either role), without IO."""

    def __init__(self, local: LocalIdentity, *, remote_pubkey: bytes | None = None) -> None:
        """Create an initiator (``remote_pubkey`` given: we dial) or a recipient (we accept)."""
        self.local = local
        self.state = State.HANDSHAKE
        self.initiator = remote_pubkey is not None
        self.remote_pubkey: bytes | None = remote_pubkey
        self.remote_hello: Hello | None = None
        self.protocols: tuple[NegotiatedProtocol, ...] = ()
        self.snappy = False
        self.bytes_in = 0
        self.bytes_out = 0
        self.close_event: ConnectionClosed | None = None
        self._out = bytearray()
        self._codec: FrameCodec | None = None
        self._handshake: Initiator | Recipient
        if self.initiator:
            assert remote_pubkey is not None
            self._handshake = Initiator(local.key, PublicKey.from_bytes(remote_pubkey))
            self._write(self._handshake.auth_message())
        else:
            self._handshake = Recipient(local.key)

    # ---- output -----------------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        """Bytes queued for the socket (and clear the queue)."""
        data = bytes(self._out)
        self._out.clear()
        return data

    def _write(self, data: bytes) -> None:
        self._out += data
        self.bytes_out += len(data)

    def _send_frame(self, code: int, payload: bytes, *, compressed: bool) -> None:
        assert self._codec is not None
        if compressed and self.snappy:
            payload = compress(payload)
        self._write(self._codec.encode_message(code, payload))

    def send_message(self, protocol: str, code: int, payload: bytes) -> None:
        """Queue a capability message (``code`` relative to the protocol's offset)."""
        if self.state is not State.ACTIVE:
            raise RuntimeError(f"cannot send {protocol} message in state {self.state.value}")
        for p in self.protocols:
            if p.name == protocol:
                if not 0 <= code < p.length:
                    raise ValueError(f"{protocol}/{p.version} has no message code {code}")
                self._send_frame(p.offset + code, payload, compressed=True)
                return
        raise ValueError(f"protocol {protocol} was not negotiated")

    def send_ping(self) -> None:
        """Queue a Ping (the driver measures the Pong's deadline)."""
        if self.state is State.ACTIVE:
            self._send_frame(PING, PING_PAYLOAD, compressed=True)

    def disconnect(self, reason: DisconnectReason, error: str | None = None) -> ConnectionClosed:
        """Queue a Disconnect (if framing is up) and close; returns the closing event."""
        if self.state is State.CLOSED:
            assert self.close_event is not None
            return self.close_event
        if self._codec is not None:
            try:
                self._send_frame(DISCONNECT, encode_disconnect(reason), compressed=self.state is State.ACTIVE)
            except RLPxError:
                pass
        self.state = State.CLOSED
        self.close_event = ConnectionClosed(reason, by_peer=False, error=error)
        return self.close_event

    def connection_lost(self, error: str) -> ConnectionClosed:
        """The transport under the connection ended without a Disconnect; close and return the event.

        The event says the peer ended it (``by_peer``) with :attr:`DisconnectReason.TCP_ERROR` and
        ``error``; a connection already closed keeps (and returns) its first closing event.
        """
        if self.state is State.CLOSED:
            assert self.close_event is not None
            return self.close_event
        self.state = State.CLOSED
        self.close_event = ConnectionClosed(DisconnectReason.TCP_ERROR, by_peer=True, error=error)
        return self.close_event

    @property
    def active(self) -> bool:
        """Whether Hello is done, a capability is shared, and the connection is not closed."""
        return self.state is State.ACTIVE

    @property
    def closed(self) -> bool:
        """Whether the connection is over (:attr:`close_event` says how)."""
        return self.state is State.CLOSED

    # ---- input ------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[Event]:
        """Process bytes from the peer; return the events they produced."""
        if self.state is State.CLOSED or not data:
            return []
        self.bytes_in += len(data)
        events: list[Event] = []
        try:
            if self.state is State.HANDSHAKE:
                data = self._receive_handshake(data, events)
                if self.state is State.HANDSHAKE:
                    return events
            assert self._codec is not None
            for code, payload in self._codec.feed(data):
                self._dispatch(code, payload, events)
                if self.closed:  # (a property: mypy would narrow away a direct state check)
                    break
        except RLPxError as e:
            events.append(self.disconnect(DisconnectReason.BREACH_OF_PROTOCOL, f"{type(e).__name__}: {e}"))
        except P2PProtocolError as e:
            events.append(self.disconnect(e.reason, str(e)))
        return events

    def _receive_handshake(self, data: bytes, events: list[Event]) -> bytes:
        hs = self._handshake
        secrets: Secrets | None
        if isinstance(hs, Initiator):
            secrets = hs.feed(data)
        else:
            result = hs.feed(data)
            if result is None:
                secrets = None
            else:
                ack, secrets = result
                self._write(ack)
        if secrets is None:
            return b""
        self.remote_pubkey = secrets.remote_pubkey.to_bytes()
        self._codec = FrameCodec(
            secrets, max_first_frame_size=MAX_HANDSHAKE_FRAME_SIZE, handshake_ends_at=BASE_PROTOCOL_LENGTH
        )
        self.state = State.AWAIT_HELLO
        events.append(HandshakeComplete(self.remote_pubkey))
        self._send_frame(HELLO, encode_hello(self._make_hello()), compressed=False)
        return bytes(hs.remainder)

    def _make_hello(self) -> Hello:
        return Hello(
            P2P_VERSION,
            self.local.client_id,
            tuple(self.local.capabilities),
            self.local.listen_port,
            self.local.key.public_key.to_bytes(),
        )

    def _payload(self, code: int, payload: bytes | memoryview) -> bytes:
        if not self.snappy:
            if len(payload) > MAX_MESSAGE_SIZE:
                raise P2PProtocolError(f"message of {len(payload)} bytes exceeds {MAX_MESSAGE_SIZE}")
            return bytes(payload)
        try:
            return decompress(payload, MAX_MESSAGE_SIZE)  # cramjam reads any buffer
        except RLPxError:
            # Some clients send Disconnect uncompressed even after snappy is on.
            if code == DISCONNECT and len(payload) <= 8:
                return bytes(payload)
            raise

    def _dispatch(self, code: int, payload: bytes | memoryview, events: list[Event]) -> None:
        if self.state is State.AWAIT_HELLO:
            if code == DISCONNECT:
                self._closed_by_peer(payload, events)
                return
            if code != HELLO:
                raise P2PProtocolError(f"expected Hello, got message 0x{code:02x}")
            self._receive_hello(payload, events)
            return
        if code >= BASE_PROTOCOL_LENGTH:
            body = self._payload(code, payload)
            for p in self.protocols:
                if p.owns(code):
                    events.append(MessageReceived(p.name, p.version, code - p.offset, body))
                    return
            raise P2PProtocolError(f"message id 0x{code:02x} belongs to no negotiated protocol")
        if code == PING:
            self._send_frame(PONG, PONG_PAYLOAD, compressed=True)
            events.append(PingReceived())
        elif code == PONG:
            events.append(PongReceived())
        elif code == DISCONNECT:
            self._closed_by_peer(self._payload(code, payload), events)
        elif code == HELLO:
            raise P2PProtocolError("second Hello")
        else:
            raise P2PProtocolError(f"unknown base protocol message 0x{code:02x}")

    def _closed_by_peer(self, payload: bytes | memoryview, events: list[Event]) -> None:
        try:
            reason = decode_disconnect(payload).reason
        except P2PMessageError:
            reason = None
        self.state = State.CLOSED
        self.close_event = ConnectionClosed(reason, by_peer=True)
        events.append(self.close_event)

    def _receive_hello(self, payload: bytes | memoryview, events: list[Event]) -> None:
        try:
            hello = decode_hello(payload)
        except P2PMessageError as e:
            raise P2PProtocolError(str(e)) from None
        if hello.node_id != self.remote_pubkey:
            raise P2PProtocolError("Hello node id differs from the RLPx identity", DisconnectReason.UNEXPECTED_IDENTITY)
        self.remote_hello = hello
        self.protocols = tuple(negotiate(self.local.capabilities, hello.capabilities, self.local.message_count))
        self.snappy = hello.version >= 5
        self.state = State.ACTIVE
        events.append(HelloReceived(hello, self.protocols))
        if not self.protocols:
            events.append(self.disconnect(DisconnectReason.USELESS_PEER, "no shared capability"))
