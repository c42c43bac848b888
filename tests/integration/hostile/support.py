"""Shared pieces of the hostile-client suite: a real ``ethp2p serve`` subprocess and what to measure on it.

The server is a separate process (``tests.support.servers.ServerProcess``), so what is measured is the
real node: its resident memory (``VmRSS`` in ``/proc/PID/status``) and the state of the TCP sockets it
holds (``/proc/PID/net/tcp*`` rows whose inode is one of its open fds). Attackers and honest clients
run in the test process; those that need addresses of their own use 127.0.0.2 and up, which only the
private network namespace of ``./dev.sh test`` has (elsewhere those tests skip, saying why).
"""

from __future__ import annotations

import asyncio
import os
import resource
from collections import Counter
from pathlib import Path

from ethp2p.chain.genesis import load_genesis
from ethp2p.crypto.keys import PrivateKey, PublicKey
from ethp2p.enode import Enode
from ethp2p.p2p.messages import Capability, Hello, encode_hello
from ethp2p.peers.eth_peer import EthPeer
from ethp2p.rlpx.frame import FrameCodec
from ethp2p.rlpx.handshake import Initiator
from tests.support.servers import ETHTEST_GENESIS

SPEC = load_genesis(ETHTEST_GENESIS)
NET = ["--genesis", str(ETHTEST_GENESIS)]
#: /proc/net/tcp state codes.
ESTABLISHED = "01"
CLOSE_WAIT = "08"
LISTEN = "0A"


def raise_fd_limit(wanted: int = 8192) -> None:
    """Raise this process's soft fd limit (a server started afterwards inherits it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    """The process's resident set (or ``VmHWM``, its peak) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise LookupError(f"no {field} for process {pid}")


def socket_states(pid: int, port: int | None = None) -> Counter[str]:
    """States of the TCP sockets process ``pid`` holds open (local port ``port`` only, if given)."""
    inodes: set[str] = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    states: Counter[str] = Counter()
    for name in ("tcp", "tcp6"):
        path = Path(f"/proc/{pid}/net/{name}")
        if not path.exists():
            continue
        for row in path.read_text().splitlines()[1:]:
            cols = row.split()
            local_port = int(cols[1].rsplit(":", 1)[1], 16)
            if cols[9] in inodes and (port is None or local_port == port):
                states[cols[3]] += 1
    return states


async def until(check, timeout: float = 10.0, step: float = 0.05) -> bool:
    """Poll ``check()`` until true or ``timeout`` passes (a guard against hanging, not a speed check)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if check():
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(step)


def enode_of(url: str) -> Enode:
    return Enode.parse(url)


async def honest_connect(url: str, local_host: str | None, *, timeout: float = 5.0) -> bool:
    """An honest client: a whole handshake and Status, one request, a polite goodbye. True if it worked."""
    try:
        peer = await EthPeer.connect(url, SPEC, handshake_timeout=timeout, local_host=local_host)
    except Exception:
        return False
    try:
        return len(await peer.request_headers(0, 1, timeout=timeout)) == 1
    except Exception:
        return False
    finally:
        await peer.disconnect()


class RawInitiator:
    """Our side of an RLPx handshake over a raw socket, up to the frame layer and no further.

    After :meth:`open`, :meth:`frame_header` makes the authenticated header of a frame of any size
    (our next frame: a :meth:`hello` may come first), so a test can announce a frame and send as much
    (or as little) of its body as it likes.
    """

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, codec: FrameCodec, key: PrivateKey
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.codec = codec
        self.key = key

    @classmethod
    async def open(cls, url: str, local_host: str | None = None, timeout: float = 10.0) -> RawInitiator:
        node = Enode.parse(url)
        assert node.host is not None
        key = PrivateKey.generate()
        handshake = Initiator(key, PublicKey.from_bytes(node.pubkey))
        local_addr = (local_host, 0) if local_host else None
        reader, writer = await asyncio.open_connection(node.host, node.tcp_port, local_addr=local_addr)
        writer.write(handshake.auth_message())
        await writer.drain()
        async with asyncio.timeout(timeout):
            while True:
                data = await reader.read(65536)
                if not data:
                    raise ConnectionError("server closed during the RLPx handshake")
                secrets = handshake.feed(data)
                if secrets is not None:
                    return cls(reader, writer, FrameCodec(secrets), key)

    def hello(self) -> bytes:
        """A whole, valid Hello frame (p2p version 5, eth/69) naming our RLPx key."""
        hello = Hello(5, "hostile/v1", (Capability("eth", 69),), 0, self.key.public_key.to_bytes())
        return self.codec.encode_message(0, encode_hello(hello))

    def frame_header(self, size: int) -> bytes:
        """The 32-byte header (ciphertext and MAC) announcing a frame of ``size`` bytes (the next frame)."""
        codec = self.codec
        header = size.to_bytes(3, "big") + b"\xc2\x80\x80"
        header_ct = codec._enc.update(header + bytes(16 - len(header)))
        return header_ct + codec._egress.header_mac(header_ct)

    def abort(self) -> None:
        self.writer.transport.abort()
