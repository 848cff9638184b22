"""The fault matrix: every dependency × every fault, injected through the emulator.

For each combination: the run ends within its deadline; the response and the log line say what happened; metrics
are written whenever Monitoring (and the canary's own credentials) are up; no exception escapes the handler (never a
500); retries are bounded (the emulator counts the attempts).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pytest

from emulator import testing
from tests.e2e.conftest import StartCanary

DEADLINE_S = 5
HANG_S = 8  # past the deadline

GEN = "google.cloud.aiplatform.v1.PredictionService.GenerateContent"
LIST = "google.logging.v2.LoggingServiceV2.ListLogEntries"
WRITE = "google.monitoring.v3.MetricService.CreateTimeSeries"
TEST_IAM = "google.cloud.resourcemanager.v3.Projects.TestIamPermissions"
TOKEN = "metadata.token"

# What each fault looks like, for a gRPC method and for the metadata server (an HTTP server).
FAULTS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "unavailable": (
        {"status": {"code": 14, "message": "The service is currently unavailable."}},
        {"http_status": 503, "http_body": "service unavailable"},
    ),
    "hang": ({"hang_seconds": HANG_S}, {"hang_seconds": HANG_S}),
    "exhausted": (
        {"status": {"code": 8, "message": "Resource has been exhausted (e.g. check quota)."}},
        {"http_status": 429, "http_body": "too many requests"},
    ),
    "malformed": ({"malformed": True}, {"malformed": True}),
    "reset": ({"close": True}, {"close": True}),
}


@dataclass(frozen=True)
class Dependency:
    name: str
    method: str
    scenario: str
    max_attempts: int  # bounded retries: what the emulator may count for this method in one run


DEPENDENCIES = [
    Dependency("vertex", GEN, "healthy", 1),
    Dependency("logging", LIST, "iam_denied", 3),
    Dependency("monitoring", WRITE, "healthy", 2),
    Dependency("resourcemanager", TEST_IAM, "iam_denied", 1),
    Dependency("metadata", TOKEN, "healthy", 5),  # google.auth's own retry of the token endpoint
]

# Expected cause of the one target when the fault is on the Vertex call or on the token.
VERTEX_CAUSE = {
    "unavailable": "unavailable",
    "hang": "deadline",
    "exhausted": "capacity",  # no quota named: Google's shared capacity (docs/google-behaviour.md)
    "malformed": "unknown",
    "reset": "unavailable",
}

CASES = [(d, f) for d in DEPENDENCIES for f in FAULTS]


@pytest.mark.parametrize(("dependency", "fault"), CASES, ids=[f"{d.name}-{f}" for d, f in CASES])
def test_fault(start_canary: StartCanary, dependency: Dependency, fault: str) -> None:
    canary = start_canary(dependency.scenario, CANARY_DEADLINE_SECONDS=str(DEADLINE_S))
    spec = FAULTS[fault][1 if dependency.method.startswith("metadata.") else 0]
    status, body = testing.admin(canary.emulator, "POST", "faults", {"method": dependency.method, "count": 20, **spec})
    assert status == 201, body

    started = time.monotonic()
    response = canary.scheduler()
    elapsed = time.monotonic() - started

    assert elapsed < DEADLINE_S + 2.5, f"the run took {elapsed:.1f} s"
    assert response.status_code in (200, 502), response.get_data(as_text=True)
    result = response.get_json()
    assert result["verdict"] != "error"
    log = canary.last_log
    assert log["run_id"] == result["run_id"]
    assert canary.calls(dependency.method) <= dependency.max_attempts

    [target] = result["targets"]
    items = {i["step"]: i for i in result.get("evidence", {}).get("items", [])}
    metrics = result["metrics"]
    if dependency.name == "vertex":
        assert target["cause"] == VERTEX_CAUSE[fault]
        assert metrics["written"] is True
    elif dependency.name == "metadata":
        assert target["cause"] == "credentials"
        assert metrics["skipped"].startswith("not attempted: the canary's own credentials failed")
    elif dependency.name == "monitoring":
        assert target["cause"] == "ok"
        assert metrics["written"] is False
        assert metrics["error"]
        assert log["metrics"] == metrics
    elif dependency.name == "logging":
        assert target["cause"] == "iam_permission_denied"
        assert items["data_access"]["status"] in ("unavailable", "error"), items
        assert items["admin_activity"]["status"] in ("unavailable", "error", "skipped"), items
        assert metrics["written"] is True
    else:
        assert target["cause"] == "iam_permission_denied"
        assert items["iam"]["status"] in ("unavailable", "error"), items
        assert metrics["written"] is True
    assert log["targets"][0]["cause"] == target["cause"]
    assert log["message"].startswith("gemini-canary ")
