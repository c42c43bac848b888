"""Serving roles of today's mainnet nodes, for simulated networks (``ethp2p serve`` testing options).

Not misbehaviour (that is :mod:`ethp2p.serve.adversary`): each role keeps to the eth protocol and
only changes *what* a node holds, the way real nodes differ.

* **expired history** (``expire_before=N``; Nethermind's pruned bodies and receipts, geth's
  ``--history.chain postmerge``): headers of every stored block are served, but bodies and receipts
  of blocks below ``N`` are not (an answer ends before the first of them, as for any block a node
  lacks), and eth/69+ announce ``max(N, first stored block)`` as the earliest block.
* **a growing chain** (``top``): the node's latest block starts at a given height and is raised
  by :meth:`ServedView.grow` (the server does it every few seconds, sending BlockRangeUpdate), as a
  syncing or following node's head moves; nothing above it is served, headers included.

:class:`ServedView` is a read-only view of a store with the reading methods the serving path uses
(:class:`~ethp2p.serve.handler.StoreHandler`, :func:`~ethp2p.serve.server.store_head`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # the CLI reads this module's bounds before it opens any store
    from ..store.blocks import StoredBlock

#: The longest answer delay (seconds) a node may simulate: beyond it every request times out anyway.
MAX_ANSWER_DELAY = 60.0
#: Bounds of the growth interval (seconds) and step (blocks).
MIN_GROW_EVERY = 0.05
MAX_GROW_EVERY = 3600.0
MAX_GROW_BY = 1 << 20
#: The growing role's defaults: a block every 12 s, as mainnet's slots.
GROW_EVERY = 12.0
GROW_BY = 1


class RoleError(ValueError):
    """A role that does not fit the store (a cut or a start above what it holds); the message says
    why, ``setting`` which one (``expire_before`` or ``grow_from``)."""

    def __init__(self, message: str, setting: str) -> None:
        super().__init__(message)
        self.setting = setting


class ReadableStore(Protocol):
    """The reading methods of a block store the serving path uses (a ``BlockStore`` or a view of one)."""

    @property
    def genesis_hash(self) -> bytes | None: ...

    def get_meta(self, key: str) -> bytes | None: ...

    def total_difficulty(self, number: int) -> int | None: ...

    def canonical_hash(self, number: int) -> bytes | None: ...

    def number_of(self, block_hash: bytes) -> int | None: ...

    def header_by_number(self, number: int) -> bytes | None: ...

    def header_by_hash(self, block_hash: bytes) -> bytes | None: ...

    def headers_by_numbers(self, numbers: Sequence[int]) -> list[bytes | None]: ...

    def body(self, block_hash: bytes) -> bytes | None: ...

    def receipts(self, block_hash: bytes) -> bytes | None: ...

    def block(self, block_hash: bytes) -> StoredBlock | None: ...

    def canonical_blocks(self, start: int, end: int) -> Iterator[StoredBlock]: ...

    def contiguous_range(self) -> tuple[int, int] | None: ...

    def block_range(self) -> tuple[int, int] | None: ...

    def longest_run(self) -> tuple[int, int] | None: ...


@dataclass
class RoleStats:
    """What the expiry role declined: requests for bodies or receipts that reached a block below the
    cut (each answer ends there, so a request counts once)."""

    expired_body_requests: int = 0
    expired_receipt_requests: int = 0


class ServedView:
    """A read-only view of ``store`` as a node with these roles holds it (see the module docstring).

    ``expire_before``: bodies and receipts below it are not served (0: none expired).
    ``top``: the highest block served (None: whatever the store holds); :meth:`grow` raises it.
    Both must fit the store's longest run of blocks (the run :func:`store_head` announces), or
    :class:`RoleError` says why.
    """

    def __init__(self, store: ReadableStore, *, expire_before: int = 0, top: int | None = None) -> None:
        self.real = store
        self.expire_before = expire_before
        self.top = top
        self.stats = RoleStats()
        run = store.longest_run()
        have = f"blocks {run[0]}..{run[1]}" if run else "no blocks"
        if expire_before < 0:
            raise RoleError(f"the expiry cut must be at least 0, got {expire_before}", "expire_before")
        if expire_before and (run is None or expire_before > run[1]):
            raise RoleError(f"expiry cut {expire_before} is above the store's head (it holds {have})", "expire_before")
        if top is not None:
            if run is None or not run[0] <= top <= run[1]:
                raise RoleError(f"start of growth {top} is outside the store's longest run ({have})", "grow_from")
            if top < expire_before:
                raise RoleError(f"start of growth {top} is below the expiry cut {expire_before}", "grow_from")

    # ---- growth -------------------------------------------------------------------------------

    def store_top(self) -> int | None:
        """The top of the store's longest run (what the growth moves towards)."""
        run = self.real.longest_run()
        return run[1] if run else None

    def grow(self, blocks: int) -> bool:
        """Raise the top by ``blocks``, at most to the store's top (then the cap is lifted: the view
        follows the store). Returns True while there is more to grow."""
        if self.top is None:
            return False
        hi = self.store_top()
        if hi is None or self.top + blocks >= hi:
            self.top = None
            return False
        self.top += blocks
        return True

    # ---- what is served -----------------------------------------------------------------------

    def _above_top(self, number: int) -> bool:
        return self.top is not None and number > self.top

    def _served_number(self, block_hash: bytes) -> int | None:
        n = self.real.number_of(block_hash)
        return None if n is None or self._above_top(n) else n

    @property
    def genesis_hash(self) -> bytes | None:
        """The store's genesis."""
        return self.real.genesis_hash

    def get_meta(self, key: str) -> bytes | None:
        """The store's metadata."""
        return self.real.get_meta(key)

    def total_difficulty(self, number: int) -> int | None:
        """As recorded in the store, for blocks not above the top."""
        return None if self._above_top(number) else self.real.total_difficulty(number)

    def canonical_hash(self, number: int) -> bytes | None:
        """The canonical hash at ``number`` (None above the top)."""
        return None if self._above_top(number) else self.real.canonical_hash(number)

    def number_of(self, block_hash: bytes) -> int | None:
        """The number of a served canonical block with this hash."""
        return self._served_number(block_hash)

    def header_by_number(self, number: int) -> bytes | None:
        """The canonical header at ``number``: expired blocks keep theirs; none above the top."""
        return None if self._above_top(number) else self.real.header_by_number(number)

    def header_by_hash(self, block_hash: bytes) -> bytes | None:
        """A header by hash (canonical ones above the top are not served)."""
        raw = self.real.header_by_hash(block_hash)
        if raw is None or self.top is None:
            return raw
        n = self.real.number_of(block_hash)
        return None if n is not None and n > self.top else raw

    def headers_by_numbers(self, numbers: Sequence[int]) -> list[bytes | None]:
        """Canonical headers for each number (None where missing or above the top), in order."""
        if self.top is None:
            return self.real.headers_by_numbers(numbers)
        below = [n for n in numbers if n <= self.top]
        got = dict(zip(below, self.real.headers_by_numbers(below), strict=True)) if below else {}
        return [got.get(n) for n in numbers]

    def _withheld(self, block_hash: bytes, kind: str) -> bool:
        """Whether the body or receipts (``kind``) of this block are not served: it is expired (counted
        in :attr:`stats`) or above the top. A block the store does not know is left to the store."""
        if not self.expire_before and self.top is None:
            return False
        n = self.real.number_of(block_hash)
        if n is None:
            return False
        if n < self.expire_before:
            if kind == "bodies":
                self.stats.expired_body_requests += 1
            else:
                self.stats.expired_receipt_requests += 1
            return True
        return self._above_top(n)

    def body(self, block_hash: bytes) -> bytes | None:
        """The stored body, unless the block is expired or above the top."""
        return None if self._withheld(block_hash, "bodies") else self.real.body(block_hash)

    def receipts(self, block_hash: bytes) -> bytes | None:
        """The stored receipts (eth/69 form), unless the block is expired or above the top."""
        return None if self._withheld(block_hash, "receipts") else self.real.receipts(block_hash)

    def block(self, block_hash: bytes) -> StoredBlock | None:
        """A served block by hash (an expired one without body and receipts; none above the top)."""
        blk = self.real.block(block_hash)
        if blk is None or self._above_top(blk.number):
            return None
        return _stripped(blk) if blk.number < self.expire_before else blk

    def canonical_blocks(self, start: int, end: int) -> Iterator[StoredBlock]:
        """Served canonical blocks with start <= number <= end, in order (expired ones without body
        and receipts)."""
        if self.top is not None:
            end = min(end, self.top)
        for blk in self.real.canonical_blocks(start, end):
            yield _stripped(blk) if blk.number < self.expire_before else blk

    def _clip(self, rng: tuple[int, int] | None) -> tuple[int, int] | None:
        """A run of the store as served in full: from the expiry cut, up to the top."""
        if rng is None:
            return None
        lo, hi = max(rng[0], self.expire_before), rng[1] if self.top is None else min(rng[1], self.top)
        return (lo, hi) if lo <= hi else None

    def contiguous_range(self) -> tuple[int, int] | None:
        """The store's first run of consecutive blocks, as served in full."""
        return self._clip(self.real.contiguous_range())

    def block_range(self) -> tuple[int, int] | None:
        """(lowest, highest) served in full."""
        return self._clip(self.real.block_range())

    def longest_run(self) -> tuple[int, int] | None:
        """The run announced (eth/69 earliest..latest): the store's longest, from the expiry cut, up
        to the top."""
        return self._clip(self.real.longest_run())


def _stripped(blk: StoredBlock) -> StoredBlock:
    """An expired block as served: its header only."""
    return dataclasses.replace(blk, body=None, receipts=None)
