"""The Metrics Scopes API (monitoring.googleapis.com v1, `google.monitoring.metricsscope.v1.MetricsScopes`): a scoping
project's metrics scope lists the projects whose time series the scoping project reads (ListTimeSeries, alert
policies); `gcloud beta monitoring metrics-scopes create|delete|list|describe` call these methods
(docs/google-behaviour.md, "Metrics scopes").

- GetMetricsScope `locations/global/metricsScopes/{SCOPING}`: `resourcemanager.projects.get` on the scoping project.
- ListMetricsScopesByMonitoredProject `?monitoredResourceContainer=projects/{P}`: `resourcemanager.projects.get` on P;
  P's own scope first, then every scope P was added to.
- CreateMonitoredProject / DeleteMonitoredProject: `monitoring.metricsScopes.link` on both the scoping project and
  the monitored project; each answers a long-running operation and writes an Admin Activity entry
  (operation.first and operation.last) in the scoping project's log.
- Names are given with a project id or number and answered with numbers.
- At most 375 projects are added to one scope (Cloud Monitoring's supported maximum); a project may be in several.

Assumption: every scope lists its own scoping project first among `monitoredProjects` (the list method says a
project's own scope is always the first scope it is in), which cannot be removed (400) or added again (409).
Assumption: adding a project already in the scope is refused at once with 409 ALREADY_EXISTS, and a 376th project
with 429 RESOURCE_EXHAUSTED, before any operation starts; removing a project not in the scope is 404 NOT_FOUND; the
wording of these texts is this emulator's.
Assumption: a denial is Monitoring's "Permission P denied (or the resource may not exist).", the same for a project
that does not exist; the Monitoring API must be enabled on the project the call names first (the scoping project,
or the monitored resource container for the list method).
Assumption: the operations finish at once (done, with OperationMetadata state DONE) and are not served by
`operations.get`: `/v1/operations/*` is Service Usage's path on this emulator's path-routed REST front end, and gcloud
does not poll them.
Assumption: no limit on how many scopes one project is in; a scope's createTime is when the emulator first read or
changed it.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from google.rpc import code_pb2

from emulator.core.clock import rfc3339
from emulator.core.handlers import Api, Call, Doc, HttpRule, JsonMethod, Service, json_method
from emulator.core.status import RpcError, invalid_argument, not_found
from emulator.core.world import Project
from emulator.services.kit import admit, allowed_on, audited, message, text
from emulator.services.monitoring.service import monitoring_denied
from emulator.services.monitoring.store import MetricsScopeStore, scope_projects

API = "monitoring.googleapis.com"
PROTO = "google.monitoring.metricsscope.v1.MetricsScopes"
TYPES = "type.googleapis.com/google.monitoring.metricsscope.v1"
LINK = "monitoring.metricsScopes.link"  # the create and delete methods' permission, on both projects (REST reference)
READ = "resourcemanager.projects.get"  # the get and list methods' permission (REST reference)
# Cloud Monitoring's quotas page: 375 projects per metrics scope is the supported maximum.
MAX_MONITORED = 375

_REF = r"([a-z0-9][a-z0-9-]{0,62})"  # a project id or number
_SCOPE = re.compile(rf"^locations/global/metricsScopes/{_REF}\Z")
_MONITORED = re.compile(rf"^locations/global/metricsScopes/{_REF}/projects/{_REF}\Z")
_CONTAINER = re.compile(rf"^projects/{_REF}\Z")


def _scope_ref(name: str, field: str) -> str:
    found = _SCOPE.match(name)
    if found is None:
        raise invalid_argument(
            f"Field {field} had an invalid value of {name!r}: expected locations/global/metricsScopes/PROJECT."
        )
    return found.group(1)


def _monitored_refs(name: str, field: str) -> tuple[str, str]:
    found = _MONITORED.match(name)
    if found is None:
        raise invalid_argument(
            f"Field {field} had an invalid value of {name!r}: expected "
            "locations/global/metricsScopes/PROJECT/projects/MONITORED_PROJECT."
        )
    return found.group(1), found.group(2)


def _admit(call: Call, ref: str, permission: str) -> Project:
    return admit(call, ref, API, permission, lambda: monitoring_denied(permission))


def _linkable(call: Call, ref: str) -> Project:
    """The monitored project, when it exists and the caller may link it (its API state is not checked)."""
    project = call.world.project(ref)
    if project is None or not allowed_on(call, project, LINK):
        raise monitoring_denied(LINK)
    return project


def _scope_name(project: Project) -> str:
    return f"locations/global/metricsScopes/{project.number}"


def _scope_doc(call: Call, scoping: Project) -> Doc:
    store = scoping.store(MetricsScopeStore)
    created, updated = store.stamp(call.world.clock.now())
    members = []
    for project in scope_projects(call.world, scoping):
        added = store.monitored.get(project.project_id, created)
        members.append({"name": f"{_scope_name(scoping)}/projects/{project.number}", "createTime": rfc3339(added)})
    return {
        "name": _scope_name(scoping),
        "createTime": rfc3339(created),
        "updateTime": rfc3339(updated),
        "monitoredProjects": members,
    }


def get_metrics_scope(call: Call, request: Doc) -> Doc:
    scoping = _admit(call, _scope_ref(text(request, "name"), "name"), READ)
    return _scope_doc(call, scoping)


def list_metrics_scopes(call: Call, request: Doc) -> Doc:
    given = text(request, "monitoredResourceContainer")
    found = _CONTAINER.match(given)
    if found is None:
        raise invalid_argument(
            f"Field monitored_resource_container had an invalid value of {given!r}: expected projects/PROJECT."
        )
    project = _admit(call, found.group(1), READ)
    scopes = [project] + [
        other
        for other in sorted(call.world.projects.values(), key=lambda p: p.number)
        if other is not project and project.project_id in other.store(MetricsScopeStore).monitored
    ]
    return {"metricsScopes": [_scope_doc(call, scoping) for scoping in scopes]}


def _operation(call: Call, response: Doc) -> Doc:
    now = rfc3339(call.world.clock.now())
    return {
        "name": f"operations/{secrets.token_hex(16)}",
        "metadata": {"@type": f"{TYPES}.OperationMetadata", "state": "DONE", "createTime": now, "updateTime": now},
        "done": True,
        "response": response,
    }


def _audit(call: Call, scoping: Project, name: str, request: Doc, operation: Doc, response: Doc) -> None:
    audited(
        call,
        scoping,
        resource=name,
        permission=LINK,
        request={"@type": f"{TYPES}.{call.method.name}Request", **request},
        response=response,
        operation=operation["name"],
    )


def create_monitored_project(call: Call, request: Doc) -> Doc:
    parent = text(request, "parent")
    scoping = _admit(call, _scope_ref(parent, "parent"), LINK)
    given = text(message(request, "monitoredProject"), "name")
    if not given:
        raise invalid_argument("Field monitored_project.name had an invalid value: required.")
    scope_ref, monitored_ref = _monitored_refs(given, "monitored_project.name")
    if call.world.project(scope_ref) is not scoping:
        raise invalid_argument(
            f"Field monitored_project.name had an invalid value of {given!r}: it names another metrics scope than "
            f"the parent {parent!r}."
        )
    monitored = _linkable(call, monitored_ref)
    store = scoping.store(MetricsScopeStore)
    name = f"{_scope_name(scoping)}/projects/{monitored.number}"
    if monitored is scoping or monitored.project_id in store.monitored:
        raise RpcError(code_pb2.ALREADY_EXISTS, f"Monitored project {name} already exists in the metrics scope.")
    if len(store.monitored) >= MAX_MONITORED:
        raise RpcError(
            code_pb2.RESOURCE_EXHAUSTED,
            f"Metrics scope {_scope_name(scoping)} already monitors {MAX_MONITORED} projects, the most a metrics "
            "scope supports.",
        )
    now = call.world.clock.now()
    store.stamp(now)
    store.monitored[monitored.project_id] = now
    store.updated = now
    response = {"@type": f"{TYPES}.MonitoredProject", "name": name, "createTime": rfc3339(now)}
    operation = _operation(call, response)
    _audit(call, scoping, name, request, operation, response)
    return operation


def delete_monitored_project(call: Call, request: Doc) -> Doc:
    given = text(request, "name")
    scope_ref, monitored_ref = _monitored_refs(given, "name")
    scoping = _admit(call, scope_ref, LINK)
    monitored = _linkable(call, monitored_ref)
    store = scoping.store(MetricsScopeStore)
    name = f"{_scope_name(scoping)}/projects/{monitored.number}"
    if monitored is scoping:
        raise invalid_argument(f"Monitored project {name} is the scoping project; it cannot leave its own scope.")
    if monitored.project_id not in store.monitored:
        raise not_found(f"Monitored project {name} does not exist in the metrics scope.")
    now = call.world.clock.now()
    del store.monitored[monitored.project_id]
    store.stamp(now)
    store.updated = now
    response: dict[str, Any] = {"@type": "type.googleapis.com/google.protobuf.Empty"}
    operation = _operation(call, response)
    _audit(call, scoping, name, request, operation, response)
    return operation


MONITORED_PROJECT = {"name": None, "createTime": None, "isTombstoned": None}
METHODS: list[JsonMethod] = [
    json_method(PROTO, "GetMetricsScope", get_metrics_scope, API, {"name": None}),
    json_method(
        PROTO, "ListMetricsScopesByMonitoredProject", list_metrics_scopes, API, {"monitoredResourceContainer": None}
    ),
    json_method(
        PROTO,
        "CreateMonitoredProject",
        create_monitored_project,
        API,
        {"parent": None, "monitoredProject": MONITORED_PROJECT},
    ),
    json_method(PROTO, "DeleteMonitoredProject", delete_monitored_project, API, {"name": None}),
]

# The google.api.http rules of google/monitoring/metricsscope/v1/metrics_scopes.proto (the same paths gcloud 528's
# generated monitoring v1 client calls).
RULES: list[HttpRule] = [
    HttpRule("GET", "/v1/{name=locations/global/metricsScopes/*}", f"{PROTO}.GetMetricsScope"),
    HttpRule(
        "GET",
        "/v1/locations/global/metricsScopes:listMetricsScopesByMonitoredProject",
        f"{PROTO}.ListMetricsScopesByMonitoredProject",
    ),
    HttpRule(
        "POST",
        "/v1/{parent=locations/global/metricsScopes/*}/projects",
        f"{PROTO}.CreateMonitoredProject",
        "monitored_project",
    ),
    HttpRule("DELETE", "/v1/{name=locations/global/metricsScopes/*/projects/*}", f"{PROTO}.DeleteMonitoredProject"),
]

SERVICE = Service(
    apis=(Api(API, "Cloud Monitoring API", gcloud="MONITORING"),),
    methods=(*METHODS,),
    rules=(*RULES,),
)
