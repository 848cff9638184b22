"""What the emulated services share: admission (the consumer project's API state and the caller's IAM, in the order
Google checks them), reading proto3-JSON request values, paging, long-running operations, resource-level IAM
policies (the get/set/test methods and the policy's wire form), and the Admin Activity audit entry every change
writes (`audited`; docs/google-behaviour.md, "Admin Activity entries of the emulated APIs").

Assumption: an API change's entry carries the caller's e-mail, one authorizationInfo (the permission the handler
checked, on the resource named, granted), the request and response where docs/google-behaviour.md's table says the
API's entries carry them, and the resource type the table names (audited_resource where Google's own is not known).
Assumption: a long-running operation that ends at once still writes two entries (operation.first, then
operation.last), at the same clock time; one that ends later writes its last entry then, without a request.
Assumption: a create names the new resource as resourceName (the project for CreateServiceAccount); a function's
SetIamPolicy is logged as google.cloud.functions.v2.FunctionService.SetIamPolicy and Scheduler's RunJob as an
ADMIN_WRITE method; Monitoring's and the dashboards' entries are on audited_resource; a validateOnly dashboard
request changes nothing and writes nothing.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from google.iam.v1 import policy_pb2
from google.protobuf import json_format
from google.rpc import code_pb2

from emulator.core import audit, iam
from emulator.core.clock import rfc3339
from emulator.core.handlers import Call, Doc, Fields, JsonMethod, camel, json_method, snake
from emulator.core.policy_wire import policy_from_pb, policy_json
from emulator.core.status import RpcError, error_info, help_link, invalid_argument, localized
from emulator.core.world import Project, World


@dataclass
class OperationStore:
    """Long-running operations in one project, by name (each API's operations.get reads its own)."""

    operations: dict[Any, Any] = field(default_factory=dict)


def title(service: str) -> str:
    """The API's title as Google's errors give it (`serviceTitle`), from the registry; the name when unknown."""
    # Imported here: the registry imports every service module, and each of them imports this one.
    from emulator.services import apis  # noqa: PLC0415

    api = apis().get(service)
    return api.title if api is not None else service


T = TypeVar("T")


def service_disabled(project: Project, service: str) -> RpcError:
    """SERVICE_DISABLED exactly as docs/google-behaviour.md gives it (the project by number)."""
    service_title = title(service)
    url = f"https://console.developers.google.com/apis/api/{service}/overview?project={project.number}"
    message = (
        f"{service_title} has not been used in project {project.number} before or it is disabled. Enable it by "
        f"visiting {url} then retry. If you enabled this API recently, wait a few minutes for the action to "
        "propagate to our systems and retry."
    )
    return RpcError(
        code_pb2.PERMISSION_DENIED,
        message,
        [
            error_info(
                "SERVICE_DISABLED",
                "googleapis.com",
                {
                    "service": service,
                    "consumer": f"projects/{project.number}",
                    "containerInfo": project.number,
                    "serviceTitle": service_title,
                    "activationUrl": url,
                },
            ),
            localized(message),
            help_link("Google developers console API activation", url),
        ],
    )


def iam_denied(permission: str) -> RpcError:
    """How Cloud Logging (and other newer front ends: IAM, IAM Credentials) answer an IAM denial.

    Seen on Logging: "Permission 'logging.logEntries.create' denied on resource (or it may not exist)." with
    ErrorInfo{IAM_PERMISSION_DENIED, iam.googleapis.com, {permission}} (kubeflow/pipelines PR#12591).
    """
    return RpcError(
        code_pb2.PERMISSION_DENIED,
        f"Permission '{permission}' denied on resource (or it may not exist).",
        [error_info("IAM_PERMISSION_DENIED", "iam.googleapis.com", {"permission": permission})],
    )


def caller_denied() -> RpcError:
    """Resource Manager's terse denial of getIamPolicy/setIamPolicy: 403 "The caller does not have permission", no
    details (reported for a project's getIamPolicy in kubeflow/kubeflow#7140, "googleapi: Error 403: The caller does
    not have permission, forbidden"). Resource Manager's other reads, the IAM v2 deny policies, Cloud Build and the
    locations API answer with it here too."""
    return RpcError(code_pb2.PERMISSION_DENIED, "The caller does not have permission")


def require_enabled(project: Project, service: str) -> None:
    if service not in project.services:
        raise service_disabled(project, service)


def allowed(call: Call, project: Project, permission: str) -> bool:
    """Allow policy grants it and no deny rule takes it away."""
    member = call.member()
    return call.world.allows(project, member, permission)


# Reading request values ------------------------------------------------------------------------------------


def text(doc: Doc, key: str) -> str:
    value = doc.get(key, "")
    return value if isinstance(value, str) else ""


def message(doc: Doc, key: str) -> Doc:
    """A message-typed field of the request; a non-object where an object belongs is refused as Google does."""
    value = doc.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid_argument(f"Invalid value at '{snake(key)}': expected an object, got {json.dumps(value)}.")
    return value


def integer(doc: Doc, key: str, default: int = 0) -> int:
    value = doc.get(key)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid_argument(f"Invalid value at '{snake(key)}' (TYPE_INT32), \"{value}\"") from None


def boolean(doc: Doc, key: str) -> bool:
    value = doc.get(key, False)
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "false"):  # apitools (gcloud) writes query booleans as True/False
        return str(value).lower() == "true"
    raise invalid_argument(f"Invalid value at '{snake(key)}' (TYPE_BOOL), \"{value}\"")


def mask_paths(doc: Doc, key: str = "updateMask") -> list[str]:
    """A FieldMask in its JSON form: comma-separated camelCase paths (snake_case accepted too)."""
    value = doc.get(key, "")
    if isinstance(value, dict):  # {"paths": [...]} is how some clients send it in a body
        value = ",".join(value.get("paths", []))
    return [".".join(camel(p) for p in path.strip().split(".")) for path in str(value).split(",") if path.strip()]


def apply_mask(current: Doc, given: Doc, paths: Sequence[str]) -> Doc:
    """An update: each mask path takes the given value, or is cleared when the request leaves it out."""
    out = copy.deepcopy(current)
    for path in paths:
        *parents, last = path.split(".")
        source: Any = given
        target = out
        for key in parents:
            source = source.get(key, {}) if isinstance(source, dict) else {}
            target = target.setdefault(key, {})
        if isinstance(source, dict) and last in source:
            target[last] = copy.deepcopy(source[last])
        else:
            target.pop(last, None)
    return out


def duration_seconds(value: Any, where: str) -> float:
    """A google.protobuf.Duration in JSON ("60s", "1.5s")."""
    match = re.fullmatch(r"(-?\d+(?:\.\d{1,9})?)s", str(value))
    if match is None:
        raise invalid_argument(
            f"Invalid value at '{where}' (type.googleapis.com/google.protobuf.Duration), \"{value}\""
        )
    return float(match.group(1))


def now(call: Call) -> str:
    return rfc3339(call.world.clock.now())


def at(call: Call) -> datetime:
    return call.world.clock.now()


# Resources -------------------------------------------------------------------------------------------------


def admit(call: Call, ref: str, api: str, permission: str, denial: Callable[[], RpcError]) -> Project:
    """The project `ref` names (id or number), after the checks every API makes, in Vertex AI's documented order:
    credentials → the project (an unknown one gets the API's denial) → API enabled → IAM on the project."""
    call.authenticate()
    project = call.world.project(ref)
    if project is None:
        raise denial()
    require_enabled(project, api)
    if not allowed_on(call, project, permission):
        raise denial()
    return project


def allowed_on(call: Call, project: Project, permission: str, *policies: iam.Policy) -> bool:
    """The project's or the resource's own allow policy grants it, and no deny rule takes it away."""
    member = call.member()
    return call.world.allows(project, member, permission, *policies)


def page_of(
    items: Sequence[T],
    size: int,
    token: str,
    *,
    query: str = "",
    invalid: str = "The page token is invalid.",
    stale: str = "",
) -> tuple[list[T], str]:
    """Paging, one implementation for every API: `size` items from the token's offset, and the next page's token
    ("" after the last). A token is bound to `query` (the request's other arguments, as text, when the API binds its
    tokens): one given with another query is refused with `stale`, a malformed one with `invalid` (each API's text)."""
    start = 0
    if token:
        try:
            doc = json.loads(base64.urlsafe_b64decode(token.encode()))
            start, bound = int(doc["o"]), str(doc["q"])
        except (ValueError, KeyError, TypeError):
            raise invalid_argument(invalid) from None
        if start < 0:
            raise invalid_argument(invalid)
        if bound != query:
            raise invalid_argument(stale or invalid)
    end = start + size
    more = base64.urlsafe_b64encode(json.dumps({"o": end, "q": query}).encode()).decode() if end < len(items) else ""
    return list(items[start:end]), more


def listed(field: str, items: Sequence[Any], request: Doc, default: int, maximum: int, *, always: bool = False) -> Doc:
    """A REST list method's answer: one page of `items` by the request's pageSize (default `default`, at most
    `maximum`) and pageToken, under `field` (left out when empty, as proto3 JSON leaves an empty list out, unless
    `always`), and the next page's token when there is one."""
    size = min(max(integer(request, "pageSize") or default, 1), maximum)
    page, more = page_of(items, size, text(request, "pageToken"))
    doc: Doc = {field: page} if page or always else {}
    if more:
        doc["nextPageToken"] = more
    return doc


def new_operation(
    project: Project, name: str, metadata: Doc, response: Doc | None = None, error: RpcError | None = None
) -> Doc:
    """A google.longrunning.Operation, finished at once (the emulator has nothing to wait for), and kept."""
    operation: Doc = {"name": name, "metadata": metadata, "done": True}
    if error is not None:
        operation["error"] = {"code": error.code, "message": error.message}
    else:
        operation["response"] = response or {"@type": "type.googleapis.com/google.protobuf.Empty"}
    project.store(OperationStore).operations[name] = operation
    return operation


def operation_id() -> str:
    """Cloud Functions' operation ids look like operation-1732612345678-62e5f7a1b5d2c-4f9a1b2c-7d8e9f0a."""
    stamp = f"{secrets.randbelow(10**13):013d}"
    return f"operation-{stamp}-{secrets.token_hex(7)[:13]}-{secrets.token_hex(4)}-{secrets.token_hex(4)}"


# Admin Activity audit entries ------------------------------------------------------------------------------

AUDIT_DATA = "type.googleapis.com/google.iam.v1.logging.AuditData"  # serviceData of SetIamPolicy (audit_data.proto)


@dataclass
class PendingAudits:
    """The last Admin Activity entry of each long-running operation still running, by operation name."""

    entries: dict[Any, Any] = field(default_factory=dict)


def audited(
    call: Call,
    project: Project,
    *,
    resource: str,
    permission: str,
    resource_type: Doc | None = None,
    request: Doc | None = None,
    response: Doc | None = None,
    service_data: Doc | None = None,
    method: str = "",
    operation: str = "",
    done: bool = True,
) -> None:
    """The Admin Activity entry of a change just made through an API, in `project`'s log at the clock's time: the
    caller, the API (`call.method.api`), the method as Google logs it (default: the gRPC name of the method called),
    the resource, the permission checked (granted), the request and response as given, the monitored resource
    (`resource_type`, default audited_resource). Call it only after the change succeeded.

    With `operation` (a long-running operation's name) the first entry carries operation.first; the last entry
    (operation.last, the response) follows now when `done`, else when `operation_ended` is called for it."""
    email = call.authenticate()
    common: dict[str, Any] = {
        "email": email,
        "service": call.method.api,
        "method": method or call.method.full_name,
        "resource": resource,
        "permission": permission,
        "resource_type": resource_type,
        "caller_ip": call.caller_ip,
    }
    mark = {"id": operation, "producer": call.method.api}
    audit.admin_activity(
        call.world,
        project,
        at=at(call),
        service_data=service_data,
        request=request,
        response=None if operation else response,
        operation={**mark, "first": True} if operation else None,
        **common,
    )
    if not operation:
        return
    last = {**common, "operation": {**mark, "last": True}}
    if done:
        audit.admin_activity(call.world, project, at=at(call), response=response, **last)
    else:
        project.store(PendingAudits).entries[operation] = last


def operation_ended(world: World, project: Project, operation: str, response: Doc | None) -> None:
    """Write the last Admin Activity entry of a long-running operation `audited` left running (none if unknown)."""
    last = project.store(PendingAudits).entries.pop(operation, None)
    if last is not None:
        audit.admin_activity(world, project, at=world.clock.now(), response=response, **last)


def policy_delta(old: iam.Policy, new: iam.Policy) -> Doc:
    """SetIamPolicy's serviceData: an AuditData whose policyDelta lists the bindings added and removed."""
    deltas = iam.binding_deltas(old, new)
    return {"@type": AUDIT_DATA, "policyDelta": {"bindingDeltas": deltas} if deltas else {}}


def set_policy_request(resource: str, policy: Doc) -> Doc:
    return {"@type": "type.googleapis.com/google.iam.v1.SetIamPolicyRequest", "resource": resource, "policy": policy}


def policy_response(policy: iam.Policy) -> Doc:
    return {"@type": "type.googleapis.com/google.iam.v1.Policy", **policy_json(policy)}


# Resource-level IAM policies -------------------------------------------------------------------------------

POLICY: Fields = {
    "version": None,
    "bindings": {"role": None, "members": None, "condition": None},
    "auditConfigs": {"service": None, "auditLogConfigs": None},
    "etag": None,
}
GET_POLICY: Fields = {"resource": None, "options": {"requestedPolicyVersion": None}}
SET_POLICY: Fields = {"resource": None, "policy": POLICY, "updateMask": None}
TEST_PERMISSIONS: Fields = {"resource": None, "permissions": None}


def replace_policy(current: iam.Policy, request: Doc) -> iam.Policy:
    """SetIamPolicy on a resource: the etag must match the current one when given; bindings are replaced."""
    raw = policy_pb2.Policy()
    try:
        json_format.ParseDict(message(request, "policy"), raw)
    except json_format.ParseError as err:
        raise invalid_argument(f"Invalid JSON payload received. {err}") from None
    if raw.etag and raw.etag != current.etag:
        raise RpcError(
            code_pb2.ABORTED,
            "There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff.",
        )
    new = policy_from_pb(raw)
    current.bindings = [iam.Binding(b.role, sorted(set(b.members)), b.condition) for b in new.bindings if b.members]
    current.version = max(new.version, 1)
    current.etag_counter += 1
    return current


def held_permissions(call: Call, project: Project, request: Doc, *policies: iam.Policy) -> Doc:
    """TestIamPermissions: the asked permissions the caller holds here (allow policies only, like Resource Manager)."""
    asked = request.get("permissions") or []
    if not isinstance(asked, list):
        raise invalid_argument("Invalid value at 'permissions': expected a list of permission names.")
    for permission in asked:
        if not isinstance(permission, str) or not iam.PERMISSION_SHAPE.match(permission):
            raise invalid_argument(f"Permission {permission} is not valid.")
    member = call.member()
    effective = (*policies, *call.world.policies(project))
    held = [p for p in asked if any(iam.allowed_by_policy(pol, member, p) for pol in effective)]
    return {"permissions": held} if held else {}


class _HasPolicy(Protocol):
    policy: iam.Policy


def iam_policy_methods(
    proto: str,
    api: str,
    permission_prefix: str,
    find: Callable[[Call, str, str | None], tuple[Project, _HasPolicy]],
    *,
    audit_method: str = "",
    audit_target: Callable[[Project, Any, str], tuple[str, Doc | None]] | None = None,
) -> list[JsonMethod]:
    """GetIamPolicy, SetIamPolicy and TestIamPermissions of a resource with an allow policy of its own (a function,
    a Cloud Run service, a service account). `find(call, resource name, permission or None)` returns the resource's
    project and the resource after checking the caller's permission (`<permission_prefix>.getIamPolicy` /
    `.setIamPolicy`; none for TestIamPermissions, which any caller may ask for itself).

    SetIamPolicy writes an Admin Activity entry with the binding deltas: methodName `audit_method` (default the gRPC
    name), resourceName and monitored resource from `audit_target(project, resource, name asked)` (default: the name
    asked, audited_resource)."""

    def get_policy(call: Call, request: Doc) -> Doc:
        _, resource = find(call, text(request, "resource"), f"{permission_prefix}.getIamPolicy")
        return policy_json(resource.policy)

    def set_policy(call: Call, request: Doc) -> Doc:
        name = text(request, "resource")
        project, resource = find(call, name, f"{permission_prefix}.setIamPolicy")
        old = copy.deepcopy(resource.policy)
        new = replace_policy(resource.policy, request)
        logged, resource_type = audit_target(project, resource, name) if audit_target else (name, None)
        audited(
            call,
            project,
            method=audit_method,
            resource=logged,
            permission=f"{permission_prefix}.setIamPolicy",
            resource_type=resource_type,
            service_data=policy_delta(old, new),
            request=set_policy_request(name, message(request, "policy")),
            response=policy_response(new),
        )
        return policy_json(new)

    def test_permissions(call: Call, request: Doc) -> Doc:
        project, resource = find(call, text(request, "resource"), None)
        return held_permissions(call, project, request, resource.policy)

    return [
        json_method(proto, "GetIamPolicy", get_policy, api, GET_POLICY),
        json_method(proto, "SetIamPolicy", set_policy, api, SET_POLICY),
        json_method(proto, "TestIamPermissions", test_permissions, api, TEST_PERMISSIONS),
    ]
