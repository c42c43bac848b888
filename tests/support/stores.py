"""Block stores built from the copied real mainnet data (era1 0-16,383 and the derived blocks)."""

from __future__ import annotations

from pathlib import Path

from ethp2p.eth.chainspec import MAINNET
from ethp2p.store.blocks import BlockStore
from ethp2p.store.importer import ensure_genesis, import_file
from tests.conftest import VECTORS

ERA1_FILES = sorted((VECTORS / "mainnet/era1").glob("*.era1"))
DERIVED = VECTORS / "mainnet/derived/mainnet_blocks.json"


def mainnet_store(path: Path, *, derived: bool = True) -> Path:
    """A store with mainnet blocks 0-16,383 (era1) and, optionally, the isolated derived blocks."""
    if not path.exists():
        with BlockStore(path, genesis_hash=MAINNET.genesis_hash) as store:
            ensure_genesis(store, MAINNET)
            for f in ERA1_FILES:
                import_file(store, f, MAINNET)
            if derived:
                import_file(store, DERIVED, MAINNET)
    return path
