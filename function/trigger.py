"""Turns an HTTP request or a Pub/Sub CloudEvent into a validated run request, or a clear 4xx.

Nothing from a request reaches a Logging filter, a command line or a resource name: a request may only pick a subset
of the *configured* targets, by exact name, and every other input is checked against a closed set.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .config import Config, Target
from .run import Trigger

MAX_BODY = 4096
QUERY_PARAMETERS = ("debug", "format", "targets")
BODY_FIELDS = ("targets",)
# \Z, not $: "$" also matches before a trailing newline
_JOB = re.compile(r"^[A-Za-z0-9_./-]{1,500}\Z")
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})\Z")
_TRACE = re.compile(r"^([0-9a-f]{32})(?:/(\d{1,20}))?(?:;o=[01])?\Z")
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no", "")


class BadRequest(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@dataclass(frozen=True)
class RunRequest:
    trigger: Trigger
    targets: list[Target]
    debug: bool = False
    text: bool = False


def _show(value: str, limit: int = 80) -> str:
    """A value echoed in an error message: repr (escaped), truncated."""
    return repr(value[:limit] + ("…" if len(value) > limit else ""))


def pick_targets(config: Config, names: list[Any], where: str) -> list[Target]:
    configured = {str(t): t for t in config.targets}
    chosen: list[Target] = []
    for name in names:
        if not isinstance(name, str) or name.strip() not in configured:
            raise BadRequest(
                400, f"{where}: unknown target {_show(str(name))}; configured targets: {', '.join(configured)}"
            )
        target = configured[name.strip()]
        if target not in chosen:
            chosen.append(target)
    if not chosen:
        raise BadRequest(400, f"{where}: no targets given; configured targets: {', '.join(configured)}")
    return chosen


def _flag(args: Mapping[str, list[str]], name: str) -> bool:
    value = args.get(name, [""])[0].strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise BadRequest(400, f"query parameter {name}: {_show(value)} is not true or false")


def _trace(header: str | None) -> tuple[str | None, str | None]:
    """X-Cloud-Trace-Context: TRACE_ID/SPAN_ID;o=1 — best effort: a malformed value is simply not used."""
    match = _TRACE.match((header or "").strip())
    return (match.group(1), match.group(2)) if match else (None, None)


def from_http(
    config: Config,
    method: str,
    args: Mapping[str, list[str]],
    headers: Mapping[str, str],
    body: bytes,
    declared_length: int = 0,
) -> RunRequest:
    """Validate everything about an HTTP trigger. Raises BadRequest (4xx) naming what was wrong."""
    if method not in ("GET", "POST"):
        raise BadRequest(405, f"method {method} not allowed; use GET or POST", {"Allow": "GET, POST"})
    unknown = sorted(set(args) - set(QUERY_PARAMETERS))
    if unknown:
        raise BadRequest(400, f"unknown query parameter {_show(unknown[0])}; allowed: {', '.join(QUERY_PARAMETERS)}")
    repeated = sorted(k for k, v in args.items() if len(v) > 1)
    if repeated:
        raise BadRequest(400, f"query parameter {repeated[0]} given more than once")
    fmt = args.get("format", ["json"])[0].strip().lower() or "json"
    if fmt not in ("json", "text"):
        raise BadRequest(400, f"query parameter format: {_show(fmt)}; allowed: json, text")
    debug = _flag(args, "debug")
    size = max(len(body), declared_length)
    if size > MAX_BODY:
        raise BadRequest(413, f"request body of {size} bytes; at most {MAX_BODY} bytes")
    names: list[Any] | None = None
    if "targets" in args:
        names = list(args["targets"][0].split(","))
    doc = _body(method, headers, body)
    if "targets" in doc:
        if names is not None:
            raise BadRequest(400, "targets given both in the query and in the body; give them once")
        if not isinstance(doc["targets"], list):
            raise BadRequest(400, "body field targets: expected a list of MODEL@LOCATION strings")
        names = doc["targets"]
    targets = pick_targets(config, names, "targets") if names is not None else list(config.targets)
    return RunRequest(_http_trigger(headers), targets, debug=debug, text=fmt == "text")


def _body(method: str, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    if method != "POST":
        raise BadRequest(400, "a GET request takes no body; use query parameters")
    content_type = headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if content_type not in ("application/json", "application/octet-stream", ""):
        raise BadRequest(415, f"content type {_show(content_type)}; send application/json")
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(400, f"the body is not valid JSON: {getattr(exc, 'msg', exc)}") from None
    if not isinstance(doc, dict):
        raise BadRequest(400, 'the body must be a JSON object, e.g. {"targets": ["gemini-2.5-flash@global"]}')
    unknown = sorted(set(doc) - set(BODY_FIELDS))
    if unknown:
        raise BadRequest(400, f"unknown body field {_show(unknown[0])}; allowed: {', '.join(BODY_FIELDS)}")
    return doc


def _http_trigger(headers: Mapping[str, str]) -> Trigger:
    trace, span = _trace(headers.get("x-cloud-trace-context"))
    if headers.get("x-cloudscheduler", "").lower() != "true":
        return Trigger("http", trace=trace, span=span)
    job = headers.get("x-cloudscheduler-jobname", "")
    schedule = headers.get("x-cloudscheduler-scheduletime", "")
    if job and not _JOB.match(job):
        raise BadRequest(400, f"header X-CloudScheduler-JobName: {_show(job)} is not a job name")
    if schedule and not _RFC3339.match(schedule):
        raise BadRequest(400, f"header X-CloudScheduler-ScheduleTime: {_show(schedule)} is not an RFC 3339 time")
    return Trigger("scheduler", job=job or None, schedule_time=schedule or None, trace=trace, span=span)


def from_pubsub(config: Config, event_data: Any, message_id: str | None) -> RunRequest:
    """A Pub/Sub push (Scheduler → topic → function): the message data may carry {"targets": [...]}."""
    message = event_data.get("message", {}) if isinstance(event_data, dict) else {}
    if not isinstance(message, dict):  # e.g. {"message": "x"}: no message, as with no event data at all
        message = {}
    raw = message.get("data") or ""
    doc: dict[str, Any] = {}
    if raw:
        try:
            decoded = base64.b64decode(raw, validate=True)
        except (ValueError, TypeError):
            raise BadRequest(400, "message data is not base64") from None
        if len(decoded) > MAX_BODY:
            raise BadRequest(413, f"message data of {len(decoded)} bytes; at most {MAX_BODY} bytes")
        if decoded.strip():
            doc = _body("POST", {"content-type": "application/json"}, decoded)
    names = doc.get("targets")
    if names is not None and not isinstance(names, list):
        raise BadRequest(400, "message field targets: expected a list of MODEL@LOCATION strings")
    targets = pick_targets(config, names, "targets") if names is not None else list(config.targets)
    safe_id = message_id if message_id and re.fullmatch(r"[A-Za-z0-9_-]{1,100}", message_id) else None
    return RunRequest(Trigger("pubsub", message_id=safe_id), targets)
