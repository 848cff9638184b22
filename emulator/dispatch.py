"""One handler per API method, shared by every front end.

A handler takes the caller (`Call`) and a request message and returns a response message or raises `RpcError`.
The gRPC and REST front ends only translate bytes or JSON into the request message and the outcome back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from google.rpc import code_pb2

from emulator import iam
from emulator.rpc import RpcError, error_info
from emulator.world import Fault, World

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
