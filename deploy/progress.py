"""Progress as a deploy goes: one line per step per project with the time since the command started, on stderr.

Plain lines when stderr is not a terminal (CI, a pipe, a log file); on a terminal with more than one project at a time,
a live overview (one row a project: its latest step, its state, its elapsed time) drawn by `rich`, and the same lines
printed above it as they happen.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table


class Lines:
    """Plain progress lines: `[  12.3s] my-proj: function: created`."""

    def __init__(self, err: TextIO, projects: tuple[str, ...] = ()) -> None:
        self.err = err
        self.started = time.monotonic()
        self.lock = threading.Lock()
        self.latest: dict[str, tuple[str, str, float]] = dict.fromkeys(projects, ("waiting", "", 0.0))

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def step(self, project: str, text: str, state: str = "running") -> None:
        with self.lock:
            at = self.elapsed()
            self.latest[project] = (state, text, at)
            self._emit(f"[{at:7.1f}s] {project}: {text}")

    def _emit(self, line: str) -> None:
        print(line, file=self.err, flush=True)

    def __enter__(self) -> Lines:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        return None


class Overview(Lines):
    """The lines, and under them a table of every project's latest step, kept up to date (a terminal only)."""

    def __init__(self, err: TextIO, projects: tuple[str, ...], console: Console | None = None) -> None:
        super().__init__(err, projects)
        self.console = console or Console(file=err, stderr=True)
        self.live = Live(self._table(), console=self.console, refresh_per_second=4, transient=False)

    def _table(self) -> Table:
        table = Table(box=None, pad_edge=False, show_edge=False)
        for column in ("project", "state", "step", "at"):
            table.add_column(column, no_wrap=column != "step", overflow="fold")
        for project, (state, text, at) in self.latest.items():
            table.add_row(project, state, text, f"{at:.1f}s" if at else "")
        return table

    def _emit(self, line: str) -> None:
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)
        self.live.update(self._table())

    def __enter__(self) -> Overview:
        self.live.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.live.update(self._table())
        self.live.stop()


def progress_for(err: TextIO, projects: tuple[str, ...], parallel: int) -> Lines:
    """The live overview on a terminal running several projects at once; plain lines otherwise."""
    if parallel > 1 and len(projects) > 1 and err.isatty():
        return Overview(err, projects)
    return Lines(err, projects)
