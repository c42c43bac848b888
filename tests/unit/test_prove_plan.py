"""plan_segments: which anchor each part of a range is proven from, and what that costs in headers (pure)."""

from __future__ import annotations

from ethp2p.eth.chainspec import MAINNET
from ethp2p.sync.prove import EpochRoute, LinkRoute, plan_segments
from ethp2p.trust import Checkpoint, Proof, anchors_for


class Facts:
    """A store holding proven blocks ``proven`` (number -> (hash, parent hash, proof)) and TDs ``tds``."""

    def __init__(self, proven: dict[int, tuple[bytes, bytes, Proof]] | None = None, tds: dict[int, int] | None = None):
        self.proven = proven or {}
        self.tds = tds or {}

    def link_above(self, number: int):
        got = self.proven.get(number + 1)
        return (number, got[1], got[2]) if got else None

    def lowest_proven_above(self, number: int):
        return min((n for n in self.proven if n > number), default=None)

    def proven_td(self, number: int):
        if number in self.tds and number in self.proven:
            return self.tds[number], self.proven[number][0]
        return None


MAIN = anchors_for(MAINNET.genesis_hash)


def _routes(seg):
    return [(type(r).__name__, getattr(r, "top", getattr(r, "epoch", None))) for r in seg.routes]


def test_from_genesis_every_epoch_is_proven_by_its_root() -> None:
    segs = plan_segments(list(range(1, 16384)), MAIN, Facts())
    assert [(s.lo, s.hi, s.extra) for s in segs] == [(1, 8191, 1), (8192, 16383, 0)]
    assert segs[0].routes[0] == EpochRoute(0) and segs[1].routes[0] == EpochRoute(1)
    # Linking down from the checkpoints above is each one's fallback.
    assert _routes(segs[1]) == [("EpochRoute", 1), ("LinkRoute", 21_930)]


def test_a_mid_range_links_down_from_the_checkpoint_above_or_falls_back_to_its_epoch() -> None:
    (seg,) = plan_segments(list(range(12_000, 12_101)), MAIN, Facts())
    assert seg.routes[0] == LinkRoute(21_930, MAIN.checkpoint(21_930).hash, Proof.CHECKPOINT, seg.routes[0].source)  # type: ignore[union-attr]
    assert seg.extra == 21_930 - 12_100
    # The epoch's root needs the total difficulty before it: epoch 0 first, as a prerequisite.
    assert seg.routes[1] == EpochRoute(1, (0,))
    # With epoch 0's end proven in the store, the epoch route needs no prerequisite, and costs
    # fewer headers (8,091) than the bridge to the checkpoint (9,830): it comes first.
    facts = Facts({8191: (b"\x01" * 32, b"\x02" * 32, Proof.ACCUMULATOR)}, {8191: 5})
    (seg,) = plan_segments(list(range(12_000, 12_101)), MAIN, facts)
    assert _routes(seg) == [("EpochRoute", 1), ("LinkRoute", 21_930)] and seg.routes[0] == EpochRoute(1)
    assert seg.extra == 8192 - 101


def test_a_checkpoint_inside_a_partly_wanted_epoch_cuts_it() -> None:
    segs = plan_segments(list(range(1, 10_966)), MAIN, Facts())
    assert [(s.lo, s.hi, s.extra) for s in segs] == [(1, 8191, 1), (8192, 10_965, 0)]
    assert _routes(segs[1]) == [("LinkRoute", 10_965), ("EpochRoute", 1)]


def test_runs_that_link_down_from_one_anchor_share_one_bridge() -> None:
    wanted = list(range(12_000, 12_101)) + list(range(15_000, 15_101))
    (seg,) = plan_segments(wanted, MAIN, Facts())
    assert (seg.lo, seg.hi, seg.wanted, seg.extra) == (12_000, 15_100, wanted, 21_930 - 15_100)
    assert seg.routes[0].top == 21_930  # type: ignore[union-attr]


def test_above_the_newest_checkpoint_peers_must_agree_unless_strict() -> None:
    lo, hi = 22_000_000, 22_000_100
    (seg,) = plan_segments(list(range(lo, hi + 1)), MAIN, Facts())
    assert seg.routes == [LinkRoute(hi, None, Proof.PEER_AGREEMENT, f"peer agreement at #{hi:,}")]
    strict = anchors_for(MAINNET.genesis_hash, strict=True)
    (seg,) = plan_segments(list(range(lo, hi + 1)), strict, Facts())
    assert seg.routes == []
    # Across the newest checkpoint: the part below it links down from it, the rest needs agreement.
    segs = plan_segments(list(range(21_929_000, 21_931_000)), MAIN, Facts())
    assert [(s.lo, s.hi) for s in segs] == [(21_929_000, 21_930_000), (21_930_001, 21_930_999)]
    assert segs[0].routes[0].proof is Proof.CHECKPOINT and segs[1].routes[0].proof is Proof.PEER_AGREEMENT  # type: ignore[union-attr]


def test_user_checkpoints_and_stored_proven_blocks_are_anchors() -> None:
    genesis = b"\x11" * 32
    anchors = anchors_for(genesis, [Checkpoint(600, b"\x66" * 32)])
    segs = plan_segments(list(range(1, 701)), anchors, Facts())
    assert [(s.lo, s.hi, s.routes[0].proof) for s in segs] == [  # type: ignore[union-attr]
        (1, 600, Proof.CHECKPOINT),
        (601, 700, Proof.PEER_AGREEMENT),
    ]
    # A proven stored block just above a run: link to it, nothing beyond fetched.
    facts = Facts({701: (b"\x07" * 32, b"\x08" * 32, Proof.PEER_AGREEMENT)})
    segs = plan_segments(list(range(601, 701)), anchors, facts)
    assert segs[0].routes[0] == LinkRoute(700, b"\x08" * 32, Proof.PEER_AGREEMENT, segs[0].routes[0].source)
    assert segs[0].extra == 0


def test_isolated_blocks_of_one_epoch_share_its_proof() -> None:
    segs = plan_segments([100, 200, 300], MAIN, Facts())
    assert [(s.lo, s.hi, s.wanted) for s in segs] == [(100, 300, [100, 200, 300])]
    assert segs[0].routes[0] == EpochRoute(0) and segs[0].extra == 8192 - 3


def test_a_stored_block_proven_by_peer_agreement_yields_to_checkpoints_and_strictness() -> None:
    lo, hi = 22_000_000, 22_000_009
    facts = Facts({22_000_500: (b"\x05" * 32, b"\x06" * 32, Proof.PEER_AGREEMENT)})
    (seg,) = plan_segments(list(range(lo, hi + 1)), MAIN, facts)
    assert seg.routes[0].source.startswith("stored block #22,000,500") and len(seg.routes) == 2
    # A checkpoint the user gives above it wins: the weaker stored proof is not used.
    cp = Checkpoint(22_001_000, b"\x07" * 32)
    (seg,) = plan_segments(list(range(lo, hi + 1)), MAIN.with_checkpoints([cp]), facts)
    assert [r.top for r in seg.routes] == [22_001_000]  # type: ignore[union-attr]
    # Strict: peer agreement proves nothing, stored or fresh.
    strict = anchors_for(MAINNET.genesis_hash, strict=True)
    (seg,) = plan_segments(list(range(lo, hi + 1)), strict, facts)
    assert seg.routes == []
    # A block stored with a strong proof is used, with the checkpoint above as the fallback.
    strong = Facts({22_000_500: (b"\x05" * 32, b"\x06" * 32, Proof.CHECKPOINT)})
    (seg,) = plan_segments(list(range(lo, hi + 1)), MAIN.with_checkpoints([cp]), strong)
    assert [r.top for r in seg.routes] == [22_000_499, 22_001_000]  # type: ignore[union-attr]


def test_runs_above_every_checkpoint_share_one_agreement_when_close() -> None:
    wanted = list(range(22_000_000, 22_000_010)) + list(range(22_000_100, 22_000_110))
    (seg,) = plan_segments(wanted, MAIN, Facts())
    assert seg.routes[0] == LinkRoute(22_000_109, None, Proof.PEER_AGREEMENT, "peer agreement at #22,000,109")
    far = list(range(22_000_000, 22_000_010)) + list(range(23_000_000, 23_000_010))
    assert len(plan_segments(far, MAIN, Facts())) == 2
