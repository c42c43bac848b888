"""The layer map holds: import-linter's contracts pass, and the README's table is the contract.

The contracts live in ``pyproject.toml`` (``[tool.importlinter]``); the README "Architecture"
table lists the same layers, bottom first. Every package and top-level module of ``ethp2p``
must sit in a layer, so nothing new escapes the map.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "ethp2p"


def _layers() -> list[set[str]]:
    """The layers contract, bottom first, each layer as the set of its modules."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    (layers,) = [c for c in contracts if c.get("id") == "layers"]
    return [{name.strip() for name in re.split(r"[|:]", line)} for line in reversed(layers["layers"])]


def _readme_layers() -> list[set[str]]:
    """The README "Architecture" table, row by row: the module names in the first column."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Architecture\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return [set(re.findall(r"`([a-z0-9_]+)`", row.split(" | ", 1)[0])) - {"_speedups"} for row in rows]


def test_import_linter_contracts_pass() -> None:
    lint = Path(sys.executable).parent / "lint-imports"
    assert lint.exists(), f"{lint} is missing: install the test extra (./dev.sh test does)"
    done = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout, done.stdout


def test_every_package_and_module_is_in_a_layer() -> None:
    named = set().union(*_layers())
    present = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    present |= {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    assert present - named == set(), "not in the layers contract"
    assert named - present == set(), "in the contract but not in the tree"


def test_readme_table_is_the_contract_bottom_first() -> None:
    assert _readme_layers() == _layers()
