"""Entry points (functions-framework). Deployed with GOOGLE_FUNCTION_SOURCE=function/main.py.

    canary         HTTP: Cloud Scheduler (POST with X-CloudScheduler headers) and runbooks (GET or POST)
    canary_pubsub  CloudEvent: Scheduler → Pub/Sub → function

Config is validated here, once, at cold start: a bad variable fails the instance's start with a message that names
it. Clients are built lazily on the first run.

HTTP status: 200 every target answered; 502 Gemini is failing (the canary did its job: the body says why);
500 the canary itself failed; 4xx the request was wrong (nothing was called, no metric written).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import flask
import functions_framework

from . import config as _config
from . import report, run, trigger

INSTANCE = run.Instance(_config.load(os.environ))


def _emit(result: run.Result) -> None:
    """The run's one structured log line, on stdout where Cloud Run's agent parses it."""
    sys.stdout.write(report.log_line(result) + "\n")
    sys.stdout.flush()


def _reject(error: trigger.BadRequest, where: str) -> None:
    entry = {
        "severity": "WARNING",
        "message": f"gemini-canary REJECTED: {error.message}",
        "rejected": where,
        "status": error.status,
    }
    sys.stdout.write(json.dumps(entry) + "\n")
    sys.stdout.flush()


@functions_framework.http
def canary(request: flask.Request) -> flask.Response:
    declared = request.content_length or 0
    # Never more than one byte past the limit, whatever Content-Length says (or doesn't: chunked bodies).
    body = request.stream.read(trigger.MAX_BODY + 1) if declared <= trigger.MAX_BODY else b""
    try:
        wanted = trigger.from_http(
            INSTANCE.config,
            request.method,
            request.args.to_dict(flat=False),
            {k.lower(): v for k, v in request.headers.items()},
            body,
            declared,
        )
    except trigger.BadRequest as error:
        _reject(error, "http")
        return flask.Response(
            json.dumps({"error": error.message}) + "\n",
            error.status,
            {"Content-Type": "application/json", **error.headers},
        )
    result = run.execute(INSTANCE, wanted.trigger, wanted.targets)
    _emit(result)
    status = report.HTTP_STATUS[result.verdict]
    if wanted.text:
        return flask.Response(report.to_text(result), status, {"Content-Type": "text/plain; charset=utf-8"})
    return flask.Response(
        json.dumps(report.to_json(result, wanted.debug), indent=2, default=str) + "\n",
        status,
        {"Content-Type": "application/json"},
    )


@functions_framework.cloud_event
def canary_pubsub(event: Any) -> None:
    try:
        wanted = trigger.from_pubsub(INSTANCE.config, event.data, event.get("id"))
    except trigger.BadRequest as error:
        _reject(error, "pubsub")  # acknowledged: a malformed message would only be redelivered
        return
    _emit(run.execute(INSTANCE, wanted.trigger, wanted.targets))
