"""Persistent storage (SQLite, the embedded default): blocks, resume state, peer cache."""
