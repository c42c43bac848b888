"""p2p base-protocol messages and their codecs (sans-IO).

Hello is decoded leniently as EIP-8 asks: extra list elements are ignored and
the version number is not checked here. Disconnect accepts both ``[reason]``
and a bare ``reason`` (and an empty payload), since clients send all three.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import rlp
from .disconnect import DisconnectReason

#: Message codes of the base protocol (before any capability offset).
HELLO = 0x00
DISCONNECT = 0x01
PING = 0x02
PONG = 0x03
#: Capability message ids start here.
BASE_PROTOCOL_LENGTH = 0x10

#: The base protocol version ethp2p speaks (5: snappy after Hello).
P2P_VERSION = 5
#: Bounds on a Hello from the network.
MAX_CLIENT_ID = 1024
MAX_CAPABILITIES = 64
MAX_CAP_NAME = 32
MAX_HELLO_SIZE = 64 * 1024


class P2PMessageError(ValueError):
    """A base-protocol message is malformed."""


@dataclass(frozen=True, slots=True)
class Capability:
    """A (name, version) pair from a Hello."""

    name: str
    version: int

    def __str__(self) -> str:
        return f"{self.name}/{self.version}"


@dataclass(frozen=True, slots=True)
class Hello:
    """The Hello message (0x00)."""

    version: int
    client_id: str
    capabilities: tuple[Capability, ...]
    listen_port: int
    node_id: bytes


@dataclass(frozen=True, slots=True)
class Disconnect:
    """The Disconnect message (0x01); ``reason`` is None when the peer gave none."""

    reason: DisconnectReason | int | None


def encode_hello(hello: Hello) -> bytes:
    """RLP payload of a Hello."""
    caps = [[c.name.encode(), c.version] for c in hello.capabilities]
    return rlp.encode([hello.version, hello.client_id.encode(), caps, hello.listen_port, hello.node_id])


def _int(item: object, what: str, max_bytes: int = 8) -> int:
    if not isinstance(item, bytes):
        raise P2PMessageError(f"Hello {what} must be an integer, got a list")
    try:
        return rlp.decode_int(item, max_bytes=max_bytes)
    except rlp.RLPDecodeError as e:
        raise P2PMessageError(f"Hello {what}: {e}") from None


def decode_hello(payload: bytes | memoryview) -> Hello:
    """Decode a Hello payload, ignoring extra list elements (EIP-8)."""
    if len(payload) > MAX_HELLO_SIZE:
        raise P2PMessageError(f"Hello of {len(payload)} bytes exceeds {MAX_HELLO_SIZE}")
    try:
        items = rlp.decode(payload, max_depth=4)
    except rlp.RLPDecodeError as e:
        raise P2PMessageError(f"Hello is not valid RLP: {e}") from None
    if not isinstance(items, list) or len(items) < 5:
        raise P2PMessageError("Hello must be a list of at least 5 elements")
    version = _int(items[0], "protocolVersion")
    client = items[1]
    if not isinstance(client, bytes) or len(client) > MAX_CLIENT_ID:
        raise P2PMessageError("Hello clientId must be a string of at most 1024 bytes")
    raw_caps = items[2]
    if not isinstance(raw_caps, list) or len(raw_caps) > MAX_CAPABILITIES:
        raise P2PMessageError(f"Hello capabilities must be a list of at most {MAX_CAPABILITIES}")
    caps: list[Capability] = []
    for cap in raw_caps:
        if not isinstance(cap, list) or len(cap) < 2 or not isinstance(cap[0], bytes):
            raise P2PMessageError("Hello capability must be [name, version]")
        if not cap[0] or len(cap[0]) > MAX_CAP_NAME:
            raise P2PMessageError("Hello capability name must be 1-32 bytes")
        try:
            name = cap[0].decode("ascii")
        except UnicodeDecodeError:
            raise P2PMessageError("Hello capability name is not ASCII") from None
        caps.append(Capability(name, _int(cap[1], "capability version", 4)))
    port = _int(items[3], "listenPort", 2)
    node_id = items[4]
    if not isinstance(node_id, bytes) or len(node_id) != 64:
        raise P2PMessageError("Hello nodeId must be 64 bytes")
    return Hello(version, client.decode("utf-8", "replace"), tuple(caps), port, node_id)


def encode_disconnect(reason: DisconnectReason | int) -> bytes:
    """RLP payload of a Disconnect: ``[reason]``."""
    return rlp.encode([int(reason)])


def decode_disconnect(payload: bytes | memoryview) -> Disconnect:
    """Decode a Disconnect payload in any of the forms seen on the wire."""
    data = bytes(payload)
    if not data:
        return Disconnect(None)
    try:
        item = rlp.decode(data, max_depth=2)
    except rlp.RLPDecodeError as e:
        raise P2PMessageError(f"Disconnect is not valid RLP: {e}") from None
    if isinstance(item, list):
        if not item:
            return Disconnect(None)
        item = item[0]
        if isinstance(item, list):
            raise P2PMessageError("Disconnect reason must be an integer")
    if len(item) > 1:
        raise P2PMessageError("Disconnect reason must be a single byte")
    return Disconnect(DisconnectReason.parse(item[0] if item else 0))


#: Ping and Pong carry an empty list.
PING_PAYLOAD = b"\xc0"
PONG_PAYLOAD = b"\xc0"
