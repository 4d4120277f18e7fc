"""The monotonic click counter built from successive windows of buckets."""

from __future__ import annotations

from .response import ClicksResponse


class ClickCounter:
    """Clicks observed since the exporter started, for one workspace.

    The first response that holds buckets is the baseline: the counter starts at 0 there and
    buckets older than its oldest one are ignored for good. After that each bucket adds how far
    its count rose above the highest count ever seen for it (a new bucket adds its whole count).
    A count that falls adds nothing, so the counter never decreases; buckets that left the window
    are forgotten, which keeps memory bounded by the window length.
    """

    __slots__ = ("_floor", "_seen", "total")

    def __init__(self) -> None:
        self.total = 0
        self._floor: float | None = None
        self._seen: dict[float, int] = {}

    @property
    def has_baseline(self) -> bool:
        return self._floor is not None

    def observe(self, response: ClicksResponse) -> None:
        if not response.buckets:
            return
        if self._floor is None:
            self._floor = response.buckets[0].start.timestamp()
            self._seen = {b.start.timestamp(): b.count for b in response.buckets}
            return
        seen = self._seen
        for bucket in response.buckets:
            start = bucket.start.timestamp()
            if start < self._floor:
                continue
            previous = seen.get(start)
            if previous is None:
                self.total += bucket.count
                seen[start] = bucket.count
            elif bucket.count > previous:
                self.total += bucket.count - previous
                seen[start] = bucket.count
        oldest = response.buckets[0].start.timestamp()
        for start in [s for s in seen if s < oldest]:
            del seen[start]
