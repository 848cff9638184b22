"""The exact words, keys and limits of the classifier, its sanitizer, the call record and the metrics report.

Errors are built the way google-api-core builds them from a response (`from_http_status`, `from_grpc_status`, with
the details it parses), so the classifier sees what a real client raises; Google's constants come from the installed
protos (google/rpc/code.proto) and client libraries.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
import requests
from google.api_core import exceptions as core
from google.rpc import code_pb2, error_details_pb2

from devkit.emulated import admin
from emulator.server import Emulator
from function import metrics
from function.causes import LINK_WITHHELD, Cause, classify
from function.clients import METADATA_TIMEOUT_S, Clients, ProjectUnknown
from function.config import Config
from function.metrics import MetricsReport, MetricsWriter, TargetSignal, series_for
from function.recorder import Deadline, Recorder

T = "type.googleapis.com/google.rpc."
GOOGLE_LINK = "https://console.cloud.google.com/apis/library"


def _response(code: int, body: bytes) -> requests.Response:
    response = requests.Response()
    response.status_code = code
    response._content = body
    response.request = requests.Request("POST", "https://us-central1-aiplatform.googleapis.com/v1/m:x").prepare()
    return response


def _rest(code: int, details: list[dict[str, Any]], message: str = "the message") -> core.GoogleAPICallError:
    """A REST error whose JSON body states no status, with the details google-api-core parsed from it."""
    body = json.dumps({"error": {"code": code, "message": message, "details": details}}).encode()
    return core.from_http_status(code, message, response=_response(code, body), details=details)


# --- function/causes.py: the status of a REST error that states none ---


def _http_mapping() -> dict[int, set[str]]:
    """google.rpc.Code's documented HTTP mapping: each code's `// HTTP Mapping: NNN …` comment."""
    text = (Path(code_pb2.__file__).parent / "code.proto").read_text()
    mapping: dict[int, set[str]] = {}
    for http, name in re.findall(r"// HTTP Mapping: (\d{3})[^\n]*\n\s*([A-Z_]+) = \d+;", text):
        mapping.setdefault(int(http), set()).add(name)
    return mapping


HTTP_MAPPING = _http_mapping()


def test_code_proto_maps_the_codes_a_call_can_fail_with() -> None:
    assert sorted(HTTP_MAPPING) == [200, 400, 401, 403, 404, 409, 429, 499, 500, 501, 503, 504]


@pytest.mark.parametrize("http", [c for c in sorted(HTTP_MAPPING) if c != 200])
def test_a_rest_error_body_that_is_not_json_gets_the_status_its_http_code_maps_to(http: int) -> None:
    """A front end's HTML page names no status: google.rpc.Code's HTTP mapping gives it, from the code alone."""
    error = core.from_http_status(http, "the message", response=_response(http, b"<html>Error</html>"))
    failure = classify(error)
    assert failure.code == http
    assert failure.status in HTTP_MAPPING[http]
    if len(HTTP_MAPPING[http]) == 1:
        assert {failure.status} == HTTP_MAPPING[http]
    else:  # the code alone cannot tell which: the guess is fixed
        assert failure.status == {400: "INVALID_ARGUMENT", 409: "ABORTED", 500: "INTERNAL"}[http]


@pytest.mark.parametrize("http", [405, 502])
def test_an_http_code_outside_the_mapping_names_no_status(http: int) -> None:
    error = core.from_http_status(http, "the message", response=_response(http, b"<html>Error</html>"))
    failure = classify(error)
    assert (failure.code, failure.status, failure.error_type) == (http, None, type(error).__name__)


def test_an_error_without_a_message_is_shown_as_google_api_core_prints_it() -> None:
    error = core.from_http_status(502, "", response=_response(502, b""))
    assert str(error) == "502 "
    assert classify(error).message == "502 "


# --- function/causes.py: the details, on both surfaces ---


def test_every_detail_of_a_grpc_error_is_kept_field_by_field() -> None:
    violation = error_details_pb2.PreconditionFailure.Violation
    quota = error_details_pb2.QuotaFailure.Violation
    details = [
        error_details_pb2.ErrorInfo(reason="SOME_REASON", domain="googleapis.com", metadata={"k": "v"}),
        error_details_pb2.Help(links=[error_details_pb2.Help.Link(description="Library", url=GOOGLE_LINK)]),
        error_details_pb2.PreconditionFailure(
            violations=[violation(type="TOS", subject="projects/p", description="terms not accepted")]
        ),
        error_details_pb2.QuotaFailure(violations=[quota(subject="project:p", description="per minute")]),
        error_details_pb2.LocalizedMessage(locale="en-US", message="ignored"),
    ]
    failure = classify(core.from_grpc_status(grpc.StatusCode.FAILED_PRECONDITION, "the message", details=details))
    assert failure.to_json() == {
        "cause": "quota",  # a QuotaFailure names the project's own quota
        "code": 400,
        "status": "FAILED_PRECONDITION",
        "reason": "SOME_REASON",
        "domain": "googleapis.com",
        "message": "the message",
        "error_type": "FailedPrecondition",
        "metadata": {"k": "v"},
        "links": [{"description": "Library", "url": GOOGLE_LINK}],
        "violations": [
            {"type": "TOS", "subject": "projects/p", "description": "terms not accepted"},
            {"subject": "project:p", "description": "per minute"},
        ],
    }


def test_a_rest_detail_without_its_list_adds_nothing() -> None:
    details = [{"@type": T + "Help"}, {"@type": T + "PreconditionFailure"}, {"@type": T + "QuotaFailure"}]
    failure = classify(_rest(400, details))
    assert (failure.links, failure.violations, failure.cause) == ([], [], Cause.QUOTA)


def test_a_detail_is_known_by_the_last_part_of_its_type_only() -> None:
    details = [{"@type": "ErrorInfo", "reason": "A"}, {"@type": "x.ErrorInfo.Other", "reason": "B"}]
    assert classify(_rest(400, details)).reason == "A"


# --- function/causes.py: how long each field of a failure may be ---

LIMITS = {"message": 2000, "reason": 200, "domain": 200, "key": 200, "value": 1000, "description": 500, "why": 1000}


def _long_fields(extra: int) -> core.GoogleAPICallError:
    n = {name: limit + extra for name, limit in LIMITS.items()}
    details: list[dict[str, Any]] = [
        {
            "@type": T + "ErrorInfo",
            "reason": "R" * n["reason"],
            "domain": "d" * n["domain"],
            "metadata": {"k" * n["key"]: "v" * n["value"]},
        },
        {
            "@type": T + "Help",
            "links": [
                {"description": "h" * n["description"], "url": GOOGLE_LINK},
                {"description": "f" * n["description"], "url": "https://evil.example/"},
            ],
        },
        {"@type": T + "PreconditionFailure", "violations": [{"type": "T", "description": "w" * n["why"]}]},
    ]
    return _rest(400, details, "m" * n["message"])


def test_fields_of_exactly_their_limit_are_kept_whole() -> None:
    failure = classify(_long_fields(0))
    assert failure.message == "m" * 2000
    assert (failure.reason, failure.domain) == ("R" * 200, "d" * 200)
    assert failure.metadata == {"k" * 200: "v" * 1000}
    assert failure.links == [
        {"description": "h" * 500, "url": GOOGLE_LINK},
        {"description": "f" * 500, "url_withheld": LINK_WITHHELD},
    ]
    assert failure.violations == [{"type": "T", "description": "w" * 1000}]


def test_fields_one_longer_than_their_limit_are_cut_with_a_mark() -> None:
    failure = classify(_long_fields(1))
    assert failure.message == "m" * 1999 + "…"
    assert (failure.reason, failure.domain) == ("R" * 199 + "…", "d" * 199 + "…")
    assert failure.metadata == {"k" * 199 + "…": "v" * 999 + "…"}
    assert failure.links == [
        {"description": "h" * 499 + "…", "url": GOOGLE_LINK},
        {"description": "f" * 499 + "…", "url_withheld": LINK_WITHHELD},
    ]
    assert failure.violations == [{"type": "T", "description": "w" * 999 + "…"}]


def test_an_unexpected_error_of_exactly_500_characters_is_kept_whole() -> None:
    assert classify(ValueError("x" * 500)).message == "x" * 500


# --- function/recorder.py ---


def test_each_call_is_recorded_by_name_milliseconds_and_outcome(monkeypatch: pytest.MonkeyPatch) -> None:
    from function import recorder as module

    ticks = iter([10.0, 10.25, 20.0, 20.5])
    monkeypatch.setattr(module, "time", SimpleNamespace(perf_counter=lambda: next(ticks)))
    record = Recorder()
    assert record.call("monitoring.CreateTimeSeries", lambda: 7) == 7
    with pytest.raises(core.PermissionDenied):
        record.call("logging.ListLogEntries", lambda: (_ for _ in ()).throw(core.PermissionDenied("no")))
    assert record.calls == [
        {"method": "monitoring.CreateTimeSeries", "ms": 250.0, "outcome": "OK"},
        {"method": "logging.ListLogEntries", "ms": 500.0, "outcome": "PERMISSION_DENIED"},
    ]


# --- function/metrics.py: the report and the series as ?debug=true shows them ---

RESOURCE = {"project_id": "demo-proj", "location": "us-central1", "namespace": "n", "job": "j", "task_id": "t"}
AT = datetime(2026, 11, 26, 9, 5, 7, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    ("report", "debug", "want"),
    [
        (MetricsReport(), False, {"written": False, "series": 0}),
        (MetricsReport(), True, {"written": False, "series": 0, "time_series": []}),
        (
            MetricsReport(True, 4, skipped="s", error="e", note="n", time_series=[{"x": 1}]),
            False,
            {"written": True, "series": 4, "skipped": "s", "error": "e", "note": "n"},
        ),
        (
            MetricsReport(True, 4, skipped="s", error="e", note="n", time_series=[{"x": 1}]),
            True,
            {"written": True, "series": 4, "skipped": "s", "error": "e", "note": "n", "time_series": [{"x": 1}]},
        ),
    ],
)
def test_the_metrics_report_says_only_what_happened(report: MetricsReport, debug: bool, want: dict[str, Any]) -> None:
    assert report.to_json(debug) == want
    if not debug:
        assert report.to_json() == want


def test_a_series_is_shown_with_its_value_and_end_time() -> None:
    signal = TargetSignal("m@l", Cause.OK, 5.5, "", "")
    shown = [metrics._printable(s) for s in series_for("custom.googleapis.com/c", "healthy", [signal], RESOURCE, AT)]
    assert shown[:2] == [
        {
            "metric": {"type": "custom.googleapis.com/c/runs", "labels": {"outcome": "healthy"}},
            "resource": {"type": "generic_task", "labels": RESOURCE},
            "value": 1,
            "end_time": "2026-11-26T09:05:07.123456Z",
        },
        {
            "metric": {"type": "custom.googleapis.com/c/success", "labels": {"target": "m@l"}},
            "resource": {"type": "generic_task", "labels": RESOURCE},
            "value": 1,
            "end_time": "2026-11-26T09:05:07.123456Z",
        },
    ]
    assert shown[2]["value"] == 5.5


def test_an_instance_writes_again_exactly_five_seconds_later() -> None:
    start = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    writer = MetricsWriter()
    assert writer._claim(start) is None
    assert writer._claim(start + timedelta(seconds=4.75)) == 4.75
    assert writer._claim(start + timedelta(seconds=5)) is None
    # points stamped before the last ones written (the clock stepped back) are not written either
    assert writer._claim(start) == -5.0
    # hours later on the points' clock, however little real time passed
    assert writer._claim(start + timedelta(hours=3)) is None


# --- function/metrics.py: one write against the emulator ---

CREATE = "google.monitoring.v3.MetricService.CreateTimeSeries"


class _Deadline(Deadline):
    """A run's deadline with a fixed time left, so the retry rule is decided by the value, not by the machine."""

    def __init__(self, left: float) -> None:
        super().__init__(left)
        self.left = left

    def remaining(self) -> float:
        return self.left


class _RegionTimeouts(Clients):
    """The real clients, remembering the timeout each region lookup was given."""

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.region_timeouts: list[float] = []

    def region(self, timeout: float = METADATA_TIMEOUT_S) -> str:
        self.region_timeouts.append(timeout)
        return super().region(timeout)


@pytest.fixture
def monitoring() -> Iterator[tuple[Emulator, _RegionTimeouts]]:
    """An emulator on a running clock (the writer stamps its points with its own wall clock), on the metadata port
    tests/conftest.py reserved for this process."""
    port = int(os.environ["GCE_METADATA_HOST"].rsplit(":", 1)[1])
    emulator = Emulator("healthy", metadata_port=port, clock_mode="running").start()
    yield emulator, _RegionTimeouts(Config(emulator=emulator.grpc.address))
    emulator.stop()


def _write(
    clients: Clients, monkeypatch: pytest.MonkeyPatch, left: float = 30.0
) -> tuple[MetricsReport, Recorder, list[float]]:
    slept: list[float] = []
    monkeypatch.setattr(metrics, "time", SimpleNamespace(monotonic=lambda: 1000.0, sleep=slept.append))
    recorder = Recorder()
    signal = TargetSignal("m@l", Cause.OK, 5.0, "", "")
    report = MetricsWriter().write(
        clients._config, clients, "demo-proj", "healthy", [signal], _Deadline(left), recorder
    )
    return report, recorder, slept


def _unavailable(emulator: Emulator, count: int) -> None:
    fault = {"method": CREATE, "count": count, "status": {"code": 14, "message": "try later"}}
    status, body = admin(emulator, "POST", "faults", fault)
    assert status == 201, body


def test_a_write_names_its_call_and_asks_the_region_within_the_metadata_timeout(
    monitoring: tuple[Emulator, _RegionTimeouts], monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator, clients = monitoring
    report, recorder, slept = _write(clients, monkeypatch)
    assert (report.written, report.series, report.error, slept) == (True, 4, None, [])
    assert [c["method"] for c in recorder.calls] == ["monitoring.CreateTimeSeries"]
    assert clients.region_timeouts == [METADATA_TIMEOUT_S]
    status, calls = admin(emulator, "GET", "calls")
    assert status == 200
    assert json.dumps(calls).count(CREATE) == 1


def test_an_unavailable_write_is_retried_once_when_more_than_two_seconds_are_left(
    monitoring: tuple[Emulator, _RegionTimeouts], monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator, clients = monitoring
    _unavailable(emulator, 3)
    report, recorder, slept = _write(clients, monkeypatch, left=2.5)
    assert (report.written, report.error, slept) == (False, "ServiceUnavailable: try later", [0.5])
    assert [c["outcome"] for c in recorder.calls] == ["UNAVAILABLE", "UNAVAILABLE"]


def test_an_unavailable_write_is_not_retried_with_two_seconds_left(
    monitoring: tuple[Emulator, _RegionTimeouts], monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator, clients = monitoring
    _unavailable(emulator, 1)
    report, recorder, slept = _write(clients, monkeypatch, left=2.0)
    assert (report.written, report.error, slept) == (False, "ServiceUnavailable: try later", [])
    assert [c["outcome"] for c in recorder.calls] == ["UNAVAILABLE"]


def test_a_write_that_fails_otherwise_says_why_in_at_most_2000_characters(
    monitoring: tuple[Emulator, _RegionTimeouts], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, clients = monitoring

    def refuse() -> Any:
        raise RuntimeError("x" * 3000)

    monkeypatch.setattr(clients, "metrics", refuse)
    report, recorder, slept = _write(clients, monkeypatch)
    assert report.error == ("RuntimeError: " + "x" * 3000)[:2000]
    assert len(report.error) == 2000
    assert (report.written, slept, [c["outcome"] for c in recorder.calls]) == (False, [], ["RuntimeError"])


# --- function/clients.py ---


def test_in_production_each_client_connects_to_its_services_default_endpoint(emulator: Emulator) -> None:
    from google.cloud.aiplatform_v1 import PredictionServiceClient
    from google.cloud.resourcemanager_v3 import FoldersClient, OrganizationsClient, ProjectsClient

    clients = Clients(Config())  # no emulator address: Google's hosts (the channels connect only when used)
    hosts = {
        "folders": clients.folders()._transport._host,
        "organizations": clients.organizations()._transport._host,
        "projects": clients.projects()._transport._host,
        "prediction": clients.prediction("europe-west4")._transport._host,
    }
    assert hosts == {
        "folders": f"{FoldersClient.DEFAULT_ENDPOINT}:443",
        "organizations": f"{OrganizationsClient.DEFAULT_ENDPOINT}:443",
        "projects": f"{ProjectsClient.DEFAULT_ENDPOINT}:443",
        "prediction": "europe-west4-" + f"{PredictionServiceClient.DEFAULT_ENDPOINT}:443",
    }


def test_a_metadata_answer_that_is_an_http_error_is_named_with_its_body(emulator: Emulator) -> None:
    fault = {"method": "metadata.project_id", "http_status": 500, "http_body": "backend down"}
    status, body = admin(emulator, "POST", "faults", fault)
    assert status == 201, body
    with pytest.raises(ProjectUnknown) as raised:
        Clients(Config(emulator=emulator.grpc.address)).project()
    assert str(raised.value).startswith(
        "cannot learn which project to probe: the runtime's metadata server's project/project-id answered HTTP 500: "
        "'backend down'. This is the runtime's metadata server failing, not Gemini: the next run asks again"
    )
