"""The configuration file, parsed once into frozen objects; every error names its key path."""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, cast
from urllib.parse import urlsplit

import yaml

from .keys import KeyEnv, KeyFile, KeySource, KeySourceError, read_key

Granularity = Literal["hour", "day", "week", "month"]
# Finest first: the click counter is built from the first configured one in this order.
GRANULARITIES: tuple[Granularity, ...] = ("hour", "day", "week", "month")
NAME_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,64}")

T = TypeVar("T")


class ConfigError(Exception):
    """An invalid configuration; str() is `<key path>: <what is wrong>`."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path


@dataclass(frozen=True)
class ApiConfig:
    base_url: str = "https://api.scribe-mail.com"
    timeout_seconds: float = 10.0
    max_retries: int = 2
    retry_backoff_seconds: float = 1.0
    max_retry_after_seconds: float = 3600.0
    max_requests_per_second: float | None = None
    max_response_bytes: int = 10 * 1024 * 1024


@dataclass(frozen=True)
class PollingConfig:
    interval_seconds: float = 60.0
    granularities: tuple[Granularity, ...] = ("hour",)
    max_concurrency: int = 8
    settle_seconds: float = 300.0
    stale_after_seconds: float = 900.0

    @property
    def finest_granularity(self) -> Granularity:
        return min(self.granularities, key=GRANULARITIES.index)


@dataclass(frozen=True)
class WorkspaceConfig:
    name: str
    key_source: KeySource


@dataclass(frozen=True)
class Config:
    workspaces: tuple[WorkspaceConfig, ...]
    api: ApiConfig = field(default_factory=ApiConfig)
    polling: PollingConfig = field(default_factory=PollingConfig)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key written twice in one mapping instead of keeping the last."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            mark = key_node.start_mark
            raise ConfigError(
                "", f"line {mark.line + 1}, column {mark.column + 1}: key {key!r} appears twice"
            )
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def _type_name(value: object) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def _mapping(value: object, path: str, allowed: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(path, f"must be a mapping, got {_type_name(value)}")
    for key in value:
        if key not in allowed:
            where = f"{path}.{key}" if path else str(key)
            raise ConfigError(where, f"unknown key (allowed: {', '.join(allowed)})")
    return value


def _number(path: str, value: object, minimum: float) -> float:
    # bool is a subclass of int in Python; `interval_seconds: yes` must not mean 1.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(path, f"must be a number, got {_type_name(value)}")
    if not math.isfinite(value):
        raise ConfigError(path, "must be a finite number")
    if value < minimum:
        raise ConfigError(path, f"must be at least {minimum:g}, got {value:g}")
    return float(value)


def _integer(path: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(path, f"must be an integer, got {_type_name(value)}")
    if value < minimum:
        raise ConfigError(path, f"must be at least {minimum}, got {value}")
    return value


def _string(path: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(path, f"must be a non-empty string, got {_type_name(value)}")
    return value


def _at_least(minimum: float) -> Callable[[str, object], float]:
    return lambda path, value: _number(path, value, minimum)


def _integer_at_least(minimum: int) -> Callable[[str, object], int]:
    return lambda path, value: _integer(path, value, minimum)


def _optional(parse: Callable[[str, object], T]) -> Callable[[str, object], T | None]:
    return lambda path, value: None if value is None else parse(path, value)


def _parse_granularities(path: str, value: object) -> tuple[Granularity, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(path, f"must be a non-empty list, got {_type_name(value)}")
    result: list[Granularity] = []
    for index, item in enumerate(value):
        if item not in GRANULARITIES:
            raise ConfigError(f"{path}[{index}]", f"must be one of {', '.join(GRANULARITIES)}")
        if item in result:
            raise ConfigError(f"{path}[{index}]", f"{item!r} is listed twice")
        result.append(cast(Granularity, item))
    return tuple(result)


# Each section: its keys, in the order of the reference, and how each value is checked. The keys
# are also the only ones allowed: anything else is an unknown key.
Parser = Callable[[str, object], Any]
_API_FIELDS: dict[str, Parser] = {
    "base_url": _string,
    "timeout_seconds": _at_least(0.001),
    "max_retries": _integer_at_least(0),
    "retry_backoff_seconds": _at_least(0.001),
    "max_retry_after_seconds": _at_least(0),
    "max_requests_per_second": _optional(_at_least(0.001)),  # null: no global budget
    "max_response_bytes": _integer_at_least(1024),
}
_POLLING_FIELDS: dict[str, Parser] = {
    "interval_seconds": _at_least(1),
    "granularities": _parse_granularities,
    "max_concurrency": _integer_at_least(1),
    "settle_seconds": _at_least(0),
    "stale_after_seconds": _at_least(1),
}


def _section(
    value: object, path: str, fields: dict[str, Callable[[str, object], Any]]
) -> dict[str, Any]:
    """The keys present in a section, each checked; absent keys keep the dataclass default."""
    data = _mapping(value, path, tuple(fields))
    return {key: parse(f"{path}.{key}", data[key]) for key, parse in fields.items() if key in data}


def _parse_api(value: object) -> ApiConfig:
    api = ApiConfig(**_section(value, "api", _API_FIELDS))
    base_url = api.base_url.rstrip("/")
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("api.base_url", f"must be an http(s) URL with a host, got {base_url!r}")
    if parts.query or parts.fragment:
        raise ConfigError("api.base_url", "must not carry a query or fragment")
    return dataclasses.replace(api, base_url=base_url)


def _parse_polling(value: object) -> PollingConfig:
    polling = PollingConfig(**_section(value, "polling", _POLLING_FIELDS))
    if polling.stale_after_seconds < polling.interval_seconds:
        # Otherwise healthy data would vanish between two successful polls.
        raise ConfigError(
            "polling.stale_after_seconds",
            f"must be at least polling.interval_seconds ({polling.interval_seconds:g})",
        )
    return polling


def _parse_workspace(index: int, value: object, base_dir: str) -> WorkspaceConfig:
    path = f"workspaces[{index}]"
    data = _mapping(value, path, ("name", "api_key_file", "api_key_env"))
    if "name" not in data:
        raise ConfigError(f"{path}.name", "is required")
    name = data["name"]
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ConfigError(f"{path}.name", f"must match {NAME_PATTERN.pattern}, got {name!r}")
    sources = [key for key in ("api_key_file", "api_key_env") if key in data]
    if len(sources) != 1:
        raise ConfigError(path, "exactly one of api_key_file, api_key_env is required")
    key_path = f"{path}.{sources[0]}"
    text = _string(key_path, data[sources[0]])
    source: KeySource
    if sources[0] == "api_key_file":
        source = KeyFile(os.path.normpath(os.path.join(base_dir, text)))
    else:
        source = KeyEnv(text)
    return WorkspaceConfig(name=name, key_source=source)


def _parse_workspaces(value: object, base_dir: str) -> tuple[WorkspaceConfig, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError("workspaces", f"must be a non-empty list, got {_type_name(value)}")
    workspaces: list[WorkspaceConfig] = []
    first_index: dict[str, int] = {}
    for index, item in enumerate(value):
        workspace = _parse_workspace(index, item, base_dir)
        if workspace.name in first_index:
            first = first_index[workspace.name]
            raise ConfigError(
                f"workspaces[{index}].name",
                f"duplicate name {workspace.name!r} (also workspaces[{first}])",
            )
        first_index[workspace.name] = index
        workspaces.append(workspace)
    return tuple(workspaces)


def parse_config(data: object, base_dir: str = ".") -> Config:
    """Build a Config from parsed YAML; relative key files resolve against base_dir."""
    top = _mapping(data, "", ("api", "polling", "workspaces"))
    if "workspaces" not in top:
        raise ConfigError("workspaces", "is required")
    return Config(
        api=_parse_api(top["api"]) if "api" in top else ApiConfig(),
        polling=_parse_polling(top["polling"]) if "polling" in top else PollingConfig(),
        workspaces=_parse_workspaces(top["workspaces"], base_dir),
    )


def check_key_sources(config: Config) -> None:
    """Read every key once so that a missing or empty key is a start-up error, not a 401 later."""
    for index, workspace in enumerate(config.workspaces):
        field_name = "api_key_file" if isinstance(workspace.key_source, KeyFile) else "api_key_env"
        try:
            read_key(workspace.key_source)
        except KeySourceError as exc:
            raise ConfigError(f"workspaces[{index}].{field_name}", str(exc)) from None


def load_config(path: str) -> Config:
    """Read, parse and validate a config file, including that every key source is readable."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ConfigError("", f"cannot read config file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError("", f"config file {path} is not UTF-8 text") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError("", f"invalid YAML: {where}{exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError("", f"invalid YAML: {exc}") from None
    if data is None:
        raise ConfigError("", "the file is empty")
    config = parse_config(data, os.path.dirname(os.path.abspath(path)))
    check_key_sources(config)
    return config
