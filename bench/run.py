"""The scribe-exporter benchmark: `make bench` (add ARGS=--write to update bench/RESULTS.md).

The simulator and the exporter run as separate processes on loopback, as in production; every
figure comes from this run, next to its reference or target:

1. scrape cost of GET /metrics (plain and gzip) at 100, 1,000 and 10,000 workspaces, against a
   plain prometheus_client registry holding the same series (generate_latest, same run);
2. poll throughput with 50 ms of API latency and an interval too short to finish, and how evenly
   a normal interval spreads the requests;
3. exporter CPU per poll of a 720-bucket window, HTTP included, with the top of a profile;
4. peak RSS at 1,000 workspaces with 720-bucket windows, and its growth from round 5 to 50.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import dataclasses
import io
import json
import os
import platform
import pstats
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scribe_exporter.config import load_config  # noqa: E402
from scribe_exporter.poller import Poller  # noqa: E402
from scribe_exporter.simulator import generated_key, generated_names  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"benchmark: timed out waiting for {what}")
        time.sleep(0.2)


class Sim:
    def __init__(self, workspaces: int, window_hours: int) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "scribe_exporter.simulator",
                "--generate",
                str(workspaces),
                "--window-hours",
                str(window_hours),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        self.http = requests.Session()

    def stats(self, seconds: int = 0) -> dict[str, Any]:
        reply = self.http.get(f"{self.url}/_sim/stats", params={"seconds": seconds}, timeout=30)
        stats: dict[str, Any] = reply.json()
        return stats

    def latency(self, seconds: float) -> None:
        self.http.post(
            f"{self.url}/_sim/faults", data=json.dumps({"delay_seconds": seconds}), timeout=5
        )

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


class Exporter:
    def __init__(
        self,
        sim: Sim,
        workspaces: int,
        polling: dict[str, Any],
        tmp: Path,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        keys = tmp / "keys"
        keys.mkdir(parents=True, exist_ok=True)
        names = generated_names(workspaces)
        for name in names:
            (keys / name).write_text(generated_key(name))
        config = {
            "api": {"base_url": sim.url, "timeout_seconds": 10, "max_retries": 0},
            "polling": polling,
            "workspaces": [{"name": n, "api_key_file": str(keys / n)} for n in names],
        }
        self.config_path = tmp / "config.yaml"
        self.config_path.write_text(json.dumps(config))  # JSON is YAML
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "exporter.py"),
                f"--config.file={self.config_path}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=error",
                *extra_args,
            ],
            cwd=ROOT,
        )
        self.http = requests.Session()

    def ready(self) -> bool:
        try:
            return self.http.get(self.url + "/readyz", timeout=5).status_code == 200
        except requests.ConnectionError:
            return False

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def memory_kib(self, field: str) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise KeyError(field)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def timed_scrapes(session: requests.Session, url: str, count: int, gzip: bool) -> list[float]:
    headers = {"Accept-Encoding": "gzip" if gzip else "identity"}
    times = []
    for _ in range(count):
        started = time.perf_counter()
        reply = session.get(url, headers=headers, stream=True, timeout=60)
        reply.raw.read()  # the bytes as sent, not decompressed here
        times.append((time.perf_counter() - started) * 1000)
    return times


def reference_registry(exposition: str) -> CollectorRegistry:
    """A plain prometheus_client registry holding the same scribe_* series as the exporter."""
    registry = CollectorRegistry()
    for family in text_string_to_metric_families(exposition):
        if not family.name.startswith("scribe_") or family.name.startswith(
            ("scribe_exporter", "scribe_api")
        ):
            continue
        labels = sorted({k for s in family.samples for k in s.labels})
        metric: Gauge | Counter
        if family.type == "counter":
            metric = Counter(family.name, family.documentation, labels, registry=registry)
            for s in family.samples:
                if s.name.endswith("_total"):
                    metric.labels(**s.labels).inc(s.value)
        else:
            metric = Gauge(family.name, family.documentation, labels, registry=registry)
            for s in family.samples:
                metric.labels(**s.labels).set(s.value)
    return registry


def median(values: list[float]) -> float:
    return statistics.median(values)


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


@dataclass
class Row:
    measure: str
    result: str
    reference: str
    met: bool | None  # None: informative, no target


def bench_scrape(rows: list[Row], tmp: Path, sizes: list[int]) -> None:
    for size in sizes:
        count = 200 if size <= 1000 else 40
        interval = max(10, size // 400)
        sim = Sim(size, 24)
        exporter = Exporter(
            sim, size, {"interval_seconds": interval, "max_concurrency": 32}, tmp / f"scrape{size}"
        )
        try:
            wait_for(exporter.ready, interval * 3 + 60, f"{size} workspaces polled")
            url = exporter.url + "/metrics"
            text = exporter.http.get(url, timeout=60).text
            series = sum(1 for line in text.splitlines() if line.startswith("scribe_"))
            plain = timed_scrapes(exporter.http, url, count, gzip=False)
            gz = timed_scrapes(exporter.http, url, count, gzip=True)
            registry = reference_registry(text)
            reference = []
            for _ in range(max(5, count // 4)):
                started = time.perf_counter()
                generate_latest(registry)
                reference.append((time.perf_counter() - started) * 1000)
        finally:
            exporter.close()
            sim.close()
        ref = median(reference)
        speedup = ref / median(plain)
        target = {1000: (10.0, 10.0), 10000: (100.0, None)}.get(size)
        met = None
        if target:
            met = median(plain) < target[0] and (target[1] is None or speedup >= target[1])
        goal = {1000: "median < 10 ms, >= 10x", 10000: "median < 100 ms"}.get(size, "-")
        rows.append(
            Row(
                f"scrape, {size} workspaces ({series} series), plain",
                f"median {median(plain):.2f} ms, p99 {p99(plain):.2f} ms ({speedup:.0f}x faster)",
                f"generate_latest {ref:.2f} ms; target: {goal}",
                met,
            )
        )
        rows.append(
            Row(
                f"scrape, {size} workspaces, gzip",
                f"median {median(gz):.2f} ms, p99 {p99(gz):.2f} ms",
                "-",
                None,
            )
        )


def bench_throughput(rows: list[Row], tmp: Path) -> None:
    size, concurrency, latency = 1000, 16, 0.05
    ideal = concurrency / latency
    sim = Sim(size, 24)
    sim.latency(latency)
    exporter = Exporter(
        sim, size, {"interval_seconds": 1, "max_concurrency": concurrency}, tmp / "throughput"
    )
    try:
        time.sleep(5)  # warm-up: connections opened, the queue full
        before, started = sim.stats(), time.monotonic()
        time.sleep(10)
        after, elapsed = sim.stats(), time.monotonic() - started
    finally:
        exporter.close()
        sim.close()
    rate = (after["total"] - before["total"]) / elapsed
    per_workspace = [
        after["requests"].get(n, 0) - before["requests"].get(n, 0) for n in generated_names(size)
    ]
    rows.append(
        Row(
            "poll throughput, 1000 workspaces, 50 ms latency, concurrency 16, interval 1 s",
            f"{rate:.0f} requests/s ({rate / ideal:.0%} of ideal)",
            f"ideal {ideal:.0f}/s; target >= {ideal / 1.3:.0f}/s",
            rate >= ideal / 1.3,
        )
    )
    rows.append(
        Row(
            "  in flight at most (all / one workspace)",
            f"{after['max_in_flight']} / {after['max_in_flight_one_workspace']}",
            f"target <= {concurrency} / 1",
            after["max_in_flight"] <= concurrency and after["max_in_flight_one_workspace"] <= 1,
        )
    )
    rows.append(
        Row(
            "  requests per workspace in 10 s (min / max)",
            f"{min(per_workspace)} / {max(per_workspace)}",
            "target: none starved (min >= 1)",
            min(per_workspace) >= 1,
        )
    )
    # A normal interval: the same workspaces spread over it, not fired in a burst.
    sim = Sim(size, 24)
    exporter = Exporter(
        sim, size, {"interval_seconds": 10, "max_concurrency": concurrency}, tmp / "spread"
    )
    try:
        time.sleep(21)
        seconds = sim.stats(seconds=20)["per_second"]
    finally:
        exporter.close()
        sim.close()
    mean = statistics.mean(seconds)
    rows.append(
        Row(
            "  spread at interval 10 s: requests per second (min / mean / max)",
            f"{min(seconds)} / {mean:.0f} / {max(seconds)}",
            "target: max <= 2 x mean",
            max(seconds) <= 2 * mean,
        )
    )


def bench_shards(rows: list[Row], tmp: Path) -> None:
    """10,000 workspaces: one process against four shard processes, side by side."""
    size, concurrency, latency = 10_000, 16, 0.05
    for shards in (1, 4):
        sim = Sim(size, 24)
        sim.latency(latency)
        exporters = [
            Exporter(
                sim,
                size,
                {"interval_seconds": 1, "max_concurrency": concurrency},
                tmp / f"shards{shards}-{index}",
                ("--shard.index", str(index), "--shard.count", str(shards)),
            )
            for index in range(shards)
        ]
        try:
            time.sleep(10)  # warm-up
            before, started = sim.stats(), time.monotonic()
            time.sleep(10)
            after, elapsed = sim.stats(), time.monotonic() - started
            scrapes = [
                t
                for e in exporters
                for t in timed_scrapes(e.http, e.url + "/metrics", 10, gzip=False)
            ]
        finally:
            for exporter in exporters:
                exporter.close()
            sim.close()
        rate = (after["total"] - before["total"]) / elapsed
        rows.append(
            Row(
                f"10000 workspaces on {shards} process{'es' if shards > 1 else ''}, 50 ms latency, "
                f"concurrency {concurrency} each",
                f"{rate:.0f} requests/s; scrape median {median(scrapes):.1f} ms, "
                f"p99 {p99(scrapes):.1f} ms",
                "-",
                None,
            )
        )


def bench_cpu_memory(rows: list[Row], tmp: Path) -> str:
    size, window = 1000, 720
    sim = Sim(size, window)
    exporter = Exporter(sim, size, {"interval_seconds": 2, "max_concurrency": 8}, tmp / "memory")
    stop = threading.Event()

    def scrape_like_prometheus() -> None:
        session = requests.Session()
        while not stop.wait(2):
            with contextlib.suppress(requests.RequestException):
                session.get(
                    exporter.url + "/metrics", headers={"Accept-Encoding": "gzip"}, timeout=30
                )

    scraper = threading.Thread(target=scrape_like_prometheus, daemon=True)
    scraper.start()
    try:

        def at_round(n: int) -> None:
            wait_for(lambda: sim.stats()["total"] >= n * size, 600, f"round {n}")

        at_round(5)
        polls5, cpu5, rss5 = (
            sim.stats()["total"],
            exporter.cpu_seconds(),
            exporter.memory_kib("VmRSS"),
        )
        trend = [rss5]
        deadline = time.monotonic() + 600
        while sim.stats()["total"] < 50 * size and time.monotonic() < deadline:
            time.sleep(1)
            if sim.stats()["total"] >= (len(trend) * 9 + 5) * size:
                trend.append(exporter.memory_kib("VmRSS"))
        at_round(50)
        polls50, cpu50, rss50 = (
            sim.stats()["total"],
            exporter.cpu_seconds(),
            exporter.memory_kib("VmRSS"),
        )
        peak = exporter.memory_kib("VmHWM")
        profile = profile_polls(exporter.config_path)
    finally:
        stop.set()
        scraper.join(timeout=30)
        exporter.close()
        sim.close()
    per_poll = (cpu50 - cpu5) / (polls50 - polls5) * 1000
    growth = (rss50 - rss5) / rss5
    rows.append(
        Row(
            f"CPU per poll, {window}-bucket window, HTTP included ({polls50 - polls5} polls)",
            f"{per_poll:.2f} ms",
            "target <= 1.5 ms (straightforward: about 3 ms)",
            per_poll <= 1.5,
        )
    )
    rows.append(
        Row(
            f"peak RSS, {size} workspaces x {window} buckets",
            f"{peak / 1024:.1f} MB",
            "target < 80 MB (straightforward: about 110 MB)",
            peak / 1024 < 80,
        )
    )
    rows.append(
        Row(
            "RSS growth, round 5 to round 50",
            f"{rss5 / 1024:.1f} -> {rss50 / 1024:.1f} MB ({growth:+.1%}); every 9 rounds: "
            + ", ".join(f"{kib / 1024:.1f}" for kib in trend),
            "target < 5%",
            growth < 0.05,
        )
    )
    return profile


def profile_polls(config_path: Path) -> str:
    """Where a poll's CPU goes: 600 polls run one after another in this thread, profiled."""
    config = load_config(str(config_path))
    config = dataclasses.replace(config, workspaces=config.workspaces[:200])
    poller = Poller(config)
    poller.poll_all(timeout=120)  # connections open, caches warm
    targets = list(poller._targets.values())
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(3):
        for target in targets:
            target.deadline = time.monotonic() + 60
            poller._poll(target)
    profiler.disable()
    poller.stop(timeout=1)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(14)
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    start = next(i for i, line in enumerate(lines) if "ncalls" in line)
    return "\n".join(lines[start:])


def table(rows: list[Row]) -> str:
    out = ["| measure | result | reference / target | met |", "| --- | --- | --- | --- |"]
    for row in rows:
        met = "-" if row.met is None else ("yes" if row.met else "**no**")
        out.append(f"| {row.measure} | {row.result} | {row.reference} | {met} |")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--write", action="store_true", help="write the table to bench/RESULTS.md")
    parser.add_argument(
        "--sizes", default="100,1000,10000", help="workspace counts for the scrape rows"
    )
    parser.add_argument(
        "--only", choices=["scrape", "throughput", "memory", "shards"], help="one section"
    )
    args = parser.parse_args()
    machine = (
        f"{os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}, "
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}"
    )
    print(f"scribe-exporter benchmark: {machine}", flush=True)
    rows: list[Row] = []
    profile = ""
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if args.only in (None, "scrape"):
            bench_scrape(rows, tmp, [int(s) for s in args.sizes.split(",")])
        if args.only in (None, "throughput"):
            bench_throughput(rows, tmp)
        if args.only in (None, "shards"):
            bench_shards(rows, tmp)
        if args.only in (None, "memory"):
            profile = bench_cpu_memory(rows, tmp)
    result = f"Machine: {machine}\n\n{table(rows)}\n"
    if profile:
        result += (
            "\nTop of the poll profile (600 polls of 720-bucket windows, by own time):"
            f"\n\n```\n{profile}\n```\n"
        )
    print(result)
    if args.write:
        (ROOT / "bench" / "RESULTS.md").write_text(
            "# Benchmark results\n\nProduced by `make bench ARGS=--write`; see bench/run.py.\n\n"
            + result
        )
    return 0 if all(row.met is not False for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
