"""Cloud Logging v2 LoggingServiceV2: ListLogEntries and WriteLogEntries.

Data Access audit logs (`cloudaudit.googleapis.com%2Fdata_access`) are private logs: a caller without
`logging.privateLogEntries.list` does not see them (they are left out of the answer, no error), as the
`_Default` log view leaves them out for roles/logging.viewer.

Cloud Audit Logs' log names (`cloudaudit.googleapis.com%2Factivity`, `…%2Fpolicy`, `…%2Fdata_access`,
`…%2Fsystem_event`, `…%2Faccess_transparency`, any `cloudaudit.googleapis.com/…`, encoded or not) are written by
Google Cloud only: WriteLogEntries refuses an entry bound for one, whoever the caller (docs/google-behaviour.md,
"Cloud Logging writes").
Assumption (unverified): the refusal is 403 PERMISSION_DENIED "Log entries cannot be written to the log NAME:
cloudaudit.googleapis.com logs are written by Google Cloud only." (prefixed `entries[i]: `) with no details, given
before the IAM check; Google's exact status and text for it were not found.

A request whose entries are not all valid writes none of them, unless it sets `partial_success`: then the valid
ones are written and the error (the first failed entry's) carries WriteLogEntriesPartialErrors keyed by index, as
the WriteLogEntriesRequest.partial_success docs describe.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from google.cloud.audit import audit_log_pb2  # noqa: F401 - registers AuditLog for protoPayload's Any
from google.cloud.logging_v2 import types as lt
from google.iam.v1.logging import audit_data_pb2  # noqa: F401 - registers AuditData for serviceData's Any
from google.protobuf import json_format
from google.rpc import (
    code_pb2,
    error_details_pb2,  # noqa: F401 - registers the google.rpc details in status.details
)

from emulator.core.clock import rfc3339
from emulator.core.handlers import Api, Call, HttpRule, Method, Service
from emulator.core.status import RpcError, invalid_argument
from emulator.core.world import Project
from emulator.services.kit import allowed, iam_denied, page_of, require_enabled
from emulator.services.logging.filter import FilterError, compile_filter

API = "logging.googleapis.com"
PROTO = "google.logging.v2.LoggingServiceV2"
MAX_PAGE = 1000
DEFAULT_PAGE = 50
MAX_FILTER = 20000
PRIVATE_LOGS = ("cloudaudit.googleapis.com%2Fdata_access", "cloudaudit.googleapis.com%2Faccess_transparency")
AUDIT_LOG_SERVICE = "cloudaudit.googleapis.com"  # its logs are Google's to write (docs/google-behaviour.md)


def _projects(call: Call, names: list[str]) -> list[tuple[Project, bool]]:
    """(project, may read private logs) for each resource name; refuses names it can't serve."""
    if not names:
        raise invalid_argument("resource_names: at least one resource name is required.")
    out = []
    for name in names:
        ref = name.removeprefix("projects/")
        if not name.startswith("projects/") or not ref or "/" in ref:
            raise invalid_argument(f"Invalid resource name: {name!r}. Expected projects/[PROJECT_ID].")
        project = call.world.project(ref)
        if project is None or not allowed(call, project, "logging.logEntries.list"):
            raise iam_denied("logging.logEntries.list")
        require_enabled(project, API)
        out.append((project, allowed(call, project, "logging.privateLogEntries.list")))
    return out


def list_log_entries(call: Call, request: lt.ListLogEntriesRequest) -> lt.ListLogEntriesResponse:
    # Assumption: the argument errors (page_size, order_by, filter length, page_token, resource names) are this
    # emulator's wording.
    call.authenticate()
    if request.page_size < 0 or request.page_size > MAX_PAGE:
        raise invalid_argument(f"page_size must be between 0 and {MAX_PAGE}, got {request.page_size}.")
    order = " ".join(request.order_by.lower().split())
    if order not in ("", "timestamp asc", "timestamp desc"):
        raise invalid_argument(
            f'order_by: only "timestamp asc" and "timestamp desc" are supported, got {request.order_by!r}.'
        )
    if len(request.filter) > MAX_FILTER:
        raise invalid_argument(f"filter: longer than {MAX_FILTER} characters.")
    try:
        matches = compile_filter(request.filter)
    except FilterError as err:
        raise invalid_argument(str(err)) from None
    projects = _projects(call, list(request.resource_names))
    names = {f"projects/{p.project_id}/": private for p, private in projects}
    found = []
    for entry in call.world.visible_logs():
        log_name = entry.get("logName", "")
        scope = next((prefix for prefix in names if log_name.startswith(prefix)), None)
        if scope is None:
            continue
        if not names[scope] and log_name.endswith(PRIVATE_LOGS):
            continue
        if matches(entry):
            found.append(entry)
    found.sort(key=lambda e: (e["timestamp"], e.get("insertId", "")), reverse=order == "timestamp desc")
    fingerprint = hashlib.sha256(
        json.dumps([request.filter, order, sorted(request.resource_names)]).encode()
    ).hexdigest()[:16]
    page, more = page_of(
        found,
        request.page_size or DEFAULT_PAGE,
        request.page_token,
        query=fingerprint,
        invalid="page_token: not a page token returned by this API.",
        stale="page_token: the page token does not match the other arguments of the request.",
    )
    doc: dict[str, Any] = {"entries": page}
    if more:
        doc["nextPageToken"] = more
    raw = lt.ListLogEntriesResponse.pb()()
    json_format.ParseDict(doc, raw)
    return lt.ListLogEntriesResponse.wrap(raw)


def _audit_log_refusal(log_name: str) -> RpcError | None:
    """The refusal of a write into a Cloud Audit Logs log (its status and text are assumed, see the module)."""
    log_id = unquote(log_name.split("/logs/", 1)[1])
    if log_id.split("/", 1)[0] != AUDIT_LOG_SERVICE or "/" not in log_id:
        return None
    return RpcError(
        code_pb2.PERMISSION_DENIED,
        f"Log entries cannot be written to the log {log_name}: {AUDIT_LOG_SERVICE} logs are written by Google Cloud "
        "only.",
    )


def _stored_entry(call: Call, raw_request: Any, raw_entry: Any, i: int, now: datetime) -> dict[str, Any]:
    """One request entry as it is stored; raises the RpcError that refuses it."""
    entry = json_format.MessageToDict(raw_entry)
    log_name = entry.get("logName") or raw_request.log_name
    if not log_name.startswith("projects/") or "/logs/" not in log_name:
        raise invalid_argument(
            f"entries[{i}].log_name: expected projects/[PROJECT_ID]/logs/[LOG_ID], got {log_name!r}."
        )
    refusal = _audit_log_refusal(log_name)
    if refusal is not None:
        raise RpcError(refusal.code, f"entries[{i}]: {refusal.message}")
    project = call.world.project(log_name.split("/")[1])
    if project is None or not allowed(call, project, "logging.logEntries.create"):
        raise iam_denied("logging.logEntries.create")
    require_enabled(project, API)
    if "resource" not in entry and not raw_request.HasField("resource"):
        raise invalid_argument(f"entries[{i}].resource: a monitored resource is required.")
    entry.setdefault("resource", json_format.MessageToDict(raw_request.resource))
    entry["logName"] = f"projects/{project.project_id}/logs/{log_name.split('/logs/', 1)[1]}"
    entry["labels"] = {**dict(raw_request.labels), **entry.get("labels", {})}
    if not entry["labels"]:
        del entry["labels"]
    entry.setdefault("timestamp", rfc3339(now))
    entry.setdefault("insertId", secrets.token_hex(8))
    entry["receiveTimestamp"] = rfc3339(now + call.world.ingestion_lag)
    entry.setdefault("severity", "DEFAULT")
    return entry


def write_log_entries(call: Call, request: lt.WriteLogEntriesRequest) -> lt.WriteLogEntriesResponse:
    call.authenticate()
    now = call.world.clock.now()
    raw_request = lt.WriteLogEntriesRequest.pb(request)
    valid: list[dict[str, Any]] = []
    errors: dict[int, RpcError] = {}
    for i, raw_entry in enumerate(raw_request.entries):
        try:
            valid.append(_stored_entry(call, raw_request, raw_entry, i, now))
        except RpcError as refused:
            errors[i] = refused
    if errors and not raw_request.partial_success:
        raise errors[min(errors)]  # nothing written
    for entry in valid:
        call.world.append_log(entry, now)
    if errors:
        first = errors[min(errors)]
        partial = lt.WriteLogEntriesPartialErrors.pb()()
        for i, error in errors.items():
            partial.log_entry_errors[i].CopyFrom(error.to_status())
        raise RpcError(first.code, first.message, [partial])
    return lt.WriteLogEntriesResponse()


def _methods() -> list[Method]:
    return [
        Method(
            PROTO,
            "ListLogEntries",
            lt.ListLogEntriesRequest,
            lt.ListLogEntriesResponse,
            list_log_entries,
            API,
        ),
        Method(
            PROTO,
            "WriteLogEntries",
            lt.WriteLogEntriesRequest,
            lt.WriteLogEntriesResponse,
            write_log_entries,
            API,
        ),
    ]


_LOG = "google.logging.v2.LoggingServiceV2"
# The google.api.http rules of these methods (googleapis protos; the installed GAPIC REST transports carry the
# same templates).
RULES: list[HttpRule] = [
    HttpRule("POST", "/v2/entries:list", f"{_LOG}.ListLogEntries", "*"),
    HttpRule("POST", "/v2/entries:write", f"{_LOG}.WriteLogEntries", "*"),
]


SERVICE = Service(
    apis=(Api(API, "Cloud Logging API", gcloud="LOGGING"),),
    methods=(*_methods(),),
    rules=(*RULES,),
)
