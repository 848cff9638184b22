"""The alert policies and the dashboard: real types, and only metrics and labels the function actually writes
(checked against function/metrics.py's SCHEMA, not a copy)."""

from __future__ import annotations

import json
import random
import re
from typing import Any

import pytest
from google.api import metric_pb2
from google.cloud import monitoring_v3

from deploy.alerting import (
    CANARY_LOGS,
    POLICY_FILES,
    alert_window_s,
    comparable,
    descriptor,
    load_policy_file,
    render_policy,
)
from deploy.reconcile import DASHBOARD_FILE
from deploy.spec import MAX_PERIOD_S, MIN_PERIOD_S, TIMEOUT_S, make_spec
from emulator.services.logging.filter import compile_filter
from emulator.services.monitoring.aggregation import Aggregation, kept_metric_labels
from emulator.services.monitoring.filter import compile_monitoring_filter, labels_named, metric_types_named
from function.causes import DENIALS, TRANSIENT, Cause
from function.metrics import SCHEMA
from tests.shared import WORKLOAD

PREFIX = "custom.googleapis.com/gemini_canary"
# The monitored resource the metrics are written to, and its labels, as docs/google-behaviour.md gives them
# ("generic_task needs all of project_id, location, namespace, job, task_id"; Google's monitored-resource list,
# https://cloud.google.com/monitoring/api/resources#tag_generic_task): typed here, not imported from
# function/metrics.py, so a wrong resource in the code cannot make the policies' expected filter wrong with it.
RESOURCE_TYPE = "generic_task"
RESOURCE_LABELS = ("project_id", "location", "namespace", "job", "task_id")
WRITTEN = {m.type(PREFIX): set(m.labels) for m in SCHEMA}
SPEC = make_spec(projects=["demo-proj"], region="us-central1", service_account=WORKLOAD)
VARIABLE = re.compile(r"\$\{([a-z_.]+)\}")
MARKER = re.compile(r"__[A-Z_]+__")


def rendered(name: str, spec: Any = SPEC) -> dict[str, Any]:
    return render_policy(load_policy_file(name), spec, [])


def _metric_conditions(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for condition in doc["conditions"]:
        body = condition.get("conditionThreshold") or condition.get("conditionAbsent")
        if body is not None:
            out.append(body)
    return out


@pytest.mark.parametrize("name", POLICY_FILES)
def test_policy_loads_into_the_real_type(name: str) -> None:
    doc = render_policy(load_policy_file(name), SPEC, ["projects/demo-proj/notificationChannels/123"])
    policy = monitoring_v3.AlertPolicy.from_json(json.dumps(doc), ignore_unknown_fields=False)
    assert policy.display_name.startswith("Gemini canary: ")
    assert policy.user_labels["managed-by"] == "gemini-canary"
    assert list(policy.notification_channels) == ["projects/demo-proj/notificationChannels/123"]
    assert policy.alert_strategy.auto_close.total_seconds() == 1800
    assert comparable(doc) == comparable(json.loads(monitoring_v3.AlertPolicy.to_json(policy)))


@pytest.mark.parametrize("name", POLICY_FILES)
def test_filters_name_only_what_the_function_writes(name: str) -> None:
    doc = rendered(name)
    for body in _metric_conditions(doc):
        compile_monitoring_filter(body["filter"])  # parses
        types = metric_types_named(body["filter"])
        assert types, body["filter"]
        assert types <= set(WRITTEN), types
        [metric_type] = types
        for label in labels_named(body["filter"]):
            scope, _, key = label.split(".", 2)
            allowed = WRITTEN[metric_type] if scope == "metric" else set(RESOURCE_LABELS)
            assert key in allowed, label
        assert f'resource.type = "{RESOURCE_TYPE}"' in body["filter"]
        for aggregation in body["aggregations"]:
            for field in aggregation["groupByFields"]:
                scope, _, key = field.split(".", 2)
                allowed = WRITTEN[metric_type] if scope == "metric" else set(RESOURCE_LABELS)
                assert key in allowed, field


@pytest.mark.parametrize("name", POLICY_FILES)
def test_documentation_variables_survive_the_aggregation(name: str) -> None:
    doc = rendered(name)
    links = "".join(link["url"] for link in doc["documentation"].get("links", []))
    text = doc["documentation"]["subject"] + doc["documentation"]["content"] + links
    used = VARIABLE.findall(text)
    assert used
    for body in _metric_conditions(doc):
        [aggregation] = body["aggregations"]
        kept = kept_metric_labels(
            Aggregation(
                300,
                aggregation["perSeriesAligner"],
                aggregation["crossSeriesReducer"],
                tuple(aggregation["groupByFields"]),
            )
        )
        kept_resource = {f.split(".", 2)[2] for f in aggregation["groupByFields"] if f.startswith("resource.")}
        for variable in used:
            if variable.startswith("metric.label."):
                assert kept is None or variable.removeprefix("metric.label.") in kept, variable
            elif variable.startswith("resource.label."):
                assert variable.removeprefix("resource.label.") in kept_resource, variable
            elif variable == "resource.project":
                pass  # the monitored resource's project, whatever the grouping (Google's documentation variables)
            else:
                assert variable.startswith(("policy.", "log.extracted_label.")), variable


def test_denied_and_degraded_split_the_causes_exactly() -> None:
    """Rendered from function.causes: a cause added there (say a transient `capacity`) lands in the right policy."""
    denied = _metric_conditions(rendered("denied.json"))[0]["filter"]
    degraded = _metric_conditions(rendered("degraded.json"))[0]["filter"]
    in_denied = set(re.findall(r'"([a-z_]+)"', denied.split("one_of(")[1]))
    in_degraded = set(re.findall(r'"([a-z_]+)"', degraded.split("one_of(")[1]))
    assert in_denied == {str(c) for c in DENIALS | {Cause.UNKNOWN}}
    assert in_degraded == {str(c) for c in TRANSIENT}
    assert in_denied | in_degraded == {str(c) for c in Cause} - {"ok"}


@pytest.mark.parametrize("name", POLICY_FILES)
def test_documentation_names_the_project_as_google_renders_it(name: str) -> None:
    """${resource.label.project_id} renders empty in notifications; ${resource.project} is the documented one."""
    documentation = json.dumps(rendered(name)["documentation"])
    assert "resource.label.project_id" not in documentation
    assert "${resource.project}" in documentation


@pytest.mark.parametrize("name", POLICY_FILES)
def test_severity_links_and_no_placeholder_left(name: str) -> None:
    doc = rendered(name)
    assert not MARKER.search(json.dumps(doc))
    expected = {"denied.json": "CRITICAL", "denial_log.json": "CRITICAL", "silent.json": "ERROR"}
    policy = monitoring_v3.AlertPolicy.from_json(json.dumps(doc), ignore_unknown_fields=False)
    assert policy.severity.name == expected.get(name, "WARNING")
    links = policy.documentation.links
    assert links
    for link in links:
        # AlertPolicy.Documentation.Link (alert.proto): a display name of 1-63 characters, a URL of at most 2083.
        assert 0 < len(link.display_name) <= 63
        assert link.url.startswith("https://console.cloud.google.com/")
        assert len(link.url) <= 2083
        assert "?project=${resource.project}" in link.url


def test_silent_policy_names_the_deployed_region() -> None:
    spec = make_spec(projects=["demo-proj"], region="europe-west1", service_account=SPEC.service_account)
    content = rendered("silent.json", spec)["documentation"]["content"]
    assert "--location=europe-west1 " in content
    assert "REGION" not in content


def _log_entry(**payload: Any) -> dict[str, Any]:
    return {
        "logName": "projects/demo-proj/logs/run.googleapis.com%2Fstdout",
        "severity": "ERROR",
        "resource": {"type": "cloud_run_revision", "labels": {"service_name": "gemini-canary"}},
        "labels": {"canary_verdict": "denied", "canary_causes": "credentials"},
        "jsonPayload": {"verdict": "denied", "message": "gemini-canary DENIED: ...", **payload},
    }


def test_log_match_policy_sees_only_denials_the_metrics_cannot_carry() -> None:
    """The metric policy pages for a denial whose metrics were written; the log policy only for the others, so a
    denial never pages twice through both, and the log policy at most once an hour while it lasts."""
    doc = rendered("denial_log.json")
    [condition] = doc["conditions"]
    matches = compile_filter(condition["conditionMatchedLog"]["filter"])
    not_attempted = {"written": False, "series": 0, "skipped": "not attempted: the canary's own credentials failed"}
    refused = {"written": False, "series": 4, "error": "PermissionDenied: Permission monitoring.timeSeries.create"}
    assert matches(_log_entry(metrics=not_attempted))
    assert matches(_log_entry(metrics=refused))
    assert not matches(_log_entry(metrics={"written": True, "series": 4}))  # the metric policy sees this one
    coalesced = {"written": False, "series": 4, "skipped": "coalesced: this instance wrote metrics 1.0 s ago"}
    assert not matches(_log_entry(metrics=coalesced))  # the run 5 s before it wrote the same series
    assert not matches({**_log_entry(metrics=not_attempted), "jsonPayload": {"verdict": "healthy"}})
    assert set(condition["conditionMatchedLog"]["labelExtractors"]) == {"causes", "run_id"}
    assert doc["alertStrategy"]["notificationRateLimit"]["period"] == "3600s"


def test_silent_policy_follows_the_schedule() -> None:
    spec = make_spec(
        projects=["demo-proj"],
        region="us-central1",
        schedule="*/10 * * * *",
        service_account=WORKLOAD,
    )
    doc = render_policy(load_policy_file("silent.json"), spec, [])
    absent = doc["conditions"][0]["conditionAbsent"]
    assert absent["duration"] == "1800s"
    assert absent["aggregations"][0]["alignmentPeriod"] == "600s"


# The failure policies' timing, simulated as docs/google-behaviour.md ("Alert policies") describes Cloud
# Monitoring's evaluation: once a minute, over a window of the alignment period that slides with it; an incident
# opens when the condition held at every evaluation of the last `duration`, and closes at the first that it fails.


def _incidents(points: list[float], window: int, duration: int, phase: float, horizon: float) -> int:
    opened, count, since = False, 0, None
    e = phase
    while e < horizon:
        true = any(e - window < p <= e for p in points)
        since = (e if since is None else since) if true else None
        firing = since is not None and e - since >= duration
        count += firing and not opened
        opened = firing
        e += 60
    return count


def _points(period: int, failing: list[bool], rng: random.Random) -> list[float]:
    """The end times of the failing runs' points: a run writes them up to the function's timeout after its tick."""
    return [i * period + rng.uniform(0, TIMEOUT_S) for i, bad in enumerate(failing) if bad]


def _timing(name: str, period: int) -> tuple[int, int]:
    schedule = f"*/{period // 60} * * * *" if period < 3600 else "0 * * * *"
    spec = make_spec(
        projects=["demo-proj"], region="us-central1", service_account=SPEC.service_account, schedule=schedule
    )
    [body] = _metric_conditions(render_policy(load_policy_file(name), spec, []))
    return int(body["aggregations"][0]["alignmentPeriod"][:-1]), int(body["duration"][:-1])


PERIODS = [p for p in range(MIN_PERIOD_S, MAX_PERIOD_S + 1, 60) if 3600 % p == 0]


@pytest.mark.parametrize("period", PERIODS)
def test_degraded_fires_on_the_second_consecutive_failure_never_on_one(period: int) -> None:
    rng = random.Random(period)
    window, duration = _timing("degraded.json", period)
    assert window == duration == alert_window_s(period)
    for _ in range(200):
        phase = rng.uniform(0, 60)
        isolated = [False, True, False, True, False, False, True, False, False]
        assert _incidents(_points(period, isolated, rng), window, duration, phase, 12 * period) == 0
        twice = [False, True, True, False, False, False]
        assert _incidents(_points(period, twice, rng), window, duration, phase, 10 * period) == 1
        lasting = [False] + [True] * 20 + [False]
        assert _incidents(_points(period, lasting, rng), window, duration, phase, 25 * period) == 1


@pytest.mark.parametrize("period", PERIODS)
def test_a_lasting_denial_opens_one_incident(period: int) -> None:
    rng = random.Random(period)
    window, duration = _timing("denied.json", period)
    assert duration == 0
    for _ in range(200):
        phase = rng.uniform(0, 60)
        lasting = [False] + [True] * 20 + [False]
        assert _incidents(_points(period, lasting, rng), window, duration, phase, 25 * period) == 1
        once = [False, True, False]
        assert _incidents(_points(period, once, rng), window, duration, phase, 5 * period) == 1


def test_descriptors_carry_the_schema_units_and_labels() -> None:
    by_name = {m.name: descriptor(m) for m in SCHEMA}
    assert by_name["latency"].unit == "ms"
    for metric in SCHEMA:
        d = by_name[metric.name]
        assert d.type == metric.type(PREFIX)
        assert [label.key for label in d.labels] == list(metric.labels)
        assert (d.description, d.unit) == (metric.description, metric.unit)
        assert metric_pb2.MetricDescriptor.MetricKind.Name(d.metric_kind) == metric.kind
        assert metric_pb2.MetricDescriptor.ValueType.Name(d.value_type) == metric.value_type


def test_dashboard_names_only_what_the_function_writes() -> None:
    doc = json.loads(DASHBOARD_FILE.read_text())
    widgets = [tile["widget"] for tile in doc["mosaicLayout"]["tiles"]]
    charts = [w.get("xyChart") or w.get("timeSeriesTable") for w in widgets]
    filters = [ds["timeSeriesQuery"]["timeSeriesFilter"] for chart in charts if chart for ds in chart["dataSets"]]
    assert {metric_types_named(f["filter"]).pop() for f in filters} == set(WRITTEN)
    for f in filters:
        [metric_type] = metric_types_named(f["filter"])
        for field in f["aggregation"]["groupByFields"]:
            assert field.split(".", 2)[2] in WRITTEN[metric_type]
    # the panels a person looks at first: recent denied runs (the canary's own log lines), open incidents, availability
    [logs] = [w["logsPanel"] for w in widgets if "logsPanel" in w]
    assert logs["filter"] == f'{CANARY_LOGS} AND jsonPayload.verdict="denied"'
    assert [w for w in widgets if "incidentList" in w]
    [table] = [w["timeSeriesTable"] for w in widgets if "timeSeriesTable" in w]
    aggregation = table["dataSets"][0]["timeSeriesQuery"]["timeSeriesFilter"]["aggregation"]
    assert aggregation["perSeriesAligner"] == "ALIGN_MEAN"
