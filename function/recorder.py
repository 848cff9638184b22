"""The run's deadline and its record of calls made (what ?debug=true shows): owned by the harness, shared by steps."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self._end - time.monotonic())

    def reserving(self, seconds: float) -> Deadline:
        """The same run's deadline, ending `seconds` earlier: the work before the report uses it, so a call that hangs
        to the end of it still leaves the report (the metrics write) its reserve."""
        earlier = Deadline(self.seconds)
        earlier._end = self._end - seconds
        return earlier

    def timeout(self, cap: float | None = None) -> float:
        """A per-call timeout: what's left of the run, optionally capped, never zero (gRPC needs > 0)."""
        left = self.remaining()
        return max(0.05, min(left, cap) if cap is not None else left)


class Recorder:
    """Every Google API call of a run: name, duration, outcome. Never the request or response content."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[dict[str, Any]] = []

    def call(self, name: str, fn: Callable[[], T]) -> T:
        started = time.perf_counter()
        outcome = "OK"
        try:
            return fn()
        except BaseException as error:
            code = getattr(error, "grpc_status_code", None)
            outcome = code.name if code is not None else type(error).__name__
            raise
        finally:
            with self._lock:
                self.calls.append(
                    {"method": name, "ms": round((time.perf_counter() - started) * 1000, 1), "outcome": outcome}
                )
