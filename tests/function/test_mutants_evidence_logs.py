"""How the canary reads Cloud Audit Log entries (function/evidence.py): the facts of a denial, of a Policy Denied
entry and of an admin change, when a field Google may leave out is missing, and what each denial step says when its
query found nothing, failed, or was never made.

Entries are real LogEntry messages built from proto3 JSON, as ListLogEntries returns them (proto-plus wrappers).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from google.api_core import exceptions as core
from google.cloud.logging_v2 import types as lt
from google.protobuf import json_format

from devkit.emulated import admin
from emulator.server import Emulator
from function import evidence as evidence_module
from function.audit_entries import change_of, denial_facts, policy_facts, when
from function.causes import Cause, Failure, constraint_of
from function.clients import Clients
from function.config import Config
from function.evidence import Evidence, Item, Step, _Context, _denials, _Look, _read_denials, gather
from function.filters import activity_filter, member, since
from function.probe import Outcome, probe
from function.recorder import Deadline, Recorder

P = "demo-proj"
SA = f"canary-workload@{P}.iam.gserviceaccount.com"
AT = "2026-11-26T09:10:00Z"
AUDIT = "type.googleapis.com/google.cloud.audit.AuditLog"
UID = "vQeeOpy3XGe3WLNxUJ1CCZJqkPNp_5Yr9FB-1jgbyWTyxaJ_wTcP0A"


def log_entry(log: str, payload: dict[str, Any] | None, timestamp: str | None = AT) -> lt.LogEntry:
    doc: dict[str, Any] = {"logName": f"projects/{P}/logs/cloudaudit.googleapis.com%2F{log}", "insertId": "i-1"}
    if timestamp is not None:
        doc["timestamp"] = timestamp
    if payload is not None:
        doc["protoPayload"] = {"@type": AUDIT, **payload}
    raw = lt.LogEntry.pb()()
    json_format.ParseDict(doc, raw)
    return lt.LogEntry.wrap(raw)


def activity(payload: dict[str, Any], timestamp: str | None = AT) -> lt.LogEntry:
    return log_entry("activity", {"authenticationInfo": {"principalEmail": "bob@example.com"}, **payload}, timestamp)


def change_json(payload: dict[str, Any]) -> dict[str, Any] | None:
    change = change_of(activity(payload), SA)
    return None if change is None else change.to_json()


# --- admin changes --------------------------------------------------------------------------------------------


def test_a_deny_policy_change_is_named_with_who_and_when() -> None:
    # iam.googleapis.com's v2 Policies API, as the emulator audits CreatePolicy of a deny policy
    assert change_json(
        {
            "serviceName": "iam.googleapis.com",
            "methodName": "google.iam.v2.Policies.CreatePolicy",
            "resourceName": f"policies/cloudresourcemanager.googleapis.com%2Fprojects%2F{P}/denypolicies/d",
        }
    ) == {"kind": "deny_policy", "actor": "bob@example.com", "at": AT, "detail": "an IAM deny policy changed"}


def test_a_change_of_another_service_explains_nothing() -> None:
    assert change_json({"serviceName": "storage.googleapis.com", "methodName": "storage.buckets.delete"}) is None


def test_an_actor_google_left_out_is_unknown() -> None:
    no_email = log_entry("activity", {"serviceName": "iam.googleapis.com", "authenticationInfo": {}})
    no_info = log_entry("activity", {"serviceName": "iam.googleapis.com"})
    for entry in (no_email, no_info):
        change = change_of(entry, SA)
        assert change is not None
        assert (change.kind, change.actor) == ("deny_policy", "(unknown)")


def test_billing_and_org_policy_changes_name_the_last_part_of_a_dotted_method_and_the_time() -> None:
    assert change_json(
        {
            "serviceName": "cloudbilling.googleapis.com",
            "methodName": "google.cloud.billing.v1.CloudBilling.DisableResourceBilling",
        }
    ) == {
        "kind": "billing_changed",
        "actor": "bob@example.com",
        "at": AT,
        "detail": "the project's billing changed (DisableResourceBilling)",
    }
    assert change_json(
        {
            "serviceName": "orgpolicy.googleapis.com",
            "methodName": "google.cloud.orgpolicy.v2.OrgPolicy.UpdatePolicy",
            "resourceName": "projects/412345678901/policies/vertexai.allowedModels",
        }
    ) == {
        "kind": "org_policy_changed",
        "actor": "bob@example.com",
        "at": AT,
        "detail": "organization policy vertexai.allowedModels changed (UpdatePolicy)",
    }


def test_a_method_google_left_out_leaves_the_parentheses_empty() -> None:
    assert change_json({"serviceName": "cloudbilling.googleapis.com"}) == {
        "kind": "billing_changed",
        "actor": "bob@example.com",
        "at": AT,
        "detail": "the project's billing changed ()",
    }
    assert change_json(
        {"serviceName": "orgpolicy.googleapis.com", "resourceName": "folders/7/policies/gcp.restrictServiceUsage"}
    ) == {
        "kind": "org_policy_changed",
        "actor": "bob@example.com",
        "at": AT,
        "detail": "organization policy gcp.restrictServiceUsage changed ()",
    }


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"methodName": "SetOrgPolicy", "resourceName": "projects/demo-proj"}, id="no-request"),
        pytest.param({"methodName": "SetOrgPolicy", "request": {}}, id="no-policy-in-the-request"),
        pytest.param({"methodName": "ClearOrgPolicy", "request": {"policy": {}}}, id="no-constraint-in-the-policy"),
    ],
)
def test_a_v1_org_policy_change_without_its_constraint_says_so(payload: dict[str, Any]) -> None:
    change = change_json({"serviceName": "cloudresourcemanager.googleapis.com", **payload})
    assert change == {
        "kind": "org_policy_changed",
        "actor": "bob@example.com",
        "at": AT,
        "detail": f"organization policy (constraint not recorded) changed ({payload['methodName']})",
    }


def test_a_v1_constraint_without_its_prefix_is_named_whole() -> None:
    change = change_json(
        {
            "serviceName": "cloudresourcemanager.googleapis.com",
            "methodName": "SetOrgPolicy",
            "request": {"policy": {"constraint": "vertexai.allowedModels"}},
        }
    )
    assert change is not None
    assert change["detail"] == "organization policy vertexai.allowedModels changed (SetOrgPolicy)"


def test_the_constraint_is_what_follows_the_last_policies_segment() -> None:
    change = change_json(
        {
            "serviceName": "orgpolicy.googleapis.com",
            "methodName": "DeletePolicy",
            "resourceName": "organizations/1/policies/custom.a/policies/custom.b",
        }
    )
    assert change is not None
    assert change["detail"] == "organization policy custom.b changed (DeletePolicy)"


@pytest.mark.parametrize(
    "service_data",
    [
        pytest.param(None, id="no-service-data"),
        pytest.param({"@type": "type.googleapis.com/google.iam.v1.logging.AuditData"}, id="no-policy-delta"),
        pytest.param(
            {
                "@type": "type.googleapis.com/google.iam.v1.logging.AuditData",
                "policyDelta": {
                    "auditConfigDeltas": [
                        {"action": "REMOVE", "service": "aiplatform.googleapis.com", "logType": "DATA_READ"}
                    ]
                },
            },
            id="audit-config-delta-only",
        ),
    ],
)
def test_a_set_iam_policy_without_binding_deltas_explains_nothing(service_data: dict[str, Any] | None) -> None:
    payload: dict[str, Any] = {"serviceName": "cloudresourcemanager.googleapis.com", "methodName": "SetIamPolicy"}
    if service_data is not None:
        payload["serviceData"] = service_data
    assert change_json(payload) is None


def test_a_users_role_removal_is_matched_as_a_user_member() -> None:
    alice = "alice@example.com"
    entry = activity(
        {
            "methodName": "SetIamPolicy",
            "serviceData": {
                "@type": "type.googleapis.com/google.iam.v1.logging.AuditData",
                "policyDelta": {
                    "bindingDeltas": [{"action": "REMOVE", "role": "roles/aiplatform.user", "member": f"user:{alice}"}]
                },
            },
        }
    )
    change = change_of(entry, alice)
    assert change is not None
    assert change.detail == "roles/aiplatform.user removed from user:alice@example.com"
    assert change_of(entry, SA) is None


def test_member_prefixes() -> None:
    assert member("alice@example.com") == "user:alice@example.com"
    assert member(SA) == f"serviceAccount:{SA}"
    assert member("SERVICE_ACCOUNT_EMAIL") == "serviceAccount:SERVICE_ACCOUNT_EMAIL"  # the remedies' placeholder


def test_a_constraint_ending_in_x_keeps_its_last_letter() -> None:
    failure = Failure(Cause.ORG_POLICY, message="violates constraints/custom.denyX.")
    assert constraint_of(failure) == "custom.denyX"


# --- timestamps -----------------------------------------------------------------------------------------------


@pytest.fixture
def far_time_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The host's local time zone set to one far from UTC, restored afterwards."""
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("far_time_zone")
def test_an_entrys_time_is_utc_whatever_the_hosts_time_zone() -> None:
    assert datetime(2026, 1, 1, tzinfo=UTC).astimezone().utcoffset() != UTC.utcoffset(None)  # the zone took
    assert when(activity({}, timestamp="2026-11-26T09:10:00.123456Z")) == "2026-11-26T09:10:00Z"


def test_an_entry_without_a_time_has_an_empty_one() -> None:
    assert when(activity({}, timestamp=None)) == ""


# --- the facts of a denial and of a Policy Denied entry ----------------------------------------------------------


def test_the_facts_of_a_data_access_entry_google_left_bare() -> None:
    assert denial_facts(log_entry("data_access", {}, timestamp=None)) == {
        "timestamp": "",
        "principal": "(redacted)",
        "permission": "",
        "resource": "",
        "method": "",
        "status": 0,
        "insert_id": "i-1",
    }


def test_a_redacted_caller_and_a_resource_named_only_on_the_payload() -> None:
    model = f"projects/{P}/locations/us-central1/publishers/google/models/gemini-2.5-flash"
    entry = log_entry(
        "data_access",
        {
            "authenticationInfo": {},
            "resourceName": model,
            "authorizationInfo": [{"permission": "aiplatform.endpoints.predict"}],
            "status": {"code": 7},
        },
    )
    assert denial_facts(entry) == {
        "timestamp": AT,
        "principal": "(redacted)",
        "permission": "aiplatform.endpoints.predict",
        "resource": model,
        "method": "",
        "status": 7,
        "insert_id": "i-1",
    }


def test_the_authorization_resource_comes_before_the_payloads() -> None:
    entry = log_entry(
        "data_access",
        {"resourceName": "projects/demo-proj", "authorizationInfo": [{"resource": "projects/demo-proj/x"}]},
    )
    assert denial_facts(entry)["resource"] == "projects/demo-proj/x"


def test_the_facts_of_a_policy_denied_entry_google_left_bare() -> None:
    expected = {
        "timestamp": AT,
        "unique_id": "",
        "violation_reason": "",
        "perimeter": "",
        "insert_id": "i-1",
        "caller_network": "",
        "network_detail": "",
    }
    assert policy_facts(log_entry("policy", {})) == expected
    metadata = {"@type": "type.googleapis.com/google.cloud.audit.VpcServiceControlAuditMetadata"}
    assert policy_facts(log_entry("policy", {"metadata": metadata})) == expected


# --- what each denial step says --------------------------------------------------------------------------------

LOOKBACK_TEXT = "60 min"


def context(steps: frozenset[str] = frozenset({"data_access", "policy_denied"}), seconds: float = 30.0) -> _Context:
    config = Config(evidence=steps, audit_lag_budget_s=0.0)
    return _Context(config, Clients(config), P, SA, Deadline(seconds), Recorder(), lambda: True)


def data_access_entry() -> lt.LogEntry:
    return log_entry(
        "data_access",
        {
            "authenticationInfo": {"principalEmail": SA},
            "methodName": "google.cloud.aiplatform.v1.PredictionService.GenerateContent",
            "authorizationInfo": [{"permission": "aiplatform.endpoints.predict", "resource": "projects/demo-proj"}],
            "status": {"code": 7},
        },
    )


def policy_entry() -> lt.LogEntry:
    return log_entry(
        "policy",
        {
            "metadata": {
                "@type": "type.googleapis.com/google.cloud.audit.VpcServiceControlAuditMetadata",
                "vpcServiceControlsUniqueId": UID,
                "violationReason": "NO_MATCHING_ACCESS_LEVEL",
                "securityPolicyInfo": {"servicePerimeterName": "accessPolicies/1/servicePerimeters/p"},
            }
        },
    )


POLICY_FOUND = Item(
    "policy_denied",
    "found",
    "VPC Service Controls refused the call (NO_MATCHING_ACCESS_LEVEL) at perimeter "
    "accessPolicies/1/servicePerimeters/p",
    data={
        "timestamp": AT,
        "unique_id": UID,
        "violation_reason": "NO_MATCHING_ACCESS_LEVEL",
        "perimeter": "accessPolicies/1/servicePerimeters/p",
        "insert_id": "i-1",
        "caller_network": "",
        "network_detail": "",  # no ingressViolations: the entry does not say the source decided
    },
)


def read(
    look: _Look,
    want_data: bool = True,
    want_policy: bool = True,
    data_read_on: bool | None = None,
    audit_config: bool = False,
) -> Evidence:
    evidence = Evidence(data_read_on=data_read_on)
    if audit_config:
        evidence.items.append(Item("audit_config", "found", "(read)"))
    _read_denials(context(), evidence, look, want_data, want_policy, [UID])
    return evidence


def pending(step: Step, looked: str, waited: str) -> Item:
    return Item(
        step,
        "pending",
        f"audit evidence pending: no {step.replace('_', ' ')} entry yet within the last {LOOKBACK_TEXT} (audit "
        f"entries can take minutes to arrive; this run looked {looked} and waited {waited}); a later run finds it "
        "within the look-back window",
    )


def test_nothing_found_yet_is_pending_and_says_how_often_it_looked_and_how_long_it_waited() -> None:
    once = read(_Look(made=1), data_read_on=True)
    assert once.items == [pending("data_access", "1 time", "0 s"), pending("policy_denied", "1 time", "0 s")]
    assert once.pending is True
    twice = read(_Look(made=2, waited=3.4), want_data=False)
    assert twice.items == [pending("policy_denied", "2 times", "3 s")]
    assert twice.pending is True


def test_a_policy_denied_step_is_pending_even_when_data_access_logs_are_off_or_unknown() -> None:
    assert read(_Look(made=1), want_data=False, data_read_on=False).items == [pending("policy_denied", "1 time", "0 s")]
    assert read(_Look(made=1), want_data=False, data_read_on=None, audit_config=True).items[1:] == [
        pending("policy_denied", "1 time", "0 s")
    ]


def test_a_policy_denied_entry_is_cited_whatever_is_known_of_data_access_logs() -> None:
    for data_read_on in (False, None):
        evidence = read(
            _Look(made=1, entries=[policy_entry()]), want_data=False, data_read_on=data_read_on, audit_config=True
        )
        assert evidence.items[1:] == [POLICY_FOUND]
        assert evidence.pending is False


NOT_FOUND = Item(
    "data_access",
    "not_found",
    f"no data_access entry within the last {LOOKBACK_TEXT}. Data Access audit logs are not enabled on "
    f"projects/{P}; if they are not enabled on a folder or the organization either, Google did not record the denial "
    "(no entry does NOT mean the call was allowed); if they are, the entry may still be on its way and a later run "
    "finds it",
)


def test_no_entry_while_logs_are_off_in_the_project_and_unknown_above_it_is_not_found() -> None:
    evidence = read(_Look(made=1), want_policy=False, data_read_on=None, audit_config=True)
    assert evidence.items[1:] == [NOT_FOUND]
    assert evidence.pending is False


def test_no_entry_without_an_audit_config_read_is_pending() -> None:
    evidence = read(_Look(made=1), want_policy=False, data_read_on=None)
    assert evidence.items == [pending("data_access", "1 time", "0 s")]


def test_a_data_access_entry_is_cited_whatever_is_known_of_data_access_logs() -> None:
    evidence = read(_Look(made=1, entries=[data_access_entry()]), want_policy=False, audit_config=True)
    assert [(i.step, i.status) for i in evidence.items] == [("audit_config", "found"), ("data_access", "found")]
    assert evidence.denial is not None
    assert evidence.denial["principal"] == SA


def test_a_refused_query_names_the_permission_each_step_needs() -> None:
    evidence = read(_Look(made=1, error=core.PermissionDenied("no logs for you")), data_read_on=True)
    assert evidence.items == [
        Item(
            "data_access",
            "unavailable",
            "the canary may not read this: no logs for you",
            "logging.privateLogEntries.list",
        ),
        Item(
            "policy_denied", "unavailable", "the canary may not read this: no logs for you", "logging.logEntries.list"
        ),
    ]
    assert evidence.pending is False


def test_a_failed_query_is_an_error_of_each_step() -> None:
    evidence = read(_Look(made=1, error=core.InternalServerError("boom")))
    assert evidence.items == [
        Item("data_access", "error", "InternalServerError 500: boom"),
        Item("policy_denied", "error", "InternalServerError 500: boom"),
    ]


# --- which steps the denial query serves ------------------------------------------------------------------------


def test_only_a_vpc_sc_failures_unique_id_asks_for_a_policy_denied_entry() -> None:
    evidence = Evidence()
    failure = Failure(Cause.IAM_PERMISSION_DENIED, 403, metadata={"uid": UID})
    _denials(context(frozenset({"policy_denied"}), 0.0), evidence, [failure], {failure.cause}, datetime.now(UTC), _no)
    assert (evidence.items, evidence.logs_query) == ([], None)


def test_a_policy_denied_step_the_canary_may_not_read_says_which_permission_it_lacks() -> None:
    evidence = Evidence(own_permissions={"logging.privateLogEntries.list"})
    failure = Failure(Cause.VPC_SC, 403, metadata={"uid": UID})
    _denials(context(frozenset({"policy_denied"}), 0.0), evidence, [failure], {failure.cause}, datetime.now(UTC), _no)
    assert evidence.items == [
        Item("policy_denied", "unavailable", "the canary cannot read audit logs", "logging.logEntries.list")
    ]
    assert evidence.logs_query is None


def _no(seconds: float) -> None:
    raise AssertionError(f"no wait expected, got {seconds}")


# --- the denial query against the emulator: waiting for the ingestion lag, and the calls it makes ---------------
#
# The canary's own call is denied in a world with Data Access logs on, so the emulator writes its data_access entry,
# visible only after the world's ingestion lag. Waiting is the canary's own seam: `sleep` advances the emulator's
# clock, the module's monotonic clock stands still and the run's deadline has a set number of seconds left, so the
# seconds waited are exact.

LIST_LOG_ENTRIES = "google.logging.v2.LoggingServiceV2.ListLogEntries"


class Left(Deadline):
    """A run's deadline with a set number of seconds left."""

    def __init__(self, left: float) -> None:
        super().__init__(30.0)
        self.left = left

    def remaining(self) -> float:
        return self.left

    def timeout(self, cap: float | None = None) -> float:
        return 10.0


@pytest.fixture
def still(monkeypatch: pytest.MonkeyPatch) -> None:
    """The module's monotonic clock stands still: the lag budget ends exactly `audit_lag_budget_s` after the look."""
    monkeypatch.setattr(evidence_module, "time", SimpleNamespace(monotonic=lambda: 1000.0))


@pytest.fixture
def denied(still: None) -> Iterator[Callable[[float], tuple[Emulator, Outcome]]]:
    """denied(lag) → an emulator on a running clock whose canary was just refused GenerateContent (its
    roles/aiplatform.user removed, Data Access logs on), the data_access entry `lag` seconds from visible."""
    port = int(os.environ["GCE_METADATA_HOST"].rsplit(":", 1)[1])
    started: list[Emulator] = []

    def start(lag: float) -> tuple[Emulator, Outcome]:
        emulator = Emulator("data_access_on", metadata_port=port, clock_mode="running").start()
        started.append(emulator)
        assert admin(emulator, "PATCH", "world", {"logging": {"ingestion_lag_seconds": lag}})[0] == 200
        remove = {"actor": "alice@example.com", "action": "remove_binding", "role": "roles/aiplatform.user"}
        assert admin(emulator, "POST", "actions", {**remove, "member": f"serviceAccount:{SA}"})[0] == 200
        config = Config(emulator=emulator.grpc.address)
        outcome = probe(config.targets[0], P, Clients(config), Deadline(10.0), Recorder())
        assert outcome.cause == Cause.IAM_PERMISSION_DENIED
        return emulator, outcome

    yield start
    for emulator in started:
        emulator.stop()


@dataclass
class Gathered:
    evidence: Evidence
    calls: list[str]
    sleeps: list[float]

    def item(self, step: Step) -> Item:
        found = self.evidence.item(step)
        assert found is not None, self.evidence.items
        return found


def gathered(
    emulator: Emulator,
    outcome: Outcome,
    steps: set[str],
    budget: float = 20.0,
    left: float = 30.0,
) -> Gathered:
    config = Config(emulator=emulator.grpc.address, evidence=frozenset(steps), audit_lag_budget_s=budget)
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        assert admin(emulator, "POST", "clock", {"advance_seconds": seconds})[0] == 200

    recorder = Recorder()
    evidence = gather(config, Clients(config), P, SA, [outcome], Left(left), recorder, sleep=sleep)
    calls = [c["method"] for c in recorder.calls if c["method"].startswith("logging.")]
    return Gathered(evidence, calls, sleeps)


DENIAL = "logging.ListLogEntries(denial)"


def test_the_canarys_own_denial_is_waited_for_once_then_found(denied: Callable[..., tuple[Emulator, Outcome]]) -> None:
    got = gathered(*denied(10.0), {"data_access"})
    assert (got.calls, got.sleeps) == ([DENIAL, DENIAL], [20.0])
    item = got.item("data_access")
    assert (item.status, item.data["principal"]) == ("found", SA)


def test_a_denial_found_at_the_first_look_is_not_waited_for(denied: Callable[..., tuple[Emulator, Outcome]]) -> None:
    got = gathered(*denied(0.0), {"data_access"})
    assert (got.calls, got.sleeps) == ([DENIAL], [])
    assert got.item("data_access").status == "found"


def test_the_admin_activity_step_leaves_the_denial_its_two_looks(
    denied: Callable[..., tuple[Emulator, Outcome]],
) -> None:
    got = gathered(*denied(10.0), {"data_access", "admin_activity"})
    assert (got.calls, got.sleeps) == ([DENIAL, DENIAL, "logging.ListLogEntries(activity)"], [20.0])
    assert got.item("data_access").status == "found"


def test_logs_known_on_are_waited_for(denied: Callable[..., tuple[Emulator, Outcome]]) -> None:
    got = gathered(*denied(10.0), {"data_access", "audit_config"})
    assert got.evidence.data_read_on is True
    assert (got.calls, got.sleeps) == ([DENIAL, DENIAL], [20.0])
    assert got.item("data_access").status == "found"


def test_logs_not_known_on_get_one_look(denied: Callable[..., tuple[Emulator, Outcome]]) -> None:
    emulator, outcome = denied(10.0)
    # the project's audit config off for Vertex AI: on nowhere the canary can see
    off = {"actor": "alice@example.com", "action": "set_audit_logs", "log_types": []}
    assert admin(emulator, "POST", "actions", off)[0] == 200
    got = gathered(emulator, outcome, {"data_access", "audit_config"})
    assert got.evidence.data_read_on is not True
    assert (got.calls, got.sleeps) == ([DENIAL], [])


def test_a_denial_later_than_the_lag_budget_is_pending_after_two_looks(
    denied: Callable[..., tuple[Emulator, Outcome]],
) -> None:
    got = gathered(*denied(100.0), {"data_access"})
    assert (got.calls, got.sleeps) == ([DENIAL, DENIAL], [20.0])
    assert got.item("data_access") == pending("data_access", "2 times", "20 s")


@pytest.mark.parametrize(
    ("left", "slept"),
    [
        pytest.param(10.0, 9.0, id="the-deadline-less-two-call-minimums"),
        pytest.param(1.8, 0.8, id="under-a-second"),
    ],
)
def test_the_wait_ends_before_the_runs_deadline(
    denied: Callable[..., tuple[Emulator, Outcome]], left: float, slept: float
) -> None:
    got = gathered(*denied(100.0), {"data_access"}, left=left)
    assert got.calls == [DENIAL, DENIAL]
    assert got.sleeps == [pytest.approx(slept)]
    assert got.item("data_access") == pending("data_access", "2 times", f"{slept:.0f} s")


def test_no_budget_left_means_one_look(denied: Callable[..., tuple[Emulator, Outcome]]) -> None:
    got = gathered(*denied(100.0), {"data_access"}, budget=0.0)
    assert (got.calls, got.sleeps) == ([DENIAL], [])
    assert got.item("data_access") == pending("data_access", "1 time", "0 s")


def test_a_refused_denial_query_is_reported_and_not_retried(
    denied: Callable[..., tuple[Emulator, Outcome]],
) -> None:
    emulator, outcome = denied(0.0)
    refused = {"status": {"code": 7, "message": "no logs for you"}}
    assert admin(emulator, "POST", "faults", {"method": LIST_LOG_ENTRIES, "count": 2, **refused})[0] == 201
    got = gathered(emulator, outcome, {"data_access", "admin_activity"})
    assert got.calls == [DENIAL, "logging.ListLogEntries(activity)"]
    assert got.evidence.items == [
        Item(
            "data_access",
            "unavailable",
            "the canary may not read this: no logs for you",
            "logging.privateLogEntries.list",
        ),
        Item(
            "admin_activity", "unavailable", "the canary may not read this: no logs for you", "logging.logEntries.list"
        ),
    ]


def test_the_denial_query_is_bounded_by_its_start(denied: Callable[..., tuple[Emulator, Outcome]]) -> None:
    emulator, outcome = denied(0.0)
    config = Config(emulator=emulator.grpc.address, evidence=frozenset({"data_access"}), audit_lag_budget_s=0.0)
    ctx = _Context(config, Clients(config), P, SA, Left(30.0), Recorder(), lambda: True)
    evidence = Evidence()
    after = datetime.now(UTC) + timedelta(minutes=5)  # the denial is older than this
    _denials(ctx, evidence, [outcome.failure or Failure(Cause.UNKNOWN)], {Cause.IAM_PERMISSION_DENIED}, after, _no)
    assert evidence.item("data_access") == pending("data_access", "1 time", "0 s")


# --- the Admin Activity query ------------------------------------------------------------------------------------


@pytest.mark.usefixtures("far_time_zone")
def test_a_query_starts_at_utc_whatever_the_hosts_time_zone() -> None:
    assert since(datetime(2026, 11, 26, 9, 0, 30, tzinfo=UTC)) == 'timestamp>="2026-11-26T09:00:30Z"'


START = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
ACTIVITY_LOG = f'logName="projects/{P}/logs/cloudaudit.googleapis.com%2Factivity" AND timestamp>="2026-11-26T09:00:00Z"'


def test_the_role_removal_clause_names_the_member_as_iam_writes_it() -> None:
    # google/iam/v1/policy.proto: members are `user:{email}` and `serviceAccount:{email}`
    deny = '(protoPayload.serviceName="iam.googleapis.com" AND protoPayload.methodName:"Policies")'
    for principal, written in (("alice@example.com", "user:alice@example.com"), (SA, f"serviceAccount:{SA}")):
        assert activity_filter(P, principal, {Cause.IAM_PERMISSION_DENIED}, START) == (
            f'{ACTIVITY_LOG} AND ((protoPayload.methodName="SetIamPolicy" AND '
            f'protoPayload.serviceData.policyDelta.bindingDeltas.member="{written}") OR {deny})'
        )


def test_the_billing_clause() -> None:
    assert activity_filter(P, SA, {Cause.BILLING_DISABLED}, START) == (
        f'{ACTIVITY_LOG} AND ((protoPayload.serviceName="cloudbilling.googleapis.com"))'
    )


def test_an_org_policy_change_of_the_failing_constraint_is_found(
    denied: Callable[..., tuple[Emulator, Outcome]],
) -> None:
    emulator, _ = denied(0.0)
    change = {"actor": "carol@example.com", "action": "set_denied_services", "services": ["aiplatform.googleapis.com"]}
    assert admin(emulator, "POST", "actions", change)[0] == 200
    outcome = Outcome(
        Config().targets[0],
        Cause.ORG_POLICY,
        1.0,
        failure=Failure(Cause.ORG_POLICY, 403, reason="RESOURCE_USAGE_RESTRICTION_VIOLATED"),
    )
    got = gathered(emulator, outcome, {"admin_activity"})
    item = got.item("admin_activity")
    assert (item.status, item.data["kind"], item.data["actor"]) == (
        "found",
        "org_policy_changed",
        "carol@example.com",
    )


def test_no_org_policy_change_names_the_failing_constraint(denied: Callable[..., tuple[Emulator, Outcome]]) -> None:
    emulator, _ = denied(0.0)
    outcome = Outcome(
        Config().targets[0],
        Cause.ORG_POLICY,
        1.0,
        failure=Failure(Cause.ORG_POLICY, 403, reason="RESOURCE_USAGE_RESTRICTION_VIOLATED"),
    )
    got = gathered(emulator, outcome, {"admin_activity"})
    assert got.item("admin_activity") == Item(
        "admin_activity",
        "not_found",
        "no admin change that explains it in the last 60 min of the project's Admin Activity log: "
        "constraints/gcp.restrictServiceUsage is most likely set on a folder or the organization, whose changes are "
        "logged there, not in the project; ask your organization policy administrator (see remedies)",
    )
