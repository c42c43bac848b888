"""eth protocol message types (eth/68, eth/69, eth/70), separate from their codecs.

Block data travels as raw RLP: headers, bodies and per-block receipt lists are
kept as the exact bytes the peer sent (``bytes`` or zero-copy ``memoryview``),
so they can be hashed, verified and stored without re-encoding. Encoding and
decoding live in :mod:`ethp2p.eth.codec`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .forkid import ForkId

Raw = bytes | memoryview

# Message codes, relative to the eth capability's offset.
STATUS_CODE = 0x00
NEW_BLOCK_HASHES_CODE = 0x01
TRANSACTIONS_CODE = 0x02
GET_BLOCK_HEADERS_CODE = 0x03
BLOCK_HEADERS_CODE = 0x04
GET_BLOCK_BODIES_CODE = 0x05
BLOCK_BODIES_CODE = 0x06
NEW_BLOCK_CODE = 0x07
NEW_POOLED_TRANSACTION_HASHES_CODE = 0x08
GET_POOLED_TRANSACTIONS_CODE = 0x09
POOLED_TRANSACTIONS_CODE = 0x0A
GET_RECEIPTS_CODE = 0x0F
RECEIPTS_CODE = 0x10
BLOCK_RANGE_UPDATE_CODE = 0x11

#: Versions this package speaks.
SUPPORTED_VERSIONS: tuple[int, ...] = (68, 69, 70)


@dataclass(frozen=True, slots=True)
class StatusV68:
    """eth/68 Status: ``[version, networkid, td, blockhash, genesis, forkid]``."""

    version: int
    network_id: int
    total_difficulty: int
    head_hash: bytes
    genesis_hash: bytes
    fork_id: ForkId


@dataclass(frozen=True, slots=True)
class StatusV69:
    """eth/69 and eth/70 Status: ``[version, networkid, genesis, forkid, earliest, latest, latestHash]``."""

    version: int
    network_id: int
    genesis_hash: bytes
    fork_id: ForkId
    earliest_block: int
    latest_block: int
    latest_hash: bytes

    @property
    def head_hash(self) -> bytes:
        """The hash a peer announces as its latest block (same role as eth/68's blockhash)."""
        return self.latest_hash


Status = StatusV68 | StatusV69


@dataclass(frozen=True, slots=True)
class GetBlockHeaders:
    """Ask for ``amount`` headers from ``origin`` (a number or a 32-byte hash)."""

    request_id: int
    origin: int | bytes
    amount: int
    skip: int = 0
    reverse: bool = False


@dataclass(frozen=True, slots=True)
class BlockHeaders:
    """Raw header RLPs."""

    request_id: int
    headers: Sequence[Raw]


@dataclass(frozen=True, slots=True)
class GetBlockBodies:
    """Ask for the bodies of blocks by hash."""

    request_id: int
    hashes: Sequence[bytes]


@dataclass(frozen=True, slots=True)
class BlockBodies:
    """Raw body RLPs ``[transactions, ommers(, withdrawals)]``."""

    request_id: int
    bodies: Sequence[Raw]


@dataclass(frozen=True, slots=True)
class GetReceipts:
    """Ask for the receipt lists of blocks by hash.

    ``first_block_receipt_index`` exists on the wire only at eth/70: the first
    block's list starts at that index (a continuation of a truncated answer).
    """

    request_id: int
    hashes: Sequence[bytes]
    first_block_receipt_index: int = 0


@dataclass(frozen=True, slots=True)
class Receipts:
    """Raw per-block receipt lists, in the negotiated version's wire form.

    eth/68: consensus receipts with bloom (typed ones wrapped in a byte string);
    eth/69 and eth/70: ``[tx-type, status, cumulative-gas, logs]`` without bloom.
    ``last_block_incomplete`` (eth/70 only) says the last list was cut short.
    """

    request_id: int
    receipts: Sequence[Raw]
    last_block_incomplete: bool = False


@dataclass(frozen=True, slots=True)
class BlockRangeUpdate:
    """eth/69+: the blocks a peer can now serve."""

    earliest: int
    latest: int
    latest_hash: bytes


@dataclass(frozen=True, slots=True)
class NewBlockHashes:
    """Block announcements (eth/68 only); ignored."""

    entries: tuple[tuple[bytes, int], ...]


@dataclass(frozen=True, slots=True)
class NewBlock:
    """A propagated block (eth/68 only); ignored, kept raw."""

    raw: Raw


@dataclass(frozen=True, slots=True)
class Transactions:
    """Transaction gossip; only counted."""

    count: int


@dataclass(frozen=True, slots=True)
class NewPooledTransactionHashes:
    """eth/68 announcement ``[types, [size...], [hash...]]``; ignored."""

    types: bytes
    sizes: tuple[int, ...]
    hashes: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class GetPooledTransactions:
    """Request for pooled transactions; we hold none and answer empty."""

    request_id: int
    hashes: Sequence[bytes]


@dataclass(frozen=True, slots=True)
class PooledTransactions:
    """Answer to GetPooledTransactions (raw transactions)."""

    request_id: int
    transactions: Sequence[Raw] = field(default_factory=list)


Message = (
    StatusV68
    | StatusV69
    | GetBlockHeaders
    | BlockHeaders
    | GetBlockBodies
    | BlockBodies
    | GetReceipts
    | Receipts
    | BlockRangeUpdate
    | NewBlockHashes
    | NewBlock
    | Transactions
    | NewPooledTransactionHashes
    | GetPooledTransactions
    | PooledTransactions
)


def make_get_receipts(version: int, request_id: int, hashes: Sequence[bytes], first_index: int = 0) -> GetReceipts:
    """A GetReceipts request valid for ``version`` (only eth/70 carries a first index)."""
    if first_index and version < 70:
        raise ValueError("firstBlockReceiptIndex needs eth/70")
    return GetReceipts(request_id, hashes, first_index)


def make_receipts(version: int, request_id: int, lists: Sequence[Raw], incomplete: bool = False) -> Receipts:
    """A Receipts answer valid for ``version`` (only eth/70 can flag the last list incomplete)."""
    if incomplete and version < 70:
        raise ValueError("lastBlockIncomplete needs eth/70")
    return Receipts(request_id, lists, incomplete)
