"""Scenarios on a simulated network: what a client meets on mainnet, on hosts of their own.

Each scenario builds a :class:`~tests.sim.harness.Simulation`, runs the real ``ethp2p`` client in
it, and returns a :class:`Report`: what happened (lines to print) and the facts the tests check.
``python -m tests.sim NAME`` runs one by hand and prints the report; ``tests/sim/test_scenarios.py``
runs them in the test command.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ethp2p.eth.chainspec import MAINNET
from ethp2p.store.blocks import BlockStore

from . import roles
from .harness import Simulation
from .roles import Role

#: Mainnet blocks 0..16,383 (the era1 archives in tests/vectors).
TOP = 16383
#: The expired-history nodes of the scenarios keep bodies and receipts from epoch 1 on.
CUT = 8192
_STOPPED = re.compile(r"requests answered: headers (\d+), bodies (\d+), receipts (\d+)")


@dataclass
class Report:
    """What a scenario did: the client's exit status, output and wall time, and each node's answers."""

    name: str
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    #: Per node name: its role and the (headers, bodies, receipts) requests it answered.
    answered: dict[str, tuple[Role, tuple[int, int, int]]] = field(default_factory=dict)
    #: Per node name: its node id (hex; the client's summary names peers by its first 12 digits).
    node_ids: dict[str, str] = field(default_factory=dict)
    #: Blocks of the range the client stored with the source store's hash, and those it stored otherwise.
    matching: int = 0
    wrong: list[int] = field(default_factory=list)
    stored: int = 0
    lines: list[str] = field(default_factory=list)

    def node_of(self, role_name: str) -> str:
        """The 12-digit id prefix of the (first) node of role ``role_name``, as the summary names it."""
        return next(self.node_ids[n][:12] for n, (r, _) in self.answered.items() if r.name == role_name)

    def bodies_from(self, predicate: Callable[[Role], bool]) -> int:
        """Body requests answered by the nodes whose role satisfies ``predicate``."""
        return sum(a[1] for r, a in self.answered.values() if predicate(r))

    def text(self) -> str:
        out = [f"scenario {self.name}: client exit {self.returncode} after {self.seconds:.1f} s", *self.lines]
        out += ["client output:", *("  " + line for line in self.stdout.splitlines())]
        out.append("nodes (role: requests answered, headers/bodies/receipts):")
        for name, (role, (h, b, r)) in sorted(self.answered.items()):
            out.append(f"  {name:<22} {role.name:<12} {h:>5} {b:>5} {r:>5}")
        return "\n".join(out)


def _finish(
    name: str,
    sim: Simulation,
    done: object,
    seconds: float,
    client_store: Path | None,
    source: Path | None,
    lo: int,
    hi: int,
) -> Report:
    import subprocess

    assert isinstance(done, subprocess.CompletedProcess)
    report = Report(name, done.returncode, done.stdout, done.stderr, seconds)
    sim.close()  # every node prints what it answered when it stops
    for node in sim.nodes:
        found = _STOPPED.findall(node.log())
        totals = tuple(sum(int(f[i]) for f in found) for i in range(3))
        report.answered[node.name] = (node.role, (totals[0], totals[1], totals[2]))
        report.node_ids[node.name] = node.node_id
    if client_store is not None and source is not None and client_store.exists():
        with BlockStore(client_store, readonly=True) as got, BlockStore(source, readonly=True) as truth:
            for n in range(lo, hi + 1):
                h = got.canonical_hash(n)
                if h is None:
                    continue
                report.stored += 1
                if h == truth.canonical_hash(n):
                    report.matching += 1
                else:
                    report.wrong.append(n)
    report.lines.append(
        f"nodes: {len(sim.nodes)} on distinct addresses ({sim.nodes[0].address} .. {sim.nodes[-1].address})"
    )
    report.lines.append(f"stored {report.stored} of blocks {lo}..{hi}; {report.matching} with the source store's hash")
    return report


def _fetch(
    sim: Simulation, workdir: Path, lo: int, hi: int, *extra: str, peers: int | None = None, timeout: float = 300.0
) -> tuple[object, float, Path]:
    """``ethp2p fetch lo..hi`` into a new client store, once ``peers`` peers (default: every node) are
    connected or 60 s have passed."""
    store = workdir / "client.db"
    t0 = time.monotonic()
    wanted = len(sim.nodes) if peers is None else peers
    done = sim.client(
        "fetch",
        f"{lo}..{hi}",
        "--store",
        str(store),
        "--peers",
        str(wanted),
        "--timeout",
        "60",
        *extra,
        timeout=timeout,
    )
    return done, time.monotonic() - t0, store


def discovery(workdir: Path, source: Path, *, nodes: int = 16, via: str = "discv4") -> Report:
    """``nodes`` nodes, half archive and half expired (bodies from block 8,192 on); the client fetches
    0..8,191, starting from the boot node only (``via="discv4"``) or the DNS tree only (``"dns"``)."""
    with Simulation(workdir / "sim", MAINNET) as sim:
        for i in range(nodes):
            sim.add(roles.ARCHIVE if i % 2 == 0 else roles.expired(CUT), source)
        sim.start()
        if via == "discv4":
            start = ["--bootnodes", sim.boot.enode, "--dns", ""]
        else:
            url, resolver = sim.dns_tree()
            start = ["--bootnodes", "", "--dns", url, "--dns-resolver", resolver]
        done, seconds, store = _fetch(sim, workdir, 0, CUT - 1, *start, "--warmup", "3")
        return _finish(f"discovery-{via}", sim, done, seconds, store, source, 0, CUT - 1)


def mixed_roles(workdir: Path, source: Path) -> Report:
    """Sixteen nodes of every role (archive, expired, growing, eth/68, 69 and 70 only, slow, starved,
    silent, flapping, a fork liar); the client fetches all of 0..16,383 from the boot node."""
    kinds: list[Role] = [
        roles.ARCHIVE,
        roles.ARCHIVE,
        roles.expired(CUT),
        roles.expired(12_000),
        roles.growing(4096, 2.0),
        roles.ETH68,
        roles.ETH69,
        roles.ETH70,
        roles.slow(1.5),
        roles.starved("4mbit"),
        roles.SILENT,
        roles.flapping(5.0, 3.0),
        roles.fork(CUT + 100),
        roles.ARCHIVE.with_rate("50mbit"),
        roles.expired(CUT).with_rate("20mbit"),
        roles.ETH69.with_rate("30mbit"),
    ]
    with Simulation(workdir / "sim", MAINNET) as sim:
        for role in kinds:
            sim.add(role, source)
        sim.start()
        done, seconds, store = _fetch(sim, workdir, 0, TOP, "--bootnodes", sim.boot.enode, "--dns", "", "--warmup", "3")
        return _finish("mixed-roles", sim, done, seconds, store, source, 0, TOP)


def mid_range(workdir: Path, source: Path) -> Report:
    """A node fetches 10,000..16,383 from two archive nodes, then serves what it fetched; a client on
    another address fetches that range from it alone (anchored by a checkpoint at its top)."""
    lo, hi = 10_000, TOP
    with BlockStore(source, readonly=True) as truth:
        top_hash = truth.canonical_hash(hi)
    assert top_hash is not None
    checkpoint = ["--checkpoint", f"{hi}:0x{top_hash.hex()}"]
    with Simulation(workdir / "sim", MAINNET) as sim:
        sim.add(roles.ARCHIVE, source)
        sim.add(roles.ARCHIVE, source)
        relay_store = workdir / "relay.db"
        relay = sim.add(Role("relay"), relay_store)
        sim.start(later=[relay])
        # The relay first runs a fetch on its own host, then serves the result from there.
        relay.host.argv = [sim.python, "-m", "ethp2p.cli", "fetch", f"{lo}..{hi}", "--store", str(relay_store)]
        relay.host.argv += ["--bootnodes", ",".join(n.enode for n in sim.nodes), "--dns", "", "--peers", "2"]
        relay.host.argv += ["--no-discovery", "--warmup", "1", *checkpoint]
        relay.host.start()
        relay.host.wait_for(r"stored: |missing: \d+", 240)
        assert relay.host.proc is not None
        relay.host.proc.wait(timeout=60)
        fetched = relay.host.log_text()
        sim.start_node(relay, discovery=False)
        done, seconds, store = _fetch(
            sim,
            workdir,
            lo,
            hi,
            "--bootnodes",
            relay.enode,
            "--dns",
            "",
            "--no-discovery",
            "--warmup",
            "1",
            *checkpoint,
            peers=1,
        )
        report = _finish("mid-range", sim, done, seconds, store, source, lo, hi)
        report.lines.insert(
            0,
            f"relay {relay.address} fetched {lo}..{hi} (exit {relay.host.proc.returncode}), then served {relay.served}",
        )
        report.lines.append("relay's fetch:\n" + "\n".join("  " + x for x in fetched.splitlines()[-12:]))
        return report


def unserved(workdir: Path, source: Path, *, nodes: int = 4) -> Report:
    """Only expired nodes (bodies from 8,192 on); the client asks for 0..8,191, which none serves
    (its stall timeout set far out of reach: only knowing that no peer serves them ends it)."""
    with Simulation(workdir / "sim", MAINNET) as sim:
        for _ in range(nodes):
            sim.add(roles.expired(CUT), source)
        sim.start()
        extra = ["--bootnodes", sim.boot.enode, "--dns", "", "--warmup", "2", "--stall-timeout", "600"]
        done, seconds, store = _fetch(sim, workdir, 0, CUT - 1, *extra, timeout=180)
        return _finish("unserved", sim, done, seconds, store, source, 0, CUT - 1)


def ethereumjs(workdir: Path, source: Path) -> Report:
    """Three ethp2p nodes serving geth's 600-block test chain without receipts and @ethereumjs/client
    (its receipts handler patched to answer) on a host of its own: the client, starting from one
    ethp2p boot node, finds ethereumjs through discv4, and only ethereumjs can give it the receipts."""
    from ethp2p.chain.genesis import load_genesis
    from tests.interop.ethereumjs import STARTED, EthereumJS, installed
    from tests.support.servers import ETHTEST_GENESIS, ethtest_store

    if not installed():
        raise RuntimeError("@ethereumjs/client is not installed (tests/interop/install_peer.sh)")
    workdir.mkdir(parents=True, exist_ok=True)
    store = ethtest_store(workdir / "ethtest.db")
    net = ["--genesis", str(ETHTEST_GENESIS)]
    with Simulation(workdir / "sim", load_genesis(ETHTEST_GENESIS), network_args=net) as sim:
        for _ in range(3):
            sim.add(roles.ARCHIVE, store)
        sim.start()
        ejs = EthereumJS(
            workdir / "ejs",
            ETHTEST_GENESIS,
            ETHTEST_GENESIS.parent / "chain.rlp",
            patch_receipts=True,
            discovery=True,
            extra_args=("--bootnodes", sim.boot.enode),
        )
        ejs.port = 30303
        host = sim.add_host("ethereumjs", [], cwd=ejs.workdir)
        host.argv = ejs.command(ext_ip=host.address)
        host.start()
        host.wait_for(STARTED, 90)
        host.wait_for("Client started successfully", 90)
        extra = ["--genesis", str(ETHTEST_GENESIS), "--bootnodes", sim.boot.enode, "--dns", "", "--warmup", "3"]
        extra += ["--agreement-prefix", "24"]  # every host has a /24 of its own; the range has two /16s
        done, seconds, client_store = _fetch(sim, workdir, 0, 600, *extra, peers=4)
        report = _finish("ethereumjs", sim, done, seconds, client_store, store, 0, 600)
        report.lines.insert(0, f"ethereumjs at {host.address}:30303 (log {host.log_path})")
        return report


def discv4(workdir: Path, source: Path) -> Report:
    """16 nodes (8 archive, 8 expired); fetch 0..8,191 starting from one boot node, through discv4."""
    return discovery(workdir, source, via="discv4")


def dns(workdir: Path, source: Path) -> Report:
    """16 nodes (8 archive, 8 expired); fetch 0..8,191 starting from a DNS tree alone (dnsmasq)."""
    return discovery(workdir, source, via="dns")


#: The scenarios by name; each takes (work directory, source store of mainnet 0..16,383).
SCENARIOS: dict[str, Callable[[Path, Path], Report]] = {
    "discv4": discv4,
    "dns": dns,
    "ethereumjs": ethereumjs,
    "roles": mixed_roles,
    "mid-range": mid_range,
    "unserved": unserved,
}
