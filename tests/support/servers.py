"""Start N ethp2p serving nodes as separate processes on loopback, from one block store."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ethp2p.chain.genesis import load_genesis
from ethp2p.crypto.keys import PrivateKey
from ethp2p.store.blocks import BlockStore
from ethp2p.store.importer import ensure_genesis, import_file
from tests.conftest import VECTORS

ETHTEST_GENESIS = VECTORS / "ethtest/genesis.json"


def private_loopback(count: int) -> list[str]:
    """``count`` distinct loopback addresses (127.0.0.2, ...) for peers that must sit on distinct networks.

    Only inside the private network namespace ``./dev.sh test`` creates (``ETHP2P_NETNS=private``):
    nothing outside it is ever addressed. Elsewhere the calling test is skipped, saying why.
    """
    import pytest

    if os.environ.get("ETHP2P_NETNS") != "private":
        pytest.skip("needs the private network namespace of ./dev.sh test (addresses 127.0.0.2 and up)")
    return [f"127.0.0.{i}" for i in range(2, 2 + count)]


def ethtest_store(path: Path) -> Path:
    """A store holding geth's test chain (headers and bodies of blocks 0-600; no receipts)."""
    if not path.exists():
        spec = load_genesis(ETHTEST_GENESIS)
        with BlockStore(path, genesis_hash=spec.genesis_hash) as store:
            ensure_genesis(store, spec)
            import_file(store, VECTORS / "ethtest/chain.rlp", spec)
    return path


class ServerProcess:
    """One ``ethp2p serve`` subprocess."""

    def __init__(
        self,
        store: Path,
        *,
        network_args: Sequence[str],
        extra: Sequence[str] = (),
        workdir: Path,
        host: str = "127.0.0.1",
    ) -> None:
        self.key = PrivateKey.generate()
        self.host = host
        self.log_path = workdir / f"serve-{self.key.public_key.to_bytes().hex()[:8]}.log"
        args = [
            sys.executable,
            "-m",
            "ethp2p.cli",
            "serve",
            "--store",
            str(store),
            "--port",
            "0",
            "--host",
            host,
            "--key",
            self.key.to_bytes().hex(),
            *network_args,
            *extra,
        ]
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, text=True)
        self.enode = ""

    def wait_ready(self, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_path.read_text()
            m = re.search(r"(enode://[0-9a-f]{128}@127\.\d+\.\d+\.\d+:\d+)", text)
            if m:
                self.enode = m.group(1)
                return self.enode
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{text}")
            time.sleep(0.05)
        raise TimeoutError(f"server not ready:\n{self.log_path.read_text()}")

    def stop(self) -> str:
        """SIGTERM, wait, and return everything it printed."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.log_path.read_text()


def start_servers(
    n: int,
    store: Path,
    workdir: Path,
    *,
    network_args: Sequence[str],
    extra: Sequence[str] = (),
    hosts: Sequence[str] | None = None,
) -> list[ServerProcess]:
    """Start ``n`` serving processes and wait until each listens (on ``hosts[i]``, default 127.0.0.1)."""
    hosts = list(hosts) if hosts is not None else ["127.0.0.1"] * n
    servers = [ServerProcess(store, network_args=network_args, extra=extra, workdir=workdir, host=h) for h in hosts[:n]]
    try:
        for s in servers:
            s.wait_ready()
    except BaseException:
        for s in servers:
            s.stop()
        raise
    return servers
