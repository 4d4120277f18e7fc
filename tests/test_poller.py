"""Scheduling: spread over the interval, bounded concurrency, health of the poller."""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from pathlib import Path

import pytest
import requests

from scribe_exporter.config import load_config
from scribe_exporter.poller import phase
from scribe_exporter.response import parse_clicks
from scribe_exporter.simulator import Fault

from .conftest import Running, SimHandle, StartExporter, value, write_config


def test_phases_spread_a_thousand_workspaces_over_the_interval() -> None:
    phases = [phase((f"workspace-{i}", "hour")) for i in range(1000)]
    per_second = Counter(int(p * 60) for p in phases)  # a 60 s interval
    assert len(per_second) == 60  # every second of the interval gets some
    assert max(per_second.values()) <= 35  # about 17 on average, never a burst
    # Fixed values: the phase must not change across restarts or releases.
    assert phase(("acme", "hour")) == 0.7312113462852118
    assert phase(("acme", "day")) == 0.30787432441219


def test_concurrency_never_exceeds_max_concurrency(
    sim: SimHandle, tmp_path: Path, start_exporter: StartExporter
) -> None:
    names = [f"ws{i}" for i in range(8)]
    sim.add_workspaces(names)
    path = write_config(tmp_path, sim.url, names, polling="  max_concurrency: 3\n")
    running = start_exporter(load_config(str(path)), path)
    sim.sim.set_fault(Fault(delay_seconds=0.2))
    assert running.poll()
    assert sim.sim.max_in_flight == 3
    assert sum(sim.sim.requests[n] for n in names) == 8


def test_healthz_fails_once_the_poller_has_stopped(exporter: Running) -> None:
    poller = exporter.exporter.poller
    poller.start()
    assert requests.get(exporter.url + "/healthz", timeout=5).status_code == 200
    poller.stop(timeout=1)
    reply = requests.get(exporter.url + "/healthz", timeout=5)
    assert (reply.status_code, reply.text) == (503, "poller stopped\n")


def test_unknown_keys_are_logged_once_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    body = (
        b'{"data": [], "totals": {"count": 0}, "granularity": "hour", "time_zone": "UTC",'
        b' "next_page": "x9"}'
    )
    with caplog.at_level(logging.DEBUG, logger="scribe_exporter.response"):
        parse_clicks(body, "hour")
        parse_clicks(body, "hour")
    lines = [r for r in caplog.records if "next_page" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.DEBUG


def test_concurrent_scrapes_see_whole_snapshots(exporter: Running, sim: SimHandle) -> None:
    """Each target's series in one scrape come from one response, never a mix of two."""

    def canned(count: int, period: str) -> Fault:
        body = {
            "data": [{"period": period, "count": count}],
            "totals": {"count": count * 10},
            "granularity": "hour",
            "time_zone": "UTC",
        }
        return Fault(body=json.dumps(body).encode())

    responses = [canned(1, "2026-12-04T14:00:00Z"), canned(2, "2026-12-04T15:00:00Z")]
    allowed = {(1.0, 10.0), (2.0, 20.0)}
    stop = threading.Event()

    def keep_polling() -> None:
        i = 0
        while not stop.is_set():
            sim.sim.set_fault(responses[i % 2])
            exporter.poll()
            i += 1

    sim.sim.set_fault(responses[0])
    exporter.poll()
    thread = threading.Thread(target=keep_polling)
    thread.start()
    try:
        for _ in range(150):
            m = exporter.scrape()
            for ws in ("acme", "globex"):
                labels = {"workspace": ws, "granularity": "hour"}
                seen = (
                    value(m, "scribe_clicks_latest_period", **labels),
                    value(m, "scribe_clicks_window", **labels),
                )
                if seen != (None, None):
                    assert seen in allowed
    finally:
        stop.set()
        thread.join()
