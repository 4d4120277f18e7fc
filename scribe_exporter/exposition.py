"""Serving scrapes: the snapshot's samples rendered once per change, not once per sample.

Each target view carries its own sample lines, rendered when the poller makes the view, so a
scrape joins strings instead of building an object per sample. The joined body (and its gzip)
is cached until the snapshot changes or a target's data goes stale. The exporter's own metrics
(process, request histogram, build info) are few and rendered by prometheus_client each time.
"""

from __future__ import annotations

import dataclasses
import gzip
import math
import threading
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from prometheus_client import generate_latest as text_latest
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest

from .client import REASONS
from .families import CLICKS_FAMILIES, CLICKS_TOTAL, HEALTH_FAMILIES, Family
from .metrics import SnapshotSource
from .snapshot import Snapshot, TargetView

# The exposition repeats itself so much that level 1 already shrinks it 25-fold, at half the
# CPU of level 6.
GZIP_LEVEL = 1


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else repr(float(value))


def view_lines(view: TargetView) -> tuple[str, ...]:
    """The sample lines of one target, one string per family of TARGET_FAMILIES."""
    labels = f'granularity="{view.granularity}",workspace="{view.workspace}"'
    clicks = view.clicks
    lines: list[str] = []
    if clicks is None:
        lines.extend([""] * len(CLICKS_FAMILIES))
    else:
        for family, value in zip(
            CLICKS_FAMILIES,
            (
                clicks.latest,
                clicks.latest_start,
                clicks.last_complete,
                clicks.last_complete_start,
                clicks.window,
                clicks.window_start,
            ),
            strict=True,
        ):
            lines.append("" if value is None else f"{family.name}{{{labels}}} {_number(value)}\n")
    up, last_success, errors = HEALTH_FAMILIES
    lines.append(f"{up.name}{{{labels}}} {1 if view.up else 0}\n")
    lines.append(f"{last_success.name}{{{labels}}} {_number(view.last_success or 0)}\n")
    lines.append(
        "".join(
            f'{errors.sample_name}{{granularity="{view.granularity}",reason="{reason}",'
            f'workspace="{view.workspace}"}} {count}\n'
            for reason, count in zip(REASONS, view.errors, strict=True)
        )
    )
    return tuple(lines)


def with_lines(view: TargetView) -> TargetView:
    return dataclasses.replace(view, lines=view_lines(view))


def _header(family: Family, openmetrics: bool) -> str:
    name = family.name if openmetrics else family.sample_name
    return f"# HELP {name} {family.help}\n# TYPE {name} {family.kind}\n"


def render_snapshot(snapshot: Snapshot, now: float, openmetrics: bool) -> tuple[bytes, float]:
    """The snapshot's samples, and the time until which they stay right (the next staleness)."""
    stale_after = snapshot.stale_after_seconds
    fresh: list[TargetView] = []
    valid_until = math.inf
    for view in snapshot.targets:
        if view.clicks is not None and view.last_success is not None:
            expires = view.last_success + stale_after
            if now <= expires:
                fresh.append(view)
                valid_until = min(valid_until, expires)
    parts: list[str] = []
    for index, family in enumerate(CLICKS_FAMILIES):
        parts.append(_header(family, openmetrics))
        parts.extend(view.lines[index] for view in fresh)
    parts.append(_header(CLICKS_TOTAL, openmetrics))
    name = CLICKS_TOTAL.sample_name
    parts.extend(f'{name}{{workspace="{ws}"}} {total}\n' for ws, total in snapshot.counters)
    for index, family in enumerate(HEALTH_FAMILIES, start=len(CLICKS_FAMILIES)):
        parts.append(_header(family, openmetrics))
        parts.extend(view.lines[index] for view in snapshot.targets)
    return "".join(parts).encode(), valid_until


@dataclass
class _Rendered:
    snapshot: Snapshot
    valid_until: float
    body: bytes
    gzipped: bytes | None = None


class Exposition:
    """Renders scrapes, re-rendering the snapshot's part only when it changed."""

    def __init__(self, source: SnapshotSource, own_metrics: CollectorRegistry) -> None:
        self._source = source
        self._own = own_metrics
        self._lock = threading.Lock()
        self._cache: dict[bool, _Rendered] = {}

    def _snapshot_part(self, openmetrics: bool) -> _Rendered:
        snapshot, now = self._source.snapshot(), self._source.now()
        with self._lock:  # concurrent scrapes after a change render once, not once each
            cached = self._cache.get(openmetrics)
            if cached is None or cached.snapshot is not snapshot or now > cached.valid_until:
                body, valid_until = render_snapshot(snapshot, now, openmetrics)
                cached = _Rendered(snapshot, valid_until, body)
                self._cache[openmetrics] = cached
            return cached

    def render(self, openmetrics: bool = False, compress: bool = False) -> bytes:
        part = self._snapshot_part(openmetrics)
        own = (
            bytes(openmetrics_latest(self._own))  # type: ignore[no-untyped-call]
            if openmetrics
            else text_latest(self._own)
        )
        if not compress:
            return part.body + own  # the own part ends with OpenMetrics' "# EOF"
        if part.gzipped is None:
            with self._lock:
                if part.gzipped is None:
                    part.gzipped = gzip.compress(part.body, compresslevel=GZIP_LEVEL)
        # Two gzip members in a row are one valid gzip stream (RFC 1952, section 2.2).
        return part.gzipped + gzip.compress(own, compresslevel=GZIP_LEVEL)
