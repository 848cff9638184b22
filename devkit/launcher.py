"""The one functions-framework launcher (tests, benchmarks, the demo): a source file's function served by the real
`functions-framework` (gunicorn) in its own process, on a loopback port it binds itself."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Self

from emulator.runtime.process import FUNCTIONS_FRAMEWORK_ENV, bound_port, functions_framework_argv

ROOT = Path(__file__).resolve().parents[1]


class FunctionProcess:
    """`source`'s `target` served by functions-framework, started from the repository root with `env`, its output
    in `log` (a temporary file when None), in a process group of its own so the gunicorn master and its worker stop
    together. `port` is where it listens once the constructor returns; `start_s` only bounds a start that never
    comes (a cold start takes about a second)."""

    def __init__(
        self,
        source: str,
        env: dict[str, str],
        *extra: str,
        target: str = "canary",
        log: Path | None = None,
        start_s: float = 60,
    ) -> None:
        # Open as long as the process lives; closed in stop().
        self.log: IO[bytes] = log.open("w+b") if log is not None else tempfile.TemporaryFile()  # noqa: SIM115
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            functions_framework_argv(source, target, *extra),
            cwd=ROOT,
            env={**env, **FUNCTIONS_FRAMEWORK_ENV},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            # gunicorn binds (a port of its choosing, port 0) after the master imported the source, and says so.
            self.port = bound_port(self.process, self.written, start_s)
        except BaseException:
            self.stop(kill=True)
            raise
        self.listening_s = time.perf_counter() - self.started

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def written(self) -> bytes:
        """What the process has written so far, read without moving the file offset it writes at."""
        fd = self.log.fileno()
        return os.pread(fd, os.fstat(fd).st_size, 0)

    def output(self) -> str:
        return self.written().decode(errors="replace")

    def stop(self, *, kill: bool = False) -> None:
        """Stop the process group: at once with `kill` (measurements already taken), else SIGTERM and up to 15 s
        for gunicorn to finish what it serves."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.log.close()


@contextmanager
def serve_function(env: dict[str, str], log: Path, target: str = "canary", *extra: str) -> Iterator[int]:
    """The canary as deployed from the repository root (function/main.py), its output in `log`: yields the port once
    it listens; stops it after."""
    with FunctionProcess("function/main.py", env, *extra, target=target, log=log) as served:
        yield served.port
