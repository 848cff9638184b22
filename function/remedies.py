"""Per cause: the exact commands that fix it (real project, principal and role filled in) and pre-filled links.

Console deep links follow the URL forms the console uses today; Google does not document them as an API
(Assumption: Policy Troubleshooter `iam-admin/troubleshooter;principal=…;resources=…;permissions=…/result`,
VPC-SC troubleshooter `security/service-perimeter/troubleshoot;uniqueId=…`, Logs Explorer `logs/query;query=…`).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from . import sanitize
from .causes import ALLOWED_MODELS, RESTRICT_SERVICE_USAGE, Cause, Failure, constraint_of
from .evidence import PREDICT, Evidence
from .filters import VERTEX, member
from .probe import Outcome

LEAST_PRIVILEGE_ROLE = "roles/aiplatform.user"
UNKNOWN_PRINCIPAL = "SERVICE_ACCOUNT_EMAIL"  # placeholder when the canary cannot tell who it runs as
CONSOLE = "https://console.cloud.google.com"


@dataclass(frozen=True)
class Remedy:
    title: str
    command: str | None = None
    url: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in (("title", self.title), ("command", self.command), ("url", self.url)) if v}


def logs_explorer(project: str, query: str) -> str:
    return f"{CONSOLE}/logs/query;query={quote(query, safe='')}?project={quote(project)}"


def troubleshooter(project: str, principal: str, permission: str = PREDICT) -> str:
    resource = quote(f"//cloudresourcemanager.googleapis.com/projects/{project}", safe="")
    return (
        f"{CONSOLE}/iam-admin/troubleshooter;principal={quote(principal, safe='@')};resources={resource};"
        f"permissions={permission}/result?project={quote(project)}"
    )


def enable_data_access_logs(project: str) -> str:
    """Turn on DATA_READ for Vertex AI: set-iam-policy sends the auditConfigs update mask when the file has them.

    A pipeline: the policy never touches a file (no fixed path another user could have planted or could read).
    """
    p = shlex.quote(project)
    add = (
        '.auditConfigs = ((.auditConfigs // []) | map(select(.service != "aiplatform.googleapis.com")) + '
        '[{"service":"aiplatform.googleapis.com","auditLogConfigs":[{"logType":"DATA_READ"},{"logType":"DATA_WRITE"}]}])'
    )
    return (
        f"gcloud projects get-iam-policy {p} --format=json | jq {shlex.quote(add)} | "
        f"gcloud projects set-iam-policy {p} /dev/stdin"
    )


def ancestors_policies(project: str, include_deny: bool = False) -> str:
    """The allow (and deny) policies of the project and every folder and organization above it (gcloud beta)."""
    deny = " --include-deny" if include_deny else ""
    return f"gcloud beta projects get-ancestors-iam-policy {shlex.quote(project)}{deny} --format=json"


def remedies(outcome: Outcome, evidence: Evidence, project: str, principal: str | None) -> list[Remedy]:
    """The fixes, safe to print and to paste: no control character in a title or a command (an audit entry or an
    error body may carry one), and a link only when it is https on Google's console or documentation hosts."""
    return [
        Remedy(sanitize.text(r.title), sanitize.text(r.command) if r.command else None, sanitize.link(r.url))
        for r in _remedies(outcome, evidence, project, principal)
    ]


@dataclass(frozen=True)
class _Case:
    """One failed target, with what its remedies are written from."""

    outcome: Outcome
    failure: Failure
    evidence: Evidence
    project: str
    who: str  # the workload's principal, or the placeholder when unknown

    @property
    def p(self) -> str:
        """The project, quoted for a shell command."""
        return shlex.quote(self.project)

    @property
    def model(self) -> str:
        return self.outcome.target.model


def _remedies(outcome: Outcome, evidence: Evidence, project: str, principal: str | None) -> list[Remedy]:
    failure = outcome.failure
    if failure is None:
        return []
    case = _Case(outcome, failure, evidence, project, principal or UNKNOWN_PRINCIPAL)
    out = _BY_CAUSE.get(failure.cause, _unknown)(case)
    if evidence.logs_query:
        out.append(Remedy("See the audit entries in Logs Explorer", url=logs_explorer(project, evidence.logs_query)))
    return out


def _iam(c: _Case) -> list[Remedy]:
    out: list[Remedy] = []
    if c.evidence.predict_granted:
        out += [
            Remedy(
                "Find the deny policy that blocks it, on the project",
                f"gcloud iam policies list --attachment-point=cloudresourcemanager.googleapis.com/projects/{c.p} "
                "--kind=denypolicies --format=json",
            ),
            Remedy("…or on a folder or the organization above it", ancestors_policies(c.project, include_deny=True)),
        ]
    else:
        change = c.evidence.change
        role = change.role if change and change.role else LEAST_PRIVILEGE_ROLE
        if role in ("roles/owner", "roles/editor", "roles/viewer"):
            role = LEAST_PRIVILEGE_ROLE  # restore access with the least privilege, not the basic role
        out.append(
            Remedy(
                f"Grant {role} to the workload's service account",
                f"gcloud projects add-iam-policy-binding {c.p} --member={shlex.quote(member(c.who))} "
                f"--role={shlex.quote(role)} --condition=None",  # the role may come from an audit entry
            )
        )
    out.append(Remedy("Ask Policy Troubleshooter why", url=troubleshooter(c.project, c.who)))
    if c.evidence.data_read_on is False:  # only when sure: off on the project and every ancestor
        out.append(
            Remedy(
                "Turn on Data Access audit logs for Vertex AI so every denial is recorded",
                enable_data_access_logs(c.project),
            )
        )
    elif c.evidence.data_read_on is None and c.evidence.item("audit_config") is not None:
        out.append(
            Remedy(
                "See whether Data Access audit logs are on at a folder or the organization (auditConfigs)",
                ancestors_policies(c.project),
            )
        )
    return out


def _api_disabled(c: _Case) -> list[Remedy]:
    return [
        Remedy(
            "Enable the Vertex AI API",
            f"gcloud services enable {VERTEX} --project={c.p}",
            sanitize.link(c.failure.metadata.get("activationUrl"))
            or f"{CONSOLE}/apis/library/{VERTEX}?project={quote(c.project)}",
        )
    ]


def _billing(c: _Case) -> list[Remedy]:
    return [
        Remedy(
            "Link an open billing account to the project",
            f"gcloud billing projects link {c.p} --billing-account=BILLING_ACCOUNT_ID",
            _help_url(c.failure.links, "billing") or f"{CONSOLE}/billing/linkedaccount?project={quote(c.project)}",
        ),
        Remedy("See the project's billing state", f"gcloud billing projects describe {c.p}"),
    ]


def _vpc_sc(c: _Case) -> list[Remedy]:
    uid = c.failure.metadata.get("uid", "")
    out = [
        Remedy(
            "Open the VPC Service Controls troubleshooter for this denial",
            url=f"{CONSOLE}/security/service-perimeter/troubleshoot;uniqueId={quote(uid, safe='')}"
            f"?project={quote(c.project)}",
        )
    ]
    facts = c.evidence.policy_denial or {}
    perimeter = facts.get("perimeter", "")
    by_source = bool(facts.get("network_detail"))
    if by_source:
        # Direct VPC egress with all traffic sends the canary's calls to Google APIs through the workload's network
        # (docs/google-behaviour.md, "VPC Service Controls by source network"); the deploy tool sets it.
        out.append(
            Remedy(
                "Give the canary the workload's egress (Direct VPC egress, all traffic) so it calls from the network "
                "the perimeter admits",
                f"python -m deploy apply --project {c.p} --region REGION --service-account {c.who} --kind job "
                "--network NETWORK --subnet SUBNET --vpc-egress all-traffic --notify-email ONCALL_EMAIL",
            )
        )
    if perimeter.startswith("accessPolicies/"):
        policy, _, name = perimeter.removeprefix("accessPolicies/").partition("/servicePerimeters/")
        # no network to name: an ingress source of accessLevel "*" admits any source (Access Context Manager,
        # IngressSource.access_level: "*" allows all sources)
        source = facts.get("caller_network") or 'any source (an ingress source with accessLevel "*")'
        title = (
            f"Or inspect the perimeter's ingress rules and access levels (add an ingress rule for the identity from "
            f"{source})"
            if by_source
            else "Inspect the perimeter's ingress rules (add one for the workload's identity)"
        )
        out.append(
            Remedy(
                title,
                f"gcloud access-context-manager perimeters describe {shlex.quote(name)} --policy={shlex.quote(policy)}",
            )
        )
    return out


def _wrong_project(c: _Case) -> list[Remedy]:
    return [
        Remedy(
            "Check the project the canary probes (CANARY_PROJECT or the runtime's project) exists and "
            "is the workload's",
            f"gcloud projects describe {c.p}",
        )
    ]


def _model_unavailable(c: _Case) -> list[Remedy]:
    return [
        Remedy(
            f"Move the target to a location where {c.model} is served, or to a current model version",
            url="https://cloud.google.com/vertex-ai/generative-ai/docs/learn/locations",
        ),
        Remedy(
            "Check model versions and retirement dates",
            url="https://cloud.google.com/vertex-ai/generative-ai/docs/learn/model-versions",
        ),
    ]


def _quota(c: _Case) -> list[Remedy]:
    return [
        Remedy(
            "Check Vertex AI quotas and request an increase",
            url=f"{CONSOLE}/iam-admin/quotas?project={quote(c.project)}&service={VERTEX}",
        ),
        Remedy("Understand 429s on Gemini", url="https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429"),
    ]


def _credentials(c: _Case) -> list[Remedy]:
    if c.failure.lacks_scopes:
        return _scopes(c.project, c.who)
    return [
        Remedy(
            "Check the service account exists and is enabled",
            f"gcloud iam service-accounts describe {shlex.quote(c.who)} --project={c.p}",
        ),
        Remedy(
            "Re-enable it if it was disabled",
            f"gcloud iam service-accounts enable {shlex.quote(c.who)} --project={c.p}",
        ),
    ]


def _transient(c: _Case) -> list[Remedy]:
    return [Remedy("Check Google Cloud's status for Vertex AI", url="https://status.cloud.google.com/")]


def _unknown(c: _Case) -> list[Remedy]:
    return [Remedy("Ask Policy Troubleshooter", url=troubleshooter(c.project, c.who))]


# The remedies of each cause; a cause not listed gets `_unknown`'s (tests/function/test_remedies.py checks the
# table against the Cause enum).
_BY_CAUSE: dict[Cause, Callable[[_Case], list[Remedy]]] = {
    Cause.IAM_PERMISSION_DENIED: _iam,
    Cause.API_DISABLED: _api_disabled,
    Cause.BILLING_DISABLED: _billing,
    Cause.VPC_SC: _vpc_sc,
    Cause.ORG_POLICY: lambda c: _org_policy(constraint_of(c.failure), c.project, c.model),
    Cause.WRONG_PROJECT: _wrong_project,
    Cause.MODEL_UNAVAILABLE: _model_unavailable,
    Cause.QUOTA: _quota,
    Cause.CAPACITY: lambda c: _capacity(c.model, c.outcome.target.location),
    Cause.CREDENTIALS: _credentials,
    Cause.UNAVAILABLE: _transient,
    Cause.DEADLINE: _transient,
}


def _capacity(model: str, location: str) -> list[Remedy]:
    """A 429 from Google's shared pay-as-you-go pool (Dynamic Shared Quota): no quota to raise."""
    out = [
        Remedy(
            f"Google's shared capacity for {model} ran short (no project quota was exceeded, so a quota increase does "
            "not help): retry with exponential backoff; the canary's next run is its retry",
            url="https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429",
        )
    ]
    if location != "global":
        out.append(
            Remedy(
                f"Call {model} through the global endpoint ({model}@global), which draws on more capacity, where the "
                "model is served there and neither VPC Service Controls nor data residency rules it out",
                url="https://cloud.google.com/vertex-ai/generative-ai/docs/learn/locations",
            )
        )
    out.append(
        Remedy(
            "Reserve capacity for the project with Provisioned Throughput",
            url="https://cloud.google.com/vertex-ai/generative-ai/docs/provisioned-throughput",
        )
    )
    return out


def _scopes(project: str, principal: str) -> list[Remedy]:
    """The token lacks the cloud-platform OAuth scope: the runtime's credentials, not an IAM grant."""
    p, sa = shlex.quote(project), shlex.quote(principal)
    vm = f"INSTANCE --zone=ZONE --project={p}"
    return [
        Remedy(
            "Give the workload's token the cloud-platform scope (an OAuth scope, not an IAM grant). On Cloud Run and "
            "Cloud Functions the runtime's token has it, so this token was minted elsewhere or with narrower scopes",
            url="https://cloud.google.com/compute/docs/access/service-accounts",
        ),
        Remedy(
            "On Compute Engine: set the VM's scopes to cloud-platform (the VM must be stopped to change them)",
            f"gcloud compute instances stop {vm} && gcloud compute instances set-service-account {vm} "
            f"--service-account={sa} --scopes=cloud-platform && gcloud compute instances start {vm}",
            "https://cloud.google.com/compute/docs/instances/change-service-account",
        ),
        Remedy(
            "On GKE: use Workload Identity Federation for GKE, or a node pool created with the cloud-platform scope "
            "(a node pool's scopes cannot be changed)",
            f"gcloud container node-pools create POOL --cluster=CLUSTER --location=LOCATION --project={p} "
            f"--service-account={sa} --scopes=cloud-platform",
            "https://cloud.google.com/kubernetes-engine/docs/how-to/workload-identity",
        ),
    ]


def _org_policy(constraint: str, project: str, model: str) -> list[Remedy]:
    """What to look at and what to ask the organization policy administrator, per constraint (the constraint is
    usually set on a folder or the organization, out of the project owner's reach)."""
    describe = f"gcloud org-policies describe {shlex.quote(constraint)} --project={shlex.quote(project)} --effective"
    if constraint == ALLOWED_MODELS:
        return [
            Remedy("See the effective model allowlist (set here, on a folder or the organization)", describe),
            Remedy(
                f"Ask an organization policy administrator to allow publishers/google/models/{model}:predict",
                url="https://cloud.google.com/vertex-ai/generative-ai/docs/control-model-access",
            ),
        ]
    if constraint == RESTRICT_SERVICE_USAGE:
        return [
            Remedy(
                "See which services the organization policy denies (set here, on a folder or the organization)",
                describe,
            ),
            Remedy(
                f"Ask an organization policy administrator to stop denying {VERTEX} to this project "
                "(constraints/gcp.restrictServiceUsage)",
                url="https://cloud.google.com/resource-manager/docs/organization-policy/restricting-services",
            ),
        ]
    return [
        Remedy(f"See the effective constraints/{constraint} (set here, on a folder or the organization)", describe),
        Remedy(f"Ask an organization policy administrator about constraints/{constraint} for this project"),
    ]


def _help_url(links: list[dict[str, str]], word: str) -> str | None:
    """The first Help link about `word` that is Google's (causes.classify has already withheld any other)."""
    return next(
        (
            url
            for lk in links
            if word in lk.get("description", "").lower() and (url := sanitize.link(lk.get("url"))) is not None
        ),
        None,
    )
