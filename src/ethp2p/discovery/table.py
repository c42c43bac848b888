"""The Kademlia table: 256 buckets of 16 nodes by log distance, with replacement lists."""

from __future__ import annotations

from dataclasses import dataclass

from ..crypto.keccak import keccak

BUCKET_SIZE = 16
N_BUCKETS = 256
MAX_REPLACEMENTS = 10


@dataclass
class Node:
    """A verified node (it answered our ping): key, id, addresses, liveness."""

    pubkey: bytes
    ip: str
    udp: int
    tcp: int
    node_id: bytes = b""
    last_seen: float = 0.0
    fails: int = 0

    def __post_init__(self) -> None:
        if not self.node_id:
            self.node_id = keccak(self.pubkey)


def log_distance(a: bytes, b: bytes) -> int:
    """Bit length of ``a XOR b`` (0 for equal ids, 256 at most)."""
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_length()


class Table:
    """Buckets of nodes around ``local_id``; the most recently seen node is last in its bucket."""

    def __init__(self, local_id: bytes, bucket_size: int = BUCKET_SIZE) -> None:
        self.local_id = local_id
        self.bucket_size = bucket_size
        self.buckets: list[list[Node]] = [[] for _ in range(N_BUCKETS)]
        self.replacements: list[list[Node]] = [[] for _ in range(N_BUCKETS)]

    def _bucket(self, node_id: bytes) -> int:
        return max(log_distance(self.local_id, node_id), 1) - 1

    def __len__(self) -> int:
        return sum(len(b) for b in self.buckets)

    def __contains__(self, node_id: object) -> bool:
        return isinstance(node_id, bytes) and self.get(node_id) is not None

    def get(self, node_id: bytes) -> Node | None:
        for n in self.buckets[self._bucket(node_id)]:
            if n.node_id == node_id:
                return n
        return None

    def nodes(self) -> list[Node]:
        return [n for b in self.buckets for n in b]

    def add_seen(self, node: Node) -> Node | None:
        """Record a live node. If its bucket is full, it goes to the replacements and the
        bucket's least recently seen node is returned (ping it; evict it if it fails)."""
        if node.node_id == self.local_id:
            return None
        i = self._bucket(node.node_id)
        bucket = self.buckets[i]
        for j, n in enumerate(bucket):
            if n.node_id == node.node_id:
                n.ip, n.udp, n.tcp, n.last_seen, n.fails = node.ip, node.udp, node.tcp, node.last_seen, 0
                bucket.append(bucket.pop(j))
                return None
        if len(bucket) < self.bucket_size:
            bucket.append(node)
            self._drop_replacement(i, node.node_id)
            return None
        self._drop_replacement(i, node.node_id)
        reps = self.replacements[i]
        reps.append(node)
        if len(reps) > MAX_REPLACEMENTS:
            reps.pop(0)
        return bucket[0]

    def _drop_replacement(self, i: int, node_id: bytes) -> None:
        self.replacements[i] = [r for r in self.replacements[i] if r.node_id != node_id]

    def remove(self, node_id: bytes) -> bool:
        """Evict a node; the most recent replacement (if any) takes its place."""
        i = self._bucket(node_id)
        bucket = self.buckets[i]
        for j, n in enumerate(bucket):
            if n.node_id == node_id:
                del bucket[j]
                if self.replacements[i]:
                    bucket.append(self.replacements[i].pop())
                return True
        return False

    def closest(self, target_id: bytes, n: int = BUCKET_SIZE) -> list[Node]:
        """The ``n`` known nodes closest to ``target_id`` by XOR distance."""
        t = int.from_bytes(target_id, "big")
        return sorted(self.nodes(), key=lambda x: int.from_bytes(x.node_id, "big") ^ t)[:n]
