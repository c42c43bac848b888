"""ethp2p: Ethereum execution-layer devp2p in Python, for fetching verified chain history from peers."""

from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:  # what the lazy attributes below are, for type checkers
    from .history import History, open_store


def __getattr__(name: str) -> object:
    # ``ethp2p.open_store`` without importing the store and export modules on ``import ethp2p``.
    if name in ("open_store", "History"):
        from . import history

        return getattr(history, name)
    raise AttributeError(f"module 'ethp2p' has no attribute {name!r}")


__all__ = ["History", "__version__", "open_store"]
