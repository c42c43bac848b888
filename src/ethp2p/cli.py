"""The ``ethp2p`` command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from typing import TYPE_CHECKING

from .enode import Enode, EnodeError

if TYPE_CHECKING:
    from .eth.chainspec import ChainSpec


class UserError(Exception):
    """A problem with what the user asked for; printed without a traceback."""


def _load_spec(args: argparse.Namespace) -> "ChainSpec":
    from .eth.chainspec import network
    from .eth.genesis import GenesisError, load_genesis

    if getattr(args, "genesis", None):
        try:
            return load_genesis(args.genesis)
        except GenesisError as e:
            raise UserError(str(e)) from None
    try:
        return network(args.network)
    except ValueError as e:
        raise UserError(str(e)) from None


def _add_network_args(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--network", default="mainnet", help="mainnet (default), sepolia, holesky or hoodi")
    g.add_argument("--genesis", metavar="FILE", help="a geth-style genesis JSON file for any other chain")


def _parse_enode(text: str) -> Enode:
    try:
        node = Enode.parse(text)
    except EnodeError as e:
        raise UserError(f"bad enode URL: {e}") from None
    if node.host is None or not node.tcp_port:
        raise UserError("the enode URL needs an address: enode://<key>@<host>:<port>")
    return node


def cmd_probe(args: argparse.Namespace) -> int:
    from .probe import probe, format_probe

    spec = _load_spec(args)
    node = _parse_enode(args.enode)
    result = asyncio.run(probe(node, spec, timeout=args.timeout))
    print(format_probe(result))
    return 0 if result.error is None else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return asyncio.run(run_demo())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ethp2p", description="Fetch verified Ethereum history straight from devp2p peers.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("probe", help="connect to one peer and print what it says about itself")
    p.add_argument("enode", help="enode://<pubkey>@<host>:<port>")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for each step (default 10)")
    _add_network_args(p)
    p.set_defaults(func=cmd_probe)

    p = sub.add_parser("demo", help="run the offline demo on local peers")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except UserError as e:
        print(f"ethp2p: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
