"""The command line as users run it: subprocesses, real signals, real logs."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scribe_exporter.simulator import Fault

from .conftest import (
    KEY_PREFIX,
    ROOT,
    Daemon,
    SimHandle,
    parse_exposition,
    run_cli,
    value,
    wait_until,
    write_config,
)


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("scribe-exporter 0.1.0 (Python 3.")


@pytest.mark.parametrize(
    "args",
    [
        ["--log.level", "verbose"],
        ["--log.format", "xml"],
        ["--web.listen-address", "9877"],
        ["--web.telemetry-path", "/healthz"],
        ["--web.telemetry-path", "metrics"],
    ],
)
def test_bad_flags_exit_2(args: list[str]) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert "error:" in result.stderr


def test_once_prints_the_exposition_and_exits_0(sim: SimHandle, tmp_path: Path) -> None:
    config = write_config(
        tmp_path, sim.url, ["acme", "globex"], polling="  granularities: [hour, day]\n"
    )
    result = run_cli("--once", "--config.file", str(config))
    assert result.returncode == 0, result.stderr
    m = parse_exposition(result.stdout)
    for ws in ("acme", "globex"):
        for g in ("hour", "day"):
            assert value(m, "scribe_up", workspace=ws, granularity=g) == 1
    assert sim.sim.requests["acme"] == 2


def test_once_exits_1_when_a_workspace_fails(sim: SimHandle, tmp_path: Path) -> None:
    sim.sim.set_fault(Fault(status=401), "globex")
    config = write_config(tmp_path, sim.url, ["acme", "globex"])
    result = run_cli("--once", "--config.file", str(config))
    assert result.returncode == 1
    m = parse_exposition(result.stdout)
    assert value(m, "scribe_up", workspace="acme", granularity="hour") == 1
    assert value(m, "scribe_up", workspace="globex", granularity="hour") == 0
    [line] = [x for x in result.stderr.splitlines() if "poll failed" in x]
    assert "level=warn" in line
    assert "workspace=globex granularity=hour reason=unauthorized" in line
    assert 'msg="poll failed: HTTP 401 (http_401)"' in line
    assert KEY_PREFIX not in result.stderr + result.stdout


def test_demo_once_needs_no_config_and_no_key(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "exporter.py"), "--demo", "--once"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,  # no config.yaml here
        check=False,
    )
    assert result.returncode == 0, result.stderr
    m = parse_exposition(result.stdout)
    for ws in ("acme", "globex", "initech"):
        for g in ("hour", "day"):
            assert value(m, "scribe_up", workspace=ws, granularity=g) == 1
            assert (value(m, "scribe_clicks_window", workspace=ws, granularity=g) or 0) > 0
    assert "sk_demo_" not in result.stdout + result.stderr


def test_daemon_serves_reloads_and_stops_cleanly(
    sim: SimHandle, tmp_path: Path, daemons: list[Daemon]
) -> None:
    config = write_config(tmp_path, sim.url, ["acme"], polling="  interval_seconds: 1\n")
    daemon = Daemon(
        config, "--web.telemetry-path", "/custom", "--log.level", "debug", "--log.format", "json"
    )
    daemons.append(daemon)
    wait_until(daemon.ready, what="readiness")
    assert daemon.get("/metrics").status_code == 404  # type: ignore[union-attr]

    def scrape() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        reply = daemon.get("/custom")
        assert reply is not None and reply.status_code == 200
        return parse_exposition(reply.text)

    assert value(scrape(), "scribe_up", workspace="acme", granularity="hour") == 1
    # SIGHUP with a workspace added: it appears without a restart.
    write_config(tmp_path, sim.url, ["acme", "globex"], polling="  interval_seconds: 1\n")
    daemon.proc.send_signal(signal.SIGHUP)
    wait_until(
        lambda: value(scrape(), "scribe_up", workspace="globex", granularity="hour") == 1,
        what="globex after reload",
    )
    # SIGHUP with a broken file: logged, old config kept, reload gauge 0.
    config.write_text("workspaces: [\n")
    daemon.proc.send_signal(signal.SIGHUP)
    wait_until(
        lambda: value(scrape(), "scribe_exporter_config_last_reload_successful") == 0,
        what="failed reload",
    )
    polled = sim.sim.requests["globex"]
    wait_until(lambda: sim.sim.requests["globex"] > polled, what="polling to go on")
    code, stderr = daemon.stop(signal.SIGTERM)
    assert code == 0
    lines = [json.loads(line) for line in stderr.splitlines()]
    assert {"ts", "level", "logger", "msg"} <= set(lines[0])
    messages = [line["msg"] for line in lines]
    assert any(m.startswith("config reload failed, keeping the running config:") for m in messages)
    assert "config reloaded: 2 workspaces" in messages
    assert messages[-1] == "received SIGTERM, shutting down"
    polls = [line for line in lines if line["msg"].startswith("poll succeeded")]
    assert polls and all(line["workspace"] and line["granularity"] == "hour" for line in polls)
    assert KEY_PREFIX not in stderr


def test_sigint_exits_0(sim: SimHandle, tmp_path: Path, daemons: list[Daemon]) -> None:
    daemon = Daemon(write_config(tmp_path, sim.url, ["acme"]))
    daemons.append(daemon)
    wait_until(lambda: daemon.get("/healthz") is not None, what="the listener")
    code, stderr = daemon.stop(signal.SIGINT)
    assert code == 0
    assert 'msg="received SIGINT, shutting down"' in stderr


def test_sigterm_during_a_hung_poll_exits_within_the_timeout(
    sim: SimHandle, tmp_path: Path, daemons: list[Daemon]
) -> None:
    sim.sim.set_fault(Fault(delay_seconds=60))
    config = write_config(tmp_path, sim.url, ["acme"], polling="  interval_seconds: 1\n", timeout=2)
    daemon = Daemon(config)
    daemons.append(daemon)
    wait_until(lambda: sim.sim.in_flight > 0, what="a poll in flight")
    started = time.monotonic()
    code, _ = daemon.stop(signal.SIGTERM)
    assert code == 0
    assert time.monotonic() - started < 2 + 1  # timeout_seconds + 1


def test_listen_address_in_use_is_a_clear_error(sim: SimHandle, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = run_cli(
            "--config.file",
            str(write_config(tmp_path, sim.url, ["acme"])),
            "--web.listen-address",
            f"127.0.0.1:{port}",
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
