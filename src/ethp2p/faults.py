"""What a peer can get wrong: one :class:`FaultKind` enum, one exception base and one reporting site.

It imports nothing from ethp2p: it sits in the bottom layer (README "Architecture").
The kinds' ``.value`` strings are what logs, ``RangeStats.fault_kinds`` and metrics labels show.
What each kind costs lives in ``peers.reputation.PENALTIES`` (keyed by this enum; one entry per member).
"""

from __future__ import annotations

import enum


class FaultKind(enum.StrEnum):
    """The kinds of fault a peer can commit (penalties in units of -1,024, as reth's)."""

    TIMEOUT = "timeout"
    """A request went unanswered in time (peers.pool ``NetworkPeer``, fetch.payloads). Costs 4 units."""

    HEADERS = "headers"
    """Headers that cannot be right: malformed, unlinked, wrong numbers, changed between requests
    (fetch.requests, fetch.head, fetch.payloads, chain.verify). Costs 16 units."""

    BODY = "body"
    """A block body that does not match its header, or a wrong number of bodies (chain.verify via
    fetch.verifier, fetch.requests). Costs 16 units."""

    RECEIPTS = "receipts"
    """Receipts that do not match their header, or a broken eth/70 continuation (chain.verify via
    fetch.verifier, fetch.requests). Costs 16 units."""

    FORK_FIELDS = "fork-fields"
    """A header whose field count does not fit its fork (chain.verify, checked in fetch.payloads and
    sync.prove). Costs 16 units."""

    BAD_MESSAGE = "bad-message"
    """An eth message that fails to decode, or an answer of the wrong message type
    (eth.session, via peers.eth_peer). Costs 16 units; a message that fails to decode also ends the session."""

    TOO_MANY_ITEMS = "too-many-items"
    """An answer with more items than the request asked for (eth.session, via peers.eth_peer). Costs 16 units."""

    UNSOLICITED = "unsolicited"
    """An answer to a request id never sent, or one already answered (eth.session, via
    peers.eth_peer; late answers to requests that timed out are not faults). Costs 8 units; the
    third (``eth.session.MAX_UNSOLICITED``) ends the session."""

    FAILED_DIAL = "failed-dial"
    """Dialling the peer failed in the transport or the handshake (peers.network). Costs 25 units."""

    BREACH = "breach"
    """A protocol breach that ends the session: a bad or repeated Status, an impossible
    BlockRangeUpdate (eth.session, via peers.eth_peer). Bans at once."""

    WRONG_CHAIN = "wrong-chain"
    """Headers that contradict an anchor or the proven chain (fetch.head, fetch.payloads, sync.range).
    Bans at once."""

    NEAR_AGREED_HEAD = "near-agreed-head"
    """A header that disagrees with the proven chain just below the agreed head, where an honest peer
    may have reorged (sync.range). Recorded in the fetch's stats only; costs nothing."""

    DISCONNECTED = "disconnected"
    """A batch failed because the session or the socket broke (sync.range). Recorded in the fetch's
    stats only; costs nothing (leaving is not proof of misbehaviour)."""


class PeerFault(Exception):
    """A peer sent something that cannot be right: ``kind`` says what, ``number`` names the block if known.

    The base of ``chain.verify.VerificationError``, ``fetch.InvalidResponse`` and
    ``peers.eth_peer.PeerMisbehaved``, which keep their own bases for the callers that catch them.
    """

    def __init__(self, kind: FaultKind, message: str, number: int | None = None) -> None:
        if not isinstance(kind, FaultKind):
            raise TypeError(f"fault kind must be a FaultKind, not {kind!r}")
        super().__init__(message)
        self.kind = kind
        self.number = number


def report(peer: object, kind: FaultKind, message: str) -> None:
    """The one place faults are reported: tell ``peer`` (if it keeps a record) what it got wrong.

    ``EthPeer.report_fault`` records it and passes it on to the pool, where it becomes reputation.
    """
    if not isinstance(kind, FaultKind):
        raise TypeError(f"fault kind must be a FaultKind, not {kind!r}")
    fn = getattr(peer, "report_fault", None)
    if fn is not None:
        fn(kind, message)
