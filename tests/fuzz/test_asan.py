"""The C extension under AddressSanitizer and UBSan (tools/asan_speedups.sh), bounded.

The script builds a sanitized copy of ``ethp2p._speedups`` and runs the C-vs-Python tests and
``tools/fuzz_speedups.py`` against it; here with a short fuzz (``ASAN_FUZZ_SECONDS``, default 3): about
35 s on the 2-core test machine, of which ~25 s are the differential unit tests under the sanitizers.
Skipped, with the reason, where the compiler cannot build with the sanitizers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _sanitizers_missing() -> str | None:
    """Why a sanitized build cannot run here, or None if it can."""
    if shutil.which("gcc") is None:
        return "no gcc"
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "t.c"
        src.write_text("int main(void) { return 0; }\n")
        r = subprocess.run(
            ["gcc", "-fsanitize=address,undefined", str(src), "-o", str(Path(d) / "t")], capture_output=True, text=True
        )
        if r.returncode != 0:
            return f"gcc cannot build with -fsanitize=address,undefined: {r.stderr.strip()[:200]}"
    for lib in ("libasan.so", "libubsan.so"):
        out = subprocess.run(["gcc", f"-print-file-name={lib}"], capture_output=True, text=True).stdout.strip()
        if not os.path.isabs(out):
            return f"gcc has no {lib}"
    return None


@pytest.mark.slow
def test_c_extension_under_asan_and_ubsan() -> None:
    why = _sanitizers_missing()
    if why is not None:
        pytest.skip(why)
    if not (ROOT / ".venv/bin/python").exists() or Path(sys.executable).parent != ROOT / ".venv/bin":
        pytest.skip("tools/asan_speedups.sh runs with this checkout's .venv (./dev.sh test makes it)")
    seconds = os.environ.get("ASAN_FUZZ_SECONDS", "3")
    env = {k: v for k, v in os.environ.items() if k != "ETHP2P_PURE_PYTHON"}
    r = subprocess.run(
        ["bash", str(ROOT / "tools/asan_speedups.sh"), seconds], capture_output=True, text=True, env=env, timeout=600
    )
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    assert "ERROR: AddressSanitizer" not in out and "runtime error:" not in out, out[-4000:]
    assert "C and Python agreed on all" in out, out[-2000:]
