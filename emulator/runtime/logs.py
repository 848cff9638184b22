"""A served revision's output lines as Cloud Run writes them to Cloud Logging (docs/google-behaviour.md, "Served
functions"): one entry a line, in the log run.googleapis.com/stdout or /stderr, on the cloud_run_revision resource
(a job's task: on cloud_run_job, "Cloud Run jobs").

A line that is one JSON object is a structured entry: its special fields become the entry's own (severity,
logging.googleapis.com/labels, /trace, /spanId, /trace_sampled, /insertId, /sourceLocation, /operation, httpRequest,
time) and the rest is jsonPayload, `message` included; any other line is textPayload with severity DEFAULT.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import urllib.parse
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from google.logging.type import log_severity_pb2

from emulator.core.clock import parse_rfc3339, rfc3339

SEVERITIES = frozenset(log_severity_pb2.LogSeverity.keys())  # DEFAULT, DEBUG, INFO, … EMERGENCY
_PREFIX = "logging.googleapis.com/"
# Special fields that move out of jsonPayload into the entry (Cloud Logging's structured-logging reference).
_MOVED = {
    f"{_PREFIX}labels": "labels",
    f"{_PREFIX}trace": "trace",
    f"{_PREFIX}spanId": "spanId",
    f"{_PREFIX}trace_sampled": "traceSampled",
    f"{_PREFIX}insertId": "insertId",
    f"{_PREFIX}sourceLocation": "sourceLocation",
    f"{_PREFIX}operation": "operation",
    "httpRequest": "httpRequest",
}


@dataclass(frozen=True)
class Revision:
    """Where a served revision's entries go."""

    project_id: str
    region: str
    service: str
    revision: str
    instance_id: str


@dataclass(frozen=True)
class Task:
    """Where a job task's entries go: the cloud_run_job resource (project_id, job_name, location), with the
    execution, task index and attempt as entry labels (docs/google-behaviour.md, "Cloud Run jobs")."""

    project_id: str
    region: str
    job: str
    execution: str
    index: int
    attempt: int
    instance_id: str


def _resource(where: Revision | Task) -> tuple[dict[str, Any], dict[str, str]]:
    """The monitored resource and the entry labels of a revision's or a task's output."""
    if isinstance(where, Task):
        resource = {
            "type": "cloud_run_job",
            "labels": {"project_id": where.project_id, "job_name": where.job, "location": where.region},
        }
        labels = {
            "instanceId": where.instance_id,
            "run.googleapis.com/execution_name": where.execution,
            "run.googleapis.com/task_index": str(where.index),
            "run.googleapis.com/task_attempt": str(where.attempt),
        }
        return resource, labels
    resource = {
        "type": "cloud_run_revision",
        "labels": {
            "project_id": where.project_id,
            "location": where.region,
            "service_name": where.service,
            "revision_name": where.revision,
            "configuration_name": where.service,
        },
    }
    return resource, {"instanceId": where.instance_id}


def log_name(project_id: str, stream: str) -> str:
    return f"projects/{project_id}/logs/{urllib.parse.quote('run.googleapis.com/' + stream, safe='')}"


def entry(revision: Revision | Task, stream: str, line: bytes, at: datetime) -> dict[str, Any]:
    text = line.decode("utf-8", errors="replace")
    resource, labels = _resource(revision)
    doc: dict[str, Any] = {
        "logName": log_name(revision.project_id, stream),
        "resource": resource,
        "timestamp": rfc3339(at),
        "receiveTimestamp": rfc3339(at),
        "insertId": secrets.token_hex(8),
        "labels": labels,
        "severity": "DEFAULT",
    }
    structured = _json_object(text)
    if structured is None:
        doc["textPayload"] = text
        return doc
    severity = structured.pop("severity", None)
    if isinstance(severity, str) and severity.upper() in SEVERITIES:
        doc["severity"] = severity.upper()
    for special, target in _MOVED.items():
        if special in structured:
            value = structured.pop(special)
            if target == "labels":
                if isinstance(value, dict):
                    doc["labels"] = {**doc["labels"], **{str(k): str(v) for k, v in value.items()}}
            elif target == "traceSampled":
                doc[target] = bool(value)
            else:
                doc[target] = value
    stamp = structured.pop("time", None) or structured.pop("timestamp", None)
    if isinstance(stamp, str):
        with contextlib.suppress(ValueError):
            doc["timestamp"] = rfc3339(parse_rfc3339(stamp))
    doc["jsonPayload"] = structured
    return doc


def _json_object(text: str) -> dict[str, Any] | None:
    stripped = text.strip()
    if not stripped.startswith("{"):
        return None
    try:
        doc = json.loads(stripped)
    except (ValueError, RecursionError):
        return None
    return doc if isinstance(doc, dict) else None
