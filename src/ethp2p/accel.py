"""Which implementation of the verification hot paths is in use: the C extension or pure Python.

``ethp2p._speedups`` (built from ``src/ethp2p/_speedups.c`` when the package is
installed, if a C compiler is there) computes Keccak-256, ordered trie roots, the
receipts roots of eth/69 and eth/68 lists, a body's roots, the eth/69 -> eth/68
conversion and the eth/70 partial-list shape check; the pure-Python functions in
:mod:`ethp2p.chain` are the reference and give identical results. Set
``ETHP2P_PURE_PYTHON=1`` to use them.
"""

from __future__ import annotations

import os
from types import ModuleType

speedups: ModuleType | None = None
"""The C extension module, or None when pure Python is in use."""

reason = ""
"""Why pure Python is in use ("" when the extension is)."""

if os.environ.get("ETHP2P_PURE_PYTHON", "") not in ("", "0"):
    reason = "disabled by ETHP2P_PURE_PYTHON"
else:
    try:
        from . import _speedups as speedups
    except ImportError as e:  # not built (no compiler), or its keccak self-test failed
        reason = f"C extension unavailable: {e}"


def implementation() -> str:
    """'c' or 'python', for logs and benchmark reports."""
    return "c" if speedups is not None else "python"
