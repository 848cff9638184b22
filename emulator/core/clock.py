"""The emulator's one clock, in one of three modes:

- wall: real time;
- virtual: frozen at a start time, moving only when `advance` or `set` says so (deterministic tests);
- running: starts at a given time (default now), moves with real time (or `rate` times faster), and `advance` jumps
  it ahead. This is the mode for driving a real client that stamps its own requests with its clock (the canary's
  metric points and audit-log time bounds), while tests still skip ahead past ingestion lags or timeline events.

Whoever must follow the clock (the processes of served functions, emulator/runtime) `watch`es it: each change calls
the watchers with `shared()`, the clock as a line anyone can follow: at wall time `real` it read `epoch`, and it moves
`rate` seconds per real second.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any


class Clock:
    """Wall time unless `freeze` or `run_from` was called (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._virtual: datetime | None = None
        self._running = False
        self._anchor = 0.0  # time.monotonic() when the running clock was last set
        self._rate = 1.0  # seconds of this clock per real second while running
        self._watchers: list[Callable[[dict[str, Any]], None]] = []

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
            return self._virtual + timedelta(seconds=(time.monotonic() - self._anchor) * self._rate)
        return self._virtual

    @property
    def rate(self) -> float:
        return self._rate if self._running else 0.0 if self._virtual is not None else 1.0

    def shared(self) -> dict[str, Any]:
        """The clock for another process: {"mode": "wall"}, or {"epoch", "real", "rate"}: at wall time `real` (seconds
        since the epoch) it read `epoch`, and it moves `rate` seconds per real second (0 when frozen)."""
        with self._lock:
            if self._virtual is None:
                return {"mode": "wall"}
            return {"mode": self.mode, "epoch": self._now().timestamp(), "real": time.time(), "rate": self.rate}

    def watch(self, watcher: Callable[[dict[str, Any]], None]) -> None:
        """Call `watcher(shared())` now and after every change of the clock."""
        self._watchers.append(watcher)
        watcher(self.shared())

    def _changed(self) -> None:
        if self._watchers:
            state = self.shared()
            for watcher in list(self._watchers):
                watcher(state)

    def run_from(self, at: datetime | None = None, rate: float = 1.0) -> None:
        """Switch to a running clock starting at `at` (default: now), moving `rate` seconds per real second."""
        start = at if at is not None else datetime.now(UTC)
        _require_aware(start)
        if not 0 < rate <= 1000:
            raise ValueError("rate: a running clock moves between 0 (exclusive) and 1000 seconds per real second")
        with self._lock:
            self._virtual = start.astimezone(UTC)
            self._running = True
            self._rate = float(rate)
            self._anchor = time.monotonic()
        self._changed()

    def freeze(self, at: datetime | None = None) -> None:
        """Switch to virtual time, starting at `at` (default: the current wall time)."""
        start = at if at is not None else datetime.now(UTC)
        _require_aware(start)
        with self._lock:
            self._virtual = start.astimezone(UTC)
            self._running = False
        self._changed()

    def unfreeze(self) -> None:
        with self._lock:
            self._virtual = None
            self._running = False
        self._changed()

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError("the clock only moves forward: advance_seconds must be >= 0")
        with self._lock:
            if self._virtual is None:
                raise ValueError("the clock is on wall time; switch it to virtual before advancing it")
            self._virtual += timedelta(seconds=seconds)
            moved = self._now()
        self._changed()
        return moved

    def set(self, at: datetime) -> datetime:
        _require_aware(at)
        with self._lock:
            if self._virtual is None:
                raise ValueError("the clock is on wall time; switch it to virtual before setting it")
            if at < self._now():
                raise ValueError("the clock only moves forward: the new time is before the current one")
            self._virtual = at.astimezone(UTC)
            self._anchor = time.monotonic()
            moved = self._virtual
        self._changed()
        return moved


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
