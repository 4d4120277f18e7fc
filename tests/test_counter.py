"""scribe_clicks_total semantics: baseline, growth of the current bucket, never decreasing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from scribe_exporter.counter import ClickCounter
from scribe_exporter.response import Bucket, ClicksResponse

T0 = datetime(2026, 12, 4, 10, tzinfo=UTC)


def window(*counts: int, first: int = 0) -> ClicksResponse:
    """Hourly buckets starting `first` hours after T0."""
    buckets = tuple(Bucket(T0 + timedelta(hours=first + i), c) for i, c in enumerate(counts))
    return ClicksResponse(buckets, sum(counts), "hour", ZoneInfo("UTC"))


def test_first_response_is_the_baseline_at_zero() -> None:
    counter = ClickCounter()
    counter.observe(window(5, 7, 3))
    assert counter.has_baseline
    assert counter.total == 0


def test_current_bucket_growth_is_added_and_a_new_bucket_adds_its_count() -> None:
    counter = ClickCounter()
    counter.observe(window(5, 7, 3))
    counter.observe(window(5, 7, 9))  # the bucket in progress grew by 6
    assert counter.total == 6
    counter.observe(window(5, 7, 9, 4))  # a new hour began with 4 clicks
    assert counter.total == 10


def test_counter_never_decreases_and_does_not_recount_a_recovered_value() -> None:
    counter = ClickCounter()
    counter.observe(window(5, 7, 9))
    counter.observe(window(5, 7, 2))  # the API revised a bucket down
    assert counter.total == 0
    counter.observe(window(5, 7, 9))  # back to the highest value ever seen: nothing new
    assert counter.total == 0
    counter.observe(window(5, 7, 12))
    assert counter.total == 3


def test_buckets_that_leave_the_window_are_forgotten() -> None:
    counter = ClickCounter()
    counter.observe(window(5, 7, 9))
    counter.observe(window(7, 9, 1, first=1))  # the window slid by one hour
    assert counter.total == 1
    assert len(counter._seen) == 3


def test_buckets_older_than_the_baseline_are_ignored() -> None:
    counter = ClickCounter()
    counter.observe(window(7, 9, first=1))
    counter.observe(window(100, 7, 9, first=0))  # a longer window reveals older history
    assert counter.total == 0


def test_unsorted_order_does_not_matter_because_responses_are_sorted_on_parse() -> None:
    counter = ClickCounter()
    counter.observe(window(1, 2))
    counter.observe(window(1, 3))
    assert counter.total == 1


def test_empty_responses_do_not_set_a_baseline() -> None:
    counter = ClickCounter()
    counter.observe(window())
    assert not counter.has_baseline
    counter.observe(window(5))
    assert counter.has_baseline and counter.total == 0
    counter.observe(window())  # an empty window later changes nothing
    counter.observe(window(6))
    assert counter.total == 1
