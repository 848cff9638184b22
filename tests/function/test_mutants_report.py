"""What the operator reads, word for word: the one-line explanation, the headline, the text of a runbook, the JSON
response and the log line (function/report.py), the organization-policy fixes and help links
(function/remedies.py), a probe's outcome (function/probe.py), and the served entry points' refusals and log lines
(function/main.py)."""

from __future__ import annotations

import base64
import io
import json
import os
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

import grpc
import pytest
from functions_framework import create_app
from google.api.error_reason_pb2 import ErrorReason
from google.cloud import aiplatform_v1
from google.cloud.aiplatform_v1.services.prediction_service.transports import PredictionServiceGrpcTransport
from google.cloud.aiplatform_v1.types import prediction_service as ps

from emulator.server import Emulator
from function import probe as probe_module
from function import report
from function.audit_entries import Change
from function.causes import Cause, Failure
from function.clients import Clients
from function.config import Config, Target
from function.evidence import Evidence, Item
from function.metrics import MetricsReport
from function.probe import Outcome, probe
from function.recorder import Deadline, Recorder
from function.remedies import Remedy, remedies
from function.run import Result, Trigger

FLASH = Target("gemini-2.5-flash", "us-central1")
LITE = Target("gemini-2.5-flash-lite", "global")
SA = "canary@demo-proj.iam.gserviceaccount.com"
STARTED = datetime(2026, 11, 26, 9, 10, 11, 120000, tzinfo=UTC)
TRACE = Trigger("scheduler", job="gemini-canary-job", trace="0af7651916cd43dd8448eb211c80319c", span="b7ad6b7169203331")
PREDICT = "aiplatform.endpoints.predict"
PREDICTION_SERVICE = "google.cloud.aiplatform.v1.PredictionService"
MODEL = f"projects/demo-proj/locations/us-central1/publishers/google/models/{FLASH.model}"
DENIED = Failure(
    Cause.IAM_PERMISSION_DENIED,
    code=403,
    status="PERMISSION_DENIED",
    reason="IAM_PERMISSION_DENIED",
    metadata={"permission": PREDICT, "resource": MODEL},
    message="Permission denied",
)
QUOTA = Failure(Cause.QUOTA, code=429, status="RESOURCE_EXHAUSTED", message="Quota exceeded")
CHANGE = Change("role_removed", "alice@example.com", "2026-11-26T09:00:00Z", "roles/aiplatform.user removed")
GRANT = Remedy("Grant the role", "gcloud projects add-iam-policy-binding demo-proj")
READ = Remedy("Read about it", url="https://cloud.google.com/x")


def result(outcomes: list[Outcome], **fields: Any) -> Result:
    fields.setdefault("project", "demo-proj")
    fields.setdefault("trigger", Trigger("http"))
    fields.setdefault("duration_ms", 1234.56)
    return Result(run_id="run-1", started_at=STARTED, config=Config(targets=(FLASH, LITE)), outcomes=outcomes, **fields)


def ok(target: Target = FLASH, latency_ms: float = 12.34) -> Outcome:
    return Outcome(target, Cause.OK, latency_ms, finish_reason="MAX_TOKENS", tokens=9, model_version="v-001")


def failed(failure: Failure, target: Target = FLASH, latency_ms: float = 40.4) -> Outcome:
    return Outcome(target, failure.cause, latency_ms, failure=failure)


# --- report.explain: one line per failing target ---


@pytest.mark.parametrize(
    ("outcome", "fields", "line"),
    [
        (ok(), {}, "gemini-2.5-flash@us-central1: ok (12 ms)"),
        (
            failed(DENIED),
            {"principal": SA, "evidence": Evidence(predict_granted=True)},
            f"gemini-2.5-flash@us-central1: iam_permission_denied; {SA} holds {PREDICT} through its roles yet is "
            "denied (a deny policy on the project, a folder or the organization, or a principal access boundary)",
        ),
        (
            failed(Failure(Cause.IAM_PERMISSION_DENIED, code=403)),
            {"evidence": Evidence(predict_granted=True)},
            "gemini-2.5-flash@us-central1: iam_permission_denied; the workload's identity holds the permission "
            "through its roles yet is denied (a deny policy on the project, a folder or the organization, or a "
            "principal access boundary)",
        ),
        (
            failed(Failure(Cause.IAM_PERMISSION_DENIED, code=403, metadata={"permission": "aiplatform.x.y"})),
            {"principal": SA, "evidence": Evidence(predict_granted=False)},
            f"gemini-2.5-flash@us-central1: iam_permission_denied; {SA} lacks aiplatform.x.y on demo-proj",
        ),
        (
            failed(Failure(Cause.IAM_PERMISSION_DENIED, code=403)),
            {},
            "gemini-2.5-flash@us-central1: iam_permission_denied; the workload's identity lacks "
            "aiplatform.endpoints.predict on demo-proj",
        ),
        (
            failed(Failure(Cause.API_DISABLED, code=403, reason="SERVICE_DISABLED", message="ignored")),
            {},
            "gemini-2.5-flash@us-central1: api_disabled; 403 SERVICE_DISABLED",
        ),
        (
            failed(Failure(Cause.DEADLINE, message="x" * 160 + "CUT")),
            {},
            "gemini-2.5-flash@us-central1: deadline; " + "x" * 160,
        ),
        (
            failed(Failure(Cause.UNAVAILABLE, code=503, message="  upstream down")),
            {},
            "gemini-2.5-flash@us-central1: unavailable; 503   upstream down",
        ),
        (
            failed(QUOTA),
            {"evidence": Evidence(change=CHANGE, pending=True)},
            "gemini-2.5-flash@us-central1: quota; 429 Quota exceeded; roles/aiplatform.user removed by "
            "alice@example.com at 2026-11-26T09:00:00Z",
        ),
        (
            failed(QUOTA),
            {"evidence": Evidence(pending=True)},
            "gemini-2.5-flash@us-central1: quota; 429 Quota exceeded; audit evidence pending",
        ),
        (
            failed(QUOTA),
            {"remedies": {str(FLASH): [READ, GRANT]}},
            "gemini-2.5-flash@us-central1: quota; 429 Quota exceeded; fix: gcloud projects add-iam-policy-binding "
            "demo-proj",
        ),
        (
            failed(QUOTA),
            {"remedies": {str(FLASH): [READ, Remedy("Ask")]}},
            "gemini-2.5-flash@us-central1: quota; 429 Quota exceeded; fix: https://cloud.google.com/x",
        ),
        (
            failed(QUOTA),
            {"remedies": {str(LITE): [GRANT]}},
            "gemini-2.5-flash@us-central1: quota; 429 Quota exceeded",
        ),
    ],
    ids=[
        "ok",
        "granted-yet-denied",
        "granted-no-permission-no-principal",
        "lacks-named-permission",
        "lacks-predict",
        "reason",
        "message-cut-at-160",
        "code-and-message",
        "change-over-pending",
        "pending",
        "first-fix-with-a-command",
        "no-command-first-url",
        "fixes-of-another-target",
    ],
)
def test_the_one_line_explanation_of_an_outcome(outcome: Outcome, fields: dict[str, Any], line: str) -> None:
    assert report.explain(result([outcome], **fields), outcome) == line


def test_a_failure_with_neither_code_nor_message_explains_only_its_cause() -> None:
    outcome = failed(Failure(Cause.CREDENTIALS))
    assert report.explain(result([outcome]), outcome) == "gemini-2.5-flash@us-central1: credentials; "


# --- report.headline ---


@pytest.mark.parametrize(
    ("outcomes", "fields", "line"),
    [
        (
            [ok(), ok(LITE)],
            {"principal": SA},
            f"gemini-canary OK: 2/2 targets answered in project demo-proj as {SA}",
        ),
        ([ok()], {}, "gemini-canary OK: 1/1 targets answered in project demo-proj as ADC identity"),
        ([ok()], {"error": "no project"}, "gemini-canary ERROR: no project"),
        (
            [failed(QUOTA), ok(LITE), failed(QUOTA, LITE)],
            {},
            "gemini-canary DEGRADED: quota (gemini-2.5-flash@us-central1, gemini-2.5-flash-lite@global) as the "
            "workload's identity",
        ),
        (
            [ok(), failed(Failure(Cause.API_DISABLED, code=403, reason="SERVICE_DISABLED"), LITE)],
            {},
            "gemini-canary DENIED: api_disabled (gemini-2.5-flash-lite@global) as the workload's identity",
        ),
    ],
    ids=["healthy", "healthy-adc", "error", "degraded", "denied"],
)
def test_the_headline_of_each_verdict(outcomes: list[Outcome], fields: dict[str, Any], line: str) -> None:
    assert report.headline(result(outcomes, **fields)) == line


# --- report.to_text, to_json, log_entry, log_line: a healthy run and a failing one, whole ---


def test_the_text_of_a_healthy_run() -> None:
    run = result([ok(), ok(LITE, 7.0)], principal=SA, metrics=MetricsReport(written=True, series=4))
    assert report.to_text(run) == (
        f"gemini-canary OK: 2/2 targets answered in project demo-proj as {SA}\n"
        "\n"
        "ok  gemini-2.5-flash@us-central1  12 ms\n"
        "ok  gemini-2.5-flash-lite@global  7 ms\n"
        "\n"
        f"run run-1  project demo-proj  as {SA}  trigger http  1235 ms\n"
        "metrics  written (4 series)\n"
    )


def failing_run() -> Result:
    evidence = Evidence(
        items=[
            Item("iam", "found", "roles/aiplatform.user was removed"),
            Item("data_access", "unavailable", "cannot read", missing_permission="logging.privateLogEntries.list"),
        ],
        predict_granted=False,
        change=CHANGE,
    )
    return result(
        [failed(DENIED), failed(QUOTA, LITE, 5.5)],
        principal=SA,
        evidence=evidence,
        remedies={str(FLASH): [GRANT, READ]},
        trigger=TRACE,
        metrics=MetricsReport(skipped="coalesced"),
    )


FLASH_SUMMARY = (
    f"gemini-2.5-flash@us-central1: iam_permission_denied; {SA} lacks aiplatform.endpoints.predict on demo-proj; "
    "roles/aiplatform.user removed by alice@example.com at 2026-11-26T09:00:00Z; fix: gcloud projects "
    "add-iam-policy-binding demo-proj"
)
LITE_SUMMARY = (
    "gemini-2.5-flash-lite@global: quota; 429 Quota exceeded; roles/aiplatform.user removed by alice@example.com at "
    "2026-11-26T09:00:00Z"
)
# The named form is over the bound, so each cause counts its targets (the text lists them below the headline).
FAILING_HEADLINE = (
    f"gemini-canary DENIED: iam_permission_denied (1 target), quota (1 target) as {SA}; roles/aiplatform.user "
    "removed by alice@example.com at 2026-11-26T09:00:00Z"
)


def test_the_text_of_a_failing_run() -> None:
    assert report.to_text(failing_run()).splitlines() == [
        FAILING_HEADLINE,
        "",
        "iam_permission_denied  gemini-2.5-flash@us-central1",
        "  gemini-2.5-flash@us-central1  403 PERMISSION_DENIED IAM_PERMISSION_DENIED  40 ms",
        f"  why         {SA} lacks aiplatform.endpoints.predict on demo-proj",
        f"  permission  aiplatform.endpoints.predict on {MODEL}",
        "  fix         Grant the role",
        "    gcloud projects add-iam-policy-binding demo-proj",
        "  also        Read about it [1]",
        "",
        "quota  gemini-2.5-flash-lite@global",
        "  gemini-2.5-flash-lite@global  429 RESOURCE_EXHAUSTED  6 ms",
        "  why         Quota exceeded",
        "",
        f"run run-1  project demo-proj  as {SA}  trigger scheduler gemini-canary-job  1235 ms",
        "changed  roles/aiplatform.user removed by alice@example.com at 2026-11-26T09:00:00Z",
        "evidence",
        "  iam             found      roles/aiplatform.user was removed",
        "  data_access     unavailable cannot read (missing permission: logging.privateLogEntries.list)",
        "metrics  not written: coalesced (0 series)",
        "",
        "links",
        "  [1] https://cloud.google.com/x",
    ]


def test_the_text_names_what_is_unknown_or_missing() -> None:
    """No principal, a permission without its resource, a failure with nothing to show, metrics that failed or
    were skipped without a reason, and the canary's own error."""
    failures = [
        Failure(Cause.IAM_PERMISSION_DENIED, metadata={"permission": PREDICT}),
        Failure(Cause.UNKNOWN),
    ]
    run = result(
        [failed(failures[0]), failed(failures[1], LITE)],
        project=None,
        trigger=Trigger("scheduler"),
        metrics=MetricsReport(error="write failed"),
        error="boom",
    )
    assert report.to_text(run).splitlines() == [
        "gemini-canary ERROR: boom",
        "",
        "iam_permission_denied  gemini-2.5-flash@us-central1",
        "  gemini-2.5-flash@us-central1  -  40 ms",
        "  why         the workload's identity lacks aiplatform.endpoints.predict on None",
        "  permission  aiplatform.endpoints.predict",
        "",
        "unknown  gemini-2.5-flash-lite@global",
        "  gemini-2.5-flash-lite@global  -  40 ms",
        "",
        "run run-1  project None  as (unknown)  trigger scheduler  1235 ms",
        "evidence",
        "metrics  not written: write failed (0 series)",
        "canary error: boom",
    ]
    assert report.to_text(result([ok()])).splitlines()[-1] == "metrics  not written: skipped (0 series)"


def test_the_text_is_sanitized_line_by_line() -> None:
    outcome = failed(Failure(Cause.UNKNOWN, code=500, reason="A\nB"))
    assert report.to_text(result([outcome])).splitlines()[3] == "  gemini-2.5-flash@us-central1  500 A\\nB  40 ms"


def test_the_json_of_a_failing_run() -> None:
    doc = report.to_json(failing_run())
    assert doc == {
        "verdict": "denied",
        "summary": FAILING_HEADLINE,
        "run_id": "run-1",
        "started_at": "2026-11-26T09:10:11.120000Z",
        "duration_ms": 1234.6,
        "project": "demo-proj",
        "principal": SA,
        "trigger": {"kind": "scheduler", "job": "gemini-canary-job"},
        "targets": [
            {
                "target": "gemini-2.5-flash@us-central1",
                "cause": "iam_permission_denied",
                "latency_ms": 40.4,
                "error": {
                    "cause": "iam_permission_denied",
                    "code": 403,
                    "status": "PERMISSION_DENIED",
                    "reason": "IAM_PERMISSION_DENIED",
                    "message": "Permission denied",
                    "metadata": {"permission": PREDICT, "resource": MODEL},
                },
                "summary": FLASH_SUMMARY,
                "remedies": [
                    {"title": "Grant the role", "command": "gcloud projects add-iam-policy-binding demo-proj"},
                    {"title": "Read about it", "url": "https://cloud.google.com/x"},
                ],
            },
            {
                "target": "gemini-2.5-flash-lite@global",
                "cause": "quota",
                "latency_ms": 5.5,
                "error": {"cause": "quota", "code": 429, "status": "RESOURCE_EXHAUSTED", "message": "Quota exceeded"},
                "summary": LITE_SUMMARY,
                "remedies": [],
            },
        ],
        "metrics": {"written": False, "series": 0, "skipped": "coalesced"},
        "evidence": {
            "items": [
                {"step": "iam", "status": "found", "summary": "roles/aiplatform.user was removed"},
                {
                    "step": "data_access",
                    "status": "unavailable",
                    "summary": "cannot read",
                    "missing_permission": "logging.privateLogEntries.list",
                },
            ],
            "pending": False,
            "predict_granted": False,
            "change": {
                "kind": "role_removed",
                "actor": "alice@example.com",
                "at": "2026-11-26T09:00:00Z",
                "detail": "roles/aiplatform.user removed",
            },
        },
    }
    assert list(doc) == [
        "verdict",
        "summary",
        "run_id",
        "started_at",
        "duration_ms",
        "project",
        "principal",
        "trigger",
        "targets",
        "metrics",
        "evidence",
    ]


def test_the_json_of_a_healthy_run_with_debug() -> None:
    """A healthy run has no evidence; debug adds the effective config, the calls and the series written."""
    calls = [{"method": "aiplatform.GenerateContent(gemini-2.5-flash@us-central1)", "ms": 3.0}]
    run = result([ok()], metrics=MetricsReport(written=True, series=4), calls=calls, duration_ms=0.04)
    plain = report.to_json(run)
    assert plain == {
        "verdict": "healthy",
        "summary": "gemini-canary OK: 1/1 targets answered in project demo-proj as ADC identity",
        "run_id": "run-1",
        "started_at": "2026-11-26T09:10:11.120000Z",
        "duration_ms": 0.0,
        "project": "demo-proj",
        "principal": None,
        "trigger": {"kind": "http"},
        "targets": [
            {
                "target": "gemini-2.5-flash@us-central1",
                "cause": "ok",
                "latency_ms": 12.3,
                "finish_reason": "MAX_TOKENS",
                "total_tokens": 9,
                "model_version": "v-001",
            }
        ],
        "metrics": {"written": True, "series": 4},
    }
    debug = report.to_json(run, True)
    assert debug == {
        **plain,
        "metrics": {"written": True, "series": 4, "time_series": []},
        "config": Config(targets=(FLASH, LITE)).public(),
        "calls": calls,
    }
    assert list(debug)[-2:] == ["config", "calls"]


def test_the_json_of_a_failed_canary_names_its_error() -> None:
    doc = report.to_json(result([], error="no project\tfound"))
    assert (doc["verdict"], doc["summary"], doc["error"]) == (
        "error",
        "gemini-canary ERROR: no project\\tfound",
        "no project\\tfound",
    )
    assert "evidence" not in doc


def test_the_log_entry_of_a_failing_run() -> None:
    run = failing_run()
    entry = report.log_entry(run)
    assert {k: v for k, v in entry.items() if k not in report.to_json(run)} == {
        "severity": "ERROR",
        "message": FAILING_HEADLINE,
        "logging.googleapis.com/labels": {
            "canary_verdict": "denied",
            "canary_run_id": "run-1",
            "canary_causes": "iam_permission_denied,quota",
        },
        "logging.googleapis.com/trace": "projects/demo-proj/traces/0af7651916cd43dd8448eb211c80319c",
        "logging.googleapis.com/spanId": "b7ad6b7169203331",
    }
    assert {k: v for k, v in entry.items() if k in report.to_json(run)} == report.to_json(run)
    line = report.log_line(run)
    assert line == json.dumps(entry, separators=(",", ":"))
    assert "\n" not in line


@pytest.mark.parametrize(
    ("outcomes", "trigger", "project", "want"),
    [
        (
            [ok()],
            Trigger("http", trace="abc"),
            "demo-proj",
            {
                "severity": "INFO",
                "labels": {"canary_verdict": "healthy", "canary_run_id": "run-1", "canary_causes": "ok"},
                "logging.googleapis.com/trace": "projects/demo-proj/traces/abc",
            },
        ),
        (
            [failed(QUOTA), failed(QUOTA, LITE), ok()],
            Trigger("http", span="b7ad"),
            "demo-proj",
            {
                "severity": "WARNING",
                "labels": {"canary_verdict": "degraded", "canary_run_id": "run-1", "canary_causes": "quota"},
            },
        ),
        (
            [failed(Failure(Cause.UNKNOWN, code=500))],
            Trigger("http", trace="abc", span="b7ad"),
            None,
            {
                "severity": "ERROR",
                "labels": {"canary_verdict": "denied", "canary_run_id": "run-1", "canary_causes": "unknown"},
            },
        ),
    ],
    ids=["trace-without-span", "span-without-trace", "no-project"],
)
def test_the_log_entry_labels_and_trace(
    outcomes: list[Outcome], trigger: Trigger, project: str | None, want: dict[str, Any]
) -> None:
    entry = report.log_entry(result(outcomes, trigger=trigger, project=project))
    got = {
        "severity": entry["severity"],
        "labels": entry["logging.googleapis.com/labels"],
        **{k: v for k, v in entry.items() if k in ("logging.googleapis.com/trace", "logging.googleapis.com/spanId")},
    }
    assert got == want


def test_the_log_line_writes_a_value_json_has_no_type_for_as_its_text() -> None:
    item = Item("admin_activity", "found", "a change", data={"at": STARTED})
    run = result([failed(QUOTA)], evidence=Evidence(items=[item]))
    assert json.loads(report.log_line(run))["evidence"]["items"] == [
        {
            "step": "admin_activity",
            "status": "found",
            "summary": "a change",
            "data": {"at": "2026-11-26 09:10:11.120000+00:00"},
        }
    ]


# --- function/probe.py: one call, its outcome ---


def test_a_probe_that_answers_keeps_the_finish_reason_tokens_and_model_version(emulator: Emulator) -> None:
    recorder = Recorder()
    clients = Clients(Config(emulator=emulator.grpc.address))
    outcome = probe(FLASH, "demo-proj", clients, Deadline(10), recorder)
    assert (outcome.target, outcome.cause, outcome.failure) == (FLASH, Cause.OK, None)
    assert (outcome.finish_reason, outcome.tokens, outcome.model_version) == ("MAX_TOKENS", 9, FLASH.model)
    assert [(c["method"], c["outcome"]) for c in recorder.calls] == [
        ("aiplatform.GenerateContent(gemini-2.5-flash@us-central1)", "OK")
    ]


class Prediction:
    """A Vertex AI endpoint of one method on a loopback port: GenerateContent answers with no candidate (as Google
    does for a prompt it blocks), after `hold` seconds unless released first."""

    def __init__(self) -> None:
        self.hold = 0.0
        self.released = threading.Event()
        self.requests: list[ps.GenerateContentRequest] = []
        self.locations: list[str] = []
        handler = grpc.unary_unary_rpc_method_handler(
            self._generate_content,
            request_deserializer=ps.GenerateContentRequest.deserialize,
            response_serializer=ps.GenerateContentResponse.serialize,
        )
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(PREDICTION_SERVICE, {"GenerateContent": handler}),)
        )
        port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.client = aiplatform_v1.PredictionServiceClient(
            transport=PredictionServiceGrpcTransport(channel=self.channel)
        )

    def _generate_content(self, request: ps.GenerateContentRequest, context: grpc.ServicerContext) -> Any:
        self.requests.append(request)
        if self.hold:
            self.released.wait(self.hold)
        return ps.GenerateContentResponse(model_version="m-1", usage_metadata={"total_token_count": 3})

    def prediction(self, location: str) -> aiplatform_v1.PredictionServiceClient:
        self.locations.append(location)
        return self.client


@pytest.fixture
def prediction() -> Iterator[Prediction]:
    served = Prediction()
    yield served
    served.released.set()
    served.channel.close()
    served.server.stop(None)


def test_a_response_without_a_candidate_is_answered_with_no_finish_reason(prediction: Prediction) -> None:
    outcome = probe(FLASH, "demo-proj", cast(Clients, prediction), Deadline(10), Recorder())
    assert (outcome.cause, outcome.finish_reason, outcome.tokens, outcome.model_version) == (
        Cause.OK,
        "NO_CANDIDATE",
        3,
        "m-1",
    )
    assert prediction.locations == ["us-central1"]


def test_the_request_is_the_fixed_prompt_one_output_token_at_temperature_zero(prediction: Prediction) -> None:
    probe(FLASH, "demo-proj", cast(Clients, prediction), Deadline(10), Recorder())
    [request] = prediction.requests
    assert request == ps.GenerateContentRequest(
        model=MODEL,
        contents=[
            aiplatform_v1.Content(role="user", parts=[aiplatform_v1.Part(text="Reply with the single word OK.")])
        ],
        generation_config=aiplatform_v1.GenerationConfig(max_output_tokens=1, temperature=0.0),
    )
    assert "temperature" in request.generation_config  # set, not left to the model's default


def test_the_latency_is_the_probe_s_own_time_in_milliseconds(
    prediction: Prediction, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From before the client is taken to the answer, on the monotonic performance counter."""
    ticks = iter([100.0, 100.25])
    monkeypatch.setattr(probe_module, "time", SimpleNamespace(perf_counter=lambda: next(ticks)))
    assert probe(FLASH, "demo-proj", cast(Clients, prediction), Deadline(10), Recorder()).latency_ms == 250.0


def test_a_probe_waits_no_longer_than_the_run_has_left(prediction: Prediction) -> None:
    """A run with no time left gives its call the least timeout (50 ms): the call ends DEADLINE_EXCEEDED."""
    prediction.hold = 3.0
    recorder = Recorder()
    outcome = probe(FLASH, "demo-proj", cast(Clients, prediction), Deadline(0), recorder)
    assert outcome.cause == Cause.DEADLINE
    assert (outcome.failure.status if outcome.failure else None, outcome.finish_reason) == ("DEADLINE_EXCEEDED", None)
    assert [c["outcome"] for c in recorder.calls] == ["DEADLINE_EXCEEDED"]


def test_the_json_of_an_outcome() -> None:
    assert Outcome(FLASH, Cause.OK, 0.05).to_json() == {
        "target": "gemini-2.5-flash@us-central1",
        "cause": "ok",
        "latency_ms": 0.1,
    }
    assert Outcome(FLASH, Cause.OK, 1.25, finish_reason="STOP").to_json() == {
        "target": "gemini-2.5-flash@us-central1",
        "cause": "ok",
        "latency_ms": 1.2,
        "finish_reason": "STOP",
        "total_tokens": None,
        "model_version": None,
    }


# --- function/remedies.py: organization policy fixes and help links ---


def fixes_for(failure: Failure, project: str = "demo-proj") -> list[Remedy]:
    return remedies(failed(failure), Evidence(), project, SA)


def test_a_service_usage_denial_names_the_constraint_and_its_documentation() -> None:
    reason = ErrorReason.Name(ErrorReason.RESOURCE_USAGE_RESTRICTION_VIOLATED)
    assert fixes_for(Failure(Cause.ORG_POLICY, code=403, reason=reason)) == [
        Remedy(
            "See which services the organization policy denies (set here, on a folder or the organization)",
            "gcloud org-policies describe gcp.restrictServiceUsage --project=demo-proj --effective",
        ),
        Remedy(
            "Ask an organization policy administrator to stop denying aiplatform.googleapis.com to this project "
            "(constraints/gcp.restrictServiceUsage)",
            url="https://cloud.google.com/resource-manager/docs/organization-policy/restricting-services",
        ),
    ]


def test_any_other_constraint_is_named_in_both_fixes() -> None:
    reason = ErrorReason.Name(ErrorReason.LOCATION_ORG_POLICY_VIOLATED)
    assert fixes_for(Failure(Cause.ORG_POLICY, code=403, reason=reason), project="demo proj") == [
        Remedy(
            "See the effective constraints/gcp.resourceLocations (set here, on a folder or the organization)",
            "gcloud org-policies describe gcp.resourceLocations --project='demo proj' --effective",
        ),
        Remedy("Ask an organization policy administrator about constraints/gcp.resourceLocations for this project"),
    ]


def test_the_model_allowlist_fix_names_the_model() -> None:
    failure = Failure(Cause.ORG_POLICY, code=403, message="violates constraints/vertexai.allowedModels.")
    assert fixes_for(failure, project="demo proj") == [
        Remedy(
            "See the effective model allowlist (set here, on a folder or the organization)",
            "gcloud org-policies describe vertexai.allowedModels --project='demo proj' --effective",
        ),
        Remedy(
            "Ask an organization policy administrator to allow publishers/google/models/gemini-2.5-flash:predict",
            url="https://cloud.google.com/vertex-ai/generative-ai/docs/control-model-access",
        ),
    ]


@pytest.mark.parametrize("role", ["roles/owner", "roles/editor", "roles/viewer"])
def test_a_basic_role_removed_is_restored_as_the_least_privileged_one(role: str) -> None:
    change = Change("role_removed", "alice@example.com", "2026-11-26T09:00:00Z", f"{role} removed", role=role)
    [grant, *_] = remedies(failed(DENIED), Evidence(predict_granted=False, change=change), "demo-proj", SA)
    assert grant == Remedy(
        "Grant roles/aiplatform.user to the workload's service account",
        f"gcloud projects add-iam-policy-binding demo-proj --member=serviceAccount:{SA} --role=roles/aiplatform.user "
        "--condition=None",
    )


def test_a_perimeter_denial_without_its_unique_id_or_perimeter_still_links_the_troubleshooter() -> None:
    assert fixes_for(Failure(Cause.VPC_SC, code=403)) == [
        Remedy(
            "Open the VPC Service Controls troubleshooter for this denial",
            url="https://console.cloud.google.com/security/service-perimeter/troubleshoot;uniqueId=?project=demo-proj",
        )
    ]


def test_the_perimeter_s_policy_is_what_precedes_its_first_service_perimeters_part() -> None:
    denial = Evidence(policy_denial={"perimeter": "accessPolicies/123/servicePerimeters/a/servicePerimeters/b"})
    [_troubleshooter, inspect] = remedies(failed(Failure(Cause.VPC_SC, code=403)), denial, "demo-proj", SA)
    assert inspect.command == "gcloud access-context-manager perimeters describe a/servicePerimeters/b --policy=123"


BILLING = "https://console.developers.google.com/billing/enable?project=123456789012"
OTHER = "https://console.developers.google.com/billing/other?project=123456789012"


@pytest.mark.parametrize(
    ("links", "url"),
    [
        ([{"url": OTHER}, {"description": "Google developers console BILLING", "url": BILLING}], BILLING),
        ([{"description": "billing", "url": BILLING}, {"description": "billing", "url": OTHER}], BILLING),
        (
            [{"description": "billing", "url": "http://example.com/billing"}, {"description": "billing", "url": OTHER}],
            OTHER,
        ),
        ([{"description": "billing"}, {"description": "Billing account", "url": OTHER}], OTHER),
        (
            [{"description": "console", "url": BILLING}],
            "https://console.cloud.google.com/billing/linkedaccount?project=demo-proj",
        ),
    ],
    ids=[
        "no-description-then-upper-case",
        "first-of-two",
        "not-google-skipped",
        "no-url-skipped",
        "none-about-billing",
    ],
)
def test_the_billing_fix_links_the_first_google_help_link_about_billing(links: list[dict[str, str]], url: str) -> None:
    [link, _describe] = fixes_for(Failure(Cause.BILLING_DISABLED, code=403, links=links))
    assert link.url == url


# --- function/main.py: the entry points as functions-framework serves them ---

# functions-framework loads GOOGLE_FUNCTION_SOURCE as a top-level module of its own name; this source imports the
# canary's entry points as the package module function.main, afresh, inside the app functions-framework builds (its
# error handler and body limit are set on that app at import).
ENTRY = "import sys\n\nsys.modules.pop('function.main', None)\nfrom function.main import canary, canary_pubsub\n"

Serve = Callable[..., Any]


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    """serve("canary") → a test client of the function served by functions-framework, configured with one target;
    its emulator endpoint is a closed loopback port, so a run it lets through fails fast and never reaches Google."""
    source = tmp_path_factory.mktemp("served") / "canary_entry.py"
    source.write_text(ENTRY)
    patch = pytest.MonkeyPatch()
    for key in [k for k in os.environ if k.startswith("CANARY_")]:
        patch.delenv(key)
    patch.setenv("CANARY_TARGETS", str(FLASH))
    patch.setenv("CANARY_PROJECT", "demo-proj")
    patch.setenv("CANARY_EMULATOR_GRPC", "127.0.0.1:9")
    patch.setenv("CANARY_DEADLINE_SECONDS", "5")

    def start(target: str, signature_type: str = "http") -> Any:
        return create_app(target=target, source=str(source), signature_type=signature_type).test_client()

    try:
        yield start
    finally:
        patch.undo()
        sys.modules.pop("function.main", None)


def stdout_of(monkeypatch: pytest.MonkeyPatch) -> io.BytesIO:
    """What reaches the process's stdout stream, only once it is flushed (as a pipe to the logging agent would)."""
    raw = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(raw, encoding="utf-8"))
    return raw


def test_a_refused_request_is_its_status_json_and_headers_and_one_warning_line(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = stdout_of(monkeypatch)
    response = serve("canary").put("/")
    body = b'{"error": "method PUT not allowed; use GET or POST"}\n'
    assert (response.status_code, response.data) == (405, body)
    assert response.headers.to_wsgi_list() == [  # as sent: names in their canonical case
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
        ("Allow", "GET, POST"),
    ]
    assert out.getvalue().decode() == (
        '{"severity": "WARNING", "message": "gemini-canary REJECTED: method PUT not allowed; use GET or POST", '
        '"rejected": "http", "status": 405}\n'
    )


def test_a_pubsub_envelope_over_the_limit_is_acknowledged_unread(serve: Serve, monkeypatch: pytest.MonkeyPatch) -> None:
    out = stdout_of(monkeypatch)
    envelope = {"message": {"data": base64.b64encode(b" " * 70_000).decode(), "messageId": "1"}, "subscription": "s"}
    response = serve("canary_pubsub", "cloudevent").post("/", json=envelope)
    body = b'{"error": "request body over 65536 bytes; not read"}\n'
    assert (response.status_code, response.data, response.headers["Content-Length"]) == (200, body, str(len(body)))
    assert json.loads(out.getvalue()) == {
        "severity": "WARNING",
        "message": "gemini-canary REJECTED: request body over 65536 bytes; not read",
        "rejected": "pubsub",
        "status": 413,
    }


def test_a_run_writes_its_one_log_line_to_stdout(
    serve: Serve, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The log line is the response's JSON with the severity, the message and the labels Cloud Logging reads, one
    line, flushed before the response is sent."""
    monkeypatch.setenv("CANARY_EMULATOR_GRPC", emulator.grpc.address)
    client = serve("canary")
    out = stdout_of(monkeypatch)
    doc = client.get("/").get_json()
    written = out.getvalue().decode()
    assert written.endswith("}\n")
    [line] = written.splitlines()
    entry = json.loads(line)
    assert doc["verdict"] == "healthy"
    assert {k: v for k, v in entry.items() if k in doc} == doc
    assert {k: v for k, v in entry.items() if k not in doc} == {
        "severity": "INFO",
        "message": doc["summary"],
        "logging.googleapis.com/labels": {
            "canary_verdict": "healthy",
            "canary_run_id": doc["run_id"],
            "canary_causes": "ok",
        },
    }
