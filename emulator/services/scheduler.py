"""Cloud Scheduler v1 (cloudscheduler.googleapis.com) jobs: create, get, list, patch, delete, run, pause, resume.

A job is validated as Cloud Scheduler documents it (docs/google-behaviour.md): a unix-cron schedule and an IANA time
zone, exactly one target, an http(s) URI, a body only with POST/PUT/PATCH, OIDC and OAuth tokens mutually exclusive,
the token's service account in the job's project (and the caller may act as it: iam.serviceAccounts.actAs), a retry
count of 0-5, an attempt deadline of 15 s-30 min for HTTP targets. The answer carries what Google adds: state,
userUpdateTime, the next scheduleTime, the default retryConfig and attemptDeadline, and the
`User-Agent: Google-Cloud-Scheduler` header.

Firing (`tick`, on the emulator's clock; docs/google-behaviour.md, "Cloud Scheduler attempts"): an ENABLED job is
attempted at each time its schedule names, in its time zone. An HTTP target gets the job's method, URI, headers and
body plus what Cloud Scheduler adds (X-CloudScheduler, X-CloudScheduler-JobName, X-CloudScheduler-ScheduleTime, a
Content-Type for a body, the OIDC or OAuth bearer token), with the attempt deadline as its timeout; 2xx is success.
A Pub/Sub target publishes its data and attributes to its topic. A failed attempt is retried per retryConfig with
Cloud Scheduler's documented backoff; the job records lastAttemptTime, status and the next scheduleTime, and each
attempt writes AttemptStarted / AttemptFinished entries to the cloudscheduler.googleapis.com/executions log.
Never two attempts of one job at once; a paused job does not fire; RunJob queues an attempt for now.

Assumption: English-like schedules ("every 5 minutes") are refused; only unix-cron is accepted here.
Assumption: validation texts other than "Schedule or time zone is invalid." and "Job not found." are this
emulator's own; denials use the text Google's newer APIs (Cloud Tasks, Scheduler) give: "The principal (user or
service account) lacks IAM permission "P" for the resource "R" (or the resource may not exist)."

Assumption: after the clock jumps, every run that came due is attempted in order, each stamped with its own due time
(as if the emulator had been running all along); at most 500 attempts are made per ticker round, the rest the next.
Assumption: a RunJob attempt is one attempt (no retries) and leaves the schedule as it was; a paused job can be run.
Assumption: when retries run past scheduled times, those runs are skipped; the next run is the first one after the
last attempt.
Assumption: the Pub/Sub target publishes as the Cloud Scheduler service agent, whose role grants
pubsub.topics.publish; the emulator does not check that grant. The message carries no attributes of Scheduler's own.
Assumption: daylight saving time, which Google documents only as "may cause anomalies": a wall time a spring-forward
skips runs at the same instant the old offset gives it (an hour later on the new wall clock); a wall time that occurs
twice runs once, at its first occurrence.
Assumption: AttemptFinished's debugInfo for an unreachable URL or a timeout, and the status codes for them
(UNAVAILABLE, DEADLINE_EXCEEDED), are this emulator's; the texts for answered requests follow published entries.
"""

from __future__ import annotations

import base64
import binascii
import copy
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from google.rpc import code_pb2

from emulator.core.clock import parse_rfc3339, rfc3339
from emulator.core.handlers import Api, Call, Doc, Fields, HttpRule, JsonMethod, Service, json_method
from emulator.core.network import Outbound, Unreachable
from emulator.core.status import RpcError, invalid_argument, not_found
from emulator.core.world import Project, World
from emulator.services import iamadmin, pubsub
from emulator.services.kit import (
    admit,
    apply_mask,
    audited,
    duration_seconds,
    integer,
    listed,
    mask_paths,
    message,
    now,
    text,
)

API = "cloudscheduler.googleapis.com"
PROTO = "google.cloud.scheduler.v1.CloudScheduler"
_PARENT = re.compile(r"^projects/([^/]+)/locations/([^/]+)\Z")
_NAME = re.compile(r"^projects/([^/]+)/locations/([^/]+)/jobs/([^/]+)\Z")
_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,500}\Z")
METHODS_WITH_BODY = ("POST", "PUT", "PATCH")
HTTP_METHODS = ("POST", "GET", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS")
DEFAULT_RETRY = {"maxRetryDuration": "0s", "minBackoffDuration": "5s", "maxBackoffDuration": "3600s", "maxDoublings": 5}
MAX_HEADER_BYTES = 80 * 1024

_TOKEN: Fields = {"serviceAccountEmail": None, "audience": None, "scope": None}
JOB: Fields = {
    "name": None,
    "description": None,
    "pubsubTarget": {"topicName": None, "data": None, "attributes": None},
    "appEngineHttpTarget": {
        "httpMethod": None,
        "appEngineRouting": {"service": None, "version": None, "instance": None, "host": None},
        "relativeUri": None,
        "headers": None,
        "body": None,
    },
    "httpTarget": {
        "uri": None,
        "httpMethod": None,
        "headers": None,
        "body": None,
        "oauthToken": _TOKEN,
        "oidcToken": _TOKEN,
    },
    "schedule": None,
    "timeZone": None,
    "userUpdateTime": None,
    "state": None,
    "status": None,
    "scheduleTime": None,
    "lastAttemptTime": None,
    "retryConfig": {
        "retryCount": None,
        "maxRetryDuration": None,
        "minBackoffDuration": None,
        "maxBackoffDuration": None,
        "maxDoublings": None,
    },
    "attemptDeadline": None,
}
OUTPUT_ONLY = ("state", "status", "scheduleTime", "lastAttemptTime", "userUpdateTime")


@dataclass
class Execution:
    """Where one job stands on the clock, beside its document: the scheduled time of the execution under way, how
    many attempts it has had, when its first attempt was, whether an attempt is out now, and queued forced runs."""

    schedule_time: datetime | None = None
    attempts: int = 0
    first_attempt: datetime | None = None
    busy: bool = False
    forced: list[datetime] = field(default_factory=list)


@dataclass
class SchedulerStore:
    """Cloud Scheduler jobs in one project, by resource name, and where each stands on the clock."""

    scheduler_jobs: dict[Any, Any] = field(default_factory=dict)
    executions: dict[str, Execution] = field(default_factory=dict)


def denied(permission: str, resource: str) -> RpcError:
    return RpcError(
        code_pb2.PERMISSION_DENIED,
        f'The principal (user or service account) lacks IAM permission "{permission}" for the resource '
        f'"{resource}" (or the resource may not exist).',
    )


def _project(call: Call, ref: str, permission: str, resource: str) -> Project:
    return admit(call, ref, API, permission, lambda: denied(permission, resource))


def _job(call: Call, name: str, permission: str) -> tuple[Project, Doc]:
    match = _NAME.match(name)
    if match is None:
        raise invalid_argument(f"Invalid resource field value in the request: name {name!r}.")
    project = _project(call, match.group(1), permission, name)
    job = project.store(SchedulerStore).scheduler_jobs.get(_key(project, match.group(2), match.group(3)))
    if job is None:
        raise not_found("Job not found.")
    return project, job


def _audit(call: Call, project: Project, name: str, permission: str, request: Doc, response: Doc | None) -> None:
    """A job change's Admin Activity entry, on Cloud Scheduler's cloud_scheduler_job monitored resource (job_id,
    location, project_id); the methodName is the v1 gRPC name (Cloud Scheduler audit logging, ADMIN_WRITE)."""
    _, project_id, _, location, _, job_id = name.split("/")
    verb = call.method.name
    audited(
        call,
        project,
        resource=name,
        permission=permission,
        resource_type={
            "type": "cloud_scheduler_job",
            "labels": {"job_id": job_id, "location": location, "project_id": project_id},
        },
        request={"@type": f"type.googleapis.com/google.cloud.scheduler.v1.{verb}Request", **copy.deepcopy(request)},
        response={"@type": "type.googleapis.com/google.cloud.scheduler.v1.Job", **copy.deepcopy(response)}
        if response
        else None,
    )


def _key(project: Project, location: str, job_id: str) -> str:
    return f"projects/{project.project_id}/locations/{location}/jobs/{job_id}"


# Unix cron -----------------------------------------------------------------------------------------------------

_NAMES = {
    3: {
        m: i + 1
        for i, m in enumerate(("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"))
    },
    4: {d: i for i, d in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))},
}
_RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]


def _field(text_: str, index: int) -> set[int]:
    low, high = _RANGES[index]
    values: set[int] = set()
    for part in text_.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else None
        if step_text and step is None:
            raise ValueError(part)
        if base == "*":
            start, end = low, high
        else:
            first, _, last = base.partition("-")
            start = _value(first, index)
            end = _value(last, index) if last else (high if step else start)
        if not low <= start <= end <= high:
            raise ValueError(part)
        values.update(range(start, end + 1, step or 1))
    if index == 4 and 7 in values:  # 7 is Sunday too
        values = (values - {7}) | {0}
    return values


def _value(token: str, index: int) -> int:
    named = _NAMES.get(index, {}).get(token.upper())
    if named is not None:
        return named
    if not token.isdigit():
        raise ValueError(token)
    return int(token)


def parse_cron(schedule: str) -> list[set[int]]:
    parts = schedule.split()
    if len(parts) != 5:
        raise ValueError(schedule)
    return [_field(p, i) for i, p in enumerate(parts)]


def next_run(schedule: str, zone: str, after: datetime) -> datetime:
    """The first minute after `after` the schedule names, in `zone` (day-of-month and day-of-week OR'd, as cron)."""
    minutes, hours, days, months, weekdays = parse_cron(schedule)
    dom_any, dow_any = len(days) == 31, len(weekdays) == 7
    local = after.astimezone(ZoneInfo(zone)).replace(second=0, microsecond=0) + timedelta(minutes=1)
    day = local.replace(hour=0, minute=0)
    for _ in range(366 * 5):
        dom_ok, dow_ok = day.day in days, (day.isoweekday() % 7) in weekdays
        day_ok = dom_ok and dow_ok if dom_any or dow_any else dom_ok or dow_ok
        if day.month in months and day_ok:
            for hour in sorted(hours):
                for minute in sorted(minutes):
                    candidate = day.replace(hour=hour, minute=minute)
                    if candidate >= local:
                        return candidate
        day = (day + timedelta(days=1)).replace(hour=0, minute=0)
    raise ValueError(schedule)


# Validation ----------------------------------------------------------------------------------------------------


def _check_schedule(job: Doc, after: datetime) -> None:
    zone = text(job, "timeZone") or "Etc/UTC"
    try:
        ZoneInfo(zone)
        next_run(text(job, "schedule"), zone, after)
    except (ValueError, ZoneInfoNotFoundError, KeyError):
        raise invalid_argument("Schedule or time zone is invalid.") from None


def _check_http(call: Call, project: Project, target: Doc) -> None:
    uri = text(target, "uri")
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise invalid_argument(f"HttpTarget.uri must be an absolute http or https URL, got {uri!r}.")
    method = text(target, "httpMethod") or "POST"
    if method not in HTTP_METHODS:
        raise invalid_argument(f"HttpTarget.http_method: {method!r} is not one of {', '.join(HTTP_METHODS)}.")
    body = target.get("body")
    if body:
        if method not in METHODS_WITH_BODY:
            raise invalid_argument("HttpTarget.body is allowed only with the POST, PUT and PATCH methods.")
        try:
            base64.b64decode(str(body), validate=True)
        except binascii.Error:
            raise invalid_argument(f"Invalid value at 'job.http_target.body' (TYPE_BYTES), \"{body}\"") from None
    headers = target.get("headers") or {}
    if sum(len(k) + len(str(v)) for k, v in headers.items()) > MAX_HEADER_BYTES:
        raise invalid_argument("HttpTarget.headers: the headers must total less than 80 KB.")
    if "oidcToken" in target and "oauthToken" in target:
        raise invalid_argument("HttpTarget: only one of oidc_token and oauth_token may be set.")
    token = message(target, "oidcToken") or message(target, "oauthToken")
    if token:
        _check_token_account(call, project, text(token, "serviceAccountEmail"))


def _check_token_account(call: Call, project: Project, email: str) -> None:
    found = iamadmin.find_account(call.world, email)
    if found is None or found[0] is not project:
        raise invalid_argument(
            f"The service account {email!r} used for the token must exist in the job's project {project.project_id}."
        )
    if not iamadmin.can_act_as(call, email):
        raise denied("iam.serviceAccounts.actAs", email)


def _check_retry(job: Doc) -> None:
    retry = message(job, "retryConfig")
    count = integer(retry, "retryCount")
    if not 0 <= count <= 5:
        raise invalid_argument(f"RetryConfig.retry_count must be between 0 and 5, got {count}.")
    for key in ("maxRetryDuration", "minBackoffDuration", "maxBackoffDuration"):
        if key in retry and duration_seconds(retry[key], f"job.retry_config.{key}") < 0:
            raise invalid_argument(f"RetryConfig.{key} must not be negative.")
    low = duration_seconds(retry.get("minBackoffDuration", "5s"), "job.retry_config.min_backoff_duration")
    high = duration_seconds(retry.get("maxBackoffDuration", "3600s"), "job.retry_config.max_backoff_duration")
    if low > high:
        raise invalid_argument("RetryConfig.min_backoff_duration must not exceed max_backoff_duration.")
    doublings = integer(retry, "maxDoublings", 5)
    if doublings < 0:
        raise invalid_argument(f"RetryConfig.max_doublings must not be negative, got {doublings}.")


def validate(call: Call, project: Project, job: Doc) -> None:
    targets = [k for k in ("httpTarget", "pubsubTarget", "appEngineHttpTarget") if job.get(k)]
    if len(targets) != 1:
        raise invalid_argument(
            "A job must have exactly one target: http_target, pubsub_target or app_engine_http_target."
        )
    _check_schedule(job, call.world.clock.now())
    if targets[0] == "httpTarget":
        _check_http(call, project, message(job, "httpTarget"))
    elif targets[0] == "pubsubTarget":
        topic = text(message(job, "pubsubTarget"), "topicName")
        if not re.fullmatch(r"projects/[^/]+/topics/[^/]+", topic):
            raise invalid_argument(f"PubsubTarget.topic_name must be projects/PROJECT/topics/TOPIC, got {topic!r}.")
    _check_retry(job)
    if "attemptDeadline" in job:
        seconds = duration_seconds(job["attemptDeadline"], "job.attempt_deadline")
        if targets[0] == "httpTarget" and not 15 <= seconds <= 1800:
            raise invalid_argument("The attempt deadline of an HTTP target must be between 15s and 30m (1800s).")


def normalized(call: Call, job: Doc) -> Doc:
    """The job as the API answers: defaults filled in, output-only fields set."""
    out = copy.deepcopy(job)
    out.setdefault("timeZone", "Etc/UTC")
    out.setdefault("attemptDeadline", "180s")
    out["retryConfig"] = {**DEFAULT_RETRY, **message(out, "retryConfig")}
    if out["retryConfig"].get("retryCount") == 0:
        del out["retryConfig"]["retryCount"]  # proto3 JSON leaves a zero out
    http = out.get("httpTarget")
    if isinstance(http, dict):
        http.setdefault("httpMethod", "POST")
        headers = {
            k: v
            for k, v in (http.get("headers") or {}).items()
            if not k.lower().startswith(("x-google-", "x-appengine-"))
        }
        http["headers"] = {**headers, "User-Agent": "Google-Cloud-Scheduler"}
    out.setdefault("state", "ENABLED")
    out["userUpdateTime"] = now(call)
    if out["state"] == "ENABLED":
        out["scheduleTime"] = rfc3339(next_run(out["schedule"], out["timeZone"], call.world.clock.now()))
    return out


# Handlers ------------------------------------------------------------------------------------------------------


def create_job(call: Call, request: Doc) -> Doc:
    parent = text(request, "parent")
    match = _PARENT.match(parent)
    if match is None:
        raise invalid_argument(f"Invalid resource field value in the request: parent {parent!r}.")
    project = _project(call, match.group(1), "cloudscheduler.jobs.create", parent)
    job = {k: v for k, v in message(request, "job").items() if k not in OUTPUT_ONLY}
    name = text(job, "name")
    found = _NAME.match(name)
    if found is None or f"projects/{found.group(1)}/locations/{found.group(2)}" != parent:
        raise invalid_argument(f"Job name {name!r} must be {parent}/jobs/JOB_ID.")
    if not _JOB_ID.match(found.group(3)):
        raise invalid_argument(f"Job id {found.group(3)!r} may contain only letters, digits, hyphens and underscores.")
    key = _key(project, match.group(2), found.group(3))
    if key in project.store(SchedulerStore).scheduler_jobs:
        raise RpcError(code_pb2.ALREADY_EXISTS, f"Job {key} already exists.")
    validate(call, project, job)
    stored = normalized(call, {**job, "name": key})
    project.store(SchedulerStore).scheduler_jobs[key] = stored
    project.store(SchedulerStore).executions[key] = Execution()
    _audit(call, project, key, "cloudscheduler.jobs.create", request, stored)
    return copy.deepcopy(stored)


def get_job(call: Call, request: Doc) -> Doc:
    return copy.deepcopy(_job(call, text(request, "name"), "cloudscheduler.jobs.get")[1])


def list_jobs(call: Call, request: Doc) -> Doc:
    parent = text(request, "parent")
    match = _PARENT.match(parent)
    if match is None:
        raise invalid_argument(f"Invalid resource field value in the request: parent {parent!r}.")
    project = _project(call, match.group(1), "cloudscheduler.jobs.list", parent)
    prefix = f"projects/{project.project_id}/locations/{match.group(2)}/jobs/"
    jobs = [
        copy.deepcopy(j)
        for k, j in sorted(project.store(SchedulerStore).scheduler_jobs.items())
        if k.startswith(prefix)
    ]
    return listed("jobs", jobs, request, 500, 500)


def _merge(current: Doc, given: Doc, paths: list[str]) -> Doc:
    """UpdateJob: the mask's fields (all given ones without a mask); a new target kind replaces the old one."""
    paths = paths or [k for k in given if k not in OUTPUT_ONLY and k != "name"]
    for path in paths:
        if path.split(".")[0] not in JOB:
            raise invalid_argument(f"Invalid update_mask path: {path}.")
    out = apply_mask(current, given, paths)
    kinds = ("httpTarget", "pubsubTarget", "appEngineHttpTarget")
    for kind in kinds:
        if given.get(kind):
            for other in kinds:
                if other != kind:
                    out.pop(other, None)
    return out


def update_job(call: Call, request: Doc) -> Doc:
    given = message(request, "job")
    project, job = _job(call, text(given, "name"), "cloudscheduler.jobs.update")
    merged = _merge(job, given, mask_paths(request))
    if isinstance(merged.get("httpTarget"), dict):
        merged["httpTarget"]["headers"] = {
            k: v for k, v in (merged["httpTarget"].get("headers") or {}).items() if k != "User-Agent"
        }
    validate(call, project, merged)
    stored = normalized(call, {k: v for k, v in merged.items() if k not in ("scheduleTime", "userUpdateTime")})
    project.store(SchedulerStore).scheduler_jobs[job["name"]] = stored
    _restart(project, job["name"])
    _audit(call, project, job["name"], "cloudscheduler.jobs.update", request, stored)
    return copy.deepcopy(stored)


def delete_job(call: Call, request: Doc) -> Doc:
    project, job = _job(call, text(request, "name"), "cloudscheduler.jobs.delete")
    del project.store(SchedulerStore).scheduler_jobs[job["name"]]
    project.store(SchedulerStore).executions.pop(job["name"], None)
    _audit(call, project, job["name"], "cloudscheduler.jobs.delete", request, None)
    return {}


def run_job(call: Call, request: Doc) -> Doc:
    """Queue an attempt for now; the ticker makes it (outside the lock), after any attempt already out."""
    project, job = _job(call, text(request, "name"), "cloudscheduler.jobs.run")
    _execution(project, job["name"]).forced.append(call.world.clock.now())
    _audit(call, project, job["name"], "cloudscheduler.jobs.run", request, job)
    return copy.deepcopy(job)


def _set_state(call: Call, request: Doc, permission: str, state: str) -> Doc:
    project, job = _job(call, text(request, "name"), permission)
    job["state"] = state
    job["userUpdateTime"] = now(call)
    _restart(project, job["name"])  # runs missed while paused are not made up, and a pause ends retries
    if state == "ENABLED":
        job["scheduleTime"] = rfc3339(next_run(job["schedule"], job["timeZone"], call.world.clock.now()))
    _audit(call, project, job["name"], permission, request, job)
    return copy.deepcopy(job)


def pause_job(call: Call, request: Doc) -> Doc:
    return _set_state(call, request, "cloudscheduler.jobs.pause", "PAUSED")


def resume_job(call: Call, request: Doc) -> Doc:
    return _set_state(call, request, "cloudscheduler.jobs.enable", "ENABLED")


# Firing on the clock ---------------------------------------------------------------------------------------------

MAX_ATTEMPTS_PER_ROUND = 500  # attempts one ticker round makes before leaving the rest to the next
USER_AGENT = "Google-Cloud-Scheduler"  # HttpTarget.headers: Cloud Scheduler's default User-Agent
# google/rpc/code.proto gives each canonical code its HTTP status; an attempt's answer is read back through it
# (500 also stands for UNKNOWN and DATA_LOSS there; published AttemptFinished entries show INTERNAL for a 500).
_CODE_OF_HTTP = {
    400: code_pb2.INVALID_ARGUMENT,
    401: code_pb2.UNAUTHENTICATED,
    403: code_pb2.PERMISSION_DENIED,
    404: code_pb2.NOT_FOUND,
    409: code_pb2.ABORTED,
    429: code_pb2.RESOURCE_EXHAUSTED,
    499: code_pb2.CANCELLED,
    500: code_pb2.INTERNAL,
    501: code_pb2.UNIMPLEMENTED,
    503: code_pb2.UNAVAILABLE,
    504: code_pb2.DEADLINE_EXCEEDED,
}
EXECUTIONS_LOG = "cloudscheduler.googleapis.com%2Fexecutions"  # the log's id, URL-encoded in logName
LOGGING_TYPE = "type.googleapis.com/google.cloud.scheduler.logging."  # + AttemptStarted / AttemptFinished


def code_of_http(status: int) -> int:
    """The google.rpc code an HTTP answer stands for (0 for 2xx); an unlisted 4xx is FAILED_PRECONDITION and an
    unlisted 5xx UNKNOWN."""
    if 200 <= status < 300:
        return code_pb2.OK
    default = code_pb2.FAILED_PRECONDITION if 400 <= status < 500 else code_pb2.UNKNOWN
    return _CODE_OF_HTTP.get(status, default)


def _debug_info(status: int) -> str:
    """AttemptFinished's debugInfo for an answered request, in the categories published entries show."""
    if 200 <= status < 300:
        kind = "URL_CRAWLED"
    elif status == 401:
        kind = "URL_ERROR-ERROR_AUTHENTICATION"
    elif status == 404:
        kind = "URL_ERROR-ERROR_NOT_FOUND"
    elif status >= 500:
        kind = "URL_UNREACHABLE-UNREACHABLE_5xx"
    else:
        kind = "URL_ERROR-ERROR_OTHER"
    return f"{kind}. Original HTTP response code number = {status}"


def backoff(retry: Doc, retries_done: int) -> float:
    """Seconds before retry number `retries_done + 1`: min_backoff doubled max_doublings times, then growing by the
    last doubling's step, capped at max_backoff (RetryConfig.max_doublings: 10s, 20s, 40s, 80s, 160s, 240s, 300s)."""
    low = duration_seconds(retry.get("minBackoffDuration", "5s"), "min_backoff_duration")
    high = duration_seconds(retry.get("maxBackoffDuration", "3600s"), "max_backoff_duration")
    doublings = int(retry.get("maxDoublings", 5))
    if retries_done <= doublings:
        delay = low * 2**retries_done
    else:
        delay = low * 2**doublings * (1 + retries_done - doublings)
    return float(min(delay, high))


@dataclass
class Attempt:
    """One attempt, prepared under the lock and made outside it."""

    project_id: str
    job_name: str
    at: datetime
    schedule_time: datetime
    forced: bool
    target: str  # "HTTP" | "PUB_SUB"
    url: str = ""
    request: Outbound | None = None
    topic: str = ""
    data: bytes = b""
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass
class Outcome:
    code: int
    http_status: int = 0
    debug_info: str = ""
    seconds: float = 0.0  # how long the attempt took (wall time): AttemptFinished is stamped that much later


def _execution(project: Project, name: str) -> Execution:
    return project.store(SchedulerStore).executions.setdefault(name, Execution())


def _restart(project: Project, name: str) -> None:
    """The job's schedule or state changed: the execution under way ends (forced runs stay queued)."""
    current = _execution(project, name)
    project.store(SchedulerStore).executions[name] = Execution(busy=current.busy, forced=current.forced)


def _due(job: Doc, execution: Execution, now_: datetime) -> tuple[datetime, bool] | None:
    """When this job's next attempt is due (and whether it is a forced run), if that is not after `now_`."""
    if execution.busy:
        return None
    if execution.forced and execution.forced[0] <= now_:
        return execution.forced[0], True
    if job.get("state") != "ENABLED" or not job.get("scheduleTime"):
        return None
    due = parse_rfc3339(job["scheduleTime"])
    return (due, False) if due <= now_ else None


def _headers(job: Doc, target: Doc, schedule_time: datetime, body: bytes) -> dict[str, str]:
    """The job's headers plus Cloud Scheduler's own (HttpTarget.headers: X-CloudScheduler "true", the job name, the
    schedule time in RFC 3339 UTC, application/octet-stream for a body without a Content-Type)."""
    headers = {k: str(v) for k, v in (target.get("headers") or {}).items()}
    headers.setdefault("User-Agent", USER_AGENT)
    headers["X-CloudScheduler"] = "true"
    headers["X-CloudScheduler-JobName"] = job["name"].rsplit("/", 1)[-1]
    headers["X-CloudScheduler-ScheduleTime"] = rfc3339(schedule_time)
    if body and not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = "application/octet-stream"
    return headers


def _prepare(world: World, project: Project, job: Doc, at: datetime, forced: bool) -> Attempt:
    execution = _execution(project, job["name"])
    if not forced and execution.attempts == 0:
        execution.schedule_time = at
    schedule_time = at if forced else execution.schedule_time or at
    attempt = Attempt(project.project_id, job["name"], at, schedule_time, forced, "HTTP")
    if job.get("pubsubTarget"):
        target = job["pubsubTarget"]
        attempt.target = "PUB_SUB"
        attempt.topic = str(target.get("topicName", ""))
        attempt.data = base64.b64decode(str(target.get("data", "")))
        attempt.attributes = {str(k): str(v) for k, v in (target.get("attributes") or {}).items()}
        return attempt
    target = job.get("httpTarget") or {}
    body = base64.b64decode(str(target.get("body", ""))) if target.get("body") else b""
    headers = _headers(job, target, schedule_time, body)
    oidc, oauth = target.get("oidcToken"), target.get("oauthToken")
    if oidc:
        audience = oidc.get("audience") or target["uri"]
        headers["Authorization"] = f"Bearer {world.signer.id_token(oidc['serviceAccountEmail'], audience)}"
    elif oauth:
        token, _ = world.mint_token(oauth["serviceAccountEmail"])
        headers["Authorization"] = f"Bearer {token}"
    deadline = duration_seconds(job.get("attemptDeadline", "180s"), "attempt_deadline")
    attempt.url = target["uri"]
    attempt.request = Outbound(target.get("httpMethod", "POST"), target["uri"], headers, body, deadline)
    return attempt


def _resource(project: Project, name: str) -> Doc:
    location, job_id = name.split("/")[3], name.split("/")[5]
    return {
        "type": "cloud_scheduler_job",
        "labels": {"project_id": project.project_id, "job_id": job_id, "location": location},
    }


def _log(
    world: World,
    project: Project,
    attempt: Attempt,
    at: datetime,
    severity: str,
    payload: Doc,
    extra: Doc | None = None,
) -> None:
    entry: Doc = {
        **(extra or {}),
        "insertId": secrets.token_hex(7),
        "logName": f"projects/{project.project_id}/logs/{EXECUTIONS_LOG}",
        "resource": _resource(project, attempt.job_name),
        "timestamp": rfc3339(at),
        "receiveTimestamp": rfc3339(at + world.ingestion_lag),
        "severity": severity,
        "jsonPayload": payload,
    }
    world.append_log(entry, at)


def _target_fields(attempt: Attempt) -> Doc:
    if attempt.target == "PUB_SUB":
        return {"targetType": "PUB_SUB", "topicName": attempt.topic}
    return {"targetType": "HTTP", "url": attempt.url}


def _started(world: World, project: Project, attempt: Attempt) -> None:
    payload = {
        "@type": LOGGING_TYPE + "AttemptStarted",
        "jobName": attempt.job_name,
        "scheduledTime": rfc3339(attempt.schedule_time),
        **_target_fields(attempt),
    }
    _log(world, project, attempt, attempt.at, "INFO", payload)


def _finished(world: World, project: Project, attempt: Attempt, outcome: Outcome) -> None:
    payload: Doc = {"@type": LOGGING_TYPE + "AttemptFinished", "jobName": attempt.job_name, **_target_fields(attempt)}
    if outcome.debug_info:
        payload["debugInfo"] = outcome.debug_info
    if outcome.code != code_pb2.OK:
        payload["status"] = code_pb2.Code.Name(outcome.code)
    at = attempt.at + timedelta(seconds=max(outcome.seconds, 1e-6))
    extra = {"httpRequest": {"status": outcome.http_status}} if outcome.http_status else {}
    _log(world, project, attempt, at, "INFO" if outcome.code == code_pb2.OK else "ERROR", payload, extra)


def deliver(world: World, attempt: Attempt) -> Outcome:
    """Make the attempt (outside the lock): the HTTP request, or the publish."""
    if attempt.request is None:
        try:
            pubsub.publish(world, attempt.topic, attempt.data, attempt.attributes)
        except RpcError as err:
            return Outcome(err.code, debug_info=err.message)
        return Outcome(code_pb2.OK)
    try:
        reply = world.network.send(attempt.request)
    except Unreachable as err:
        if err.reason == "timeout":
            return Outcome(code_pb2.DEADLINE_EXCEEDED, debug_info="URL_TIMEOUT. No answer within the attempt deadline")
        return Outcome(code_pb2.UNAVAILABLE, debug_info=f"URL_UNREACHABLE-UNREACHABLE_NO_RESPONSE. {err}")
    return Outcome(code_of_http(reply.status), reply.status, _debug_info(reply.status))


def _next_attempt(world: World, now_: datetime) -> Attempt | None:
    """The earliest due attempt across every project's jobs, marked as out (under the lock)."""
    best: tuple[datetime, bool, Project, Doc] | None = None
    for project in world.projects.values():
        store = project.store(SchedulerStore)
        for name, job in store.scheduler_jobs.items():
            due = _due(job, _execution(project, name), now_)
            if due is not None and (best is None or due[0] < best[0]):
                best = (due[0], due[1], project, job)
    if best is None:
        return None
    at, forced, project, job = best
    execution = _execution(project, job["name"])
    if forced:
        execution.forced.pop(0)
    attempt = _prepare(world, project, job, at, forced)
    execution.busy = True
    job["lastAttemptTime"] = rfc3339(at)
    _started(world, project, attempt)
    return attempt


def _record(world: World, attempt: Attempt, outcome: Outcome) -> None:
    """The attempt's outcome on the job (under the lock): status, the log entry, the next attempt's time."""
    project = world.project(attempt.project_id)
    job = project.store(SchedulerStore).scheduler_jobs.get(attempt.job_name) if project else None
    if project is None or job is None:
        return  # deleted while the attempt was out
    execution = _execution(project, attempt.job_name)
    execution.busy = False
    job["status"] = {} if outcome.code == code_pb2.OK else {"code": outcome.code}
    _finished(world, project, attempt, outcome)
    if attempt.forced:
        return
    retry = message(job, "retryConfig")
    execution.first_attempt = execution.first_attempt or attempt.at
    execution.attempts += 1
    if outcome.code != code_pb2.OK and _may_retry(retry, execution, attempt.at):
        job["scheduleTime"] = rfc3339(attempt.at + timedelta(seconds=backoff(retry, execution.attempts - 1)))
        return
    project.store(SchedulerStore).executions[attempt.job_name] = Execution(forced=execution.forced)
    if job.get("state") == "ENABLED":
        job["scheduleTime"] = rfc3339(next_run(job["schedule"], job.get("timeZone", "Etc/UTC"), attempt.at))


def _may_retry(retry: Doc, execution: Execution, at: datetime) -> bool:
    """RetryConfig: retry_count retries, and, when max_retry_duration is set, until that long after the first
    attempt too (both limits must be reached); neither set means no retry."""
    count = int(retry.get("retryCount", 0))
    limit = duration_seconds(retry.get("maxRetryDuration", "0s"), "max_retry_duration")
    retries_done = execution.attempts - 1
    first = execution.first_attempt or at
    within_count = retries_done < count
    within_time = limit > 0 and (at - first).total_seconds() < limit
    return within_count or within_time


def tick(world: World, now_: datetime) -> None:
    """Make every attempt that has come due by `now_`, earliest first, each outside the lock."""
    for _ in range(MAX_ATTEMPTS_PER_ROUND):
        with world.lock:
            attempt = _next_attempt(world, now_)
        if attempt is None:
            return
        started = time.monotonic()
        try:
            outcome = deliver(world, attempt)
        except Exception as err:  # noqa: BLE001 - a broken attempt must not leave the job marked busy forever
            outcome = Outcome(code_pb2.INTERNAL, debug_info=f"emulator: {type(err).__name__}")
        outcome.seconds = time.monotonic() - started
        with world.lock:
            _record(world, attempt, outcome)


_JOB_NAME = "projects/*/locations/*/jobs/*"
_NAME_ONLY: Fields = {"name": None}
METHODS: list[JsonMethod] = [
    json_method(PROTO, "CreateJob", create_job, API, {"parent": None, "job": JOB}),
    json_method(PROTO, "GetJob", get_job, API, _NAME_ONLY),
    json_method(
        PROTO, "ListJobs", list_jobs, API, {"parent": None, "pageSize": None, "pageToken": None, "filter": None}
    ),
    json_method(PROTO, "UpdateJob", update_job, API, {"job": JOB, "updateMask": None}),
    json_method(PROTO, "DeleteJob", delete_job, API, _NAME_ONLY),
    json_method(PROTO, "RunJob", run_job, API, _NAME_ONLY),
    json_method(PROTO, "PauseJob", pause_job, API, _NAME_ONLY),
    json_method(PROTO, "ResumeJob", resume_job, API, _NAME_ONLY),
]

RULES: list[HttpRule] = [
    HttpRule("POST", "/v1/{parent=projects/*/locations/*}/jobs", f"{PROTO}.CreateJob", "job"),
    HttpRule("GET", "/v1/{parent=projects/*/locations/*}/jobs", f"{PROTO}.ListJobs"),
    HttpRule("GET", f"/v1/{{name={_JOB_NAME}}}", f"{PROTO}.GetJob"),
    HttpRule("PATCH", f"/v1/{{job.name={_JOB_NAME}}}", f"{PROTO}.UpdateJob", "job"),
    HttpRule("DELETE", f"/v1/{{name={_JOB_NAME}}}", f"{PROTO}.DeleteJob"),
    HttpRule("POST", f"/v1/{{name={_JOB_NAME}}}:run", f"{PROTO}.RunJob", "*"),
    HttpRule("POST", f"/v1/{{name={_JOB_NAME}}}:pause", f"{PROTO}.PauseJob", "*"),
    HttpRule("POST", f"/v1/{{name={_JOB_NAME}}}:resume", f"{PROTO}.ResumeJob", "*"),
]


SERVICE = Service(
    apis=(Api(API, "Cloud Scheduler API", gcloud="CLOUDSCHEDULER"),),
    methods=(*METHODS,),
    rules=(*RULES,),
    tick=tick,
)
