"""classify(error) for every error body of docs/google-behaviour.md, on both surfaces the real clients raise.

gRPC: a fake PredictionService aborts with the row's google.rpc.Status (details packed as Any in the
grpc-status-details-bin trailer) and a real aiplatform_v1 client over an insecure channel raises what
google-api-core builds from it. REST: a fake HTTP server answers with the row's JSON error body and the same
client on its REST transport raises what every GAPIC REST transport raises. No Google code is mocked.
"""

from __future__ import annotations

import concurrent.futures
import json
import threading
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

import google.auth.credentials
import grpc
import pytest
from google.api_core import exceptions as core
from google.auth import exceptions as auth
from google.cloud import aiplatform_v1
from google.cloud.aiplatform_v1.services.prediction_service.transports import PredictionServiceGrpcTransport
from google.cloud.aiplatform_v1.types import prediction_service as ps
from google.protobuf import any_pb2, json_format
from google.rpc import error_details_pb2, status_pb2  # error_details_pb2 registers the detail types for ParseDict
from grpc_status import rpc_status

from function.causes import Cause, Failure, _cause, classify

assert error_details_pb2  # imported for its side effect

P, N = "demo-proj", "123456789012"
MODEL = f"projects/{P}/locations/us-central1/publishers/google/models/gemini-2.5-flash"
SA = f"canary@{P}.iam.gserviceaccount.com"
T = "type.googleapis.com/google.rpc."
ACTIVATION = f"https://console.developers.google.com/apis/api/aiplatform.googleapis.com/overview?project={N}"
BILLING = f"https://console.developers.google.com/billing/enable?project={N}"
UID = "vQeeOpy3XGe3WLNxUJ1CCZJqkPNp_5Yr9FB-1jgbyWTyxaJ_wTcP0A"  # real shape: base64url, '_' and '-'


def error_info(reason: str, domain: str, **metadata: str) -> dict[str, Any]:
    return {"@type": T + "ErrorInfo", "reason": reason, "domain": domain, "metadata": metadata}


def help_link(description: str, url: str) -> dict[str, Any]:
    return {"@type": T + "Help", "links": [{"description": description, "url": url}]}


def localized(message: str) -> dict[str, Any]:
    return {"@type": T + "LocalizedMessage", "locale": "en-US", "message": message}


@dataclass(frozen=True, kw_only=True)
class Row:
    id: str
    http: int
    status: str  # the canonical code name: grpc.StatusCode member and the REST body's "status"
    message: str
    details: tuple[dict[str, Any], ...]
    cause: Cause
    reason: str | None = None
    domain: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    links: tuple[dict[str, str], ...] = ()
    violations: tuple[dict[str, str], ...] = ()
    rest_stream: bool = False  # streamGenerateContent's [{"error": ...}] array form (REST only)
    grpc_only: bool = False  # raised by the gRPC client itself; a REST body never says this


IAM_MESSAGE = (
    "Permission 'aiplatform.endpoints.predict' denied on resource "
    f"'//aiplatform.googleapis.com/{MODEL}' (or it may not exist)."
)
DISABLED_MESSAGE = (
    f"Vertex AI API has not been used in project {N} before or it is disabled. Enable it by visiting "
    f"{ACTIVATION} then retry. If you enabled this API recently, wait a few minutes for the action to propagate "
    "to our systems and retry."
)
DISABLED_INFO = error_info(
    "SERVICE_DISABLED",
    "googleapis.com",
    service="aiplatform.googleapis.com",
    consumer=f"projects/{N}",
    containerInfo=N,
    serviceTitle="Vertex AI API",
    activationUrl=ACTIVATION,
)
DISABLED_HELP = help_link("Google developers console API activation", ACTIVATION)
BILLING_MESSAGE = (
    f"This API method requires billing to be enabled. Please enable billing on project #{N} by visiting "
    f"{BILLING} then retry. If you enabled billing for this project recently, wait a few minutes for the action "
    "to propagate to our systems and retry."
)
VPC_MESSAGE = f"Request is prohibited by organization's policy. vpcServiceControlsUniqueIdentifier: {UID}"
ORG_MESSAGE = (
    f"Organization Policy constraint constraints/vertexai.allowedModels violated for `projects/{N}` attempting to "
    "use a disallowed Gen AI model gemini-2.5-flash. Please contact your organization administrator to fix this "
    "violation by adding `publishers/google/models/gemini-2.5-flash:predict` to the allowed values. For more "
    "info, see https://cloud.google.com/vertex-ai/generative-ai/docs/control-model-access."
)
NOT_FOUND_MESSAGE = (
    f"Publisher Model `{MODEL}` was not found or your project does not have access to it. Please ensure you are "
    "using a valid model version. For more information, see: "
    "https://cloud.google.com/vertex-ai/generative-ai/docs/learn/model-versions"
)
UNAUTHENTICATED_MESSAGE = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid "
    "authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
)
GENERATE = "google.cloud.aiplatform.v1beta1.PredictionService.GenerateContent"
DSQ_MESSAGE = (  # Dynamic Shared Quota: google-gemini/gemini-cli#15911, #15498, #14811
    "Resource exhausted. Please try again later. Please refer to "
    "https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details."
)
SCOPES_MESSAGE = "Request had insufficient authentication scopes."

ROWS = [
    Row(
        id="iam-permission-denied",
        http=403,
        status="PERMISSION_DENIED",
        message=IAM_MESSAGE,
        details=(
            error_info(
                "IAM_PERMISSION_DENIED",
                "aiplatform.googleapis.com",
                resource=MODEL,
                permission="aiplatform.endpoints.predict",
            ),
        ),
        cause=Cause.IAM_PERMISSION_DENIED,
        reason="IAM_PERMISSION_DENIED",
        domain="aiplatform.googleapis.com",
        metadata={"resource": MODEL, "permission": "aiplatform.endpoints.predict"},
    ),
    Row(
        id="iam-permission-denied-no-details",  # an older front end: the message alone
        http=403,
        status="PERMISSION_DENIED",
        message=IAM_MESSAGE,
        details=(),
        cause=Cause.IAM_PERMISSION_DENIED,
    ),
    Row(
        id="service-disabled-errorinfo-first",
        http=403,
        status="PERMISSION_DENIED",
        message=DISABLED_MESSAGE,
        details=(DISABLED_INFO, localized(DISABLED_MESSAGE), DISABLED_HELP),
        cause=Cause.API_DISABLED,
        reason="SERVICE_DISABLED",
        domain="googleapis.com",
        metadata={
            "service": "aiplatform.googleapis.com",
            "consumer": f"projects/{N}",
            "containerInfo": N,
            "serviceTitle": "Vertex AI API",
            "activationUrl": ACTIVATION,
        },
        links=({"description": "Google developers console API activation", "url": ACTIVATION},),
    ),
    Row(
        id="service-disabled-help-first",
        http=403,
        status="PERMISSION_DENIED",
        message=DISABLED_MESSAGE,
        details=(DISABLED_HELP, localized(DISABLED_MESSAGE), DISABLED_INFO),
        cause=Cause.API_DISABLED,
        reason="SERVICE_DISABLED",
        domain="googleapis.com",
        metadata={
            "service": "aiplatform.googleapis.com",
            "consumer": f"projects/{N}",
            "containerInfo": N,
            "serviceTitle": "Vertex AI API",
            "activationUrl": ACTIVATION,
        },
        links=({"description": "Google developers console API activation", "url": ACTIVATION},),
    ),
    Row(
        id="billing-disabled",
        http=403,
        status="PERMISSION_DENIED",
        message=BILLING_MESSAGE,
        details=(
            error_info(
                "BILLING_DISABLED", "googleapis.com", service="aiplatform.googleapis.com", consumer=f"projects/{N}"
            ),
            localized(BILLING_MESSAGE),
            help_link("Google developers console billing", BILLING),
        ),
        cause=Cause.BILLING_DISABLED,
        reason="BILLING_DISABLED",
        domain="googleapis.com",
        metadata={"service": "aiplatform.googleapis.com", "consumer": f"projects/{N}"},
        links=({"description": "Google developers console billing", "url": BILLING},),
    ),
    Row(
        id="billing-account-closed",
        http=403,
        status="PERMISSION_DENIED",
        message="The billing account for the owning project is disabled in state closed",
        details=(),
        cause=Cause.BILLING_DISABLED,
    ),
    Row(
        id="vpc-sc-security-policy-violated",
        http=403,
        status="PERMISSION_DENIED",
        message=VPC_MESSAGE,
        details=(
            {
                "@type": T + "PreconditionFailure",
                "violations": [{"type": "VPC_SERVICE_CONTROLS", "description": UID}],
            },
            error_info(
                "SECURITY_POLICY_VIOLATED",
                "googleapis.com",
                uid=UID,
                service="aiplatform.googleapis.com",
                consumer=f"projects/{N}",
                troubleshootToken="AbCd-token",
            ),
        ),
        cause=Cause.VPC_SC,
        reason="SECURITY_POLICY_VIOLATED",
        domain="googleapis.com",
        metadata={
            "uid": UID,
            "service": "aiplatform.googleapis.com",
            "consumer": f"projects/{N}",
            "troubleshootToken": "AbCd-token",
        },
        violations=({"type": "VPC_SERVICE_CONTROLS", "description": UID},),
    ),
    Row(
        id="consumer-invalid",
        http=403,
        status="PERMISSION_DENIED",
        message="Permission denied on resource project no-such-proj.",
        details=(
            error_info(
                "CONSUMER_INVALID",
                "googleapis.com",
                containerInfo="no-such-proj",
                consumer="projects/no-such-proj",
                service="aiplatform.googleapis.com",
            ),
            localized("Permission denied on resource project no-such-proj."),
            help_link("Google developers console", "https://console.developers.google.com"),
        ),
        cause=Cause.WRONG_PROJECT,
        reason="CONSUMER_INVALID",
        domain="googleapis.com",
        metadata={
            "containerInfo": "no-such-proj",
            "consumer": "projects/no-such-proj",
            "service": "aiplatform.googleapis.com",
        },
        links=({"description": "Google developers console", "url": "https://console.developers.google.com"},),
    ),
    Row(
        id="org-policy-allowed-models",
        http=400,
        status="FAILED_PRECONDITION",
        message=ORG_MESSAGE,
        details=(),
        cause=Cause.ORG_POLICY,
    ),
    Row(
        id="project-not-allowed-publisher-model",  # epam/ai-dial-adapter-vertexai#204
        http=400,
        status="FAILED_PRECONDITION",
        message=f"Project `{P}` is not allowed to use Publisher Model `{MODEL}`",
        details=(),
        cause=Cause.MODEL_UNAVAILABLE,
    ),
    Row(
        id="project-not-allowed-publisher-model-unnamed",  # google/oss-fuzz-gen#369: the project is not named
        http=400,
        status="FAILED_PRECONDITION",
        message=f"Project is not allowed to use Publisher Model `{MODEL}`",
        details=(),
        cause=Cause.MODEL_UNAVAILABLE,
    ),
    Row(
        id="publisher-model-not-found",  # google-gemini/gemini-cli#14262
        http=404,
        status="NOT_FOUND",
        message=NOT_FOUND_MESSAGE,
        details=(),
        cause=Cause.MODEL_UNAVAILABLE,
    ),
    Row(
        id="capacity-dsq-resource-exhausted-try-later",
        http=429,
        status="RESOURCE_EXHAUSTED",
        message=DSQ_MESSAGE,
        details=(),
        cause=Cause.CAPACITY,
    ),
    Row(
        id="capacity-dsq-documented-text",  # the pay-as-you-go row of the "Error code 429" page
        http=429,
        status="RESOURCE_EXHAUSTED",
        message="Resource exhausted, please try again later.",
        details=(),
        cause=Cause.CAPACITY,
    ),
    Row(
        id="capacity-resource-has-been-exhausted",  # names no quota: google-gemini/gemini-cli#19976, #1906
        http=429,
        status="RESOURCE_EXHAUSTED",
        message="Resource has been exhausted (e.g. check quota).",
        details=(),
        cause=Cause.CAPACITY,
    ),
    Row(
        id="capacity-temporarily-out-of-capacity",  # googleapis/google-cloud-java#11195, #11054 (gRPC)
        http=429,
        status="RESOURCE_EXHAUSTED",
        message="Unable to submit request because the service is temporarily out of capacity. Try again later.",
        details=(),
        cause=Cause.CAPACITY,
    ),
    Row(
        id="capacity-no-capacity-available-unknown-reason",  # google-gemini/gemini-cli#19911: a reason from another
        http=429,  # domain falls through to the message
        status="RESOURCE_EXHAUSTED",
        message="No capacity available for model gemini-2.5-flash on the server",
        details=(error_info("MODEL_CAPACITY_EXHAUSTED", "cloudcode-pa.googleapis.com", model="gemini-2.5-flash"),),
        cause=Cause.CAPACITY,
        reason="MODEL_CAPACITY_EXHAUSTED",
        domain="cloudcode-pa.googleapis.com",
        metadata={"model": "gemini-2.5-flash"},
    ),
    Row(
        id="capacity-bare-429",  # a 429 naming no quota: Gemini on pay-as-you-go has none to exceed
        http=429,
        status="RESOURCE_EXHAUSTED",
        message="Too Many Requests",
        details=(),
        cause=Cause.CAPACITY,
    ),
    Row(
        id="quota-exceeded-per-project-per-base-model",  # GoogleCloudPlatform/Open_Data_QnA#61
        http=429,
        status="RESOURCE_EXHAUSTED",
        message="Quota exceeded for "
        "aiplatform.googleapis.com/generate_content_requests_per_minute_per_project_per_base_model "
        "with base model: gemini-pro. Please submit a quota increase request. "
        "https://cloud.google.com/vertex-ai/docs/generative-ai/quotas-genai.",
        details=(),
        cause=Cause.QUOTA,
    ),
    Row(
        # google-gemini/deprecated-generative-ai-python#206 (Gemini API's body)
        id="quota-rate-limit-exceeded-errorinfo",
        http=429,
        status="RESOURCE_EXHAUSTED",
        message="Quota exceeded for quota metric 'Generate Content API requests per minute' and limit 'GenerateContent "
        f"request limit per minute for a region' of service 'generativelanguage.googleapis.com' for consumer "
        f"'project_number:{N}'.",
        details=(
            error_info(
                "RATE_LIMIT_EXCEEDED",
                "googleapis.com",
                service="generativelanguage.googleapis.com",
                quota_metric="generativelanguage.googleapis.com/generate_content_requests",
                quota_location="us-west4",
                quota_limit="GenerateContentRequestsPerMinutePerProjectPerRegion",
                quota_limit_value="0",
                consumer=f"projects/{N}",
            ),
            help_link("Request a higher quota limit.", "https://cloud.google.com/docs/quota#requesting_higher_quota"),
        ),
        cause=Cause.QUOTA,
        reason="RATE_LIMIT_EXCEEDED",
        domain="googleapis.com",
        metadata={
            "service": "generativelanguage.googleapis.com",
            "quota_metric": "generativelanguage.googleapis.com/generate_content_requests",
            "quota_location": "us-west4",
            "quota_limit": "GenerateContentRequestsPerMinutePerProjectPerRegion",
            "quota_limit_value": "0",
            "consumer": f"projects/{N}",
        },
        links=(
            {
                "description": "Request a higher quota limit.",
                "url": "https://cloud.google.com/docs/quota#requesting_higher_quota",
            },
        ),
    ),
    Row(
        id="quota-failure-detail-names-the-quota",  # google/rpc/error_details.proto QuotaFailure, generic message
        http=429,
        status="RESOURCE_EXHAUSTED",
        message="Resource has been exhausted (e.g. check quota).",
        details=(
            {
                "@type": T + "QuotaFailure",
                "violations": [{"subject": f"projects/{N}", "description": "generate_content_requests_per_minute"}],
            },
        ),
        cause=Cause.QUOTA,
        violations=({"subject": f"projects/{N}", "description": "generate_content_requests_per_minute"},),
    ),
    Row(
        id="quota-provisioned-throughput-exceeded",  # the Provisioned Throughput row of the "Error code 429" page
        http=429,
        status="RESOURCE_EXHAUSTED",
        message="Too many requests. Exceeded the Provisioned Throughput.",
        details=(),
        cause=Cause.QUOTA,
    ),
    Row(
        id="quota-exceeded-for-metric",
        http=429,
        status="RESOURCE_EXHAUSTED",
        message="Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model with base "
        "model: gemini-2.5-flash. Please submit a quota increase request.",
        details=(),
        cause=Cause.QUOTA,
    ),
    Row(
        id="capacity-stream-array-body",  # google-gemini/gemini-cli#14811: [{"error": {...}}]
        http=429,
        status="RESOURCE_EXHAUSTED",
        message=DSQ_MESSAGE,
        details=(),
        cause=Cause.CAPACITY,
        rest_stream=True,
    ),
    Row(
        id="unauthenticated-access-token-expired",
        http=401,
        status="UNAUTHENTICATED",
        message=UNAUTHENTICATED_MESSAGE,
        details=(
            error_info("ACCESS_TOKEN_EXPIRED", "googleapis.com", method=GENERATE, service="aiplatform.googleapis.com"),
        ),
        cause=Cause.CREDENTIALS,
        reason="ACCESS_TOKEN_EXPIRED",
        domain="googleapis.com",
        metadata={"method": GENERATE, "service": "aiplatform.googleapis.com"},
    ),
    Row(
        id="unauthenticated-api-key-credentials-missing",
        http=401,
        status="UNAUTHENTICATED",
        message="API keys are not supported by this API. Expected OAuth2 access token or other authentication "
        "credentials that assert a principal. See https://cloud.google.com/docs/authentication",
        details=(
            error_info("CREDENTIALS_MISSING", "googleapis.com", method=GENERATE, service="aiplatform.googleapis.com"),
        ),
        cause=Cause.CREDENTIALS,
        reason="CREDENTIALS_MISSING",
        domain="googleapis.com",
        metadata={"method": GENERATE, "service": "aiplatform.googleapis.com"},
    ),
    Row(
        id="api-key-service-blocked",
        http=403,
        status="PERMISSION_DENIED",
        message="Requests to this API aiplatform.googleapis.com method "
        "google.cloud.aiplatform.v1.PredictionService.GenerateContent are blocked.",
        details=(
            error_info(
                "API_KEY_SERVICE_BLOCKED",
                "googleapis.com",
                service="aiplatform.googleapis.com",
                consumer=f"projects/{N}",
            ),
        ),
        cause=Cause.CREDENTIALS,
        reason="API_KEY_SERVICE_BLOCKED",
        domain="googleapis.com",
        metadata={"service": "aiplatform.googleapis.com", "consumer": f"projects/{N}"},
    ),
    Row(
        id="scopes-insufficient-errorinfo",  # NoeFabris/opencode-antigravity-auth#81 (service swapped for Vertex's)
        http=403,
        status="PERMISSION_DENIED",
        message=SCOPES_MESSAGE,
        details=(
            error_info(
                "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
                "googleapis.com",
                service="aiplatform.googleapis.com",
                method="google.cloud.aiplatform.v1.PredictionService.GenerateContent",
            ),
        ),
        cause=Cause.CREDENTIALS,
        reason="ACCESS_TOKEN_SCOPE_INSUFFICIENT",
        domain="googleapis.com",
        metadata={
            "service": "aiplatform.googleapis.com",
            "method": "google.cloud.aiplatform.v1.PredictionService.GenerateContent",
        },
    ),
    Row(
        id="scopes-insufficient-message-only",  # googleapis/python-aiplatform#902, google-gemini/gemini-cli#1857
        http=403,
        status="PERMISSION_DENIED",
        message=SCOPES_MESSAGE,
        details=(),
        cause=Cause.CREDENTIALS,
    ),
    Row(
        id="api-key-invalid",  # Aider-AI/aider#2799 (litellm vertex_ai_beta with an API key)
        http=400,
        status="INVALID_ARGUMENT",
        message="API key not valid. Please pass a valid API key.",
        details=(
            error_info("API_KEY_INVALID", "googleapis.com", service="generativelanguage.googleapis.com"),
            localized("API key not valid. Please pass a valid API key."),
        ),
        cause=Cause.CREDENTIALS,
        reason="API_KEY_INVALID",
        domain="googleapis.com",
        metadata={"service": "generativelanguage.googleapis.com"},
    ),
    Row(
        id="restrict-service-usage",
        http=403,
        status="PERMISSION_DENIED",
        message=f"Request is disallowed by organization's constraints/gcp.restrictServiceUsage constraint for "
        f"'projects/{N}' attempting to use service 'aiplatform.googleapis.com'.",
        details=(
            error_info(
                "RESOURCE_USAGE_RESTRICTION_VIOLATED",
                "googleapis.com",
                consumer=f"projects/{N}",
                service="aiplatform.googleapis.com",
            ),
        ),
        cause=Cause.ORG_POLICY,
        reason="RESOURCE_USAGE_RESTRICTION_VIOLATED",
        domain="googleapis.com",
        metadata={"consumer": f"projects/{N}", "service": "aiplatform.googleapis.com"},
    ),
    Row(
        id="grpc-plugin-invalid-grant",
        http=503,
        status="UNAVAILABLE",
        message="Getting metadata from plugin failed with error: ('invalid_grant: Token has been expired or revoked.', "
        "{'error': 'invalid_grant', 'error_description': 'Token has been expired or revoked.'})",
        details=(),
        cause=Cause.CREDENTIALS,
        grpc_only=True,
    ),
    Row(
        id="unavailable",
        http=503,
        status="UNAVAILABLE",
        message="The service is currently unavailable.",
        details=(),
        cause=Cause.UNAVAILABLE,
    ),
    Row(
        id="deadline-exceeded",
        http=504,
        status="DEADLINE_EXCEEDED",
        message="Deadline Exceeded",
        details=(),
        cause=Cause.DEADLINE,
    ),
    Row(
        id="internal-error-encountered",  # transient, Google's side: deprecated-generative-ai-python#467
        http=500,
        status="INTERNAL",
        message="Internal error encountered.",
        details=(),
        cause=Cause.UNAVAILABLE,
    ),
    Row(
        id="internal-error-has-occurred",  # the Gemini API's wording: deprecated-generative-ai-python#573
        http=500,
        status="INTERNAL",
        message="An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting",
        details=(),
        cause=Cause.UNAVAILABLE,
    ),
    Row(
        id="internal-client-side-stays-unknown",  # what grpc's own channel says of a corrupt response: not Google's
        http=500,
        status="INTERNAL",
        message="Exception deserializing response!",
        details=(),
        cause=Cause.UNKNOWN,
    ),
    Row(
        id="unexpected-aborted",
        http=409,
        status="ABORTED",
        message="The operation was aborted.",
        details=(),
        cause=Cause.UNKNOWN,
    ),
    Row(
        id="unexpected-already-exists",
        http=409,
        status="ALREADY_EXISTS",
        message="Resource already exists.",
        details=(),
        cause=Cause.UNKNOWN,
    ),
    Row(
        id="unknown-caller-does-not-have-permission",  # google-gemini/gemini-cli#14519: no reason, no "denied": not
        http=403,  # guessed as IAM (the canary's IAM evidence then says what it can)
        status="PERMISSION_DENIED",
        message="The caller does not have permission",
        details=(),
        cause=Cause.UNKNOWN,
    ),
    Row(
        id="unknown-403-reason",  # documented reason the canary has no cause for: kept whole, never guessed as IAM
        http=403,
        status="PERMISSION_DENIED",
        message=f"Permission denied: Consumer 'projects/{N}' has been suspended.",
        details=(error_info("CONSUMER_SUSPENDED", "googleapis.com", consumer=f"projects/{N}"),),
        cause=Cause.UNKNOWN,
        reason="CONSUMER_SUSPENDED",
        domain="googleapis.com",
        metadata={"consumer": f"projects/{N}"},
    ),
]

GRPC_CLASS = {
    "PERMISSION_DENIED": "PermissionDenied",
    "FAILED_PRECONDITION": "FailedPrecondition",
    "NOT_FOUND": "NotFound",
    "RESOURCE_EXHAUSTED": "ResourceExhausted",
    "UNAUTHENTICATED": "Unauthenticated",
    "UNAVAILABLE": "ServiceUnavailable",
    "DEADLINE_EXCEEDED": "DeadlineExceeded",
    "INTERNAL": "InternalServerError",
    "INVALID_ARGUMENT": "InvalidArgument",
    "ABORTED": "Aborted",
    "ALREADY_EXISTS": "AlreadyExists",
}
REST_CLASS = {  # the class comes from the HTTP status alone: 403 is Forbidden, not PermissionDenied
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    429: "TooManyRequests",
    500: "InternalServerError",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


def expected(row: Row) -> dict[str, Any]:
    return {
        "cause": row.cause,
        "code": row.http,
        "status": row.status,
        "reason": row.reason,
        "domain": row.domain,
        "metadata": row.metadata,
        "links": list(row.links),
        "violations": list(row.violations),
    }


def seen(failure: Failure) -> dict[str, Any]:
    return {
        "cause": failure.cause,
        "code": failure.code,
        "status": failure.status,
        "reason": failure.reason,
        "domain": failure.domain,
        "metadata": failure.metadata,
        "links": failure.links,
        "violations": failure.violations,
    }


# The fakes ------------------------------------------------------------------------------------------------


class StaticToken(google.auth.credentials.Credentials):
    """A bearer token that 'refreshes' to itself: the REST session refreshes and resends on a 401 (twice), which
    AnonymousCredentials cannot do, so the 401 rows need a credential that can."""

    def refresh(self, request: Any) -> None:
        self.token = "fake-token"


class Fake:
    """What the fake servers answer next: a row's error, or a delay."""

    def __init__(self) -> None:
        self.row: Row | None = None
        self.delay = 0.0  # seconds a call hangs, unless `released` is set first
        self.released = threading.Event()


def _grpc_status(row: Row) -> status_pb2.Status:
    details = []
    for detail in row.details:
        packed = any_pb2.Any()
        json_format.ParseDict(detail, packed)
        details.append(packed)
    return status_pb2.Status(code=grpc.StatusCode[row.status].value[0], message=row.message, details=details)


def _rest_body(row: Row) -> bytes:
    error: dict[str, Any] = {"code": row.http, "message": row.message, "status": row.status}
    if row.details:
        error["details"] = list(row.details)
    body: Any = [{"error": error}] if row.rest_stream else {"error": error}
    return json.dumps(body).encode()


def _start_grpc(fake: Fake) -> tuple[grpc.Server, int, int]:
    def generate_content(request: ps.GenerateContentRequest, context: grpc.ServicerContext) -> Any:
        if fake.delay:
            fake.released.wait(fake.delay)
        if fake.row is None:
            return ps.GenerateContentResponse()
        context.abort_with_status(rpc_status.to_status(_grpc_status(fake.row)))
        return None  # unreachable: abort raises

    handler = grpc.unary_unary_rpc_method_handler(
        generate_content,
        request_deserializer=ps.GenerateContentRequest.deserialize,
        response_serializer=ps.GenerateContentResponse.serialize,
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "google.cloud.aiplatform.v1.PredictionService", {"GenerateContent": handler}
            ),
        )
    )
    plain = server.add_insecure_port("127.0.0.1:0")
    local = server.add_secure_port("127.0.0.1:0", grpc.local_server_credentials())  # for call credentials
    server.start()
    return server, plain, local


def _start_http(fake: Fake) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            assert fake.row is not None
            body = _rest_body(fake.row)
            self.send_response(fake.row.http)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


@dataclass
class Fakes:
    fake: Fake
    grpc_client: aiplatform_v1.PredictionServiceClient
    rest_client: aiplatform_v1.PredictionServiceClient
    local_port: int


@pytest.fixture(scope="module")
def fakes() -> Iterator[Fakes]:
    fake = Fake()
    server, plain, local = _start_grpc(fake)
    http = _start_http(fake)
    channel = grpc.insecure_channel(f"127.0.0.1:{plain}")
    grpc_client = aiplatform_v1.PredictionServiceClient(transport=PredictionServiceGrpcTransport(channel=channel))
    rest_client = aiplatform_v1.PredictionServiceClient(
        transport="rest",
        client_options={"api_endpoint": f"http://127.0.0.1:{http.server_address[1]}"},
        credentials=StaticToken(),
    )
    yield Fakes(fake, grpc_client, rest_client, local)
    channel.close()
    http.shutdown()
    http.server_close()
    server.stop(None)


def call(client: aiplatform_v1.PredictionServiceClient, timeout: float = 5.0) -> core.GoogleAPICallError:
    request = ps.GenerateContentRequest(
        model=MODEL, contents=[aiplatform_v1.Content(role="user", parts=[{"text": "hi"}])]
    )
    with pytest.raises(core.GoogleAPICallError) as caught:
        client.generate_content(request=request, retry=None, timeout=timeout)
    return caught.value


# The table, on both surfaces ------------------------------------------------------------------------------


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_grpc(fakes: Fakes, row: Row) -> None:
    fakes.fake.row = row
    error = call(fakes.grpc_client)
    failure = classify(error)
    assert seen(failure) == expected(row)
    assert failure.message == row.message
    assert failure.error_type == GRPC_CLASS[row.status]


REST_ROWS = [r for r in ROWS if not r.grpc_only]


@pytest.mark.parametrize("row", REST_ROWS, ids=[r.id for r in REST_ROWS])
def test_rest(fakes: Fakes, row: Row) -> None:
    fakes.fake.row = row
    error = call(fakes.rest_client)
    failure = classify(error)
    assert seen(failure) == expected(row)
    assert failure.message.startswith("POST http://127.0.0.1:")
    assert failure.message.endswith(f":generateContent?%24alt=json%3Benum-encoding%3Dint: {row.message}")
    assert failure.error_type == REST_CLASS[row.http]


def test_rest_403_is_forbidden_not_permission_denied(fakes: Fakes) -> None:
    fakes.fake.row = ROWS[0]
    error = call(fakes.rest_client)
    assert isinstance(error, core.Forbidden)
    assert not isinstance(error, core.PermissionDenied)
    assert classify(error).cause == Cause.IAM_PERMISSION_DENIED


# Failures that never came back as a Google status ----------------------------------------------------------


class ExpiredCredentials(google.auth.credentials.Credentials):
    """A credential whose token endpoint says invalid_grant, as a revoked or expired key's does."""

    def refresh(self, request: Any) -> None:
        raise auth.RefreshError(
            "invalid_grant: Token has been expired or revoked.",
            {"error": "invalid_grant", "error_description": "Token has been expired or revoked."},
        )


def test_grpc_call_credentials_refresh_failure_is_credentials(fakes: Fakes) -> None:
    """The real google-auth metadata plugin on a real channel: RefreshError becomes a 503 the client raises."""
    fakes.fake.row = None
    transport = PredictionServiceGrpcTransport(
        host=f"127.0.0.1:{fakes.local_port}",
        credentials=ExpiredCredentials(),
        ssl_channel_credentials=grpc.local_channel_credentials(),
    )
    error = call(aiplatform_v1.PredictionServiceClient(transport=transport))
    failure = classify(error)
    assert (failure.cause, failure.code, failure.status, failure.error_type) == (
        Cause.CREDENTIALS,
        503,
        "UNAVAILABLE",
        "ServiceUnavailable",
    )
    assert failure.message.startswith("Getting metadata from plugin failed with error: ('invalid_grant: ")


def test_grpc_client_deadline_is_deadline(fakes: Fakes) -> None:
    # The server hangs far past the client's deadline (no race between the two on a loaded runner) and is released
    # as soon as the client has given up, so no thread is left sleeping.
    fakes.fake.row, fakes.fake.delay = None, 60.0
    try:
        error = call(fakes.grpc_client, timeout=0.05)
    finally:
        fakes.fake.delay = 0.0
        fakes.fake.released.set()
    failure = classify(error)
    assert (failure.cause, failure.code, failure.status, failure.error_type) == (
        Cause.DEADLINE,
        504,
        "DEADLINE_EXCEEDED",
        "DeadlineExceeded",
    )


OTHER = [
    pytest.param(
        auth.RefreshError("invalid_grant: Token has been expired or revoked.", {"error": "invalid_grant"}),
        Failure(
            Cause.CREDENTIALS,
            message="('invalid_grant: Token has been expired or revoked.', {'error': 'invalid_grant'})",
            error_type="RefreshError",
        ),
        id="refresh-error",
    ),
    pytest.param(
        auth.DefaultCredentialsError("Your default credentials were not found."),
        Failure(
            Cause.CREDENTIALS, message="Your default credentials were not found.", error_type="DefaultCredentialsError"
        ),
        id="default-credentials-error",
    ),
    pytest.param(
        auth.TransportError("Failed to retrieve http://metadata.google.internal/computeMetadata/v1/"),
        Failure(
            Cause.CREDENTIALS,
            message="Failed to retrieve http://metadata.google.internal/computeMetadata/v1/",
            error_type="TransportError",
        ),
        id="transport-error",
    ),
    pytest.param(
        concurrent.futures.TimeoutError(),
        Failure(Cause.DEADLINE, message="the run's deadline passed", error_type="TimeoutError"),
        id="future-timeout",
    ),
    pytest.param(
        core.RetryError("Timeout of 60.0s exceeded", cause=None),
        Failure(Cause.DEADLINE, message="Timeout of 60.0s exceeded, last exception: None", error_type="RetryError"),
        id="retry-error-without-cause",
    ),
    pytest.param(
        ConnectionRefusedError(111, "Connection refused"),
        Failure(Cause.UNAVAILABLE, message="[Errno 111] Connection refused", error_type="ConnectionRefusedError"),
        id="connection-refused",
    ),
    pytest.param(
        ValueError("x" * 600),
        Failure(Cause.UNKNOWN, message="x" * 499 + "…", error_type="ValueError"),
        id="unexpected-exception-message-truncated",
    ),
]


@pytest.mark.parametrize(("error", "want"), OTHER)
def test_errors_that_never_reached_google(error: BaseException, want: Failure) -> None:
    assert classify(error) == want


def test_retry_error_is_classified_by_its_last_error(fakes: Fakes) -> None:
    fakes.fake.row = next(r for r in ROWS if r.id == "unavailable")
    last = call(fakes.grpc_client)
    failure = classify(core.RetryError("Timeout of 60.0s exceeded", cause=last))
    assert (failure.cause, failure.code, failure.status) == (Cause.UNAVAILABLE, 503, "UNAVAILABLE")


def test_unknown_keeps_everything_in_its_json(fakes: Fakes) -> None:
    fakes.fake.row = next(r for r in ROWS if r.id == "unknown-403-reason")
    assert classify(call(fakes.grpc_client)).to_json() == {
        "cause": "unknown",
        "code": 403,
        "status": "PERMISSION_DENIED",
        "reason": "CONSUMER_SUSPENDED",
        "domain": "googleapis.com",
        "message": f"Permission denied: Consumer 'projects/{N}' has been suspended.",
        "error_type": "PermissionDenied",
        "metadata": {"consumer": f"projects/{N}"},
    }


def test_every_cause_but_ok_is_in_the_tables() -> None:
    covered = {r.cause for r in ROWS} | {cast(Failure, p.values[1]).cause for p in OTHER}
    assert covered == set(Cause) - {Cause.OK}


def test_denial_and_transient_partition_the_failure_causes() -> None:
    denials = {c for c in Cause if c.is_denial}
    transient = {c for c in Cause if c.is_transient}
    assert not denials & transient
    assert set(Cause) - denials - transient == {Cause.OK, Cause.UNKNOWN}
    assert transient == {Cause.QUOTA, Cause.CAPACITY, Cause.UNAVAILABLE, Cause.DEADLINE}


def test_every_error_reason_of_the_installed_enum_is_mapped_or_explained() -> None:
    """google.api.ErrorReason, from the installed protos: each value has a cause or a written reason to stay unknown,
    and nothing is both (the table cannot fall behind Google's enum unnoticed)."""
    from google.api.error_reason_pb2 import ErrorReason

    from function.causes import _BY_REASON, UNMAPPED_REASONS

    names = set(ErrorReason.keys())
    assert names - set(_BY_REASON) - set(UNMAPPED_REASONS) == set()
    assert set(_BY_REASON) & set(UNMAPPED_REASONS) == set()
    assert set(_BY_REASON) | set(UNMAPPED_REASONS) <= names  # no reason Google does not have
    assert all(why.strip() for why in UNMAPPED_REASONS.values())


@pytest.mark.parametrize(
    ("reason", "constraint"),
    [
        ("RESOURCE_USAGE_RESTRICTION_VIOLATED", "gcp.restrictServiceUsage"),
        ("ENDPOINT_USAGE_RESTRICTION_VIOLATED", "gcp.restrictEndpointUsage"),
        ("LOCATION_ORG_POLICY_VIOLATED", "gcp.resourceLocations"),
        ("TLS_ORG_POLICY_VIOLATED", "gcp.restrictTLSVersion"),
    ],
)
def test_org_policy_reasons_name_their_constraint(reason: str, constraint: str) -> None:
    from function.evidence import constraint_of

    failure = Failure(Cause.UNKNOWN, code=403, reason=reason, domain="googleapis.com")
    failure.cause = _cause(failure)
    assert failure.cause == Cause.ORG_POLICY
    assert constraint_of(failure) == constraint


# Every reason the classifier maps, through the real clients on both surfaces, with the expectation written here from
# the reason's definition in google/api/error_reason.proto (not read back from the code's own table).
REASON_FAMILIES: dict[Cause, tuple[str, ...]] = {
    Cause.IAM_PERMISSION_DENIED: ("IAM_PERMISSION_DENIED",),
    Cause.API_DISABLED: ("SERVICE_DISABLED",),
    Cause.BILLING_DISABLED: ("BILLING_DISABLED",),
    Cause.VPC_SC: ("SECURITY_POLICY_VIOLATED",),
    Cause.WRONG_PROJECT: ("CONSUMER_INVALID", "RESOURCE_PROJECT_INVALID"),
    Cause.ORG_POLICY: (
        "RESOURCE_USAGE_RESTRICTION_VIOLATED",
        "ENDPOINT_USAGE_RESTRICTION_VIOLATED",
        "LOCATION_ORG_POLICY_VIOLATED",
        "TLS_ORG_POLICY_VIOLATED",
    ),
    Cause.CREDENTIALS: (
        "ACCESS_TOKEN_EXPIRED",
        "ACCESS_TOKEN_TYPE_UNSUPPORTED",
        "CREDENTIALS_MISSING",
        "ACCOUNT_STATE_INVALID",
        "API_KEY_SERVICE_BLOCKED",
        "API_KEY_INVALID",
        "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
        "API_KEY_HTTP_REFERRER_BLOCKED",
        "API_KEY_IP_ADDRESS_BLOCKED",
        "API_KEY_ANDROID_APP_BLOCKED",
        "API_KEY_IOS_APP_BLOCKED",
        "JWT_TOKEN_INVALID",
        "CREDENTIAL_TYPE_UNSUPPORTED",
        "ACCOUNT_TYPE_UNSUPPORTED",
        "OVERLOADED_CREDENTIALS",
        "SESSION_COOKIE_INVALID",
    ),
    Cause.QUOTA: ("RATE_LIMIT_EXCEEDED", "RESOURCE_QUOTA_EXCEEDED"),
}
REASON_ROWS = [
    Row(
        id=f"reason-{reason}",
        http=403,
        status="PERMISSION_DENIED",
        message="denied.",  # a message no message rule matches: only the reason can decide
        details=(error_info(reason, "googleapis.com", service="aiplatform.googleapis.com"),),
        cause=cause,
        reason=reason,
        domain="googleapis.com",
        metadata={"service": "aiplatform.googleapis.com"},
    )
    for cause, reasons in REASON_FAMILIES.items()
    for reason in reasons
]


@pytest.mark.parametrize("row", REASON_ROWS, ids=[r.id for r in REASON_ROWS])
def test_every_mapped_reason_on_both_surfaces(fakes: Fakes, row: Row) -> None:
    for client in (fakes.grpc_client, fakes.rest_client):
        fakes.fake.row = row
        assert seen(classify(call(client))) == expected(row)


def test_the_reason_families_are_the_whole_table() -> None:
    from function.causes import _BY_REASON

    assert {r for reasons in REASON_FAMILIES.values() for r in reasons} == set(_BY_REASON)


@pytest.mark.parametrize("reason", ["CONSUMER_SUSPENDED", "USER_PROJECT_DENIED", "SOME_FUTURE_REASON"])
def test_an_unmapped_reason_stays_unknown_even_on_a_403_permission_text(fakes: Fakes, reason: str) -> None:
    row = Row(
        id=f"unmapped-{reason}",
        http=403,
        status="PERMISSION_DENIED",
        message="Permission denied on something.",
        details=(error_info(reason, "googleapis.com"),),
        cause=Cause.UNKNOWN,
        reason=reason,
        domain="googleapis.com",
    )
    fakes.fake.row = row
    assert seen(classify(call(fakes.grpc_client))) == expected(row)


@pytest.mark.parametrize(
    ("http", "status", "cause"),
    [
        (401, "UNAUTHENTICATED", Cause.CREDENTIALS),
        (404, "NOT_FOUND", Cause.MODEL_UNAVAILABLE),
        (429, "RESOURCE_EXHAUSTED", Cause.CAPACITY),
        (502, "UNAVAILABLE", Cause.UNAVAILABLE),
        (504, "DEADLINE_EXCEEDED", Cause.DEADLINE),
        (409, "ABORTED", Cause.UNKNOWN),
    ],
)
def test_the_http_status_alone_decides_when_nothing_else_does(
    fakes: Fakes, http: int, status: str, cause: Cause
) -> None:
    """REST bodies with no ErrorInfo, no known message and no status name: the HTTP code is the last resort."""
    row = Row(id=f"code-{http}", http=http, status=status, message="Something happened.", details=(), cause=cause)
    fakes.fake.row = row
    assert classify(call(fakes.rest_client)).cause == cause
    assert classify(call(fakes.grpc_client)).cause == cause
