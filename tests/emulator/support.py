"""Small helpers the emulator acceptance tests share: model names, one Gemini call, the virtual clock, raw HTTP."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from typing import Any

import grpc
from google.api_core import exceptions
from google.cloud import aiplatform_v1
from google.cloud.audit import audit_log_pb2
from google.cloud.logging_v2 import types as lt

from devkit.emulated import admin
from emulator.core.clock import parse_rfc3339
from emulator.server import Emulator

DEPLOYER = "deployer@demo-proj.iam.gserviceaccount.com"  # a principal the shipped scenarios grant nothing
OWNER = "alice@example.com"
PROJECT = "demo-proj"
NUMBER = "412345678901"
MODEL = "gemini-2.5-flash-lite"  # the canary's default target
LOCATION = "us-central1"
GENERATE = "google.cloud.aiplatform.v1.PredictionService.GenerateContent"


def model_name(project: str = PROJECT, model: str = MODEL, location: str = LOCATION) -> str:
    return f"projects/{project}/locations/{location}/publishers/google/models/{model}"


def prompt(text: str = "hi") -> list[aiplatform_v1.Content]:
    return [aiplatform_v1.Content(role="user", parts=[aiplatform_v1.Part(text=text)])]


def generate(
    client: aiplatform_v1.PredictionServiceClient, name: str | None = None, **kwargs: Any
) -> aiplatform_v1.GenerateContentResponse:
    return client.generate_content(model=name or model_name(), contents=prompt(), **kwargs)


def call_v1beta1(emulator: Emulator, method: str, request: Any, response_type: Any, token: str | None) -> Any:
    """A v1beta1 PredictionService method over a raw local gRPC channel with v1 message types (same wire format),
    raising what a GAPIC client would (`from_grpc_error`). No bearer token when `token` is None."""
    credentials = grpc.local_channel_credentials()
    if token is not None:
        credentials = grpc.composite_channel_credentials(credentials, grpc.access_token_call_credentials(token))
    with grpc.secure_channel(emulator.grpc.address, credentials) as channel:
        rpc = channel.unary_unary(
            f"/google.cloud.aiplatform.v1beta1.PredictionService/{method}",
            request_serializer=type(request).serialize,
            response_deserializer=response_type.deserialize,
        )
        try:
            return rpc(request, timeout=10)
        except grpc.RpcError as err:
            raise exceptions.from_grpc_error(err) from err


def advance(emulator: Emulator, seconds: float) -> datetime:
    """Move the virtual clock forward through the admin API (which also runs due timeline events)."""
    status, body = admin(emulator, "POST", "clock", {"advance_seconds": seconds})
    assert status == 200, body
    return parse_rfc3339(body["now"])


def since(emulator: Emulator, hours: float = 24) -> str:
    """The time bound google-cloud-logging appends (`%Y-%m-%dT%H:%M:%S.%f%z`, so `+0000`), from the virtual now."""
    return (emulator.world.clock.now() - timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%S.%f%z")


def list_entries(client: Any, filter_: str, **kwargs: Any) -> list[lt.LogEntry]:
    request = {"resource_names": [f"projects/{PROJECT}"], "filter": filter_, **kwargs}
    return list(client.list_log_entries(request=request, retry=None))


def audit_of(entry: lt.LogEntry) -> audit_log_pb2.AuditLog:
    audit = audit_log_pb2.AuditLog()
    assert entry.proto_payload.Unpack(audit)
    return audit


def world(emulator: Emulator) -> dict[str, Any]:
    status, body = admin(emulator, "GET", "world")
    assert status == 200
    return dict(body)


def raw_http(url: str, method: str = "GET", data: bytes | None = None, headers: dict[str, str] | None = None) -> Any:
    """(status, body text) of one plain HTTP request."""
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def raw_json(url: str, method: str, data: bytes) -> tuple[int, Any]:
    status, text = raw_http(url, method, data, {"Content-Type": "application/json"})
    return status, json.loads(text)
