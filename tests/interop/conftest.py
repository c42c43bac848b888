"""Fixtures for interop tests against a real third-party client (see ethereumjs.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import VECTORS
from tests.interop.ethereumjs import EthereumJS, installed


def _start(tmp: Path, patch: bool) -> Iterator[EthereumJS]:
    if not installed():
        pytest.skip("@ethereumjs/client is not installed (tests/interop/install_peer.sh could not run npm)")
    peer = EthereumJS(tmp, VECTORS / "ethtest/genesis.json", VECTORS / "ethtest/chain.rlp", patch_receipts=patch)
    try:
        peer.start()
        yield peer
    finally:
        peer.stop()


@pytest.fixture(scope="session")
def ethereumjs_ethtest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EthereumJS]:
    """The stock client serving geth's 600-block test chain."""
    yield from _start(tmp_path_factory.mktemp("ejs-stock"), False)


@pytest.fixture(scope="session")
def ethereumjs_ethtest_receipts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EthereumJS]:
    """The client with its GetReceipts handler patched to answer (see ethereumjs.py)."""
    yield from _start(tmp_path_factory.mktemp("ejs-patched"), True)
