"""The landing page as an operator sees it: rendered by headless Chromium, DOM and screenshot."""

from __future__ import annotations

import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

from PIL import Image

from .conftest import FakeClock, Running, SimHandle, require_tool

# Flags for a root user in a container with no network but loopback (see the machine notes).
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
]


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    binary = require_tool("chromium")
    profile = tmp_path / "profile"
    return subprocess.run(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class Sparklines(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: dict[str, list[int]] = {}
        self.points: list[int] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "svg" and a.get("class") == "sparkline":
            label = a.get("aria-label") or ""
            self.found[label.split(":")[0]] = [
                int(c) for c in (a.get("data-counts") or "").split(",")
            ]
        if tag == "polyline":
            self.points.append(len((a.get("points") or "").split()))


def test_landing_page_in_headless_chromium(
    exporter: Running, sim: SimHandle, clock: FakeClock, tmp_path: Path
) -> None:
    assert exporter.poll()
    # The DOM after Chromium parsed it: one 24-point sparkline per workspace, from the data.
    dom = chromium(tmp_path, "--dump-dom", exporter.url + "/")
    assert dom.returncode == 0, dom.stderr
    parsed = Sparklines()
    parsed.feed(dom.stdout)
    assert set(parsed.found) == {"acme", "globex"}
    assert parsed.points == [24, 24]
    hourly = sim.sim.clicks_body(sim.workspaces["acme"], "hour", clock.now)["data"]
    # At 15:02 with a 300 s settle, the last complete hour is 13:00; the line ends there.
    expected = [
        d["count"]
        for d in hourly
        if "2026-12-03T14:00:00Z" <= d["period"] <= "2026-12-04T13:00:00Z"
    ]
    assert parsed.found["acme"] == expected
    assert re.search(r'<td>acme</td><td>hour</td><td class="up">up</td>', dom.stdout)
    assert "<script" not in dom.stdout and "http" not in dom.stdout.split("</style>")[0]

    # The screenshot: the page renders, and the sparklines are drawn in their colour.
    shot = tmp_path / "landing.png"
    result = chromium(
        tmp_path, f"--screenshot={shot}", "--window-size=1400,400", exporter.url + "/"
    )
    assert result.returncode == 0, result.stderr
    image = Image.open(shot).convert("RGB")
    assert image.size == (1400, 400)
    raw = image.tobytes()
    pixels = list(zip(raw[0::3], raw[1::3], raw[2::3], strict=True))
    blue = sum(
        1 for r, g, b in pixels if abs(r - 0x15) < 40 and abs(g - 0x65) < 40 and abs(b - 0xC0) < 40
    )
    assert blue > 150, f"only {blue} sparkline pixels"
    dark_text = sum(1 for r, g, b in pixels if r + g + b < 150)
    assert dark_text > 2000  # the table's text is there
