"""The asyncio driver for a devp2p connection: :class:`P2PStream`, a TCP stream running a :class:`P2PConnection`.

This layer owns the socket and the clock; all protocol decisions are made by the
sans-IO core in :mod:`ethp2p.p2p.connection`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from ..p2p.capabilities import NegotiatedProtocol
from ..p2p.connection import (
    ConnectionClosed,
    Event,
    HandshakeComplete,
    HelloReceived,
    LocalIdentity,
    P2PConnection,
    State,
)
from ..p2p.disconnect import DisconnectReason
from ..p2p.messages import Hello

#: Bytes read from the socket at a time.
READ_SIZE = 256 * 1024
#: Default bound on TCP connect + RLPx handshake + Hello.
HANDSHAKE_TIMEOUT = 10.0
#: Default bound on an inbound peer's auth message arriving in full (a slowloris holds a slot no longer).
AUTH_TIMEOUT = 3.0
#: How long a closed connection may take to flush what is queued for the peer before it is dropped.
CLOSE_GRACE = 2.0


class TransportError(Exception):
    """The connection could not be made or was lost."""


class HandshakeTimeout(TransportError):
    """The peer did not complete the RLPx handshake and Hello in time."""


class ConnectionLost(TransportError):
    """The connection is closed; ``event`` says how, when known."""

    def __init__(self, message: str, event: ConnectionClosed | None = None) -> None:
        super().__init__(message)
        self.event = event


class P2PStream:
    """A live devp2p connection over asyncio streams (the driver of one :class:`P2PConnection`)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, core: P2PConnection) -> None:
        self.reader = reader
        self.writer = writer
        self.core = core
        self._pending: deque[Event] = deque()
        peer = writer.get_extra_info("peername")
        self.remote_address: tuple[str, int] | None = (peer[0], peer[1]) if peer else None

    # ---- construction -----------------------------------------------------------------------

    @classmethod
    async def dial(
        cls,
        host: str,
        port: int,
        local: LocalIdentity,
        remote_pubkey: bytes,
        *,
        timeout: float = HANDSHAKE_TIMEOUT,
        local_host: str | None = None,
    ) -> P2PStream:
        """Connect, authenticate and exchange Hello, all within ``timeout`` seconds (from ``local_host``
        when given: the source address to bind, e.g. another loopback address in tests)."""
        local_addr = (local_host, 0) if local_host is not None else None
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(host, port, limit=READ_SIZE, local_addr=local_addr)
                conn = cls(reader, writer, P2PConnection(local, remote_pubkey=remote_pubkey))
                try:
                    await conn._complete_hello()
                except BaseException:
                    conn.abort()
                    raise
                return conn
        except TimeoutError:
            raise HandshakeTimeout(f"no RLPx handshake and Hello from {host}:{port} within {timeout:g}s") from None
        except OSError as e:
            raise TransportError(f"cannot connect to {host}:{port}: {e.strerror or e}") from None

    @classmethod
    async def accept(
        cls,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        local: LocalIdentity,
        *,
        timeout: float = HANDSHAKE_TIMEOUT,
        auth_timeout: float = AUTH_TIMEOUT,
    ) -> P2PStream:
        """Run the recipient side of the handshake and Hello on an accepted stream: the auth message
        must arrive whole within ``auth_timeout`` seconds, the rest within ``timeout`` in all."""
        conn = cls(reader, writer, P2PConnection(local))
        try:
            async with asyncio.timeout(timeout):
                try:
                    async with asyncio.timeout(min(auth_timeout, timeout)):
                        await conn._read_auth()
                except TimeoutError:
                    conn.abort()
                    raise HandshakeTimeout(
                        f"inbound peer {conn.remote_address} sent no whole auth message in {auth_timeout:g}s"
                    ) from None
                await conn._complete_hello()
        except TimeoutError:
            conn.abort()
            raise HandshakeTimeout(
                f"inbound peer {conn.remote_address} did not finish handshake in {timeout:g}s"
            ) from None
        except BaseException:
            conn.abort()
            raise
        return conn

    async def _read_auth(self) -> None:
        """Read until the RLPx handshake is done or the connection ends (events are kept for later)."""
        while self.core.state is State.HANDSHAKE and not self._pending:
            try:
                data = await self.reader.read(READ_SIZE)
            except (ConnectionError, OSError):
                data = b""
            if not data:
                return  # _complete_hello reads the EOF again and reports it
            self._pending.extend(self.core.receive_data(data))
            await self.flush()

    async def _complete_hello(self) -> None:
        await self.flush()
        while True:
            event = await self.next_event()
            if isinstance(event, HandshakeComplete):
                continue
            if isinstance(event, HelloReceived):
                if not self.core.active:
                    # No shared capability: the core has queued a Disconnect.
                    closed = self.core.close_event
                    await self.close_quietly()
                    raise ConnectionLost(closed.describe() if closed else "closed after Hello", closed)
                return
            if isinstance(event, ConnectionClosed):
                await self.close_quietly()
                raise ConnectionLost(f"handshake failed: {event.describe()}", event)
            # Anything else before Hello is a protocol error the core reports as ConnectionClosed.

    # ---- properties -------------------------------------------------------------------------

    @property
    def remote_pubkey(self) -> bytes:
        """The peer's 64-byte public key (its identity, proven by the handshake)."""
        assert self.core.remote_pubkey is not None
        return self.core.remote_pubkey

    @property
    def hello(self) -> Hello:
        """The peer's Hello."""
        assert self.core.remote_hello is not None
        return self.core.remote_hello

    @property
    def protocols(self) -> tuple[NegotiatedProtocol, ...]:
        """The negotiated capabilities."""
        return self.core.protocols

    @property
    def closed(self) -> bool:
        return self.core.closed

    # ---- IO ---------------------------------------------------------------------------------

    async def flush(self) -> None:
        """Write whatever the core has queued."""
        data = self.core.data_to_send()
        if data:
            self.writer.write(data)
            with contextlib.suppress(ConnectionError):
                await self.writer.drain()

    async def next_event(self) -> Event:
        """The next protocol event, reading from the socket as needed.

        Raises :class:`ConnectionLost` when the stream ends without a Disconnect.
        A :class:`ConnectionClosed` event is returned once; after it, this raises. Whenever the
        connection ends here (the peer's Disconnect, its EOF, a breach we answered with a
        Disconnect), the socket is closed at once: nothing is left in CLOSE-WAIT.
        """
        while not self._pending:
            if self.core.closed:
                raise ConnectionLost("connection is closed", self.core.close_event)
            try:
                data = await self.reader.read(READ_SIZE)
            except (ConnectionError, OSError) as e:
                data = b""
                err = str(e)
            else:
                err = "peer closed the TCP stream"
            if not data:
                self.close_transport()
                return self.core.connection_lost(err)
            self._pending.extend(self.core.receive_data(data))
            await self.flush()
            if self.core.closed:
                self.close_transport()
        return self._pending.popleft()

    async def send_message(self, protocol: str, code: int, payload: bytes) -> None:
        """Send one capability message and wait for the socket buffer to drain."""
        self.core.send_message(protocol, code, payload)
        await self.flush()

    async def send_ping(self) -> None:
        self.core.send_ping()
        await self.flush()

    async def disconnect(self, reason: DisconnectReason, error: str | None = None) -> ConnectionClosed:
        """Send Disconnect with ``reason`` and close the stream."""
        event = self.core.disconnect(reason, error)
        await self.flush()
        await self.close_quietly()
        return event

    async def close_quietly(self) -> None:
        """Close the stream, ignoring errors; a peer that does not take what is queued within
        :data:`CLOSE_GRACE` seconds is dropped."""
        with contextlib.suppress(Exception):
            self.writer.close()
            async with asyncio.timeout(CLOSE_GRACE):
                await self.writer.wait_closed()
        self.abort()  # a no-op once closed; otherwise the flush took too long

    def close_transport(self) -> None:
        """Close the socket without waiting: what is queued gets :data:`CLOSE_GRACE` seconds to go out."""
        transport = self.writer.transport
        with contextlib.suppress(Exception):
            if transport.is_closing():
                return
            transport.close()
            if transport.get_write_buffer_size():
                asyncio.get_running_loop().call_later(CLOSE_GRACE, transport.abort)

    def abort(self) -> None:
        """Drop the TCP connection at once."""
        with contextlib.suppress(Exception):
            self.writer.transport.abort()
