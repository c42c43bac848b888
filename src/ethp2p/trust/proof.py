"""How a stored block is known to be on the canonical chain (kept per block in the store)."""

from __future__ import annotations

import enum


class Proof(enum.IntEnum):
    """The anchor a block's place on the canonical chain rests on.

    A block is *proven* when parent hashes link it, through headers ethp2p held,
    down from an anchor at or above it (a checkpoint, or a hash enough peers
    agreed on), or when its pre-merge epoch matches the shipped accumulator root.
    Linking forward from genesis proves nothing, so nothing else counts.
    """

    #: Stored before ethp2p recorded proofs, or found broken by ``ethp2p verify``: proven by nothing.
    UNPROVEN = 0
    #: Linked down from a checkpoint: shipped (mainnet), the genesis, or the user's ``--checkpoint``.
    CHECKPOINT = 1
    #: Its pre-merge epoch's (hash, total difficulty) records match the shipped accumulator root.
    ACCUMULATOR = 2
    #: Linked down from a hash that enough peers, on distinct networks, served (a weaker proof).
    PEER_AGREEMENT = 3
    #: Imported from a file and linked to no anchor: the user vouches for it, ethp2p does not.
    UNANCHORED = 4

    @property
    def label(self) -> str:
        """The name used in summaries, the store and the command line (``peer-agreement``, ...)."""
        return self.name.lower().replace("_", "-")

    @property
    def proven(self) -> bool:
        """True for the kinds that tie a block to the canonical chain."""
        return self in (Proof.CHECKPOINT, Proof.ACCUMULATOR, Proof.PEER_AGREEMENT)


#: The proven kinds, strongest first (a block proven two ways is recorded as the stronger).
PROVEN_KINDS = (Proof.CHECKPOINT, Proof.ACCUMULATOR, Proof.PEER_AGREEMENT)


def stronger(a: Proof, b: Proof) -> Proof:
    """The stronger of two proofs (checkpoint > accumulator > peer agreement > the rest)."""
    rank = {Proof.CHECKPOINT: 0, Proof.ACCUMULATOR: 1, Proof.PEER_AGREEMENT: 2, Proof.UNANCHORED: 3, Proof.UNPROVEN: 4}
    return a if rank[a] <= rank[b] else b
