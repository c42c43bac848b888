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
