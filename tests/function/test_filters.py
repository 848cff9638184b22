"""The Logging filters the canary builds, run through the emulator's parser against a table of audit entries.

Entries are LogEntry dicts in proto3 JSON form, shaped as docs/google-behaviour.md and emulator/core/audit.py write
them.
`listed` applies the resourceNames scope the way entries.list does (the policy log is queried by LOG_ID, because
its logName may carry the project number), then the filter.
"""

from __future__ import annotations

import itertools
import string
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.services.logging.filter import compile_filter
from function.causes import Cause
from function.filters import activity_filter, denial_filter, quote, since

P = "demo-proj"
N = "123456789012"
SA = f"canary@{P}.iam.gserviceaccount.com"
OTHER_SA = f"batch@{P}.iam.gserviceaccount.com"
UID = "vQeeOpy3XGe3WLNxUJ1CCZJqkPNp_5Yr9FB-1jgbyWTyxaJ_wTcP0A"
UID2 = "-ZWUwU96cNc6_jcWbyKhbCfz9canAZcNkQjPcb4uEhOY00WbG64xVw"
START = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
MODEL = f"projects/{P}/locations/us-central1/publishers/google/models/gemini-2.5-flash"
GENERATE = "google.cloud.aiplatform.v1.PredictionService.GenerateContent"
AUDIT = "type.googleapis.com/google.cloud.audit.AuditLog"


def at(minutes: float) -> str:
    moment = START + timedelta(minutes=minutes)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".") + "Z"


def entry(
    insert_id: str, log: str, when: float, payload: dict[str, Any], project: str = P, severity: str = "NOTICE"
) -> dict[str, Any]:
    return {
        "insertId": insert_id,
        "logName": f"projects/{project}/logs/cloudaudit.googleapis.com%2F{log}",
        "resource": {
            "type": "audited_resource",
            "labels": {"service": payload.get("serviceName", ""), "project_id": project},
        },
        "timestamp": at(when),
        "receiveTimestamp": at(when + 0.01),
        "severity": severity,
        "protoPayload": {"@type": AUDIT, **payload},
    }


def vertex_call(
    insert_id: str,
    email: str | None,
    code: int = 7,
    when: float = 5,
    project: str = P,
    service: str = "aiplatform.googleapis.com",
) -> dict[str, Any]:
    """A data_access entry of a Vertex AI call (§B2); a denied user's e-mail may be redacted (None)."""
    payload: dict[str, Any] = {
        "serviceName": service,
        "methodName": GENERATE,
        "resourceName": MODEL,
        "authenticationInfo": {"principalEmail": email, "principalSubject": f"serviceAccount:{email}"} if email else {},
        "authorizationInfo": [
            {"resource": MODEL, "permission": "aiplatform.endpoints.predict", "permissionType": "DATA_READ"}
            | ({"granted": True} if code == 0 else {})  # granted:false is omitted from the JSON (§B2)
        ],
        "requestMetadata": {"callerIp": "10.0.0.1", "callerSuppliedUserAgent": "canary,gzip(gfe)"},
    }
    if code:
        payload["status"] = {"code": code, "message": "Permission denied"}
    return entry(insert_id, "data_access", when, payload, project, "ERROR" if code else "INFO")


def vpc_denial(
    insert_id: str, email: str, uid: str, when: float = 6, project: str = P, dry_run: bool = False
) -> dict[str, Any]:
    """A Policy Denied entry (§B3)."""
    metadata: dict[str, Any] = {
        "@type": "type.googleapis.com/google.cloud.audit.VpcServiceControlAuditMetadata",
        "violationReason": "NO_MATCHING_ACCESS_LEVEL",
        "resourceNames": [f"projects/{N}"],
        "securityPolicyInfo": {
            "servicePerimeterName": "accessPolicies/1/servicePerimeters/prod",
            "organizationId": "9",
        },
        "vpcServiceControlsUniqueId": uid,
    }
    if dry_run:
        metadata["dryRun"] = True
    message = f"Request is prohibited by organization's policy. vpcServiceControlsUniqueIdentifier: {uid}"
    payload = {
        "status": {
            "code": 7,
            "message": message,
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.PreconditionFailure",
                    "violations": [{"type": "VPC_SERVICE_CONTROLS", "description": uid}],
                }
            ],
        },
        "authenticationInfo": {"principalEmail": email},
        "serviceName": "aiplatform.googleapis.com",
        "methodName": GENERATE,
        "resourceName": MODEL,
        "metadata": metadata,
    }
    return entry(insert_id, "policy", when, payload, project, "ERROR")


def admin(
    insert_id: str, service: str, method: str, resource: str, when: float = 1, project: str = P, **extra: Any
) -> dict[str, Any]:
    """An Admin Activity entry, as emulator/core/changes.py writes them."""
    payload = {
        "authenticationInfo": {"principalEmail": "alice@example.com"},
        "serviceName": service,
        "methodName": method,
        "resourceName": resource,
        **extra,
    }
    return entry(insert_id, "activity", when, payload, project)


def set_iam_policy(insert_id: str, member: str, action: str = "REMOVE", when: float = 1) -> dict[str, Any]:
    delta = {"bindingDeltas": [{"action": action, "role": "roles/aiplatform.user", "member": member}]}
    return admin(
        insert_id,
        "cloudresourcemanager.googleapis.com",
        "SetIamPolicy",
        f"projects/{P}",
        when,
        serviceData={"@type": "type.googleapis.com/google.iam.v1.logging.AuditData", "policyDelta": delta},
    )


def disable(insert_id: str, service: str, when: float = 2, project: str = P, version: str = "v1") -> dict[str, Any]:
    return admin(
        insert_id,
        "serviceusage.googleapis.com",
        f"google.api.serviceusage.{version}.ServiceUsage.DisableService",
        f"projects/{N}/services/{service}",
        when,
        project,
    )


def org_policy(insert_id: str, constraint: str) -> dict[str, Any]:
    return admin(
        insert_id,
        "orgpolicy.googleapis.com",
        "google.cloud.orgpolicy.v2.OrgPolicy.UpdatePolicy",
        f"projects/{N}/policies/{constraint}",
    )


ENTRIES = [
    # data_access
    vertex_call("da-denied", SA),
    vertex_call("da-denied-other-principal", OTHER_SA),
    vertex_call("da-denied-redacted", None),
    vertex_call("da-allowed", SA, code=0),
    vertex_call("da-other-code", SA, code=10),
    vertex_call("da-other-project", SA, project="other-proj"),
    vertex_call("da-other-service", SA, service="bigquery.googleapis.com"),
    vertex_call("da-before-window", SA, when=-0.01),
    # policy (VPC-SC)
    vpc_denial("pol-uid", SA, UID),
    vpc_denial("pol-uid2-other-principal", OTHER_SA, UID2),
    vpc_denial("pol-same-principal-other-uid", SA, "zvW4mQKV6irg"),
    vpc_denial("pol-other-principal-other-uid", OTHER_SA, "kmpY9Fgfuhgi"),
    vpc_denial("pol-dry-run-same-principal", SA, "D8SdsrmBFJTz1i6J", dry_run=True),
    vpc_denial("pol-other-project", SA, "L7cQ2mF9xR4t", project="other-proj"),
    vpc_denial("pol-uid-before-window", SA, UID, when=-60),
    # activity
    set_iam_policy("act-role-removed", f"serviceAccount:{SA}"),
    set_iam_policy("act-role-removed-other-member", f"serviceAccount:{OTHER_SA}"),
    set_iam_policy("act-role-removed-before-window", f"serviceAccount:{SA}", when=-1),
    admin(
        "act-deny-policy",
        "iam.googleapis.com",
        "google.iam.v2.Policies.CreatePolicy",
        f"policies/cloudresourcemanager.googleapis.com%2Fprojects%2F{P}/denypolicies/d",
    ),
    admin("act-sa-key-created", "iam.googleapis.com", "google.iam.admin.v1.CreateServiceAccountKey", "projects/-/x"),
    disable("act-vertex-disabled", "aiplatform.googleapis.com"),
    disable("act-vertex-disabled-v1beta1", "aiplatform.googleapis.com", version="v1beta1"),
    disable("act-other-api-disabled", "bigquery.googleapis.com"),
    disable("act-vertex-disabled-other-project", "aiplatform.googleapis.com", project="other-proj"),
    # Cloud Billing's audit logging page lists these ADMIN_WRITE methods (bare names)
    admin("act-billing", "cloudbilling.googleapis.com", "DisableResourceBilling", f"projects/{P}"),
    org_policy("act-allowed-models", "vertexai.allowedModels"),
    org_policy("act-restrict-service-usage", "gcp.restrictServiceUsage"),
    org_policy("act-other-constraint", "gcp.resourceLocations"),
    # Organization Policy v1 is served and audited by cloudresourcemanager.googleapis.com
    admin("act-org-policy-v1", "cloudresourcemanager.googleapis.com", "SetOrgPolicy", f"projects/{P}"),
]
BY_ID = {e["insertId"]: e for e in ENTRIES}
assert len(BY_ID) == len(ENTRIES)


def listed(query: str | None, entries: Iterable[dict[str, Any]] = ENTRIES) -> set[str]:
    """The insertIds entries.list(resourceNames=[projects/P], filter=query) returns."""
    assert query is not None
    matches = compile_filter(query)
    return {e["insertId"] for e in entries if e["logName"].startswith(f"projects/{P}/") and matches(e)}


# denial_filter: every combination of (data access wanted, principal known, uids) --------------------------------

DATA = {SA: {"da-denied"}, None: {"da-denied", "da-denied-other-principal", "da-denied-redacted"}}
POLICY = {
    (SA, ()): set(),
    (SA, (UID,)): {"pol-uid", "pol-same-principal-other-uid"},
    (SA, (UID, UID2)): {"pol-uid", "pol-uid2-other-principal", "pol-same-principal-other-uid"},
    (None, ()): set(),
    (None, (UID,)): {"pol-uid"},
    (None, (UID2, UID, UID2)): {"pol-uid", "pol-uid2-other-principal"},
}
DENIAL_CASES = [
    pytest.param(
        data,
        principal,
        uids,
        (DATA[principal] if data else set()) | POLICY[principal, uids],
        id=f"{'data' if data else 'no-data'}/{'sa' if principal else 'no-principal'}/{len(set(uids))}-uids",
    )
    for data in (True, False)
    for principal, uids in POLICY
]


@pytest.mark.parametrize(("want_data", "principal", "uids", "want"), DENIAL_CASES)
def test_denial_filter(want_data: bool, principal: str | None, uids: tuple[str, ...], want: set[str]) -> None:
    query = denial_filter(P, principal, uids, want_data, START)
    if not want_data and not uids:
        assert query is None
        return
    assert listed(query) == want


def test_denial_filter_text() -> None:
    assert denial_filter(P, SA, [UID], True, START) == (
        'timestamp>="2026-11-26T09:00:00Z" AND ('
        f'(logName="projects/{P}/logs/cloudaudit.googleapis.com%2Fdata_access" '
        'AND protoPayload.serviceName="aiplatform.googleapis.com" AND protoPayload.status.code=7 '
        f'AND protoPayload.authenticationInfo.principalEmail="{SA}") OR '
        '(LOG_ID("cloudaudit.googleapis.com/policy") AND NOT protoPayload.metadata.dryRun=true AND '
        f'(protoPayload.metadata.vpcServiceControlsUniqueId="{UID}" '
        f'OR protoPayload.authenticationInfo.principalEmail="{SA}")))'
    )


def test_data_access_clause_is_pinned_to_the_project_even_unscoped() -> None:
    matches = compile_filter(denial_filter(P, SA, [], True, START) or "")
    assert matches(BY_ID["da-denied"])
    assert not matches(BY_ID["da-other-project"])


# activity_filter: every combination of the causes an admin change can explain -----------------------------------

EXPLAINED = {
    Cause.IAM_PERMISSION_DENIED: {SA: {"act-role-removed", "act-deny-policy"}, None: {"act-deny-policy"}},
    Cause.API_DISABLED: {
        SA: {"act-vertex-disabled", "act-vertex-disabled-v1beta1"},
        None: {"act-vertex-disabled", "act-vertex-disabled-v1beta1"},
    },
    Cause.BILLING_DISABLED: {SA: {"act-billing"}, None: {"act-billing"}},
    Cause.ORG_POLICY: {
        SA: {"act-allowed-models", "act-org-policy-v1"},
        None: {"act-allowed-models", "act-org-policy-v1"},
    },
}
UNEXPLAINED = set(Cause) - set(EXPLAINED)
ACTIVITY_CASES = [
    pytest.param(
        set(combo),
        principal,
        set().union(*(EXPLAINED[c][principal] for c in combo)),
        id=f"{'+'.join(combo) or 'none'}/{'sa' if principal else 'no-principal'}",
    )
    for size in range(len(EXPLAINED) + 1)
    for combo in itertools.combinations(EXPLAINED, size)
    for principal in (SA, None)
]


@pytest.mark.parametrize(("causes", "principal", "want"), ACTIVITY_CASES)
def test_activity_filter(causes: set[Cause], principal: str | None, want: set[str]) -> None:
    query = activity_filter(P, principal, causes, START)
    assert activity_filter(P, principal, causes | UNEXPLAINED, START) == query  # the others add nothing
    if not want:
        assert query is None
        return
    assert listed(query) == want


@pytest.mark.parametrize("cause", sorted(UNEXPLAINED))
def test_activity_filter_has_nothing_for_causes_no_admin_change_explains(cause: Cause) -> None:
    assert activity_filter(P, SA, {cause}, START) is None


# since ----------------------------------------------------------------------------------------------------------


def test_since_is_utc_whole_seconds_and_inclusive() -> None:
    local = START.astimezone(timezone(timedelta(hours=1))) + timedelta(microseconds=654321)
    assert since(local) == 'timestamp>="2026-11-26T09:00:00Z"'
    matches = compile_filter(since(START))
    assert matches({"timestamp": "2026-11-26T09:00:00Z"})
    assert matches({"timestamp": "2026-11-26T10:00:00.5+01:00"})
    assert not matches({"timestamp": "2026-11-26T08:59:59.999999Z"})


# quote: values that could change a filter's meaning never reach one ---------------------------------------------

SAFE = string.ascii_letters + string.digits + "@._:/%+-"


@pytest.mark.parametrize(
    "value",
    [
        SA,
        UID,
        UID2,
        f"projects/{P}/logs/cloudaudit.googleapis.com%2Fdata_access",
        "first.last+canary@example.com",
        "a" * 512,
    ],
)
def test_quote_accepts(value: str) -> None:
    assert quote(value) == f'"{value}"'


@pytest.mark.parametrize(
    "value",
    [
        "",
        'x" OR logName:*',
        "a b",
        "a\nb",
        "abc\n",
        "a\\b",
        "a\tb",
        "a'b",
        "(a)",
        "a*",
        "é@example.com",
        "ｇemini",
        "a\u200bb",
        "a" * 513,
    ],
    ids=repr,
)
def test_quote_refuses(value: str) -> None:
    with pytest.raises(ValueError, match=r"refusing to put .* into a Logging filter"):
        quote(value)


HOSTILE = ['x" OR logName:*', "sa@p.iam.gserviceaccount.com\nOR", 'a") OR ("', "a\\", "sa@p.iam.gserviceaccount.com "]


@pytest.mark.parametrize("value", HOSTILE, ids=repr)
def test_hostile_values_never_reach_a_filter(value: str) -> None:
    for build in (
        lambda: denial_filter(P, value, [], True, START),
        lambda: denial_filter(P, None, [value], False, START),
        lambda: denial_filter(P, SA, [UID, value], False, START),
        lambda: activity_filter(P, value, {Cause.IAM_PERMISSION_DENIED}, START),
        lambda: denial_filter(value, SA, [], True, START),
        lambda: activity_filter(value, None, {Cause.API_DISABLED}, START),
    ):
        with pytest.raises(ValueError, match="refusing to put"):
            build()


FIELD = "protoPayload.authenticationInfo.principalEmail"


def holding(value: str, field: str = "principalEmail") -> dict[str, Any]:
    return {"logName": f"projects/{P}/logs/x", "protoPayload": {"authenticationInfo": {field: value}}}


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.text(alphabet=SAFE + ' "\\\n\t*()', min_size=1, max_size=40), st.text(SAFE, min_size=1)))
def test_quote_property(value: str) -> None:
    """quote(v) raises ValueError, or is a literal the parser reads back as exactly v.

    Near misses add a letter (Logging compares strings ignoring case and int64 strings as numbers, so a near miss
    that differs only in case or numeric spelling would match by design).
    """
    try:
        literal = quote(value)
    except ValueError:
        return
    matches = compile_filter(f"{FIELD}={literal}")
    assert matches(holding(value))
    assert not matches(holding(value + "a"))
    assert not matches(holding("a" + value))
    assert not matches(holding(value, field="principalSubject"))
    assert not matches({"protoPayload": {}})
    compile_filter(denial_filter(P, value, [value], True, START) or "")  # and every builder's output parses


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60), st.lists(st.text(max_size=60), max_size=3))
def test_builders_either_refuse_or_parse(principal: str, uids: list[str]) -> None:
    try:
        queries = [
            denial_filter(P, principal or None, uids, True, START),
            activity_filter(P, principal or None, set(EXPLAINED), START),
        ]
    except ValueError:
        return
    for query in queries:
        assert query is not None
        compile_filter(query)


@settings(max_examples=200, deadline=None)
@given(
    st.text(string.ascii_lowercase + string.digits + "-", min_size=1, max_size=30).map(
        lambda name: f"{name}@{P}.iam.gserviceaccount.com"
    ),
    st.lists(st.text(SAFE, min_size=1, max_size=60), max_size=3),
)
def test_builders_accept_safe_values_and_find_what_they_name(principal: str, uids: list[str]) -> None:
    """Values within quote's alphabet are always accepted (so the property above is not vacuous), and the filter built
    from them finds exactly the denial of that principal, or with that unique id, and nothing of another's."""
    query = denial_filter(P, principal, uids, True, START)
    assert query is not None
    matches = compile_filter(query)
    mine = vertex_call("mine", principal)
    theirs = vertex_call("theirs", "x" + principal)
    assert (matches(mine), matches(theirs)) == (True, False)
    for uid in uids:
        assert matches(vpc_denial("by-uid", "x" + principal, uid))
    assert not matches(vpc_denial("other-uid", "x" + principal, "0" + "".join(uids) + "Z"))
    activity = activity_filter(P, principal, {Cause.IAM_PERMISSION_DENIED}, START)
    assert activity is not None
    assert compile_filter(activity)(set_iam_policy("removed", f"serviceAccount:{principal}"))


def test_org_policy_filter_follows_the_failing_constraint() -> None:
    # RESOURCE_USAGE_RESTRICTION_VIOLATED is constraints/gcp.restrictServiceUsage (google/api/error_reason.proto)
    query = activity_filter(P, SA, {Cause.ORG_POLICY}, START, ["gcp.restrictServiceUsage"])
    assert listed(query) == {"act-restrict-service-usage", "act-org-policy-v1"}
    both = activity_filter(P, SA, {Cause.ORG_POLICY}, START, ["gcp.restrictServiceUsage", "vertexai.allowedModels"])
    assert listed(both) == {"act-restrict-service-usage", "act-allowed-models", "act-org-policy-v1"}
