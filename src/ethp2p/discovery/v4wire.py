"""discv4 packets: ``hash(32) || signature(65) || packet-type(1) || rlp(packet-data)``.

``hash = keccak256(signature || type || data)``; the signature (recoverable) is over
``keccak256(type || data)`` and identifies the sender. Decoding follows EIP-8:
extra list elements and trailing bytes after the list are ignored; unknown packet
types are reported as such so the caller can drop them.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from .. import rlp
from ..crypto.keccak import keccak
from ..crypto.keys import InvalidKey, PrivateKey, PublicKey, recover

MAX_PACKET_SIZE = 1280
HEADER_SIZE = 32 + 65 + 1

PING, PONG, FINDNODE, NEIGHBORS, ENR_REQUEST, ENR_RESPONSE = 1, 2, 3, 4, 5, 6


class PacketError(ValueError):
    """A datagram is not a valid discv4 packet (bad hash, signature, RLP or field)."""


class UnknownPacket(PacketError):
    """A well-signed packet of a type we don't know (EIP-8: drop it quietly)."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    ip: str
    udp: int
    tcp: int

    def encode(self) -> list[object]:
        return [ipaddress.ip_address(self.ip).packed, self.udp, self.tcp]


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """A node in a Neighbors packet (untrusted until we bond with it)."""

    ip: str
    udp: int
    tcp: int
    pubkey: bytes


@dataclass(frozen=True, slots=True)
class Ping:
    from_: Endpoint
    to: Endpoint
    expiration: int
    enr_seq: int | None = None
    version: int = 4


@dataclass(frozen=True, slots=True)
class Pong:
    to: Endpoint
    ping_hash: bytes
    expiration: int
    enr_seq: int | None = None


@dataclass(frozen=True, slots=True)
class FindNode:
    target: bytes
    expiration: int


@dataclass(frozen=True, slots=True)
class Neighbors:
    nodes: tuple[NodeRecord, ...]
    expiration: int


@dataclass(frozen=True, slots=True)
class ENRRequest:
    expiration: int


@dataclass(frozen=True, slots=True)
class ENRResponse:
    request_hash: bytes
    record: bytes  # raw ENR RLP; verified by the caller


Packet = Ping | Pong | FindNode | Neighbors | ENRRequest | ENRResponse


@dataclass(frozen=True)
class Decoded:
    packet: Packet
    sender: PublicKey
    hash: bytes
    extra: tuple[object, ...] = field(default=())


# ---- encoding ---------------------------------------------------------------------------------


def _data(p: Packet) -> tuple[int, list[object]]:
    if isinstance(p, Ping):
        items: list[object] = [p.version, p.from_.encode(), p.to.encode(), p.expiration]
        if p.enr_seq is not None:
            items.append(p.enr_seq)
        return PING, items
    if isinstance(p, Pong):
        items = [p.to.encode(), p.ping_hash, p.expiration]
        if p.enr_seq is not None:
            items.append(p.enr_seq)
        return PONG, items
    if isinstance(p, FindNode):
        return FINDNODE, [p.target, p.expiration]
    if isinstance(p, Neighbors):
        nodes = [[ipaddress.ip_address(n.ip).packed, n.udp, n.tcp, n.pubkey] for n in p.nodes]
        return NEIGHBORS, [nodes, p.expiration]
    if isinstance(p, ENRRequest):
        return ENR_REQUEST, [p.expiration]
    if isinstance(p, ENRResponse):
        return ENR_RESPONSE, [p.request_hash, rlp.RawRLP(p.record)]
    raise TypeError(f"not a discv4 packet: {p!r}")


def encode_packet(key: PrivateKey, packet: Packet) -> tuple[bytes, bytes]:
    """``(datagram, hash)``: the signed packet and its hash (Pong and ENRResponse quote it)."""
    ptype, items = _data(packet)
    body = bytes((ptype,)) + rlp.encode(items)
    sig = key.sign(keccak(body))
    h = keccak(sig + body)
    out = h + sig + body
    if len(out) > MAX_PACKET_SIZE:
        raise ValueError(f"packet of {len(out)} bytes exceeds {MAX_PACKET_SIZE}")
    return out, h


#: Nodes per Neighbors packet (geth's number: 12 always fit in 1,280 bytes, even with IPv6).
#: A packet with fewer is the last of its reply.
NODES_PER_PACKET = 12


def neighbors_packets(key: PrivateKey, nodes: list[NodeRecord], expiration: int) -> list[bytes]:
    """Neighbors packets carrying ``nodes``: at most 12 per packet, each within 1,280 bytes."""
    out: list[bytes] = []
    batch: list[NodeRecord] = []
    for n in nodes:
        if len(batch) == NODES_PER_PACKET:
            out.append(encode_packet(key, Neighbors(tuple(batch), expiration))[0])
            batch = []
        trial = batch + [n]
        try:
            encode_packet(key, Neighbors(tuple(trial), expiration))
        except ValueError:
            out.append(encode_packet(key, Neighbors(tuple(batch), expiration))[0])
            batch = [n]
        else:
            batch = trial
    if batch or not out:
        out.append(encode_packet(key, Neighbors(tuple(batch), expiration))[0])
    return out


# ---- decoding ---------------------------------------------------------------------------------


def _int(item: object, what: str, max_bytes: int = 8) -> int:
    if not isinstance(item, bytes):
        raise PacketError(f"{what} must be an integer")
    if len(item) > max_bytes:
        raise PacketError(f"{what} is too large")
    return int.from_bytes(item, "big")  # EIP-8 leniency: leading zeros tolerated


def _ip(item: object) -> str:
    if not isinstance(item, bytes) or len(item) not in (4, 16):
        raise PacketError("endpoint ip must be 4 or 16 bytes")
    return str(ipaddress.ip_address(item))


def _endpoint(item: object) -> Endpoint:
    if not isinstance(item, list) or len(item) < 3:
        raise PacketError("endpoint must be [ip, udp, tcp]")
    return Endpoint(_ip(item[0]), _int(item[1], "udp port", 2), _int(item[2], "tcp port", 2))


def _list(items: object, n: int, what: str) -> list[object]:
    if not isinstance(items, list) or len(items) < n:
        raise PacketError(f"{what} needs at least {n} fields")
    return items


def decode_packet(data: bytes) -> Decoded:
    """Check hash and signature, recover the sender, and parse the packet data."""
    if len(data) > MAX_PACKET_SIZE:
        raise PacketError(f"packet of {len(data)} bytes exceeds {MAX_PACKET_SIZE}")
    if len(data) < HEADER_SIZE + 1:
        raise PacketError("packet too short")
    h, sig, body = data[:32], data[32:97], data[97:]
    if keccak(data[32:]) != h:
        raise PacketError("bad packet hash")
    try:
        sender = recover(sig, keccak(body))
    except InvalidKey as e:
        raise PacketError(f"bad signature: {e}") from None
    ptype = body[0]
    try:
        # EIP-8: anything after the first RLP item is ignored.
        items = rlp.decode(body[1:], allow_trailing=True, max_depth=4)
    except rlp.RLPError as e:
        raise PacketError(f"bad packet data: {e}") from None
    if ptype == PING:
        f = _list(items, 4, "ping")
        enr_seq = _int(f[4], "enr-seq") if len(f) > 4 and isinstance(f[4], bytes) else None
        pkt: Packet = Ping(
            _endpoint(f[1]),
            _endpoint(f[2]),
            _int(f[3], "expiration"),
            enr_seq,
            _int(f[0], "version", 8) if isinstance(f[0], bytes) else 0,
        )
        extra = tuple(f[5:])
    elif ptype == PONG:
        f = _list(items, 3, "pong")
        if not isinstance(f[1], bytes) or len(f[1]) != 32:
            raise PacketError("pong ping-hash must be 32 bytes")
        enr_seq = _int(f[3], "enr-seq") if len(f) > 3 and isinstance(f[3], bytes) else None
        pkt = Pong(_endpoint(f[0]), f[1], _int(f[2], "expiration"), enr_seq)
        extra = tuple(f[4:])
    elif ptype == FINDNODE:
        f = _list(items, 2, "findnode")
        if not isinstance(f[0], bytes) or len(f[0]) != 64:
            raise PacketError("findnode target must be 64 bytes")
        pkt = FindNode(f[0], _int(f[1], "expiration"))
        extra = tuple(f[2:])
    elif ptype == NEIGHBORS:
        f = _list(items, 2, "neighbors")
        if not isinstance(f[0], list):
            raise PacketError("neighbors nodes must be a list")
        nodes = []
        for n in f[0]:
            nf = _list(n, 4, "neighbors node")
            if not isinstance(nf[3], bytes) or len(nf[3]) != 64:
                raise PacketError("node id must be 64 bytes")
            nodes.append(NodeRecord(_ip(nf[0]), _int(nf[1], "udp port", 2), _int(nf[2], "tcp port", 2), nf[3]))
        pkt = Neighbors(tuple(nodes), _int(f[1], "expiration"))
        extra = tuple(f[2:])
    elif ptype == ENR_REQUEST:
        f = _list(items, 1, "enrrequest")
        pkt = ENRRequest(_int(f[0], "expiration"))
        extra = tuple(f[1:])
    elif ptype == ENR_RESPONSE:
        f = _list(items, 2, "enrresponse")
        if not isinstance(f[0], bytes) or len(f[0]) != 32:
            raise PacketError("enrresponse request-hash must be 32 bytes")
        pkt = ENRResponse(f[0], rlp.encode(f[1]))
        extra = tuple(f[2:])
    else:
        raise UnknownPacket(f"unknown packet type {ptype}")
    return Decoded(pkt, sender, h, extra)
