"""discv4 off loopback: a ``PeerNetwork`` with no listen address finds a boot node on another host.

The "other host" is a child network namespace the test makes inside ``./dev.sh test``'s private
one, joined to it by a veth pair: 198.18.0.1/24 here, 198.18.0.2/24 there (the benchmarking range).
A socket bound to 127.0.0.1 cannot send there (EINVAL), which is what discovery used to be bound to.
The pair goes away with the child namespace and is deleted in teardown; nothing else is ever
addressed (the boot node knows no other node, and the network has no DNS tree).
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ethp2p.crypto.keys import PrivateKey
from ethp2p.discovery.service import DiscoveryService
from ethp2p.eth.chainspec import MAINNET
from ethp2p.peers.limits import p2p_limits
from ethp2p.peers.network import PeerNetwork

HERE, THERE = "198.18.0.1", "198.18.0.2"
VETH, PEER_VETH = "ethp2p-va", "ethp2p-vb"

# The child shell waits (bounded) for its end of the pair, gives it the address, and runs the node.
_CHILD = f"""
i=0
while ! ip link show {PEER_VETH} >/dev/null 2>&1; do
    i=$((i + 1)); [ "$i" -gt 400 ] && exit 97
    sleep 0.05
done
ip link set lo up && ip addr add {THERE}/24 dev {PEER_VETH} && ip link set {PEER_VETH} up || exit 98
exec "$@"
"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


@pytest.fixture(scope="module")
def other_host(tmp_path_factory: pytest.TempPathFactory, mainnet_store_path: Path) -> Iterator[str]:
    """An ``ethp2p serve --discovery`` node on 198.18.0.2, in its own network namespace: its enode URL."""
    if os.environ.get("ETHP2P_NETNS") != "private":
        pytest.skip("needs the private network namespace of ./dev.sh test (it creates addresses off loopback)")
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("unshare") is None:
        pytest.skip("needs root, ip and unshare to create a veth pair and a child network namespace")
    log_path = tmp_path_factory.mktemp("offloop") / "serve.log"
    serve = [sys.executable, "-m", "ethp2p.cli", "serve", "--store", str(mainnet_store_path), "--network", "mainnet"]
    serve += ["--host", THERE, "--port", "0", "--discovery", "--key", PrivateKey.generate().to_bytes().hex()]
    with open(log_path, "w") as out:
        proc = subprocess.Popen(["unshare", "-n", "sh", "-c", _CHILD, "sh", *serve], stdout=out, stderr=out)
    try:
        # unshare execs sh in the new namespace: its pid names that namespace, once unshare has made
        # it. Until then the pid is still in ours, and a peer end moved "there" would stay here.
        ours = os.readlink("/proc/self/ns/net")
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, f"unshare exited with {proc.returncode}:\n{log_path.read_text()}"
            assert time.monotonic() < deadline, "unshare -n made no network namespace in 30 s"
            try:
                if os.readlink(f"/proc/{proc.pid}/ns/net") != ours:
                    break
            except OSError:
                pass
            time.sleep(0.01)
        _ip("link", "add", VETH, "type", "veth", "peer", "name", PEER_VETH, "netns", str(proc.pid))
        _ip("addr", "add", f"{HERE}/24", "dev", VETH)
        _ip("link", "set", VETH, "up")
        deadline = time.monotonic() + 30
        while (m := re.search(r"enode://[0-9a-f]{128}@[0-9.]+:\d+", log_path.read_text())) is None:
            assert proc.poll() is None, f"boot node exited with {proc.returncode}:\n{log_path.read_text()}"
            assert time.monotonic() < deadline, f"boot node not ready:\n{log_path.read_text()}"
            time.sleep(0.05)
        assert f"@{THERE}:" in m.group(0)
        yield m.group(0)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        subprocess.run(["ip", "link", "del", VETH], capture_output=True, timeout=10)  # gone with the namespace


def test_loopback_socket_cannot_reach_the_other_host(other_host: str) -> None:
    """The set-up reproduces the defect: from 127.0.0.1 a datagram to 198.18.0.2 is refused (EINVAL)."""
    port = int(other_host.rsplit(":", 1)[1])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        with pytest.raises(OSError) as e:
            s.sendto(b"x", (THERE, port))
        assert e.value.errno == errno.EINVAL


async def test_network_without_listen_address_finds_boot_node_through_discv4(other_host: str) -> None:
    """No listen address, no dial candidates: the only way to the boot node's RLPx port is discv4."""
    net = PeerNetwork(MAINNET, limits=p2p_limits(peer_start_warmup=0), discovery_bootnodes=[other_host])
    async with net:
        await net.wait_for_peers(1, timeout=30, warmup=0)
        (peer,) = net.pool.snapshot()
        assert peer.direction == "outbound" and peer.address is not None and peer.address[0] == THERE
        assert peer.peer_id.hex() == other_host[len("enode://") :][:128]
        assert net.p2p_stats.discovered_count >= 1
        assert net.discovery is not None and net.discovery.core is not None
        assert net.discovery.send_errors == {}
        # Bound to the wildcard address: our record claims no address (peers use our packets' source).
        assert net.discovery.core.enr is not None and net.discovery.core.enr.ip is None


async def test_send_failure_is_one_warning_per_cause(other_host: str, caplog: pytest.LogCaptureFixture) -> None:
    """A discovery socket that cannot reach a node says so once, as a warning with the reason, and goes on."""
    port = int(other_host.rsplit(":", 1)[1])
    pubkey = bytes.fromhex(other_host[len("enode://") :][:128])
    caplog.set_level(logging.DEBUG, logger="ethp2p.discovery.service")
    async with DiscoveryService(PrivateKey.generate(), "127.0.0.1", 0, refresh_interval=3600) as disc:
        for _ in range(3):
            assert await disc.ping(pubkey, (THERE, port), port) is None
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1, [r.getMessage() for r in warnings]
        text = warnings[0].getMessage()
        assert THERE in text and os.strerror(errno.EINVAL) in text and "127.0.0.1" in text
        assert disc.send_errors == {"EINVAL": 3}
        # Still running: it answers a ping on loopback.
        async with DiscoveryService(PrivateKey.generate(), "127.0.0.1", 0) as other:
            assert await other.ping(disc.key.public_key.to_bytes(), ("127.0.0.1", disc.port), disc.port) is not None
