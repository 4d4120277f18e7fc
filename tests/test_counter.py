"""scribe_clicks_total semantics: baseline, growth of the current bucket, never decreasing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from scribe_exporter.counter import ClickCounter
from scribe_exporter.response import ClicksResponse

T0 = datetime(2026, 12, 4, 10, tzinfo=UTC)


def window(*counts: int, first: int = 0) -> ClicksResponse:
    """Hourly buckets starting `first` hours after T0."""
    starts = tuple((T0 + timedelta(hours=first + i)).timestamp() for i in range(len(counts)))
    return ClicksResponse(starts, counts, sum(counts), "hour", ZoneInfo("UTC"))


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
    assert len(counter._starts) == 3


def test_buckets_older_than_the_baseline_are_ignored() -> None:
    counter = ClickCounter()
    counter.observe(window(7, 9, first=1))
    counter.observe(window(100, 7, 9, first=0))  # a longer window reveals older history
    assert counter.total == 0


def test_a_gap_and_a_bucket_coming_back_take_the_merge_path() -> None:
    counter = ClickCounter()
    counter.observe(window(5, 7, 9))
    hours = (T0.timestamp(), T0.timestamp() + 7200, T0.timestamp() + 14400)
    counter.observe(ClicksResponse(hours, (6, 9, 3), 18, "hour", ZoneInfo("UTC")))  # hour 1 missing
    assert counter.total == 1 + 3  # hour 0 rose by 1, hour 2 unchanged, hour 4 is new
    counter.observe(window(6, 8, 9, 0, 3))  # hour 1 (7 before) rose to 8, hour 3 appears empty
    assert counter.total == 5


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


class ReferenceCounter:
    """The rule as the issue states it, written the obvious way."""

    def __init__(self) -> None:
        self.total = 0
        self.floor: float | None = None
        self.highest: dict[float, int] = {}

    def observe(self, response: ClicksResponse) -> None:
        if not response.starts:
            return
        if self.floor is None:
            self.floor = response.starts[0]
            self.highest = dict(zip(response.starts, response.counts, strict=True))
            return
        for start, count in zip(response.starts, response.counts, strict=True):
            if start < self.floor:
                continue
            high = self.highest.get(start)
            self.total += count if high is None else max(0, count - high)
            self.highest[start] = count if high is None else max(count, high)
        self.highest = {s: c for s, c in self.highest.items() if s >= response.starts[0]}


windows = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=30),  # first hour of the window
        st.lists(st.integers(min_value=0, max_value=50), max_size=12),
        st.sets(st.integers(min_value=0, max_value=11), max_size=3),  # hours missing from it
    ),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(sequence=windows)
def test_the_fast_counter_agrees_with_the_rule(
    sequence: list[tuple[int, list[int], set[int]]],
) -> None:
    fast, reference = ClickCounter(), ReferenceCounter()
    for first, counts, missing in sequence:
        kept = [(i, c) for i, c in enumerate(counts) if i not in missing]
        starts = tuple((T0 + timedelta(hours=first + i)).timestamp() for i, _ in kept)
        response = ClicksResponse(starts, tuple(c for _, c in kept), 0, "hour", ZoneInfo("UTC"))
        before = fast.total
        fast.observe(response)
        reference.observe(response)
        assert fast.total == reference.total
        assert fast.total >= before
