"""The log formatters: UTC millisecond timestamps, one JSON object per line with the traceback in ``exc``."""

from __future__ import annotations

import json
import logging

from ethp2p.logs import JsonFormatter, TextFormatter, utc_timestamp


def _record(msg: str, *, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            import sys

            exc_info = sys.exc_info()
    record = logging.LogRecord("ethp2p.test", logging.ERROR, __file__, 1, msg, ("x",), exc_info)
    record.created = 0.5
    return record


def test_timestamps_are_iso_8601_utc_with_milliseconds() -> None:
    assert utc_timestamp(0.5) == "1970-01-01T00:00:00.500Z"
    assert TextFormatter().format(_record("hello %s")) == "1970-01-01T00:00:00.500Z ERROR ethp2p.test: hello x"


def test_json_lines_hold_the_message_and_the_exception() -> None:
    line = JsonFormatter().format(_record("peer said %s\nand more", exc=True))
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["ts"] == "1970-01-01T00:00:00.500Z" and entry["level"] == "ERROR"
    assert entry["logger"] == "ethp2p.test" and entry["msg"] == "peer said x\nand more"
    assert entry["exc"].startswith("Traceback") and "ValueError: boom" in entry["exc"]
    assert "exc" not in json.loads(JsonFormatter().format(_record("fine %s")))
