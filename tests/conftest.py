"""Shared test helpers: where the copied vectors live."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import hypothesis.configuration
import pytest

VECTORS = Path(__file__).parent / "vectors"

# Hypothesis keeps its files (an example database, a cache of constants) outside the checkout; the
# fuzz tests (tests/fuzz) use no example database at all, so every run tries the same examples.
_HYPOTHESIS_HOME = Path(tempfile.gettempdir()) / f"ethp2p-hypothesis-{os.getuid()}"
hypothesis.configuration.set_hypothesis_home_dir(_HYPOTHESIS_HOME)


def load_vector(relpath: str) -> Any:
    """Load a JSON vector file from tests/vectors."""
    with open(VECTORS / relpath) as f:
        return json.load(f)


@pytest.fixture(scope="session")
def vectors() -> Path:
    return VECTORS


@pytest.fixture(scope="session")
def mainnet_store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of a store with real mainnet blocks 0-16,383 plus the derived blocks (built once)."""
    from tests.support.stores import mainnet_store

    return mainnet_store(tmp_path_factory.mktemp("mainnet") / "mainnet.db")


@pytest.fixture(scope="session")
def long_chain(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A store of a 100,000-block chain (blocks 0..99,999: linked Prague headers over empty bodies)
    of a ``--genesis`` network of its own, built once per session (tests/support/longchain.py)."""
    from tests.support.longchain import build_long_chain

    chain = build_long_chain(tmp_path_factory.mktemp("longchain"))
    print(f"\nlong chain: {chain.head_number + 1:,} blocks built in {chain.build_seconds:.1f} s")
    return chain
