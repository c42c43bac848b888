"""Peer reputation, bans and dial back-off (the scale follows reth's: units of -1,024)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..faults import FaultKind

UNIT = -1024
#: A peer at or below this is banned.
BANNED_REPUTATION = 50 * UNIT

#: What each kind of fault costs: one entry per :class:`FaultKind` (a unit test holds it to that).
PENALTIES: dict[FaultKind, int] = {
    FaultKind.TIMEOUT: 4 * UNIT,
    FaultKind.HEADERS: 16 * UNIT,
    FaultKind.BODY: 16 * UNIT,
    FaultKind.RECEIPTS: 16 * UNIT,
    FaultKind.FORK_FIELDS: 16 * UNIT,
    FaultKind.BAD_MESSAGE: 16 * UNIT,
    FaultKind.TOO_MANY_ITEMS: 16 * UNIT,
    FaultKind.UNSOLICITED: 8 * UNIT,
    FaultKind.FAILED_DIAL: 25 * UNIT,
    FaultKind.BREACH: BANNED_REPUTATION,  # protocol breaches ban at once
    FaultKind.WRONG_CHAIN: BANNED_REPUTATION,  # headers that contradict an anchor or the proven chain
    FaultKind.NEAR_AGREED_HEAD: 0,  # may be an honest reorg: stats only
    FaultKind.DISCONNECTED: 0,  # leaving is not misbehaviour: stats only
}


@dataclass
class _Record:
    score: int = 0
    banned_until: float = 0.0
    dial_failures: int = 0
    next_dial: float = 0.0
    useless: bool = False


@dataclass
class Reputation:
    """Scores, bans and dial back-off for every peer id this session has met."""

    ban_duration: float = 1800.0
    backoff_base: float = 5.0
    backoff_max: float = 600.0
    clock: object = field(default=time.monotonic, repr=False)
    _peers: dict[bytes, _Record] = field(default_factory=dict, repr=False)

    def _now(self) -> float:
        return self.clock()  # type: ignore[operator]

    def _rec(self, peer_id: bytes) -> _Record:
        return self._peers.setdefault(peer_id, _Record())

    def score(self, peer_id: bytes) -> int:
        return self._peers[peer_id].score if peer_id in self._peers else 0

    def penalize(self, peer_id: bytes, kind: FaultKind) -> bool:
        """Apply the penalty for ``kind`` (a :class:`FaultKind`, nothing else); True if the peer is now banned."""
        if not isinstance(kind, FaultKind):
            raise TypeError(f"fault kind must be a FaultKind, not {kind!r}")
        rec = self._rec(peer_id)
        rec.score += PENALTIES[kind]
        if rec.score <= BANNED_REPUTATION and rec.banned_until <= self._now():
            rec.banned_until = self._now() + self.ban_duration
            return True
        return False

    def reward(self, peer_id: bytes) -> None:
        """A good answer slowly restores reputation (never above zero)."""
        rec = self._rec(peer_id)
        rec.score = min(0, rec.score + 64)

    def is_banned(self, peer_id: bytes) -> bool:
        rec = self._peers.get(peer_id)
        return rec is not None and rec.banned_until > self._now()

    def dial_failed(self, peer_id: bytes, *, useless: bool = False) -> None:
        """Back off exponentially; ``useless`` peers (no eth, wrong chain) are never redialled."""
        rec = self._rec(peer_id)
        rec.dial_failures += 1
        rec.useless = rec.useless or useless
        delay = min(self.backoff_base * 2 ** (rec.dial_failures - 1), self.backoff_max)
        rec.next_dial = self._now() + delay

    def dial_succeeded(self, peer_id: bytes) -> None:
        rec = self._rec(peer_id)
        rec.dial_failures = 0
        rec.next_dial = 0.0

    def too_many_peers(self, peer_id: bytes) -> None:
        """The peer is full: try again later, not in a loop."""
        rec = self._rec(peer_id)
        rec.next_dial = self._now() + self.backoff_max / 4

    def may_dial(self, peer_id: bytes) -> bool:
        rec = self._peers.get(peer_id)
        if rec is None:
            return True
        now = self._now()
        return not rec.useless and rec.banned_until <= now and rec.next_dial <= now
