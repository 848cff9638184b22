"""Serving what was deployed: each gen2 function's current revision runs from its uploaded source with the real
functions-framework, in a process of its own, as its runtime service account.

The Cloud Functions service records what should run (the function, its source zip, its revision); the runtime's tick
makes it so, outside the world's lock, and starts a new instance when one exits. It unpacks the source, gives the
revision a metadata server of its own (its service account, project and region, so google.auth in it sees what it
would see on Cloud Run), starts it with the
function's environment variables and Cloud Run's own (K_SERVICE, K_REVISION, K_CONFIGURATION, PORT, FUNCTION_TARGET,
FUNCTION_SIGNATURE_TYPE), routes the function's URLs to it through Cloud Run's ingress (ingress.py), and turns its
output into log entries (logs.py). When the revision listens, the deploy's operation ends with the function ACTIVE;
when it exits or stays silent, the operation ends with Cloud Run's "Container Healthcheck failed" and the previous
revision, if any, keeps serving. A redeploy replaces the revision (the new one serves before the old one stops); a
delete stops it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from emulator.core import archive
from emulator.core.archive import ArchiveError
from emulator.core.network import Outbound, Reply
from emulator.core.world import World
from emulator.frontends.httpserver import HttpServer
from emulator.frontends.metadata import Identity
from emulator.frontends.metadata import make_app as metadata_app
from emulator.runtime import ingress
from emulator.runtime.logs import Revision, Task, entry
from emulator.runtime.process import ServedProcess, run_task
from emulator.services import functions, runjobs

CLOCKSHIM = Path(__file__).resolve().parent / "clockshim"
MAX_UNPACKED = archive.MAX_UNPACKED  # bytes a source zip may unpack to; more is refused as a broken deploy
MAX_FILES = archive.MAX_FILES
START_S = 60.0  # Cloud Run's default startup probe allows 240 s; a function that says nothing for 60 s here has failed


SourceError = ArchiveError  # a source zip that cannot be unpacked safely: the message says which entry


def unpack(data: bytes, into: Path) -> None:
    """Unpack a source zip into an empty folder by core/archive.py's rules (nothing escapes the folder, no links, at
    most MAX_UNPACKED bytes and MAX_FILES entries)."""
    archive.unpack(data, into, max_bytes=MAX_UNPACKED, max_files=MAX_FILES)


@dataclass
class Served:
    function: str  # projects/P/locations/R/functions/F
    revision: str
    function_id: str
    process: ServedProcess | None = None
    metadata: HttpServer | None = None
    folder: Path | None = None
    state: dict[str, Any] = field(default_factory=dict)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
        if self.metadata is not None:
            self.metadata.stop()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


class Runtime:
    """The served revisions of one emulator. `network_env` is what a served process needs to reach this emulator as
    it would reach Google (the canary's CANARY_EMULATOR_GRPC); it is added to every process's environment."""

    def __init__(self, world: World, network_env: dict[str, str], workdir: Path | None = None) -> None:
        self.network_env = dict(network_env)
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="emulator-runtime-"))
        self.clock_file = self.workdir / "clock.json"
        world.clock.watch(self._write_clock)
        self.served: dict[str, Served] = {}  # by function name
        self.handlers: dict[str, Callable[[Outbound], Reply]] = {}  # Cloud Run's ingress of each, by function name
        self._service_hosts: dict[str, str] = {}  # service URL host → function name
        self._lock = threading.Lock()
        self._tasks: list[subprocess.Popen[bytes]] = []  # job tasks' processes, stopped with the runtime

    # The tick --------------------------------------------------------------------------------------------------

    def tick(self, world: World, now: datetime) -> None:
        with world.lock:
            wanted = functions.wanted_revisions(world)
        with self._lock:
            current = dict(self.served)
        for name, served in current.items():
            if name not in wanted:
                self._retire(world, served)
                with self._lock:
                    self.served.pop(name, None)
        for name, want in wanted.items():
            running = current.get(name)
            alive = running is not None and running.process is not None and running.process.alive()
            if running is not None and running.revision == want.revision and alive:
                continue
            # a new revision, or an instance that died: Cloud Run starts a new instance of the revision
            self._start(world, want, running)
        with world.lock:
            tasks = runjobs.claim_tasks(world)
        for task in tasks:
            threading.Thread(target=self._run_task, args=(world, task), daemon=True).start()

    # Job tasks -------------------------------------------------------------------------------------------------

    def _run_task(self, world: World, task: runjobs.TaskRun) -> None:
        """One attempt of a job's task, to its end: a process of the job's source as the job's service account
        with a metadata server of its own, the job's variables and Cloud Run's; then its exit status is counted
        (a retry, if the job allows one, starts here too)."""
        current: runjobs.TaskRun | None = task
        while current is not None:
            code, reason = self._attempt(world, current)
            with world.lock:
                current = runjobs.task_ended(world, current, code, reason)

    def _attempt(self, world: World, task: runjobs.TaskRun) -> tuple[int, str]:
        if not task.cwd and not task.archive:
            return 1, f"Image '{task.image}' not found"
        if not task.argv:
            return 1, "The container has no command: give the job a command or register one with its image"
        where = Task(task.project_id, task.region, task.job_id, task.execution, task.index, task.attempt,
                     os.urandom(16).hex())  # fmt: skip
        home = Path(tempfile.mkdtemp(prefix="task-", dir=self.workdir))
        folder = Path(task.cwd) if task.cwd else home / "workspace"
        identity = Identity(task.service_account, task.project_id, task.region, where.instance_id, task.network)
        metadata = HttpServer(metadata_app(world, identity), "127.0.0.1", 0)
        metadata.start()
        try:
            if task.archive:  # a source-built image: its checked zip unpacked as the container's folder
                folder.mkdir()
                unpack(task.archive, folder)
            argv = [sys.executable, *task.argv[1:]] if task.argv[0] in ("python", "python3") else task.argv
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": str(home),
                "LANG": "C.UTF-8",
                "PYTHONUNBUFFERED": "1",
                "PYTHONPATH": str(CLOCKSHIM),
                "EMULATOR_CLOCK_FILE": str(self.clock_file),
                "EMULATOR_PID": str(os.getpid()),  # the process ends itself if the emulator is killed
                **task.environment,
                # Cloud Run jobs' own variables (docs/google-behaviour.md, "Cloud Run jobs")
                "CLOUD_RUN_JOB": task.job_id,
                "CLOUD_RUN_EXECUTION": task.execution,
                "CLOUD_RUN_TASK_INDEX": str(task.index),
                "CLOUD_RUN_TASK_ATTEMPT": str(task.attempt),
                "CLOUD_RUN_TASK_COUNT": str(task.task_count),
                "GCE_METADATA_HOST": metadata.address,
                "GCE_METADATA_IP": metadata.address,
                **self.network_env,
            }
            return run_task(argv, env, folder, self._log_lines(world, where), task.timeout_s, self._track)
        except SourceError as err:
            return 1, f"Image '{task.image}' cannot be unpacked: {err}"
        finally:
            metadata.stop()
            shutil.rmtree(home, ignore_errors=True)

    def _track(self, process: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._tasks = [p for p in self._tasks if p.poll() is None] + [process]

    def _start(self, world: World, want: functions.Wanted, previous: Served | None) -> None:
        folder = self.workdir / f"{want.project_id}-{want.function_id}-{want.revision}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        served = Served(want.function, want.revision, want.function_id, folder=folder)
        revision = Revision(want.project_id, want.region, want.function_id, want.revision, os.urandom(16).hex())
        try:
            unpack(want.source, folder)
            identity = Identity(want.service_account, want.project_id, want.region, revision.instance_id, want.network)
            served.metadata = HttpServer(metadata_app(world, identity), "127.0.0.1", 0)
            served.metadata.start()
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": str(folder),
                "LANG": "C.UTF-8",
                "PYTHONUNBUFFERED": "1",
                # the process's clock is the emulator's (clockshim/sitecustomize.py)
                "PYTHONPATH": str(CLOCKSHIM),
                "EMULATOR_CLOCK_FILE": str(self.clock_file),
                "EMULATOR_PID": str(os.getpid()),  # the process ends itself if the emulator is killed
                **want.environment,
                # Cloud Run's and Cloud Functions' own variables (docs/google-behaviour.md, "Served functions")
                "K_SERVICE": want.function_id,
                "K_REVISION": want.revision,
                "K_CONFIGURATION": want.function_id,
                "PORT": "8080",
                "FUNCTION_TARGET": want.entry_point,
                "FUNCTION_SIGNATURE_TYPE": want.signature_type,
                "LOG_EXECUTION_ID": "true",
                # How google.auth and the clients in it reach this emulator instead of Google
                "GCE_METADATA_HOST": served.metadata.address,
                "GCE_METADATA_IP": served.metadata.address,
                **self.network_env,
            }
            served.process = ServedProcess(
                want.source_file,
                want.entry_point,
                env,
                folder,
                self._log_lines(world, revision),
                "--signature-type",
                want.signature_type,
                start_s=START_S,
            )
        except (SourceError, RuntimeError, OSError) as err:
            served.stop()
            print(f"emulator: {want.function} revision {want.revision} did not start: {err}", file=sys.stderr)
            with world.lock:
                functions.revision_failed(world, want, str(err))
            return
        with self._lock:
            self.served[want.function] = served
            self.handlers[want.function] = ingress.handler(world, want.function, lambda: served.process)
        service_host, function_host = want.hosts
        self._service_hosts[service_host] = want.function
        world.network.route(service_host, self.handlers[want.function])
        world.network.route(function_host, self._by_path)
        with world.lock:
            functions.revision_ready(world, want)
        if previous is not None:
            previous.stop()

    def _retire(self, world: World, served: Served) -> None:
        with self._lock:
            self.handlers.pop(served.function, None)
        for host in self._hosts_of(served.function):
            world.network.unroute(host)
        served.stop()

    def _hosts_of(self, function: str) -> list[str]:
        """The service URL's host of a function no longer served (the function URL's host is shared by the
        project's functions in the region and routes by path)."""
        with self._lock:
            hosts = [h for h, f in self._service_hosts.items() if f == function]
            for host in hosts:
                del self._service_hosts[host]
        return hosts

    def _by_path(self, request: Outbound) -> Reply:
        """https://REGION-PROJECT.cloudfunctions.net/NAME/rest: the function NAME in that project and region, which
        sees /rest."""
        parts = urlsplit(request.url)
        first, _, rest = parts.path.lstrip("/").partition("/")
        region_project = (parts.hostname or "").removesuffix(".cloudfunctions.net")
        with self._lock:
            chosen = next(
                (
                    h
                    for name, h in self.handlers.items()
                    if name.endswith(f"/functions/{first}") and _region_project(name) == region_project
                ),
                None,
            )
        if chosen is None:
            return Reply(404, {"content-type": "text/html; charset=UTF-8"}, b"<html><body>Page not found</body></html>")
        inner = urlunsplit(("https", parts.netloc, "/" + rest, parts.query, ""))
        return chosen(Outbound(request.method, inner, request.headers, request.body, request.timeout_s))

    def _write_clock(self, shared: dict[str, Any]) -> None:
        """The emulator's clock for the served processes (clockshim/sitecustomize.py), replaced in one step."""
        scratch = self.clock_file.with_suffix(".new")
        scratch.write_text(json.dumps(shared))
        os.replace(scratch, self.clock_file)

    @staticmethod
    def _log_lines(world: World, revision: Revision | Task) -> Callable[[str, bytes], None]:
        def write(stream: str, line: bytes) -> None:
            if not line.strip():
                return
            with world.lock:
                at = world.clock.now()
                world.append_log(entry(revision, stream, line, at), at)

        return write

    def stop(self, world: World | None = None) -> None:
        with self._lock:
            served, self.served = list(self.served.values()), {}
            tasks, self._tasks = self._tasks, []
        for process in tasks:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        for one in served:
            if world is not None:
                self._retire(world, one)
            else:
                one.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _region_project(function: str) -> str:
    _, project_id, _, region = function.split("/")[:4]
    return f"{region}-{project_id}"
