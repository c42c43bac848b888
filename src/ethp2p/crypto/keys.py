"""secp256k1 keys: signing with recovery, ECDH giving the raw x coordinate.

A thin, typed wrapper around coincurve (libsecp256k1). Public keys travel on the
wire as 64 bytes (x || y, no 0x04 prefix); that is also a devp2p node id.
"""

from __future__ import annotations

import coincurve

from .keccak import keccak


class InvalidKey(ValueError):
    """A key, signature or point is malformed."""


class PublicKey:
    """A secp256k1 public key (validated on construction)."""

    __slots__ = ("_key", "_raw")

    def __init__(self, key: coincurve.PublicKey) -> None:
        self._key = key
        self._raw = key.format(compressed=False)[1:]

    @classmethod
    def from_bytes(cls, data: bytes) -> PublicKey:
        """Parse 64 raw bytes (x || y), 65 bytes (0x04 prefix) or 33 compressed bytes."""
        data = bytes(data)
        if len(data) == 64:
            data = b"\x04" + data
        elif len(data) not in (33, 65):
            raise InvalidKey(f"public key must be 33, 64 or 65 bytes, got {len(data)}")
        try:
            return cls(coincurve.PublicKey(data))
        except ValueError as e:
            raise InvalidKey(f"not a point on secp256k1: {e}") from None

    def to_bytes(self) -> bytes:
        """64 raw bytes (x || y): the devp2p node id."""
        return self._raw

    def to_compressed(self) -> bytes:
        """33-byte compressed form (as ENR's secp256k1 entry uses)."""
        return self._key.format(compressed=True)

    def node_hash(self) -> bytes:
        """keccak256 of the 64-byte key (the discovery table's id)."""
        return keccak(self._raw)

    def verify(self, signature: bytes, msg_hash: bytes) -> bool:
        """Check a 64-byte (r||s) or 65-byte signature over a 32-byte hash."""
        try:
            der = _compact_to_der(signature[:64])
            return self._key.verify(der, msg_hash, hasher=None)
        except (ValueError, TypeError):
            return False

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PublicKey) and other._raw == self._raw

    def __hash__(self) -> int:
        return hash(self._raw)

    def __repr__(self) -> str:
        return f"PublicKey({self._raw[:8].hex()}…)"


def _compact_to_der(sig64: bytes) -> bytes:
    from coincurve.ecdsa import cdata_to_der, deserialize_compact

    return cdata_to_der(deserialize_compact(bytes(sig64)))


class PrivateKey:
    """A secp256k1 private key."""

    __slots__ = ("_key", "public_key")

    def __init__(self, secret: bytes) -> None:
        secret = bytes(secret)
        if len(secret) != 32:
            raise InvalidKey(f"private key must be 32 bytes, got {len(secret)}")
        try:
            self._key = coincurve.PrivateKey(secret)
        except ValueError as e:
            raise InvalidKey(f"invalid private key: {e}") from None
        self.public_key = PublicKey(self._key.public_key)

    @classmethod
    def generate(cls) -> PrivateKey:
        """A fresh random key (from the OS's CSPRNG)."""
        return cls(coincurve.PrivateKey().secret)

    def to_bytes(self) -> bytes:
        """The 32-byte secret."""
        return self._key.secret

    def sign(self, msg_hash: bytes) -> bytes:
        """Sign a 32-byte hash: 65 bytes r || s || v (v in {0, 1})."""
        if len(msg_hash) != 32:
            raise ValueError("can only sign a 32-byte hash")
        return self._key.sign_recoverable(bytes(msg_hash), hasher=None)

    def ecdh(self, public: PublicKey) -> bytes:
        """Shared secret: the raw 32-byte x coordinate of ``secret * public``."""
        point = public._key.multiply(self._key.secret)
        return point.format(compressed=True)[1:]

    def __repr__(self) -> str:
        return f"PrivateKey(pub={self.public_key.to_bytes()[:8].hex()}…)"


def recover(signature: bytes, msg_hash: bytes) -> PublicKey:
    """Recover the signer of a 65-byte r||s||v signature over a 32-byte hash."""
    if len(signature) != 65:
        raise InvalidKey(f"recoverable signature must be 65 bytes, got {len(signature)}")
    if signature[64] > 3:
        raise InvalidKey(f"bad recovery id {signature[64]}")
    try:
        return PublicKey(coincurve.PublicKey.from_signature_and_message(bytes(signature), bytes(msg_hash), hasher=None))
    except ValueError as e:
        raise InvalidKey(f"cannot recover public key: {e}") from None
