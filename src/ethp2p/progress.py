"""A small progress display: a live bar on a terminal, plain periodic lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Counts work done and shows rate (and ETA when the total is known) on ``stream`` (stderr)."""

    def __init__(
        self,
        label: str,
        *,
        total: int | None = None,
        unit: str = "items",
        stream: TextIO | None = None,
        interval: float | None = None,
    ) -> None:
        self.label = label
        self.total = total
        self.unit = unit
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.interval = interval if interval is not None else (0.2 if self.tty else 5.0)
        self.done = 0
        self.extra = ""
        self.start = time.monotonic()
        self._last = 0.0

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None or self.done:  # nothing to show for work that failed before it began
            self.render(final=True)

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self.render()

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.start, 1e-9)
        rate = self.done / elapsed
        parts = [f"{self.label}: {self.done:,}"]
        if self.total:
            pct = 100.0 * self.done / self.total
            parts[0] += f"/{self.total:,} ({pct:.1f}%)"
        parts.append(f"{rate:,.0f} {self.unit}/s")
        if self.total and rate > 0 and self.done < self.total:
            parts.append(f"ETA {(self.total - self.done) / rate:,.0f}s")
        if self.extra:
            parts.append(self.extra)
        return "  ".join(parts)

    def render(self, final: bool = False) -> None:
        text = self.line()
        if self.tty:
            end = "\n" if final else ""
            width = 30
            if self.total:
                filled = int(width * min(self.done, self.total) / self.total)
                text = f"[{'#' * filled}{'.' * (width - filled)}] " + text
            self.stream.write("\r\x1b[2K" + text + end)
        elif final or self.done:
            self.stream.write(text + "\n")
        self.stream.flush()
