"""Chain data on real mainnet blocks, era1 archives, genesis files and geth's test chain."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ethp2p import rlp
from ethp2p.chain import receipts as R
from ethp2p.chain.body import BlockBody
from ethp2p.chain.genesis import GenesisError, chainspec_from_genesis, genesis_header, load_genesis
from ethp2p.chain.header import Header, HeaderError
from ethp2p.chain.receipts import ReceiptError, receipts68_to_69
from ethp2p.chain.verify import (
    VerificationError,
    check_partial_receipts,
    header_proves_empty_body,
    verify_body,
    verify_fork_fields,
    verify_header_chain,
    verify_receipts,
)
from ethp2p.crypto.keccak import keccak
from ethp2p.eth.chainspec import MAINNET
from ethp2p.formats.chainfile import read_chain_file
from ethp2p.formats.era1 import Era1Error, read_era1
from tests.conftest import VECTORS, load_vector

DERIVED = load_vector("mainnet/derived/mainnet_blocks.json")["blocks"]


def _h(b: dict) -> Header:
    return Header(bytes.fromhex(b["header_rlp"]))


@pytest.mark.parametrize("block", DERIVED, ids=lambda b: f"{b['number']}-{b['fork']}")
def test_real_mainnet_block_hashes_and_verifies(block: dict) -> None:
    h = _h(block)
    assert h.hash.hex() == block["hash"]
    assert h.number == int(block["number"]) and h.timestamp == int(block["timestamp"])
    body = verify_body(h, bytes.fromhex(block["body_rlp"]))
    assert len(body.transactions) == int(block["tx_count"])
    verify_fork_fields(h, MAINNET)
    if block.get("receipts_eth69_rlp"):
        r68 = bytes.fromhex(block["receipts_eth68_rlp"])
        r69 = bytes.fromhex(block["receipts_eth69_rlp"])
        assert verify_receipts(h, r68, form=68, tx_count=len(body.transactions)) == r69
        assert verify_receipts(h, r69, form=69, tx_count=len(body.transactions)) == r69
        assert R.receipts69_to_68(r69) == r68
        blooms = [R.logs_bloom(rlp.split_list(c if c[0] >= 0xC0 else c[1:])[3]) for c in R.receipts69_to_consensus(r69)]
        assert R.combine_blooms(blooms) == h.logs_bloom


def test_all_five_transaction_types_are_covered() -> None:
    block = next(b for b in DERIVED if int(b["number"]) == 22869878)
    types = set(BlockBody.decode(bytes.fromhex(block["body_rlp"])).transaction_types())
    assert types == {0, 1, 2, 3, 4}


def _with_receipts() -> dict:
    return next(b for b in DERIVED if int(b["number"]) == 22869878)


def test_tampered_body_is_rejected() -> None:
    block = _with_receipts()
    h = _h(block)
    body = bytearray(bytes.fromhex(block["body_rlp"]))
    body[200] ^= 1
    with pytest.raises(VerificationError) as info:
        verify_body(h, bytes(body))
    assert info.value.kind == "body" and info.value.number == h.number


def test_body_of_another_block_is_rejected() -> None:
    a, b = DERIVED[-1], DERIVED[-2]
    with pytest.raises(VerificationError):
        verify_body(_h(a), bytes.fromhex(b["body_rlp"]))


def test_missing_withdrawals_are_rejected() -> None:
    block = next(b for b in DERIVED if int(b["number"]) == 17034870)
    parts = rlp.split_list(bytes.fromhex(block["body_rlp"]))
    with pytest.raises(VerificationError, match="withdrawals"):
        verify_body(_h(block), rlp.encode_raw_list([bytes(p) for p in parts[:2]]))


def _fields(raw: bytes) -> list[Any]:
    """The items of an RLP list, loosely typed, for building tampered copies."""
    items = rlp.decode(raw)
    assert isinstance(items, list)
    return items


def test_tampered_receipts_are_rejected() -> None:
    block = _with_receipts()
    h = _h(block)
    r69 = _fields(bytes.fromhex(block["receipts_eth69_rlp"]))
    r69[0][2] = rlp.encode_int(rlp.decode_int(r69[0][2]) + 1)
    with pytest.raises(VerificationError, match="receipts root"):
        verify_receipts(h, rlp.encode(r69), form=69)
    with pytest.raises(VerificationError, match="receipts for"):
        verify_receipts(h, bytes.fromhex(block["receipts_eth69_rlp"]), form=69, tx_count=1)


def test_eth68_receipt_with_wrong_bloom_is_rejected() -> None:
    block = _with_receipts()
    items = rlp.split_list(bytes.fromhex(block["receipts_eth68_rlp"]))
    # Find a receipt with logs and flip a bloom bit.
    for i, item in enumerate(items):
        consensus = item if item[0] >= 0xC0 else rlp.string_payload(item)
        typed = consensus[0] < 0xC0
        fields = _fields(bytes(consensus[1:] if typed else consensus))
        if fields[3]:
            bloom = bytearray(fields[2])
            bloom[0] ^= 0x80
            fields[2] = bytes(bloom)
            enc = rlp.encode(fields)
            new = rlp.encode(bytes(consensus[:1]) + enc) if typed else enc
            tampered = rlp.encode_raw_list([bytes(x) for x in items[:i]] + [new] + [bytes(x) for x in items[i + 1 :]])
            # Verification leaves the bloom to the receipts root, which covers it...
            with pytest.raises(VerificationError, match="receipts root mismatch"):
                verify_receipts(_h(block), tampered, form=68)
            # ...and the conversion, asked to, checks it against the logs by itself.
            with pytest.raises(ReceiptError, match="bloom does not match"):
                receipts68_to_69(tampered)
            return
    pytest.fail("no receipt with logs in the sample block")


def test_partial_receipt_sanity() -> None:
    block = _with_receipts()
    h = _h(block)
    tx_count = len(BlockBody.decode(bytes.fromhex(block["body_rlp"])).transactions)
    lists = rlp.split_list(bytes.fromhex(block["receipts_eth69_rlp"]))
    first_half = rlp.encode_raw_list([bytes(x) for x in lists[:3]])
    assert check_partial_receipts(first_half, start=0, header=h, tx_count=tx_count) == 3
    with pytest.raises(VerificationError, match="reach index"):
        check_partial_receipts(first_half, start=tx_count - 1, header=h, tx_count=tx_count)


def test_header_chain_checks() -> None:
    blocks = read_chain_file(VECTORS / "ethtest/chain.rlp")
    headers = [Header(b.header) for b in blocks[:50]]
    verify_header_chain(headers, 1)
    with pytest.raises(VerificationError, match="expected"):
        verify_header_chain(headers, 2)
    with pytest.raises(VerificationError, match="link"):
        verify_header_chain(headers[5:10], 6, parent=headers[0])
    with pytest.raises(VerificationError, match="expected 11"):
        verify_header_chain(headers[:10] + headers[11:20], 1, parent=None)


def test_unknown_trailing_fields_are_kept() -> None:
    """A future fork's extra header fields don't break decoding, and the hash covers them."""
    prague = next(b for b in DERIVED if int(b["number"]) == 22431084)
    fields = _fields(bytes.fromhex(prague["header_rlp"]))
    future = rlp.encode(fields + [b"\x11" * 32, b"\x05"])
    h = Header(future)
    assert h.field_count == len(fields) + 2
    assert h.hash == keccak(future) and h.requests_hash == fields[20]
    assert h.number == 22431084


def test_malformed_headers_are_rejected() -> None:
    good = bytes.fromhex(DERIVED[0]["header_rlp"])
    fields = _fields(good)
    with pytest.raises(HeaderError):
        Header(rlp.encode(fields[:14]))
    with pytest.raises(HeaderError, match="bytes, must be"):
        Header(rlp.encode([fields[0][:31]] + fields[1:]))
    with pytest.raises(HeaderError, match="canonical"):
        Header(rlp.encode(fields[:8] + [b"\x00\x01"] + fields[9:]))
    with pytest.raises(HeaderError):
        Header(good + b"\x00")
    with pytest.raises(HeaderError):
        Header(b"\xc1")


# ---- geth's devp2p test chain ------------------------------------------------------------------


def test_ethtest_genesis_and_chain() -> None:
    spec = load_genesis(VECTORS / "ethtest/genesis.json")
    assert spec.genesis_hash.hex().startswith("bd6a252a") and spec.genesis_hash.hex().endswith("7533")
    assert spec.network_id == 3503995874084926
    assert spec.time_forks == {"shanghai": 0, "cancun": 60, "prague": 120}
    blocks = read_chain_file(VECTORS / "ethtest/chain.rlp")
    assert len(blocks) == 600
    headers = [Header(b.header) for b in blocks]
    verify_header_chain(headers, 1, parent=Header(spec.genesis_header or b""))
    assert headers[-1].hash.hex().startswith("44e3809c")
    for h, b in zip(headers, blocks, strict=True):
        verify_body(h, b.body)
        verify_fork_fields(h, spec)
    assert sum(not header_proves_empty_body(h) for h in headers) > 500


def test_mainnet_genesis_from_alloc() -> None:
    g = load_vector("mainnet/genesis/reth_mainnet_genesis.json")
    g["config"] = load_vector("mainnet/genesis/mainnet_chain_config_geth.json")["config"]
    spec = chainspec_from_genesis(g, name="mainnet")
    assert spec.genesis_hash == MAINNET.genesis_hash
    assert spec.fork_id() == MAINNET.fork_id()
    assert spec.fork_id(20_000_000, 1_800_000_000) == MAINNET.fork_id(20_000_000, 1_800_000_000)
    want = load_vector("mainnet/genesis/genesishashestest.json")
    assert genesis_header(g).hex() == rlp.split_list(bytes.fromhex(want["genesis_rlp_hex"]))[0].tobytes().hex()


def test_bad_genesis_files_give_clear_errors(tmp_path) -> None:
    p = tmp_path / "g.json"
    p.write_text("{not json")
    with pytest.raises(GenesisError, match="not JSON"):
        load_genesis(p)
    p.write_text(json.dumps({"config": {"chainId": 5}, "difficulty": "zz"}))
    with pytest.raises(GenesisError, match="difficulty"):
        load_genesis(p)
    with pytest.raises(GenesisError, match="cannot read"):
        load_genesis(tmp_path / "missing.json")


# ---- era1 --------------------------------------------------------------------------------------

ERA1 = load_vector("mainnet/era1/era1_summary.json")["files"]


@pytest.mark.parametrize("summary", ERA1, ids=lambda s: s["file"].rsplit("/", 1)[-1])
def test_era1_files_read_and_verify(summary: dict) -> None:
    era = read_era1(VECTORS / summary["file"])
    assert era.accumulator_root.hex() == summary["accumulator_root"]
    assert summary["file"].rsplit("-", 1)[-1].startswith(era.accumulator_root.hex()[:8])
    assert (era.blocks[0].number, era.blocks[-1].number) == (summary["first_block"], summary["last_block"])
    assert era.blocks[0].hash.hex() == summary["first_hash"] and era.blocks[-1].hash.hex() == summary["last_hash"]
    assert era.blocks[-1].total_difficulty == summary["last_total_difficulty"]
    ommers = 0
    for b in era.blocks:
        h = Header(b.header)
        body = verify_body(h, b.body)
        ommers += len(body.ommers())
        verify_receipts(h, b.receipts, form=68, tx_count=len(body.transactions))
    assert ommers == summary["ommers_total"]


def test_era1_first_block_is_mainnet_genesis() -> None:
    era = read_era1(VECTORS / ERA1[0]["file"])
    assert era.blocks[0].hash == MAINNET.genesis_hash


def test_corrupt_era1_is_rejected() -> None:
    data = bytearray((VECTORS / ERA1[0]["file"]).read_bytes())
    with pytest.raises(Era1Error):
        read_era1(bytes(data[: len(data) // 2]))
    data[5000] ^= 0xFF
    with pytest.raises(Era1Error):
        read_era1(bytes(data))
    with pytest.raises(Era1Error):
        read_era1(b"")


def test_a_chain_file_written_from_headers_and_bodies_reads_back_byte_for_byte(tmp_path) -> None:
    from ethp2p.formats.chainfile import write_chain_file

    blocks = read_chain_file(VECTORS / "ethtest/chain.rlp")
    out = tmp_path / "copy.rlp"
    assert write_chain_file(out, ((b.header, b.body) for b in blocks)) == len(blocks)
    assert out.read_bytes() == (VECTORS / "ethtest/chain.rlp").read_bytes()
