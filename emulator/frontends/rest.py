"""The REST front end over the same handlers as gRPC: Google's URL templates, proto3 JSON in, proto3 JSON or the
google.rpc.Status error body out.

Transcoding follows each method's `google.api.http` rule, as Google's front end does: path variables fill the
named request fields, the body fills the field the rule names (or the whole request for `*`), and every other
request field may come as a query parameter (`interval.endTime=…`, repeated fields repeated). System parameters
(`$alt`, `alt`, `prettyPrint`, `key`, `fields`, …) are accepted and, but for `enum-encoding=int`, ignored.

The call then goes through the shared machinery (`dispatch.before_call` / `run_handler`): counted, timeline
ticked, an armed fault taken (status → its error body, hang → the answer comes late, close → the connection is
dropped unanswered, malformed → a 200 whose body is not JSON), the bearer token authenticated by the handler.

Assumption: a path no rule matches (or a known path with another verb) gets a JSON 404 NOT_FOUND body; Google's
front end answers such URLs with an HTML page, which no client here parses.
Assumption: a body that is not JSON gets "Invalid JSON payload received. Unexpected token." followed by the line
and a caret, the shape Google's texts have; the parser's exact wording for each syntax error is not reproduced.
A bare `NaN`/`Infinity` is such a token; a number no double holds gets "… Number out of range." in the same shape;
nesting deeper than 100 gets protobuf's "Message too deep. Max recursion depth is 100."; invalid UTF-8 gets
"… Invalid UTF-8."; a repeated key is not refused (the last value wins).
Assumption: the caller's IP is recorded as 127.0.0.1 (the emulator listens on loopback only).

A request line in absolute form (`GET http://us-central1-127.0.0.1:P/v1/...`, what a client sends to a proxy) is
served by its path whatever its host: gcloud derives regional endpoints such as `us-central1-<override host>` that
no resolver knows, and pointed at this port as its HTTP proxy it reaches them here (tests/emulator/test_gcloud_*.py).
"""

from __future__ import annotations

import re
import sys
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.rpc import code_pb2

from emulator.core.handlers import Doc, HttpRule, JsonMethod, Method, RestCall, before_call, camel, hang, run_handler
from emulator.core.http import MAX_DEPTH, JsonError, Request, Response, parse_json
from emulator.core.status import RpcError, invalid_argument
from emulator.core.world import Fault, World
from emulator.frontends.transcoding import (
    DictShape,
    ProtoShape,
    Shape,
    unbound_query_error,
    unknown_field_error,
    unknown_fields,
)

SYSTEM_PARAMS = {
    "$alt",
    "alt",
    "prettyPrint",
    "$prettyPrint",
    "key",
    "fields",
    "$fields",
    "quotaUser",
    "$.xgafv",
    "callback",
    "access_token",
    "upload_protocol",
    "uploadType",
    "userIp",
}
# NaN, Infinity, -Infinity outside strings, or a number literal: where `_json_error` puts its caret.
_BAD_NUMBER = re.compile(r"(?:^|[\s\[:,])(-?(?:NaN|Infinity)|-?\d+(?:\.\d+)?[eE][+-]?\d{3,}|-?\d{309,})")
MALFORMED_BODY = b'{"candidates": [{"content": {"parts": [{"text": "OK'  # cut off mid-string: not JSON


@dataclass(frozen=True)
class Route:
    rule: HttpRule
    method: Method
    pattern: re.Pattern[str]
    variables: tuple[str, ...]  # the field path each group fills, in group order


def compile_template(template: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
    """`/v1/{model=projects/*/models/*}:generateContent` → a regex with one group per variable.

    `*` is one segment (no `/`, and no `:` so the custom verb stays outside it); `**` any number of segments.
    """
    out, variables, pos = "", [], 0
    for match in re.finditer(r"\{([^}=]+)(?:=([^}]*))?\}", template):
        out += re.escape(template[pos : match.start()])
        segments = (match.group(2) or "*").split("/")
        inner = "/".join("[^:]+" if s == "**" else "[^/:]+" if s == "*" else re.escape(s) for s in segments)
        out += f"({inner})"
        variables.append(match.group(1))
        pos = match.end()
    out += re.escape(template[pos:])
    return re.compile(out), tuple(variables)


def build_routes(methods: Iterable[Method], rules: Iterable[HttpRule]) -> list[Route]:
    by_name = {m.full_name: m for m in methods}
    routes = []
    for rule in rules:
        if rule.method not in by_name:
            raise ValueError(f"HTTP rule {rule.verb} {rule.template}: no method {rule.method}")
        pattern, variables = compile_template(rule.template)
        routes.append(Route(rule, by_name[rule.method], pattern, variables))
    return routes


def _match(routes: list[Route], verb: str, path: str) -> tuple[Route, list[str]] | None:
    path = re.sub("%3[Aa]", ":", path)  # some clients escape the custom verb's colon
    for route in routes:
        if route.rule.verb != verb:
            continue
        found = route.pattern.fullmatch(path)
        if found is not None:
            return route, [unquote(v) for v in found.groups()]
    return None


# Request → message ----------------------------------------------------------------------------------------


def _set(doc: Doc, path: str, value: Any) -> None:
    *parents, last = [camel(p) for p in path.split(".")]
    for key in parents:
        child = doc.get(key)
        if not isinstance(child, dict):
            child = doc[key] = {}
        doc = child
    doc[last] = value


def _parse_body(body: bytes) -> Any:
    """The body as JSON, or Google's "Invalid JSON payload received." 400 (`core.http.parse_json` says what is wrong).

    Unlike the admin API, a key given twice is not refused here: the last value wins.
    """
    try:
        return parse_json(body, allow_duplicate_keys=True)
    except JsonError as err:
        raise _json_error(err, body) from None


def _json_error(err: JsonError, body: bytes) -> RpcError:
    prefix = "Invalid JSON payload received."
    if err.reason == "utf8":
        return invalid_argument(f"{prefix} Invalid UTF-8.")
    if err.reason == "depth":  # protobuf's JSON parser's words: docs/google-behaviour.md, REST request bodies
        return invalid_argument(f"{prefix} Message too deep. Max recursion depth is {MAX_DEPTH}.")
    text = body.decode("utf-8")
    if err.decode_error is not None:
        exc = err.decode_error
        lines, line_no, column = exc.doc.splitlines(), exc.lineno, exc.colno
        expected = "Expected , or } after key:value pair." if "delimiter" in exc.msg else "Unexpected token."
    else:  # NaN / Infinity (not JSON) or a number no double holds: point at the first such token
        found = _BAD_NUMBER.search(text)
        start = found.start(1) if found else 0
        lines, line_no = text.splitlines(), text.count("\n", 0, start) + 1
        column = start - (text.rfind("\n", 0, start) + 1) + 1
        expected = "Unexpected token." if err.reason == "constant" else "Number out of range."
    line = lines[line_no - 1] if lines else ""
    caret = " " * (column - 1) + "^"
    return invalid_argument(f"{prefix} {expected}\n{line[:200]}\n{caret}")


def _root_not_message() -> RpcError:
    return invalid_argument('Invalid JSON payload received. Unknown name "": Root element must be a message.')


def _shape(method: Method) -> Shape:
    return DictShape(method.fields) if isinstance(method, JsonMethod) else ProtoShape(_descriptor(method))


def _query_value(method: Method, name: str, values: list[str]) -> Any:
    """A query parameter's value for the request field `name` (dotted), typed as the field is."""
    shape: Shape | None = _shape(method)
    descriptor = None if isinstance(method, JsonMethod) else _descriptor(method)
    field: FieldDescriptor | None = None
    for segment in name.split("."):
        hit = shape.field(segment) if shape is not None else None
        if hit is None:
            raise unbound_query_error(name, segment)
        proto_name, shape = hit
        if descriptor is not None:
            field = descriptor.fields_by_name[proto_name]
            descriptor = field.message_type
    repeated = field.is_repeated if field is not None else len(values) > 1
    typed: list[Any] = values
    if field is not None and field.type == FieldDescriptor.TYPE_BOOL:
        typed = [_bool(name, v) for v in values]
    elif field is not None and field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        typed = [_float(name, v) for v in values]
    return typed if repeated else typed[-1]


def _descriptor(method: Method) -> Any:
    pb = method.request_type.pb() if hasattr(method.request_type, "pb") else method.request_type
    return pb.DESCRIPTOR


def _bool(name: str, value: str) -> bool:
    if value.lower() not in ("true", "false"):  # apitools (gcloud) writes True/False
        raise invalid_argument(f"Invalid value at '{name}' (TYPE_BOOL), \"{value}\"")
    return value.lower() == "true"


def _float(name: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise invalid_argument(f"Invalid value at '{name}' (TYPE_DOUBLE), \"{value}\"") from None


def request_doc(route: Route, values: list[str], request: Request) -> Doc:
    """The request message in proto3 JSON: body, then path variables, then query parameters."""
    rule, doc = route.rule, {}
    if rule.body:
        body = _parse_body(request.body)
        if rule.body == "*":
            if not isinstance(body, dict):
                raise _root_not_message()
            doc.update(body)
        elif request.body.strip():
            if not isinstance(body, dict):
                raise _root_not_message()
            _set(doc, rule.body, body)
    for variable, value in zip(route.variables, values, strict=True):
        _set(doc, variable, rule.prefix.get(variable, "") + value)
    for name, given in request.query.items():
        if name not in SYSTEM_PARAMS and not name.startswith("$"):
            _set(doc, name, _query_value(route.method, name, given))
    unknown = unknown_fields(doc, _shape(route.method))
    if unknown:
        raise unknown_field_error(unknown)
    return doc


def request_message(route: Route, values: list[str], request: Request) -> Any:
    doc = request_doc(route, values, request)
    try:
        return route.method.parse_json(doc)
    except json_format.ParseError as err:
        raise invalid_argument(f"Invalid JSON payload received. {err}") from None


# Message → response ---------------------------------------------------------------------------------------


def _ints_for_enums(request: Request) -> bool:
    return "enum-encoding=int" in (request.param("$alt") or "")


def response_doc(route: Route, result: Any, request: Request) -> Doc:
    if isinstance(route.method, JsonMethod):
        doc = route.method.dump_json(result)
    else:
        raw = type(result).pb(result) if hasattr(type(result), "pb") else result
        doc = json_format.MessageToDict(raw, use_integers_for_enums=_ints_for_enums(request))
    return route.rule.reply(doc) if route.rule.reply else doc


def error_response(err: RpcError) -> Response:
    return Response.json(err.to_json(), err.http_status)


def _fault_response(fault: Fault) -> Response | None:
    """What an armed fault answers instead of the handler; None when the call goes on (after a hang)."""
    if fault.status is not None:
        return error_response(RpcError.from_status(fault.status))
    if fault.close:
        return Response(close=True)
    if fault.malformed:
        return Response(200, MALFORMED_BODY, {"Content-Type": "application/json; charset=UTF-8"})
    hang(fault, None)  # REST carries no deadline; the client's own timeout ends its wait
    return None


def _caller(request: Request) -> tuple[str, str]:
    auth = request.headers.get("authorization", "")
    token = auth[len("Bearer ") :].strip() if auth.startswith("Bearer ") else ""
    agent = request.headers.get("user-agent") or request.headers.get("x-goog-api-client", "")
    return token, agent


def not_found(request: Request) -> Response:
    err = RpcError(code_pb2.NOT_FOUND, f"The requested URL {request.path} was not found on this server.")
    return error_response(err)


def serve(world: World, route: Route, values: list[str], request: Request) -> Response:
    try:
        message = request_message(route, values, request)
    except RpcError as err:
        return error_response(err)
    fault = before_call(world, route.method)
    if fault is not None:
        early = _fault_response(fault)
        if early is not None:
            return early
    token, agent = _caller(request)
    base_url = "http://" + request.headers.get("host", "127.0.0.1")
    call = RestCall(world=world, method=route.method, token=token, user_agent=agent, base_url=base_url)
    try:
        result = run_handler(world, route.method, call, message)
    except RpcError as err:
        return error_response(err)
    except Exception:  # noqa: BLE001 - a handler bug: answer as Google's front end does, keep the trace
        traceback.print_exc(file=sys.stderr)
        return error_response(RpcError(code_pb2.INTERNAL, "Internal error encountered."))
    return Response.json(response_doc(route, result, request))


def make_app(
    world: World,
    methods: list[Method],
    rules: list[HttpRule],
    raw: Sequence[Callable[[World, Request], Response | None]] = (),
) -> Callable[[Request], Response]:
    """The REST front end over `methods`, routed by `rules`; `raw` handlers see each request first (plain HTTP a
    service serves beside its API)."""
    routes = build_routes(methods, rules)

    def app(request: Request) -> Response:
        for handler in raw:
            answered = handler(world, request)
            if answered is not None:
                return answered
        found = _match(routes, request.method, request.path)
        if found is None:
            return not_found(request)
        return serve(world, *found, request)

    return app
