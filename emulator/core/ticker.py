"""What happens on the emulator's clock without anyone calling: timeline events, Cloud Scheduler firing its jobs,
Cloud Monitoring evaluating alert policies, the function runtime starting and stopping what was deployed.

Each participant is a `tick(world, now)` function. The ticker calls all of them, in order, about every `interval_s`
of wall time and whenever asked (`run_once`, e.g. right after the clock was moved), never two rounds at once. A tick
catches up on its own: after the clock jumps an hour, Scheduler fires every run that came due in that hour.
A tick is called without `world.lock` held; it takes the lock to read and change the world and releases it before
any slow work (starting a process, delivering a request). An exception in one tick is reported on stderr and
does not stop the others or later rounds.
"""

from __future__ import annotations

import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from datetime import datetime

from emulator.core.world import World

Tick = Callable[[World, datetime], None]


class Ticker:
    def __init__(self, world: World, ticks: Sequence[Tick], interval_s: float = 0.2) -> None:
        self.world = world
        self.ticks = list(ticks)
        self.interval_s = interval_s
        self._round = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rounds = 0

    def run_once(self) -> None:
        with self._round:
            with self.world.lock:
                self.world.tick()
            for tick in self.ticks:
                try:
                    tick(self.world, self.world.clock.now())
                except Exception:  # noqa: BLE001 - one participant's failure must not stop the clock for the others
                    print(f"emulator: {getattr(tick, '__qualname__', tick)} failed:", file=sys.stderr)
                    traceback.print_exc(file=sys.stderr)
            self.rounds += 1

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.run_once()

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="emulator-ticker", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
