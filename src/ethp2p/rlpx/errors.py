"""Errors raised by the RLPx layer (all mean: drop this connection)."""


class RLPxError(Exception):
    """Base class: the peer's bytes broke RLPx."""


class HandshakeError(RLPxError):
    """The auth/ack exchange failed (bad ECIES, signature, size or encoding)."""


class FrameError(RLPxError):
    """A frame failed its MAC, exceeded a size cap or was malformed."""


class SnappyError(RLPxError):
    """A compressed message was corrupt or would decompress past the cap."""
