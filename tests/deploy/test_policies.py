"""The alert policies and the dashboard: real types, and only metrics and labels the function actually writes
(checked against function/metrics.py's SCHEMA, not a copy)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from google.cloud import monitoring_v3

from deploy.monitoring import POLICY_FILES, comparable, load_policy_file, render_policy
from deploy.reconcile import DASHBOARD_FILE
from deploy.spec import make_spec
from emulator.aggregation import Aggregation, kept_metric_labels
from emulator.logfilter import compile_filter
from emulator.monfilter import compile_monitoring_filter, labels_named, metric_types_named
from function.causes import DENIALS, TRANSIENT, Cause
from function.metrics import RESOURCE_LABELS, RESOURCE_TYPE, SCHEMA

PREFIX = "custom.googleapis.com/gemini_canary"
WRITTEN = {m.type(PREFIX): set(m.labels) for m in SCHEMA}
SPEC = make_spec(
    projects=["demo-proj"], region="us-central1", service_account="canary-workload@demo-proj.iam.gserviceaccount.com"
)
VARIABLE = re.compile(r"\$\{([a-z_.]+)\}")


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
    doc = load_policy_file(name)
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
    doc = load_policy_file(name)
    text = doc["documentation"]["subject"] + doc["documentation"]["content"]
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
            else:
                assert variable.startswith(("policy.", "log.extracted_label.")), variable


def test_denied_and_degraded_split_the_causes_exactly() -> None:
    denied = _metric_conditions(load_policy_file("denied.json"))[0]["filter"]
    degraded = _metric_conditions(load_policy_file("degraded.json"))[0]["filter"]
    in_denied = set(re.findall(r'"([a-z_]+)"', denied.split("one_of(")[1]))
    in_degraded = set(re.findall(r'"([a-z_]+)"', degraded.split("one_of(")[1]))
    assert in_denied == {str(c) for c in DENIALS | {Cause.UNKNOWN}}
    assert in_degraded == {str(c) for c in TRANSIENT}


def test_log_match_policy_matches_the_canary_denial_line() -> None:
    [condition] = load_policy_file("denial_log.json")["conditions"]
    matches = compile_filter(condition["conditionMatchedLog"]["filter"])
    entry = {
        "logName": "projects/demo-proj/logs/run.googleapis.com%2Fstdout",
        "severity": "ERROR",
        "resource": {"type": "cloud_run_revision", "labels": {"service_name": "gemini-canary"}},
        "labels": {"canary_verdict": "denied", "canary_causes": "iam_permission_denied"},
        "jsonPayload": {"verdict": "denied", "message": "gemini-canary DENIED: ..."},
    }
    assert matches(entry)
    assert not matches({**entry, "jsonPayload": {"verdict": "healthy"}, "severity": "INFO"})
    extractors = condition["conditionMatchedLog"]["labelExtractors"]
    assert set(extractors) == {"causes", "run_id"}


def test_silent_policy_follows_the_schedule() -> None:
    spec = make_spec(
        projects=["demo-proj"],
        region="us-central1",
        schedule="*/10 * * * *",
        service_account="canary-workload@demo-proj.iam.gserviceaccount.com",
    )
    doc = render_policy(load_policy_file("silent.json"), spec, [])
    absent = doc["conditions"][0]["conditionAbsent"]
    assert absent["duration"] == "1800s"
    assert absent["aggregations"][0]["alignmentPeriod"] == "600s"


def test_dashboard_names_only_what_the_function_writes() -> None:
    doc = json.loads(DASHBOARD_FILE.read_text())
    filters = [
        ds["timeSeriesQuery"]["timeSeriesFilter"]
        for tile in doc["mosaicLayout"]["tiles"]
        for ds in tile["widget"]["xyChart"]["dataSets"]
    ]
    assert {metric_types_named(f["filter"]).pop() for f in filters} == set(WRITTEN)
    for f in filters:
        [metric_type] = metric_types_named(f["filter"])
        for field in f["aggregation"]["groupByFields"]:
            assert field.split(".", 2)[2] in WRITTEN[metric_type]
