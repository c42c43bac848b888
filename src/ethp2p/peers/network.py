"""``PeerNetwork``: a long-running pool of live, compatible peers.

Candidates come from any source (boot nodes, static peers, a :class:`~.book.PeerBook`,
a discovery feed) through :meth:`PeerNetwork.add_candidate`. A refill loop dials
them within the limits; an :class:`~.listener.InboundListener` admits inbound peers
within theirs. Each new peer's session is checked (genesis, network, fork id: in the
Status handshake), the peer added to the pool, and its head probed by fetching the
header of its Status best hash (at most ``max_concurrent_probes`` at once). Faults
cost reputation; banned and useless peers are not redialled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..crypto.keys import PrivateKey
from ..discovery.dns import dns_discovery, dnspython_resolver
from ..discovery.service import DiscoveryService
from ..enode import Enode, EnodeError
from ..eth.chainspec import ChainSpec
from ..eth.chainspec import network as network_by_name
from ..eth.forkid import ForkId, ForkIdMismatch
from ..faults import FaultKind, PeerFault
from ..p2p.connection import LocalIdentity
from ..p2p.disconnect import DisconnectReason, reason_name
from ..transport.stream import TransportError
from .book import PeerBook, PeerBookLoad
from .eth_peer import (
    DEFAULT_ETH_VERSIONS,
    ChainHead,
    EmptyHandler,
    EthPeer,
    IncompatiblePeer,
    PeerDisconnected,
    PeerError,
    RequestHandler,
    traffic,
)
from .limits import P2pLimits, P2pStats
from .listener import InboundDropped, InboundEvent, InboundListener, InboundRefused
from .pool import NetworkPeer, PeerPool, fetch_best_header
from .reputation import Reputation

log = logging.getLogger(__name__)


class NoPeersError(Exception):
    """No compatible peer joined within the caller's timeout; the message says what was tried."""


@dataclass
class _Candidate:
    enode: Enode
    source: str
    aimd_batch_limit: int | None = None


@dataclass
class _Tried:
    dialed: int = 0
    failures: dict[str, int] = field(default_factory=dict)


#: Distinct node ids remembered for the found and connected counts (beyond it, every sighting of a
#: node not remembered counts as new: the memory stays bounded on a network of any size).
MAX_DISTINCT_TRACKED = 100_000


def _first_sight(seen: set[bytes], node_id: bytes) -> bool:
    """Whether ``node_id`` is new to ``seen`` (which then holds it, up to :data:`MAX_DISTINCT_TRACKED`)."""
    if node_id in seen:
        return False
    if len(seen) < MAX_DISTINCT_TRACKED:
        seen.add(node_id)
    return True


def _now_ms() -> int:
    return int(time.time() * 1000)


class PeerNetwork:
    """Dials, listens, and keeps :attr:`pool` filled with compatible peers."""

    def __init__(
        self,
        spec: ChainSpec,
        *,
        key: PrivateKey | None = None,
        limits: P2pLimits | None = None,
        peer_book: PeerBook | None = None,
        listen: tuple[str, int] | None = None,
        head: ChainHead | None = None,
        handler: RequestHandler | None = None,
        versions: Sequence[int] = DEFAULT_ETH_VERSIONS,
        discovery_bootnodes: Sequence[str] | None = None,
        dns_trees: Sequence[str] = (),
        dns_resolver: object | None = None,
    ) -> None:
        """``peer_book`` (e.g. :class:`ethp2p.store.peers.PeerCache`) seeds the candidates at start
        and remembers the outbound peers reached; the network closes it on :meth:`close`.
        ``discovery_bootnodes`` (None: off) starts discv4 with those boot nodes; ``dns_trees``
        starts EIP-1459 tree walks through ``dns_resolver`` (default: the system's resolver).
        Both feed :meth:`add_candidate` and count in ``discovered_count``."""
        self.spec = spec
        self.key = key or PrivateKey.generate()
        self.limits = limits or P2pLimits()
        self.pool = PeerPool()
        self.p2p_stats = P2pStats()
        self.reputation = Reputation(
            ban_duration=self.limits.ban_duration,
            backoff_base=self.limits.dial_backoff_base,
            backoff_max=self.limits.dial_backoff_max,
        )
        self.head = head or ChainHead.genesis(spec)
        self.handler = handler or EmptyHandler()
        self.versions = tuple(versions)
        self.listen = listen
        self.listen_port = 0
        self.peer_book = peer_book
        #: What :attr:`peer_book` handed over at start (None without a book, or before start).
        self.cache_load: PeerBookLoad | None = None
        self._candidates: dict[bytes, _Candidate] = {}
        self._dialing: set[bytes] = set()
        #: Admitted peers whose session has not ended (some may have left the pool already).
        self._live: set[NetworkPeer] = set()
        self._probe_sem = asyncio.Semaphore(self.limits.max_concurrent_probes)
        self._dial_sem = asyncio.Semaphore(self.limits.max_concurrent_dials)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._listener = InboundListener(
            self,
            max_inbound=self.limits.max_inbound,
            handshake_timeout=self.limits.handshake_timeout,
            spawn=self._spawn,
        )
        self._closed = False
        self._tried = _Tried()
        #: Node ids seen as candidates and as admitted peers (for ``found_by_source``, ``peers_connected``).
        self._found: set[bytes] = set()
        self._connected: set[bytes] = set()
        self.probes_running = 0
        self.max_probes_seen = 0
        self.discovery_bootnodes = discovery_bootnodes
        self.dns_trees = tuple(dns_trees)
        self.dns_resolver = dns_resolver
        self.discovery: DiscoveryService | None = None

    # ---- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the peer book, start listening (if asked) and the refill loop."""
        if self.peer_book is not None:
            loaded = self.peer_book.load_peers(
                expire_before_ms=_now_ms() - self.limits.peer_cache_ttl_ms, max_peers=self.limits.peer_cache_max
            )
            self.cache_load = loaded
            for p in loaded.peers:
                ep = p.tcp_endpoint()
                if ep is not None:
                    self._add(Enode(p.peer_id, ep[0], ep[1], ep[1]), "cache", p.aimd_batch_limit)
        if self.listen is not None:
            self.listen_port = await self._listener.start(self.listen[0], self.listen[1])
        if self.discovery_bootnodes is not None:
            # Without a listen address, the wildcard one: a socket bound to 127.0.0.1 can't reach other hosts.
            host, port = self.listen if self.listen is not None else ("0.0.0.0", 0)
            fid = self.spec.fork_id(self.head.number, self.head.timestamp)
            self.discovery = DiscoveryService(
                self.key,
                host,
                self.listen_port or port,
                tcp_port=self.listen_port or None,
                bootnodes=list(self.discovery_bootnodes),
                on_node=lambda e: self.add_candidate(e, "discv4"),
                fork_filter=self._fork_ok,
                enr_extra=fid.enr_entry(),
            )
            await self.discovery.start()
        for url in self.dns_trees:
            self._spawn(self._dns_feed(url))
        self._spawn(self._refill_loop())
        self._spawn(self._reprobe_loop())

    def _fork_ok(self, fork_id: ForkId) -> bool:
        """Whether a node's advertised fork id (ENR ``eth`` entry) fits our chain."""
        try:
            self.spec.check_fork_id(fork_id, self.head.number, self.head.timestamp)
        except ForkIdMismatch:
            return False
        return True

    async def _dns_feed(self, url: str) -> None:
        resolver = self.dns_resolver or dnspython_resolver()
        async for record in dns_discovery(url, resolver):  # type: ignore[arg-type]
            fid = record.eth_fork_id
            if fid is not None and not self._fork_ok(fid):
                continue
            node = record.to_enode()
            if node.host and node.tcp_port:
                self.add_candidate(node, "dns")

    async def close(self) -> None:
        """Flush and close the peer book, disconnect everyone, stop all tasks."""
        if self._closed:
            return
        self._closed = True
        self._listener.close()
        if self.discovery is not None:
            await self.discovery.close()
        for peer in self.pool.snapshot():
            with contextlib.suppress(Exception):
                await peer.disconnect(DisconnectReason.CLIENT_QUITTING)
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.flush_peer_book()
        if self.peer_book is not None:
            self.peer_book.close()

    async def __aenter__(self) -> PeerNetwork:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def flush_peer_book(self) -> int:
        """Write the pool's peers and buffered sightings to the peer book (also done on close)."""
        if self.peer_book is None:
            return 0
        for peer in self.pool.snapshot():
            self.remember(peer)
        return self.peer_book.flush()

    def remember(self, peer: NetworkPeer, aimd_batch_limit: int | None = None) -> None:
        """Record an outbound peer we reached (and the batch size it served well) in the peer book."""
        if self.peer_book is None or peer.direction != "outbound" or not peer.address:
            return
        host, port = peer.address
        self.peer_book.remember_peer(peer.peer_id, host, port, seen_ms=_now_ms(), aimd_batch_limit=aimd_batch_limit)

    @property
    def enode(self) -> Enode:
        host = self.listen[0] if self.listen else "127.0.0.1"
        return Enode(self.key.public_key.to_bytes(), host, self.listen_port, self.listen_port)

    # ---- candidates ---------------------------------------------------------------------------

    def add_candidate(self, node: Enode | str, source: str = "static") -> bool:
        """Offer a peer to dial (boot node, static peer, discovery result). False if refused."""
        try:
            enode = Enode.parse(node) if isinstance(node, str) else node
        except EnodeError as e:
            log.debug("bad candidate %r: %s", node, e)
            return False
        if source in ("discv4", "dns", "discovery"):
            self.p2p_stats.discovered_count += 1
        return self._add(enode, source, None)

    def add_candidates(self, nodes: Iterable[Enode | str], source: str = "static") -> int:
        return sum(self.add_candidate(n, source) for n in nodes)

    def _add(self, enode: Enode, source: str, aimd: int | None) -> bool:
        if enode.pubkey == self.key.public_key.to_bytes() or enode.host is None or not enode.tcp_port:
            return False
        if _first_sight(self._found, enode.pubkey):
            P2pStats.bump(self.p2p_stats.found_by_source, source)
        if enode.pubkey in self._candidates or enode.pubkey in self.pool:
            return False
        self._candidates[enode.pubkey] = _Candidate(enode, source, aimd)
        return True

    # ---- waiting ------------------------------------------------------------------------------

    async def wait_for_peers(
        self, min_peers: int = 1, timeout: float | None = None, warmup: float | None = None
    ) -> None:
        """Return once ``min_peers`` peers are in the pool, after the warm-up; NoPeersError on timeout."""
        try:
            async with asyncio.timeout(timeout):
                await self.pool.wait_for_size(min_peers)
        except TimeoutError:
            t = self._tried
            fails = ", ".join(f"{k}: {v}" for k, v in sorted(t.failures.items())) or "none"
            raise NoPeersError(
                f"{len(self.pool)} of {min_peers} peers after {timeout:g}s; dialed {t.dialed} "
                f"(failures: {fails}); {len(self._candidates)} candidates left"
            ) from None
        w = self.limits.peer_start_warmup if warmup is None else warmup
        if w > 0:
            await asyncio.sleep(w)

    # ---- dialing ------------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _refill_loop(self) -> None:
        while not self._closed:
            self._refill()
            await asyncio.sleep(self.limits.peer_refill_interval)

    def _refill(self) -> None:
        room = self.limits.max_outbound - self.pool.count("outbound") - len(self._dialing)
        room = min(room, self.limits.max_concurrent_dials - len(self._dialing))
        if room <= 0:
            return
        for pid, cand in list(self._candidates.items()):
            if room <= 0:
                break
            if pid in self.pool or pid in self._dialing or not self.reputation.may_dial(pid):
                continue
            del self._candidates[pid]
            self._dialing.add(pid)
            room -= 1
            self._spawn(self._dial(cand))

    def _fail(self, kind: str) -> None:
        P2pStats.bump(self._tried.failures, kind)
        P2pStats.bump(self.p2p_stats.handshake_failures, kind)

    async def _dial(self, cand: _Candidate) -> None:
        pid = cand.enode.pubkey
        try:
            async with self._dial_sem:
                self.p2p_stats.max_concurrent_dials_seen = max(
                    self.p2p_stats.max_concurrent_dials_seen, len(self._dialing)
                )
                self.p2p_stats.dials_attempted += 1
                self._tried.dialed += 1
                try:
                    eth_peer = await EthPeer.connect(cand.enode, self.spec, **self._peer_options())
                except IncompatiblePeer as e:
                    self.p2p_stats.dials_failed += 1
                    kind = getattr(e.mismatch, "kind", "incompatible")
                    if kind in ("genesis", "network"):
                        self.p2p_stats.genesis_mismatch_count += 1
                    self._fail(f"incompatible-{kind}")
                    self.reputation.dial_failed(pid, useless=True)
                    return
                except PeerDisconnected as e:
                    self.p2p_stats.dials_failed += 1
                    reason = e.event.reason if e.event else None
                    self._fail(f"disconnected-{reason_name(reason)}")
                    if reason == DisconnectReason.TOO_MANY_PEERS:
                        self.reputation.too_many_peers(pid)
                    else:
                        self.reputation.dial_failed(pid, useless=reason == DisconnectReason.USELESS_PEER)
                    self._requeue(cand)
                    return
                except (PeerError, TransportError, OSError) as e:
                    self.p2p_stats.dials_failed += 1
                    self._fail(type(e).__name__)
                    # A bad Status is a breach (banned at once); any other failure costs a failed dial.
                    kind = e.kind if isinstance(e, PeerFault) else FaultKind.FAILED_DIAL
                    if self.reputation.penalize(pid, kind):
                        self.p2p_stats.bans += 1
                    self.reputation.dial_failed(pid)
                    self._requeue(cand)
                    return
                self.reputation.dial_succeeded(pid)
        finally:
            self._dialing.discard(pid)
        await self._admit(eth_peer, "outbound")

    def _peer_options(self) -> dict[str, Any]:
        """What every EthPeer this network opens, outbound or inbound, is started with."""
        return {
            "key": self.key,
            "head": self.head,
            "versions": self.versions,
            "handler": self.handler,
            "request_timeout": self.limits.request_timeout,
            "handshake_timeout": self.limits.handshake_timeout,
        }

    def _requeue(self, cand: _Candidate) -> None:
        """Keep a failed candidate for later (the back-off decides when)."""
        if not self._closed and cand.enode.pubkey not in self.pool:
            self._candidates.setdefault(cand.enode.pubkey, cand)

    # ---- inbound ------------------------------------------------------------------------------

    def inbound_full(self) -> bool:
        """Whether ``max_inbound`` inbound peers are in the pool (a new one is told TOO_MANY_PEERS)."""
        return self.pool.count("inbound") >= self.limits.max_inbound

    def local_identity(self) -> LocalIdentity:
        """Our Hello, for refusing an inbound peer when full."""
        return EthPeer.local_identity(self.key, self.versions, self.listen_port)

    async def accept_peer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> EthPeer:
        """The recipient handshake and Status exchange, with the options of every peer we open."""
        return await EthPeer.accept(reader, writer, self.spec, listen_port=self.listen_port, **self._peer_options())

    def on_inbound_event(self, event: InboundEvent) -> None:
        """Count an inbound connection that did not become a session."""
        if isinstance(event, InboundDropped):
            self.p2p_stats.inbound_rejected += 1
        elif isinstance(event, InboundRefused):
            if event.told:
                self.p2p_stats.inbound_rejected += 1
                P2pStats.bump(self.p2p_stats.disconnects_sent, "too_many_peers")
            else:
                self._fail("inbound-handshake")
        elif isinstance(event.error, IncompatiblePeer):
            kind = getattr(event.error.mismatch, "kind", "incompatible")
            if kind in ("genesis", "network"):
                self.p2p_stats.genesis_mismatch_count += 1
            self._fail(f"inbound-incompatible-{kind}")
        else:
            self._fail(f"inbound-{type(event.error).__name__}")

    async def on_inbound_peer(self, peer: EthPeer) -> None:
        """Admit an inbound peer whose handshake succeeded (within the caps)."""
        self.p2p_stats.inbound_accepted += 1
        await self._admit(peer, "inbound")

    async def _reprobe_loop(self) -> None:
        while not self._closed:
            await asyncio.sleep(self.limits.head_reprobe_interval)
            for peer in self.pool.snapshot():
                if peer.head_number is None and not peer.closed:
                    self._spawn(self.probe_head(peer))

    # ---- admission, probing, departure --------------------------------------------------------

    async def _admit(self, eth_peer: EthPeer, direction: str) -> None:
        if self._closed or self.reputation.is_banned(eth_peer.peer_id):
            await eth_peer.disconnect(DisconnectReason.REQUESTED)
            return
        cap = self.limits.max_outbound if direction == "outbound" else self.limits.max_inbound
        if self.pool.count(direction) >= cap:
            P2pStats.bump(self.p2p_stats.disconnects_sent, "too_many_peers")
            await eth_peer.disconnect(DisconnectReason.TOO_MANY_PEERS)
            return
        peer = NetworkPeer(
            eth_peer,
            direction=direction,
            on_fault=self._on_fault,
            on_success=lambda p: self.reputation.reward(p.peer_id),
            max_consecutive_timeouts=self.limits.max_consecutive_timeouts,
        )
        if not self.pool.add_peer(peer):
            P2pStats.bump(self.p2p_stats.disconnects_sent, "already_connected")
            await eth_peer.disconnect(DisconnectReason.ALREADY_CONNECTED)
            return
        self._live.add(peer)
        s = self.p2p_stats
        if _first_sight(self._connected, peer.peer_id):
            s.peers_connected += 1
        s.sessions_established += 1
        s.pool_size = len(self.pool)
        s.max_outbound_seen = max(s.max_outbound_seen, self.pool.count("outbound"))
        s.max_inbound_seen = max(s.max_inbound_seen, self.pool.count("inbound"))
        self._spawn(self._watch(peer))
        self._spawn(self.probe_head(peer))

    def _on_fault(self, peer: NetworkPeer, kind: FaultKind, message: str) -> None:
        banned = self.reputation.penalize(peer.peer_id, kind)
        if banned:
            self.p2p_stats.bans += 1  # counted once per ban, also for a peer that has already left
        drop = banned or peer.consecutive_timeouts >= peer.max_consecutive_timeouts
        if drop and not peer.closed:
            reason = DisconnectReason.BREACH_OF_PROTOCOL if banned else DisconnectReason.PING_TIMEOUT
            log.info("dropping %r: %s (%s)", peer, kind, message)
            P2pStats.bump(self.p2p_stats.disconnects_sent, reason_name(reason))
            self.pool.remove_peer(peer.peer_id)
            self._spawn(peer.disconnect(reason))

    async def probe_head(self, peer: NetworkPeer) -> int | None:
        """Fetch the header of the peer's Status best hash; record it as the peer's head."""
        async with self._probe_sem:
            self.probes_running += 1
            self.max_probes_seen = max(self.max_probes_seen, self.probes_running)
            try:
                header = await fetch_best_header(peer)
            finally:
                self.probes_running -= 1
        if header is None:
            self.p2p_stats.probes_failed += 1
            return None
        self.p2p_stats.probes_ok += 1
        self.pool.update_peer_head(peer.peer_id, header.number, header.hash)
        return header.number

    def traffic(self) -> tuple[int, int]:
        """Bytes received and sent by admitted peers' sessions so far: the ended ones' and the live ones'.

        ``p2p_stats.bytes_in``/``bytes_out`` count ended sessions only; this adds what live
        sessions have moved until now (and never drops, as a session's bytes move over when it ends).
        """
        received, sent = traffic(p.session for p in self._live)
        return self.p2p_stats.bytes_in + received, self.p2p_stats.bytes_out + sent

    async def _watch(self, peer: NetworkPeer) -> None:
        try:
            await peer.wait_closed()
        finally:
            self.pool.remove_peer(peer.peer_id)
            self.p2p_stats.sessions_closed += 1
            self.p2p_stats.pool_size = len(self.pool)
            ev = peer.session.closed_event
            if ev is not None and ev.by_peer:
                P2pStats.bump(self.p2p_stats.disconnects_received, reason_name(ev.reason))
            self._live.discard(peer)
            received, sent = traffic([peer.session])
            self.p2p_stats.bytes_in += received
            self.p2p_stats.bytes_out += sent
            self.remember(peer)


def _resolve(network: str | ChainSpec) -> ChainSpec:
    return network if isinstance(network, ChainSpec) else network_by_name(network)


@contextlib.asynccontextmanager
async def connect(
    network: str | ChainSpec = "mainnet",
    *,
    peer_book: PeerBook | None = None,
    limits: P2pLimits | None = None,
    bootnodes: Sequence[str] | None = None,
    min_peers: int = 1,
    timeout: float | None = None,
    key: PrivateKey | None = None,
    listen: tuple[str, int] | None = None,
    handler: RequestHandler | None = None,
    discovery: bool = True,
    dns: Sequence[str] | None = None,
    dns_resolver: object | None = None,
    on_start: Callable[[PeerNetwork], object] | None = None,
) -> AsyncIterator[PeerNetwork]:
    """A started :class:`PeerNetwork` with at least ``min_peers`` peers, after the warm-up.

    ``peer_book`` remembers peers across runs, e.g. ``PeerCache("peers.db")`` from
    :mod:`ethp2p.store.peers` (the block store's file works); the network closes it.
    ``bootnodes`` defaults to the network's own list; they are dialled and, with
    ``discovery`` (on by default), used as discv4 boot nodes. ``dns`` lists EIP-1459
    trees (default: the network's). Without ``timeout`` it waits as long as it takes
    (like the seed); with one, :class:`NoPeersError` says what was tried. ``on_start`` is
    called with the network once it has started, before the wait for peers (to watch it live).
    """
    spec = _resolve(network)
    boot = list(spec.bootnodes if bootnodes is None else bootnodes)
    net = PeerNetwork(
        spec,
        key=key,
        limits=limits,
        peer_book=peer_book,
        listen=listen,
        handler=handler,
        discovery_bootnodes=boot if discovery else None,
        dns_trees=spec.dns_trees if dns is None else dns,
        dns_resolver=dns_resolver,
    )
    await net.start()
    try:
        if on_start is not None:
            on_start(net)
        net.add_candidates(boot, "bootnode")
        await net.wait_for_peers(min_peers, timeout)
        yield net
    finally:
        await net.close()


def connect_mainnet_peers(
    peer_book: PeerBook | None = None, **kw: Any
) -> contextlib.AbstractAsyncContextManager[PeerNetwork]:
    """The seed's entry point: a peer network on mainnet (see :func:`connect`)."""
    return connect("mainnet", peer_book=peer_book, **kw)
