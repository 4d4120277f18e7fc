"""The monotonic click counter built from successive windows of buckets."""

from __future__ import annotations

from array import array
from bisect import bisect_left

from .response import ClicksResponse


class ClickCounter:
    """Clicks observed since the exporter started, for one workspace.

    The first response that holds buckets is the baseline: the counter starts at 0 there and
    buckets older than its oldest one are ignored for good. After that each bucket adds how far
    its count rose above the highest count ever seen for it (a new bucket adds its whole count).
    A count that falls adds nothing, so the counter never decreases; buckets that left the window
    are forgotten, which keeps memory bounded by the window length.

    The highest counts live in two flat arrays (16 bytes a bucket), not in a dict of objects.
    """

    __slots__ = ("_floor", "_highs", "_starts", "total")

    def __init__(self) -> None:
        self.total = 0
        self._floor: float | None = None
        self._starts = array("d")
        self._highs = array("q")

    @property
    def has_baseline(self) -> bool:
        return self._floor is not None

    def observe(self, response: ClicksResponse) -> None:
        starts, counts = response.starts, response.counts
        if not starts:
            return
        if self._floor is None:
            self._floor = starts[0]
            self._starts, self._highs = array("d", starts), array("q", counts)
            return
        old_starts, old_highs = self._starts, self._highs
        # Forget what left the window: keep the old buckets from the response's oldest on.
        keep = bisect_left(old_starts, starts[0])
        first = bisect_left(starts, self._floor)  # buckets older than the baseline never count
        if first == len(starts):
            self._starts, self._highs = old_starts[keep:], old_highs[keep:]
            return
        starts, counts = starts[first:], counts[first:]
        overlap = len(old_starts) - keep
        if overlap <= len(starts) and old_starts[keep:] == array("d", starts[:overlap]):
            self._slide(old_highs[keep:], starts, counts, overlap)
        else:
            self._merge(old_starts[keep:], old_highs[keep:], starts, counts)

    def _slide(
        self, highs: array[int], starts: tuple[float, ...], counts: tuple[int, ...], overlap: int
    ) -> None:
        """The usual case: the window moved forward; known buckets first, new ones after."""
        # Complete buckets rarely change: compare them in one C-level pass, and walk only the
        # newest few (or everything, when an old one did change).
        settled = max(overlap - 3, 0)
        if highs[:settled] != array("q", counts[:settled]):
            settled = 0
        seen = counts[settled:overlap]
        moving = highs[settled:]
        self.total += sum(c - h for c, h in zip(seen, moving, strict=True) if c > h)
        fresh = counts[overlap:]
        self.total += sum(fresh)
        self._starts = array("d", starts)
        self._highs = highs[:settled]
        self._highs.extend(map(max, seen, moving))
        self._highs.extend(fresh)

    def _merge(
        self,
        old_starts: array[float],
        old_highs: array[int],
        starts: tuple[float, ...],
        counts: tuple[int, ...],
    ) -> None:
        """Any other shape (a gap, a bucket that vanished and came back): a sorted merge."""
        known = dict(zip(old_starts, old_highs, strict=True))
        for start, count in zip(starts, counts, strict=True):
            high = known.get(start)
            if high is None:
                self.total += count
                known[start] = count
            elif count > high:
                self.total += count - high
                known[start] = count
        ordered = sorted(known)
        self._starts = array("d", ordered)
        self._highs = array("q", (known[s] for s in ordered))
