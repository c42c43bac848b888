"""Shared test helpers: where the copied vectors live."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

VECTORS = Path(__file__).parent / "vectors"


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
