"""Probe one peer: handshake, Status, and the header of the head it claims."""

from __future__ import annotations

from dataclasses import dataclass, field

from .chain.header import Header
from .enode import Enode
from .eth import messages as m
from .eth.chainspec import ChainSpec
from .peers.eth_peer import EthPeer, PeerError
from .transport.stream import TransportError


@dataclass
class ProbeResult:
    """What one peer told us, and what we proved by fetching its head header."""

    enode: Enode
    client_id: str | None = None
    capabilities: list[str] = field(default_factory=list)
    eth_version: int | None = None
    status: object | None = None
    head_number: int | None = None
    head_hash: bytes | None = None
    error: str | None = None


async def probe(node: Enode, spec: ChainSpec, *, timeout: float = 10.0) -> ProbeResult:
    """Connect to ``node``, record its Hello and Status, fetch its head header, disconnect."""
    result = ProbeResult(node)
    try:
        peer = await EthPeer.connect(node, spec, handshake_timeout=timeout, request_timeout=timeout)
    except (PeerError, TransportError) as e:
        result.error = str(e)
        return result
    try:
        result.client_id = peer.client_id
        result.capabilities = [str(c) for c in peer.capabilities]
        result.eth_version = peer.eth_version
        result.status = peer.status
        status = peer.status
        assert isinstance(status, m.StatusV68 | m.StatusV69)  # a connected peer has passed the Status exchange
        best = status.head_hash
        headers = await peer.request_headers(best, 1)
        if headers:
            header = Header(headers[0])
            if header.hash == best:
                result.head_number, result.head_hash = header.number, header.hash
            else:
                result.error = "peer answered with a header that is not the one asked for"
        else:
            result.error = "peer did not serve the header of its own head"
    except PeerError as e:
        result.error = str(e)
    finally:
        await peer.disconnect()
    return result


def format_probe(r: ProbeResult) -> str:
    """Human-readable lines for a probe result."""
    lines = [f"peer:          {r.enode.url()}"]
    if r.client_id is not None:
        lines.append(f"client:        {r.client_id}")
        lines.append(f"capabilities:  {', '.join(r.capabilities)}")
        lines.append(f"negotiated:    eth/{r.eth_version}")
    s = r.status
    if isinstance(s, m.StatusV68):
        lines.append(f"network id:    {s.network_id}")
        lines.append(f"genesis:       0x{s.genesis_hash.hex()}")
        lines.append(f"fork id:       {s.fork_id.hash.hex()} next={s.fork_id.next}")
        lines.append(f"total diff.:   {s.total_difficulty}")
        lines.append(f"best hash:     0x{s.head_hash.hex()}")
    elif isinstance(s, m.StatusV69):
        lines.append(f"network id:    {s.network_id}")
        lines.append(f"genesis:       0x{s.genesis_hash.hex()}")
        lines.append(f"fork id:       {s.fork_id.hash.hex()} next={s.fork_id.next}")
        lines.append(f"block range:   {s.earliest_block}..{s.latest_block}")
        lines.append(f"latest hash:   0x{s.latest_hash.hex()}")
    if r.head_number is not None and r.head_hash is not None:
        lines.append(f"head header:   #{r.head_number} 0x{r.head_hash.hex()} (fetched and hash-checked)")
    if r.error:
        lines.append(f"error:         {r.error}")
    return "\n".join(lines)
