"""The one inbound listener's rules, driven directly with a small owner over 127.0.0.1.

The same rules are exercised through their two owners in ``tests/integration/test_server_limits.py``
(``HistoryServer``) and ``test_session.py`` (``PeerNetwork``); here the events are read one by one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import pytest

from ethp2p.chain.genesis import load_genesis
from ethp2p.crypto.keys import PrivateKey
from ethp2p.enode import Enode
from ethp2p.p2p.connection import LocalIdentity
from ethp2p.p2p.disconnect import DisconnectReason
from ethp2p.peers.eth_peer import ChainHead, EthPeer, PeerDisconnected
from ethp2p.peers.limits import inbound_handshake_slots
from ethp2p.peers.listener import InboundDropped, InboundEvent, InboundFailed, InboundListener, InboundRefused
from tests.support.servers import ETHTEST_GENESIS

SPEC = load_genesis(ETHTEST_GENESIS)


class Owner:
    """An InboundOwner that records what the listener tells it."""

    def __init__(self, *, max_inbound: int = 1, full: bool = False) -> None:
        self.key = PrivateKey.generate()
        self.full = full
        self.events: list[InboundEvent] = []
        self.peers: list[EthPeer] = []
        self.changed = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()
        self.listener = InboundListener(self, max_inbound=max_inbound, handshake_timeout=5.0, spawn=self.spawn)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    @property
    def enode(self) -> Enode:
        return Enode(self.key.public_key.to_bytes(), "127.0.0.1", self.listener.port, self.listener.port)

    def inbound_full(self) -> bool:
        return self.full

    def local_identity(self) -> LocalIdentity:
        return EthPeer.local_identity(self.key, (68, 69), self.listener.port)

    async def accept_peer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> EthPeer:
        return await EthPeer.accept(
            reader, writer, SPEC, key=self.key, head=ChainHead.genesis(SPEC), handshake_timeout=5.0
        )

    def on_inbound_event(self, event: InboundEvent) -> None:
        self.events.append(event)
        self.changed.set()

    async def on_inbound_peer(self, peer: EthPeer) -> None:
        self.peers.append(peer)
        self.changed.set()

    async def wait_for(self, events: int, peers: int = 0) -> None:
        """Until that many events and peers have arrived (a guard against hanging, not a speed check)."""
        async with asyncio.timeout(30):
            while len(self.events) < events or len(self.peers) < peers:
                self.changed.clear()
                await self.changed.wait()

    async def close(self) -> None:
        self.listener.close()
        for peer in self.peers:
            await peer.disconnect()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.listener.wait_closed(2)


@pytest.fixture()
async def owner() -> AsyncIterator[Owner]:
    o = Owner()
    await o.listener.start("127.0.0.1", 0)
    yield o
    await o.close()


async def _until_handshakes(listener: InboundListener, n: int) -> None:
    async with asyncio.timeout(30):
        while listener.handshakes < n:
            await asyncio.sleep(0.01)


async def test_a_good_handshake_is_handed_to_the_owner(owner: Owner) -> None:
    client_key = PrivateKey.generate()
    client = await EthPeer.connect(owner.enode, SPEC, key=client_key)
    await owner.wait_for(events=0, peers=1)
    assert owner.peers[0].peer_id == client_key.public_key.to_bytes() and owner.events == []
    assert owner.listener.handshakes == 0
    await client.disconnect()


async def test_when_full_the_peer_completes_the_handshake_and_hears_too_many_peers(owner: Owner) -> None:
    owner.full = True
    with pytest.raises(PeerDisconnected) as info:
        await EthPeer.connect(owner.enode, SPEC)
    assert info.value.event is not None and info.value.event.reason == DisconnectReason.TOO_MANY_PEERS
    await owner.wait_for(events=1)
    assert owner.events == [InboundRefused(told=True)] and owner.peers == []


async def test_garbage_instead_of_a_handshake_fails_and_is_closed(owner: Owner) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", owner.listener.port)
    writer.write(b"\x00\x10" + bytes(16))  # an auth message far too short to decrypt
    await writer.drain()
    await owner.wait_for(events=1)
    assert isinstance(owner.events[0], InboundFailed) and owner.peers == []
    assert await reader.read() == b""
    writer.close()


async def test_connections_beyond_the_handshake_slots_are_dropped_unanswered(owner: Owner) -> None:
    slots = inbound_handshake_slots(owner.listener.max_inbound)
    held = [await asyncio.open_connection("127.0.0.1", owner.listener.port) for _ in range(slots)]
    await _until_handshakes(owner.listener, slots)
    reader, writer = await asyncio.open_connection("127.0.0.1", owner.listener.port)
    await owner.wait_for(events=1)
    assert owner.events == [InboundDropped()]
    try:
        assert await reader.read(1) == b""
    except ConnectionResetError:  # aborted: a reset is as good as a close
        pass
    writer.close()
    # Once the held connections give up, their handshakes fail and free the slots.
    for _, w in held:
        w.close()
    await owner.wait_for(events=1 + slots)
    assert all(isinstance(e, InboundFailed) for e in owner.events[1:])
    assert owner.listener.handshakes == 0


async def test_a_handshake_cancelled_when_its_owner_closes_frees_its_slot_and_closes_the_socket(
    owner: Owner,
) -> None:
    """The owner cancels running handshakes when it closes: the stream is closed at once (not left to
    garbage collection) and the slot is given back."""
    reader, writer = await asyncio.open_connection("127.0.0.1", owner.listener.port)
    writer.write(b"\x01")  # one byte of an auth message: the handshake waits for the rest
    await writer.drain()
    await _until_handshakes(owner.listener, 1)
    for task in list(owner.tasks):
        task.cancel()
    await asyncio.gather(*owner.tasks, return_exceptions=True)
    assert owner.listener.handshakes == 0 and owner.events == [] and owner.peers == []
    async with asyncio.timeout(5):  # a guard against hanging, not a speed check
        try:
            assert await reader.read() == b""
        except ConnectionResetError:  # aborted: a reset is as good as a close
            pass
    writer.close()
