"""A real DNS server on 127.0.0.1 for tests: Debian's dnsmasq, serving TXT records from a dict.

``./dev.sh test`` installs the ``dnsmasq-base`` package when it is missing (as root, via
apt). If dnsmasq still isn't there, the DNS tests skip and say so.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path


def available() -> bool:
    return shutil.which("dnsmasq") is not None


def _free_port() -> int:
    """A port free on 127.0.0.1 for both UDP and TCP (dnsmasq binds both)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port


def _quote(text: str) -> str:
    # TXT strings are at most 255 bytes; longer texts go out as several strings (joined by readers).
    parts = [text[i : i + 255] for i in range(0, len(text), 255)] or [""]
    return ",".join('"' + p.replace("\\", "\\\\").replace('"', '\\"') + '"' for p in parts)


class DnsServer:
    """dnsmasq answering only the given TXT records, on 127.0.0.1:<port>."""

    def __init__(self, workdir: Path, records: dict[str, str]) -> None:
        self.workdir = workdir
        self.records = records
        self.proc: subprocess.Popen[bytes] | None = None
        self._configure(_free_port())

    def _configure(self, port: int) -> None:
        self.port = port
        self.conf = self.workdir / f"dnsmasq-{port}.conf"
        lines = [
            f"port={port}",
            "listen-address=127.0.0.1",
            "bind-interfaces",
            "no-resolv",
            "no-hosts",
            "no-poll",
            "user=root",
            "pid-file=",
        ]
        lines += [f"txt-record={name},{_quote(text)}" for name, text in self.records.items()]
        self.conf.write_text("\n".join(lines) + "\n")
        self.log = self.workdir / f"dnsmasq-{port}.log"

    def start(self) -> DnsServer:
        # The port was free when chosen, but another test's server may take it before dnsmasq
        # binds it: then try another port (a few times).
        for attempt in range(5):
            self.proc = subprocess.Popen(
                ["dnsmasq", "--no-daemon", f"--conf-file={self.conf}"],
                stdout=open(self.log, "wb"),
                stderr=subprocess.STDOUT,
            )
            time.sleep(0.3)
            if self.proc.poll() is None:
                return self
            log = self.log.read_text()
            if "Address already in use" not in log or attempt == 4:
                raise RuntimeError(f"dnsmasq exited: {log}")
            self._configure(_free_port())
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=5)
