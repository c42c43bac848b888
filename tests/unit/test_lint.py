"""The linter, the formatter and the type checker report nothing, with the settings in pyproject.toml;
the C extension's stub matches the built extension.

Each tool runs from this venv (``sys.executable -m ...``) at the repository's root, so it reads
``[tool.ruff]`` and ``[tool.mypy]`` there and checks the paths they configure; its caches live
under ``.cache/`` so that a second run only re-checks what changed.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.mark.parametrize(
    "command",
    [
        ("ruff", "check", "--no-fix", "--output-format", "concise"),
        ("ruff", "format", "--check", "--diff"),
        ("mypy",),
    ],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_tool_reports_nothing(command: tuple[str, ...]) -> None:
    done = _run(*command)
    assert done.returncode == 0, f"`{' '.join(command)}` found problems:\n{done.stdout}{done.stderr}"


@pytest.mark.skipif(importlib.util.find_spec("ethp2p._speedups") is None, reason="the C extension is not built")
def test_speedups_stub_matches_the_extension() -> None:
    """mypy's stubtest imports the built extension and compares it with ``_speedups.pyi``."""
    done = _run("mypy.stubtest", "ethp2p._speedups")
    assert done.returncode == 0, f"stubtest found differences:\n{done.stdout}{done.stderr}"
