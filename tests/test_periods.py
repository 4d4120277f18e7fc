"""Bucket ends in the workspace's zone: DST days, week and month lengths."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from scribe_exporter.config import Granularity
from scribe_exporter.periods import period_end

PARIS = ZoneInfo("Europe/Paris")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@pytest.mark.parametrize(
    ("start", "granularity", "zone", "end"),
    [
        # An hour is 3600 s, even across a DST change and in a half-hour zone.
        ("2026-03-29T00:00:00Z", "hour", "Europe/Paris", "2026-03-29T01:00:00Z"),
        ("2026-12-04T09:30:00Z", "hour", "Asia/Kolkata", "2026-12-04T10:30:00Z"),
        # Paris springs forward on 2026-03-29: that local day lasts 23 hours.
        ("2026-03-28T23:00:00Z", "day", "Europe/Paris", "2026-03-29T22:00:00Z"),
        # ... and falls back on 2026-10-25: 25 hours.
        ("2026-10-24T22:00:00Z", "day", "Europe/Paris", "2026-10-25T23:00:00Z"),
        ("2026-12-03T23:00:00Z", "day", "Europe/Paris", "2026-12-04T23:00:00Z"),
        ("2026-03-08T05:00:00Z", "day", "America/New_York", "2026-03-09T04:00:00Z"),
        # A week across the spring change is 167 hours.
        ("2026-03-22T23:00:00Z", "week", "Europe/Paris", "2026-03-29T22:00:00Z"),
        # Months have their own lengths, February of a non-leap year included.
        ("2026-01-31T23:00:00Z", "month", "Europe/Paris", "2026-02-28T23:00:00Z"),
        ("2028-01-31T23:00:00Z", "month", "Europe/Paris", "2028-02-29T23:00:00Z"),
        ("2026-12-01T00:00:00Z", "month", "UTC", "2027-01-01T00:00:00Z"),
        ("2026-02-28T23:00:00Z", "month", "Europe/Paris", "2026-03-31T22:00:00Z"),
    ],
)
def test_period_end(start: str, granularity: Granularity, zone: str, end: str) -> None:
    assert period_end(utc(start), granularity, ZoneInfo(zone)) == utc(end)
