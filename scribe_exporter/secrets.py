"""API keys: a wrapper that never prints its value, and the registry the log redactor reads."""

from __future__ import annotations

import threading

# Every key value the process has held. The log formatter scrubs these from each line as a last
# line of defence, so a key that slips into an exception text still never reaches a log sink.
_known: set[str] = set()
_known_lock = threading.Lock()
_MAX_KNOWN = 10_000


class Secret:
    """A string whose repr and str are redacted; call reveal() only where the value is sent."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        with _known_lock:
            if len(_known) < _MAX_KNOWN:
                _known.add(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('<redacted>')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def scrub(text: str) -> str:
    """Replace every known key value in text by <redacted>."""
    with _known_lock:
        known = tuple(_known)
    for value in known:
        if value and value in text:
            text = text.replace(value, "<redacted>")
    return text
