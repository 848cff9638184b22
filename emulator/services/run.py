"""Cloud Run Admin (run.googleapis.com): the services behind gen2 functions, read-only, and their IAM policy.

Served on v2 (`/v2/projects/*/locations/*/services/*`) and on the v1 one-platform paths gcloud uses for IAM
(`gcloud run services get-iam-policy / add-iam-policy-binding`, and the regional endpoint
`gcloud functions add-invoker-policy-binding` derives). A service exists while its function does; the function
module creates and deletes it.

Assumption: denials read "Permission 'run.services.X' denied on resource 'NAME' (or resource may not exist)." with no
details, and a missing service (for a caller who may see it) "Resource 'S' of kind 'PROTO' in region 'R' in project
'P' does not exist.", the texts gcloud users report; the details Google attaches are not known.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from google.rpc import code_pb2

from emulator.core import iam
from emulator.core.handlers import Api, Call, Doc, HttpRule, JsonMethod, Service, json_method
from emulator.core.status import RpcError, not_found
from emulator.core.world import Project
from emulator.services.kit import (
    allowed_on,
    iam_policy_methods,
    require_enabled,
    text,
)

API = "run.googleapis.com"
V2 = "google.cloud.run.v2.Services"
V1 = "google.cloud.run.v1.Services"
_NAME = re.compile(r"^projects/([^/]+)/locations/([^/]+)/services/([^/]+)\Z")


@dataclass
class RunStore:
    """Cloud Run services in one project (those behind gen2 functions), by resource name."""

    run_services: dict[Any, Any] = field(default_factory=dict)


@dataclass
class RunService:
    name: str  # projects/PROJECT_ID/locations/REGION/services/NAME
    uri: str
    service_account: str
    function: str  # the gen2 function that owns it
    create_time: str
    update_time: str
    generation: int = 1
    policy: iam.Policy = field(default_factory=iam.Policy)


def denied(permission: str, name: str) -> RpcError:
    return RpcError(
        code_pb2.PERMISSION_DENIED,
        f"Permission '{permission}' denied on resource '{name}' (or resource may not exist).",
    )


def find(call: Call, name: str, permission: str | None) -> tuple[Project, RunService]:
    call.authenticate()
    match = _NAME.match(name)
    project = call.world.project(match.group(1)) if match else None
    if match is None or project is None:
        raise denied(permission or "run.services.get", name)
    require_enabled(project, API)
    key = f"projects/{project.project_id}/locations/{match.group(2)}/services/{match.group(3)}"
    service = project.store(RunStore).run_services.get(key)
    policies = [service.policy] if service is not None else []
    if permission and not allowed_on(call, project, permission, *policies):
        raise denied(permission, name)
    if service is None:
        raise not_found(
            f"Resource '{match.group(3)}' of kind 'PROTO' in region '{match.group(2)}' in project "
            f"'{match.group(1)}' does not exist."
        )
    return project, service


def service_json(project: Project, service: RunService) -> Doc:
    """A google.cloud.run.v2.Service, with what a function's service carries."""
    _, _, region, _, sid = service.name.split("/")[1:]
    return {
        "name": service.name,
        "uid": str(uuid.UUID(hashlib.md5(service.name.encode(), usedforsecurity=False).hexdigest())),
        "generation": str(service.generation),
        "labels": {"goog-managed-by": "cloudfunctions"},
        "createTime": service.create_time,
        "updateTime": service.update_time,
        "creator": "service-" + project.number + "@gcf-admin-robot.iam.gserviceaccount.com",
        "lastModifier": "service-" + project.number + "@gcf-admin-robot.iam.gserviceaccount.com",
        "launchStage": "GA",
        "template": {
            "serviceAccount": service.service_account,
            "containers": [
                {"name": "worker", "image": f"{region}-docker.pkg.dev/{project.project_id}/gcf-artifacts/{sid}"}
            ],
            "maxInstanceRequestConcurrency": 1,
        },
        "traffic": [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100}],
        "uri": service.uri,
        "urls": [service.uri],
        "ingress": "INGRESS_TRAFFIC_ALL",
        "terminalCondition": {"type": "Ready", "state": "CONDITION_SUCCEEDED"},
        "latestReadyRevision": f"{service.name}/revisions/{sid}-{service.generation:05d}-emu",
        "latestCreatedRevision": f"{service.name}/revisions/{sid}-{service.generation:05d}-emu",
        "etag": f'"{service.generation}"',
    }


def audit_target(project: Project, service: RunService, name: str) -> tuple[str, Doc]:
    """What a SetIamPolicy entry names: the service, under Cloud Run's monitored resource cloud_run_revision with
    the service and location labels and no revision (published SetIamPolicy entries; docs/google-behaviour.md)."""
    _, _, region, _, service_id = service.name.split("/")[1:]
    labels = {
        "service_name": service_id,
        "location": region,
        "project_id": project.project_id,
        "configuration_name": "",
        "revision_name": "",
    }
    return service.name, {"type": "cloud_run_revision", "labels": labels}


def get_service(call: Call, request: Doc) -> Doc:
    project, service = find(call, text(request, "name"), "run.services.get")
    return service_json(project, service)


_SVC = "projects/*/locations/*/services/*"
METHODS: list[JsonMethod] = [
    json_method(V2, "GetService", get_service, API, {"name": None}),
    *[
        method
        for svc in (V2, V1)
        for method in iam_policy_methods(svc, API, "run.services", find, audit_target=audit_target)
    ],
]

RULES: list[HttpRule] = [
    HttpRule("GET", f"/v2/{{name={_SVC}}}", f"{V2}.GetService"),
    *[
        rule
        for version, svc in (("v2", V2), ("v1", V1))
        for rule in (
            HttpRule("GET", f"/{version}/{{resource={_SVC}}}:getIamPolicy", f"{svc}.GetIamPolicy"),
            HttpRule("POST", f"/{version}/{{resource={_SVC}}}:setIamPolicy", f"{svc}.SetIamPolicy", "*"),
            HttpRule("POST", f"/{version}/{{resource={_SVC}}}:testIamPermissions", f"{svc}.TestIamPermissions", "*"),
        )
    ],
]


SERVICE = Service(
    apis=(Api(API, "Cloud Run Admin API", gcloud="RUN"),),
    methods=(*METHODS,),
    rules=(*RULES,),
)
