"""Reference (pre-optimisation) receipt conversions, kept to differential-test the fast ones.

This is the straightforward split-everything implementation ethp2p used before the
Performance work (the forms are described in ethp2p.chain.receipts); tests check the
fast paths there accept and reject exactly what this does and produce the same bytes.
"""

from __future__ import annotations

from ethp2p import rlp
from ethp2p.chain.body import TX_TYPES
from ethp2p.chain.receipts import BLOOM_SIZE, MAX_LOGS, MAX_RECEIPTS, MAX_TOPICS, ReceiptError
from ethp2p.crypto.keccak import keccak_256


def _bloom_bits(value: bytes | memoryview) -> int:
    h = keccak_256(value).digest()
    return (
        (1 << (((h[0] << 8) | h[1]) & 2047))
        | (1 << (((h[2] << 8) | h[3]) & 2047))
        | (1 << (((h[4] << 8) | h[5]) & 2047))
    )


def logs_bloom(logs_raw: bytes | memoryview) -> bytes:
    """The 2048-bit bloom of an encoded logs list (addresses and topics of every log)."""
    acc = 0
    for log in _split(logs_raw, "logs", MAX_LOGS):
        address, topics = _log_fields(log)
        acc |= _bloom_bits(address)
        for t in topics:
            acc |= _bloom_bits(t)
    return acc.to_bytes(BLOOM_SIZE, "big")


def _split(item: bytes | memoryview, what: str, max_items: int) -> list[memoryview]:
    try:
        return rlp.split_list(item, max_items=max_items)
    except rlp.RLPError as e:
        raise ReceiptError(f"{what}: {e}") from None


def _payload(item: memoryview, what: str) -> memoryview:
    try:
        return rlp.string_payload(item)
    except rlp.RLPError as e:
        raise ReceiptError(f"{what}: {e}") from None


def _log_fields(log: memoryview) -> tuple[memoryview, list[memoryview]]:
    f = _split(log, "log", 3)
    if len(f) != 3:
        raise ReceiptError("log must be [address, topics, data]")
    address = _payload(f[0], "log address")
    if len(address) != 20:
        raise ReceiptError("log address must be 20 bytes")
    topics = [_payload(t, "log topic") for t in _split(f[1], "log topics", MAX_TOPICS)]
    if any(len(t) != 32 for t in topics):
        raise ReceiptError("log topic must be 32 bytes")
    _payload(f[2], "log data")
    return address, topics


def _check_status_and_gas(status: memoryview, gas: memoryview) -> None:
    s = _payload(status, "receipt status")
    if len(s) not in (0, 32) and bytes(s) != b"\x01":
        raise ReceiptError("receipt status must be empty, 1 or a 32-byte post-state root")
    g = _payload(gas, "receipt cumulative gas")
    if len(g) > 8 or (len(g) and g[0] == 0):
        raise ReceiptError("receipt cumulative gas is not a canonical 64-bit integer")


def _check_logs(logs: memoryview) -> None:
    if not rlp.is_list_item(logs):
        raise ReceiptError("receipt logs must be a list")


# ---- eth/69 form -------------------------------------------------------------------------------


def _split69(receipt: memoryview) -> tuple[int, memoryview, memoryview, memoryview]:
    f = _split(receipt, "receipt", 4)
    if len(f) != 4:
        raise ReceiptError("eth/69 receipt must be [type, status, cumulative-gas, logs]")
    t = _payload(f[0], "receipt type")
    if len(t) > 1 or (len(t) == 1 and t[0] == 0):
        raise ReceiptError("receipt type is not a canonical small integer")
    tx_type = t[0] if len(t) else 0
    if tx_type not in TX_TYPES:
        raise ReceiptError(f"unknown receipt type {tx_type}")
    _check_status_and_gas(f[1], f[2])
    _check_logs(f[3])
    return tx_type, f[1], f[2], f[3]


def receipts69_items(list_raw: bytes | memoryview) -> list[memoryview]:
    """The receipts of an eth/69-form list (each checked for shape)."""
    items = _split(list_raw, "receipt list", MAX_RECEIPTS)
    for r in items:
        _split69(r)
    return items


def receipts69_to_consensus(list_raw: bytes | memoryview, *, start: int = 0) -> list[bytes]:
    """Consensus encodings of an eth/69-form list (blooms rebuilt from logs)."""
    out = []
    for r in _split(list_raw, "receipt list", MAX_RECEIPTS)[start:]:
        tx_type, status, gas, logs = _split69(r)
        bloom = logs_bloom(logs)
        body = rlp.encode_raw_list([bytes(status), bytes(gas), b"\xb9\x01\x00" + bloom, bytes(logs)])
        out.append(body if tx_type == 0 else bytes((tx_type,)) + body)
    return out


def receipts69_to_68(list_raw: bytes | memoryview) -> bytes:
    """An eth/69-form list re-encoded for eth/68 (blooms rebuilt)."""
    items = []
    for enc in receipts69_to_consensus(list_raw):
        items.append(enc if enc[0] >= 0xC0 else rlp.encode_bytes(enc))
    return rlp.encode_raw_list(items)


# ---- eth/68 form -------------------------------------------------------------------------------


def _split68(receipt: memoryview) -> tuple[int, memoryview, memoryview, memoryview, memoryview, memoryview]:
    """(type, consensus encoding, status, gas, bloom, logs) of one eth/68 receipt."""
    if rlp.is_list_item(receipt):
        tx_type, consensus = 0, receipt
    else:
        consensus = _payload(receipt, "typed receipt")
        if len(consensus) < 2 or consensus[0] not in TX_TYPES or consensus[0] == 0:
            raise ReceiptError("typed receipt has an unknown type byte")
        tx_type = consensus[0]
        if consensus[1] < 0xC0:
            raise ReceiptError("typed receipt body must be a list")
    f = _split(consensus if tx_type == 0 else consensus[1:], "receipt", 4)
    if len(f) != 4:
        raise ReceiptError("eth/68 receipt must be [status, cumulative-gas, bloom, logs]")
    _check_status_and_gas(f[0], f[1])
    bloom = _payload(f[2], "receipt bloom")
    if len(bloom) != BLOOM_SIZE:
        raise ReceiptError("receipt bloom must be 256 bytes")
    _check_logs(f[3])
    return tx_type, consensus, f[0], f[1], bloom, f[3]


def receipts68_to_consensus(list_raw: bytes | memoryview, *, check_blooms: bool = True) -> list[memoryview]:
    """Consensus encodings of an eth/68 list, zero-copy; each bloom is checked against its logs."""
    out = []
    for i, r in enumerate(_split(list_raw, "receipt list", MAX_RECEIPTS)):
        _, consensus, _, _, bloom, logs = _split68(r)
        if check_blooms and bytes(bloom) != logs_bloom(logs):
            raise ReceiptError(f"receipt {i}: bloom does not match its logs")
        out.append(consensus)
    return out


def receipts68_to_69(list_raw: bytes | memoryview, *, check_blooms: bool = True) -> bytes:
    """An eth/68 list converted to the eth/69 form ethp2p stores (blooms checked, then dropped)."""
    items = []
    for i, r in enumerate(_split(list_raw, "receipt list", MAX_RECEIPTS)):
        tx_type, _, status, gas, bloom, logs = _split68(r)
        if check_blooms and bytes(bloom) != logs_bloom(logs):
            raise ReceiptError(f"receipt {i}: bloom does not match its logs")
        items.append(rlp.encode_raw_list([rlp.encode(tx_type), bytes(status), bytes(gas), bytes(logs)]))
    return rlp.encode_raw_list(items)
