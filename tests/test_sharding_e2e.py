"""Three exporter processes, one simulator: every workspace polled by exactly one shard."""

from __future__ import annotations

from pathlib import Path

from scribe_exporter.sharding import owner

from .conftest import SimHandle, parse_exposition, run_cli, value, write_config

NAMES = [f"team-{i:02d}" for i in range(12)]


def test_three_shards_poll_every_workspace_once(sim: SimHandle, tmp_path: Path) -> None:
    sim.add_workspaces(NAMES)
    config = write_config(tmp_path, sim.url, NAMES)
    seen: dict[str, int] = {}
    for index in range(3):
        before = dict(sim.sim.requests)
        result = run_cli(
            "--once",
            "--config.file",
            str(config),
            "--shard.index",
            str(index),
            "--shard.count",
            "3",
        )
        assert result.returncode == 0, result.stderr
        m = parse_exposition(result.stdout)
        up = {dict(labels)["workspace"] for name, labels in m if name == "scribe_up"}
        for workspace in up:
            assert workspace not in seen, f"{workspace} on shards {seen.get(workspace)} and {index}"
            seen[workspace] = index
        # This process sent requests with the keys of its own workspaces only.
        polled = {ws for ws, n in sim.sim.requests.items() if n > before.get(ws, 0)}
        assert polled == up
        assert value(m, "scribe_exporter_shard_info", index=str(index), count="3") == 1
        assert value(m, "scribe_exporter_assigned_workspaces") == len(up)
        assert value(m, "scribe_exporter_configured_workspaces") == len(NAMES)
    assert sorted(seen) == sorted(NAMES)
    assert all(seen[name] == owner(name, 3) for name in NAMES)
    assert all(sim.sim.requests[name] == 1 for name in NAMES)


def test_index_from_the_statefulset_pod_name(sim: SimHandle, tmp_path: Path) -> None:
    sim.add_workspaces(NAMES)
    config = write_config(tmp_path, sim.url, NAMES)
    result = run_cli(
        "--once",
        "--config.file",
        str(config),
        "--shard.count",
        "3",
        env={"POD_NAME": "scribe-exporter-2"},
    )
    assert result.returncode == 0, result.stderr
    m = parse_exposition(result.stdout)
    assert value(m, "scribe_exporter_shard_info", index="2", count="3") == 1
    up = {dict(labels)["workspace"] for name, labels in m if name == "scribe_up"}
    assert up == {name for name in NAMES if owner(name, 3) == 2}


def test_a_deployment_pod_name_is_not_an_ordinal_without_sharding(
    sim: SimHandle, tmp_path: Path
) -> None:
    config = write_config(tmp_path, sim.url, ["acme"])
    result = run_cli(
        "--once", "--config.file", str(config), env={"POD_NAME": "scribe-exporter-5d8f9-12345"}
    )
    assert result.returncode == 0, result.stderr
    assert (
        value(parse_exposition(result.stdout), "scribe_exporter_shard_info", index="0", count="1")
        == 1
    )


def test_bad_shard_index_is_a_start_up_error(sim: SimHandle, tmp_path: Path) -> None:
    config = write_config(tmp_path, sim.url, ["acme"])
    for args in (
        ["--shard.index", "3", "--shard.count", "3"],
        ["--shard.index", "-1", "--shard.count", "3"],
    ):
        result = run_cli("--once", "--config.file", str(config), *args)
        assert result.returncode == 1
        assert (
            "invalid sharding: --shard.index must be between 0 and 2 (--shard.count 3)"
            in result.stderr
        )
    result = run_cli("--once", "--config.file", str(config), "--shard.count", "0")
    assert result.returncode == 1
    assert "--shard.count must be at least 1" in result.stderr
