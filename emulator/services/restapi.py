"""What the REST-only APIs share: JSON methods, request field shapes, HTTP rules, long-running operations,
resource-level IAM policies and paging.

The Python types of Cloud Functions, Cloud Run, Cloud Scheduler, Service Usage, IAM Admin, Dashboards and Pub/Sub
are not installed, so their handlers take and return proto3-JSON dicts. A `JsonMethod` is still a dispatch
`Method`: the REST front end counts it, arms faults on it, authenticates its caller and runs it under the world's
lock exactly as it does a protobuf method. Its `fields` list the request message's field names (a nested dict for
a message field, None for a scalar, a map or a free-form value), so an unknown field is refused with Google's text.

Assumption: field shapes list the fields the real messages have (taken from gcloud's discovery-generated message
classes); values inside maps and free-form objects (dashboard widgets) are not checked.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from google.iam.v1 import policy_pb2
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor
from google.rpc import code_pb2, error_details_pb2

from emulator import iam
from emulator.clock import rfc3339
from emulator.dispatch import Call, Method
from emulator.rpc import RpcError, invalid_argument
from emulator.services.common import require_enabled
from emulator.services.resourcemanager import from_pb, to_pb
from emulator.world import Project

Doc = dict[str, Any]
Fields = Mapping[str, Any]  # field name → None (scalar, map, free-form) or the nested message's Fields


@dataclass(frozen=True)
class JsonMethod(Method):
    """A Method whose request and response are proto3-JSON dicts; served over REST only."""

    fields: Fields = field(default_factory=dict)

    def parse_bytes(self, data: bytes) -> Any:
        raise NotImplementedError(f"{self.full_name} is served over REST only")

    def dump_bytes(self, message: Any) -> bytes:
        raise NotImplementedError(f"{self.full_name} is served over REST only")

    def parse_json(self, doc: dict[str, Any]) -> Any:
        return doc

    def dump_json(self, message: Any) -> dict[str, Any]:
        return dict(message)


@dataclass
class RestCall(Call):
    """A Call that came over HTTP: `base_url` is how the caller reached the emulator (for URLs it hands out)."""

    base_url: str = ""


def json_method(service: str, name: str, handler: Callable[[Call, Doc], Doc], api: str, fields: Fields) -> JsonMethod:
    return JsonMethod(service, name, dict, dict, handler, api, fields)


@dataclass(frozen=True)
class HttpRule:
    """One `google.api.http` binding: verb, URL template, the method, and where the body goes.

    `body` is "" (no body; other fields from the query), "*" (the whole request) or a field's proto name.
    `prefix` prepends text to a path variable (Resource Manager v1 names a project `{resource}`, v3 `projects/P`).
    `reply` reshapes the response (v1 GetProject answers with the v1 Project shape).
    """

    verb: str
    template: str
    method: str
    body: str = ""
    prefix: Mapping[str, str] = field(default_factory=dict)
    reply: Callable[[Doc], Doc] | None = None


# Field names and shapes ------------------------------------------------------------------------------------


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


class Shape(Protocol):
    def field(self, key: str) -> tuple[str, Shape | None] | None:
        """(the field's proto name, the shape of its message or None for a leaf), or None if there is none."""


class DictShape:
    def __init__(self, fields: Fields) -> None:
        self.fields = fields

    def field(self, key: str) -> tuple[str, Shape | None] | None:
        name = key if key in self.fields else camel(key)
        if name not in self.fields:
            return None
        child = self.fields[name]
        return snake(name), DictShape(child) if isinstance(child, Mapping) else None


class ProtoShape:
    """A protobuf message's fields; maps and google.protobuf types (Struct, Any, Timestamp…) are leaves."""

    def __init__(self, descriptor: Descriptor) -> None:
        self.descriptor = descriptor

    def field(self, key: str) -> tuple[str, Shape | None] | None:
        found = self.descriptor.fields_by_name.get(key) or next(
            (f for f in self.descriptor.fields if f.json_name == key), None
        )
        if found is None:
            return None
        message = found.message_type
        if message is None or message.GetOptions().map_entry or message.full_name.startswith("google.protobuf."):
            return found.name, None
        return found.name, ProtoShape(message)


def unknown_fields(doc: Any, shape: Shape, path: str = "") -> list[tuple[str, str]]:
    """(where, name) of every field the message does not have, where as Google writes it: `contents[0].parts[0]`."""
    found: list[tuple[str, str]] = []
    if not isinstance(doc, dict):
        return found
    for key, value in doc.items():
        hit = shape.field(key)
        if hit is None:
            found.append((path, key))
            continue
        name, child = hit
        if child is None:
            continue
        here = f"{path}.{name}" if path else name
        if isinstance(value, list):
            for i, item in enumerate(value):
                found += unknown_fields(item, child, f"{here}[{i}]")
        else:
            found += unknown_fields(value, child, here)
    return found


def unknown_field_error(found: Sequence[tuple[str, str]]) -> RpcError:
    """Google's ESF answer to unknown JSON fields: one line each, and a BadRequest field violation each."""
    lines, violations = [], []
    for where, name in found:
        at = f" at '{where}'" if where else ""
        text = f'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.'
        lines.append(text)
        violations.append(error_details_pb2.BadRequest.FieldViolation(field=where, description=text))
    return RpcError(
        code_pb2.INVALID_ARGUMENT, "\n".join(lines), [error_details_pb2.BadRequest(field_violations=violations)]
    )


def unbound_query_error(name: str, segment: str) -> RpcError:
    text = (
        f'Invalid JSON payload received. Unknown name "{name}": Cannot bind query parameter. '
        f"Field '{segment}' could not be found in request message."
    )
    return RpcError(
        code_pb2.INVALID_ARGUMENT,
        text,
        [
            error_details_pb2.BadRequest(
                field_violations=[error_details_pb2.BadRequest.FieldViolation(description=text)]
            )
        ],
    )


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


def page(items: Sequence[Any], doc: Doc, default: int, maximum: int) -> tuple[list[Any], str]:
    """One page of `items` by the request's pageSize / pageToken; the next page's token or ""."""
    size = integer(doc, "pageSize") or default
    size = min(max(size, 1), maximum)
    token = text(doc, "pageToken")
    start = 0
    if token:
        try:
            start = int(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("o:"))
        except ValueError:
            raise invalid_argument("The page token is invalid.") from None
    end = start + size
    more = base64.urlsafe_b64encode(f"o:{end}".encode()).decode() if end < len(items) else ""
    return list(items[start:end]), more


def new_operation(
    project: Project, name: str, metadata: Doc, response: Doc | None = None, error: RpcError | None = None
) -> Doc:
    """A google.longrunning.Operation, finished at once (the emulator has nothing to wait for), and kept."""
    operation: Doc = {"name": name, "metadata": metadata, "done": True}
    if error is not None:
        operation["error"] = {"code": error.code, "message": error.message}
    else:
        operation["response"] = response or {"@type": "type.googleapis.com/google.protobuf.Empty"}
    project.operations[name] = operation
    return operation


def operation_id() -> str:
    """Cloud Functions' operation ids look like operation-1732612345678-62e5f7a1b5d2c-4f9a1b2c-7d8e9f0a."""
    stamp = f"{secrets.randbelow(10**13):013d}"
    return f"operation-{stamp}-{secrets.token_hex(7)[:13]}-{secrets.token_hex(4)}-{secrets.token_hex(4)}"


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


def policy_json(policy: iam.Policy) -> Doc:
    """A resource's policy in proto3 JSON (etag base64, as bytes are), the form every IAM API returns."""
    return json_format.MessageToDict(to_pb(policy))


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
    new = from_pb(raw)
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
