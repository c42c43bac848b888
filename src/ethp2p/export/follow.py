"""Exporting while a fetch runs (``ethp2p fetch START..END --export DIR``).

Every few seconds, in a worker thread with its own read-only connection to the store, the
chunks whose blocks are now all stored and proven are written; the others wait for the next
pass. A last pass runs when the fetch ends. A pass that finds another export writing to the
directory is skipped.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..store.blocks import BlockStore
from .run import (
    DirectoryBusy,
    ExportError,
    ExportOptions,
    ExportPlan,
    ExportResult,
    describe_spans,
    directory_lock,
    plan_export,
    run_export,
)

#: Seconds between two passes (at least; a pass that took long waits twice as long).
PASS_INTERVAL = 5.0


@dataclass
class FollowResult:
    """What the passes wrote, all together."""

    passes: int = 0
    chunks_written: int = 0
    files: int = 0
    bytes: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    last: ExportPlan | None = None

    def add(self, r: ExportResult) -> None:
        self.passes += 1
        self.chunks_written += r.chunks_written
        self.files += len(r.files)
        self.bytes += r.bytes
        for t, n in r.rows.items():
            self.rows[t] = self.rows.get(t, 0) + n
        self.last = r.plan

    def lines(self) -> list[str]:
        p = self.last
        if p is None:
            return ["export: nothing written"]
        out = [
            f"export: {self.chunks_written:,} chunks written as their blocks were stored ({self.files:,} files, "
            f"{self.bytes / 1e6:,.1f} MB) into {p.out}; rows: " + ", ".join(f"{t} {n:,}" for t, n in self.rows.items())
        ]
        if p.missing:
            spans = describe_spans(p.missing_spans)
            out.append(
                f"  not written: the chunks of blocks not stored and proven ({spans}); "
                "fetch them, then run ethp2p export (or fetch --export) again"
            )
        return out


class ExportFollower:
    """Writes complete chunks of ``opts`` from the store at ``store_path`` while it fills."""

    def __init__(self, store_path: str | Path, opts: ExportOptions, *, interval: float = PASS_INTERVAL) -> None:
        self.store_path = Path(store_path)
        # Whole chunks of proven blocks only: a chunk file is never rewritten, and the fetch may
        # still replace a block the store holds unproven.
        self.opts = ExportOptions(**{**opts.__dict__, "complete_chunks_only": True, "proven_only": True})
        self.interval = interval
        self.result = FollowResult()
        self.error: str | None = None
        self._stop = asyncio.Event()

    def _pass(self) -> None:
        with BlockStore(self.store_path, readonly=True) as store:
            self.result.add(run_export(store, self.opts))

    def check(self) -> None:
        """Plan once now and take the directory's lock once, so bad options, a clashing or
        unwritable directory, or another export in it stop the fetch before it starts."""
        with directory_lock(self.opts.out), BlockStore(self.store_path, readonly=True) as store:
            plan_export(store, self.opts)

    async def run(self) -> None:
        """Pass after pass until :meth:`finish`, then one last pass that starts after it. A pass
        that fails ends the passes (the fetch goes on); the error is kept in ``error``."""
        wait = self.interval
        while True:
            stopping = self._stop.is_set()
            if not stopping:
                try:
                    await asyncio.wait_for(self._stop.wait(), wait)
                except TimeoutError:
                    pass
                stopping = self._stop.is_set()
            t0 = time.monotonic()
            try:
                await asyncio.to_thread(self._pass)
            except DirectoryBusy:
                if stopping:  # the last pass found another export there: say so
                    self.error = f"another export was writing to {self.opts.out} at the end of the fetch"
                    return
            except ExportError as e:
                self.error = str(e)
                return
            if stopping:
                return
            wait = max(self.interval, 2 * (time.monotonic() - t0))

    def finish(self) -> None:
        """Ask for the last pass (``run`` returns after it)."""
        self._stop.set()
