"""The Cloud Logging filters the canary's evidence queries use, built only from validated values, quoted with escapes,
and every one bounded in time (docs/google-behaviour.md, "Cloud Audit Logs" and "Service Usage")."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime

from google.rpc import code_pb2

from .causes import ALLOWED_MODELS, Cause

VERTEX = "aiplatform.googleapis.com"
# Service Usage writes DisableService under the API version the caller used (docs/google-behaviour.md).
DISABLE_SERVICE_METHODS = (
    "google.api.serviceusage.v1.ServiceUsage.DisableService",
    "google.api.serviceusage.v1beta1.ServiceUsage.DisableService",
)
# Organization-policy changes: v2 (orgpolicy.googleapis.com) and v1 (cloudresourcemanager.googleapis.com).
ORG_POLICY_V1_METHODS = ("SetOrgPolicy", "ClearOrgPolicy")
# \Z, not $: "$" also matches before a trailing newline, which would then sit inside a filter literal
SAFE_VALUE = re.compile(r"^[A-Za-z0-9@._:/%+\-]{1,512}\Z")


def member(principal: str) -> str:
    """The IAM member form of a principal, as allow policies and audit entries write it. A placeholder that is no
    e-mail address (the remedies' SERVICE_ACCOUNT_EMAIL) stands for the workload's service account."""
    service_account = principal.endswith(".gserviceaccount.com") or "@" not in principal
    return ("serviceAccount:" if service_account else "user:") + principal


def quote(value: str) -> str:
    """A Logging query string literal. Values are validated first; quoting is the second line of defence."""
    if not SAFE_VALUE.match(value):
        raise ValueError(f"refusing to put {value!r} into a Logging filter")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def since(at: datetime) -> str:
    return f"timestamp>={quote(at.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ'))}"


def denial_filter(
    project: str, principal: str | None, uids: Iterable[str], want_data_access: bool, start: datetime
) -> str | None:
    """One filter for both denial records: the data_access entry and the VPC-SC Policy Denied entry."""
    parts = []
    if want_data_access:
        clause = (
            f"logName={quote(f'projects/{project}/logs/cloudaudit.googleapis.com%2Fdata_access')} "
            f"AND protoPayload.serviceName={quote(VERTEX)} AND protoPayload.status.code={code_pb2.PERMISSION_DENIED}"
        )
        if principal:
            clause += f" AND protoPayload.authenticationInfo.principalEmail={quote(principal)}"
        parts.append(f"({clause})")
    uid_list = sorted(set(uids))
    if uid_list:
        who = " OR ".join(f"protoPayload.metadata.vpcServiceControlsUniqueId={quote(u)}" for u in uid_list)
        if principal:
            who += f" OR protoPayload.authenticationInfo.principalEmail={quote(principal)}"
        # a dry-run violation was not enforced: it must not stand in for the denial (docs/google-behaviour.md)
        parts.append(
            f'(LOG_ID("cloudaudit.googleapis.com/policy") AND NOT protoPayload.metadata.dryRun=true AND ({who}))'
        )
    if not parts:
        return None
    return f"{since(start)} AND ({' OR '.join(parts)})"


def activity_filter(
    project: str, principal: str | None, causes: set[Cause], start: datetime, constraints: Iterable[str] = ()
) -> str | None:
    """The Admin Activity entries that would explain the failures seen."""
    parts = []
    if Cause.IAM_PERMISSION_DENIED in causes:
        if principal:
            parts.append(
                f'(protoPayload.methodName="SetIamPolicy" AND '
                f"protoPayload.serviceData.policyDelta.bindingDeltas.member={quote(member(principal))})"
            )
        # a deny-policy change explains the denial whoever the principal is, known or not
        parts.append('(protoPayload.serviceName="iam.googleapis.com" AND protoPayload.methodName:"Policies")')
    if Cause.API_DISABLED in causes:
        methods = " OR ".join(f"protoPayload.methodName={quote(m)}" for m in DISABLE_SERVICE_METHODS)
        parts.append(f"(({methods}) AND protoPayload.resourceName:{quote(VERTEX)})")
    if Cause.BILLING_DISABLED in causes:
        parts.append('(protoPayload.serviceName="cloudbilling.googleapis.com")')
    if Cause.ORG_POLICY in causes:
        names = sorted(set(constraints) or {ALLOWED_MODELS})
        which = " OR ".join(f"protoPayload.resourceName:{quote(n)}" for n in names)
        v1 = " OR ".join(f"protoPayload.methodName={quote(m)}" for m in ORG_POLICY_V1_METHODS)
        parts.append(
            f'((protoPayload.serviceName="orgpolicy.googleapis.com" AND ({which})) OR '
            f'(protoPayload.serviceName="cloudresourcemanager.googleapis.com" AND ({v1})))'
        )
    if not parts:
        return None
    log = quote(f"projects/{project}/logs/cloudaudit.googleapis.com%2Factivity")
    return f"logName={log} AND {since(start)} AND ({' OR '.join(parts)})"
