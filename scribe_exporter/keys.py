"""Where a workspace's API key comes from, and reading it (again when a key file changes)."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from .secrets import Secret


class KeySourceError(Exception):
    """The key source cannot give a usable key. The message names the source, never the key."""


@dataclass(frozen=True)
class KeyFile:
    path: str

    def describe(self) -> str:
        return f"key file {self.path}"


@dataclass(frozen=True)
class KeyEnv:
    name: str

    def describe(self) -> str:
        return f"environment variable {self.name}"


@dataclass(frozen=True)
class KeyLiteral:
    """A key held in memory; only the built-in demo uses it, the config file cannot."""

    value: Secret

    def describe(self) -> str:
        return "built-in demo key"


KeySource = KeyFile | KeyEnv | KeyLiteral


def _validated(raw: str, source: KeySource) -> Secret:
    value = raw.strip()
    if not value:
        raise KeySourceError(f"{source.describe()} is empty")
    # A control character or non-ASCII byte would corrupt (or inject into) the HTTP header.
    if not value.isascii() or not value.isprintable() or any(c.isspace() for c in value):
        raise KeySourceError(
            f"{source.describe()} holds characters that cannot be sent in a header"
        )
    return Secret(value)


def read_key(source: KeySource) -> Secret:
    """Read a key once; raises KeySourceError with a message that names the source."""
    if isinstance(source, KeyLiteral):
        return source.value
    if isinstance(source, KeyEnv):
        raw = os.environ.get(source.name)
        if raw is None:
            raise KeySourceError(f"{source.describe()} is not set")
        return _validated(raw, source)
    try:
        with open(source.path, encoding="utf-8") as handle:
            raw = handle.read(65536)
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise KeySourceError(f"{source.describe()} cannot be read: {reason}") from None
    return _validated(raw, source)


class KeyReader:
    """Gives the current key of one source, re-reading a key file only when its stat changes.

    A stat per poll is cheap and catches both in-place writes and the symlink swap that
    Kubernetes uses when it updates a mounted Secret.
    """

    def __init__(self, source: KeySource) -> None:
        self.source = source
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int, int] | None = None
        self._key: Secret | None = None

    def current(self) -> Secret:
        if not isinstance(self.source, KeyFile):
            return read_key(self.source)
        try:
            st = os.stat(self.source.path)
        except OSError as exc:
            raise KeySourceError(
                f"{self.source.describe()} cannot be read: {exc.strerror}"
            ) from None
        stamp = (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns)
        with self._lock:
            if self._key is not None and stamp == self._stamp:
                return self._key
            key = read_key(self.source)
            self._stamp, self._key = stamp, key
            return key
