"""ethp2p: Ethereum execution-layer devp2p in Python, for fetching verified chain history from peers."""

__version__ = "0.1.0"
