"""Reading Cloud Audit Logs entries: a denied call's facts (data_access), a VPC Service Controls Policy Denied entry's,
and the admin change that explains a failure (a role removed, the API disabled, an organization policy, billing, a
deny policy), as docs/google-behaviour.md describes the entries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from typing import Any

from google.iam.v1 import policy_pb2

from .filters import DISABLE_SERVICE_METHODS, ORG_POLICY_V1_METHODS, VERTEX, member

# Predefined roles that hold aiplatform.endpoints.predict, from Google's role definitions (docs/google-behaviour.md,
# "IAM"; the service-agent roles Google grants to its own agents are left out). A custom role may hold it too; its
# removal is then not named.
PREDICT_ROLES = frozenset(
    {
        "roles/aiplatform.user",
        "roles/aiplatform.admin",
        "roles/aiplatform.editor",
        "roles/aiplatform.expressUser",
        "roles/aiplatform.expressAdmin",
        "roles/aiplatform.serviceAgent",
        "roles/iam.dataScientist",
        "roles/iam.mlEngineer",
        "roles/iam.supportUser",
        "roles/owner",
        "roles/editor",
        "roles/viewer",
    }
)


@dataclass
class Change:
    """An Admin Activity entry that explains a failure: who did what, when."""

    kind: str  # role_removed | deny_policy | service_disabled | billing_changed | org_policy_changed
    actor: str
    at: str
    detail: str
    role: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def payload_of(entry: Any) -> dict[str, Any]:
    """protoPayload of a LogEntry as a JSON-shaped dict (AuditLog unpacked)."""
    from google.cloud.audit import audit_log_pb2  # failure path only: keeps it off the healthy cold start
    from google.protobuf import json_format

    audit = audit_log_pb2.AuditLog()
    if entry.proto_payload.Unpack(audit):  # proto-plus hands proto_payload out as the protobuf Any
        return json_format.MessageToDict(audit)
    return {}


def when(entry: Any) -> str:
    stamp = entry.timestamp
    return stamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if stamp else ""


def pick_policy_denied(entries: list[Any], uids: list[str]) -> Any | None:
    """The Policy Denied entry to cite: this run's own (its unique id) first, even when another is newer; else the
    newest of the principal's earlier ones (entries come newest first)."""
    policies = [e for e in entries if e.log_name.endswith("%2Fpolicy")]
    own = [e for e in policies if policy_facts(e)["unique_id"] in uids]
    return next(iter(own or policies), None)


def denial_facts(entry: Any) -> dict[str, Any]:
    payload = payload_of(entry)
    info = (payload.get("authorizationInfo") or [{}])[0]
    return {
        "timestamp": when(entry),
        "principal": payload.get("authenticationInfo", {}).get("principalEmail", "(redacted)"),
        "permission": info.get("permission", ""),
        "resource": info.get("resource", payload.get("resourceName", "")),
        "method": payload.get("methodName", ""),
        "status": payload.get("status", {}).get("code", 0),
        "insert_id": entry.insert_id,
    }


# Violation reasons of a request whose source the perimeter did not admit: no access level or ingress rule matched
# it, or it came from a VPC network outside the perimeter (docs/google-behaviour.md, "VPC Service Controls by source
# network"). Either way the source network decides, as much as the identity.
SOURCE_REASONS = frozenset({"NO_MATCHING_ACCESS_LEVEL", "NETWORK_NOT_IN_SAME_SERVICE_PERIMETER"})
# A request with no callerNetwork: the deployed canary's comes from Cloud Run's default egress, a probe's from
# wherever it runs.
DEFAULT_EGRESS = "outside any VPC network (Cloud Run's default egress, or the internet)"
_COMPUTE = "//compute.googleapis.com/"


def policy_facts(entry: Any) -> dict[str, Any]:
    payload = payload_of(entry)
    metadata = payload.get("metadata", {})
    # requestMetadata.callerNetwork: the VPC network the request came from, absent for none (audit_log.proto).
    network = str(payload.get("requestMetadata", {}).get("callerNetwork", ""))
    reason = metadata.get("violationReason", "")
    ingress = bool(metadata.get("ingressViolations"))
    return {
        "timestamp": when(entry),
        "unique_id": metadata.get("vpcServiceControlsUniqueId", ""),
        "violation_reason": reason,
        "perimeter": metadata.get("securityPolicyInfo", {}).get("servicePerimeterName", ""),
        "insert_id": entry.insert_id,
        "caller_network": network.removeprefix(_COMPUTE),
        "network_detail": network_detail(reason, network, ingress),
    }


def network_detail(reason: str, network: str, ingress: bool) -> str:
    """Where the refused request came from and what that means, for an ingress denial decided by its source; ""
    otherwise."""
    if reason not in SOURCE_REASONS or not ingress:
        return ""
    where = network.removeprefix(_COMPUTE) if network else DEFAULT_EGRESS
    return (
        f"the request came from {where}; the perimeter's ingress rules and access levels admit this identity from "
        "no such source (they may admit it from the workload's own VPC network)"
    )


def change_of(entry: Any, principal: str | None) -> Change | None:
    payload = payload_of(entry)
    actor = payload.get("authenticationInfo", {}).get("principalEmail", "(unknown)")
    method = payload.get("methodName", "")
    at = when(entry)
    if method == "SetIamPolicy":
        member_name = member(principal) if principal else None
        for delta in payload.get("serviceData", {}).get("policyDelta", {}).get("bindingDeltas", []):
            role = delta.get("role", "")
            # Only a role that grants aiplatform.endpoints.predict explains the denial; another removal doesn't.
            removed = delta.get("action") == policy_pb2.BindingDelta.Action.Name(policy_pb2.BindingDelta.Action.REMOVE)
            if removed and delta.get("member") == member_name and role in PREDICT_ROLES:
                return Change("role_removed", actor, at, f"{role} removed from {member_name}", role=role)
        return None
    if method in DISABLE_SERVICE_METHODS:
        return Change("service_disabled", actor, at, f"{VERTEX} disabled")
    if payload.get("serviceName") == "orgpolicy.googleapis.com" or method in ORG_POLICY_V1_METHODS:
        resource = str(payload.get("resourceName", ""))
        constraint = resource.rsplit("/policies/", 1)[-1] if "/policies/" in resource else ""
        if not constraint:  # v1 names the constraint in the request's policy
            constraint = str(payload.get("request", {}).get("policy", {}).get("constraint", "")).split("/")[-1]
        return Change(
            "org_policy_changed",
            actor,
            at,
            f"organization policy {constraint or '(constraint not recorded)'} changed ({method.rsplit('.', 1)[-1]})",
        )
    if payload.get("serviceName") == "cloudbilling.googleapis.com":
        return Change("billing_changed", actor, at, f"the project's billing changed ({method.rsplit('.', 1)[-1]})")
    if payload.get("serviceName") == "iam.googleapis.com":
        return Change("deny_policy", actor, at, "an IAM deny policy changed")
    return None
