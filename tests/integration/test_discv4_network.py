"""A loopback network of ethp2p discv4 nodes that each know one boot node."""

from __future__ import annotations

import asyncio
import os

from ethp2p.crypto.keccak import keccak
from ethp2p.crypto.keys import PrivateKey
from ethp2p.discovery.service import DiscoveryService

N = 16


async def _network(n: int) -> list[DiscoveryService]:
    nodes = [DiscoveryService(PrivateKey.generate(), "127.0.0.1", 0, refresh_interval=3600) for _ in range(n)]
    await nodes[0].start()
    for i, node in enumerate(nodes[1:], 1):
        node.bootnodes = [nodes[(i - 1) // 2].enode]  # a tree: each knows only one other node
        await node.start()
    return nodes


async def test_sixteen_nodes_find_each_other_and_evict_the_dead() -> None:
    found: dict[int, set[bytes]] = {i: set() for i in range(N)}
    nodes = await _network(N)
    try:
        for i, n in enumerate(nodes):
            n.on_node = lambda e, i=i: found[i].add(e.pubkey)
        # Let bootstraps finish, then a few rounds of random walks.
        await asyncio.sleep(1.0)
        for _ in range(3):
            await asyncio.gather(*(n.lookup(os.urandom(64)) for n in nodes))
        sizes = [len(n.table) for n in nodes]
        assert min(sizes) >= (N - 1) * 3 // 4, sizes  # most of the others
        # A lookup for any node's key finds that node.
        for target in nodes[:-1:4]:
            key = target.key.public_key.to_bytes()
            res = await nodes[-1].lookup(key)
            assert res and res[0].node_id == keccak(key)
        # Discovered nodes were fed to on_node.
        assert all(len(f) >= 3 for f in found.values())
        # A node that stops answering is evicted from the others' tables.
        dead = nodes.pop(3)
        dead_id = keccak(dead.key.public_key.to_bytes())
        await dead.close()
        holders = [n for n in nodes if dead_id in n.table]
        assert holders
        for _ in range(20):  # each round pings every bucket's least recently seen node
            await asyncio.gather(*(n.check_liveness() for n in holders))
            if all(dead_id not in n.table for n in holders):
                break
        assert all(dead_id not in n.table for n in holders)
    finally:
        await asyncio.gather(*(n.close() for n in nodes))
