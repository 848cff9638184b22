"""The emulator refuses malformed gRPC input with a clear status and keeps serving."""

from __future__ import annotations

import grpc
import pytest
from google.cloud import aiplatform_v1

from emulator import testing
from emulator.server import Emulator

GEN = "/google.cloud.aiplatform.v1.PredictionService/GenerateContent"


def _raw(emulator: Emulator, method: str, payload: bytes, token: str) -> grpc.RpcError | bytes:
    channel = grpc.secure_channel(emulator.grpc.address, grpc.local_channel_credentials())
    call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
    try:
        return bytes(call(payload, metadata=(("authorization", f"Bearer {token}"),), timeout=5))
    except grpc.RpcError as err:
        return err
    finally:
        channel.close()


def _healthy_call_works(emulator: Emulator) -> None:
    clients = testing.clients(emulator)
    response = clients.prediction.generate_content(
        request=aiplatform_v1.GenerateContentRequest(
            model="projects/demo-proj/locations/us-central1/publishers/google/models/gemini-2.5-flash",
            contents=[aiplatform_v1.Content(role="user", parts=[aiplatform_v1.Part(text="hi")])],
        )
    )
    assert response.candidates


@pytest.mark.parametrize(
    "payload",
    [b"\xff\xff\xff", b"\x0a\xff", b"\x08" * 1000, bytes(range(256))],
    ids=["varint", "truncated-string", "many-keys", "all-bytes"],
)
def test_garbage_request_is_refused_and_the_server_keeps_serving(emulator: Emulator, payload: bytes) -> None:
    token = testing.token_for(emulator, emulator.world.workload)
    outcome = _raw(emulator, GEN, payload, token)
    assert isinstance(outcome, grpc.RpcError)
    assert outcome.code() in (grpc.StatusCode.INTERNAL, grpc.StatusCode.INVALID_ARGUMENT)
    _healthy_call_works(emulator)


def test_unknown_method_is_unimplemented(emulator: Emulator) -> None:
    token = testing.token_for(emulator, emulator.world.workload)
    outcome = _raw(emulator, "/google.cloud.aiplatform.v1.PredictionService/Explode", b"", token)
    assert isinstance(outcome, grpc.RpcError)
    assert outcome.code() == grpc.StatusCode.UNIMPLEMENTED
    _healthy_call_works(emulator)


def test_empty_request_gets_googles_answer(emulator: Emulator) -> None:
    token = testing.token_for(emulator, emulator.world.workload)
    outcome = _raw(emulator, GEN, b"", token)
    assert isinstance(outcome, grpc.RpcError)
    assert outcome.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert outcome.details() == "Invalid resource field value in the request."
    _healthy_call_works(emulator)
