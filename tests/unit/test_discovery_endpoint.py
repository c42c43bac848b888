"""Our own address for the ENR when discv4 is bound to the wildcard address: what peers' Pongs agree on."""

from __future__ import annotations

from ethp2p.crypto.keys import PrivateKey
from ethp2p.discovery import v4wire as w
from ethp2p.discovery.service import DiscoveryService, advertised_ip
from ethp2p.discovery.v4 import IP_STATEMENT_WINDOW, MIN_IP_STATEMENTS, DiscoveryV4, PongReceived, Send
from tests.support.servers import private_loopback

NOW = 1_800_000_000.0
US = ("0.0.0.0", 30303)


def _pong_from(us: DiscoveryV4, reporter: str, seen_as: str, now: float = NOW) -> bool:
    """We ping a node at ``reporter``; it answers that the ping came from ``seen_as``. True if we bonded."""
    peer = DiscoveryV4(PrivateKey.generate(), w.Endpoint(reporter, 30303, 30303))
    send, _ = us.ping(peer.pubkey, (reporter, 30303), 30303, now)
    replies = peer.receive(send.data, (seen_as, US[1]), now)
    events = [e for s in replies if isinstance(s, Send) for e in us.receive(s.data, (reporter, 30303), now)]
    return any(isinstance(e, PongReceived) for e in events)


def test_address_is_learned_once_enough_distinct_peers_agree() -> None:
    us = DiscoveryV4(PrivateKey.generate(), w.Endpoint(*US, 0))
    for i in range(MIN_IP_STATEMENTS - 1):
        assert _pong_from(us, f"203.0.113.{i + 1}", "198.51.100.7")
    assert us.predicted_ip(NOW) is None  # not enough yet
    assert _pong_from(us, "203.0.113.1", "198.51.100.7")  # the same reporter again counts once
    assert us.predicted_ip(NOW) is None
    assert _pong_from(us, "203.0.113.99", "198.51.100.7")
    assert us.predicted_ip(NOW) == "198.51.100.7"
    # Statements age out.
    assert us.predicted_ip(NOW + IP_STATEMENT_WINDOW + 1) is None


def test_liars_and_impossible_addresses_do_not_decide() -> None:
    us = DiscoveryV4(PrivateKey.generate(), w.Endpoint(*US, 0))
    for i in range(MIN_IP_STATEMENTS):
        _pong_from(us, f"203.0.113.{i + 1}", "198.51.100.7")
        _pong_from(us, f"192.0.2.{i + 1}", "198.51.100.66")
    assert us.predicted_ip(NOW) is None  # no majority
    # A remote peer saying we are on loopback, or on 0.0.0.0, is not heard at all.
    for i in range(2 * MIN_IP_STATEMENTS):
        _pong_from(us, f"10.1.0.{i + 1}", "127.0.0.1")
        _pong_from(us, f"10.2.0.{i + 1}", "0.0.0.0")
    assert us.predicted_ip(NOW) is None and len(us.ip_statements) == 2 * MIN_IP_STATEMENTS
    for i in range(MIN_IP_STATEMENTS):  # agreement from more peers decides
        _pong_from(us, f"10.3.0.{i + 1}", "198.51.100.7")
    assert us.predicted_ip(NOW) == "198.51.100.7"


def test_advertised_ip() -> None:
    assert advertised_ip("0.0.0.0") is None and advertised_ip("::") is None and advertised_ip("localhost") is None
    assert advertised_ip("198.18.0.2") == bytes([198, 18, 0, 2]) and advertised_ip("127.0.0.1") == bytes([127, 0, 0, 1])


async def test_service_on_wildcard_puts_the_agreed_address_in_its_enr() -> None:
    """Bound to 0.0.0.0, the service's ENR names no ip until three peers on distinct addresses
    (127.0.0.2..4 in the private namespace) have answered its pings; then it names the address they saw."""
    hosts = private_loopback(MIN_IP_STATEMENTS)
    async with DiscoveryService(PrivateKey.generate(), "0.0.0.0", 0, refresh_interval=3600) as us:
        assert us.core is not None and us.core.enr is not None
        first = us.core.enr
        assert first.ip is None
        peers = [DiscoveryService(PrivateKey.generate(), h, 0, refresh_interval=3600) for h in hosts]
        try:
            for p in peers:
                await p.start()
            for p in peers[:-1]:
                assert await us.ping(p.key.public_key.to_bytes(), (p.host, p.port), p.port) is not None
            assert us.core.enr.ip is None
            last = peers[-1]
            assert await us.ping(last.key.public_key.to_bytes(), (last.host, last.port), last.port) is not None
            assert us.core.enr.ip == "127.0.0.1" and us.core.enr.seq > first.seq
            assert us.core.endpoint.ip == "127.0.0.1"
            # A peer that asks for our record gets the new one.
            node = await last.ping(us.key.public_key.to_bytes(), ("127.0.0.1", us.port), 0)
            assert node is not None
            record = await last.request_enr(node)
            assert record is not None and record.ip == "127.0.0.1" and record.seq == us.core.enr.seq
        finally:
            for p in peers:
                await p.close()
