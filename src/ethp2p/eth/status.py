"""The eth Status handshake: building ours and checking theirs (pure functions)."""

from __future__ import annotations

from .chainspec import ChainSpec
from .forkid import ForkIdMismatch
from .messages import Status, StatusV68, StatusV69


class StatusMismatch(Exception):
    """The peer's Status does not fit our chain; ``kind`` is one of
    ``version``, ``network``, ``genesis``, ``forkid``, ``range``."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def make_status(
    spec: ChainSpec,
    version: int,
    *,
    head_number: int = 0,
    head_hash: bytes | None = None,
    head_time: int | None = None,
    total_difficulty: int | None = None,
    earliest: int = 0,
) -> Status:
    """Our Status at eth/``version`` for a node whose latest block is ``head_number``.

    With no arguments this describes a node holding only the genesis block.
    """
    head_hash = head_hash if head_hash is not None else spec.genesis_hash
    fork_id = spec.fork_id(head_number, head_time)
    if version == 68:
        td = total_difficulty if total_difficulty is not None else spec.genesis_difficulty
        return StatusV68(version, spec.network_id, td, head_hash, spec.genesis_hash, fork_id)
    if earliest > head_number:
        raise ValueError(f"earliest block {earliest} is above the head {head_number}")
    return StatusV69(version, spec.network_id, spec.genesis_hash, fork_id, earliest, head_number, head_hash)


def validate_status(spec: ChainSpec, head_number: int, head_time: int | None, theirs: Status, version: int) -> None:
    """Check a peer's Status against our chain; raise :class:`StatusMismatch` if it is not ours."""
    if theirs.version != version:
        raise StatusMismatch("version", f"Status says eth/{theirs.version}, negotiated eth/{version}")
    if (version == 68) != isinstance(theirs, StatusV68):
        raise StatusMismatch("version", f"Status form does not match eth/{version}")
    if theirs.network_id != spec.network_id:
        raise StatusMismatch("network", f"network id {theirs.network_id}, we are on {spec.network_id} ({spec.name})")
    if theirs.genesis_hash != spec.genesis_hash:
        raise StatusMismatch(
            "genesis",
            f"genesis {theirs.genesis_hash.hex()[:16]}…, ours is {spec.genesis_hash.hex()[:16]}… ({spec.name})",
        )
    try:
        spec.check_fork_id(theirs.fork_id, head_number, head_time)
    except ForkIdMismatch as e:
        raise StatusMismatch("forkid", f"fork id {theirs.fork_id} rejected: {e}") from None
    if isinstance(theirs, StatusV69) and theirs.earliest_block > theirs.latest_block:
        raise StatusMismatch(
            "range", f"Status block range is inverted ({theirs.earliest_block} > {theirs.latest_block})"
        )
