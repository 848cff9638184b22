"""Which admin change explains a denial: only the removal of a role that grants aiplatform.endpoints.predict."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from google.cloud.logging_v2 import types as lt
from google.iam.v1 import policy_pb2
from google.protobuf import json_format

from function.audit_entries import change_of
from function.causes import Cause, Failure, constraint_of
from function.clients import Clients
from function.config import EVIDENCE_STEPS, Config, Target
from function.evidence import LIST_CALLS_PER_MINUTE, Item, data_read_on, gather
from function.probe import Outcome
from function.recorder import Deadline, Recorder
from tests.shared import WORKLOAD, WORKLOAD_MEMBER

SA = WORKLOAD


def entry(role: str, action: str = "REMOVE", member: str = f"serviceAccount:{SA}") -> lt.LogEntry:
    doc = {
        "logName": "projects/demo-proj/logs/cloudaudit.googleapis.com%2Factivity",
        "timestamp": "2026-11-26T09:10:00Z",
        "protoPayload": {
            "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
            "methodName": "SetIamPolicy",
            "authenticationInfo": {"principalEmail": "alice@example.com"},
            "serviceData": {
                "@type": "type.googleapis.com/google.iam.v1.logging.AuditData",
                "policyDelta": {"bindingDeltas": [{"action": action, "role": role, "member": member}]},
            },
        },
    }
    raw = lt.LogEntry.pb()()
    json_format.ParseDict(doc, raw)
    return lt.LogEntry.wrap(raw)


@pytest.mark.parametrize("role", ["roles/aiplatform.user", "roles/editor", "roles/owner", "roles/aiplatform.admin"])
def test_removing_a_predict_role_explains_it(role: str) -> None:
    change = change_of(entry(role), SA)
    assert change is not None
    assert (change.kind, change.actor, change.role, change.at) == (
        "role_removed",
        "alice@example.com",
        role,
        "2026-11-26T09:10:00Z",
    )


@pytest.mark.parametrize(
    ("role", "action", "member"),
    [
        ("roles/logging.viewer", "REMOVE", f"serviceAccount:{SA}"),
        ("roles/aiplatform.user", "ADD", f"serviceAccount:{SA}"),
        ("roles/aiplatform.user", "REMOVE", "serviceAccount:other@demo-proj.iam.gserviceaccount.com"),
    ],
    ids=["unrelated-role", "an-addition", "another-principal"],
)
def test_other_changes_do_not(role: str, action: str, member: str) -> None:
    assert change_of(entry(role, action, member), SA) is None


# Audit configs read as google/iam/v1/policy.proto defines them ---------------------------------------------------


def _policy(*configs: tuple[str, str, list[str]]) -> policy_pb2.Policy:
    policy = policy_pb2.Policy()
    for service, log_type, exempted in configs:
        policy.audit_configs.add(service=service).audit_log_configs.add(
            log_type=policy_pb2.AuditLogConfig.LogType.Value(log_type), exempted_members=exempted
        )
    return policy


SA_MEMBER = WORKLOAD_MEMBER


@pytest.mark.parametrize(
    ("configs", "on"),
    [
        pytest.param([("aiplatform.googleapis.com", "DATA_READ", [])], True, id="data-read"),
        pytest.param([("aiplatform.googleapis.com", "DATA_WRITE", [])], False, id="data-write-is-not-data-read"),
        pytest.param([("aiplatform.googleapis.com", "ADMIN_READ", [])], False, id="admin-read-is-not-data-read"),
        pytest.param([("allServices", "DATA_READ", [])], True, id="all-services"),
        pytest.param([("storage.googleapis.com", "DATA_READ", [])], False, id="another-service"),
        pytest.param([("aiplatform.googleapis.com", "DATA_READ", [SA_MEMBER])], False, id="exempted"),
        pytest.param(
            [("allServices", "DATA_READ", [SA_MEMBER]), ("aiplatform.googleapis.com", "DATA_READ", [])],
            False,
            id="exempted-in-all-services-is-exempted-for-the-service",  # the two configs are unioned
        ),
        pytest.param([], False, id="none"),
    ],
)
def test_data_read_on(configs: list[tuple[str, str, list[str]]], on: bool) -> None:
    assert data_read_on(_policy(*configs), SA_MEMBER) is on


# Admin changes Google records under other names than the canary once believed ------------------------------------


def activity(payload: dict[str, Any]) -> lt.LogEntry:
    doc = {
        "logName": "projects/demo-proj/logs/cloudaudit.googleapis.com%2Factivity",
        "timestamp": "2026-11-26T09:10:00Z",
        "protoPayload": {
            "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
            "authenticationInfo": {"principalEmail": "bob@example.com"},
            **payload,
        },
    }
    raw = lt.LogEntry.pb()()
    json_format.ParseDict(doc, raw)
    return lt.LogEntry.wrap(raw)


@pytest.mark.parametrize(
    ("payload", "kind", "detail"),
    [
        pytest.param(
            {
                "serviceName": "serviceusage.googleapis.com",
                "methodName": "google.api.serviceusage.v1beta1.ServiceUsage.DisableService",
                "resourceName": "projects/412345678901/services/aiplatform.googleapis.com",
            },
            "service_disabled",
            "aiplatform.googleapis.com disabled",
            id="disable-service-v1beta1",  # Service Usage's audit page lists v1 and v1beta1 methods
        ),
        pytest.param(
            {"serviceName": "cloudbilling.googleapis.com", "methodName": "DisableResourceBilling"},
            "billing_changed",
            "the project's billing changed (DisableResourceBilling)",
            id="billing-unlinked",  # Cloud Billing audit logging page: ADMIN_WRITE methods
        ),
        pytest.param(
            {
                "serviceName": "orgpolicy.googleapis.com",
                "methodName": "google.cloud.orgpolicy.v2.OrgPolicy.CreatePolicy",
                "resourceName": "projects/412345678901/policies/gcp.restrictServiceUsage",
            },
            "org_policy_changed",
            "organization policy gcp.restrictServiceUsage changed (CreatePolicy)",
            id="org-policy-v2-names-its-constraint",
        ),
        pytest.param(
            {
                "serviceName": "cloudresourcemanager.googleapis.com",
                "methodName": "SetOrgPolicy",
                "resourceName": "projects/demo-proj",
                "request": {"policy": {"constraint": "constraints/vertexai.allowedModels"}},
            },
            "org_policy_changed",
            "organization policy vertexai.allowedModels changed (SetOrgPolicy)",
            id="org-policy-v1",  # v1 is served, and audited, by cloudresourcemanager.googleapis.com
        ),
    ],
)
def test_admin_changes_google_records(payload: dict[str, Any], kind: str, detail: str) -> None:
    change = change_of(activity(payload), SA)
    assert change is not None
    assert (change.kind, change.detail, change.actor) == (kind, detail, "bob@example.com")


@pytest.mark.parametrize(
    ("failure", "constraint"),
    [
        pytest.param(
            Failure(Cause.ORG_POLICY, reason="RESOURCE_USAGE_RESTRICTION_VIOLATED"),
            "gcp.restrictServiceUsage",
            id="resource-usage-restriction",  # google/api/error_reason.proto
        ),
        pytest.param(
            Failure(
                Cause.ORG_POLICY,
                message="Organization Policy constraint constraints/vertexai.allowedModels violated for `projects/1`",
            ),
            "vertexai.allowedModels",
            id="named-in-the-message",
        ),
        pytest.param(
            Failure(Cause.ORG_POLICY, message="... constraints/vertexai.allowedPartnerModelFeatures."),
            "vertexai.allowedPartnerModelFeatures",
            id="another-constraint-trailing-period",
        ),
    ],
)
def test_constraint_of(failure: Failure, constraint: str) -> None:
    assert constraint_of(failure) == constraint


# Issue #10 item 4: a step never queried says so, and why; "pending" is kept for a look that found nothing yet --------

DENIED_OUTCOME = Outcome(
    Target("gemini-2.5-flash-lite", "us-central1"),
    Cause.IAM_PERMISSION_DENIED,
    12.0,
    failure=Failure(Cause.IAM_PERMISSION_DENIED, 403, "PERMISSION_DENIED", "IAM_PERMISSION_DENIED"),
)


def _gather(deadline_s: float, steps: frozenset[str], permit: Callable[[], bool] = lambda: True) -> dict[str, Item]:
    config = Config(evidence=steps, audit_lag_budget_s=20.0)
    evidence = gather(
        config, Clients(config), "demo-proj", SA, [DENIED_OUTCOME], Deadline(deadline_s), Recorder(), permit=permit
    )
    return {i.step: i for i in evidence.items}


def test_a_deadline_used_up_by_earlier_steps_is_not_called_pending() -> None:
    items = _gather(0.0, frozenset(EVIDENCE_STEPS))  # nothing left: no call is made (no client is even built)
    for step in ("data_access", "admin_activity"):
        assert items[step].status == "skipped", items[step]
        assert items[step].summary.startswith("not attempted: no time left"), items[step].summary
        assert "waited" not in items[step].summary


def test_an_instance_out_of_its_logging_allowance_says_so() -> None:
    items = _gather(30.0, frozenset({"data_access", "admin_activity"}), permit=lambda: False)
    for step in ("data_access", "admin_activity"):
        assert items[step].status == "skipped"
        assert f"made its {LIST_CALLS_PER_MINUTE} ListLogEntries of the last minute" in items[step].summary


def policy_denied(uid: str, at: str) -> lt.LogEntry:
    doc = {
        "logName": "projects/demo-proj/logs/cloudaudit.googleapis.com%2Fpolicy",
        "timestamp": at,
        "insertId": uid,
        "protoPayload": {
            "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
            "authenticationInfo": {"principalEmail": SA},
            "metadata": {
                "@type": "type.googleapis.com/google.cloud.audit.VpcServiceControlAuditMetadata",
                "vpcServiceControlsUniqueId": uid,
                "violationReason": "NO_MATCHING_ACCESS_LEVEL",
                "securityPolicyInfo": {"servicePerimeterName": "accessPolicies/1/servicePerimeters/p"},
            },
        },
    }
    raw = lt.LogEntry.pb()()
    json_format.ParseDict(doc, raw)
    return lt.LogEntry.wrap(raw)


def test_this_runs_own_policy_denied_entry_is_cited_even_when_another_is_newer() -> None:
    # The query returns the newest first; a denial of the same principal after this run's (another instance's run)
    # must not stand in for this run's own, whose unique id is known.
    from function.evidence import pick_policy_denied

    newer_other = policy_denied("other-run-uid", "2026-11-26T09:10:05Z")
    own = policy_denied("this-run-uid", "2026-11-26T09:10:00Z")
    assert pick_policy_denied([newer_other, own], ["this-run-uid"]) is own
    assert pick_policy_denied([newer_other], ["this-run-uid"]) is newer_other  # none of its own: the newest
    assert pick_policy_denied([], ["this-run-uid"]) is None
