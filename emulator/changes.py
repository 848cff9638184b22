"""Admin changes to the world, each recorded the way Google's Admin Activity audit log records it.

The API handlers (Resource Manager, Service Usage, …) and the scenario timeline both make changes through
these functions, so "a person removed the role at 09:10" leaves the same trail as a real SetIamPolicy call.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from emulator import audit, iam
from emulator.world import Project, TimelineEvent, World

_AUDIT_DATA = "type.googleapis.com/google.iam.v1.logging.AuditData"


def policy_json(policy: iam.Policy) -> dict[str, Any]:
    """A Policy in the google.iam.v1 JSON form."""
    doc: dict[str, Any] = {
        "version": policy.version,
        "etag": policy.etag.decode(),
        "bindings": [
            {
                "role": b.role,
                "members": list(b.members),
                **({"condition": b.condition} if b.condition else {}),
            }
            for b in policy.bindings
        ],
    }
    if policy.audit_configs:
        doc["auditConfigs"] = [
            {
                "service": c.service,
                "auditLogConfigs": [
                    {
                        "logType": lc.log_type,
                        **({"exemptedMembers": lc.exempted_members} if lc.exempted_members else {}),
                    }
                    for lc in c.audit_log_configs
                ],
            }
            for c in policy.audit_configs
        ]
    return doc


def set_iam_policy(
    world: World,
    project: Project,
    new: iam.Policy,
    *,
    actor: str,
    at: datetime,
    fields: frozenset[str] = frozenset({"bindings", "etag"}),
    caller_ip: str = "127.0.0.1",
) -> iam.Policy:
    """Replace the fields named by the update mask, bump the etag, and audit the delta."""
    old = copy.deepcopy(project.policy)
    current = project.policy
    if "bindings" in fields:
        current.bindings = [iam.Binding(b.role, sorted(set(b.members)), b.condition) for b in new.bindings if b.members]
        current.version = max(new.version, 1)
    if "audit_configs" in fields:
        current.audit_configs = copy.deepcopy(new.audit_configs)
    current.etag_counter += 1
    delta: dict[str, Any] = {}
    bindings = iam.binding_deltas(old, current)
    if bindings:
        delta["bindingDeltas"] = bindings
    audit_deltas = iam.audit_config_deltas(old, current)
    if audit_deltas:
        delta["auditConfigDeltas"] = audit_deltas
    audit.admin_activity(
        world,
        project,
        email=actor,
        service="cloudresourcemanager.googleapis.com",
        method="SetIamPolicy",
        resource=project.name,
        at=at,
        permission="resourcemanager.projects.setIamPolicy",
        resource_type={"type": "project", "labels": {"project_id": project.project_id}},
        service_data={"@type": _AUDIT_DATA, "policyDelta": delta},
        request={
            "@type": "type.googleapis.com/google.iam.v1.SetIamPolicyRequest",
            "resource": project.name,
            "policy": policy_json(new),
        },
        response={"@type": "type.googleapis.com/google.iam.v1.Policy", **policy_json(current)},
        caller_ip=caller_ip,
    )
    return current


def set_service(
    world: World,
    project: Project,
    service: str,
    enabled: bool,
    *,
    actor: str,
    at: datetime,
    caller_ip: str = "127.0.0.1",
) -> None:
    if enabled:
        project.services.add(service)
    else:
        project.services.discard(service)
    verb = "EnableService" if enabled else "DisableService"
    method = f"google.api.serviceusage.v1.ServiceUsage.{verb}"
    audit.admin_activity(
        world,
        project,
        email=actor,
        service="serviceusage.googleapis.com",
        method=method,
        resource=f"projects/{project.number}/services/{service}",
        at=at,
        permission=f"serviceusage.services.{'enable' if enabled else 'disable'}",
        request={
            "@type": f"type.googleapis.com/google.api.serviceusage.v1.{verb}Request",
            "name": f"projects/{project.number}/services/{service}",
        },
        caller_ip=caller_ip,
    )


def set_billing(world: World, project: Project, enabled: bool, *, actor: str, at: datetime) -> None:
    """Link or unlink the project's billing account.

    Assumption (unverified): the change is audited in the project as UpdateProjectBillingInfo from
    cloudbilling.googleapis.com; Google writes it at least on the billing account.
    """
    project.billing_enabled = enabled
    audit.admin_activity(
        world,
        project,
        email=actor,
        service="cloudbilling.googleapis.com",
        method="google.cloud.billing.v1.CloudBilling.UpdateProjectBillingInfo",
        resource=f"projects/{project.project_id}/billingInfo",
        at=at,
        permission="resourcemanager.projects.createBillingAssignment"
        if enabled
        else "resourcemanager.projects.deleteBillingAssignment",
        request={
            "@type": "type.googleapis.com/google.cloud.billing.v1.UpdateProjectBillingInfoRequest",
            "name": f"projects/{project.project_id}",
            "projectBillingInfo": {"billingEnabled": enabled},
        },
    )


def set_allowed_models(world: World, project: Project, models: list[str] | None, *, actor: str, at: datetime) -> None:
    """Set (or clear, with None) constraints/vertexai.allowedModels on the project.

    Assumption (unverified): audited in the project as orgpolicy.googleapis.com UpdatePolicy/DeletePolicy.
    """
    had = project.allowed_models is not None
    project.allowed_models = list(models) if models is not None else None
    verb = "DeletePolicy" if models is None else ("UpdatePolicy" if had else "CreatePolicy")
    name = f"projects/{project.number}/policies/vertexai.allowedModels"
    spec = {"rules": [{"values": {"allowedValues": models}}]} if models is not None else {}
    audit.admin_activity(
        world,
        project,
        email=actor,
        service="orgpolicy.googleapis.com",
        method=f"google.cloud.orgpolicy.v2.OrgPolicy.{verb}",
        resource=name,
        at=at,
        permission="orgpolicy.policy.set",
        request={
            "@type": f"type.googleapis.com/google.cloud.orgpolicy.v2.{verb}Request",
            "policy": {"name": name, "spec": spec},
        },
    )


def add_deny_rule(world: World, project: Project, rule: iam.DenyRule, *, actor: str, at: datetime) -> None:
    """Attach a deny rule. Assumption (unverified): audited in the project as iam.googleapis.com CreatePolicy."""
    if rule not in world.deny_rules:
        world.deny_rules.append(rule)
    audit.admin_activity(
        world,
        project,
        email=actor,
        service="iam.googleapis.com",
        method="google.iam.v2.Policies.CreatePolicy",
        resource=f"policies/cloudresourcemanager.googleapis.com%2Fprojects%2F{project.project_id}/denypolicies/emulator",
        at=at,
        permission="iam.denypolicies.create",
        request={
            "@type": "type.googleapis.com/google.iam.v2.CreatePolicyRequest",
            "policy": {
                "rules": [
                    {
                        "denyRule": {
                            "deniedPrincipals": [rule.principal],
                            "deniedPermissions": [rule.permission],
                        }
                    }
                ]
            },
        },
    )


# Timeline events ------------------------------------------------------------------------------------


def _binding_change(add: bool) -> Callable[[World, Project, TimelineEvent], None]:
    def apply(world: World, project: Project, event: TimelineEvent) -> None:
        new = copy.deepcopy(project.policy)
        role, member = event.params["role"], event.params["member"]
        binding = next((b for b in new.bindings if b.role == role), None)
        if add:
            if binding is None:
                new.bindings.append(iam.Binding(role, [member]))
            elif member not in binding.members:
                binding.members.append(member)
        elif binding is not None and member in binding.members:
            binding.members.remove(member)
        set_iam_policy(world, project, new, actor=event.actor, at=event.at)

    return apply


def _enable_audit_logs(world: World, project: Project, event: TimelineEvent) -> None:
    new = copy.deepcopy(project.policy)
    service = event.params.get("service", "aiplatform.googleapis.com")
    types = event.params.get("log_types", ["DATA_READ"])
    new.audit_configs = [c for c in new.audit_configs if c.service != service]
    if types:
        new.audit_configs.append(iam.AuditConfig(service, [iam.AuditLogConfig(t) for t in types]))
    set_iam_policy(world, project, new, actor=event.actor, at=event.at, fields=frozenset({"audit_configs"}))


def _revoke_tokens(world: World, project: Project, event: TimelineEvent) -> None:
    world.revoke_tokens(event.params["email"])


def _set_ingestion_lag(world: World, project: Project, event: TimelineEvent) -> None:
    world.ingestion_lag = timedelta(seconds=float(event.params["seconds"]))


ACTIONS: dict[str, Callable[[World, Project, TimelineEvent], None]] = {
    "remove_binding": _binding_change(add=False),
    "add_binding": _binding_change(add=True),
    "disable_service": lambda w, p, e: set_service(w, p, e.params["service"], False, actor=e.actor, at=e.at),
    "enable_service": lambda w, p, e: set_service(w, p, e.params["service"], True, actor=e.actor, at=e.at),
    "disable_billing": lambda w, p, e: set_billing(w, p, False, actor=e.actor, at=e.at),
    "enable_billing": lambda w, p, e: set_billing(w, p, True, actor=e.actor, at=e.at),
    "set_allowed_models": lambda w, p, e: set_allowed_models(w, p, e.params["models"], actor=e.actor, at=e.at),
    "clear_allowed_models": lambda w, p, e: set_allowed_models(w, p, None, actor=e.actor, at=e.at),
    "add_deny": lambda w, p, e: add_deny_rule(
        w, p, iam.DenyRule(e.params["principal"], e.params["permission"]), actor=e.actor, at=e.at
    ),
    "remove_deny": lambda w, p, e: w.deny_rules.remove(iam.DenyRule(e.params["principal"], e.params["permission"])),
    "revoke_tokens": _revoke_tokens,
    "set_audit_logs": _enable_audit_logs,
    "set_ingestion_lag": _set_ingestion_lag,
}

# The parameters each action takes (checked when a scenario is loaded).
ACTION_PARAMS: dict[str, set[str]] = {
    "remove_binding": {"role", "member"},
    "add_binding": {"role", "member"},
    "disable_service": {"service"},
    "enable_service": {"service"},
    "disable_billing": set(),
    "enable_billing": set(),
    "set_allowed_models": {"models"},
    "clear_allowed_models": set(),
    "add_deny": {"principal", "permission"},
    "remove_deny": {"principal", "permission"},
    "revoke_tokens": {"email"},
    "set_audit_logs": {"service", "log_types"},
    "set_ingestion_lag": {"seconds"},
}


def run_event(world: World, event: TimelineEvent) -> None:
    project = world.project(event.params.get("project", world.default_project))
    if project is None:
        return
    ACTIONS[event.action](world, project, event)
