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


def test_fetch_asks_the_dns_server_it_is_given_and_counts_peers_by_source(
    tmp_path: Path, mainnet_store_path: Path
) -> None:
    """``ethp2p fetch --dns URL --dns-resolver 127.0.0.1:PORT`` (the simulation's dnsmasq, not the
    system's resolver) finds two servers in the tree and a third as a boot node; the summary counts
    them by source. A second run with the same store finds all three in its peer cache first."""
    import re
    import subprocess
    import sys

    from ethp2p.crypto.keys import PrivateKey
    from ethp2p.discovery.dns import TreeURL, make_tree
    from ethp2p.discovery.enr import ENR
    from ethp2p.eth.chainspec import MAINNET
    from tests.support.servers import start_servers

    servers = start_servers(3, mainnet_store_path, tmp_path, network_args=["--network", "mainnet"])
    dns_server = None
    try:
        fid = MAINNET.fork_id()
        records = []
        for s in servers[:2]:
            port = int(s.enode.rsplit(":", 1)[1])
            fields = {b"ip": bytes([127, 0, 0, 1]), b"tcp": port, b"udp": port, b"eth": [[fid.hash, fid.next]]}
            records.append(ENR.create(s.key, 1, fields))
        signer = PrivateKey.generate()
        root, entries = make_tree(signer, records, max_children=2)
        zone = {"sim.example.org": root, **{f"{h}.sim.example.org": t for h, t in entries.items()}}
        dns_server = DnsServer(tmp_path, zone).start()
        url = str(TreeURL(signer.public_key, "sim.example.org"))

        def fetch(rng: str, *extra: str) -> str:
            args = [sys.executable, "-m", "ethp2p.cli", "fetch", rng, "--store", str(tmp_path / "f.db")]
            args += ["--network", "mainnet", "--no-discovery", "--peers", "3", "--warmup", "1", "--timeout", "30"]
            r = subprocess.run([*args, *extra], capture_output=True, text=True, timeout=120)
            assert r.returncode == 0, r.stdout + r.stderr[-3000:]
            print(r.stdout)
            return r.stdout

        out = fetch(
            "0..100", "--dns", url, "--dns-resolver", f"127.0.0.1:{dns_server.port}", "--bootnodes", servers[2].enode
        )
        assert "peers: 3 found (discv4 0, DNS 2, boot nodes 1, cache 0), 3 connected, " in out, out
        used = int(re.search(r"3 connected, (\d+) used", out).group(1))  # type: ignore[union-attr]
        assert 1 <= used <= 3 and "missing: 0" in out
        out = fetch(
            "101..200", "--dns", url, "--dns-resolver", f"127.0.0.1:{dns_server.port}", "--bootnodes", servers[2].enode
        )
        assert "peers: 3 found (discv4 0, DNS 0, boot nodes 0, cache 3), 3 connected, " in out, out
    finally:
        if dns_server is not None:
            dns_server.stop()
        for s in servers:
            s.stop()
