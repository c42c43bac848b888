"""One address cannot take every inbound handshake slot of a real ``ethp2p serve`` process.

The attacker is a slowloris from one address (127.0.0.2): 400 sockets, each sending the first byte
of an auth size prefix and then one byte a second, reopened as soon as the server drops it. The
honest client sits on another address (127.0.0.3) and makes whole sessions (handshake, Status, one
request) one after another during the attack. Before the fix the attacker held all 400 handshake
slots (2 x 200 sessions) and the honest client got in about 1 time in 28; now the attacker's address
gets a few pending handshakes, a few connects a second and a short deadline for its auth message,
and the honest client gets in at least 95% of the time. Once the attacker leaves, its own address is
served again. (An honest client on the attacker's address shares that address's allowance: the
address is the unit of fairness, as in geth.)
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.servers import ServerProcess, ethtest_store, private_loopback, start_servers

from .support import NET, honest_connect, raise_fd_limit, until

SOCKETS = 400
#: How long the honest client tries while the attack runs (seconds), and the pause between tries (its
#: own connects stay within its address's throttle: 32 at once, then 2 a second).
ATTACK_SECONDS = 6.0
TRY_EVERY = 0.3
#: An attacker's socket dropped by the server is reopened after this pause.
REOPEN_AFTER = 0.5


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    raise_fd_limit()
    store = ethtest_store(tmp_path / "ethtest.db")
    (s,) = start_servers(1, store, tmp_path, network_args=NET)
    yield s
    s.stop()


@dataclass
class Slowloris:
    host: str
    port: int
    source: str
    opened: int = 0
    held: int = 0
    refused: int = 0

    async def socket(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port, local_addr=(self.source, 0))
            except OSError:
                self.refused += 1
                await asyncio.sleep(REOPEN_AFTER)
                continue
            self.opened += 1
            self.held += 1
            try:
                writer.write(b"\x01")  # an auth size prefix of 256 and more bytes, one at a time
                await writer.drain()
                while not stop.is_set():
                    try:
                        async with asyncio.timeout(1.0):
                            if not await reader.read(1):
                                break  # the server dropped us
                    except TimeoutError:
                        writer.write(b"\x00")
                        await writer.drain()
            except OSError:
                pass
            finally:
                self.held -= 1
                writer.transport.abort()
            await asyncio.sleep(REOPEN_AFTER)


async def test_a_slowloris_from_one_address_leaves_room_for_others(server: ServerProcess) -> None:
    attacker_ip, honest_ip = private_loopback(2)
    url = server.enode
    host, port = url.rsplit("@", 1)[1].rsplit(":", 1)
    assert await honest_connect(url, honest_ip)
    attack = Slowloris(host, int(port), attacker_ip)
    stop = asyncio.Event()
    sockets = [asyncio.create_task(attack.socket(stop)) for _ in range(SOCKETS)]
    try:
        await until(lambda: attack.opened >= SOCKETS, timeout=10)
        await asyncio.sleep(1.0)  # the attack in full swing
        loop = asyncio.get_running_loop()
        end = loop.time() + ATTACK_SECONDS
        tries = ok = 0
        while loop.time() < end or tries < 20:
            tries += 1
            ok += await honest_connect(url, honest_ip, timeout=4.0)
            await asyncio.sleep(TRY_EVERY)
        opened = attack.opened
    finally:
        stop.set()
        for t in sockets:
            t.cancel()
        await asyncio.gather(*sockets, return_exceptions=True)
    rate = ok / tries
    print(f"\nslowloris: {SOCKETS} sockets, {opened} connects from {attacker_ip}; honest {ok}/{tries} = {rate:.0%}")
    assert opened > SOCKETS  # the server dropped the attacker's sockets and the attacker came back
    assert rate >= 0.95
    # The attacker has left: the slots recover, for the honest address and for the attacker's own.
    assert await honest_connect(url, honest_ip)
    back = False
    for _ in range(20):  # the attacker's address is throttled for a moment after its flood
        if await honest_connect(url, attacker_ip):
            back = True
            break
        await asyncio.sleep(0.5)
    assert back, "the attacker's address was not served again after the attack"
    out = server.stop()
    print(out.splitlines()[-3:])
    # The server says why it refused the attacker: its address's share of handshakes, and its throttle.
    refused = re.search(r"inbound connections refused: (.*); handshakes failed: (\d+)", out)
    assert refused is not None, out
    by_reason = dict(part.rsplit(": ", 1) for part in refused.group(1).split(", "))
    assert (
        int(by_reason.get("too many handshakes from the address", 0))
        + int(by_reason.get("too many connects from the address", 0))
        >= opened - SOCKETS
    ), by_reason
