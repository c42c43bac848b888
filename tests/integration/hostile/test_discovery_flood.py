"""A Ping flood from one address against a real ``ethp2p serve --discovery`` (issue #23, item 1).

The flooder sends signed discv4 Pings from one UDP socket on 127.0.0.1, from 50 node keys and
with a distinct TCP port in each (so every ping-back the server would send is a distinct packet
with its own hash). The server answers each Ping it handles (its per-source rate limit drops the
rest), but keeps at most ``MAX_PENDING_PER_IP`` ping-backs awaiting a Pong from that address, its
RSS stays within a stated bound, and its pending table (the ``ethp2p_discovery_pending_requests``
gauge of ``--metrics``) drains to zero once the flood stops and the replies are overdue.
"""

from __future__ import annotations

import socket
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from ethp2p.crypto.keys import PrivateKey
from ethp2p.discovery import v4wire as w
from ethp2p.discovery.v4 import MAX_PENDING_PER_IP
from tests.support.servers import ETHTEST_GENESIS, ServerProcess, ethtest_store

#: How long the flood lasts, and the most the server's RSS may grow meanwhile.
FLOOD_SECONDS = 3.0
RSS_GROWTH_BOUND = 16 * 2**20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _gauge(port: int, name: str) -> float | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return None
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name:
                return s.value
    return None


def test_a_ping_flood_from_one_address_is_bounded_and_drains(tmp_path: Path) -> None:
    store = ethtest_store(tmp_path / "ethtest.db")
    mport = _free_port()
    server = ServerProcess(
        store,
        network_args=["--genesis", str(ETHTEST_GENESIS)],
        extra=["--discovery", "--metrics", f"127.0.0.1:{mport}"],
        workdir=tmp_path,
    )
    try:
        enode = server.wait_ready()
        udp = int(enode.rsplit(":", 1)[1])
        deadline = time.monotonic() + 10
        while _gauge(mport, "ethp2p_discovery_pending_requests") is None:
            assert time.monotonic() < deadline, "no ethp2p_discovery_pending_requests gauge"
            time.sleep(0.1)
        rss_before = _rss(server.proc.pid)

        keys = [PrivateKey.generate() for _ in range(50)]
        exp = int(time.time()) + 60
        to = w.Endpoint("127.0.0.1", udp, udp)
        pings = [
            w.encode_packet(keys[i % len(keys)], w.Ping(w.Endpoint("127.0.0.1", 1, 10_000 + i), to, exp))[0]
            for i in range(2000)
        ]
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        pongs = ping_backs = sent = 0
        peak_pending = 0.0

        def drain() -> None:
            nonlocal pongs, ping_backs
            while True:
                try:
                    data = sock.recv(2048)
                except BlockingIOError:
                    return
                kind = data[97] if len(data) > 97 else None
                pongs += kind == 2
                ping_backs += kind == 1

        end = time.monotonic() + FLOOD_SECONDS
        next_scrape = time.monotonic() + 1
        while time.monotonic() < end:
            for _ in range(50):
                sock.sendto(pings[sent % len(pings)], ("127.0.0.1", udp))
                sent += 1
            drain()
            time.sleep(0.005)
            if time.monotonic() >= next_scrape:
                peak_pending = max(peak_pending, _gauge(mport, "ethp2p_discovery_pending_requests") or 0.0)
                next_scrape += 1
        time.sleep(0.3)
        drain()
        rss_after = _rss(server.proc.pid)
        print(
            f"sent {sent} pings, {pongs} pongs, {ping_backs} ping-backs, peak pending {peak_pending}, "
            f"RSS {rss_before / 2**20:.1f} -> {rss_after / 2**20:.1f} MiB"
        )

        assert pongs >= 500, f"the server answered only {pongs} of {sent} Pings"
        # One address: at most MAX_PENDING_PER_IP ping-backs in flight at a time (each lives ~1 s).
        assert peak_pending <= MAX_PENDING_PER_IP
        assert ping_backs <= MAX_PENDING_PER_IP * (FLOOD_SECONDS + 3)
        assert rss_after - rss_before < RSS_GROWTH_BOUND, (rss_before, rss_after)

        # The flood is over and every ping-back is overdue: the timer frees the table.
        deadline = time.monotonic() + 5
        while (_gauge(mport, "ethp2p_discovery_pending_requests") or 0.0) > 0:
            assert time.monotonic() < deadline, "the discv4 pending table did not drain"
            time.sleep(0.2)
        sock.close()
    finally:
        server.stop()
