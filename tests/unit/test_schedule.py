"""The range fetch's scheduler on its own: no sockets, no event loop, time given as ``now`` values.

Peers are only names, keys and serving windows here (that is all the scheduler sees of them);
the fetches that drive it end to end are in tests/integration (test_fetch_mainnet.py,
test_adversaries.py, test_anchored_fetch.py). The last tests run the real ``RangeFetcher`` on a
real store of mainnet blocks, with no peer at all.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest

from ethp2p.chain.header import Header
from ethp2p.faults import FaultKind
from ethp2p.fetch import fetch_payloads_for_peer
from ethp2p.peers.eth_peer import RequestTimeout
from ethp2p.store.blocks import BlockStore
from ethp2p.sync.range import RangeFetcher, declined
from ethp2p.sync.schedule import (
    AIMD_STEP,
    ESCALATE_AFTER,
    INITIAL_BATCH,
    MAX_ATTEMPTS,
    MAX_BATCH_BYTES,
    MAX_PEER_INFLIGHT_BYTES,
    MIN_BATCH,
    UNSERVED_AFTER,
    Batch,
    GiveUp,
    Schedule,
    serving_top,
    serving_window,
)
from ethp2p.trust.anchors import Anchors
from tests.support.peers import FakePeer

A, B, C, D = (bytes([i]) * 64 for i in range(1, 5))
EVERYTHING = (0, 10**9)


def _schedule(**kw: object) -> Schedule:
    """A schedule whose peers may start with as many bytes in flight as the per-peer bound allows,
    so that the tests of batching and ordering see whole batches; the tests of the byte bounds
    (at the end) pass ``start_peer_bytes`` themselves."""
    kw.setdefault("start_peer_bytes", MAX_PEER_INFLIGHT_BYTES)
    return Schedule(**kw)  # type: ignore[arg-type]


def _queue(numbers: range | list[int], **kw: object) -> Schedule:
    s = _schedule(**kw)
    s.push(numbers)
    s.expect(len(numbers))
    return s


def _take_all(
    s: Schedule, key: bytes, name: str, window: tuple[int, int] = EVERYTHING, now: float = 0.0
) -> list[Batch]:
    """Every batch ``name`` can take at ``now``, each returned at once (as if answered)."""
    out = []
    while (batch := s.take(key, name, window, now)) is not None:
        out.append(batch)
        s.returned(name, batch)
    return out


# ---- batching and ordering ----------------------------------------------------------------------


def test_batches_are_consecutive_runs_lowest_first_at_most_the_limit_long() -> None:
    s = _queue(range(1, 301))
    got = _take_all(s, A, "a")
    assert [(b.first, b.last) for b in got] == [(1, 128), (129, 256), (257, 300)]
    assert all(not b.escalated for b in got) and len(got[0]) == INITIAL_BATCH == len(got[0].numbers)


def test_a_gap_ends_a_batch_and_pushing_again_does_not_duplicate() -> None:
    s = _schedule()
    s.push([7, 8, 1, 2, 3])
    s.push([2, 3])  # already queued: ignored
    assert s.queued == 5
    assert [(b.first, b.last) for b in _take_all(s, A, "a")] == [(1, 3), (7, 8)]
    assert s.lowest_queued() is None and s.waiting() == []


def test_taken_blocks_are_in_flight_until_returned() -> None:
    s = _queue(range(1, 11))
    batch = s.take(A, "a", EVERYTHING, 0.0)
    assert batch == Batch(1, 10)
    assert s.in_flight() == {"a": [(1, 10)]} and s.waiting() == []
    s.returned("a", batch)
    assert s.in_flight() == {}


# ---- serving windows: head and eth/69 range -----------------------------------------------------


def test_serving_window_is_cut_by_head_and_served_range() -> None:
    assert serving_window(100, 200, None, None) == (100, 200)
    assert serving_window(100, 200, 150, None) == (100, 150)
    assert serving_window(100, 200, None, (120, 180)) == (120, 180)
    assert serving_window(100, 200, 190, (120, 180)) == (120, 180)  # it serves less than it holds
    lo, hi = serving_window(100, 200, 50, None)  # far behind: empty
    assert hi < lo
    lo, hi = serving_window(100, 200, 300, (8192, 9000))  # its history below 8,192 has expired: empty
    assert hi < lo


def test_a_range_update_above_the_probed_head_widens_the_window() -> None:
    """The head is probed once, at connect; a BlockRangeUpdate since says the peer's chain grew."""
    assert serving_top(170, (120, 180)) == 180 and serving_top(170, None) == 170 and serving_top(None, None) is None
    assert serving_window(100, 200, 170, (120, 180)) == (120, 180)
    s = _queue(range(100, 201))
    assert _take_all(s, A, "a", serving_window(100, 200, 150, (0, 150))) == [Batch(100, 150)]
    assert _take_all(s, A, "a", serving_window(100, 200, 150, (0, 175))) == [Batch(151, 175)]


def test_a_peer_only_gets_blocks_inside_its_window() -> None:
    s = _queue(range(1, 101))
    assert s.take(A, "a", (40, 60), 0.0) == Batch(40, 60)
    assert s.take(A, "a", (40, 60), 0.0) is None  # nothing left in its window
    assert s.take(B, "b", (101, 200), 0.0) is None  # its window covers none of the waiting blocks
    assert s.take(C, "c", (200, 100), 0.0) is None  # empty window (head below the range)
    assert s.take(C, "c", EVERYTHING, 0.0) == Batch(1, 39)  # the rest stays for a peer that serves it
    assert s.take(C, "c", EVERYTHING, 0.0) == Batch(61, 100)


# ---- AIMD -------------------------------------------------------------------------------------


def test_aimd_grows_by_a_step_and_halves_within_its_bounds() -> None:
    s = _schedule(initial_batch=128, max_batch=256)
    assert s.limit(A) == 128
    assert s.adjust(A, complete=True) == 128 + AIMD_STEP
    assert s.adjust(A, complete=True) == 256  # capped at max_batch
    assert s.adjust(A, complete=True) == 256
    assert s.adjust(A, complete=False) == 128
    for _ in range(10):
        s.adjust(A, complete=False)
    assert s.limit(A) == MIN_BATCH
    assert s.limit(B) == 128  # per peer


def test_the_limit_decides_the_next_batch_and_is_seeded_from_the_cache() -> None:
    seeded = {A: 16}
    s = _queue(range(1, 101), limits=seeded)
    assert s.take(A, "a", EVERYTHING, 0.0) == Batch(1, 16)
    s.adjust(A, complete=True)
    assert seeded[A] == 16 + AIMD_STEP  # the dict passed in is updated in place (kept in the peer cache)
    assert s.take(A, "a", EVERYTHING, 0.0) == Batch(17, 16 + 16 + AIMD_STEP)


def test_large_blocks_cut_batches_to_the_byte_budget() -> None:
    s = _queue(range(1, 1001), initial_batch=512)
    s.delivered(10, 10 * 1024 * 1024)  # 1 MiB blocks seen so far
    assert s.limit(A) == MAX_BATCH_BYTES // (1024 * 1024) == 16
    assert s.take(A, "a", EVERYTHING, 0.0) == Batch(1, 16)
    s.delivered(1, 1024 * 1024 * 1024)  # huge: never below the floor
    assert s.limit(A) == MIN_BATCH


# ---- back-off, retry elsewhere, escalation, attempts ----------------------------------------------


def test_a_block_a_peer_did_not_deliver_goes_to_another_peer_first() -> None:
    s = _queue(range(1, 11))
    batch = s.take(A, "a", EVERYTHING, 0.0)
    assert batch is not None
    s.returned("a", batch)
    failure = s.failed([5], "a", backoff=1.0, now=0.0)
    assert failure.dropped == () and failure.escalated == 0
    assert s.take(A, "a", EVERYTHING, 0.5) is None  # backed off from "a" until t=1.0
    assert s.take(B, "b", EVERYTHING, 0.5) == Batch(5, 5)


def test_back_off_expires_with_time_and_doubles_per_attempt() -> None:
    s = _queue([5])
    s.take(A, "a", EVERYTHING, 0.0)
    s.failed([5], "a", backoff=1.0, now=0.0)  # attempt 1: 1 s
    assert s.take(A, "a", EVERYTHING, 0.999) is None
    assert s.take(A, "a", EVERYTHING, 1.0) == Batch(5, 5)
    s.failed([5], "a", backoff=1.0, now=1.0)  # attempt 2: 2 s
    assert s.take(A, "a", EVERYTHING, 2.5) is None
    assert s.take(A, "a", EVERYTHING, 3.0) == Batch(5, 5)


def test_a_backed_off_block_splits_a_batch_around_it() -> None:
    s = _queue(range(1, 11))
    s.take(A, "a", EVERYTHING, 0.0)
    s.failed(range(1, 11), "a", backoff=1.0, now=0.0)
    s.take(B, "b", (5, 5), 0.0)
    s.failed([5], "b", backoff=1.0, now=0.0)
    # "b" may not retry 5 yet, so it gets the runs on each side of it.
    assert [(b.first, b.last) for b in _take_all(s, B, "b", EVERYTHING, 0.5)] == [(1, 4), (6, 10)]


def test_a_block_failed_on_several_peers_is_escalated_and_tried_first_alone() -> None:
    s = _queue(range(1, 21))
    for key, name in ((A, "a"), (B, "b"), (C, "c")):
        s.push([7])
        batch = s.take(key, name, (7, 7), 0.0)
        assert batch == Batch(7, 7)
        s.returned(name, batch)
        failure = s.failed([7], name, backoff=1.0, now=0.0)
    assert failure.escalated == 1 and s.escalations == 1 and s.escalated_waiting == 1
    assert ESCALATE_AFTER == 3
    # A fourth peer takes it first, alone, before the lower blocks in the queue.
    assert s.take(D, "d", EVERYTHING, 0.0) == Batch(7, 7, escalated=True)
    assert s.take(D, "d", EVERYTHING, 0.0) == Batch(1, 6)
    # An escalated block also waits out the back-off of the peers that failed it.
    s.failed([7], "d", backoff=1.0, now=0.0)
    assert s.take(A, "a", (7, 7), 0.5) is None
    assert s.take(A, "a", (7, 7), 100.0) == Batch(7, 7, escalated=True)


def test_a_block_is_given_up_on_after_max_attempts() -> None:
    s = _queue([3, 4])
    now = 0.0
    for attempt in range(1, MAX_ATTEMPTS + 1):
        batch = s.take(A, "a", (3, 3), now)
        assert batch is not None and batch.first == 3, attempt
        s.returned("a", batch)
        failure = s.failed([3], "a", backoff=1.0, now=now)
        now += 10_000.0  # past any back-off
    assert failure.dropped == (3,)
    assert s.take(A, "a", (3, 3), now) is None and s.waiting() == [4]
    assert not s.finish(1) and s.finish(1)  # the driver finishes 3 (missing) and then 4 (stored)


# ---- peers banned, closed or answering in part mid-batch ------------------------------------------


def test_a_banned_peer_gets_nothing_and_its_batch_goes_to_another() -> None:
    s = _queue(range(1, 51))
    batch = s.take(A, "a", EVERYTHING, 0.0)
    assert batch == Batch(1, 50)
    s.ban("a")  # caught on another chain while the batch was in flight
    s.returned("a", batch)
    s.failed(batch.numbers, "a", backoff=2.0, now=0.0)
    assert s.banned("a") and not s.banned("b")
    assert s.take(A, "a", EVERYTHING, 100.0) is None
    assert s.take(B, "b", EVERYTHING, 0.0) == Batch(1, 50)


def test_a_closed_peers_failed_batch_is_fetched_elsewhere_and_halves_its_limit() -> None:
    s = _queue(range(1, 201))
    batch = s.take(A, "a", EVERYTHING, 0.0)
    assert batch == Batch(1, 128)
    s.returned("a", batch)  # the session broke: the batch failed whole
    assert s.adjust(A, complete=False) == 64
    s.failed(batch.numbers, "a", backoff=2.0, now=0.0)
    assert s.take(B, "b", EVERYTHING, 0.0) == Batch(1, 128)
    assert s.take(A, "a", EVERYTHING, 0.0) == Batch(129, 192)  # only blocks it has not failed, at its halved limit


def test_a_partial_answer_requeues_only_the_blocks_not_delivered() -> None:
    s = _queue(range(1, 11))
    batch = s.take(A, "a", EVERYTHING, 0.0)
    assert batch == Batch(1, 10)
    s.returned("a", batch)
    s.delivered(6, 6000)  # blocks 1..6 verified and handed to the writer
    assert s.finish(6) is False
    s.adjust(A, complete=False)
    s.failed([7, 8, 9, 10], "a", backoff=1.0, now=0.0)
    assert s.waiting() == [7, 8, 9, 10]
    assert s.take(B, "b", EVERYTHING, 0.0) == Batch(7, 10)
    assert s.finish(4) is True and s.done


# ---- no peer can serve: the end condition --------------------------------------------------------


def test_blocks_no_window_covers_are_given_up_after_the_timeout_then_at_once() -> None:
    s = _queue(range(100, 111), give_up_after=30.0)
    behind = [("a", (0, 50)), ("b", (200, 100))]  # one peer far behind, one with an empty window
    assert s.unservable(behind, now=1000.0) is None  # the clock starts
    assert s.unservable(behind, now=1029.9) is None
    got = s.unservable(behind, now=1030.0)
    assert got == GiveUp(tuple(range(100, 111)), first=True)
    s.give_up(got.numbers)
    assert s.waiting() == [] and s.finish(len(got.numbers))
    # Blocks proven later that no peer serves either go at once (reported, but not as a new stall).
    s.push([120])
    assert s.unservable(behind, now=1031.0) == GiveUp((120,), first=False)


def test_no_peer_at_all_gives_every_waiting_block_up() -> None:
    s = _queue([5, 6, 9])
    for key, name in ((A, "a"), (B, "b"), (C, "c")):
        batch = s.take(key, name, (9, 9), 0.0)
        assert batch is not None
        s.returned(name, batch)
        s.failed(batch.numbers, name, backoff=1.0, now=0.0)  # the third time: escalated, waiting too
    assert s.escalated_waiting == 1 and s.queued == 2
    assert s.unservable([], now=0.0) is None
    got = s.unservable([], now=30.0)
    assert got is not None and got.numbers == (5, 6, 9)
    s.give_up(got.numbers)
    assert s.waiting() == [] and s.escalated_waiting == 0 and s.take(A, "a", EVERYTHING, 31.0) is None


def test_a_window_covering_a_waiting_block_resets_the_clock() -> None:
    s = _queue(range(100, 111), give_up_after=30.0)
    behind = ("a", (0, 50))
    assert s.unservable([behind], now=0.0) is None
    assert s.unservable([behind, ("b", (105, 300))], now=20.0) is None  # a peer that serves 105.. came
    assert s.unservable([behind], now=40.0) is None  # it left: the clock starts again at 40
    assert s.unservable([behind], now=69.0) is None
    assert s.unservable([behind], now=70.0) is not None


def test_nothing_is_given_up_while_a_batch_is_in_flight_or_nothing_waits() -> None:
    s = _queue(range(1, 11))
    batch = s.take(A, "a", EVERYTHING, 0.0)
    assert batch is not None
    assert s.unservable([], now=0.0) is None  # nothing waits
    s.push([20])
    assert s.unservable([], now=0.0) is None and s.unservable([], now=1e6) is None  # in flight
    s.returned("a", batch)
    assert s.unservable([], now=1e6) is None  # the clock starts only now
    assert s.unservable([], now=1e6 + 30) == GiveUp((20,), first=True)


def test_blocks_below_every_peers_earliest_are_given_up_after_the_short_grace() -> None:
    """Expired history: every live peer announced a range starting above the waiting blocks."""
    s = _queue(range(1, 101), expired_after=3.0, give_up_after=30.0)
    s.push([9000])
    assert s.expired([8192, 8192, 10_000], now=100.0) is None  # the clock starts
    assert s.expired([8192, 8192, 10_000], now=102.9) is None
    got = s.expired([8192, 10_000, 8192], now=103.0)
    assert got == GiveUp(tuple(range(1, 101)), first=True)  # 9,000 is served: it stays
    s.give_up(got.numbers)
    assert s.waiting() == [9000]
    s.push([5])  # proven later: given up on at once, not as a new stall
    assert s.expired([8192], now=104.0) == GiveUp((5,), first=False)


def test_expired_blocks_wait_while_some_peer_may_serve_them() -> None:
    s = _queue(range(1, 11), expired_after=3.0)
    assert s.expired([8192, None], now=0.0) is None  # an eth/68 peer announces no range: it may
    assert s.expired([8192, 0], now=10.0) is None  # an archive node
    assert s.expired([], now=20.0) is None  # no peer at all: unservable()'s business
    assert s.expired([8192], now=30.0) is None  # the clock starts here
    assert s.expired([8192, 5], now=32.0) is None  # a peer holding 5.. joined: the clock starts again
    assert s.expired([8192, 5], now=34.9) is None
    got = s.expired([8192, 5], now=35.0)
    assert got == GiveUp((1, 2, 3, 4), first=True)
    s.give_up(got.numbers)
    assert s.expired([8192, 5], now=36.0) is None  # 5..10: that peer's to fetch
    assert s.expired([8192], now=36.0) == GiveUp(tuple(range(5, 11)), first=False)  # it left: at once
    assert s.expired([8192, 0], now=37.0) is None and s.expired([8192], now=37.0) is None  # one came: wait again


def test_expired_blocks_include_escalated_ones() -> None:
    s = _queue([3, 4], expired_after=1.0)
    for key, name in ((A, "a"), (B, "b"), (C, "c")):
        batch = s.take(key, name, (3, 3), 0.0)
        assert batch is not None
        s.returned(name, batch)
        s.failed(batch.numbers, name, backoff=0.0, now=0.0)
    assert s.escalated_waiting == 1
    assert s.expired([100], now=0.0) is None
    got = s.expired([100], now=1.0)
    assert got == GiveUp((3, 4), first=True)
    s.give_up(got.numbers)
    assert s.waiting() == [] and s.escalated_waiting == 0


# ---- the driver: resumption, on a real store with no peer -----------------------------------------


class SilentPeer(FakePeer):
    """A peer far behind that has none of the headers asked for (answers every request empty)."""

    async def request_headers(
        self, origin: int | bytes, amount: int, *, skip: int = 0, reverse: bool = False, timeout: float | None = None
    ) -> list[bytes]:
        return []


def test_a_range_already_stored_is_skipped_without_any_peer(mainnet_store_path: Path) -> None:
    with BlockStore(mainnet_store_path, readonly=True) as store:
        stats = asyncio.run(RangeFetcher(lambda: [], store, 100, 199).run())
    assert stats.skipped_present == 100 and stats.missing == [] and stats.batches == 0


@pytest.mark.parametrize("behind", [False, True])
def test_only_missing_blocks_are_wanted_and_ended_missing_when_no_peer_serves(
    mainnet_store_path: Path, tmp_path: Path, behind: bool
) -> None:
    """Blocks 16,380..16,383 are stored; 16,384..16,389 are not. With no peer (or one far behind, a
    fake: only what the scheduler reads of it matters) the fetch ends with exactly those missing."""
    path = tmp_path / "copy.db"
    with sqlite3.connect(mainnet_store_path) as src, sqlite3.connect(path) as dst:
        src.backup(dst)
    peer = SilentPeer(head_number=10)
    peers = [peer] if behind else []
    with BlockStore(path) as store:
        fetcher = RangeFetcher(
            lambda: peers, store, 16_380, 16_389, anchors=Anchors(), peer_wait=0.2, stall_timeout=0.5
        )
        stats = asyncio.run(fetcher.run())
    assert stats.skipped_present == 4
    assert stats.missing == list(range(16_384, 16_390)) and stats.batches == 0
    assert peer.faults == [] and peer.disconnects == []


def test_blocks_every_peer_keeps_leaving_out_are_unservable_too() -> None:
    """A peer whose window holds the blocks but whose answers keep leaving them out (pruned bodies,
    say) no longer counts as serving them: with no other peer they end missing after the timeout,
    not after MAX_ATTEMPTS ever longer back-offs. Once is not enough (an answer cut short)."""
    s = _queue(range(1, 11), give_up_after=30.0)
    peers = [("a", EVERYTHING)]
    now = 0.0
    for answer in range(1, UNSERVED_AFTER + 1):
        batch = s.take(A, "a", EVERYTHING, now)
        assert batch is not None and batch.last == 10, answer
        s.returned("a", batch)
        if answer == 1:
            s.delivered(4, 4000)  # 1..4 came the first time
        s.failed(range(5, 11), "a", backoff=1.0, now=now, answered=True)
        if answer < UNSERVED_AFTER:
            assert s.unservable(peers, now=now + 1000) is None  # it may still serve them
        now += 100.0
    assert s.unservable(peers, now=now) is None  # the clock starts
    # A peer that has not been asked yet may still serve them.
    assert s.unservable([*peers, ("b", (8, 8))], now=now + 40) is None
    assert s.unservable(peers, now=now + 41) is None
    assert s.unservable(peers, now=now + 71) == GiveUp((5, 6, 7, 8, 9, 10), first=True)


def test_a_failed_batch_does_not_make_its_peer_unservable() -> None:
    """A timeout or a broken session says nothing about what the peer holds: it still counts."""
    s = _queue([5])
    batch = s.take(A, "a", EVERYTHING, 0.0)
    assert batch is not None
    s.returned("a", batch)
    s.failed(batch.numbers, "a", backoff=2.0, now=0.0)
    assert s.unservable([("a", EVERYTHING)], now=0.0) is None
    assert s.unservable([("a", EVERYTHING)], now=1e6) is None


def test_forgetting_a_block_drops_its_attempts_and_back_off() -> None:
    s = _queue([5, 6])
    for now in (0.0, 100.0):
        batch = s.take(A, "a", (5, 5), now)
        assert batch is not None
        s.returned("a", batch)
        s.failed(batch.numbers, "a", backoff=1.0, now=now, answered=True)
    s.forget([5])  # stored after all (another peer brought it): nothing about it is kept
    s.push([5])  # (were it ever queued again, it would start afresh)
    assert s.take(A, "a", (5, 5), 100.0) == Batch(5, 5)
    assert s.failed([5], "a", backoff=1.0, now=100.0).dropped == ()


def test_a_peer_is_not_asked_again_for_a_block_it_kept_leaving_out() -> None:
    s = _queue(range(1, 11))
    now = 0.0
    for _ in range(UNSERVED_AFTER):
        batch = s.take(A, "a", EVERYTHING, now)
        assert batch == Batch(1, 10)
        s.returned("a", batch)
        s.failed([1], "a", backoff=1.0, now=now, answered=True)  # 2..10 came, 1 never does
        s.push(range(2, 11))  # (as if 2..10 were left out by a transient cut and queued again)
        now += 1000.0
    assert s.take(A, "a", EVERYTHING, now) == Batch(2, 10)  # the rest, without block 1
    assert s.take(A, "a", EVERYTHING, now) is None
    assert s.take(B, "b", EVERYTHING, now) == Batch(1, 1)  # another peer still gets it


# ---- the driver's reading of an outcome: declined blocks vs lost ones ---------------------------


class BodiesFromStore(FakePeer):
    """Serves the real bodies of mainnet blocks from a store (a fake peer: this test is about how the
    range fetch reads a real ``fetch_payloads_for_peer`` outcome, not about the wire). ``mode``
    ``"short"`` answers only the first half of each request, ``"timeout"`` never answers."""

    def __init__(self, bodies: dict[bytes, bytes], mode: str) -> None:
        super().__init__(eth_version=69)
        self.bodies, self.mode = bodies, mode

    async def request_bodies(self, hashes: Sequence[bytes], *, timeout: float | None = None) -> list[bytes]:
        if self.mode == "timeout":
            raise RequestTimeout("did not answer bodies request within 0.01s")
        return [self.bodies[h] for h in hashes[: len(hashes) // 2]]


@pytest.mark.parametrize("mode", ["short", "timeout"])
def test_only_a_clean_short_answer_declines_blocks(mainnet_store_path: Path, mode: str) -> None:
    """Blocks a peer answered without count towards making it unservable for them; blocks lost to a
    timeout do not (the peer may hold them: it is only backed off)."""
    with BlockStore(mainnet_store_path, readonly=True) as store:
        blocks = list(store.canonical_blocks(1_000, 1_200))
    headers = [Header(b.header) for b in blocks]
    bodies = {b.hash: b.body for b in blocks if b.body is not None}
    peer = BodiesFromStore(bodies, mode)
    outcome = asyncio.run(fetch_payloads_for_peer(peer, 1_000, 1_200, headers=headers))
    assert outcome.missing_blocks  # blocks with bodies were not all delivered either way
    if mode == "short":
        assert outcome.faults == [] and outcome.payloads and declined(outcome)
    else:
        assert [f.kind for f in outcome.faults] == [FaultKind.TIMEOUT] and not declined(outcome)


# ---- bytes in flight (issue #23: a fetch with 24 peers must not pile up gigabytes) ---------------


def test_bytes_in_flight_stay_within_the_per_peer_and_total_bounds_by_construction() -> None:
    """24 peers with two workers each take batches, answer some, deliver blocks whose average size
    changes (so the estimate does): the reservations fit both bounds at every step, and workers
    are held back for room while blocks wait."""
    import random

    from ethp2p.sync import schedule as sched

    rng = random.Random(7)
    s = _queue(range(1, 200_001))
    peers = [(bytes([i + 1]) * 64, f"p{i}") for i in range(24)]
    flying: list[tuple[str, Batch]] = []
    refused = 0
    for _ in range(3000):
        key, name = rng.choice(peers)
        if len([b for n, b in flying if n == name]) < 2:
            batch = s.take(key, name, EVERYTHING, 0.0)
            if batch is not None:
                flying.append((name, batch))
            else:
                refused += 1
        if flying and rng.random() < 0.4:
            done_name, done = flying.pop(rng.randrange(len(flying)))
            s.returned(done_name, done)
            n = done.last - done.first + 1
            s.delivered(n, n * rng.choice([2_000, 50_000, 300_000, 1_500_000]))  # bytes per block vary
        total = sum(b.reserved for _, b in flying)
        assert total == s.reserved_total <= sched.MAX_INFLIGHT_BYTES
        for _, name in peers:
            mine = sum(b.reserved for n, b in flying if n == name)
            assert mine == s.reserved.get(name, 0) <= sched.MAX_PEER_INFLIGHT_BYTES
    assert refused and s.queued  # the bounds held workers back while blocks were waiting
    # Without the bounds, 48 workers with full batches would have 48 x MAX_BATCH_BYTES = 768 MiB in flight.
    assert 48 * MAX_BATCH_BYTES > sched.MAX_INFLIGHT_BYTES


def test_the_total_is_shared_among_the_peers_that_want_work_not_held_by_the_first_ones() -> None:
    """24 peers, two workers each, blocks of 210 kB (mainnet-shaped), every batch answered 2 s after
    it went out: with every batch reserved greedily, the first 8 peers held the whole 256 MiB in 32 MiB
    each and took the room back as each of their batches returned, so the other 16 never got a batch
    (on 4-10 Mbit/s links the fetch used 10 of 24 peers and 32% of link capacity). Now each peer's
    share is the total divided among the peers that want work, so every peer soon has a batch in
    flight, and none holds more than its share."""
    from ethp2p.sync import schedule as sched

    s = _queue(range(1, 1_000_001), start_peer_bytes=sched.START_PEER_INFLIGHT_BYTES)
    s.delivered(1, 210_000)
    peers = [(bytes([i + 1]) * 64, f"p{i}") for i in range(24)]
    flying: list[tuple[str, Batch]] = []
    served: set[str] = set()
    now = 0.0
    for step in range(60):
        now += 0.5
        while flying and flying[0][1].taken_at <= now - 2.0:  # answered 2 s after it went out
            done_name, done = flying.pop(0)
            s.returned(done_name, done, now, done.reserved)
        for key, name in peers:  # then every worker without a batch asks, in the same order each time
            while sum(1 for n, _ in flying if n == name) < 2 and (batch := s.take(key, name, EVERYTHING, now)):
                flying.append((name, batch))
                served.add(name)
        assert s.reserved_total <= sched.MAX_INFLIGHT_BYTES
        if step >= 10:
            # (a peer between batches, answered and not yet asking again, does not count meanwhile)
            assert max(s.reserved.values()) <= sched.MAX_INFLIGHT_BYTES // 20
            assert s.share("p0", now) <= sched.MAX_INFLIGHT_BYTES // 20
    assert served == {name for _, name in peers}
    # Peers that stop asking stop counting: after WAITING_FOR seconds one peer alone has its own
    # allowance, which its delivery rate gives (batches of ~5 MB in 2 s: ~2.5 MB/s, 8 s of it).
    for name, batch in flying:
        s.returned(name, batch)
    later = now + sched.WAITING_FOR + 1
    own = int(s.rates["p0"] * sched.INFLIGHT_SECONDS)
    assert s.share("p0", later) == s.allowance("p0") == own > sched.MAX_INFLIGHT_BYTES // 20


def test_what_a_peer_may_have_in_flight_follows_how_fast_its_batches_come_back() -> None:
    """A peer starts with START_PEER_INFLIGHT_BYTES; then it may have INFLIGHT_SECONDS of its delivery
    rate in flight (an exponentially weighted mean over its returned batches), within
    MIN_PEER_INFLIGHT_BYTES and the per-peer bound: a peer on a thin link holds a few seconds of its
    link, not 32 MiB that would take it half a minute; a peer that delivers nothing drops to the least."""
    from ethp2p.sync import schedule as sched

    s = _queue(range(1, 100_001), start_peer_bytes=sched.START_PEER_INFLIGHT_BYTES)
    s.delivered(1, 200_000)
    assert s.allowance("slow") == sched.START_PEER_INFLIGHT_BYTES
    first = s.take(A, "slow", EVERYTHING, 0.0)
    assert first is not None and first.reserved <= sched.START_PEER_INFLIGHT_BYTES // 2  # half: two at once
    s.returned("slow", first, 10.0, first.reserved)  # 10 s for it: a thin link
    rate = first.reserved / 10.0
    assert s.rates["slow"] == rate
    assert s.allowance("slow") == max(sched.MIN_PEER_INFLIGHT_BYTES, int(rate * sched.INFLIGHT_SECONDS))
    fast = s.take(B, "fast", EVERYTHING, 20.0)
    assert fast is not None
    s.returned("fast", fast, 20.05, fast.reserved)
    assert s.allowance("fast") == sched.MAX_PEER_INFLIGHT_BYTES  # loopback-fast: the per-peer bound
    for t in range(30, 60):  # "fast" now times out: nothing delivered, batch after batch
        b = s.take(B, "fast", EVERYTHING, float(t))
        assert b is not None
        s.returned("fast", b, t + 0.5, 0)
    assert s.allowance("fast") == sched.MIN_PEER_INFLIGHT_BYTES


def test_a_take_refused_for_room_leaves_the_queue_alone_and_says_whether_the_peer_wants_work() -> None:
    """Every returned batch wakes the workers refused for room, so a refused take must be cheap: it
    does not walk the queue (bench/schedule_take.py: 5.6 ms before for a peer whose window starts
    25,000 blocks above the lowest waiting one, 8 us now). Whether the peer counts as wanting work is
    told from the queue's lowest and highest blocks and the escalated ones."""
    s = _queue(range(1, 1001), peer_bytes=4 * 1024 * 1024, total_bytes=4 * 1024 * 1024)
    s.delivered(1, 1024 * 1024)
    assert s.take(A, "a", EVERYTHING, 0.0) is not None and s.take(A, "a", EVERYTHING, 0.0) is not None
    heap = list(s._todo)  # noqa: SLF001
    assert s.take(B, "b", (900, 5000), 1.0) is None and s.refused_for_room("b")
    assert s.share("c", 1.0) == 4 * 1024 * 1024 // 3  # a, b and c want work
    assert s.take(C, "c", (2000, 5000), 1.0) is None and not s.refused_for_room("c")  # nothing for it
    assert s.share("d", 1.0) == 4 * 1024 * 1024 // 3  # c does not count
    assert s._todo == heap  # noqa: SLF001  (untouched: not popped and pushed back)
    s.push([3000])
    assert s.take(C, "c", (2000, 5000), 1.0) is None and s.refused_for_room("c")  # now it may serve 3000


def test_a_peer_without_room_waits_and_a_single_huge_block_still_goes_out() -> None:
    s = _queue(range(1, 1001), peer_bytes=4 * 1024 * 1024, total_bytes=6 * 1024 * 1024)
    s.delivered(1, 1024 * 1024)  # 1 MiB blocks
    a1 = s.take(A, "a", EVERYTHING, 0.0)
    assert a1 == Batch(1, 2) and a1.reserved == 2 * 1024 * 1024  # a batch is half a peer's share
    a2 = s.take(A, "a", EVERYTHING, 0.0)
    assert a2 == Batch(3, 4)
    assert s.take(A, "a", EVERYTHING, 0.0) is None  # a's 4 MiB are used
    b = s.take(B, "b", EVERYTHING, 0.0)
    assert b == Batch(5, 5)  # b's share: the 6 MiB in all between a and b; half of it is 1.5 MiB
    c = s.take(C, "c", EVERYTHING, 0.0)
    assert c == Batch(6, 6)  # the last 1 MiB of the 6 in all
    assert s.take(D, "d", EVERYTHING, 0.0) is None
    for name, batch in (("a", a1), ("a", a2), ("b", b), ("c", c)):
        s.returned(name, batch)
    assert s.reserved_total == 0 and s.reserved == {}
    s.delivered(1, 100 * 1024 * 1024)  # the average is now ~50 MiB a block: more than either bound
    big = s.take(C, "c", EVERYTHING, 0.0)
    assert big == Batch(7, 7)  # nothing else in flight: one block goes out all the same
    assert s.take(A, "a", EVERYTHING, 0.0) is None
