"""Summary lines a range fetch prints about proofs and given-up blocks (shared by ``ethp2p fetch`` and the demo)."""

from __future__ import annotations

from .peers.limits import P2pStats
from .sync.prove import describe_span
from .sync.range import RangeStats, describe_announced
from .sync.schedule import MAX_ATTEMPTS, UNSERVED_AFTER

#: How to anchor blocks ethp2p could not prove, in every message that lists them.
ANCHOR_HINT = (
    "anchor them with --checkpoint NUMBER:HASH: the hash of a block at or above them that you trust "
    "(from your consensus client or a block explorer)"
)


#: How ``peers_lines`` names each candidate source (the four always shown, in this order).
SOURCE_NAMES = {"discv4": "discv4", "dns": "DNS", "bootnode": "boot nodes", "cache": "cache"}
#: Most peers listed with their block counts.
MAX_PEERS_LISTED = 8


def found_text(p2p: P2pStats) -> str:
    """The peers a network found, by source: "17 found (discv4 12, DNS 0, boot nodes 1, cache 4)"."""
    found = p2p.found_by_source
    parts = [f"{name} {found.get(key, 0):,}" for key, name in SOURCE_NAMES.items()]
    parts += [f"{key} {n:,}" for key, n in sorted(found.items()) if key not in SOURCE_NAMES]
    return f"{sum(found.values()):,} found ({', '.join(parts)})"


def peers_lines(p2p: P2pStats, s: RangeStats) -> list[str]:
    """Peers found (by source), connected and used (delivered verified blocks), and the blocks of each
    peer used: "peers: 17 found (discv4 12, DNS 0, boot nodes 1, cache 4), 12 connected, 8 used"."""
    out = [f"peers: {found_text(p2p)}, {p2p.peers_connected:,} connected, {len(s.blocks_by_peer):,} used"]
    if s.blocks_by_peer:
        ranked = sorted(s.blocks_by_peer.items(), key=lambda kv: (-kv[1], kv[0]))
        listed = ", ".join(f"{name}: {n:,}" for name, n in ranked[:MAX_PEERS_LISTED])
        more = len(ranked) - MAX_PEERS_LISTED
        out.append(f"blocks by peer: {listed}" + (f" (and {more:,} more)" if more > 0 else ""))
    return out


def proof_lines(s: RangeStats, *, indent: str = "") -> list[str]:
    """How the stored blocks were proven, which peers were caught on another chain, what was not proven."""
    out: list[str] = []
    if s.proven:
        kinds = ", ".join(f"{n:,} by {kind}" for kind, n in sorted(s.proven.items(), key=lambda kv: -kv[1]))
        used = "; ".join(f"{src}: {n:,}" for src, n in sorted(s.proven_by.items()))
        out.append(f"proven: {kinds} ({used})")
    p = s.proof
    if p.header_requests:
        out.append(
            f"proof headers: {p.headers:,} in {p.header_requests:,} requests "
            f"({p.extra_headers:,} beyond the range, to reach anchors), {p.seconds:.1f} s"
        )
    for w in s.wrong_chain:
        out.append(f"wrong chain (banned): {str(w)[:300]}")
    if s.unproven:
        out.append(f"unproven: {len(s.unproven):,} blocks ({describe_span(s.unproven)}), not stored:")
        out += [f"  {line[:300]}" for line in p.unprovable[:5]]
        out.append(f"  {ANCHOR_HINT}")
    return [indent + line for line in out]


def given_up_lines(s: RangeStats, *, indent: str = "") -> list[str]:
    """Why the blocks given up on are missing: what no peer served, or that no peer holds them."""
    out: list[str] = []
    for why in ("receipts", "bodies", "bodies and receipts", "expired", "unserved", "attempts"):
        numbers = sorted(s.given_up.get(why, ()))
        if not numbers:
            continue
        lo, hi = numbers[0], numbers[-1]
        blocks = f"{len(numbers):,} block{'s' if len(numbers) > 1 else ''} ({lo:,}" + (f"..{hi:,})" if hi > lo else ")")
        if why == "expired":
            out.append(
                f"given up: no peer serves {describe_span(numbers)}: {describe_announced(s.expired_ranges)} "
                "(their bodies and receipts below that have expired)"
            )
        elif why == "unserved":
            out.append(f"given up: no peer serves {blocks}: no connected peer's range holds them")
        elif why == "attempts":
            out.append(f"given up: {blocks} not delivered in {MAX_ATTEMPTS} attempts (timeouts or bad answers)")
        else:
            out.append(
                f"given up: no peer served {why} for {blocks}: "
                f"each peer that holds them answered {UNSERVED_AFTER} times without them"
            )
    return [indent + line for line in out]
