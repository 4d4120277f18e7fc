"""Background polling: a scheduler thread spreads targets over the interval, a pool polls them."""

from __future__ import annotations

import dataclasses
import hashlib
import heapq
import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Protocol

from .client import REASONS, PollError, ScribeClient
from .config import Config, Granularity
from .counter import ClickCounter
from .exposition import with_lines
from .keys import KeyReader, KeySourceError
from .politeness import RateLimiter, backoff_seconds, is_retryable, parse_retry_after
from .response import ClicksResponse
from .secrets import Secret
from .snapshot import ClicksView, Snapshot, TargetView

log = logging.getLogger(__name__)

TargetKey = tuple[str, Granularity]
# The scheduler thread wakes at least this often, which is what /healthz checks.
_TICK_SECONDS = 1.0
_HEARTBEAT_GRACE_SECONDS = 30.0


class Clock(Protocol):
    def time(self) -> float: ...


class SystemClock:
    def time(self) -> float:
        return time.time()


def phase(key: TargetKey) -> float:
    """A stable fraction in [0, 1) that places a target's polls within the interval."""
    digest = hashlib.blake2b(f"{key[0]}\0{key[1]}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class _Target:
    """Mutable state of one target; only the poller touches it, under the poller's lock."""

    __slots__ = ("deadline", "in_flight", "key", "reader", "view")

    def __init__(self, key: TargetKey, reader: KeyReader) -> None:
        self.key = key
        self.reader = reader
        self.view = with_lines(TargetView(workspace=key[0], granularity=key[1]))
        self.in_flight = False
        # Monotonic time of this target's next scheduled poll: retries never run past it.
        self.deadline = 0.0


class Poller:
    """Owns the targets, polls them, and publishes an immutable Snapshot after every poll."""

    def __init__(
        self,
        config: Config,
        clock: Clock | None = None,
        observe_request: Callable[[float], None] | None = None,
    ) -> None:
        self._clock: Clock = clock or SystemClock()
        self._observe_request = observe_request or (lambda seconds: None)
        self._lock = threading.Lock()
        self._targets: dict[TargetKey, _Target] = {}
        self._counters: dict[str, ClickCounter] = {}
        self._heap: list[tuple[float, int, _Target]] = []
        self._seq = 0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._heartbeat = time.monotonic()
        self._ready = False
        self._snapshot: Snapshot | None = None
        self._order: list[_Target] = []  # the targets sorted by key: the snapshot's order
        self._unattempted = 0
        self._polls_done = threading.Condition(self._lock)
        self._poll_count = 0
        self._running = 0
        # workspace -> (monotonic, wall) time before which no request is sent (Retry-After).
        self._blocked: dict[str, tuple[float, float]] = {}
        self._limiter = RateLimiter(config.api.max_requests_per_second)
        self._rng = random.Random()  # jitter, not cryptography
        self.config = config
        self._client = ScribeClient(config.api, pool_size=config.polling.max_concurrency)
        self._executor = self._new_executor(config)
        self._install_targets(config, reschedule=False)

    # --- configuration -------------------------------------------------------------------

    @staticmethod
    def _new_executor(config: Config) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(
            max_workers=config.polling.max_concurrency, thread_name_prefix="poll"
        )

    def _install_targets(self, config: Config, reschedule: bool) -> None:
        """Replace the target set with the one of `config`, keeping state of surviving targets."""
        old = self._targets
        targets: dict[TargetKey, _Target] = {}
        for workspace in config.workspaces:
            for granularity in config.polling.granularities:
                key = (workspace.name, granularity)
                target = old.get(key)
                if target is None or target.reader.source != workspace.key_source:
                    fresh = _Target(key, KeyReader(workspace.key_source))
                    if target is not None:
                        fresh.view, fresh.in_flight = target.view, target.in_flight
                    target = fresh
                targets[key] = target
        finest = config.polling.finest_granularity
        if finest != self.config.polling.finest_granularity:
            self._counters = {}
        names = {w.name for w in config.workspaces}
        self._counters = {n: c for n, c in self._counters.items() if n in names}
        self._targets = targets
        self._order = [targets[key] for key in sorted(targets)]
        self._unattempted = sum(1 for t in targets.values() if not t.view.attempted)
        if not self._unattempted:
            self._ready = True  # a shard may be assigned no workspace at all
        if reschedule or not self._heap:
            self._heap = []
            start = time.monotonic()
            for target in targets.values():
                self._schedule(target, start + phase(target.key) * config.polling.interval_seconds)
        else:
            for key, target in targets.items():
                if old.get(key) is not target:
                    due = time.monotonic() + phase(key) * config.polling.interval_seconds
                    self._schedule(target, due)

    def apply_config(self, config: Config) -> None:
        """Switch to a new, already validated config: added targets start, removed ones vanish."""
        with self._lock:
            previous = self.config
            interval_changed = previous.polling.interval_seconds != config.polling.interval_seconds
            self.config = config
            self._limiter.set_rate(config.api.max_requests_per_second)
            self._install_targets(config, reschedule=interval_changed)
            if config.api != previous.api or (
                config.polling.max_concurrency != previous.polling.max_concurrency
            ):
                old_client, self._client = (
                    self._client,
                    ScribeClient(config.api, pool_size=config.polling.max_concurrency),
                )
                old_client.close()
            if config.polling.max_concurrency != previous.polling.max_concurrency:
                old_executor, self._executor = self._executor, self._new_executor(config)
                old_executor.shutdown(wait=False)
            self._invalidate_snapshot()
        self._wake.set()

    # --- polling ---------------------------------------------------------------------------

    def _schedule(self, target: _Target, due: float) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, target))

    def poll_all(self, timeout: float | None = None) -> bool:
        """Poll every target once now, concurrently; True if every poll succeeded."""
        with self._lock:
            now = time.monotonic()
            targets = [
                t
                for t in self._targets.values()
                if not t.in_flight and not self._is_blocked(t.key[0], now)
            ]
            for target in targets:
                target.in_flight = True
                target.deadline = now + self.config.polling.interval_seconds
            executor = self._executor
        futures = [executor.submit(self._poll, target) for target in targets]
        wait(futures, timeout=timeout)
        with self._lock:
            return all(t.view.up for t in self._targets.values())

    def _poll(self, target: _Target) -> None:
        with self._lock:
            self._running += 1
        try:
            self._poll_once(target)
        finally:
            with self._lock:
                self._running -= 1
                self._polls_done.notify_all()

    def _poll_once(self, target: _Target) -> None:
        workspace, granularity = target.key
        try:
            key = target.reader.current()
        except KeySourceError as exc:
            # Without a key the API could only answer 401; say so without spending a request.
            self._record_failure(target, PollError("unauthorized", str(exc)))
            return
        attempt = 0
        while True:
            if not self._limiter.acquire(self._stop):
                self._abandon(target)
                return
            try:
                response = self._fetch(key, granularity)
            except PollError as error:
                delay = self._retry_delay(target, error, attempt)
                if delay is None:
                    self._record_failure(target, error)
                    return
                attempt += 1
                log.debug(
                    "request failed (%s), retry %d of %d in %.2fs",
                    error,
                    attempt,
                    self.config.api.max_retries,
                    delay,
                    extra={"workspace": workspace, "granularity": granularity},
                )
                if self._stop.wait(delay):
                    self._abandon(target)
                    return
                continue
            self._record_success(target, response)
            return

    def _fetch(self, key: Secret, granularity: Granularity) -> ClicksResponse:
        started = time.monotonic()
        try:
            return self._client.fetch_clicks(key, granularity)
        finally:
            self._observe_request(time.monotonic() - started)

    def _retry_delay(self, target: _Target, error: PollError, attempt: int) -> float | None:
        """Seconds before the next try of this poll, or None to give up on it."""
        api = self.config.api
        wait = None
        if error.status in (429, 503):
            wait = parse_retry_after(error.retry_after, self._clock.time())
        if wait is not None:
            wait = min(wait, api.max_retry_after_seconds)
            self._block(target.key[0], wait)
        if not is_retryable(error) or attempt >= api.max_retries:
            return None
        delay = backoff_seconds(attempt, api.retry_backoff_seconds, self._rng)
        if wait is not None:
            delay = max(delay, wait)
        if time.monotonic() + delay >= target.deadline:
            return None  # never past the next scheduled poll
        return delay

    def _block(self, workspace: str, seconds: float) -> None:
        with self._lock:
            until = (time.monotonic() + seconds, self._clock.time() + seconds)
            current = self._blocked.get(workspace)
            if current is None or until[0] > current[0]:
                self._blocked[workspace] = until

    def _is_blocked(self, workspace: str, now: float) -> bool:
        block = self._blocked.get(workspace)
        if block is None:
            return False
        if block[0] <= now:
            del self._blocked[workspace]
            return False
        return True

    def _abandon(self, target: _Target) -> None:
        """Give up a poll without a verdict (the process is stopping)."""
        with self._lock:
            target.in_flight = False
            self._polls_done.notify_all()

    def _record_success(self, target: _Target, response: ClicksResponse) -> None:
        now = self._clock.time()
        workspace, granularity = target.key
        with self._lock:
            try:
                if self._targets.get(target.key) is not target:
                    return  # removed by a reload while in flight
                clicks = ClicksView.of(response, now, self.config.polling.settle_seconds)
                was = target.view
                self._note_attempt(was)
                target.view = with_lines(
                    dataclasses.replace(
                        was,
                        attempted=True,
                        up=True,
                        last_success=now,
                        clicks=clicks,
                        last_error=None,
                        last_error_message=None,
                        blocked_until=None,
                    )
                )
                if granularity == self.config.polling.finest_granularity:
                    self._counters.setdefault(workspace, ClickCounter()).observe(response)
                self._invalidate_snapshot()
            finally:
                target.in_flight = False
                self._poll_count += 1
                self._polls_done.notify_all()
        extra = {"workspace": workspace, "granularity": granularity}
        if was.attempted and not was.up:
            log.info("poll recovered after %s", was.last_error, extra=extra)
        log.debug(
            "poll succeeded: %d buckets, window total %d",
            clicks.buckets,
            clicks.window,
            extra=extra,
        )

    def _record_failure(self, target: _Target, error: PollError) -> None:
        workspace, granularity = target.key
        with self._lock:
            try:
                if self._targets.get(target.key) is not target:
                    return
                was = target.view
                self._note_attempt(was)
                errors = list(was.errors)
                errors[REASONS.index(error.reason)] += 1
                block = self._blocked.get(workspace)
                target.view = with_lines(
                    dataclasses.replace(
                        was,
                        attempted=True,
                        up=False,
                        errors=tuple(errors),
                        last_error=error.reason,
                        last_error_message=str(error),
                        blocked_until=block[1] if block else None,
                    )
                )
                self._invalidate_snapshot()
            finally:
                target.in_flight = False
                self._poll_count += 1
                self._polls_done.notify_all()
        # One warning per change of state; the same failure again is only a debug line.
        level = logging.DEBUG if was.last_error == error.reason else logging.WARNING
        log.log(
            level,
            "poll failed: %s",
            error,
            extra={
                "workspace": workspace,
                "granularity": granularity,
                "reason": error.reason,
                "code": error.code,
            },
        )

    # --- snapshots -------------------------------------------------------------------------

    def _invalidate_snapshot(self) -> None:
        """Mark the snapshot out of date; the next reader builds it, once.

        Building costs one pass over every target: doing it per poll would make a round of N
        polls cost N^2 (ten thousand workspaces: 10^8 steps a round), doing it per read costs
        one pass per scrape.
        """
        self._snapshot = None

    def _note_attempt(self, was: TargetView) -> None:
        if not was.attempted:
            self._unattempted -= 1
            if self._unattempted <= 0:
                # Readiness latches: a workspace added by a reload must not take the whole pod
                # out of its Service (and so out of Prometheus) until its first poll.
                self._ready = True

    def snapshot(self) -> Snapshot:
        snapshot = self._snapshot
        if snapshot is not None:
            return snapshot
        with self._lock:
            if self._snapshot is None:
                counters = tuple(
                    (name, counter.total)
                    for name, counter in sorted(self._counters.items())
                    if counter.has_baseline
                )
                # One reference assignment: a reader sees the old snapshot or the new one.
                self._snapshot = Snapshot(
                    targets=tuple(target.view for target in self._order),
                    counters=counters,
                    stale_after_seconds=self.config.polling.stale_after_seconds,
                )
            return self._snapshot

    def now(self) -> float:
        return self._clock.time()

    @property
    def ready(self) -> bool:
        return self._ready

    @property
    def healthy(self) -> bool:
        if self._thread is None:
            return not self._stop.is_set()
        alive = self._thread.is_alive()
        return alive and time.monotonic() - self._heartbeat < _HEARTBEAT_GRACE_SECONDS

    def wait_for_polls(self, count: int, timeout: float) -> bool:
        """Block until at least `count` polls have completed in total (for tests and --once)."""
        with self._polls_done:
            return self._polls_done.wait_for(lambda: self._poll_count >= count, timeout)

    # --- the scheduler thread ------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="scheduler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._heartbeat = now = time.monotonic()
            with self._lock:
                self._dispatch_due(now)
                next_due = self._heap[0][0] if self._heap else now + _TICK_SECONDS
            self._wake.wait(min(max(next_due - now, 0.0), _TICK_SECONDS))
            self._wake.clear()

    def _dispatch_due(self, now: float) -> None:
        interval = self.config.polling.interval_seconds
        while self._heap and self._heap[0][0] <= now:
            due, _, target = heapq.heappop(self._heap)
            if self._targets.get(target.key) is not target:
                continue  # removed or replaced by a reload
            next_due = due + interval
            while next_due <= now:
                next_due += interval  # fell behind: skip missed slots, keep the phase
            self._schedule(target, next_due)
            if self._is_blocked(target.key[0], now):
                log.debug(
                    "Retry-After still running; skipping this poll",
                    extra={"workspace": target.key[0], "granularity": target.key[1]},
                )
                continue
            if target.in_flight:
                # Never two requests in flight for one target: this slot is skipped.
                log.debug(
                    "previous poll still running; skipping this one",
                    extra={"workspace": target.key[0], "granularity": target.key[1]},
                )
                continue
            target.in_flight = True
            target.deadline = next_due
            self._executor.submit(self._poll, target)

    def stop(self, timeout: float) -> None:
        """Stop scheduling; wait up to `timeout` for polls in flight, abandon the rest."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=_TICK_SECONDS + 1)
        self._executor.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._running:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._polls_done.wait(remaining):
                    break
        self._client.close()
