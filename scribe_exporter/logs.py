"""One line per event, as logfmt or JSON, with any known API key scrubbed from the line."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from .secrets import scrub

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}
# Context fields a record may carry through `extra=`, in the order they are printed.
FIELDS = ("workspace", "granularity", "reason", "code")
_LEVEL_NAMES = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn"}


def _level_name(levelno: int) -> str:
    return _LEVEL_NAMES.get(levelno, "error")


def _fields(record: logging.LogRecord) -> dict[str, str]:
    fields = {
        "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
        "level": _level_name(record.levelno),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    for name in FIELDS:
        value = record.__dict__.get(name)
        if value is not None:
            fields[name] = str(value)
    if record.exc_info and record.exc_info[1] is not None:
        # The type and message only: a trace belongs in a debugger, not in a log line.
        exc = record.exc_info[1]
        fields["error"] = f"{type(exc).__name__}: {exc}"
    return fields


def _logfmt_value(value: str) -> str:
    if value and not any(c in value for c in ' ="\\\n\t'):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = " ".join(f"{k}={_logfmt_value(v)}" for k, v in _fields(record).items())
        return scrub(line)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return scrub(json.dumps(_fields(record), ensure_ascii=False))


def setup_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(LEVELS[level])
    # urllib3 logs request lines at debug; they carry no headers, but they are noise per poll.
    logging.getLogger("urllib3").setLevel(max(LEVELS[level], logging.INFO))
