"""Property-based: schema-valid responses give exactly the right numbers; arbitrary JSON never
breaks the exporter. Every example goes over real HTTP and is read back from a real scrape."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scribe_exporter.cli import Exporter
from scribe_exporter.config import load_config
from scribe_exporter.response import InvalidResponseError, parse_clicks
from scribe_exporter.simulator import Fault, Simulator, SimWorkspace
from scribe_exporter.web import make_server, serve_in_background

from .conftest import FakeClock, at, key_for, parse_exposition, value, write_config

NOW = at("2026-12-04T15:02:00Z")
SETTLE = 300
LABELS = {"workspace": "acme", "granularity": "hour"}


class Rig:
    """One simulator and one exporter for the whole module: examples run in milliseconds."""

    def __init__(self, tmp: Path) -> None:
        self.clock = FakeClock(NOW)
        self.sim = Simulator([SimWorkspace("acme", key_for("acme"))], clock=self.clock.time)
        self.sim.start()
        path = write_config(tmp, self.sim.url, ["acme"], polling=f"  settle_seconds: {SETTLE}\n")
        self.exporter = Exporter(load_config(str(path)), str(path), clock=self.clock)
        self.server = make_server(
            "127.0.0.1:0", "/metrics", self.exporter.exposition, self.exporter.poller
        )
        serve_in_background(self.server, poll_interval=0.05)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def serve(self, body: bytes) -> requests.Response:
        self.sim.set_fault(Fault(body=body))
        self.exporter.poller.poll_all(timeout=10)
        return requests.get(self.url + "/metrics", timeout=5)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.exporter.poller.stop(timeout=1)
        self.sim.stop()


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    r = Rig(tmp_path_factory.mktemp("rig"))
    yield r
    r.close()


HOUR0 = datetime(2026, 12, 4, 15, tzinfo=UTC)
buckets = st.lists(
    st.tuples(st.integers(min_value=-200, max_value=3), st.integers(min_value=0, max_value=10**9)),
    max_size=60,
)
zones = st.sampled_from(["UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe"])
offsets = st.sampled_from(["Z", "+00:00", "+05:30", "-08:00"])


def period(hours: int, offset: str) -> str:
    instant = HOUR0 + timedelta(hours=hours)
    if offset == "Z":
        return instant.strftime("%Y-%m-%dT%H:%M:%SZ")
    sign = 1 if offset[0] == "+" else -1
    shift = timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])) * sign
    return (instant + shift).replace(tzinfo=None).isoformat() + offset


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    buckets=buckets,
    total=st.integers(min_value=0, max_value=10**12),
    zone=zones,
    offset=offsets,
    extra=st.booleans(),
)
def test_schema_valid_responses_expose_exactly_the_right_numbers(
    rig: Rig, buckets: list[tuple[int, int]], total: int, zone: str, offset: str, extra: bool
) -> None:
    document: dict[str, Any] = {
        "data": [{"period": period(h, offset), "count": c} for h, c in buckets],
        "totals": {"count": total},
        "granularity": "hour",
        "time_zone": zone,
    }
    if extra:
        document["links"] = {"next": None}
    reply = rig.serve(json.dumps(document).encode())
    m = parse_exposition(reply.text)
    assert value(m, "scribe_up", **LABELS) == 1
    latest: dict[float, int] = {}
    for h, c in buckets:  # the last one seen wins
        latest[(HOUR0 + timedelta(hours=h)).timestamp()] = c
    assert value(m, "scribe_clicks_window", **LABELS) == total
    if not latest:
        assert value(m, "scribe_clicks_latest_period", **LABELS) is None
        assert value(m, "scribe_clicks_window_start_timestamp_seconds", **LABELS) is None
        return
    newest = max(latest)
    assert value(m, "scribe_clicks_latest_period_start_timestamp_seconds", **LABELS) == newest
    assert value(m, "scribe_clicks_latest_period", **LABELS) == latest[newest]
    assert value(m, "scribe_clicks_window_start_timestamp_seconds", **LABELS) == min(latest)
    complete = [s for s in latest if s + 3600 <= NOW - SETTLE]
    if complete:
        assert value(m, "scribe_clicks_last_complete_period", **LABELS) == latest[max(complete)]
    else:
        assert value(m, "scribe_clicks_last_complete_period", **LABELS) is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)
near_valid = st.fixed_dictionaries(
    {
        "data": st.lists(
            st.fixed_dictionaries(
                {"period": json_values | st.just("2026-12-04T14:00:00Z"), "count": json_values}
            ),
            max_size=4,
        )
        | json_values,
        "totals": st.fixed_dictionaries({"count": json_values}) | json_values,
        "granularity": st.sampled_from(["hour", "day", 1, None]),
        "time_zone": st.sampled_from(["UTC", "Nowhere/Land", "", 5]),
    }
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(document=json_values | near_valid)
def test_arbitrary_json_never_breaks_the_exporter(rig: Rig, document: Any) -> None:
    before = requests.get(rig.url + "/metrics", timeout=5)
    reply = rig.serve(json.dumps(document).encode())
    assert reply.status_code == 200
    assert "Traceback" not in reply.text and "Error" not in reply.text.replace("errors", "")
    m = parse_exposition(reply.text)
    up = value(m, "scribe_up", **LABELS)
    assert up in (0, 1)
    if up == 0:  # rejected: the last good data is still exactly what it was
        old = parse_exposition(before.text)
        for name in ("scribe_clicks_window", "scribe_clicks_latest_period"):
            assert value(m, name, **LABELS) == value(old, name, **LABELS)


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_arbitrary_bytes_only_ever_raise_the_documented_error(body: bytes) -> None:
    with contextlib.suppress(InvalidResponseError):
        parse_clicks(body, "hour")
