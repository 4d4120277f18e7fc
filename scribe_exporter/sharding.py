"""Sharding workspaces across replicas, the way kube-state-metrics does: each replica is told
its index and the shard count, and keeps the workspaces that rendezvous hashing gives it.

Rendezvous (highest random weight) hashing: a workspace belongs to the shard with the highest
hash of (shard, name). Every name has exactly one owner, and going from N to N+1 shards moves
only the names the new shard wins, about 1/(N+1) of them.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# A StatefulSet pod is named <statefulset>-<ordinal>.
_ORDINAL = re.compile(r"-(\d+)$")


class ShardError(Exception):
    """A shard index or count that cannot work; a start-up error."""


@dataclass(frozen=True)
class Shard:
    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ShardError(f"--shard.count must be at least 1, got {self.count}")
        if not 0 <= self.index < self.count:
            raise ShardError(
                f"--shard.index must be between 0 and {self.count - 1} "
                f"(--shard.count {self.count}), got {self.index}"
            )

    def owns(self, name: str) -> bool:
        return self.count == 1 or owner(name, self.count) == self.index


def weight(name: str, shard: int) -> int:
    """A stable 64-bit weight of (shard, name): the same in every process and release."""
    digest = hashlib.blake2b(f"{shard}\0{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner(name: str, count: int) -> int:
    return max(range(count), key=lambda shard: weight(name, shard))


def assigned(names: Iterable[str], shard: Shard) -> list[str]:
    return [name for name in names if shard.owns(name)]


def index_from_environment(environ: Mapping[str, str] = os.environ) -> int | None:
    """The shard index Kubernetes gives this pod, if any.

    `POD_INDEX` carries the `apps.kubernetes.io/pod-index` label through the downward API;
    otherwise a StatefulSet pod's name (`POD_NAME`, or the hostname) ends in its ordinal.
    """
    explicit = environ.get("POD_INDEX", "").strip()
    if explicit:
        if not explicit.isdigit():
            raise ShardError(f"POD_INDEX must be a non-negative integer, got {explicit!r}")
        return int(explicit)
    for variable in ("POD_NAME", "HOSTNAME"):
        match = _ORDINAL.search(environ.get(variable, ""))
        if match:
            return int(match.group(1))
    return None
