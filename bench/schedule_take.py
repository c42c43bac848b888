"""Cost of the range fetch scheduler's ``take`` when the bytes in flight are full (pure logic, one core).

Every returned batch wakes the workers that were refused for room, and each asks again, so a
refused ``take`` runs often. With MAX_PROVEN_AHEAD (32,768) proven blocks waiting and the total in
flight held by other peers, this times, best of 3 rounds of 200 calls each:

* a refused take for a peer whose window starts 25,000 blocks above the lowest waiting one (an
  eth/69 peer whose history starts there): it must not walk the queue to see that it wants work;
* a refused take for a peer whose window covers the queue;
* a batch returned and a take that hands one out in its room.

Run:  .venv/bin/python bench/schedule_take.py
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ethp2p.sync.range import MAX_PROVEN_AHEAD  # noqa: E402
from ethp2p.sync.schedule import Batch, Schedule  # noqa: E402

EVERYTHING = (0, 10**9)


def _best_us(call: Callable[[], object], calls: int = 200, rounds: int = 3) -> float:
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(calls):
            call()
        best = min(best, (time.perf_counter() - t) / calls)
    return best * 1e6


def main() -> None:
    s = Schedule(give_up_after=1e9)
    s.push(range(MAX_PROVEN_AHEAD))
    s.delivered(1, 200_000)  # mainnet-shaped blocks
    flying: list[tuple[int, Batch]] = []
    while (b := s.take(_key(len(flying)), f"peer{len(flying)}", EVERYTHING, 0.0)) is not None:
        flying.append((len(flying), b))
    print(
        f"bench/schedule_take.py: {s.queued:,} blocks waiting, {s.reserved_total >> 20} MiB in flight "
        f"(the total: full) in {len(flying)} batches"
    )
    lo = (s.lowest_queued() or 0) + 25_000
    late = _best_us(lambda: s.take(b"\xff" * 8, "late", (lo, 10**9), 0.0))
    assert s.refused_for_room("late")
    print(f"refused take, window 25,000 above the lowest waiting block: {late:,.1f} us")
    covering = _best_us(lambda: s.take(b"\xfe" * 8, "all", EVERYTHING, 0.0))
    print(f"refused take, window covering the queue: {covering:,.1f} us")

    def cycle() -> None:  # the oldest batch comes back and its worker asks again
        i, batch = flying.pop(0)
        s.returned(f"peer{i}", batch)
        got = s.take(_key(i), f"peer{i}", EVERYTHING, 0.0)
        assert got is not None
        flying.append((i, got))

    print(f"a batch returned, then its peer's take that hands one out: {_best_us(cycle, calls=50):,.1f} us")


def _key(i: int) -> bytes:
    return i.to_bytes(8, "big")


if __name__ == "__main__":
    main()
