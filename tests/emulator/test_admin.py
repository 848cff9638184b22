"""The admin API (/_emulator/): bad input is refused with a message naming the field and leaves the world as it
was; PATCH /world changes what the real clients see; injected faults reach the real clients as Google's would;
the calls counter counts by method."""

from __future__ import annotations

import time
from typing import Any

import pytest
from google.api_core import exceptions
from google.rpc import error_details_pb2

from devkit.emulated import admin, clients
from tests.emulator.support import GENERATE, OWNER, PROJECT, generate, list_entries, raw_json, world

STATUS = {
    "code": 8,
    "message": "Quota exceeded for aiplatform.googleapis.com/generate_content_requests_per_minute.",
    "details": [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "RATE_LIMIT_EXCEEDED",
            "domain": "googleapis.com",
            "metadata": {"quota_limit": "GenerateContentRequestsPerMinute", "service": "aiplatform.googleapis.com"},
        },
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "30s"},
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [{"subject": f"projects/{PROJECT}", "description": "per-minute limit"}],
        },
    ],
}
ALLOWED_TOP = (
    "clock, deny, description, folders, logging, metadata, models, name, organization, perimeter, principals, "
    "projects, quota, region, timeline, tokens, workload"
)
ACTIONS = (
    "add_binding, add_deny, clear_allowed_models, clear_denied_services, disable_billing, disable_service, "
    "enable_billing, enable_service, remove_binding, remove_deny, revoke_tokens, set_allowed_models, set_audit_logs, "
    "set_denied_services, set_ingestion_lag"
)

BAD_INPUT = [
    # clock
    pytest.param(
        "POST",
        "clock",
        {"advance": 5},
        400,
        "advance: unknown field; allowed: advance_seconds, mode, rate, set",
        id="clock-unknown-field",
    ),
    pytest.param(
        "POST",
        "clock",
        {"advance_seconds": "5"},
        400,
        "advance_seconds: expected a number >= 0, got '5'",
        id="clock-wrong-type",
    ),
    pytest.param(
        "POST",
        "clock",
        {"advance_seconds": -5},
        400,
        "advance_seconds: expected a number >= 0, got -5",
        id="clock-backwards-advance",
    ),
    pytest.param(
        "POST",
        "clock",
        {"set": "2026-11-26T08:59:59Z"},
        400,
        "set: the clock only moves forward: the new time is before the current one",
        id="clock-backwards-set",
    ),
    pytest.param(
        "POST", "clock", {"set": "yesterday"}, 400, "set: not an RFC 3339 timestamp: 'yesterday'", id="clock-bad-time"
    ),
    pytest.param(
        "POST",
        "clock",
        {"mode": "fast"},
        400,
        "mode: expected virtual, running or wall, got 'fast'",
        id="clock-bad-mode",
    ),
    pytest.param(
        "POST",
        "clock",
        {"advance_seconds": 1, "mode": "wall"},
        400,
        "give exactly one of advance_seconds, set, mode (got advance_seconds, mode)",
        id="clock-two-fields",
    ),
    pytest.param("POST", "clock", [60], 400, "the body must be a JSON object", id="clock-not-an-object"),
    # faults
    pytest.param("POST", "faults", {"close": True}, 400, "method: required", id="fault-no-method"),
    pytest.param(
        "POST",
        "faults",
        {"method": "google.cloud.aiplatform.v1.PredictionService.Predict", "close": True},
        400,
        "method: unknown method 'google.cloud.aiplatform.v1.PredictionService.Predict'; examples: "
        "google.cloud.aiplatform.v1.PredictionService.GenerateContent, metadata.token",
        id="fault-unknown-method",
    ),
    pytest.param(
        "POST",
        "faults",
        {"method": GENERATE, "close": True, "hang_seconds": 1},
        400,
        "give exactly one of status, hang_seconds, close, malformed, http_status (got hang_seconds, close)",
        id="fault-two-kinds",
    ),
    pytest.param(
        "POST", "faults", {"method": GENERATE, "close": "yes"}, 400, "close: expected true", id="fault-close-not-true"
    ),
    pytest.param(
        "POST",
        "faults",
        {"method": GENERATE, "close": True, "count": 0},
        400,
        "count: expected a number >= 1, got 0",
        id="fault-count-0",
    ),
    pytest.param(
        "POST",
        "faults",
        {"method": GENERATE, "hang_seconds": 601},
        400,
        "hang_seconds: at most 600",
        id="fault-long-hang",
    ),
    pytest.param(
        "POST",
        "faults",
        {"method": GENERATE, "status": {"code": 8, "details": [{"@type": "type.googleapis.com/google.rpc.Nope"}]}},
        400,
        "status: Failed to parse details field: Can not find message descriptor by type_url: "
        "type.googleapis.com/google.rpc.Nope at Status.details[0].",
        id="fault-status-unknown-@type",
    ),
    pytest.param(
        "POST",
        "faults",
        {"method": GENERATE, "status": {"code": 0}},
        400,
        "status.code: 0 is not a google.rpc.Code error code (1-16)",
        id="fault-status-OK",
    ),
    pytest.param(
        "POST",
        "faults",
        {"method": GENERATE, "status": "PERMISSION_DENIED"},
        400,
        "status: expected an object with code, message and details",
        id="fault-status-not-an-object",
    ),
    pytest.param(
        "POST",
        "faults",
        {"method": GENERATE, "http_status": 500},
        400,
        "http_status: only for metadata.* methods; gRPC/REST methods take a status",
        id="fault-http_status-on-grpc",
    ),
    pytest.param(
        "POST",
        "faults",
        {"method": "metadata.token", "status": {"code": 14}},
        400,
        "status: only for gRPC/REST methods; metadata.* methods take http_status",
        id="fault-status-on-metadata",
    ),
    pytest.param(
        "POST",
        "faults",
        {"method": "metadata.token", "close": True, "http_body": "x"},
        400,
        "http_body: only with http_status",
        id="fault-body-without-status",
    ),
    # world, actions, tokens
    pytest.param(
        "PATCH",
        "world",
        {"projects": {PROJECT: {"billing": "off"}}},
        400,
        f"projects.{PROJECT}.billing: expected true or false, got str 'off'",
        id="patch-wrong-type",
    ),
    pytest.param(
        "PATCH",
        "world",
        {"colour": "red"},
        400,
        f"colour: unknown field; allowed: {ALLOWED_TOP}",
        id="patch-unknown-field",
    ),
    pytest.param(
        "PATCH",
        "world",
        {"projects": {PROJECT: {"bindings": {"roles/aiplatform.user": ["canary"]}}}},
        400,
        f"projects.{PROJECT}.bindings.roles/aiplatform.user[0]: 'canary' is not an IAM member (user:EMAIL, "
        "serviceAccount:EMAIL, group:EMAIL, …)",
        id="patch-bad-member",
    ),
    pytest.param(
        "PATCH",
        "world",
        {"clock": {"mode": "wall"}},
        400,
        "clock: not patchable here; use /_emulator/clock or /_emulator/actions",
        id="patch-clock",
    ),
    pytest.param(
        "PATCH", "world", [1], 400, "the body must be a JSON object in the scenario schema", id="patch-not-object"
    ),
    pytest.param(
        "POST",
        "actions",
        {"actor": OWNER, "action": "explode"},
        400,
        f"action: expected one of {ACTIONS}, got str 'explode'",
        id="action-unknown",
    ),
    pytest.param(
        "POST",
        "actions",
        {"actor": OWNER, "action": "remove_binding", "role": "roles/aiplatform.user"},
        400,
        "member: required by action remove_binding",
        id="action-missing-param",
    ),
    pytest.param(
        "POST",
        "tokens",
        {"emial": "x@example.com"},
        400,
        "emial: unknown field; allowed: email, ttl_seconds",
        id="token-unknown-field",
    ),
    pytest.param(
        "POST",
        "tokens",
        {"email": "x@example.com", "ttl_seconds": 0},
        400,
        "ttl_seconds: expected a number >= 1, got 0",
        id="token-ttl-0",
    ),
    # numbers no clock, counter or timer can hold (issue #10): refused with a message, nothing changed
    pytest.param(
        "POST",
        "clock",
        {"advance_seconds": float("nan")},
        400,
        "the request body is not valid JSON: NaN is not a JSON number",
        id="clock-nan",
    ),
    pytest.param(
        "POST",
        "clock",
        {"advance_seconds": float("inf")},
        400,
        "the request body is not valid JSON: Infinity is not a JSON number",
        id="clock-infinity",
    ),
    pytest.param(
        "POST",
        "clock",
        {"advance_seconds": 1e300},
        400,
        "advance_seconds: at most 3153600000 (100 years), got 1e+300",
        id="clock-1e300",
    ),
    pytest.param(
        "POST",
        "clock",
        {"set": "9999-12-31T23:59:59Z"},
        400,
        "set: at most 9000-01-01T00:00:00Z, got '9999-12-31T23:59:59Z'",
        id="clock-set-at-the-end-of-time",
    ),
    pytest.param(
        "POST",
        "faults",
        {"method": GENERATE, "close": True, "count": 1e300},
        400,
        "count: at most 1000000, got 1e+300",
        id="fault-count-1e300",
    ),
    pytest.param(
        "POST",
        "faults",
        {"method": GENERATE, "close": True, "count": 2.5},
        400,
        "count: expected a whole number, got 2.5",
        id="fault-count-fraction",
    ),
    pytest.param(
        "POST",
        "faults",
        {"method": GENERATE, "hang_seconds": float("-inf")},
        400,
        "the request body is not valid JSON: -Infinity is not a JSON number",
        id="fault-hang-minus-infinity",
    ),
    pytest.param(
        "POST",
        "faults",
        {"method": GENERATE, "hang_seconds": 1e300},
        400,
        "hang_seconds: at most 600",
        id="fault-hang-1e300",
    ),
    pytest.param(
        "POST",
        "faults",
        {"method": "metadata.token", "http_status": 1e300},
        400,
        "http_status: at most 599, got 1e+300",
        id="fault-http_status-1e300",
    ),
    pytest.param(
        "POST",
        "tokens",
        {"email": "x@example.com", "ttl_seconds": 1e300},
        400,
        "ttl_seconds: at most 3153600000 (100 years), got 1e+300",
        id="token-ttl-1e300",
    ),
    pytest.param(
        "PATCH",
        "world",
        {"logging": {"ingestion_lag_seconds": 1e300}},
        400,
        "logging.ingestion_lag_seconds: at most 3153600000 (100 years), got 1e+300",
        id="patch-lag-1e300",
    ),
    pytest.param(
        "PATCH",
        "world",
        {"tokens": {"ttl_seconds": 1e300}},
        400,
        "tokens.ttl_seconds: at most 3153600000 (100 years), got 1e+300",
        id="patch-ttl-1e300",
    ),
    pytest.param(
        "PATCH",
        "world",
        {"metadata": {"failure": {"status": 1e300}}},
        400,
        "metadata.failure.status: at most 599, got 1e+300",
        id="patch-metadata-status-1e300",
    ),
    pytest.param(
        "POST",
        "actions",
        {"actor": OWNER, "action": "set_ingestion_lag", "seconds": 1e300},
        400,
        "seconds: at most 3153600000 (100 years), got 1e+300",
        id="action-lag-1e300",
    ),
    # verbs and paths
    pytest.param("DELETE", "world", None, 405, "method DELETE not allowed on /_emulator/world", id="wrong-verb-world"),
    pytest.param("GET", "clock", None, 405, "method GET not allowed on /_emulator/clock", id="wrong-verb-clock"),
    pytest.param("PUT", "faults", {}, 405, "method PUT not allowed on /_emulator/faults", id="wrong-verb-faults"),
    pytest.param("GET", "nope", None, 404, "unknown admin path /_emulator/nope", id="unknown-path"),
]


@pytest.mark.parametrize(("verb", "path", "body", "status", "message"), BAD_INPUT)
def test_bad_admin_input_is_refused_and_changes_nothing(
    emulator: Any, verb: str, path: str, body: Any, status: int, message: str
) -> None:
    before = world(emulator)
    assert admin(emulator, verb, path, body) == (status, {"error": message})
    assert world(emulator) == before


def test_malformed_json_body_is_refused(emulator: Any) -> None:
    before = world(emulator)
    assert raw_json(emulator.admin_url + "/clock", "POST", b"{advance_seconds: 5}") == (
        400,
        {
            "error": "the request body is not valid JSON: Expecting property name enclosed in double quotes at line 1 "
            "column 2"
        },
    )
    assert world(emulator) == before


# PATCH /world, actions, reset -----------------------------------------------------------------------------------


def test_patch_world_changes_what_clients_see_and_reset_restores_it(emulator: Any) -> None:
    prediction = clients(emulator).prediction
    status, doc = admin(emulator, "PATCH", "world", {"projects": {PROJECT: {"billing": False}}})
    assert status == 200
    assert doc["projects"][PROJECT]["billing"] is False
    assert doc["projects"][PROJECT]["bindings"]["roles/owner"] == [f"user:{OWNER}"]  # the rest merged, not replaced
    with pytest.raises(exceptions.PermissionDenied) as caught:
        generate(prediction)
    assert caught.value.reason == "BILLING_DISABLED"
    assert admin(emulator, "POST", "reset")[0] == 200
    assert world(emulator)["projects"][PROJECT]["billing"] is True
    with pytest.raises(exceptions.Unauthenticated):  # a reset world has issued no tokens yet
        generate(prediction)
    assert generate(clients(emulator).prediction).candidates


def test_action_is_applied_now_and_audited(emulator: Any) -> None:
    action = {"actor": OWNER, "action": "disable_service", "service": "aiplatform.googleapis.com"}
    assert admin(emulator, "POST", "actions", action) == (
        200,
        {"applied": "disable_service", "at": "2026-11-26T09:00:00Z"},
    )
    with pytest.raises(exceptions.PermissionDenied) as caught:
        generate(clients(emulator).prediction)
    assert caught.value.reason == "SERVICE_DISABLED"
    (record,) = admin(emulator, "GET", "logs")[1]["entries"]
    assert record["visible_at"] == "2026-11-26T09:00:03Z"
    payload = record["entry"]["protoPayload"]
    assert (payload["methodName"], payload["authenticationInfo"]["principalEmail"]) == (
        "google.api.serviceusage.v1.ServiceUsage.DisableService",
        OWNER,
    )


def test_minted_token_acts_as_its_email(emulator: Any) -> None:
    status, body = admin(emulator, "POST", "tokens", {"email": OWNER, "ttl_seconds": 60})
    assert status == 200
    assert (body["expires_in"], body["token_type"]) == (60, "Bearer")
    owner = clients(emulator, token=body["access_token"])
    assert list_entries(owner.logging, "") == []  # the owner may list logs; nothing logged yet


# Fault injection --------------------------------------------------------------------------------------------------


def arm(emu: Any, **fault: Any) -> dict[str, Any]:
    status, body = admin(emu, "POST", "faults", {"method": GENERATE, **fault})
    assert status == 201, body
    return dict(body)


def test_status_fault_reaches_the_client_with_its_details(emulator: Any) -> None:
    assert arm(emulator, status=STATUS, count=2) == {"method": GENERATE, "remaining": 2, "kind": "status"}
    prediction = clients(emulator).prediction
    for _ in range(2):
        with pytest.raises(exceptions.ResourceExhausted) as caught:
            generate(prediction)
        err = caught.value
        assert err.message == STATUS["message"]
        assert (err.reason, err.domain) == ("RATE_LIMIT_EXCEEDED", "googleapis.com")
        assert dict(err.metadata) == {
            "quota_limit": "GenerateContentRequestsPerMinute",
            "service": "aiplatform.googleapis.com",
        }
        info, retry, quota = err.details
        assert isinstance(info, error_details_pb2.ErrorInfo)
        assert isinstance(retry, error_details_pb2.RetryInfo)
        assert retry.retry_delay.seconds == 30
        assert isinstance(quota, error_details_pb2.QuotaFailure)
        assert [(v.subject, v.description) for v in quota.violations] == [(f"projects/{PROJECT}", "per-minute limit")]
    assert generate(prediction).candidates  # the fault is used up
    assert admin(emulator, "GET", "faults") == (200, {"faults": []})


def test_hang_fault_trips_the_client_deadline(emulator: Any) -> None:
    arm(emulator, hang_seconds=30)
    prediction = clients(emulator).prediction
    started = time.monotonic()
    with pytest.raises(exceptions.DeadlineExceeded):
        generate(prediction, timeout=0.3)
    # Wall time is what is checked: the emulator gives up with the client (+50 ms), not after the 30 s hang. The
    # bound leaves a loaded runner ample room over the 0.3 s deadline and stays far below the hang.
    assert time.monotonic() - started < 10
    assert generate(prediction, timeout=5).candidates


@pytest.mark.parametrize(
    ("fault", "exc_type", "message"),
    [
        pytest.param({"close": True}, exceptions.ServiceUnavailable, "Socket closed", id="close-UNAVAILABLE"),
        pytest.param(
            {"malformed": True},
            exceptions.InternalServerError,
            "Exception deserializing response!",
            id="malformed-response-INTERNAL",
        ),
    ],
)
def test_broken_responses_fail_the_call_and_the_emulator_keeps_serving(
    emulator: Any, fault: dict[str, Any], exc_type: type[Exception], message: str
) -> None:
    arm(emulator, **fault)
    prediction = clients(emulator).prediction
    with pytest.raises(exc_type) as caught:
        generate(prediction)
    assert type(caught.value) is exc_type
    assert caught.value.message == message  # type: ignore[attr-defined]
    assert generate(prediction).candidates


def test_unavailable_fault_is_retried_by_the_logging_client(emulator: Any) -> None:
    method = "google.logging.v2.LoggingServiceV2.ListLogEntries"
    assert admin(emulator, "POST", "faults", {"method": method, "status": {"code": 14, "message": "backend"}})[0] == 201
    assert list(clients(emulator).logging.list_log_entries(request={"resource_names": [f"projects/{PROJECT}"]})) == []
    assert admin(emulator, "GET", "calls")[1]["calls"][method] == 2  # ListLogEntries' default retry covers UNAVAILABLE


def test_calls_are_counted_by_method(emulator: Any) -> None:
    owner = clients(emulator, email=OWNER)
    prediction = clients(emulator).prediction
    generate(prediction)
    generate(prediction)
    with pytest.raises(exceptions.PermissionDenied):
        generate(clients(emulator, email="nobody@example.com").prediction)
    owner.projects.get_iam_policy(request={"resource": f"projects/{PROJECT}"})
    assert admin(emulator, "GET", "calls") == (
        200,
        {"calls": {GENERATE: 3, "google.cloud.resourcemanager.v3.Projects.GetIamPolicy": 1}},
    )
    assert admin(emulator, "DELETE", "calls") == (200, {"calls": {}})
    generate(prediction)
    assert admin(emulator, "GET", "calls") == (200, {"calls": {GENERATE: 1}})
