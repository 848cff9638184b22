"""remedies(): per cause, the exact commands (project, member and role filled in, shell-quoted) and pre-filled links."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import pytest

from function.audit_entries import Change
from function.causes import Cause, Failure
from function.config import Target
from function.evidence import Evidence
from function.filters import denial_filter
from function.probe import Outcome
from function.remedies import Remedy, enable_data_access_logs, remedies
from tests.prerequisites import need

P = "demo-proj"
SA = f"canary@{P}.iam.gserviceaccount.com"
MEMBER = f"serviceAccount:{SA}"
TARGET = Target("gemini-2.5-flash", "us-central1")
UID = "vQeeOpy3XGe3WLNxUJ1CCZJqkPNp_5Yr9FB-1jgbyWTyxaJ_wTcP0A"
CONSOLE = "https://console.cloud.google.com"
ACTIVATION = "https://console.developers.google.com/apis/api/aiplatform.googleapis.com/overview?project=123456789012"
BILLING = "https://console.developers.google.com/billing/enable?project=123456789012"
TROUBLESHOOTER = (
    f"{CONSOLE}/iam-admin/troubleshooter;principal={SA};"
    f"resources=%2F%2Fcloudresourcemanager.googleapis.com%2Fprojects%2F{P};"
    f"permissions=aiplatform.endpoints.predict/result?project={P}"
)
JQ = (
    '.auditConfigs = ((.auditConfigs // []) | map(select(.service != "aiplatform.googleapis.com")) + '
    '[{"service":"aiplatform.googleapis.com","auditLogConfigs":[{"logType":"DATA_READ"},{"logType":"DATA_WRITE"}]}])'
)
ENABLE_DATA_ACCESS = (
    f"gcloud projects get-iam-policy {P} --format=json | jq '{JQ}' | gcloud projects set-iam-policy {P} /dev/stdin"
)


def outcome(cause: Cause, failure: dict[str, Any] | None = None) -> Outcome:
    return Outcome(TARGET, cause, 12.0, failure=Failure(cause, **(failure or {})))


def fixes(
    cause: Cause,
    evidence: Evidence | None = None,
    principal: str | None = SA,
    project: str = P,
    failure: dict[str, Any] | None = None,
) -> list[Remedy]:
    return remedies(outcome(cause, failure), evidence if evidence is not None else Evidence(), project, principal)


def removed(role: str) -> Evidence:
    change = Change("role_removed", "alice@example.com", "2026-11-26T09:10:00Z", f"{role} removed", role=role)
    return Evidence(predict_granted=False, data_read_on=True, change=change)


def grant(role: str) -> Remedy:
    return Remedy(
        f"Grant {role} to the workload's service account",
        f"gcloud projects add-iam-policy-binding {P} --member={MEMBER} --role={role} --condition=None",
    )


ASK_TROUBLESHOOTER = Remedy("Ask Policy Troubleshooter why", url=TROUBLESHOOTER)
DENY_POLICY = Remedy(
    "Find the deny policy that blocks it, on the project",
    f"gcloud iam policies list --attachment-point=cloudresourcemanager.googleapis.com/projects/{P} "
    "--kind=denypolicies --format=json",
)
# Deny policies attach to folders and the organization too; gcloud 528's help: get-ancestors-iam-policy --include-deny
ANCESTORS_DENY = Remedy(
    "…or on a folder or the organization above it",
    f"gcloud beta projects get-ancestors-iam-policy {P} --include-deny --format=json",
)
ANCESTORS_AUDIT = Remedy(
    "See whether Data Access audit logs are on at a folder or the organization (auditConfigs)",
    f"gcloud beta projects get-ancestors-iam-policy {P} --format=json",
)
CAPACITY_RETRY = Remedy(
    "Google's shared capacity for gemini-2.5-flash ran short (no project quota was exceeded, so a quota increase "
    "does not help): retry with exponential backoff; the canary's next run is its retry",
    url="https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429",
)
CAPACITY_GLOBAL = Remedy(
    "Call gemini-2.5-flash through the global endpoint (gemini-2.5-flash@global), which draws on more capacity, where "
    "the model is served there and neither VPC Service Controls nor data residency rules it out",
    url="https://cloud.google.com/vertex-ai/generative-ai/docs/learn/locations",
)
CAPACITY_RESERVE = Remedy(
    "Reserve capacity for the project with Provisioned Throughput",
    url="https://cloud.google.com/vertex-ai/generative-ai/docs/provisioned-throughput",
)
VM = f"INSTANCE --zone=ZONE --project={P}"
SCOPES = [
    Remedy(
        "Give the workload's token the cloud-platform scope (an OAuth scope, not an IAM grant). On Cloud Run and "
        "Cloud Functions the runtime's token has it, so this token was minted elsewhere or with narrower scopes",
        url="https://cloud.google.com/compute/docs/access/service-accounts",
    ),
    Remedy(
        "On Compute Engine: set the VM's scopes to cloud-platform (the VM must be stopped to change them)",
        f"gcloud compute instances stop {VM} && gcloud compute instances set-service-account {VM} "
        f"--service-account={SA} --scopes=cloud-platform && gcloud compute instances start {VM}",
        "https://cloud.google.com/compute/docs/instances/change-service-account",
    ),
    Remedy(
        "On GKE: use Workload Identity Federation for GKE, or a node pool created with the cloud-platform scope "
        "(a node pool's scopes cannot be changed)",
        f"gcloud container node-pools create POOL --cluster=CLUSTER --location=LOCATION --project={P} "
        f"--service-account={SA} --scopes=cloud-platform",
        "https://cloud.google.com/kubernetes-engine/docs/how-to/workload-identity",
    ),
]
TURN_ON_DATA_ACCESS = Remedy(
    "Turn on Data Access audit logs for Vertex AI so every denial is recorded", ENABLE_DATA_ACCESS
)

CASES = [
    (
        "iam-not-granted",
        Cause.IAM_PERMISSION_DENIED,
        Evidence(predict_granted=False, data_read_on=True),
        {},
        [grant("roles/aiplatform.user"), ASK_TROUBLESHOOTER],
    ),
    (
        "iam-no-evidence",
        Cause.IAM_PERMISSION_DENIED,
        Evidence(),
        {},
        [grant("roles/aiplatform.user"), ASK_TROUBLESHOOTER],
    ),
    (
        "iam-granted-yet-denied",
        Cause.IAM_PERMISSION_DENIED,
        Evidence(predict_granted=True, data_read_on=True),
        {},
        [DENY_POLICY, ANCESTORS_DENY, ASK_TROUBLESHOOTER],
    ),
    (
        "iam-granted-yet-denied-data-access-off",
        Cause.IAM_PERMISSION_DENIED,
        Evidence(predict_granted=True, data_read_on=False),
        {},
        [DENY_POLICY, ANCESTORS_DENY, ASK_TROUBLESHOOTER, TURN_ON_DATA_ACCESS],
    ),
    (
        "iam-data-access-off",
        Cause.IAM_PERMISSION_DENIED,
        Evidence(predict_granted=False, data_read_on=False),
        {},
        [grant("roles/aiplatform.user"), ASK_TROUBLESHOOTER, TURN_ON_DATA_ACCESS],
    ),
    (
        "iam-role-removed-is-restored",
        Cause.IAM_PERMISSION_DENIED,
        removed("roles/aiplatform.admin"),
        {},
        [grant("roles/aiplatform.admin"), ASK_TROUBLESHOOTER],
    ),
    (
        "iam-custom-role-removed-is-restored",
        Cause.IAM_PERMISSION_DENIED,
        removed("projects/demo-proj/roles/geminiCaller"),
        {},
        [grant("projects/demo-proj/roles/geminiCaller"), ASK_TROUBLESHOOTER],
    ),
    (
        "iam-owner-removed-least-privilege",
        Cause.IAM_PERMISSION_DENIED,
        removed("roles/owner"),
        {},
        [grant("roles/aiplatform.user"), ASK_TROUBLESHOOTER],
    ),
    (
        "iam-editor-removed-least-privilege",
        Cause.IAM_PERMISSION_DENIED,
        removed("roles/editor"),
        {},
        [grant("roles/aiplatform.user"), ASK_TROUBLESHOOTER],
    ),
    (
        "api-disabled-activation-url-from-error",
        Cause.API_DISABLED,
        None,
        {"metadata": {"activationUrl": ACTIVATION, "service": "aiplatform.googleapis.com"}},
        [
            Remedy(
                "Enable the Vertex AI API",
                f"gcloud services enable aiplatform.googleapis.com --project={P}",
                ACTIVATION,
            )
        ],
    ),
    (
        "api-disabled-no-url",
        Cause.API_DISABLED,
        None,
        {},
        [
            Remedy(
                "Enable the Vertex AI API",
                f"gcloud services enable aiplatform.googleapis.com --project={P}",
                f"{CONSOLE}/apis/library/aiplatform.googleapis.com?project={P}",
            )
        ],
    ),
    (
        "billing-help-link",
        Cause.BILLING_DISABLED,
        None,
        {"links": [{"description": "Google developers console billing", "url": BILLING}]},
        [
            Remedy(
                "Link an open billing account to the project",
                f"gcloud billing projects link {P} --billing-account=BILLING_ACCOUNT_ID",
                BILLING,
            ),
            Remedy("See the project's billing state", f"gcloud billing projects describe {P}"),
        ],
    ),
    (
        "billing-closed-account-no-link",
        Cause.BILLING_DISABLED,
        None,
        {"links": [{"description": "Google developers console", "url": "https://console.developers.google.com"}]},
        [
            Remedy(
                "Link an open billing account to the project",
                f"gcloud billing projects link {P} --billing-account=BILLING_ACCOUNT_ID",
                f"{CONSOLE}/billing/linkedaccount?project={P}",
            ),
            Remedy("See the project's billing state", f"gcloud billing projects describe {P}"),
        ],
    ),
    (
        "vpc-sc-uid",
        Cause.VPC_SC,
        None,
        {"metadata": {"uid": UID}},
        [
            Remedy(
                "Open the VPC Service Controls troubleshooter for this denial",
                url=f"{CONSOLE}/security/service-perimeter/troubleshoot;uniqueId={UID}?project={P}",
            )
        ],
    ),
    (
        "vpc-sc-uid-and-perimeter",
        Cause.VPC_SC,
        Evidence(policy_denial={"perimeter": "accessPolicies/123456/servicePerimeters/prod_perimeter"}),
        {"metadata": {"uid": UID}},
        [
            Remedy(
                "Open the VPC Service Controls troubleshooter for this denial",
                url=f"{CONSOLE}/security/service-perimeter/troubleshoot;uniqueId={UID}?project={P}",
            ),
            Remedy(
                "Inspect the perimeter's ingress rules (add one for the workload's identity)",
                "gcloud access-context-manager perimeters describe prod_perimeter --policy=123456",
            ),
        ],
    ),
    (
        "org-policy",
        Cause.ORG_POLICY,
        None,
        {},
        [
            Remedy(
                "See the effective model allowlist (set here, on a folder or the organization)",
                f"gcloud org-policies describe vertexai.allowedModels --project={P} --effective",
            ),
            Remedy(
                "Ask an organization policy administrator to allow publishers/google/models/gemini-2.5-flash:predict",
                url="https://cloud.google.com/vertex-ai/generative-ai/docs/control-model-access",
            ),
        ],
    ),
    (
        "wrong-project",
        Cause.WRONG_PROJECT,
        None,
        {},
        [
            Remedy(
                "Check the project the canary probes (CANARY_PROJECT or the runtime's project) exists and is the "
                "workload's",
                f"gcloud projects describe {P}",
            )
        ],
    ),
    (
        "model-unavailable",
        Cause.MODEL_UNAVAILABLE,
        None,
        {},
        [
            Remedy(
                "Move the target to a location where gemini-2.5-flash is served, or to a current model version",
                url="https://cloud.google.com/vertex-ai/generative-ai/docs/learn/locations",
            ),
            Remedy(
                "Check model versions and retirement dates",
                url="https://cloud.google.com/vertex-ai/generative-ai/docs/learn/model-versions",
            ),
        ],
    ),
    (
        "quota",
        Cause.QUOTA,
        None,
        {},
        [
            Remedy(
                "Check Vertex AI quotas and request an increase",
                url=f"{CONSOLE}/iam-admin/quotas?project={P}&service=aiplatform.googleapis.com",
            ),
            Remedy(
                "Understand 429s on Gemini", url="https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429"
            ),
        ],
    ),
    (
        "credentials",
        Cause.CREDENTIALS,
        None,
        {},
        [
            Remedy(
                "Check the service account exists and is enabled",
                f"gcloud iam service-accounts describe {SA} --project={P}",
            ),
            Remedy("Re-enable it if it was disabled", f"gcloud iam service-accounts enable {SA} --project={P}"),
        ],
    ),
    ("capacity", Cause.CAPACITY, None, {}, [CAPACITY_RETRY, CAPACITY_GLOBAL, CAPACITY_RESERVE]),
    (
        "credentials-scopes-reason",
        Cause.CREDENTIALS,
        None,
        {"reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT", "message": "Request had insufficient authentication scopes."},
        SCOPES,
    ),
    (
        "credentials-scopes-message-only",  # googleapis/python-aiplatform#902: no ErrorInfo
        Cause.CREDENTIALS,
        None,
        {"message": "403 Request had insufficient authentication scopes."},
        SCOPES,
    ),
    (
        "unavailable",
        Cause.UNAVAILABLE,
        None,
        {},
        [Remedy("Check Google Cloud's status for Vertex AI", url="https://status.cloud.google.com/")],
    ),
    (
        "deadline",
        Cause.DEADLINE,
        None,
        {},
        [Remedy("Check Google Cloud's status for Vertex AI", url="https://status.cloud.google.com/")],
    ),
    ("unknown", Cause.UNKNOWN, None, {}, [Remedy("Ask Policy Troubleshooter", url=TROUBLESHOOTER)]),
]


@pytest.mark.parametrize(("cause", "evidence", "failure", "want"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_remedies(cause: Cause, evidence: Evidence | None, failure: dict[str, Any], want: list[Remedy]) -> None:
    assert fixes(cause, evidence, failure=failure) == want


def test_every_failure_cause_has_a_remedy() -> None:
    assert {c[1] for c in CASES} == set(Cause) - {Cause.OK}  # test_remedies pins each one exactly
    first = {cause: fixes(cause)[0] for cause in set(Cause) - {Cause.OK}}
    assert all(r.command or r.url for r in first.values()), first  # something to run or open, never a title alone
    # distinct advice: only the two Google-side transients share their first fix (the status page)
    shared = {r: sorted(c for c in first if first[c] == r) for r in first.values()}
    assert [causes for causes in shared.values() if len(causes) > 1] == [[Cause.DEADLINE, Cause.UNAVAILABLE]]


def test_a_success_has_no_remedies() -> None:
    assert remedies(Outcome(TARGET, Cause.OK, 10.0), Evidence(), P, SA) == []


def test_granted_yet_denied_never_suggests_a_grant() -> None:
    out = fixes(Cause.IAM_PERMISSION_DENIED, Evidence(predict_granted=True, change=removed("roles/owner").change))
    assert not [r for r in out if r.command and "add-iam-policy-binding" in r.command]
    assert out[0] == DENY_POLICY


def test_capacity_on_the_global_endpoint_does_not_suggest_it() -> None:
    failure = Failure(Cause.CAPACITY)
    on_global = Outcome(Target("gemini-2.5-flash", "global"), Cause.CAPACITY, 12.0, failure=failure)
    assert remedies(on_global, Evidence(), P, SA) == [CAPACITY_RETRY, CAPACITY_RESERVE]


def test_capacity_and_quota_give_different_fixes() -> None:
    capacity, quota = fixes(Cause.CAPACITY), fixes(Cause.QUOTA)
    assert not [r for r in capacity if r.url and "/iam-admin/quotas" in r.url]  # no quota to raise
    assert quota[0].url == f"{CONSOLE}/iam-admin/quotas?project={P}&service=aiplatform.googleapis.com"


def test_scopes_never_suggest_describing_or_enabling_the_service_account() -> None:
    out = fixes(Cause.CREDENTIALS, failure={"reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT"})
    assert not [r for r in out if r.command and "gcloud iam service-accounts" in r.command]
    for r in out:
        if r.command:
            for step in r.command.split(" && "):
                assert "--scopes=cloud-platform" in step or " stop " in step or " start " in step, step


# The principal: a service account is a serviceAccount: member; unknown is a placeholder, never a guess ---------------


@pytest.mark.parametrize(
    ("principal", "member", "shown"),
    [
        (SA, MEMBER, SA),
        ("first.last@example.com", "user:first.last@example.com", "first.last@example.com"),
        (None, "serviceAccount:SERVICE_ACCOUNT_EMAIL", "SERVICE_ACCOUNT_EMAIL"),
    ],
    ids=["service-account", "user", "unknown"],
)
def test_principal_is_filled_in(principal: str | None, member: str, shown: str) -> None:
    grant_cmd, ask = fixes(Cause.IAM_PERMISSION_DENIED, Evidence(predict_granted=False), principal=principal)
    assert grant_cmd.command == (
        f"gcloud projects add-iam-policy-binding {P} --member={member} --role=roles/aiplatform.user --condition=None"
    )
    assert ask.url == TROUBLESHOOTER.replace(f"principal={SA}", f"principal={shown}")
    describe, enable = fixes(Cause.CREDENTIALS, principal=principal)
    assert (describe.command, enable.command) == (
        f"gcloud iam service-accounts describe {shown} --project={P}",
        f"gcloud iam service-accounts enable {shown} --project={P}",
    )


# Shell quoting: whatever the project, principal or role, each stays one argument ----------------------------------

HOSTILE_PROJECT = "demo proj;rm -rf ~"
HOSTILE_PRINCIPAL = "x'$(id)\"@evil.iam.gserviceaccount.com"
HOSTILE_ROLE = "roles/x --role=roles/owner"


def test_commands_are_shell_quoted() -> None:
    evidence = Evidence(predict_granted=False, data_read_on=False, change=removed(HOSTILE_ROLE).change)
    grant_cmd = fixes(Cause.IAM_PERMISSION_DENIED, evidence, principal=HOSTILE_PRINCIPAL, project=HOSTILE_PROJECT)[0]
    assert grant_cmd.command is not None
    assert shlex.split(grant_cmd.command) == [
        "gcloud",
        "projects",
        "add-iam-policy-binding",
        HOSTILE_PROJECT,
        f"--member=serviceAccount:{HOSTILE_PRINCIPAL}",
        f"--role={HOSTILE_ROLE}",
        "--condition=None",
    ]
    every = [
        r.command
        for cause in set(Cause) - {Cause.OK}
        for r in fixes(cause, evidence, principal=HOSTILE_PRINCIPAL, project=HOSTILE_PROJECT)
        if r.command
    ]
    for command in every:
        words = shlex.split(command)
        assert not any(w.startswith(("rm", "~", "-rf", "$(")) for w in words), command
        assert any(HOSTILE_PROJECT in w for w in words), command


def test_scopes_commands_are_shell_quoted() -> None:
    failure = {"reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT"}
    out = fixes(Cause.CREDENTIALS, principal=HOSTILE_PRINCIPAL, project=HOSTILE_PROJECT, failure=failure)
    commands = [r.command for r in out if r.command]
    assert len(commands) == 2
    for command in commands:
        words = shlex.split(command)
        assert f"--project={HOSTILE_PROJECT}" in words, command
        assert f"--service-account={HOSTILE_PRINCIPAL}" in words, command
        assert not any(w.startswith(("rm", "~", "-rf", "$(")) for w in words), command


def test_deny_policy_attachment_point_is_one_word() -> None:
    command = fixes(Cause.IAM_PERMISSION_DENIED, Evidence(predict_granted=True), project=HOSTILE_PROJECT)[0].command
    assert command is not None
    assert (
        shlex.split(command)[4] == f"--attachment-point=cloudresourcemanager.googleapis.com/projects/{HOSTILE_PROJECT}"
    )


# Data Access off → the command that turns it on ---------------------------------------------------------------


def test_enable_data_access_command_is_valid_shell() -> None:
    command = enable_data_access_logs(P)
    assert command == ENABLE_DATA_ACCESS
    assert shlex.split(command) == [
        "gcloud", "projects", "get-iam-policy", P, "--format=json",
        "|", "jq", JQ, "|",
        "gcloud", "projects", "set-iam-policy", P, "/dev/stdin",
    ]  # fmt: skip
    if shutil.which("bash"):
        subprocess.run(["bash", "-n", "-c", command], check=True)


def test_enable_data_access_jq_adds_data_read_and_keeps_the_rest() -> None:
    need("jq")
    policy: dict[str, Any] = {
        "bindings": [{"role": "roles/owner", "members": ["user:alice@example.com"]}],
        "etag": "BwX=",
        "auditConfigs": [
            {"service": "storage.googleapis.com", "auditLogConfigs": [{"logType": "DATA_READ"}]},
            {"service": "aiplatform.googleapis.com", "auditLogConfigs": [{"logType": "ADMIN_READ"}]},
        ],
    }
    for before in (policy, {k: v for k, v in policy.items() if k != "auditConfigs"}):
        done = subprocess.run(["jq", JQ], input=json.dumps(before), capture_output=True, text=True, check=True)
        after = json.loads(done.stdout)
        assert after["bindings"] == before["bindings"]
        assert after["etag"] == before["etag"]
        assert after["auditConfigs"][-1] == {
            "service": "aiplatform.googleapis.com",
            "auditLogConfigs": [{"logType": "DATA_READ"}, {"logType": "DATA_WRITE"}],
        }
        others = [c for c in before.get("auditConfigs", []) if c["service"] != "aiplatform.googleapis.com"]
        assert after["auditConfigs"][:-1] == others


# Logs Explorer: the evidence query, URL-encoded whole --------------------------------------------------------------


@pytest.mark.parametrize("cause", sorted(set(Cause) - {Cause.OK}))
def test_logs_explorer_link_carries_the_query(cause: Cause) -> None:
    query = denial_filter(P, SA, [UID], True, datetime(2026, 11, 26, 9, tzinfo=UTC))
    assert query is not None
    last = fixes(cause, Evidence(logs_query=query))[-1]
    prefix, suffix = f"{CONSOLE}/logs/query;query=", f"?project={P}"
    assert last.title == "See the audit entries in Logs Explorer"
    assert last.command is None
    assert last.url is not None
    assert last.url.startswith(prefix)
    assert last.url.endswith(suffix)
    encoded = last.url[len(prefix) : -len(suffix)]
    assert unquote(encoded) == query
    assert not set(encoded) & set(' "()=;/?&#\n')


def test_to_json_drops_what_is_not_there() -> None:
    assert Remedy("t", url="u").to_json() == {"title": "t", "url": "u"}
    assert Remedy("t", "c", "u").to_json() == {"title": "t", "command": "c", "url": "u"}


def test_the_troubleshooter_link_quotes_a_unique_id_that_needs_it() -> None:
    # Unique ids are base64url today; a "/", "+", "=", "?", "#" or ";" must not change the link's meaning.
    uid = "a/b+c=d?e#f;g"
    out = fixes(Cause.VPC_SC, failure={"metadata": {"uid": uid}})
    [link] = [r.url for r in out if r.url and "troubleshoot" in r.url]
    assert link == f"{CONSOLE}/security/service-perimeter/troubleshoot;uniqueId=a%2Fb%2Bc%3Dd%3Fe%23f%3Bg?project={P}"


def test_every_cause_has_its_own_remedies_but_unknown() -> None:
    """A cause added to the vocabulary without remedies would fall back to "Ask Policy Troubleshooter" silently (OK is
    no failure and has none)."""
    from function import remedies as module

    assert set(Cause) - set(module._BY_CAUSE) == {Cause.OK, Cause.UNKNOWN}
