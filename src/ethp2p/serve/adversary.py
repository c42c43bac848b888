"""Misbehaving serving peers, **for tests only**.

A :class:`HistoryServer` given ``misbehave=KIND`` (or ``ethp2p serve --misbehave KIND``)
breaks the protocol in exactly one way, so the fetch side can be tested against
real sockets and real data. Nothing here is used by the normal serving path.

``fork`` is the one that keeps to the protocol: it serves a :class:`ForkedStore`, a
self-consistent fork of its store from a given block on (every root and parent link
valid, same genesis), so only an anchor (a checkpoint or an accumulator root) tells
it from the canonical chain.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import os
from collections.abc import Callable, Iterable, Iterator, Sequence

from .. import rlp
from ..chain.header import EXTRA_DATA, PARENT_HASH
from ..crypto.keccak import keccak
from ..eth import codec as eth_codec
from ..eth import messages as m
from ..eth.forkid import ForkId
from ..peers.eth_peer import EthPeer, Misconduct
from ..rlpx import snappy
from ..store.blocks import BlockStore, StoredBlock
from .handler import StoreHandler

#: How long the "slow" adversary waits before answering (longer than the 4 s default timeout).
SLOW_DELAY = 6.0


class Misbehaviour(enum.Enum):
    """One way to break the eth protocol."""

    SHORT = "short"  # answers with the first half of what it has
    EMPTY = "empty"  # answers every request with an empty list
    SILENT = "silent"  # never answers
    SLOW = "slow"  # answers after SLOW_DELAY seconds
    BAD_BODIES = "bad-bodies"  # bodies whose transactions don't match the header's roots
    BAD_RECEIPTS = "bad-receipts"  # receipt lists that don't match the receipts root
    WRONG_HEADER_NUMBERS = "wrong-header-numbers"  # headers starting one block later than asked
    BROKEN_HEADER_LINKS = "broken-header-links"  # a header in the middle replaced by a non-linking one
    TOO_MANY = "too-many"  # more items than asked
    OVERSIZED = "oversized"  # a message that decompresses beyond 16 MiB
    GARBAGE_FRAME = "garbage-frame"  # random bytes instead of a frame
    DISCONNECT_MID_RESPONSE = "disconnect-mid-response"  # half a frame, then the TCP stream closes
    WRONG_GENESIS = "wrong-genesis"  # Status names another genesis
    BAD_FORK_ID = "bad-fork-id"  # Status carries a fork id of no known chain
    LYING_HEAD = "lying-head"  # Status claims a head far above what it can serve
    TRUNCATE_EVERY_RECEIPTS = "truncate-receipts"  # eth/70: every Receipts answer cut, lastBlockIncomplete set
    OMIT_ONE = "omit-one"  # never serves the body of one block (the first with a body from block 1,000 on)
    FORK = "fork"  # serves a self-consistent fork of its store from a given block on (see ForkedStore)


def status_transform(kind: Misbehaviour) -> Callable[[m.Status], m.Status] | None:
    """The Status rewrite for the Status-level misbehaviours (None for the others)."""
    if kind is Misbehaviour.WRONG_GENESIS:
        return lambda s: dataclasses.replace(s, genesis_hash=b"\x66" * 32)
    if kind is Misbehaviour.BAD_FORK_ID:
        return lambda s: dataclasses.replace(s, fork_id=ForkId(b"\xde\xad\xbe\xef", 0))
    if kind is Misbehaviour.LYING_HEAD:

        def lie(s: m.Status) -> m.Status:
            fake = os.urandom(32)
            if isinstance(s, m.StatusV69):
                return dataclasses.replace(s, latest_block=s.latest_block + 1_000_000, latest_hash=fake)
            return dataclasses.replace(s, head_hash=fake, total_difficulty=s.total_difficulty * 1000)

        return lie
    return None


#: The misbehaviours :meth:`AdversarialHandler.serve_request` acts on (at the connection, not in the data).
CONNECTION_LEVEL = frozenset(
    {
        Misbehaviour.SILENT,
        Misbehaviour.SLOW,
        Misbehaviour.OVERSIZED,
        Misbehaviour.GARBAGE_FRAME,
        Misbehaviour.DISCONNECT_MID_RESPONSE,
    }
)


def misconduct(kind: Misbehaviour, handler: object) -> Misconduct | None:
    """The session-level part of ``kind`` for :meth:`EthPeer.accept` (None if it has none):
    its Status rewrite, and ``handler``'s :meth:`AdversarialHandler.serve_request` for the
    connection-level kinds."""
    rewrite = status_transform(kind)
    hook = handler.serve_request if isinstance(handler, AdversarialHandler) and kind in CONNECTION_LEVEL else None
    if rewrite is None and hook is None:
        return None
    return Misconduct(rewrite_status=rewrite, serve_request=hook)


def _tamper_list_item(raw: bytes) -> bytes:
    """Flip a byte inside the last element of an RLP list (keeps it decodable as RLP)."""
    items = [bytes(x) for x in rlp.split_list(raw)]
    if not items:
        return raw
    last = bytearray(items[-1])
    last[-1] ^= 0x01
    items[-1] = bytes(last)
    return rlp.encode_raw_list(items)


class AdversarialHandler(StoreHandler):
    """A :class:`StoreHandler` that misbehaves in one way."""

    def __init__(self, store, kind: Misbehaviour, **kw) -> None:
        super().__init__(store, **kw)
        self.kind = kind

    # ---- data-level misbehaviour ------------------------------------------------------------

    def block_headers(self, request: m.GetBlockHeaders) -> list[bytes]:
        k = self.kind
        if k is Misbehaviour.WRONG_HEADER_NUMBERS and isinstance(request.origin, int):
            request = dataclasses.replace(request, origin=request.origin + 1)
        out = super().block_headers(request)
        if k is Misbehaviour.BROKEN_HEADER_LINKS and len(out) >= 3:
            mid = len(out) // 2
            other = self.store.header_by_number(int.from_bytes(rlp.split_list(out[mid])[8][1:], "big") + 7)
            if other is not None:
                # Same position count, but a header from elsewhere: numbers and links break.
                out[mid] = other
        return self._shape(out, request.amount)

    def _omitted(self) -> bytes | None:
        if not hasattr(self, "_omit"):
            self._omit = None
            for blk in self.store.canonical_blocks(1000, 1_000_000):
                if blk.body is not None and blk.body not in (b"\xc2\xc0\xc0", b"\xc3\xc0\xc0\xc0"):
                    self._omit = blk.hash
                    self.omitted_number = blk.number
                    break
        return self._omit

    def block_bodies(self, hashes: Sequence[bytes]) -> list[bytes]:
        if self.kind is Misbehaviour.OMIT_ONE:
            omit = self._omitted()
            if omit is not None and omit in hashes:
                hashes = hashes[: list(hashes).index(omit)]  # the answer ends just before it, every time
        out = super().block_bodies(hashes)
        if self.kind is Misbehaviour.BAD_BODIES:
            out = [_tamper_body(b) for b in out]
        return self._shape(out, len(hashes))

    def receipts(self, hashes: Sequence[bytes], version: int, first_index: int) -> tuple[list[bytes], bool]:
        if self.kind is Misbehaviour.TRUNCATE_EVERY_RECEIPTS and version >= 70:
            lists, _ = super().receipts(hashes[:1], version, first_index)
            if not lists:
                return [], False
            items = rlp.split_list(lists[0])
            if len(items) <= 1:
                return lists, False
            half = max(1, len(items) // 2)
            return [rlp.encode_raw_list([bytes(x) for x in items[:half]])], True
        lists, incomplete = super().receipts(hashes, version, first_index)
        if self.kind is Misbehaviour.BAD_RECEIPTS:
            lists = [_tamper_receipts(x) for x in lists]
        return self._shape(lists, len(hashes)), incomplete

    def _shape(self, out: list[bytes], asked: int) -> list[bytes]:
        k = self.kind
        if k is Misbehaviour.SHORT:
            return out[: len(out) // 2] if len(out) > 1 else out
        if k is Misbehaviour.EMPTY:
            return []
        if k is Misbehaviour.TOO_MANY and out:
            return out + out[: asked + 1]
        return out

    # ---- connection-level misbehaviour ------------------------------------------------------

    async def serve_request(self, peer: EthPeer, msg: m.GetBlockHeaders | m.GetBlockBodies | m.GetReceipts) -> bool:
        """The :attr:`Misconduct.serve_request` hook: runs before ``peer`` answers; True means "handled here"."""
        k = self.kind
        if k is Misbehaviour.SILENT:
            return True
        if k is Misbehaviour.SLOW:
            await asyncio.sleep(SLOW_DELAY)
            return False
        if k is Misbehaviour.OVERSIZED:
            payload = snappy.compress(rlp.encode([msg.request_id, [b"\x00" * (17 * 1024 * 1024)]]))
            offset = _eth_offset(peer)
            peer.conn.core._send_frame(offset + _response_code(msg), payload, compressed=False)  # noqa: SLF001
            await peer.conn.flush()
            return True
        if k is Misbehaviour.GARBAGE_FRAME:
            await peer.send_raw(os.urandom(256))
            return True
        if k is Misbehaviour.DISCONNECT_MID_RESPONSE:
            code, payload = eth_codec.encode_message(peer.answer(msg), peer.eth_version)
            core = peer.conn.core
            before = len(core._out)  # noqa: SLF001
            core.send_message("eth", code, payload)
            frame = core.data_to_send()[before:]
            await peer.send_raw(frame[: max(1, len(frame) // 2)])
            peer.conn.abort()
            return True
        return False


def _eth_offset(peer: EthPeer) -> int:
    return next(p.offset for p in peer.conn.protocols if p.name == "eth")


def _response_code(msg: object) -> int:
    if isinstance(msg, m.GetBlockHeaders):
        return m.BLOCK_HEADERS_CODE
    if isinstance(msg, m.GetBlockBodies):
        return m.BLOCK_BODIES_CODE
    return m.RECEIPTS_CODE


def _tamper_body(body: bytes) -> bytes:
    parts = [bytes(x) for x in rlp.split_list(body)]
    if rlp.split_list(parts[0]):
        parts[0] = _tamper_list_item(parts[0]) if rlp.split_list(parts[0])[-1][0] >= 0xC0 else _drop_last(parts[0])
    else:
        # No transactions to break: claim an ommer that isn't there.
        parts[1] = rlp.encode_raw_list([bytes(x) for x in rlp.split_list(parts[1])] + [rlp.encode([b"\x00"] * 15)])
    return rlp.encode_raw_list(parts)


def _drop_last(list_raw: bytes) -> bytes:
    return rlp.encode_raw_list([bytes(x) for x in rlp.split_list(list_raw)[:-1]])


def _tamper_receipts(list_raw: bytes) -> bytes:
    items = rlp.split_list(list_raw)
    if not items:
        return rlp.encode_raw_list([rlp.encode([0, 1, 21000, []])])  # a receipt for a tx that doesn't exist
    return _drop_last(list_raw)


# ---- the fork ------------------------------------------------------------------------------

#: What a forged header's extraData starts with (the real extraData follows, cut to 32 bytes).
FORK_MARKER = b"ethp2p-fork/"
#: The most extraData a header may carry.
MAX_EXTRA_DATA = 32
#: Headers read from the real store per step while forging.
_FORGE_CHUNK = 1024


class ForkError(ValueError):
    """The fork block does not fit the store (it must branch off a stored block, at or below its head)."""


def fork_header(raw: bytes, parent_hash: bytes) -> bytes:
    """``raw`` with ``parent_hash`` and a marked extraData; every other field's bytes are kept.

    The transactions, ommers, receipts and withdrawals roots are untouched, so the real
    block's body and receipts verify against the forged header.
    """
    fields = [bytes(f) for f in rlp.split_list(raw)]
    extra = bytes(rlp.string_payload(fields[EXTRA_DATA]))
    forged = (FORK_MARKER + extra)[:MAX_EXTRA_DATA]
    if forged == extra:  # only for an extraData that is the marker over and over: differ anyway
        forged = forged[:-1] + bytes([forged[-1] ^ 1])
    fields[PARENT_HASH] = rlp.encode_bytes(parent_hash)
    fields[EXTRA_DATA] = rlp.encode_bytes(forged)
    return rlp.encode_raw_list(fields)


def forge_chain(headers: Iterable[bytes], parent_hash: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(forged raw header, its hash) for consecutive real ``headers``, the first linked to ``parent_hash``
    and each later one to the forged header before it."""
    for raw in headers:
        forged = fork_header(raw, parent_hash)
        parent_hash = keccak(forged)
        yield forged, parent_hash


class ForkedStore:
    """A read-only view of a :class:`BlockStore` serving a self-consistent fork from ``fork_block`` on.

    Below ``fork_block`` it is the real chain. From ``fork_block`` up to the store's
    contiguous head every header is :func:`fork_header` of the real one, linked to the
    forged header before it (``fork_block`` itself to the real block ``fork_block - 1``),
    and serves the real body and receipts. By hash, the forged blocks are found and the
    real ones at or above ``fork_block`` are not (the liar does not have them); blocks
    stored above the contiguous head (isolated) are not served either.

    Forged headers are computed upward from ``fork_block`` as far as asked and cached;
    announcing the head (and a lookup of an unknown hash) computes them all, which is
    linear in ``head - fork_block`` (about 0.15 s for 10,000 blocks).
    It has the reading methods the serving path uses (:class:`StoreHandler`,
    :func:`~ethp2p.serve.server.store_head`), and no writing ones.
    """

    def __init__(self, store: BlockStore, fork_block: int) -> None:
        rng = store.contiguous_range()
        if fork_block < 1:
            raise ForkError(f"fork block must be at least 1, got {fork_block}")
        if rng is None or not rng[0] < fork_block <= rng[1]:
            have = f"blocks {rng[0]}..{rng[1]}" if rng else "no blocks"
            raise ForkError(
                f"fork block {fork_block} must be above the first stored block and at most the head "
                f"(the store has {have} in a row)"
            )
        base = store.canonical_hash(fork_block - 1)
        assert base is not None  # inside the contiguous range
        self.real = store
        self.fork_block = fork_block
        #: number -> (forged raw header, forged hash, real hash), for fork_block..self._top.
        self._forked: dict[int, tuple[bytes, bytes, bytes]] = {}
        #: forged hash -> number.
        self._numbers: dict[bytes, int] = {}
        self._top = fork_block - 1
        self._top_hash = base
        self._range: tuple[int, int] | None = rng

    @classmethod
    def default_fork_block(cls, store: BlockStore) -> int:
        """The middle of the store's contiguous range (at least one above its first block)."""
        rng = store.contiguous_range()
        if rng is None:
            raise ForkError("the store is empty: nothing to fork")
        lo, hi = rng
        return max(lo + 1, (lo + hi + 1) // 2)

    # ---- forging ----------------------------------------------------------------------------

    def _head(self) -> int:
        """The contiguous head as last read (:meth:`contiguous_range`, which ``store_head`` calls, re-reads it)."""
        return self._range[1] if self._range else -1

    def _extend_to(self, number: int) -> None:
        """Forge the headers up to ``number`` and a chunk beyond (at most the contiguous head)."""
        stop = min(max(number, self._top + _FORGE_CHUNK), self._head())
        while self._top < stop:
            numbers = list(range(self._top + 1, min(stop, self._top + _FORGE_CHUNK) + 1))
            run: list[bytes] = []
            for raw in self.real.headers_by_numbers(numbers):
                if raw is None:  # the run ends early (only if the store changed under us)
                    break
                run.append(raw)
            for n, raw, (forged, h) in zip(numbers, run, forge_chain(run, self._top_hash), strict=False):
                self._forked[n] = (forged, h, keccak(raw))
                self._numbers[h] = n
                self._top, self._top_hash = n, h
            if len(run) != len(numbers):
                return

    def _entry(self, number: int) -> tuple[bytes, bytes, bytes] | None:
        if number > self._top:
            self._extend_to(number)
        return self._forked.get(number)

    def _fork_number(self, block_hash: bytes) -> int | None:
        """The number of a forged block with this hash (forging the rest if the hash is unknown)."""
        n = self._numbers.get(block_hash)
        if n is None and self._top < self._head():
            self._extend_to(self._head())
            n = self._numbers.get(block_hash)
        return n

    def _real_below_fork(self, block_hash: bytes) -> int | None:
        """The number of a real canonical block below the fork point with this hash."""
        n = self.real.number_of(block_hash)
        return n if n is not None and n < self.fork_block else None

    def _source_hash(self, block_hash: bytes) -> bytes | None:
        """The real hash whose body and receipts this view serves for ``block_hash``."""
        if self._real_below_fork(block_hash) is not None:
            return block_hash
        n = self._fork_number(block_hash)
        return self._forked[n][2] if n is not None else None

    # ---- the store's reading methods --------------------------------------------------------

    @property
    def genesis_hash(self) -> bytes | None:
        """The real store's genesis (the fork keeps it)."""
        return self.real.genesis_hash

    def get_meta(self, key: str) -> bytes | None:
        """The real store's metadata."""
        return self.real.get_meta(key)

    def total_difficulty(self, number: int) -> int | None:
        """As recorded in the real store: forged headers keep their difficulty, so totals are the same."""
        if number >= self.fork_block and self._entry(number) is None:
            return None
        return self.real.total_difficulty(number)

    def canonical_hash(self, number: int) -> bytes | None:
        """The hash this view serves at ``number``."""
        if number < self.fork_block:
            return self.real.canonical_hash(number)
        entry = self._entry(number)
        return entry[1] if entry else None

    def number_of(self, block_hash: bytes) -> int | None:
        """The number of a served block with this hash (None for real blocks at or above the fork)."""
        n = self._real_below_fork(block_hash)
        return n if n is not None else self._fork_number(block_hash)

    def header_by_number(self, number: int) -> bytes | None:
        """The raw header served at ``number`` (forged from the fork block on)."""
        if number < self.fork_block:
            return self.real.header_by_number(number)
        entry = self._entry(number)
        return entry[0] if entry else None

    def header_by_hash(self, block_hash: bytes) -> bytes | None:
        """The raw header of a served block with this hash."""
        if self._real_below_fork(block_hash) is not None:
            return self.real.header_by_hash(block_hash)
        n = self._fork_number(block_hash)
        return self._forked[n][0] if n is not None else None

    def headers_by_numbers(self, numbers: Sequence[int]) -> list[bytes | None]:
        """Raw served headers for each number (None where missing), in order."""
        low = [n for n in numbers if n < self.fork_block]
        real = dict(zip(low, self.real.headers_by_numbers(low), strict=False)) if low else {}
        return [real[n] if n < self.fork_block else self.header_by_number(n) for n in numbers]

    def body(self, block_hash: bytes) -> bytes | None:
        """The real body of a served block (forged headers keep the roots it matches)."""
        source = self._source_hash(block_hash)
        return self.real.body(source) if source is not None else None

    def receipts(self, block_hash: bytes) -> bytes | None:
        """The real receipts (eth/69 form) of a served block."""
        source = self._source_hash(block_hash)
        return self.real.receipts(source) if source is not None else None

    def block(self, block_hash: bytes) -> StoredBlock | None:
        """A served block by hash."""
        if self._real_below_fork(block_hash) is not None:
            return self.real.block(block_hash)
        n = self._fork_number(block_hash)
        if n is None:
            return None
        forged, h, real_hash = self._forked[n]
        return StoredBlock(n, h, forged, self.real.body(real_hash), self.real.receipts(real_hash))

    def canonical_blocks(self, start: int, end: int) -> Iterator[StoredBlock]:
        """Served blocks with start <= number <= end, in order."""
        if start < self.fork_block:
            yield from self.real.canonical_blocks(start, min(end, self.fork_block - 1))
        for b in self.real.canonical_blocks(max(start, self.fork_block), min(end, self._head())):
            entry = self._entry(b.number)
            if entry is None or entry[2] != b.hash:
                return
            yield StoredBlock(b.number, entry[1], entry[0], b.body, b.receipts)

    def contiguous_range(self) -> tuple[int, int] | None:
        """The real store's run of consecutive blocks (forged from the fork block on), read again."""
        self._range = self.real.contiguous_range()
        return self._range

    def block_range(self) -> tuple[int, int] | None:
        """(lowest, highest) served: the contiguous range (isolated blocks above it are not served)."""
        return self.contiguous_range()

    def longest_run(self) -> tuple[int, int] | None:
        """The run the view announces: its contiguous range (it serves no other)."""
        return self.contiguous_range()


def parse_misbehaviour(text: str) -> Misbehaviour:
    try:
        return Misbehaviour(text)
    except ValueError:
        raise ValueError(f"unknown misbehaviour {text!r}; one of: {', '.join(k.value for k in Misbehaviour)}") from None
