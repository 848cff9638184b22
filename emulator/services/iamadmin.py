"""IAM v1 service accounts (iam.googleapis.com): create, get, list, patch, update, delete, and the policy on a
service account (getIamPolicy / setIamPolicy / testIamPermissions), plus `can_act_as`, the
iam.serviceAccounts.actAs check Cloud Functions and Cloud Scheduler make.

Every principal of the scenario whose e-mail is `NAME@PROJECT.iam.gserviceaccount.com` exists as a service
account of PROJECT (the workload, the deployer); created ones are added to the world's principals.

Assumption: a deleted account is kept (as Google keeps it for 30 days) but answers 404 like one that never existed.
Assumption: `PROJECT_NUMBER-compute@developer.gserviceaccount.com`, the default compute account, always exists.
Assumption: actAs is granted by the account's project policy or the account's own policy; deny rules apply.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import Any

from google.rpc import code_pb2

from emulator.core import iam
from emulator.core.handlers import Api, Call, Doc, Fields, HttpRule, JsonMethod, Service, json_method
from emulator.core.status import RpcError, invalid_argument, not_found
from emulator.core.tokens import unique_id
from emulator.core.world import Project, World
from emulator.services.kit import (
    allowed_on,
    audited,
    iam_denied,
    iam_policy_methods,
    listed,
    mask_paths,
    message,
    require_enabled,
    text,
)

API = "iam.googleapis.com"
PROTO = "google.iam.admin.v1.IAM"
_ACCOUNT_ID = re.compile(r"^[a-z](?:[-a-z0-9]{4,28}[a-z0-9])\Z")
_SA_EMAIL = re.compile(r"^([^@]+)@([a-z][a-z0-9-]{4,28}[a-z0-9])\.iam\.gserviceaccount\.com\Z")
_COMPUTE = re.compile(r"^(\d+)-compute@developer\.gserviceaccount\.com\Z")

ACCOUNT: Fields = {
    "name": None,
    "projectId": None,
    "uniqueId": None,
    "email": None,
    "displayName": None,
    "etag": None,
    "description": None,
    "oauth2ClientId": None,
    "disabled": None,
}


@dataclass
class IamStore:
    """Service accounts in one project, by e-mail."""

    service_accounts: dict[Any, Any] = field(default_factory=dict)


@dataclass
class ServiceAccount:
    resource: Doc
    policy: iam.Policy = field(default_factory=iam.Policy)
    deleted: bool = False

    @property
    def email(self) -> str:
        return str(self.resource["email"])


def _resource(project: Project, email: str, display_name: str = "", description: str = "") -> Doc:
    unique = unique_id(email)  # the same number the account's ID tokens carry as `sub`
    doc: Doc = {
        "name": f"projects/{project.project_id}/serviceAccounts/{email}",
        "projectId": project.project_id,
        "uniqueId": unique,
        "email": email,
        "etag": base64.b64encode(b"\x00" * 8).decode(),
        "oauth2ClientId": unique,
    }
    if display_name:
        doc["displayName"] = display_name
    if description:
        doc["description"] = description
    return doc


def accounts(world: World, project: Project) -> dict[str, ServiceAccount]:
    """The project's service accounts, the scenario's principals in it included."""
    for email in world.principals:
        match = _SA_EMAIL.match(email)
        if match and match.group(2) == project.project_id and email not in project.store(IamStore).service_accounts:
            project.store(IamStore).service_accounts[email] = ServiceAccount(_resource(project, email))
    return project.store(IamStore).service_accounts


def find_account(world: World, email: str) -> tuple[Project, ServiceAccount | None] | None:
    """(the account's project, the live account or None for the default compute account), None if unknown."""
    compute = _COMPUTE.match(email)
    if compute:
        project = world.project(compute.group(1))
        return (project, None) if project is not None else None
    match = _SA_EMAIL.match(email)
    project = world.project(match.group(2)) if match else None
    if project is None:
        return None
    account = accounts(world, project).get(email)
    if account is None or account.deleted:
        return None
    return project, account


def can_act_as(call: Call, email: str) -> bool:
    found = find_account(call.world, email)
    if found is None:
        return False
    project, account = found
    policies = [account.policy] if account is not None else []
    return allowed_on(call, project, "iam.serviceAccounts.actAs", *policies)


# Handlers ----------------------------------------------------------------------------------------------------


# Admin Activity: IAM logs its service-account methods as google.iam.admin.v1.<Method> (no service name between) and
# SetIamPolicy as google.iam.admin.v1.SetIAMPolicy (IAM audit logging page, "Methods by permission type"; its
# service-account examples page), on the service_account monitored resource.
_AUDIT = "google.iam.admin.v1."


def _logged(project: Project, account: ServiceAccount) -> tuple[str, Doc]:
    """An account as its entries name it: projects/-/serviceAccounts/UNIQUE_ID on service_account."""
    labels = {
        "email_id": account.email,
        "project_id": project.project_id,
        "unique_id": account.resource["uniqueId"],
    }
    return f"projects/-/serviceAccounts/{account.resource['uniqueId']}", {"type": "service_account", "labels": labels}


def _audit(call: Call, project: Project, account: ServiceAccount, verb: str, request: Doc, response: Doc) -> None:
    name, resource_type = _logged(project, account)
    if verb == "Create":  # made in the project, which the entry names (IAM's published CreateServiceAccount entries)
        name = f"projects/{project.project_id}"
    audited(
        call,
        project,
        method=f"{_AUDIT}{verb}ServiceAccount",
        resource=name,
        permission=f"iam.serviceAccounts.{'update' if verb in ('Patch', 'Update') else verb.lower()}",
        resource_type=resource_type,
        request={"@type": f"type.googleapis.com/google.iam.admin.v1.{verb}ServiceAccountRequest", **request},
        response={"@type": "type.googleapis.com/google.iam.admin.v1.ServiceAccount", **response} if response else None,
    )


def _project(call: Call, ref: str, permission: str) -> Project:
    call.authenticate()
    project = call.world.project(ref)
    if project is None:
        raise iam_denied(permission)
    require_enabled(project, API)
    return project


def _account(call: Call, name: str, permission: str | None) -> tuple[Project, ServiceAccount]:
    """A service account by `projects/P|-/serviceAccounts/EMAIL|UNIQUE_ID`, after the permission check.

    A missing account is 404 "Unknown service account" for a caller who could see it, else the same 403 as a denial.
    """
    call.authenticate()
    match = re.fullmatch(r"projects/([^/]+)/serviceAccounts/([^/]+)", name)
    if match is None:
        raise invalid_argument(
            f"Invalid form of account ID {name}. Should be [Gaia ID |Email |Unique ID |] of the account"
        )
    ref, key = match.groups()
    named = call.world.project(ref)
    if ref != "-" and named is None:
        raise iam_denied(permission or "iam.serviceAccounts.get")
    for project in [named] if named is not None else list(call.world.projects.values()):
        for account in accounts(call.world, project).values():
            if not account.deleted and key in (account.email, account.resource["uniqueId"]):
                require_enabled(project, API)
                if permission and not allowed_on(call, project, permission, account.policy):
                    raise iam_denied(permission)
                return project, account
    owner = named or _owner(call.world, key)
    if permission and (owner is None or not allowed_on(call, owner, permission)):
        raise iam_denied(permission)
    raise not_found("Unknown service account")


def _owner(world: World, key: str) -> Project | None:
    match = _SA_EMAIL.match(key)
    return world.project(match.group(2)) if match else None


def create_account(call: Call, request: Doc) -> Doc:
    ref = text(request, "name").removeprefix("projects/")
    project = _project(call, ref, "iam.serviceAccounts.create")
    if not allowed_on(call, project, "iam.serviceAccounts.create"):
        raise iam_denied("iam.serviceAccounts.create")
    account_id = text(request, "accountId")
    if not _ACCOUNT_ID.match(account_id):
        raise invalid_argument(
            f"Invalid account ID '{account_id}': it must be 6-30 characters, start with a lower case letter and "
            "contain only lower case letters, digits and hyphens, not ending with a hyphen."
        )
    email = f"{account_id}@{project.project_id}.iam.gserviceaccount.com"
    existing = accounts(call.world, project).get(email)
    if existing is not None and not existing.deleted:
        raise RpcError(
            code_pb2.ALREADY_EXISTS,
            f"Service account {account_id} already exists within project projects/{project.project_id}.",
        )
    body = message(request, "serviceAccount")
    account = ServiceAccount(_resource(project, email, text(body, "displayName"), text(body, "description")))
    project.store(IamStore).service_accounts[email] = account
    call.world.principals[email] = "serviceAccount"
    _audit(call, project, account, "Create", request, account.resource)
    return dict(account.resource)


def get_account(call: Call, request: Doc) -> Doc:
    return dict(_account(call, text(request, "name"), "iam.serviceAccounts.get")[1].resource)


def list_accounts(call: Call, request: Doc) -> Doc:
    ref = text(request, "name").removeprefix("projects/")
    project = _project(call, ref, "iam.serviceAccounts.list")
    if not allowed_on(call, project, "iam.serviceAccounts.list"):
        raise iam_denied("iam.serviceAccounts.list")
    live = [dict(a.resource) for a in accounts(call.world, project).values() if not a.deleted]
    return listed("accounts", sorted(live, key=lambda a: a["email"]), request, 100, 100)


def _apply(account: ServiceAccount, changes: Doc, paths: list[str]) -> Doc:
    for path in paths:
        if path not in ("displayName", "description"):
            raise invalid_argument(
                f"Invalid update mask path: {path}. Only displayName and description can be updated."
            )
        if changes.get(path):
            account.resource[path] = changes[path]
        else:
            account.resource.pop(path, None)
    return dict(account.resource)


def patch_account(call: Call, request: Doc) -> Doc:
    body = message(request, "serviceAccount")
    project, account = _account(call, text(body, "name"), "iam.serviceAccounts.update")
    paths = mask_paths(request)
    if not paths:
        raise invalid_argument("update_mask: at least one field to update is required.")
    updated = _apply(account, body, paths)
    _audit(call, project, account, "Patch", request, updated)
    return updated


def update_account(call: Call, request: Doc) -> Doc:
    """The older PUT form: displayName and description as given (description left alone when absent)."""
    project, account = _account(call, text(request, "name"), "iam.serviceAccounts.update")
    paths = ["displayName", *(["description"] if "description" in request else [])]
    updated = _apply(account, request, paths)
    _audit(call, project, account, "Update", request, updated)
    return updated


def delete_account(call: Call, request: Doc) -> Doc:
    project, account = _account(call, text(request, "name"), "iam.serviceAccounts.delete")
    account.deleted = True
    _audit(call, project, account, "Delete", request, {})
    return {}


_SA = "projects/*/serviceAccounts/*"
METHODS: list[JsonMethod] = [
    json_method(
        PROTO,
        "CreateServiceAccount",
        create_account,
        API,
        {"name": None, "accountId": None, "serviceAccount": ACCOUNT},
    ),
    json_method(PROTO, "GetServiceAccount", get_account, API, {"name": None}),
    json_method(PROTO, "ListServiceAccounts", list_accounts, API, {"name": None, "pageSize": None, "pageToken": None}),
    json_method(PROTO, "PatchServiceAccount", patch_account, API, {"serviceAccount": ACCOUNT, "updateMask": None}),
    json_method(PROTO, "UpdateServiceAccount", update_account, API, ACCOUNT),
    json_method(PROTO, "DeleteServiceAccount", delete_account, API, {"name": None}),
    *iam_policy_methods(
        PROTO,
        API,
        "iam.serviceAccounts",
        _account,
        audit_method=f"{_AUDIT}SetIAMPolicy",
        audit_target=lambda project, account, _: _logged(project, account),
    ),
]

RULES: list[HttpRule] = [
    HttpRule("POST", "/v1/{name=projects/*}/serviceAccounts", f"{PROTO}.CreateServiceAccount", "*"),
    HttpRule("GET", "/v1/{name=projects/*}/serviceAccounts", f"{PROTO}.ListServiceAccounts"),
    HttpRule("GET", f"/v1/{{name={_SA}}}", f"{PROTO}.GetServiceAccount"),
    HttpRule("PATCH", f"/v1/{{service_account.name={_SA}}}", f"{PROTO}.PatchServiceAccount", "*"),
    HttpRule("PUT", f"/v1/{{name={_SA}}}", f"{PROTO}.UpdateServiceAccount", "*"),
    HttpRule("DELETE", f"/v1/{{name={_SA}}}", f"{PROTO}.DeleteServiceAccount"),
    HttpRule("POST", f"/v1/{{resource={_SA}}}:getIamPolicy", f"{PROTO}.GetIamPolicy"),
    HttpRule("POST", f"/v1/{{resource={_SA}}}:setIamPolicy", f"{PROTO}.SetIamPolicy", "*"),
    HttpRule("POST", f"/v1/{{resource={_SA}}}:testIamPermissions", f"{PROTO}.TestIamPermissions", "*"),
]


SERVICE = Service(
    apis=(Api(API, "Identity and Access Management (IAM) API", gcloud="IAM"),),
    methods=(*METHODS,),
    rules=(*RULES,),
)
