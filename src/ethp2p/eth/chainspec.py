"""Networks: genesis, network id and fork schedule (mainnet by default; others by name or genesis file)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .. import rlp
from .forkid import ForkId, check_fork_id, compute_fork_id


@dataclass(frozen=True)
class ChainSpec:
    """What a node needs to know about a network to talk eth on it and check its blocks."""

    name: str
    network_id: int
    genesis_hash: bytes
    genesis_timestamp: int
    genesis_difficulty: int
    #: Block-number activations by fork name (geth's ``*Block`` config keys, lower-camel without suffix).
    block_forks: Mapping[str, int]
    #: Timestamp activations by fork name (geth's ``*Time`` keys).
    time_forks: Mapping[str, int]
    #: First proof-of-stake block (headers from here have no difficulty, nonce or ommers), if known.
    paris_block: int | None = None
    chain_id: int | None = None
    bootnodes: tuple[str, ...] = ()
    dns_trees: tuple[str, ...] = ()
    #: The genesis header's RLP when known (custom networks); lets a store serve block 0.
    genesis_header: bytes | None = field(default=None, compare=False, repr=False)

    def fork_id(self, head: int = 0, time: int | None = None) -> ForkId:
        """Our fork id with the given head block number and timestamp (default: at genesis)."""
        t = self.genesis_timestamp if time is None else time
        return compute_fork_id(
            self.genesis_hash,
            list(self.block_forks.values()),
            list(self.time_forks.values()),
            head,
            t,
            self.genesis_timestamp,
        )

    def check_fork_id(self, remote: ForkId, head: int = 0, time: int | None = None) -> None:
        """Raise :class:`~ethp2p.eth.forkid.ForkIdMismatch` if ``remote`` is not on our chain."""
        t = self.genesis_timestamp if time is None else time
        check_fork_id(
            self.genesis_hash,
            list(self.block_forks.values()),
            list(self.time_forks.values()),
            head,
            t,
            remote,
            self.genesis_timestamp,
        )

    def is_active_block(self, fork: str, number: int) -> bool:
        at = self.block_forks.get(fork)
        return at is not None and number >= at

    def is_active_time(self, fork: str, timestamp: int) -> bool:
        at = self.time_forks.get(fork)
        return at is not None and timestamp >= at


def _m(d: dict[str, int]) -> Mapping[str, int]:
    return MappingProxyType(d)


_ALL_ZERO_BLOCKS = {
    name: 0
    for name in (
        "homestead",
        "eip150",
        "eip155",
        "eip158",
        "byzantium",
        "constantinople",
        "petersburg",
        "istanbul",
        "berlin",
        "london",
    )
}

#: Mainnet's genesis header, from its fields (the state root is that of the genesis allocation).
_MAINNET_GENESIS_HEADER = rlp.encode(
    [
        bytes(32),
        bytes.fromhex("1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347"),
        bytes(20),
        bytes.fromhex("d7f8974fb5ac78d9ac099b9ad5018bedc2ce0a72dad1827a1709da30580f0544"),
        bytes.fromhex("56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421"),
        bytes.fromhex("56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421"),
        bytes(256),
        17_179_869_184,
        0,
        5000,
        0,
        0,
        bytes.fromhex("11bbe8db4e347b4e8c937c1c8370e4b5ed33adb3db69cbdb7a38e1e50b1b82fa"),
        bytes(32),
        (66).to_bytes(8, "big"),
    ]
)

MAINNET = ChainSpec(
    name="mainnet",
    network_id=1,
    chain_id=1,
    genesis_hash=bytes.fromhex("d4e56740f876aef8c010b86a40d5f56745a118d0906a34e69aec8c0db1cb8fa3"),
    genesis_timestamp=0,
    genesis_difficulty=17_179_869_184,
    block_forks=_m(
        {
            "homestead": 1_150_000,
            "daoFork": 1_920_000,
            "eip150": 2_463_000,
            "eip155": 2_675_000,
            "eip158": 2_675_000,
            "byzantium": 4_370_000,
            "constantinople": 7_280_000,
            "petersburg": 7_280_000,
            "istanbul": 9_069_000,
            "muirGlacier": 9_200_000,
            "berlin": 12_244_000,
            "london": 12_965_000,
            "arrowGlacier": 13_773_000,
            "grayGlacier": 15_050_000,
        }
    ),
    time_forks=_m(
        {
            "shanghai": 1_681_338_455,
            "cancun": 1_710_338_135,
            "prague": 1_746_612_311,
            "osaka": 1_764_798_551,
            "bpo1": 1_765_290_071,
            "bpo2": 1_767_747_671,
        }
    ),
    paris_block=15_537_394,
    genesis_header=_MAINNET_GENESIS_HEADER,
)

SEPOLIA = ChainSpec(
    name="sepolia",
    network_id=11_155_111,
    chain_id=11_155_111,
    genesis_hash=bytes.fromhex("25a5cc106eea7138acab33231d7160d69cb777ee0c2c553fcddf5138993e6dd9"),
    genesis_timestamp=1_633_267_481,
    genesis_difficulty=0x20000,
    block_forks=_m({**_ALL_ZERO_BLOCKS, "mergeNetsplit": 1_735_371}),
    time_forks=_m(
        {
            "shanghai": 1_677_557_088,
            "cancun": 1_706_655_072,
            "prague": 1_741_159_776,
            "osaka": 1_760_427_360,
            "bpo1": 1_761_017_184,
            "bpo2": 1_761_607_008,
        }
    ),
    paris_block=1_450_409,
)

HOLESKY = ChainSpec(
    name="holesky",
    network_id=17_000,
    chain_id=17_000,
    genesis_hash=bytes.fromhex("b5f7f912443c940f21fd611f12828d75b534364ed9e95ca4e307729a4661bde4"),
    genesis_timestamp=1_695_902_100,
    genesis_difficulty=1,
    block_forks=_m(dict(_ALL_ZERO_BLOCKS)),
    time_forks=_m(
        {
            "shanghai": 1_696_000_704,
            "cancun": 1_707_305_664,
            "prague": 1_740_434_112,
            "osaka": 1_759_308_480,
            "bpo1": 1_759_800_000,
            "bpo2": 1_760_389_824,
        }
    ),
    paris_block=0,
)

HOODI = ChainSpec(
    name="hoodi",
    network_id=560_048,
    chain_id=560_048,
    genesis_hash=bytes.fromhex("bbe312868b376a3001692a646dd2d7d1e4406380dfd86b98aa8a34d1557c971b"),
    genesis_timestamp=1_742_212_800,
    genesis_difficulty=1,
    block_forks=_m(dict(_ALL_ZERO_BLOCKS)),
    time_forks=_m(
        {
            "shanghai": 0,
            "cancun": 0,
            "prague": 1_742_999_832,
            "osaka": 1_761_677_592,
            "bpo1": 1_762_365_720,
            "bpo2": 1_762_955_544,
        }
    ),
    paris_block=0,
)

NETWORKS: dict[str, ChainSpec] = {spec.name: spec for spec in (MAINNET, SEPOLIA, HOLESKY, HOODI)}


def network(name: str) -> ChainSpec:
    """The built-in network called ``name`` (mainnet, sepolia, holesky, hoodi)."""
    try:
        return NETWORKS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown network {name!r}; known: {', '.join(NETWORKS)} (or give a genesis file)") from None
