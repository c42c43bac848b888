"""ethp2p: Ethereum execution-layer devp2p in Python, for fetching verified chain history from peers."""

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # ``ethp2p.open_store`` without importing the store and export modules on ``import ethp2p``.
    if name in ("open_store", "History"):
        from . import history

        return getattr(history, name)
    raise AttributeError(f"module 'ethp2p' has no attribute {name!r}")


__all__ = ["History", "__version__", "open_store"]
