"""``PeerBook``: what a :class:`~ethp2p.peers.network.PeerNetwork` needs from a memory of peers.

The network loads the peers it may redial at start, remembers the outbound peers it
reached (and the batch size each served well), and flushes on close. It knows nothing
of how they are kept: :class:`ethp2p.store.peers.PeerCache` keeps them in SQLite and
is what the CLI passes in; anything with these methods will do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class KnownPeer(Protocol):
    """One peer a book remembers: enough to dial it again."""

    @property
    def peer_id(self) -> bytes:
        """The 64-byte node id."""
        ...

    @property
    def aimd_batch_limit(self) -> int | None:
        """The batch size it served well last time (None: not learned)."""
        ...

    def tcp_endpoint(self) -> tuple[str, int] | None:
        """``(host, port)`` to dial, or None when no TCP address is known."""
        ...


class PeerBookLoad(Protocol):
    """What a book hands over at start."""

    @property
    def peers(self) -> Sequence[KnownPeer]:
        """The peers to offer as dial candidates, most recently seen first."""
        ...


class PeerBook(Protocol):
    """A memory of peers across runs; the network owns it once given (and closes it)."""

    def load_peers(self, *, expire_before_ms: int, max_peers: int) -> PeerBookLoad:
        """Peers seen at or after ``expire_before_ms`` (ms since the epoch), at most ``max_peers``."""
        ...

    def remember_peer(
        self, peer_id: bytes, host: str, port: int, *, seen_ms: int, aimd_batch_limit: int | None = None
    ) -> None:
        """Note a peer reached at ``host:port`` at ``seen_ms`` (merged with what is known of it)."""
        ...

    def flush(self) -> int:
        """Persist what was noted since the last flush; returns how many peers."""
        ...

    def close(self) -> None:
        """Flush and release the book."""
        ...


__all__ = ["KnownPeer", "PeerBook", "PeerBookLoad"]
