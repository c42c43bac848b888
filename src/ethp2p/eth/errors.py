"""Errors of the eth protocol layer."""

from __future__ import annotations


class EthProtocolError(Exception):
    """A peer sent an eth message that is malformed or not allowed here (a protocol breach)."""
