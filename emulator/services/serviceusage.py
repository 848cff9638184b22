"""Service Usage v1 (serviceusage.googleapis.com): get, list, enable, disable, batchEnable, and the operations
they answer with. Every enable and disable goes through `changes.set_service`, so it is audited in the project's
Admin Activity log as a person's change would be.

Assumption: any `*.googleapis.com` name is a service that exists; another name gets 403 "Not found or permission
denied for service(s): NAME." with ErrorInfo SERVICE_CONFIG_NOT_FOUND_OR_PERMISSION_DENIED.
Assumption: a denial reads "Permission denied to enable service [S]" (and "… to disable service", "… to get
service", "… to list services for consumer container [projects/N]") with a PreconditionFailure and ErrorInfo
AUTH_PERMISSION_DENIED (serviceusage.googleapis.com), as seen for enable; the Help Token line is left out.
Assumption: operations are done at once; disabling does not check dependent services or recent usage.
"""

from __future__ import annotations

import copy
import re
import uuid

from google.rpc import code_pb2

from emulator.core import changes
from emulator.core.handlers import Api, Call, Doc, HttpRule, JsonMethod, Service, json_method
from emulator.core.status import RpcError, error_info, invalid_argument, not_found, precondition
from emulator.core.world import Project
from emulator.services.kit import OperationStore, admit, allowed_on, at, listed, new_operation, text, title

API = "serviceusage.googleapis.com"
PROTO = "google.api.serviceusage.v1.ServiceUsage"
OPERATIONS = "google.api.serviceusage.v1.Operations"  # google.longrunning.Operations on this API's endpoint
MAX_BATCH = 20
_NAME = re.compile(r"^projects/([^/]+)/services/([^/]+)\Z")
_PARENT = re.compile(r"^projects/([^/]+)\Z")
# The reasons Service Usage sends that google.api.ErrorReason does not list; Google documents neither, the Assumption
# lines above say where each is used.
OWN_REASONS = frozenset({"AUTH_PERMISSION_DENIED", "SERVICE_CONFIG_NOT_FOUND_OR_PERMISSION_DENIED"})
# Services a project may enable beyond those the emulator serves (the registry's): gcloud and the deploy tool name them.
OTHER_SERVICES = (
    "artifactregistry.googleapis.com",
    "compute.googleapis.com",
    "eventarc.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
    "policytroubleshooter.googleapis.com",
)


def catalogue() -> list[str]:
    """Every service name this Service Usage knows: the registry's APIs and OTHER_SERVICES."""
    from emulator.services import apis  # noqa: PLC0415  (the registry imports this module)

    return sorted({*apis(), *OTHER_SERVICES})


def denied(verb: str, what: str) -> RpcError:
    return RpcError(
        code_pb2.PERMISSION_DENIED,
        f"Permission denied to {verb} {what}",
        [precondition("googleapis.com", "110002", ""), error_info("AUTH_PERMISSION_DENIED", API, {}, OWN_REASONS)],
    )


def unknown_service(service: str) -> RpcError:
    return RpcError(
        code_pb2.PERMISSION_DENIED,
        f"Not found or permission denied for service(s): {service}.",
        [error_info("SERVICE_CONFIG_NOT_FOUND_OR_PERMISSION_DENIED", API, {"services": service}, OWN_REASONS)],
    )


def _project(call: Call, ref: str, permission: str, verb: str, what: str) -> Project:
    return admit(call, ref, API, permission, lambda: denied(verb, what))


def _service(call: Call, name: str, permission: str, verb: str) -> tuple[Project, str]:
    match = _NAME.match(name)
    if match is None:
        raise invalid_argument(f"Invalid service name: {name!r}. Expected projects/PROJECT/services/PROTO.")
    ref, service = match.groups()
    project = _project(call, ref, permission, verb, f"service [{service}]")
    if not service.endswith(".googleapis.com"):
        raise unknown_service(service)
    return project, service


def service_json(project: Project, service: str) -> Doc:
    return {
        "name": f"projects/{project.number}/services/{service}",
        "parent": f"projects/{project.number}",
        "config": {"name": service, "title": title(service)},
        "state": "ENABLED" if service in project.services else "DISABLED",
    }


def _set(call: Call, project: Project, service: str, enabled: bool) -> None:
    if (service in project.services) != enabled:
        changes.set_service(call.world, project, service, enabled, actor=call.authenticate(), at=at(call))


def _operation(project: Project, response_type: str, response: Doc) -> Doc:
    name = f"operations/acf.p2-{project.number}-{uuid.uuid4()}"
    metadata = {"@type": "type.googleapis.com/google.api.serviceusage.v1.OperationMetadata"}
    return new_operation(project, name, metadata, {"@type": f"type.googleapis.com/{response_type}", **response})


def get_service(call: Call, request: Doc) -> Doc:
    project, service = _service(call, text(request, "name"), "serviceusage.services.get", "get")
    return service_json(project, service)


def list_services(call: Call, request: Doc) -> Doc:
    parent = text(request, "parent")
    match = _PARENT.match(parent)
    if match is None:
        raise invalid_argument(f"Invalid parent: {parent!r}. Expected projects/PROJECT.")
    project = _project(
        call, match.group(1), "serviceusage.services.list", "list", f"services for consumer container [{parent}]"
    )
    wanted = text(request, "filter").replace(" ", "")
    if wanted not in ("", "state:ENABLED", "state:DISABLED"):
        raise invalid_argument(f"Invalid filter: {wanted!r}. Supported: state:ENABLED, state:DISABLED.")
    names = sorted(set(catalogue()) | project.services)
    found = [service_json(project, s) for s in names]
    if wanted:
        found = [s for s in found if s["state"] == wanted.split(":")[1]]
    return listed("services", found, request, 50, 200)


def enable_service(call: Call, request: Doc) -> Doc:
    project, service = _service(call, text(request, "name"), "serviceusage.services.enable", "enable")
    _set(call, project, service, True)
    return _operation(
        project, "google.api.serviceusage.v1.EnableServiceResponse", {"service": service_json(project, service)}
    )


def disable_service(call: Call, request: Doc) -> Doc:
    project, service = _service(call, text(request, "name"), "serviceusage.services.disable", "disable")
    _set(call, project, service, False)
    return _operation(
        project, "google.api.serviceusage.v1.DisableServiceResponse", {"service": service_json(project, service)}
    )


def batch_enable(call: Call, request: Doc) -> Doc:
    parent = text(request, "parent")
    match = _PARENT.match(parent)
    if match is None:
        raise invalid_argument(f"Invalid parent: {parent!r}. Expected projects/PROJECT.")
    ids = request.get("serviceIds") or []
    if not isinstance(ids, list) or not ids or len(ids) > MAX_BATCH:
        raise invalid_argument(f"service_ids: between 1 and {MAX_BATCH} services may be enabled at once.")
    project = _project(call, match.group(1), "serviceusage.services.enable", "enable", f"service [{ids[0]}]")
    for service in ids:
        if not str(service).endswith(".googleapis.com"):
            raise unknown_service(str(service))
    for service in ids:
        _set(call, project, str(service), True)
    services = [service_json(project, str(s)) for s in ids]
    return _operation(project, "google.api.serviceusage.v1.BatchEnableServicesResponse", {"services": services})


def get_operation(call: Call, request: Doc) -> Doc:
    call.authenticate()
    name = text(request, "name")
    for project in call.world.projects.values():
        if name in project.store(OperationStore).operations:
            if not allowed_on(call, project, "serviceusage.services.get"):
                raise denied("get", f"operation [{name}]")
            return copy.deepcopy(project.store(OperationStore).operations[name])
    raise not_found(f"Operation {name} not found.")


_SVC = "projects/*/services/*"
METHODS: list[JsonMethod] = [
    json_method(PROTO, "GetService", get_service, API, {"name": None}),
    json_method(
        PROTO,
        "ListServices",
        list_services,
        API,
        {"parent": None, "pageSize": None, "pageToken": None, "filter": None},
    ),
    json_method(PROTO, "EnableService", enable_service, API, {"name": None}),
    json_method(
        PROTO,
        "DisableService",
        disable_service,
        API,
        {"name": None, "disableDependentServices": None, "checkIfServiceHasUsage": None},
    ),
    json_method(PROTO, "BatchEnableServices", batch_enable, API, {"parent": None, "serviceIds": None}),
    json_method(OPERATIONS, "GetOperation", get_operation, API, {"name": None}),
]

RULES: list[HttpRule] = [
    HttpRule("GET", f"/v1/{{name={_SVC}}}", f"{PROTO}.GetService"),
    HttpRule("GET", "/v1/{parent=projects/*}/services", f"{PROTO}.ListServices"),
    HttpRule("POST", f"/v1/{{name={_SVC}}}:enable", f"{PROTO}.EnableService", "*"),
    HttpRule("POST", f"/v1/{{name={_SVC}}}:disable", f"{PROTO}.DisableService", "*"),
    HttpRule("POST", "/v1/{parent=projects/*}/services:batchEnable", f"{PROTO}.BatchEnableServices", "*"),
    # Monitoring v1 has the same operations path; only Service Usage creates operations under /v1/operations.
    HttpRule("GET", "/v1/{name=operations/**}", f"{OPERATIONS}.GetOperation"),
]


SERVICE = Service(
    apis=(Api(API, "Service Usage API", gcloud="SERVICEUSAGE"),),
    methods=(*METHODS,),
    rules=(*RULES,),
)
