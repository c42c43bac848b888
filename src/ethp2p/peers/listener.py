"""``InboundListener``: the one TCP listener that admits inbound RLPx peers within the limits.

Both the :class:`~ethp2p.peers.network.PeerNetwork` (with ``listen``) and the serving
node (:class:`ethp2p.serve.server.HistoryServer`) accept peers through it. For each
connection it applies the same rules, in this order:

1. the :class:`~ethp2p.peers.admission.InboundGate` refuses it (every handshake slot taken, the
   address throttled or holding its share of pending handshakes): the connection is closed
   unanswered, before any task is spawned for it (:class:`InboundDropped`, with the reason);
2. the owner's sessions are full: the handshake is completed only to tell the peer
   ``TOO_MANY_PEERS`` (:class:`InboundRefused`);
3. otherwise the owner runs the handshake and Status exchange (the auth message must arrive
   whole within the stream's auth deadline); a failure closes the stream (:class:`InboundFailed`);
   a success whose address already has its share of sessions is told ``TOO_MANY_PEERS``
   (:class:`InboundRefused`), any other is handed to the owner and holds a session slot of its
   address until it ends.

What to count and what to do with an admitted peer is the owner's (:class:`InboundOwner`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from ..p2p.connection import LocalIdentity
from ..p2p.disconnect import DisconnectReason
from ..transport.stream import TransportError
from .admission import InboundGate, InboundLimits, PendingSlot, Refusal
from .eth_peer import EthPeer, PeerError, refuse_inbound

#: asyncio stream buffer per inbound connection (bounds what one peer can make us hold).
STREAM_LIMIT = 256 * 1024


@dataclass(frozen=True, slots=True)
class InboundDropped:
    """The gate refused the connection (``reason``): it was closed without a word."""

    reason: Refusal = Refusal.PENDING_FULL


@dataclass(frozen=True, slots=True)
class InboundRefused:
    """The sessions were full (``per_address``: those of the peer's address). ``told``: the peer
    completed the handshake and was sent ``TOO_MANY_PEERS``; False: the handshake itself failed first."""

    told: bool
    per_address: bool = False


@dataclass(frozen=True, slots=True)
class InboundFailed:
    """The handshake or the Status exchange failed (the stream is closed)."""

    error: PeerError | TransportError


InboundEvent = InboundDropped | InboundRefused | InboundFailed


#: Why inbound connections are refused: a short label (metrics, stats keys) and its text (summaries).
REFUSALS: dict[str, str] = {
    **{r.name.lower(): r.value for r in Refusal},
    "sessions_full": "sessions full (told too many peers)",
    "address_sessions_full": "sessions of the address full (told too many peers)",
}


def refusal_label(event: InboundEvent) -> str | None:
    """The :data:`REFUSALS` label of why ``event``'s connection was refused; None when it was not
    refused but failed (its handshake, or before the peer could be told the sessions were full)."""
    if isinstance(event, InboundDropped):
        return event.reason.name.lower()
    if isinstance(event, InboundRefused) and event.told:
        return "address_sessions_full" if event.per_address else "sessions_full"
    return None


class InboundOwner(Protocol):
    """What the owner of an :class:`InboundListener` decides and is told."""

    def inbound_full(self) -> bool:
        """Whether the inbound sessions are at their cap (new peers are then refused)."""
        ...

    def local_identity(self) -> LocalIdentity:
        """Our Hello, for the handshake of a refused peer."""
        ...

    async def accept_peer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> EthPeer:
        """Run the recipient handshake and Status exchange with the owner's options."""
        ...

    def on_inbound_event(self, event: InboundEvent) -> None:
        """Count a connection that did not become a session."""
        ...

    async def on_inbound_peer(self, peer: EthPeer) -> None:
        """Take over a peer whose handshake succeeded."""
        ...


class InboundListener:
    """Accepts TCP connections for ``owner``; at most the handshake slots of ``max_inbound`` at once.

    ``spawn`` runs each connection's coroutine as a task the owner tracks (and cancels when
    it closes).
    """

    def __init__(
        self,
        owner: InboundOwner,
        *,
        max_inbound: int,
        handshake_timeout: float,
        spawn: Callable[[Coroutine[Any, Any, None]], object],
        limits: InboundLimits | None = None,
    ) -> None:
        self.owner = owner
        self.max_inbound = max_inbound
        self.handshake_timeout = handshake_timeout
        self._spawn = spawn
        #: Per-address bounds and the connect throttle (defaults from ``max_inbound``).
        self.gate = InboundGate(limits or InboundLimits.for_inbound(max_inbound))
        self.port = 0
        self._server: asyncio.base_events.Server | None = None

    async def start(self, host: str, port: int) -> int:
        """Bind ``host:port`` (``0`` picks a free port) and start accepting; returns the port."""
        self._server = await asyncio.start_server(self._on_connect, host, port, limit=STREAM_LIMIT)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def serve_forever(self) -> None:
        """Accept until cancelled."""
        assert self._server is not None, "start() first"
        await self._server.serve_forever()

    def close(self) -> None:
        """Stop accepting (connections already handed over are the owner's)."""
        if self._server is not None:
            self._server.close()

    async def wait_closed(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the listening socket to be closed."""
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), timeout)

    @property
    def handshakes(self) -> int:
        """Inbound handshakes running now."""
        return self.gate.pending

    def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A plain function, so asyncio spawns no task for a connection the gate refuses.
        peer = writer.get_extra_info("peername")
        slot = self.gate.admit(str(peer[0]) if peer else "", time.monotonic())
        if isinstance(slot, Refusal):
            self.owner.on_inbound_event(InboundDropped(slot))
            writer.transport.abort()
            return
        self._spawn(self.handle(reader, writer, slot))

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, slot: PendingSlot) -> None:
        """Apply the inbound rules to one accepted stream holding ``slot`` (released on every path)."""
        owner = self.owner
        full = owner.inbound_full()
        try:
            if full:
                told = await refuse_inbound(reader, writer, owner.local_identity(), timeout=self.handshake_timeout)
                owner.on_inbound_event(InboundRefused(told))
                return
            try:
                peer = await owner.accept_peer(reader, writer)
            except (PeerError, TransportError) as e:
                owner.on_inbound_event(InboundFailed(e))
                with contextlib.suppress(Exception):
                    writer.transport.abort()
                return
            except BaseException:  # cancelled (the owner is closing) or a bug: never leave the socket open
                with contextlib.suppress(Exception):
                    writer.transport.abort()
                raise
            session = slot.promote()
        finally:
            slot.release()
        if session is None:
            owner.on_inbound_event(InboundRefused(told=True, per_address=True))
            await peer.disconnect(DisconnectReason.TOO_MANY_PEERS)
            return
        try:
            await owner.on_inbound_peer(peer)
            await peer.wait_closed()
        finally:
            session.release()


__all__ = [
    "InboundDropped",
    "InboundEvent",
    "InboundFailed",
    "InboundListener",
    "InboundOwner",
    "InboundRefused",
]
