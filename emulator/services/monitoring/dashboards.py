"""Cloud Monitoring Dashboards v1 (monitoring.googleapis.com `/v1/projects/*/dashboards`): create, get, list, patch,
delete. A dashboard is kept as given (layouts and widgets are not checked) with the name and etag Google assigns.

Assumption: a missing dashboard is 404 "Requested entity was not found."; a stale etag is 409 ABORTED; a
dashboard needs a displayName and exactly one layout; denials are Monitoring's "Permission P denied (or the
resource may not exist)." with no details.
"""

from __future__ import annotations

import copy
import re
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

from google.rpc import code_pb2

from emulator.core.handlers import Api, Call, Doc, Fields, HttpRule, JsonMethod, Service, json_method
from emulator.core.status import RpcError, invalid_argument, not_found
from emulator.core.world import Project
from emulator.services.kit import admit, audited, boolean, listed, message, text
from emulator.services.monitoring.service import monitoring_denied

API = "monitoring.googleapis.com"
PROTO = "google.monitoring.dashboard.v1.DashboardsService"
LAYOUTS = ("gridLayout", "mosaicLayout", "rowLayout", "columnLayout")
DASHBOARD: Fields = {
    "name": None,
    "displayName": None,
    "etag": None,
    "gridLayout": None,
    "mosaicLayout": None,
    "rowLayout": None,
    "columnLayout": None,
    "dashboardFilters": None,
    "labels": None,
    "annotations": None,
}
_NAME = re.compile(r"^projects/([^/]+)/dashboards/([^/]+)\Z")


@dataclass
class DashboardStore:
    """Dashboards in one project, by resource name."""

    dashboards: dict[Any, Any] = field(default_factory=dict)


def _project(call: Call, ref: str, permission: str) -> Project:
    return admit(call, ref, API, permission, lambda: monitoring_denied(permission))


def _dashboard(call: Call, name: str, permission: str) -> tuple[Project, Doc]:
    match = _NAME.match(name)
    if match is None:
        raise invalid_argument(f"Invalid dashboard name: {name!r}. Expected projects/PROJECT/dashboards/ID.")
    project = _project(call, match.group(1), permission)
    found = project.store(DashboardStore).dashboards.get(f"projects/{project.number}/dashboards/{match.group(2)}")
    if found is None:
        raise not_found("Requested entity was not found.")
    return project, found


def _check(dashboard: Doc) -> None:
    if not text(dashboard, "displayName"):
        raise invalid_argument("Field displayName had an invalid value: a dashboard needs a display name.")
    layouts = [k for k in LAYOUTS if k in dashboard]
    if len(layouts) > 1:
        raise invalid_argument(f"A dashboard has one layout, got {', '.join(layouts)}.")


def _etag() -> str:
    return secrets.token_hex(16)


def _audit(call: Call, project: Project, name: str, permission: str, request: Doc, response: Doc | None) -> None:
    """A dashboard change's Admin Activity entry: google.monitoring.dashboard.v1.DashboardsService.<Method> (Cloud
    Monitoring audit logging, ADMIN_WRITE), on audited_resource."""
    verb = call.method.name
    audited(
        call,
        project,
        resource=name,
        permission=permission,
        request={
            "@type": f"type.googleapis.com/google.monitoring.dashboard.v1.{verb}Request",
            **copy.deepcopy(request),
        },
        response={"@type": "type.googleapis.com/google.monitoring.dashboard.v1.Dashboard", **copy.deepcopy(response)}
        if response
        else None,
    )


def create_dashboard(call: Call, request: Doc) -> Doc:
    parent = text(request, "parent")
    project = _project(call, parent.removeprefix("projects/"), "monitoring.dashboards.create")
    given = message(request, "dashboard")
    _check(given)
    name = f"projects/{project.number}/dashboards/{uuid.uuid4()}"
    if given.get("etag"):
        raise invalid_argument("Field etag must be empty when a dashboard is created.")
    stored = {**given, "name": name, "etag": _etag()}
    if not boolean(request, "validateOnly"):
        project.store(DashboardStore).dashboards[name] = stored
        _audit(call, project, name, "monitoring.dashboards.create", request, stored)
    return copy.deepcopy(stored)


def get_dashboard(call: Call, request: Doc) -> Doc:
    return copy.deepcopy(_dashboard(call, text(request, "name"), "monitoring.dashboards.get")[1])


def list_dashboards(call: Call, request: Doc) -> Doc:
    project = _project(call, text(request, "parent").removeprefix("projects/"), "monitoring.dashboards.list")
    return listed(
        "dashboards",
        [copy.deepcopy(d) for _, d in sorted(project.store(DashboardStore).dashboards.items())],
        request,
        1000,
        1000,
    )


def update_dashboard(call: Call, request: Doc) -> Doc:
    given = message(request, "dashboard")
    project, current = _dashboard(call, text(given, "name"), "monitoring.dashboards.update")
    if given.get("etag") and given["etag"] != current["etag"]:
        raise RpcError(code_pb2.ABORTED, "The dashboard was changed since it was read: its etag does not match.")
    _check(given)
    stored = {**given, "name": current["name"], "etag": _etag()}
    if not boolean(request, "validateOnly"):
        project.store(DashboardStore).dashboards[current["name"]] = stored
        _audit(call, project, current["name"], "monitoring.dashboards.update", request, stored)
    return copy.deepcopy(stored)


def delete_dashboard(call: Call, request: Doc) -> Doc:
    project, current = _dashboard(call, text(request, "name"), "monitoring.dashboards.delete")
    del project.store(DashboardStore).dashboards[current["name"]]
    _audit(call, project, current["name"], "monitoring.dashboards.delete", request, None)
    return {}


_DB = "projects/*/dashboards/*"
METHODS: list[JsonMethod] = [
    json_method(
        PROTO,
        "CreateDashboard",
        create_dashboard,
        API,
        {"parent": None, "dashboard": DASHBOARD, "validateOnly": None},
    ),
    json_method(PROTO, "GetDashboard", get_dashboard, API, {"name": None}),
    json_method(PROTO, "ListDashboards", list_dashboards, API, {"parent": None, "pageSize": None, "pageToken": None}),
    json_method(PROTO, "UpdateDashboard", update_dashboard, API, {"dashboard": DASHBOARD, "validateOnly": None}),
    json_method(PROTO, "DeleteDashboard", delete_dashboard, API, {"name": None}),
]

RULES: list[HttpRule] = [
    HttpRule("POST", "/v1/{parent=projects/*}/dashboards", f"{PROTO}.CreateDashboard", "dashboard"),
    HttpRule("GET", "/v1/{parent=projects/*}/dashboards", f"{PROTO}.ListDashboards"),
    HttpRule("GET", f"/v1/{{name={_DB}}}", f"{PROTO}.GetDashboard"),
    HttpRule("PATCH", f"/v1/{{dashboard.name={_DB}}}", f"{PROTO}.UpdateDashboard", "dashboard"),
    HttpRule("DELETE", f"/v1/{{name={_DB}}}", f"{PROTO}.DeleteDashboard"),
]


SERVICE = Service(
    apis=(Api(API, "Cloud Monitoring API", gcloud="MONITORING"),),
    methods=(*METHODS,),
    rules=(*RULES,),
)
