"""The persisted peer cache: peers seen in earlier runs, to seed the next start.

:class:`PeerCache` is the :class:`ethp2p.peers.book.PeerBook` the CLI gives a
:class:`~ethp2p.peers.network.PeerNetwork` (it matches that protocol by shape; nothing here
imports the network side).

Lives in a ``peers`` table of an SQLite file (the block store's file by default).
While the network runs, sightings are buffered in memory and written in one transaction
by :meth:`PeerCache.flush` (on shutdown and Ctrl-C), merging last-seen times and
addresses with what is stored.
"""

from __future__ import annotations

import ipaddress
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .blocks import StoreError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS peers (
    peer_id          BLOB PRIMARY KEY,
    tcp_addr         TEXT,
    udp_addr         TEXT,
    last_seen_ms     INTEGER NOT NULL,
    aimd_batch_limit INTEGER
) WITHOUT ROWID;
"""


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class StoredPeer:
    """One cached peer: its 64-byte id, ``host:port`` addresses, when last seen, learned batch size."""

    peer_id: bytes
    tcp_addr: str | None
    udp_addr: str | None
    last_seen_ms: int
    aimd_batch_limit: int | None = None

    def tcp_endpoint(self) -> tuple[str, int] | None:
        return parse_addr(self.tcp_addr) if self.tcp_addr else None


@dataclass
class LoadedPeers:
    """The result of loading the cache at start."""

    peers: list[StoredPeer] = field(default_factory=list)
    total: int = 0
    expired: int = 0
    corrupted: int = 0
    capped: int = 0


def parse_addr(text: str) -> tuple[str, int]:
    """``"1.2.3.4:30303"`` or ``"[::1]:30303"`` -> (host, port); ValueError if malformed."""
    host, sep, port_s = text.rpartition(":")
    if not sep:
        raise ValueError(f"address {text!r} has no port")
    host = host.strip("[]")
    ipaddress.ip_address(host)
    port = int(port_s)
    if not 0 < port < 65536:
        raise ValueError(f"port {port} out of range")
    return host, port


def format_addr(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class PeerCache:
    """Peer sightings buffered in memory and flushed to SQLite."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as e:  # not a database, a damaged one, a directory
            raise StoreError(f"cannot open the peer cache in {self.path}: {e}") from None
        self._pending: dict[bytes, StoredPeer] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self.flush()
        self._db.close()

    def load_peers(self, *, expire_before_ms: int, max_peers: int) -> LoadedPeers:
        """Valid peers seen at or after ``expire_before_ms``, most recent first, at most ``max_peers``.

        Expired rows are deleted; corrupted rows are counted and skipped (and deleted).
        """
        from ..crypto.keys import InvalidKey, PublicKey

        out = LoadedPeers()
        bad: list[bytes] = []
        good: list[StoredPeer] = []
        for row in self._db.execute("SELECT peer_id, tcp_addr, udp_addr, last_seen_ms, aimd_batch_limit FROM peers"):
            out.total += 1
            try:
                pid, tcp, udp, seen, aimd = row
                pid = bytes(pid)
                PublicKey.from_bytes(pid)
                if len(pid) != 64 or not isinstance(seen, int):
                    raise ValueError("bad row")
                for a in (tcp, udp):
                    if a is not None:
                        parse_addr(a)
                if aimd is not None and (not isinstance(aimd, int) or aimd <= 0):
                    raise ValueError("bad batch limit")
            except (ValueError, TypeError, InvalidKey):
                out.corrupted += 1
                bad.append(row[0] if isinstance(row[0], bytes) else bytes(str(row[0]), "utf-8"))
                continue
            if seen < expire_before_ms:
                out.expired += 1
                bad.append(pid)
                continue
            good.append(StoredPeer(pid, tcp, udp, seen, aimd))
        good.sort(key=lambda p: p.last_seen_ms, reverse=True)
        out.capped = max(0, len(good) - max_peers)
        out.peers = good[:max_peers]
        if bad:
            with self._lock:
                self._db.executemany("DELETE FROM peers WHERE peer_id=?", [(b,) for b in bad])
        return out

    def remember_peer(
        self, peer_id: bytes, host: str, port: int, *, seen_ms: int, aimd_batch_limit: int | None = None
    ) -> None:
        """Buffer a sighting of ``peer_id`` at ``host:port`` (the :class:`~ethp2p.peers.book.PeerBook` method)."""
        self.upsert_peer(StoredPeer(peer_id, format_addr(host, port), None, seen_ms, aimd_batch_limit))

    def upsert_peer(self, peer: StoredPeer) -> None:
        """Buffer a sighting (merged with earlier ones; written by :meth:`flush`)."""
        with self._lock:
            old = self._pending.get(peer.peer_id)
            if old is not None:
                peer = StoredPeer(
                    peer.peer_id,
                    peer.tcp_addr or old.tcp_addr,
                    peer.udp_addr or old.udp_addr,
                    max(peer.last_seen_ms, old.last_seen_ms),
                    peer.aimd_batch_limit if peer.aimd_batch_limit is not None else old.aimd_batch_limit,
                )
            self._pending[peer.peer_id] = peer

    def flush(self) -> int:
        """Write buffered sightings in one transaction; returns how many."""
        with self._lock:
            rows = list(self._pending.values())
            self._pending.clear()
            if not rows:
                return 0
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                cur.executemany(
                    "INSERT INTO peers(peer_id, tcp_addr, udp_addr, last_seen_ms, aimd_batch_limit) VALUES (?,?,?,?,?) "
                    "ON CONFLICT(peer_id) DO UPDATE SET "
                    "tcp_addr=COALESCE(excluded.tcp_addr, peers.tcp_addr), "
                    "udp_addr=COALESCE(excluded.udp_addr, peers.udp_addr), "
                    "last_seen_ms=MAX(excluded.last_seen_ms, peers.last_seen_ms), "
                    "aimd_batch_limit=COALESCE(excluded.aimd_batch_limit, peers.aimd_batch_limit)",
                    [(p.peer_id, p.tcp_addr, p.udp_addr, p.last_seen_ms, p.aimd_batch_limit) for p in rows],
                )
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        return len(rows)

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM peers").fetchone()[0])
