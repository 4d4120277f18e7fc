"""Politeness toward the API: retries, Retry-After, the request budget, the size cap."""

from __future__ import annotations

import itertools
import logging
import random
import socket
import threading
import time
from pathlib import Path

import pytest
import requests

from scribe_exporter.client import PollError, ScribeClient
from scribe_exporter.config import ApiConfig, load_config
from scribe_exporter.politeness import backoff_seconds, format_http_date, parse_retry_after
from scribe_exporter.secrets import Secret
from scribe_exporter.simulator import Fault

from .conftest import (
    FakeClock,
    Running,
    SimHandle,
    StartExporter,
    one_connection_server,
    value,
    write_config,
)

HOUR = {"granularity": "hour"}


def start(
    sim: SimHandle,
    tmp_path: Path,
    start_exporter: StartExporter,
    names: list[str] | None = None,
    api: str = "  max_retries: 2\n  retry_backoff_seconds: 0.01\n",
    polling: str = "",
) -> Running:
    path = write_config(tmp_path, sim.url, names or ["acme", "globex"], polling=polling, api=api)
    return start_exporter(load_config(str(path)), path)


def test_parse_retry_after() -> None:
    now = 1_800_000_000.0
    assert parse_retry_after("30", now) == 30
    assert parse_retry_after(format_http_date(now + 90), now) == 90
    assert parse_retry_after(format_http_date(now - 90), now) == 0
    for bad in (None, "", "soon", "-5", "1.5"):
        assert parse_retry_after(bad, now) is None


def test_backoff_is_full_jitter_and_exponential() -> None:
    rng = random.Random(7)
    for attempt, ceiling in ((0, 1.0), (1, 2.0), (2, 4.0), (10, 60.0)):
        draws = [backoff_seconds(attempt, 1.0, rng) for _ in range(500)]
        assert 0 <= min(draws) < ceiling * 0.05  # full jitter reaches down to 0
        assert ceiling * 0.95 < max(draws) <= ceiling


def test_transient_failures_are_retried_within_the_poll(
    sim: SimHandle, tmp_path: Path, start_exporter: StartExporter
) -> None:
    running = start(sim, tmp_path, start_exporter, ["acme"])
    sim.sim.set_fault(Fault(status=503, times=2), "acme")
    assert running.poll() is True
    assert sim.sim.requests["acme"] == 3
    m = running.scrape()
    assert (
        value(m, "scribe_poll_errors_total", workspace="acme", reason="server_error", **HOUR) == 0
    )


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (Fault(status=500), "server_error"),
        (Fault(status=429), "rate_limited"),
        (Fault(delay_seconds=1), "timeout"),
    ],
)
def test_retries_stop_at_max_retries(
    sim: SimHandle, tmp_path: Path, start_exporter: StartExporter, fault: Fault, reason: str
) -> None:
    path = write_config(
        tmp_path,
        sim.url,
        ["acme"],
        timeout=0.3,
        api="  max_retries: 2\n  retry_backoff_seconds: 0.01\n",
    )
    running = start_exporter(load_config(str(path)), path)
    sim.sim.set_fault(fault, "acme")
    assert running.poll() is False
    assert sim.sim.requests["acme"] == 3  # the first try and two retries
    m = running.scrape()
    assert value(m, "scribe_poll_errors_total", workspace="acme", reason=reason, **HOUR) == 1


def test_connection_errors_are_retried(tmp_path: Path, start_exporter: StartExporter) -> None:
    attempts = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def reset_every_connection() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            attempts.append(1)
            conn.close()

    threading.Thread(target=reset_every_connection, daemon=True).start()
    port = listener.getsockname()[1]
    path = write_config(
        tmp_path,
        f"http://127.0.0.1:{port}",
        ["acme"],
        api="  max_retries: 2\n  retry_backoff_seconds: 0.01\n",
    )
    running = start_exporter(load_config(str(path)), path)
    try:
        assert running.poll() is False
    finally:
        listener.close()
    assert len(attempts) == 3
    m = running.scrape()
    assert value(m, "scribe_poll_errors_total", workspace="acme", reason="connection", **HOUR) == 1


@pytest.mark.parametrize("status", [401, 403, 404, 409, 422])
def test_client_errors_are_not_retried(
    sim: SimHandle, tmp_path: Path, start_exporter: StartExporter, status: int
) -> None:
    running = start(sim, tmp_path, start_exporter, ["acme"])
    sim.sim.set_fault(Fault(status=status), "acme")
    running.poll()
    assert sim.sim.requests["acme"] == 1


def test_invalid_responses_are_not_retried(
    sim: SimHandle, tmp_path: Path, start_exporter: StartExporter
) -> None:
    running = start(sim, tmp_path, start_exporter, ["acme"])
    sim.sim.set_fault(Fault(body=b"{}"), "acme")
    running.poll()
    assert sim.sim.requests["acme"] == 1


@pytest.mark.parametrize("as_date", [False, True])
def test_retry_after_is_obeyed_before_the_retry(
    sim: SimHandle,
    tmp_path: Path,
    start_exporter: StartExporter,
    clock: FakeClock,
    as_date: bool,
) -> None:
    running = start(sim, tmp_path, start_exporter, ["acme"])
    header = format_http_date(clock.now + 1) if as_date else "1"
    sim.sim.set_fault(Fault(status=429, headers={"Retry-After": header}, times=1), "acme")
    assert running.poll() is True
    (first, _), (second, _) = list(sim.sim.request_log)
    assert second - first >= 1.0
    assert sim.sim.requests["acme"] == 2


def test_retry_after_blocks_the_workspace_until_it_expires(
    sim: SimHandle, tmp_path: Path, start_exporter: StartExporter, clock: FakeClock
) -> None:
    running = start(
        sim,
        tmp_path,
        start_exporter,
        api="  max_retries: 0\n  max_retry_after_seconds: 1.5\n",
        polling="  granularities: [hour, day]\n",
    )
    sim.sim.set_fault(Fault(status=429, headers={"Retry-After": "86400"}, times=1), "acme")
    running.poll()
    blocked_at = time.monotonic()
    polled = sim.sim.requests["acme"]
    assert polled == 2  # one 429 (hour or day), and the other granularity may have gone first
    running.poll()  # within the wait: no request for acme, at any granularity; globex goes on
    assert sim.sim.requests["acme"] == polled
    assert sim.sim.requests["globex"] == 4
    page = requests.get(running.url + "/", timeout=5).text
    # The wait was capped at max_retry_after_seconds (1.5 s), not the day the API asked for.
    assert (
        f"Retry-After: next request after {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(clock.now + 1.5))} UTC"
        in page
    )
    # What is tested is a span of real time (the capped wait), so the test lets time pass:
    # just before the cap, still no request; just after it, acme is polled again.
    time.sleep(max(0.0, blocked_at + 1.2 - time.monotonic()))
    running.poll()
    assert sim.sim.requests["acme"] == polled
    time.sleep(max(0.0, blocked_at + 1.6 - time.monotonic()))
    running.poll()
    assert sim.sim.requests["acme"] == polled + 2


def test_retry_after_past_the_next_poll_ends_the_poll(
    sim: SimHandle, tmp_path: Path, start_exporter: StartExporter
) -> None:
    running = start(sim, tmp_path, start_exporter, ["acme"], polling="  interval_seconds: 1\n")
    sim.sim.set_fault(Fault(status=503, headers={"Retry-After": "5"}, times=1), "acme")
    started = time.monotonic()
    assert running.poll() is False
    assert time.monotonic() - started < 1  # no retry: it would run past the next poll
    assert sim.sim.requests["acme"] == 1


def test_auth_errors_are_logged_once_per_change_of_state(
    sim: SimHandle, tmp_path: Path, start_exporter: StartExporter, caplog: pytest.LogCaptureFixture
) -> None:
    running = start(sim, tmp_path, start_exporter, ["acme"])
    sim.sim.set_key("acme", "sk_test_SOMEONEELSESKEY")
    with caplog.at_level(logging.DEBUG, logger="scribe_exporter.poller"):
        for _ in range(3):
            running.poll()
        sim.sim.set_fault(Fault(status=403))
        running.poll()
        running.poll()
    failures = [r for r in caplog.records if r.getMessage().startswith("poll failed")]
    warnings = [r for r in failures if r.levelno == logging.WARNING]
    assert [(r.__dict__["reason"], r.__dict__["code"]) for r in warnings] == [
        ("unauthorized", "invalid_api_key"),
        ("forbidden", "http_403"),
    ]
    assert all(r.__dict__["workspace"] == "acme" for r in warnings)
    assert len(failures) == 5
    assert sim.sim.requests["-"] == 5  # never retried (the simulator no longer knows the key)
    assert "SECRETKEY" not in caplog.text


def test_global_budget_spaces_every_request(
    sim: SimHandle, tmp_path: Path, start_exporter: StartExporter
) -> None:
    names = [f"ws{i}" for i in range(12)]
    sim.add_workspaces(names)
    api = "  max_retries: 2\n  retry_backoff_seconds: 0.001\n  max_requests_per_second: 25\n"
    running = start(
        sim, tmp_path, start_exporter, names, api=api, polling="  max_concurrency: 12\n"
    )
    sim.sim.set_fault(Fault(status=503, times=12))  # retries line up with first tries
    assert running.poll()
    assert running.exporter.reload()  # a reload keeps the budget's memory
    assert running.poll()
    times = sorted(t for t, _ in sim.sim.request_log)
    assert len(times) == 12 * 2 + 12
    # Arrival times carry loopback jitter; the spacing is 40 ms at the client.
    assert min(b - a for a, b in itertools.pairwise(times)) >= 0.02
    for i, t in enumerate(times):
        assert sum(1 for u in times[i:] if u - t < 1.0) <= 26


def test_oversized_bodies_are_cut_off() -> None:
    """An endless chunked body: the client stops at the limit instead of reading it all."""
    sent = []

    def endless(conn: socket.socket) -> None:
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"[" * 65536
        for _ in range(1000):  # 64 MiB at most, bounded
            conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent.append(len(chunk))

    with one_connection_server(endless) as url:
        client = ScribeClient(ApiConfig(base_url=url, max_response_bytes=256 * 1024))
        with pytest.raises(PollError) as caught:
            client.fetch_clicks(Secret("sk_test_x"), "hour")
        client.close()
    assert (caught.value.reason, str(caught.value)) == (
        "invalid_response",
        "body larger than 262144 bytes",
    )
    assert sum(sent) < 64 * 1024 * 1024  # the server could not push it all


def test_announced_oversized_body_is_refused_unread(
    sim: SimHandle, tmp_path: Path, start_exporter: StartExporter
) -> None:
    running = start(sim, tmp_path, start_exporter, ["acme"], api="  max_response_bytes: 2048\n")
    sim.sim.set_fault(Fault(body=b" " * 100_000), "acme")
    assert running.poll() is False
    view = running.exporter.poller.snapshot().targets[0]
    assert (view.last_error, view.last_error_message) == (
        "invalid_response",
        "body of 100000 bytes exceeds 2048",
    )
