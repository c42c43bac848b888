"""Peer agreement: a block hash counts as proven when enough peers on distinct networks serve it."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from .anchors import AgreementRule

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Answer:
    """What one peer served for the block in question (``block_hash`` None: it had none)."""

    peer_id: bytes
    address: str | None
    block_hash: bytes | None


@dataclass
class Agreement:
    """The outcome: the agreed hash (None if none qualified) and, per hash, who served it."""

    block_hash: bytes | None
    #: hash -> the number of peers it counts as (distinct ids on distinct networks).
    support: dict[bytes, int] = field(default_factory=dict)
    #: hash -> ids of the peers that served it.
    servers: dict[bytes, list[bytes]] = field(default_factory=dict)
    reason: str = ""

    def dissenters(self) -> list[bytes]:
        """Ids of the peers that served another hash than the agreed one."""
        if self.block_hash is None:
            return []
        return [p for h, ids in self.servers.items() if h != self.block_hash for p in ids]


def network_of(address: str | None, rule: AgreementRule) -> str | None:
    """The network an address belongs to under ``rule`` (its prefix), or None if it has none."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    bits = rule.ipv4_prefix if ip.version == 4 else rule.ipv6_prefix
    return str(ipaddress.ip_network(f"{ip}/{bits}", strict=False))


def _matching(pairs: set[tuple[bytes, str]]) -> int:
    """Most peers that can each stand for a distinct network (bipartite matching of ids to networks)."""
    by_id: dict[bytes, list[str]] = {}
    for pid, net in pairs:
        by_id.setdefault(pid, []).append(net)
    owner: dict[str, bytes] = {}

    def place(pid: bytes, seen: set[str]) -> bool:
        for net in by_id[pid]:
            if net in seen:
                continue
            seen.add(net)
            if net not in owner or place(owner[net], seen):
                owner[net] = pid
                return True
        return False

    return sum(place(pid, set()) for pid in by_id)


def agree(answers: Iterable[Answer], rule: AgreementRule) -> Agreement:
    """The hash at least ``rule.min_peers`` peers with distinct ids on distinct networks served.

    Peers without an address count for nothing. If two hashes qualify, the peers
    disagree and nothing is agreed.
    """
    pairs: dict[bytes, set[tuple[bytes, str]]] = {}
    servers: dict[bytes, list[bytes]] = {}
    for a in answers:
        if a.block_hash is None:
            continue
        servers.setdefault(a.block_hash, [])
        if a.peer_id not in servers[a.block_hash]:
            servers[a.block_hash].append(a.peer_id)
        net = network_of(a.address, rule)
        if net is not None:
            pairs.setdefault(a.block_hash, set()).add((a.peer_id, net))
    support = {h: _matching(pairs.get(h, set())) for h in servers}
    qualified = [h for h, n in support.items() if n >= rule.min_peers]
    nets = f"distinct /{rule.ipv4_prefix} networks"
    if len(qualified) == 1:
        h = qualified[0]
        return Agreement(h, support, servers, f"{support[h]} peers from {nets} served it")
    if len(qualified) > 1:
        return Agreement(None, support, servers, f"{len(qualified)} different hashes each have {rule.min_peers}+ peers")
    best = max(support.values(), default=0)
    return Agreement(
        None,
        support,
        servers,
        f"at most {best} peer(s) from {nets} served the same hash; {rule.min_peers} needed",
    )


def spread_over_networks(
    items: Sequence[T], address_of: Callable[[T], str | None], rule: AgreementRule, limit: int
) -> list[T]:
    """Up to ``limit`` of ``items``, one per network first (then a second per network, ...), so that
    many peers from a few networks cannot crowd out the others; items without an address come last."""
    by_net: dict[str | None, list[T]] = {}
    for item in items:
        by_net.setdefault(network_of(address_of(item), rule), []).append(item)
    queues = [q for net, q in by_net.items() if net is not None]
    out: list[T] = []
    while len(out) < limit and any(queues):
        for q in queues:
            if q and len(out) < limit:
                out.append(q.pop(0))
    out += by_net.get(None, [])[: max(0, limit - len(out))]
    return out


def networks_among(items: Iterable[T], address_of: Callable[[T], str | None], rule: AgreementRule) -> int:
    """How many distinct networks the items' addresses fall in."""
    return len({n for n in (network_of(address_of(i), rule) for i in items) if n is not None})
