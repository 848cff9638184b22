"""What `gcloud beta projects get-ancestors-iam-policy P --include-deny` calls, over REST (docs/google-behaviour.md,
"IAM" and "Resource hierarchy"): Resource Manager v1 `projects.getAncestry`, and IAM v2 (v2beta, v2alpha) deny
policies listed and read per attachment point. The folder and organization getIamPolicy it also calls are the gRPC
handlers of services/resourcemanager.py, bound to their v1/v2/v3 URLs by the HTTP rules beside them.

Deny rules are kept one per (principal, permission) with an attachment point (emulator/core/iam.py, DenyRule); here the
rules of one attachment point form one deny policy, `…/denypolicies/emulator`, written in the v2 API's own forms:
principals as `principal://iam.googleapis.com/projects/-/serviceAccounts/EMAIL` (a user `principal://goog/subject/
EMAIL`, a group `principalSet://goog/group/EMAIL`) and permissions as `SERVICE_FQDN/RESOURCE.ACTION`
(`aiplatform.googleapis.com/endpoints.predict`).

Assumption (unverified): getAncestry is allowed by `resourcemanager.projects.get` on the project; a caller without
it gets the usual 403 "The caller does not have permission".
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import unquote

from emulator.core import iam
from emulator.core.handlers import Api, Call, Doc, HttpRule, JsonMethod, Service, json_method
from emulator.core.status import invalid_argument
from emulator.core.world import Node, Project, World
from emulator.services.kit import caller_denied, text

API = "cloudresourcemanager.googleapis.com"
RM1 = "google.cloudresourcemanager.v1.Projects"
IAM2 = "google.iam.v2.Policies"
IAM_API = "iam.googleapis.com"
_ATTACHMENT = re.compile(
    r"^policies/cloudresourcemanager\.googleapis\.com(?:%2F|/)(projects|folders|organizations)(?:%2F|/)([^/%]+)/denypolicies\Z",
    re.I,
)


def _readable(call: Call, world: World, holder: Project | Node, permission: str) -> bool:
    if isinstance(holder, Project):
        return world.allows(holder, call.member(), permission)
    return world.allows_on_node(holder, call.member(), permission)


def get_ancestry(call: Call, request: Doc) -> Doc:
    call.authenticate()
    ref = text(request, "projectId")
    project = call.world.project(ref)
    if project is None or not call.world.allows(project, call.member(), "resourcemanager.projects.get"):
        raise caller_denied()
    ancestors = [{"resourceId": {"type": "project", "id": project.project_id}}]
    for node in call.world.ancestors(project):
        kind = "folder" if node.kind == "folders" else "organization"
        ancestors.append({"resourceId": {"type": kind, "id": node.name.split("/", 1)[1]}})
    return {"ancestor": ancestors}


def _holder(call: Call, parent: str) -> tuple[Project | Node, str]:
    match = _ATTACHMENT.match(unquote(parent) if "%252F" in parent else parent)
    if match is None:
        raise invalid_argument(
            f"Invalid parent: {parent!r}. Expected policies/cloudresourcemanager.googleapis.com%2F"
            "{projects|folders|organizations}%2FID/denypolicies."
        )
    kind, ref = match.group(1).lower(), match.group(2)
    holder = call.world.resource(f"{kind}/{ref}")
    if holder is None:
        raise caller_denied()
    return holder, f"policies/cloudresourcemanager.googleapis.com%2F{kind}%2F{ref}/denypolicies"


def _policy(call: Call, holder: Project | Node, prefix: str) -> Doc | None:
    world = call.world
    point = f"projects/{holder.project_id}" if isinstance(holder, Project) else holder.name
    aliases = {point} | ({f"projects/{holder.number}"} if isinstance(holder, Project) else set())
    rules = [r for r in world.deny_rules if (r.attached_to or world.organization.name) in aliases]
    if not rules:
        return None
    name = f"{prefix}/emulator"
    return {
        "name": name,
        "uid": hashlib.sha256(name.encode()).hexdigest()[:32],
        "kind": "DenyPolicy",
        "displayName": "deny policy",
        "etag": 'W/"' + hashlib.sha256(repr(rules).encode()).hexdigest()[:16] + '"',
        "rules": [
            {
                "denyRule": {
                    "deniedPrincipals": [iam.v2_principal(r.principal)],
                    "deniedPermissions": [iam.v2_permission(r.permission)],
                }
            }
            for r in rules
        ],
    }


def list_policies(call: Call, request: Doc) -> Doc:
    call.authenticate()
    holder, prefix = _holder(call, text(request, "parent"))
    if not _readable(call, call.world, holder, "iam.denypolicies.list"):
        raise caller_denied()
    policy = _policy(call, holder, prefix)
    if policy is None:
        return {}
    return {"policies": [{k: policy[k] for k in ("name", "uid", "kind", "displayName", "etag")}]}


def get_policy(call: Call, request: Doc) -> Doc:
    call.authenticate()
    name = text(request, "name")
    parent, _, policy_id = name.rpartition("/")
    holder, prefix = _holder(call, parent)
    if not _readable(call, call.world, holder, "iam.denypolicies.get"):
        raise caller_denied()
    policy = _policy(call, holder, prefix)
    if policy is None or policy_id != "emulator":
        raise caller_denied()
    return policy


METHODS: list[JsonMethod] = [
    json_method(RM1, "GetAncestry", get_ancestry, API, {"projectId": None}),
    *[
        json_method(
            f"google.iam.{v}.Policies",
            "ListPolicies",
            list_policies,
            IAM_API,
            {"parent": None, "pageSize": None, "pageToken": None},
        )
        for v in ("v2", "v2beta", "v2alpha")
    ],
    *[
        json_method(f"google.iam.{v}.Policies", "GetPolicy", get_policy, IAM_API, {"name": None})
        for v in ("v2", "v2beta", "v2alpha")
    ],
]

RULES: list[HttpRule] = [
    HttpRule("POST", "/v1/projects/{projectId}:getAncestry", f"{RM1}.GetAncestry", "*"),
    *[
        HttpRule("GET", f"/{v}/{{parent=policies/*/*}}", f"google.iam.{v}.Policies.ListPolicies")
        for v in ("v2", "v2beta", "v2alpha")
    ],
    *[
        HttpRule("GET", f"/{v}/{{name=policies/*/*/*}}", f"google.iam.{v}.Policies.GetPolicy")
        for v in ("v2", "v2beta", "v2alpha")
    ],
]


SERVICE = Service(
    apis=(
        Api(API, "Cloud Resource Manager API", gcloud="CLOUDRESOURCEMANAGER"),
        Api(IAM_API, "Identity and Access Management (IAM) API", gcloud="IAM"),
    ),
    methods=(*METHODS,),
    rules=(*RULES,),
)
