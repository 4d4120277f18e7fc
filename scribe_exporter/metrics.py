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
from .snapshot import Snapshot

TARGET_LABELS = ("workspace", "granularity")


class SnapshotSource(Protocol):
    def snapshot(self) -> Snapshot: ...

    def now(self) -> float: ...


class SnapshotCollector(Collector):
    """Yields fresh metric families from the poller's current immutable snapshot."""

    def __init__(self, source: SnapshotSource) -> None:
        self._source = source

    def describe(self) -> Iterable[Metric]:
        # Registering must not render a snapshot; the names are not needed for collision checks.
        return []

    def collect(self) -> Iterable[Metric]:
        snapshot = self._source.snapshot()
        now = self._source.now()
        gauge = GaugeMetricFamily
        latest = gauge(
            "scribe_clicks_latest_period",
            "Clicks in the newest bucket (period) the API returned; it may still be in progress.",
            labels=TARGET_LABELS,
        )
        latest_start = gauge(
            "scribe_clicks_latest_period_start_timestamp_seconds",
            "Start of the newest bucket returned, in Unix seconds.",
            labels=TARGET_LABELS,
        )
        complete = gauge(
            "scribe_clicks_last_complete_period",
            "Clicks in the newest bucket whose end is at least settle_seconds in the past "
            "(end computed in the workspace's time zone). Alert on this one.",
            labels=TARGET_LABELS,
        )
        complete_start = gauge(
            "scribe_clicks_last_complete_period_start_timestamp_seconds",
            "Start of the last complete bucket, in Unix seconds.",
            labels=TARGET_LABELS,
        )
        window = gauge(
            "scribe_clicks_window",
            "Clicks over the whole window returned by the API (its totals.count).",
            labels=TARGET_LABELS,
        )
        window_start = gauge(
            "scribe_clicks_window_start_timestamp_seconds",
            "Start of the oldest bucket in the window, in Unix seconds.",
            labels=TARGET_LABELS,
        )
        up = gauge(
            "scribe_up",
            "1 if the last poll of this target succeeded, else 0.",
            labels=TARGET_LABELS,
        )
        last_success = gauge(
            "scribe_last_success_timestamp_seconds",
            "Time of the last successful poll of this target in Unix seconds, 0 if none yet.",
            labels=TARGET_LABELS,
        )
        errors = CounterMetricFamily(
            "scribe_poll_errors",
            "Failed polls by reason: timeout, connection, unauthorized, forbidden, not_found, "
            "rate_limited, client_error, server_error, invalid_response.",
            labels=(*TARGET_LABELS, "reason"),
        )
        for target in snapshot.targets:
            labels = (target.workspace, target.granularity)
            up.add_metric(labels, 1.0 if target.up else 0.0)
            last_success.add_metric(labels, target.last_success or 0.0)
            for reason, count in zip(REASONS, target.errors, strict=True):
                errors.add_metric((*labels, reason), count)
            clicks = target.fresh_clicks(now, snapshot.stale_after_seconds)
            if clicks is None:
                continue
            window.add_metric(labels, clicks.window)
            if clicks.window_start is not None:
                window_start.add_metric(labels, clicks.window_start)
            if clicks.latest is not None and clicks.latest_start is not None:
                latest.add_metric(labels, clicks.latest)
                latest_start.add_metric(labels, clicks.latest_start)
            if clicks.last_complete is not None and clicks.last_complete_start is not None:
                complete.add_metric(labels, clicks.last_complete)
                complete_start.add_metric(labels, clicks.last_complete_start)
        total = CounterMetricFamily(
            "scribe_clicks",
            "Clicks observed since the exporter started, from the finest configured granularity. "
            "The first successful poll is the baseline (0); after that every bucket adds how far "
            "its count rose above the highest count seen for it, so the counter never decreases "
            "and rate()/increase() work.",
            labels=("workspace",),
        )
        for workspace, count in snapshot.counters:
            total.add_metric((workspace,), count)
        yield from (latest, latest_start, complete, complete_start, window, window_start, total)
        yield from (up, last_success, errors)


class Instrumentation:
    """The private registry, and the exporter's own metrics that are not snapshot data."""

    def __init__(self) -> None:
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

    def config_loaded(self, at: float) -> None:
        self.reload_successful.set(1)
        self.reload_success_time.set(at)

    def config_rejected(self) -> None:
        self.reload_successful.set(0)
