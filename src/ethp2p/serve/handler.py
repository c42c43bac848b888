"""Answering eth requests from a block store, by geth's serving rules.

* at most :data:`MAX_ITEMS` (1,024) items per answer;
* a soft response limit of :data:`SOFT_RESPONSE_LIMIT` (2 MiB): once an answer reaches
  it, no more items are added;
* answers are a prefix of the request: they end at the first block the store lacks;
* receipts are stored in eth/69 form and served per negotiated version: eth/68 with
  blooms rebuilt from the logs, eth/69 as stored, eth/70 starting at
  ``firstBlockReceiptIndex`` and cut (``lastBlockIncomplete``) where the next list
  would cross the soft limit.
"""

from __future__ import annotations

from collections.abc import Sequence

from .. import rlp
from ..chain.receipts import receipts69_to_68
from ..eth import messages as m
from ..store.blocks import BlockStore

MAX_ITEMS = 1024
#: Block numbers are uint64 on the wire but SQLite integers are signed 64-bit.
MAX_BLOCK_NUMBER = (1 << 63) - 1
SOFT_RESPONSE_LIMIT = 2 * 1024 * 1024


class StoreHandler:
    """A :class:`~ethp2p.peers.eth_peer.RequestHandler` backed by a :class:`BlockStore`."""

    def __init__(self, store: BlockStore, *, soft_limit: int = SOFT_RESPONSE_LIMIT, max_items: int = MAX_ITEMS) -> None:
        self.store = store
        self.soft_limit = soft_limit
        self.max_items = max_items

    def block_headers(self, request: m.GetBlockHeaders) -> list[bytes]:
        amount = min(request.amount, self.max_items)
        if amount == 0:
            return []
        if isinstance(request.origin, bytes):
            number = self.store.number_of(request.origin)
            if number is None:
                return []
        else:
            number = request.origin
            if number > MAX_BLOCK_NUMBER:
                return []
        step = request.skip + 1
        if request.reverse:
            numbers = [number - i * step for i in range(amount)]
            numbers = [n for n in numbers if n >= 0]
        else:
            numbers = [number + i * step for i in range(amount)]
            numbers = [n for n in numbers if n <= MAX_BLOCK_NUMBER]
        out: list[bytes] = []
        size = 0
        for header in self.store.headers_by_numbers(numbers):
            if header is None:
                break
            out.append(header)
            size += len(header)
            if size >= self.soft_limit:
                break
        return out

    def block_bodies(self, hashes: Sequence[bytes]) -> list[bytes]:
        out: list[bytes] = []
        size = 0
        for h in hashes[: self.max_items]:
            body = self.store.body(h)
            if body is None:
                break
            out.append(body)
            size += len(body)
            if size >= self.soft_limit:
                break
        return out

    def receipts(self, hashes: Sequence[bytes], version: int, first_index: int) -> tuple[list[bytes], bool]:
        out: list[bytes] = []
        size = 0
        for i, h in enumerate(hashes[: self.max_items]):
            stored = self.store.receipts(h)
            if stored is None:
                break
            # eth/70 cuts a list only where it starts mid-way or would cross the limit;
            # a whole list that fits goes out as stored, as at eth/69.
            if version >= 70 and ((i == 0 and first_index) or size + len(stored) > self.soft_limit):
                items = rlp.split_list(stored)
                if i == 0 and first_index:
                    if first_index > len(items):
                        break
                    items = items[first_index:]
                # Cut the list where it would cross the soft limit (keep at least one receipt).
                kept: list[bytes] = []
                for item in items:
                    if kept and size + len(item) > self.soft_limit:
                        break
                    if not kept and out and size + len(item) > self.soft_limit:
                        break
                    kept.append(bytes(item))
                    size += len(item)
                if not kept and items:
                    return out, False
                out.append(rlp.encode_raw_list(kept))
                if len(kept) < len(items):
                    return out, True
                if size >= self.soft_limit:
                    break
                continue
            encoded = receipts69_to_68(stored) if version == 68 else stored
            out.append(encoded)
            size += len(encoded)
            if size >= self.soft_limit:
                break
        return out, False
