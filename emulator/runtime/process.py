"""A Python function served by the real `functions-framework` (gunicorn) in a process of its own, on a loopback port
it binds itself (port 0), its output read line by line as it comes."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

# gunicorn says where it listens (`Listening at: http://127.0.0.1:PORT (PID)`) at log level info; functions-framework
# sets error unless GUNICORN_LOG_LEVEL says otherwise.
FUNCTIONS_FRAMEWORK_ENV = {"GUNICORN_LOG_LEVEL": "info"}
LISTENING = re.compile(rb"Listening at: http://127\.0\.0\.1:([0-9]+) ")
MAX_LINE = 256 * 1024  # bytes of one output line kept; Cloud Logging's entry limit is 256 KB


def functions_framework_argv(source: str, target: str, *extra: str) -> list[str]:
    """`python -m functions_framework` on loopback port 0: gunicorn binds a port the kernel picks and says which, so
    no port number is chosen beforehand (a port bound, closed and handed over can be taken by anyone in between)."""
    return [
        *(sys.executable, "-m", "functions_framework", "--source", source, "--target", target),
        *("--host", "127.0.0.1", "--port", "0", *extra),
    ]


def bound_port(process: subprocess.Popen[bytes], output: Callable[[], bytes], limit_s: float) -> int:
    """The port a functions_framework_argv process listens on, once its gunicorn master has bound it (read from its
    output); RuntimeError with the output's tail if it exits first or says nothing within `limit_s`."""
    end = time.monotonic() + limit_s
    while True:
        text = output()
        found = LISTENING.search(text)
        if found:
            return int(found.group(1))
        if process.poll() is not None:
            tail = output().decode(errors="replace")[-2000:]
            raise RuntimeError(f"functions-framework exited with {process.returncode}: {tail}")
        if time.monotonic() > end:
            tail = text.decode(errors="replace")[-2000:]
            raise RuntimeError(f"functions-framework did not listen within {limit_s:g} s: {tail}")
        time.sleep(0.005)  # polling the output for the line; the loop ends on the condition, not on the time


Line = Callable[[str, bytes], None]  # (stream name "stdout" | "stderr", one line without its newline)


class ServedProcess:
    """`target` of `source` (relative to `cwd`) served with `env`; every output line goes to `on_line` as it is
    written, from two reader threads. `port` is where it listens once the constructor returns (RuntimeError with the
    output's tail when it exits or stays silent for `start_s`). Its own process group, so the gunicorn master and its
    workers stop together."""

    def __init__(
        self,
        source: str,
        target: str,
        env: dict[str, str],
        cwd: Path,
        on_line: Line,
        *extra: str,
        start_s: float = 60,
    ) -> None:
        self._seen = bytearray()  # stderr so far, for gunicorn's "Listening at" (bounded: the first 64 KB)
        self._seen_lock = threading.Lock()
        self._on_line = on_line
        self.process = subprocess.Popen(
            functions_framework_argv(source, target, *extra),
            cwd=cwd,
            env={**env, **FUNCTIONS_FRAMEWORK_ENV},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        self._readers = [
            threading.Thread(target=self._pump, args=("stdout", self.process.stdout), daemon=True),
            threading.Thread(target=self._pump, args=("stderr", self.process.stderr), daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        try:
            self.port = bound_port(self.process, self._stderr, start_s)
        except BaseException:
            self.stop(kill=True)
            raise

    def _stderr(self) -> bytes:
        with self._seen_lock:
            return bytes(self._seen)

    def _pump(self, stream: str, pipe: IO[bytes]) -> None:
        for raw in iter(lambda: pipe.readline(MAX_LINE), b""):
            line = raw.rstrip(b"\r\n")
            if stream == "stderr":
                with self._seen_lock:
                    if len(self._seen) < 64 * 1024:
                        self._seen += raw
            self._on_line(stream, line)
        pipe.close()

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, *, kill: bool = False) -> None:
        """SIGTERM (SIGKILL with `kill`) to the group, up to 10 s to finish, then SIGKILL; the readers drain."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL if kill else signal.SIGTERM)
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait()
        for reader in self._readers:
            reader.join(timeout=5)


def run_task(
    argv: list[str],
    env: dict[str, str],
    cwd: Path,
    on_line: Line,
    timeout_s: float,
    on_start: Callable[[subprocess.Popen[bytes]], None] = lambda _: None,
) -> tuple[int, str]:
    """A job's task: `argv` run to its end in `cwd` with `env` (its own process group), every output line to
    `on_line` as it is written (`on_start` sees the process, for whoever must stop it early). Returns the exit
    status and, when it is not 0, why: the status, the timeout (the group is killed) or a command that cannot start
    (status 127)."""
    try:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as err:
        return 127, f"The container could not start: {err.strerror or err}"
    on_start(process)
    assert process.stdout is not None
    assert process.stderr is not None

    def pump(stream: str, pipe: IO[bytes]) -> None:
        for raw in iter(lambda: pipe.readline(MAX_LINE), b""):
            on_line(stream, raw.rstrip(b"\r\n"))
        pipe.close()

    readers = [
        threading.Thread(target=pump, args=("stdout", process.stdout), daemon=True),
        threading.Thread(target=pump, args=("stderr", process.stderr), daemon=True),
    ]
    for reader in readers:
        reader.start()
    try:
        code = process.wait(timeout=timeout_s)
        reason = "" if code == 0 else f"The container exited with an error (exit code {code})"
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        code = process.wait()
        reason = f"The configured timeout was reached ({timeout_s:g} s)"
    with contextlib.suppress(ProcessLookupError):  # whatever it left running in its group goes too
        os.killpg(process.pid, signal.SIGKILL)
    for reader in readers:
        reader.join(timeout=5)
    return code, reason
