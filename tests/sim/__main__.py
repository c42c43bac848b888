"""Run one simulated-network scenario by hand and print what happened.

    ./dev.sh sim NAME [--keep DIR]        (or: .venv/bin/python -m tests.sim NAME)

NAME is one of the scenarios in :mod:`tests.sim.scenarios` (``--list`` names them). As root, it
re-runs itself in a private network namespace of its own (``unshare -n``), so the bridge, the
nodes' namespaces and everything they send stay in it and go away with it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from .scenarios import SCENARIOS

    p = argparse.ArgumentParser(prog="python -m tests.sim", description=__doc__.split("\n\n")[0])
    p.add_argument("name", nargs="?", choices=sorted(SCENARIOS), help="the scenario to run")
    p.add_argument("--list", action="store_true", help="name the scenarios and what each does")
    p.add_argument(
        "--keep", metavar="DIR", help="work in DIR and keep it (logs of every node); default: a temporary one"
    )
    args = p.parse_args(argv)
    if args.list or args.name is None:
        for name, fn in sorted(SCENARIOS.items()):
            print(f"{name:<10} {' '.join((fn.__doc__ or '').split())}")
        return 0
    if os.environ.get("ETHP2P_NETNS") != "private":
        if os.geteuid() != 0 or shutil.which("unshare") is None:
            print("tests.sim: needs root and unshare (it makes network namespaces)", file=sys.stderr)
            return 2
        script = 'ip link set lo up && ETHP2P_NETNS=private exec "$@"'
        os.execvp(
            "unshare", ["unshare", "-n", "sh", "-c", script, "sh", sys.executable, "-m", "tests.sim", *sys.argv[1:]]
        )
    from tests.support.stores import mainnet_store

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="ethp2p-sim-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        source = mainnet_store(work / "source.db", derived=False)
        report = SCENARIOS[args.name](work / args.name, source)
        print(report.text())
        print(f"logs: {work / args.name}" if args.keep else "")
        return 0 if report.returncode == 0 else 1
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
