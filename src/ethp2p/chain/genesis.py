"""Genesis blocks from geth-style genesis JSON: state root, header and a ChainSpec for custom networks."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from .. import rlp
from ..crypto.keccak import EMPTY_KECCAK, keccak
from ..eth.chainspec import ChainSpec
from .header import EMPTY_OMMERS_HASH
from .trie import EMPTY_TRIE_ROOT, secure_trie_root

#: Initial base fee of a London-at-genesis chain (EIP-1559).
INITIAL_BASE_FEE = 1_000_000_000
#: sha256 of nothing: requestsHash of a block without EIP-7685 requests.
EMPTY_REQUESTS_HASH = hashlib.sha256(b"").digest()


class GenesisError(ValueError):
    """The genesis file is malformed or unsupported (the message says which field)."""


def _num(value: Any, what: str) -> int:
    if value is None:
        return 0
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, str):
        try:
            n = int(value, 16) if value.lower().startswith("0x") else int(value)
        except ValueError:
            raise GenesisError(f"{what}: {value!r} is not a number") from None
        if n >= 0:
            return n
    raise GenesisError(f"{what}: {value!r} is not a non-negative number")


def _hex(value: Any, what: str, size: int | None = None) -> bytes:
    if value is None:
        return bytes(size or 0)
    if not isinstance(value, str):
        raise GenesisError(f"{what}: expected a hex string")
    s = value[2:] if value.lower().startswith("0x") else value
    if len(s) % 2:
        s = "0" + s
    try:
        b = bytes.fromhex(s)
    except ValueError:
        raise GenesisError(f"{what}: {value!r} is not hex") from None
    if size is not None:
        if len(b) > size:
            raise GenesisError(f"{what}: longer than {size} bytes")
        b = b.rjust(size, b"\x00")
    return b


def genesis_state_root(alloc: dict[str, Any]) -> bytes:
    """State root of the genesis allocation (accounts with balance, nonce, code and storage)."""
    accounts: dict[bytes, bytes] = {}
    for addr, acct in alloc.items():
        address = _hex(addr, "alloc address", 20)
        if not isinstance(acct, dict):
            raise GenesisError(f"alloc {addr}: expected an object")
        storage: dict[bytes, bytes] = {}
        for slot, val in (acct.get("storage") or {}).items():
            v = int.from_bytes(_hex(val, f"alloc {addr} storage value", 32), "big")
            if v:
                storage[_hex(slot, f"alloc {addr} storage slot", 32)] = rlp.encode(v)
        code = _hex(acct.get("code"), f"alloc {addr} code") if acct.get("code") else b""
        accounts[address] = rlp.encode(
            [
                _num(acct.get("nonce"), f"alloc {addr} nonce"),
                _num(acct.get("balance"), f"alloc {addr} balance"),
                secure_trie_root(storage) if storage else EMPTY_TRIE_ROOT,
                keccak(code) if code else EMPTY_KECCAK,
            ]
        )
    return secure_trie_root(accounts)


def _active_at_genesis(config: dict[str, Any], key: str, timestamp: int) -> bool:
    value = config.get(key)
    return value is not None and _num(value, key) <= timestamp


def genesis_header(genesis: dict[str, Any]) -> bytes:
    """The RLP of the genesis header that ``genesis`` (geth JSON) describes."""
    config = genesis.get("config") or {}
    timestamp = _num(genesis.get("timestamp"), "timestamp")
    state_root = (
        _hex(genesis["stateRoot"], "stateRoot", 32)
        if "stateRoot" in genesis and "alloc" not in genesis
        else genesis_state_root(genesis.get("alloc") or {})
    )
    fields: list[object] = [
        _hex(genesis.get("parentHash"), "parentHash", 32),
        EMPTY_OMMERS_HASH,
        _hex(genesis.get("coinbase"), "coinbase", 20),
        state_root,
        EMPTY_TRIE_ROOT,
        EMPTY_TRIE_ROOT,
        bytes(256),
        _num(genesis.get("difficulty"), "difficulty"),
        _num(genesis.get("number"), "number"),
        _num(genesis.get("gasLimit"), "gasLimit"),
        _num(genesis.get("gasUsed"), "gasUsed"),
        timestamp,
        _hex(genesis.get("extraData"), "extraData"),
        _hex(genesis.get("mixHash"), "mixHash", 32),
        _hex(hex(_num(genesis.get("nonce"), "nonce")), "nonce", 8),
    ]
    if config.get("londonBlock") is not None and _num(config["londonBlock"], "londonBlock") == 0:
        base = genesis.get("baseFeePerGas")
        fields.append(_num(base, "baseFeePerGas") if base is not None else INITIAL_BASE_FEE)
        if _active_at_genesis(config, "shanghaiTime", timestamp):
            fields.append(EMPTY_TRIE_ROOT)
            if _active_at_genesis(config, "cancunTime", timestamp):
                fields += [
                    _num(genesis.get("blobGasUsed"), "blobGasUsed"),
                    _num(genesis.get("excessBlobGas"), "excessBlobGas"),
                    bytes(32),
                ]
                if _active_at_genesis(config, "pragueTime", timestamp):
                    fields.append(EMPTY_REQUESTS_HASH)
    return rlp.encode(fields)


_BLOCK_KEYS = (
    "homesteadBlock",
    "daoForkBlock",
    "eip150Block",
    "eip155Block",
    "eip158Block",
    "byzantiumBlock",
    "constantinopleBlock",
    "petersburgBlock",
    "istanbulBlock",
    "muirGlacierBlock",
    "berlinBlock",
    "londonBlock",
    "arrowGlacierBlock",
    "grayGlacierBlock",
    "mergeNetsplitBlock",
)


def chainspec_from_genesis(
    genesis: dict[str, Any], *, name: str = "custom", network_id: int | None = None
) -> ChainSpec:
    """A ChainSpec for the network a geth genesis JSON describes (network id defaults to the chain id)."""
    config = genesis.get("config")
    if not isinstance(config, dict):
        raise GenesisError("genesis has no config object")
    header = genesis_header(genesis)
    blocks = {}
    for key in _BLOCK_KEYS:
        if config.get(key) is not None:
            if key == "daoForkBlock" and not config.get("daoForkSupport", False):
                continue
            blocks[key.removesuffix("Block")] = _num(config[key], key)
    times = {k.removesuffix("Time"): _num(v, k) for k, v in config.items() if k.endswith("Time") and v is not None}
    chain_id = _num(config.get("chainId"), "chainId") if config.get("chainId") is not None else None
    nid = network_id if network_id is not None else chain_id
    if nid is None:
        raise GenesisError("genesis config has no chainId; give a network id")
    return ChainSpec(
        name=name,
        network_id=nid,
        chain_id=chain_id,
        genesis_hash=keccak(header),
        genesis_timestamp=_num(genesis.get("timestamp"), "timestamp"),
        genesis_difficulty=_num(genesis.get("difficulty"), "difficulty"),
        block_forks=blocks,
        time_forks=times,
        paris_block=_paris_at_genesis(genesis, config),
        genesis_header=header,
    )


def _paris_at_genesis(genesis: dict[str, Any], config: dict[str, Any]) -> int | None:
    ttd = config.get("terminalTotalDifficulty")
    if ttd is None:
        return None
    return 0 if _num(genesis.get("difficulty"), "difficulty") >= _num(ttd, "terminalTotalDifficulty") else None


def load_genesis(path: str | Path, *, network_id: int | None = None) -> ChainSpec:
    """Read a geth genesis JSON file into a ChainSpec (clear errors for a bad file)."""
    p = Path(path)
    try:
        genesis = json.loads(p.read_text())
    except OSError as e:
        raise GenesisError(f"cannot read genesis file {p}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise GenesisError(f"genesis file {p} is not UTF-8 text: {e.reason} at byte {e.start}") from None
    except json.JSONDecodeError as e:
        raise GenesisError(f"genesis file {p} is not JSON: {e}") from None
    if not isinstance(genesis, dict):
        raise GenesisError(f"genesis file {p} must hold a JSON object")
    return chainspec_from_genesis(genesis, name=p.stem, network_id=network_id)
