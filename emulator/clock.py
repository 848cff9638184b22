"""The emulator's one clock: wall time by default, or a virtual clock that tests and scenarios advance."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class Clock:
    """Wall time unless `freeze` was called; then time only moves when `advance` or `set` says so."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._virtual: datetime | None = None

    @property
    def virtual(self) -> bool:
        return self._virtual is not None

    def now(self) -> datetime:
        with self._lock:
            return self._virtual if self._virtual is not None else datetime.now(UTC)

    def freeze(self, at: datetime | None = None) -> None:
        """Switch to virtual time, starting at `at` (default: the current wall time)."""
        start = at if at is not None else datetime.now(UTC)
        _require_aware(start)
        with self._lock:
            self._virtual = start.astimezone(UTC)

    def unfreeze(self) -> None:
        with self._lock:
            self._virtual = None

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError("the clock only moves forward: advance_seconds must be >= 0")
        with self._lock:
            if self._virtual is None:
                raise ValueError("the clock is on wall time; switch it to virtual before advancing it")
            self._virtual += timedelta(seconds=seconds)
            return self._virtual

    def set(self, at: datetime) -> datetime:
        _require_aware(at)
        with self._lock:
            if self._virtual is None:
                raise ValueError("the clock is on wall time; switch it to virtual before setting it")
            if at < self._virtual:
                raise ValueError("the clock only moves forward: the new time is before the current one")
            self._virtual = at.astimezone(UTC)
            return self._virtual


def _require_aware(at: datetime) -> None:
    if at.tzinfo is None:
        raise ValueError("times must carry a timezone (for example 2026-11-26T09:00:00Z)")


def rfc3339(at: datetime) -> str:
    """RFC 3339 in UTC with a Z and microseconds only when present: the form Google's JSON uses."""
    at = at.astimezone(UTC)
    text = at.strftime("%Y-%m-%dT%H:%M:%S")
    if at.microsecond:
        text += f".{at.microsecond:06d}".rstrip("0")
    return text + "Z"


def parse_rfc3339(text: str) -> datetime:
    """Parse an RFC 3339 timestamp (Z or numeric offset). Raises ValueError naming the text."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}") from None
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no timezone")
    return parsed.astimezone(UTC)
