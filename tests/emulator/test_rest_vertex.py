"""Vertex AI over REST: the real aiplatform REST transport and google-genai get, for every failure cause, the same
reason, domain, metadata and message as the gRPC client; a 403 is `Forbidden` (REST), not `PermissionDenied`."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google import genai
from google.api_core import exceptions
from google.cloud import aiplatform_v1
from google.cloud.aiplatform_v1.services.prediction_service.transports import PredictionServiceGrpcTransport
from google.genai import errors, types
from google.oauth2.credentials import Credentials

from devkit.emulated import clients, token_for
from emulator.server import Emulator
from emulator.services.vertex import REPLY
from tests.emulator.support import MODEL, PROJECT, generate, model_name, prompt, raw_http
from tests.shared import WORKLOAD

# The REST transport raises by HTTP status alone (google-api-core from_http_response).
REST_CLASS = {
    400: exceptions.BadRequest,
    401: exceptions.Unauthorized,
    403: exceptions.Forbidden,
    404: exceptions.NotFound,
    429: exceptions.TooManyRequests,
}
VOLATILE = {"uid", "troubleshootToken"}  # a fresh VPC-SC id per denial


def rest_prediction(emu: Emulator, token: str) -> aiplatform_v1.PredictionServiceClient:
    return aiplatform_v1.PredictionServiceClient(
        transport="rest", client_options={"api_endpoint": emu.rest_url}, credentials=Credentials(token=token)
    )


def genai_client(emu: Emulator, token: str, version: str | None = None) -> genai.Client:
    options = types.HttpOptions(base_url=emu.rest_url, api_version=version) if version else None
    return genai.Client(
        vertexai=True,
        project=PROJECT,
        location="us-central1",
        credentials=Credentials(token=token),
        http_options=options or types.HttpOptions(base_url=emu.rest_url),
    )


def failure(call: Callable[[], Any]) -> exceptions.GoogleAPICallError:
    with pytest.raises(exceptions.GoogleAPICallError) as caught:
        call()
    return caught.value


def stable(metadata: Any) -> dict[str, str]:
    return {k: v for k, v in dict(metadata or {}).items() if k not in VOLATILE}


def rest_message(err: exceptions.GoogleAPICallError) -> str:
    """The REST transport prefixes `POST <url>: ` (the URL holds no ': ')."""
    return str(err.message).split(": ", 1)[1]


SCENARIOS = [
    pytest.param(scenario, code, id=scenario)
    for scenario, code in (
        ("iam_denied", 403),
        ("deny_policy", 403),
        ("api_disabled", 403),
        ("billing_disabled", 403),
        ("vpc_sc", 403),
        ("org_policy", 400),
        ("model_unavailable", 404),
        ("quota", 429),
    )
]


@pytest.mark.parametrize(("scenario", "code"), SCENARIOS)
def test_rest_and_grpc_report_the_same_failure(
    start_emulator: Callable[[str], Emulator], scenario: str, code: int
) -> None:
    emu = start_emulator(scenario)
    token = token_for(emu, WORKLOAD)
    over_grpc = failure(lambda: generate(clients(emu, token=token).prediction))
    over_rest = failure(lambda: generate(rest_prediction(emu, token)))
    assert type(over_rest) is REST_CLASS[code]
    assert over_rest.code == over_grpc.code == code
    assert (over_rest.reason, over_rest.domain) == (over_grpc.reason, over_grpc.domain)
    assert stable(over_rest.metadata) == stable(over_grpc.metadata)
    if scenario == "vpc_sc":  # the message carries the per-denial id
        assert rest_message(over_rest).startswith("Request is prohibited by organization's policy.")
    else:
        assert rest_message(over_rest) == over_grpc.message
    assert [d["@type"].rsplit(".", 1)[1] for d in over_rest.details] == [type(d).__name__ for d in over_grpc.details]


def test_wrong_project_is_consumer_invalid_over_rest(start_emulator: Callable[[str], Emulator]) -> None:
    emu = start_emulator("wrong_project")
    err = failure(lambda: generate(rest_prediction(emu, token_for(emu, WORKLOAD)), model_name("demo-prj-typo")))
    assert type(err) is exceptions.Forbidden
    assert (err.reason, rest_message(err)) == (
        "CONSUMER_INVALID",
        "Permission denied on resource project demo-prj-typo.",
    )


@pytest.mark.parametrize("revoked", [pytest.param(True, id="revoked-token"), pytest.param(False, id="no-token")])
def test_401_body_is_the_same_as_grpc(emulator: Emulator, revoked: bool) -> None:
    """Over REST google-auth answers a 401 by refreshing the credentials (a static or anonymous credential cannot:
    RefreshError before any exception from the API), so the body is checked as curl sees it."""
    token = token_for(emulator, WORKLOAD) if revoked else ""
    with emulator.world.lock:
        emulator.world.revoke_tokens(WORKLOAD)
    if revoked:
        over_grpc = failure(lambda: generate(clients(emulator, token=token).prediction))
    else:
        channel = grpc.secure_channel(emulator.grpc.address, grpc.local_channel_credentials())
        bare = aiplatform_v1.PredictionServiceClient(transport=PredictionServiceGrpcTransport(channel=channel))
        over_grpc = failure(lambda: generate(bare))
    url = f"{emulator.rest_url}/v1/{model_name()}:generateContent"
    body = json.dumps({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}).encode()
    status, text = raw_http(url, "POST", body, {"Authorization": f"Bearer {token}"} if revoked else {})
    error = json.loads(text)["error"]
    assert (status, error["code"], error["status"]) == (401, 401, "UNAUTHENTICATED")
    assert error["message"] == over_grpc.message
    assert error["details"] == [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": over_grpc.reason,
            "domain": over_grpc.domain,
            "metadata": dict(over_grpc.metadata),
        }
    ]


def test_rest_success_matches_grpc(emulator: Emulator) -> None:
    token = token_for(emulator, WORKLOAD)
    answer = generate(rest_prediction(emulator, token))
    assert answer.candidates[0].content.parts[0].text == REPLY
    assert answer.candidates[0].finish_reason == aiplatform_v1.Candidate.FinishReason.STOP
    utility = aiplatform_v1.LlmUtilityServiceClient(
        transport="rest", client_options={"api_endpoint": emulator.rest_url}, credentials=Credentials(token=token)
    )
    counted = utility.count_tokens(request={"endpoint": model_name(), "model": model_name(), "contents": prompt("hi")})
    assert counted.total_tokens == 1
    calls = emulator.world.calls
    assert calls["google.cloud.aiplatform.v1.PredictionService.GenerateContent"] == 1
    assert calls["google.cloud.aiplatform.v1.LlmUtilityService.CountTokens"] == 1


def test_genai_on_v1beta1_succeeds_and_is_counted_as_v1beta1(emulator: Emulator) -> None:
    client = genai_client(emulator, token_for(emulator, WORKLOAD))
    assert client.models.generate_content(model=MODEL, contents="hi").text == REPLY
    assert client.models.count_tokens(model=MODEL, contents="hello there").total_tokens == 3
    calls = emulator.world.calls
    assert calls["google.cloud.aiplatform.v1beta1.PredictionService.GenerateContent"] == 1
    assert calls["google.cloud.aiplatform.v1beta1.PredictionService.CountTokens"] == 1


@pytest.mark.parametrize(
    ("scenario", "code", "status", "reason"),
    [
        pytest.param("iam_denied", 403, "PERMISSION_DENIED", "IAM_PERMISSION_DENIED", id="iam_denied"),
        pytest.param("api_disabled", 403, "PERMISSION_DENIED", "SERVICE_DISABLED", id="api_disabled"),
        pytest.param("org_policy", 400, "FAILED_PRECONDITION", None, id="org_policy"),
        pytest.param("quota", 429, "RESOURCE_EXHAUSTED", None, id="quota"),
    ],
)
def test_genai_raises_googles_error_body(
    start_emulator: Callable[[str], Emulator], scenario: str, code: int, status: str, reason: str | None
) -> None:
    emu = start_emulator(scenario)
    over_grpc = failure(lambda: generate(clients(emu).prediction))
    client = genai_client(emu, token_for(emu, WORKLOAD))  # keep a reference: a collected Client closes its session
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=MODEL, contents="hi")
    err = caught.value
    assert (err.code, err.status, err.message) == (code, status, over_grpc.message)
    infos = [d for d in err.details["error"].get("details", []) if d["@type"].endswith("ErrorInfo")]
    assert [i["reason"] for i in infos] == ([reason] if reason else [])


def test_genai_on_v1_uses_the_v1_methods(emulator: Emulator) -> None:
    client = genai_client(emulator, token_for(emulator, WORKLOAD), version="v1")
    assert client.models.generate_content(model=MODEL, contents="hi").text == REPLY
    assert emulator.world.calls["google.cloud.aiplatform.v1.PredictionService.GenerateContent"] == 1
