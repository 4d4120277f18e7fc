"""Validation of a clicks response against the vendor's schema, into an immutable value."""

from __future__ import annotations

import itertools
import json
import logging
import operator
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .config import Granularity

log = logging.getLogger(__name__)

_TOP_KEYS = frozenset({"data", "totals", "granularity", "time_zone"})
_ITEM_KEYS = frozenset({"period", "count"})
_TOTALS_KEYS = frozenset({"count"})

# A year of hours is 8,760 buckets; a window far beyond that is not a clicks response, and
# validating it would cost a poll worker seconds.
MAX_BUCKETS = 10_000

_reported_unknown: set[str] = set()
_reported_lock = threading.Lock()


class InvalidResponseError(Exception):
    """The body is not JSON or does not match the schema; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class ClicksResponse:
    """A validated window: parallel tuples, one entry per bucket start, oldest first.

    Plain floats and ints rather than an object per bucket: a poller holding a thousand
    720-bucket windows should not pay for 720,000 small objects.
    """

    starts: tuple[float, ...]  # bucket starts, Unix seconds, strictly increasing
    counts: tuple[int, ...]
    total: int
    granularity: Granularity
    time_zone: ZoneInfo


# Period strings repeat across workspaces and polls (every workspace has the same hours), so the
# parse of each distinct string is remembered. Bounded: cleared when it grows past the limit.
_period_cache: dict[str, float] = {}
_PERIOD_CACHE_LIMIT = 200_000


def _note_once(topic: str, message: str, *args: object) -> None:
    with _reported_lock:
        if topic in _reported_unknown or len(_reported_unknown) > 1000:
            return
        _reported_unknown.add(topic)
    log.debug(message, *args)


def _note_unknown(where: str, keys: set[str]) -> None:
    """Tolerate keys the schema does not know (an API addition must not blind the monitoring)."""
    for key in sorted(keys):
        path = f"{where}.{key}" if where else key
        _note_once(path, "response carries unknown key %s; ignoring it", path)


def _count(value: Any, where: str) -> int:
    # JSON true would pass isinstance(int); 3.0 is not an integer count either.
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidResponseError(f"{where} must be an integer, got {json.dumps(value)[:40]}")
    if value < 0:
        raise InvalidResponseError(f"{where} must not be negative, got {value}")
    return value


def _period(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        raise InvalidResponseError(f"{where} must be a string, got {json.dumps(value)[:40]}")
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidResponseError(f"{where} is not an ISO-8601 instant: {value[:40]!r}") from None
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise InvalidResponseError(f"{where} has no UTC offset: {value[:40]!r}")
    return instant.astimezone(UTC)


def _zone(value: Any) -> ZoneInfo:
    if not isinstance(value, str) or not value:
        raise InvalidResponseError(
            f"time_zone must be a non-empty string, got {json.dumps(value)[:40]}"
        )
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidResponseError(f"time_zone {value[:60]!r} is not a known IANA zone") from None


def _object(value: Any, where: str, required: frozenset[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidResponseError(f"{where or 'body'} must be a JSON object")
    missing = required - value.keys()
    if missing:
        raise InvalidResponseError(f"{where or 'body'} lacks required key {sorted(missing)[0]}")
    extra = value.keys() - required
    if extra:
        _note_unknown(where.split("[", maxsplit=1)[0] + ("[]" if "[" in where else ""), set(extra))
    return value


def _is_json_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def parse_clicks(
    body: bytes | str, requested: Granularity, content_type: str = "application/json"
) -> ClicksResponse:
    """Parse and validate one response body; raises InvalidResponseError.

    The content type is not a reason to reject: a body that is the schema is used whatever the
    header says (noted once at debug), and one that is not says which type it came with.
    """
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        shown = f" (content type {content_type[:60]})" if not _is_json_type(content_type) else ""
        raise InvalidResponseError(f"body is not JSON{shown}") from None
    if not _is_json_type(content_type):
        _note_once(
            f"content-type:{content_type[:60]}",
            "response content type %s is not JSON; the body is, so it is used",
            content_type[:60],
        )
    top = _object(document, "", _TOP_KEYS)
    if top["granularity"] != requested:
        raise InvalidResponseError(
            f"granularity is {json.dumps(top['granularity'])[:40]}, requested {requested!r}"
        )
    zone = _zone(top["time_zone"])
    totals = _object(top["totals"], "totals", _TOTALS_KEYS)
    total = _count(totals["count"], "totals.count")
    data = top["data"]
    if not isinstance(data, list):
        raise InvalidResponseError("data must be a list")
    if len(data) > MAX_BUCKETS:
        raise InvalidResponseError(f"data holds {len(data)} buckets, more than {MAX_BUCKETS}")
    starts, counts = _buckets(data)
    return ClicksResponse(
        starts=starts, counts=counts, total=total, granularity=requested, time_zone=zone
    )


_period_of = operator.itemgetter("period")
_count_of = operator.itemgetter("count")


def _buckets(data: list[Any]) -> tuple[tuple[float, ...], tuple[int, ...]]:
    """Validate `data` into sorted, de-duplicated starts and counts.

    This is the hot path of every poll. A well-formed window is checked in whole-list passes
    that run in C (map, set, min); anything unusual takes the item-by-item loop, which says
    exactly what is wrong.
    """
    if len(_period_cache) > _PERIOD_CACHE_LIMIT:
        _period_cache.clear()
    try:
        if set(map(type, data)) <= {dict} and set(map(len, data)) <= {2}:
            periods = list(map(_period_of, data))
            counts = list(map(_count_of, data))
            starts = list(map(_period_cache.get, periods))
            if (
                None not in starts
                and set(map(type, counts)) <= {int}
                and (not counts or min(counts) >= 0)
                and starts == sorted(set(starts))  # type: ignore[type-var]
            ):
                return tuple(starts), tuple(counts)  # type: ignore[arg-type]
    except (KeyError, TypeError):
        pass  # a key missing, or a period that cannot be a dict key: the loop will say
    return _buckets_one_by_one(data)


def _buckets_one_by_one(data: list[Any]) -> tuple[tuple[float, ...], tuple[int, ...]]:
    cache = _period_cache
    starts: list[float] = []
    counts: list[int] = []
    for index, raw in enumerate(data):
        item = raw
        if type(raw) is not dict or len(raw) != 2 or "period" not in raw or "count" not in raw:
            item = _object(raw, f"data[{index}]", _ITEM_KEYS)
        period, count = item["period"], item["count"]
        start = cache.get(period) if type(period) is str else None
        if start is None:
            start = _period(period, f"data[{index}].period").timestamp()
            cache[period] = start
        if type(count) is not int or count < 0:
            count = _count(count, f"data[{index}].count")
        starts.append(start)
        counts.append(count)
    if all(a < b for a, b in itertools.pairwise(starts)):
        return tuple(starts), tuple(counts)
    # Unsorted, or a period given twice: duplicates are not documented away, the last one wins.
    by_start = dict(zip(starts, counts, strict=True))
    ordered = sorted(by_start)
    return tuple(ordered), tuple(by_start[s] for s in ordered)
