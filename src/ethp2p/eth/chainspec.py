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
    bootnodes=(
        "enode://d860a01f9722d78051619d1e2351aba3f43f943f6f00718d1b9baa4101932a1f5011f16bb2b1bb35db20d6fe28fa0bf09636d26a87d31de9ec6203eeedb1f666@18.138.108.67:30303",
        "enode://22a8232c3abc76a16ae9d6c3b164f98775fe226f0917b0ca871128a74a8e9630b458460865bab457221f1d448dd9791d24c4e5d88786180ac185df813a68d4de@3.209.45.79:30303",
        "enode://2b252ab6a1d0f971d9722cb839a42cb81db019ba44c08754628ab4a823487071b5695317c8ccd085219c3a03af063495b2f1da8d18218da2d6a82981b45e6ffc@65.108.70.101:30303",
        "enode://4aeb4ab6c14b23e2c4cfdce879c04b0748a20d8e9b59e25ded2a08143e265c6c25936e74cbc8e641e3312ca288673d91f2f93f8e277de3cfa444ecdaaf982052@157.90.35.166:30303",
    ),
    dns_trees=("enrtree://AKA3AM6LPBYEUDMVNU3BSVQJ5AD45Y7YPOHJLEF6W26QOE4VTUDPE@all.mainnet.ethdisco.net",),
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
    bootnodes=(
        "enode://4e5e92199ee224a01932a377160aa432f31d0b351f84ab413a8e0a42f4f36476f8fb1cbe914af0d9aef0d51665c214cf653c651c4bbd9d5550a934f241f1682b@138.197.51.181:30303",
        "enode://143e11fb766781d22d92a2e33f8f104cddae4411a122295ed1fdb6638de96a6ce65f5b7c964ba3763bba27961738fef7d3ecc739268f3e5e771fb4c87b6234ba@146.190.1.103:30303",
        "enode://8b61dc2d06c3f96fddcbebb0efb29d60d3598650275dc469c22229d3e5620369b0d3dedafd929835fe7f489618f19f456fe7c0df572bf2d914a9f4e006f783a9@170.64.250.88:30303",
        "enode://10d62eff032205fcef19497f35ca8477bea0eadfff6d769a147e895d8b2b8f8ae6341630c645c30f5df6e67547c03494ced3d9c5764e8622a26587b083b028e8@139.59.49.206:30303",
        "enode://9e9492e2e8836114cc75f5b929784f4f46c324ad01daf87d956f98b3b6c5fcba95524d6e5cf9861dc96a2c8a171ea7105bb554a197455058de185fa870970c7c@138.68.123.152:30303",
    ),
    dns_trees=("enrtree://AKA3AM6LPBYEUDMVNU3BSVQJ5AD45Y7YPOHJLEF6W26QOE4VTUDPE@all.sepolia.ethdisco.net",),
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
    bootnodes=(
        "enode://ac906289e4b7f12df423d654c5a962b6ebe5b3a74cc9e06292a85221f9a64a6f1cfdd6b714ed6dacef51578f92b34c60ee91e9ede9c7f8fadc4d347326d95e2b@146.190.13.128:30303",
        "enode://a3435a0155a3e837c02f5e7f5662a2f1fbc25b48e4dc232016e1c51b544cb5b4510ef633ea3278c0e970fa8ad8141e2d4d0f9f95456c537ff05fdf9b31c15072@178.128.136.233:30303",
    ),
    dns_trees=("enrtree://AKA3AM6LPBYEUDMVNU3BSVQJ5AD45Y7YPOHJLEF6W26QOE4VTUDPE@all.holesky.ethdisco.net",),
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
    bootnodes=(
        "enode://2112dd3839dd752813d4df7f40936f06829fc54c0e051a93967c26e5f5d27d99d886b57b4ffcc3c475e930ec9e79c56ef1dbb7d86ca5ee83a9d2ccf36e5c240c@134.209.138.84:30303",
        "enode://60203fcb3524e07c5df60a14ae1c9c5b24023ea5d47463dfae051d2c9f3219f309657537576090ca0ae641f73d419f53d8e8000d7a464319d4784acd7d2abc41@209.38.124.160:30303",
        "enode://8ae4a48101b2299597341263da0deb47cc38aa4d3ef4b7430b897d49bfa10eb1ccfe1655679b1ed46928ef177fbf21b86837bd724400196c508427a6f41602cd@134.199.184.23:30303",
    ),
    dns_trees=("enrtree://AKA3AM6LPBYEUDMVNU3BSVQJ5AD45Y7YPOHJLEF6W26QOE4VTUDPE@all.hoodi.ethdisco.net",),
)

#: Boot nodes and DNS trees above are geth's defaults (params/bootnodes.go): public addresses,
#: used only when a user runs against the real network, never by the tests.

NETWORKS: dict[str, ChainSpec] = {spec.name: spec for spec in (MAINNET, SEPOLIA, HOLESKY, HOODI)}


def network(name: str) -> ChainSpec:
    """The built-in network called ``name`` (mainnet, sepolia, holesky, hoodi)."""
    try:
        return NETWORKS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown network {name!r}; known: {', '.join(NETWORKS)} (or give a genesis file)") from None
