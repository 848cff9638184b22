"""One closed vocabulary for why a Gemini call failed, and the classifier that maps an error to it.

The classifier reads, in order: the ErrorInfo reason/domain (gRPC trailer or REST body), the status code, and the
documented message forms (docs/google-behaviour.md), so gRPC and REST surfaces, and client-side credential
failures that never reached Google, land on the same names. The names appear unchanged as the `cause` metric label,
in the log line and in the README's cause table.
"""

from __future__ import annotations

import concurrent.futures
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from google.api.error_reason_pb2 import ErrorReason
from google.api_core import exceptions as core
from google.auth import exceptions as auth

from . import sanitize


class Cause(StrEnum):
    OK = "ok"
    IAM_PERMISSION_DENIED = "iam_permission_denied"
    API_DISABLED = "api_disabled"
    BILLING_DISABLED = "billing_disabled"
    VPC_SC = "vpc_sc"
    ORG_POLICY = "org_policy"
    WRONG_PROJECT = "wrong_project"
    MODEL_UNAVAILABLE = "model_unavailable"
    QUOTA = "quota"
    CAPACITY = "capacity"
    CREDENTIALS = "credentials"
    UNAVAILABLE = "unavailable"
    DEADLINE = "deadline"
    UNKNOWN = "unknown"

    @property
    def is_denial(self) -> bool:
        """A configuration or permission problem that stays until someone changes something."""
        return self in DENIALS

    @property
    def is_transient(self) -> bool:
        """A condition that may pass by itself (the next run is the retry)."""
        return self in TRANSIENT


DENIALS = frozenset(
    {
        Cause.IAM_PERMISSION_DENIED,
        Cause.API_DISABLED,
        Cause.BILLING_DISABLED,
        Cause.VPC_SC,
        Cause.ORG_POLICY,
        Cause.WRONG_PROJECT,
        Cause.MODEL_UNAVAILABLE,
        Cause.CREDENTIALS,
    }
)
TRANSIENT = frozenset({Cause.QUOTA, Cause.CAPACITY, Cause.UNAVAILABLE, Cause.DEADLINE})

# ErrorInfo reasons, named through the generated enum of google/api/error_reason.proto so a typo cannot hide.
# RESOURCE_USAGE_RESTRICTION_VIOLATED is the proto's reason for constraints/gcp.restrictServiceUsage.
# RATE_LIMIT_EXCEEDED and RESOURCE_QUOTA_EXCEEDED are, per the proto, a consumer's own quota (rate or allocation).
_BY_REASON = {
    ErrorReason.Name(reason): cause
    for reason, cause in (
        (ErrorReason.IAM_PERMISSION_DENIED, Cause.IAM_PERMISSION_DENIED),
        (ErrorReason.SERVICE_DISABLED, Cause.API_DISABLED),
        (ErrorReason.BILLING_DISABLED, Cause.BILLING_DISABLED),
        (ErrorReason.SECURITY_POLICY_VIOLATED, Cause.VPC_SC),
        (ErrorReason.CONSUMER_INVALID, Cause.WRONG_PROJECT),
        (ErrorReason.RESOURCE_PROJECT_INVALID, Cause.WRONG_PROJECT),
        (ErrorReason.RESOURCE_USAGE_RESTRICTION_VIOLATED, Cause.ORG_POLICY),
        (ErrorReason.ACCESS_TOKEN_EXPIRED, Cause.CREDENTIALS),
        (ErrorReason.ACCESS_TOKEN_TYPE_UNSUPPORTED, Cause.CREDENTIALS),
        (ErrorReason.CREDENTIALS_MISSING, Cause.CREDENTIALS),
        (ErrorReason.ACCOUNT_STATE_INVALID, Cause.CREDENTIALS),
        (ErrorReason.API_KEY_SERVICE_BLOCKED, Cause.CREDENTIALS),
        (ErrorReason.API_KEY_INVALID, Cause.CREDENTIALS),
        (ErrorReason.ACCESS_TOKEN_SCOPE_INSUFFICIENT, Cause.CREDENTIALS),
        (ErrorReason.API_KEY_HTTP_REFERRER_BLOCKED, Cause.CREDENTIALS),
        (ErrorReason.API_KEY_IP_ADDRESS_BLOCKED, Cause.CREDENTIALS),
        (ErrorReason.API_KEY_ANDROID_APP_BLOCKED, Cause.CREDENTIALS),
        (ErrorReason.API_KEY_IOS_APP_BLOCKED, Cause.CREDENTIALS),
        (ErrorReason.RATE_LIMIT_EXCEEDED, Cause.QUOTA),
        (ErrorReason.RESOURCE_QUOTA_EXCEEDED, Cause.QUOTA),
        # Organization policy constraints other than the two Vertex ones (the proto names each constraint)
        (ErrorReason.ENDPOINT_USAGE_RESTRICTION_VIOLATED, Cause.ORG_POLICY),  # gcp.restrictEndpointUsage
        (ErrorReason.LOCATION_ORG_POLICY_VIOLATED, Cause.ORG_POLICY),  # gcp.resourceLocations
        (ErrorReason.TLS_ORG_POLICY_VIOLATED, Cause.ORG_POLICY),  # gcp.restrictTLSVersion
        # The caller's credential itself is refused
        (ErrorReason.JWT_TOKEN_INVALID, Cause.CREDENTIALS),
        (ErrorReason.CREDENTIAL_TYPE_UNSUPPORTED, Cause.CREDENTIALS),
        (ErrorReason.ACCOUNT_TYPE_UNSUPPORTED, Cause.CREDENTIALS),
        (ErrorReason.OVERLOADED_CREDENTIALS, Cause.CREDENTIALS),
        (ErrorReason.SESSION_COOKIE_INVALID, Cause.CREDENTIALS),
    )
}
# Every other reason of google.api.ErrorReason stays `unknown` (the raw reason is kept in the result), for the reason
# given; a test checks that each value of the installed enum is either mapped or listed here.
UNMAPPED_REASONS = {
    "ERROR_REASON_UNSPECIFIED": "not a reason",
    "CONSUMER_SUSPENDED": "the project is suspended for a Terms of Service violation: no cause of ours fits, and "
    "nothing the canary can gather explains it; shown raw",
    "GCP_SUSPENDED": "Google Cloud access of the project is suspended: as CONSUMER_SUSPENDED",
    "USER_PROJECT_DENIED": "a userProject / quota-project system parameter the canary never sends",
    "USER_BLOCKED_BY_ADMIN": "a Google Workspace user blocked from a service; the canary runs as a service account",
    "SYSTEM_PARAMETER_UNSUPPORTED": "the proto marks it unimplemented",
    "SERVICE_NOT_VISIBLE": "the proto marks it unimplemented",
    "ORG_RESTRICTION_VIOLATION": "an X-Goog-Allowed-Resources header added by a proxy on the caller's network",
    "ORG_RESTRICTION_HEADER_INVALID": "as ORG_RESTRICTION_VIOLATION",
    "MISSING_ORIGIN": "API keys used from a browser; the canary uses no API key",
    "CREDENTIAL_ANDROID_APP_INVALID": "Android API-key credentials; the canary uses none",
    "LOCATION_POLICY_VIOLATED": "resource creation in a restricted region; GenerateContent creates nothing",
    "LOCATION_TAX_POLICY_VIOLATED": "resource creation under tax restrictions; GenerateContent creates nothing",
    "TLS_CIPHER_RESTRICTION_VIOLATED": "the client's TLS cipher; the canary's gRPC stack chooses it",
    "EMULATOR_QUOTA_EXCEEDED": "Google's own emulators' quota",
    "MCP_SERVER_DISABLED": "MCP servers; the canary calls Vertex AI directly",
}
SCOPE_INSUFFICIENT = ErrorReason.Name(ErrorReason.ACCESS_TOKEN_SCOPE_INSUFFICIENT)
# The same 403 without an ErrorInfo (gRPC, public issue thread googleapis/python-aiplatform#902; REST,
# google-gemini/gemini-cli#1857).
SCOPES_MESSAGE = "request had insufficient authentication scopes"

# Message forms for bodies that come without an ErrorInfo (older front ends, proxies), most specific first. Each is
# Google's text, lower-cased; where it was seen is in docs/google-behaviour.md, "Error reasons and messages".
_BY_MESSAGE = (
    ("getting metadata from plugin failed", Cause.CREDENTIALS),  # google-cloud-python#18419 (gRPC auth plugin)
    (SCOPES_MESSAGE, Cause.CREDENTIALS),
    ("organization policy constraint", Cause.ORG_POLICY),
    ("request is prohibited by organization's policy", Cause.VPC_SC),
    ("vpcservicecontrolsuniqueidentifier", Cause.VPC_SC),
    ("has not been used in project", Cause.API_DISABLED),
    ("requires billing to be enabled", Cause.BILLING_DISABLED),
    ("billing account for the owning project is disabled", Cause.BILLING_DISABLED),
    ("permission denied on resource project", Cause.WRONG_PROJECT),
    ("is not allowed to use publisher model", Cause.MODEL_UNAVAILABLE),
    ("publisher model", Cause.MODEL_UNAVAILABLE),
    # 429s: a quota the project owns (named) first, then Google's shared capacity (Dynamic Shared Quota).
    ("quota exceeded", Cause.QUOTA),  # "Quota exceeded for aiplatform.googleapis.com/<metric> with base model: …"
    ("exceeded the provisioned throughput", Cause.QUOTA),  # "Too many requests. Exceeded the Provisioned Throughput."
    ("resource exhausted", Cause.CAPACITY),  # "Resource exhausted. Please try again later. Please refer to …429…"
    ("resource has been exhausted", Cause.CAPACITY),  # the generic 429 text, "(e.g. check quota)", naming no quota
    ("temporarily out of capacity", Cause.CAPACITY),  # "Unable to submit request because the service is temporarily…"
    ("no capacity available", Cause.CAPACITY),  # "No capacity available for model <m> on the server"
    # 500 INTERNAL in Google's words: transient, on Google's side. Other INTERNALs (gRPC's own client-side
    # "Exception deserializing response!") stay unknown.
    ("internal error encountered", Cause.UNAVAILABLE),  # Vertex AI, deprecated-generative-ai-python#467
    ("an internal error has occurred", Cause.UNAVAILABLE),  # Gemini API, deprecated-generative-ai-python#573
    ("invalid authentication credentials", Cause.CREDENTIALS),
    ("missing required authentication credential", Cause.CREDENTIALS),
)

_BY_CODE = {
    401: Cause.CREDENTIALS,
    404: Cause.MODEL_UNAVAILABLE,
    429: Cause.CAPACITY,  # a 429 that names no quota: Gemini on pay-as-you-go has none (Dynamic Shared Quota)
    499: Cause.DEADLINE,
    502: Cause.UNAVAILABLE,
    503: Cause.UNAVAILABLE,
    504: Cause.DEADLINE,
}


@dataclass
class Failure:
    """What the error said, kept whole so an `unknown` loses nothing."""

    cause: Cause
    code: int | None = None  # HTTP status (google-api-core's .code)
    status: str | None = None  # canonical status name, e.g. PERMISSION_DENIED
    reason: str | None = None
    domain: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    message: str = ""
    links: list[dict[str, str]] = field(default_factory=list)
    violations: list[dict[str, str]] = field(default_factory=list)
    error_type: str = ""

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"cause": str(self.cause), "code": self.code, "status": self.status}
        for key in ("reason", "domain", "message", "error_type"):
            if getattr(self, key):
                doc[key] = getattr(self, key)
        if self.metadata:
            doc["metadata"] = dict(self.metadata)
        if self.links:
            doc["links"] = list(self.links)
        if self.violations:
            doc["violations"] = list(self.violations)
        return doc

    @property
    def lacks_scopes(self) -> bool:
        """The token was refused for its OAuth scopes, not for an IAM grant."""
        return self.reason == SCOPE_INSUFFICIENT or SCOPES_MESSAGE in self.message.lower()


def _detail_fields(detail: Any) -> tuple[str, dict[str, Any]]:
    """(type name, fields) of one status detail: a protobuf message on gRPC, a dict on REST."""
    if isinstance(detail, dict):
        kind = str(detail.get("@type", "")).rpartition(".")[2]
        return kind, detail
    kind = type(detail).__name__
    fields: dict[str, Any] = {}
    if kind == "ErrorInfo":
        fields = {"reason": detail.reason, "domain": detail.domain, "metadata": dict(detail.metadata)}
    elif kind == "Help":
        fields = {"links": [{"description": lk.description, "url": lk.url} for lk in detail.links]}
    elif kind == "PreconditionFailure":
        fields = {
            "violations": [
                {"type": v.type, "subject": v.subject, "description": v.description} for v in detail.violations
            ]
        }
    elif kind == "QuotaFailure":
        fields = {"violations": [{"subject": v.subject, "description": v.description} for v in detail.violations]}
    return kind, fields


def _from_api_error(error: core.GoogleAPICallError) -> Failure:
    """google.api_core.exceptions.GoogleAPICallError, from either transport."""
    status = error.grpc_status_code
    failure = Failure(
        cause=Cause.UNKNOWN,
        code=error.code,
        status=status.name if status is not None else _rest_status(error),
        message=str(error.message or error),
        error_type=type(error).__name__,
    )
    quota_failure = False
    for detail in error.details or []:
        kind, fields = _detail_fields(detail)
        quota_failure = quota_failure or kind == "QuotaFailure"
        if kind == "ErrorInfo" and failure.reason is None:
            failure.reason = fields.get("reason") or None
            failure.domain = fields.get("domain") or None
            failure.metadata = {str(k): str(v) for k, v in (fields.get("metadata") or {}).items()}
        elif kind == "Help":
            failure.links += [
                {"description": lk.get("description", ""), "url": lk.get("url", "")} for lk in fields.get("links", [])
            ]
        elif kind in ("PreconditionFailure", "QuotaFailure"):
            # proto3 leaves unset fields as "" on gRPC where the REST body omits them: keep only what was said
            failure.violations += [{k: str(v) for k, v in item.items() if v} for item in fields.get("violations", [])]
    failure.cause = _cause(failure, quota_failure)
    return failure


def _rest_status(error: core.GoogleAPICallError) -> str | None:
    """The status name a REST error body states, else one guessed from the HTTP code.

    google-api-core keeps only the code, and 400 or 409 alone cannot tell FAILED_PRECONDITION from INVALID_ARGUMENT,
    or ALREADY_EXISTS from ABORTED.
    """
    try:
        payload = error.response.json()
    except (AttributeError, ValueError):
        payload = None
    if isinstance(payload, list):  # streamGenerateContent's [{"error": {...}}]
        payload = next((item for item in payload if isinstance(item, dict)), {})
    body = payload.get("error") if isinstance(payload, dict) else None
    status = body.get("status") if isinstance(body, dict) else None
    if isinstance(status, str) and re.fullmatch(r"[A-Z_]{1,40}", status):
        return status
    return _status_from_http(error.code)


def _status_from_http(code: int | None) -> str | None:
    """google.rpc.Code's HTTP mapping, for the codes whose google-api-core class carries no gRPC status (the others,
    404, 499, 500, 501 and 503, are named by their class's `grpc_status_code`). Where several statuses share a code
    (400, 409), one of them: the code alone cannot tell which."""
    names: dict[int | None, str] = {
        400: "INVALID_ARGUMENT",
        401: "UNAUTHENTICATED",
        403: "PERMISSION_DENIED",
        409: "ABORTED",
        429: "RESOURCE_EXHAUSTED",
        504: "DEADLINE_EXCEEDED",
    }
    return names.get(code)


def _cause(failure: Failure, quota_failure: bool = False) -> Cause:
    if failure.reason in _BY_REASON:
        return _BY_REASON[failure.reason]
    if quota_failure:  # a QuotaFailure detail names the project's quota that was exceeded
        return Cause.QUOTA
    message = failure.message.lower()
    for needle, cause in _BY_MESSAGE:
        if needle in message:
            return cause
    if failure.status == "DEADLINE_EXCEEDED":
        return Cause.DEADLINE
    if failure.status == "UNAVAILABLE":
        return Cause.UNAVAILABLE
    # Only a body without an ErrorInfo: a reason the canary has no cause for stays unknown, never a guessed IAM.
    if failure.code == 403 and failure.reason is None and "permission" in message and "denied" in message:
        return Cause.IAM_PERMISSION_DENIED
    return _BY_CODE.get(failure.code or 0, Cause.UNKNOWN)


def classify(error: BaseException) -> Failure:
    """Map any error a Gemini call can raise to a Failure with a Cause, its text made safe to show."""
    return _safe(_classify(error))


LINK_WITHHELD = "not an https link to Google's console or documentation: withheld"


def _safe(failure: Failure) -> Failure:
    """Classified from what the error said; kept as it may be shown: no control character (a terminal escape, a
    forged line), no token (a token endpoint's error body echoed), and a Help link only when it is Google's."""
    failure.message = sanitize.text(failure.message, 2000)
    failure.reason = sanitize.text(failure.reason, 200) if failure.reason is not None else None
    failure.domain = sanitize.text(failure.domain, 200) if failure.domain is not None else None
    failure.metadata = {sanitize.text(k, 200): sanitize.text(v, 1000) for k, v in failure.metadata.items()}
    links = []
    for lk in failure.links:
        url = sanitize.link(lk["url"])
        description = sanitize.text(lk["description"], 500)  # both keys set by _from_api_error
        links.append(
            {"description": description, "url": url}
            if url
            else {"description": description, "url_withheld": LINK_WITHHELD}
        )
    failure.links = links
    failure.violations = [{k: sanitize.text(v, 1000) for k, v in item.items()} for item in failure.violations]
    return failure


def _classify(error: BaseException) -> Failure:
    if isinstance(error, core.GoogleAPICallError):
        return _from_api_error(error)
    if isinstance(error, core.RetryError):
        cause = error.cause
        return (
            _classify(cause)
            if cause is not None
            else Failure(Cause.DEADLINE, message=str(error), error_type="RetryError")
        )
    if isinstance(error, auth.GoogleAuthError):
        # RefreshError (token endpoint refused), DefaultCredentialsError (no ADC), TransportError (metadata
        # server unreachable): the call never reached Google.
        return Failure(Cause.CREDENTIALS, message=_short(error), error_type=type(error).__name__)
    if isinstance(error, concurrent.futures.TimeoutError | TimeoutError):
        return Failure(
            Cause.DEADLINE, message=_short(error) or "the run's deadline passed", error_type=type(error).__name__
        )
    if isinstance(error, ConnectionError):
        return Failure(Cause.UNAVAILABLE, message=_short(error), error_type=type(error).__name__)
    return Failure(Cause.UNKNOWN, message=_short(error), error_type=type(error).__name__)


def _short(error: BaseException, limit: int = 500) -> str:
    text = str(error)
    return text if len(text) <= limit else text[: limit - 1] + "…"


ALLOWED_MODELS = "vertexai.allowedModels"
RESTRICT_SERVICE_USAGE = "gcp.restrictServiceUsage"
_CONSTRAINT = re.compile(r"constraints/([A-Za-z][A-Za-z0-9_.]{0,100})")
# The constraint each organization-policy ErrorInfo reason stands for (google/api/error_reason.proto comments).
_CONSTRAINT_BY_REASON = {
    "RESOURCE_USAGE_RESTRICTION_VIOLATED": RESTRICT_SERVICE_USAGE,
    "ENDPOINT_USAGE_RESTRICTION_VIOLATED": "gcp.restrictEndpointUsage",
    "LOCATION_ORG_POLICY_VIOLATED": "gcp.resourceLocations",
    "TLS_ORG_POLICY_VIOLATED": "gcp.restrictTLSVersion",
}


def constraint_of(failure: Failure) -> str:
    """The organization-policy constraint an org_policy failure names: the message's `constraints/…`, else the one
    RESOURCE_USAGE_RESTRICTION_VIOLATED means (google/api/error_reason.proto: gcp.restrictServiceUsage), else the
    model allowlist."""
    match = _CONSTRAINT.search(failure.message)
    if match:
        return match.group(1).rstrip(".")
    return _CONSTRAINT_BY_REASON.get(failure.reason or "", ALLOWED_MODELS)
