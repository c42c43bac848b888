"""Helpers for the worker processes ethp2p spawns (verification, export)."""

from __future__ import annotations

import os
import threading
import time


def exit_with_parent(parent: int, *, poll: float = 0.5, code: int = 0) -> None:
    """In a worker: exit (with ``code``) once process ``parent`` is gone, even if it was SIGKILLed,
    checking every ``poll`` seconds from a daemon thread."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll)
        os._exit(code)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
