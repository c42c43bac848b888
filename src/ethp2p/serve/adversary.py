"""Misbehaving serving peers, **for tests only**.

A :class:`HistoryServer` given ``misbehave=KIND`` (or ``ethp2p serve --misbehave KIND``)
breaks the protocol in exactly one way, so the fetch side can be tested against
real sockets and real data. Nothing here is used by the normal serving path.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import os
from collections.abc import Callable, Sequence

from .. import rlp
from ..eth import codec as eth_codec
from ..eth import messages as m
from ..eth.forkid import ForkId
from ..rlpx import snappy
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

    def __init__(self, store, kind: Misbehaviour, **kw) -> None:  # type: ignore[no-untyped-def]
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
            if omit in hashes:
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

    async def serve_request(self, peer, msg) -> bool:  # type: ignore[no-untyped-def]
        """The hook :class:`EthPeer` calls before answering; True means "handled here"."""
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


def _eth_offset(peer) -> int:  # type: ignore[no-untyped-def]
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


def parse_misbehaviour(text: str) -> Misbehaviour:
    try:
        return Misbehaviour(text)
    except ValueError:
        raise ValueError(f"unknown misbehaviour {text!r}; one of: {', '.join(k.value for k in Misbehaviour)}") from None
