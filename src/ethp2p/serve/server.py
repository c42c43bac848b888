"""The serving node: accepts inbound RLPx peers and answers eth requests from a block store."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from ..chain.header import Header
from ..crypto.keys import PrivateKey
from ..discovery.service import DiscoveryService
from ..enode import Enode
from ..eth import messages as m
from ..eth.chainspec import ChainSpec
from ..p2p.connection import LocalIdentity
from ..p2p.disconnect import DisconnectReason
from ..peers.admission import InboundLimits
from ..peers.eth_peer import (
    DEFAULT_ETH_VERSIONS,
    ChainHead,
    EthPeer,
    Misconduct,
    PeerError,
    RequestHandler,
    traffic,
)
from ..peers.listener import InboundEvent, InboundFailed, InboundListener, refusal_label
from ..store.blocks import BlockStore
from ..transport.stream import TransportError
from .handler import StoreHandler
from .pacing import ImportGate
from .roles import GROW_BY, GROW_EVERY, MAX_ANSWER_DELAY, MAX_GROW_BY, MAX_GROW_EVERY, MIN_GROW_EVERY, ServedView

if TYPE_CHECKING:
    from .adversary import Misbehaviour

log = logging.getLogger(__name__)

#: Defaults in line with geth (inbound share of max peers, handshake deadline).
MAX_INBOUND = 200
HANDSHAKE_TIMEOUT = 10.0
#: How often the store's block range is re-read and, if changed, announced (eth/69+).
RANGE_UPDATE_INTERVAL = 120.0


@dataclass
class ServerStats:
    """Counts of what the server has seen."""

    accepted: int = 0
    #: Inbound connections refused, in all and by :data:`~ethp2p.peers.listener.REFUSALS` label.
    rejected_full: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    handshake_failures: int = 0
    sessions: int = 0
    disconnect_reasons: dict[str, int] = field(default_factory=dict)
    range_updates_sent: int = 0
    #: Of ended sessions (:meth:`HistoryServer.traffic` and :meth:`~HistoryServer.requests_served`
    #: add the live ones): bytes received and sent, and requests answered by kind.
    bytes_in: int = 0
    bytes_out: int = 0
    requests_by_kind: dict[str, int] = field(default_factory=dict)
    #: Of ended sessions: block-body answers held for a client's importer, and seconds held in all.
    answers_paced: int = 0
    seconds_paced: float = 0.0


def store_head(store: BlockStore, spec: ChainSpec) -> ChainHead:
    """Our head as announced in Status: the top of the longest run of consecutive stored blocks, and
    (eth/69+) that run as the range we serve.

    A store need not start at the genesis: one that fetched blocks 10,000..16,383 (plus the genesis,
    which every store holds) announces 10,000..16,383, as an expired-history node announces its
    first kept block. eth/69 says every block of the announced range is served, so a store with gaps
    announces one run only, the one that serves the most blocks (of equally long runs, the highest).
    Blocks outside it are still served when asked for, by hash or number; an answer ends before the
    first block the store lacks (empty if the request starts with one).
    """
    rng = store.longest_run()
    if rng is None:
        return ChainHead.genesis(spec)
    lo, hi = rng
    raw = store.header_by_number(hi)
    if raw is None:  # a damaged store: a canonical row without its header
        return ChainHead.genesis(spec)
    h = Header(raw)
    td = store.total_difficulty(hi) or max(spec.genesis_difficulty, h.difficulty)
    return ChainHead(h.number, h.hash, h.timestamp, td, lo)


class HistoryServer:
    """Listens on ``host:port`` and serves the store to every compatible peer.

    Inbound sessions beyond ``max_inbound`` complete the handshake and are then told
    ``TOO_MANY_PEERS``; handshakes that take longer than ``handshake_timeout`` are dropped,
    and connections beyond the handshake slots are closed unanswered (the rules of
    :class:`~ethp2p.peers.listener.InboundListener`, shared with the peer network).
    """

    def __init__(
        self,
        store: BlockStore,
        spec: ChainSpec,
        *,
        key: PrivateKey | None = None,
        host: str = "127.0.0.1",
        port: int = 30303,
        max_inbound: int = MAX_INBOUND,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
        versions: Sequence[int] = DEFAULT_ETH_VERSIONS,
        handler: RequestHandler | None = None,
        range_update_interval: float = RANGE_UPDATE_INTERVAL,
        misbehave: Misbehaviour | None = None,
        fork_block: int | None = None,
        discovery: bool = False,
        bootnodes: Sequence[str] = (),
        answer_delay: float = 0.0,
        expire_before: int = 0,
        grow_from: int | None = None,
        grow_every: float = GROW_EVERY,
        grow_by: int = GROW_BY,
        pace_importers: bool = True,
        inbound_limits: InboundLimits | None = None,
    ) -> None:
        """The simulation roles (:mod:`ethp2p.serve.roles`; each keeps to the protocol):
        ``answer_delay`` seconds before each answer (latency); ``expire_before``: bodies and receipts
        below it are not served and eth/69+ announce it as the earliest block (expired history);
        ``grow_from``: the latest block served and announced starts there and grows by ``grow_by``
        blocks every ``grow_every`` seconds up to the store's top, with a BlockRangeUpdate each time.
        ``pace_importers``: block-body answers to a client whose fetcher stalls when a server outruns
        its importer wait until it has imported close to them (:mod:`ethp2p.serve.pacing`).
        ``inbound_limits``: the admission gate's per-address bounds and throttle (default: from
        ``max_inbound``, :meth:`~ethp2p.peers.admission.InboundLimits.for_inbound`).
        A bad value, or a cut or start that does not fit the store, is a ValueError
        (:class:`~ethp2p.serve.roles.RoleError` for the latter)."""
        if tuple(sorted(set(versions))) != tuple(sorted(versions)) or not versions:
            raise ValueError(f"eth versions must be distinct and at least one, got {list(versions)}")
        if not set(versions) <= set(m.SUPPORTED_VERSIONS):
            raise ValueError(f"eth versions must be among {list(m.SUPPORTED_VERSIONS)}, got {list(versions)}")
        if not 0.0 <= answer_delay <= MAX_ANSWER_DELAY:
            raise ValueError(f"answer delay must be 0..{MAX_ANSWER_DELAY:g} seconds, got {answer_delay}")
        if not MIN_GROW_EVERY <= grow_every <= MAX_GROW_EVERY:
            raise ValueError(
                f"growth interval must be {MIN_GROW_EVERY:g}..{MAX_GROW_EVERY:g} seconds, got {grow_every}"
            )
        if not 1 <= grow_by <= MAX_GROW_BY:
            raise ValueError(f"growth step must be 1..{MAX_GROW_BY} blocks, got {grow_by}")
        #: The store itself, under any view below (what :meth:`announce_range` asks whether it changed).
        self._backing = store
        #: The roles' view of the store (None when the node holds its store as it is).
        self.roles: ServedView | None = None
        if expire_before or grow_from is not None:
            self.roles = ServedView(store, expire_before=expire_before, top=grow_from)
            store = cast(BlockStore, self.roles)  # a read-only view with the reading methods
        self.answer_delay = answer_delay
        self.pace_importers = pace_importers
        self.grow_every = grow_every
        self.grow_by = grow_by
        self.store = store
        self.spec = spec
        self.key = key or PrivateKey.generate()
        self.host = host
        self.port = port
        self.max_inbound = max_inbound
        self.handshake_timeout = handshake_timeout
        self.versions = tuple(versions)
        self.handler = handler or StoreHandler(store)
        #: A test adversary's session-level misbehaviour (None for every normal server).
        self.misconduct: Misconduct | None = None
        #: A ``fork`` adversary's first forged block (None for every other server).
        self.fork_block: int | None = None
        if misbehave is not None:  # test adversary: see ethp2p.serve.adversary
            from .adversary import AdversarialHandler, ForkedStore, Misbehaviour, misconduct

            if misbehave is Misbehaviour.FORK:
                # It keeps to the protocol: only the chain it serves (and announces) is another one.
                view = ForkedStore(store, ForkedStore.default_fork_block(store) if fork_block is None else fork_block)
                self.fork_block = view.fork_block
                self.store = store = cast(BlockStore, view)  # a read-only view with the reading methods
                self.handler = StoreHandler(store)
            else:
                self.handler = AdversarialHandler(store, misbehave)
            self.misconduct = misconduct(misbehave, self.handler)
        if fork_block is not None and self.fork_block is None:
            raise ValueError("fork_block is only for misbehave=Misbehaviour.FORK")
        self.range_update_interval = range_update_interval
        self.stats = ServerStats()
        self.peers: set[EthPeer] = set()
        self._head_token = self._backing.change_token()
        self.head = store_head(store, spec)
        self._tasks: set[asyncio.Task] = set()
        self._listener = InboundListener(
            self, max_inbound=max_inbound, handshake_timeout=handshake_timeout, spawn=self._spawn, limits=inbound_limits
        )
        self._started = False
        self.discovery_enabled = discovery
        self.discovery_bootnodes = tuple(bootnodes)
        self.discovery: DiscoveryService | None = None

    @property
    def enode(self) -> Enode:
        return Enode(self.key.public_key.to_bytes(), self.host, self.port, self.port)

    async def start(self) -> None:
        """Bind and start accepting (``port=0`` picks a free port)."""
        self.port = await self._listener.start(self.host, self.port)
        self._started = True
        if self.discovery_enabled:
            # discv4 on the same port number (UDP), so peers that find us can dial us.
            self.discovery = DiscoveryService(
                self.key,
                self.host,
                self.port,
                tcp_port=self.port,
                bootnodes=self.discovery_bootnodes,
                enr_extra=self.spec.fork_id(self.head.number, self.head.timestamp).enr_entry(),
            )
            await self.discovery.start()
        self._spawn(self._range_updates())
        if self.roles is not None and self.roles.top is not None:
            self._spawn(self._grow())
        log.info(
            "serving %s blocks %s..%s at %s", self.spec.name, self.head.earliest, self.head.number, self.enode.url()
        )

    async def serve_forever(self) -> None:
        if not self._started:
            await self.start()
        await self._listener.serve_forever()

    async def close(self) -> None:
        """Stop accepting, disconnect every peer, and wait for their sessions to end."""
        self._listener.close()
        if self.discovery is not None:
            await self.discovery.close()
        for peer in list(self.peers):
            with contextlib.suppress(Exception):
                await peer.disconnect(DisconnectReason.CLIENT_QUITTING)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._listener.wait_closed(2)

    async def __aenter__(self) -> HistoryServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _count_reason(self, text: str) -> None:
        self.stats.disconnect_reasons[text] = self.stats.disconnect_reasons.get(text, 0) + 1

    # ---- the InboundOwner side of the listener ----------------------------------------------

    def inbound_full(self) -> bool:
        """Whether ``max_inbound`` peers are being served (a new one is told TOO_MANY_PEERS)."""
        return len(self.peers) >= self.max_inbound

    def local_identity(self) -> LocalIdentity:
        """Our Hello, for refusing a peer when full."""
        return EthPeer.local_identity(self.key, self.versions, self.port)

    async def accept_peer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> EthPeer:
        """The recipient handshake and Status exchange with this server's options."""
        return await EthPeer.accept(
            reader,
            writer,
            self.spec,
            key=self.key,
            head=self.head,
            versions=self.versions,
            handler=self.handler,
            handshake_timeout=self.handshake_timeout,
            listen_port=self.port,
            misconduct=self.misconduct,
            answer_delay=self.answer_delay,
            answer_gate=ImportGate(self.store) if self.pace_importers else None,
        )

    def on_inbound_event(self, event: InboundEvent) -> None:
        """Count a connection that was refused (by why) or failed its handshake."""
        label = refusal_label(event)
        if label is not None:
            self.stats.rejected_full += 1
            self.stats.refused[label] = self.stats.refused.get(label, 0) + 1
        else:
            self.stats.handshake_failures += 1
            if isinstance(event, InboundFailed):
                log.debug("inbound handshake failed: %s", event.error)

    async def on_inbound_peer(self, peer: EthPeer) -> None:
        """Serve an admitted peer until its session ends."""
        self.stats.accepted += 1
        self.stats.sessions += 1
        self.peers.add(peer)
        log.info("peer %s connected: %s eth/%d", peer.peer_id.hex()[:16], peer.client_id, peer.eth_version)
        try:
            await peer.wait_closed()
        finally:
            self.peers.discard(peer)
            received, sent = traffic([peer])
            self.stats.bytes_in += received
            self.stats.bytes_out += sent
            if isinstance(peer.answer_gate, ImportGate):
                self.stats.answers_paced += peer.answer_gate.held
                self.stats.seconds_paced += peer.answer_gate.held_seconds
            for kind, n in peer.counters.served_by_kind.items():
                self.stats.requests_by_kind[kind] = self.stats.requests_by_kind.get(kind, 0) + n
            ev = peer.closed_event
            text = ev.describe() if ev else "connection lost"
            self._count_reason(text)
            log.info("peer %s left: %s", peer.peer_id.hex()[:16], text)

    def traffic(self) -> tuple[int, int]:
        """Bytes received and sent by served sessions so far, ended and live."""
        received, sent = traffic(self.peers)
        return self.stats.bytes_in + received, self.stats.bytes_out + sent

    def requests_served(self) -> dict[str, int]:
        """Requests answered so far (ended and live sessions), by kind: headers, bodies, receipts."""
        total = dict(self.stats.requests_by_kind)
        for peer in self.peers:
            for kind, n in peer.counters.served_by_kind.items():
                total[kind] = total.get(kind, 0) + n
        return total

    async def announce_range(self, *, force: bool = False) -> int:
        """Re-read the store's range; if it changed, send BlockRangeUpdate to eth/69+ peers.

        The range is re-read only when the store reports a change (or ``force``: a role's view moved),
        since the scan would hold the event loop, and every answer, for about 2 s on a mainnet store."""
        token = self._backing.change_token()
        if not force and token == self._head_token:
            return 0
        self._head_token = token
        head = store_head(self.store, self.spec)
        if (head.earliest, head.number, head.hash) == (self.head.earliest, self.head.number, self.head.hash):
            return 0
        self.head = head
        sent = 0
        for peer in list(self.peers):
            if peer.eth_version >= 69 and not peer.closed:
                with contextlib.suppress(PeerError, TransportError, RuntimeError):
                    await peer.send_block_range_update(m.BlockRangeUpdate(head.earliest, head.number, head.hash))
                    sent += 1
        self.stats.range_updates_sent += sent
        return sent

    async def _grow(self) -> None:
        """The growing role: raise the served top every ``grow_every`` seconds and announce it."""
        assert self.roles is not None
        more = True
        while more:
            await asyncio.sleep(self.grow_every)
            more = self.roles.grow(self.grow_by)
            try:
                await self.announce_range(force=True)
            except Exception:  # never let a store hiccup end the server
                log.exception("range update failed")
            log.info("grown to block %d", self.head.number)

    async def _range_updates(self) -> None:
        while True:
            await asyncio.sleep(self.range_update_interval)
            try:
                await self.announce_range()
            except Exception:  # never let a store hiccup end the server
                log.exception("range update failed")
