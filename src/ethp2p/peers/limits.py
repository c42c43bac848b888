"""Peer network limits (the seed's ``P2pLimits``) and counters (``P2pStats``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

DAY_MS = 24 * 3600 * 1000


def inbound_handshake_slots(max_inbound: int) -> int:
    """Inbound handshakes allowed at once for a cap of ``max_inbound`` sessions.

    Twice the cap, and at least 2: a peer that arrives when the sessions are full still
    gets a whole handshake and a TOO_MANY_PEERS disconnect, while a flood of connections
    that never finish their handshake is dropped unanswered once the slots are taken.
    """
    return 2 * max(max_inbound, 1)


@dataclass(frozen=True)
class P2pLimits:
    """Bounds of a peer network; every field can be overridden with :func:`p2p_limits`."""

    request_timeout: float = 4.0
    max_headers_per_request: int = 1024
    max_outbound: int = 400
    max_inbound: int = 200
    max_concurrent_dials: int = 200
    peer_refill_interval: float = 0.5
    peer_cache_ttl_ms: int = 7 * DAY_MS
    peer_cache_max: int = 5000
    peer_start_warmup: float = 2.0
    #: Head probes running at once.
    max_concurrent_probes: int = 24
    #: Peers whose head is unknown (probe failed) are probed again this often (seconds).
    head_reprobe_interval: float = 30.0
    #: Bound on TCP connect + RLPx + Hello + Status for one dial or accept.
    handshake_timeout: float = 10.0
    #: A peer that answers none of this many requests in a row is dropped.
    max_consecutive_timeouts: int = 3
    #: How long a banned peer stays banned (seconds).
    ban_duration: float = 1800.0
    #: Dial back-off after a failure: base and cap (seconds), doubling per consecutive failure.
    dial_backoff_base: float = 5.0
    dial_backoff_max: float = 600.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value < 0 or (f.name.startswith("max_") and value == 0 and f.name not in ("max_inbound",)):
                raise ValueError(f"P2pLimits.{f.name} must be positive, got {value}")


def p2p_limits(**overrides: float | int) -> P2pLimits:
    """The seed's defaults, with ``overrides`` applied (unknown names are an error)."""
    names = {f.name for f in dataclasses.fields(P2pLimits)}
    unknown = set(overrides) - names
    if unknown:
        raise TypeError(f"unknown limit(s): {', '.join(sorted(unknown))}")
    return P2pLimits(**overrides)  # type: ignore[arg-type]


@dataclass
class P2pStats:
    """Counters of one peer network (the seed's four, and what its users needed besides)."""

    discovered_count: int = 0
    genesis_mismatch_count: int = 0
    sessions_established: int = 0
    sessions_closed: int = 0
    dials_attempted: int = 0
    dials_failed: int = 0
    inbound_accepted: int = 0
    inbound_rejected: int = 0
    handshake_failures: dict[str, int] = field(default_factory=dict)
    disconnects_received: dict[str, int] = field(default_factory=dict)
    disconnects_sent: dict[str, int] = field(default_factory=dict)
    bans: int = 0
    probes_ok: int = 0
    probes_failed: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    pool_size: int = 0
    max_concurrent_dials_seen: int = 0
    max_outbound_seen: int = 0
    max_inbound_seen: int = 0
    #: Distinct nodes offered as candidates, by where each was first found (``discv4``, ``dns``,
    #: ``bootnode``, ``cache``, ``static``), and distinct peers admitted (either direction).
    #: Exact for the first :data:`~ethp2p.peers.network.MAX_DISTINCT_TRACKED` nodes.
    found_by_source: dict[str, int] = field(default_factory=dict)
    peers_connected: int = 0

    @staticmethod
    def bump(counter: dict[str, int], key: str) -> None:
        counter[key] = counter.get(key, 0) + 1
