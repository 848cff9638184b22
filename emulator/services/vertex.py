"""Vertex AI PredictionService (v1 and v1beta1): GenerateContent; CountTokens (v1 LlmUtilityService, v1beta1
PredictionService).

Checks run in the order Google applies them, each failure as docs/google-behaviour.md gives it:
credentials → consumer project → service enabled → billing → org policy gcp.restrictServiceUsage (its place in the
order is assumed, see `admit`) → VPC-SC → IAM (allow policies of the project and its ancestors, deny rules attached to
any of them; the same 403 whether or not the model exists) → org policy allowedModels (the nearest setting in the
hierarchy) → model served in the location → quota.

VPC Service Controls (docs/google-behaviour.md, "VPC Service Controls by source network"): a request is inside the
perimeter when it comes from a VPC network of a project in the perimeter or from a network the perimeter lists; the
caller's network is the one its access token was minted with (a served function's or job's metadata server mints
tokens carrying its Direct VPC egress network; "" is Cloud Run's default egress, i.e. the internet). From outside,
the request passes when one of the perimeter's access levels grants it, or one ingress rule matches both its from
(identity AND a source) and its to (operation AND resource).
Assumption: a denial from a VPC network outside the perimeter is recorded as NETWORK_NOT_IN_SAME_SERVICE_PERIMETER
and one from no VPC network as NO_MATCHING_ACCESS_LEVEL; Google's pages describe both reasons without a table for
ingress from another network.
Assumption: an ingress rule's method selector matches the gRPC method's full name or its `Service.Method` tail, and a
permission selector matches aiplatform.endpoints.predict.
Assumption: the Policy Denied entry carries the caller's network in requestMetadata.callerNetwork (the emulator
keeps every network in its one organization) and no other source field in ingressViolations.
"""

from __future__ import annotations

import math
import re
import secrets
from dataclasses import dataclass

from google.cloud.aiplatform_v1 import types as vt
from google.rpc import code_pb2

from emulator.core import audit, iam
from emulator.core.handlers import Api, Call, HttpRule, Method, Service
from emulator.core.status import RpcError, error_info, help_link, invalid_argument, localized, precondition
from emulator.core.world import VERTEX, IngressRule, Perimeter, Project, World
from emulator.services.kit import service_disabled

PERMISSION = "aiplatform.endpoints.predict"
_MODEL = re.compile(r"^projects/([^/]+)/locations/([^/]+)/publishers/([^/]+)/models/([^/]+)\Z")
REPLY = "OK. This answer comes from the local Vertex AI emulator, not from Gemini."


@dataclass(frozen=True)
class ModelRef:
    project: str  # as the caller wrote it: id or number
    location: str
    publisher: str
    model: str

    @property
    def name(self) -> str:
        return f"projects/{self.project}/locations/{self.location}/publishers/{self.publisher}/models/{self.model}"


def parse_model(name: str, method: str) -> ModelRef:
    match = _MODEL.match(name)
    if match is None:
        raise RpcError(
            code_pb2.INVALID_ARGUMENT,
            "Invalid resource field value in the request.",
            [error_info("RESOURCE_PROJECT_INVALID", "googleapis.com", {"service": VERTEX, "method": method})],
        )
    return ModelRef(*match.groups())


def tokens_of(text: str) -> int:
    """Gemini counts roughly four characters a token; good enough for usage metadata."""
    return max(1, math.ceil(len(text) / 4)) if text else 0


def _consumer_invalid(ref: ModelRef) -> RpcError:
    message = f"Permission denied on resource project {ref.project}."
    return RpcError(
        code_pb2.PERMISSION_DENIED,
        message,
        [
            error_info(
                "CONSUMER_INVALID",
                "googleapis.com",
                {"containerInfo": ref.project, "consumer": f"projects/{ref.project}", "service": VERTEX},
            ),
            localized(message),
            help_link("Google developers console", "https://console.developers.google.com"),
        ],
    )


def _billing_disabled(project: Project) -> RpcError:
    url = f"https://console.developers.google.com/billing/enable?project={project.number}"
    message = (
        f"This API method requires billing to be enabled. Please enable billing on project #{project.number} "
        f"by visiting {url} then retry. If you enabled billing for this project recently, wait a few minutes "
        "for the action to propagate to our systems and retry."
    )
    return RpcError(
        code_pb2.PERMISSION_DENIED,
        message,
        [
            error_info(
                "BILLING_DISABLED",
                "googleapis.com",
                {"service": VERTEX, "consumer": f"projects/{project.number}"},  # §A3: no containerInfo
            ),
            localized(message),
            help_link("Google developers console billing", url),
        ],
    )


def _vpc_sc_denied(project: Project, uid: str) -> tuple[RpcError, str]:
    message = f"Request is prohibited by organization's policy. vpcServiceControlsUniqueIdentifier: {uid}"
    err = RpcError(
        code_pb2.PERMISSION_DENIED,
        message,
        [
            precondition("VPC_SERVICE_CONTROLS", "", uid),
            error_info(
                "SECURITY_POLICY_VIOLATED",
                "googleapis.com",
                {
                    "uid": uid,
                    "service": VERTEX,
                    "consumer": f"projects/{project.number}",
                    "troubleshootToken": secrets.token_urlsafe(48),
                },
            ),
        ],
    )
    return err, message


def _iam_denied(ref: ModelRef) -> RpcError:
    return RpcError(
        code_pb2.PERMISSION_DENIED,
        f"Permission '{PERMISSION}' denied on resource '//aiplatform.googleapis.com/{ref.name}' (or it may not exist).",
        [error_info("IAM_PERMISSION_DENIED", VERTEX, {"resource": ref.name, "permission": PERMISSION})],
    )


def _org_policy_denied(ref: ModelRef, project: Project) -> RpcError:
    return RpcError(
        code_pb2.FAILED_PRECONDITION,
        "Organization Policy constraint constraints/vertexai.allowedModels violated for "
        f"`projects/{project.number}` attempting to use a disallowed Gen AI model {ref.model}. Please contact "
        "your organization administrator to fix this violation by adding "
        f"`publishers/{ref.publisher}/models/{ref.model}:predict` to the allowed values. For more info, see "
        "https://cloud.google.com/vertex-ai/generative-ai/docs/control-model-access.",
    )


def _model_not_found(ref: ModelRef) -> RpcError:
    return RpcError(
        code_pb2.NOT_FOUND,
        f"Publisher Model `{ref.name}` was not found or your project does not have access to it. Please ensure "
        "you are using a valid model version. For more information, see: "
        "https://cloud.google.com/vertex-ai/generative-ai/docs/learn/model-versions",
    )


def _quota_exhausted(ref: ModelRef) -> RpcError:
    return RpcError(
        code_pb2.RESOURCE_EXHAUSTED,
        "Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model with base "
        f"model: {ref.model}. Please submit a quota increase request. "
        "https://cloud.google.com/vertex-ai/docs/generative-ai/quotas-genai.",
    )


def _usage_restricted(project: Project) -> RpcError:
    """constraints/gcp.restrictServiceUsage denies the service (google/api/error_reason.proto,
    RESOURCE_USAGE_RESTRICTION_VIOLATED: reason, domain and metadata keys from its example).

    Assumption (unverified, docs/google-behaviour.md "Organization policy"): the status is PERMISSION_DENIED and
    the message reads as below; no public body for Vertex AI was found.
    """
    return RpcError(
        code_pb2.PERMISSION_DENIED,
        f"Request is disallowed by organization's constraints/gcp.restrictServiceUsage constraint for "
        f"'projects/{project.number}' attempting to use service '{VERTEX}'.",
        [
            error_info(
                "RESOURCE_USAGE_RESTRICTION_VIOLATED",
                "googleapis.com",
                {
                    "consumer": f"projects/{project.number}",
                    "service": VERTEX,
                },
            )
        ],
    )


def _model_allowed(world: World, project: Project, ref: ModelRef) -> bool:
    allowed = world.constraint(project, "allowed_models")
    if allowed is None:
        return True
    base = f"publishers/{ref.publisher}/models/{ref.model}"
    return any(v in (base, f"{base}:predict", f"publishers/{ref.publisher}/models/*") for v in allowed)


def admit(call: Call, model_name: str) -> tuple[ModelRef, Project]:
    """Every check before a prediction is served; raises the first failure as Google reports it."""
    world = call.world
    email = call.authenticate()
    member = iam.member_of(email)
    ref = parse_model(model_name, call.method.full_name)
    project = world.project(ref.project)
    if project is None:
        raise _consumer_invalid(ref)
    if VERTEX not in project.services:
        raise service_disabled(project, VERTEX)
    if not project.billing_enabled:
        raise _billing_disabled(project)
    # Assumption (unverified): gcp.restrictServiceUsage is checked after billing and before VPC Service Controls.
    if VERTEX in (world.constraint(project, "denied_services") or []):
        raise _usage_restricted(project)
    _check_perimeter(call, project, ref, email, member)
    allowed = world.allows(project, member, PERMISSION)
    outcome: RpcError | None = None
    if not allowed:
        outcome = _iam_denied(ref)
    elif not _model_allowed(world, project, ref):
        outcome = _org_policy_denied(ref, project)
    elif ref.publisher != "google" or ref.location not in world.models.get(ref.model, set()):
        outcome = _model_not_found(ref)
    elif not world.take_quota(member, ref.model):
        outcome = _quota_exhausted(ref)
    _audit(call, project, ref, email, allowed, outcome)
    if outcome is not None:
        raise outcome
    return ref, project


def _check_perimeter(call: Call, project: Project, ref: ModelRef, email: str, member: str) -> None:
    world = call.world
    perimeter = world.perimeter
    if (
        perimeter is None
        or project.project_id not in perimeter.projects
        or VERTEX not in perimeter.restricted_services
        or not perimeter.refuse_outside
    ):
        return
    info = world.tokens.get(call.token)
    network = info.network if info is not None else ""
    if _inside(world, perimeter, network) or _admitted(
        world, perimeter, project, call.method.full_name, member, network
    ):
        return
    reason = "NETWORK_NOT_IN_SAME_SERVICE_PERIMETER" if network else "NO_MATCHING_ACCESS_LEVEL"
    uid = secrets.token_urlsafe(40).replace("-", "").replace("_", "")[:48]
    err, message = _vpc_sc_denied(project, uid)
    audit.vpc_sc_policy_denied(
        world,
        project,
        email=email,
        service=VERTEX,
        method=call.method.full_name,
        resource=ref.name,
        uid=uid,
        message=message,
        caller_ip=call.caller_ip,
        reason=perimeter.violation_reason or reason,
        network=network,
    )
    if not perimeter.dry_run:
        raise err


def _inside(world: World, perimeter: Perimeter, network: str) -> bool:
    """A request from a VPC network of a project in the perimeter, or from a network it lists, is inside it."""
    if not network:
        return False
    host = network.split("/")[1]
    found = world.project(host)
    return (found is not None and found.project_id in perimeter.projects) or (
        f"//compute.googleapis.com/{network}" in perimeter.networks
    )


def _admitted(world: World, perimeter: Perimeter, project: Project, method: str, member: str, network: str) -> bool:
    """An access level of the perimeter grants the request, or an ingress rule matches it (or the ingress_members
    shorthand: those identities from any source, to anything)."""
    if member in perimeter.ingress_members:
        return True
    if any(perimeter.levels[name].grants(member, network) for name in perimeter.access_levels):
        return True
    return any(
        _rule_matches(world, perimeter, rule, project, method, member, network) for rule in perimeter.ingress_rules
    )


def _rule_matches(
    world: World, perimeter: Perimeter, rule: IngressRule, project: Project, method: str, member: str, network: str
) -> bool:
    kind = member.split(":", 1)[0]
    identity = {
        "ANY_IDENTITY": True,
        "ANY_USER_ACCOUNT": kind == "user",
        "ANY_SERVICE_ACCOUNT": kind == "serviceAccount",
    }.get(rule.identity_type, member in rule.identities)
    if not identity or not any(_source_matches(world, perimeter, s, member, network) for s in rule.sources):
        return False
    tail = ".".join(method.rsplit(".", 2)[-2:])
    operation = any(
        service in ("*", VERTEX) and any(sel in ("*", method, tail, f"permission:{PERMISSION}") for sel in selectors)
        for service, selectors in rule.operations
    )
    return operation and any(r in ("*", f"projects/{project.number}") for r in rule.resources)


def _source_matches(world: World, perimeter: Perimeter, source: tuple[str, str], member: str, network: str) -> bool:
    kind, value = source
    if kind == "access_level":
        return value == "*" or perimeter.levels[value].grants(member, network)
    if not network:
        return False
    if value.startswith("//compute.googleapis.com/"):
        return value == f"//compute.googleapis.com/{network}"
    host = world.project(network.split("/")[1])  # projects/NUMBER: the project of the source network
    return host is not None and value == f"projects/{host.number}"


def _audit(call: Call, project: Project, ref: ModelRef, email: str, granted: bool, outcome: RpcError | None) -> None:
    version = "v1beta1" if ".v1beta1." in call.method.full_name else "v1"
    # Assumption: the audit methodName is the gRPC method called (CountTokens in v1:
    # google.cloud.aiplatform.v1.LlmUtilityService.CountTokens); a real sample shows
    # google.cloud.aiplatform.internal.PredictionService.CountTokens.
    audit.vertex_data_access(
        call.world,
        project,
        email=email,
        method=call.method.full_name,
        resource=ref.name,
        permission=PERMISSION,
        granted=granted,
        code=outcome.code if outcome else 0,
        message=outcome.message if outcome else "",
        user_agent=call.user_agent,
        caller_ip=call.caller_ip,
        request_type=f"type.googleapis.com/google.cloud.aiplatform.{version}.{call.method.name}Request",
    )


def _prompt_text(contents: list[vt.Content]) -> str:
    return " ".join(part.text for content in contents for part in content.parts if part.text)


def generate_content(call: Call, request: vt.GenerateContentRequest) -> vt.GenerateContentResponse:
    ref, _ = admit(call, request.model)
    if not request.contents:
        raise invalid_argument(
            "Unable to submit request because it has an empty contents field. Learn more: "
            "https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/gemini"
        )
    words = REPLY.split(" ")
    limit = request.generation_config.max_output_tokens or len(words)
    text = " ".join(words[:limit])
    truncated = limit < len(words)
    prompt_tokens = tokens_of(_prompt_text(list(request.contents)))
    out_tokens = min(limit, len(words))
    return vt.GenerateContentResponse(
        candidates=[
            vt.Candidate(
                index=0,
                content=vt.Content(role="model", parts=[vt.Part(text=text)]),
                finish_reason=vt.Candidate.FinishReason.MAX_TOKENS if truncated else vt.Candidate.FinishReason.STOP,
            )
        ],
        usage_metadata=vt.GenerateContentResponse.UsageMetadata(
            prompt_token_count=prompt_tokens,
            candidates_token_count=out_tokens,
            total_token_count=prompt_tokens + out_tokens,
        ),
        model_version=ref.model,
        response_id=secrets.token_urlsafe(16),
        create_time=call.world.clock.now(),
    )


def count_tokens(call: Call, request: vt.CountTokensRequest) -> vt.CountTokensResponse:
    admit(call, request.model or request.endpoint)
    text = _prompt_text(list(request.contents))
    return vt.CountTokensResponse(total_tokens=tokens_of(text), total_billable_characters=len(text.replace(" ", "")))


def _methods() -> list[Method]:
    out: list[Method] = []
    for version in ("v1", "v1beta1"):
        service = f"google.cloud.aiplatform.{version}.PredictionService"
        # v1beta1 messages share v1's wire format for every field used here, so one set of types serves both.
        out.append(
            Method(
                service,
                "GenerateContent",
                vt.GenerateContentRequest,
                vt.GenerateContentResponse,
                generate_content,
                VERTEX,
            )
        )
        # CountTokens is on LlmUtilityService in v1 and on PredictionService in v1beta1, as in Google's protos.
        counter = "google.cloud.aiplatform.v1.LlmUtilityService" if version == "v1" else service
        out.append(Method(counter, "CountTokens", vt.CountTokensRequest, vt.CountTokensResponse, count_tokens, VERTEX))
    return out


_AIP = "google.cloud.aiplatform"
_MODELS = "projects/*/locations/*/publishers/*/models/*"
# The google.api.http rules of these methods (googleapis protos; the installed GAPIC REST transports carry the
# same templates).
RULES: list[HttpRule] = [
    *[
        rule
        for v in ("v1", "v1beta1")
        for rule in (
            HttpRule(
                "POST",
                f"/{v}/{{model={_MODELS}}}:generateContent",
                f"{_AIP}.{v}.PredictionService.GenerateContent",
                "*",
            ),
            HttpRule(
                "POST",
                f"/{v}/{{endpoint={_MODELS}}}:countTokens",
                f"{_AIP}.v1.LlmUtilityService.CountTokens"
                if v == "v1"
                else f"{_AIP}.v1beta1.PredictionService.CountTokens",
                "*",
            ),
        )
    ],
]


SERVICE = Service(
    apis=(Api(VERTEX, "Vertex AI API", gcloud="AIPLATFORM"),),
    methods=(*_methods(),),
    rules=(*RULES,),
)
