"""Proof by linkage from above: walking blocks from the top down, which ones an anchor links to.

Block ``n`` is proven when its hash is the parent hash of a proven block ``n + 1``,
or when it is a checkpoint. The walk goes down (highest block first) because a
chain linked forward from genesis proves nothing: anyone can extend one.
"""

from __future__ import annotations

from dataclasses import dataclass

from .anchors import Anchors
from .proof import Proof


@dataclass(frozen=True, slots=True)
class Expected:
    """Block ``number`` must have hash ``block_hash`` (what the proven block above it links to)."""

    number: int
    block_hash: bytes
    proof: Proof


@dataclass(frozen=True, slots=True)
class Step:
    """What the walk found for one block: its proof (None: not linked to any anchor) and any contradiction."""

    proof: Proof | None
    problem: str | None = None


class DownwardLinker:
    """Feed blocks in descending order of number; each :meth:`step` says whether an anchor links to it.

    ``expect`` seeds the walk with what a proven block above the first one fed
    requires (e.g. a stored block ``top + 1``). A block can also carry the proof
    it was recorded with (``recorded``): a proven one stands as an anchor of its
    own when nothing above links to it, so a stored run proven by a fetch (whose
    bridge headers to the anchor were not kept) stays proven.
    """

    def __init__(self, anchors: Anchors, expect: Expected | None = None) -> None:
        self.anchors = anchors
        self.expect = expect

    def step(self, number: int, block_hash: bytes, parent_hash: bytes, recorded: Proof | None = None) -> Step:
        exp = self.expect if self.expect is not None and self.expect.number == number else None
        problem = self.anchors.contradiction(number, block_hash, parent_hash)
        if problem is None and exp is not None and exp.block_hash != block_hash:
            problem = (
                f"block {number:,} has hash 0x{block_hash.hex()[:16]}…, but block {number + 1:,} "
                f"({exp.proof.label}) links to 0x{exp.block_hash.hex()[:16]}…"
            )
        if problem is not None:
            self.expect = None
            return Step(None, problem)
        if self.anchors.checkpoint(number) is not None:
            proof: Proof | None = Proof.CHECKPOINT
        elif exp is not None:
            proof = exp.proof
        else:
            proof = None
        if recorded is not None and recorded.proven:
            proof = recorded  # keep what it was proven by (no churn between equally good anchors)
        self.expect = Expected(number - 1, parent_hash, proof) if proof is not None else None
        return Step(proof)
