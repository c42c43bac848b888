"""The pre-merge epoch accumulator: one SSZ root per 8,192 blocks over (block hash, total difficulty).

An epoch whose headers are all at hand is proven by its root, given the total
difficulty before its first block (0 before genesis; otherwise from a proven
predecessor). The roots of mainnet ship with ethp2p (``data/ANCHORS.md``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from ..chain.header import Header
from ..formats.era1 import EPOCH_SIZE, accumulator_root

#: SHA-256 of the shipped file (checked when it is loaded).
MAINNET_ACCUMULATOR_SHA256 = "d9d40597cad5f5ad0485780ea73f2bb512fa9088cdf843b891eba5cde07665cb"
#: Last proof-of-work block of mainnet: the accumulator covers blocks 0..this.
MAINNET_LAST_POW_BLOCK = 15_537_393
#: SSZ limit of the accumulator's list of epoch roots (EIP-7643's value of its root depends on it).
MAX_HISTORICAL_EPOCHS = 2048


class AccumulatorError(ValueError):
    """The accumulator data is unusable (wrong size or checksum)."""


@dataclass(frozen=True)
class EpochAccumulator:
    """Epoch roots of one chain's pre-merge history, covering blocks ``0..last_block``."""

    roots: tuple[bytes, ...]
    last_block: int

    @property
    def epochs(self) -> int:
        return len(self.roots)

    def epoch_of(self, number: int) -> int | None:
        """The epoch holding block ``number``, or None above the last covered block."""
        if number < 0 or number > self.last_block:
            return None
        return number // EPOCH_SIZE

    def bounds(self, epoch: int) -> tuple[int, int]:
        """First and last block of ``epoch`` (the last epoch ends at ``last_block``)."""
        first = epoch * EPOCH_SIZE
        return first, min(first + EPOCH_SIZE - 1, self.last_block)

    def root(self, epoch: int) -> bytes:
        return self.roots[epoch]

    def matches(self, epoch: int, records: Sequence[tuple[bytes, int]]) -> bool:
        """True if ``records`` ((hash, total difficulty) of every block of ``epoch``) give its root."""
        first, last = self.bounds(epoch)
        return len(records) == last - first + 1 and accumulator_root(list(records)) == self.roots[epoch]

    def ssz_root(self) -> bytes:
        """The SSZ root of the whole accumulator (EIP-7643's ``historical_epochs`` and an empty current epoch)."""
        historical = _mix_in_length(_merkleize(list(self.roots), MAX_HISTORICAL_EPOCHS), len(self.roots))
        current = _mix_in_length(_merkleize([], EPOCH_SIZE), 0)
        return _sha(historical + current)


def epoch_records(headers: Sequence[Header], td_before: int) -> tuple[list[tuple[bytes, int]], int]:
    """(hash, total difficulty) of each header, from the total difficulty before the first; and the last TD."""
    td = td_before
    out: list[tuple[bytes, int]] = []
    for h in headers:
        td += h.difficulty
        out.append((h.hash, td))
    return out, td


def parse_accumulator(data: bytes, last_block: int) -> EpochAccumulator:
    """The roots of an SSZ ``HistoricalHashesAccumulator`` (two offsets, the roots, an empty current epoch)."""
    if len(data) < 8:
        raise AccumulatorError("accumulator file is too short")
    first, second = int.from_bytes(data[0:4], "little"), int.from_bytes(data[4:8], "little")
    if first != 8 or second != len(data) or (second - first) % 32:
        raise AccumulatorError("accumulator file is not two SSZ lists with an empty current epoch")
    roots = tuple(data[i : i + 32] for i in range(first, second, 32))
    if len(roots) != last_block // EPOCH_SIZE + 1:
        raise AccumulatorError(
            f"accumulator has {len(roots)} epochs, blocks 0..{last_block} need {last_block // EPOCH_SIZE + 1}"
        )
    return EpochAccumulator(roots, last_block)


@lru_cache(maxsize=1)
def mainnet_accumulator() -> EpochAccumulator:
    """Mainnet's shipped accumulator (1,897 epochs, blocks 0..15,537,393)."""
    data = resources.files("ethp2p").joinpath("data/historical_hashes_accumulator.ssz").read_bytes()
    if hashlib.sha256(data).hexdigest() != MAINNET_ACCUMULATOR_SHA256:
        raise AccumulatorError("the shipped accumulator file does not have its recorded SHA-256")
    return parse_accumulator(data, MAINNET_LAST_POW_BLOCK)


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _merkleize(chunks: list[bytes], limit: int) -> bytes:
    layer, zero = chunks, bytes(32)
    for _ in range((limit - 1).bit_length()):
        if len(layer) % 2:
            layer = layer + [zero]
        layer = [_sha(layer[i] + layer[i + 1]) for i in range(0, len(layer), 2)]
        zero = _sha(zero + zero)
    return layer[0] if layer else zero


def _mix_in_length(root: bytes, length: int) -> bytes:
    return _sha(root + length.to_bytes(32, "little"))
