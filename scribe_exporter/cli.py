"""Command line, process lifecycle and signals."""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import logging
import platform
import queue
import signal
import sys
import time
from collections.abc import Sequence

from prometheus_client import disable_created_metrics

from . import __version__
from .config import ApiConfig, Config, ConfigError, PollingConfig, WorkspaceConfig, load_config
from .exposition import Exposition
from .keys import KeyLiteral
from .logs import LEVELS, setup_logging
from .metrics import Instrumentation
from .poller import Clock, Poller
from .secrets import Secret
from .sharding import Shard, ShardError, index_from_environment
from .simulator import Simulator, demo_workspaces
from .web import make_server, parse_listen_address, serve_in_background

log = logging.getLogger("scribe_exporter")

RESERVED_PATHS = ("/", "/healthz", "/readyz")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="exporter.py",
        description="Prometheus exporter for Scribe signature click analytics.",
    )
    parser.add_argument(
        "--config.file",
        dest="config_file",
        default="config.yaml",
        help="path to the YAML config (default: %(default)s)",
    )
    parser.add_argument(
        "--web.listen-address",
        dest="listen_address",
        default=":9877",
        help="HOST:PORT to serve on (default: %(default)s)",
    )
    parser.add_argument(
        "--web.telemetry-path",
        dest="telemetry_path",
        default="/metrics",
        help="path of the metrics (default: %(default)s)",
    )
    parser.add_argument(
        "--log.level",
        dest="log_level",
        default="info",
        choices=list(LEVELS),
        help="(default: %(default)s)",
    )
    parser.add_argument(
        "--log.format",
        dest="log_format",
        default="logfmt",
        choices=["logfmt", "json"],
        help="(default: %(default)s)",
    )
    parser.add_argument(
        "--config.check",
        dest="config_check",
        action="store_true",
        help="validate the config and that every key is readable, then exit",
    )
    parser.add_argument(
        "--once",
        action="store_true",
        help="poll every workspace once, print the metrics, exit 1 if any failed",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="run against the built-in simulator with demo workspaces",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument(
        "--shard.index",
        dest="shard_index",
        type=int,
        default=None,
        help="this replica's shard, 0 to count-1 (default: from POD_INDEX or the StatefulSet "
        "ordinal in POD_NAME/HOSTNAME when --shard.count > 1, else 0)",
    )
    parser.add_argument(
        "--shard.count",
        dest="shard_count",
        type=int,
        default=1,
        help="number of shards the workspaces are split into (default: %(default)s, no sharding)",
    )
    args = parser.parse_args(argv)
    path = args.telemetry_path
    if not path.startswith("/") or path in RESERVED_PATHS:
        parser.error(f"--web.telemetry-path must start with / and not be one of {RESERVED_PATHS}")
    try:
        parse_listen_address(args.listen_address)
    except ValueError as exc:
        parser.error(str(exc))
    return args


def demo_config(simulator: Simulator) -> Config:
    workspaces = tuple(
        WorkspaceConfig(name=ws.name, key_source=KeyLiteral(Secret(ws.key)))
        for ws in sorted(simulator.workspaces(), key=lambda w: w.name)
    )
    return Config(
        workspaces=workspaces,
        api=ApiConfig(base_url=simulator.url, timeout_seconds=5),
        polling=PollingConfig(interval_seconds=10, granularities=("hour", "day")),
    )


def resolve_shard(args: argparse.Namespace) -> Shard:
    index = args.shard_index
    if index is None and args.shard_count > 1:
        index = index_from_environment()
    return Shard(index or 0, args.shard_count)


class Exporter:
    """The running process: poller, metrics and HTTP server, wired once."""

    def __init__(
        self,
        config: Config,
        config_path: str | None,
        clock: Clock | None = None,
        shard: Shard | None = None,
    ) -> None:
        self.config_path = config_path
        self.shard = shard or Shard()
        self.instrumentation = Instrumentation(self.shard)
        self.poller = Poller(
            self._mine(config),
            clock=clock,
            observe_request=self.instrumentation.request_duration.observe,
        )
        self.exposition = Exposition(self.poller, self.instrumentation.registry)
        self._loaded(config)

    def _mine(self, config: Config) -> Config:
        """The config with only this shard's workspaces."""
        if self.shard.count == 1:
            return config
        mine = tuple(w for w in config.workspaces if self.shard.owns(w.name))
        return dataclasses.replace(config, workspaces=mine)

    def _loaded(self, config: Config) -> None:
        assigned = len(self.poller.config.workspaces)
        self.instrumentation.config_loaded(time.time(), assigned, len(config.workspaces))
        if self.shard.count > 1:
            log.info(
                "shard %d of %d: %d of %d workspaces",
                self.shard.index,
                self.shard.count,
                assigned,
                len(config.workspaces),
            )

    def reload(self) -> bool:
        if self.config_path is None:
            log.info("reload requested, but the demo has no config file to re-read")
            return False
        try:
            config = load_config(self.config_path)
        except ConfigError as exc:
            self.instrumentation.config_rejected()
            log.error("config reload failed, keeping the running config: %s", exc)
            return False
        self.poller.apply_config(self._mine(config))
        self._loaded(config)
        log.info("config reloaded: %d workspaces", len(config.workspaces))
        return True

    def text(self) -> bytes:
        return self.exposition.render()


def _serve(exporter: Exporter, args: argparse.Namespace) -> int:
    signals: queue.SimpleQueue[int] = queue.SimpleQueue()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda signum, frame: signals.put(signum))
    try:
        server = make_server(
            args.listen_address,
            args.telemetry_path,
            exporter.exposition,
            exporter.poller,
        )
    except OSError as exc:
        log.error("cannot listen on %s: %s", args.listen_address, exc.strerror or exc)
        return 1
    serve_in_background(server)
    exporter.poller.start()
    host, port = server.server_address[:2]
    log.info(
        "listening on %s:%s%s, polling %d targets",
        host or "0.0.0.0",
        port,
        args.telemetry_path,
        len(exporter.poller.snapshot().targets),
    )
    while True:
        received = signals.get()
        if received == signal.SIGHUP:
            exporter.reload()
            continue
        log.info("received %s, shutting down", signal.Signals(received).name)
        break
    server.shutdown()
    server.server_close()
    exporter.poller.stop(timeout=exporter.poller.config.api.timeout_seconds)
    return 0


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameters
M_ARENA_MAX = -8


def tune_malloc() -> None:
    """Keep the resident size flat under glibc.

    Two arenas instead of one per poll thread (each thread parsing JSON would fragment its own),
    and a fixed mmap threshold: by default glibc raises it after a large block is freed, so the
    next scrape bodies and response buffers land on the heap, which then never shrinks. Must run
    before the threads start. Other C libraries have neither knob: nothing to do there.
    """
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(M_ARENA_MAX, 2)
        libc.mallopt(M_MMAP_THRESHOLD, 128 * 1024)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    tune_malloc()
    if args.version:
        print(f"scribe-exporter {__version__} (Python {platform.python_version()})")
        return 0
    setup_logging(args.log_level, args.log_format)
    try:
        shard = resolve_shard(args)
    except ShardError as exc:
        print(f"invalid sharding: {exc}", file=sys.stderr)
        return 1
    # `_created` series double the counter and histogram output and no dashboard uses them.
    disable_created_metrics()  # type: ignore[no-untyped-call]
    simulator: Simulator | None = None
    try:
        if args.demo:
            simulator = Simulator(demo_workspaces())
            simulator.start()
            config = demo_config(simulator)
            log.info("demo: simulator at %s", simulator.url)
        else:
            config = load_config(args.config_file)
    except ConfigError as exc:
        print(f"{args.config_file}: invalid config: {exc}", file=sys.stderr)
        return 1
    if args.config_check:
        print(
            f"{args.config_file}: valid: {len(config.workspaces)} workspaces, "
            f"granularities {', '.join(config.polling.granularities)}, every key readable"
        )
        return 0
    exporter = Exporter(config, None if args.demo else args.config_file, shard=shard)
    try:
        if args.once:
            ok = exporter.poller.poll_all()
            sys.stdout.write(exporter.text().decode())
            exporter.poller.stop(timeout=0)
            return 0 if ok else 1
        return _serve(exporter, args)
    finally:
        if simulator is not None:
            simulator.stop()
