"""What stored history is proven against: checkpoints, the pre-merge accumulator, and the peer-agreement rule.

A checkpoint is a block hash trusted from outside the peer-to-peer network: the
genesis of the chain, the 2,001 mainnet hashes that ship with ethp2p (every
10,965 blocks up to 21,930,000), or a hash the user gives (``--checkpoint
NUMBER:HASH``, from their consensus client or an explorer). Any block that parent
hashes link down from a checkpoint is proven.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

from ..eth.chainspec import MAINNET
from .accumulator import EpochAccumulator, mainnet_accumulator

#: SHA-256 of the shipped checkpoint file (checked when it is loaded).
MAINNET_CHECKPOINTS_SHA256 = "886fccbf0976e59f3a8960fa6cf82aa62f1310d85f257c9def1b2333512fd7d1"
SHIPPED = "geth's mainnet history index"
GENESIS = "genesis"
USER = "--checkpoint"

_CHECKPOINT = re.compile(r"^\s*(\d{1,20})\s*:\s*(?:0x)?([0-9a-fA-F]{64})\s*$")
#: Block numbers are uint64 on the wire, but SQLite's integers are signed.
MAX_BLOCK_NUMBER = (1 << 63) - 1


class AnchorError(ValueError):
    """A checkpoint that can't be used (malformed, or contradicting another)."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Block ``number`` has hash ``hash``; ``source`` says who says so."""

    number: int
    hash: bytes
    source: str = USER

    def __str__(self) -> str:
        return f"#{self.number:,} 0x{self.hash.hex()[:16]}… ({self.source})"


def parse_checkpoint(text: str) -> Checkpoint:
    """``NUMBER:HASH`` (the hash 32 bytes of hex, ``0x`` optional) as a user checkpoint."""
    m = _CHECKPOINT.match(text)
    if not m:
        raise AnchorError(f"bad checkpoint {text!r}: use NUMBER:HASH with a 32-byte hex hash, e.g. 10965:0x8322…")
    number = int(m.group(1))
    if number > MAX_BLOCK_NUMBER:
        raise AnchorError(f"bad checkpoint {text!r}: block number above {MAX_BLOCK_NUMBER}")
    return Checkpoint(number, bytes.fromhex(m.group(2)), USER)


#: Most peers ever asked to agree on one block (the head, or the block a peer-agreement anchor
#: sits on): a rule that needs more can never be met.
MAX_AGREEMENT_PEERS = 16


@dataclass(frozen=True)
class AgreementRule:
    """When a hash served by peers counts as proven (weaker than a checkpoint).

    ``min_peers`` peers must serve it, with distinct node ids, each from a distinct
    network: addresses that differ within their first ``ipv4_prefix`` bits (IPv4)
    or ``ipv6_prefix`` bits (IPv6). The prefixes are settings so a test on one
    machine can give its peers distinct networks; the rule itself always applies.
    """

    min_peers: int = 3
    ipv4_prefix: int = 16
    ipv6_prefix: int = 32

    def __post_init__(self) -> None:
        if self.min_peers < 1:
            raise AnchorError("peer agreement needs at least 1 peer")
        if self.min_peers > MAX_AGREEMENT_PEERS:
            raise AnchorError(
                f"peer agreement of {self.min_peers} peers can never be met: "
                f"at most {MAX_AGREEMENT_PEERS} peers are asked to agree"
            )
        if not 0 <= self.ipv4_prefix <= 32 or not 0 <= self.ipv6_prefix <= 128:
            raise AnchorError("network prefixes must be 0-32 bits (IPv4) and 0-128 bits (IPv6)")
        networks = 2**self.ipv4_prefix + 2**self.ipv6_prefix  # IPv4 and IPv6 networks there can be
        if networks < self.min_peers:
            raise AnchorError(
                f"peer agreement of {self.min_peers} peers can never be met: /{self.ipv4_prefix} IPv4 and "
                f"/{self.ipv6_prefix} IPv6 prefixes make only {networks} distinct networks"
            )


@dataclass(frozen=True)
class Anchors:
    """Everything a chain's stored history is proven against, and how strictly."""

    checkpoints: Mapping[int, Checkpoint] = field(default_factory=dict)
    accumulator: EpochAccumulator | None = None
    #: True: peer agreement proves nothing (``--trust strict``).
    strict: bool = False
    agreement: AgreementRule = field(default_factory=AgreementRule)
    _numbers: tuple[int, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_numbers", tuple(sorted(self.checkpoints)))

    def checkpoint(self, number: int) -> Checkpoint | None:
        """The checkpoint at ``number``, if any."""
        return self.checkpoints.get(number)

    def checkpoint_at_or_above(self, number: int) -> Checkpoint | None:
        """The lowest checkpoint at or above ``number`` (None if there is none)."""
        i = bisect.bisect_left(self._numbers, number)
        return self.checkpoints[self._numbers[i]] if i < len(self._numbers) else None

    def checkpoints_in(self, lo: int, hi: int) -> list[Checkpoint]:
        """Checkpoints with ``lo <= number <= hi``, ascending."""
        i, j = bisect.bisect_left(self._numbers, lo), bisect.bisect_right(self._numbers, hi)
        return [self.checkpoints[n] for n in self._numbers[i:j]]

    @property
    def newest(self) -> Checkpoint | None:
        return self.checkpoints[self._numbers[-1]] if self._numbers else None

    def contradiction(self, number: int, block_hash: bytes, parent_hash: bytes) -> str | None:
        """Why a block with these fields can't be on the chain (None if no checkpoint says so).

        A block at a checkpoint's height must have its hash; the block above a
        checkpoint must link to it.
        """
        cp = self.checkpoints.get(number)
        if cp is not None and cp.hash != block_hash:
            return f"block {number:,} has hash 0x{block_hash.hex()[:16]}…, the checkpoint {cp} says otherwise"
        below = self.checkpoints.get(number - 1)
        if below is not None and below.hash != parent_hash:
            return f"block {number:,} does not link to checkpoint {below}"
        return None

    def with_checkpoints(self, extra: Iterable[Checkpoint]) -> Anchors:
        """These anchors plus ``extra`` (a checkpoint at a height that has another hash is an error)."""
        merged = dict(self.checkpoints)
        for cp in extra:
            have = merged.get(cp.number)
            if have is not None and have.hash != cp.hash:
                raise AnchorError(f"checkpoint #{cp.number:,} 0x{cp.hash.hex()[:16]}… contradicts {have}")
            merged.setdefault(cp.number, cp)
        return Anchors(merged, self.accumulator, strict=self.strict, agreement=self.agreement)

    def describe(self) -> str:
        """One line for summaries: what these anchors are."""
        parts = [f"{len(self.checkpoints):,} checkpoint(s)"]
        if self.newest is not None:
            parts[0] += f" up to #{self.newest.number:,}"
        if self.accumulator is not None:
            parts.append(f"accumulator roots of {self.accumulator.epochs:,} pre-merge epochs")
        parts.append("no peer agreement (strict)" if self.strict else f"peer agreement of {self.agreement.min_peers}")
        return ", ".join(parts)


@lru_cache(maxsize=1)
def mainnet_checkpoints() -> tuple[Checkpoint, ...]:
    """The 2,001 shipped mainnet checkpoints (every 10,965 blocks, 0..21,930,000)."""
    raw = resources.files("ethp2p").joinpath("data/geth_history_mainnet.json").read_bytes()
    if hashlib.sha256(raw).hexdigest() != MAINNET_CHECKPOINTS_SHA256:
        raise AnchorError("the shipped checkpoint file does not have its recorded SHA-256")
    data = json.loads(raw)
    numbers, hashes = data["blockNumbers"], data["blockHashes"]
    if len(numbers) != len(hashes):
        raise AnchorError("the shipped checkpoint file lists unequal numbers of blocks and hashes")
    return tuple(
        Checkpoint(int(n), bytes.fromhex(h.removeprefix("0x")), SHIPPED) for n, h in zip(numbers, hashes, strict=True)
    )


def anchors_for(
    genesis_hash: bytes,
    extra: Iterable[Checkpoint] = (),
    *,
    strict: bool = False,
    agreement: AgreementRule | None = None,
) -> Anchors:
    """The anchors of the chain with this genesis: always the genesis itself; for mainnet the
    shipped checkpoints and accumulator; plus the user's ``extra`` checkpoints."""
    cps: dict[int, Checkpoint] = {0: Checkpoint(0, genesis_hash, GENESIS)}
    acc = None
    if genesis_hash == MAINNET.genesis_hash:
        for cp in mainnet_checkpoints():
            cps.setdefault(cp.number, cp)
        acc = mainnet_accumulator()
    base = Anchors(cps, acc, strict=strict, agreement=agreement or AgreementRule())
    return base.with_checkpoints(extra)
