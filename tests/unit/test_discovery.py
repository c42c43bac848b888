"""ENR (EIP-778 and geth's cases, real records), discv4 packets (EIP-8 vectors), table and protocol core."""

from __future__ import annotations

import os

import pytest

from ethp2p import rlp
from ethp2p.crypto.keccak import keccak
from ethp2p.crypto.keys import PrivateKey
from ethp2p.discovery import v4wire as w
from ethp2p.discovery.enr import ENR, ENRError
from ethp2p.discovery.table import Node, Table, log_distance
from ethp2p.discovery.v4 import DiscoveryV4, Dropped, NeighborsReceived, PongReceived, Send
from tests.conftest import load_vector

# ---- ENR ---------------------------------------------------------------------------------------


def test_eip778_example_decodes_and_re_encodes() -> None:
    v = load_vector("enr/eip778_example.json")
    r = ENR.from_text(v["text"])
    assert r.raw.hex() == v["rlp_hex"] and r.seq == v["seq"] and r.signature.hex() == v["signature"]
    assert r.node_id.hex() == v["node_id"] and (r.ip, r.udp, r.tcp) == ("127.0.0.1", 30303, None)
    again = ENR.create(PrivateKey(bytes.fromhex(v["private_key"])), 1, {b"ip": bytes([127, 0, 0, 1]), b"udp": 30303})
    assert again.text() == v["text"]


@pytest.mark.parametrize(
    "case",
    [c for c in load_vector("enr/geth_parse_node_tests.json")["tests"] if c["input"].startswith("enr:")],
    ids=lambda c: c["input"][:30],
)
def test_geth_enr_parse_cases(case: dict) -> None:
    if case["accept"]:
        r = ENR.from_text(case["input"])
        want = case["want"]
        assert r.seq == want["seq"] and r.ip == want["ip"] and r.udp == want["udp"]
        assert r.node_id.hex() == want["node_id"]
        assert r.public_key == PrivateKey(bytes.fromhex(want["signing_key"])).public_key
    else:
        with pytest.raises(ENRError):
            ENR.from_text(case["input"])


def test_real_records_verify_and_eth_entries() -> None:
    v = load_vector("enr/real_records.json")
    for rec in v["v5_bootnodes"] + v["dns_list_sample"]:
        r = ENR.from_text(rec["text"])
        assert r.node_id.hex() == rec["node_id"] and r.seq == rec["seq"]
        if "eth" in rec["pairs"]:
            fid = r.eth_fork_id
            assert fid is not None and [fid.hash.hex(), fid.next] == rec["pairs"]["eth"][0]
        assert r.to_enode().pubkey == r.public_key.to_bytes()


def test_enr_tampering_and_limits() -> None:
    key = PrivateKey.generate()
    r = ENR.create(key, 5, {b"ip": bytes([10, 0, 0, 1]), b"tcp": 30303, b"udp": 30301})
    items = rlp.decode(r.raw)
    assert isinstance(items, list)
    items[1] = b"\x06"  # bump seq without re-signing
    with pytest.raises(ENRError, match="signature"):
        ENR.from_rlp(rlp.encode(items))
    unsorted = rlp.encode([items[0], items[1], b"z", b"1", b"a", b"2"])
    with pytest.raises(ENRError, match="sorted"):
        ENR.from_rlp(unsorted)
    with pytest.raises(ENRError, match="300"):
        ENR.create(key, 1, {b"big": b"x" * 300})
    with pytest.raises(ENRError):
        ENR.from_text("enr:" + "A" * 10)


# ---- discv4 packets ----------------------------------------------------------------------------

PKTS = load_vector("discv4/eip8_packets.json")


@pytest.mark.parametrize("p", PKTS["packets"], ids=lambda p: p["name"])
def test_eip8_discv4_packets_are_accepted(p: dict) -> None:
    dec = w.decode_packet(bytes.fromhex(p["hex"]))
    assert dec.sender == PrivateKey(bytes.fromhex(PKTS["signing_key"])).public_key
    assert {1: w.Ping, 2: w.Pong, 3: w.FindNode, 4: w.Neighbors}[p["type"]] is type(dec.packet)
    exp = p.get("expect")
    if not exp:
        return
    pkt = dec.packet
    if isinstance(pkt, w.Ping):
        assert (pkt.version, pkt.from_, pkt.to, pkt.expiration) == (
            exp["version"],
            w.Endpoint(**exp["from"]),
            w.Endpoint(**exp["to"]),
            exp["expiration"],
        )
        assert pkt.enr_seq == exp.get("enr_seq")
    if isinstance(pkt, w.FindNode):
        assert pkt.target.hex() == exp["target"] and pkt.expiration == exp["expiration"]
    if isinstance(pkt, w.Neighbors):
        assert [(n.pubkey.hex(), n.ip, n.udp, n.tcp) for n in pkt.nodes] == [
            (n["id"], n["ip"], n["udp"], n["tcp"]) for n in exp["nodes"]
        ]


def test_packet_round_trip_and_corruption() -> None:
    key = PrivateKey.generate()
    ping = w.Ping(w.Endpoint("127.0.0.1", 1, 2), w.Endpoint("::1", 3, 4), 2_000_000_000, 7)
    data, h = w.encode_packet(key, ping)
    dec = w.decode_packet(data)
    assert dec.packet == ping and dec.hash == h and dec.sender == key.public_key
    bad = bytearray(data)
    bad[-1] ^= 1
    with pytest.raises(w.PacketError, match="hash"):
        w.decode_packet(bytes(bad))
    with pytest.raises(w.PacketError):
        w.decode_packet(data[:50])
    with pytest.raises(w.PacketError):
        w.decode_packet(data + b"\x00" * 1300)
    body = bytes([9]) + rlp.encode([1])
    sig = key.sign(keccak(body))
    with pytest.raises(w.UnknownPacket):
        w.decode_packet(keccak(sig + body) + sig + body)


def test_neighbors_split_within_1280_bytes() -> None:
    key = PrivateKey.generate()
    nodes = [w.NodeRecord("2001:db8::1", 30303, 30303, os.urandom(64)) for _ in range(16)]
    packets = w.neighbors_packets(key, nodes, 2_000_000_000)
    assert len(packets) == 2 and all(len(p) <= 1280 for p in packets)
    got = [n for p in packets for n in w.decode_packet(p).packet.nodes]  # type: ignore[union-attr]
    assert got == nodes


# ---- table -------------------------------------------------------------------------------------


def _node(i: int) -> Node:
    return Node(PrivateKey.generate().public_key.to_bytes(), "127.0.0.1", 1000 + i, 1000 + i)


def test_table_buckets_replacements_and_closest() -> None:
    local = os.urandom(32)
    t = Table(local, bucket_size=4)
    nodes = [_node(i) for i in range(200)]
    stale_returned = 0
    for n in nodes:
        if t.add_seen(n) is not None:
            stale_returned += 1
    assert all(len(b) <= 4 for b in t.buckets) and stale_returned > 0
    target = os.urandom(32)
    closest = t.closest(target, 5)
    d = [int.from_bytes(n.node_id, "big") ^ int.from_bytes(target, "big") for n in closest]
    assert d == sorted(d) and len(closest) == 5
    full = next(i for i, b in enumerate(t.buckets) if len(b) == 4 and t.replacements[i])
    victim = t.buckets[full][0]
    replacement = t.replacements[full][-1]
    assert t.remove(victim.node_id)
    assert replacement in t.buckets[full] and victim.node_id not in t
    assert log_distance(local, local) == 0


# ---- protocol core -----------------------------------------------------------------------------

NOW = 1_800_000_000.0


def _core(port: int) -> DiscoveryV4:
    return DiscoveryV4(PrivateKey.generate(), w.Endpoint("127.0.0.1", port, port))


def _deliver(src: DiscoveryV4, dst: DiscoveryV4, sends: list, now: float = NOW) -> list:
    out = []
    for s in sends:
        if isinstance(s, Send):
            out += dst.receive(s.data, ("127.0.0.1", src.endpoint.udp), now)
    return out


def test_bonding_then_findnode() -> None:
    a, b = _core(1), _core(2)
    send, h = a.ping(b.pubkey, ("127.0.0.1", 2), 2, NOW)
    at_b = b.receive(send.data, ("127.0.0.1", 1), NOW)  # pong + ping back
    assert sum(isinstance(e, Send) for e in at_b) == 2
    at_a = _deliver(b, a, at_b)
    pongs = [e for e in at_a if isinstance(e, PongReceived)]
    assert pongs and pongs[0].ping_hash == h and a.is_bonded(b.node_id, "127.0.0.1", NOW)
    at_b2 = _deliver(a, b, at_a)  # a's pong to b's ping completes b's side
    assert any(isinstance(e, PongReceived) for e in at_b2) and b.is_bonded(a.node_id, "127.0.0.1", NOW)
    for i in range(5):
        b.table.add_seen(_node(i))
    fn = a.findnode(b.node_id, ("127.0.0.1", 2), os.urandom(64), NOW)
    replies = b.receive(fn.data, ("127.0.0.1", 1), NOW)
    got = _deliver(b, a, replies)
    nb = [e for e in got if isinstance(e, NeighborsReceived)]
    assert nb and len(nb[0].nodes) == 5


def test_findnode_without_bond_and_unsolicited_replies_are_dropped() -> None:
    a, b = _core(1), _core(2)
    fn = a.findnode(b.node_id, ("127.0.0.1", 2), os.urandom(64), NOW)
    assert isinstance(b.receive(fn.data, ("127.0.0.1", 1), NOW)[0], Dropped)
    pong, _ = w.encode_packet(b.key, w.Pong(w.Endpoint("127.0.0.1", 1, 1), os.urandom(32), int(NOW) + 20))
    assert isinstance(a.receive(pong, ("127.0.0.1", 2), NOW)[0], Dropped)
    c = _core(3)  # a never asked c anything
    nb, _ = w.encode_packet(c.key, w.Neighbors((), int(NOW) + 20))
    assert a.receive(nb, ("127.0.0.1", 3), NOW) == [Dropped(("127.0.0.1", 3), "unsolicited neighbors")]
    old, _ = w.encode_packet(b.key, w.Ping(w.Endpoint("127.0.0.1", 2, 2), w.Endpoint("127.0.0.1", 1, 1), int(NOW) - 1))
    assert a.receive(old, ("127.0.0.1", 2), NOW) == [Dropped(("127.0.0.1", 2), "expired")]


def test_rate_limit_per_source() -> None:
    a, b = _core(1), _core(2)
    ping, _ = w.encode_packet(
        b.key, w.Ping(w.Endpoint("127.0.0.1", 2, 2), w.Endpoint("127.0.0.1", 1, 1), int(NOW) + 20)
    )
    results = [a.receive(ping, ("10.0.0.9", 2), NOW) for _ in range(600)]
    limited = sum(1 for r in results if r and isinstance(r[0], Dropped) and r[0].reason == "rate limited")
    assert limited >= 150
    assert a.receive(ping, ("10.0.0.10", 2), NOW)[0] != Dropped(("10.0.0.10", 2), "rate limited")


# ---- DNS discovery (EIP-1459) parsing ----------------------------------------------------------

DNS = load_vector("dnsdisc/geth_parse_tests.json")


@pytest.mark.parametrize("case", DNS["root_tests"], ids=lambda c: str(c["accept"]))
def test_dns_root_parse_cases(case: dict) -> None:
    from ethp2p.discovery.dns import DNSDiscoveryError, Root

    if case["accept"]:
        r = Root.parse(case["input"])
        w_ = case["want"]
        assert (r.enr_root, r.link_root, r.seq, r.signature.hex()) == (w_["eroot"], w_["lroot"], w_["seq"], w_["sig"])
    else:
        with pytest.raises(DNSDiscoveryError):
            Root.parse(case["input"])


@pytest.mark.parametrize("case", DNS["entry_tests"], ids=lambda c: c["input"][:24] or "empty")
def test_dns_entry_parse_cases(case: dict) -> None:
    from ethp2p.discovery.dns import DNSDiscoveryError, parse_entry

    if case["accept"]:
        kind, value = parse_entry(case["input"])
        assert kind == case["want"]["type"] or (kind == "enr" and case["want"]["type"] in ("enr", "node"))
        if kind == "branch":
            assert value == case["want"]["children"]
        if kind == "link":
            assert value.domain == case["want"]["domain"]  # type: ignore[union-attr]
    else:
        with pytest.raises(DNSDiscoveryError):
            parse_entry(case["input"])


async def test_dns_tree_with_bad_leaf_fails_at_that_leaf() -> None:
    from ethp2p.discovery.dns import DNSDiscoveryError, TreeClient, TreeURL

    tree = DNS["bad_node_tree"]

    async def resolve(name: str) -> str | None:
        return tree["records"].get(name)

    client = TreeClient(resolve)
    with pytest.raises(DNSDiscoveryError, match="bad ENR leaf"):
        _ = [r async for r in client.walk(TreeURL.parse(tree["url"]))]


def test_dns_root_with_a_signature_no_padding_makes_whole_is_a_dns_error() -> None:
    """85 base64url characters decode to no whole number of bytes: binascii.Error used to escape."""
    from ethp2p.discovery.dns import DNSDiscoveryError, Root

    text = "enrtree-root:v1 e=JWXYDBPXYWG6FX3GMDIBFA6CJ4 l=C7HRFPF3BLGF3YR4DY5KX3SMBE seq=1 sig=" + "A" * 85
    with pytest.raises(DNSDiscoveryError, match="base64url"):
        Root.parse(text)


async def test_dns_feed_survives_a_malformed_root_and_picks_up_the_fixed_tree() -> None:
    """A root record that fails to parse (or any error in a pass) is reported and retried at the next
    refresh; the feed does not end. The records are a real signed tree served from a dict (the DNS
    transport itself is tested against dnsmasq in tests/integration/test_dns_discovery.py)."""
    import asyncio

    from ethp2p.discovery.dns import TreeURL, dns_discovery, make_tree

    signer, node = PrivateKey.generate(), PrivateKey.generate()
    record = ENR.create(node, 1, {b"ip": bytes([127, 0, 0, 1]), b"tcp": 30303, b"udp": 30303})
    root, entries = make_tree(signer, [record])
    good = {"list.example.org": root, **{f"{h}.list.example.org": t for h, t in entries.items()}}
    zone = {"list.example.org": root.split(" sig=")[0] + " sig=" + "A" * 85}
    errors: list[Exception] = []

    async def resolve(name: str) -> str | None:
        return zone.get(name)

    url = str(TreeURL(signer.public_key, "list.example.org"))
    feed = dns_discovery(url, resolve, refresh_interval=0.05, on_error=errors.append)
    first = asyncio.ensure_future(feed.__anext__())
    async with asyncio.timeout(10):  # a guard against hanging, not a speed check
        while not errors:
            await asyncio.sleep(0.01)
        zone.clear()
        zone.update(good)
        got = await first
    await feed.aclose()
    assert got.node_id == record.node_id and "base64url" in str(errors[0])


# ---- bounded tables (issue #23: a Ping flood must not grow the core without bound) ------------


def _ping_from(key: PrivateKey, to_port: int, now: float, src_port: int = 2) -> bytes:
    data, _ = w.encode_packet(
        key,
        w.Ping(w.Endpoint("127.0.0.1", src_port, src_port), w.Endpoint("127.0.0.1", to_port, to_port), int(now) + 20),
    )
    return data


def test_a_ping_flood_from_one_address_leaves_bounded_entries_and_expiry_frees_them() -> None:
    from ethp2p.discovery import v4

    a = _core(1)
    keys = [PrivateKey.generate() for _ in range(100)]
    pings = [_ping_from(k, 1, NOW + 100) for k in keys]  # valid through the 100 s flood
    now = NOW
    answered = 0
    for i in range(20_000):
        now += 1 / v4.RATE  # at the rate limit: every packet is handled
        out = a.receive(pings[i % len(pings)], ("10.0.0.9", 1000 + i % 50_000), now)
        answered += any(isinstance(e, Send) for e in out)
    assert answered == 20_000  # each Ping was answered with a Pong
    # 100 distinct nodes from one IP: at most MAX_PENDING_PER_IP ping-backs wait for a Pong.
    assert len(a.pending_pings) <= v4.MAX_PENDING_PER_IP
    assert a.stats["ping-back-refused"] + a.stats["ping-back-pending"] >= 20_000 - v4.MAX_PENDING_PER_IP
    # Expiry frees them all, and the per-source counts with them; then the next ping-backs go out.
    assert a.expire(now + 2) == len(a.pending_pings) or not a.pending_pings
    assert a.pending() == 0 and not a._pings_per_ip and not a._pings_per_node
    out = a.receive(pings[0], ("10.0.0.9", 7), now + 2)
    assert sum(isinstance(e, Send) for e in out) == 2 and len(a.pending_pings) == 1


def test_one_node_pinging_from_many_ports_gets_one_ping_back_at_a_time() -> None:
    a, b = _core(1), _core(2)
    ping = _ping_from(b.key, 1, NOW)
    for port in range(1000, 1500):
        a.receive(ping, ("10.0.0.9", port), NOW + (port - 1000) / 200)
    assert len(a.pending_pings) == 1 and a.stats["ping-back-pending"] == 499


def test_pending_requests_and_bonds_are_capped_overall(monkeypatch: pytest.MonkeyPatch) -> None:
    from ethp2p.discovery import v4

    monkeypatch.setattr(v4, "MAX_PENDING", 32)
    monkeypatch.setattr(v4, "MAX_BONDS", 8)
    a = _core(1)
    others = [_core(100 + i) for i in range(40)]
    for i, o in enumerate(others):  # distinct IPs: only the overall cap applies
        out = a.receive(_ping_from(o.key, 1, NOW, o.endpoint.udp), (f"10.0.1.{i}", o.endpoint.udp), NOW)
        assert sum(isinstance(e, Send) for e in out) == 2
    assert len(a.pending_pings) == 32 and a.stats["pending-dropped"] == 8
    assert sum(a._pings_per_ip.values()) == 32 and len(a._pings_per_node) == 32
    for i in range(40):  # a new second each: distinct ENRRequest packets, so distinct hashes
        a.findnode(os.urandom(32), ("10.0.2.1", 5), os.urandom(64), NOW)
        a.request_enr(os.urandom(32), ("10.0.2.1", 5), NOW + i)
    assert len(a.pending_findnode) == 32 and len(a.pending_enr) == 32
    # The newest 32 pings are still pending; their Pongs bond, and bonds stop at 8.
    for i, o in enumerate(others[8:]):
        h = next(h for h, v in a.pending_pings.items() if v[0] == o.node_id)
        pong, _ = w.encode_packet(o.key, w.Pong(w.Endpoint("127.0.0.1", 1, 1), h, int(NOW) + 20))
        assert isinstance(a.receive(pong, (f"10.0.1.{i + 8}", o.endpoint.udp), NOW)[0], PongReceived)
    assert len(a.bonds) == 8 and a.stats["bonds-dropped"] == 24
    a.expire(NOW + v4.BOND_EXPIRATION + 1)
    assert not a.bonds and a.pending() == 0


def test_rate_buckets_are_capped_oldest_first(monkeypatch: pytest.MonkeyPatch) -> None:
    from ethp2p.discovery import v4

    monkeypatch.setattr(v4, "MAX_RATE_SOURCES", 10)
    a = _core(1)
    for i in range(25):
        a.receive(b"\x00" * 10, (f"10.0.3.{i}", 5), NOW)
    assert len(a._rates) == 10 and list(a._rates)[0] == "10.0.3.15"
