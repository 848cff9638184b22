"""Resource Manager v3 Projects (GetProject, GetIamPolicy, SetIamPolicy, TestIamPermissions), Folders and
Organizations (Get, GetIamPolicy, TestIamPermissions): the resource hierarchy a project's access and audit configs
are inherited from (docs/google-behaviour.md, "Resource hierarchy").

Permissions are checked as Google names them (resourcemanager.folders.get / .getIamPolicy, resourcemanager
.organizations.get / .getIamPolicy), on the folder or organization itself and its ancestors: a role granted on a
project gives nothing on its folder.

Assumption (unverified): TestIamPermissions evaluates allow policies only (not deny policies or principal access
boundaries), so a caller can tell "not granted" from "granted, yet denied". It needs no permission, as Google
documents.
Assumption (unverified): a project the caller cannot see and a project that does not exist get the same 403.
"""

from __future__ import annotations

from collections.abc import Callable

from google.cloud.resourcemanager_v3 import types as rt
from google.iam.v1 import iam_policy_pb2, policy_pb2
from google.rpc import code_pb2

from emulator.core import changes, iam
from emulator.core.handlers import Api, Call, Doc, HttpRule, Method, Service
from emulator.core.policy_wire import policy_from_pb, policy_to_pb
from emulator.core.status import RpcError, invalid_argument
from emulator.core.world import Node, Project
from emulator.services.kit import caller_denied

API = "cloudresourcemanager.googleapis.com"
PROTO = "google.cloud.resourcemanager.v3.Projects"
FOLDERS = "google.cloud.resourcemanager.v3.Folders"
ORGANIZATIONS = "google.cloud.resourcemanager.v3.Organizations"
_MASK_FIELDS = {
    "bindings": "bindings",
    "etag": "etag",
    "audit_configs": "audit_configs",
    "auditConfigs": "audit_configs",
    "version": "bindings",
}


def _project(call: Call, resource: str, permission: str | None) -> Project:
    """The project a `projects/P` resource names, after the caller's permission on it is checked."""
    member = call.member()
    ref = resource.removeprefix("projects/")
    project = call.world.project(ref) if resource.startswith("projects/") and "/" not in ref else None
    if project is None:
        raise caller_denied()
    if permission and not call.world.allows(project, member, permission):
        raise caller_denied()
    return project


def get_project(call: Call, request: rt.GetProjectRequest) -> rt.Project:
    project = _project(call, request.name, "resourcemanager.projects.get")
    return rt.Project(
        name=f"projects/{project.number}",
        project_id=project.project_id,
        display_name=project.project_id,
        state=rt.Project.State.ACTIVE,
        parent=call.world.parent_of(project),
    )


def get_iam_policy(call: Call, request: iam_policy_pb2.GetIamPolicyRequest) -> policy_pb2.Policy:
    project = _project(call, request.resource, "resourcemanager.projects.getIamPolicy")
    return policy_to_pb(project.policy)


def set_iam_policy(call: Call, request: iam_policy_pb2.SetIamPolicyRequest) -> policy_pb2.Policy:
    project = _project(call, request.resource, "resourcemanager.projects.setIamPolicy")
    paths = list(request.update_mask.paths) if request.HasField("update_mask") else ["bindings", "etag"]
    fields = set()
    for path in paths:
        if path not in _MASK_FIELDS:
            raise invalid_argument(f"Invalid update_mask path: {path!r}. Allowed: bindings, etag, audit_configs.")
        fields.add(_MASK_FIELDS[path])
    if request.policy.etag and request.policy.etag != project.policy.etag:
        raise RpcError(
            code_pb2.ABORTED,
            "There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff.",
        )
    new = policy_from_pb(request.policy)
    actor = call.authenticate()
    updated = changes.set_iam_policy(
        call.world,
        project,
        new,
        actor=actor,
        at=call.world.clock.now(),
        fields=frozenset(fields),
        caller_ip=call.caller_ip,
    )
    return policy_to_pb(updated)


def test_iam_permissions(
    call: Call, request: iam_policy_pb2.TestIamPermissionsRequest
) -> iam_policy_pb2.TestIamPermissionsResponse:
    member = call.member()
    for permission in request.permissions:
        if not iam.PERMISSION_SHAPE.match(permission):
            raise invalid_argument(f"Permission {permission} is not valid.")
    project = _project(call, request.resource, None)
    policies = call.world.policies(project)
    held = [p for p in request.permissions if any(iam.allowed_by_policy(pol, member, p) for pol in policies)]
    return iam_policy_pb2.TestIamPermissionsResponse(permissions=held)


def _node(call: Call, name: str, kind: str, permission: str | None) -> Node:
    """A folder or the organization, after the caller's permission on it (its own policy or an ancestor's)."""
    node = call.world.resource(name) if name.startswith(f"{kind}/") else None
    if not isinstance(node, Node):
        raise caller_denied()
    if permission and not call.world.allows_on_node(node, call.member(), permission):
        raise caller_denied()
    return node


def get_folder(call: Call, request: rt.GetFolderRequest) -> rt.Folder:
    node = _node(call, request.name, "folders", "resourcemanager.folders.get")
    return rt.Folder(name=node.name, parent=node.parent, display_name=node.display_name, state=rt.Folder.State.ACTIVE)


def get_organization(call: Call, request: rt.GetOrganizationRequest) -> rt.Organization:
    node = _node(call, request.name, "organizations", "resourcemanager.organizations.get")
    return rt.Organization(name=node.name, display_name=node.display_name, state=rt.Organization.State.ACTIVE)


def _node_get_iam_policy(kind: str) -> Callable[[Call, iam_policy_pb2.GetIamPolicyRequest], policy_pb2.Policy]:
    def handler(call: Call, request: iam_policy_pb2.GetIamPolicyRequest) -> policy_pb2.Policy:
        return policy_to_pb(_node(call, request.resource, kind, f"resourcemanager.{kind}.getIamPolicy").policy)

    return handler


def _node_test_iam_permissions(
    kind: str,
) -> Callable[[Call, iam_policy_pb2.TestIamPermissionsRequest], iam_policy_pb2.TestIamPermissionsResponse]:
    def handler(
        call: Call, request: iam_policy_pb2.TestIamPermissionsRequest
    ) -> iam_policy_pb2.TestIamPermissionsResponse:
        member = call.member()
        node = _node(call, request.resource, kind, None)
        chain = call.world.node_chain(node)
        held = [p for p in request.permissions if any(iam.allowed_by_policy(n.policy, member, p) for n in chain)]
        return iam_policy_pb2.TestIamPermissionsResponse(permissions=held)

    return handler


def _iam_methods(service: str, kind: str) -> list[Method]:
    return [
        Method(
            service,
            "GetIamPolicy",
            iam_policy_pb2.GetIamPolicyRequest,
            policy_pb2.Policy,
            _node_get_iam_policy(kind),
            API,
        ),
        Method(
            service,
            "TestIamPermissions",
            iam_policy_pb2.TestIamPermissionsRequest,
            iam_policy_pb2.TestIamPermissionsResponse,
            _node_test_iam_permissions(kind),
            API,
        ),
    ]


def _methods() -> list[Method]:
    return [
        Method(FOLDERS, "GetFolder", rt.GetFolderRequest, rt.Folder, get_folder, API),
        *_iam_methods(FOLDERS, "folders"),
        Method(ORGANIZATIONS, "GetOrganization", rt.GetOrganizationRequest, rt.Organization, get_organization, API),
        *_iam_methods(ORGANIZATIONS, "organizations"),
        Method(PROTO, "GetProject", rt.GetProjectRequest, rt.Project, get_project, API),
        Method(
            PROTO,
            "GetIamPolicy",
            iam_policy_pb2.GetIamPolicyRequest,
            policy_pb2.Policy,
            get_iam_policy,
            API,
        ),
        Method(
            PROTO,
            "SetIamPolicy",
            iam_policy_pb2.SetIamPolicyRequest,
            policy_pb2.Policy,
            set_iam_policy,
            API,
        ),
        Method(
            PROTO,
            "TestIamPermissions",
            iam_policy_pb2.TestIamPermissionsRequest,
            iam_policy_pb2.TestIamPermissionsResponse,
            test_iam_permissions,
            API,
        ),
    ]


def _v1_project(doc: Doc) -> Doc:
    """Resource Manager v1's Project shape, from v3's (gcloud projects describe reads v1)."""
    number = doc.get("name", "").removeprefix("projects/")
    parent_type, _, parent_id = doc.get("parent", "").partition("s/")
    return {
        "projectNumber": number,
        "projectId": doc.get("projectId", ""),
        "lifecycleState": "ACTIVE" if doc.get("state") in ("ACTIVE", 1) else "DELETE_REQUESTED",
        "name": doc.get("displayName", ""),
        **({"parent": {"type": parent_type, "id": parent_id}} if parent_id else {}),
    }


_RM3 = "google.cloud.resourcemanager.v3.Projects"
_FOLDERS = "google.cloud.resourcemanager.v3.Folders"
_ORGS = "google.cloud.resourcemanager.v3.Organizations"
# The google.api.http rules of these methods (googleapis protos; the installed GAPIC REST transports carry the
# same templates).
RULES: list[HttpRule] = [
    HttpRule("GET", "/v3/{name=projects/*}", f"{_RM3}.GetProject"),
    HttpRule("POST", "/v3/{resource=projects/*}:getIamPolicy", f"{_RM3}.GetIamPolicy", "*"),
    HttpRule("POST", "/v3/{resource=projects/*}:setIamPolicy", f"{_RM3}.SetIamPolicy", "*"),
    HttpRule("POST", "/v3/{resource=projects/*}:testIamPermissions", f"{_RM3}.TestIamPermissions", "*"),
    # Folders and organizations: v3, and the v2 (folders) and v1 (organizations) URLs gcloud uses, one handler each.
    *[
        HttpRule("POST", f"/{v}/{{resource=folders/*}}:{verb}", f"{_FOLDERS}.{name}", "*")
        for v in ("v2", "v3")
        for verb, name in (("getIamPolicy", "GetIamPolicy"), ("testIamPermissions", "TestIamPermissions"))
    ],
    *[
        HttpRule("POST", f"/{v}/{{resource=organizations/*}}:{verb}", f"{_ORGS}.{name}", "*")
        for v in ("v1", "v3")
        for verb, name in (("getIamPolicy", "GetIamPolicy"), ("testIamPermissions", "TestIamPermissions"))
    ],
    HttpRule("GET", "/v3/{name=folders/*}", f"{_FOLDERS}.GetFolder"),
    HttpRule("GET", "/v3/{name=organizations/*}", f"{_ORGS}.GetOrganization"),
    # Resource Manager v1 (what gcloud projects … uses), served by the v3 handlers.
    HttpRule("GET", "/v1/projects/{name}", f"{_RM3}.GetProject", prefix={"name": "projects/"}, reply=_v1_project),
    *[
        HttpRule("POST", f"/v1/projects/{{resource}}:{verb}", f"{_RM3}.{name}", "*", prefix={"resource": "projects/"})
        for verb, name in (
            ("getIamPolicy", "GetIamPolicy"),
            ("setIamPolicy", "SetIamPolicy"),
            ("testIamPermissions", "TestIamPermissions"),
        )
    ],
]


SERVICE = Service(
    apis=(Api(API, "Cloud Resource Manager API", gcloud="CLOUDRESOURCEMANAGER"),),
    methods=(*_methods(),),
    rules=(*RULES,),
)
