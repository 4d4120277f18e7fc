"""The exporter end to end in-process: real HTTP to the simulator, real scrapes of /metrics."""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from scribe_exporter.client import REASONS
from scribe_exporter.config import load_config
from scribe_exporter.simulator import Fault

from .conftest import (
    FakeClock,
    Running,
    SimHandle,
    StartExporter,
    at,
    key_for,
    names_with,
    parse_exposition,
    value,
    write_config,
)

GAUGES = (
    "scribe_clicks_latest_period",
    "scribe_clicks_latest_period_start_timestamp_seconds",
    "scribe_clicks_last_complete_period",
    "scribe_clicks_last_complete_period_start_timestamp_seconds",
    "scribe_clicks_window",
    "scribe_clicks_window_start_timestamp_seconds",
)


def sim_counts(sim: SimHandle, name: str, granularity: str) -> dict[float, int]:
    """What the simulator serves right now: bucket start -> count."""
    body = sim.sim.clicks_body(sim.workspaces[name], granularity, sim.sim.clock())
    return {at(item["period"]): item["count"] for item in body["data"]}


def start_with(
    sim: SimHandle, tmp_path: Path, start_exporter: StartExporter, names: list[str], polling: str
) -> Running:
    path = write_config(tmp_path, sim.url, names, polling=polling)
    return start_exporter(load_config(str(path)), path)


def test_every_metric_after_the_first_poll(
    exporter: Running, sim: SimHandle, clock: FakeClock
) -> None:
    assert exporter.poll() is True
    m = exporter.scrape()
    counts = sim_counts(sim, "acme", "hour")
    labels = {"workspace": "acme", "granularity": "hour"}
    # 15:02: the 15:00 bucket is in progress; 14:00 ended at 15:00, less than 300 s ago.
    assert value(m, "scribe_clicks_latest_period_start_timestamp_seconds", **labels) == at(
        "2026-12-04T15:00:00Z"
    )
    assert value(m, "scribe_clicks_latest_period", **labels) == counts[at("2026-12-04T15:00:00Z")]
    assert value(m, "scribe_clicks_last_complete_period_start_timestamp_seconds", **labels) == at(
        "2026-12-04T13:00:00Z"
    )
    assert (
        value(m, "scribe_clicks_last_complete_period", **labels)
        == counts[at("2026-12-04T13:00:00Z")]
    )
    assert value(m, "scribe_clicks_window", **labels) == sum(counts.values())
    assert value(m, "scribe_clicks_window_start_timestamp_seconds", **labels) == at(
        "2026-12-02T16:00:00Z"
    )
    assert value(m, "scribe_up", **labels) == 1
    assert value(m, "scribe_last_success_timestamp_seconds", **labels) == clock.now
    assert value(m, "scribe_clicks_total", workspace="acme") == 0  # the baseline
    for reason in REASONS:
        assert value(m, "scribe_poll_errors_total", reason=reason, **labels) == 0
    assert value(m, "scribe_api_request_duration_seconds_count") == 2
    assert value(m, "scribe_exporter_config_last_reload_successful") == 1
    build = names_with(m, "scribe_exporter_build_info")
    assert len(build) == 1 and ("version", "0.1.0") in next(iter(build))
    # The bucket start is never a label, and globex is there too.
    assert all("period" not in dict(labels) for (_, labels) in m)
    assert value(m, "scribe_up", workspace="globex", granularity="hour") == 1


def test_no_sample_carries_a_timestamp(exporter: Running) -> None:
    exporter.poll()
    text = requests.get(exporter.url + "/metrics", timeout=5).text
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
    assert len(samples) > 50
    assert all(s.timestamp is None for s in samples)


def test_last_complete_follows_settle(
    sim: SimHandle, tmp_path: Path, start_exporter: StartExporter, clock: FakeClock
) -> None:
    running = start_with(sim, tmp_path, start_exporter, ["acme"], "  settle_seconds: 300\n")
    labels = {"workspace": "acme", "granularity": "hour"}
    name = "scribe_clicks_last_complete_period_start_timestamp_seconds"
    clock.now = at("2026-12-04T15:04:59Z")
    running.poll()
    assert value(running.scrape(), name, **labels) == at("2026-12-04T13:00:00Z")
    clock.now = at("2026-12-04T15:05:00Z")  # 14:00 ended exactly 300 s ago
    running.poll()
    assert value(running.scrape(), name, **labels) == at("2026-12-04T14:00:00Z")


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # Paris's 23-hour day (2026-03-29) ends at 22:00Z; it is complete 300 s later.
        ("2026-03-29T22:03:00Z", "2026-03-27T23:00:00Z"),
        ("2026-03-29T22:10:00Z", "2026-03-28T23:00:00Z"),
        # The 25-hour day (2026-10-25) ends at 23:00Z, not 22:00Z.
        ("2026-10-25T22:10:00Z", "2026-10-23T22:00:00Z"),
        ("2026-10-25T23:10:00Z", "2026-10-24T22:00:00Z"),
    ],
)
def test_day_buckets_across_dst(
    sim: SimHandle,
    tmp_path: Path,
    start_exporter: StartExporter,
    clock: FakeClock,
    now: str,
    expected: str,
) -> None:
    clock.now = at(now)
    running = start_with(sim, tmp_path, start_exporter, ["globex"], "  granularities: [day]\n")
    assert running.poll()
    m = running.scrape()
    labels = {"workspace": "globex", "granularity": "day"}
    start = value(m, "scribe_clicks_last_complete_period_start_timestamp_seconds", **labels)
    assert start == at(expected)
    assert (
        value(m, "scribe_clicks_last_complete_period", **labels)
        == sim_counts(sim, "globex", "day")[at(expected)]
    )


def canned(data: list[dict[str, Any]], total: int | None = None, zone: str = "UTC") -> bytes:
    count = sum(d["count"] for d in data) if total is None else total
    return json.dumps(
        {"data": data, "totals": {"count": count}, "granularity": "hour", "time_zone": zone}
    ).encode()


def test_unsorted_data_with_duplicates(exporter: Running, sim: SimHandle) -> None:
    data = [
        {"period": "2026-12-04T14:00:00Z", "count": 4},
        {"period": "2026-12-04T15:00:00Z", "count": 1},
        {"period": "2026-12-04T12:00:00Z", "count": 9},
        {"period": "2026-12-04T15:00:00Z", "count": 2},  # a duplicate: the last one wins
        {"period": "2026-12-04T13:00:00Z", "count": 6},
    ]
    sim.sim.set_fault(Fault(body=canned(data, total=21)), "acme")
    exporter.poll()
    m = exporter.scrape()
    labels = {"workspace": "acme", "granularity": "hour"}
    assert value(m, "scribe_clicks_latest_period", **labels) == 2
    assert value(m, "scribe_clicks_last_complete_period", **labels) == 6
    assert value(m, "scribe_clicks_window", **labels) == 21
    assert value(m, "scribe_clicks_window_start_timestamp_seconds", **labels) == at(
        "2026-12-04T12:00:00Z"
    )


def test_empty_data(exporter: Running, sim: SimHandle) -> None:
    sim.sim.set_fault(Fault(body=canned([])), "acme")
    assert exporter.poll()
    m = exporter.scrape()
    labels = {"workspace": "acme", "granularity": "hour"}
    assert value(m, "scribe_up", **labels) == 1
    assert value(m, "scribe_clicks_window", **labels) == 0
    for name in GAUGES:
        if name != "scribe_clicks_window":
            assert value(m, name, **labels) is None, name
    # No baseline yet without buckets: the counter appears with the first data.
    assert value(m, "scribe_clicks_total", workspace="acme") is None


def test_counter_rises_with_the_current_bucket_and_never_falls(
    exporter: Running, sim: SimHandle, clock: FakeClock
) -> None:
    exporter.poll()  # 15:02, the baseline
    first = sim_counts(sim, "acme", "hour")
    clock.now = at("2026-12-04T15:40:00Z")
    exporter.poll()
    second = sim_counts(sim, "acme", "hour")
    hour15 = at("2026-12-04T15:00:00Z")
    grown = second[hour15] - first[hour15]
    assert grown > 0
    assert value(exporter.scrape(), "scribe_clicks_total", workspace="acme") == grown
    clock.now = at("2026-12-04T16:30:00Z")
    exporter.poll()
    third = sim_counts(sim, "acme", "hour")
    hour16 = at("2026-12-04T16:00:00Z")
    expected = grown + (third[hour15] - second[hour15]) + third[hour16]
    assert value(exporter.scrape(), "scribe_clicks_total", workspace="acme") == expected
    # The API revising counts down (or dropping them) never makes the counter fall.
    lowered = [{"period": "2026-12-04T16:00:00Z", "count": 0}]
    sim.sim.set_fault(Fault(body=canned(lowered), times=1), "acme")
    exporter.poll()
    assert value(exporter.scrape(), "scribe_clicks_total", workspace="acme") == expected


def test_counter_uses_the_finest_granularity(
    sim: SimHandle, tmp_path: Path, start_exporter: StartExporter, clock: FakeClock
) -> None:
    running = start_with(sim, tmp_path, start_exporter, ["acme"], "  granularities: [day, hour]\n")
    running.poll()
    clock.advance(1800)
    running.poll()
    hour15 = at("2026-12-04T15:00:00Z")
    growth = sim_counts(sim, "acme", "hour")[hour15]
    clock.advance(-1800)
    growth -= sim_counts(sim, "acme", "hour")[hour15]
    assert value(running.scrape(), "scribe_clicks_total", workspace="acme") == growth
    assert sim.sim.requests["acme"] == 4


def test_failed_poll_keeps_data_until_stale_then_drops_only_the_clicks_gauges(
    exporter: Running, sim: SimHandle, clock: FakeClock
) -> None:
    exporter.poll()
    good = exporter.scrape()
    success_at = clock.now
    labels = {"workspace": "acme", "granularity": "hour"}
    sim.sim.set_fault(Fault(status=500), "acme")
    clock.advance(600)
    assert exporter.poll() is False
    m = exporter.scrape()
    assert value(m, "scribe_up", **labels) == 0
    for name in GAUGES:
        assert value(m, name, **labels) == value(good, name, **labels), name
    clock.advance(301)  # 901 s since the last success, stale_after_seconds is 900
    exporter.poll()
    m = exporter.scrape()
    for name in GAUGES:
        assert value(m, name, **labels) is None, name
    assert value(m, "scribe_up", **labels) == 0
    assert value(m, "scribe_last_success_timestamp_seconds", **labels) == success_at
    assert value(m, "scribe_poll_errors_total", reason="server_error", **labels) == 2
    assert value(m, "scribe_clicks_total", workspace="acme") == 0
    # globex kept succeeding and kept its data.
    assert value(m, "scribe_clicks_window", workspace="globex", granularity="hour") is not None
    sim.sim.clear_faults()
    exporter.poll()
    assert value(exporter.scrape(), "scribe_clicks_window", **labels) is not None


def test_invalid_response_never_replaces_good_data(exporter: Running, sim: SimHandle) -> None:
    exporter.poll()
    good = exporter.scrape()
    labels = {"workspace": "acme", "granularity": "hour"}
    bad = canned([{"period": "2026-12-04T15:00:00Z", "count": -5}])
    sim.sim.set_fault(Fault(body=bad), "acme")
    exporter.poll()
    m = exporter.scrape()
    assert value(m, "scribe_up", **labels) == 0
    assert value(m, "scribe_poll_errors_total", reason="invalid_response", **labels) == 1
    for name in GAUGES:
        assert value(m, name, **labels) == value(good, name, **labels)


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (Fault(status=401), "unauthorized"),
        (Fault(status=403), "forbidden"),
        (Fault(status=404), "not_found"),
        (Fault(status=429, headers={"Retry-After": "30"}), "rate_limited"),
        (Fault(status=418), "client_error"),
        (Fault(status=503), "server_error"),
        (Fault(body=b"not json"), "invalid_response"),
        (Fault(delay_seconds=3), "timeout"),
    ],
)
def test_each_failure_reason_is_counted(
    exporter: Running, sim: SimHandle, fault: Fault, reason: str
) -> None:
    sim.sim.set_fault(fault, "acme")
    assert exporter.poll() is False
    m = exporter.scrape()
    labels = {"workspace": "acme", "granularity": "hour"}
    for each in REASONS:
        assert value(m, "scribe_poll_errors_total", reason=each, **labels) == (each == reason)
    assert value(m, "scribe_up", workspace="globex", granularity="hour") == 1


def test_reload_adds_and_removes_workspaces(
    exporter: Running, sim: SimHandle, tmp_path: Path
) -> None:
    exporter.poll()
    sim.add_workspaces(["initech"], "Asia/Kolkata")
    write_config(tmp_path, sim.url, ["acme", "initech"])
    assert exporter.exporter.reload() is True
    m = exporter.scrape()
    assert not any(("workspace", "globex") in labels for (_, labels) in m)
    assert value(m, "scribe_up", workspace="initech", granularity="hour") == 0
    assert value(m, "scribe_up", workspace="acme", granularity="hour") == 1  # state kept
    exporter.poll()
    m = exporter.scrape()
    assert value(m, "scribe_up", workspace="initech", granularity="hour") == 1
    assert value(m, "scribe_clicks_total", workspace="initech") == 0


def test_invalid_reload_keeps_the_old_config(
    exporter: Running, sim: SimHandle, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    exporter.poll()
    before = exporter.scrape()
    exporter.config_path.write_text(
        "workspaces:\n  - name: acme\n    api_key_env: NOT_SET_ANYWHERE\n"
    )
    with caplog.at_level(logging.ERROR):
        assert exporter.exporter.reload() is False
    assert (
        "workspaces[0].api_key_env: environment variable NOT_SET_ANYWHERE is not set" in caplog.text
    )
    m = exporter.scrape()
    assert value(m, "scribe_exporter_config_last_reload_successful") == 0
    assert value(m, "scribe_exporter_config_last_reload_success_timestamp_seconds") == value(
        before, "scribe_exporter_config_last_reload_success_timestamp_seconds"
    )
    assert exporter.poll() is True
    assert value(exporter.scrape(), "scribe_up", workspace="globex", granularity="hour") == 1


def test_key_file_rotation_deletion_and_recovery(
    exporter: Running, sim: SimHandle, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    labels = {"workspace": "acme", "granularity": "hour"}
    assert exporter.poll()
    sim.sim.set_key("acme", "sk_test_ROTATEDKEY")  # the old key expired
    exporter.poll()
    assert (
        value(exporter.scrape(), "scribe_poll_errors_total", reason="unauthorized", **labels) == 1
    )
    (tmp_path / "keys" / "acme").write_text("sk_test_ROTATEDKEY\n")
    assert exporter.poll()
    (tmp_path / "keys" / "acme").unlink()
    with caplog.at_level(logging.WARNING):
        assert exporter.poll() is False
    m = exporter.scrape()
    assert value(m, "scribe_poll_errors_total", reason="unauthorized", **labels) == 2
    assert value(m, "scribe_up", workspace="globex", granularity="hour") == 1
    assert f"key file {tmp_path / 'keys' / 'acme'} cannot be read" in caplog.text
    (tmp_path / "keys" / "acme").write_text("  sk_test_ROTATEDKEY  \n")
    assert exporter.poll()


def test_env_key_source(
    sim: SimHandle,
    tmp_path: Path,
    start_exporter: StartExporter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SCRIBE_API_KEY_ACME", f"  {key_for('acme')}\n")
    path = tmp_path / "config.yaml"
    path.write_text(
        f"api:\n  base_url: {sim.url}\n"
        "workspaces:\n  - name: acme\n    api_key_env: SCRIBE_API_KEY_ACME\n"
    )
    running = start_exporter(load_config(str(path)), path)
    assert running.poll()


def test_health_readiness_landing_page_and_404(exporter: Running, sim: SimHandle) -> None:
    def get(path: str) -> requests.Response:
        return requests.get(exporter.url + path, timeout=5)

    assert get("/readyz").status_code == 503
    assert get("/healthz").status_code == 200
    before = sim.sim.requests.total()
    get("/healthz")
    get("/readyz")
    assert sim.sim.requests.total() == before  # probes never call the API
    sim.sim.set_fault(Fault(status=403), "globex")
    exporter.poll()
    assert get("/readyz").status_code == 200  # every target attempted, failures included
    page = get("/")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    m = exporter.scrape()
    latest = value(m, "scribe_clicks_latest_period", workspace="acme", granularity="hour")
    assert '<td>acme</td><td>hour</td><td class="up">up</td>' in page.text
    assert f"<td>{latest:.0f} <small>(2026-12-04 15:00:00 UTC)</small></td>" in page.text
    assert '<td>globex</td><td>hour</td><td class="down">down</td>' in page.text
    assert "<td>forbidden</td>" in page.text
    assert get("/nope").status_code == 404
    assert get("/metrics/extra").status_code == 404


def test_gzip_and_openmetrics(exporter: Running) -> None:
    exporter.poll()
    reply = requests.get(
        exporter.url + "/metrics",
        headers={
            "Accept-Encoding": "gzip",
            "Accept": "application/openmetrics-text; version=1.0.0",
        },
        timeout=5,
        stream=True,
    )
    assert reply.headers["Content-Encoding"] == "gzip"
    assert reply.headers["Content-Type"].startswith("application/openmetrics-text")
    text = gzip.decompress(reply.raw.read()).decode()
    assert text.endswith("# EOF\n")
    assert 'scribe_clicks_total{workspace="acme"} 0' in text
    plain = requests.get(
        exporter.url + "/metrics", headers={"Accept-Encoding": "identity"}, timeout=5
    )
    assert "Content-Encoding" not in plain.headers
    assert plain.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert parse_exposition(plain.text)


def test_background_polling_one_slow_workspace_never_delays_another(
    sim: SimHandle, tmp_path: Path, start_exporter: StartExporter
) -> None:
    path = write_config(
        tmp_path,
        sim.url,
        ["acme", "globex"],
        polling="  interval_seconds: 1\n  max_concurrency: 2\n",
        timeout=4.5,
    )
    running = start_exporter(load_config(str(path)), path)
    sim.sim.set_fault(Fault(delay_seconds=30), "globex")  # hangs until the 4.5 s timeout
    poller = running.exporter.poller
    poller.start()
    # acme is polled once a second while globex's single request hangs.
    assert poller.wait_for_polls(3, timeout=10)
    assert sim.sim.requests["acme"] >= 3
    assert sim.sim.requests["globex"] == 1  # never two in flight for one target
    assert poller.healthy

    def globex_timed_out() -> bool:
        return any(
            t.workspace == "globex" and t.last_error == "timeout" for t in poller.snapshot().targets
        )

    polls = 4
    while not globex_timed_out():  # each completed poll is an event; globex's comes at 4.5 s
        assert poller.wait_for_polls(polls, timeout=10)
        polls += 1
    m = running.scrape()
    assert (
        value(
            m, "scribe_poll_errors_total", workspace="globex", granularity="hour", reason="timeout"
        )
        == 1
    )


def test_secrets_never_reach_metrics_or_the_page(exporter: Running, sim: SimHandle) -> None:
    sim.sim.set_fault(Fault(status=401), "globex")
    exporter.poll()
    for path in ("/metrics", "/", "/healthz", "/readyz"):
        text = requests.get(exporter.url + path, timeout=5).text
        assert "sk_test_" not in text
    assert "sk_test_" not in repr(exporter.exporter.poller.config)


def test_a_failing_collector_costs_one_scrape_without_a_trace(
    exporter: Running, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        def collect(self) -> list[object]:
            raise RuntimeError("boom")

        def describe(self) -> list[object]:
            return []

    broken = Broken()
    registry = exporter.exporter.instrumentation.registry
    registry.register(broken)  # type: ignore[arg-type]
    reply = requests.get(exporter.url + "/metrics", timeout=5)
    assert (reply.status_code, reply.text) == (500, "internal error rendering metrics\n")
    assert "rendering metrics failed: RuntimeError: boom" in caplog.text
    registry.unregister(broken)  # type: ignore[arg-type]
    assert requests.get(exporter.url + "/metrics", timeout=5).status_code == 200
