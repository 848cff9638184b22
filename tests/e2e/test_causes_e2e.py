"""Every cause, end to end: scenario → the real function → HTTP status, body, log line, and the metrics read back
from the emulator with ListTimeSeries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from devkit import emulated
from tests.e2e.conftest import WORKLOAD, Canary, StartCanary

TARGET = "gemini-2.5-flash-lite@us-central1"
MEMBER = f"serviceAccount:{WORKLOAD}"
GRANT = (
    f"gcloud projects add-iam-policy-binding demo-proj --member={MEMBER} --role=roles/aiplatform.user --condition=None"
)


@dataclass(kw_only=True)
class Case:
    scenario: str
    cause: str
    status: int
    verdict: str
    permission: str = "none"
    remedy: str = ""  # a command or URL that must be among the remedies
    reason: str | None = None
    evidence: dict[str, str] = field(default_factory=dict)  # step → status
    before: Any = None  # a callable(canary) run before the call under test
    metrics_error: str | None = None  # when the canary's own identity cannot write metrics either


def _fault(status: dict[str, Any]) -> Any:
    def arm(canary: Canary) -> None:
        code, body = emulated.admin(
            canary.emulator,
            "POST",
            "faults",
            {"method": "google.cloud.aiplatform.v1.PredictionService.GenerateContent", "count": 1, "status": status},
        )
        assert code == 201, body

    return arm


def _warm_then_revoke(canary: Canary) -> None:
    assert canary.scheduler().status_code == 200  # the client now holds a token…
    canary.advance(61)  # …that the timeline revokes at +1m


CASES = [
    Case(scenario="healthy", cause="ok", status=200, verdict="healthy"),
    Case(
        scenario="iam_denied",
        cause="iam_permission_denied",
        status=502,
        verdict="denied",
        permission="aiplatform.endpoints.predict",
        remedy=GRANT,
        reason="IAM_PERMISSION_DENIED",
        evidence={"iam": "found", "audit_config": "found", "data_access": "pending", "admin_activity": "not_found"},
    ),
    Case(
        scenario="deny_policy",
        cause="iam_permission_denied",
        status=502,
        verdict="denied",
        permission="aiplatform.endpoints.predict",
        remedy="gcloud iam policies list --attachment-point=cloudresourcemanager.googleapis.com/projects/demo-proj "
        "--kind=denypolicies --format=json",
        reason="IAM_PERMISSION_DENIED",
        evidence={"iam": "found"},
    ),
    Case(
        scenario="api_disabled",
        cause="api_disabled",
        status=502,
        verdict="denied",
        permission="none",
        remedy="gcloud services enable aiplatform.googleapis.com --project=demo-proj",
        reason="SERVICE_DISABLED",
        evidence={"iam": "found", "admin_activity": "not_found"},
    ),
    Case(
        scenario="billing_disabled",
        cause="billing_disabled",
        status=502,
        verdict="denied",
        permission="none",
        remedy="gcloud billing projects link demo-proj --billing-account=BILLING_ACCOUNT_ID",
        reason="BILLING_DISABLED",
    ),
    Case(
        scenario="vpc_sc",
        cause="vpc_sc",
        status=502,
        verdict="denied",
        permission="none",
        remedy="https://console.cloud.google.com/security/service-perimeter/troubleshoot;uniqueId=",
        reason="SECURITY_POLICY_VIOLATED",
        evidence={"policy_denied": "pending"},
    ),
    Case(
        scenario="org_policy",
        cause="org_policy",
        status=502,
        verdict="denied",
        permission="none",
        remedy="gcloud org-policies describe vertexai.allowedModels --project=demo-proj --effective",
    ),
    Case(
        scenario="model_unavailable",
        cause="model_unavailable",
        status=502,
        verdict="denied",
        permission="none",
        remedy="https://cloud.google.com/vertex-ai/generative-ai/docs/learn/locations",
    ),
    Case(
        scenario="quota",
        cause="quota",
        status=502,
        verdict="degraded",
        permission="none",
        remedy="https://console.cloud.google.com/iam-admin/quotas?project=demo-proj&service=aiplatform.googleapis.com",
    ),
    Case(
        scenario="credentials_expired",
        cause="credentials",
        status=502,
        verdict="denied",
        permission="none",
        remedy=f"gcloud iam service-accounts describe {WORKLOAD} --project=demo-proj",
        reason="ACCESS_TOKEN_EXPIRED",
        before=_warm_then_revoke,
        metrics_error="not attempted: the canary's own credentials failed",
    ),
    Case(
        scenario="metadata_down",
        cause="credentials",
        status=502,
        verdict="denied",
        permission="none",
        remedy=f"gcloud iam service-accounts describe {WORKLOAD} --project=demo-proj",
        metrics_error="not attempted: the canary's own credentials failed",
    ),
    Case(
        scenario="healthy",
        cause="unavailable",
        status=502,
        verdict="degraded",
        permission="none",
        remedy="https://status.cloud.google.com/",
        before=_fault({"code": 14, "message": "The service is currently unavailable."}),
    ),
    Case(
        scenario="healthy",
        cause="unknown",
        status=502,
        verdict="denied",
        permission="none",
        before=_fault({"code": 10, "message": "The operation was aborted."}),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c.scenario}-{c.cause}" for c in CASES])
def test_each_cause_end_to_end(start_canary: StartCanary, case: Case) -> None:
    canary = start_canary(case.scenario)
    if case.before is not None:
        case.before(canary)
    response = canary.scheduler()
    body = response.get_json()

    assert response.status_code == case.status
    assert body["verdict"] == case.verdict
    [target] = body["targets"]
    assert target["target"] == TARGET
    assert target["cause"] == case.cause
    if case.cause == "ok":
        assert "error" not in target
        assert target["finish_reason"] == "MAX_TOKENS"
    else:
        assert target["error"]["cause"] == case.cause
        assert target["error"].get("reason") == case.reason
        assert target["error"].get("metadata", {}).get("permission", "none") == case.permission
        fixes = [r.get("command") or r.get("url") for r in target["remedies"]]
        assert any(case.remedy in fix for fix in fixes), fixes
        statuses = {i["step"]: i["status"] for i in body["evidence"]["items"]}
        for step, status in case.evidence.items():
            assert statuses.get(step) == status, body["evidence"]

    # The log line: one structured line per run, severity by verdict, stable message prefix, labels.
    log = canary.last_log
    assert log["run_id"] == body["run_id"]
    assert log["severity"] == {"healthy": "INFO", "degraded": "WARNING", "denied": "ERROR"}[case.verdict]
    word = {"healthy": "OK", "degraded": "DEGRADED", "denied": "DENIED"}[case.verdict]
    assert log["message"].startswith(f"gemini-canary {word}: ")
    assert log["logging.googleapis.com/labels"]["canary_verdict"] == case.verdict
    assert log["trigger"] == {"kind": "scheduler", "job": "gemini-canary", "schedule_time": "2026-11-26T09:05:00Z"}

    # The metrics, read back from Monitoring. Without credentials the canary cannot write them either: it says so.
    if case.metrics_error is not None:
        assert body["metrics"]["written"] is False
        assert body["metrics"]["skipped"].startswith(case.metrics_error), body["metrics"]
        assert log["metrics"] == body["metrics"]
        return
    assert body["metrics"]["written"] is True, body["metrics"]
    [failures] = canary.series("failures", cause=case.cause, target=TARGET)
    assert failures.points[0].value.int64_value == (0 if case.cause == "ok" else 1)
    assert dict(failures.metric.labels)["permission"] == case.permission
    assert dict(failures.resource.labels).keys() == {"project_id", "location", "namespace", "job", "task_id"}
    [success] = canary.series("success", target=TARGET)
    assert success.points[0].value.int64_value == (1 if case.cause == "ok" else 0)
    outcome = "healthy" if case.cause == "ok" else "failing"
    assert len(canary.series("runs", outcome=outcome)) == 1


def test_wrong_project(start_canary: StartCanary) -> None:
    """The runtime's project doesn't exist: CONSUMER_INVALID; metrics cannot go there either, and say so."""
    canary = start_canary("wrong_project")
    body = canary.scheduler().get_json()
    [target] = body["targets"]
    assert target["cause"] == "wrong_project"
    assert target["error"]["reason"] == "CONSUMER_INVALID"
    assert any(r.get("command") == "gcloud projects describe demo-prj-typo" for r in target["remedies"])
    assert body["metrics"]["written"] is False
    assert body["metrics"]["error"] == (
        "PermissionDenied: Permission monitoring.timeSeries.create denied (or the resource may not exist)."
    )
    assert "metrics" in canary.last_log
    assert canary.last_log["metrics"]["written"] is False


def test_a_later_run_finds_the_denial_and_the_change_that_caused_it(start_canary: StartCanary) -> None:
    """role_removed_at_t: the 09:10 removal by alice, found with who and when; the data_access entry once visible."""
    canary = start_canary("role_removed_at_t")
    assert canary.scheduler().status_code == 200
    canary.advance(10 * 60 + 30)
    first = canary.scheduler().get_json()
    assert first["targets"][0]["cause"] == "iam_permission_denied"
    change = first["evidence"]["change"]
    assert (change["kind"], change["actor"], change["role"]) == (
        "role_removed",
        "alice@example.com",
        "roles/aiplatform.user",
    )
    assert "removed from serviceAccount:" in first["targets"][0]["summary"]
    assert "roles/aiplatform.user removed by alice@example.com at " in first["summary"]
    canary.advance(10)  # past the ingestion lag
    second = canary.scheduler().get_json()
    items = {i["step"]: i for i in second["evidence"]["items"]}
    assert items["data_access"]["status"] == "found"
    assert items["data_access"]["data"]["principal"] == WORKLOAD
    assert items["data_access"]["data"]["permission"] == "aiplatform.endpoints.predict"
    assert items["data_access"]["data"]["method"] == "google.cloud.aiplatform.v1.PredictionService.GenerateContent"
    canary.advance(30 * 60)  # 09:40: alice restores the role
    assert canary.scheduler().get_json()["verdict"] == "healthy"


def test_vpc_sc_policy_entry_found_by_unique_id_on_a_later_run(start_canary: StartCanary) -> None:
    canary = start_canary("vpc_sc")
    first = canary.scheduler().get_json()
    uid = first["targets"][0]["error"]["metadata"]["uid"]
    assert any(uid in (r.get("url") or "") for r in first["targets"][0]["remedies"])
    canary.advance(10)
    second = canary.scheduler().get_json()
    items = {i["step"]: i for i in second["evidence"]["items"]}
    assert items["policy_denied"]["status"] == "found"
    assert items["policy_denied"]["data"]["violation_reason"] == "NO_MATCHING_ACCESS_LEVEL"
    assert items["policy_denied"]["data"]["perimeter"] == "accessPolicies/555555555555/servicePerimeters/ml_perimeter"
    assert any(
        r.get("command") == "gcloud access-context-manager perimeters describe ml_perimeter --policy=555555555555"
        for r in second["targets"][0]["remedies"]
    )


def test_several_targets_share_one_evidence_budget(start_canary: StartCanary) -> None:
    targets = "gemini-2.5-flash-lite@us-central1,gemini-2.5-flash@global,gemini-2.5-pro@europe-west4"
    canary = start_canary("iam_denied", CANARY_TARGETS=targets)
    body = canary.scheduler().get_json()
    assert [t["cause"] for t in body["targets"]] == ["iam_permission_denied"] * 3
    assert canary.calls("google.cloud.aiplatform.v1.PredictionService.GenerateContent") == 3
    assert canary.calls("google.cloud.resourcemanager.v3.Projects.TestIamPermissions") == 1
    assert canary.calls("google.logging.v2.LoggingServiceV2.ListLogEntries") <= 3
    assert canary.calls("google.monitoring.v3.MetricService.CreateTimeSeries") == 1
    assert body["metrics"]["series"] == 1 + 3 * 3


def test_a_subset_of_configured_targets(start_canary: StartCanary) -> None:
    canary = start_canary("healthy", CANARY_TARGETS="gemini-2.5-flash-lite@us-central1,gemini-2.5-pro@global")
    response = canary.call("GET", "/?targets=gemini-2.5-pro@global")
    assert response.status_code == 200
    assert [t["target"] for t in response.get_json()["targets"]] == ["gemini-2.5-pro@global"]


def test_healthy_run_calls(start_canary: StartCanary) -> None:
    canary = start_canary("healthy")
    assert canary.scheduler().status_code == 200
    assert dict(canary.emulator.world.calls) == {
        "google.cloud.aiplatform.v1.PredictionService.GenerateContent": 1,
        "google.monitoring.v3.MetricService.CreateTimeSeries": 1,
        "metadata.other": 2,  # google.auth's ping of the server, and instance/region (the metrics' location label)
        "metadata.project": 1,
        "metadata.service_account": 1,
        "metadata.token": 1,
    }
