"""The shipped anchors (checkpoints, accumulator, era1 checksums), peer agreement and linkage from above,
checked against the real mainnet data in tests/vectors."""

from __future__ import annotations

import hashlib
from itertools import pairwise

import pytest

from ethp2p.chain.header import Header
from ethp2p.eth.chainspec import MAINNET
from ethp2p.formats.era1 import read_era1
from ethp2p.trust import (
    AgreementRule,
    AnchorError,
    Answer,
    Checkpoint,
    Proof,
    agree,
    anchors_for,
    epoch_records,
    mainnet_accumulator,
    network_of,
    parse_checkpoint,
)
from ethp2p.trust.anchors import mainnet_checkpoints
from ethp2p.trust.checksums import canonical_era1_name, mainnet_era1_checksums
from ethp2p.trust.linkage import DownwardLinker, Expected
from tests.support.stores import ERA1_FILES

#: EIP-7643's published root of the pre-merge HistoricalHashesAccumulator.
EIP7643_ROOT = "ec8e040fd6c557b41ca8ddd38f7e9d58a9281918dc92bdb72342a38fb085e701"


@pytest.fixture(scope="module")
def era1_blocks():
    return [b for f in ERA1_FILES for b in read_era1(f).blocks]


def test_shipped_checkpoints_are_geths_and_agree_with_the_era1_history(era1_blocks) -> None:
    cps = mainnet_checkpoints()
    assert len(cps) == 2001 and cps[0].number == 0 and cps[-1].number == 21_930_000
    assert all(b.number - a.number == 10_965 for a, b in pairwise(cps))
    assert cps[0].hash == MAINNET.genesis_hash
    # The one checkpoint inside the era1 range is the real block's hash.
    assert cps[1].number == 10_965 and cps[1].hash == era1_blocks[10_965].hash


def test_shipped_accumulator_is_eip7643s_and_proves_the_era1_epochs(era1_blocks) -> None:
    acc = mainnet_accumulator()
    assert acc.epochs == 1897 and acc.bounds(1896) == (15_532_032, 15_537_393)
    assert acc.ssz_root().hex() == EIP7643_ROOT
    assert acc.epoch_of(15_537_393) == 1896 and acc.epoch_of(15_537_394) is None
    td = 0
    for epoch in (0, 1):
        headers = [Header(b.header) for b in era1_blocks[epoch * 8192 : (epoch + 1) * 8192]]
        records, td = epoch_records(headers, td)
        # The total difficulties computed from the headers are the era1 file's own.
        assert [r[1] for r in records] == [b.total_difficulty for b in era1_blocks[epoch * 8192 : (epoch + 1) * 8192]]
        assert acc.matches(epoch, records)
        assert not acc.matches(1 - epoch, records)
    bad = list(records)
    bad[100] = (bytes(32), bad[100][1])
    assert not acc.matches(1, bad)
    assert not acc.matches(1, records[:-1])


def test_era1_checksums_name_the_shipped_files() -> None:
    sums = mainnet_era1_checksums()
    assert len(sums) == 1897
    for f in ERA1_FILES:
        assert sums[f.name] == hashlib.sha256(f.read_bytes()).digest()
        epoch, prefix = canonical_era1_name(f.name)  # type: ignore[misc]
        assert mainnet_accumulator().root(epoch).hex().startswith(prefix)
    assert canonical_era1_name("fork.era1") is None and canonical_era1_name("mainnet-1-ab.era1") is None


def test_anchors_for_a_network() -> None:
    main = anchors_for(MAINNET.genesis_hash)
    assert main.accumulator is not None and len(main.checkpoints) == 2001
    assert main.checkpoint_at_or_above(12_000).number == 21_930  # type: ignore[union-attr]
    assert main.checkpoint_at_or_above(21_930_001) is None
    assert [c.number for c in main.checkpoints_in(0, 21_930)] == [0, 10_965, 21_930]
    other = anchors_for(b"\x11" * 32, [parse_checkpoint("600:0x" + "ab" * 32)])
    assert other.accumulator is None and sorted(other.checkpoints) == [0, 600]
    assert other.checkpoint(0).source == "genesis"  # type: ignore[union-attr]
    # A user checkpoint may agree with a shipped one, never contradict it.
    same = main.with_checkpoints([Checkpoint(10_965, main.checkpoint(10_965).hash)])  # type: ignore[union-attr]
    assert same.checkpoint(10_965).source != "--checkpoint"  # type: ignore[union-attr]
    with pytest.raises(AnchorError, match="contradicts"):
        main.with_checkpoints([Checkpoint(10_965, b"\x01" * 32)])


@pytest.mark.parametrize(
    "text",
    ["", "12", "12:", "x:" + "ab" * 32, "12:" + "ab" * 31, "12:0x" + "zz" * 32, "99999999999999999999:" + "ab" * 32],
)
def test_malformed_checkpoints_are_refused(text: str) -> None:
    with pytest.raises(AnchorError):
        parse_checkpoint(text)


def test_contradictions_name_the_checkpoint() -> None:
    main = anchors_for(MAINNET.genesis_hash)
    cp = main.checkpoint(10_965)
    assert cp is not None
    assert main.contradiction(10_965, cp.hash, b"\x00" * 32) is None
    assert "checkpoint" in (main.contradiction(10_965, b"\x01" * 32, b"\x00" * 32) or "")
    assert "does not link" in (main.contradiction(10_966, b"\x01" * 32, b"\x02" * 32) or "")
    assert main.contradiction(10_966, b"\x01" * 32, cp.hash) is None


def test_network_of_uses_the_rules_prefixes() -> None:
    rule = AgreementRule()
    assert network_of("10.1.2.3", rule) == network_of("10.1.200.9", rule) == "10.1.0.0/16"
    assert network_of("10.2.2.3", rule) != network_of("10.1.2.3", rule)
    assert network_of("::ffff:10.1.2.3", rule) == "10.1.0.0/16"
    assert network_of("2001:db8:1::1", rule) == network_of("2001:db8:ffff::1", rule)
    assert network_of("127.0.0.2", AgreementRule(ipv4_prefix=32)) != network_of(
        "127.0.0.3", AgreementRule(ipv4_prefix=32)
    )
    assert network_of(None, rule) is None and network_of("not-an-ip", rule) is None


def test_an_agreement_rule_that_can_never_be_met_is_refused() -> None:
    """Prefixes that leave fewer distinct networks (IPv4 and IPv6 together) than the peers asked to agree
    are refused. A 0-bit IPv4 prefix alone is not: IPv4 peers then count as one network, IPv6 peers
    still as many."""
    AgreementRule(min_peers=3, ipv4_prefix=0)  # 1 IPv4 network, 2^32 IPv6 ones
    AgreementRule(min_peers=2, ipv4_prefix=0, ipv6_prefix=0)  # 0.0.0.0/0 and ::/0
    with pytest.raises(AnchorError, match="only 2 distinct networks"):
        AgreementRule(min_peers=3, ipv4_prefix=0, ipv6_prefix=0)
    with pytest.raises(AnchorError, match="only 3 distinct networks"):
        AgreementRule(min_peers=4, ipv4_prefix=1, ipv6_prefix=0)


def _answers(*rows: tuple[int, str | None, bytes | None]) -> list[Answer]:
    return [Answer(bytes([i]) * 64, addr, h) for i, addr, h in rows]


def test_agreement_needs_distinct_networks_and_distinct_ids() -> None:
    rule, good, bad = AgreementRule(), b"\x0a" * 32, b"\x0b" * 32
    a = agree(_answers((1, "10.1.0.1", good), (2, "10.2.0.1", good), (3, "10.3.0.1", good), (4, "10.4.0.1", bad)), rule)
    assert a.block_hash == good and a.support == {good: 3, bad: 1} and a.dissenters() == [bytes([4]) * 64]
    # Three peers on one /16 count as one network.
    a = agree(_answers((1, "10.1.0.1", good), (2, "10.1.0.2", good), (3, "10.1.9.9", good)), rule)
    assert a.block_hash is None and a.support[good] == 1 and "3 needed" in a.reason
    # One honest peer and two agreeing liars: nothing is agreed.
    a = agree(_answers((1, "10.1.0.1", good), (2, "10.2.0.1", bad), (3, "10.3.0.1", bad)), rule)
    assert a.block_hash is None and a.support == {good: 1, bad: 2}
    # One node id on three networks is one peer; peers without an address count for nothing.
    a = agree(_answers((1, "10.1.0.1", good), (1, "10.2.0.1", good), (1, "10.3.0.1", good), (2, None, good)), rule)
    assert a.block_hash is None and a.support[good] == 1
    # Two hashes that both qualify: the peers disagree.
    rows = [(i, f"10.{i}.0.1", good) for i in range(1, 4)] + [(i, f"10.{i}.0.1", bad) for i in range(4, 7)]
    assert agree(_answers(*rows), rule).block_hash is None
    # Ids and networks are matched, not just counted: three ids and three networks, but ids 2 and 3
    # share one network and id 1 can stand for only one of its two: two peers.
    a = agree(
        _answers((1, "10.1.0.1", good), (1, "10.2.0.1", good), (2, "10.3.0.1", good), (3, "10.3.0.2", good)), rule
    )
    assert a.support[good] == 2 and a.block_hash is None
    a = agree(
        _answers((1, "10.1.0.1", good), (1, "10.2.0.1", good), (2, "10.2.0.2", good), (3, "10.3.0.2", good)), rule
    )
    assert a.support[good] == 3 and a.block_hash == good


def test_linkage_from_above(era1_blocks) -> None:
    anchors = anchors_for(MAINNET.genesis_hash)
    chain = [(b.number, b.hash, Header(b.header).parent_hash) for b in era1_blocks[10_000:11_000]]
    # From checkpoint 10,965 down everything is proven; above it nothing (nothing links down to it).
    linker = DownwardLinker(anchors)
    steps = {n: linker.step(n, h, p) for n, h, p in reversed(chain)}
    assert {n for n, s in steps.items() if s.proof is Proof.CHECKPOINT} == set(range(10_000, 10_966))
    assert all(steps[n].proof is None for n in range(10_966, 11_000))
    assert not any(s.problem for s in steps.values())
    # Seeded from a proven block above the top, the whole run inherits its proof.
    top = era1_blocks[11_000]
    linker = DownwardLinker(anchors, Expected(10_999, Header(top.header).parent_hash, Proof.PEER_AGREEMENT))
    steps = {n: linker.step(n, h, p) for n, h, p in reversed(chain)}
    assert all(steps[n].proof is Proof.PEER_AGREEMENT for n in range(10_966, 11_000))
    assert steps[10_965].proof is Proof.CHECKPOINT and steps[10_000].proof is Proof.CHECKPOINT
    # A block that does not hash to what the proven block above links to is a contradiction; the walk
    # then starts over below it, where a recorded proof stands again.
    broken = list(chain)
    n, h, p = broken[500]
    broken[500] = (n, b"\x66" * 32, p)
    linker = DownwardLinker(anchors, Expected(10_999, Header(top.header).parent_hash, Proof.PEER_AGREEMENT))
    steps = {}
    for n, h, p in reversed(broken):
        steps[n] = linker.step(n, h, p, Proof.ACCUMULATOR if n < 10_500 else None)
    assert steps[10_500].proof is None and "links to" in (steps[10_500].problem or "")
    assert steps[10_499].proof is Proof.ACCUMULATOR  # recorded, and nothing above links to it any more
    # A wrong hash at a checkpoint's height is a contradiction too.
    linker = DownwardLinker(anchors)
    assert "checkpoint" in (linker.step(10_965, b"\x01" * 32, b"\x02" * 32).problem or "")


def test_spreading_over_networks_keeps_a_crowd_from_one_network_out() -> None:
    from ethp2p.trust.agreement import networks_among, spread_over_networks

    rule = AgreementRule()
    crowd = [f"10.1.0.{i}" for i in range(20)] + ["10.2.0.1", "10.3.0.1", None]
    picked = spread_over_networks(crowd, lambda a: a, rule, 4)
    assert picked == ["10.1.0.0", "10.2.0.1", "10.3.0.1", "10.1.0.1"]
    assert networks_among(crowd, lambda a: a, rule) == 3
    assert spread_over_networks(crowd, lambda a: a, rule, 30)[-1] is None
