"""A simulated network: ``ethp2p serve`` nodes with mainnet's roles, each on a host of its own.

:class:`Simulation` puts every node in its own network namespace on an address of 198.18.0.0/15
(see :mod:`tests.sim.netns`), joined by a bridge to the namespace the harness runs in, where the
client under test (``ethp2p fetch``, ``head``, ``peers``) runs as a normal process at 198.18.0.1.
The first node is the boot node: every other one runs discv4 with it as its only boot node, so a
client given that one enode URL finds the rest as it would on mainnet. :meth:`Simulation.dns_tree`
publishes the nodes in an EIP-1459 tree signed by a key of the simulation's, served by dnsmasq on a
host of its own, for a client that starts from the tree alone.

Everything is torn down on exit: nodes get SIGTERM (SIGKILL if they linger), their namespaces and
veth pairs go away with them, and the bridge is deleted.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ethp2p.crypto.keys import PrivateKey
from ethp2p.discovery.dns import TreeURL, make_tree
from ethp2p.discovery.enr import ENR
from ethp2p.eth.chainspec import ChainSpec
from ethp2p.serve.server import store_head
from ethp2p.store.blocks import BlockStore
from tests.support.dnsserver import _quote

from .netns import Bridge, HostProcess, SimError, host_address, unavailable
from .roles import Role

PORT = 30303
#: The dnsmasq host's index (far from the nodes').
DNS_HOST = 500
_READY = r"serving \S+ blocks (\d+)\.\.(\d+) at (enode://[0-9a-f]{128}@[0-9.]+:\d+)"


@dataclass
class SimNode:
    """One serving node of the simulation."""

    name: str
    role: Role
    key: PrivateKey
    host: HostProcess
    store: Path
    enode: str = ""
    #: The range its log said it serves (earliest..latest) at its last start.
    served: tuple[int, int] | None = None

    @property
    def address(self) -> str:
        return self.host.address

    @property
    def node_id(self) -> str:
        """The public key, hex (as in its enode URL)."""
        return self.key.public_key.to_bytes().hex()

    def log(self) -> str:
        return self.host.log_text()


class Simulation:
    """N serving nodes on distinct addresses, a boot node among them, and the client's namespace.

    Use as a context manager; add nodes with :meth:`add`, then :meth:`start`. ``spec`` is the
    chain the nodes serve; ``network_args`` the options that name it on the command line.
    """

    def __init__(
        self,
        workdir: Path,
        spec: ChainSpec,
        *,
        network_args: Sequence[str] = ("--network", "mainnet"),
        python: str = sys.executable,
    ) -> None:
        self.workdir = workdir
        self.spec = spec
        self.network_args = list(network_args)
        self.python = python
        self.bridge = Bridge()
        self.nodes: list[SimNode] = []
        #: Hosts running other programs (a third-party client, the DNS server).
        self.others: list[HostProcess] = []
        self.dns: HostProcess | None = None
        self._indices = itertools.count()
        self._flapper: threading.Thread | None = None
        self._stop = threading.Event()
        self._entered = False

    # ---- set-up --------------------------------------------------------------------------------

    def __enter__(self) -> Simulation:
        why = unavailable()
        if why is not None:
            raise SimError(why)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.bridge.up()
        self._entered = True
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, role: Role, store: Path, *, name: str | None = None) -> SimNode:
        """A node of ``role`` serving ``store`` (started by :meth:`start`)."""
        index = next(self._indices)
        name = name or f"n{index:02d}-{role.name}"
        key = PrivateKey.generate()
        node = SimNode(
            name,
            role,
            key,
            HostProcess(name, index, [], self.workdir / f"{name}.log", bridge=self.bridge, rate=role.rate),
            store,
        )
        self.nodes.append(node)
        return node

    def add_host(
        self, name: str, argv: Sequence[str], *, cwd: Path | None = None, rate: str | None = None
    ) -> HostProcess:
        """Another program (e.g. a third-party client) on a host of its own; started by the caller
        (``host.start()``, its address is ``host.address``) and stopped with the simulation."""
        host = HostProcess(
            name, next(self._indices), argv, self.workdir / f"{name}.log", bridge=self.bridge, rate=rate, cwd=cwd
        )
        self.others.append(host)
        return host

    def _argv(self, node: SimNode, boot: str | None) -> list[str]:
        argv = [self.python, "-m", "ethp2p.cli", "serve", "--store", str(node.store), *self.network_args]
        argv += ["--host", node.address, "--port", str(PORT), "--key", node.key.to_bytes().hex(), "--discovery"]
        if boot is not None:
            argv += ["--bootnodes", boot]
        return argv + list(node.role.serve_args)

    def _start_node(self, node: SimNode, boot: str | None) -> None:
        node.host.argv = self._argv(node, boot)
        node.host.start()

    def _ready(self, node: SimNode, timeout: float = 90.0) -> None:
        m = node.host.wait_for(_READY, timeout)
        node.served = (int(m.group(1)), int(m.group(2)))
        node.enode = m.group(3)
        if f"@{node.address}:" not in node.enode:
            raise SimError(f"{node.name} announces {node.enode}, not its address {node.address}")

    def start(self, later: Iterable[SimNode] = ()) -> None:
        """Start the boot node (the first added), then every other node with it as boot node, except
        those in ``later`` (started with :meth:`start_node`)."""
        if not self._entered:
            raise SimError("use the Simulation as a context manager")
        if not self.nodes:
            raise SimError("no nodes added")
        skip = {n.name for n in later}
        boot, rest = self.nodes[0], [n for n in self.nodes[1:] if n.name not in skip]
        self._start_node(boot, None)
        self._ready(boot)
        for node in rest:
            self._start_node(node, boot.enode)
        for node in rest:
            self._ready(node)
        if any(n.role.flap for n in self.nodes):
            self._flapper = threading.Thread(target=self._flap, name="sim-flapper", daemon=True)
            self._flapper.start()

    def start_node(self, node: SimNode, *, discovery: bool = True) -> None:
        """Start (or restart) one node as a server and wait until it serves."""
        self._start_node(node, self.boot.enode if discovery and node is not self.boot else None)
        self._ready(node)

    @property
    def boot(self) -> SimNode:
        return self.nodes[0]

    def _flap(self) -> None:
        """Stop and restart each flapping node on its (up, down) cycle until the simulation ends."""
        flapping = [n for n in self.nodes if n.role.flap]
        due = {n.name: time.monotonic() + n.role.flap[0] for n in flapping if n.role.flap}
        while not self._stop.wait(0.2):
            now = time.monotonic()
            for node in flapping:
                assert node.role.flap is not None
                up, down = node.role.flap
                if now < due[node.name]:
                    continue
                if node.host.running:
                    node.host.kill()  # gone without a goodbye, as a node that loses power
                    due[node.name] = now + down
                else:
                    try:
                        self._start_node(node, self.boot.enode)
                    except SimError:
                        pass  # tried again next cycle
                    due[node.name] = now + up

    # ---- DNS -----------------------------------------------------------------------------------

    def dns_tree(self, nodes: Iterable[SimNode] | None = None, domain: str = "nodes.sim.example") -> tuple[str, str]:
        """Publish ``nodes`` (default: all) in a signed EIP-1459 tree served by dnsmasq on a host of
        its own; returns ``(enrtree URL, resolver HOST:PORT)``."""
        chosen = list(self.nodes if nodes is None else nodes)
        records = []
        for node in chosen:
            with BlockStore(node.store, readonly=True) as store:
                head = store_head(store, self.spec)
            fid = self.spec.fork_id(head.number, head.timestamp)
            ip = bytes(int(x) for x in node.address.split("."))
            pairs: dict[bytes, object] = {b"ip": ip, b"tcp": PORT, b"udp": PORT, b"eth": [[fid.hash, fid.next]]}
            records.append(ENR.create(node.key, 1, pairs))
        signer = PrivateKey.generate()
        root, entries = make_tree(signer, records)
        zone = {domain: root, **{f"{h}.{domain}": text for h, text in entries.items()}}
        address = host_address(DNS_HOST)
        conf = self.workdir / "dnsmasq.conf"
        lines = ["port=53", f"listen-address={address}", "bind-interfaces", "no-resolv", "no-hosts", "no-poll"]
        lines += ["user=root", "pid-file="] + [f"txt-record={n},{_quote(t)}" for n, t in zone.items()]
        conf.write_text("\n".join(lines) + "\n")
        self.dns = HostProcess(
            "dns",
            DNS_HOST,
            ["dnsmasq", "--no-daemon", "--log-queries", f"--conf-file={conf}"],
            self.workdir / "dns.log",
            bridge=self.bridge,
        )
        self.dns.start()
        self.dns.wait_for(r"started, version", 30)
        return str(TreeURL(signer.public_key, domain)), f"{address}:53"

    # ---- the client ----------------------------------------------------------------------------

    def client(self, *args: str, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
        """Run ``ethp2p ARGS`` here, at 198.18.0.1 (output captured; stderr holds the progress bar)."""
        return subprocess.run([self.python, "-m", "ethp2p.cli", *args], capture_output=True, text=True, timeout=timeout)

    # ---- tear-down -----------------------------------------------------------------------------

    def close(self) -> None:
        """Stop every node (SIGTERM all, then wait), the DNS host and the bridge."""
        self._stop.set()
        if self._flapper is not None:
            self._flapper.join(timeout=10)
        hosts = [n.host for n in self.nodes] + self.others + ([self.dns] if self.dns is not None else [])
        for h in hosts:
            if h.running and h.proc is not None:
                h.proc.terminate()
        for h in hosts:
            h.stop()
        if self._entered:
            self.bridge.down()
            self._entered = False
