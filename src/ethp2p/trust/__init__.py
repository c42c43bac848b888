"""Proving stored history is on the canonical chain: anchors (checkpoints, the pre-merge
accumulator, era1 checksums), peer agreement, and how each block was proven."""

from .accumulator import EpochAccumulator, epoch_records, mainnet_accumulator
from .agreement import Agreement, Answer, agree, network_of
from .anchors import AgreementRule, AnchorError, Anchors, Checkpoint, anchors_for, parse_checkpoint
from .proof import Proof

__all__ = [
    "Agreement",
    "AgreementRule",
    "AnchorError",
    "Anchors",
    "Answer",
    "Checkpoint",
    "EpochAccumulator",
    "Proof",
    "agree",
    "anchors_for",
    "epoch_records",
    "mainnet_accumulator",
    "network_of",
    "parse_checkpoint",
]
