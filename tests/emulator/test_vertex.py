"""Vertex AI GenerateContent / CountTokens through the real aiplatform GAPIC client: every failure cause raises
the exception, ErrorInfo and message docs/google-behaviour.md gives, the checks run in Google's order, and success looks
like Gemini's answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.api_core import exceptions
from google.cloud import aiplatform_v1
from google.cloud.aiplatform_v1.services.llm_utility_service.transports import LlmUtilityServiceGrpcTransport
from google.cloud.aiplatform_v1.services.prediction_service.transports import PredictionServiceGrpcTransport
from google.oauth2.credentials import Credentials
from google.rpc import error_details_pb2

from devkit.emulated import admin, clients, token_for
from emulator.services.vertex import REPLY
from tests.emulator.support import (
    DEPLOYER,
    GENERATE,
    MODEL,
    NUMBER,
    PROJECT,
    advance,
    call_v1beta1,
    generate,
    model_name,
    prompt,
)
from tests.shared import WORKLOAD

NAME = model_name()
VERTEX = "aiplatform.googleapis.com"
ACTIVATION = f"https://console.developers.google.com/apis/api/{VERTEX}/overview?project={NUMBER}"
BILLING_URL = f"https://console.developers.google.com/billing/enable?project={NUMBER}"

IAM_MESSAGE = (
    f"Permission 'aiplatform.endpoints.predict' denied on resource '//aiplatform.googleapis.com/{NAME}' "
    "(or it may not exist)."
)
DISABLED_MESSAGE = (
    f"Vertex AI API has not been used in project {NUMBER} before or it is disabled. Enable it by visiting "
    f"{ACTIVATION} then retry. If you enabled this API recently, wait a few minutes for the action to propagate "
    "to our systems and retry."
)
BILLING_MESSAGE = (
    f"This API method requires billing to be enabled. Please enable billing on project #{NUMBER} by visiting "
    f"{BILLING_URL} then retry. If you enabled billing for this project recently, wait a few minutes for the "
    "action to propagate to our systems and retry."
)
ORG_POLICY_MESSAGE = (
    f"Organization Policy constraint constraints/vertexai.allowedModels violated for `projects/{NUMBER}` "
    f"attempting to use a disallowed Gen AI model {MODEL}. Please contact your organization administrator to fix "
    f"this violation by adding `publishers/google/models/{MODEL}:predict` to the allowed values. For more info, "
    "see https://cloud.google.com/vertex-ai/generative-ai/docs/control-model-access."
)
NOT_FOUND_MESSAGE = (
    f"Publisher Model `{NAME}` was not found or your project does not have access to it. Please ensure you are "
    "using a valid model version. For more information, see: "
    "https://cloud.google.com/vertex-ai/generative-ai/docs/learn/model-versions"
)
QUOTA_MESSAGE = (
    "Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model with base model: "
    f"{MODEL}. Please submit a quota increase request. "
    "https://cloud.google.com/vertex-ai/docs/generative-ai/quotas-genai."
)
EXPIRED_MESSAGE = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid "
    "authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
)
MISSING_MESSAGE = (
    "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other "
    "valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
)
IAM_METADATA = {"resource": NAME, "permission": "aiplatform.endpoints.predict"}
DISABLED_METADATA = {
    "service": VERTEX,
    "consumer": f"projects/{NUMBER}",
    "containerInfo": NUMBER,
    "serviceTitle": "Vertex AI API",
    "activationUrl": ACTIVATION,
}
BILLING_METADATA = {"service": VERTEX, "consumer": f"projects/{NUMBER}"}


def detail_types(err: exceptions.GoogleAPICallError) -> list[str]:
    return [type(d).__name__ for d in err.details]


# Every failure cause -----------------------------------------------------------------------------------------

CAUSES = [
    pytest.param(
        "iam_denied",
        exceptions.PermissionDenied,
        "IAM_PERMISSION_DENIED",
        VERTEX,
        IAM_METADATA,
        IAM_MESSAGE,
        ["ErrorInfo"],
        id="iam_denied",
    ),
    pytest.param(
        "deny_policy",
        exceptions.PermissionDenied,
        "IAM_PERMISSION_DENIED",
        VERTEX,
        IAM_METADATA,
        IAM_MESSAGE,
        ["ErrorInfo"],
        id="deny_policy-same-as-missing-grant",
    ),
    pytest.param(
        "api_disabled",
        exceptions.PermissionDenied,
        "SERVICE_DISABLED",
        "googleapis.com",
        DISABLED_METADATA,
        DISABLED_MESSAGE,
        ["ErrorInfo", "LocalizedMessage", "Help"],
        id="api_disabled",
    ),
    pytest.param(
        "billing_disabled",
        exceptions.PermissionDenied,
        "BILLING_DISABLED",
        "googleapis.com",
        BILLING_METADATA,
        BILLING_MESSAGE,
        ["ErrorInfo", "LocalizedMessage", "Help"],
        id="billing_disabled",
    ),
    pytest.param(
        "org_policy",
        exceptions.FailedPrecondition,
        None,
        None,
        {},
        ORG_POLICY_MESSAGE,
        [],
        id="org_policy-400-no-details",
    ),
    pytest.param(
        "model_unavailable",
        exceptions.NotFound,
        None,
        None,
        {},
        NOT_FOUND_MESSAGE,
        [],
        id="model_unavailable-404-no-details",
    ),
    pytest.param(
        "quota",
        exceptions.ResourceExhausted,
        None,
        None,
        {},
        QUOTA_MESSAGE,
        [],
        id="quota-429-no-details",
    ),
]


@pytest.mark.parametrize(("scenario", "exc_type", "reason", "domain", "metadata", "message", "details"), CAUSES)
def test_each_cause_raises_googles_error(
    start_emulator: Callable[[str], Any],
    scenario: str,
    exc_type: type[exceptions.GoogleAPICallError],
    reason: str | None,
    domain: str | None,
    metadata: dict[str, str],
    message: str,
    details: list[str],
) -> None:
    emu = start_emulator(scenario)
    with pytest.raises(exc_type) as caught:
        generate(clients(emu).prediction)
    err = caught.value
    assert type(err) is exc_type
    assert (err.reason, err.domain) == (reason, domain)
    assert dict(err.metadata or {}) == metadata
    assert err.message == message
    assert detail_types(err) == details


def test_wrong_project_is_consumer_invalid(start_emulator: Callable[[str], Any]) -> None:
    emu = start_emulator("wrong_project")
    project = emu.world.default_project  # what the runtime reports: a project the world doesn't have
    assert project == "demo-prj-typo"
    with pytest.raises(exceptions.PermissionDenied) as caught:
        generate(clients(emu).prediction, model_name(project))
    err = caught.value
    assert (err.reason, err.domain) == ("CONSUMER_INVALID", "googleapis.com")
    assert dict(err.metadata) == {
        "containerInfo": "demo-prj-typo",
        "consumer": "projects/demo-prj-typo",
        "service": VERTEX,
    }
    assert err.message == "Permission denied on resource project demo-prj-typo."
    assert detail_types(err) == ["ErrorInfo", "LocalizedMessage", "Help"]
    help_link = err.details[2]
    assert [(link.description, link.url) for link in help_link.links] == [
        ("Google developers console", "https://console.developers.google.com")
    ]


def test_vpc_sc_denial_carries_the_unique_id(start_emulator: Callable[[str], Any]) -> None:
    emu = start_emulator("vpc_sc")
    with pytest.raises(exceptions.PermissionDenied) as caught:
        generate(clients(emu).prediction)
    err = caught.value
    assert (err.reason, err.domain) == ("SECURITY_POLICY_VIOLATED", "googleapis.com")
    metadata = dict(err.metadata)
    uid = metadata["uid"]
    assert sorted(metadata) == ["consumer", "service", "troubleshootToken", "uid"]
    assert (metadata["service"], metadata["consumer"]) == (VERTEX, f"projects/{NUMBER}")
    assert metadata["troubleshootToken"]
    assert err.message == f"Request is prohibited by organization's policy. vpcServiceControlsUniqueIdentifier: {uid}"
    assert detail_types(err) == ["PreconditionFailure", "ErrorInfo"]
    violation = err.details[0].violations[0]
    assert (violation.type, violation.description) == ("VPC_SERVICE_CONTROLS", uid)
    with pytest.raises(exceptions.PermissionDenied) as again:
        generate(clients(emu).prediction)
    assert dict(again.value.metadata)["uid"] != uid  # one id per denial, as Google issues them


def test_help_links_name_the_console_page(start_emulator: Callable[[str], Any]) -> None:
    emu = start_emulator("api_disabled")
    with pytest.raises(exceptions.PermissionDenied) as caught:
        generate(clients(emu).prediction)
    help_link = next(d for d in caught.value.details if isinstance(d, error_details_pb2.Help))
    localized = next(d for d in caught.value.details if isinstance(d, error_details_pb2.LocalizedMessage))
    assert [(link.description, link.url) for link in help_link.links] == [
        ("Google developers console API activation", ACTIVATION)
    ]
    assert (localized.locale, localized.message) == ("en-US", DISABLED_MESSAGE)


# Credentials --------------------------------------------------------------------------------------------------


def _expect_unauthenticated(call: Callable[[], Any], reason: str, message: str, method: str = GENERATE) -> None:
    with pytest.raises(exceptions.Unauthenticated) as caught:
        call()
    err = caught.value
    assert err.code == 401
    assert (err.reason, err.domain) == (reason, "googleapis.com")
    assert dict(err.metadata) == {"method": method, "service": VERTEX}
    assert err.message == message


def test_missing_token_is_credentials_missing(emulator: Any) -> None:
    # A local channel with no call credentials: the request carries no Authorization header at all.
    channel = grpc.secure_channel(emulator.grpc.address, grpc.local_channel_credentials())
    client = aiplatform_v1.PredictionServiceClient(transport=PredictionServiceGrpcTransport(channel=channel))
    _expect_unauthenticated(lambda: generate(client), "CREDENTIALS_MISSING", MISSING_MESSAGE)


@pytest.mark.parametrize(
    ("seconds", "expired"),
    [pytest.param(3599, False, id="1s-before-ttl-ok"), pytest.param(3600, True, id="at-ttl-expired")],
)
def test_token_expires_after_its_ttl_on_the_virtual_clock(emulator: Any, seconds: int, expired: bool) -> None:
    prediction = clients(emulator).prediction  # token minted now, valid for the scenario's 3600 s
    advance(emulator, seconds)
    if expired:
        _expect_unauthenticated(lambda: generate(prediction), "ACCESS_TOKEN_EXPIRED", EXPIRED_MESSAGE)
    else:
        assert generate(prediction).candidates


def test_credentials_expired_scenario_revokes_tokens_a_minute_in(start_emulator: Callable[[str], Any]) -> None:
    emu = start_emulator("credentials_expired")
    prediction = clients(emu).prediction
    assert generate(prediction).candidates  # still fine at +0
    advance(emu, 61)  # past the +1m revoke_tokens event
    _expect_unauthenticated(lambda: generate(prediction), "ACCESS_TOKEN_EXPIRED", EXPIRED_MESSAGE)


@pytest.mark.parametrize(
    ("token", "revoke"),
    [
        pytest.param("issued", True, id="revoked-by-admin-api"),
        pytest.param("ya29.never-issued-by-the-emulator", False, id="unknown-token"),
    ],
)
def test_revoked_or_unknown_token_is_rejected(emulator: Any, token: str, revoke: bool) -> None:
    prediction = clients(emulator, token=token_for(emulator, WORKLOAD) if token == "issued" else token).prediction
    if revoke:
        assert admin(emulator, "POST", "tokens:revoke", {"email": WORKLOAD}) == (200, {"revoked": 1})
    _expect_unauthenticated(lambda: generate(prediction), "ACCESS_TOKEN_EXPIRED", EXPIRED_MESSAGE)


# Check order ---------------------------------------------------------------------------------------------------

DENIED, PRECONDITION, NOT_FOUND = exceptions.PermissionDenied, exceptions.FailedPrecondition, exceptions.NotFound
ORDER = [
    pytest.param("api_disabled", DEPLOYER, MODEL, {}, DENIED, "SERVICE_DISABLED", id="api-disabled-beats-no-grant"),
    pytest.param(
        "api_disabled",
        WORKLOAD,
        MODEL,
        {"projects": {PROJECT: {"billing": False}}},
        DENIED,
        "SERVICE_DISABLED",
        id="api-disabled-beats-billing",
    ),
    pytest.param("billing_disabled", DEPLOYER, MODEL, {}, DENIED, "BILLING_DISABLED", id="billing-beats-no-grant"),
    pytest.param("vpc_sc", DEPLOYER, MODEL, {}, DENIED, "SECURITY_POLICY_VIOLATED", id="vpc-sc-beats-no-grant"),
    pytest.param("org_policy", DEPLOYER, MODEL, {}, DENIED, "IAM_PERMISSION_DENIED", id="iam-beats-org-policy"),
    pytest.param("org_policy", WORKLOAD, "no-such-model", {}, PRECONDITION, None, id="org-policy-beats-404"),
    pytest.param("quota", WORKLOAD, "gemini-2.0-flash-001", {}, NOT_FOUND, None, id="retired-model-404-beats-quota"),
    pytest.param("iam_denied", WORKLOAD, "no-such-model", {}, DENIED, "IAM_PERMISSION_DENIED", id="iam-beats-404"),
]


@pytest.mark.parametrize(("scenario", "email", "model", "patch", "exc_type", "reason"), ORDER)
def test_checks_run_in_googles_order(
    start_emulator: Callable[[str], Any],
    scenario: str,
    email: str,
    model: str,
    patch: dict[str, Any],
    exc_type: type[exceptions.GoogleAPICallError],
    reason: str | None,
) -> None:
    emu = start_emulator(scenario)
    if patch:
        assert admin(emu, "PATCH", "world", patch)[0] == 200
    with pytest.raises(exc_type) as caught:
        generate(clients(emu, email=email).prediction, model_name(model=model))
    assert type(caught.value) is exc_type
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    ("model", "location"),
    [
        pytest.param(MODEL, "us-central1", id="served-model"),
        pytest.param("gemini-2.0-flash-001", "us-central1", id="retired-model"),
        pytest.param("gemini-99-ultra", "us-central1", id="model-that-never-existed"),
        pytest.param("gemini-3-pro-preview", "europe-west4", id="model-not-in-location"),
    ],
)
def test_iam_denial_is_the_same_whether_or_not_the_model_exists(
    start_emulator: Callable[[str], Any], model: str, location: str
) -> None:
    emu = start_emulator("iam_denied")
    name = model_name(model=model, location=location)
    with pytest.raises(exceptions.PermissionDenied) as caught:
        generate(clients(emu).prediction, name)
    assert caught.value.reason == "IAM_PERMISSION_DENIED"
    assert dict(caught.value.metadata) == {"resource": name, "permission": "aiplatform.endpoints.predict"}
    assert caught.value.message == (
        f"Permission 'aiplatform.endpoints.predict' denied on resource '//aiplatform.googleapis.com/{name}' "
        "(or it may not exist)."
    )


def test_quota_is_per_minute(emulator: Any) -> None:
    assert admin(emulator, "PATCH", "world", {"quota": {f"serviceAccount:{WORKLOAD}": 2}})[0] == 200
    prediction = clients(emulator).prediction
    generate(prediction)
    generate(prediction)
    with pytest.raises(exceptions.ResourceExhausted):
        generate(prediction)
    advance(emulator, 60)
    assert generate(prediction).candidates


# Success -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("max_tokens", "text", "finish", "out_tokens"),
    [
        pytest.param(0, REPLY, aiplatform_v1.Candidate.FinishReason.STOP, len(REPLY.split()), id="whole-answer-STOP"),
        pytest.param(1, "OK.", aiplatform_v1.Candidate.FinishReason.MAX_TOKENS, 1, id="max_output_tokens=1"),
    ],
)
def test_success_returns_a_candidate_and_usage(
    emulator: Any, max_tokens: int, text: str, finish: aiplatform_v1.Candidate.FinishReason, out_tokens: int
) -> None:
    config = aiplatform_v1.GenerationConfig(max_output_tokens=max_tokens) if max_tokens else None
    response = clients(emulator).prediction.generate_content(
        request=aiplatform_v1.GenerateContentRequest(
            model=NAME, contents=prompt("Reply with OK."), generation_config=config
        )
    )
    (candidate,) = response.candidates
    assert candidate.content.role == "model"
    assert [p.text for p in candidate.content.parts] == [text]
    assert candidate.finish_reason == finish
    usage = response.usage_metadata
    assert (usage.prompt_token_count, usage.candidates_token_count) == (4, out_tokens)  # 14 chars ≈ 4 tokens
    assert usage.total_token_count == 4 + out_tokens
    assert response.model_version == MODEL


def test_empty_contents_is_invalid_argument(emulator: Any) -> None:
    with pytest.raises(exceptions.InvalidArgument) as caught:
        clients(emulator).prediction.generate_content(model=NAME, contents=[])
    assert caught.value.message == (
        "Unable to submit request because it has an empty contents field. Learn more: "
        "https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/gemini"
    )


# CountTokens --------------------------------------------------------------------------------------------------


def _count(emu: Any) -> aiplatform_v1.CountTokensResponse:
    """v1 CountTokens lives on LlmUtilityService (v1beta1 has it on PredictionService)."""
    transport = LlmUtilityServiceGrpcTransport(
        host=emu.grpc.address,
        credentials=Credentials(token=token_for(emu, WORKLOAD)),
        ssl_channel_credentials=grpc.local_channel_credentials(),
    )
    request = aiplatform_v1.CountTokensRequest(endpoint=NAME, model=NAME, contents=prompt("count these words"))
    return aiplatform_v1.LlmUtilityServiceClient(transport=transport).count_tokens(request=request)


def test_count_tokens_succeeds(emulator: Any) -> None:
    response = _count(emulator)
    assert (response.total_tokens, response.total_billable_characters) == (5, 15)


@pytest.mark.parametrize(
    ("scenario", "reason"),
    [
        pytest.param("iam_denied", "IAM_PERMISSION_DENIED", id="iam_denied"),
        pytest.param("api_disabled", "SERVICE_DISABLED", id="api_disabled"),
    ],
)
def test_count_tokens_is_checked_like_generate_content(
    start_emulator: Callable[[str], Any], scenario: str, reason: str
) -> None:
    emu = start_emulator(scenario)
    with pytest.raises(exceptions.PermissionDenied) as caught:
        _count(emu)
    assert caught.value.reason == reason
    if reason == "IAM_PERMISSION_DENIED":  # the same permission as GenerateContent
        assert caught.value.message == IAM_MESSAGE


# v1beta1 (google-genai's default API version), over a raw gRPC channel with the v1 message types --------------


def test_v1beta1_generate_content_succeeds(emulator: Any) -> None:
    request = aiplatform_v1.GenerateContentRequest(model=NAME, contents=prompt())
    response = call_v1beta1(
        emulator, "GenerateContent", request, aiplatform_v1.GenerateContentResponse, token_for(emulator, WORKLOAD)
    )
    assert [p.text for p in response.candidates[0].content.parts] == [REPLY]


def test_v1beta1_errors_match_v1(start_emulator: Callable[[str], Any]) -> None:
    emu = start_emulator("iam_denied")
    request = aiplatform_v1.GenerateContentRequest(model=NAME, contents=prompt())
    with pytest.raises(exceptions.PermissionDenied) as caught:
        call_v1beta1(emu, "GenerateContent", request, aiplatform_v1.GenerateContentResponse, token_for(emu, WORKLOAD))
    assert (caught.value.reason, caught.value.message) == ("IAM_PERMISSION_DENIED", IAM_MESSAGE)
    assert dict(caught.value.metadata) == IAM_METADATA


@pytest.mark.parametrize(
    ("method", "request_obj", "response_type"),
    [
        pytest.param(
            "GenerateContent",
            aiplatform_v1.GenerateContentRequest(model=NAME, contents=prompt()),
            aiplatform_v1.GenerateContentResponse,
            id="GenerateContent",
        ),
        pytest.param(
            "CountTokens",
            aiplatform_v1.CountTokensRequest(endpoint=NAME, model=NAME, contents=prompt()),
            aiplatform_v1.CountTokensResponse,
            id="CountTokens",
        ),
    ],
)
def test_v1beta1_missing_token_names_the_v1beta1_method(
    emulator: Any, method: str, request_obj: Any, response_type: Any
) -> None:
    _expect_unauthenticated(
        lambda: call_v1beta1(emulator, method, request_obj, response_type, None),
        "CREDENTIALS_MISSING",
        MISSING_MESSAGE,
        method=f"google.cloud.aiplatform.v1beta1.PredictionService.{method}",
    )
