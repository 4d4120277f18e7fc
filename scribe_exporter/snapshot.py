"""Immutable views of what the poller knows; the collector renders a Snapshot, never live state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from .client import REASONS, Reason
from .config import Granularity
from .periods import period_end
from .response import ClicksResponse

SPARKLINE_HOURS = 24


@dataclass(frozen=True, slots=True)
class ClicksView:
    """What one successful response says, evaluated at the time it was received."""

    latest: int | None
    latest_start: float | None
    last_complete: int | None
    last_complete_start: float | None
    window: int
    window_start: float | None
    buckets: int
    # Hour granularity only: the last SPARKLINE_HOURS complete hours, oldest first, a missing
    # hour counted as 0. The landing page draws it.
    recent_hours: tuple[int, ...] = ()

    @classmethod
    def of(cls, response: ClicksResponse, now: float, settle_seconds: float) -> ClicksView:
        starts, counts = response.starts, response.counts
        complete = _last_complete(response, now - settle_seconds)
        recent: tuple[int, ...] = ()
        if complete is not None and response.granularity == "hour":
            recent = _recent_hours(starts, counts, complete)
        return cls(
            latest=counts[-1] if counts else None,
            latest_start=starts[-1] if starts else None,
            last_complete=counts[complete] if complete is not None else None,
            last_complete_start=starts[complete] if complete is not None else None,
            window=response.total,
            window_start=starts[0] if starts else None,
            buckets=len(starts),
            recent_hours=recent,
        )


def _last_complete(response: ClicksResponse, cutoff: float) -> int | None:
    """Index of the newest bucket that ended by `cutoff`; usually the second or third newest."""
    zone, granularity = response.time_zone, response.granularity
    for index in range(len(response.starts) - 1, -1, -1):
        start = response.starts[index]
        if granularity == "hour":
            end = start + 3600.0
        else:
            end = period_end(datetime.fromtimestamp(start, UTC), granularity, zone).timestamp()
        if end <= cutoff:
            return index
    return None


def _recent_hours(starts: tuple[float, ...], counts: tuple[int, ...], last: int) -> tuple[int, ...]:
    """The SPARKLINE_HOURS hours up to the bucket at index `last`, a missing hour counted 0."""
    first = last - (SPARKLINE_HOURS - 1)
    if first >= 0 and starts[last] - starts[first] == 3600.0 * (SPARKLINE_HOURS - 1):
        return counts[first : last + 1]  # contiguous, the usual case
    by_start = dict(
        zip(starts[max(first, 0) : last + 1], counts[max(first, 0) : last + 1], strict=True)
    )
    end = starts[last]
    return tuple(by_start.get(end - 3600.0 * k, 0) for k in range(SPARKLINE_HOURS - 1, -1, -1))


NO_ERRORS: tuple[int, ...] = (0,) * len(REASONS)


@dataclass(frozen=True, slots=True)
class TargetView:
    """One (workspace, granularity) target as of its last poll attempt."""

    workspace: str
    granularity: Granularity
    attempted: bool = False
    up: bool = False
    last_success: float | None = None
    clicks: ClicksView | None = None
    errors: tuple[int, ...] = NO_ERRORS  # indexed like client.REASONS
    last_error: Reason | None = None
    last_error_message: str | None = None
    blocked_until: float | None = None  # no request before this time (Retry-After), Unix s
    # This target's samples in the exposition format, one string per family of
    # exposition.TARGET_FAMILIES: rendered once when the view is made, joined at each scrape.
    lines: tuple[str, ...] = ()

    def fresh_clicks(self, now: float, stale_after_seconds: float) -> ClicksView | None:
        """The clicks data, unless the last success is older than stale_after_seconds."""
        if self.clicks is None or self.last_success is None:
            return None
        if now - self.last_success > stale_after_seconds:
            return None
        return self.clicks


@dataclass(frozen=True, slots=True)
class Snapshot:
    targets: tuple[TargetView, ...] = ()
    counters: tuple[tuple[str, int], ...] = ()  # (workspace, clicks) for baselined workspaces
    stale_after_seconds: float = 900.0
