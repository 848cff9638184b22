"""The fault matrix: every call the canary makes × every fault × where it happens, injected through the emulator.

Calls: each metadata-server path (google.auth's ping, the project id, the account's e-mail, the region, the token),
GenerateContent, TestIamPermissions, the project's GetIamPolicy, GetProject, GetFolder, the folder's and the
organization's GetIamPolicy, ListLogEntries, CreateTimeSeries. Where: the first run of a cold instance, or a warm
instance's run (after one run that went well). For each combination:

- the run ends within its deadline;
- the response and the log line say exactly what failed, and agree: the HTTP status and verdict, each target's cause,
  each evidence step's status (and the faulted step's summary), the canary's own error naming the metadata path;
- metrics are written (or coalesced with the warm-up run's) whenever Monitoring is not the fault and the canary's own
  credentials and project are known, and otherwise the report says exactly why not;
- no exception escapes the handler; retries are bounded (the emulator counts the attempts);
- the next run after the fault clears is back to the scenario's normal verdict, with nothing of the fault kept.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import pytest

from devkit import emulated
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


def _items(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {i["step"]: i for i in body.get("evidence", {}).get("items", [])}


# What the canary reports for each fault: the evidence step's error (google-api-core's exception, the gRPC code as
# HTTP, the message), and the metadata server's answer as the canary words it.
STEP_ERROR = {
    "unavailable": ("error", "ServiceUnavailable 503: The service is currently unavailable."),
    "exhausted": ("error", "ResourceExhausted 429: Resource has been exhausted (e.g. check quota)."),
    "malformed": ("error", "InternalServerError 500: Exception deserializing response!"),
    "reset": ("error", "ServiceUnavailable 503: Socket closed"),
    "hang": ("unavailable", "the call did not finish within the run's deadline"),
}
WRITE_ERROR = {
    "unavailable": "ServiceUnavailable: The service is currently unavailable.",
    "exhausted": "ResourceExhausted: Resource has been exhausted (e.g. check quota).",
    "malformed": "InternalServerError: Exception deserializing response!",
    "reset": "ServiceUnavailable: Socket closed",
    "hang": "DeadlineExceeded: Deadline Exceeded",
}
METADATA_ANSWER = {
    "http503": "answered HTTP 503: 'service unavailable'",
    "http404": "answered HTTP 404: 'Not Found'",
    "malformed": "answered something that is not a valid value: '\\x00{not json'",
    "reset": "could not be read: RemoteDisconnected: Remote end closed connection without response",
    "hang": "did not answer within N s",
}
CREDENTIALS_SKIPPED = {
    "written": False,
    "series": 0,
    "skipped": "not attempted: the canary's own credentials failed (cause credentials); the log line carries the "
    "result",
}
PROJECT_SKIPPED = {
    "written": False,
    "series": 0,
    "skipped": "not attempted: the canary does not know its project, so it has nowhere to write (this run is in its "
    "log line; the silent alert fires if no run can write for three schedule periods)",
}
SKIPPED = ("skipped", "not attempted: no time left: earlier steps used the run's 5 s deadline (0.0 s left)")
DENIED_STEPS = {"iam": "found", "audit_config": "found", "data_access": "off", "admin_activity": "not_found"}
ANCESTOR_STEPS = {"iam": "found", "audit_config": "found", "data_access": "not_found", "admin_activity": "not_found"}


@dataclass(frozen=True)
class Want:
    """Exactly what the faulted run reports: HTTP status, verdict, each target's cause, each evidence step's status
    (and, for the step that met the fault, its summary), and the metrics: written, or the exact reason not."""

    status: int
    verdict: str
    causes: list[str]
    steps: dict[str, str]
    metrics: str | dict[str, Any]  # "written" (written, or coalesced with the warm-up run), or the exact report
    faulted_step: tuple[str, str, str] | None = None  # (step, status, summary)
    error: str | None = None
    note: str | None = None


def _hang_steps(failed: str, status: str) -> dict[str, str]:
    """A hang takes the whole deadline: the steps after the one that hung are skipped."""
    order = ["iam", "audit_config", "data_access", "admin_activity"]
    at = order.index(failed)
    return {s: ("found" if i < at else status if i == at else "skipped") for i, s in enumerate(order)}


def want(call: str, fault: str) -> Want:
    denied = (502, "denied", ["iam_permission_denied"])
    if call in ("metadata-ping", "metadata-email", "metadata-token"):
        if call == "metadata-ping" and fault == "malformed":  # a 200 with Metadata-Flavor is all the ping asks
            return Want(200, "healthy", ["ok"], {}, "written")
        return Want(502, "denied", ["credentials"], {}, CREDENTIALS_SKIPPED)
    if call == "metadata-project":
        error = (
            f"cannot learn which project to probe: the runtime's metadata server's project/project-id "
            f"{METADATA_ANSWER[fault]}. This is the runtime's metadata server failing, not Gemini: the next run asks "
            "again (outside Google Cloud, where there is no metadata server, set CANARY_PROJECT)"
        )
        return Want(500, "error", [], {}, PROJECT_SKIPPED, error=error)
    if call == "metadata-region":
        note = (
            f"location label 'global' for this run: the metadata server's instance/region {METADATA_ANSWER[fault]}; "
            "the next run asks again"
        )
        return Want(200, "healthy", ["ok"], {}, "written", note=note)
    if call == "vertex":
        cause = VERTEX_CAUSE[fault]
        # an unknown failure is looked into (TestIamPermissions); a transient one is not
        return Want(
            502,
            "denied" if cause == "unknown" else "degraded",
            [cause],
            {"iam": "found"} if cause == "unknown" else {},
            "written",
        )
    if call == "monitoring":
        return Want(200, "healthy", ["ok"], {}, {"written": False, "series": 4, "error": WRITE_ERROR[fault]})
    status, summary = STEP_ERROR[fault]
    step = {"test-iam": "iam", "project-policy": "audit_config", "logging": "data_access"}.get(call)
    if step is None:  # an ancestor's GetProject, GetFolder or GetIamPolicy: only that level goes unread
        steps = _hang_steps("data_access", "skipped") if fault == "hang" else ANCESTOR_STEPS
        return Want(*denied, steps, "written")
    if fault == "hang":
        return Want(*denied, _hang_steps(step, status), "written", (step, status, summary))
    steps = dict(DENIED_STEPS if step == "iam" else ANCESTOR_STEPS)
    steps[step] = status
    if step == "data_access":
        steps["admin_activity"] = status  # the same ListLogEntries, met by the same fault
    return Want(*denied, steps, "written", (step, status, summary))


def check(body: dict[str, Any], status: int, call: str, fault: str, where: str) -> None:
    expected = want(call, fault)
    assert (status, body["verdict"]) == (expected.status, expected.verdict), body
    assert [t["cause"] for t in body["targets"]] == expected.causes, body["targets"]
    items = _items(body)
    assert {s: i["status"] for s, i in items.items()} == expected.steps, items
    if expected.faulted_step is not None:
        step, step_status, summary = expected.faulted_step
        assert (items[step]["status"], items[step]["summary"]) == (step_status, summary), items[step]
    for item in items.values():
        if item["status"] == "skipped" and item["step"] != "audit_config":
            assert item["summary"] == SKIPPED[1], item
    if call in ("get-project", "folder-policy", "get-folder", "org-policy"):
        level = {"get-project": "projects/demo-proj", "org-policy": "organizations/123456789012"}.get(
            call, "folders/345678901234"
        )
        reason = STEP_ERROR[fault][1] if fault != "hang" else "the call did not finish"
        assert f"({level} could not be read: {reason}" in items["audit_config"]["summary"], items["audit_config"]
        assert "data_access_logs_on" not in body["evidence"]  # unknown above the project: never called "off"
    if expected.error is not None:
        assert re.sub(r"within \d+(\.\d+)? s", "within N s", body["error"]) == expected.error
    else:
        assert "error" not in body or body["error"] is None, body["error"]
    metrics = {k: v for k, v in body["metrics"].items() if k != "time_series"}
    if expected.metrics == "written":
        written: dict[str, Any] = {"written": True, "series": 4}
        if expected.note is not None:
            written["note"] = expected.note
            metrics["note"] = re.sub(r"within \d+(\.\d+)? s", "within N s", metrics["note"])
        # Warm: the last run wrote moments ago. Even a hang ends a reserve short of the 5 s deadline
        # (run.report_reserve: 1 s here), so every warm run's write falls inside Monitoring's 5 s spacing.
        if where == "warm":
            skipped = metrics.pop("skipped", "")
            assert re.fullmatch(r"coalesced: this instance wrote metrics [0-4]\.\d s ago .*", skipped), skipped
            written["written"] = False
        assert metrics == written
    else:
        assert metrics == expected.metrics


@dataclass(frozen=True)
class Call:
    name: str
    method: str  # what the fault names: a gRPC method or a metadata selector
    scenario: str
    max_attempts: int  # bounded retries: calls the emulator may count in the faulted run
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
    Call("metadata-ping", "metadata.ping", "healthy", 6, "metadata.other", warm_uses=False),
    Call("metadata-project", "metadata.project_id", "healthy", 8, "metadata.project", warm_uses=False),
    # the e-mail: google.auth's recursive account document (then the canary's own lookup of .../email)
    Call("metadata-email", "metadata.email", "healthy", 8, "metadata.service_account", warm_uses=False),
    Call("metadata-region", "metadata.region", "healthy", 4, "metadata.other", warm_uses=False),
    Call("metadata-token", "metadata.token", "healthy", 8, "metadata.token", warm_uses=False),
    Call("vertex", GEN, "healthy", 1),
    Call("test-iam", f"{RM}.Projects.TestIamPermissions", DENIED, 1),
    Call("project-policy", f"{RM}.Projects.GetIamPolicy", DENIED, 1),
    Call("get-project", f"{RM}.Projects.GetProject", DENIED, 1),
    Call("folder-policy", f"{RM}.Folders.GetIamPolicy", DENIED, 1),
    Call("get-folder", f"{RM}.Folders.GetFolder", DENIED, 1),
    Call("org-policy", f"{RM}.Organizations.GetIamPolicy", DENIED, 1),
    Call("logging", LIST, DENIED, 3),
    Call("monitoring", WRITE, "healthy", 2),
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
    status, answer = emulated.admin(canary.emulator, "POST", "faults", {"method": call.method, "count": 20, **spec})
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
        check(body, response.status_code, call.name, fault, where)

    status, _ = emulated.admin(canary.emulator, "DELETE", "faults")
    assert status == 200
    _normal(canary, call.scenario)  # the fault cleared: the next run is back to normal, nothing of it kept
