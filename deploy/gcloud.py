"""Runs the real gcloud CLI: argv lists only (no shell), JSON output, and a plan of every mutating command.

Reads (describe, list, get-iam-policy) always run, even with --dry-run: they change nothing and the plan needs the
current state; the ones deploy/reads.py knows are sent in-process as the same REST call (no gcloud process).
Mutating commands are recorded in the plan and, unless dry-running, executed.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# gcloud's words for a resource that is not there; `run jobs describe` says "Cannot find job [NAME]." (gcloud 528,
# command_lib/run: the job's describe raises ArgumentError with that text on a 404).
NOT_FOUND_MARKERS = ("NOT_FOUND", "not found", "does not exist", "404", "Cannot find job [")
# How Google words a call to a disabled API (ErrorInfo reason SERVICE_DISABLED; "… has not been used in project …
# before or it is disabled"), per the Service Usage troubleshooting page and the errors' text.
API_OFF_MARKERS = ("SERVICE_DISABLED", "has not been used in project")
TIMEOUT_S = 900  # a first function deploy builds a container: minutes, not seconds


_trace_lock = threading.Lock()
# The last word of the gcloud commands this tool runs: a command's name ends there, its arguments follow.
VERBS = frozenset(
    {
        "describe",
        "list",
        "get-iam-policy",
        "set-iam-policy",
        "create",
        "update",
        "delete",
        "deploy",
        "enable",
        "add-iam-policy-binding",
        "remove-iam-policy-binding",
        "add-invoker-policy-binding",
        "get-value",
    }
)


def trace(env: Mapping[str, str], kind: str, argv: Sequence[str], wall: float, cpu: float, **extra: Any) -> None:
    """With DEPLOY_TRACE=FILE, one JSON line per gcloud process or in-process call: what (the command's words, no
    values), wall and CPU seconds. For the fleet benchmark; off otherwise."""
    path = env.get("DEPLOY_TRACE")
    if not path:
        return
    words = []
    for word in argv[:4]:
        words.append(word)
        if word in VERBS:
            break
    line = json.dumps({"kind": kind, "command": " ".join(words), "wall": round(wall, 4), "cpu": round(cpu, 4), **extra})
    with _trace_lock, open(path, "a") as handle:
        handle.write(line + "\n")


def _spawn(argv: Sequence[str], env: Mapping[str, str]) -> tuple[int, str, str, float]:
    """Run one process to its end: exit status, stdout, stderr and the CPU seconds (user + system) it used, read
    from its own resource usage (os.wait4), so threads running other processes do not blur it."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(list(argv), stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=dict(env))
        timer = threading.Timer(TIMEOUT_S, process.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
        process.returncode = code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text = (out.read().decode(errors="replace"), err.read().decode(errors="replace"))
    return code, *text, usage.ru_utime + usage.ru_stime


class GcloudError(RuntimeError):
    def __init__(self, argv: Sequence[str], code: int, stderr: str) -> None:
        self.argv = list(argv)
        self.code = code
        self.stderr = stderr.strip()
        super().__init__(f"{shlex.join(['gcloud', *argv[:3]])} … failed ({code}): {self.first_line}")

    @property
    def first_line(self) -> str:
        lines = [ln for ln in self.stderr.splitlines() if ln.strip()]
        error = next((ln for ln in lines if ln.startswith("ERROR")), lines[-1] if lines else "")
        return error[:500]

    @property
    def not_found(self) -> bool:
        return any(marker in self.stderr for marker in NOT_FOUND_MARKERS)


@dataclass
class Gcloud:
    project: str
    dry_run: bool = False
    env: Mapping[str, str] | None = None
    plan: list[str] = field(default_factory=list)
    binary: str = "gcloud"

    def _run(self, argv: Sequence[str]) -> Any:
        full = [*argv, f"--project={self.project}", "--format=json", "--quiet"]
        env = dict(self.env if self.env is not None else os.environ)
        env.setdefault("CLOUDSDK_CORE_DISABLE_PROMPTS", "1")
        started = time.perf_counter()
        code, stdout, stderr, cpu = _spawn([self.binary, *full], env)
        trace(env, "gcloud", argv, time.perf_counter() - started, cpu)
        if code != 0:
            raise GcloudError(full, code, stderr)
        out = stdout.strip()
        return json.loads(out) if out else None

    def _read(self, argv: Sequence[str]) -> Any:
        from . import reads  # noqa: PLC0415 - reads.py builds on this module's error and trace

        env = self.env if self.env is not None else os.environ
        request = reads.request_for(self.project, argv) if reads.enabled(env) else None
        return self._run(argv) if request is None else reads.call(argv, request, env)

    def read(self, *argv: str) -> Any:
        """A read; None when the resource does not exist."""
        try:
            return self._read(argv)
        except GcloudError as err:
            if err.not_found or (self.dry_run and any(m in err.stderr for m in API_OFF_MARKERS)):
                return None  # a dry run's enabling of the API is only planned: it would find nothing there
            raise

    def change(self, *argv: str, shown: Mapping[str, str] | None = None) -> Any:
        """A mutation: planned, and run unless this is a dry run. `shown` names, in the plan, what an argument
        stands for instead of the argument (a temporary file's path means nothing once the run is over)."""
        line = shlex.join(["gcloud", *argv, f"--project={self.project}"])
        for value, name in (shown or {}).items():
            line = line.replace(shlex.quote(value), name).replace(value, name)
        self.plan.append(line)
        if self.dry_run:
            return None
        return self._run(argv)
