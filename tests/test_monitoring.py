"""The shipped rules and dashboard: generated, valid, unit-tested with promtool, self-consistent."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from monitoring.generate import DASHBOARD_FILE, RULES_FILE, Thresholds, dashboard, render

from .conftest import ROOT, require_tool

MONITORING = ROOT / "monitoring"
BUILTINS = {"__rate_interval", "__interval", "__range", "__interval_ms"}


def load_dashboard() -> dict[str, Any]:
    board: dict[str, Any] = json.loads((MONITORING / DASHBOARD_FILE).read_text())
    return board


def dashboard_exprs(board: dict[str, Any]) -> list[str]:
    return [t["expr"] for panel in board["panels"] for t in panel["targets"]]


def test_committed_files_are_what_the_generator_makes() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "monitoring.generate", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_thresholds_reach_the_rules(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "monitoring.generate",
            "--out",
            str(tmp_path),
            "--drop-fraction",
            "0.3",
            "--drop-min-baseline",
            "50",
        ],
        cwd=ROOT,
        check=True,
    )
    assert result.returncode == 0
    rules = yaml.safe_load((tmp_path / RULES_FILE).read_text())
    drop = next(r for r in rules["groups"][0]["rules"] if r["alert"] == "ScribeClicksDropped")
    assert "< 0.3 * max by (workspace)" in drop["expr"]
    assert ">= 50" in drop["expr"]


def test_promtool_checks_the_rules() -> None:
    promtool = require_tool("promtool")
    result = subprocess.run(
        [promtool, "check", "rules", str(MONITORING / RULES_FILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 8 rules found" in result.stdout


def test_promtool_unit_tests_of_every_alert() -> None:
    promtool = require_tool("promtool")
    tests = MONITORING / "tests" / "rules_test.yml"
    result = subprocess.run(
        [promtool, "test", "rules", str(tests)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tests.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # Every alert has a firing case in the unit tests.
    alerts = {
        r["alert"]
        for r in yaml.safe_load((MONITORING / RULES_FILE).read_text())["groups"][0]["rules"]
    }
    tested = set(
        re.findall(r"alertname: (\w+)\n\s+exp_alerts:\n\s+- exp_labels", tests.read_text())
    )
    assert tested == alerts


def test_the_unit_tests_can_fail(tmp_path: Path) -> None:
    """With a different threshold, the same unit tests must fail: they are not vacuous."""
    promtool = require_tool("promtool")
    files = render(Thresholds(drop_fraction=0.2))
    (tmp_path / "tests").mkdir()
    (tmp_path / RULES_FILE).write_text(files[RULES_FILE])
    (tmp_path / "tests" / "rules_test.yml").write_text(
        (MONITORING / "tests" / "rules_test.yml").read_text()
    )
    result = subprocess.run(
        [promtool, "test", "rules", "rules_test.yml"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path / "tests",
    )
    assert result.returncode == 1
    assert "alertname: ScribeClicksDropped" in result.stdout + result.stderr


def test_every_rule_has_severity_and_annotations() -> None:
    rules = yaml.safe_load((MONITORING / RULES_FILE).read_text())["groups"][0]["rules"]
    for rule in rules:
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert set(rule["annotations"]) == {"summary", "description", "runbook"}
        if re.search(r"\bworkspace\b", rule["expr"]):
            assert "{{ $labels.workspace }}" in rule["annotations"]["summary"]


def test_dashboard_variables_and_datasources_resolve() -> None:
    board = load_dashboard()
    assert board == dashboard()
    text = json.dumps(board)
    assert "${DS_" not in text and "__inputs" not in board
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["workspace"]["multi"] and variables["workspace"]["includeAll"]
    assert variables["workspace"]["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    for name in re.findall(r"\$\{?(\w+)", text):
        assert name in variables or name in BUILTINS, f"${name} is not defined"
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]
            if "scribe_clicks" in target["expr"] or "scribe_up" in target["expr"]:
                assert 'workspace=~"$workspace"' in target["expr"], target["expr"]


def test_dashboard_panels_do_not_overlap() -> None:
    cells: set[tuple[int, int]] = set()
    for panel in load_dashboard()["panels"]:
        g = panel["gridPos"]
        assert g["x"] + g["w"] <= 24
        mine = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not cells & mine, panel["title"]
        cells |= mine


def test_dashboard_has_the_panels_operators_need() -> None:
    titles = {p["title"] for p in load_dashboard()["panels"]}
    assert titles == {
        "Clicks per hour (last complete hour)",
        "Hour in progress",
        "Week-over-week change (last complete hour)",
        "Clicks per day",
        "Window totals",
        "Up",
        "Last successful poll",
        "Poll errors by reason",
        "API request latency",
        "Shards: workspaces polled / configured",
    }
    exprs = "\n".join(dashboard_exprs(load_dashboard()))
    assert "increase(scribe_clicks_total" in exprs and "offset 1w" in exprs
