"""End-to-end: the real function served by functions-framework (in-process test client), against the emulator.

The emulator runs a *running* clock (it moves with real time and jumps when a test advances it), because the canary
stamps metric points and audit-log time bounds with its own wall clock, as it does on Google Cloud.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from functions_framework import create_app
from google.cloud import monitoring_v3

from devkit import emulated
from emulator.server import Emulator
from emulator.services.monitoring.service import MonitoringStore
from emulator.services.vertex import REPLY
from function.probe import PROMPT

OWNER = "alice@example.com"
WORKLOAD = "canary-workload@demo-proj.iam.gserviceaccount.com"
PREFIX = "custom.googleapis.com/gemini_canary"
METADATA_PORT = int(os.environ["GCE_METADATA_HOST"].rsplit(":", 1)[1])  # reserved by tests/conftest.py


SECRET_SHAPES = (re.compile(r"ya29\.[A-Za-z0-9_\-.]+"), re.compile(r"eyJ[A-Za-z0-9_\-]+\.eyJ[A-Za-z0-9_\-]+"))


def assert_no_secrets(texts: list[str], emulator: Emulator) -> None:
    """No access token, identity token, prompt or model answer in anything the canary produced."""
    forbidden = [PROMPT, REPLY, *REPLY.split(". ")[1:], *emulator.world.tokens]
    for text in texts:
        for shape in SECRET_SHAPES:
            assert not shape.search(text), f"a token-shaped string in output: {shape.search(text)}"
        for secret in forbidden:
            assert secret not in text, f"{secret[:20]}… leaked into output"


def metric_texts(emulator: Emulator) -> list[str]:
    """Every label and value of every time series the emulator stored."""
    out = []
    for project in emulator.world.projects.values():
        for series in project.store(MonitoringStore).time_series.values():
            out.append(json.dumps([series.metric_labels, series.resource_labels, [p.value for p in series.points]]))
    return out


@dataclass
class Canary:
    emulator: Emulator
    client: Any
    capture: Any
    lines: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)  # every response body and log line, for the secrets scan

    def call(self, method: str = "POST", path: str = "/", **kwargs: Any) -> Any:
        response = self.client.open(path, method=method, **kwargs)
        self.outputs.append(response.get_data(as_text=True))
        self._collect()
        return response

    def scheduler(self, body: Any = None) -> Any:
        """Call as Cloud Scheduler does."""
        return self.call(
            "POST",
            "/",
            json=body if body is not None else {},
            headers={
                "X-CloudScheduler": "true",
                "X-CloudScheduler-JobName": "gemini-canary",
                "X-CloudScheduler-ScheduleTime": "2026-11-26T09:05:00Z",
                "User-Agent": "Google-Cloud-Scheduler",
            },
        )

    def _collect(self) -> None:
        out = self.capture.readouterr().out
        self.outputs.append(out)
        for raw in out.splitlines():
            line = raw.strip()
            if line.startswith("{"):
                self.lines.append(json.loads(line))

    @property
    def last_log(self) -> dict[str, Any]:
        return self.lines[-1]

    def advance(self, seconds: float) -> None:
        status, _ = emulated.admin(self.emulator, "POST", "clock", {"advance_seconds": seconds})
        assert status == 200

    def patch(self, doc: dict[str, Any]) -> None:
        status, body = emulated.admin(self.emulator, "PATCH", "world", doc)
        assert status == 200, body

    def calls(self, method: str) -> int:
        return int(self.emulator.world.calls.get(method, 0))

    def series(self, metric: str, **labels: str) -> list[monitoring_v3.TimeSeries]:
        """Read back what the canary wrote, with a real ListTimeSeries call as the project owner."""
        now = datetime.now(UTC)
        query = f'metric.type = "{PREFIX}/{metric}"' + "".join(
            f' AND metric.label.{k} = "{v}"' for k, v in labels.items()
        )
        clients = emulated.clients(self.emulator, OWNER)
        return list(
            clients.metrics.list_time_series(
                request={
                    "name": "projects/demo-proj",
                    "filter": query,
                    "interval": {"start_time": now - timedelta(hours=1), "end_time": now + timedelta(hours=3)},
                }
            )
        )


StartCanary = Callable[..., Canary]


@pytest.fixture
def start_canary(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[StartCanary]:
    """start_canary("iam_denied", CANARY_TARGETS=...) → the function loaded cold, as a fresh instance.

    When the test ends, everything the canary produced is scanned for tokens, the prompt and the model's answer.
    """
    started: list[Emulator] = []
    canaries: list[Canary] = []

    def scan() -> None:
        for canary in canaries:
            canary._collect()
            assert_no_secrets(canary.outputs + metric_texts(canary.emulator), canary.emulator)

    def start(scenario: str = "healthy", **env: str) -> Canary:
        scan()
        for old in started:
            old.stop()
        started.clear()
        canaries.clear()
        emulator = Emulator(scenario, metadata_port=METADATA_PORT, clock_mode="running").start()
        started.append(emulator)
        monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
        for key in [k for k in os.environ if k.startswith("CANARY_")]:
            monkeypatch.delenv(key)
        monkeypatch.setenv("CANARY_EMULATOR_GRPC", emulator.grpc.address)
        monkeypatch.setenv("CANARY_AUDIT_LAG_BUDGET_SECONDS", "0")
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        app = create_app(target="canary", source="function/main.py")
        capsys.readouterr()
        canary = Canary(emulator, app.test_client(), capsys)
        canaries.append(canary)
        return canary

    yield start
    try:
        scan()
    finally:
        for emulator in started:
            emulator.stop()
