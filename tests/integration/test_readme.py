"""Docs that can't rot: every ```python and ```sh example in README.md runs, exactly as written.

The convention (also summed up in an HTML comment in README.md, above the first example):

* Which blocks run. Every fenced block tagged ``python`` or ``sh`` is an example and runs. Blocks
  that are not examples (usage synopses, sample output) are tagged ``text`` or left untagged.
  Other shell-ish tags (``bash``, ``shell``, ``console``, ``py``, ...) are refused, so a block
  cannot silently escape the test by its tag.
* Skips. A block that cannot run here (it needs the real mainnet, or it is the set-up that runs
  this very suite) is preceded, with at most blank lines between, by the visible marker
  ``<!-- readme-test: skip (REASON) -->``. The reason is required, and at most ``SKIPS_ALLOWED``
  blocks may be skipped: prefer the loopback form of an example over a skip.
* Order and place. The blocks run top to bottom, as a reader would type them, in one fresh
  temporary directory that holds ``tests/vectors`` (a link to the repository's test data), so
  paths relative to a checkout work. Nothing else is prepared: what a later example uses (a store,
  a running server) an earlier example makes. The tutorial near the top of the README imports the
  shipped era1 archives into ``history.db`` and starts two ``ethp2p serve`` processes with fixed
  test keys on 127.0.0.1:30303 and :30304, so later examples name literal enode URLs. After the
  tutorial the directory also holds ``mainnet.db`` (blocks 0..2047, fetched from them) and
  ``export/``; after the library's range example, ``proven.db`` (0..2047). A new example that
  serves takes the next free port (30305 is the ``HistoryServer`` example's).
* Shell blocks. Each command (a line, with ``\\`` continuations joined; ``#`` comment lines are
  ignored) must start with ``ethp2p `` and runs through ``bash -c`` with the venv's ``ethp2p`` first
  on PATH. It must exit 0 within ``COMMAND_TIMEOUT`` seconds, or with the status a trailing
  ``# exit N`` comment declares. A command ending in ``&`` is a background process: it must print
  a first line of output (a server prints its enode once it listens) within ``READY_TIMEOUT`` and
  keep running; it runs until every block is done, then gets SIGTERM and must exit 0.
* Python blocks. Each is a complete program: it runs as a script in a fresh interpreter (the venv's)
  and must exit 0 within ``COMMAND_TIMEOUT`` seconds. No top-level ``await``: define ``main()`` and
  end with ``asyncio.run(main())``. Python examples that need a peer use the tutorial's servers.
* Loopback only. Everything runs with ``tests/support/loopback_guard`` on PYTHONPATH: its
  ``sitecustomize`` refuses any connection, datagram or name lookup that is not loopback (and DNS
  port 53), so an example that would reach mainnet fails loudly instead of going out, even outside
  the private network namespace ``./dev.sh test`` runs in.

A failure names the README line of the block and of the command, with its output. The first
failing block ends the run: later blocks build on earlier ones.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
GUARD = ROOT / "tests" / "support" / "loopback_guard"

RUN_TAGS = {"python", "sh"}
#: Tags that look like runnable code but would not run: refused, so nothing escapes by its tag.
REFUSED_TAGS = {"bash", "shell", "zsh", "console", "shell-session", "py", "python3", "pycon", "sh-session"}
#: Most blocks that may be skipped (each with a reason); raise it only with a good reason.
SKIPS_ALLOWED = 2
COMMAND_TIMEOUT = 120.0
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0

_FENCE = re.compile(r"^```\s*([\w+-]*)\s*$")
_MARKER = re.compile(r"^<!--\s*readme-test:\s*(.*?)\s*-->\s*$")
_SKIP = re.compile(r"^skip\s*\((.*)\)$")
_EXIT = re.compile(r"\s+#\s*exit\s+(\d+)\s*$")
_BACKGROUND = re.compile(r"\s&\s*(#.*)?$")


@dataclass
class Command:
    """One shell command of a block: its README line, its text, what it must exit with."""

    line: int
    text: str
    expect: int = 0
    background: bool = False


@dataclass
class Block:
    """One fenced block of the README."""

    tag: str
    line: int  # of the opening fence
    end: int  # of the closing fence
    code: str
    skip: str | None = None
    commands: list[Command] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"README.md:{self.line} (```{self.tag} block, lines {self.line}-{self.end})"


class ConventionError(Exception):
    """The README breaks the examples convention (see the module docstring)."""


def parse_readme(text: str) -> list[Block]:
    """Every fenced block of ``text``, with its skip marker and (for sh blocks) its commands."""
    lines = text.splitlines()
    blocks: list[Block] = []
    errors: list[str] = []
    marker: tuple[int, str] | None = None
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        mk = _MARKER.match(lines[i])
        if mk:
            if marker is not None:
                errors.append(f"README.md:{marker[0]}: readme-test marker not followed by a code block")
            marker = (i + 1, mk.group(1))
            i += 1
            continue
        if m is None:
            if lines[i].lstrip().startswith("```") and not lines[i].startswith("```"):
                errors.append(f"README.md:{i + 1}: indented code fence: the test reads fences at column 0 only")
            if marker is not None and lines[i].strip():
                errors.append(
                    f"README.md:{marker[0]}: readme-test marker must be followed by a code block "
                    f"(only blank lines between)"
                )
                marker = None
            i += 1
            continue
        start = i
        i += 1
        while i < len(lines) and not lines[i].startswith("```"):
            i += 1
        if i >= len(lines):
            raise ConventionError(f"README.md:{start + 1}: code block never closed")
        block = Block(tag=m.group(1).lower(), line=start + 1, end=i + 1, code="\n".join(lines[start + 1 : i]) + "\n")
        i += 1
        if marker is not None:
            sk = _SKIP.match(marker[1])
            if sk is None:
                errors.append(
                    f"README.md:{marker[0]}: unknown readme-test marker {marker[1]!r} (the only one is `skip (REASON)`)"
                )
            elif not sk.group(1).strip():
                errors.append(f"README.md:{marker[0]}: a skip needs a reason: `<!-- readme-test: skip (WHY) -->`")
            elif block.tag not in RUN_TAGS:
                errors.append(f"{block.where}: skip marker on a block that would not run anyway")
            else:
                block.skip = sk.group(1).strip()
            marker = None
        if block.tag in REFUSED_TAGS:
            errors.append(f"{block.where}: tag it `sh` or `python` so it runs, or `text` if it is not an example")
        if block.tag == "sh":
            try:
                block.commands = shell_commands(block)
            except ConventionError as e:
                if block.skip is None:
                    errors.append(str(e))
        blocks.append(block)
    if marker is not None:
        errors.append(f"README.md:{marker[0]}: readme-test marker not followed by a code block")
    if errors:
        raise ConventionError(
            "README examples break the convention (see tests/integration/test_readme.py):\n  " + "\n  ".join(errors)
        )
    return blocks


def shell_commands(block: Block) -> list[Command]:
    """The ``ethp2p`` commands of an sh block (continuations joined, comment lines dropped)."""
    commands: list[Command] = []
    lines = block.code.splitlines()
    i = 0
    while i < len(lines):
        first = i
        text = lines[i]
        while text.endswith("\\") and i + 1 < len(lines):
            i += 1
            text = text[:-1].rstrip() + " " + lines[i].strip()
        i += 1
        text = text.strip()
        if not text or text.startswith("#"):
            continue
        line = block.line + 1 + first
        if not text.startswith("ethp2p "):
            raise ConventionError(
                f"README.md:{line}: only `ethp2p ...` commands run in an sh block, got "
                f"{text.split()[0]!r} (make the block `text`, or skip it with a reason)"
            )
        cmd = Command(line=line, text=text)
        ex = _EXIT.search(text)
        if ex:
            cmd.expect = int(ex.group(1))
            text = text[: ex.start()]
        bg = _BACKGROUND.search(text)
        if bg:
            cmd.background = True
            text = text[: bg.start()]
        cmd.text = text.strip()
        commands.append(cmd)
    if not commands:
        raise ConventionError(f"{block.where}: an sh block with no `ethp2p` command (make it `text`, or skip it)")
    return commands


def readme_blocks() -> list[Block]:
    return parse_readme(README.read_text())


def runnable(blocks: list[Block]) -> list[Block]:
    return [b for b in blocks if b.tag in RUN_TAGS and b.skip is None]


# --- the convention itself (fast, no servers) ---------------------------------------------------


def test_readme_follows_the_convention() -> None:
    """There are examples to run, every skip says why, and there are few skips."""
    blocks = readme_blocks()
    run = runnable(blocks)
    skips = [b for b in blocks if b.skip is not None]
    assert run, "README.md has no runnable ```python or ```sh example: nothing would be tested"
    assert any(b.tag == "python" for b in run), "README.md has no runnable ```python example"
    assert any(b.tag == "sh" for b in run), "README.md has no runnable ```sh example"
    listing = "\n".join(f"  {b.where}: {b.skip}" for b in skips)
    print(f"README examples: {len(run)} run, {len(skips)} skipped" + (f":\n{listing}" if skips else ""))
    assert len(skips) <= SKIPS_ALLOWED, (
        f"{len(skips)} README blocks are skipped, at most {SKIPS_ALLOWED} may be; "
        f"rewrite the new ones to run on loopback:\n{listing}"
    )


def test_parser_refuses_what_would_slip_through() -> None:
    """Untagged-looking code, reasonless skips and stray shell commands are convention errors."""
    cases = {
        "```bash\nethp2p demo\n```\n": "tag it `sh` or `python`",
        "<!-- readme-test: skip () -->\n```sh\nethp2p demo\n```\n": "needs a reason",
        "<!-- readme-test: skip (x) -->\nprose\n```sh\nethp2p demo\n```\n": "must be followed by a code block",
        "<!-- readme-test: run twice -->\n```sh\nethp2p demo\n```\n": "unknown readme-test marker",
        "```sh\nls -l\n```\n": "only `ethp2p ...` commands run",
        "```sh\n# just a comment\n```\n": "no `ethp2p` command",
        "* item\n\n  ```python\n  print(1)\n  ```\n": "indented code fence",
    }
    for text, message in cases.items():
        with pytest.raises(ConventionError, match=re.escape(message)):
            parse_readme(text)
    [block] = parse_readme(
        "```sh\nethp2p serve --store a.db \\\n    --port 1 &   # a server\nethp2p verify --store b.db  # exit 1\n```\n"
    )
    assert [(c.line, c.text, c.expect, c.background) for c in block.commands] == [
        (2, "ethp2p serve --store a.db --port 1", 0, True),
        (4, "ethp2p verify --store b.db", 1, False),
    ]


def test_loopback_guard_refuses_public_addresses() -> None:
    """The guard the examples run under stops a public connection and a lookup before anything is sent."""
    if os.environ.get("ETHP2P_NETNS") != "private":
        # Were the guard broken, the probe would reach out: only where nothing can leave.
        pytest.skip("needs the private network namespace of ./dev.sh test (a broken guard would send packets)")
    probe = (
        "import socket\n"
        "for what, call in [('connect', lambda: socket.create_connection(('192.0.2.1', 30303), timeout=1)),\n"
        "                   ('lookup', lambda: socket.getaddrinfo('all.mainnet.ethdisco.net', 53)),\n"
        "                   ('dns', lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "                                       .sendto(b'', ('127.0.0.53', 53)))]:\n"
        "    try:\n"
        "        call()\n"
        "    except PermissionError as e:\n"
        "        print(what, 'blocked:', e)\n"
        "    else:\n"
        "        print(what, 'NOT BLOCKED')\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], env=_env(), capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("blocked: readme-test loopback guard") == 3, out.stdout


# --- running the examples -----------------------------------------------------------------------


def _env() -> dict[str, str]:
    """The examples' environment: the venv's ethp2p first on PATH, the loopback guard loaded."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(GUARD)
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PYTHONSTARTUP", None)
    return env


def _tail(text: str, limit: int = 6000) -> str:
    return text if len(text) <= limit else "...\n" + text[-limit:]


@dataclass
class Finished:
    """How a foreground command ended: its status (None when it timed out and was killed) and output."""

    returncode: int | None
    stdout: str
    stderr: str


class Run:
    """One pass over the README: its working directory and the background processes it started."""

    def __init__(self, work: Path, scratch: Path) -> None:
        self.work = work
        self.scratch = scratch
        self.env = _env()
        self.background: list[tuple[Command, subprocess.Popen[bytes], Path]] = []

    def shell(self, block: Block, cmd: Command) -> None:
        if cmd.background:
            self._start_background(block, cmd)
            return
        t0 = time.monotonic()
        out = self._run(["bash", "-c", cmd.text])
        if out.returncode is None:
            pytest.fail(
                f"{block.where}: command at README.md:{cmd.line} still running after {COMMAND_TIMEOUT:.0f} s "
                f"(killed):\n  $ {cmd.text}\n--- stdout ---\n{_tail(out.stdout)}\n--- stderr ---\n"
                f"{_tail(out.stderr)}"
            )
        took = time.monotonic() - t0
        print(f"README.md:{cmd.line}: exit {out.returncode} in {took:.1f} s: {cmd.text[:100]}\n" + _indent(out.stdout))
        if out.returncode != cmd.expect:
            pytest.fail(
                f"{block.where}: command at README.md:{cmd.line} exited {out.returncode} "
                f"(expected {cmd.expect}) after {took:.1f} s:\n  $ {cmd.text}\n"
                f"--- stdout ---\n{_tail(out.stdout)}\n--- stderr ---\n{_tail(out.stderr)}"
            )

    def _run(self, args: list[str]) -> Finished:
        """Run ``args`` in the working directory, in its own process group (killed whole on timeout)."""
        proc = subprocess.Popen(
            args,
            cwd=self.work,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            stdout, stderr = proc.communicate(timeout=COMMAND_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            return Finished(None, stdout, stderr)
        return Finished(proc.returncode, stdout, stderr)

    def _start_background(self, block: Block, cmd: Command) -> None:
        log_path = self.scratch / f"background-{cmd.line}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                ["bash", "-c", f"exec {cmd.text}"],
                cwd=self.work,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.background.append((cmd, proc, log_path))
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            text = log_path.read_text(errors="replace")
            if proc.poll() is not None:
                pytest.fail(
                    f"{block.where}: background command at README.md:{cmd.line} exited {proc.returncode} "
                    f"(it must keep running):\n  $ {cmd.text}\n--- output ---\n{_tail(text)}"
                )
            if "\n" in text:
                print(f"README.md:{cmd.line}: running in the background: {text.splitlines()[0][:160]}")
                return
            time.sleep(0.05)
        pytest.fail(
            f"{block.where}: background command at README.md:{cmd.line} printed nothing in "
            f"{READY_TIMEOUT:.0f} s:\n  $ {cmd.text}\n--- output ---\n{_tail(log_path.read_text(errors='replace'))}"
        )

    def python(self, block: Block) -> None:
        script = self.scratch / f"readme_{block.line}.py"
        script.write_text(block.code)
        t0 = time.monotonic()
        out = self._run([sys.executable, str(script)])
        if out.returncode is None:
            pytest.fail(
                f"{block.where}: still running after {COMMAND_TIMEOUT:.0f} s (killed)\n--- stdout ---\n"
                f"{_tail(out.stdout)}\n--- stderr ---\n{_tail(out.stderr)}"
            )
        took = time.monotonic() - t0
        print(f"{block.where}: exit {out.returncode} in {took:.1f} s\n" + _indent(out.stdout))
        if out.returncode != 0:
            pytest.fail(
                f"{block.where}: exited {out.returncode} after {took:.1f} s (the block must be a complete "
                f"program; it ran as {script})\n--- stdout ---\n{_tail(out.stdout)}\n"
                f"--- stderr ---\n{_tail(out.stderr)}"
            )

    def stop(self) -> list[str]:
        """SIGTERM every background process; what went wrong with any (empty when all exited 0)."""
        problems = []
        for cmd, proc, log_path in self.background:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    problems.append(f"README.md:{cmd.line}: did not stop within {STOP_TIMEOUT:.0f} s of SIGTERM")
                    continue
            if proc.returncode != 0:
                problems.append(
                    f"README.md:{cmd.line}: background command ended with {proc.returncode}:\n  $ "
                    f"{cmd.text}\n--- output ---\n{_tail(log_path.read_text(errors='replace'))}"
                )
        self.background.clear()
        return problems


def _indent(text: str, lines: int = 12) -> str:
    """The first ``lines`` lines of an example's output, indented, for the -s / failure log."""
    head = text.splitlines()[:lines]
    return "".join(f"    | {line[:160]}\n" for line in head)


@pytest.fixture
def readme_run(tmp_path: Path) -> Iterator[Run]:
    """A fresh working directory with the repository's test data at ``tests/vectors``."""
    work = tmp_path / "work"
    (work / "tests").mkdir(parents=True)
    (work / "tests" / "vectors").symlink_to(ROOT / "tests" / "vectors", target_is_directory=True)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    if not (Path(sys.executable).parent / "ethp2p").exists():
        pytest.fail(f"no ethp2p command next to {sys.executable}: run the tests from the venv (./dev.sh test)")
    run = Run(work, scratch)
    try:
        yield run
    finally:
        run.stop()


def test_readme_examples_run_as_written(readme_run: Run) -> None:
    """Every runnable README block, top to bottom, on loopback against the servers the README starts."""
    blocks = runnable(readme_blocks())
    assert blocks, "README.md has no runnable example"
    t0 = time.monotonic()
    for block in blocks:
        if block.tag == "python":
            readme_run.python(block)
        else:
            for cmd in block.commands:
                readme_run.shell(block, cmd)
    problems = readme_run.stop()
    print(f"{len(blocks)} README blocks ran in {time.monotonic() - t0:.1f} s")
    assert not problems, "\n".join(problems)


if __name__ == "__main__":  # list what would run: python tests/integration/test_readme.py
    for b in readme_blocks():
        state = f"skip ({b.skip})" if b.skip else ("run" if b.tag in RUN_TAGS else "not an example")
        print(f"{b.where}: {state}")
        for c in b.commands:
            print(
                f"    README.md:{c.line}: {shlex.quote(c.text)[:90]}"
                + (" &" if c.background else "")
                + (f"  # exit {c.expect}" if c.expect else "")
            )
