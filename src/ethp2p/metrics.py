"""Prometheus metrics for long-running commands (``fetch`` and ``serve`` with ``--metrics HOST:PORT``).

Names follow https://prometheus.io/docs/practices/naming/: counters end in ``_total``
(prometheus_client appends it to a Counter's name), byte counts in ``_bytes``. Every label
value that comes from the network (a peer's client name) goes through :class:`BoundedLabels`,
so a hostile network can add at most a few dozen series.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from .peers.listener import REFUSALS

if TYPE_CHECKING:
    from .peers.network import PeerNetwork
    from .serve.server import HistoryServer
    from .sync.range import RangeStats

#: Client names (the first ``/``-part of a peer's client id, lower-cased) that always get their own label.
KNOWN_CLIENTS = (
    "geth",
    "nethermind",
    "erigon",
    "besu",
    "reth",
    "ethereumjs",
    "nimbus",
    "ethp2p",
    "coregeth",
    "bor",
    "openethereum",
)
#: How often the commands bring their metrics up to date (seconds).
UPDATE_INTERVAL = 1.0

_LABEL_TEXT = re.compile(r"[a-z0-9][a-z0-9._-]{0,31}")


class MetricsAddressError(ValueError):
    """A ``--metrics`` value that is not ``HOST:PORT``."""


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` too) as ``(host, port)``; :class:`MetricsAddressError` says what is wrong."""
    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise MetricsAddressError(f"bad --metrics {text!r}: use HOST:PORT with a port 1-65535, e.g. 127.0.0.1:9109")
    return host, int(port)


class BoundedLabels:
    """Maps untrusted names to at most ``len(known) + extra + 1`` label values.

    Known names keep their own value, the first ``extra`` other well-formed names seen get
    theirs, and everything else (later newcomers, odd characters, over-long names) is ``other``.
    """

    OTHER = "other"

    def __init__(self, known: Iterable[str] = (), extra: int = 8) -> None:
        self.known = frozenset(known)
        self.extra = extra
        self._admitted: set[str] = set()

    def __call__(self, name: str) -> str:
        name = name.lower()
        if name in self.known or name in self._admitted:
            return name
        if len(self._admitted) < self.extra and _LABEL_TEXT.fullmatch(name) and name != self.OTHER:
            self._admitted.add(name)
            return name
        return self.OTHER


def client_name(client_id: str) -> str:
    """The client part of a devp2p client id: ``Geth/v1.14.0-stable/linux-amd64/go1.22`` -> ``Geth``."""
    return client_id.partition("/")[0]


class Metrics:
    """One Prometheus registry and its HTTP endpoint; :class:`FetchMetrics` and :class:`ServeMetrics`
    define what each command exports.

    Counters mirror running totals kept elsewhere (RangeStats, P2pStats, ServerStats):
    :meth:`_advance` adds what a total has grown by since the last update.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.received = Counter(
            "ethp2p_received_bytes", "Bytes received from peers (live and ended sessions)", registry=r
        )
        self.sent = Counter("ethp2p_sent_bytes", "Bytes sent to peers (live and ended sessions)", registry=r)
        self.clients = BoundedLabels(KNOWN_CLIENTS)
        self._totals: dict[tuple[int, tuple[str, ...]], float] = {}
        self._client_labels: set[str] = set()

    def listen(self, host: str, port: int) -> None:
        """Serve the registry at ``http://host:port/metrics`` (a daemon thread); OSError if it can't bind."""
        start_http_server(port, addr=host, registry=self.registry)

    def _advance(self, counter: Counter, total: float, *labels: str) -> None:
        """Bring ``counter`` (with ``labels``) up to ``total``; a total that went down adds nothing."""
        key = (id(counter), labels)
        delta = total - self._totals.get(key, 0)
        if delta > 0:
            (counter.labels(*labels) if labels else counter).inc(delta)
            self._totals[key] = total

    def _advance_by_label(self, counter: Counter, totals: Mapping[str, int], label: Callable[[str], str]) -> None:
        """:meth:`_advance` for per-kind totals, with kinds mapped to bounded labels by ``label``."""
        merged: Tally[str] = Tally()
        for kind, n in totals.items():
            merged[label(kind)] += n
        for value, n in merged.items():
            self._advance(counter, n, value)

    def _set_peers(self, gauge: Gauge, client_ids: Iterable[str]) -> None:
        """Set ``gauge{client=...}`` to the peers by client now (0 for clients no longer connected)."""
        now = Tally(self.clients(client_name(c)) for c in client_ids)
        self._client_labels |= now.keys()
        for value in self._client_labels:
            gauge.labels(value).set(now.get(value, 0))

    def _set_traffic(self, received: int, sent: int) -> None:
        self._advance(self.received, received)
        self._advance(self.sent, sent)

    async def run(self, update: Callable[[], None], interval: float = UPDATE_INTERVAL) -> None:
        """Call ``update`` now and every ``interval`` seconds until cancelled."""
        while True:
            update()
            await asyncio.sleep(interval)


class FetchMetrics(Metrics):
    """What ``ethp2p fetch`` exports: progress, faults, peers, sessions and traffic."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__(registry)
        r = self.registry
        self.blocks = Counter("ethp2p_verified_blocks", "Blocks fetched, verified and stored", registry=r)
        self.block_bytes = Counter(
            "ethp2p_verified_block_bytes", "Bytes of verified blocks (header, body, receipts)", registry=r
        )
        self.faults = Counter("ethp2p_peer_faults", "Faults of peers during the fetch, by kind", ["kind"], registry=r)
        self.peers = Gauge("ethp2p_peers", "Peers in the pool, by client", ["client"], registry=r)
        self.missing = Gauge("ethp2p_missing_blocks", "Blocks given up on so far", registry=r)
        self.sessions = Counter("ethp2p_sessions_established", "Peer sessions established", registry=r)
        self.fault_kinds = BoundedLabels(extra=20)

    def update(self, network: PeerNetwork, stats: RangeStats | None = None) -> None:
        """Bring the metrics up to date with ``network`` and, once the fetch runs, its ``stats``."""
        self._set_peers(self.peers, (p.client_id for p in network.pool.snapshot()))
        self._advance(self.sessions, network.p2p_stats.sessions_established)
        self._set_traffic(*network.traffic())
        if stats is not None:
            self._advance(self.blocks, stats.verified_blocks)
            self._advance(self.block_bytes, stats.bytes)
            self._advance_by_label(self.faults, stats.fault_kinds, self.fault_kinds)
            self.missing.set(len(stats.missing))


class ServeMetrics(Metrics):
    """What ``ethp2p serve`` exports: sessions, peers, requests answered, refusals and traffic."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__(registry)
        r = self.registry
        self.sessions = Counter("ethp2p_sessions_served", "Inbound sessions established", registry=r)
        self.peers = Gauge("ethp2p_inbound_peers", "Inbound peers connected now, by client", ["client"], registry=r)
        self.requests = Counter(
            "ethp2p_requests_served", "Requests answered, by kind (headers, bodies, receipts)", ["kind"], registry=r
        )
        self.rejected_full = Counter(
            "ethp2p_rejected_full", "Inbound connections refused because the server was full", registry=r
        )
        self.request_kinds = BoundedLabels(("headers", "bodies", "receipts"), extra=0)
        self.refused = Counter(
            "ethp2p_inbound_refused",
            "Inbound connections refused, by reason (handshake slots or an address's share full, "
            "connects throttled, sessions full)",
            ["reason"],
            registry=r,
        )
        self.refusal_reasons = BoundedLabels(REFUSALS, extra=0)
        self.handshake_failures = Counter(
            "ethp2p_inbound_handshake_failures", "Inbound connections whose handshake or Status failed", registry=r
        )
        self.discovery_pending = Gauge(
            "ethp2p_discovery_pending_requests",
            "discv4 requests (Pings, FindNodes, ENRRequests) awaiting a reply now (with --discovery)",
            registry=r,
        )
        self.discovery_bonds = Gauge(
            "ethp2p_discovery_bonds", "discv4 nodes that proved their endpoint in the last 24 hours", registry=r
        )

    def update(self, server: HistoryServer) -> None:
        """Bring the metrics up to date with ``server``."""
        core = server.discovery.core if server.discovery is not None else None
        if core is not None:
            self.discovery_pending.set(core.pending())
            self.discovery_bonds.set(len(core.bonds))
        self._set_peers(self.peers, (p.client_id for p in list(server.peers)))
        self._advance(self.sessions, server.stats.sessions)
        self._advance(self.rejected_full, server.stats.rejected_full)
        self._advance_by_label(self.refused, server.stats.refused, self.refusal_reasons)
        self._advance(self.handshake_failures, server.stats.handshake_failures)
        self._advance_by_label(self.requests, server.requests_served(), self.request_kinds)
        self._set_traffic(*server.traffic())
