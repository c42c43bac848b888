"""Fork identifiers (EIP-2124, with timestamp forks per EIP-6122): computing and filtering."""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .. import rlp

#: geth's rule: a FORK_NEXT above this is a timestamp, not a block number (mainnet genesis time).
TIMESTAMP_THRESHOLD = 1438269973
_NEVER = (1 << 64) - 1


@dataclass(frozen=True, slots=True)
class ForkId:
    """``[FORK_HASH(4 bytes), FORK_NEXT]``."""

    hash: bytes
    next: int

    def encode(self) -> bytes:
        return rlp.encode([self.hash, self.next])

    def enr_entry(self) -> dict[bytes, object]:
        """The ENR ``eth`` entry that advertises this fork id (``[[FORK_HASH, FORK_NEXT]]``)."""
        return {b"eth": [[self.hash, self.next]]}

    def __str__(self) -> str:
        return f"{self.hash.hex()}/{self.next}"


class ForkIdMismatch(Exception):
    """The remote fork id is not compatible with our chain (``kind`` says which rule failed)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def decode_fork_id(item: object) -> ForkId:
    """ForkId from a decoded RLP item ``[hash, next]`` (extra elements ignored per EIP-8)."""
    if not isinstance(item, list) or len(item) < 2:
        raise ValueError("fork id must be a list [hash, next]")
    h, n = item[0], item[1]
    if not isinstance(h, bytes) or len(h) != 4:
        raise ValueError("fork hash must be 4 bytes")
    if not isinstance(n, bytes):
        raise ValueError("fork next must be an integer")
    return ForkId(h, rlp.decode_int(n, max_bytes=8))


def gather_forks(
    block_forks: Iterable[int], time_forks: Iterable[int], genesis_time: int
) -> tuple[list[int], list[int]]:
    """Distinct, sorted activations: blocks other than 0, times after genesis."""
    blocks = sorted({b for b in block_forks if b > 0})
    times = sorted({t for t in time_forks if t > genesis_time})
    return blocks, times


def _checksums(genesis_hash: bytes, forks: Sequence[int]) -> list[int]:
    sums = [zlib.crc32(genesis_hash)]
    for fork in forks:
        sums.append(zlib.crc32(fork.to_bytes(8, "big"), sums[-1]))
    return sums


def compute_fork_id(
    genesis_hash: bytes,
    block_forks: Sequence[int],
    time_forks: Sequence[int],
    head: int,
    time: int,
    genesis_time: int = 0,
) -> ForkId:
    """The fork id of a node whose head is block ``head`` with timestamp ``time``."""
    blocks, times = gather_forks(block_forks, time_forks, genesis_time)
    crc = zlib.crc32(genesis_hash)
    for fork in blocks:
        if fork > head:
            return ForkId(crc.to_bytes(4, "big"), fork)
        crc = zlib.crc32(fork.to_bytes(8, "big"), crc)
    for fork in times:
        if fork > time:
            return ForkId(crc.to_bytes(4, "big"), fork)
        crc = zlib.crc32(fork.to_bytes(8, "big"), crc)
    return ForkId(crc.to_bytes(4, "big"), 0)


def check_fork_id(
    genesis_hash: bytes,
    block_forks: Sequence[int],
    time_forks: Sequence[int],
    head: int,
    time: int,
    remote: ForkId,
    genesis_time: int = 0,
) -> None:
    """Accept or reject a remote fork id as EIP-2124's filter does; raises :class:`ForkIdMismatch`."""
    blocks, times = gather_forks(block_forks, time_forks, genesis_time)
    forks = blocks + times
    sums = _checksums(genesis_hash, forks)
    remote_hash = int.from_bytes(remote.hash, "big")
    forks_sentinel = forks + [_NEVER]  # the last fork is never passed
    for i, fork in enumerate(forks_sentinel):
        local = time if i >= len(blocks) else head
        if local >= fork:
            continue
        # First fork not yet passed locally: sums[i] is our current fork hash.
        if sums[i] == remote_hash:
            # Rule 1a: the remote's announced next fork passed here without us knowing it.
            if remote.next > 0 and (head >= remote.next or (remote.next > TIMESTAMP_THRESHOLD and time >= remote.next)):
                raise ForkIdMismatch(
                    "local-incompatible-or-stale",
                    f"remote announces fork at {remote.next}, which we passed without it",
                )
            return
        # Rule 2: the remote is at one of our past forks (it is syncing); its next must be our next one.
        for j in range(i):
            if sums[j] == remote_hash:
                if forks[j] != remote.next:
                    raise ForkIdMismatch(
                        "remote-stale", f"remote is at a past fork and expects next fork {remote.next}, not {forks[j]}"
                    )
                return
        # Rule 3: the remote is ahead of us on forks we know about.
        for j in range(i + 1, len(sums)):
            if sums[j] == remote_hash:
                return
        raise ForkIdMismatch("local-incompatible-or-stale", f"remote fork hash {remote.hash.hex()} is not on our chain")
    raise AssertionError("unreachable: the sentinel fork is never passed")
