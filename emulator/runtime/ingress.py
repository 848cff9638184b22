"""Cloud Run's ingress in front of a served function (docs/google-behaviour.md, "Cloud Run ingress"):

1. A service that does not grant run.routes.invoke to allUsers needs `Authorization: Bearer <ID token>`: a token
   Google signed (here: the world's signer), unexpired, whose audience is the service's URL or the function's URL.
   No token: 403 Forbidden; a token that does not verify: 401 Unauthorized with `WWW-Authenticate`.
2. The token's principal needs run.routes.invoke on the service (its own policy, the project's or an ancestor's);
   otherwise 403 Forbidden.
3. The request goes to the revision with the headers Cloud Run adds (X-Forwarded-For, X-Forwarded-Proto,
   X-Cloud-Trace-Context and traceparent when absent); the answer comes back, or 504 when the function's timeout
   passes, or 503 when the revision is not running.

Every request writes a request-log entry (run.googleapis.com/requests, httpRequest), with Cloud Run's reason when it
was refused.

Assumption: the refusal pages' HTML and the request-log texts are the ones users report; Google does not document
them.
Assumption: a token without an email claim names its principal by `sub`, the account's unique id.
"""

from __future__ import annotations

import http.client
import secrets
import time
import urllib.parse
from collections.abc import Callable
from datetime import datetime
from typing import Any

from emulator.core import iam
from emulator.core.clock import rfc3339
from emulator.core.network import Outbound, Reply
from emulator.core.tokens import TokenError, unique_id
from emulator.core.world import World
from emulator.runtime.process import ServedProcess
from emulator.services import functions, iamadmin

INVOKE = "run.routes.invoke"
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
NOT_AUTHENTICATED = (
    "The request was not authenticated. Either allow unauthenticated invocations or set the proper Authorization "
    "header. Read more at https://cloud.google.com/run/docs/securing/authenticating"
)
NOT_AUTHORIZED = (
    "The request was not authorized to invoke this service. Read more at "
    "https://cloud.google.com/run/docs/securing/authenticating"
)


def _page(status: int, title: str, text: str) -> bytes:
    return (
        '<html><head>\n<meta http-equiv="content-type" content="text/html;charset=utf-8">\n'
        f"<title>{status} {title}</title>\n</head>\n<body text=#000000 bgcolor=#ffffff>\n"
        f"<h1>Error: {title}</h1>\n<h2>{text}</h2>\n<h2></h2>\n</body></html>\n"
    ).encode()


def _escape(path: str) -> str:
    return path.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def forbidden(path: str) -> Reply:
    text = f"Your client does not have permission to get URL <code>{_escape(path)}</code> from this server."
    return Reply(403, {"content-type": "text/html; charset=UTF-8"}, _page(403, "Forbidden", text))


def unauthorized(path: str) -> Reply:
    text = f"Your client does not have permission to the requested URL <code>{_escape(path)}</code>."
    headers = {
        "content-type": "text/html; charset=UTF-8",
        "www-authenticate": 'Bearer error="invalid_token" error_description="The access token could not be verified"',
    }
    return Reply(401, headers, _page(401, "Unauthorized", text))


def _bearer(headers: dict[str, str]) -> str | None:
    value = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else ""


def admit(world: World, function: str, request: Outbound) -> tuple[Reply | None, str, str]:
    """(a refusal or None, the caller's e-mail or "", the reason for the request log)."""
    with world.lock:
        target = functions.invocation_target(world, function)
    if target is None:
        return Reply(404, {"content-type": "text/html; charset=UTF-8"}, _page(404, "Not Found", "")), "", ""
    project, policies, audiences = target
    path = urllib.parse.urlsplit(request.url).path or "/"
    with world.lock:
        public = world.allows(project, "allUsers", INVOKE, *policies)
    if public:
        return None, "", ""
    token = _bearer(request.headers)
    if not token:
        return forbidden(path), "", NOT_AUTHENTICATED
    try:
        claims = world.signer.verify(token, audiences)
    except TokenError:
        return unauthorized(path), "", NOT_AUTHENTICATED
    with world.lock:
        email = str(claims.get("email") or "") or _by_unique_id(world, str(claims.get("sub") or ""))
    member = iam.member_of(email) if email else ""
    with world.lock:
        allowed = bool(member) and (
            world.allows(project, member, INVOKE, *policies)
            or world.allows(project, "allAuthenticatedUsers", INVOKE, *policies)
        )
    if not allowed:
        return forbidden(path), email, NOT_AUTHORIZED
    return None, email, ""


def _by_unique_id(world: World, sub: str) -> str:
    """The service account whose unique id a token without an email names (gcloud asks generateIdToken without
    includeEmail unless told), "" when none."""
    if not sub:
        return ""
    known = set(world.principals)
    for project in world.projects.values():
        known |= set(iamadmin.accounts(world, project))
    return next((email for email in sorted(known) if unique_id(email) == sub), "")


def handler(world: World, function: str, process: Callable[[], ServedProcess | None]) -> Callable[[Outbound], Reply]:
    def handle(request: Outbound) -> Reply:
        started = time.monotonic()
        refusal, _, reason = admit(world, function, request)
        reply = refusal if refusal is not None else _forward(world, function, request, process())
        _request_log(world, function, request, reply, time.monotonic() - started, reason)
        return reply

    return handle


def _forward(world: World, function: str, request: Outbound, served: ServedProcess | None) -> Reply:
    if served is None or not served.alive():
        return Reply(503, {"content-type": "text/html; charset=UTF-8"}, _page(503, "Service Unavailable", ""))
    with world.lock:
        timeout = functions.timeout_s(world, function)
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
    lower = {k.lower() for k in headers}
    trace = secrets.token_hex(16)
    if "x-cloud-trace-context" not in lower:
        headers["X-Cloud-Trace-Context"] = f"{trace}/{int(secrets.token_hex(8), 16)};o=1"
    if "traceparent" not in lower:
        headers["traceparent"] = f"00-{trace}-{secrets.token_hex(8)}-01"
    headers |= {"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "https", "Host": request.host}
    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=timeout)
    try:
        connection.request(request.method, request.path, body=request.body or None, headers=headers)
        response = connection.getresponse()
        body = response.read()
        kept = {k.lower(): v for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP}
        return Reply(response.status, kept, body)
    except TimeoutError:
        return Reply(504, {"content-type": "text/plain"}, b"upstream request timeout")
    except (OSError, http.client.HTTPException):
        return Reply(503, {"content-type": "text/html; charset=UTF-8"}, _page(503, "Service Unavailable", ""))
    finally:
        connection.close()


def _request_log(world: World, function: str, request: Outbound, reply: Reply, seconds: float, reason: str) -> None:
    with world.lock:
        where = functions.revision_of(world, function)
        if where is None:
            return
        project_id, region, service, revision = where
        at: datetime = world.clock.now()
        doc: dict[str, Any] = {
            "logName": f"projects/{project_id}/logs/{urllib.parse.quote('run.googleapis.com/requests', safe='')}",
            "resource": {
                "type": "cloud_run_revision",
                "labels": {
                    "project_id": project_id,
                    "location": region,
                    "service_name": service,
                    "revision_name": revision,
                    "configuration_name": service,
                },
            },
            "timestamp": rfc3339(at),
            "receiveTimestamp": rfc3339(at),
            "insertId": secrets.token_hex(8),
            "severity": "ERROR" if reply.status >= 500 else "WARNING" if reply.status >= 400 else "INFO",
            "httpRequest": {
                "requestMethod": request.method,
                "requestUrl": request.url[:2048],
                "status": reply.status,
                "responseSize": str(len(reply.body)),
                "userAgent": next((v for k, v in request.headers.items() if k.lower() == "user-agent"), "")[:512],
                "remoteIp": "127.0.0.1",
                "latency": f"{seconds:.6f}s",
                "protocol": "HTTP/1.1",
            },
        }
        if reason:
            doc["textPayload"] = reason
        world.append_log(doc, at)
