"""Generates the alert rules and the Grafana dashboard that ship with the exporter.

    python -m monitoring.generate            # rewrite both files with the default thresholds
    python -m monitoring.generate --check    # exit 1 if the committed files are out of date
    python -m monitoring.generate --drop-fraction 0.3 --drop-min-baseline 50 --out /tmp/mine

The files are generated rather than hand-edited so that every threshold has one source, every
dashboard panel uses the datasource variable, and the tests can walk every PromQL expression.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
# The Helm chart can only read files inside itself: it gets byte-identical copies.
CHART_FILES = HERE.parent / "helm" / "scribe-exporter" / "files"
RULES_FILE = "scribe-exporter.rules.yml"
DASHBOARD_FILE = "scribe-exporter.dashboard.json"


@dataclass(frozen=True)
class Thresholds:
    job: str = "scribe-exporter"
    drop_fraction: float = 0.5  # last complete hour below this share of the same hour last week
    drop_min_baseline: int = 20  # ... and last week's hour had at least this many clicks
    drop_for: str = "10m"
    stopped_hours: int = 3  # this many complete hours without a click
    stopped_for: str = "15m"
    stale_seconds: int = 1800  # no successful poll for this long
    stale_for: str = "5m"
    down_for: str = "5m"
    absent_for: str = "10m"
    key_rejected_window: str = "10m"
    rate_limited_window: str = "15m"
    rate_limited_for: str = "30m"
    shard_missing_for: str = "10m"


HOURLY = 'scribe_clicks_last_complete_period{granularity="hour"}'
HOURLY_START = 'scribe_clicks_last_complete_period_start_timestamp_seconds{granularity="hour"}'
WEEK = 7 * 24 * 3600


def _by_workspace(expr: str) -> str:
    # `instance` changes with every pod restart and differs between HA replicas; comparing with
    # last week must match on the workspace alone.
    return f"max by (workspace) ({expr})"


def alert_rules(t: Thresholds) -> dict[str, Any]:
    now, week_ago = _by_workspace(HOURLY), _by_workspace(f"{HOURLY} offset 1w")
    start_now = _by_workspace(HOURLY_START)
    start_week_ago = _by_workspace(f"{HOURLY_START} offset 1w")
    drop = (
        f"{now}\n  < {t.drop_fraction:g} * {week_ago}\n"
        f"and {week_ago} >= {t.drop_min_baseline}\n"
        f"and ({start_now} - {start_week_ago}) == {WEEK}\n"
    )
    window = f"{t.stopped_hours}h"
    stopped = (
        f"max by (workspace) (max_over_time({HOURLY}[{window}])) == 0\n"
        f"and max by (workspace) (min_over_time({HOURLY}[{window}] offset 1w)) > 0\n"
    )
    rules = [
        {
            "alert": "ScribeClicksDropped",
            "expr": drop,
            "for": t.drop_for,
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "Signature clicks dropped for workspace {{ $labels.workspace }}",
                "description": (
                    "The last complete hour had {{ $value }} clicks, under "
                    f"{t.drop_fraction:.0%} of the same hour one week earlier "
                    f"(which had at least {t.drop_min_baseline})."
                ),
                "runbook": (
                    "Check in Scribe whether signatures are still deployed and links unchanged "
                    "(a campaign ended, a template lost its banner). Tune with drop_fraction and "
                    "drop_min_baseline in monitoring/generate.py."
                ),
            },
        },
        {
            "alert": "ScribeClicksStopped",
            "expr": stopped,
            "for": t.stopped_for,
            "labels": {"severity": "critical"},
            "annotations": {
                "summary": "No signature clicks for workspace {{ $labels.workspace }}",
                "description": (
                    f"No clicks in the last {t.stopped_hours} complete hours, while every one of "
                    "the same hours last week had clicks."
                ),
                "runbook": (
                    "Signatures may have stopped deploying or tracking links may be broken: "
                    "send a test email and click its signature link, then check the Scribe app."
                ),
            },
        },
        {
            "alert": "ScribeDataStale",
            "expr": f"time() - scribe_last_success_timestamp_seconds > {t.stale_seconds}\n",
            "for": t.stale_for,
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": (
                    "No successful Scribe poll for {{ $labels.workspace }} "
                    "({{ $labels.granularity }})"
                ),
                "description": (
                    "The last successful poll was {{ $value | humanizeDuration }} ago "
                    f"(threshold {t.stale_seconds}s); its click series have disappeared."
                ),
                "runbook": (
                    "See scribe_poll_errors_total by reason and the exporter's log lines with "
                    "this workspace; the landing page shows the last error."
                ),
            },
        },
        {
            "alert": "ScribeExporterDown",
            "expr": f'up{{job="{t.job}"}} == 0\n',
            "for": t.down_for,
            "labels": {"severity": "critical"},
            "annotations": {
                "summary": "scribe-exporter {{ $labels.instance }} cannot be scraped",
                "description": f"Prometheus has failed to scrape the exporter for {t.down_for}.",
                "runbook": "Check the pod (kubectl describe, logs) and its /healthz endpoint.",
            },
        },
        {
            "alert": "ScribeExporterAbsent",
            "expr": f'absent(up{{job="{t.job}"}})\n',
            "for": t.absent_for,
            "labels": {"severity": "critical"},
            "annotations": {
                "summary": "scribe-exporter has disappeared from Prometheus",
                "description": f'No target of job "{t.job}" for {t.absent_for}: '
                "every Scribe alert is blind.",
                "runbook": "Check the deployment and the ServiceMonitor/PodMonitor selector "
                "(kube-prometheus-stack needs the release label).",
            },
        },
        {
            "alert": "ScribeApiKeyRejected",
            "expr": (
                "sum by (workspace, reason) (increase(scribe_poll_errors_total"
                f'{{reason=~"unauthorized|forbidden"}}[{t.key_rejected_window}])) > 0\n'
            ),
            "labels": {"severity": "critical"},
            "annotations": {
                "summary": "Scribe rejected the API key of workspace {{ $labels.workspace }} "
                "({{ $labels.reason }})",
                "description": (
                    "Polls of {{ $labels.workspace }} failed as {{ $labels.reason }} in the last "
                    f"{t.key_rejected_window}. Scribe keys expire one year after creation."
                ),
                "runbook": (
                    "Create a new key for this workspace in Scribe and write it to the key file "
                    "(or Secret): the exporter re-reads it without a restart."
                ),
            },
        },
        {
            "alert": "ScribeRateLimited",
            "expr": (
                "sum by (workspace) (increase(scribe_poll_errors_total"
                f'{{reason="rate_limited"}}[{t.rate_limited_window}])) > 0\n'
            ),
            "for": t.rate_limited_for,
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "Scribe is rate-limiting workspace {{ $labels.workspace }}",
                "description": f"Polls have been answered 429 for {t.rate_limited_for}.",
                "runbook": (
                    "Raise polling.interval_seconds, drop a granularity, or set "
                    "api.max_requests_per_second."
                ),
            },
        },
        {
            "alert": "ScribeShardMissing",
            "expr": (
                "sum by (job) (scribe_exporter_assigned_workspaces)\n"
                "  < max by (job) (scribe_exporter_configured_workspaces)\n"
            ),
            "for": t.shard_missing_for,
            "labels": {"severity": "critical"},
            "annotations": {
                "summary": "Some Scribe workspaces are polled by no shard of {{ $labels.job }}",
                "description": (
                    "The shards together poll {{ $value }} workspaces, fewer than configured: "
                    f"a shard has been missing for {t.shard_missing_for}."
                ),
                "runbook": (
                    "Compare scribe_exporter_shard_info across pods: one index is absent. Check "
                    "the StatefulSet's pods and that every replica has the same --shard.count."
                ),
            },
        },
    ]
    return {"groups": [{"name": "scribe-exporter", "rules": rules}]}


# --- dashboard -------------------------------------------------------------------------------

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
WS = 'workspace=~"$workspace"'


def _panel(  # noqa: PLR0917 - a table of panels reads best positionally
    panel_id: int,
    title: str,
    targets: list[tuple[str, str]],
    grid: tuple[int, int, int, int],
    unit: str = "short",
    kind: str = "timeseries",
    description: str = "",
) -> dict[str, Any]:
    x, y, w, h = grid
    return {
        "id": panel_id,
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
        "targets": [
            {
                "refId": chr(ord("A") + i),
                "datasource": DATASOURCE,
                "expr": expr,
                "legendFormat": legend,
            }
            for i, (expr, legend) in enumerate(targets)
        ],
    }


def dashboard() -> dict[str, Any]:
    hour = f'granularity="hour",{WS}'
    panels = [
        _panel(
            1,
            "Clicks per hour (last complete hour)",
            [(f"scribe_clicks_last_complete_period{{{hour}}}", "{{workspace}}")],
            (0, 0, 12, 8),
            description="The newest hourly bucket whose end is settle_seconds in the past.",
        ),
        _panel(
            2,
            "Hour in progress",
            [(f"scribe_clicks_latest_period{{{hour}}}", "{{workspace}}")],
            (12, 0, 6, 8),
            kind="stat",
        ),
        _panel(
            3,
            "Week-over-week change (last complete hour)",
            [
                (
                    f"max by (workspace) (scribe_clicks_last_complete_period{{{hour}}}) / "
                    f"max by (workspace) (scribe_clicks_last_complete_period{{{hour}}} offset 1w)"
                    " - 1",
                    "{{workspace}}",
                )
            ],
            (18, 0, 6, 8),
            unit="percentunit",
            kind="stat",
        ),
        _panel(
            4,
            "Clicks per day",
            [(f"sum by (workspace) (increase(scribe_clicks_total{{{WS}}}[1d]))", "{{workspace}}")],
            (0, 8, 12, 8),
            description="From scribe_clicks_total: clicks observed over the previous 24 hours.",
        ),
        _panel(
            5,
            "Window totals",
            [(f"scribe_clicks_window{{{WS}}}", "{{workspace}} ({{granularity}})")],
            (12, 8, 12, 8),
            description="totals.count of the window the API returned, per granularity.",
        ),
        _panel(
            6,
            "Up",
            [(f"min by (workspace) (scribe_up{{{WS}}})", "{{workspace}}")],
            (0, 16, 6, 6),
            kind="stat",
        ),
        _panel(
            7,
            "Last successful poll",
            [
                (
                    f"time() - max by (workspace) (scribe_last_success_timestamp_seconds{{{WS}}})",
                    "{{workspace}}",
                )
            ],
            (6, 16, 6, 6),
            unit="s",
            kind="stat",
        ),
        _panel(
            8,
            "Poll errors by reason",
            [
                (
                    "sum by (workspace, reason) "
                    f"(increase(scribe_poll_errors_total{{{WS}}}[$__rate_interval]))",
                    "{{workspace}} {{reason}}",
                )
            ],
            (12, 16, 12, 6),
        ),
        _panel(
            9,
            "API request latency",
            [
                (
                    f"histogram_quantile({q}, sum by (le) "
                    "(rate(scribe_api_request_duration_seconds_bucket[$__rate_interval])))",
                    f"p{int(q * 100)}",
                )
                for q in (0.5, 0.95, 0.99)
            ],
            (0, 22, 18, 7),
            unit="s",
        ),
        _panel(
            10,
            "Shards: workspaces polled / configured",
            [
                ("sum by (job) (scribe_exporter_assigned_workspaces)", "polled"),
                ("max by (job) (scribe_exporter_configured_workspaces)", "configured"),
            ],
            (18, 22, 6, 7),
            kind="stat",
            description="Below the configured count, a shard is missing.",
        ),
    ]
    return {
        "uid": "scribe-exporter",
        "title": "Scribe signature clicks",
        "tags": ["scribe", "email-signatures"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "1m",
        "time": {"from": "now-7d", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                },
                {
                    "name": "workspace",
                    "label": "Workspace",
                    "type": "query",
                    "datasource": DATASOURCE,
                    "query": {"query": "label_values(scribe_up, workspace)", "refId": "workspace"},
                    "definition": "label_values(scribe_up, workspace)",
                    "refresh": 2,
                    "multi": True,
                    "includeAll": True,
                    "allValue": ".*",
                    "current": {},
                    "sort": 1,
                    "hide": 0,
                },
            ]
        },
        "annotations": {"list": []},
        "panels": panels,
    }


# --- files -----------------------------------------------------------------------------------


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (the PromQL) as literal blocks, so the rules file reads like PromQL."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str)

HEADER = (
    "# Generated by monitoring/generate.py: edit that file, then run\n"
    "# `python -m monitoring.generate`. Thresholds and how to tune them: README.md, Alerts.\n"
)


def render(t: Thresholds) -> dict[str, str]:
    rules = HEADER + yaml.dump(alert_rules(t), Dumper=_BlockDumper, sort_keys=False, width=100)
    board = json.dumps(dashboard(), indent=2) + "\n"
    return {RULES_FILE: rules, DASHBOARD_FILE: board}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=HERE, help="directory to write to")
    parser.add_argument("--check", action="store_true", help="fail if the files differ")
    for field in dataclasses.fields(Thresholds):
        parser.add_argument(
            f"--{field.name.replace('_', '-')}", type=type(field.default), default=field.default
        )
    args = parser.parse_args(argv)
    thresholds = Thresholds(
        **{f.name: getattr(args, f.name) for f in dataclasses.fields(Thresholds)}
    )
    directories = [args.out, CHART_FILES] if args.out == HERE else [args.out]
    stale = []
    for directory in directories:
        for name, text in render(thresholds).items():
            path = directory / name
            if args.check:
                if not path.exists() or path.read_text() != text:
                    stale.append(str(path.relative_to(HERE.parent)))
            else:
                directory.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
    if stale:
        print(
            f"out of date: {', '.join(stale)}; run python -m monitoring.generate", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
