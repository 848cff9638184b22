"""Entry points (functions-framework). Deployed with GOOGLE_FUNCTION_SOURCE=function/main.py.

    canary         HTTP: Cloud Scheduler (POST with X-CloudScheduler headers) and runbooks (GET or POST)
    canary_pubsub  CloudEvent: Scheduler → Pub/Sub → function

Config is validated here, once, at cold start: a bad variable fails the instance's start with a message that names
it. Clients are built lazily on the first run.

HTTP status: 200 every target answered; 502 Gemini is failing (the canary did its job: the body says why);
500 the canary itself failed; 4xx the request was wrong (nothing was called, no metric written).

The body is read by the canary, bounded in size and time (trigger.read_body); a declared length over the limit is
refused unread. functions-framework reads whatever is left of the body after a response that is not streamed, so a
refusal is streamed: nothing the canary refused is read into memory. On the Pub/Sub entry point functions-framework
reads and parses the envelope itself, so the app takes at most trigger.MAX_ENVELOPE bytes, and what it cannot read
or parse is answered here, never as a crash (a 500 would have Pub/Sub redeliver the message for days).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import flask
import functions_framework
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from . import config as _config
from . import report, run, trigger


def _load() -> _config.Config:
    """The config, or one plain line on stderr naming the bad variable before the traceback that stops the start."""
    try:
        return _config.load(os.environ)
    except _config.ConfigError as error:
        sys.stderr.write(f"gemini-canary cannot start: {error}\n")
        sys.stderr.flush()
        raise


INSTANCE = run.Instance(_load())
if flask.has_app_context():  # functions-framework loads this module inside the app it serves it from
    flask.current_app.config["MAX_CONTENT_LENGTH"] = trigger.MAX_ENVELOPE


def _emit(result: run.Result) -> None:
    """The run's one structured log line, on stdout where Cloud Run's agent parses it."""
    sys.stdout.write(report.log_line(result) + "\n")
    sys.stdout.flush()


def _refusal(error: trigger.BadRequest) -> flask.Response:
    """Streamed, so functions-framework's after-request hook does not read the rest of a body the canary refused."""
    body = (json.dumps({"error": error.message}) + "\n").encode()
    return flask.Response(
        iter([body]),
        error.status,
        {"Content-Type": "application/json", "Content-Length": str(len(body)), **error.headers},
    )


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
    flask.g.canary_entered = True
    declared = request.content_length
    chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    try:
        # Never more than one byte past the limit, whatever Content-Length says (or doesn't: chunked bodies); a
        # declared length over it is not even opened (from_http refuses it).
        body = b""
        if (declared or chunked) and (declared or 0) <= trigger.MAX_BODY:
            body = trigger.read_body(request.stream, declared, request.environ.get("gunicorn.socket"))
        wanted = trigger.from_http(
            INSTANCE.config,
            request.method,
            request.args.to_dict(flat=False),
            {k.lower(): v for k, v in request.headers.items()},
            body,
            declared or 0,
        )
    except trigger.BadRequest as error:
        _reject(error, "http")
        return _refusal(error)
    result = run.execute(INSTANCE, wanted.trigger, wanted.targets)
    _emit(result)
    status = result.verdict.http_status
    if wanted.text:
        return flask.Response(
            report.to_text(result, wanted.debug), status, {"Content-Type": "text/plain; charset=utf-8"}
        )
    return flask.Response(
        json.dumps(report.to_json(result, wanted.debug), indent=2, default=str) + "\n",
        status,
        {"Content-Type": "application/json"},
    )


@functions_framework.cloud_event
def canary_pubsub(event: Any) -> None:
    flask.g.canary_entered = True
    try:
        wanted = trigger.from_pubsub(INSTANCE.config, event.data, event.get("id"))
    except trigger.BadRequest as error:
        _reject(error, "pubsub")  # acknowledged: a malformed message would only be redelivered
        return
    _emit(run.execute(INSTANCE, wanted.trigger, wanted.targets))


@functions_framework.errorhandler(Exception)
def _unreadable(error: Exception) -> Any:
    """What functions-framework or the CloudEvents SDK raised reading a request before an entry point ran: an
    envelope too large, not JSON, nested too deeply. A client's mistake, answered as one; a Pub/Sub message too
    large is acknowledged (a 4xx would have Pub/Sub redeliver it). The canary's own failures stay the framework's
    crash response, and the framework's own answers (404, 405) stand."""
    entered = flask.g.get("canary_entered", False)
    if isinstance(error, HTTPException) and (entered or error.code not in (400, 413)):
        return error
    if entered:
        raise error
    if isinstance(error, RequestEntityTooLarge):
        refused = trigger.BadRequest(413, f"request body over {trigger.MAX_ENVELOPE} bytes; not read")
    else:
        refused = trigger.BadRequest(400, "the body is not a CloudEvent or a Pub/Sub push message")
    where = "pubsub" if flask.request.endpoint == "cloudevent" else "http"
    _reject(refused, where)
    if where == "pubsub" and refused.status == 413:
        return _refusal(trigger.BadRequest(200, refused.message))
    return _refusal(refused)
