"""The fault matrix: every call the canary makes × every fault × where it happens, injected through the emulator.

Calls: each metadata-server path (google.auth's ping, the project id, the account's e-mail, the region, the token),
GenerateContent, TestIamPermissions, the project's GetIamPolicy, GetProject, GetFolder, the folder's and the
organization's GetIamPolicy, ListLogEntries, CreateTimeSeries. Where: the first run of a cold instance, or a warm
instance's run (after one run that went well). For each combination:

- the run ends within its deadline;
- the response and the log line say what failed (the cause, the evidence step, the metrics error or note, or the
  canary's own error naming the metadata path), and agree;
- metrics are written whenever Monitoring is not the fault and the canary's own credentials and project are known;
- no exception escapes the handler; retries are bounded (the emulator counts the attempts);
- the next run after the fault clears is back to the scenario's normal verdict, with nothing of the fault kept.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from emulator import testing
from tests.e2e.conftest import Canary, StartCanary

DEADLINE_S = 5
HANG_S = 8  # past the deadline
MARGIN_S = 2.5

GEN = "google.cloud.aiplatform.v1.PredictionService.GenerateContent"
LIST = "google.logging.v2.LoggingServiceV2.ListLogEntries"
WRITE = "google.monitoring.v3.MetricService.CreateTimeSeries"
RM = "google.cloud.resourcemanager.v3"

# What each fault looks like for a gRPC method, and for the metadata server (an HTTP server).
GRPC_FAULTS: dict[str, dict[str, Any]] = {
    "unavailable": {"status": {"code": 14, "message": "The service is currently unavailable."}},
    "exhausted": {"status": {"code": 8, "message": "Resource has been exhausted (e.g. check quota)."}},
    "hang": {"hang_seconds": HANG_S},
    "malformed": {"malformed": True},
    "reset": {"close": True},
}
METADATA_FAULTS: dict[str, dict[str, Any]] = {
    "http503": {"http_status": 503, "http_body": "service unavailable"},
    "http404": {"http_status": 404, "http_body": "Not Found"},
    "hang": {"hang_seconds": HANG_S},
    "malformed": {"malformed": True},
    "reset": {"close": True},
}

# Expected cause of the one target when the fault is on the Vertex call.
VERTEX_CAUSE = {
    "unavailable": "unavailable",
    "hang": "deadline",
    "exhausted": "capacity",  # no quota named: Google's shared capacity (docs/google-behaviour.md)
    "malformed": "unknown",
    "reset": "unavailable",
}

Check = Callable[[dict[str, Any], str], None]  # (the faulted run's response body, the fault) → asserts


def _items(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {i["step"]: i for i in body.get("evidence", {}).get("items", [])}


def _credentials(body: dict[str, Any], fault: str) -> None:
    [target] = body["targets"]
    assert target["cause"] == "credentials", target
    assert body["metrics"]["skipped"].startswith("not attempted: the canary's own credentials failed")


def _project(body: dict[str, Any], fault: str) -> None:
    assert body["verdict"] == "error"
    assert "cannot learn which project to probe" in body["error"]
    assert "project/project-id" in body["error"]  # what failed: the metadata server's answer for that path
    assert "the next run asks again" in body["error"]
    assert body["metrics"]["skipped"].startswith("not attempted: the canary does not know its project")


def _ping(body: dict[str, Any], fault: str) -> None:
    if fault == "malformed":  # a 200 with Metadata-Flavor is all google.auth's ping asks of the server
        assert body["verdict"] == "healthy"
        return
    _credentials(body, fault)
    assert body["project"] == "demo-proj"  # learned even so, and named


def _region(body: dict[str, Any], fault: str) -> None:
    assert body["verdict"] == "healthy"
    assert body["metrics"]["written"] is True
    assert "instance/region" in body["metrics"]["note"]
    assert "location label 'global' for this run" in body["metrics"]["note"]


def _vertex(body: dict[str, Any], fault: str) -> None:
    [target] = body["targets"]
    assert target["cause"] == VERTEX_CAUSE[fault]


def _monitoring(body: dict[str, Any], fault: str) -> None:
    assert body["targets"][0]["cause"] == "ok"
    assert body["metrics"]["written"] is False
    assert body["metrics"]["error"]


def _step(step: str) -> Check:
    def check(body: dict[str, Any], fault: str) -> None:
        assert body["targets"][0]["cause"] == "iam_permission_denied"
        assert _items(body)[step]["status"] in ("unavailable", "error"), _items(body)

    return check


def _ancestor(body: dict[str, Any], fault: str) -> None:
    assert body["targets"][0]["cause"] == "iam_permission_denied"
    audit = _items(body)["audit_config"]
    assert "could not be read: " in audit["summary"], audit  # which level, and why
    assert "data_access_logs_on" not in body["evidence"]  # unknown above the project: never called "off"


def _logging(body: dict[str, Any], fault: str) -> None:
    items = _items(body)
    assert body["targets"][0]["cause"] == "iam_permission_denied"
    assert items["data_access"]["status"] in ("unavailable", "error"), items
    assert items["admin_activity"]["status"] in ("unavailable", "error", "skipped"), items


@dataclass(frozen=True)
class Call:
    name: str
    method: str  # what the fault names: a gRPC method or a metadata selector
    scenario: str
    max_attempts: int  # bounded retries: calls the emulator may count in the faulted run
    check: Check
    counted_as: str = ""  # the emulator's counter, when it is not the method (metadata paths count by bucket)
    warm_uses: bool = True  # whether a warm instance makes this call at all (False: cached from the first run)

    @property
    def metadata(self) -> bool:
        return self.method.startswith("metadata.")


DENIED = "data_access_off_everywhere"  # every evidence call: the project's audit config is off, ancestors readable
CALLS = [
    # google.auth retries the metadata server (5 times, 3 for the ping) in a thread the canary cannot interrupt, and
    # gives up only after the run has (a test's abandoned retries may reach the next test's emulator on the same
    # metadata port): the bounds leave room for those retries, and for the canary's one own lookup.
    Call("metadata-ping", "metadata.ping", "healthy", 6, _ping, "metadata.other", warm_uses=False),
    Call("metadata-project", "metadata.project_id", "healthy", 8, _project, "metadata.project", warm_uses=False),
    # the e-mail: google.auth's recursive account document (then the canary's own lookup of .../email)
    Call("metadata-email", "metadata.email", "healthy", 8, _credentials, "metadata.service_account", warm_uses=False),
    Call("metadata-region", "metadata.region", "healthy", 4, _region, "metadata.other", warm_uses=False),
    Call("metadata-token", "metadata.token", "healthy", 8, _credentials, "metadata.token", warm_uses=False),
    Call("vertex", GEN, "healthy", 1, _vertex),
    Call("test-iam", f"{RM}.Projects.TestIamPermissions", DENIED, 1, _step("iam")),
    Call("project-policy", f"{RM}.Projects.GetIamPolicy", DENIED, 1, _step("audit_config")),
    Call("get-project", f"{RM}.Projects.GetProject", DENIED, 1, _ancestor),
    Call("folder-policy", f"{RM}.Folders.GetIamPolicy", DENIED, 1, _ancestor),
    Call("get-folder", f"{RM}.Folders.GetFolder", DENIED, 1, _ancestor),
    Call("org-policy", f"{RM}.Organizations.GetIamPolicy", DENIED, 1, _ancestor),
    Call("logging", LIST, DENIED, 3, _logging),
    Call("monitoring", WRITE, "healthy", 2, _monitoring),
]

NORMAL = {"healthy": ("healthy", 200), DENIED: ("denied", 502)}

CASES = [
    (call, fault, where)
    for call in CALLS
    for fault in (METADATA_FAULTS if call.metadata else GRPC_FAULTS)
    for where in ("cold", "warm")
]


def _agree(canary: Canary, body: dict[str, Any]) -> dict[str, Any]:
    """The log line is the response's twin: same run, verdict, targets, evidence, metrics and error."""
    log = canary.last_log
    assert log["run_id"] == body["run_id"]
    for key in ("verdict", "targets", "evidence", "error", "project"):
        assert log.get(key) == body.get(key), key
    assert log["metrics"] == {k: v for k, v in body["metrics"].items() if k != "time_series"}  # ?debug=true adds it
    assert log["message"].startswith("gemini-canary ")
    return log


def _normal(canary: Canary, scenario: str) -> dict[str, Any]:
    """A run that shows the scenario's usual verdict, evidence complete, and metrics flowing."""
    response = canary.call("POST", "/?debug=true", json={}, headers={"X-CloudScheduler": "true"})
    body = response.get_json()
    verdict, status = NORMAL[scenario]
    assert (body["verdict"], response.status_code) == (verdict, status), body
    _agree(canary, body)
    metrics = body["metrics"]
    assert metrics["written"] or metrics.get("skipped", "").startswith("coalesced:"), metrics
    assert "note" not in metrics, metrics
    assert "error" not in metrics, metrics
    assert {s["resource"]["labels"]["location"] for s in metrics["time_series"]} == {"us-central1"}
    if scenario == DENIED:
        items = _items(body)
        assert body["targets"][0]["cause"] == "iam_permission_denied"
        assert (items["iam"]["status"], items["data_access"]["status"]) == ("found", "off"), items
        assert items["admin_activity"]["status"] == "not_found", items  # the scenario starts with the role gone
        assert body["evidence"]["data_access_logs_on"] is False
    return body


@pytest.mark.parametrize(("call", "fault", "where"), CASES, ids=[f"{c.name}-{f}-{w}" for c, f, w in CASES])
def test_fault(start_canary: StartCanary, call: Call, fault: str, where: str) -> None:
    canary = start_canary(call.scenario, CANARY_DEADLINE_SECONDS=str(DEADLINE_S))
    if where == "warm":
        _normal(canary, call.scenario)
        if call.method == WRITE:
            time.sleep(5.1)  # past Monitoring's one point per series per 5 s, so this run writes (and meets the fault)
    spec = (METADATA_FAULTS if call.metadata else GRPC_FAULTS)[fault]
    status, answer = testing.admin(canary.emulator, "POST", "faults", {"method": call.method, "count": 20, **spec})
    assert status == 201, answer
    counter = call.counted_as or call.method
    before = canary.calls(counter)

    started = time.monotonic()
    response = canary.scheduler()
    elapsed = time.monotonic() - started
    attempts = canary.calls(counter) - before

    assert elapsed < DEADLINE_S + MARGIN_S, f"the run took {elapsed:.1f} s"
    body = response.get_json()
    assert body is not None, response.get_data(as_text=True)
    assert "verdict" in body, body  # the canary's own answer, never a crash
    _agree(canary, body)
    assert attempts <= call.max_attempts, f"{attempts} calls to {counter}"
    if where == "warm" and not call.warm_uses:
        # what the first run learned is kept (an answer, never a failure), so a warm run does not ask again
        assert attempts == 0
        assert (body["verdict"], response.status_code) == NORMAL[call.scenario]
    else:
        call.check(body, fault)
        verdict = body["verdict"]
        assert response.status_code == {"healthy": 200, "degraded": 502, "denied": 502, "error": 500}[verdict]
        credentials_known = call.check not in (_credentials, _project) and not (
            call.check is _ping and verdict != "healthy"
        )
        if call.method != WRITE and credentials_known:
            assert body["metrics"]["written"] or body["metrics"].get("skipped", "").startswith("coalesced:")
            assert "error" not in body["metrics"], body["metrics"]

    status, _ = testing.admin(canary.emulator, "DELETE", "faults")
    assert status == 200
    _normal(canary, call.scenario)  # the fault cleared: the next run is back to normal, nothing of it kept
