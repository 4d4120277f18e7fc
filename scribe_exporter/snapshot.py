"""Immutable views of what the poller knows; the collector renders a Snapshot, never live state."""

from __future__ import annotations

from dataclasses import dataclass

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
        buckets = response.buckets
        latest = buckets[-1] if buckets else None
        complete = None
        for bucket in reversed(buckets):
            end = period_end(bucket.start, response.granularity, response.time_zone)
            if end.timestamp() <= now - settle_seconds:
                complete = bucket
                break
        recent: tuple[int, ...] = ()
        if complete is not None and response.granularity == "hour":
            counts = {b.start.timestamp(): b.count for b in buckets}
            last = complete.start.timestamp()
            recent = tuple(
                counts.get(last - 3600 * k, 0) for k in range(SPARKLINE_HOURS - 1, -1, -1)
            )
        return cls(
            latest=latest.count if latest else None,
            latest_start=latest.start.timestamp() if latest else None,
            last_complete=complete.count if complete else None,
            last_complete_start=complete.start.timestamp() if complete else None,
            window=response.total,
            window_start=buckets[0].start.timestamp() if buckets else None,
            buckets=len(buckets),
            recent_hours=recent,
        )


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
