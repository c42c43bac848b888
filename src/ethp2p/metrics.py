"""Prometheus metrics for long-running commands (``--metrics HOST:PORT``)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server


class Metrics:
    """Fetch rate, peers, faults and bytes, exported over HTTP for Prometheus to scrape."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.blocks = Counter("ethp2p_verified_blocks", "Blocks fetched and verified", registry=r)
        self.bytes = Counter("ethp2p_fetched_bytes", "Raw bytes of verified blocks", registry=r)
        self.faults = Counter("ethp2p_peer_faults", "Faults attributed to peers", registry=r)
        self.peers = Gauge("ethp2p_peers", "Peers in the pool", registry=r)
        self.missing = Gauge("ethp2p_missing_blocks", "Blocks given up on so far", registry=r)
        self.sessions = Gauge("ethp2p_sessions_established", "Sessions established", registry=r)
        self.bytes_in = Gauge("ethp2p_bytes_in", "Bytes received from closed sessions", registry=r)
        self._last: dict[str, int] = {"blocks": 0, "bytes": 0, "faults": 0}

    @classmethod
    def serve(cls, address: str) -> "Metrics":
        host, sep, port = address.rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError(f"--metrics needs HOST:PORT, got {address!r}")
        m = cls()
        start_http_server(int(port), addr=host or "127.0.0.1", registry=m.registry)
        return m

    def update(self, stats: Any, session: Any | None = None) -> None:
        """Bring the metrics up to date with a RangeStats (and a NetworkSession)."""
        for name, value, counter in (
            ("blocks", stats.verified_blocks, self.blocks),
            ("bytes", stats.bytes, self.bytes),
            ("faults", len(stats.faults), self.faults),
        ):
            delta = value - self._last[name]
            if delta > 0:
                counter.inc(delta)
                self._last[name] = value
        self.missing.set(len(stats.missing))
        if session is not None:
            self.peers.set(len(session.pool))
            self.sessions.set(session.p2p_stats.sessions_established)
            self.bytes_in.set(session.p2p_stats.bytes_in)
