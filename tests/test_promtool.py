"""`promtool check metrics` (Debian's prometheus package) reports nothing on the exposition."""

from __future__ import annotations

import subprocess

from .conftest import require_tool, run_cli, write_config


def check(text: str) -> subprocess.CompletedProcess[str]:
    promtool = require_tool("promtool")
    return subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )


def test_demo_exposition_passes_promtool() -> None:
    result = run_cli("--demo", "--once")
    assert result.returncode == 0, result.stderr
    assert "scribe_clicks_last_complete_period{" in result.stdout
    checked = check(result.stdout)
    assert checked.returncode == 0 and checked.stdout + checked.stderr == "", (
        checked.stdout + checked.stderr
    )


def test_exposition_with_errors_passes_promtool(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9", ["acme"])
    result = run_cli("--once", "--config.file", str(config))
    assert result.returncode == 1
    checked = check(result.stdout)
    assert checked.returncode == 0 and checked.stdout + checked.stderr == "", (
        checked.stdout + checked.stderr
    )
