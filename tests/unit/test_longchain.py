"""The long test chain (tests/support/longchain.py): valid to every check a client makes, deterministic."""

from __future__ import annotations

from pathlib import Path

from ethp2p import rlp
from ethp2p.chain.genesis import load_genesis
from ethp2p.chain.header import Header
from ethp2p.chain.verify import verify_body, verify_fork_fields, verify_header_chain, verify_receipts
from ethp2p.store.blocks import BlockStore
from tests.support.longchain import build_long_chain, genesis_spec


def _fields(h: Header) -> list[bytes]:
    return [bytes(rlp.string_payload(f)) for f in rlp.split_list(h.raw)]


def test_long_chain_is_linked_valid_and_deterministic(tmp_path: Path) -> None:
    chain = build_long_chain(tmp_path / "a", 300)
    spec = load_genesis(chain.genesis)
    assert spec.genesis_hash == genesis_spec().genesis_hash  # the file written is the chain's genesis
    with BlockStore(chain.store, readonly=True) as s:
        assert s.contiguous_range() == (0, 299) and s.genesis_hash == spec.genesis_hash
        blocks = list(s.canonical_blocks(0, 299))
    headers = [Header(b.header) for b in blocks]
    assert headers[0].raw == spec.genesis_header
    verify_header_chain(headers, 0)
    genesis_fields = _fields(headers[0])
    for b, h in zip(blocks[1:], headers[1:], strict=True):
        verify_fork_fields(h, spec)  # Prague's 21 fields
        assert b.body is not None and b.receipts is not None
        verify_body(h, b.body)
        verify_receipts(h, b.receipts, form=69, tx_count=0)
        assert h.timestamp == headers[0].timestamp + 12 * h.number
        # Every field but the parent hash (0), number (8) and timestamp (11) is the genesis's.
        assert [i for i, (a, g) in enumerate(zip(_fields(h), genesis_fields, strict=True)) if a != g] == [0, 8, 11]
    # The same count gives the same chain; a second build of a complete store reuses it.
    again = build_long_chain(tmp_path / "b", 300)
    assert again.head_hash == chain.head_hash == headers[-1].hash
    reused = build_long_chain(tmp_path / "a", 300)
    assert reused.head_hash == chain.head_hash
