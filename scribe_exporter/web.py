"""The exporter's HTTP server: telemetry path, health, readiness and a landing page."""

from __future__ import annotations

import html
import logging
import socket
import sys
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol

from prometheus_client.exposition import choose_encoder

from . import __version__
from .exposition import Exposition
from .snapshot import Snapshot

log = logging.getLogger(__name__)


class Status(Protocol):
    @property
    def ready(self) -> bool: ...

    @property
    def healthy(self) -> bool: ...

    def snapshot(self) -> Snapshot: ...

    def now(self) -> float: ...


def parse_listen_address(address: str) -> tuple[str, int]:
    """`HOST:PORT`, `:PORT` (all interfaces) or `[IPv6]:PORT` into (host, port)."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"--web.listen-address must be HOST:PORT, got {address!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port_text)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: tuple[str, int]) -> None:
        # The stdlib prints a trace to stderr; keep logs one line per event instead.
        exc = sys.exc_info()[1]
        level = logging.DEBUG if isinstance(exc, ConnectionError) else logging.ERROR
        log.log(level, "http: error serving %s: %s: %s", client_address[0], type(exc).__name__, exc)


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server_version = f"scribe-exporter/{__version__}"
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, a keep-alive client's delayed
    # ACK would add 40 ms to every scrape.
    disable_nagle_algorithm = True

    # Set per server by make_server.
    exposition: Exposition
    status: Status
    telemetry_path: str

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        log.debug("http: " + format, *args)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == self.telemetry_path:
            self._metrics()
        elif path == "/healthz":
            ok = self.status.healthy
            self._send(
                200 if ok else 503,
                "text/plain; charset=utf-8",
                b"ok\n" if ok else b"poller stopped\n",
            )
        elif path == "/readyz":
            ok = self.status.ready
            body = b"ready\n" if ok else b"waiting for the first poll of every target\n"
            self._send(200 if ok else 503, "text/plain; charset=utf-8", body)
        elif path == "/":
            page = landing_page(self.status.snapshot(), self.status.now(), self.telemetry_path)
            self._send(200, "text/html; charset=utf-8", page.encode())
        else:
            self._send(404, "text/plain; charset=utf-8", b"not found\n")

    def do_HEAD(self) -> None:
        self.do_GET()

    def _metrics(self) -> None:
        _, content_type = choose_encoder(self.headers.get("Accept") or "")
        openmetrics = content_type.startswith("application/openmetrics-text")
        compress = "gzip" in (self.headers.get("Accept-Encoding") or "")
        try:
            body = self.exposition.render(openmetrics, compress)
        except Exception as exc:
            # Prometheus sees a failed scrape (up == 0); the trace stays out of the response.
            log.error("rendering metrics failed: %s: %s", type(exc).__name__, exc)
            self._send(500, "text/plain; charset=utf-8", b"internal error rendering metrics\n")
            return
        headers = {"Content-Encoding": "gzip"} if compress else {}
        self._send(200, content_type, body, headers)

    def _send(
        self, status: int, content_type: str, body: bytes, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def make_server(
    address: str, telemetry_path: str, exposition: Exposition, status: Status
) -> ThreadingHTTPServer:
    host, port = parse_listen_address(address)
    handler = type(
        "Handler",
        (_Handler,),
        {"exposition": exposition, "status": status, "telemetry_path": telemetry_path},
    )
    server_class = _Server6 if ":" in host else _Server
    return server_class((host, port), handler)


def serve_in_background(
    server: ThreadingHTTPServer, poll_interval: float = 0.5
) -> threading.Thread:
    thread = threading.Thread(
        target=server.serve_forever, args=(poll_interval,), name="http", daemon=True
    )
    thread.start()
    return thread


def _when(timestamp: float | None) -> str:
    if not timestamp:
        return "never"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _bucket(count: int | None, start: float | None) -> str:
    if count is None or start is None:
        return "-"
    return f"{count} <small>({_when(start)})</small>"


def sparkline(workspace: str, counts: tuple[int, ...]) -> str:
    """An inline SVG line of hourly counts: no script, no external asset."""
    if not counts:
        return "-"
    width, height, pad = 144, 28, 2
    top = max(counts) or 1
    step = (width - 2 * pad) / max(len(counts) - 1, 1)
    points = " ".join(
        f"{pad + i * step:.1f},{height - pad - (c / top) * (height - 2 * pad):.1f}"
        for i, c in enumerate(counts)
    )
    label = html.escape(
        f"{workspace}: last {len(counts)} complete hours, {min(counts)} to {max(counts)} clicks",
        quote=True,
    )
    return (
        f'<svg class="sparkline" role="img" aria-label="{label}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" '
        f'data-counts="{",".join(map(str, counts))}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{label}</title>"
        f'<polyline fill="none" stroke="#1565c0" stroke-width="2" points="{points}"/></svg>'
    )


def landing_page(snapshot: Snapshot, now: float, telemetry_path: str) -> str:
    rows = []
    for target in snapshot.targets:
        clicks = target.fresh_clicks(now, snapshot.stale_after_seconds)
        state = "up" if target.up else ("down" if target.attempted else "pending")
        complete = _bucket(clicks.last_complete, clicks.last_complete_start) if clicks else "-"
        error = html.escape(target.last_error or "-")
        if target.blocked_until is not None and target.blocked_until > now:
            error += (
                f" <small>(Retry-After: next request after {_when(target.blocked_until)})</small>"
            )
        rows.append(
            "<tr>"
            f"<td>{html.escape(target.workspace)}</td><td>{target.granularity}</td>"
            f'<td class="{state}">{state}</td>'
            f"<td>{_when(target.last_success)}</td>"
            f"<td>{_bucket(clicks.latest, clicks.latest_start) if clicks else '-'}</td>"
            f"<td>{complete}</td>"
            f"<td>{error}</td>"
            f"<td>{sparkline(target.workspace, clicks.recent_hours) if clicks else '-'}</td>"
            "</tr>"
        )
    path = html.escape(telemetry_path)
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Scribe exporter</title>'
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
        ".up{color:#080}.down{color:#c00}.pending{color:#888}</style></head><body>"
        f"<h1>Scribe exporter</h1><p>Version {html.escape(__version__)}. "
        f'<a href="{path}">Metrics</a> · <a href="/healthz">Health</a> · '
        '<a href="/readyz">Readiness</a></p>'
        "<table><tr><th>Workspace</th><th>Granularity</th><th>State</th><th>Last success</th>"
        "<th>Latest bucket</th><th>Last complete bucket</th><th>Last error</th>"
        "<th>Last 24 complete hours</th></tr>" + "".join(rows) + "</table></body></html>\n"
    )
