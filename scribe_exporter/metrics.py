"""Prometheus metrics: a Collector over the poller's snapshot, plus the exporter's own metrics."""

from __future__ import annotations

import platform
from collections.abc import Iterable
from typing import Protocol

from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from . import __version__
from .client import REASONS
from .families import (
    ALL_FAMILIES,
    CLICKS_TOTAL,
    COMPLETE,
    COMPLETE_START,
    LAST_SUCCESS,
    LATEST,
    LATEST_START,
    POLL_ERRORS,
    UP,
    WINDOW,
    WINDOW_START,
)
from .sharding import Shard
from .snapshot import Snapshot

TARGET_LABELS = ("workspace", "granularity")


class SnapshotSource(Protocol):
    def snapshot(self) -> Snapshot: ...

    def now(self) -> float: ...


class SnapshotCollector(Collector):
    """Yields fresh metric families from the poller's current immutable snapshot.

    This is the reference definition of the snapshot's series through prometheus_client. Scrapes
    are served by exposition.Exposition, which renders the same samples without a per-sample
    object; a test holds the two to the same output, and the benchmark compares their speed.
    """

    def __init__(self, source: SnapshotSource) -> None:
        self._source = source

    def describe(self) -> Iterable[Metric]:
        # Registering must not render a snapshot; the names are not needed for collision checks.
        return []

    def collect(self) -> Iterable[Metric]:
        snapshot = self._source.snapshot()
        now = self._source.now()
        built: dict[str, GaugeMetricFamily | CounterMetricFamily] = {}
        for family in ALL_FAMILIES:
            kind = GaugeMetricFamily if family.kind == "gauge" else CounterMetricFamily
            labels: tuple[str, ...] = TARGET_LABELS if family.per_target else ("workspace",)
            if family is POLL_ERRORS:
                labels = (*TARGET_LABELS, "reason")
            built[family.name] = kind(family.name, family.help, labels=labels)
        for target in snapshot.targets:
            labels = (target.workspace, target.granularity)
            built[UP.name].add_metric(labels, 1.0 if target.up else 0.0)
            built[LAST_SUCCESS.name].add_metric(labels, target.last_success or 0.0)
            for reason, count in zip(REASONS, target.errors, strict=True):
                built[POLL_ERRORS.name].add_metric((*labels, reason), count)
            clicks = target.fresh_clicks(now, snapshot.stale_after_seconds)
            if clicks is None:
                continue
            for family, value in (
                (LATEST, clicks.latest),
                (LATEST_START, clicks.latest_start),
                (COMPLETE, clicks.last_complete),
                (COMPLETE_START, clicks.last_complete_start),
                (WINDOW, clicks.window),
                (WINDOW_START, clicks.window_start),
            ):
                if value is not None:
                    built[family.name].add_metric(labels, value)
        for workspace, count in snapshot.counters:
            built[CLICKS_TOTAL.name].add_metric((workspace,), count)
        yield from built.values()


class Instrumentation:
    """The private registry, and the exporter's own metrics that are not snapshot data."""

    def __init__(self, shard: Shard) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.request_duration = Histogram(
            "scribe_api_request_duration_seconds",
            "Duration of requests to the Scribe API, including failed ones.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=self.registry,
        )
        build_info = Gauge(
            "scribe_exporter_build_info",
            "Always 1; the labels carry the exporter and Python versions.",
            ("version", "python_version"),
            registry=self.registry,
        )
        build_info.labels(__version__, platform.python_version()).set(1)
        self.reload_successful = Gauge(
            "scribe_exporter_config_last_reload_successful",
            "1 if the last configuration load or reload succeeded, else 0.",
            registry=self.registry,
        )
        self.reload_success_time = Gauge(
            "scribe_exporter_config_last_reload_success_timestamp_seconds",
            "Time of the last successful configuration load or reload in Unix seconds.",
            registry=self.registry,
        )

        shard_info = Gauge(
            "scribe_exporter_shard_info",
            "Always 1; this replica's shard index and the shard count (0 of 1: no sharding).",
            ("index", "count"),
            registry=self.registry,
        )
        shard_info.labels(str(shard.index), str(shard.count)).set(1)
        self.assigned = Gauge(
            "scribe_exporter_assigned_workspaces",
            "Workspaces this replica polls (its shard of the configured ones).",
            registry=self.registry,
        )
        self.configured = Gauge(
            "scribe_exporter_configured_workspaces",
            "Workspaces in the configuration, across all shards.",
            registry=self.registry,
        )

    def config_loaded(self, at: float, assigned: int, configured: int) -> None:
        self.reload_successful.set(1)
        self.reload_success_time.set(at)
        self.assigned.set(assigned)
        self.configured.set(configured)

    def config_rejected(self) -> None:
        self.reload_successful.set(0)
