"""The HTTP API as a runbook or a misconfigured caller uses it: formats, debug, and every way to get it wrong."""

from __future__ import annotations

import base64
import json

import pytest

from emulator import testing
from tests.e2e.conftest import StartCanary

GEN = "google.cloud.aiplatform.v1.PredictionService.GenerateContent"
WRITE = "google.monitoring.v3.MetricService.CreateTimeSeries"
LIST = "google.logging.v2.LoggingServiceV2.ListLogEntries"

BAD = [
    ("PUT", "/", {}, None, 405, "method PUT not allowed; use GET or POST"),
    ("DELETE", "/", {}, None, 405, "method DELETE not allowed; use GET or POST"),
    ("GET", "/?verbose=1", {}, None, 400, "unknown query parameter 'verbose'; allowed: debug, format, targets"),
    ("GET", "/?format=xml", {}, None, 400, "query parameter format: 'xml'; allowed: json, text"),
    ("GET", "/?debug=maybe", {}, None, 400, "query parameter debug: 'maybe' is not true or false"),
    ("GET", "/?format=json&format=text", {}, None, 400, "query parameter format given more than once"),
    (
        "GET",
        '/?targets=x" OR logName:*',
        {},
        None,
        400,
        "targets: unknown target 'x\" OR logName:*'; configured targets: gemini-2.5-flash-lite@us-central1",
    ),
    (
        "GET",
        "/?targets=gemini-2.5-flash-lite@us-central1%0AlogName:*",
        {},
        None,
        400,
        "targets: unknown target 'gemini-2.5-flash-lite@us-central1\\nlogName:*'; configured targets: "
        "gemini-2.5-flash-lite@us-central1",
    ),
    (
        "GET",
        "/?targets=",
        {},
        None,
        400,
        "targets: unknown target ''; configured targets: gemini-2.5-flash-lite@us-central1",
    ),
    (
        "POST",
        "/",
        {"Content-Type": "application/json"},
        b"{not json",
        400,
        "the body is not valid JSON: Expecting property name enclosed in double quotes",
    ),
    (
        "POST",
        "/",
        {"Content-Type": "application/json"},
        b"[1, 2]",
        400,
        'the body must be a JSON object, e.g. {"targets": ["gemini-2.5-flash@global"]}',
    ),
    (
        "POST",
        "/",
        {"Content-Type": "application/json"},
        b'{"target": []}',
        400,
        "unknown body field 'target'; allowed: targets",
    ),
    (
        "POST",
        "/",
        {"Content-Type": "application/json"},
        b'{"targets": "all"}',
        400,
        "body field targets: expected a list of MODEL@LOCATION strings",
    ),
    (
        "POST",
        "/",
        {"Content-Type": "application/json"},
        json.dumps({"targets": ["projects/other/locations/us-central1/publishers/google/models/x"]}).encode(),
        400,
        "targets: unknown target 'projects/other/locations/us-central1/publishers/google/models/x'; "
        "configured targets: gemini-2.5-flash-lite@us-central1",
    ),
    (
        "POST",
        "/?targets=gemini-2.5-flash-lite@us-central1",
        {"Content-Type": "application/json"},
        b'{"targets": ["gemini-2.5-flash-lite@us-central1"]}',
        400,
        "targets given both in the query and in the body; give them once",
    ),
    ("POST", "/", {"Content-Type": "text/xml"}, b"<run/>", 415, "content type 'text/xml'; send application/json"),
    (
        "POST",
        "/",
        {"Content-Type": "application/json"},
        b'{"targets": ["' + b"a" * 5000 + b'"]}',
        413,
        "request body of 5017 bytes; at most 4096 bytes",
    ),
    (
        "GET",
        "/",
        {"Content-Type": "application/json"},
        b'{"targets": []}',
        400,
        "a GET request takes no body; use query parameters",
    ),
    (
        "POST",
        "/",
        {"X-CloudScheduler": "true", "X-CloudScheduler-JobName": "job name; rm -rf /"},
        None,
        400,
        "header X-CloudScheduler-JobName: 'job name; rm -rf /' is not a job name",
    ),
    (
        "POST",
        "/",
        {"X-CloudScheduler": "true", "X-CloudScheduler-ScheduleTime": "yesterday"},
        None,
        400,
        "header X-CloudScheduler-ScheduleTime: 'yesterday' is not an RFC 3339 time",
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "status", "message"),
    BAD,
    ids=[f"{m}-{p[:40]}-{s}" for m, p, _, _, s, _ in BAD],
)
def test_bad_requests_are_refused_before_any_call(
    start_canary: StartCanary,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes | None,
    status: int,
    message: str,
) -> None:
    canary = start_canary("healthy")
    response = canary.call(method, path, headers=headers, data=body)
    assert response.status_code == status
    assert response.get_json() == {"error": message}
    assert canary.calls(GEN) == 0
    assert canary.calls(WRITE) == 0
    assert canary.calls(LIST) == 0
    assert canary.last_log["message"] == f"gemini-canary REJECTED: {message}"
    assert canary.last_log["severity"] == "WARNING"


def test_text_format_for_a_runbook(start_canary: StartCanary) -> None:
    canary = start_canary("api_disabled")
    response = canary.call("GET", "/?format=text")
    assert response.status_code == 502
    assert response.content_type.startswith("text/plain")
    text = response.get_data(as_text=True)
    assert text.startswith("gemini-canary DENIED: gemini-2.5-flash-lite@us-central1: api_disabled")
    assert "$ gcloud services enable aiplatform.googleapis.com --project=demo-proj" in text
    assert "metrics  written (4 series)" in text


def test_debug_shows_config_calls_and_metrics(start_canary: StartCanary) -> None:
    canary = start_canary("healthy", CANARY_DEADLINE_SECONDS="12")
    doc = canary.call("GET", "/?debug=true").get_json()
    assert doc["config"]["deadline_seconds"] == 12
    assert doc["config"]["endpoint"] == f"emulator at {canary.emulator.grpc.address}"
    assert [c["method"] for c in doc["calls"]] == [
        "aiplatform.GenerateContent(gemini-2.5-flash-lite@us-central1)",
        "monitoring.CreateTimeSeries",
    ]
    assert all(c["outcome"] == "OK" for c in doc["calls"])
    types = sorted(s["metric"]["type"].rsplit("/", 1)[1] for s in doc["metrics"]["time_series"])
    assert types == ["failures", "latency", "runs", "success"]
    assert "calls" not in canary.last_log
    assert "config" not in canary.last_log


def test_monitoring_failing_never_hides_the_result(start_canary: StartCanary) -> None:
    canary = start_canary("iam_denied")
    for _ in range(2):
        testing.admin(
            canary.emulator,
            "POST",
            "faults",
            {"method": WRITE, "count": 1, "status": {"code": 14, "message": "The service is unavailable."}},
        )
    response = canary.scheduler()
    body = response.get_json()
    assert response.status_code == 502
    assert body["targets"][0]["cause"] == "iam_permission_denied"
    assert body["metrics"] == {
        "written": False,
        "series": 4,
        "error": "ServiceUnavailable: The service is unavailable.",
    }
    assert canary.calls(WRITE) == 2  # one bounded retry
    log = canary.last_log
    assert log["metrics"] == body["metrics"]
    assert log["targets"][0]["remedies"]
    assert log["evidence"]["items"]


@pytest.mark.parametrize(
    "status",
    [
        {"code": 3, "message": "One or more TimeSeries could not be written: timeSeries[0]: boom"},
        {"code": 8, "message": "Quota exceeded for quota metric 'Time series ingestion requests'."},
        {"code": 7, "message": "Permission monitoring.timeSeries.create denied (or the resource may not exist)."},
    ],
    ids=["invalid", "quota", "denied"],
)
def test_metric_write_errors_are_reported_not_raised(start_canary: StartCanary, status: dict[str, object]) -> None:
    canary = start_canary("healthy")
    testing.admin(canary.emulator, "POST", "faults", {"method": WRITE, "count": 1, "status": status})
    response = canary.scheduler()
    assert response.status_code == 200
    assert response.get_json()["metrics"]["error"].endswith(str(status["message"]))
    assert canary.calls(WRITE) == 1


def test_overlapping_runs_on_one_instance_coalesce_metrics(start_canary: StartCanary) -> None:
    canary = start_canary("healthy")
    first = canary.scheduler().get_json()
    second = canary.scheduler().get_json()
    assert first["metrics"]["written"] is True
    assert second["metrics"]["written"] is False
    assert second["metrics"]["skipped"].startswith("coalesced: this instance wrote metrics")
    assert canary.calls(WRITE) == 1


def test_pubsub_trigger_shares_the_logic(start_canary: StartCanary) -> None:
    canary = start_canary("billing_disabled")
    data = base64.b64encode(json.dumps({"targets": ["gemini-2.5-flash-lite@us-central1"]}).encode()).decode()
    from functions_framework import create_app

    app = create_app(target="canary_pubsub", source="function/main.py", signature_type="cloudevent")
    event = {
        "specversion": "1.0",
        "type": "google.cloud.pubsub.topic.v1.messagePublished",
        "source": "//pubsub.googleapis.com/projects/demo-proj/topics/gemini-canary",
        "id": "1234567",
        "datacontenttype": "application/json",
        "data": {
            "message": {"data": data, "messageId": "1234567"},
            "subscription": "projects/demo-proj/subscriptions/s",
        },
    }
    response = app.test_client().post("/", json=event, headers={"Content-Type": "application/cloudevents+json"})
    assert response.status_code == 200
    canary._collect()
    log = canary.last_log
    assert log["trigger"] == {"kind": "pubsub", "message_id": "1234567"}
    assert log["targets"][0]["cause"] == "billing_disabled"
    assert log["message"].startswith("gemini-canary DENIED: gemini-2.5-flash-lite@us-central1: billing_disabled")


def test_bad_config_fails_the_cold_start(start_canary: StartCanary) -> None:
    with pytest.raises(ValueError, match=r"^CANARY_TARGETS: 'gemini' is not MODEL@LOCATION"):
        start_canary("healthy", CANARY_TARGETS="gemini")
