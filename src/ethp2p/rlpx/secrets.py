"""Connection secrets derived from a finished RLPx handshake (devp2p rlpx.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from ..crypto.keccak import keccak, keccak_256
from ..crypto.keys import PrivateKey, PublicKey


class MacState(Protocol):
    """A running keccak-256 state (``sha3.keccak_256`` fits; tests may inject fakes)."""

    def update(self, data: bytes | memoryview, /) -> Any: ...

    def digest(self) -> bytes: ...


@dataclass
class Secrets:
    """Everything the frame codec needs, plus who we are talking to."""

    remote_pubkey: PublicKey
    aes_secret: bytes
    mac_secret: bytes
    egress_mac: MacState
    ingress_mac: MacState


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


def derive_secrets(
    *,
    initiator: bool,
    ephemeral_key: PrivateKey,
    remote_ephemeral: PublicKey,
    initiator_nonce: bytes,
    recipient_nonce: bytes,
    auth: bytes,
    ack: bytes,
    remote_pubkey: PublicKey,
) -> Secrets:
    """Derive AES/MAC secrets and the initial MAC states.

    ``auth`` and ``ack`` are the handshake messages exactly as sent on the wire
    (with the EIP-8 size prefix where there was one).
    """
    ecdhe = ephemeral_key.ecdh(remote_ephemeral)
    shared = keccak(ecdhe + keccak(recipient_nonce + initiator_nonce))
    aes_secret = keccak(ecdhe + shared)
    mac_secret = keccak(ecdhe + aes_secret)
    # The MAC we send with starts from the peer's nonce and the message we sent.
    mac_for_initiator_out = keccak_256(_xor(mac_secret, recipient_nonce) + auth)
    mac_for_recipient_out = keccak_256(_xor(mac_secret, initiator_nonce) + ack)
    if initiator:
        egress, ingress = mac_for_initiator_out, mac_for_recipient_out
    else:
        egress, ingress = mac_for_recipient_out, mac_for_initiator_out
    return Secrets(remote_pubkey, aes_secret, mac_secret, egress, ingress)
