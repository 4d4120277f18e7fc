"""Bucket arithmetic in the workspace's time zone (23- and 25-hour days, month lengths)."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from .config import Granularity


def _add_months(local: datetime, months: int) -> datetime:
    month_index = local.month - 1 + months
    year, month = local.year + month_index // 12, month_index % 12 + 1
    day = min(local.day, calendar.monthrange(year, month)[1])
    return local.replace(year=year, month=month, day=day)


def period_end(start: datetime, granularity: Granularity, zone: ZoneInfo) -> datetime:
    """The instant (UTC) at which the bucket starting at `start` (aware, any zone) ends.

    An hour is always 3600 s. Longer buckets are stepped in local wall-clock time and converted
    back, so that the day of a DST change lasts 23 or 25 hours and months have their real length.
    """
    if granularity == "hour":
        return (start + timedelta(hours=1)).astimezone(UTC)
    local = start.astimezone(zone).replace(tzinfo=None)
    if granularity == "day":
        naive_end = local + timedelta(days=1)
    elif granularity == "week":
        naive_end = local + timedelta(days=7)
    else:
        naive_end = _add_months(local, 1)
    return naive_end.replace(tzinfo=zone).astimezone(UTC)
