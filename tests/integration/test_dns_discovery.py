"""EIP-1459 DNS discovery against a real DNS server (dnsmasq) on 127.0.0.1."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ethp2p.discovery.dns import DNSDiscoveryError, TreeClient, TreeURL, dns_discovery, dnspython_resolver, subdomain_of
from tests.conftest import load_vector
from tests.support.dnsserver import DnsServer, available

TREE = load_vector("dnsdisc/eip1459_tree.json")
DOMAIN = "nodes.example.org"
URL = TREE["tree_url_with_test_domain_n"].replace("@n", "@" + DOMAIN)

pytestmark = pytest.mark.skipif(
    not available(), reason="dnsmasq is not installed (./dev.sh test installs dnsmasq-base)"
)


def _zone(domain: str, tamper: str | None = None) -> dict[str, str]:
    out = {}
    for z in TREE["zone"]:
        name = domain if z["name"] == "@" else f"{z['name']}.{domain}"
        text = z["txt"]
        if tamper == "record" and text.startswith("enr:") and z["name"] == TREE["expect"]["nodes"][0]["subdomain"]:
            text = text[:-2] + ("AA" if not text.endswith("AA") else "BB")
        if tamper == "sig" and z["name"] == "@":
            text = text.replace("seq=1", "seq=2")  # the signature no longer covers the content
        out[name] = text
    return out


@pytest.fixture()
def server(tmp_path: Path):
    records = {**_zone(DOMAIN), **_zone("tampered.example.org", "record"), **_zone("badsig.example.org", "sig")}
    s = DnsServer(tmp_path, records).start()
    yield s
    s.stop()


async def test_syncs_the_whole_tree_and_verifies_it(server: DnsServer) -> None:
    client = TreeClient(dnspython_resolver("127.0.0.1", server.port))
    url = TreeURL.parse(URL)
    root = await client.root(url)
    assert (root.enr_root, root.link_root, root.seq) == (TREE["expect"]["eroot"], TREE["expect"]["lroot"], 1)
    records = [r async for r in client.walk(url)]
    assert [r.node_id.hex() for r in records] == [n["node_id"] for n in TREE["expect"]["nodes"]]
    assert [str(u) for u in client.links_found] == TREE["expect"]["links"]
    assert client.errors and "morenodes.example.org" in client.errors[0]  # the linked tree isn't served here


async def test_tampered_record_is_rejected(server: DnsServer) -> None:
    client = TreeClient(dnspython_resolver("127.0.0.1", server.port))
    with pytest.raises(DNSDiscoveryError, match="does not match its hash"):
        _ = [r async for r in client.walk(TreeURL.parse(URL.replace(DOMAIN, "tampered.example.org")))]
    assert subdomain_of("x") != subdomain_of("y")


async def test_bad_signature_is_rejected(server: DnsServer) -> None:
    client = TreeClient(dnspython_resolver("127.0.0.1", server.port))
    with pytest.raises(DNSDiscoveryError, match="not signed"):
        await client.root(TreeURL.parse(URL.replace(DOMAIN, "badsig.example.org")))


async def test_discovery_feed_yields_records_once(server: DnsServer) -> None:
    errors: list[Exception] = []
    got = []

    async def run() -> None:
        async for r in dns_discovery(
            URL, dnspython_resolver("127.0.0.1", server.port), refresh_interval=0.2, on_error=errors.append
        ):
            got.append(r)

    task = asyncio.create_task(run())
    await asyncio.sleep(1.0)  # several refreshes: the same root, nothing new
    task.cancel()
    assert len(got) == 3 and not errors


async def test_session_dials_nodes_listed_in_a_dns_tree(tmp_path: Path) -> None:
    """A tree signed by us lists three local serving nodes (and one on another chain, by its ENR
    fork id); a peer network given only the tree URL and the local resolver dials the compatible three."""
    from ethp2p.chain.genesis import load_genesis
    from ethp2p.crypto.keys import PrivateKey
    from ethp2p.discovery.dns import make_tree
    from ethp2p.discovery.enr import ENR
    from ethp2p.peers.limits import p2p_limits
    from ethp2p.peers.network import connect
    from tests.support.servers import ETHTEST_GENESIS, ethtest_store, start_servers

    spec = load_genesis(ETHTEST_GENESIS)
    store = ethtest_store(tmp_path / "e.db")
    servers = start_servers(3, store, tmp_path, network_args=["--genesis", str(ETHTEST_GENESIS)])
    try:
        fid = spec.fork_id()
        records = []
        for s in servers:
            port = int(s.enode.rsplit(":", 1)[1])
            records.append(
                ENR.create(
                    s.key, 1, {b"ip": bytes([127, 0, 0, 1]), b"tcp": port, b"udp": port, b"eth": [[fid.hash, fid.next]]}
                )
            )
        other = PrivateKey.generate()
        records.append(
            ENR.create(
                other, 1, {b"ip": bytes([127, 0, 0, 1]), b"tcp": 9, b"udp": 9, b"eth": [[b"\xde\xad\xbe\xef", 0]]}
            )
        )
        signer = PrivateKey.generate()
        root, entries = make_tree(signer, records, max_children=2)
        zone = {"list.example.org": root, **{f"{h}.list.example.org": t for h, t in entries.items()}}
        dns_server = DnsServer(tmp_path, zone).start()
        try:
            from ethp2p.discovery.dns import TreeURL, dnspython_resolver

            url = str(TreeURL(signer.public_key, "list.example.org"))
            async with connect(
                spec,
                bootnodes=[],
                discovery=False,
                dns=[url],
                min_peers=3,
                timeout=20,
                dns_resolver=dnspython_resolver("127.0.0.1", dns_server.port),
                limits=p2p_limits(peer_start_warmup=0.2),
            ) as net:
                assert {p.peer_id for p in net.pool.snapshot()} == {bytes.fromhex(s.enode[8:136]) for s in servers}
                assert net.p2p_stats.discovered_count == 3  # the wrong-fork node was skipped before dialing
        finally:
            dns_server.stop()
    finally:
        for s in servers:
            s.stop()
