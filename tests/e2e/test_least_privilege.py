"""With exactly the documented role set the diagnosis is complete; without each optional role it degrades as
documented; without a required one the failure is clear."""

from __future__ import annotations

from typing import Any

import pytest

from function.roles import OPTIONAL, REQUIRED
from tests.e2e.conftest import WORKLOAD, Canary, StartCanary

MEMBER = f"serviceAccount:{WORKLOAD}"


def _only(canary: Canary, roles: list[str]) -> None:
    """Give the workload exactly these roles (alice keeps owner)."""
    bindings: dict[str, Any] = {role: [] for role in (*REQUIRED, *OPTIONAL, "roles/logging.viewer")}
    bindings.update({role: [MEMBER] for role in roles})
    canary.patch({"projects": {"demo-proj": {"bindings": bindings}}})


def _diagnose(start_canary: StartCanary, roles: list[str]) -> dict[str, Any]:
    """role_removed_at_t past the removal, audit entries visible at once: the fullest diagnosis there is."""
    canary = start_canary("role_removed_at_t")
    _only(canary, ["roles/aiplatform.user", *roles])  # the timeline removes roles/aiplatform.user at +10m
    canary.patch({"logging": {"ingestion_lag_seconds": 0}})
    canary.advance(10 * 60 + 30)
    body: dict[str, Any] = canary.scheduler().get_json()
    return body


def _statuses(body: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    return {i["step"]: (i["status"], i.get("missing_permission")) for i in body["evidence"]["items"]}


def test_the_documented_set_is_the_healthy_scenarios_set() -> None:
    from emulator.core.scenario import load_document

    bindings = load_document("healthy")["projects"]["demo-proj"]["bindings"]
    held = sorted(role for role, members in bindings.items() if MEMBER in members)
    assert held == sorted((*REQUIRED, *OPTIONAL))


def test_with_the_full_set_the_diagnosis_is_complete(start_canary: StartCanary) -> None:
    body = _diagnose(start_canary, [*REQUIRED, *OPTIONAL])
    assert _statuses(body) == {
        "iam": ("found", None),
        "audit_config": ("found", None),
        "data_access": ("found", None),
        "admin_activity": ("found", None),
    }
    assert body["evidence"]["change"]["actor"] == "alice@example.com"
    assert body["metrics"]["written"] is True


@pytest.mark.parametrize(
    ("without", "expected"),
    [
        (
            "roles/logging.privateLogViewer",
            {
                "data_access": ("unavailable", "logging.privateLogEntries.list"),
                "admin_activity": ("unavailable", "logging.logEntries.list"),
            },
        ),
        (
            "roles/browser",
            {"audit_config": ("unavailable", "resourcemanager.projects.getIamPolicy"), "data_access": ("found", None)},
        ),
    ],
    ids=["no-private-log-viewer", "no-browser"],
)
def test_without_an_optional_role_the_diagnosis_degrades(
    start_canary: StartCanary, without: str, expected: dict[str, tuple[str, str | None]]
) -> None:
    roles = [r for r in (*REQUIRED, *OPTIONAL) if r != without]
    body = _diagnose(start_canary, roles)
    statuses = _statuses(body)
    for step, want in expected.items():
        assert statuses[step] == want
    assert body["targets"][0]["cause"] == "iam_permission_denied"  # the verdict itself never degrades
    assert body["metrics"]["written"] is True


def test_logging_viewer_instead_of_private_log_viewer(start_canary: StartCanary) -> None:
    roles = ["roles/monitoring.metricWriter", "roles/browser", "roles/logging.viewer"]
    statuses = _statuses(_diagnose(start_canary, roles))
    assert statuses["data_access"] == ("unavailable", "logging.privateLogEntries.list")
    assert statuses["admin_activity"] == ("found", None)


def test_without_the_required_metric_writer_the_error_is_clear(start_canary: StartCanary) -> None:
    canary = start_canary("healthy")
    _only(canary, ["roles/aiplatform.user", *OPTIONAL])
    body = canary.scheduler().get_json()
    assert body["verdict"] == "healthy"
    assert body["metrics"] == {
        "written": False,
        "series": 4,
        "error": "PermissionDenied: Permission monitoring.timeSeries.create denied (or the resource may not exist).",
    }
    assert canary.last_log["metrics"] == body["metrics"]


def test_audit_lag_pending_then_found(start_canary: StartCanary) -> None:
    """Ingestion lag 90 s, lag budget 20 s: this run says pending; a run after the lag finds the entry."""
    canary = start_canary("iam_denied", CANARY_AUDIT_LAG_BUDGET_SECONDS="20")
    canary.patch({"logging": {"ingestion_lag_seconds": 90}})
    first = canary.scheduler().get_json()
    assert first["evidence"]["pending"] is True
    assert _statuses(first)["data_access"] == ("pending", None)
    assert "audit evidence pending" in first["summary"]
    assert canary.calls("google.logging.v2.LoggingServiceV2.ListLogEntries") == 3  # 2 looks + activity
    canary.advance(90)
    second = canary.scheduler().get_json()
    assert _statuses(second)["data_access"] == ("found", None)
    assert second["evidence"]["pending"] is False


PERMISSION_EFFECTS = {
    # permission → (scenario, what changes when only that permission is taken away)
    "aiplatform.endpoints.predict": ("healthy", "cause"),
    "monitoring.timeSeries.create": ("healthy", "metrics"),
    "logging.logEntries.list": ("iam_denied", "admin_activity"),
    "logging.privateLogEntries.list": ("iam_denied", "data_access"),
    "resourcemanager.projects.getIamPolicy": ("iam_denied", "audit_config"),
}


def test_every_permission_of_the_set_is_listed() -> None:
    from function.roles import ROLES

    assert {p for r in ROLES for p in r.permissions} == set(PERMISSION_EFFECTS)


@pytest.mark.parametrize("permission", sorted(PERMISSION_EFFECTS))
def test_each_permission_is_needed(start_canary: StartCanary, permission: str) -> None:
    """Proven minimal: deny exactly one permission of the set (an IAM deny rule) and the outcome changes."""
    scenario, effect = PERMISSION_EFFECTS[permission]

    def run(deny: bool) -> dict[str, Any]:
        canary = start_canary(scenario)
        canary.patch({"logging": {"ingestion_lag_seconds": 0}})
        if deny:
            canary.patch({"deny": [{"principal": MEMBER, "permission": permission}]})
        body: dict[str, Any] = canary.scheduler().get_json()
        return body

    before, after = run(deny=False), run(deny=True)
    if effect == "cause":
        assert (before["targets"][0]["cause"], after["targets"][0]["cause"]) == ("ok", "iam_permission_denied")
    elif effect == "metrics":
        assert before["metrics"]["written"] is True
        assert after["metrics"]["written"] is False
        assert permission in after["metrics"]["error"]
    elif permission == "logging.privateLogEntries.list":
        # Logging leaves private entries out of the answer instead of refusing; TestIamPermissions (allow
        # policies only) still reports the permission, so the entry reads as pending. Documented in the README.
        assert _statuses(before)[effect] == ("found", None)
        assert _statuses(after)[effect] == ("pending", None)
    else:
        # iam_denied: the project's audit config is readable (found) and no admin change explains it (not_found)
        assert _statuses(before)[effect] == ({"audit_config": "found", "admin_activity": "not_found"}[effect], None)
        assert _statuses(after)[effect] == ("unavailable", permission)
