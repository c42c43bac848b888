"""Disconnect reasons (devp2p rlpx.md, Disconnect 0x01)."""

from __future__ import annotations

from enum import IntEnum


class DisconnectReason(IntEnum):
    """Why a peer is being (or was) disconnected."""

    REQUESTED = 0x00
    TCP_ERROR = 0x01
    BREACH_OF_PROTOCOL = 0x02
    USELESS_PEER = 0x03
    TOO_MANY_PEERS = 0x04
    ALREADY_CONNECTED = 0x05
    INCOMPATIBLE_P2P_VERSION = 0x06
    NULL_NODE_IDENTITY = 0x07
    CLIENT_QUITTING = 0x08
    UNEXPECTED_IDENTITY = 0x09
    CONNECTED_TO_SELF = 0x0A
    PING_TIMEOUT = 0x0B
    SUBPROTOCOL_ERROR = 0x10

    @classmethod
    def parse(cls, value: int) -> DisconnectReason | int:
        """The enum member for ``value``, or the bare int if it is not a known reason."""
        try:
            return cls(value)
        except ValueError:
            return value


def reason_name(reason: DisconnectReason | int | None) -> str:
    """Human-readable name of a reason (``unknown(0x..)`` for unlisted codes)."""
    if reason is None:
        return "none"
    if isinstance(reason, DisconnectReason):
        return reason.name.lower()
    return f"unknown(0x{reason:02x})"
