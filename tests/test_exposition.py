"""The scrape renderer against the reference Collector: the same samples, in every state."""

from __future__ import annotations

import gzip

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics

from scribe_exporter.exposition import render_snapshot
from scribe_exporter.metrics import SnapshotCollector
from scribe_exporter.simulator import Fault

from .conftest import FakeClock, Running, Samples, SimHandle, parse_exposition


def snapshot_samples(samples: Samples) -> Samples:
    return {
        k: v
        for k, v in samples.items()
        if k[0].startswith("scribe_")
        and not k[0].startswith("scribe_exporter")
        and not k[0].startswith("scribe_api")
    }


def reference(running: Running, openmetrics: bool = False) -> str:
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(running.exporter.poller))
    if openmetrics:
        return bytes(openmetrics_latest(registry)).decode()  # type: ignore[no-untyped-call]
    return generate_latest(registry).decode()


def om_samples(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for f in parse_openmetrics(text)  # type: ignore[no-untyped-call]
        for s in f.samples
        if s.name.startswith("scribe_") and not s.name.startswith(("scribe_exporter", "scribe_api"))
    }


def assert_same(running: Running) -> None:
    fast = running.exporter.exposition.render().decode()
    assert snapshot_samples(parse_exposition(fast)) == snapshot_samples(
        parse_exposition(reference(running))
    )
    fast_om = running.exporter.exposition.render(openmetrics=True).decode()
    assert fast_om.endswith("# EOF\n") and fast_om.count("# EOF") == 1
    assert om_samples(fast_om) == om_samples(reference(running, openmetrics=True))
    gz = gzip.decompress(running.exporter.exposition.render(compress=True)).decode()
    plain = running.exporter.exposition.render().decode()
    assert snapshot_samples(parse_exposition(gz)) == snapshot_samples(parse_exposition(plain))


def test_same_samples_as_the_reference_collector_in_every_state(
    exporter: Running, sim: SimHandle, clock: FakeClock
) -> None:
    assert_same(exporter)  # nothing polled yet
    exporter.poll()
    assert_same(exporter)
    clock.advance(1800)
    sim.sim.set_fault(Fault(status=500), "acme")
    exporter.poll()  # acme is stale and failing, globex fresh with a counter
    assert_same(exporter)
    names = {k[0] for k in parse_exposition(exporter.exporter.exposition.render().decode())}
    assert "scribe_clicks_total" in names and "scribe_poll_errors_total" in names


def test_staleness_applies_without_a_new_snapshot(exporter: Running, clock: FakeClock) -> None:
    exporter.poll()
    snapshot = exporter.exporter.poller.snapshot()
    body, valid_until = render_snapshot(snapshot, clock.now, openmetrics=False)
    assert valid_until == clock.now + 900
    assert b"scribe_clicks_window{" in body
    clock.advance(901)
    assert exporter.exporter.poller.snapshot() is snapshot
    later = exporter.exporter.exposition.render()
    assert b"scribe_clicks_window{" not in later
    assert b"scribe_up{" in later


def test_an_unchanged_snapshot_is_rendered_once(exporter: Running) -> None:
    exporter.poll()
    exposition = exporter.exporter.exposition
    first = exposition._snapshot_part(False)
    assert exposition._snapshot_part(False) is first
    exporter.poll()
    assert exposition._snapshot_part(False) is not first
