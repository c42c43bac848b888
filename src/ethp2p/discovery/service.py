"""The asyncio side of discv4: a UDP endpoint, bonding, iterative lookups and random walks.

Protocol decisions are the core's (:class:`~ethp2p.discovery.v4.DiscoveryV4`); this
module owns the socket, the timers and the futures. Every node that answers our
ping joins the table and, once, is offered to ``on_node`` (the peer network's candidate
feed). With a ``fork_filter``, the node's ENR is fetched first and nodes whose
``eth`` entry names an incompatible fork id are skipped before anyone dials them.
Bound to the wildcard address, our ENR names no ip until peers' Pongs agree on the address they
see; a send that fails is a warning with the reason, once per cause every 10 minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import os
import time
from collections.abc import Callable, Sequence

from ..crypto.keccak import keccak
from ..crypto.keys import PrivateKey
from ..enode import Enode
from ..eth.forkid import ForkId
from . import v4wire as w
from .enr import ENR
from .table import Node
from .v4 import REPLY_TIMEOUT, DiscoveryV4, ENRReceived, NeighborsReceived, PongReceived, Send

log = logging.getLogger(__name__)

ALPHA = 3
#: How often a random-walk lookup refreshes the table, and liveness checks run.
REFRESH_INTERVAL = 30.0
#: The first refresh after bootstrap; the gap doubles up to REFRESH_INTERVAL, so a node that
#: started before its neighbours had bonded with the boot node still finds them within seconds.
FIRST_REFRESH = 1.0
#: A send failure is a warning once per cause (errno) in this many seconds; the rest are debug lines.
SEND_WARN_INTERVAL = 600.0
#: How often the core forgets requests whose replies are overdue (they are due within a second).
EXPIRE_INTERVAL = 1.0
#: Most node ids remembered as already offered to ``on_node``; the oldest is forgotten first.
MAX_OFFERED = 16384


def advertised_ip(host: str) -> bytes | None:
    """The ENR ``ip`` entry for a socket bound to ``host``: None for the wildcard address (and IPv6).

    Bound to ``0.0.0.0`` we don't know which of our addresses a peer sees, so the record claims
    none (discv4 peers take our address from our packets' source, as geth's do) until the Pongs
    of several peers agree on one (:meth:`~ethp2p.discovery.v4.DiscoveryV4.predicted_ip`).
    """
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if ip.version != 4 or ip.is_unspecified:
        return None
    return ip.packed


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, service: DiscoveryService) -> None:
        self.service = service

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self.service._on_datagram(data, (addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        self.service._on_send_error(exc)


class DiscoveryService:
    """Runs discv4 on ``host:port`` (UDP); ``0.0.0.0`` reaches every host, ``127.0.0.1`` only this one."""

    def __init__(
        self,
        key: PrivateKey,
        host: str = "127.0.0.1",
        port: int = 30303,
        *,
        tcp_port: int | None = None,
        bootnodes: Sequence[Enode | str] = (),
        on_node: Callable[[Enode], object] | None = None,
        fork_filter: Callable[[ForkId], bool] | None = None,
        refresh_interval: float = REFRESH_INTERVAL,
        enr_extra: dict[bytes, object] | None = None,
    ) -> None:
        self.key = key
        self.host = host
        self.port = port
        self.tcp_port = tcp_port
        self.bootnodes = [Enode.parse(b) if isinstance(b, str) else b for b in bootnodes]
        self.on_node = on_node
        self.fork_filter = fork_filter
        self.refresh_interval = refresh_interval
        self.enr_extra = enr_extra or {}
        self.core: DiscoveryV4 | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._pongs: dict[bytes, asyncio.Future] = {}
        self._neighbors: dict[bytes, list[w.NodeRecord]] = {}
        self._neighbor_events: dict[bytes, asyncio.Event] = {}
        self._enrs: dict[bytes, asyncio.Future] = {}
        #: node ids offered to ``on_node`` (an ordered set, at most MAX_OFFERED).
        self._offered: dict[bytes, None] = {}
        self._tasks: set[asyncio.Task] = set()
        self.lookups = 0
        #: Failed sends by cause (errno name), e.g. ``{"EINVAL": 3}``.
        self.send_errors: dict[str, int] = {}
        self._send_warned: dict[str, float] = {}
        self._sending_to: tuple[str, int] | None = None
        self._ip: bytes | None = None
        self._learn_ip = False

    # ---- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=(self.host, self.port)
        )
        self.port = self._transport.get_extra_info("sockname")[1]
        tcp = self.tcp_port if self.tcp_port is not None else self.port
        self._ip = advertised_ip(self.host)
        #: Bound to the wildcard address: our ENR gets the address peers' Pongs agree on, once they do.
        self._learn_ip = self._ip is None and self.host == "0.0.0.0"
        self.core = DiscoveryV4(self.key, w.Endpoint(self.host, self.port, tcp), self._record(int(time.time())))
        self._spawn(self._run())
        self._spawn(self._expire_loop())

    def _record(self, seq: int) -> ENR:
        tcp = self.tcp_port if self.tcp_port is not None else self.port
        pairs: dict[bytes, object] = {b"udp": self.port, b"tcp": tcp, **self.enr_extra}
        if self._ip is not None:
            pairs[b"ip"] = self._ip
        return ENR.create(self.key, seq, pairs)

    def _check_ip(self) -> None:
        """Put the address peers agree they see us at into our ENR (new seq) and Pings."""
        assert self.core is not None and self.core.enr is not None
        ip = self.core.predicted_ip(time.time())
        if ip is None or advertised_ip(ip) == self._ip:
            return
        self._ip = advertised_ip(ip)
        self.core.enr = self._record(max(self.core.enr.seq + 1, int(time.time())))
        self.core.endpoint = w.Endpoint(ip, self.core.endpoint.udp, self.core.endpoint.tcp)
        log.info("discv4: peers see us at %s; our ENR now says so (seq %d)", ip, self.core.enr.seq)

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._transport is not None:
            self._transport.close()

    async def __aenter__(self) -> DiscoveryService:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def enode(self) -> Enode:
        """How to reach this node from this host (127.0.0.1 when bound to the wildcard address).

        Not what other hosts are told: the ENR names no address then (see :func:`advertised_ip`).
        """
        host = "127.0.0.1" if self.host == "0.0.0.0" else self.host
        return Enode(self.key.public_key.to_bytes(), host, self.tcp_port or self.port, self.port)

    @property
    def table(self):
        assert self.core is not None
        return self.core.table

    def _spawn(self, coro) -> asyncio.Task:
        t = asyncio.create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)
        return t

    async def _run(self) -> None:
        await self.bootstrap()
        delay = min(FIRST_REFRESH, self.refresh_interval)
        while True:
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.refresh_interval)
            with contextlib.suppress(Exception):
                await self.check_liveness()
                await self.lookup(os.urandom(64))

    async def _expire_loop(self) -> None:
        """Free overdue requests every EXPIRE_INTERVAL: a flood of Pings leaves nothing behind."""
        while True:
            await asyncio.sleep(EXPIRE_INTERVAL)
            self.expire(time.time())

    def expire(self, now: float) -> int:
        """Forget the core's overdue requests (and stale bonds); how many requests went."""
        assert self.core is not None
        return self.core.expire(now)

    # ---- IO -----------------------------------------------------------------------------------

    def _send(self, s: Send) -> None:
        if self._transport is not None:
            # A failure is reported through error_received, from inside sendto when it is immediate.
            self._sending_to = s.addr
            try:
                self._transport.sendto(s.data, s.addr)
            finally:
                self._sending_to = None

    def _on_send_error(self, exc: Exception) -> None:
        """Count a failed send; a warning with the reason once per cause per SEND_WARN_INTERVAL."""
        code = getattr(exc, "errno", None)
        cause = errno.errorcode.get(code, type(exc).__name__) if isinstance(code, int) else type(exc).__name__
        self.send_errors[cause] = self.send_errors.get(cause, 0) + 1
        to = f" to {self._sending_to[0]}:{self._sending_to[1]}" if self._sending_to is not None else ""
        now = time.monotonic()
        last = self._send_warned.get(cause)
        if last is not None and now - last < SEND_WARN_INTERVAL:
            log.debug("discv4 send%s failed: %s", to, exc)
            return
        self._send_warned[cause] = now
        hint = ""
        if code == errno.EINVAL and _is_loopback(self.host):
            hint = " (a socket bound to loopback reaches no other host)"
        log.warning(
            "discv4 on %s:%d cannot send%s: %s%s; %d such failures so far (more are logged at debug level)",
            self.host,
            self.port,
            to,
            os.strerror(code) if isinstance(code, int) else exc,
            hint,
            self.send_errors[cause],
        )

    def _on_datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.core is not None
        for ev in self.core.receive(data, addr, time.time()):
            if isinstance(ev, Send):
                self._send(ev)
            elif isinstance(ev, PongReceived):
                fut = self._pongs.pop(ev.ping_hash, None)
                if fut is not None and not fut.done():
                    fut.set_result(ev.node)
                self._node_alive(ev.node)
                if self._learn_ip:
                    self._check_ip()
            elif isinstance(ev, NeighborsReceived):
                bucket = self._neighbors.get(ev.sender_id)
                if bucket is None:  # the lookup that asked has stopped waiting
                    continue
                bucket.extend(ev.nodes[: 16 - len(bucket)])
                e = self._neighbor_events.get(ev.sender_id)
                # A reply ends with 16 nodes or with a packet that is not full.
                if e is not None and (len(bucket) >= 16 or len(ev.nodes) < w.NODES_PER_PACKET):
                    e.set()
            elif isinstance(ev, ENRReceived):
                fut = self._enrs.pop(ev.request_hash, None)
                if fut is not None and not fut.done():
                    fut.set_result(ev.record)

    # ---- requests -----------------------------------------------------------------------------

    async def ping(self, pubkey: bytes, addr: tuple[str, int], tcp: int) -> Node | None:
        """Ping and wait for the Pong; the node is in the table if it answered."""
        assert self.core is not None
        send, h = self.core.ping(pubkey, addr, tcp, time.time())
        return await self._await_reply(self._pongs, h, send)

    async def _await_reply(self, waiting: dict[bytes, asyncio.Future], key: bytes, send: Send):
        """Send a request and wait (bounded) for the reply the datagram handler files under ``key``."""
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        waiting[key] = fut
        self._send(send)
        try:
            async with asyncio.timeout(REPLY_TIMEOUT * 2):
                return await fut
        except TimeoutError:
            return None
        finally:
            waiting.pop(key, None)

    async def find_node(self, node: Node, target: bytes) -> list[w.NodeRecord]:
        """FindNode to a bonded node; Neighbors collected until 16 nodes or the reply timeout."""
        assert self.core is not None
        self._neighbors[node.node_id] = []
        ev = self._neighbor_events[node.node_id] = asyncio.Event()
        self._send(self.core.findnode(node.node_id, (node.ip, node.udp), target, time.time()))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(REPLY_TIMEOUT):
                await ev.wait()
        self._neighbor_events.pop(node.node_id, None)
        return self._neighbors.pop(node.node_id, [])

    async def request_enr(self, node: Node) -> ENR | None:
        assert self.core is not None
        send, h = self.core.request_enr(node.node_id, (node.ip, node.udp), time.time())
        return await self._await_reply(self._enrs, h, send)

    async def _ensure_bond(self, node: Node) -> bool:
        assert self.core is not None
        if self.core.is_bonded(node.node_id, node.ip, time.time()):
            return True
        if await self.ping(node.pubkey, (node.ip, node.udp), node.tcp) is None:
            return False
        # The node pings us back to check our endpoint; give our Pong time to reach it
        # before asking it anything, or it will ignore the request.
        await asyncio.sleep(0.05)
        return True

    # ---- table maintenance --------------------------------------------------------------------

    def _node_alive(self, node: Node) -> None:
        assert self.core is not None
        stale = self.core.table.add_seen(node)
        if stale is not None:
            self._spawn(self._check_stale(stale))
        if node.node_id not in self._offered:
            if len(self._offered) >= MAX_OFFERED:
                del self._offered[next(iter(self._offered))]
            self._offered[node.node_id] = None
            self._spawn(self._offer(node))

    async def _check_stale(self, node: Node) -> None:
        if await self.ping(node.pubkey, (node.ip, node.udp), node.tcp) is None:
            self.table.remove(node.node_id)

    async def check_liveness(self) -> int:
        """Ping the least recently seen node of every non-empty bucket (at once); a node that
        fails twice is evicted and the bucket's newest replacement takes its place."""
        heads = [b[0] for b in self.table.buckets if b]

        async def check(node: Node) -> bool:
            if await self.ping(node.pubkey, (node.ip, node.udp), node.tcp) is not None:
                return False
            node.fails += 1
            if node.fails >= 2:
                return self.table.remove(node.node_id)
            # Keep it at the head of its bucket so the next round checks it again.
            return False

        results = await asyncio.gather(*(check(n) for n in heads))
        return sum(results)

    async def _offer(self, node: Node) -> None:
        if self.on_node is None:
            return
        record = None
        if self.fork_filter is not None or not node.tcp:
            record = await self.request_enr(node)
        if record is not None and self.fork_filter is not None:
            fid = record.eth_fork_id
            if fid is not None and not self.fork_filter(fid):
                log.debug("skipping %s: incompatible fork id %s", node.node_id.hex()[:12], fid)
                return
        tcp = node.tcp or (record.tcp if record is not None and record.tcp else 0)
        if not tcp:
            # No TCP port in its ping or ENR (some clients leave it out): most listen on the same port.
            tcp = node.udp
        self.on_node(Enode(node.pubkey, node.ip, tcp, node.udp))

    # ---- lookups ------------------------------------------------------------------------------

    async def bootstrap(self) -> None:
        await asyncio.gather(
            *(
                self.ping(b.pubkey, (b.host, b.udp_port or b.tcp_port), b.tcp_port)
                for b in self.bootnodes
                if b.host  # one without an address is no boot node (not this host's loopback)
            ),
            return_exceptions=True,
        )
        await self.lookup(self.key.public_key.to_bytes())

    async def lookup(self, target: bytes) -> list[Node]:
        """Iterative Kademlia lookup for ``target`` (a 64-byte key): the closest nodes found."""
        self.lookups += 1
        tid = keccak(target)
        t = int.from_bytes(tid, "big")
        dist = lambda n: int.from_bytes(n.node_id, "big") ^ t  # noqa: E731
        seen: dict[bytes, Node] = {n.node_id: n for n in self.table.closest(tid, 16)}
        asked: set[bytes] = set()
        while True:
            todo = [n for n in sorted(seen.values(), key=dist) if n.node_id not in asked][:ALPHA]
            if not todo:
                break
            for n in todo:
                asked.add(n.node_id)
            results = await asyncio.gather(*(self._query(n, target) for n in todo), return_exceptions=True)
            grew = False
            for res in results:
                if isinstance(res, BaseException):
                    continue
                for rec in res:
                    nid = keccak(rec.pubkey)
                    if nid == self.core.node_id or nid in seen or not rec.udp:  # type: ignore[union-attr]
                        continue
                    seen[nid] = Node(rec.pubkey, rec.ip, rec.udp, rec.tcp, nid)
                    grew = True
            if not grew and all(n.node_id in asked for n in sorted(seen.values(), key=dist)[:16]):
                break
        return [n for n in sorted(seen.values(), key=dist) if n.node_id in self.table][:16]

    async def _query(self, node: Node, target: bytes) -> list[w.NodeRecord]:
        assert self.core is not None
        fresh = not self.core.is_bonded(node.node_id, node.ip, time.time())
        if not await self._ensure_bond(node):
            return []
        found = await self.find_node(node, target)
        if not found and fresh:
            # A node we just bonded with may not yet have had our Pong to its own Ping (a busy
            # host) and ignores the FindNode; ask once more.
            found = await self.find_node(node, target)
        return found
