"""Run by Python at the start of every served function's process (the runtime puts this folder on PYTHONPATH): the
process's wall clock is the emulator's clock, as a function's clock on Google is Google's.

EMULATOR_CLOCK_FILE names a JSON file the emulator rewrites whenever its clock changes (`Clock.shared()`): at wall time
`real` the clock read `epoch` and it moves `rate` seconds per real second; {"mode": "wall"} means real time. The file
is read at every call.

EMULATOR_PID names the emulator's process: when it is gone, this process ends itself (SIGTERM).

`datetime.datetime.now`, `utcnow` and `today` read it: what a function stamps its data with (the canary's metric
points and audit-log windows, google.auth's token expiry). `time.time` and `time.monotonic` stay real: gRPC turns a
call's timeout into an absolute deadline with `time.time()` for its C core, which keeps real time, and durations are
measured on real time anyway.
"""

from __future__ import annotations

import datetime as _datetime
import json
import os
import signal
import threading
import time as _time

_FILE = os.environ.get("EMULATOR_CLOCK_FILE", "")
_real_time = _time.time


def _line() -> dict[str, float] | None:
    """The clock's line as the emulator last wrote it, read at every call (a small file; a call right after the
    emulator moved its clock must see the move)."""
    try:
        with open(_FILE, encoding="utf-8") as handle:
            doc = json.load(handle)
        if doc.get("mode") == "wall":
            return None
        return {k: float(doc[k]) for k in ("epoch", "real", "rate")}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def emulated_time() -> float:
    real = _real_time()
    line = _line()
    if line is None:
        return real
    return line["epoch"] + (real - line["real"]) * line["rate"]


class _Datetime(_datetime.datetime):
    @classmethod
    def now(cls, tz: _datetime.tzinfo | None = None) -> _Datetime:
        return cls.fromtimestamp(emulated_time(), tz)

    @classmethod
    def utcnow(cls) -> _Datetime:
        return cls.fromtimestamp(emulated_time(), _datetime.UTC).replace(tzinfo=None)

    @classmethod
    def today(cls) -> _Datetime:
        return cls.fromtimestamp(emulated_time())


if _FILE:
    _datetime.datetime = _Datetime  # type: ignore[misc]


def _watch_emulator(pid: int) -> None:
    """End this process when the emulator that started it is gone (killed, not stopped), so no served function or
    task outlives it: the emulator's own stop ends them in order; this covers the rest."""
    while True:
        _time.sleep(1.0)  # a check a second; the thread sleeps otherwise
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            os.kill(os.getpid(), signal.SIGTERM)
            return
        except PermissionError:  # alive, owned by someone else
            continue


_EMULATOR = os.environ.get("EMULATOR_PID", "")
if _EMULATOR.isdigit():
    threading.Thread(target=_watch_emulator, args=(int(_EMULATOR),), name="emulator-watch", daemon=True).start()
