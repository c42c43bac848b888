"""`ethp2p fetch` from a server whose store has no receipts (issue #22: "a fetch can loop forever").

`ethp2p import` of geth's test chain file stores headers and bodies but no receipts (a chain file
has none), so an `ethp2p serve` of that store answers every GetReceipts without the receipts of the
blocks that have transactions. A fetch from it must end, reporting those blocks missing and why,
with each of them asked for a bounded number of times.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from ethp2p.chain.header import Header
from ethp2p.chain.trie import EMPTY_TRIE_ROOT
from ethp2p.store.blocks import BlockStore
from ethp2p.sync.schedule import UNSERVED_AFTER
from tests.conftest import VECTORS
from tests.support.servers import ETHTEST_GENESIS, start_servers

#: The hash of block 600 of geth's test chain (tests/vectors/ethtest/headblock.json).
HEAD_600 = "0x44e3809c9a3cda717f00aea3a9da336d149612c8d5657fbc0028176ef8d94d2a"


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ethp2p.cli", *args], capture_output=True, text=True, timeout=timeout)


def test_fetch_from_a_server_without_receipts_ends_with_them_missing(tmp_path: Path) -> None:
    served = tmp_path / "chainfile.db"
    r = _cli("import", "--store", str(served), "--genesis", str(ETHTEST_GENESIS), str(VECTORS / "ethtest/chain.rlp"))
    assert r.returncode == 0, r.stdout + r.stderr
    with BlockStore(served, readonly=True) as s:
        headers = [Header(raw) for raw in s.headers_by_numbers(range(1, 601)) if raw is not None]
        assert len(headers) == 600
        # The blocks that need receipts (their receipts root is not the empty trie's): none is stored.
        need = [h.number for h in headers if h.receipts_root != EMPTY_TRIE_ROOT]
        assert need and all(s.receipts(h.hash) is None for h in headers if h.receipts_root != EMPTY_TRIE_ROOT)
    [server] = start_servers(1, served, tmp_path, network_args=["--genesis", str(ETHTEST_GENESIS)])
    try:
        # Before the fix this ran until the subprocess timeout (bb618e9: 240 s at 54/601 blocks).
        r = _cli(
            "fetch",
            "0..600",
            "--store",
            str(tmp_path / "fetched.db"),
            "--genesis",
            str(ETHTEST_GENESIS),
            "--bootnodes",
            server.enode,
            "--no-discovery",
            "--dns",
            "",
            "--warmup",
            "0",
            "--checkpoint",
            f"600:{HEAD_600}",
            "--stall-timeout",
            "2",
        )
    finally:
        server.stop()
    out = r.stdout
    assert r.returncode == 1, out + r.stderr
    # Every block without transactions is stored; every block with them is missing, and the summary
    # says that no peer served their receipts.
    with BlockStore(tmp_path / "fetched.db", readonly=True) as s:
        assert s.complete_numbers(0, 600, proven=True) == set(range(601)) - set(need)
    assert f"missing: {len(need)} (first {need[:5]})" in out, out
    assert f"given up: no peer served receipts for {len(need)} blocks ({need[0]}..{need[-1]})" in out, out
    assert f"answered {UNSERVED_AFTER} times without them" in out, out
    # Bounded: no block is asked for more than UNSERVED_AFTER times (each request asks for at least
    # one of them); before, each was asked up to 24 times, and that took some twenty minutes.
    m = re.search(r"bodies (\d+) req .*, receipts (\d+) req", out)
    assert m, out
    bodies, receipts = int(m.group(1)), int(m.group(2))
    assert 0 < receipts <= UNSERVED_AFTER * len(need), out
    assert bodies <= UNSERVED_AFTER * len(need) + 601, out
