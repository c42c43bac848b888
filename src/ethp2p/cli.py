"""The ``ethp2p`` command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from . import __version__
from .enode import Enode, EnodeError
from .logs import FORMATS
from .logs import configure as configure_logging

if TYPE_CHECKING:
    from .crypto.keys import PrivateKey
    from .eth.chainspec import ChainSpec
    from .export import ExportOptions, ExportPlan
    from .fetch.verifier import InlineVerifier, ProcessVerifier, ThreadVerifier
    from .metrics import Metrics
    from .peers.network import PeerNetwork
    from .store.blocks import BlockStore
    from .store.peers import PeerCache
    from .trust import Anchors

    Verifier = InlineVerifier | ThreadVerifier | ProcessVerifier
    M = TypeVar("M", bound=Metrics)


class UserError(Exception):
    """A problem with what the user asked for; printed without a traceback."""


def _load_spec(args: argparse.Namespace) -> ChainSpec:
    from .chain.genesis import GenesisError, load_genesis
    from .eth.chainspec import network

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


def _add_anchor_args(p: argparse.ArgumentParser, *, agreement: bool = True) -> None:
    p.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        metavar="NUMBER:HASH",
        help="a block hash you trust from elsewhere (your consensus client, an explorer); "
        "blocks that link down from it are proven (repeatable)",
    )
    if agreement:
        p.add_argument(
            "--trust",
            choices=("agreement", "strict"),
            default="agreement",
            help="above every checkpoint, 'agreement' (default) accepts a head hash served by "
            "--agreement-peers peers on distinct networks, labelled peer-agreement; 'strict' refuses it",
        )
        p.add_argument(
            "--agreement-peers",
            type=_agreement_peers,
            default=3,
            metavar="N",
            help="peers that must agree on a hash (default 3; at most 16, the most ever asked)",
        )
        p.add_argument(
            "--agreement-prefix",
            type=_int_at_least(0, 32),
            default=16,
            metavar="BITS",
            help="agreeing peers' IPv4 addresses must differ in their first BITS bits (default 16)",
        )


def _agreement_peers(text: str) -> int:
    """``--agreement-peers``: 1 up to the most peers ever asked to agree (more could never be met)."""
    from .trust.anchors import MAX_AGREEMENT_PEERS

    n = _int_at_least(1)(text)
    if n > MAX_AGREEMENT_PEERS:
        raise argparse.ArgumentTypeError(
            f"{n} can never be met: at most {MAX_AGREEMENT_PEERS} peers are asked to agree on a block"
        )
    return n


def _anchors(args: argparse.Namespace, spec: ChainSpec) -> Anchors:
    """The anchors for ``spec``'s chain plus ``--checkpoint``s, under ``--trust``."""
    from .trust import AgreementRule, AnchorError, anchors_for, parse_checkpoint

    try:
        extra = [parse_checkpoint(c) for c in args.checkpoint]
        rule = AgreementRule(
            min_peers=getattr(args, "agreement_peers", 3), ipv4_prefix=getattr(args, "agreement_prefix", 16)
        )
        return anchors_for(
            spec.genesis_hash, extra, strict=getattr(args, "trust", "agreement") == "strict", agreement=rule
        )
    except AnchorError as e:
        raise UserError(str(e)) from None


def _parse_enode(text: str) -> Enode:
    try:
        node = Enode.parse(text)
    except EnodeError as e:
        raise UserError(f"bad enode URL: {e}") from None
    if node.host is None or not node.tcp_port:
        raise UserError("the enode URL needs an address: enode://<key>@<host>:<port>")
    return node


def cmd_probe(args: argparse.Namespace) -> int:
    from .probe import format_probe, probe

    spec = _load_spec(args)
    node = _parse_enode(args.enode)
    result = asyncio.run(probe(node, spec, timeout=args.timeout))
    print(format_probe(result))
    return 0 if result.error is None else 1


def _node_key(args: argparse.Namespace) -> PrivateKey:
    from .crypto.keys import InvalidKey, PrivateKey

    if getattr(args, "key", None):
        try:
            return PrivateKey(bytes.fromhex(args.key.removeprefix("0x")))
        except (ValueError, InvalidKey) as e:
            raise UserError(f"bad --key (need 32 bytes of hex): {e}") from None
    if getattr(args, "key_file", None):
        path = Path(args.key_file)
        try:
            if path.exists():
                try:
                    return PrivateKey(bytes.fromhex(path.read_text().strip()))
                except (ValueError, InvalidKey) as e:  # UnicodeDecodeError is a ValueError too
                    raise UserError(f"bad key file {path}: {e}") from None
            key = PrivateKey.generate()
            path.write_text(key.to_bytes().hex() + "\n")
            path.chmod(0o600)
        except OSError as e:  # a directory, no permission, a missing parent
            raise UserError(f"cannot use key file {path}: {e.strerror}") from None
        return key
    return PrivateKey.generate()


def _open_store(args: argparse.Namespace, spec: ChainSpec, *, create: bool) -> BlockStore:
    """Open ``args.store`` for ``spec``; ``--keep-page-cache`` (where offered) keeps written pages cached."""
    from .store.blocks import BlockStore, StoreError

    path = Path(args.store)
    if not create and not path.exists():
        raise UserError(f"store not found: {path} (create one with 'ethp2p import' or 'ethp2p fetch')")
    try:
        return BlockStore(
            path, genesis_hash=spec.genesis_hash, drop_page_cache=not getattr(args, "keep_page_cache", False)
        )
    except StoreError as e:
        raise UserError(str(e)) from None


def cmd_import(args: argparse.Namespace) -> int:
    from .progress import Progress
    from .store.importer import ChainImportError, ensure_genesis, import_file

    spec = _load_spec(args)
    anchors = _anchors(args, spec)
    store = _open_store(args, spec, create=True)
    try:
        ensure_genesis(store, spec)
        total = 0
        for name in args.files:
            with Progress(f"import {Path(name).name}", unit="blocks") as bar:
                try:
                    result = import_file(store, name, spec, bar.advance, anchors=anchors)
                except ChainImportError as e:
                    raise UserError(str(e)) from None
            if result.first is None:  # not one block in it (an empty or truncated file)
                raise UserError(f"{name}: no blocks in the file (empty, or not a chain file or era1 archive)")
            total += result.blocks
            print(
                f"{name}: {result.blocks} {result.kind} blocks ({result.first}..{result.last}): "
                f"{result.describe_proofs()}"
            )
            for note in result.notes:
                print(f"  {note}")
        rng = store.block_range()
        print(f"store {args.store}: {store.count()} blocks, range {rng[0]}..{rng[1]}" if rng else "store is empty")
    finally:
        store.close()
    return 0


def _existing_store(args: argparse.Namespace, *, readonly: bool) -> BlockStore:
    """The store ``args.store`` names, which must exist (for commands that only read or re-check it)."""
    from .store.blocks import BlockStore, StoreError

    path = Path(args.store)
    if not path.exists():
        raise UserError(f"store not found: {path}")
    try:
        return BlockStore(path, readonly=readonly)
    except StoreError as e:
        raise UserError(str(e)) from None


def cmd_verify(args: argparse.Namespace) -> int:
    from .store.verify import verify_store

    start, end = _parse_range(args.range) if args.range else (0, None)
    store = _existing_store(args, readonly=False)
    path = Path(args.store)
    try:
        genesis = store.genesis_hash
        if genesis is None:
            raise UserError(f"store {path} names no genesis: it can't be checked against a chain's anchors")
        from .trust import AnchorError, anchors_for, parse_checkpoint

        try:
            anchors = anchors_for(genesis, [parse_checkpoint(c) for c in args.checkpoint])
        except AnchorError as e:
            raise UserError(str(e)) from None
        report = verify_store(store, anchors, start, end, write=not args.dry_run)
    finally:
        store.close()
    for line in report.lines():
        print(line)
    return 0 if report.ok else 1


def _start_metrics(args: argparse.Namespace, kind: type[M]) -> M | None:
    """The ``--metrics HOST:PORT`` endpoint, listening (None without the option); a bad address or a
    port that can't be bound is a :class:`UserError`, before the command touches the network."""
    if not args.metrics:
        return None
    from .metrics import MetricsAddressError, parse_address

    try:
        host, port = parse_address(args.metrics)
    except MetricsAddressError as e:
        raise UserError(str(e)) from None
    metrics = kind()
    try:
        metrics.listen(host, port)
    except OSError as e:
        raise UserError(f"cannot serve --metrics at {args.metrics}: {e.strerror or e}") from None
    return metrics


def cmd_serve(args: argparse.Namespace) -> int:
    from .metrics import ServeMetrics
    from .peers.admission import InboundLimits
    from .peers.eth_peer import DEFAULT_ETH_VERSIONS
    from .serve.roles import GROW_BY, GROW_EVERY
    from .serve.server import HistoryServer

    versions = _eth_versions(args.eth_versions) if args.eth_versions is not None else None
    if args.grow_from is None and (args.grow_every is not None or args.grow_by is not None):
        raise UserError("--grow-every and --grow-by are only for --grow-from")
    metrics = _start_metrics(args, ServeMetrics)
    spec = _load_spec(args)
    store = _open_store(args, spec, create=False)
    key = _node_key(args)

    async def run() -> None:
        import signal

        misbehave = None
        if args.misbehave:
            from .serve.adversary import parse_misbehaviour

            try:
                misbehave = parse_misbehaviour(args.misbehave)
            except ValueError as e:
                raise UserError(str(e)) from None
        if args.fork_block is not None:
            from .serve.adversary import Misbehaviour

            if misbehave is not Misbehaviour.FORK:
                raise UserError("--fork-block is only for --misbehave fork")
            if args.fork_block < 1:
                raise UserError(f"--fork-block must be at least 1, got {args.fork_block}")
        try:
            server = HistoryServer(
                store,
                spec,
                key=key,
                host=args.host,
                port=args.port,
                max_inbound=args.max_inbound,
                inbound_limits=InboundLimits.for_inbound(
                    args.max_inbound,
                    max_sessions_per_address=args.sessions_per_address,
                    max_pending_per_address=min(args.handshakes_per_address, 2 * args.max_inbound),
                ),
                misbehave=misbehave,
                fork_block=args.fork_block,
                discovery=args.discovery,
                bootnodes=_bootnodes(args) or (),
                versions=versions if versions is not None else DEFAULT_ETH_VERSIONS,
                answer_delay=args.answer_delay,
                pace_importers=not args.no_pacing,
                expire_before=args.expire_before,
                grow_from=args.grow_from,
                grow_every=GROW_EVERY if args.grow_every is None else args.grow_every,
                grow_by=GROW_BY if args.grow_by is None else args.grow_by,
            )
        except ValueError as e:
            from .serve.adversary import ForkError
            from .serve.roles import RoleError

            if isinstance(e, RoleError):
                raise UserError(f"--{e.setting.replace('_', '-')}: {e}") from None
            if not isinstance(e, ForkError):
                raise
            raise UserError(str(e)) from None  # a fork block that does not fit the store
        await server.start()
        watcher = asyncio.create_task(metrics.run(lambda: metrics.update(server))) if metrics is not None else None
        if server.fork_block is not None:
            print(f"misbehaving: serving a fork of the store from block {server.fork_block} on", flush=True)
        for line in _role_lines(args, server):
            print(line, flush=True)
        print(
            f"serving {spec.name} blocks {server.head.earliest}..{server.head.number} at {server.enode.url()}",
            flush=True,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.close()
        if watcher is not None:
            watcher.cancel()
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(server.stats.disconnect_reasons.items())) or "none"
        print(f"stopped; sessions served: {server.stats.sessions}; endings: {reasons}", flush=True)
        served = server.requests_served()
        print(
            "requests answered: "
            + ", ".join(f"{kind} {served.get(kind, 0)}" for kind in ("headers", "bodies", "receipts"))
            + f"; range updates sent: {server.stats.range_updates_sent}",
            flush=True,
        )
        if server.stats.refused or server.stats.handshake_failures:
            from .peers.listener import REFUSALS

            refused = ", ".join(f"{REFUSALS[k]}: {n}" for k, n in sorted(server.stats.refused.items())) or "none"
            print(
                f"inbound connections refused: {refused}; handshakes failed: {server.stats.handshake_failures}",
                flush=True,
            )
        if server.stats.answers_paced:
            print(
                f"answers paced for a client's importer: {server.stats.answers_paced} "
                f"({server.stats.seconds_paced:.1f} s held in all)",
                flush=True,
            )
        if server.roles is not None and server.roles.expire_before:
            st = server.roles.stats
            print(
                f"expired history: requests that reached a block below {server.roles.expire_before}: "
                f"bodies {st.expired_body_requests}, receipts {st.expired_receipt_requests}",
                flush=True,
            )

    try:
        asyncio.run(run())
    except BrokenPipeError:
        raise  # what read our output went away: main() ends quietly; it is no listening problem
    except OSError as e:
        raise UserError(f"cannot listen on {args.host}:{args.port}: {e.strerror or e}") from None
    finally:
        store.close()
    return 0


def _role_lines(args: argparse.Namespace, server: Any) -> list[str]:
    """What ``serve`` says at start about the simulation roles it plays (none: nothing)."""
    out: list[str] = []
    if args.eth_versions is not None:
        out.append(f"eth versions offered: {', '.join(f'eth/{v}' for v in server.versions)}")
    if args.answer_delay:
        out.append(f"answering each request after {args.answer_delay:g} s")
    if args.expire_before:
        out.append(
            f"expired history: headers of every stored block, bodies and receipts from block {args.expire_before}"
        )
    if args.grow_from is not None:
        out.append(f"growing from block {args.grow_from} by {server.grow_by} every {server.grow_every:g} s")
    return out


def _peer_network_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--bootnodes", metavar="ENODES", help="comma-separated enode URLs (default: the network's; '' for none)"
    )
    p.add_argument(
        "--dns", metavar="URLS", help="comma-separated enrtree:// URLs (default: the network's; '' for none)"
    )
    p.add_argument(
        "--dns-resolver",
        metavar="HOST[:PORT]",
        help="the DNS server (an IP address; port 53 by default, [v6]:PORT for IPv6) to ask for the --dns "
        "trees (default: the system's resolver)",
    )
    p.add_argument("--no-discovery", action="store_true", help="don't run discv4 (dial only boot nodes and the cache)")
    p.add_argument("--store", metavar="FILE", help="SQLite file for the peer cache (and blocks)")
    p.add_argument("--peers", type=_int_at_least(1), default=1, help="wait for this many peers (default 1)")
    p.add_argument(
        "--timeout",
        type=_seconds(0.0, MAX_WAIT, above=True),
        default=None,
        help="give up after this many seconds (default: never)",
    )
    _add_network_args(p)


def _connect(
    args: argparse.Namespace, spec: ChainSpec, boot: list[str] | None, **extra: Any
) -> contextlib.AbstractAsyncContextManager[PeerNetwork]:
    """The peer network that the options of :func:`_peer_network_args` ask for (``extra``: e.g.
    ``limits``, ``on_start``, ``dns_resolver``), as an ``async with`` context."""
    from .peers.network import connect

    return connect(
        spec,
        peer_book=_peer_book(args.store),
        bootnodes=boot,
        min_peers=args.peers,
        timeout=args.timeout,
        discovery=not args.no_discovery,
        dns=_dns(args),
        **extra,
    )


def _comma_list(text: str) -> list[str]:
    """The non-empty, stripped items of a comma-separated option value."""
    return [x.strip() for x in text.split(",") if x.strip()]


def _bootnodes(args: argparse.Namespace) -> list[str] | None:
    """The ``--bootnodes`` given (None: not given, so the network's; ``""``: none at all)."""
    if args.bootnodes is None:
        return None
    nodes = _comma_list(args.bootnodes)
    for n in nodes:
        _parse_enode(n)
    return nodes


def _dns(args: argparse.Namespace) -> list[str] | None:
    if args.dns is None:
        return None
    from .discovery.dns import DNSDiscoveryError, TreeURL

    urls = _comma_list(args.dns)
    for u in urls:
        try:
            TreeURL.parse(u)
        except DNSDiscoveryError as e:
            raise UserError(str(e)) from None
    return urls


def _parse_resolver_address(text: str) -> tuple[str, int]:
    """``--dns-resolver``: (IP address, port) from ``HOST``, ``HOST:PORT`` or ``[V6]:PORT`` (port 53 by default)."""
    import ipaddress

    host, port_text = text.strip(), ""
    if host.startswith("["):
        host, sep, rest = host[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise UserError(f"bad --dns-resolver {text!r}: use HOST[:PORT] or [IPV6]:PORT")
        port_text = rest[1:]
    elif host.count(":") == 1:
        host, port_text = host.split(":")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise UserError(f"bad --dns-resolver {text!r}: the DNS server must be an IP address") from None
    port = 53
    if port_text or text.strip().endswith(":"):
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise UserError(f"bad --dns-resolver {text!r}: the port must be 1..65535")
        port = int(port_text)
    return str(ip), port


def _dns_resolver(args: argparse.Namespace) -> object | None:
    """The DNS lookups ``--dns-resolver`` asks for (None: the system's resolver)."""
    if args.dns_resolver is None:
        return None
    from .discovery.dns import dnspython_resolver

    host, port = _parse_resolver_address(args.dns_resolver)
    return dnspython_resolver(host, port)


def _peer_book(path: str | Path | None) -> PeerCache | None:
    """The peer cache in ``--store`` (the peer network's book of peers across runs), if given."""
    from .store.blocks import StoreError
    from .store.peers import PeerCache

    try:
        return None if path is None else PeerCache(path)
    except StoreError as e:
        raise UserError(str(e)) from None


def cmd_head(args: argparse.Namespace) -> int:
    from .fetch import discover_head_p2p
    from .peers.limits import p2p_limits
    from .peers.network import NoPeersError

    spec = _load_spec(args)
    anchors = _anchors(args, spec)
    boot = _bootnodes(args)
    resolver = _dns_resolver(args)

    async def run() -> int:
        async with _connect(
            args, spec, boot, limits=p2p_limits(peer_start_warmup=0.5), dns_resolver=resolver
        ) as network:
            head = await discover_head_p2p(network.pool, args.baseline, probe_peers=args.probe_peers, anchors=anchors)
            if head.hash is None:
                print(f"no peer served headers above block {args.baseline}")
                return 1
            how = head.proof.label if head.proof is not None else "NOT PROVEN"
            print(
                f"head: #{head.number} 0x{head.hash.hex()} ({how}: {head.proof_note}; linked headers from "
                f"{len(head.per_peer)} peer(s), {head.requests} requests)"
            )
            if head.proof is None:
                print(
                    "  anchor it with --checkpoint NUMBER:HASH (a hash you trust, e.g. from your consensus client), "
                    "or connect to more peers on distinct networks (--peers)"
                )
            return 0 if head.proof is not None else 1

    try:
        return asyncio.run(run())
    except NoPeersError as e:
        raise UserError(str(e)) from None


def cmd_peers(args: argparse.Namespace) -> int:
    from .peers.network import NoPeersError
    from .summary import found_text

    spec = _load_spec(args)
    boot = _bootnodes(args)
    resolver = _dns_resolver(args)

    async def run() -> int:
        async with _connect(args, spec, boot, dns_resolver=resolver) as network:
            rounds = 0
            while args.rounds is None or rounds < args.rounds:
                rounds += 1
                print(f"--- {len(network.pool)} peers")
                for p in network.pool.snapshot():
                    rng = f"{p.block_range[0]}..{p.block_range[1]}" if p.block_range else "-"
                    addr = f"{p.address[0]}:{p.address[1]}" if p.address else "?"
                    print(
                        f"{p.peer_id.hex()[:16]}  {p.client_id[:40]:40}  eth/{p.eth_version}  "
                        f"head={p.head_number if p.head_number is not None else '?'}  range={rng}  {addr}  "
                        f"{p.direction}"
                    )
                st = network.p2p_stats
                print(
                    f"stats: established={st.sessions_established} closed={st.sessions_closed} "
                    f"discovered={st.discovered_count} genesis_mismatch={st.genesis_mismatch_count} "
                    f"dials={st.dials_attempted}/{st.dials_failed} failed bans={st.bans}",
                    flush=True,
                )
                print(f"peers: {found_text(st)}, {st.peers_connected:,} connected", flush=True)
                if args.rounds is None or rounds < args.rounds:
                    await asyncio.sleep(args.interval)
            return 0

    try:
        return asyncio.run(run())
    except NoPeersError as e:
        raise UserError(str(e)) from None


#: The highest block number a store can hold (SQLite integers are signed 64-bit).
MAX_BLOCK_NUMBER = 2**63 - 1


def _int_at_least(lo: int, hi: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer in ``lo..hi`` (no upper bound when ``hi`` is None)."""

    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if n < lo or (hi is not None and n > hi):
            raise argparse.ArgumentTypeError(
                f"{n} is out of range ({lo}..{hi})" if hi is not None else f"must be at least {lo}, not {n}"
            )
        return n

    return parse


#: The longest wait a ``--timeout``-like option takes (a day), and the longest ``fetch --warmup``.
MAX_WAIT = 86_400.0
MAX_WARMUP = 600.0


def _seconds(lo: float, hi: float, *, above: bool = False) -> Callable[[str], float]:
    """An argparse type: a number of seconds in ``lo..hi`` (``above``: more than ``lo``)."""

    def parse(text: str) -> float:
        try:
            x = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
        if not (lo < x <= hi if above else lo <= x <= hi):  # also NaN
            what = f"more than {lo:g} and at most {hi:g} seconds" if above else f"{lo:g}..{hi:g} seconds"
            raise argparse.ArgumentTypeError(f"{text} is out of range ({what})")
        return x

    return parse


def _eth_versions(text: str) -> tuple[int, ...]:
    """``--eth-versions``: a comma-separated, non-empty subset of the eth versions ethp2p speaks."""
    from .eth.messages import SUPPORTED_VERSIONS

    known = ",".join(map(str, SUPPORTED_VERSIONS))
    try:
        versions = [int(v) for v in _comma_list(text)]
    except ValueError:
        raise UserError(f"bad --eth-versions {text!r}: use a comma-separated subset of {known}") from None
    if not versions or not set(versions) <= set(SUPPORTED_VERSIONS):
        raise UserError(f"bad --eth-versions {text!r}: use a comma-separated subset of {known}")
    return tuple(sorted(set(versions)))


def _parse_range(text: str) -> tuple[int, int]:
    try:
        a, sep, b = text.partition("..")
        if not sep:
            raise ValueError
        start, end = int(a), int(b)
    except ValueError:
        raise UserError(f"bad range {text!r}: use START..END, e.g. 0..16383") from None
    if start < 0 or end < start:
        raise UserError(f"bad range {text!r}: need 0 <= START <= END")
    if end > MAX_BLOCK_NUMBER:
        raise UserError(f"bad range {text!r}: block numbers go up to {MAX_BLOCK_NUMBER:,} (2^63 - 1)")
    return start, end


def cmd_fetch(args: argparse.Namespace) -> int:
    from .fetch import re_probe_peer_head
    from .metrics import FetchMetrics
    from .peers.limits import p2p_limits
    from .peers.network import NoPeersError
    from .progress import Progress
    from .store.importer import ensure_genesis
    from .sync.range import RangeFetcher

    start, end = _parse_range(args.range)
    spec = _load_spec(args)
    anchors = _anchors(args, spec)
    boot = _bootnodes(args)
    resolver = _dns_resolver(args)
    metrics = _start_metrics(args, FetchMetrics)
    verifier = _verifier(args.verify_workers)
    from . import accel

    if accel.speedups is None:
        print(f"ethp2p: warning: verifying in pure Python, about 3x slower ({accel.reason})", file=sys.stderr)
    store = _open_store(args, spec, create=True)
    ensure_genesis(store, spec)
    follower = None
    if args.export:
        from .export import ExportError
        from .export.follow import ExportFollower

        follower = ExportFollower(args.store, _export_options(args, args.export, start, end))
        try:
            follower.check()
        except ExportError as e:
            store.close()
            raise UserError(str(e)) from None

    async def run() -> int:
        import signal

        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)  # type: ignore[union-attr]
        running: list[RangeFetcher] = []  # the fetcher, once the network has its peers
        watchers: list[asyncio.Task[None]] = []

        def update_metrics(network: PeerNetwork) -> None:
            assert metrics is not None
            metrics.update(network, running[0].stats if running else None)

        def watch(network: PeerNetwork) -> None:
            """Keep the metrics live from the network's start (peers connect during the warm-up)."""
            if metrics is not None:
                watchers.append(asyncio.create_task(metrics.run(lambda: update_metrics(network))))

        try:
            limits = p2p_limits(peer_start_warmup=args.warmup)
            async with _connect(args, spec, boot, limits=limits, on_start=watch, dns_resolver=resolver) as network:
                seeded = {}
                if network.cache_load is not None:
                    seeded = {p.peer_id: p.aimd_batch_limit for p in network.cache_load.peers if p.aimd_batch_limit}
                with Progress("fetch", total=end - start + 1, unit="blocks") as bar:
                    fetcher = RangeFetcher(
                        lambda: network.pool.snapshot(),
                        store,
                        start,
                        end,
                        on_blocks=bar.advance,
                        batch_limits=seeded,
                        reprobe=lambda peer, n: re_probe_peer_head(network.pool, peer, n),
                        verifier=verifier,
                        anchors=anchors,
                        stall_timeout=args.stall_timeout,
                    )
                    running.append(fetcher)

                    async def status() -> None:
                        while True:
                            await asyncio.sleep(1)
                            bar.extra = f"peers {len(network.pool)}  faults {len(fetcher.stats.faults)}"

                    ticker = asyncio.create_task(status())
                    exporting = asyncio.create_task(follower.run()) if follower is not None else None
                    interrupted = False
                    try:
                        stats = await fetcher.run()
                    except asyncio.CancelledError:
                        interrupted = True
                        stats = fetcher.stats
                    finally:
                        ticker.cancel()
                        if metrics is not None:
                            update_metrics(network)  # the final counts, for a scrape after the fetch
                    if exporting is not None and follower is not None:
                        follower.finish()
                        bar.extra = "writing the last export chunks"
                        await asyncio.shield(exporting)
                for peer in network.pool.snapshot():
                    limit = fetcher.limits.get(peer.peer_id)
                    if limit:
                        network.remember(peer, limit)
        finally:
            for w in watchers:
                w.cancel()
        s = stats
        rate = s.verified_blocks / s.seconds if s.seconds else 0.0
        print(
            ("interrupted; everything fetched so far is stored\n" if interrupted else "")
            + f"verified blocks: {s.verified_blocks:,} new, {s.skipped_present:,} already stored; "
            f"{s.bytes / 1e6:.1f} MB in {s.seconds:.1f} s ({rate:,.0f} blocks/s)"
        )
        st = s.stage
        print(
            f"per stage: headers {st.headers_requests} req {st.headers_ms / 1000:.1f} s, "
            f"bodies {st.bodies_requests} req {st.bodies_ms / 1000:.1f} s, "
            f"receipts {st.receipts_requests} req {st.receipts_ms / 1000:.1f} s, "
            f"verify {st.verify_ms / 1000:.1f} s ({_verifier_name(verifier)})"
        )
        import resource

        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        workers_rss = verifier.peak_rss() / 2**20
        from .summary import given_up_lines, peers_lines, proof_lines

        for line in peers_lines(network.p2p_stats, s):
            print(line)
        print(
            f"faults: {len(s.faults)}; escalated blocks: {s.escalated}; "
            f"missing: {len(s.missing)}" + (f" (first {s.missing[:5]})" if s.missing else "")
        )
        print(
            f"peak memory: {rss:.0f} MB RSS"
            + (
                f" (+ at most {workers_rss:.0f} MB in each of {getattr(verifier, 'workers', 0)} verify workers)"
                if workers_rss
                else ""
            )
            + f"; most blocks buffered: {s.max_buffered:,}"
        )
        for f in [f for f in s.faults if ": wrong-chain: " not in f][:5]:
            print(f"  fault: {f[:160]}")
        for line in given_up_lines(s) + proof_lines(s):
            print(line)
        if follower is not None:
            for line in follower.result.lines():
                print(line)
            if follower.error:
                print(f"export stopped: {follower.error}")
                return 130 if interrupted else 1
        return 130 if interrupted else (0 if not s.missing else 1)

    try:
        return asyncio.run(run())
    except NoPeersError as e:
        raise UserError(str(e)) from None
    finally:
        verifier.close()
        store.close()


def _verifier(workers: int | None) -> Verifier:
    """Where ``fetch`` checks blocks: ``--verify-workers`` threads (with the C extension, which
    releases the GIL while it hashes) or processes (pure Python), or inline for 0."""
    from . import accel
    from .fetch.verifier import MAX_WORKERS, InlineVerifier, ProcessVerifier, ThreadVerifier

    if workers == 0:
        return InlineVerifier()
    if workers is not None and not 1 <= workers <= MAX_WORKERS:
        raise UserError(f"--verify-workers must be 0..{MAX_WORKERS}, got {workers}")
    return ThreadVerifier(workers) if accel.speedups is not None else ProcessVerifier(workers)


def _verifier_name(verifier: Verifier) -> str:
    """How blocks were verified, for the summary: "C extension, 2 threads", "pure Python, inline", ..."""
    from . import accel

    impl = "C extension" if accel.speedups is not None else "pure Python"
    return f"{impl}, {verifier.describe()}"


def _names(text: str | None) -> frozenset[str] | None:
    return None if text is None else frozenset(_comma_list(text))


def _export_options(
    args: argparse.Namespace, out: str, start: int | None, end: int | None, **extra: object
) -> ExportOptions:
    """The export options ``export`` and ``fetch --export`` share."""
    from .export import DEFAULT_TABLES, ExportOptions

    if args.compression is not None and args.format == "jsonl":
        raise UserError("--compression is for Parquet; JSON Lines files are written uncompressed")
    tables = tuple(_comma_list(args.tables)) if args.tables else DEFAULT_TABLES
    return ExportOptions(
        Path(out),
        start,
        end,
        fmt=args.format,
        tables=tables,
        include_columns=_names(args.include_columns),
        exclude_columns=_names(args.exclude_columns) or frozenset(),
        hex=args.hex,
        compression=args.compression or "zstd",
        chunk_size=args.chunk_size,
        **extra,  # type: ignore[arg-type]
    )


def cmd_export(args: argparse.Namespace) -> int:
    from .export import ExportError, plan_export, run_export
    from .progress import Progress

    start, end = _parse_range(args.range) if args.range else (None, None)
    opts = _export_options(args, args.out, start, end, allow_missing=args.allow_missing)
    jobs = args.jobs if args.jobs is not None else min(os.cpu_count() or 1, 8)
    if jobs < 1:
        raise UserError(f"--jobs must be at least 1, got {jobs}")
    store = _existing_store(args, readonly=True)
    try:
        if args.dry:
            for line in plan_export(store, opts, estimate=True).lines():
                print(line)
            return 0
        with Progress("export", unit="blocks") as bar:

            def planned(plan: ExportPlan) -> None:
                bar.total = sum(c.blocks for c in plan.chunks)

            result = run_export(store, opts, on_blocks=bar.advance, on_plan=planned, jobs=jobs)
    except ExportError as e:
        raise UserError(str(e)) from None
    finally:
        store.close()
    for line in result.lines():
        print(line)
    return 0


def _add_export_args(p: argparse.ArgumentParser, *, title: str = "what and how to write") -> None:
    from .export import COMPRESSIONS, DEFAULT_TABLES, TABLES

    g = p.add_argument_group(title)
    g.add_argument("--format", choices=("parquet", "jsonl"), default="parquet", help="file format (default parquet)")
    g.add_argument(
        "--tables",
        metavar="NAMES",
        help=f"comma-separated, of {', '.join(TABLES)} (default: {','.join(DEFAULT_TABLES)})",
    )
    g.add_argument("--include-columns", metavar="NAMES", help="write only these columns (comma-separated)")
    g.add_argument("--exclude-columns", metavar="NAMES", help="leave these columns out (comma-separated)")
    g.add_argument("--hex", action="store_true", help="hashes, addresses and bytes as 0x strings (default: binary)")
    g.add_argument("--compression", choices=COMPRESSIONS, default=None, help="Parquet compression (default zstd)")
    g.add_argument(
        "--chunk-size",
        type=int,
        default=1000,
        metavar="N",
        help="blocks per file, aligned to multiples of N (default 1000)",
    )


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return asyncio.run(run_demo(args.workdir, servers=args.servers, era1_dir=args.era1))


def build_parser() -> argparse.ArgumentParser:
    from .serve.roles import GROW_BY, GROW_EVERY, MAX_ANSWER_DELAY, MAX_GROW_BY, MAX_GROW_EVERY, MIN_GROW_EVERY

    parser = argparse.ArgumentParser(
        prog="ethp2p", description="Fetch verified Ethereum history straight from devp2p peers."
    )
    parser.add_argument("--version", action="version", version=f"ethp2p {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--log-format",
        choices=FORMATS,
        default="text",
        help="logs on stderr as timestamped 'text' (default) or one 'json' object per line",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("probe", help="connect to one peer and print what it says about itself")
    p.add_argument("enode", help="enode://<pubkey>@<host>:<port>")
    p.add_argument(
        "--timeout",
        type=_seconds(0.0, MAX_WAIT, above=True),
        default=10.0,
        help="seconds to wait for each step (default 10)",
    )
    _add_network_args(p)
    p.set_defaults(func=cmd_probe)

    p = sub.add_parser("import", help="import era1 files, RLP chain files or derived block sets into a store")
    p.add_argument("files", nargs="+", metavar="FILE", help=".era1, .json (derived set) or an RLP chain file")
    p.add_argument("--store", required=True, metavar="FILE", help="SQLite block store (created if missing)")
    _add_network_args(p)
    _add_anchor_args(p, agreement=False)
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("verify", help="re-check a store offline: hashes, links, roots, checkpoints, accumulator roots")
    p.add_argument("range", nargs="?", metavar="START..END", help="blocks to check (default: all)")
    p.add_argument("--store", required=True, metavar="FILE", help="SQLite block store")
    p.add_argument("--dry-run", action="store_true", help="report only: do not record re-linked proofs")
    _add_anchor_args(p, agreement=False)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("serve", help="serve a block store to other peers over eth/68, 69 and 70")
    p.add_argument("--store", required=True, metavar="FILE", help="SQLite block store")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=_int_at_least(0, 65535), default=30303, help="TCP port (default 30303; 0 picks one)")
    p.add_argument("--max-inbound", type=_int_at_least(1), default=200, help="most inbound peers at once (default 200)")
    p.add_argument(
        "--sessions-per-address",
        type=_int_at_least(1, 10_000),
        default=16,
        metavar="N",
        help="most inbound sessions from one address (IPv6: one /64) at once (default 16; more for many "
        "peers behind one NAT)",
    )
    p.add_argument(
        "--handshakes-per-address",
        type=_int_at_least(1, 10_000),
        default=8,
        metavar="N",
        help="most inbound handshakes under way from one address at once (default 8, and at most 2 x --max-inbound)",
    )
    p.add_argument("--discovery", action="store_true", help="also run discv4 on the same port (UDP)")
    p.add_argument("--metrics", metavar="HOST:PORT", help="serve Prometheus metrics at http://HOST:PORT/metrics")
    p.add_argument("--bootnodes", metavar="ENODES", help="discv4 boot nodes, comma-separated (with --discovery)")
    p.add_argument(
        "--no-pacing",
        action="store_true",
        help="answer @ethereumjs/client block requests at once, though its fetcher then stalls "
        "(default: paced to its importer; see ethp2p.serve.pacing)",
    )
    kg = p.add_mutually_exclusive_group()
    kg.add_argument("--key", metavar="HEX", help="node key (32 bytes hex); default: a new random key")
    kg.add_argument("--key-file", metavar="FILE", help="read the node key from FILE, creating it if missing")
    _add_network_args(p)
    t = p.add_argument_group("testing only (never for real use)")
    t.add_argument("--misbehave", metavar="KIND", help="break the protocol in one way; see ethp2p.serve.adversary")
    t.add_argument(
        "--fork-block",
        type=int,
        metavar="N",
        help="with --misbehave fork: serve a self-consistent fork from block N on "
        "(default: the middle of the store's range)",
    )
    t.add_argument(
        "--eth-versions",
        metavar="V,...",
        help="offer only these eth versions, a subset of 68,69,70 (default: all three); 68: an eth/68-only node",
    )
    t.add_argument(
        "--answer-delay",
        type=_seconds(0.0, MAX_ANSWER_DELAY),
        default=0.0,
        metavar="SECONDS",
        help=f"send each answer (headers, bodies, receipts) this long after its request, 0..{MAX_ANSWER_DELAY:g} "
        "(simulated latency; other requests and peers are not held up)",
    )
    t.add_argument(
        "--expire-before",
        type=_int_at_least(0, MAX_BLOCK_NUMBER),
        default=0,
        metavar="N",
        help="an expired-history node: serve headers of every stored block but bodies and receipts only "
        "from block N on, and announce N as the earliest block (eth/69+)",
    )
    t.add_argument(
        "--grow-from",
        type=_int_at_least(0, MAX_BLOCK_NUMBER),
        metavar="N",
        help="a growing chain: serve and announce blocks only up to N at first, then raise that "
        "by --grow-by blocks every --grow-every seconds up to the store's top (BlockRangeUpdate to eth/69+ peers)",
    )
    t.add_argument(
        "--grow-every",
        type=_seconds(MIN_GROW_EVERY, MAX_GROW_EVERY),
        metavar="SECONDS",
        help=f"with --grow-from: seconds between steps, {MIN_GROW_EVERY:g}..{MAX_GROW_EVERY:g} "
        f"(default {GROW_EVERY:g})",
    )
    t.add_argument(
        "--grow-by",
        type=_int_at_least(1, MAX_GROW_BY),
        metavar="BLOCKS",
        help=f"with --grow-from: blocks per step, 1..{MAX_GROW_BY} (default {GROW_BY})",
    )
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("fetch", help="fetch a block range from peers, verified, into a store (resumable)")
    p.add_argument("range", metavar="START..END", help="inclusive block range, e.g. 0..16383")
    p.add_argument(
        "--warmup",
        type=_seconds(0.0, MAX_WARMUP),
        default=2.0,
        help=f"seconds to let more peers join before starting (default 2, at most {MAX_WARMUP:g})",
    )
    p.add_argument("--metrics", metavar="HOST:PORT", help="serve Prometheus metrics at http://HOST:PORT/metrics")
    p.add_argument(
        "--stall-timeout",
        type=_seconds(0.0, MAX_WAIT, above=True),
        default=30.0,
        metavar="SECONDS",
        help="give up on (report missing) blocks no peer serves once none has for this long, "
        "and warn when nothing was stored for this long (default 30)",
    )
    p.add_argument(
        "--verify-workers",
        type=int,
        default=None,
        metavar="N",
        help="threads (with the C extension; processes without it) that verify bodies and receipts "
        "(default: one per core; 0: in the event loop's thread)",
    )
    p.add_argument(
        "--keep-page-cache",
        action="store_true",
        help="leave the written blocks in the OS page cache (default: drop them every 64 MB, "
        "so a long fetch does not evict other programs' data)",
    )
    p.add_argument(
        "--export",
        metavar="DIR",
        help="also write export chunk files into DIR as their blocks are stored (options below)",
    )
    _add_export_args(p, title="with --export")
    _add_anchor_args(p)
    _peer_network_args(p)
    p.set_defaults(func=cmd_fetch, store="ethp2p.db")

    p = sub.add_parser(
        "export",
        help="write blocks, transactions, receipts, logs, withdrawals and ommers tables "
        "in chunk files (Parquet or JSON Lines; resumable)",
    )
    p.add_argument("range", nargs="?", metavar="START..END", help="blocks to export (default: all the store holds)")
    p.add_argument("--store", required=True, metavar="FILE", help="SQLite block store")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (chunks already there are kept)")
    p.add_argument("--dry", action="store_true", help="print the plan (chunks, rows and size estimate) and stop")
    p.add_argument(
        "--allow-missing",
        action="store_true",
        help="export the blocks the store holds when some of the range is missing (default: an error)",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="chunks written at once, each by its own process (default: one per core, at most 8)",
    )
    _add_export_args(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("head", help="find the chain head by fetching linked headers from peers")
    p.add_argument(
        "--baseline", type=_int_at_least(0, MAX_BLOCK_NUMBER), default=0, help="block to start from (default 0)"
    )
    p.add_argument("--probe-peers", type=_int_at_least(1, 64), default=3, help="peers to ask (default 3, at most 64)")
    _add_anchor_args(p)
    _peer_network_args(p)
    p.set_defaults(func=cmd_head)

    p = sub.add_parser("peers", help="show the peer network's pool and stats, live")
    p.add_argument(
        "--interval", type=_seconds(0.0, MAX_WAIT, above=True), default=5.0, help="seconds between updates (default 5)"
    )
    p.add_argument(
        "--rounds", type=_int_at_least(1), default=None, help="stop after this many updates (default: run until Ctrl-C)"
    )
    _peer_network_args(p)
    p.set_defaults(func=cmd_peers)

    p = sub.add_parser("demo", help="serve real mainnet blocks 0-16,383 from local nodes and fetch them back")
    p.add_argument("--workdir", default="ethp2p-demo", help="where the stores and logs go (default ./ethp2p-demo)")
    p.add_argument(
        "--servers", type=_int_at_least(1, 16), default=3, help="serving processes to start (default 3, at most 16)"
    )
    p.add_argument("--era1", metavar="DIR", help="directory of .era1 files (default: the repository's copy)")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)  # (inside: ``--help`` writes to a pipe too)
        configure_logging(verbose=args.verbose, fmt=args.log_format)
        status: int = args.func(args)
        sys.stdout.flush()  # here, where a reader that went away is caught, not at the interpreter's exit
        return status
    except UserError as e:
        print(f"ethp2p: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # What reads our output went away (``ethp2p verify | head``): stop quietly, as other tools
        # do, with the status a process killed by SIGPIPE has. Standard output is pointed at
        # /dev/null first, so the interpreter's own flush at exit cannot fail on the pipe again.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + 13


if __name__ == "__main__":
    raise SystemExit(main())
