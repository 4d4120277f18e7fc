"""`promtool check metrics` (Debian's prometheus package) reports nothing on the exposition."""

from __future__ import annotations

import subprocess
from pathlib import Path

from .conftest import require_tool, run_cli, write_config


def assert_promtool_clean(exposition: str) -> None:
    promtool = require_tool("promtool")
    checked = subprocess.run(
        [promtool, "check", "metrics"],
        input=exposition,
        capture_output=True,
        text=True,
        check=False,
    )
    report = checked.stdout + checked.stderr
    assert checked.returncode == 0 and report == "", report


def test_demo_exposition_passes_promtool() -> None:
    result = run_cli("--demo", "--once")
    assert result.returncode == 0, result.stderr
    assert "scribe_clicks_last_complete_period{" in result.stdout
    assert_promtool_clean(result.stdout)


def test_exposition_of_a_failing_workspace_passes_promtool(tmp_path: Path) -> None:
    # Port 9 (discard) on loopback refuses connections: every reason series is there at 0 or 1.
    config = write_config(tmp_path, "http://127.0.0.1:9", ["acme"])
    result = run_cli("--once", "--config.file", str(config))
    assert result.returncode == 1
    assert (
        'scribe_poll_errors_total{granularity="hour",reason="connection",workspace="acme"} 1\n'
        in result.stdout
    )
    assert_promtool_clean(result.stdout)


def test_promtool_does_catch_a_bad_name() -> None:
    """The check is not vacuous: a counter without _total is reported."""
    promtool = require_tool("promtool")
    checked = subprocess.run(
        [promtool, "check", "metrics"],
        input="# HELP scribe_bad A counter.\n# TYPE scribe_bad counter\nscribe_bad 1\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert 'counter metrics should have "_total" suffix' in checked.stdout + checked.stderr
