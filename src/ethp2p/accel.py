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
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from typing_extensions import Buffer


class Speedups(Protocol):
    """What the C extension provides; ``_speedups.pyi`` has its exact types, and mypy checks that the
    module satisfies this (see the ``_speedups`` functions' docs for what each returns)."""

    def keccak256(self, data: Buffer, /) -> bytes: ...
    def ordered_trie_root(self, items: Sequence[Buffer], /) -> bytes: ...
    def body_roots(self, body_raw: Buffer, /) -> tuple[bytes, int, bytes, bytes | None] | None: ...
    def receipts69_root(self, list_raw: Buffer, /) -> tuple[bytes, int] | None: ...
    def receipts69_shape(self, list_raw: Buffer, /) -> tuple[int, int] | None: ...
    def receipts68_root(self, list_raw: Buffer, /) -> tuple[bytes, int, bytes] | None: ...
    def receipts69_to_68(self, list_raw: Buffer, /) -> bytes | None: ...
    def tx_fields(self, encoding: Buffer, /) -> tuple[int, list[bytes | int], int, int] | None: ...
    def receipts69_fields(
        self, list_raw: Buffer, /
    ) -> list[tuple[bytes, bytes, list[tuple[bytes, list[bytes], bytes]]]] | None: ...


def _load() -> tuple[Speedups | None, str]:
    """The C extension and "", or None and why pure Python is in use."""
    if os.environ.get("ETHP2P_PURE_PYTHON", "") not in ("", "0"):
        return None, "disabled by ETHP2P_PURE_PYTHON"
    try:
        from . import _speedups
    except ImportError as e:  # not built (no compiler), or its keccak self-test failed
        return None, f"C extension unavailable: {e}"
    return _speedups, ""


speedups: Speedups | None
"""The C extension module, or None when pure Python is in use."""

reason: str
"""Why pure Python is in use ("" when the extension is)."""

speedups, reason = _load()


def implementation() -> str:
    """'c' or 'python', for logs and benchmark reports."""
    return "c" if speedups is not None else "python"
