"""Who may start an inbound handshake, decided per remote address without IO (``now`` passed in).

:class:`InboundGate` applies, to each accepted TCP connection, in this order:

1. all pending handshakes at once (``max_pending``), then a table of at most ``max_addresses``;
2. a throttle per address: a bucket of ``connect_burst`` connects refilled at ``connect_rate`` a
   second (loopback is not exempt: tests set the values they need);
3. pending handshakes from one address (``max_pending_per_address``).

A successful handshake becomes a session only through :meth:`PendingSlot.promote`, which enforces
``max_sessions_per_address``. Every slot is an object released exactly once (``release`` is
idempotent), so the counts hold by construction whatever path a connection takes. IPv6 addresses
count by their /64 (one host holds a whole /64).
"""

from __future__ import annotations

import enum
import ipaddress
from collections import OrderedDict
from dataclasses import dataclass


class Refusal(enum.StrEnum):
    """Why a connection was dropped before its handshake."""

    PENDING_FULL = "handshake slots full"
    THROTTLED = "too many connects from the address"
    PENDING_PER_ADDRESS = "too many handshakes from the address"
    TABLE_FULL = "too many addresses"


@dataclass(frozen=True)
class InboundLimits:
    """The gate's bounds (defaults: see :meth:`for_inbound`)."""

    max_pending: int
    max_pending_per_address: int = 8
    max_sessions_per_address: int = 16
    connect_burst: int = 32
    connect_rate: float = 2.0
    max_addresses: int = 4096

    def __post_init__(self) -> None:
        for name in ("max_pending", "max_pending_per_address", "max_sessions_per_address", "connect_burst"):
            if getattr(self, name) < 1:
                raise ValueError(f"InboundLimits.{name} must be at least 1")
        if not self.connect_rate > 0:
            raise ValueError("InboundLimits.connect_rate must be positive")
        if self.max_addresses < self.max_pending:
            raise ValueError("InboundLimits.max_addresses must be at least max_pending")

    @classmethod
    def for_inbound(cls, max_inbound: int, **overrides: float | int) -> InboundLimits:
        """Twice ``max_inbound`` pending handshakes (at least 2), per-address bounds capped by it."""
        pending = 2 * max(max_inbound, 1)
        fields: dict[str, float | int] = {
            "max_pending": pending,
            "max_pending_per_address": min(8, pending),
            "max_addresses": max(4096, pending),
        }
        fields.update(overrides)
        return cls(**fields)  # type: ignore[arg-type]


def address_key(host: str) -> str:
    """The unit an address is counted by: the IPv4 address, or an IPv6 address's /64."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class _Address:
    __slots__ = ("tokens", "stamp", "pending", "sessions")

    def __init__(self, tokens: float, now: float) -> None:
        self.tokens = tokens
        self.stamp = now
        self.pending = 0
        self.sessions = 0


class InboundGate:
    """Counts of pending handshakes and sessions per address, and the connect throttle."""

    def __init__(self, limits: InboundLimits) -> None:
        self.limits = limits
        self.pending = 0
        self.sessions = 0
        self._addresses: OrderedDict[str, _Address] = OrderedDict()

    @property
    def tracked(self) -> int:
        """Addresses in the table (bounded by ``max_addresses``)."""
        return len(self._addresses)

    def admit(self, host: str, now: float) -> PendingSlot | Refusal:
        """A pending-handshake slot for a connection from ``host``, or why it is refused."""
        lim = self.limits
        if self.pending >= lim.max_pending:
            return Refusal.PENDING_FULL
        key = address_key(host)
        entry = self._addresses.get(key)
        if entry is None:
            if len(self._addresses) >= lim.max_addresses and not self._forget_one(now):
                return Refusal.TABLE_FULL
            entry = self._addresses[key] = _Address(float(lim.connect_burst), now)
        else:
            self._addresses.move_to_end(key)
            entry.tokens = min(float(lim.connect_burst), entry.tokens + (now - entry.stamp) * lim.connect_rate)
            entry.stamp = now
        if entry.tokens < 1.0:
            return Refusal.THROTTLED
        if entry.pending >= lim.max_pending_per_address:
            return Refusal.PENDING_PER_ADDRESS
        entry.tokens -= 1.0
        entry.pending += 1
        self.pending += 1
        return PendingSlot(self, entry)

    def _forget_one(self, now: float) -> bool:
        """Drop the least recently seen address holding no slot (its throttle state is lost)."""
        for key, entry in self._addresses.items():
            if entry.pending == 0 and entry.sessions == 0:
                del self._addresses[key]
                return True
        return False


class PendingSlot:
    """One pending inbound handshake; :meth:`release` gives it back (once, whatever happens)."""

    __slots__ = ("_gate", "_entry", "_held")

    def __init__(self, gate: InboundGate, entry: _Address) -> None:
        self._gate = gate
        self._entry = entry
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._entry.pending -= 1
            self._gate.pending -= 1

    def promote(self) -> SessionSlot | None:
        """Turn the handshake into a session slot (releasing this one), or None when the address has
        ``max_sessions_per_address`` sessions already (this slot is then still held)."""
        if not self._held:
            raise RuntimeError("slot already released")
        entry = self._entry
        if entry.sessions >= self._gate.limits.max_sessions_per_address:
            return None
        entry.sessions += 1
        self._gate.sessions += 1
        self.release()
        return SessionSlot(self._gate, entry)


class SessionSlot:
    """One inbound session from an address; :meth:`release` when it ends (idempotent)."""

    __slots__ = ("_gate", "_entry", "_held")

    def __init__(self, gate: InboundGate, entry: _Address) -> None:
        self._gate = gate
        self._entry = entry
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._entry.sessions -= 1
            self._gate.sessions -= 1


__all__ = ["InboundGate", "InboundLimits", "PendingSlot", "Refusal", "SessionSlot", "address_key"]
