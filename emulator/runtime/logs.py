"""A served revision's output lines as Cloud Run writes them to Cloud Logging (docs/google-behaviour.md, "Served
functions"): one entry a line, in the log run.googleapis.com/stdout or /stderr, on the cloud_run_revision resource.

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


def log_name(project_id: str, stream: str) -> str:
    return f"projects/{project_id}/logs/{urllib.parse.quote('run.googleapis.com/' + stream, safe='')}"


def entry(revision: Revision, stream: str, line: bytes, at: datetime) -> dict[str, Any]:
    text = line.decode("utf-8", errors="replace")
    doc: dict[str, Any] = {
        "logName": log_name(revision.project_id, stream),
        "resource": {
            "type": "cloud_run_revision",
            "labels": {
                "project_id": revision.project_id,
                "location": revision.region,
                "service_name": revision.service,
                "revision_name": revision.revision,
                "configuration_name": revision.service,
            },
        },
        "timestamp": rfc3339(at),
        "receiveTimestamp": rfc3339(at),
        "insertId": secrets.token_hex(8),
        "labels": {"instanceId": revision.instance_id},
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
