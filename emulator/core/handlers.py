"""The handler contract: one handler per API method, shared by every front end, and the records a service module
declares itself with (`Service`: its APIs, methods and HTTP rules).

A handler takes the caller (`Call`) and a request message and returns a response message or raises `RpcError`.
The gRPC and REST front ends only translate bytes or JSON into the request message and the outcome back.

The Python types of Cloud Functions, Cloud Run, Cloud Scheduler, Service Usage, IAM Admin, Dashboards and Pub/Sub
are not installed, so their handlers take and return proto3-JSON dicts. A `JsonMethod` is still a `Method`: the
REST front end counts it, arms faults on it, authenticates its caller and runs it under the world's lock exactly as
it does a protobuf method. Its `fields` list the request message's field names (a nested dict for a message field,
None for a scalar, a map or a free-form value), so an unknown field is refused with Google's text.

Assumption: field shapes list the fields the real messages have (taken from gcloud's discovery-generated message
classes); values inside maps and free-form objects (dashboard widgets) are not checked.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from google.protobuf import json_format
from google.rpc import code_pb2

from emulator.core import iam
from emulator.core.status import RpcError, error_info
from emulator.core.world import Fault, World

Handler = Callable[["Call", Any], Any]


@dataclass(frozen=True)
class Method:
    """An RPC: `service` is the proto service (google.logging.v2.LoggingServiceV2), `name` the method."""

    service: str
    name: str
    request_type: Any  # a proto-plus class or a protobuf message class
    response_type: Any
    handler: Handler
    api: str = ""  # the API's service name for audit and ErrorInfo, e.g. logging.googleapis.com

    @property
    def full_name(self) -> str:
        """google.logging.v2.LoggingServiceV2.ListLogEntries: the form audit logs use as methodName."""
        return f"{self.service}.{self.name}"

    # Wire helpers: proto-plus classes and raw protobuf classes have different spellings.

    def parse_bytes(self, data: bytes) -> Any:
        if hasattr(self.request_type, "deserialize"):
            return self.request_type.deserialize(data)
        return self.request_type.FromString(data)

    def dump_bytes(self, message: Any) -> bytes:
        if hasattr(type(message), "serialize"):
            return bytes(type(message).serialize(message))
        return bytes(message.SerializeToString())

    def parse_json(self, doc: dict[str, Any]) -> Any:
        """proto3 JSON → request message; unknown fields are refused, as Google's ESF refuses them."""
        if hasattr(self.request_type, "pb"):
            raw = self.request_type.pb()()
            json_format.ParseDict(doc, raw, ignore_unknown_fields=False)
            return self.request_type.wrap(raw)
        message = self.request_type()
        json_format.ParseDict(doc, message, ignore_unknown_fields=False)
        return message

    def dump_json(self, message: Any) -> dict[str, Any]:
        raw = type(message).pb(message) if hasattr(type(message), "pb") else message
        return json_format.MessageToDict(raw, preserving_proto_field_name=False)


@dataclass
class Call:
    """Who is calling, as the front end saw it."""

    world: World
    method: Method
    token: str
    user_agent: str = ""
    caller_ip: str = "127.0.0.1"

    def authenticate(self) -> str:
        """The caller's e-mail, or the 401 Google gives for a missing, expired, revoked or unknown token."""
        state, email = self.world.token_state(self.token)
        if state == "ok":
            return email
        meta = {"method": self.method.full_name, "service": self.method.api}
        if state == "missing":
            raise RpcError(
                code_pb2.UNAUTHENTICATED,
                "Request is missing required authentication credential. Expected OAuth 2 access token, login "
                "cookie or other valid authentication credential. See "
                "https://developers.google.com/identity/sign-in/web/devconsole-project.",
                [error_info("CREDENTIALS_MISSING", "googleapis.com", meta)],
            )
        # Assumption (unverified): unknown and revoked tokens get the same answer as expired ones; Google
        # documents ACCESS_TOKEN_EXPIRED and does not distinguish further in the message.
        raise RpcError(
            code_pb2.UNAUTHENTICATED,
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
            "other valid authentication credential. See "
            "https://developers.google.com/identity/sign-in/web/devconsole-project.",
            [error_info("ACCESS_TOKEN_EXPIRED", "googleapis.com", meta)],
        )

    def member(self) -> str:
        return iam.member_of(self.authenticate())


def before_call(world: World, method: Method) -> Fault | None:
    """Count the call, run due timeline events, and take an injected fault for it if one is armed."""
    with world.lock:
        world.count_call(method.full_name)
        world.tick()
        return world.take_fault(method.full_name)


def run_handler(world: World, method: Method, call: Call, request: Any) -> Any:
    started = time.perf_counter()
    with world.lock:
        try:
            return method.handler(call, request)
        finally:
            # Server-side time, so a benchmark can tell a client's own cost from the emulator's (bench/).
            spent = world.call_seconds.get(method.full_name, 0.0) + time.perf_counter() - started
            world.call_seconds[method.full_name] = spent


def hang(fault: Fault, time_left: float | None) -> None:
    """Sleep as a hung backend would: the whole hang, or until the caller has given up (plus a little)."""
    delay = fault.hang_seconds if time_left is None else min(fault.hang_seconds, time_left + 0.05)
    time.sleep(max(delay, 0.0))


Doc = dict[str, Any]
Fields = Mapping[str, Any]  # field name → None (scalar, map, free-form) or the nested message's Fields


@dataclass(frozen=True)
class JsonMethod(Method):
    """A Method whose request and response are proto3-JSON dicts; served over REST only."""

    fields: Fields = field(default_factory=dict)

    def parse_bytes(self, data: bytes) -> Any:
        raise NotImplementedError(f"{self.full_name} is served over REST only")

    def dump_bytes(self, message: Any) -> bytes:
        raise NotImplementedError(f"{self.full_name} is served over REST only")

    def parse_json(self, doc: dict[str, Any]) -> Any:
        return doc

    def dump_json(self, message: Any) -> dict[str, Any]:
        return dict(message)


@dataclass
class RestCall(Call):
    """A Call that came over HTTP: `base_url` is how the caller reached the emulator (for URLs it hands out)."""

    base_url: str = ""


def json_method(service: str, name: str, handler: Callable[[Call, Doc], Doc], api: str, fields: Fields) -> JsonMethod:
    return JsonMethod(service, name, dict, dict, handler, api, fields)


@dataclass(frozen=True)
class HttpRule:
    """One `google.api.http` binding: verb, URL template, the method, and where the body goes.

    `body` is "" (no body; other fields from the query), "*" (the whole request) or a field's proto name.
    `prefix` prepends text to a path variable (Resource Manager v1 names a project `{resource}`, v3 `projects/P`).
    `reply` reshapes the response (v1 GetProject answers with the v1 Project shape).
    """

    verb: str
    template: str
    method: str
    body: str = ""
    prefix: Mapping[str, str] = field(default_factory=dict)
    reply: Callable[[Doc], Doc] | None = None


# JSON field names ----------------------------------------------------------------------------------------


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


# The registry's records ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Api:
    """One Google API as the emulator serves it: its service name, the title Google's SERVICE_DISABLED error gives
    it (`serviceTitle`), and the suffix of gcloud's `CLOUDSDK_API_ENDPOINT_OVERRIDES_<gcloud>` ("" when no gcloud
    command the project runs calls it)."""

    name: str
    title: str
    gcloud: str = ""


@dataclass(frozen=True)
class Service:
    """What one service module serves: its APIs, its methods and their `google.api.http` rules. A method whose
    request is a protobuf type is served over gRPC and REST; a `JsonMethod` over REST only."""

    apis: tuple[Api, ...]
    methods: tuple[Method, ...]
    rules: tuple[HttpRule, ...] = ()
    # Plain HTTP beside the API (Cloud Functions' signed upload URL): (world, request) → a response, or None when
    # the request is not its own. The REST front end asks each service's before it matches the rules.
    http: Callable[[World, Any], Any] | None = None
    # What the service does on the clock by itself (Scheduler firing, alert evaluation): `tick(world, now)`, called
    # by the emulator's ticker (core/ticker.py) without the world's lock held.
    tick: Callable[[World, datetime], None] | None = None
    # Controls beside Google's paths, served under /_emulator/ (e.g. the incidents Monitoring opened): (path, verb)
    # → handler(world, body) returning JSON, called under the world's lock; a ValueError answers 400 with its text.
    admin: Mapping[tuple[str, str], Callable[[World, Any], Any]] = field(default_factory=dict)
