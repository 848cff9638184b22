"""Cloud Audit Logs, written the way Google writes them (LogEntry in its proto3 JSON form).

- data_access: Vertex AI calls that reached the IAM check, allowed or denied, only when DATA_READ is on for
  aiplatform.googleapis.com in the project's auditConfigs (Data Access logs are off by default).
- policy: every VPC Service Controls denial, always (these cannot be turned off).
- activity: admin changes (SetIamPolicy, service enable/disable, org policy), always.

Each entry becomes visible to ListLogEntries only after the world's ingestion lag.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any
from urllib.parse import quote

from emulator.core.clock import rfc3339
from emulator.core.world import Project, World

AUDIT_LOG_TYPE = "type.googleapis.com/google.cloud.audit.AuditLog"


def log_name(project: Project, log_id: str) -> str:
    return f"projects/{project.project_id}/logs/{quote(log_id, safe='')}"


def _principal(email: str) -> dict[str, str]:
    if not email:
        return {}
    kind = "serviceAccount" if email.endswith(".gserviceaccount.com") else "user"
    return {"principalEmail": email, "principalSubject": f"{kind}:{email}"}


def _entry(
    world: World,
    project: Project,
    log_id: str,
    at: datetime,
    severity: str,
    resource: dict[str, Any],
    payload: dict[str, Any],
    log_parent: str = "",
) -> dict[str, Any]:
    name = f"{log_parent}/logs/{quote(log_id, safe='')}" if log_parent else log_name(project, log_id)
    return {
        "insertId": secrets.token_hex(6),
        "logName": name,
        "resource": resource,
        "timestamp": rfc3339(at),
        "receiveTimestamp": rfc3339(at + world.ingestion_lag),
        "severity": severity,
        "protoPayload": {"@type": AUDIT_LOG_TYPE, **payload},
    }


def _audited_resource(project: Project, service: str, method: str) -> dict[str, Any]:
    return {
        "type": "audited_resource",
        "labels": {"service": service, "method": method, "project_id": project.project_id},
    }


def _status(code: int, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    if code == 0:
        return {}
    status: dict[str, Any] = {"code": code, "message": message}
    if details:
        status["details"] = details
    return status


def vertex_data_access(
    world: World,
    project: Project,
    *,
    email: str,
    method: str,
    resource: str,
    permission: str,
    granted: bool,
    code: int,
    message: str,
    user_agent: str,
    caller_ip: str,
    request_type: str,
) -> None:
    """The data_access entry of a Vertex AI call, if DATA_READ is on for the service and the caller isn't exempt."""
    service = "aiplatform.googleapis.com"
    member = _principal(email).get("principalSubject", "")
    if not world.audit_log_on(project, service, "DATA_READ", member):
        return
    at = world.clock.now()
    # Assumption: a denied read's caller is always redacted unless it is a service account; Google says it may
    # be (logging/docs/audit, "Caller identities"), so the canary's queries cannot depend on it.
    shown = email if (granted or email.endswith(".gserviceaccount.com")) else ""
    payload: dict[str, Any] = {
        "status": _status(code, message),
        "authenticationInfo": _principal(shown),
        "requestMetadata": {
            "callerIp": caller_ip,
            "callerSuppliedUserAgent": f"{user_agent},gzip(gfe)" if user_agent else "",
            "requestAttributes": {"time": rfc3339(at), "auth": {}},
            "destinationAttributes": {},
        },
        "serviceName": service,
        "methodName": method,
        "authorizationInfo": [
            {
                "resource": resource,
                "permission": permission,
                "granted": granted,
                "resourceAttributes": {},
                "permissionType": "DATA_READ",
            }
        ],
        "resourceName": resource,
        "request": {"@type": request_type, "model": resource},
    }
    if not payload["status"]:
        del payload["status"]
    # Assumption (unverified for code 7): a non-OK call is logged at ERROR, as the one error sample shows.
    severity = "INFO" if code == 0 else "ERROR"
    world.append_log(
        _entry(
            world,
            project,
            "cloudaudit.googleapis.com/data_access",
            at,
            severity,
            _audited_resource(project, service, method),
            payload,
        ),
        at,
    )


def vpc_sc_policy_denied(
    world: World,
    project: Project,
    *,
    email: str,
    service: str,
    method: str,
    resource: str,
    uid: str,
    message: str,
    caller_ip: str,
    reason: str = "",
    network: str = "",
) -> None:
    """The Policy Denied entry of a VPC Service Controls denial, in the protected project.

    `reason` is the violation reason (default: the perimeter's, else NO_MATCHING_ACCESS_LEVEL); `network` the VPC
    network the request came from (projects/P/global/networks/N), "" for none. Google records the caller's network
    in `requestMetadata.callerNetwork` as a scheme-less full resource name, set only when the network's host project
    is in the same organization as the resource (google/cloud/audit/audit_log.proto, RequestMetadata.caller_network);
    every network the emulator knows is in its one organization, so it is set whenever there is one.
    """
    perimeter = world.perimeter
    assert perimeter is not None
    at = world.clock.now()
    metadata: dict[str, Any] = {
        "@type": "type.googleapis.com/google.cloud.audit.VpcServiceControlAuditMetadata",
        "violationReason": reason or perimeter.violation_reason or "NO_MATCHING_ACCESS_LEVEL",
        "resourceNames": [f"projects/{project.number}"],
        "securityPolicyInfo": {
            "servicePerimeterName": perimeter.name,
            "organizationId": perimeter.organization_id,
        },
        "deviceState": "Unknown",
        "vpcServiceControlsUniqueId": uid,
        "ingressViolations": [{"targetResource": f"projects/{project.number}", "servicePerimeter": perimeter.name}],
    }
    if perimeter.dry_run:
        metadata["dryRun"] = True
    payload = {
        "status": _status(
            7,
            message,
            [
                {
                    "@type": "type.googleapis.com/google.rpc.PreconditionFailure",
                    "violations": [{"type": "VPC_SERVICE_CONTROLS", "description": uid}],
                }
            ],
        ),
        "authenticationInfo": _principal(email),
        "requestMetadata": {
            "callerIp": caller_ip,
            **({"callerNetwork": f"//compute.googleapis.com/{network}"} if network else {}),
            "requestAttributes": {},
            "destinationAttributes": {},
        },
        "serviceName": service,
        "methodName": method,
        "resourceName": resource,
        "metadata": metadata,
    }
    world.append_log(
        _entry(
            world,
            project,
            "cloudaudit.googleapis.com/policy",
            at,
            "ERROR",
            _audited_resource(project, service, method),
            payload,
        ),
        at,
    )


def admin_activity(
    world: World,
    project: Project,
    *,
    email: str,
    service: str,
    method: str,
    resource: str,
    at: datetime,
    permission: str = "",
    resource_type: dict[str, Any] | None = None,
    service_data: dict[str, Any] | None = None,
    request: dict[str, Any] | None = None,
    response: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    caller_ip: str = "127.0.0.1",
    log_parent: str = "",
    operation: dict[str, Any] | None = None,
) -> None:
    """An Admin Activity entry: who changed what, when. Always written; cannot be turned off.

    A change to a folder or the organization is written to that resource's own audit log (`log_parent`, e.g.
    folders/N), which a query on the project does not see (docs/google-behaviour.md, "Cloud Audit Logs").
    `operation` is the LogEntry's operation field (id, producer, first / last) of a long-running operation's entries.
    """
    payload: dict[str, Any] = {
        "authenticationInfo": _principal(email),
        "requestMetadata": {"callerIp": caller_ip, "requestAttributes": {}, "destinationAttributes": {}},
        "serviceName": service,
        "methodName": method,
        "authorizationInfo": [
            {"resource": resource, "permission": permission, "granted": True, "resourceAttributes": {}}
        ]
        if permission
        else [],
        "resourceName": resource,
    }
    for key, value in (
        ("serviceData", service_data),
        ("request", request),
        ("response", response),
        ("metadata", metadata),
    ):
        if value is not None:
            payload[key] = value
    resource_block = resource_type or _audited_resource(project, service, method)
    entry = _entry(
        world, project, "cloudaudit.googleapis.com/activity", at, "NOTICE", resource_block, payload, log_parent
    )
    if operation is not None:
        entry["operation"] = operation
    world.append_log(entry, at)
