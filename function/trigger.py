"""Turns an HTTP request or a Pub/Sub CloudEvent into a validated run request, or a clear 4xx.

Nothing from a request reaches a Logging filter, a command line or a resource name: a request may only pick a subset
of the *configured* targets, by exact name, and every other input is checked against a closed set.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import reprlib
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any, Literal

from .config import Config, Target

MAX_BODY = 4096
# Cloud Scheduler's or a runbook's 4 KiB arrives in milliseconds; a body still arriving after this is refused (408),
# so a slow client cannot hold one of the server's threads (gunicorn waits 5 s for a request's first bytes too).
BODY_SECONDS = 5.0
# A Pub/Sub push envelope: 4 KiB of data in base64 and Pub/Sub's own fields, with room for attributes. Anything
# bigger is not read (functions-framework reads the envelope whole before the entry point runs).
MAX_ENVELOPE = 64 * 1024
QUERY_PARAMETERS = ("debug", "format", "targets")
BODY_FIELDS = ("targets",)
# \Z, not $: "$" also matches before a trailing newline
_JOB = re.compile(r"^[A-Za-z0-9_./-]{1,500}\Z")
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})\Z")
_TRACE = re.compile(r"^([0-9a-f]{32})(?:/(\d{1,20}))?(?:;o=[01])?\Z")
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no", "")


@dataclass(frozen=True)
class Trigger:
    """What started a run, as the run's log line and answer report it (trace and span only join the log entry to the
    request's trace)."""

    kind: Literal["scheduler", "http", "pubsub", "job"]
    job: str | None = None  # Cloud Scheduler's job name, or the Cloud Run job's
    execution: str | None = None  # the Cloud Run job's execution
    schedule_time: str | None = None
    message_id: str | None = None
    trace: str | None = None  # the trace id, when the front end sent one
    span: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None and k not in ("trace", "span")}


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


_BRIEF = reprlib.Repr()
_BRIEF.maxlevel, _BRIEF.maxstring, _BRIEF.maxother = 3, 40, 40


def _brief(value: Any) -> str:
    """A parsed JSON value, however deep or long, as a short repr (str() of a deep list recurses)."""
    return value if isinstance(value, str) else _BRIEF.repr(value)


def pick_targets(config: Config, names: list[Any], where: str) -> list[Target]:
    configured = {str(t): t for t in config.targets}
    chosen: list[Target] = []
    for name in names:
        if not isinstance(name, str) or name.strip() not in configured:
            raise BadRequest(
                400, f"{where}: unknown target {_show(_brief(name))}; configured targets: {', '.join(configured)}"
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
    except (ValueError, RecursionError, MemoryError) as exc:  # whatever the parser raises is the client's mistake
        raise BadRequest(400, f"the body is not valid JSON: {_parse_error(exc)}") from None
    if not isinstance(doc, dict):
        raise BadRequest(400, 'the body must be a JSON object, e.g. {"targets": ["gemini-2.5-flash@global"]}')
    unknown = sorted(set(doc) - set(BODY_FIELDS))
    if unknown:
        raise BadRequest(400, f"unknown body field {_show(unknown[0])}; allowed: {', '.join(BODY_FIELDS)}")
    return doc


def _parse_error(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, MemoryError):
        return "too large to parse"
    return str(getattr(exc, "msg", None) or exc)[:200]


class _Cutoff:
    """Shuts the read side of the client's socket after BODY_SECONDS, so a read blocked on a slow client returns at
    once (recv answers end-of-file): a deadline for the whole body, which a per-recv socket timeout is not."""

    def __init__(self, sock: socket.socket | None, seconds: float) -> None:
        self.fired = False
        self._sock = sock
        self._lock = threading.Lock()
        self._done = False
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def __enter__(self) -> _Cutoff:
        if self._sock is not None:
            self._timer.start()
        return self

    def __exit__(self, *_: object) -> None:
        with self._lock:
            self._done = True
        self._timer.cancel()

    def _fire(self) -> None:
        with self._lock:
            if self._done or self._sock is None:
                return
            self.fired = True
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RD)


def read_body(stream: IO[bytes], declared: int | None, sock: socket.socket | None = None) -> bytes:
    """The request body, at most MAX_BODY + 1 bytes of it (enough to tell it is too long), within BODY_SECONDS.

    `declared` is the Content-Length (None for a chunked body): a declared length over MAX_BODY is not read at all,
    and from_http refuses it (413). `sock` is the client's socket where the server exposes it (gunicorn does):
    without it nothing bounds the time a read may wait.
    """
    if declared is not None and declared > MAX_BODY:
        return b""
    chunks: list[bytes] = []
    size = 0
    with _Cutoff(sock, BODY_SECONDS) as cutoff:
        try:
            while size <= MAX_BODY:
                chunk = stream.read(MAX_BODY + 1 - size)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        except Exception:  # noqa: BLE001 - the server's stream raises its own errors for a body cut off
            if not cutoff.fired:
                raise BadRequest(400, "the request body was cut off before its end") from None
    if cutoff.fired and (declared is None or size < declared):
        raise BadRequest(408, f"the request body did not arrive within {BODY_SECONDS:g} s")
    if declared is not None and size < declared:
        raise BadRequest(400, f"the request body ended after {size} of its {declared} bytes")
    return b"".join(chunks)


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
