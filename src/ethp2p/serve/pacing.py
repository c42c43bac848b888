"""Pacing block-body answers to a client whose fetcher stalls when a server outruns its importer.

Why (issue "A sync source at full speed"): @ethereumjs/client 0.10.x in full sync starts a
block request only while it is at most four requests ahead of its importer
(``Fetcher.next``: ``job.index > finished + maxQueue`` skips the job). A skipped job is not
retried when the importer frees a place: only the next answer or the fetch loop's timer
(the service interval, 8 s) runs ``next`` again. A server that answers faster than the client
imports (ethp2p answers a 100-block request in milliseconds; the client imports 100 early
mainnet blocks in about 0.3-0.4 s) trips that every 5-7 requests, and the client then sits
idle until its timer fires. Measured on loopback for blocks 1-16,383: 25 such stalls, 138 s
of a 200 s fetch; from another @ethereumjs/client, which answers at about its import speed,
2 stalls (12 s) of 66 s. Nothing ethp2p said on the wire was wrong: the empty answer to the
client's far-ahead "latest" probe (``GetBlockHeaders`` at its own estimate of our head) is
what geth and the client itself send, and it only preceded the stalls because every job
starts with that probe.

So for such a client an answer to ``GetBlockBodies`` waits, at most :data:`MAX_HOLD` seconds,
until the client holds the block just below the first one asked for. The client says that
itself: asked for one header by number, it answers empty until it has imported that block
(its serving rule). Waiting for less is not enough: its importer stores the answers that
queued up meanwhile as one batch and counts them done only when the whole batch is in, so
a client that holds the block three requests below can still count itself five ahead
(measured: 15 stalls remained with that rule). Its fetcher then never gets ahead of what it
admits, the next request is already answered but for its bodies when the importer is done,
and no timer tick is waited for. Every other client is answered at once.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from ..eth import messages as m
from ..peers.eth_peer import EthPeer, PeerError, Request
from ..store.blocks import BlockStore

#: Clients (by the start of their Hello client id) whose block fetcher stalls as described above.
PACED_CLIENTS = ("EthereumJS/",)
#: How many requests of the same size the client's importer may be behind the one being answered
#: (0: it holds every block below it; see above for why no more).
LEAD_REQUESTS = 0
#: The longest an answer is held (the client gives up on a request after 8 s).
MAX_HOLD = 3.0
#: How often the client is asked whether it holds the block (seconds between asks).
POLL_INTERVAL = 0.02
#: Timeout of one such ask.
ASK_TIMEOUT = 1.0


def paced_client(client_id: str) -> bool:
    """True for a client whose fetcher needs its block-body answers paced."""
    return client_id.startswith(PACED_CLIENTS)


@dataclass
class ImportPacer:
    """What one session knows about the client's import height (the sans-IO part of the rule)."""

    lead_requests: int = LEAD_REQUESTS
    #: The highest block the client has shown it holds (every client holds the genesis).
    known_height: int = 0

    def required_height(self, first: int, count: int) -> int | None:
        """The block the client must hold before an answer for ``count`` blocks from ``first`` goes
        out, or None when it may go out now."""
        need = first - self.lead_requests * count - 1
        return need if need > self.known_height else None

    def holds(self, number: int) -> None:
        """The client has shown it holds block ``number``."""
        self.known_height = max(self.known_height, number)


class ImportGate:
    """The answer gate of one session (see :class:`~ethp2p.peers.eth_peer.AnswerGate`)."""

    def __init__(self, store: BlockStore) -> None:
        self.store = store
        self.pacer = ImportPacer()
        #: Answers held, and the seconds they were held in all (for the serve summary and tests).
        self.held = 0
        self.held_seconds = 0.0

    def _need(self, peer: EthPeer, request: Request) -> int | None:
        if not isinstance(request, m.GetBlockBodies) or not request.hashes or not paced_client(peer.client_id):
            return None
        first = self.store.number_of(request.hashes[0])
        if first is None:
            return None
        return self.pacer.required_height(first, len(request.hashes))

    def holds(self, peer: EthPeer, request: Request) -> bool:
        """True when the answer to ``request`` must wait for :meth:`wait`."""
        return self._need(peer, request) is not None

    async def wait(self, peer: EthPeer, request: Request) -> None:
        """Return once the client holds the block the rule asks for, or after :data:`MAX_HOLD`."""
        need = self._need(peer, request)
        if need is None:
            return
        start = time.monotonic()
        self.held += 1
        try:
            while not peer.closed and time.monotonic() - start < MAX_HOLD:
                try:
                    headers = await peer.request_headers(need, 1, timeout=ASK_TIMEOUT)
                except PeerError:
                    return  # it does not answer: answer it anyway, its own timeouts apply
                if headers:
                    self.pacer.holds(need)
                    return
                await asyncio.sleep(POLL_INTERVAL)
        finally:
            self.held_seconds += time.monotonic() - start
