"""The REST front end as curl sees it: Google's URL templates and JSON mapping over the same handlers, Google's
texts for a body that is not JSON or names unknown fields, query parameters bound to request fields, and the
shared machinery (faults, call counting) applied exactly as on gRPC."""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
from typing import Any
from urllib.parse import quote

import pytest

from devkit.emulated import admin, clients, token_for
from emulator.server import Emulator
from tests.emulator.support import OWNER, PROJECT, advance, generate, model_name, raw_http
from tests.shared import WORKLOAD

GENERATE = "google.cloud.aiplatform.v1.PredictionService.GenerateContent"
PROMPT = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
METRIC = "custom.googleapis.com/gemini_canary/runs"


def rest(
    emu: Emulator, verb: str, path: str, body: Any = None, email: str = OWNER, raw: bytes | None = None
) -> tuple[int, Any]:
    """(status, decoded JSON body) of one request as `email`."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    headers = {"Authorization": f"Bearer {token_for(emu, email)}", "Content-Type": "application/json"}
    status, text = raw_http(f"{emu.rest_url}{path}", verb, data, headers)
    return status, json.loads(text) if text else None


def generate_path(query: str = "") -> str:
    return f"/v1/{model_name()}:generateContent{query}"


def test_unknown_path_is_a_json_404(emulator: Emulator) -> None:
    assert rest(emulator, "GET", "/v9/nowhere") == (
        404,
        {
            "error": {
                "code": 404,
                "message": "The requested URL /v9/nowhere was not found on this server.",
                "status": "NOT_FOUND",
            }
        },
    )


def _bad_request(text: str, field: str = "") -> dict[str, Any]:
    violation = {"field": field, "description": text} if field else {"description": text}
    return {
        "error": {
            "code": 400,
            "message": text,
            "status": "INVALID_ARGUMENT",
            "details": [{"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [violation]}],
        }
    }


@pytest.mark.parametrize(
    ("body", "text", "field"),
    [
        pytest.param(
            {**PROMPT, "temperature": 0.2},
            'Invalid JSON payload received. Unknown name "temperature": Cannot find field.',
            "",
            id="top-level",
        ),
        pytest.param(
            {"contents": [{"role": "user", "parts": [{"text": "hi", "bold": True}]}]},
            "Invalid JSON payload received. Unknown name \"bold\" at 'contents[0].parts[0]': Cannot find field.",
            "contents[0].parts[0]",
            id="nested-in-a-list",
        ),
        pytest.param(
            {**PROMPT, "generationConfig": {"maxTokens": 5}},
            "Invalid JSON payload received. Unknown name \"maxTokens\" at 'generation_config': Cannot find field.",
            "generation_config",
            id="nested-message",
        ),
    ],
)
def test_unknown_field_is_400_with_googles_text(emulator: Emulator, body: Any, text: str, field: str) -> None:
    assert rest(emulator, "POST", generate_path(), body, WORKLOAD) == (400, _bad_request(text, field))
    assert emulator.world.calls[GENERATE] == 0  # refused by the front end, never served


def test_unknown_fields_are_all_listed(emulator: Emulator) -> None:
    status, body = rest(emulator, "POST", generate_path(), {**PROMPT, "a": 1, "b": 2}, WORKLOAD)
    assert status == 400
    assert body["error"]["message"] == (
        'Invalid JSON payload received. Unknown name "a": Cannot find field.\n'
        'Invalid JSON payload received. Unknown name "b": Cannot find field.'
    )
    assert len(body["error"]["details"][0]["fieldViolations"]) == 2


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param(
            b'{"contents": [] "x": 1}',
            'Invalid JSON payload received. Expected , or } after key:value pair.\n{"contents": [] "x": 1}\n'
            + " " * 16
            + "^",
            id="missing-comma",
        ),
        pytest.param(b"{not json", "Invalid JSON payload received. Unexpected token.\n{not json\n ^", id="garbage"),
        pytest.param(
            b"[1, 2]", 'Invalid JSON payload received. Unknown name "": Root element must be a message.', id="array"
        ),
    ],
)
def test_body_that_is_not_a_json_object_is_400(emulator: Emulator, raw: bytes, message: str) -> None:
    status, body = rest(emulator, "POST", generate_path(), email=WORKLOAD, raw=raw)
    assert (status, body["error"]["status"], body["error"]["message"]) == (400, "INVALID_ARGUMENT", message)


def test_unknown_query_parameter_cannot_be_bound(emulator: Emulator) -> None:
    status, body = rest(emulator, "GET", f"/v3/projects/{PROJECT}/alertPolicies?colour=red&alt=json&prettyPrint=false")
    assert status == 400
    assert body["error"]["message"] == (
        'Invalid JSON payload received. Unknown name "colour": Cannot bind query parameter. '
        "Field 'colour' could not be found in request message."
    )


def test_enum_encoding_follows_the_alt_parameter(emulator: Emulator) -> None:
    _, named = rest(emulator, "POST", generate_path("?alt=json"), PROMPT, WORKLOAD)
    _, numbered = rest(emulator, "POST", generate_path("?%24alt=json%3Benum-encoding%3Dint"), PROMPT, WORKLOAD)
    assert named["candidates"][0]["finishReason"] == "STOP"
    assert numbered["candidates"][0]["finishReason"] == 1


# The shared machinery ------------------------------------------------------------------------------------------


def _arm(emu: Emulator, **fault: Any) -> None:
    status, body = admin(emu, "POST", "faults", {"method": GENERATE, **fault})
    assert status == 201, body


def test_status_fault_answers_its_rest_error_body(emulator: Emulator) -> None:
    _arm(emulator, status={"code": 14, "message": "The service is currently unavailable."})
    assert rest(emulator, "POST", generate_path(), PROMPT, WORKLOAD) == (
        503,
        {"error": {"code": 503, "message": "The service is currently unavailable.", "status": "UNAVAILABLE"}},
    )
    assert rest(emulator, "POST", generate_path(), PROMPT, WORKLOAD)[0] == 200  # count 1: the next call is served


def test_close_fault_drops_the_connection(emulator: Emulator) -> None:
    _arm(emulator, close=True)
    with pytest.raises((ConnectionError, http.client.HTTPException, urllib.error.URLError)):
        rest(emulator, "POST", generate_path(), PROMPT, WORKLOAD)


def test_malformed_fault_is_a_200_that_is_not_json(emulator: Emulator) -> None:
    _arm(emulator, malformed=True)
    status, text = raw_http(
        f"{emulator.rest_url}{generate_path()}",
        "POST",
        json.dumps(PROMPT).encode(),
        {"Authorization": f"Bearer {token_for(emulator, WORKLOAD)}"},
    )
    assert status == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_hang_fault_delays_the_answer(emulator: Emulator) -> None:
    _arm(emulator, hang_seconds=0.4)
    started = time.monotonic()
    assert rest(emulator, "POST", generate_path(), PROMPT, WORKLOAD)[0] == 200
    assert time.monotonic() - started >= 0.4  # a lower bound: no load can make the answer come sooner


def test_rest_and_grpc_calls_are_counted_together(emulator: Emulator) -> None:
    rest(emulator, "POST", generate_path(), PROMPT, WORKLOAD)
    generate(clients(emulator).prediction)
    assert admin(emulator, "GET", "calls")[1]["calls"][GENERATE] == 2


# Logging, Monitoring and Resource Manager over REST ------------------------------------------------------------


def test_log_entries_written_and_listed_over_rest(emulator: Emulator) -> None:
    entry = {
        "logName": f"projects/{PROJECT}/logs/canary",
        "resource": {"type": "global", "labels": {"project_id": PROJECT}},
        "jsonPayload": {"cause": "iam_permission_denied"},
        "severity": "ERROR",
    }
    assert rest(emulator, "POST", "/v2/entries:write", {"entries": [entry]}) == (200, {})
    advance(emulator, 5)  # past the ingestion lag
    query = {"resourceNames": [f"projects/{PROJECT}"], "filter": 'jsonPayload.cause="iam_permission_denied"'}
    status, body = rest(emulator, "POST", "/v2/entries:list", query)
    assert status == 200
    assert [e["jsonPayload"] for e in body["entries"]] == [{"cause": "iam_permission_denied"}]


def _series(end: str, value: int) -> dict[str, Any]:
    labels = {"project_id": PROJECT, "location": "us-central1", "namespace": "canary", "job": "canary", "task_id": "t1"}
    return {
        "metric": {"type": METRIC, "labels": {"target": "flash-lite"}},
        "resource": {"type": "generic_task", "labels": labels},
        "points": [{"interval": {"endTime": end}, "value": {"int64Value": str(value)}}],
    }


def test_time_series_created_and_listed_with_query_parameters(emulator: Emulator) -> None:
    path = f"/v3/projects/{PROJECT}/timeSeries"
    assert rest(emulator, "POST", path, {"timeSeries": [_series("2026-11-26T09:00:00Z", 2)]}) == (200, {})
    advance(emulator, 60)
    assert rest(emulator, "POST", path, {"timeSeries": [_series("2026-11-26T09:01:00Z", 3)]}) == (200, {})
    query = "&".join(
        [
            "filter=" + quote(f'metric.type="{METRIC}"'),
            "interval.startTime=2026-11-26T08:55:00Z",
            "interval.endTime=2026-11-26T09:05:00Z",
            "aggregation.alignmentPeriod=600s",
            "aggregation.perSeriesAligner=ALIGN_SUM",
            "aggregation.crossSeriesReducer=REDUCE_SUM",
            "aggregation.groupByFields=metric.label.target",
        ]
    )
    status, body = rest(emulator, "GET", f"{path}?{query}")
    assert status == 200, body
    [series] = body["timeSeries"]
    assert series["metric"]["labels"] == {"target": "flash-lite"}
    assert [p["value"]["int64Value"] for p in series["points"]] == ["5"]
    status, descriptor = rest(emulator, "GET", f"/v3/projects/{PROJECT}/metricDescriptors/{METRIC}")
    assert (status, descriptor["type"], descriptor["valueType"]) == (200, METRIC, "INT64")


def test_alert_policy_body_goes_to_its_field(emulator: Emulator) -> None:
    policy = {
        "displayName": "canary denied",
        "combiner": "OR",
        "conditions": [
            {
                "displayName": "denied",
                "conditionThreshold": {
                    "filter": f'metric.type="{METRIC}" AND resource.type="generic_task"',
                    "comparison": "COMPARISON_GT",
                    "thresholdValue": 0,
                    "duration": "0s",
                    "aggregations": [{"alignmentPeriod": "300s", "perSeriesAligner": "ALIGN_SUM"}],
                },
            }
        ],
    }
    status, created = rest(emulator, "POST", f"/v3/projects/{PROJECT}/alertPolicies", policy)
    assert status == 200, created
    assert created["name"].startswith(f"projects/{PROJECT}/alertPolicies/")
    status, listed = rest(emulator, "GET", f"/v3/projects/{PROJECT}/alertPolicies")
    assert [p["displayName"] for p in listed["alertPolicies"]] == ["canary denied"]
    status, bad = rest(emulator, "POST", f"/v3/projects/{PROJECT}/alertPolicies", {**policy, "severity2": "x"})
    assert bad["error"]["message"] == (
        "Invalid JSON payload received. Unknown name \"severity2\" at 'alert_policy': Cannot find field."
    )


def test_resource_manager_v1_and_v3_serve_the_same_policy(emulator: Emulator) -> None:
    options = {"options": {"requestedPolicyVersion": 3}}
    status_v1, v1 = rest(emulator, "POST", f"/v1/projects/{PROJECT}:getIamPolicy", options)
    status_v3, v3 = rest(emulator, "POST", f"/v3/projects/{PROJECT}:getIamPolicy", options)
    assert (status_v1, status_v3) == (200, 200)
    assert v1 == v3
    assert {"role": "roles/owner", "members": [f"user:{OWNER}"]} in v1["bindings"]
    assert rest(emulator, "GET", f"/v1/projects/{PROJECT}") == (
        200,
        {
            "projectNumber": "412345678901",
            "projectId": PROJECT,
            "lifecycleState": "ACTIVE",
            "name": PROJECT,
            "parent": {"type": "organization", "id": "123456789012"},
        },
    )
    status, project = rest(emulator, "GET", f"/v3/projects/{PROJECT}")
    assert (status, project["name"], project["state"]) == (200, "projects/412345678901", "ACTIVE")
    asked = {"permissions": ["resourcemanager.projects.get", "aiplatform.endpoints.predict"]}
    assert rest(emulator, "POST", f"/v1/projects/{PROJECT}:testIamPermissions", asked, WORKLOAD) == (
        200,
        {"permissions": ["resourcemanager.projects.get", "aiplatform.endpoints.predict"]},
    )


def test_projects_list_shows_only_the_projects_the_caller_may_get(emulator: Emulator) -> None:
    """v1 projects.list (what `gcloud projects list` calls): the caller's projects only, filtered, paged."""
    from emulator.core.iam import Binding, Policy
    from emulator.core.world import Project

    with emulator.world.lock:
        for project_id, number in (("demo-proj-2", "412345678902"), ("hidden-proj", "412345678903")):
            emulator.world.projects[project_id] = Project(project_id, number, Policy())
        emulator.world.projects["demo-proj-2"].policy.bindings.append(Binding("roles/browser", [f"user:{OWNER}"]))
    status, doc = rest(emulator, "GET", "/v1/projects?filter=lifecycleState%3AACTIVE&pageSize=500")
    assert status == 200, doc
    assert [p["projectId"] for p in doc["projects"]] == [PROJECT, "demo-proj-2"]  # never hidden-proj
    assert doc["projects"][1] == {
        "projectNumber": "412345678902",
        "projectId": "demo-proj-2",
        "lifecycleState": "ACTIVE",
        "name": "demo-proj-2",
        "parent": {"type": "organization", "id": "123456789012"},
    }
    prefixed = rest(emulator, "GET", "/v1/projects?filter=id%3ADEMO-proj-*")[1]
    assert [p["projectId"] for p in prefixed["projects"]] == ["demo-proj-2"]
    assert rest(emulator, "GET", "/v1/projects?filter=id%3Anone") == (200, {})
    status, page = rest(emulator, "GET", "/v1/projects?pageSize=1")
    assert (status, len(page["projects"])) == (200, 1)
    status, rest_of = rest(emulator, "GET", f"/v1/projects?pageSize=1&pageToken={page['nextPageToken']}")
    assert [p["projectId"] for p in rest_of["projects"]] == ["demo-proj-2"]
    status, err = rest(emulator, "GET", "/v1/projects?filter=owner%3Ame")
    assert status == 400
    assert err["error"]["status"] == "INVALID_ARGUMENT"
    assert "'owner:me'" in err["error"]["message"]
    assert rest(emulator, "GET", "/v1/projects", email=WORKLOAD)[1]["projects"][0]["projectId"] == PROJECT
