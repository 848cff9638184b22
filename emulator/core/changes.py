"""Admin changes to the world, each recorded the way Google's Admin Activity audit log records it.

The API handlers (Resource Manager, Service Usage, …) and the scenario timeline both make changes through
these functions, so "a person removed the role at 09:10" leaves the same trail as a real SetIamPolicy call.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from emulator.core import audit, iam
from emulator.core.policy_wire import policy_json
from emulator.core.world import Node, Project, TimelineEvent, World

_AUDIT_DATA = "type.googleapis.com/google.iam.v1.logging.AuditData"


def set_iam_policy(
    world: World,
    project: Project,
    new: iam.Policy,
    *,
    actor: str,
    at: datetime,
    fields: frozenset[str] = frozenset({"bindings", "etag"}),
    caller_ip: str = "127.0.0.1",
    holder: Node | None = None,
) -> iam.Policy:
    """Replace the fields named by the update mask, bump the etag, and audit the delta.

    With `holder`, the folder's or organization's policy changes instead, audited in that resource's own log.
    """
    old = copy.deepcopy((holder or project).policy)
    current = (holder or project).policy
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
    where: dict[str, Any] = {
        "resource_type": {"type": "project", "labels": {"project_id": project.project_id}},
        **(_node_log(holder) if holder is not None else {}),
    }
    name = holder.name if holder is not None else project.name
    audit.admin_activity(
        world,
        project,
        email=actor,
        service="cloudresourcemanager.googleapis.com",
        method="SetIamPolicy",
        resource=name,
        at=at,
        permission=f"resourcemanager.{holder.kind if holder else 'projects'}.setIamPolicy",
        service_data={"@type": _AUDIT_DATA, "policyDelta": delta},
        request={
            "@type": "type.googleapis.com/google.iam.v1.SetIamPolicyRequest",
            "resource": name,
            "policy": policy_json(new),
        },
        response={"@type": "type.googleapis.com/google.iam.v1.Policy", **policy_json(current)},
        caller_ip=caller_ip,
        **where,
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
    version: str = "v1",
) -> None:
    """Enable or disable a service, audited with the methodName of the API version used: Service Usage v1 and
    v1beta1 both serve Enable/DisableService (google/api/serviceusage/v1 and v1beta1 protos)."""
    if enabled:
        project.services.add(service)
    else:
        project.services.discard(service)
    verb = "EnableService" if enabled else "DisableService"
    method = f"google.api.serviceusage.{version}.ServiceUsage.{verb}"
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
            "@type": f"type.googleapis.com/google.api.serviceusage.{version}.{verb}Request",
            "name": f"projects/{project.number}/services/{service}",
        },
        caller_ip=caller_ip,
    )


def set_billing(world: World, project: Project, enabled: bool, *, actor: str, at: datetime) -> None:
    """Link or unlink the project's billing account.

    The methodNames are the ones Cloud Billing's audit logging page lists as ADMIN_WRITE:
    AssignResourceToBillingAccount (link) and DisableResourceBilling (unlink) (docs/google-behaviour.md,
    "Cloud Billing").
    Assumption (unverified): the entry is written in the project's Admin Activity log as well as the billing
    account's; the request payload is not modelled.
    """
    project.billing_enabled = enabled
    audit.admin_activity(
        world,
        project,
        email=actor,
        service="cloudbilling.googleapis.com",
        method="AssignResourceToBillingAccount" if enabled else "DisableResourceBilling",
        resource=f"projects/{project.project_id}",
        at=at,
        permission="resourcemanager.projects.createBillingAssignment"
        if enabled
        else "resourcemanager.projects.deleteBillingAssignment",
    )


# Organization policy constraints the emulator enforces: constraint → (attribute on Project/Node, value kind).
CONSTRAINTS = {
    "vertexai.allowedModels": ("allowed_models", "allowedValues"),
    "gcp.restrictServiceUsage": ("denied_services", "deniedValues"),
}


def _holder_name(world: World, holder: Project | Node) -> str:
    return f"projects/{holder.number}" if isinstance(holder, Project) else holder.name


def _node_log(holder: Project | Node) -> dict[str, Any]:
    """Where a change to `holder` is audited: a project's own log, or the folder's / organization's."""
    if isinstance(holder, Project):
        return {}
    kind, _, number = holder.name.partition("/")
    label = "folder_id" if kind == "folders" else "organization_id"
    return {"log_parent": holder.name, "resource_type": {"type": kind.removesuffix("s"), "labels": {label: number}}}


def set_org_policy(
    world: World,
    project: Project,
    constraint: str,
    values: list[str] | None,
    *,
    actor: str,
    at: datetime,
    holder: Project | Node | None = None,
) -> None:
    """Set (or clear, with None) a list constraint on a project, folder or the organization.

    Audited as orgpolicy.googleapis.com google.cloud.orgpolicy.v2.OrgPolicy.Create/Update/DeletePolicy in the
    Admin Activity log of the resource the policy is set on (docs/google-behaviour.md, "Organization policy");
    a folder's or the organization's change is therefore not in the project's log.
    Assumption (unverified): the request payload is the v2 request with the policy's spec.
    """
    target = holder or project
    attribute, kind = CONSTRAINTS[constraint]
    had = getattr(target, attribute) is not None
    setattr(target, attribute, list(values) if values is not None else None)
    verb = "DeletePolicy" if values is None else ("UpdatePolicy" if had else "CreatePolicy")
    name = f"{_holder_name(world, target)}/policies/{constraint}"
    spec = {"rules": [{"values": {kind: values}}]} if values is not None else {}
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
        **_node_log(target),
    )


def set_allowed_models(world: World, project: Project, models: list[str] | None, *, actor: str, at: datetime) -> None:
    """Set (or clear, with None) constraints/vertexai.allowedModels on the project."""
    set_org_policy(world, project, "vertexai.allowedModels", models, actor=actor, at=at)


def add_deny_rule(world: World, project: Project, rule: iam.DenyRule, *, actor: str, at: datetime) -> None:
    """Attach a deny rule to the project, a folder or the organization (`rule.attached_to`).

    Assumption (unverified): audited as iam.googleapis.com google.iam.v2.Policies.CreatePolicy in the Admin Activity
    log of the resource it is attached to.
    """
    if rule not in world.deny_rules:
        world.deny_rules.append(rule)
    point = rule.attached_to or world.organization.name
    holder = world.resource(point) or project
    attachment = _holder_name(world, holder).replace("/", "%2F")
    if isinstance(holder, Project):
        attachment = f"projects%2F{holder.project_id}"
    audit.admin_activity(
        world,
        project,
        email=actor,
        service="iam.googleapis.com",
        method="google.iam.v2.Policies.CreatePolicy",
        resource=f"policies/cloudresourcemanager.googleapis.com%2F{attachment}/denypolicies/emulator",
        at=at,
        permission="iam.denypolicies.create",
        request={
            "@type": "type.googleapis.com/google.iam.v2.CreatePolicyRequest",
            "policy": {
                "rules": [
                    {
                        "denyRule": {
                            "deniedPrincipals": [iam.v2_principal(rule.principal)],
                            "deniedPermissions": [iam.v2_permission(rule.permission)],
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


def _node(world: World, event: TimelineEvent) -> Node | None:
    """The folder or organization an event names with `resource`; None for the project itself."""
    name = event.params.get("resource", "")
    if not name or name.startswith("projects/"):
        return None
    holder = world.resource(name)
    return holder if isinstance(holder, Node) else None


def _enable_audit_logs(world: World, project: Project, event: TimelineEvent) -> None:
    holder = _node(world, event)
    new = copy.deepcopy((holder or project).policy)
    service = event.params.get("service", "aiplatform.googleapis.com")
    types = event.params.get("log_types", ["DATA_READ"])
    new.audit_configs = [c for c in new.audit_configs if c.service != service]
    if types:
        new.audit_configs.append(iam.AuditConfig(service, [iam.AuditLogConfig(t) for t in types]))
    set_iam_policy(
        world, project, new, actor=event.actor, at=event.at, fields=frozenset({"audit_configs"}), holder=holder
    )


def _org_policy(constraint: str, clear: bool) -> Callable[[World, Project, TimelineEvent], None]:
    def apply(world: World, project: Project, event: TimelineEvent) -> None:
        values = None if clear else list(event.params["models" if constraint.startswith("vertexai") else "services"])
        set_org_policy(world, project, constraint, values, actor=event.actor, at=event.at, holder=_node(world, event))

    return apply


def _deny_rule(event: TimelineEvent) -> iam.DenyRule:
    return iam.DenyRule(event.params["principal"], event.params["permission"], event.params.get("attached_to", ""))


def _revoke_tokens(world: World, project: Project, event: TimelineEvent) -> None:
    world.revoke_tokens(event.params["email"])


def _set_ingestion_lag(world: World, project: Project, event: TimelineEvent) -> None:
    world.ingestion_lag = timedelta(seconds=float(event.params["seconds"]))


ACTIONS: dict[str, Callable[[World, Project, TimelineEvent], None]] = {
    "remove_binding": _binding_change(add=False),
    "add_binding": _binding_change(add=True),
    "disable_service": lambda w, p, e: set_service(
        w, p, e.params["service"], False, actor=e.actor, at=e.at, version=e.params.get("api_version", "v1")
    ),
    "enable_service": lambda w, p, e: set_service(
        w, p, e.params["service"], True, actor=e.actor, at=e.at, version=e.params.get("api_version", "v1")
    ),
    "disable_billing": lambda w, p, e: set_billing(w, p, False, actor=e.actor, at=e.at),
    "enable_billing": lambda w, p, e: set_billing(w, p, True, actor=e.actor, at=e.at),
    "set_allowed_models": _org_policy("vertexai.allowedModels", clear=False),
    "clear_allowed_models": _org_policy("vertexai.allowedModels", clear=True),
    "set_denied_services": _org_policy("gcp.restrictServiceUsage", clear=False),
    "clear_denied_services": _org_policy("gcp.restrictServiceUsage", clear=True),
    "add_deny": lambda w, p, e: add_deny_rule(w, p, _deny_rule(e), actor=e.actor, at=e.at),
    "remove_deny": lambda w, p, e: w.deny_rules.remove(_deny_rule(e)) if _deny_rule(e) in w.deny_rules else None,
    "revoke_tokens": _revoke_tokens,
    "set_audit_logs": _enable_audit_logs,
    "set_ingestion_lag": _set_ingestion_lag,
}

# The parameters each action takes (checked when a scenario is loaded).
ACTION_PARAMS: dict[str, set[str]] = {
    "remove_binding": {"role", "member"},
    "add_binding": {"role", "member"},
    "disable_service": {"service", "api_version"},
    "enable_service": {"service", "api_version"},
    "disable_billing": set(),
    "enable_billing": set(),
    "set_allowed_models": {"models", "resource"},
    "clear_allowed_models": {"resource"},
    "set_denied_services": {"services", "resource"},
    "clear_denied_services": {"resource"},
    "add_deny": {"principal", "permission", "attached_to"},
    "remove_deny": {"principal", "permission", "attached_to"},
    "revoke_tokens": {"email"},
    "set_audit_logs": {"service", "log_types", "resource"},
    "set_ingestion_lag": {"seconds"},
}


def run_event(world: World, event: TimelineEvent) -> None:
    project = world.project(event.params.get("project", world.default_project))
    if project is None:
        return
    ACTIONS[event.action](world, project, event)
