"""ECIES as RLPx uses it (devp2p rlpx.md, EIP-8).

Ciphertext layout: ``0x04 || R (64) || iv (16) || AES-128-CTR(c) || HMAC-SHA256 tag (32)``.
Key material is the NIST SP 800-56 concatenation KDF (SHA-256) of the ECDH x
coordinate: the first 16 bytes are the AES key, ``sha256`` of the last 16 the MAC key.
The tag covers ``iv || c || shared_mac_data`` (EIP-8 passes the 2-byte size prefix).
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .keys import InvalidKey, PrivateKey, PublicKey

#: Bytes ECIES adds to a plaintext: public key, IV and tag.
OVERHEAD = 65 + 16 + 32


class DecryptionError(ValueError):
    """A ciphertext is malformed or fails authentication."""


def concat_kdf(secret: bytes, length: int, shared_info: bytes = b"") -> bytes:
    """NIST SP 800-56 concatenation KDF with SHA-256 and a 32-bit big-endian counter from 1."""
    out = bytearray()
    counter = 1
    while len(out) < length:
        out += hashlib.sha256(counter.to_bytes(4, "big") + secret + shared_info).digest()
        counter += 1
    return bytes(out[:length])


def _aes128_ctr(key: bytes, iv: bytes, data: bytes) -> bytes:
    enc = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    return enc.update(data) + enc.finalize()


def _keys(shared_x: bytes) -> tuple[bytes, bytes]:
    material = concat_kdf(shared_x, 32)
    return material[:16], hashlib.sha256(material[16:]).digest()


def encrypt(
    remote: PublicKey,
    plaintext: bytes,
    shared_mac_data: bytes = b"",
    *,
    ephemeral: PrivateKey | None = None,
    iv: bytes | None = None,
) -> bytes:
    """Encrypt ``plaintext`` to ``remote`` (``ephemeral``/``iv`` only for reproducible tests)."""
    eph = ephemeral or PrivateKey.generate()
    iv = iv if iv is not None else os.urandom(16)
    enc_key, mac_key = _keys(eph.ecdh(remote))
    body = _aes128_ctr(enc_key, iv, plaintext)
    tag = hmac.new(mac_key, iv + body + shared_mac_data, hashlib.sha256).digest()
    return b"\x04" + eph.public_key.to_bytes() + iv + body + tag


def decrypt(key: PrivateKey, ciphertext: bytes, shared_mac_data: bytes = b"") -> bytes:
    """Authenticate and decrypt a message sent to ``key``."""
    ciphertext = bytes(ciphertext)
    if len(ciphertext) < OVERHEAD:
        raise DecryptionError(f"ECIES message too short ({len(ciphertext)} bytes)")
    if ciphertext[0] != 0x04:
        raise DecryptionError(f"ECIES message must start with 0x04, got 0x{ciphertext[0]:02x}")
    try:
        ephemeral = PublicKey.from_bytes(ciphertext[1:65])
    except InvalidKey as e:
        raise DecryptionError(f"bad ephemeral key: {e}") from None
    iv = ciphertext[65:81]
    body = ciphertext[81:-32]
    tag = ciphertext[-32:]
    enc_key, mac_key = _keys(key.ecdh(ephemeral))
    expected = hmac.new(mac_key, iv + body + shared_mac_data, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, tag):
        raise DecryptionError("ECIES tag mismatch (wrong key or corrupted message)")
    return _aes128_ctr(enc_key, iv, body)
