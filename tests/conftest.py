"""Shared fixtures: a fresh emulator per test, seeded from a scenario, on free loopback ports.

google.auth reads GCE_METADATA_HOST when it is first imported, so each test process reserves one metadata port
up front and every emulator it starts serves its metadata server there (one emulator at a time per process). The
port is held open for the whole process (emulator.frontends.httpserver.reserve_port), so no other process can take
it between emulators.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator

import pytest

from emulator.frontends.httpserver import reserve_port  # the standard library only: google.auth is not imported yet

METADATA_PORT = reserve_port()
os.environ["GCE_METADATA_HOST"] = f"127.0.0.1:{METADATA_PORT}"
os.environ["GCE_METADATA_IP"] = f"127.0.0.1:{METADATA_PORT}"
os.environ["GRPC_VERBOSITY"] = "NONE"
os.environ.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
os.environ["CLOUDSDK_CONFIG"] = tempfile.mkdtemp(prefix="canary-test-gcloud-")  # no user ADC leaks in

from emulator.server import Emulator  # noqa: E402 - after the environment is set

StartEmulator = Callable[..., Emulator]


@pytest.fixture
def start_emulator() -> Iterator[StartEmulator]:
    """start_emulator("iam_denied") → a started Emulator, stopped when the test ends."""
    started: list[Emulator] = []

    def start(scenario: str = "healthy") -> Emulator:
        for old in started:
            old.stop()
        started.clear()
        emulator = Emulator(scenario, metadata_port=METADATA_PORT).start()
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


@pytest.fixture
def emulator(start_emulator: StartEmulator) -> Emulator:
    """A healthy-world emulator."""
    return start_emulator("healthy")
