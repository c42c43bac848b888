"""The SHA-256 of every canonical pre-merge mainnet era1 file (``mainnet-EEEEE-<root prefix>.era1``)."""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from importlib import resources

#: SHA-256 of the shipped checksum list (checked when it is loaded).
CHECKSUMS_SHA256 = "c9855ad8932fc561a06c4d33a58b83ac2e73c8dc4d0a73b3f35e15bd2c93ae01"
_NAME = re.compile(r"^mainnet-(\d{5})-([0-9a-f]{8})\.era1$")


class ChecksumError(ValueError):
    """The checksum list is unusable."""


def canonical_era1_name(name: str) -> tuple[int, str] | None:
    """(epoch, accumulator-root prefix) of a canonical mainnet era1 file name, else None."""
    m = _NAME.match(name)
    return (int(m.group(1)), m.group(2)) if m else None


@lru_cache(maxsize=1)
def mainnet_era1_checksums() -> dict[str, bytes]:
    """File name -> SHA-256 for the 1,897 mainnet era1 files."""
    raw = resources.files("ethp2p").joinpath("data/checksums_mainnet.txt").read_bytes()
    if hashlib.sha256(raw).hexdigest() != CHECKSUMS_SHA256:
        raise ChecksumError("the shipped era1 checksum list does not have its recorded SHA-256")
    out: dict[str, bytes] = {}
    for line in raw.decode().splitlines():
        parts = line.split()
        if len(parts) == 2:
            out[parts[1]] = bytes.fromhex(parts[0])
    return out
