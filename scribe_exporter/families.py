"""The metric families built from poll results: names, types, help texts, in exposition order.

One table, read both by the Collector (the reference, through prometheus_client) and by the
exposition renderer that serves scrapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Family:
    name: str  # as in the OpenMetrics TYPE line: a counter's name without `_total`
    kind: Literal["gauge", "counter"]
    help: str
    per_target: bool = True  # labels workspace, granularity; else workspace only

    @property
    def sample_name(self) -> str:
        return f"{self.name}_total" if self.kind == "counter" else self.name


LATEST = Family(
    "scribe_clicks_latest_period",
    "gauge",
    "Clicks in the newest bucket (period) the API returned; it may still be in progress.",
)
LATEST_START = Family(
    "scribe_clicks_latest_period_start_timestamp_seconds",
    "gauge",
    "Start of the newest bucket returned, in Unix seconds.",
)
COMPLETE = Family(
    "scribe_clicks_last_complete_period",
    "gauge",
    "Clicks in the newest bucket whose end is at least settle_seconds in the past "
    "(end computed in the workspace's time zone). Alert on this one.",
)
COMPLETE_START = Family(
    "scribe_clicks_last_complete_period_start_timestamp_seconds",
    "gauge",
    "Start of the last complete bucket, in Unix seconds.",
)
WINDOW = Family(
    "scribe_clicks_window",
    "gauge",
    "Clicks over the whole window returned by the API (its totals.count).",
)
WINDOW_START = Family(
    "scribe_clicks_window_start_timestamp_seconds",
    "gauge",
    "Start of the oldest bucket in the window, in Unix seconds.",
)
CLICKS_TOTAL = Family(
    "scribe_clicks",
    "counter",
    "Clicks observed since the exporter started, from the finest configured granularity. "
    "The first successful poll is the baseline (0); after that every bucket adds how far "
    "its count rose above the highest count seen for it, so the counter never decreases "
    "and rate()/increase() work.",
    per_target=False,
)
UP = Family("scribe_up", "gauge", "1 if the last poll of this target succeeded, else 0.")
LAST_SUCCESS = Family(
    "scribe_last_success_timestamp_seconds",
    "gauge",
    "Time of the last successful poll of this target in Unix seconds, 0 if none yet.",
)
POLL_ERRORS = Family(
    "scribe_poll_errors",
    "counter",
    "Failed polls by reason: timeout, connection, unauthorized, forbidden, not_found, "
    "rate_limited, client_error, server_error, invalid_response.",
)

# The clicks families disappear when a target's data goes stale; the others never do.
CLICKS_FAMILIES = (LATEST, LATEST_START, COMPLETE, COMPLETE_START, WINDOW, WINDOW_START)
HEALTH_FAMILIES = (UP, LAST_SUCCESS, POLL_ERRORS)
TARGET_FAMILIES = CLICKS_FAMILIES + HEALTH_FAMILIES
ALL_FAMILIES = (*CLICKS_FAMILIES, CLICKS_TOTAL, *HEALTH_FAMILIES)
