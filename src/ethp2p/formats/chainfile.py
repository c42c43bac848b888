"""RLP chain files (geth ``export`` format): blocks as concatenated RLP lists.

Each block is ``[header, transactions, ommers]`` or, from Shanghai on,
``[header, transactions, ommers, withdrawals]``. The reader splits the file
without re-encoding anything: the header bytes and the body (the same list
minus the header, as eth's BlockBodies carries it) are slices of the input.
"""

from __future__ import annotations

import mmap
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from pathlib import Path

from .. import rlp
from ..crypto.keccak import keccak

#: Bound on one block in a chain file (geth's own limit on a block is far lower).
MAX_BLOCK_SIZE = 64 * 1024 * 1024


class ChainFileError(ValueError):
    """The chain file is malformed; the message says at which offset."""


@dataclass(frozen=True, slots=True)
class ChainFileBlock:
    """One block from a chain file, as raw bytes."""

    number: int
    hash: bytes
    header: bytes
    body: bytes


def iter_chain_file(data: bytes | memoryview | mmap.mmap) -> Generator[ChainFileBlock, None, None]:
    """Yield every block in an RLP chain file's contents, in file order."""
    mv = memoryview(data)
    pos = 0
    end = len(mv)
    while pos < end:
        try:
            is_list, start, length = rlp.header(mv, pos)
        except rlp.RLPDecodeError as e:
            raise ChainFileError(f"bad block at offset {pos}: {e}") from None
        if not is_list:
            raise ChainFileError(f"expected a block (RLP list) at offset {pos}")
        if length > MAX_BLOCK_SIZE:
            raise ChainFileError(f"block at offset {pos} is {length} bytes, over {MAX_BLOCK_SIZE}")
        stop = start + length
        try:
            parts = rlp.split_payload(mv[start:stop], max_items=4)
            if len(parts) < 3 or not all(rlp.is_list_item(p) for p in parts):
                raise ChainFileError(f"block at offset {pos} must be [header, txs, ommers(, withdrawals)]")
            header = bytes(parts[0])
            fields = rlp.split_list(header)
            if len(fields) < 15:
                raise ChainFileError(f"header at offset {pos} has {len(fields)} fields, needs at least 15")
            number = rlp.decode_int(rlp.string_payload(fields[8]), max_bytes=8)
        except rlp.RLPDecodeError as e:
            raise ChainFileError(f"bad block at offset {pos}: {e}") from None
        body = rlp.encode_raw_list([bytes(p) for p in parts[1:]])
        yield ChainFileBlock(number, keccak(header), header, body)
        pos = stop


def read_chain_file(path: str | Path) -> list[ChainFileBlock]:
    """All blocks of the chain file at ``path``."""
    return list(iter_chain_file(Path(path).read_bytes()))


def encode_block(header: bytes, body: bytes) -> bytes:
    """One chain-file block from a raw header and its raw body (``[txs, ommers(, withdrawals)]``)."""
    return rlp.encode_raw_list([header, *(bytes(p) for p in rlp.split_list(body))])


def write_chain_file(path: str | Path, blocks: Iterable[tuple[bytes, bytes]]) -> int:
    """Write ``(header, body)`` pairs as an RLP chain file (what geth and @ethereumjs/client import);
    return the number of blocks written."""
    n = 0
    with open(path, "wb") as f:
        for header, body in blocks:
            f.write(encode_block(header, body))
            n += 1
    return n
