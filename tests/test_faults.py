"""Faults of the process and its surroundings: API down at start, hung API, key files, soak."""

from __future__ import annotations

import json
import logging
import os
import random
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from scribe_exporter.config import load_config
from scribe_exporter.simulator import Fault, Simulator, SimWorkspace

from .conftest import (
    ROOT,
    Daemon,
    FakeClock,
    Running,
    SimHandle,
    StartExporter,
    free_port,
    key_for,
    value,
    wait_until,
    write_config,
)

HOUR = {"granularity": "hour"}


def test_api_unreachable_at_start_up_then_recovering(tmp_path: Path) -> None:
    api_port = free_port()
    config = write_config(
        tmp_path, f"http://127.0.0.1:{api_port}", ["acme"], polling="  interval_seconds: 1\n"
    )
    daemon = Daemon(config)
    sim = Simulator([SimWorkspace("acme", key_for("acme"))])
    labels = {"workspace": "acme", "granularity": "hour"}
    try:
        wait_until(
            lambda: (
                (
                    value(
                        daemon.metrics(), "scribe_poll_errors_total", reason="connection", **labels
                    )
                    or 0
                )
                >= 1
            ),
            what="a connection error",
        )
        assert value(daemon.metrics(), "scribe_up", **labels) == 0
        assert daemon.ready()
        sim.start(port=api_port)  # the API comes back
        wait_until(lambda: value(daemon.metrics(), "scribe_up", **labels) == 1, what="recovery")
        assert value(daemon.metrics(), "scribe_clicks_window", **labels) is not None
    finally:
        code, stderr = daemon.stop()
        sim.stop()
    assert code == 0
    assert "poll recovered after connection" in stderr


def test_hung_api_never_blocks_scrapes_health_or_other_workspaces(
    sim: SimHandle, tmp_path: Path, start_exporter: StartExporter
) -> None:
    path = write_config(
        tmp_path, sim.url, ["acme", "globex"], polling="  interval_seconds: 1\n", timeout=20
    )
    running = start_exporter(load_config(str(path)), path)
    sim.sim.set_fault(Fault(delay_seconds=60), "globex")
    poller = running.exporter.poller
    poller.start()
    wait_until(
        lambda: sim.sim.in_flight == 1 and sim.sim.requests["globex"] == 1, what="globex to hang"
    )
    polled = sim.sim.requests["acme"]
    for path_ in ("/metrics", "/healthz", "/", "/readyz"):
        started = time.monotonic()
        reply = requests.get(running.url + path_, timeout=5)
        assert reply.status_code in (200, 503)
        assert time.monotonic() - started < 1.0, path_
    assert poller.wait_for_polls(polled + 2, timeout=10)  # acme keeps its pace meanwhile
    assert sim.sim.requests["acme"] >= polled + 2
    assert sim.sim.requests["globex"] == 1


@pytest.mark.parametrize("damage", ["delete", "empty"])
def test_key_file_deleted_or_emptied_fails_only_that_workspace(
    exporter: Running, sim: SimHandle, tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    key_file = tmp_path / "keys" / "acme"
    assert exporter.poll()
    if damage == "delete":
        key_file.unlink()
    else:
        key_file.write_text("\n")
    assert exporter.poll() is False
    m = exporter.scrape()
    assert (
        value(m, "scribe_poll_errors_total", workspace="acme", reason="unauthorized", **HOUR) == 1
    )
    assert value(m, "scribe_up", workspace="globex", **HOUR) == 1
    assert str(key_file) in caplog.text
    assert sim.sim.requests["acme"] == 1  # no request without a key
    key_file.write_text(key_for("acme"))
    assert exporter.poll()


class SimProcess:
    """The simulator in its own process, so that the soak measures the exporter alone."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "scribe_exporter.simulator",
                "--workspace",
                f"acme:{key_for('acme')}:Europe/Paris",
                "--workspace",
                f"globex:{key_for('globex')}:UTC",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        self.session = requests.Session()

    def fault(self, fault: dict[str, object] | None) -> None:
        self.session.delete(self.url + "/_sim/faults", timeout=5)
        if fault is not None:
            self.session.post(self.url + "/_sim/faults", data=json.dumps(fault), timeout=5)

    def close(self) -> None:
        self.session.close()
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def sim_process() -> Iterator[SimProcess]:
    sim = SimProcess()
    yield sim
    sim.close()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_soak_thousands_of_rounds_with_random_faults(
    sim_process: SimProcess,
    tmp_path: Path,
    start_exporter: StartExporter,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR)  # thousands of expected warnings are not the point here
    path = write_config(
        tmp_path,
        sim_process.url,
        ["acme", "globex"],
        polling="  granularities: [hour, day]\n",
        timeout=1,
    )
    running = start_exporter(load_config(str(path)), path)
    rng = random.Random(20261204)
    faults: list[dict[str, object] | None] = [
        None,
        None,
        {"status": 500},
        {"status": 503, "headers": {"Retry-After": "0"}},
        {"status": 429},
        {"status": 401},
        {"status": 404},
        {"body": "<html>oops</html>"},
        {
            "body": '{"data": [], "totals": {"count": -1}, "granularity": "hour", "time_zone": "UTC"}'
        },
        {"truncate": True},
    ]
    rounds, warm = int(os.environ.get("SOAK_ROUNDS", "2000")), 200
    highest: dict[str, float] = {}
    for n in range(rounds):
        fault = rng.choice(faults)
        if fault is not None:
            fault = {**fault, "workspace": rng.choice(["acme", "globex", None])}
        sim_process.fault(fault)
        clock.advance(rng.choice([1, 60, 900]))
        running.poll()
        if n % 25 == 0:
            m = running.scrape()
            for ws in ("acme", "globex"):
                total = value(m, "scribe_clicks_total", workspace=ws)
                if total is not None:
                    assert total >= highest.get(ws, 0), "the counter decreased"
                    highest[ws] = total
        if n == warm:
            threads, fds = threading.active_count(), open_fds()
            tracemalloc.start()
            memory = tracemalloc.get_traced_memory()[0]
    grown = tracemalloc.get_traced_memory()[0] - memory
    tracemalloc.stop()
    assert threading.active_count() <= threads
    assert abs(open_fds() - fds) <= 2  # pooled keep-alive connections may come and go
    assert grown < 512 * 1024, f"{grown} bytes more after {rounds - warm} rounds"
    m = running.scrape()
    assert (
        sum(
            value(m, "scribe_poll_errors_total", workspace="acme", granularity="hour", reason=r)
            or 0
            for r in (
                "server_error",
                "rate_limited",
                "unauthorized",
                "not_found",
                "invalid_response",
                "connection",
            )
        )
        > 100
    )
