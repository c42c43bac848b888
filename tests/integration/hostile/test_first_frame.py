"""A connection's handshake frames are bounded by what Hello may be: nearly whole 16 MiB frames sent
before the handshake ends cost the server (a real ``ethp2p serve`` process) nothing like 16 MiB each.

Each attacker completes a real RLPx handshake (so it is past the auth message and the listener's
admission), then announces a frame of 16 MiB - 1 and sends all of its body but the last 64 KiB, and
holds the connection. The frame is either the connection's first, or the first after a valid Hello
(where eth's Status must come). Before the fixes the server buffered every such body (40 first frames
took it from 46 to 963 MB); now it refuses the frame from its header alone (a first frame can only be
Hello, at most 64 KiB, and until the first subprotocol message only Ping, Pong, Disconnect and Status
can come) and closes the connection, so the body is never buffered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from ethp2p.rlpx.frame import MAX_FRAME_SIZE
from tests.support.servers import ServerProcess, ethtest_store, private_loopback, start_servers

from .support import NET, RawInitiator, honest_connect, raise_fd_limit, rss_mib

ATTACKERS = 40
#: The server's resident memory may grow by less than this while the attackers hold their frames
#: (before the fix it grew by about 16 MiB per attacker).
RSS_GROWTH_BOUND_MIB = 48.0
CHUNK = 1024 * 1024


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    raise_fd_limit()
    store = ethtest_store(tmp_path / "ethtest.db")
    (s,) = start_servers(1, store, tmp_path, network_args=NET)
    yield s
    s.stop()


@pytest.mark.parametrize("after_hello", [False, True], ids=["first-frame", "after-hello"])
async def test_nearly_whole_16_mib_handshake_frames_are_not_buffered(server: ServerProcess, after_hello: bool) -> None:
    sources = private_loopback(ATTACKERS + 1)
    url = server.enode
    pid = server.proc.pid
    # Warm the server up (imports, crypto, the first session) before measuring.
    assert await honest_connect(url, sources[0])
    before = rss_mib(pid)
    sent = [0]
    raws: list[RawInitiator] = []

    async def attacker(source: str) -> bool:
        raw = await RawInitiator.open(url, source)
        raws.append(raw)
        body = MAX_FRAME_SIZE + 15 + 16 - 64 * 1024
        if after_hello:
            raw.writer.write(raw.hello())
        raw.writer.write(raw.frame_header(MAX_FRAME_SIZE))
        zeros = bytes(CHUNK)
        left = body
        try:
            while left > 0:
                n = min(CHUNK, left)
                raw.writer.write(zeros[:n])
                await raw.writer.drain()
                left -= n
                sent[0] += n
        except (ConnectionError, OSError):
            return False
        return True

    taken = await asyncio.gather(*(attacker(s) for s in sources[1:]))
    await asyncio.sleep(0.5)  # let the server read what is in its socket buffers
    during = rss_mib(pid)
    peak = rss_mib(pid, "VmHWM")
    for raw in raws:
        raw.abort()
    growth = during - before
    print(
        f"\n{'after-Hello' if after_hello else 'first'}-frame flood: {ATTACKERS} attackers, "
        f"{sent[0] / 2**20:.0f} MiB sent, "
        f"{sum(taken)} taken whole; server RSS {before:.0f} -> {during:.0f} MiB (peak {peak:.0f})"
    )
    assert len(raws) == ATTACKERS  # every attacker got past the RLPx handshake: the frame was tested
    assert growth < RSS_GROWTH_BOUND_MIB, f"server RSS grew by {growth:.0f} MiB"
    assert sum(taken) == 0  # the server closed every connection before its frame's body arrived
    # The server is unharmed: an honest client still gets served.
    assert await honest_connect(url, sources[0])
