"""Being polite to the API: retry backoff, Retry-After, and the optional global request budget."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from .client import PollError

# Reasons worth another try within the same poll: the next answer may differ.
RETRYABLE = frozenset({"timeout", "connection", "rate_limited", "server_error"})
MAX_BACKOFF_SECONDS = 60.0


def is_retryable(error: PollError) -> bool:
    return error.reason in RETRYABLE


def backoff_seconds(attempt: int, base: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter: uniform in [0, base * 2**attempt], capped."""
    return rng.uniform(0.0, min(MAX_BACKOFF_SECONDS, base * 2**attempt))


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)  # HTTP dates are GMT by definition
    return max(0.0, when.timestamp() - now)


def format_http_date(instant: float) -> str:
    return datetime.fromtimestamp(instant, UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")


class RateLimiter:
    """Spaces requests at least 1/rate seconds apart, across every thread.

    Strict spacing, not a token bucket with a burst allowance: no second ever sees more than
    rate + 1 requests, whether at start-up, after a reload or when retries line up.
    """

    def __init__(self, rate: float | None) -> None:
        self._lock = threading.Lock()
        self._rate = rate
        self._next = 0.0

    def set_rate(self, rate: float | None) -> None:
        with self._lock:
            self._rate = rate

    def acquire(self, stop: threading.Event) -> bool:
        """Wait for this request's slot; False if `stop` was set meanwhile."""
        with self._lock:
            if self._rate is None:
                return not stop.is_set()
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + 1.0 / self._rate
        return not stop.wait(slot - now) if slot > now else not stop.is_set()
