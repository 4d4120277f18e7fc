"""A recognisable key goes through every path; it must come out nowhere."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import requests

from scribe_exporter.simulator import Fault

from .conftest import KEY_PREFIX, Running, SimHandle, key_for, run_cli, write_config

FAULTS = [
    Fault(status=401),
    Fault(status=403),
    Fault(status=404),
    Fault(status=429, headers={"Retry-After": "0"}),
    Fault(status=500),
    Fault(status=302, headers={"Location": "http://elsewhere.invalid/"}),
    Fault(body=b"<html>proxy error</html>"),
    Fault(body=b'{"data": "x"}'),
    Fault(truncate=True),
    Fault(delay_seconds=3),
]


def test_the_key_appears_nowhere(
    exporter: Running, sim: SimHandle, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, urllib3 included, before any redaction
    seen: list[str] = []

    def collect() -> None:
        for path in ("/metrics", "/", "/healthz", "/readyz"):
            seen.append(requests.get(exporter.url + path, timeout=5).text)
        for view in exporter.exporter.poller.snapshot().targets:
            seen.append(repr(view))

    exporter.poll()
    collect()
    for fault in FAULTS:
        sim.sim.set_fault(fault, "acme")
        exporter.poll()
        collect()
        sim.sim.clear_faults()
    # An expired key, a rotated one, a deleted file, a reload good and bad.
    sim.sim.set_key("acme", key_for("acme2"))
    exporter.poll()
    (tmp_path / "keys" / "acme").write_text(key_for("acme2"))
    exporter.poll()
    (tmp_path / "keys" / "acme").unlink()
    exporter.poll()
    (tmp_path / "keys" / "acme").write_text(key_for("acme2"))
    assert exporter.exporter.reload()
    exporter.config_path.write_text(exporter.config_path.read_text() + "  - name: bad name\n")
    assert not exporter.exporter.reload()
    collect()
    seen.append(repr(exporter.exporter.poller.config))
    seen.extend(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    everything = "\n".join(seen)
    assert "poll failed" in everything and "config reload failed" in everything
    assert KEY_PREFIX not in everything


def test_config_check_output_never_shows_a_key(tmp_path: Path, sim: SimHandle) -> None:
    config = write_config(tmp_path, sim.url, ["acme"])
    good = run_cli("--config.check", "--config.file", str(config))
    (tmp_path / "keys" / "acme").write_text(f"{KEY_PREFIX} with spaces\n")
    bad = run_cli("--config.check", "--config.file", str(config))
    assert (good.returncode, bad.returncode) == (0, 1)
    assert "cannot be sent in a header" in bad.stderr
    assert KEY_PREFIX not in good.stdout + good.stderr + bad.stdout + bad.stderr
