"""IAM: the role catalogue, allow policies, deny rules and the one permission check every API uses.

The catalogue lists, for each predefined role, the real permission names the emulated APIs check plus the
neighbours a reader expects to see (a subset of Google's full list for the large roles). The basic roles are
rules rather than lists, as they are on Google Cloud: owner has every permission; editor every permission but
IAM-policy changes and private (Data Access) log reads; viewer the read-only ones (get, list, getIamPolicy) and,
as Google's viewer does, aiplatform.endpoints.predict. Role contents were checked against Google's own role
definitions (docs/google-behaviour.md, "IAM"): no permission here is one Google does not have.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

_VIEWER_LOGGING = (
    "logging.buckets.get",
    "logging.buckets.list",
    "logging.exclusions.get",
    "logging.exclusions.list",
    "logging.logEntries.list",
    "logging.logMetrics.get",
    "logging.logMetrics.list",
    "logging.logServiceIndexes.list",
    "logging.logServices.list",
    "logging.logs.list",
    "logging.queries.listShared",
    "logging.sinks.get",
    "logging.sinks.list",
    "logging.usage.get",
    "logging.views.get",
    "logging.views.list",
    "resourcemanager.projects.get",
)

_MONITORING_EDITOR = (
    "monitoring.alertPolicies.create",
    "monitoring.alertPolicies.delete",
    "monitoring.alertPolicies.get",
    "monitoring.alertPolicies.list",
    "monitoring.alertPolicies.update",
    "monitoring.dashboards.create",
    "monitoring.dashboards.delete",
    "monitoring.dashboards.get",
    "monitoring.dashboards.list",
    "monitoring.dashboards.update",
    "monitoring.metricDescriptors.create",
    "monitoring.metricDescriptors.delete",
    "monitoring.metricDescriptors.get",
    "monitoring.metricDescriptors.list",
    "monitoring.monitoredResourceDescriptors.get",
    "monitoring.monitoredResourceDescriptors.list",
    "monitoring.notificationChannelDescriptors.get",
    "monitoring.notificationChannelDescriptors.list",
    "monitoring.notificationChannels.create",
    "monitoring.notificationChannels.delete",
    "monitoring.notificationChannels.get",
    "monitoring.notificationChannels.list",
    "monitoring.notificationChannels.update",
    "monitoring.timeSeries.create",
    "monitoring.timeSeries.list",
    "resourcemanager.projects.get",
)

ROLES: dict[str, frozenset[str]] = {
    "roles/aiplatform.user": frozenset(
        {
            "aiplatform.endpoints.get",
            "aiplatform.endpoints.list",
            "aiplatform.endpoints.predict",
            "aiplatform.models.get",
            "aiplatform.models.list",
            "aiplatform.locations.get",
            "aiplatform.locations.list",
            "aiplatform.operations.list",
            "resourcemanager.projects.get",
            "resourcemanager.projects.list",
        }
    ),
    "roles/aiplatform.viewer": frozenset(
        {
            "aiplatform.endpoints.get",
            "aiplatform.endpoints.list",
            "aiplatform.models.get",
            "aiplatform.models.list",
            "aiplatform.locations.get",
            "aiplatform.locations.list",
            "aiplatform.operations.list",
            "resourcemanager.projects.get",
            "resourcemanager.projects.list",
        }
    ),
    "roles/logging.viewer": frozenset(_VIEWER_LOGGING),
    "roles/logging.privateLogViewer": frozenset({*_VIEWER_LOGGING, "logging.privateLogEntries.list"}),
    "roles/logging.logWriter": frozenset({"logging.logEntries.create", "logging.logEntries.route"}),
    "roles/monitoring.metricWriter": frozenset(
        {
            "monitoring.metricDescriptors.create",
            "monitoring.metricDescriptors.get",
            "monitoring.metricDescriptors.list",
            "monitoring.monitoredResourceDescriptors.get",
            "monitoring.monitoredResourceDescriptors.list",
            "monitoring.timeSeries.create",
        }
    ),
    "roles/monitoring.viewer": frozenset(p for p in _MONITORING_EDITOR if p.endswith((".get", ".list"))),
    "roles/monitoring.editor": frozenset(_MONITORING_EDITOR),
    # Monitoring Admin holds monitoring.*; Google asks for it on the scoping project and on each project added to a
    # metrics scope (the Metrics Scopes methods check monitoring.metricsScopes.link on both).
    "roles/monitoring.admin": frozenset({*_MONITORING_EDITOR, "monitoring.metricsScopes.link"}),
    "roles/monitoring.alertPolicyEditor": frozenset(
        {
            "monitoring.alertPolicies.create",
            "monitoring.alertPolicies.delete",
            "monitoring.alertPolicies.get",
            "monitoring.alertPolicies.list",
            "monitoring.alertPolicies.update",
        }
    ),
    "roles/resourcemanager.projectIamAdmin": frozenset(
        {
            "resourcemanager.projects.get",
            "resourcemanager.projects.getIamPolicy",
            "resourcemanager.projects.setIamPolicy",
        }
    ),
    "roles/serviceusage.serviceUsageAdmin": frozenset(
        {
            "serviceusage.quotas.get",
            "serviceusage.quotas.update",
            "serviceusage.services.disable",
            "serviceusage.services.enable",
            "serviceusage.services.get",
            "serviceusage.services.list",
            "serviceusage.services.use",
            "serviceusage.operations.get",
            "resourcemanager.projects.get",
        }
    ),
    "roles/serviceusage.serviceUsageConsumer": frozenset(
        {"serviceusage.services.get", "serviceusage.services.list", "serviceusage.services.use"}
    ),
    # Google's securityReviewer reads every IAM policy and the logs (both log permissions), but cannot get a folder
    # or the organization (no resourcemanager.*.get): roles/browser can.
    "roles/iam.securityReviewer": frozenset(
        {
            "resourcemanager.projects.getIamPolicy",
            "resourcemanager.folders.getIamPolicy",
            "resourcemanager.organizations.getIamPolicy",
            "iam.denypolicies.list",
            "iam.roles.get",
            "iam.roles.list",
            "logging.logEntries.list",
            "logging.privateLogEntries.list",
        }
    ),
    "roles/browser": frozenset(
        {
            "resourcemanager.folders.get",
            "resourcemanager.folders.list",
            "resourcemanager.organizations.get",
            "resourcemanager.projects.get",
            "resourcemanager.projects.getIamPolicy",
            "resourcemanager.projects.list",
        }
    ),
    "roles/resourcemanager.folderViewer": frozenset(
        {
            "orgpolicy.constraints.list",
            "orgpolicy.policies.list",
            "orgpolicy.policy.get",
            "resourcemanager.folders.get",
            "resourcemanager.folders.list",
            "resourcemanager.projects.get",
            "resourcemanager.projects.list",
        }
    ),
    "roles/resourcemanager.organizationViewer": frozenset({"resourcemanager.organizations.get"}),
    "roles/iam.denyReviewer": frozenset({"iam.denypolicies.get", "iam.denypolicies.list"}),
    "roles/iam.serviceAccountUser": frozenset(
        {"iam.serviceAccounts.actAs", "iam.serviceAccounts.get", "iam.serviceAccounts.list"}
    ),
    # Google's predefined-role reference (cloud.google.com/iam/docs/roles-permissions/iam): Token Creator mints
    # every kind of short-lived credential of an account; the OpenID Connect Identity Token Creator only ID tokens.
    "roles/iam.serviceAccountTokenCreator": frozenset(
        {
            "iam.serviceAccounts.get",
            "iam.serviceAccounts.getAccessToken",
            "iam.serviceAccounts.getOpenIdToken",
            "iam.serviceAccounts.implicitDelegation",
            "iam.serviceAccounts.list",
            "iam.serviceAccounts.signBlob",
            "iam.serviceAccounts.signJwt",
            "resourcemanager.projects.get",
            "resourcemanager.projects.list",
        }
    ),
    "roles/iam.serviceAccountOpenIdTokenCreator": frozenset({"iam.serviceAccounts.getOpenIdToken"}),
    "roles/iam.serviceAccountAdmin": frozenset(
        {
            "iam.serviceAccounts.create",
            "iam.serviceAccounts.delete",
            "iam.serviceAccounts.get",
            "iam.serviceAccounts.getIamPolicy",
            "iam.serviceAccounts.list",
            "iam.serviceAccounts.setIamPolicy",
            "iam.serviceAccounts.update",
        }
    ),
    # What a function's build needs of its build account (services/functions.py, BUILD_PERMISSIONS) and neighbours.
    "roles/cloudbuild.builds.builder": frozenset(
        {
            "artifactregistry.repositories.downloadArtifacts",
            "artifactregistry.repositories.uploadArtifacts",
            "cloudbuild.builds.create",
            "cloudbuild.builds.get",
            "cloudbuild.builds.list",
            "cloudbuild.builds.update",
            "logging.logEntries.create",
            "storage.objects.create",
            "storage.objects.get",
            "storage.objects.list",
        }
    ),
    "roles/artifactregistry.writer": frozenset(
        {"artifactregistry.repositories.downloadArtifacts", "artifactregistry.repositories.uploadArtifacts"}
    ),
    "roles/storage.objectViewer": frozenset({"storage.objects.get", "storage.objects.list"}),
    "roles/run.invoker": frozenset({"run.routes.invoke", "run.jobs.run"}),
    # Cloud Run Developer: read and write services, jobs and executions, no IAM policies (Cloud Run IAM roles page;
    # the job and execution permissions are those the v1 jobs and executions methods check).
    "roles/run.developer": frozenset(
        {
            *(f"run.jobs.{verb}" for verb in ("create", "delete", "get", "getIamPolicy", "list", "run", "update")),
            *(f"run.executions.{verb}" for verb in ("cancel", "delete", "get", "list")),
            "run.services.get",
            "run.services.list",
        }
    ),
    # Cloud Run Admin: run.* and resourcemanager.projects.get/list (Cloud Run IAM roles page); here, every Cloud Run
    # permission the emulated methods check, IAM policies of services and jobs included.
    "roles/run.admin": frozenset(
        {
            *(
                f"run.jobs.{verb}"
                for verb in (
                    "create",
                    "delete",
                    "get",
                    "getIamPolicy",
                    "list",
                    "run",
                    "runWithOverrides",
                    "setIamPolicy",
                    "update",
                )
            ),
            *(f"run.executions.{verb}" for verb in ("cancel", "delete", "get", "list")),
            *(
                f"run.services.{verb}"
                for verb in ("create", "delete", "get", "getIamPolicy", "list", "setIamPolicy", "update")
            ),
            "run.routes.invoke",
            "run.builds.create",
            "resourcemanager.projects.get",
            "resourcemanager.projects.list",
        }
    ),
    # Cloud Run Source Developer: what deploying from source needs of the deployer (the build-service-account page
    # names it with Service Usage Consumer and Service Account User; Cloud Run's IAM roles page lists it): Cloud Run
    # jobs and builds, the staging bucket and its objects, the cloud-run-source-deploy repository, the build itself.
    # The permissions here are those the emulated calls check.
    "roles/run.sourceDeveloper": frozenset(
        {
            *(f"run.jobs.{verb}" for verb in ("create", "delete", "get", "list", "run", "update")),
            *(f"run.executions.{verb}" for verb in ("cancel", "delete", "get", "list")),
            "run.builds.create",
            "run.services.get",
            "run.services.list",
            "storage.buckets.create",
            "storage.buckets.get",
            "storage.buckets.list",
            "storage.objects.create",
            "storage.objects.get",
            "artifactregistry.repositories.create",
            "artifactregistry.repositories.get",
            "artifactregistry.repositories.list",
            "artifactregistry.dockerimages.list",
            "cloudbuild.builds.create",
            "cloudbuild.builds.get",
            "cloudbuild.builds.list",
        }
    ),
    "roles/cloudfunctions.invoker": frozenset({"cloudfunctions.functions.invoke"}),
    "roles/cloudfunctions.developer": frozenset(
        {
            "cloudfunctions.functions.create",
            "cloudfunctions.functions.delete",
            "cloudfunctions.functions.get",
            "cloudfunctions.functions.list",
            "cloudfunctions.functions.update",
            "cloudfunctions.functions.sourceCodeSet",
            "cloudfunctions.operations.get",
            "cloudfunctions.operations.list",
            "run.services.get",
            "run.services.list",
            "resourcemanager.projects.get",
        }
    ),
    "roles/cloudfunctions.admin": frozenset(
        {
            "cloudfunctions.functions.create",
            "cloudfunctions.functions.delete",
            "cloudfunctions.functions.get",
            "cloudfunctions.functions.getIamPolicy",
            "cloudfunctions.functions.list",
            "cloudfunctions.functions.setIamPolicy",
            "cloudfunctions.functions.update",
            "cloudfunctions.functions.sourceCodeSet",
            "cloudfunctions.operations.get",
            "cloudfunctions.operations.list",
            "run.services.get",
            "run.services.getIamPolicy",
            "run.services.list",
            "run.services.setIamPolicy",
            "resourcemanager.projects.get",
        }
    ),
    "roles/cloudscheduler.admin": frozenset(
        {
            "cloudscheduler.jobs.create",
            "cloudscheduler.jobs.delete",
            "cloudscheduler.jobs.enable",
            "cloudscheduler.jobs.get",
            "cloudscheduler.jobs.list",
            "cloudscheduler.jobs.pause",
            "cloudscheduler.jobs.run",
            "cloudscheduler.jobs.update",
            "cloudscheduler.locations.get",
            "cloudscheduler.locations.list",
            "resourcemanager.projects.get",
        }
    ),
    "roles/pubsub.admin": frozenset(
        {
            "pubsub.topics.attachSubscription",
            "pubsub.topics.create",
            "pubsub.topics.delete",
            "pubsub.topics.get",
            "pubsub.topics.list",
            "pubsub.topics.publish",
            "pubsub.topics.update",
            "pubsub.subscriptions.create",
            "pubsub.subscriptions.delete",
            "pubsub.subscriptions.get",
            "pubsub.subscriptions.list",
        }
    ),
}

BASIC_ROLES = ("roles/owner", "roles/editor", "roles/viewer")

# What basic editor lacks: changing IAM policies and reading Data Access logs.
_EDITOR_EXCLUDED = re.compile(r"(\.setIamPolicy$|^logging\.privateLogEntries\.list$)")
_VIEWER_VERBS = re.compile(r"\.(get|list|getIamPolicy|listShared)$")

PERMISSION_SHAPE = re.compile(r"^[a-z][a-zA-Z0-9]*(\.[a-zA-Z][a-zA-Z0-9]*){2}\Z")
MEMBER_SHAPE = re.compile(
    r"^(user|serviceAccount|group|domain|principal|principalSet):[^\s]+\Z|^(allUsers|allAuthenticatedUsers)\Z"
)


def known_role(role: str) -> bool:
    return role in ROLES or role in BASIC_ROLES


def role_grants(role: str, permission: str) -> bool:
    if role == "roles/owner":
        return True
    if role == "roles/editor":
        return not _EDITOR_EXCLUDED.search(permission)
    if role == "roles/viewer":
        # Google's viewer also holds aiplatform.endpoints.predict (its role definition; docs/google-behaviour.md)
        if permission == "aiplatform.endpoints.predict":
            return True
        return bool(_VIEWER_VERBS.search(permission)) and permission != "logging.privateLogEntries.list"
    return permission in ROLES.get(role, frozenset())


def member_of(email: str) -> str:
    """The IAM member string for a principal's e-mail."""
    if email.endswith(".gserviceaccount.com"):
        return f"serviceAccount:{email}"
    return f"user:{email}"


@dataclass
class Binding:
    role: str
    members: list[str]
    condition: dict[str, str] | None = None


@dataclass
class AuditLogConfig:
    log_type: str  # DATA_READ | DATA_WRITE | ADMIN_READ
    exempted_members: list[str] = field(default_factory=list)


@dataclass
class AuditConfig:
    service: str  # a service name or "allServices"
    audit_log_configs: list[AuditLogConfig] = field(default_factory=list)


@dataclass
class Policy:
    bindings: list[Binding] = field(default_factory=list)
    audit_configs: list[AuditConfig] = field(default_factory=list)
    version: int = 1
    etag_counter: int = 1

    @property
    def etag(self) -> bytes:
        return f"BwY{self.etag_counter:010d}".encode()

    def members_with(self, role: str) -> set[str]:
        return {m for b in self.bindings if b.role == role for m in b.members}

    def roles_of(self, member: str) -> set[str]:
        return {b.role for b in self.bindings if member in b.members and b.condition is None}

    def log_configs(self, service: str, log_type: str) -> list[AuditLogConfig]:
        """The configs of a log type for a service, its own and allServices' (google/iam/v1/policy.proto unions
        them: log types and exempted members alike)."""
        return [
            lc
            for config in self.audit_configs
            if config.service in (service, "allServices")
            for lc in config.audit_log_configs
            if lc.log_type == log_type
        ]

    def data_logging_on(self, service: str, log_type: str, member: str) -> bool:
        """Whether an audit log type is on for a service and the member is exempted by none of its configs."""
        configs = self.log_configs(service, log_type)
        return bool(configs) and not any(member in lc.exempted_members for lc in configs)


@dataclass(frozen=True)
class DenyRule:
    """An IAM deny policy rule: `principal` (a member string) is denied `permission` even where allowed.

    `attached_to` is the resource the deny policy is attached to (projects/P, folders/F, organizations/O; "" for
    the organization): it applies there and to everything beneath (docs/google-behaviour.md, "IAM").
    """

    principal: str
    permission: str
    attached_to: str = ""


# The IAM v2 deny API writes principals and permissions in its own forms (docs/google-behaviour.md, "IAM"):
# serviceAccount:E → principal://iam.googleapis.com/projects/-/serviceAccounts/E, user:E → principal://goog/subject/E,
# group:E → principalSet://goog/group/E; aiplatform.endpoints.predict → aiplatform.googleapis.com/endpoints.predict.
_V2_PERMISSION = re.compile(r"^([a-z][a-zA-Z0-9]*)\.(.+)\Z")


def v2_principal(member: str) -> str:
    kind, _, value = member.partition(":")
    if kind == "serviceAccount":
        return f"principal://iam.googleapis.com/projects/-/serviceAccounts/{value}"
    if kind == "user":
        return f"principal://goog/subject/{value}"
    if kind == "group":
        return f"principalSet://goog/group/{value}"
    return member


def v2_permission(permission: str) -> str:
    match = _V2_PERMISSION.match(permission)
    return f"{match.group(1)}.googleapis.com/{match.group(2)}" if match else permission


def allowed_by_policy(policy: Policy, member: str, permission: str) -> bool:
    """Whether an allow binding grants the permission (conditions are treated as not met)."""
    return any(role_grants(role, permission) for role in policy.roles_of(member))


def denied_by_rules(rules: Iterable[DenyRule], member: str, permission: str) -> bool:
    return any(r.principal == member and r.permission == permission for r in rules)


def binding_deltas(old: Policy, new: Policy) -> list[dict[str, str]]:
    """serviceData.policyDelta.bindingDeltas as Resource Manager writes them: ADD/REMOVE per (role, member)."""
    before = {(b.role, m) for b in old.bindings for m in b.members}
    after = {(b.role, m) for b in new.bindings for m in b.members}
    deltas = [{"action": "REMOVE", "role": r, "member": m} for r, m in sorted(before - after)]
    deltas += [{"action": "ADD", "role": r, "member": m} for r, m in sorted(after - before)]
    return deltas


def audit_config_deltas(old: Policy, new: Policy) -> list[dict[str, str]]:
    def flat(policy: Policy) -> set[tuple[str, str, str]]:
        return {
            (c.service, lc.log_type, ",".join(sorted(lc.exempted_members)))
            for c in policy.audit_configs
            for lc in c.audit_log_configs
        }

    before, after = flat(old), flat(new)
    deltas = [{"action": "REMOVE", "service": s, "logType": t} for s, t, _ in sorted(before - after)]
    deltas += [{"action": "ADD", "service": s, "logType": t} for s, t, _ in sorted(after - before)]
    return deltas
