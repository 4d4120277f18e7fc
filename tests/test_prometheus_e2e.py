"""End to end with a real Prometheus: simulator -> exporter -> Prometheus (rules loaded).

A week of history is backfilled with `promtool tsdb create-blocks-from openmetrics`, computed
from the simulator's own click model, so that week-over-week expressions have data and the drop
alert compares like with like.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from monitoring.generate import DASHBOARD_FILE, RULES_FILE
from scribe_exporter.simulator import ClickModel, SimWorkspace

from .conftest import ROOT, free_port, key_for, require_tool, wait_until, write_config

WORKSPACES = {"acme": ("Europe/Paris", 5000.0), "globex": ("UTC", 3000.0)}
SETTLE = 300
HOUR = 3600


@dataclass
class Stack:
    prometheus: str
    exporter: str
    simulator: str

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params: dict[str, str] = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        reply = requests.get(self.prometheus + "/api/v1/query", params=params, timeout=10)
        body = reply.json()
        assert body["status"] == "success", (expr, body)
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def api(self, path: str) -> Any:
        return requests.get(self.prometheus + path, timeout=10).json()["data"]


def hourly_clicks(name: str, hour_start: int) -> int:
    """The simulator's model, evaluated here for the backfill (no drop applies to history)."""
    zone, peak = WORKSPACES[name]
    return ClickModel().hour_clicks(SimWorkspace(name, "unused", zone, peak), hour_start)


def last_complete_start(t: float) -> int:
    """Start of the newest hour whose end is SETTLE seconds before t (these zones have whole-hour
    offsets, so local hours are UTC hours)."""
    return int((t - SETTLE) // HOUR * HOUR - HOUR)


def backfill(path: Path, now: float) -> None:
    """Two days of one-minute samples around one week ago, as the exporter would have exposed."""
    lines = []
    samples = range(int(now - 8 * 86400), int(now - 6 * 86400), 60)
    for metric in (
        "scribe_clicks_last_complete_period",
        "scribe_clicks_last_complete_period_start_timestamp_seconds",
    ):
        lines.append(f"# TYPE {metric} gauge")
        for name in WORKSPACES:
            labels = f'granularity="hour",instance="backfill:9877",job="scribe-exporter",workspace="{name}"'
            for t in samples:
                start = last_complete_start(t)
                value = hourly_clicks(name, start) if metric.endswith("period") else start
                lines.append(f"{metric}{{{labels}}} {value} {t}")
    lines.append("# EOF")
    path.write_text("\n".join(lines) + "\n")


def start(cmd: list[str], log: Path, **kwargs: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT, **kwargs)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prometheus = require_tool("prometheus")
    promtool = require_tool("promtool")
    tmp = tmp_path_factory.mktemp("e2e")
    processes: list[subprocess.Popen[bytes]] = []
    try:
        specs = [f"--workspace={n}:{key_for(n)}:{z}:{p:g}" for n, (z, p) in WORKSPACES.items()]
        sim = subprocess.Popen(
            [sys.executable, "-m", "scribe_exporter.simulator", *specs],
            cwd=ROOT,
            stdout=subprocess.PIPE,
        )
        processes.append(sim)
        assert sim.stdout is not None
        sim_url = sim.stdout.readline().decode().strip()

        exporter_port = free_port()
        config = write_config(
            tmp,
            sim_url,
            list(WORKSPACES),
            polling=f"  interval_seconds: 1\n  granularities: [hour, day]\n  settle_seconds: {SETTLE}\n",
        )
        processes.append(
            start(
                [
                    sys.executable,
                    str(ROOT / "exporter.py"),
                    "--config.file",
                    str(config),
                    "--web.listen-address",
                    f"127.0.0.1:{exporter_port}",
                ],
                tmp / "exporter.log",
            )
        )

        data = tmp / "data"
        history = tmp / "history.om"
        backfill(history, time.time())
        subprocess.run(
            [promtool, "tsdb", "create-blocks-from", "openmetrics", str(history), str(data)],
            check=True,
            capture_output=True,
        )

        prom_port = free_port()
        (tmp / "prometheus.yml").write_text(
            json.dumps(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(ROOT / "monitoring" / RULES_FILE)],
                    "scrape_configs": [
                        {
                            "job_name": "scribe-exporter",
                            "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}],
                        }
                    ],
                }
            )
        )
        processes.append(
            start(
                [
                    prometheus,
                    f"--config.file={tmp / 'prometheus.yml'}",
                    f"--storage.tsdb.path={data}",
                    "--storage.tsdb.retention.time=30d",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                ],
                tmp / "prometheus.log",
            )
        )
        s = Stack(f"http://127.0.0.1:{prom_port}", f"http://127.0.0.1:{exporter_port}", sim_url)

        def all_up() -> bool:
            try:
                return len([r for r in s.query("scribe_up == 1")]) == 4
            except (requests.ConnectionError, ValueError):
                return False

        wait_until(all_up, timeout=60, what="Prometheus to scrape every target up")
        # A few more scrapes, so that rate() and increase() have samples to work with.
        wait_until(
            lambda: len(s.query("scribe_up[10s]")[0]["values"]) >= 5, timeout=30, what="samples"
        )
        yield s
    finally:
        for proc in reversed(processes):
            proc.terminate()
        for proc in processes:
            proc.wait(timeout=15)


def test_metrics_arrive_with_the_right_values(stack: Stack) -> None:
    at = time.time()
    values = {
        r["metric"]["workspace"]: float(r["value"][1])
        for r in stack.query('scribe_clicks_last_complete_period{granularity="hour"}', at)
    }
    starts = {
        r["metric"]["workspace"]: float(r["value"][1])
        for r in stack.query(
            'scribe_clicks_last_complete_period_start_timestamp_seconds{granularity="hour"}', at
        )
    }
    assert set(values) == set(WORKSPACES)
    for name, start_ in starts.items():
        assert values[name] == hourly_clicks(name, int(start_))
        assert start_ in (last_complete_start(at), last_complete_start(at - 5))
    assert {r["metric"]["job"] for r in stack.query("scribe_exporter_build_info")} == {
        "scribe-exporter"
    }
    assert stack.query('scribe_poll_errors_total{reason="invalid_response"} > 0') == []


def test_every_dashboard_expression_evaluates_and_returns_data(stack: Stack) -> None:
    board = json.loads((ROOT / "monitoring" / DASHBOARD_FILE).read_text())
    exprs = [t["expr"] for panel in board["panels"] for t in panel["targets"]]
    assert len(exprs) >= 10
    for expr in exprs:
        concrete = expr.replace("$workspace", ".*").replace("$__rate_interval", "1m")
        result = stack.query(concrete)
        assert result, f"no data for {expr}"
    # The week-over-week panel compares with backfilled history: a ratio near 0, not an error.
    wow = stack.query(next(e for e in exprs if "offset 1w" in e).replace("$workspace", ".*"))
    assert {r["metric"]["workspace"] for r in wow} == set(WORKSPACES)
    assert all(-0.5 < float(r["value"][1]) < 0.7 for r in wow)


def test_every_rule_loads_and_evaluates(stack: Stack) -> None:
    def evaluated() -> bool:
        rules = stack.api("/api/v1/rules")["groups"][0]["rules"]
        return all(not r["lastEvaluation"].startswith("0001") for r in rules)

    wait_until(evaluated, timeout=30, what="every rule to be evaluated")
    rules = stack.api("/api/v1/rules")["groups"][0]["rules"]
    assert len(rules) == 8
    for rule in rules:
        assert rule["health"] == "ok", rule
        assert rule.get("lastError", "") == ""
    firing = {
        (a["labels"]["alertname"], a["labels"].get("workspace"))
        for a in stack.api("/api/v1/alerts")["alerts"]
    }
    assert firing == set(), firing


def test_a_click_drop_makes_the_drop_alert_go_pending(stack: Stack) -> None:
    requests.post(
        stack.simulator + "/_sim/drop",
        data=json.dumps({"workspace": "acme", "factor": 0.05, "since": time.time() - 2 * 86400}),
        timeout=5,
    ).raise_for_status()

    def drop_alerts() -> set[tuple[str, str]]:
        alerts = stack.api("/api/v1/alerts")["alerts"]
        return {
            (a["labels"]["workspace"], a["state"])
            for a in alerts
            if a["labels"]["alertname"] == "ScribeClicksDropped"
        }

    wait_until(lambda: drop_alerts() == {("acme", "pending")}, timeout=30, what="the drop alert")
    alert = next(
        a
        for a in stack.api("/api/v1/alerts")["alerts"]
        if a["labels"]["alertname"] == "ScribeClicksDropped"
    )
    assert alert["annotations"]["summary"] == "Signature clicks dropped for workspace acme"


def test_promtool_check_metrics_on_the_live_exporter(stack: Stack) -> None:
    promtool = require_tool("promtool")
    text = requests.get(stack.exporter + "/metrics", timeout=5).text
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0 and checked.stdout + checked.stderr == ""
