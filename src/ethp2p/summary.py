"""Summary lines a range fetch prints about proofs (shared by ``ethp2p fetch`` and the demo)."""

from __future__ import annotations

from .sync.prove import describe_span
from .sync.range import RangeStats

#: How to anchor blocks ethp2p could not prove, in every message that lists them.
ANCHOR_HINT = (
    "anchor them with --checkpoint NUMBER:HASH: the hash of a block at or above them that you trust "
    "(from your consensus client or a block explorer)"
)


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
