"""Encoding and decoding of eth/68, eth/69 and eth/70 messages (pure functions).

Responses carrying block data are split zero-copy: the returned headers, bodies
and receipt lists are ``memoryview`` slices of the message payload. Every count,
length and integer is bounded; anything malformed raises :class:`EthProtocolError`.
"""

from __future__ import annotations

from collections.abc import Sequence

from .. import rlp
from . import messages as m
from .errors import EthProtocolError
from .forkid import ForkId, decode_fork_id

#: Most items accepted in any one list of a message (bounds memory for tiny-item floods).
MAX_LIST_ITEMS = 65_536
#: Message-id space each version occupies.
_MESSAGE_COUNT = {68: 17, 69: 18, 70: 18}


def message_count(version: int) -> int:
    """How many message ids eth/``version`` uses (for capability offsets)."""
    try:
        return _MESSAGE_COUNT[version]
    except KeyError:
        raise ValueError(f"unsupported eth version {version}") from None


# ---- encoding ---------------------------------------------------------------------------------


def _response(fields: Sequence[bytes], items: Sequence[m.Raw]) -> bytes:
    """``[*fields, [*items]]`` from encoded ``fields`` and already-encoded ``items``, in one copy.

    Responses run to megabytes: joining the items, then the list, then the message
    would copy (and page in) every byte three times more.
    """
    n = sum(len(x) for x in items)
    inner = rlp.encode_length(n, 0xC0)
    outer = rlp.encode_length(sum(len(f) for f in fields) + len(inner) + n, 0xC0)
    return b"".join([outer, *fields, inner, *items])


def encode_message(msg: m.Message, version: int) -> tuple[int, bytes]:
    """``(code, payload)`` for ``msg`` at eth/``version`` (payload uncompressed)."""
    if isinstance(msg, m.StatusV68):
        if version != 68:
            raise ValueError("eth/68 Status at another version")
        return m.STATUS_CODE, rlp.encode(
            [
                msg.version,
                msg.network_id,
                msg.total_difficulty,
                msg.head_hash,
                msg.genesis_hash,
                [msg.fork_id.hash, msg.fork_id.next],
            ]
        )
    if isinstance(msg, m.StatusV69):
        if version < 69:
            raise ValueError("eth/69 Status needs eth/69+")
        return m.STATUS_CODE, rlp.encode(
            [
                msg.version,
                msg.network_id,
                msg.genesis_hash,
                [msg.fork_id.hash, msg.fork_id.next],
                msg.earliest_block,
                msg.latest_block,
                msg.latest_hash,
            ]
        )
    if isinstance(msg, m.GetBlockHeaders):
        return m.GET_BLOCK_HEADERS_CODE, rlp.encode(
            [msg.request_id, [msg.origin, msg.amount, msg.skip, 1 if msg.reverse else 0]]
        )
    if isinstance(msg, m.BlockHeaders):
        return m.BLOCK_HEADERS_CODE, _response([rlp.encode(msg.request_id)], msg.headers)
    if isinstance(msg, m.GetBlockBodies):
        return m.GET_BLOCK_BODIES_CODE, rlp.encode([msg.request_id, list(msg.hashes)])
    if isinstance(msg, m.BlockBodies):
        return m.BLOCK_BODIES_CODE, _response([rlp.encode(msg.request_id)], msg.bodies)
    if isinstance(msg, m.GetReceipts):
        if version >= 70:
            return m.GET_RECEIPTS_CODE, rlp.encode([msg.request_id, msg.first_block_receipt_index, list(msg.hashes)])
        if msg.first_block_receipt_index:
            raise ValueError("firstBlockReceiptIndex needs eth/70")
        return m.GET_RECEIPTS_CODE, rlp.encode([msg.request_id, list(msg.hashes)])
    if isinstance(msg, m.Receipts):
        if version >= 70:
            flag = rlp.encode(1 if msg.last_block_incomplete else 0)
            return m.RECEIPTS_CODE, _response([rlp.encode(msg.request_id), flag], msg.receipts)
        if msg.last_block_incomplete:
            raise ValueError("lastBlockIncomplete needs eth/70")
        return m.RECEIPTS_CODE, _response([rlp.encode(msg.request_id)], msg.receipts)
    if isinstance(msg, m.BlockRangeUpdate):
        if version < 69:
            raise ValueError("BlockRangeUpdate needs eth/69+")
        return m.BLOCK_RANGE_UPDATE_CODE, rlp.encode([msg.earliest, msg.latest, msg.latest_hash])
    if isinstance(msg, m.GetPooledTransactions):
        return m.GET_POOLED_TRANSACTIONS_CODE, rlp.encode([msg.request_id, list(msg.hashes)])
    if isinstance(msg, m.PooledTransactions):
        return m.POOLED_TRANSACTIONS_CODE, _response([rlp.encode(msg.request_id)], msg.transactions)
    if isinstance(msg, m.NewPooledTransactionHashes):
        return m.NEW_POOLED_TRANSACTION_HASHES_CODE, rlp.encode([msg.types, list(msg.sizes), list(msg.hashes)])
    raise ValueError(f"cannot encode {type(msg).__name__}")


# ---- decoding helpers -------------------------------------------------------------------------


def _split(data: m.Raw, what: str, max_items: int = MAX_LIST_ITEMS) -> list[memoryview]:
    try:
        return rlp.split_list(data, max_items=max_items)
    except rlp.RLPError as e:
        raise EthProtocolError(f"{what}: {e}") from None


def _int(item: m.Raw, what: str, max_bytes: int = 8) -> int:
    try:
        return rlp.decode_int(rlp.string_payload(item), max_bytes=max_bytes)
    except rlp.RLPError as e:
        raise EthProtocolError(f"{what}: {e}") from None


def _bytes(item: m.Raw, what: str, size: int | None = None) -> bytes:
    try:
        value = bytes(rlp.string_payload(item))
    except rlp.RLPError as e:
        raise EthProtocolError(f"{what}: {e}") from None
    if size is not None and len(value) != size:
        raise EthProtocolError(f"{what} must be {size} bytes, got {len(value)}")
    return value


def _hashes(item: m.Raw, what: str) -> list[bytes]:
    return [_bytes(h, what, 32) for h in _split(item, what)]


def _lists(item: m.Raw, what: str) -> list[memoryview]:
    out = _split(item, what)
    for x in out:
        if not rlp.is_list_item(x):
            raise EthProtocolError(f"{what}: element is not a list")
    return out


def _fields(payload: m.Raw, what: str, want: int, *, at_least: bool = False) -> list[memoryview]:
    items = _split(payload, what)
    if len(items) < want or (not at_least and len(items) != want):
        raise EthProtocolError(f"{what}: expected {want} fields, got {len(items)}")
    return items


def _request(payload: m.Raw, what: str) -> tuple[int, memoryview]:
    rid, body = _fields(payload, what, 2)
    return _int(rid, f"{what} request id"), body


# ---- decoding ---------------------------------------------------------------------------------


def decode_message(code: int, payload: m.Raw, version: int) -> m.Message:
    """Decode an eth message received at eth/``version``."""
    if version not in _MESSAGE_COUNT:
        raise ValueError(f"unsupported eth version {version}")
    decoder = _DECODERS.get(code)
    if decoder is None or code >= _MESSAGE_COUNT[version]:
        raise EthProtocolError(f"unknown eth/{version} message code 0x{code:02x}")
    return decoder(payload, version)


#: The eth answers to requests (their first field is the request id).
RESPONSE_CODES = frozenset({m.BLOCK_HEADERS_CODE, m.BLOCK_BODIES_CODE, m.RECEIPTS_CODE})


def peek_request_id(payload: m.Raw) -> int:
    """The request id of an answer (BlockHeaders, BlockBodies, Receipts) without decoding the rest:
    only the outer list's header and its first item are read, so an answer to no request is
    rejected at the cost of a few bytes. :class:`EthProtocolError` if those are malformed."""
    try:
        is_list, start, length = rlp.header(payload)
        if not is_list:
            raise EthProtocolError("answer: expected an RLP list, got a string")
        if start + length != len(payload):
            raise EthProtocolError("answer: trailing bytes after the RLP list")
        is_list, rstart, rlen = rlp.read_header(payload, start, start + length)
    except rlp.RLPError as e:
        raise EthProtocolError(f"answer: {e}") from None
    if is_list:
        raise EthProtocolError("answer request id: expected an integer, got a list")
    return _int(memoryview(payload)[start : rstart + rlen], "answer request id")


def _status(payload: m.Raw, version: int) -> m.Message:
    # EIP-8 leniency: extra trailing fields are ignored.
    if version == 68:
        f = _fields(payload, "Status", 6, at_least=True)
        return m.StatusV68(
            _int(f[0], "Status version", 4),
            _int(f[1], "Status network id"),
            _int(f[2], "Status total difficulty", 32),
            _bytes(f[3], "Status head hash", 32),
            _bytes(f[4], "Status genesis hash", 32),
            _fork_id(f[5]),
        )
    f = _fields(payload, "Status", 7, at_least=True)
    return m.StatusV69(
        _int(f[0], "Status version", 4),
        _int(f[1], "Status network id"),
        _bytes(f[2], "Status genesis hash", 32),
        _fork_id(f[3]),
        _int(f[4], "Status earliest block"),
        _int(f[5], "Status latest block"),
        _bytes(f[6], "Status latest hash", 32),
    )


def _fork_id(item: memoryview) -> ForkId:
    try:
        return decode_fork_id(rlp.decode(item, max_depth=2))
    except (rlp.RLPError, ValueError) as e:
        raise EthProtocolError(f"Status fork id: {e}") from None


def _get_block_headers(payload: m.Raw, version: int) -> m.Message:
    rid, body = _request(payload, "GetBlockHeaders")
    f = _fields(body, "GetBlockHeaders query", 4)
    try:
        origin_raw = bytes(rlp.string_payload(f[0]))
    except rlp.RLPError as e:
        raise EthProtocolError(f"GetBlockHeaders origin: {e}") from None
    origin: int | bytes
    if len(origin_raw) == 32:
        origin = origin_raw
    else:
        origin = _int(f[0], "GetBlockHeaders origin number")
    reverse = _int(f[3], "GetBlockHeaders reverse", 1)
    if reverse > 1:
        raise EthProtocolError("GetBlockHeaders reverse must be 0 or 1")
    return m.GetBlockHeaders(
        rid, origin, _int(f[1], "GetBlockHeaders amount"), _int(f[2], "GetBlockHeaders skip"), bool(reverse)
    )


def _block_headers(payload: m.Raw, version: int) -> m.Message:
    rid, body = _request(payload, "BlockHeaders")
    return m.BlockHeaders(rid, _lists(body, "BlockHeaders"))


def _get_block_bodies(payload: m.Raw, version: int) -> m.Message:
    rid, body = _request(payload, "GetBlockBodies")
    return m.GetBlockBodies(rid, _hashes(body, "GetBlockBodies hash"))


def _block_bodies(payload: m.Raw, version: int) -> m.Message:
    rid, body = _request(payload, "BlockBodies")
    return m.BlockBodies(rid, _lists(body, "BlockBodies"))


def _get_receipts(payload: m.Raw, version: int) -> m.Message:
    if version >= 70:
        rid_raw, first, body = _fields(payload, "GetReceipts", 3)
        return m.GetReceipts(
            _int(rid_raw, "GetReceipts request id"),
            _hashes(body, "GetReceipts hash"),
            _int(first, "GetReceipts firstBlockReceiptIndex"),
        )
    rid, body = _request(payload, "GetReceipts")
    return m.GetReceipts(rid, _hashes(body, "GetReceipts hash"))


def _receipts(payload: m.Raw, version: int) -> m.Message:
    if version >= 70:
        rid_raw, flag, body = _fields(payload, "Receipts", 3)
        incomplete = _int(flag, "Receipts lastBlockIncomplete", 1)
        if incomplete > 1:
            raise EthProtocolError("Receipts lastBlockIncomplete must be 0 or 1")
        return m.Receipts(_int(rid_raw, "Receipts request id"), _lists(body, "Receipts"), bool(incomplete))
    rid, body = _request(payload, "Receipts")
    return m.Receipts(rid, _lists(body, "Receipts"))


def _block_range_update(payload: m.Raw, version: int) -> m.Message:
    f = _fields(payload, "BlockRangeUpdate", 3, at_least=True)
    return m.BlockRangeUpdate(
        _int(f[0], "BlockRangeUpdate earliest"),
        _int(f[1], "BlockRangeUpdate latest"),
        _bytes(f[2], "BlockRangeUpdate latest hash", 32),
    )


def _new_block_hashes(payload: m.Raw, version: int) -> m.Message:
    entries = []
    for entry in _split(payload, "NewBlockHashes"):
        f = _fields(entry, "NewBlockHashes entry", 2, at_least=True)
        entries.append((_bytes(f[0], "NewBlockHashes hash", 32), _int(f[1], "NewBlockHashes number")))
    return m.NewBlockHashes(tuple(entries))


def _new_block(payload: m.Raw, version: int) -> m.Message:
    _fields(payload, "NewBlock", 2, at_least=True)
    return m.NewBlock(payload)


def _transactions(payload: m.Raw, version: int) -> m.Message:
    return m.Transactions(len(_split(payload, "Transactions")))


def _new_pooled_hashes(payload: m.Raw, version: int) -> m.Message:
    f = _fields(payload, "NewPooledTransactionHashes", 3, at_least=True)
    types = _bytes(f[0], "NewPooledTransactionHashes types")
    sizes = tuple(_int(s, "NewPooledTransactionHashes size", 4) for s in _split(f[1], "sizes"))
    hashes = tuple(_hashes(f[2], "NewPooledTransactionHashes hash"))
    if not len(types) == len(sizes) == len(hashes):
        raise EthProtocolError("NewPooledTransactionHashes: types, sizes and hashes differ in length")
    return m.NewPooledTransactionHashes(types, sizes, hashes)


def _get_pooled(payload: m.Raw, version: int) -> m.Message:
    rid, body = _request(payload, "GetPooledTransactions")
    return m.GetPooledTransactions(rid, _hashes(body, "GetPooledTransactions hash"))


def _pooled(payload: m.Raw, version: int) -> m.Message:
    rid, body = _request(payload, "PooledTransactions")
    return m.PooledTransactions(rid, _split(body, "PooledTransactions"))


_DECODERS = {
    m.STATUS_CODE: _status,
    m.NEW_BLOCK_HASHES_CODE: _new_block_hashes,
    m.TRANSACTIONS_CODE: _transactions,
    m.GET_BLOCK_HEADERS_CODE: _get_block_headers,
    m.BLOCK_HEADERS_CODE: _block_headers,
    m.GET_BLOCK_BODIES_CODE: _get_block_bodies,
    m.BLOCK_BODIES_CODE: _block_bodies,
    m.NEW_BLOCK_CODE: _new_block,
    m.NEW_POOLED_TRANSACTION_HASHES_CODE: _new_pooled_hashes,
    m.GET_POOLED_TRANSACTIONS_CODE: _get_pooled,
    m.POOLED_TRANSACTIONS_CODE: _pooled,
    m.GET_RECEIPTS_CODE: _get_receipts,
    m.RECEIPTS_CODE: _receipts,
    m.BLOCK_RANGE_UPDATE_CODE: _block_range_update,
}
