"""The kinds of node today's mainnet has, as ``ethp2p serve`` options and host settings.

A :class:`Role` is what a simulated node is: the serving options it runs with (the testing-only
ones of ``ethp2p serve``), the bandwidth of its link, and whether it comes and goes. The roles:

* ``archive``: every block of its store, eth/68, 69 and 70;
* ``expired``: bodies and receipts only from a cut on (Nethermind keeps them from 24,690,000 on
  mainnet, geth ``--history.chain postmerge`` from the merge), announced as its eth/69 range;
* ``growing``: an eth/69 range whose top grows while it runs, announced by BlockRangeUpdate;
* ``eth68`` / ``eth69`` / ``eth70``: one eth version only (eth/68 peers announce no range);
* ``slow``: every answer delayed (the kernel has no netem: the server waits before answering);
* ``starved``: a thin link (``tc tbf``);
* ``silent``: completes the handshake, then never answers;
* ``flapping``: killed and restarted on a cycle (same key and address);
* ``fork``: a self-consistent fork of its store from a given block on.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Role:
    """A simulated node's kind: serving options, link rate (tc syntax, None: unlimited) and flap cycle
    ``(seconds up, seconds down)``."""

    name: str
    serve_args: tuple[str, ...] = ()
    rate: str | None = None
    flap: tuple[float, float] | None = None

    def with_rate(self, rate: str | None) -> Role:
        """The same role on a link of ``rate``."""
        return Role(self.name, self.serve_args, rate, self.flap)


ARCHIVE = Role("archive")
ETH68 = Role("eth68", ("--eth-versions", "68"))
ETH69 = Role("eth69", ("--eth-versions", "69"))
ETH70 = Role("eth70", ("--eth-versions", "70"))
SILENT = Role("silent", ("--misbehave", "silent"))


def expired(first_kept: int) -> Role:
    """Bodies and receipts only from block ``first_kept`` on (headers for all)."""
    return Role(f"expired{first_kept}", ("--expire-before", str(first_kept)))


def growing(start: int, every: float) -> Role:
    """A range that starts at block ``start`` and grows every ``every`` seconds (eth/69 BlockRangeUpdate)."""
    return Role("growing", ("--grow-from", str(start), "--grow-every", str(every)))


def slow(delay: float) -> Role:
    """Every answer ``delay`` seconds late."""
    return Role("slow", ("--answer-delay", str(delay)))


def starved(rate: str = "2mbit") -> Role:
    """An archive node behind a thin link."""
    return Role("starved", rate=rate)


def flapping(up: float = 4.0, down: float = 3.0) -> Role:
    """An archive node that is killed after ``up`` seconds and back ``down`` seconds later, on and on."""
    return Role("flapping", flap=(up, down))


def fork(first_forged: int) -> Role:
    """A liar: a self-consistent fork of its store from block ``first_forged`` on."""
    return Role("fork", ("--misbehave", "fork", "--fork-block", str(first_forged)))
