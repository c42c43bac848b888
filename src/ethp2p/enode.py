"""Node identities and ``enode://`` URLs.

A node is named by its 64-byte uncompressed secp256k1 public key (without the
0x04 prefix); its node id for Kademlia distance is keccak256 of that key.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import coincurve

from .crypto.keccak import keccak


class EnodeError(ValueError):
    """An enode URL or node key is malformed."""


#: One DNS label. Host names are checked label by label (linear time): a single pattern over the whole
#: name with optional dots backtracks exponentially on a long label followed by a bad character.
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def _is_hostname(host: str) -> bool:
    """Whether ``host`` is a DNS name: 1-253 characters of labels joined by dots (one final dot allowed)."""
    name = host[:-1] if host.endswith(".") else host
    if not 1 <= len(name) <= 253:
        return False
    return all(_LABEL.fullmatch(label) for label in name.split("."))


def validate_pubkey(pubkey: bytes) -> bytes:
    """Check that ``pubkey`` is 64 bytes and a point on secp256k1; return it."""
    if len(pubkey) != 64:
        raise EnodeError(f"invalid public key (wrong length {len(pubkey)}, want 64 bytes)")
    try:
        coincurve.PublicKey(b"\x04" + pubkey)
    except ValueError:
        raise EnodeError("invalid public key (not a point on secp256k1)") from None
    return pubkey


@dataclass(frozen=True, slots=True)
class Enode:
    """A node's public key and (optional) address."""

    pubkey: bytes
    host: str | None = None
    tcp_port: int = 0
    udp_port: int = 0

    @property
    def node_id(self) -> bytes:
        """keccak256(pubkey): the 32-byte id discovery uses for distances."""
        return keccak(self.pubkey)

    @property
    def ip(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        """The host as an IP address, or None if it is a hostname or absent."""
        if self.host is None:
            return None
        try:
            return ipaddress.ip_address(self.host)
        except ValueError:
            return None

    def url(self) -> str:
        """The ``enode://`` URL form."""
        base = f"enode://{self.pubkey.hex()}"
        if self.host is None:
            return base
        host = f"[{self.host}]" if ":" in self.host else self.host
        s = f"{base}@{host}:{self.tcp_port}"
        if self.udp_port and self.udp_port != self.tcp_port:
            s += f"?discport={self.udp_port}"
        return s

    def __str__(self) -> str:
        return self.url()

    @classmethod
    def parse(cls, url: str) -> Enode:
        """Parse an ``enode://`` URL, validating the key, host and ports."""
        if not url.startswith("enode://"):
            raise EnodeError("missing 'enode://' prefix")
        rest = url[len("enode://") :]
        if "@" not in rest:
            return cls(validate_pubkey(_hex_key(rest)))
        try:
            parts = urlsplit(url)
            host = parts.hostname
        except ValueError as e:  # e.g. "Invalid IPv6 URL" for an unclosed [
            raise EnodeError(str(e)) from None
        key = _hex_key(parts.username or "")
        if not host:
            raise EnodeError("missing host")
        if not (":" in host or _is_hostname(host)):
            try:
                ipaddress.ip_address(host)
            except ValueError:
                raise EnodeError(f"invalid host {host!r}") from None
        try:
            port = parts.port
        except ValueError:
            raise EnodeError("invalid port") from None
        if port is None:
            raise EnodeError("invalid port (missing)")
        udp = port
        query = parse_qs(parts.query)
        if "discport" in query:
            try:
                udp = int(query["discport"][0])
                if not 0 < udp < 65536:
                    raise ValueError
            except ValueError:
                raise EnodeError("invalid discport in query") from None
        return cls(validate_pubkey(key), host, port, udp)


def _hex_key(text: str) -> bytes:
    if len(text) != 128:
        raise EnodeError("invalid public key (wrong length, want 128 hex chars)")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise EnodeError("invalid public key (not hex)") from None
