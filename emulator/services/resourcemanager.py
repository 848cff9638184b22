"""Resource Manager v3 Projects (GetProject, GetIamPolicy, SetIamPolicy, TestIamPermissions), Folders and
Organizations (Get, GetIamPolicy, TestIamPermissions): the resource hierarchy a project's access and audit configs
are inherited from (docs/google-behaviour.md, "Resource hierarchy"). Resource Manager v1's projects.list, which
`gcloud projects list` calls (`GET /v1/projects?filter=lifecycleState:ACTIVE&pageSize=500`), lists the projects the
caller may get (docs/google-behaviour.md, "Listing projects").

Permissions are checked as Google names them (resourcemanager.folders.get / .getIamPolicy, resourcemanager
.organizations.get / .getIamPolicy), on the folder or organization itself and its ancestors: a role granted on a
project gives nothing on its folder.

Assumption (unverified): TestIamPermissions evaluates allow policies only (not deny policies or principal access
boundaries), so a caller can tell "not granted" from "granted, yet denied". It needs no permission, as Google
documents.
Assumption (unverified): a project the caller cannot see and a project that does not exist get the same 403.
Assumption: projects.list's filter terms are `field:value` (fields name, id, labels.KEY, lifecycleState,
parent.type, parent.id; case-insensitive; a trailing `*` a prefix), and several terms must all match: Google's page
says "match any of the fields" but its own examples (two labels) read as all; an unknown field is 400
INVALID_ARGUMENT. The emulator's projects have no labels. Projects come in project-id order, 500 a page at most.
"""

from __future__ import annotations

from collections.abc import Callable

from google.cloud.resourcemanager_v3 import types as rt
from google.iam.v1 import iam_policy_pb2, policy_pb2
from google.rpc import code_pb2

from emulator.core import changes, iam
from emulator.core.handlers import Api, Call, Doc, HttpRule, Method, Service, json_method
from emulator.core.policy_wire import policy_from_pb, policy_to_pb
from emulator.core.status import RpcError, invalid_argument
from emulator.core.world import Node, Project
from emulator.services.kit import caller_denied, listed, text

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


_V1 = "google.cloudresourcemanager.v1.Projects"  # served over REST only: the v1 API has no generated client here
# Resource Manager v1 projects.list's filter fields (its reference page, "Method: projects.list").
_FILTER_FIELDS = ("name", "id", "lifecycleState", "parent.type", "parent.id")


def _v1_filter(raw: str) -> list[tuple[str, str]]:
    terms: list[tuple[str, str]] = []
    for term in raw.split():
        key, colon, value = term.partition(":")
        if not colon or not value:
            key, eq, value = term.partition("=")
            colon = eq
        field_name = next((f for f in _FILTER_FIELDS if f.lower() == key.lower()), None)
        if key.lower().startswith("labels.") and len(key) > len("labels."):
            field_name = key.lower()
        if not colon or field_name is None or not value:
            raise invalid_argument(f"Invalid filter term {term[:100]!r}: expected FIELD:VALUE with FIELD one of "
                                   f"{', '.join(_FILTER_FIELDS)}")  # fmt: skip
        terms.append((field_name, value.strip("'\"").lower()))
    return terms


def _matches(doc: Doc, terms: list[tuple[str, str]]) -> bool:
    for field_name, wanted in terms:
        if field_name.startswith("labels."):
            have = str(doc.get("labels", {}).get(field_name.split(".", 1)[1], ""))
            if not have:
                return False
        elif field_name.startswith("parent."):
            have = str(doc.get("parent", {}).get(field_name.split(".", 1)[1], ""))
        else:
            have = str(doc.get("projectId" if field_name == "id" else field_name, ""))
        have = have.lower()
        if not (have.startswith(wanted[:-1]) if wanted.endswith("*") else have == wanted):
            return False
    return True


def list_projects_v1(call: Call, request: Doc) -> Doc:
    """projects.list (v1): the projects the caller has resourcemanager.projects.get on that match the filter."""
    member = call.member()
    terms = _v1_filter(text(request, "filter"))
    world = call.world
    found: list[Doc] = []
    for project_id in sorted(world.projects):
        project = world.projects[project_id]
        if not world.allows(project, member, "resourcemanager.projects.get"):
            continue
        parent = world.parent_of(project)
        doc = _v1_project(
            {"name": f"projects/{project.number}", "projectId": project_id, "displayName": project_id,
             "state": "ACTIVE", "parent": parent}
        )  # fmt: skip
        if _matches(doc, terms):
            found.append(doc)
    return listed("projects", found, request, 500, 500)


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
    # Resource Manager v1 (what gcloud projects … uses), served by the v3 handlers, and v1's own list.
    HttpRule("GET", "/v1/projects", f"{_V1}.ListProjects"),
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
    methods=(
        *_methods(),
        json_method(_V1, "ListProjects", list_projects_v1, API, {"filter": None, "pageSize": None, "pageToken": None}),
    ),
    rules=(*RULES,),
)
