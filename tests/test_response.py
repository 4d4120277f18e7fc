"""The response schema: what is accepted, what is rejected, and the simulator obeying it."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from scribe_exporter.response import InvalidResponseError, parse_clicks
from scribe_exporter.simulator import GRANULARITIES, Simulator, SimWorkspace

from .conftest import at

SPEC = Path(__file__).parent / "data" / "clicks-endpoint.openapi.md"


def vendor_schema() -> dict[str, Any]:
    """The response schema from the vendor's OpenAPI excerpt, as shipped beside the tests."""
    text = SPEC.read_text()
    block = text.split("````yaml", 1)[1].split("\n", 1)[1].split("````", 1)[0]
    spec = yaml.safe_load(block)
    schema: dict[str, Any] = spec["components"]["schemas"]["analytics_timeseries_response"]
    return schema


def body(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "data": [
            {"period": "2026-12-04T14:00:00Z", "count": 3},
            {"period": "2026-12-04T13:00:00Z", "count": 5},
        ],
        "totals": {"count": 8},
        "granularity": "hour",
        "time_zone": "Europe/Paris",
    }
    document.update(overrides)
    return document


def parse(document: Any) -> Any:
    return parse_clicks(json.dumps(document).encode(), "hour")


def test_valid_body_is_sorted_and_kept_exactly() -> None:
    parsed = parse(body())
    assert parsed.starts == (at("2026-12-04T13:00:00Z"), at("2026-12-04T14:00:00Z"))
    assert parsed.counts == (5, 3)
    assert parsed.total == 8
    assert parsed.time_zone.key == "Europe/Paris"


def test_duplicate_periods_keep_the_last_one_seen() -> None:
    data = [
        {"period": "2026-12-04T13:00:00Z", "count": 5},
        {"period": "2026-12-04T14:00:00+01:00", "count": 7},  # the same instant, other offset
    ]
    parsed = parse(body(data=data))
    assert (parsed.starts, parsed.counts) == (
        (datetime(2026, 12, 4, 13, tzinfo=UTC).timestamp(),),
        (7,),
    )


def test_empty_data_is_accepted() -> None:
    parsed = parse(body(data=[], totals={"count": 0}))
    assert parsed.starts == parsed.counts == ()


def test_totals_are_exposed_as_the_api_says_even_if_they_disagree() -> None:
    assert parse(body(totals={"count": 1000})).total == 1000


def test_unknown_keys_are_tolerated_everywhere() -> None:
    document = body(meta={"x": 1}, totals={"count": 8, "unique": 2})
    document["data"][0]["campaign"] = "spring"
    assert parse(document).total == 8


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("<html>502 Bad Gateway</html>", "body is not JSON"),
        ([], "body must be a JSON object"),
        (
            {"data": [], "totals": {"count": 0}, "granularity": "hour"},
            "lacks required key time_zone",
        ),
        (body(granularity="day"), "granularity is \"day\", requested 'hour'"),
        (body(time_zone="Mars/Olympus"), "not a known IANA zone"),
        (body(totals={"count": True}), "totals.count must be an integer"),
        (body(totals={}), "totals lacks required key count"),
        (body(data={"period": "x"}), "data must be a list"),
        (
            body(data=[{"period": "2026-12-04T13:00:00Z", "count": 1.0}]),
            "data[0].count must be an integer",
        ),
        (
            body(data=[{"period": "2026-12-04T13:00:00Z", "count": False}]),
            "data[0].count must be an integer",
        ),
        (body(data=[{"period": "2026-12-04T13:00:00Z", "count": -1}]), "must not be negative"),
        (
            body(data=[{"period": "2026-12-04T13:00:00Z", "count": "4"}]),
            "data[0].count must be an integer",
        ),
        (
            body(data=[{"period": "2026-12-04T13:00:00", "count": 1}]),
            "data[0].period has no UTC offset",
        ),
        (body(data=[{"period": "yesterday", "count": 1}]), "not an ISO-8601 instant"),
        (body(data=[{"period": 1733320800, "count": 1}]), "data[0].period must be a string"),
        (body(data=[{"count": 1}]), "data[0] lacks required key period"),
        (body(data=["2026-12-04T13:00:00Z"]), "data[0] must be a JSON object"),
    ],
)
def test_malformed_bodies_are_rejected_with_a_reason(document: Any, message: str) -> None:
    raw = document if isinstance(document, str) else json.dumps(document)
    with pytest.raises(InvalidResponseError) as caught:
        parse_clicks(raw.encode(), "hour")
    assert message in str(caught.value)


@pytest.mark.parametrize("granularity", GRANULARITIES)
@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris", "Asia/Kolkata", "America/New_York"])
def test_simulator_responses_match_the_vendor_schema(granularity: str, zone: str) -> None:
    sim = Simulator([SimWorkspace("acme", "sk_test_schema", zone)])
    now = at("2026-03-29T12:34:56Z")  # a DST change day in Europe
    document = sim.clicks_body(sim.workspace("acme"), granularity, now)
    jsonschema.validate(document, vendor_schema())
    periods = [item["period"] for item in document["data"]]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", p) for p in periods)
    assert periods == sorted(periods)
    assert document["totals"]["count"] == sum(item["count"] for item in document["data"])
    assert document["granularity"] == granularity
    # The exporter accepts what the simulator serves.
    assert len(parse_clicks(json.dumps(document), granularity).starts) == len(periods)  # type: ignore[arg-type]


def test_simulator_day_is_the_sum_of_its_hours_across_dst() -> None:
    sim = Simulator([SimWorkspace("acme", "sk_test_sum", "Europe/Paris")])
    ws = sim.workspace("acme")
    now = at("2026-03-30T12:00:00Z")
    days = {d["period"]: d["count"] for d in sim.clicks_body(ws, "day", now)["data"]}
    sim.windows["hour"] = 48
    hours = sim.clicks_body(ws, "hour", at("2026-03-29T22:00:00Z"))["data"]
    # The 23-hour local day of 2026-03-29 starts at 2026-03-28T23:00Z.
    in_day = [
        h["count"] for h in hours if "2026-03-28T23:00:00Z" <= h["period"] < "2026-03-29T22:00:00Z"
    ]
    assert len(in_day) == 23
    assert days["2026-03-28T23:00:00Z"] == sum(in_day)


def test_simulator_current_hour_grows() -> None:
    sim = Simulator([SimWorkspace("acme", "sk_test_grow", "UTC", peak_clicks_per_hour=1000)])
    ws = sim.workspace("acme")
    counts = [
        sim.clicks_body(ws, "hour", at(f"2026-12-04T13:{minute:02d}:00Z"))["data"][-1]["count"]
        for minute in (0, 15, 30, 59)
    ]
    assert counts == sorted(counts) and counts[0] == 0 and counts[-1] > counts[1] > 0
