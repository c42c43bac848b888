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


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _quote(text: str) -> str:
    # TXT strings are at most 255 bytes; longer texts go out as several strings (joined by readers).
    parts = [text[i : i + 255] for i in range(0, len(text), 255)] or [""]
    return ",".join('"' + p.replace("\\", "\\\\").replace('"', '\\"') + '"' for p in parts)


class DnsServer:
    """dnsmasq answering only the given TXT records, on 127.0.0.1:<port>."""

    def __init__(self, workdir: Path, records: dict[str, str]) -> None:
        self.port = _free_udp_port()
        self.conf = workdir / f"dnsmasq-{self.port}.conf"
        lines = [
            f"port={self.port}",
            "listen-address=127.0.0.1",
            "bind-interfaces",
            "no-resolv",
            "no-hosts",
            "no-poll",
            "user=root",
            "pid-file=",
        ]
        lines += [f"txt-record={name},{_quote(text)}" for name, text in records.items()]
        self.conf.write_text("\n".join(lines) + "\n")
        self.log = workdir / f"dnsmasq-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "DnsServer":
        self.proc = subprocess.Popen(
            ["dnsmasq", "--no-daemon", f"--conf-file={self.conf}"], stdout=open(self.log, "wb"), stderr=subprocess.STDOUT
        )
        time.sleep(0.3)
        if self.proc.poll() is not None:
            raise RuntimeError(f"dnsmasq exited: {self.log.read_text()}")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=5)
