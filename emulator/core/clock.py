"""The emulator's one clock, in one of three modes:

- wall: real time;
- virtual: frozen at a start time, moving only when `advance` or `set` says so (deterministic tests);
- running: starts at a given time (default now), moves with real time, and `advance` jumps it ahead. This is the
  mode for driving a real client that stamps its own requests with the wall clock (the canary's metric points and
  audit-log time bounds), while tests still skip ahead past ingestion lags or timeline events.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta


class Clock:
    """Wall time unless `freeze` or `run_from` was called (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._virtual: datetime | None = None
        self._running = False
        self._anchor = 0.0  # time.monotonic() when the running clock was last set

    @property
    def virtual(self) -> bool:
        return self._virtual is not None

    @property
    def mode(self) -> str:
        return "wall" if self._virtual is None else "running" if self._running else "virtual"

    def now(self) -> datetime:
        with self._lock:
            return self._now()

    def _now(self) -> datetime:
        if self._virtual is None:
            return datetime.now(UTC)
        if self._running:
            return self._virtual + timedelta(seconds=time.monotonic() - self._anchor)
        return self._virtual

    def run_from(self, at: datetime | None = None) -> None:
        """Switch to a running clock starting at `at` (default: now)."""
        start = at if at is not None else datetime.now(UTC)
        _require_aware(start)
        with self._lock:
            self._virtual = start.astimezone(UTC)
            self._running = True
            self._anchor = time.monotonic()

    def freeze(self, at: datetime | None = None) -> None:
        """Switch to virtual time, starting at `at` (default: the current wall time)."""
        start = at if at is not None else datetime.now(UTC)
        _require_aware(start)
        with self._lock:
            self._virtual = start.astimezone(UTC)
            self._running = False

    def unfreeze(self) -> None:
        with self._lock:
            self._virtual = None
            self._running = False

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError("the clock only moves forward: advance_seconds must be >= 0")
        with self._lock:
            if self._virtual is None:
                raise ValueError("the clock is on wall time; switch it to virtual before advancing it")
            self._virtual += timedelta(seconds=seconds)
            return self._now()

    def set(self, at: datetime) -> datetime:
        _require_aware(at)
        with self._lock:
            if self._virtual is None:
                raise ValueError("the clock is on wall time; switch it to virtual before setting it")
            if at < self._now():
                raise ValueError("the clock only moves forward: the new time is before the current one")
            self._virtual = at.astimezone(UTC)
            self._anchor = time.monotonic()
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
