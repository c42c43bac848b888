"""Harness for a real third-party peer: ``@ethereumjs/client`` 0.10.5 on loopback.

``tests/interop/install_peer.sh`` (run by the test command) installs the npm package
into ``.cache/ethereumjs``. :class:`EthereumJS` starts one client in a temporary data
dir with geth's devp2p test chain (or any genesis + RLP chain file), waits until its
RLPx listener is up and its chain is imported, and reads its enode URL.

Optionally (``patch_receipts=True``) a *copy* of the installed package is patched so
its GetReceipts handler answers (the published 0.10.5 never replies: it destructures
the request as an array and flattens all blocks' receipts into one list). The stock
install is never modified. Discovery is off; the client binds 0.0.0.0, so the test
command runs the suite in a private network namespace when it can.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / ".cache" / "ethereumjs"
CLI = Path("node_modules/@ethereumjs/client/dist/esm/bin/cli.js")


def installed() -> bool:
    """True if the pinned client is installed (and ``node`` is on PATH)."""
    return (INSTALL / CLI).is_file() and shutil.which("node") is not None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _patched_install(dest: Path) -> Path:
    """A copy of the install whose GetReceipts handler answers one list per block."""
    if (dest / CLI).is_file():
        return dest
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(INSTALL, tmp, symlinks=True)
    src = tmp / "node_modules/@ethereumjs/client/dist/esm/src"
    svc = src / "service/fullethereumservice.js"
    _replace(
        svc,
        [
            # The request arrives as an object {reqId, hashes}, not an array.
            ("const [reqId, hashes] = message.data;", "const { reqId, hashes } = message.data;"),
            # One receipt list per block instead of one flat list.
            ("receipts.push(...blockReceipts);", "receipts.push(blockReceipts);"),
            (
                "concatBytes(...receipts.map((r) => encodeReceipt(r, r.txType)))",
                "concatBytes(...blockReceipts.map((r) => encodeReceipt(r, r.txType)))",
            ),
        ],
    )
    # Encode each block's receipts as its own list: legacy receipts as RLP lists, typed ones as bytes.
    _replace(
        src / "net/protocol/ethprotocol.js",
        [
            (
                """for (const receipt of receipts) {
                        const encodedReceipt = encodeReceipt(receipt, receipt.txType);
                        serializedReceipts.push(encodedReceipt);
                    }""",
                """for (const blockReceipts of receipts) {
                        serializedReceipts.push(blockReceipts.map((r) => {
                            const enc = encodeReceipt(r, r.txType);
                            return r.txType > 0 ? enc : RLP.decode(enc);
                        }));
                    }""",
            )
        ],
    )
    tmp.rename(dest)
    return dest


def _replace(path: Path, edits: list[tuple[str, str]]) -> None:
    text = path.read_text()
    for old, new in edits:
        if text.count(old) != 1:
            raise RuntimeError(f"ethereumjs patch: {old[:50]!r} not found once in {path.name} (version changed?)")
        text = text.replace(old, new)
    path.write_text(text)


#: What its log says once it serves: the RLPx listener's enode URL (then "Client started successfully").
STARTED = r"url=(enode://[0-9a-f]{128}@[0-9.]+:\d+)"


def started(log: str) -> str | None:
    """The client's enode URL once its log says it has started (None until then)."""
    m = re.search(STARTED, log)
    return m.group(1) if m and "Client started successfully" in log else None


class EthereumJS:
    """One ethereumjs client process serving a chain on 127.0.0.1."""

    def __init__(
        self,
        workdir: Path,
        genesis: Path | None,
        chain_rlp: Path | None,
        *,
        chain_name: str = "ethtest",
        patch_receipts: bool = False,
        extra_args: tuple[str, ...] = (),
        discovery: bool = False,
    ) -> None:
        self.workdir = workdir
        self.genesis = genesis
        self.chain_rlp = chain_rlp
        self.chain_name = chain_name
        self.patch_receipts = patch_receipts
        self.extra_args = extra_args
        self.discovery = discovery
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.enode: str | None = None
        self.log_path = workdir / "ethereumjs.log"

    def command(self, ext_ip: str = "127.0.0.1") -> list[str]:
        """Prepare the work directory and return the command line that starts the client (for a
        host of its own, ``ext_ip`` is its address there)."""
        base = _patched_install(ROOT / ".cache" / "ethereumjs-patched") if self.patch_receipts else INSTALL
        self.workdir.mkdir(parents=True, exist_ok=True)
        chain_args: list[str] = []
        if self.genesis is not None:
            genesis = self.workdir / f"{self.chain_name}.json"  # the chain's name is the file's base name
            shutil.copyfile(self.genesis, genesis)
            chain_args += ["--gethGenesis", str(genesis)]
        if self.chain_rlp is not None:
            chain_args += ["--loadBlocksFromRlp", str(self.chain_rlp)]
        data = self.workdir / "data"
        return [
            "node",
            str(base / CLI),
            *chain_args,
            "--dataDir",
            str(data),
            "--port",
            str(self.port),
            "--extIP",
            ext_ip,
            f"--discV4={'true' if self.discovery else 'false'}",
            "--discDns=false",
            "--no-logFile",
            *self.extra_args,
        ]

    def start(self, timeout: float = 60.0) -> str:
        """Start the client; return its enode URL once it serves its imported chain."""
        args = self.command()
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            args, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ethereumjs exited with {self.proc.returncode}; log:\n{self.tail()}")
            text = self.log_path.read_text(errors="replace")
            if (enode := started(text)) is not None:
                self.enode = enode
                return enode
            time.sleep(0.25)
        self.stop()
        raise TimeoutError(f"ethereumjs did not start within {timeout:g}s; log:\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGKILL)  # a clean SIGTERM shutdown takes 8-10 s; nothing to save
        self.proc.wait(timeout=10)
