"""Ethereum Node Records (EIP-778) with the "v4" identity scheme.

A record is ``rlp([signature, seq, k1, v1, k2, v2, ...])`` with keys sorted and
unique, at most 300 bytes. The v4 signature is the 64-byte ``r || s`` of
``keccak256(rlp([seq, k1, v1, ...]))`` by the key in the ``secp256k1`` entry
(compressed). The node id is keccak256 of the uncompressed public key.
"""

from __future__ import annotations

import base64
import ipaddress
from dataclasses import dataclass, field

from .. import rlp
from ..crypto.keccak import keccak
from ..crypto.keys import InvalidKey, PrivateKey, PublicKey
from ..enode import Enode
from ..eth.forkid import ForkId, decode_fork_id

MAX_RECORD_SIZE = 300


class ENRError(ValueError):
    """A record is malformed, unsigned, or signed by someone else."""


@dataclass(frozen=True)
class ENR:
    """A verified node record. ``pairs`` holds every key (raw values as decoded RLP items)."""

    seq: int
    pairs: dict[bytes, object]
    signature: bytes
    raw: bytes = field(repr=False)

    # ---- decoding ------------------------------------------------------------------------------

    @classmethod
    def from_rlp(cls, raw: bytes | memoryview) -> ENR:
        raw = bytes(raw)
        if len(raw) > MAX_RECORD_SIZE:
            raise ENRError(f"record is {len(raw)} bytes, over the {MAX_RECORD_SIZE}-byte limit")
        try:
            items = rlp.decode(raw, max_depth=8)
        except rlp.RLPError as e:
            raise ENRError(f"record is not RLP: {e}") from None
        if not isinstance(items, list) or len(items) < 2 or len(items) % 2:
            raise ENRError("record must be [signature, seq, k, v, ...]")
        sig, seq_raw, kv = items[0], items[1], items[2:]
        if not isinstance(sig, bytes) or not isinstance(seq_raw, bytes):
            raise ENRError("signature and seq must be byte strings")
        try:
            seq = rlp.decode_int(seq_raw, max_bytes=8)
        except rlp.RLPError as e:
            raise ENRError(f"bad seq: {e}") from None
        pairs: dict[bytes, object] = {}
        prev: bytes | None = None
        for i in range(0, len(kv), 2):
            k = kv[i]
            if not isinstance(k, bytes):
                raise ENRError("record keys must be byte strings")
            if prev is not None and k <= prev:
                raise ENRError("record keys must be sorted and unique")
            prev = k
            pairs[k] = kv[i + 1]
        if pairs.get(b"id") != b"v4":
            raise ENRError(f"unsupported identity scheme {pairs.get(b'id')!r}")
        pub_raw = pairs.get(b"secp256k1")
        if not isinstance(pub_raw, bytes) or len(pub_raw) != 33:
            raise ENRError("v4 record needs a 33-byte compressed secp256k1 key")
        try:
            pub = PublicKey.from_bytes(pub_raw)
        except InvalidKey as e:
            raise ENRError(f"bad secp256k1 key: {e}") from None
        content = rlp.encode([seq_raw, *kv])
        if len(sig) != 64 or not pub.verify(sig, keccak(content)):
            raise ENRError("invalid signature")
        return cls(seq, pairs, sig, raw)

    @classmethod
    def from_text(cls, text: str) -> ENR:
        """Parse the ``enr:<base64url>`` text form."""
        if not text.startswith("enr:"):
            raise ENRError("missing 'enr:' prefix")
        body = text[4:]
        if not body or any(c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" for c in body):
            raise ENRError("record text is not base64url")
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except ValueError as e:
            raise ENRError(f"bad base64: {e}") from None
        return cls.from_rlp(raw)

    # ---- encoding ------------------------------------------------------------------------------

    @classmethod
    def create(cls, key: PrivateKey, seq: int, pairs: dict[bytes, object]) -> ENR:
        """Sign a new record (``id``/``secp256k1`` are filled in from ``key``)."""
        all_pairs = dict(pairs)
        all_pairs[b"id"] = b"v4"
        all_pairs[b"secp256k1"] = key.public_key.to_compressed()
        kv: list[object] = []
        for k in sorted(all_pairs):
            kv += [k, all_pairs[k]]
        content = rlp.encode([seq, *kv])
        sig = key.sign(keccak(content))[:64]
        raw = rlp.encode([sig, seq, *kv])
        if len(raw) > MAX_RECORD_SIZE:
            raise ENRError(f"record would be {len(raw)} bytes, over {MAX_RECORD_SIZE}")
        return cls.from_rlp(raw)

    def text(self) -> str:
        return "enr:" + base64.urlsafe_b64encode(self.raw).decode().rstrip("=")

    # ---- fields --------------------------------------------------------------------------------

    @property
    def public_key(self) -> PublicKey:
        return PublicKey.from_bytes(self.pairs[b"secp256k1"])  # type: ignore[arg-type]

    @property
    def node_id(self) -> bytes:
        return keccak(self.public_key.to_bytes())

    def _int(self, key: bytes) -> int | None:
        v = self.pairs.get(key)
        if not isinstance(v, bytes) or len(v) > 2:
            return None
        return int.from_bytes(v, "big") or None

    @property
    def ip(self) -> str | None:
        v = self.pairs.get(b"ip")
        if isinstance(v, bytes) and len(v) == 4:
            return str(ipaddress.IPv4Address(v))
        v6 = self.pairs.get(b"ip6")
        if isinstance(v6, bytes) and len(v6) == 16:
            return str(ipaddress.IPv6Address(v6))
        return None

    @property
    def tcp(self) -> int | None:
        return self._int(b"tcp") if b"ip" in self.pairs else self._int(b"tcp6") or self._int(b"tcp")

    @property
    def udp(self) -> int | None:
        return self._int(b"udp") if b"ip" in self.pairs else self._int(b"udp6") or self._int(b"udp")

    @property
    def eth_fork_id(self) -> ForkId | None:
        """The ``eth`` entry's fork id (``[[hash, next], ...]``), if present and well-formed."""
        v = self.pairs.get(b"eth")
        if not isinstance(v, list) or not v:
            return None
        try:
            return decode_fork_id(v[0])
        except (ValueError, rlp.RLPError):
            return None

    def to_enode(self) -> Enode:
        pub = self.public_key.to_bytes()
        return Enode(pub, self.ip, self.tcp or 0, self.udp or self.tcp or 0)
