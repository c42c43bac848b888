"""Processes on hosts of their own: one network namespace per process, joined by a bridge.

The bridge (``ethp2p-sim``, 198.18.0.1/15) lives in the namespace the harness runs in, which must be
a private one (``./dev.sh test`` runs the suite in one; ``python -m tests.sim`` makes one). Each
process is started under ``unshare -n``, so it has a network namespace of its own that goes away
with it, holding the near end of a veth pair whose far end is a port of the bridge. The process
gets its own address from the benchmarking range 198.18.0.0/15 and, optionally, a bandwidth limit
(``tc ... tbf`` on both ends of its pair: what it sends and what it receives). There is no netem
in this kernel: latency comes from the serving node's ``--answer-delay``.

Nothing outside the harness's own namespaces is ever addressed: the bridge's range has no route
out (the namespace has no other interface), and every address handed out is on the bridge.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

BRIDGE = "ethp2p-sim"
HUB_ADDRESS = "198.18.0.1"
PREFIX = 15

#: The child shell: wait (bounded) for its end of the pair, configure it, and exec the program.
_CHILD = r"""
dev="$1"; addr="$2"; rate="$3"; shift 3
i=0
while ! ip link show "$dev" >/dev/null 2>&1; do
    i=$((i + 1)); [ "$i" -gt 600 ] && { echo "sim: no $dev after 30 s" >&2; exit 97; }
    sleep 0.05
done
ip link set lo up && ip addr add "$addr/15" dev "$dev" && ip link set "$dev" up || exit 98
if [ -n "$rate" ]; then
    tc qdisc add dev "$dev" root tbf rate "$rate" burst 64kb latency 400ms || exit 99
fi
exec "$@"
"""


class SimError(RuntimeError):
    """The simulation could not be set up (or a node did not come up)."""


def unavailable() -> str | None:
    """Why this machine cannot run the simulation here (None when it can)."""
    if os.environ.get("ETHP2P_NETNS") != "private":
        return "needs a private network namespace (./dev.sh test or python -m tests.sim make one)"
    if os.geteuid() != 0:
        return "needs root (it creates network namespaces, veth pairs and a bridge)"
    for tool in ("ip", "tc", "unshare"):
        if shutil.which(tool) is None:
            return f"needs the {tool} command"
    return None


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=15)
    if check and done.returncode != 0:
        raise SimError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done


def _tc(*args: str) -> None:
    done = subprocess.run(["tc", *args], capture_output=True, text=True, timeout=15)
    if done.returncode != 0:
        raise SimError(f"tc {' '.join(args)}: {done.stderr.strip()}")


def host_address(index: int) -> str:
    """The address of host ``index`` (0, 1, ...): one /24 each, 198.18.1.1, 198.18.2.1, ... 198.19.255.1."""
    n = index + 1
    if not 1 <= n <= 511:
        raise ValueError(f"host index {index} out of range (0..510)")
    return f"198.{18 + n // 256}.{n % 256}.1"


class Bridge:
    """The bridge every host joins, with the hub's own address on it (for the client that runs here)."""

    def __init__(self, name: str = BRIDGE, address: str = HUB_ADDRESS) -> None:
        self.name = name
        self.address = address

    def up(self) -> None:
        _ip("link", "del", self.name, check=False)  # left by a run that was killed
        _ip("link", "add", self.name, "type", "bridge")
        _ip("addr", "add", f"{self.address}/{PREFIX}", "dev", self.name)
        _ip("link", "set", self.name, "up")

    def down(self) -> None:
        _ip("link", "del", self.name, check=False)


class HostProcess:
    """One program running on a host of its own (a network namespace with one address on the bridge).

    ``rate`` is a tc rate such as ``"20mbit"`` (None: unlimited). :meth:`start` can be called again
    after :meth:`stop` (a flapping node): the namespace is new, the address and the veth names the same.
    """

    def __init__(
        self,
        name: str,
        index: int,
        argv: Sequence[str],
        log_path: Path,
        *,
        bridge: Bridge,
        rate: str | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.index = index
        self.address = host_address(index)
        self.argv = list(argv)
        self.log_path = log_path
        self.bridge = bridge
        self.rate = rate
        self.env = env
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._hub_dev = f"sim{index}h"
        self._node_dev = f"sim{index}n"

    def start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            raise SimError(f"{self.name} is already running")
        _ip("link", "del", self._hub_dev, check=False)  # a pair whose namespace is still going away
        self.starts += 1
        with open(self.log_path, "ab") as out:
            out.write(f"--- start {self.starts}: {' '.join(self.argv)}\n".encode())
            out.flush()
            cmd = ["unshare", "-n", "sh", "-c", _CHILD, "sh", self._node_dev, self.address, self.rate or ""]
            self.proc = subprocess.Popen(
                [*cmd, *self.argv],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        try:
            self._wait_for_namespace()
            _ip(
                "link",
                "add",
                self._hub_dev,
                "type",
                "veth",
                "peer",
                "name",
                self._node_dev,
                "netns",
                str(self.proc.pid),
            )
            _ip("link", "set", self._hub_dev, "master", self.bridge.name)
            _ip("link", "set", self._hub_dev, "up")
            if self.rate:
                _tc(
                    "qdisc",
                    "add",
                    "dev",
                    self._hub_dev,
                    "root",
                    "tbf",
                    "rate",
                    self.rate,
                    "burst",
                    "64kb",
                    "latency",
                    "400ms",
                )
        except BaseException:
            self.stop()
            raise

    def _wait_for_namespace(self) -> None:
        # unshare execs sh in the new namespace: until it has, the pid is still in ours, and a veth
        # end moved "there" would stay here.
        assert self.proc is not None
        ours = os.readlink("/proc/self/ns/net")
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise SimError(f"{self.name}: unshare exited with {self.proc.returncode}:\n{self.log_text()}")
            if time.monotonic() > deadline:
                raise SimError(f"{self.name}: unshare -n made no network namespace in 30 s")
            try:
                if os.readlink(f"/proc/{self.proc.pid}/ns/net") != ours:
                    return
            except OSError:
                pass
            time.sleep(0.01)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def wait_for(self, pattern: str, timeout: float = 60.0) -> re.Match[str]:
        """Wait until the log of the current start matches ``pattern``; the match."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while True:
            text = self.log_text().rsplit(f"--- start {self.starts}:", 1)[-1]
            if (m := rx.search(text)) is not None:
                return m
            if self.proc is None or self.proc.poll() is not None:
                code = None if self.proc is None else self.proc.returncode
                raise SimError(f"{self.name} exited ({code}) before printing {pattern!r}:\n{text[-3000:]}")
            if time.monotonic() > deadline:
                raise SimError(f"{self.name} did not print {pattern!r} in {timeout:.0f} s:\n{text[-3000:]}")
            time.sleep(0.05)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM (SIGKILL after ``timeout``); the exit status. The namespace and the pair go with it."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        _ip("link", "del", self._hub_dev, check=False)
        return proc.returncode

    def kill(self) -> None:
        """SIGKILL at once (a node that vanishes)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
