"""Log lines: logfmt and JSON, one line per event, context fields, keys scrubbed."""

from __future__ import annotations

import json
import logging

from scribe_exporter.logs import JsonFormatter, LogfmtFormatter
from scribe_exporter.secrets import Secret


def record(msg: str, *args: object, **extra: str) -> logging.LogRecord:
    rec = logging.LogRecord("scribe_exporter.poller", logging.WARNING, __file__, 1, msg, args, None)
    rec.__dict__.update(extra)
    return rec


def test_logfmt_quotes_and_escapes_and_keeps_one_line() -> None:
    line = LogfmtFormatter().format(
        record("poll failed: %s", 'bad "body"\nsecond line', workspace="acme", granularity="hour")
    )
    assert "\n" not in line
    assert (
        'level=warn logger=scribe_exporter.poller msg="poll failed: bad \\"body\\"\\nsecond line"'
        in line
    )
    assert line.endswith("workspace=acme granularity=hour")


def test_json_lines_carry_the_context() -> None:
    line = JsonFormatter().format(record("poll failed", workspace="acme", reason="timeout"))
    fields = json.loads(line)
    assert fields["msg"] == "poll failed"
    assert (fields["workspace"], fields["reason"], fields["level"]) == ("acme", "timeout", "warn")


def test_a_key_that_slips_into_a_message_is_scrubbed() -> None:
    key = Secret("sk_test_SLIPPEDINTOALOGLINE")
    for formatter in (LogfmtFormatter(), JsonFormatter()):
        line = formatter.format(record("unexpected: %s", f"Bearer {key.reveal()}"))
        assert "sk_test_SLIPPEDINTOALOGLINE" not in line
        assert "Bearer <redacted>" in line
    assert "SLIPPED" not in repr(key) and "SLIPPED" not in str(key)
