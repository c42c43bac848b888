"""Anchored history over real sockets: `ethp2p fetch` against honest and fork-serving `ethp2p serve` processes.

The fork servers (`--misbehave fork --fork-block N`) serve a self-consistent fork of the real mainnet
history (every root and link valid, same genesis): only the anchors (the shipped accumulator roots and
checkpoints, a user's `--checkpoint`, peer agreement) tell it from mainnet.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from bench.mainnet_shaped import build as build_shaped

from ethp2p.eth.chainspec import MAINNET
from ethp2p.store.blocks import BlockRecord, BlockStore
from ethp2p.store.importer import ensure_genesis
from ethp2p.trust.proof import Proof
from tests.support.forks import era1_blocks
from tests.support.servers import ServerProcess, private_loopback, start_servers

NET = ["--network", "mainnet"]


def _fetch(
    store: Path,
    servers: Sequence[ServerProcess],
    rng: str,
    *extra: str,
    net: Sequence[str] = NET,
    peers: int | None = None,
) -> subprocess.CompletedProcess[str]:
    args = [
        sys.executable,
        "-m",
        "ethp2p.cli",
        "fetch",
        rng,
        "--store",
        str(store),
        *net,
        "--bootnodes",
        ",".join(s.enode for s in servers),
        "--no-discovery",
        "--dns",
        "",
        "--peers",
        str(peers if peers is not None else len(servers)),
        "--timeout",
        "60",
        "--warmup",
        "0.5",
        *extra,
    ]
    return subprocess.run(args, capture_output=True, text=True, timeout=300)


def _node_id(server: ServerProcess) -> str:
    return server.enode[len("enode://") :][:12]


def _stored(store: Path) -> dict[int, tuple[bytes, Proof | None]]:
    with BlockStore(store, readonly=True) as s:
        proofs = s.proofs(0, 1 << 62)
        return {b.number: (b.hash, proofs.get(b.number)) for b in s.canonical_blocks(0, 1 << 62)}


@pytest.fixture(scope="module")
def era1_net(
    tmp_path_factory: pytest.TempPathFactory, mainnet_store_path: Path
) -> Iterator[dict[str, list[ServerProcess]]]:
    work = tmp_path_factory.mktemp("anchored")
    honest = start_servers(2, mainnet_store_path, work, network_args=NET)
    liar = start_servers(
        1, mainnet_store_path, work, network_args=NET, extra=["--misbehave", "fork", "--fork-block", "1000"]
    )
    late = start_servers(
        1, mainnet_store_path, work, network_args=NET, extra=["--misbehave", "fork", "--fork-block", "9000"]
    )
    yield {"honest": honest, "liar": liar, "late": late}
    for s in honest + liar + late:
        s.stop()


def test_honest_peers_and_a_fork_server_give_exactly_mainnet(era1_net, tmp_path: Path) -> None:
    store = tmp_path / "mixed.db"
    r = _fetch(store, era1_net["honest"] + era1_net["liar"], "0..16383")
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    want = {b.number: b.hash for b in era1_blocks()}
    got = _stored(store)
    assert {n: h for n, (h, _) in got.items()} == want
    assert all(p is Proof.ACCUMULATOR for n, (_, p) in got.items() if n)  # block 0 is the genesis checkpoint
    # The liar is named, with the first block where its chain leaves mainnet and why; and banned (dropped).
    lines = [x for x in r.stdout.splitlines() if x.startswith("wrong chain (banned): ")]
    assert lines == [x for x in lines if _node_id(era1_net["liar"][0]) in x] and len(lines) == 1, r.stdout
    assert "first diverging block 1,000: " in lines[0], lines
    assert "proven: 16,383 by accumulator" in r.stdout and "missing: 0" in r.stdout


def test_a_fork_server_alone_stores_no_fake_block(era1_net, tmp_path: Path) -> None:
    store = tmp_path / "alone.db"
    r = _fetch(store, era1_net["late"], "0..16383")
    assert r.returncode == 1, r.stdout + r.stderr[-3000:]
    want = {b.number: b.hash for b in era1_blocks()}
    got = _stored(store)
    # Epoch 0 is real on this liar (it forks at 9,000) and proven by its root: what it served of it before
    # epoch 1 gave it away (and it was banned) is stored; nothing of epoch 1 is.
    assert 0 in got and set(got) <= set(range(8192)) and all(h == want[n] for n, (h, _) in got.items())
    assert (
        f"wrong chain (banned): {_node_id(era1_net['late'][0])}: caught at block 8,192: the headers of epoch 1"
        in r.stdout
    )
    assert "unproven: 8,192 blocks (blocks 8,192..16,383), not stored" in r.stdout and "--checkpoint" in r.stdout
    out = tmp_path / "export"
    e = subprocess.run(
        [
            sys.executable,
            "-m",
            "ethp2p.cli",
            "export",
            "--store",
            str(store),
            "--format",
            "jsonl",
            "--out",
            str(out),
            "--tables",
            "blocks",
            "--allow-missing",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert e.returncode == 0, e.stderr
    exported = [
        json.loads(x)["hash"] for f in sorted(out.glob("*__blocks__*.jsonl")) for x in f.read_text().splitlines()
    ]
    assert len(exported) == len(got) and all(
        h == "0x" + want[n].hex() for n, h in zip(sorted(got), exported, strict=True)
    )


def test_a_mid_range_is_proven_through_its_epoch_when_the_checkpoint_above_is_out_of_reach(
    era1_net, tmp_path: Path
) -> None:
    store = tmp_path / "mid.db"
    r = _fetch(store, era1_net["honest"], "12000..12100")
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    want = {b.number: b.hash for b in era1_blocks()}
    got = _stored(store)
    assert {n for n in got if n} == set(range(12_000, 12_101))
    assert all(h == want[n] and p is Proof.ACCUMULATOR for n, (h, p) in got.items() if n)
    # Only the headers that takes: epoch 0 (for the total difficulty before epoch 1) and the rest of epoch 1.
    m = re.search(r"proof headers: ([\d,]+) in [\d,]+ requests \(([\d,]+) beyond the range", r.stdout)
    assert m, r.stdout
    fetched, beyond = (int(x.replace(",", "")) for x in m.groups())
    assert beyond == 16_384 - 101 and fetched >= 16_384


@pytest.fixture(scope="module")
def short_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store of the real blocks 0..12,200 only: neither epoch 1's root nor checkpoint 21,930 is in reach."""
    path = tmp_path_factory.mktemp("short") / "short.db"
    with BlockStore(path, genesis_hash=MAINNET.genesis_hash) as s:
        ensure_genesis(s, MAINNET)
        s.put_blocks(BlockRecord(b.number, b.hash, b.header, b.body, b"\xc0") for b in era1_blocks()[1:12_201])
    return path


def test_a_mid_range_no_anchor_reaches_fails_clearly_unless_a_checkpoint_is_given(
    short_store: Path, tmp_path: Path
) -> None:
    servers = start_servers(2, short_store, tmp_path, network_args=NET)
    try:
        r = _fetch(tmp_path / "a.db", servers, "12000..12100")
        assert r.returncode == 1, r.stdout + r.stderr[-3000:]
        assert "unproven: 101 blocks (blocks 12,000..12,100), not stored" in r.stdout
        assert (
            "checkpoint #21,930" in r.stdout and "no peer served" in r.stdout and "--checkpoint NUMBER:HASH" in r.stdout
        )
        assert set(_stored(tmp_path / "a.db")) == {0}
        top = era1_blocks()[12_200]
        r = _fetch(tmp_path / "b.db", servers, "12000..12100", "--checkpoint", f"12200:0x{top.hash.hex()}")
        assert r.returncode == 0, r.stdout + r.stderr[-3000:]
        got = _stored(tmp_path / "b.db")
        assert all(p is Proof.CHECKPOINT and h == era1_blocks()[n].hash for n, (h, p) in got.items() if n)
        assert "(100 beyond the range, to reach anchors)" in r.stdout
        # A checkpoint that contradicts a shipped one is refused before anything is fetched.
        r = _fetch(tmp_path / "c.db", servers, "12000..12100", "--checkpoint", f"10965:0x{top.hash.hex()}")
        assert r.returncode == 2 and "contradicts" in r.stderr and "Traceback" not in r.stderr
    finally:
        for s in servers:
            s.stop()


# ---- peer agreement, above every checkpoint (a chain of its own: only its genesis is an anchor) ----------


@pytest.fixture(scope="module")
def shaped(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return build_shaped(tmp_path_factory.mktemp("shaped-agree"), 40, quiet=True)


def _agreement_net(shaped: tuple[Path, Path], work: Path, honest: int, liars: int) -> list[ServerProcess]:
    genesis, db = shaped
    hosts = private_loopback(honest + liars)
    net = ["--genesis", str(genesis)]
    servers = start_servers(honest, db, work, network_args=net, hosts=hosts[:honest])
    servers += start_servers(
        liars, db, work, network_args=net, hosts=hosts[honest:], extra=["--misbehave", "fork", "--fork-block", "20"]
    )
    return servers


def _honest_hashes(db: Path) -> dict[int, bytes]:
    with BlockStore(db, readonly=True) as s:
        return {b.number: b.hash for b in s.canonical_blocks(0, 40)}


def test_three_honest_peers_outvote_a_liar(shaped: tuple[Path, Path], tmp_path: Path) -> None:
    genesis, db = shaped
    servers = _agreement_net(shaped, tmp_path, 3, 1)
    try:
        r = _fetch(tmp_path / "o.db", servers, "1..40", "--agreement-prefix", "32", net=["--genesis", str(genesis)])
        assert r.returncode == 0, r.stdout + r.stderr[-3000:]
        got = _stored(tmp_path / "o.db")
        assert {n: h for n, (h, _) in got.items()} == _honest_hashes(db)
        assert all(p is Proof.PEER_AGREEMENT for n, (_, p) in got.items() if n)
        assert "proven: 40 by peer-agreement (peer agreement at #40: 40)" in r.stdout
        assert f"wrong chain (banned): {_node_id(servers[3])}: caught at block 40: block 40 is" in r.stdout
    finally:
        for s in servers:
            s.stop()


def test_one_honest_peer_and_two_agreeing_liars_prove_nothing(shaped: tuple[Path, Path], tmp_path: Path) -> None:
    genesis, _ = shaped
    servers = _agreement_net(shaped, tmp_path, 1, 2)
    try:
        r = _fetch(tmp_path / "o.db", servers, "1..40", "--agreement-prefix", "32", net=["--genesis", str(genesis)])
        assert r.returncode == 1, r.stdout + r.stderr[-3000:]
        assert set(_stored(tmp_path / "o.db")) == {0}  # the genesis only: never the liars' chain
        assert "peer agreement on block 40 failed: at most 2 peer(s)" in r.stdout and "unproven: 40 blocks" in r.stdout
        # --trust strict refuses agreement outright; a checkpoint proves the honest chain (the liars fail it).
        r = _fetch(tmp_path / "s.db", servers, "1..40", "--trust", "strict", net=["--genesis", str(genesis)])
        assert r.returncode == 1 and "strict" in r.stdout and set(_stored(tmp_path / "s.db")) == {0}
    finally:
        for s in servers:
            s.stop()


def test_peers_on_one_network_count_once(shaped: tuple[Path, Path], tmp_path: Path) -> None:
    """Three honest peers whose addresses share a /16 (the default rule) are one network: no agreement."""
    genesis, _ = shaped
    servers = _agreement_net(shaped, tmp_path, 3, 0)
    try:
        r = _fetch(tmp_path / "o.db", servers, "1..40", net=["--genesis", str(genesis)])
        assert r.returncode == 1 and "at most 1 peer(s) from distinct /16 networks" in r.stdout, r.stdout
        assert set(_stored(tmp_path / "o.db")) == {0}
    finally:
        for s in servers:
            s.stop()
