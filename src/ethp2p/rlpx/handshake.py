"""The RLPx handshake (auth/ack) for both roles, as sans-IO state machines.

Sends EIP-8 messages (RLP bodies with 100-300 bytes of random padding) and
accepts both EIP-8 and the legacy fixed-size (pre-EIP-8) forms, ignoring the
version number and any extra list elements, as EIP-8 asks.
"""

from __future__ import annotations

import os
import secrets as _random
from dataclasses import dataclass

from .. import rlp
from ..crypto import ecies
from ..crypto.keccak import keccak
from ..crypto.keys import InvalidKey, PrivateKey, PublicKey, recover
from .errors import HandshakeError
from .secrets import Secrets, _xor, derive_secrets

#: Version number we put in auth/ack bodies.
HANDSHAKE_VERSION = 4
#: Legacy (pre-EIP-8) ciphertext sizes.
LEGACY_AUTH_SIZE = 307
LEGACY_ACK_SIZE = 210
#: Smallest possible EIP-8 message body (ECIES overhead plus a minimal RLP list).
_MIN_EIP8_SIZE = ecies.OVERHEAD + 1
#: Largest EIP-8 auth or ack we accept (the size prefix, checked before the body is kept). Ours are
#: under 700 bytes (at most 300 of them padding); geth accepts the same 2 KiB.
MAX_EIP8_SIZE = 2048


@dataclass(frozen=True, slots=True)
class AuthBody:
    """A decoded auth message."""

    signature: bytes
    initiator_pubkey: PublicKey
    nonce: bytes
    version: int
    eip8: bool
    extra: tuple[object, ...] = ()


@dataclass(frozen=True, slots=True)
class AckBody:
    """A decoded ack message."""

    ephemeral_pubkey: PublicKey
    nonce: bytes
    version: int
    eip8: bool
    extra: tuple[object, ...] = ()


def _pad() -> bytes:
    return os.urandom(100 + _random.randbelow(201))


def _encrypt_eip8(remote: PublicKey, body: bytes) -> bytes:
    size = len(body) + ecies.OVERHEAD
    prefix = size.to_bytes(2, "big")
    return prefix + ecies.encrypt(remote, body, prefix)


def _pubkey(data: object, what: str) -> PublicKey:
    if not isinstance(data, bytes) or len(data) != 64:
        raise HandshakeError(f"{what} must be 64 bytes")
    try:
        return PublicKey.from_bytes(data)
    except InvalidKey as e:
        raise HandshakeError(f"{what}: {e}") from None


def _fixed(data: object, size: int, what: str) -> bytes:
    if not isinstance(data, bytes) or len(data) != size:
        raise HandshakeError(f"{what} must be {size} bytes")
    return data


def _version(data: object) -> int:
    if not isinstance(data, bytes) or len(data) > 8:
        raise HandshakeError("handshake version must be a small integer")
    # EIP-8: the number is informational; don't be strict about leading zeros.
    return int.from_bytes(data, "big")


def _decode_list(plain: bytes, what: str) -> list[rlp.Item]:
    try:
        items = rlp.decode(plain, allow_trailing=True, max_depth=8)
    except rlp.RLPError as e:
        raise HandshakeError(f"{what} body is not RLP: {e}") from None
    if not isinstance(items, list):
        raise HandshakeError(f"{what} body must be an RLP list")
    return items


def encode_auth_body(signature: bytes, pubkey: PublicKey, nonce: bytes, version: int = HANDSHAKE_VERSION) -> bytes:
    """RLP auth body (without padding)."""
    return rlp.encode([signature, pubkey.to_bytes(), nonce, version])


def decode_auth_plain(plain: bytes, *, eip8: bool) -> AuthBody:
    """Parse a decrypted auth message (EIP-8 RLP list or legacy fixed layout)."""
    if not eip8:
        if len(plain) != 194:
            raise HandshakeError(f"legacy auth must be 194 bytes, got {len(plain)}")
        return AuthBody(plain[:65], _pubkey(plain[97:161], "initiator key"), plain[161:193], 4, False)
    items = _decode_list(plain, "auth")
    if len(items) < 4:
        raise HandshakeError(f"auth body has {len(items)} elements, need at least 4")
    return AuthBody(
        _fixed(items[0], 65, "auth signature"),
        _pubkey(items[1], "initiator key"),
        _fixed(items[2], 32, "auth nonce"),
        _version(items[3]),
        True,
        tuple(items[4:]),
    )


def decode_ack_plain(plain: bytes, *, eip8: bool) -> AckBody:
    """Parse a decrypted ack message (EIP-8 RLP list or legacy fixed layout)."""
    if not eip8:
        if len(plain) != 97:
            raise HandshakeError(f"legacy ack must be 97 bytes, got {len(plain)}")
        return AckBody(_pubkey(plain[:64], "ack ephemeral key"), plain[64:96], 4, False)
    items = _decode_list(plain, "ack")
    if len(items) < 3:
        raise HandshakeError(f"ack body has {len(items)} elements, need at least 3")
    return AckBody(
        _pubkey(items[0], "ack ephemeral key"),
        _fixed(items[1], 32, "ack nonce"),
        _version(items[2]),
        True,
        tuple(items[3:]),
    )


class _Reader:
    """Collects one handshake message, EIP-8 (size-prefixed) or legacy (fixed size)."""

    def __init__(self, key: PrivateKey, legacy_size: int, what: str) -> None:
        self.key = key
        self.legacy_size = legacy_size
        self.what = what
        self.buf = bytearray()

    def feed(self, data: bytes) -> tuple[bytes, bytes, bool, bytes] | None:
        """Return ``(wire_message, plaintext, eip8, remainder)`` once complete."""
        self.buf += data
        buf = self.buf
        if len(buf) < 2:
            return None
        # A legacy message is a bare ECIES ciphertext and so starts with 0x04.
        if buf[0] == 0x04 and len(buf) >= self.legacy_size:
            wire = bytes(buf[: self.legacy_size])
            try:
                plain = ecies.decrypt(self.key, wire)
            except ecies.DecryptionError:
                pass
            else:
                return wire, plain, False, bytes(buf[self.legacy_size :])
        size = int.from_bytes(buf[:2], "big")
        if size < _MIN_EIP8_SIZE:
            raise HandshakeError(f"{self.what} size prefix {size} is too small")
        if size > MAX_EIP8_SIZE:
            raise HandshakeError(f"{self.what} size prefix {size} exceeds {MAX_EIP8_SIZE}")
        if len(buf) < 2 + size:
            return None
        wire = bytes(buf[: 2 + size])
        try:
            plain = ecies.decrypt(self.key, wire[2:], wire[:2])
        except ecies.DecryptionError as e:
            raise HandshakeError(f"cannot decrypt {self.what}: {e}") from None
        return wire, plain, True, bytes(buf[2 + size :])


class Initiator:
    """The dialing side: sends auth, waits for ack."""

    def __init__(
        self,
        static_key: PrivateKey,
        remote_pubkey: PublicKey,
        *,
        ephemeral_key: PrivateKey | None = None,
        nonce: bytes | None = None,
    ) -> None:
        self.static_key = static_key
        self.remote_pubkey = remote_pubkey
        self.ephemeral_key = ephemeral_key or PrivateKey.generate()
        self.nonce = nonce or os.urandom(32)
        self.remainder = b""
        self._auth: bytes | None = None
        self._reader = _Reader(static_key, LEGACY_ACK_SIZE, "ack")
        self.done = False

    def auth_message(self) -> bytes:
        """The EIP-8 auth message to send first (built once)."""
        if self._auth is None:
            token = self.static_key.ecdh(self.remote_pubkey)
            signature = self.ephemeral_key.sign(_xor(token, self.nonce))
            body = encode_auth_body(signature, self.static_key.public_key, self.nonce)
            self._auth = _encrypt_eip8(self.remote_pubkey, body + _pad())
        return self._auth

    def feed(self, data: bytes) -> Secrets | None:
        """Feed bytes from the recipient; return the secrets once the ack is complete."""
        if self.done:
            raise HandshakeError("handshake already complete")
        auth = self.auth_message()
        got = self._reader.feed(data)
        if got is None:
            return None
        wire, plain, eip8, self.remainder = got
        ack = decode_ack_plain(plain, eip8=eip8)
        self.done = True
        return derive_secrets(
            initiator=True,
            ephemeral_key=self.ephemeral_key,
            remote_ephemeral=ack.ephemeral_pubkey,
            initiator_nonce=self.nonce,
            recipient_nonce=ack.nonce,
            auth=auth,
            ack=wire,
            remote_pubkey=self.remote_pubkey,
        )


class Recipient:
    """The listening side: waits for auth, answers with ack."""

    def __init__(
        self,
        static_key: PrivateKey,
        *,
        ephemeral_key: PrivateKey | None = None,
        nonce: bytes | None = None,
    ) -> None:
        self.static_key = static_key
        self.ephemeral_key = ephemeral_key or PrivateKey.generate()
        self.nonce = nonce or os.urandom(32)
        self.remainder = b""
        self.auth: AuthBody | None = None
        self._reader = _Reader(static_key, LEGACY_AUTH_SIZE, "auth")
        self.done = False

    def read_auth(self, data: bytes) -> tuple[bytes, AuthBody, PublicKey] | None:
        """Collect and check the auth message; return (wire, body, remote ephemeral key)."""
        got = self._reader.feed(data)
        if got is None:
            return None
        wire, plain, eip8, self.remainder = got
        auth = decode_auth_plain(plain, eip8=eip8)
        token = self.static_key.ecdh(auth.initiator_pubkey)
        try:
            remote_ephemeral = recover(auth.signature, _xor(token, auth.nonce))
        except InvalidKey as e:
            raise HandshakeError(f"bad auth signature: {e}") from None
        if not eip8 and plain[65:97] != keccak(remote_ephemeral.to_bytes()):
            raise HandshakeError("legacy auth: ephemeral key hash does not match the signature")
        self.auth = auth
        return wire, auth, remote_ephemeral

    def ack_message(self, eip8: bool) -> bytes:
        """Our ack, in the same format the initiator used."""
        remote = self.auth.initiator_pubkey if self.auth else None
        if remote is None:
            raise HandshakeError("no auth received yet")
        if eip8:
            body = rlp.encode([self.ephemeral_key.public_key.to_bytes(), self.nonce, HANDSHAKE_VERSION])
            return _encrypt_eip8(remote, body + _pad())
        plain = self.ephemeral_key.public_key.to_bytes() + self.nonce + b"\x00"
        return ecies.encrypt(remote, plain)

    def feed(self, data: bytes) -> tuple[bytes, Secrets] | None:
        """Feed bytes from the initiator; once auth is complete return (ack to send, secrets)."""
        if self.done:
            raise HandshakeError("handshake already complete")
        got = self.read_auth(data)
        if got is None:
            return None
        wire, auth, remote_ephemeral = got
        ack = self.ack_message(auth.eip8)
        self.done = True
        secrets = derive_secrets(
            initiator=False,
            ephemeral_key=self.ephemeral_key,
            remote_ephemeral=remote_ephemeral,
            initiator_nonce=auth.nonce,
            recipient_nonce=self.nonce,
            auth=wire,
            ack=ack,
            remote_pubkey=auth.initiator_pubkey,
        )
        return ack, secrets
