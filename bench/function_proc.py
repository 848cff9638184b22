"""A function served the way Cloud Functions serves it: `python -m functions_framework` (gunicorn, a master and one
worker), loaded from a source file, against the emulator process.

Memory: functions-framework imports the source in the gunicorn master, which then forks the worker; the worker's
RSS therefore includes every page it inherited (shared, counted once by the container's cgroup) plus what the
requests allocate. `peak_rss_mib` is the worker's VmHWM, the largest of the tree's; the master's is kept too, and
the tree's PSS (each shared page counted once) right after the answer.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devkit import launcher

ROOT = launcher.ROOT
_GCLOUD_CONFIG = tempfile.mkdtemp(prefix="bench-gcloud-")  # never the user's own ADC


@dataclass(frozen=True)
class Side:
    """One implementation under test: a functions-framework source and the environment it needs."""

    name: str
    source: str  # relative to the repository root
    env: dict[str, str] = field(default_factory=dict)


OURS = Side("ours", "function/main.py")
NAIVE = Side("naive", "bench/naive/main.py")
# The warm loop runs back to back; ours writes metrics at most once per 5 s per instance (Monitoring's rule) and
# would skip CreateTimeSeries there. This source only turns that spacing off, so every warm run does the full work.
OURS_EVERY_WRITE = Side("ours", "bench/ours_every_write/main.py")
# The same two calls as bare gRPC, served the same way: what any canary pays before its own code (warm loop only).
FLOOR = Side("floor", "bench/floor/main.py")


@dataclass
class Answer:
    status: int
    body: Any
    seconds: float


def environment(emulator_env: dict[str, str], side: Side) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CANARY_", "NAIVE_", "GOOGLE_"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # both sides start from compiled bytecode, as an installed image does
    env.update(emulator_env)
    env.update(
        side.env,
        PYTHONPATH=str(ROOT),
        GRPC_VERBOSITY="NONE",
        CLOUDSDK_CONFIG=_GCLOUD_CONFIG,
    )
    if side is not NAIVE:
        env.pop("NAIVE_REST_ENDPOINT", None)
    return env


class FunctionProcess(launcher.FunctionProcess):
    """One side of a benchmark, served by the shared launcher, with what a benchmark reads of it."""

    def __init__(self, side: Side, emulator_env: dict[str, str]) -> None:
        self.side = side
        super().__init__(side.source, environment(emulator_env, side))

    def stop(self, *, kill: bool = True) -> None:
        super().stop(kill=kill)

    def get(self, path: str = "/", timeout: float = 120) -> Answer:
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=timeout) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        seconds = time.perf_counter() - started
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode(errors="replace")
        return Answer(status, body, seconds)

    def pids(self) -> list[int]:
        """The master and its descendants (the gunicorn worker)."""
        found, queue = [], [self.process.pid]
        while queue:
            pid = queue.pop()
            found.append(pid)
            for task in Path(f"/proc/{pid}/task").glob("*/children"):
                queue += [int(c) for c in task.read_text().split()]
        return found

    def memory(self) -> dict[str, float]:
        """VmHWM (peak RSS) of the master and the largest of its descendants, and the tree's PSS now, in MiB.

        PSS splits each shared page among its sharers, so the tree's sum counts the pages the worker inherited from
        the master once: the closest figure to what the container's memory limit sees (it is current, not peak).
        """
        pids = self.pids()
        hwm = {pid: _field_kib(f"/proc/{pid}/status", "VmHWM") / 1024 for pid in pids}
        master = hwm.pop(self.process.pid, 0.0)
        pss = sum(_field_kib(f"/proc/{pid}/smaps_rollup", "Pss") for pid in pids) / 1024
        return {
            "peak_rss_mib": max([master, *hwm.values()]),
            "master_hwm_mib": master,
            "tree_pss_mib": pss,
            "processes": len(pids),
        }


def _field_kib(path: str, key: str) -> float:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key + ":"):
                return float(line.split()[1])
    except OSError:
        pass
    return 0.0
