"""Rendezvous sharding: one owner per workspace, even shards, little movement on resharding."""

from __future__ import annotations

import statistics

import pytest

from scribe_exporter.sharding import Shard, ShardError, assigned, index_from_environment, owner

NAMES = [f"workspace-{i}" for i in range(3000)]


@pytest.mark.parametrize("count", range(1, 17))
def test_every_name_lands_on_exactly_one_shard_and_shards_are_even(count: int) -> None:
    shards = [assigned(NAMES, Shard(index, count)) for index in range(count)]
    flat = [name for shard in shards for name in shard]
    assert sorted(flat) == sorted(NAMES)  # each name exactly once
    sizes = [len(shard) for shard in shards]
    mean = statistics.mean(sizes)
    assert all(0.75 * mean <= size <= 1.25 * mean for size in sizes), sizes


@pytest.mark.parametrize("count", range(1, 16))
def test_resharding_moves_few_names(count: int) -> None:
    moved = sum(1 for name in NAMES if owner(name, count) != owner(name, count + 1))
    assert moved <= 1.5 * len(NAMES) / (count + 1)
    # The names that move all go to the new shard: nothing reshuffles between old shards.
    assert all(
        owner(n, count + 1) == count for n in NAMES if owner(n, count) != owner(n, count + 1)
    )


def test_owner_is_stable_across_releases() -> None:
    # Fixed expectations: a change of hash would silently move every workspace on upgrade.
    assert [owner(f"ws{i}", 3) for i in range(12)] == [0, 2, 2, 2, 1, 0, 1, 0, 2, 1, 0, 2]
    assert (owner("acme", 3), owner("globex", 3), owner("initech", 3)) == (1, 1, 2)


@pytest.mark.parametrize(
    ("index", "count", "message"),
    [
        (3, 3, "between 0 and 2"),
        (-1, 3, "between 0 and 2"),
        (0, 0, "--shard.count must be at least 1"),
    ],
)
def test_bad_shard_is_an_error(index: int, count: int, message: str) -> None:
    with pytest.raises(ShardError, match=message):
        Shard(index, count)


@pytest.mark.parametrize(
    ("environ", "index"),
    [
        ({}, None),
        ({"HOSTNAME": "scribe-exporter-7d9f8b6c5-x2x9q"}, None),
        ({"POD_NAME": "scribe-exporter-2"}, 2),
        ({"HOSTNAME": "scribe-exporter-11"}, 11),
        ({"POD_INDEX": "4", "POD_NAME": "scribe-exporter-2"}, 4),
    ],
)
def test_index_from_environment(environ: dict[str, str], index: int | None) -> None:
    assert index_from_environment(environ) == index


def test_bad_pod_index_is_an_error() -> None:
    with pytest.raises(ShardError, match="POD_INDEX"):
        index_from_environment({"POD_INDEX": "two"})
