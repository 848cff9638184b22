"""Issue #15, item 4: paths no other test ran end to end, each through the real function against the emulator and
asserted where operators see them: the HTTP answer, the log line, and the time series read back with ListTimeSeries.

- the canary's own failure (`verdict: error`);
- several targets, one hanging past the run's deadline;
- a 429 whose only quota evidence is a `google.rpc.QuotaFailure` detail;
- the admin changes the evidence parser names that no other end-to-end test produced: a deny-policy change and an
  organization-policy change (role_removed, service_disabled and billing_changed are in test_causes_e2e.py and
  test_google_facts_e2e.py).
"""

from __future__ import annotations

import time
from typing import Any

from devkit import emulated
from tests.e2e.conftest import OWNER, WORKLOAD, Canary, StartCanary

GEN = "google.cloud.aiplatform.v1.PredictionService.GenerateContent"
WRITE = "google.monitoring.v3.MetricService.CreateTimeSeries"
LITE = "gemini-2.5-flash-lite@us-central1"
PRO = "gemini-2.5-pro@global"
FLASH = "gemini-2.5-flash@us-central1"
MEMBER = f"serviceAccount:{WORKLOAD}"


def _fault(canary: Canary, method: str, count: int, **spec: Any) -> None:
    status, body = emulated.admin(canary.emulator, "POST", "faults", {"method": method, "count": count, **spec})
    assert status == 201, body


def _action(canary: Canary, action: str, **params: Any) -> None:
    status, body = emulated.admin(canary.emulator, "POST", "actions", {"actor": OWNER, "action": action, **params})
    assert status == 200, body


def _labels(series: list[Any]) -> list[dict[str, str]]:
    return sorted((dict(s.metric.labels) for s in series), key=lambda d: sorted(d.items()))


def _values(series: list[Any]) -> list[int]:
    return [p.value.int64_value for s in series for p in s.points]


# The canary's own failure ----------------------------------------------------------------------------------------

OWN_FAILURE = (
    "cannot learn which project to probe: the runtime's metadata server's project/project-id answered HTTP 404: "
    "'Not Found'. This is the runtime's metadata server failing, not Gemini: the next run asks again (outside "
    "Google Cloud, where there is no metadata server, set CANARY_PROJECT)"
)


def test_the_canarys_own_failure_is_a_500_an_error_line_and_no_metric(start_canary: StartCanary) -> None:
    """The one failure of the canary itself that can be caused from outside: it cannot learn its project. (Every
    other failure after the project is known is classified into a cause, or caught by its step; `runs` with
    outcome=error is written only for an exception nothing anticipated.) With no project there is nowhere to write:
    no CreateTimeSeries is attempted, so no `runs` point at all, which is what the *silent* alert keys on (README,
    "Metrics" and "The log line"). The next run, with the metadata server answering again, writes `runs`
    outcome=healthy."""
    canary = start_canary("healthy")
    _fault(canary, "metadata.project_id", 2, http_status=404, http_body="Not Found")  # google.auth's, the canary's

    response = canary.scheduler()
    assert response.status_code == 500
    assert response.content_type == "application/json"
    body = response.get_json()
    assert (body["verdict"], body["error"]) == ("error", OWN_FAILURE)
    assert body["targets"] == []
    assert body["project"] is None
    assert body["metrics"] == {
        "written": False,
        "series": 0,
        "skipped": "not attempted: the canary does not know its project, so it has nowhere to write (this run is "
        "in its log line; the silent alert fires if no run can write for three schedule periods)",
    }
    log = canary.last_log
    assert log["run_id"] == body["run_id"]
    assert log["severity"] == "ERROR"
    # the message is the headline, under 200 characters: the error cut with an ellipsis, whole in `error`
    assert log["message"] == f"gemini-canary ERROR: {OWN_FAILURE}"[:198] + "…"
    assert log["logging.googleapis.com/labels"]["canary_verdict"] == "error"
    assert log["error"] == OWN_FAILURE
    assert (canary.calls(GEN), canary.calls(WRITE)) == (0, 0)
    assert canary.series("runs") == []  # read back from Monitoring: not a point, of any outcome

    second = canary.scheduler()
    assert (second.status_code, second.get_json()["verdict"]) == (200, "healthy")
    assert canary.last_log["severity"] == "INFO"
    assert canary.last_log["message"].startswith("gemini-canary OK:")
    runs = canary.series("runs")
    assert (_labels(runs), _values(runs)) == ([{"outcome": "healthy"}], [1])
    assert canary.series("runs", outcome="error") == []


# Several targets, one hanging ------------------------------------------------------------------------------------

DEADLINE_S = 5
# A bound on wall time, which is what is checked here: the hung call would take HANG_S; the run must end at its
# deadline. The margin covers the cold start (google.auth's token, the clients' channels) and the metrics write
# on a loaded two-core CI runner, and stays far below HANG_S, so a run that waited for the hang still fails.
HANG_S = 60
MARGIN_S = 10


def test_a_target_hanging_past_the_deadline_is_deadline_and_the_others_are_reported(
    start_canary: StartCanary,
) -> None:
    targets = [LITE, PRO, FLASH]
    canary = start_canary("healthy", CANARY_TARGETS=",".join(targets), CANARY_DEADLINE_SECONDS=str(DEADLINE_S))
    _fault(canary, GEN, 1, hang_seconds=HANG_S)  # whichever call arrives first hangs; the other two are answered

    started = time.monotonic()
    response = canary.scheduler()
    elapsed = time.monotonic() - started
    assert elapsed < DEADLINE_S + MARGIN_S, f"the run took {elapsed:.1f} s"

    body = response.get_json()
    assert (response.status_code, body["verdict"]) == (502, "degraded")
    assert [t["target"] for t in body["targets"]] == targets  # every target reported, in the configured order
    hung = [t for t in body["targets"] if t["cause"] != "ok"]
    answered = [t for t in body["targets"] if t["cause"] == "ok"]
    assert len(hung) == 1, body["targets"]
    [late] = hung
    assert late["cause"] == "deadline"
    assert late["error"]["status"] == "DEADLINE_EXCEEDED"
    assert [r["url"] for r in late["remedies"]] == ["https://status.cloud.google.com/"]
    assert len(answered) == 2
    assert all(t["finish_reason"] == "MAX_TOKENS" and "error" not in t for t in answered), answered
    assert canary.calls(GEN) == 3

    log = canary.last_log
    assert log["run_id"] == body["run_id"]
    assert log["severity"] == "WARNING"
    assert log["message"].startswith(f"gemini-canary DEGRADED: deadline ({late['target']}) as ")
    assert log["targets"] == body["targets"]

    # The metrics carry all three: the hung target's failure, the others' success. The probes end before the run's
    # deadline (run.report_reserve), so the write keeps its reserve even though a call hung to the end.
    assert body["metrics"]["written"] is True, body["metrics"]
    failures = canary.series("failures")
    by_target = {s.metric.labels["target"]: s for s in failures}
    assert set(by_target) == set(targets)
    assert by_target[late["target"]].metric.labels["cause"] == "deadline"
    assert _values([by_target[late["target"]]]) == [1]
    for target in answered:
        assert by_target[target["target"]].metric.labels["cause"] == "ok"
    success = {s.metric.labels["target"]: _values([s]) for s in canary.series("success")}
    assert success == {t: [0 if t == late["target"] else 1] for t in targets}
    assert _labels(canary.series("runs")) == [{"outcome": "failing"}]


# QuotaFailure ------------------------------------------------------------------------------------------------------

QUOTA_FAILURE = {
    "code": 8,
    # Google's generic wording, which on its own is the shared pool running short (capacity): only the detail says a
    # quota the project owns was exceeded.
    "message": "Resource has been exhausted (e.g. check quota).",
    "details": [
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [
                {
                    "subject": "projects/412345678901",
                    "description": "Quota exceeded for quota metric 'Generate content requests' and limit "
                    "'Generate content requests per minute per project per base model'",
                }
            ],
        }
    ],
}


def test_a_quota_failure_detail_makes_the_429_quota_and_its_violations_reach_the_result(
    start_canary: StartCanary,
) -> None:
    canary = start_canary("healthy")
    _fault(canary, GEN, 1, status=QUOTA_FAILURE)

    response = canary.call("GET", "/?debug=true")
    body = response.get_json()
    assert (response.status_code, body["verdict"]) == (502, "degraded")
    [target] = body["targets"]
    assert target["cause"] == "quota"  # not capacity: the detail names the project's own quota
    violations = QUOTA_FAILURE["details"][0]["violations"]  # type: ignore[index]
    assert target["error"]["violations"] == violations
    assert target["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert target["error"]["code"] == 429
    assert target["remedies"][0]["url"] == (
        "https://console.cloud.google.com/iam-admin/quotas?project=demo-proj&service=aiplatform.googleapis.com"
    )
    assert "evidence" not in body or not body["evidence"].get("items"), body.get("evidence")  # IAM explains no 429

    log = canary.last_log
    assert log["severity"] == "WARNING"
    assert log["message"].startswith(f"gemini-canary DEGRADED: quota ({LITE}) as ")
    assert log["targets"][0]["error"]["violations"] == violations
    [failure] = canary.series("failures", cause="quota")
    assert failure.metric.labels["target"] == LITE
    assert _values([failure]) == [1]


# Admin changes ---------------------------------------------------------------------------------------------------


def test_a_deny_policy_change_on_the_project_is_found_with_who_and_when(start_canary: StartCanary) -> None:
    """The role is still granted; alice attaches a deny policy to the project: "granted, yet denied", and the
    evidence names her IAM v2 CreatePolicy as the change."""
    canary = start_canary("data_access_on")
    _action(
        canary,
        "add_deny",
        principal=MEMBER,
        permission="aiplatform.endpoints.predict",
        attached_to="projects/demo-proj",
    )
    changed_at = canary.emulator.world.clock.now()
    canary.advance(60)  # past the Admin Activity log's ingestion lag (3 s in the scenario)

    body = canary.scheduler().get_json()
    [target] = body["targets"]
    assert target["cause"] == "iam_permission_denied"
    assert body["evidence"]["predict_granted"] is True
    change = body["evidence"]["change"]
    assert (change["kind"], change["actor"], change["detail"]) == (
        "deny_policy",
        OWNER,
        "an IAM deny policy changed",
    )
    assert change["at"] == changed_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    activity = next(i for i in body["evidence"]["items"] if i["step"] == "admin_activity")
    assert activity["status"] == "found"
    assert activity["summary"] == f"an IAM deny policy changed by {OWNER} at {change['at']}"
    commands = [r.get("command", "") for r in target["remedies"]]
    assert not any("add-iam-policy-binding" in c for c in commands)  # granted already: no grant offered
    assert canary.last_log["evidence"]["change"] == change


def test_an_org_policy_change_on_the_project_is_found_with_who_and_when(start_canary: StartCanary) -> None:
    """alice allows only gemini-2.5-pro on the project: the workload's model is refused, and the evidence names her
    orgpolicy v2 CreatePolicy on vertexai.allowedModels."""
    canary = start_canary("healthy")
    _action(
        canary,
        "set_allowed_models",
        models=["publishers/google/models/gemini-2.5-pro:predict"],
    )
    changed_at = canary.emulator.world.clock.now()
    canary.advance(60)

    body = canary.scheduler().get_json()
    [target] = body["targets"]
    assert target["cause"] == "org_policy"
    change = body["evidence"]["change"]
    assert (change["kind"], change["actor"], change["detail"]) == (
        "org_policy_changed",
        OWNER,
        "organization policy vertexai.allowedModels changed (CreatePolicy)",
    )
    assert change["at"] == changed_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    commands = [r.get("command", "") for r in target["remedies"]]
    assert "gcloud org-policies describe vertexai.allowedModels --project=demo-proj --effective" in commands
    assert canary.last_log["evidence"]["change"] == change
