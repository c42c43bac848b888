"""The discv4 protocol core, without IO: datagrams in, datagrams and events out.

The caller (``ethp2p.discovery.service``) owns the socket and the clock; it passes
``now`` (UNIX seconds) to every call. The core answers pings, answers FindNode and
ENRRequest only from nodes that proved their endpoint (they answered our ping in the
last 24 hours), matches Pongs, Neighbors and ENRResponses to requests it sent, drops
expired, unsolicited and unknown packets, and rate-limits each source address. It also
notes the address each Pong says our ping came from (one statement per reporting IP, bounded),
from which :meth:`DiscoveryV4.predicted_ip` tells our address as peers see it.

Every table a remote can grow is bounded by construction: requests awaiting a reply (in all,
per node and per source IP), bonds, rate-limit buckets and IP statements each have a cap; the
oldest entry goes first and each drop is counted in ``stats``. The driver calls
:meth:`DiscoveryV4.expire` on a timer so overdue requests and stale bonds are freed.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from ..crypto.keccak import keccak
from ..crypto.keys import PrivateKey
from . import v4wire as w
from .enr import ENR, ENRError
from .table import Node, Table

#: How long a packet we send stays valid.
EXPIRATION = 20
#: How long a completed endpoint proof (a Pong from the node) counts.
BOND_EXPIRATION = 24 * 3600
#: How long we wait for replies (Pong, Neighbors, ENRResponse).
REPLY_TIMEOUT = 0.5
#: Per-source-IP rate limit: packets per second, and the burst allowed.
RATE = 200.0
BURST = 400.0
#: Most nodes we answer a FindNode with (the spec's bucket size).
MAX_NEIGHBORS = 16
#: Our address as peers report it in Pongs: how many distinct reporting IPs must agree (and be
#: most of those heard), within how many seconds, and how many reporters are remembered at most.
MIN_IP_STATEMENTS = 3
IP_STATEMENT_WINDOW = 300.0
MAX_IP_STATEMENTS = 256
#: Most requests (Pings, FindNodes, ENRRequests) awaiting a reply, each kind; the oldest is dropped.
MAX_PENDING = 4096
#: Most of our Pings awaiting a Pong from one source IP (our ping-backs to unbonded nodes stop there).
MAX_PENDING_PER_IP = 16
#: Most bonds (endpoint proofs) kept; the oldest is dropped, and :meth:`DiscoveryV4.expire` drops stale ones.
MAX_BONDS = 16384
#: Most source IPs with a rate-limit bucket; the least recently heard is dropped.
MAX_RATE_SOURCES = 10_000


Addr = tuple[str, int]


@dataclass(frozen=True)
class Send:
    """A datagram to send."""

    data: bytes
    addr: Addr


@dataclass(frozen=True)
class PongReceived:
    node: Node
    ping_hash: bytes
    enr_seq: int | None


@dataclass(frozen=True)
class NeighborsReceived:
    sender_id: bytes
    nodes: tuple[w.NodeRecord, ...]


@dataclass(frozen=True)
class ENRReceived:
    sender_id: bytes
    request_hash: bytes
    record: ENR


@dataclass(frozen=True)
class Dropped:
    addr: Addr
    reason: str


Event = Send | PongReceived | NeighborsReceived | ENRReceived | Dropped


def _decrement(counts: dict[Any, int], key: object) -> None:
    left = counts[key] - 1
    if left:
        counts[key] = left
    else:
        del counts[key]


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class DiscoveryV4:
    """One node's discv4 state: key, endpoint, ENR, table, pending requests and bonds."""

    key: PrivateKey
    endpoint: w.Endpoint
    enr: ENR | None = None
    table: Table = field(init=False)
    #: node id -> (time of the last Pong from it, its ip)
    bonds: dict[bytes, tuple[float, str]] = field(default_factory=dict)
    #: ping hash -> (node id, (ip, udp), tcp, pubkey, deadline); at most MAX_PENDING
    pending_pings: dict[bytes, tuple[bytes, Addr, int, bytes, float]] = field(default_factory=dict)
    #: node id -> deadline of our FindNode to it
    pending_findnode: dict[bytes, float] = field(default_factory=dict)
    #: ENRRequest hash -> (node id, deadline)
    pending_enr: dict[bytes, tuple[bytes, float]] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=dict)
    #: reporter ip -> (our ip as it saw it in its Pong, when)
    ip_statements: dict[str, tuple[str, float]] = field(default_factory=dict)
    _rates: dict[str, _Bucket] = field(default_factory=dict)
    #: Pings awaiting a Pong, by source IP and by node id (counts kept with ``pending_pings``).
    _pings_per_ip: dict[str, int] = field(default_factory=dict)
    _pings_per_node: dict[bytes, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.pubkey = self.key.public_key.to_bytes()
        self.node_id = keccak(self.pubkey)
        self.table = Table(self.node_id)

    def _count(self, what: str) -> None:
        self.stats[what] = self.stats.get(what, 0) + 1

    def pending(self) -> int:
        """Requests awaiting a reply (Pings, FindNodes and ENRRequests)."""
        return len(self.pending_pings) + len(self.pending_findnode) + len(self.pending_enr)

    def _add_ping(self, h: bytes, entry: tuple[bytes, Addr, int, bytes, float]) -> None:
        self._forget_ping(h)
        while len(self.pending_pings) >= MAX_PENDING:
            self._forget_ping(next(iter(self.pending_pings)))  # the oldest
            self._count("pending-dropped")
        self.pending_pings[h] = entry
        ip, nid = entry[1][0], entry[0]
        self._pings_per_ip[ip] = self._pings_per_ip.get(ip, 0) + 1
        self._pings_per_node[nid] = self._pings_per_node.get(nid, 0) + 1

    def _forget_ping(self, h: bytes) -> tuple[bytes, Addr, int, bytes, float] | None:
        entry = self.pending_pings.pop(h, None)
        if entry is not None:
            _decrement(self._pings_per_ip, entry[1][0])
            _decrement(self._pings_per_node, entry[0])
        return entry

    @staticmethod
    def _cap(table: dict[Any, Any], limit: int) -> int:
        """Drop the oldest entries of ``table`` until a new one fits under ``limit``; how many went."""
        n = 0
        while len(table) >= limit:
            del table[next(iter(table))]
            n += 1
        return n

    # ---- outgoing -----------------------------------------------------------------------------

    def ping(self, pubkey: bytes, addr: Addr, tcp: int, now: float) -> tuple[Send, bytes]:
        """A Ping to a node; returns the datagram and the hash its Pong must quote."""
        to = w.Endpoint(addr[0], addr[1], tcp)
        pkt = w.Ping(self.endpoint, to, int(now) + EXPIRATION, self.enr.seq if self.enr else None)
        data, h = w.encode_packet(self.key, pkt)
        self._add_ping(h, (keccak(pubkey), addr, tcp, pubkey, now + REPLY_TIMEOUT * 2))
        return Send(data, addr), h

    def findnode(self, node_id: bytes, addr: Addr, target: bytes, now: float) -> Send:
        data, _ = w.encode_packet(self.key, w.FindNode(target, int(now) + EXPIRATION))
        self.pending_findnode.pop(node_id, None)
        if self._cap(self.pending_findnode, MAX_PENDING):
            self._count("pending-dropped")
        self.pending_findnode[node_id] = now + REPLY_TIMEOUT * 2
        return Send(data, addr)

    def request_enr(self, node_id: bytes, addr: Addr, now: float) -> tuple[Send, bytes]:
        data, h = w.encode_packet(self.key, w.ENRRequest(int(now) + EXPIRATION))
        self.pending_enr.pop(h, None)
        if self._cap(self.pending_enr, MAX_PENDING):
            self._count("pending-dropped")
        self.pending_enr[h] = (node_id, now + REPLY_TIMEOUT * 2)
        return Send(data, addr), h

    def predicted_ip(self, now: float) -> str | None:
        """Our IP as peers see it: the one most recent Pongs from at least MIN_IP_STATEMENTS
        distinct IPs agree on (more than half of those heard in the window), else None."""
        votes: dict[str, int] = {}
        for ip, at in self.ip_statements.values():
            if now - at <= IP_STATEMENT_WINDOW:
                votes[ip] = votes.get(ip, 0) + 1
        if not votes:
            return None
        best = max(votes, key=lambda ip: votes[ip])
        n = votes[best]
        return best if n >= MIN_IP_STATEMENTS and 2 * n > sum(votes.values()) else None

    def _ip_statement(self, reporter: str, reported: str, now: float) -> None:
        """Note the address a Pong says it came to; loopback only from loopback, never unspecified."""
        try:
            ip, src = ipaddress.ip_address(reported), ipaddress.ip_address(reporter)
        except ValueError:
            return
        if ip.version != 4 or ip.is_unspecified or ip.is_multicast or (ip.is_loopback and not src.is_loopback):
            return
        self.ip_statements.pop(reporter, None)
        if len(self.ip_statements) >= MAX_IP_STATEMENTS:
            del self.ip_statements[next(iter(self.ip_statements))]  # the oldest
        self.ip_statements[reporter] = (reported, now)

    def is_bonded(self, node_id: bytes, ip: str, now: float) -> bool:
        b = self.bonds.get(node_id)
        return b is not None and b[1] == ip and now - b[0] < BOND_EXPIRATION

    def expire(self, now: float) -> int:
        """Forget requests whose replies are overdue, and bonds older than BOND_EXPIRATION;
        returns how many requests were forgotten (the driver calls this on a timer)."""
        before = self.pending()
        for h in [h for h, v in self.pending_pings.items() if v[4] <= now]:
            self._forget_ping(h)
        self.pending_findnode = {k: v for k, v in self.pending_findnode.items() if v > now}
        self.pending_enr = {h: v for h, v in self.pending_enr.items() if v[1] > now}
        self.bonds = {k: v for k, v in self.bonds.items() if now - v[0] < BOND_EXPIRATION}
        gone = before - self.pending()
        if gone:
            self.stats["expired-requests"] = self.stats.get("expired-requests", 0) + gone
        return gone

    # ---- incoming -----------------------------------------------------------------------------

    def _allow(self, ip: str, now: float) -> bool:
        b = self._rates.pop(ip, None)
        if b is None:
            if self._cap(self._rates, MAX_RATE_SOURCES):
                self._count("rate-sources-dropped")
            b = _Bucket(BURST, now)
        self._rates[ip] = b  # last: the least recently heard source is first
        b.tokens = min(BURST, b.tokens + (now - b.at) * RATE)
        b.at = now
        if b.tokens < 1:
            return False
        b.tokens -= 1
        return True

    def receive(self, data: bytes, addr: Addr, now: float) -> list[Event]:
        """Handle one datagram from ``addr``; returns what to send and what happened."""
        if not self._allow(addr[0], now):
            self._count("rate-limited")
            return [Dropped(addr, "rate limited")]
        try:
            dec = w.decode_packet(data)
        except w.UnknownPacket:
            self._count("unknown-type")
            return [Dropped(addr, "unknown packet type")]
        except w.PacketError as e:
            self._count("bad-packet")
            return [Dropped(addr, str(e))]
        pkt = dec.packet
        sender = dec.sender.to_bytes()
        sender_id = keccak(sender)
        if sender_id == self.node_id:
            return [Dropped(addr, "packet from ourselves")]
        exp = getattr(pkt, "expiration", None)
        if exp is not None and exp < now:
            self._count("expired")
            return [Dropped(addr, "expired")]
        self._count(type(pkt).__name__)
        if isinstance(pkt, w.Ping):
            return self._on_ping(pkt, dec, sender, sender_id, addr, now)
        if isinstance(pkt, w.Pong):
            return self._on_pong(pkt, sender, sender_id, addr, now)
        if isinstance(pkt, w.FindNode):
            return self._on_findnode(pkt, sender_id, addr, now)
        if isinstance(pkt, w.Neighbors):
            if self.pending_findnode.get(sender_id, 0) <= now:
                self._count("unsolicited")
                return [Dropped(addr, "unsolicited neighbors")]
            return [NeighborsReceived(sender_id, pkt.nodes)]
        if isinstance(pkt, w.ENRRequest):
            if not self.is_bonded(sender_id, addr[0], now) or self.enr is None:
                return [Dropped(addr, "ENRRequest without endpoint proof")]
            out, _ = w.encode_packet(self.key, w.ENRResponse(dec.hash, self.enr.raw))
            return [Send(out, addr)]
        if isinstance(pkt, w.ENRResponse):
            pending = self.pending_enr.pop(pkt.request_hash, None)
            if pending is None or pending[0] != sender_id:
                return [Dropped(addr, "unsolicited ENRResponse")]
            try:
                record = ENR.from_rlp(pkt.record)
            except ENRError as e:
                return [Dropped(addr, f"bad ENR: {e}")]
            if record.node_id != sender_id:
                return [Dropped(addr, "ENR of another node")]
            return [ENRReceived(sender_id, pkt.request_hash, record)]
        return [Dropped(addr, "unhandled")]

    def _on_ping(
        self, pkt: w.Ping, dec: w.Decoded, sender: bytes, sender_id: bytes, addr: Addr, now: float
    ) -> list[Event]:
        pong, _ = w.encode_packet(
            self.key,
            w.Pong(
                w.Endpoint(addr[0], addr[1], pkt.from_.tcp),
                dec.hash,
                int(now) + EXPIRATION,
                self.enr.seq if self.enr else None,
            ),
        )
        out: list[Event] = [Send(pong, addr)]
        if not self.is_bonded(sender_id, addr[0], now):
            # Make it prove its endpoint too; it joins the table when its Pong arrives. One ping
            # at a time per node, and at most MAX_PENDING_PER_IP per source IP.
            if sender_id in self._pings_per_node:
                self._count("ping-back-pending")
            elif self._pings_per_ip.get(addr[0], 0) >= MAX_PENDING_PER_IP:
                self._count("ping-back-refused")
            else:
                send, _ = self.ping(sender, addr, pkt.from_.tcp, now)
                out.append(send)
        else:
            node = self.table.get(sender_id)
            if node is not None:
                node.last_seen = now
        return out

    def _on_pong(self, pkt: w.Pong, sender: bytes, sender_id: bytes, addr: Addr, now: float) -> list[Event]:
        pending = self.pending_pings.get(pkt.ping_hash)
        if pending is None or pending[0] != sender_id:
            self._count("unsolicited")
            return [Dropped(addr, "unsolicited pong")]
        self._forget_ping(pkt.ping_hash)
        _, _, tcp, _, _ = pending
        self.bonds.pop(sender_id, None)
        if self._cap(self.bonds, MAX_BONDS):
            self._count("bonds-dropped")
        self.bonds[sender_id] = (now, addr[0])
        self._ip_statement(addr[0], pkt.to.ip, now)
        node = Node(sender, addr[0], addr[1], tcp, sender_id, now)
        return [PongReceived(node, pkt.ping_hash, pkt.enr_seq)]

    def _on_findnode(self, pkt: w.FindNode, sender_id: bytes, addr: Addr, now: float) -> list[Event]:
        if not self.is_bonded(sender_id, addr[0], now):
            self._count("findnode-unbonded")
            return [Dropped(addr, "findnode without endpoint proof")]
        closest = self.table.closest(keccak(pkt.target), MAX_NEIGHBORS)
        records = [w.NodeRecord(n.ip, n.udp, n.tcp, n.pubkey) for n in closest if n.node_id != sender_id]
        return [Send(d, addr) for d in w.neighbors_packets(self.key, records, int(now) + EXPIRATION)]
