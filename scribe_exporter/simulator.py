"""A Scribe API simulator: `GET /v1/analytics/clicks` per the vendor's OpenAPI excerpt.

Used by `--demo`, by the tests and by anyone who wants to try dashboards and alerts without a
key. Click counts follow a daily and weekly rhythm in each workspace's time zone, are the same on
every call for a complete hour, and grow through the hour in progress. Faults (status codes,
`Retry-After`, latency, malformed or truncated bodies) are programmable in-process or over HTTP
under `/_sim/`, so that tests in other processes can inject them too.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import secrets
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

GRANULARITIES = ("hour", "day", "week", "month")
# How many buckets a response holds, the one in progress included. The real API documents no
# window length; these are plausible and small enough for tests.
DEFAULT_WINDOWS = {"hour": 48, "day": 30, "week": 12, "month": 12}


@dataclass
class SimWorkspace:
    name: str
    key: str
    time_zone: str = "UTC"
    peak_clicks_per_hour: float = 40.0
    # From `drop_since` (Unix seconds) on, hourly clicks are multiplied by `drop_factor`.
    drop_factor: float = 1.0
    drop_since: float = math.inf


@dataclass
class Fault:
    """What the next `times` requests of a workspace (or of all, when workspace is None) get."""

    status: int = 200
    body: bytes | None = None  # replaces the normal body; None keeps it (or an error envelope)
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0
    truncate: bool = False  # announce the full length, send half, close
    times: int | None = None  # None: until cleared


def _unit_noise(seed: str, hour: int) -> float:
    digest = hashlib.blake2b(f"{seed}:{hour}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@lru_cache(maxsize=1_000_000)
def _hourly(seed: str, zone_name: str, peak: float, hour_start: int) -> int:
    """Clicks of one complete hour: a working-day curve, quieter weekends, some noise."""
    local = datetime.fromtimestamp(hour_start, ZoneInfo(zone_name))
    hour = local.hour + local.minute / 60
    daily = 0.08 + 0.92 * math.exp(-(((hour - 13.0) / 3.5) ** 2))
    weekly = 0.35 if local.weekday() >= 5 else 1.0
    noise = 0.75 + 0.5 * _unit_noise(seed, hour_start)
    return int(peak * daily * weekly * noise)


class ClickModel:
    """Deterministic click counts per workspace; every granularity is a sum of hours."""

    def hour_clicks(self, ws: SimWorkspace, hour_start: int) -> int:
        count = _hourly(ws.name, ws.time_zone, ws.peak_clicks_per_hour, hour_start)
        if hour_start >= ws.drop_since:
            count = int(count * ws.drop_factor)
        return count

    def bucket_clicks(self, ws: SimWorkspace, start: datetime, end: datetime, now: float) -> int:
        total = 0
        hour = int(start.timestamp())
        stop = min(int(end.timestamp()), int(now))
        while hour < stop:
            full = self.hour_clicks(ws, hour)
            if hour + 3600 <= now:
                total += full
            else:
                # The hour in progress grows with the fraction that has passed.
                total += int(full * (now - hour) / 3600)
            hour += 3600
        return total


def bucket_starts(granularity: str, zone: ZoneInfo, now: float, count: int) -> list[datetime]:
    """The starts (UTC) of the `count` newest buckets at `now`, oldest first."""
    local_now = datetime.fromtimestamp(now, zone)
    if granularity == "hour":
        current = local_now.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
        return [current - timedelta(hours=k) for k in range(count - 1, -1, -1)]
    day = local_now.date()
    if granularity == "week":
        day -= timedelta(days=day.weekday())
    elif granularity == "month":
        day = day.replace(day=1)
    days = []
    for _ in range(count):
        days.append(day)
        if granularity == "day":
            day -= timedelta(days=1)
        elif granularity == "week":
            day -= timedelta(days=7)
        else:
            day = (day - timedelta(days=1)).replace(day=1)
    return [datetime(d.year, d.month, d.day, tzinfo=zone).astimezone(UTC) for d in reversed(days)]


def bucket_end(start: datetime, granularity: str, zone: ZoneInfo) -> datetime:
    if granularity == "hour":
        return start + timedelta(hours=1)
    local = start.astimezone(zone).date()
    if granularity == "day":
        nxt = local + timedelta(days=1)
    elif granularity == "week":
        nxt = local + timedelta(days=7)
    else:
        nxt = (local.replace(day=28) + timedelta(days=4)).replace(day=1)
    return datetime(nxt.year, nxt.month, nxt.day, tzinfo=zone).astimezone(UTC)


def iso(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def error_body(status: int, error_type: str, code: str, message: str) -> bytes:
    error: dict[str, Any] = {"type": error_type, "code": code, "message": message}
    if status == 422:
        error["details"] = [{"field": "granularity", "code": code}]
    return json.dumps({"error": error}).encode()


class Simulator:
    def __init__(
        self,
        workspaces: list[SimWorkspace],
        clock: Callable[[], float] = time.time,
        windows: dict[str, int] | None = None,
    ) -> None:
        self.clock = clock
        self.windows = dict(DEFAULT_WINDOWS, **(windows or {}))
        self.model = ClickModel()
        self._lock = threading.Lock()
        self._by_key = {w.key: w for w in workspaces}
        self._by_name = {w.name: w for w in workspaces}
        self._faults: dict[str | None, Fault] = {}
        self.requests: Counter[str] = Counter()  # per workspace name ("-" for bad keys)
        # (monotonic time, workspace) of the latest requests, for pacing checks in tests.
        self.request_log: deque[tuple[float, str]] = deque(maxlen=100_000)
        self.in_flight = 0
        self._in_flight_by_name: Counter[str] = Counter()
        self.max_in_flight_one_workspace = 0
        # Serialised bodies per (workspace, granularity, minute, drop): a benchmark polling a
        # thousand 720-bucket windows a second must measure the exporter, not this simulator.
        self._bodies: dict[tuple[Any, ...], bytes] = {}
        self.max_in_flight = 0
        self._server: ThreadingHTTPServer | None = None
        self._stopping = threading.Event()

    # --- data ------------------------------------------------------------------------------

    def workspaces(self) -> list[SimWorkspace]:
        with self._lock:
            return list(self._by_name.values())

    def workspace(self, name: str) -> SimWorkspace:
        return self._by_name[name]

    def set_key(self, name: str, key: str) -> None:
        """Rotate a workspace's key: the old one answers 401 from now on."""
        with self._lock:
            ws = self._by_name[name]
            del self._by_key[ws.key]
            ws.key = key
            self._by_key[key] = ws

    def add_workspace(self, ws: SimWorkspace) -> None:
        with self._lock:
            self._by_key[ws.key] = ws
            self._by_name[ws.name] = ws

    def clicks_body(self, ws: SimWorkspace, granularity: str, now: float) -> dict[str, Any]:
        zone = ZoneInfo(ws.time_zone)
        data = []
        for start in bucket_starts(granularity, zone, now, self.windows[granularity]):
            end = bucket_end(start, granularity, zone)
            data.append(
                {"period": iso(start), "count": self.model.bucket_clicks(ws, start, end, now)}
            )
        return {
            "data": data,
            "totals": {"count": sum(item["count"] for item in data)},
            "granularity": granularity,
            "time_zone": ws.time_zone,
        }

    # --- faults ----------------------------------------------------------------------------

    def set_fault(self, fault: Fault, workspace: str | None = None) -> None:
        with self._lock:
            self._faults[workspace] = fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def take_fault(self, workspace: str | None) -> Fault | None:
        with self._lock:
            for scope in (workspace, None):
                fault = self._faults.get(scope)
                if fault is None:
                    continue
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        del self._faults[scope]
                return fault
        return None

    def lookup(self, authorization: str | None) -> SimWorkspace | None:
        if not authorization or not authorization.startswith("Bearer "):
            return None
        with self._lock:
            return self._by_key.get(authorization[len("Bearer ") :])

    def count_request(self, name: str, delta: int) -> None:
        with self._lock:
            if delta > 0:
                self.requests[name] += 1
                self.request_log.append((time.monotonic(), name))
            self.in_flight += delta
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self._in_flight_by_name[name] += delta
            if name != "-":
                self.max_in_flight_one_workspace = max(
                    self.max_in_flight_one_workspace, self._in_flight_by_name[name]
                )

    def body_bytes(self, ws: SimWorkspace, granularity: str) -> bytes:
        now = self.clock()
        key = (ws.name, granularity, int(now // 60), ws.drop_factor, ws.drop_since)
        body = self._bodies.get(key)
        if body is None:
            # The minute's body: the hour in progress grows once a minute, not continuously.
            body = json.dumps(self.clicks_body(ws, granularity, now // 60 * 60)).encode()
            with self._lock:
                if len(self._bodies) > 50_000:
                    self._bodies.clear()
                self._bodies[key] = body
        return body

    def per_second(self, seconds: int) -> list[int]:
        """Requests received in each of the last `seconds` whole seconds, oldest first."""
        now = int(time.monotonic())
        counts = Counter(int(t) for t, _ in list(self.request_log) if t >= now - seconds)
        return [counts.get(second, 0) for second in range(now - seconds, now)]

    # --- server ----------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        handler = type("SimHandler", (_SimHandler,), {"sim": self})
        self._server = _QuietServer((host, port), handler)
        threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="simulator", daemon=True
        ).start()
        return self.url

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def wait(self, seconds: float) -> None:
        """Latency injection that ends early when the simulator stops."""
        self._stopping.wait(seconds)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that gave up (a timeout test) is expected; anything else is worth a trace.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class _SimHandler(BaseHTTPRequestHandler):
    sim: Simulator
    protocol_version = "HTTP/1.1"
    server_version = "scribe-simulator"
    disable_nagle_algorithm = True  # see web._Handler

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass

    def _send(
        self,
        status: int,
        body: bytes,
        headers: dict[str, str] | None = None,
        truncate: bool = False,
    ) -> None:
        self.send_response(status)
        headers = {"Content-Type": "application/json", **(headers or {})}
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        if truncate:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if truncate else body)
        if truncate:
            self.close_connection = True

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/_sim/stats":
            sim = self.sim
            seconds = int(parse_qs(url.query).get("seconds", ["0"])[-1])
            stats = {
                "requests": dict(sim.requests),
                "total": sum(sim.requests.values()),
                "max_in_flight": sim.max_in_flight,
                "max_in_flight_one_workspace": sim.max_in_flight_one_workspace,
                "per_second": sim.per_second(seconds) if seconds else [],
            }
            self._send(200, json.dumps(stats).encode())
            return
        if url.path != "/v1/analytics/clicks":
            self._send(404, error_body(404, "not_found", "not_found", "No such resource"))
            return
        ws = self.sim.lookup(self.headers.get("Authorization"))
        name = ws.name if ws else "-"
        self.sim.count_request(name, +1)
        try:
            self._clicks(ws, url.query)
        finally:
            self.sim.count_request(name, -1)

    def _clicks(self, ws: SimWorkspace | None, query: str) -> None:
        fault = self.sim.take_fault(ws.name if ws else None)
        if fault is not None and fault.delay_seconds:
            self.sim.wait(fault.delay_seconds)
        if fault is not None and (fault.status != 200 or fault.body is not None or fault.truncate):
            body = fault.body
            if body is None:
                body = (
                    error_body(fault.status, "api_error", f"http_{fault.status}", "Injected fault")
                    if fault.status != 200
                    else json.dumps(self._normal(ws, query)).encode()
                )
            self._send(fault.status, body, fault.headers, fault.truncate)
            return
        if ws is None:
            body = error_body(401, "authentication_error", "invalid_api_key", "Invalid API key")
            self._send(401, body)
            return
        granularity = parse_qs(query).get("granularity", ["day"])[-1]
        if granularity not in GRANULARITIES:
            body = error_body(422, "validation_error", "inclusion", "granularity is not valid")
            self._send(422, body)
            return
        headers = fault.headers if fault is not None else {}
        self._send(200, self.sim.body_bytes(ws, granularity), headers)

    def _normal(self, ws: SimWorkspace | None, query: str) -> dict[str, Any]:
        granularity = parse_qs(query).get("granularity", ["day"])[-1]
        if ws is None or granularity not in GRANULARITIES:
            return {}
        return self.sim.clicks_body(ws, granularity, self.sim.clock())

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            payload = json.loads(self.rfile.read(length) or b"{}")
            if self.path == "/_sim/faults":
                self.sim.set_fault(fault_from_json(payload), payload.get("workspace"))
            elif self.path == "/_sim/drop":
                ws = self.sim.workspace(payload["workspace"])
                ws.drop_factor = float(payload["factor"])
                ws.drop_since = float(payload.get("since", self.sim.clock() - 7 * 86400))
            else:
                self._send(404, error_body(404, "not_found", "not_found", "No such resource"))
                return
        except (ValueError, KeyError, TypeError) as exc:
            self._send(400, error_body(400, "invalid_request", "bad_control", str(exc)))
            return
        self._send(200, b"{}")

    def do_DELETE(self) -> None:
        if self.path == "/_sim/faults":
            self.sim.clear_faults()
            self._send(200, b"{}")
        else:
            self._send(404, error_body(404, "not_found", "not_found", "No such resource"))


def fault_from_json(payload: dict[str, Any]) -> Fault:
    body = payload.get("body")
    return Fault(
        status=int(payload.get("status", 200)),
        body=body.encode() if isinstance(body, str) else None,
        headers={str(k): str(v) for k, v in payload.get("headers", {}).items()},
        delay_seconds=float(payload.get("delay_seconds", 0)),
        truncate=bool(payload.get("truncate", False)),
        times=payload.get("times"),
    )


DEMO_ZONES = (("acme", "Europe/Paris"), ("globex", "America/New_York"), ("initech", "Asia/Kolkata"))


def demo_workspaces() -> list[SimWorkspace]:
    """A few workspaces in different zones, each with a fresh random key."""
    return [
        SimWorkspace(name, "sk_demo_" + secrets.token_urlsafe(18), zone, 20.0 + 20 * index)
        for index, (name, zone) in enumerate(DEMO_ZONES)
    ]


def generated_names(count: int) -> list[str]:
    return [f"ws{i:05d}" for i in range(1, count + 1)]


def generated_key(name: str) -> str:
    """A key for a generated workspace; derivable, because only benchmarks use them."""
    return f"sk_bench_{name}"


def workspace_from_spec(spec: str) -> SimWorkspace:
    """`NAME:KEY[:ZONE[:PEAK]]`, PEAK being clicks in the busiest hour of a weekday."""
    parts = spec.split(":")
    if not 2 <= len(parts) <= 4:
        raise SystemExit(f"--workspace wants NAME:KEY[:ZONE[:PEAK]], got {spec!r}")
    ws = SimWorkspace(parts[0], parts[1])
    if len(parts) > 2:
        ws.time_zone = parts[2]
    if len(parts) > 3:
        ws.peak_clicks_per_hour = float(parts[3])
    return ws


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Scribe API simulator")
    parser.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT (port 0: any free)")
    parser.add_argument(
        "--workspace",
        action="append",
        default=[],
        metavar="NAME:KEY[:ZONE[:PEAK]]",
        help="a workspace and its key (repeatable); default: the demo workspaces",
    )
    parser.add_argument(
        "--generate",
        type=int,
        default=0,
        metavar="N",
        help="add N workspaces ws00001... with the keys generated_key(name) (benchmarks)",
    )
    parser.add_argument(
        "--window-hours", type=int, default=DEFAULT_WINDOWS["hour"], help="buckets per hour window"
    )
    args = parser.parse_args(argv)
    workspaces = [workspace_from_spec(spec) for spec in args.workspace]
    workspaces += [
        SimWorkspace(name, generated_key(name)) for name in generated_names(args.generate)
    ]
    host, _, port = args.listen.rpartition(":")
    sim = Simulator(workspaces or demo_workspaces(), windows={"hour": args.window_hours})
    url = sim.start(host or "127.0.0.1", int(port))
    print(url, flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        threading.Event().wait()
    sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
