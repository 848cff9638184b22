"""Cloud Monitoring through the real monitoring_v3 GAPIC clients: CreateTimeSeries applies Google's limits with
Google's texts (and partial success), points read back through ListTimeSeries with the alert policies'
aggregation, and metric descriptors, alert policies and notification channels have working CRUD and validation."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from google.api import label_pb2, metric_pb2
from google.api_core import exceptions
from google.cloud import monitoring_v3
from google.cloud.monitoring_v3 import types as mt
from google.protobuf import duration_pb2, field_mask_pb2

from devkit.emulated import clients
from emulator.services.monitoring.service import MonitoringStore
from tests.emulator.support import OWNER, PROJECT, advance

NAME = f"projects/{PROJECT}"
FAILURES = "custom.googleapis.com/gemini_canary/failures"
RUNS = "custom.googleapis.com/gemini_canary/runs"
TASK = {"project_id": PROJECT, "location": "us-central1", "namespace": "gemini-canary", "job": "canary"}
PREFIX = "One or more TimeSeries could not be written: "


def series(
    at: datetime,
    value: int = 1,
    cause: str = "iam",
    task_id: str = "t1",
    resource_type: str = "generic_task",
    resource_labels: dict[str, str] | None = None,
    points: int = 1,
    metric_type: str = FAILURES,
) -> mt.TimeSeries:
    labels = {**TASK, "task_id": task_id} if resource_labels is None else resource_labels
    return mt.TimeSeries(
        metric={"type": metric_type, "labels": {"cause": cause}},
        resource={"type": resource_type, "labels": labels},
        points=[
            mt.Point(interval={"end_time": at - timedelta(seconds=i)}, value={"int64_value": value})
            for i in range(points)
        ],
    )


def write(emu: Any, *items: mt.TimeSeries, email: str | None = None) -> None:
    clients(emu, email=email).metrics.create_time_series(name=NAME, time_series=list(items))


def read(emu: Any, filter_: str, start: datetime, end: datetime, aggregation: Any = None) -> list[mt.TimeSeries]:
    request: dict[str, Any] = {
        "name": NAME,
        "filter": filter_,
        "interval": {"start_time": start, "end_time": end},
        "view": mt.ListTimeSeriesRequest.TimeSeriesView.FULL,
    }
    if aggregation is not None:
        request["aggregation"] = aggregation
    return list(clients(emu, email=OWNER).metrics.list_time_series(request=request, retry=None))


def points_of(ts: mt.TimeSeries) -> list[tuple[Any, int]]:
    """(end time, value), newest first; proto-plus gives the end time as a datetime."""
    return [(p.interval.end_time, p.value.int64_value) for p in ts.points]


# CreateTimeSeries validation -------------------------------------------------------------------------------


INVALID = [
    pytest.param(
        lambda now: [series(now, points=2)],
        PREFIX + "Only one point can be written per TimeSeries per request.: timeSeries[0]",
        id="two-points-in-a-series",
    ),
    pytest.param(
        lambda now: [series(now, resource_labels={"project_id": PROJECT, "location": "us-central1", "job": "c"})],
        PREFIX + "The set of resource labels is incomplete. Missing labels: (namespace task_id).: timeSeries[0]",
        id="generic_task-missing-labels",
    ),
    pytest.param(
        lambda now: [
            series(now, resource_type="cloud_run_revision", resource_labels={"project_id": PROJECT}),
        ],
        PREFIX + "Metrics cannot be written to cloud_run_revision. See "
        "https://cloud.google.com/monitoring/custom-metrics/creating-metrics#which-resource for a list of writable "
        "resource types.: timeSeries[0]",
        id="cloud_run_revision-not-writable",
    ),
    pytest.param(
        lambda now: [series(now, task_id="a"), series(now, task_id="a")],
        PREFIX + "Field timeSeries had an invalid value: Duplicate TimeSeries encountered. Only one point can be "
        "written per TimeSeries per request.: timeSeries[1]",
        id="duplicate-series-in-one-request",
    ),
    pytest.param(
        lambda now: [series(now, metric_type="aiplatform.googleapis.com/prediction/online/error_count")],
        PREFIX + "Metric type 'aiplatform.googleapis.com/prediction/online/error_count' cannot be written: only "
        "custom.googleapis.com/, workload.googleapis.com/ and external.googleapis.com/ metrics are writable.: "
        "timeSeries[0]",
        id="not-a-custom-metric",
    ),
]


@pytest.mark.parametrize(("build", "message"), INVALID)
def test_invalid_series_are_refused_with_googles_text(emulator: Any, build: Any, message: str) -> None:
    with pytest.raises(exceptions.InvalidArgument) as caught:
        write(emulator, *build(emulator.world.clock.now()))
    assert caught.value.message == message


def test_more_than_200_series_is_refused_whole(emulator: Any) -> None:
    now = emulator.world.clock.now()
    with pytest.raises(exceptions.InvalidArgument) as caught:
        write(emulator, *(series(now, task_id=f"t{i}") for i in range(201)))
    assert caught.value.message == (
        "Field timeSeries had an invalid value: A maximum of 200 TimeSeries can be written in a single request."
    )
    assert read(emulator, f'metric.type="{FAILURES}"', now - timedelta(minutes=1), now) == []
    write(emulator, *(series(now, task_id=f"t{i}") for i in range(200)))  # 200 is fine
    assert len(read(emulator, f'metric.type="{FAILURES}"', now - timedelta(minutes=1), now)) == 200


WRITE_PREFIX = (
    PREFIX + 'timeSeries[0] (example metric.type="custom.googleapis.com/gemini_canary/failures", '
    'metric.labels={"cause": "iam"}): write for resource=generic_task{location:us-central1,namespace:gemini-canary,'
    "job:canary,task_id:t1} failed with: "
)


OUT_OF_ORDER = (
    WRITE_PREFIX + "Points must be written in order. One or more of the points specified had an older end time than "
    "the most recent point."
)


@pytest.mark.parametrize(
    ("offset", "message"),
    [
        pytest.param(
            4.5,
            WRITE_PREFIX + "One or more points were written more frequently than the maximum sampling period "
            "configured for the metric. {Metric: custom.googleapis.com/gemini_canary/failures, Timestamps: "
            "{Youngest Existing: '2026/11/26-09:00:00.000', New: '2026/11/26-09:00:04.500'}}",
            id="second-point-4.5s-later",
        ),
        pytest.param(-60, OUT_OF_ORDER, id="older-point"),
        pytest.param(0, OUT_OF_ORDER, id="same-end-time"),
        pytest.param(5, None, id="5s-later-is-fine"),
    ],
)
def test_points_of_a_series_are_spaced_and_ordered(emulator: Any, offset: float, message: str | None) -> None:
    now = emulator.world.clock.now()
    write(emulator, series(now))
    if offset > 0:
        advance(emulator, offset)
    later = now + timedelta(seconds=offset)
    if message is None:
        write(emulator, series(later))
    else:
        with pytest.raises(exceptions.InvalidArgument) as caught:
            write(emulator, series(later))
        assert caught.value.message == message
    (ts,) = read(emulator, f'metric.type="{FAILURES}"', now - timedelta(minutes=2), max(now, later))
    assert [at for at, _ in points_of(ts)] == ([later, now] if message is None else [now])


def test_partial_success_writes_the_valid_series_and_reports_a_summary(emulator: Any) -> None:
    now = emulator.world.clock.now()
    bad = series(now, task_id="bad", resource_type="cloud_run_revision", resource_labels={"project_id": PROJECT})
    with pytest.raises(exceptions.InvalidArgument) as caught:
        write(emulator, series(now, task_id="a"), bad, series(now, task_id="b"))
    assert caught.value.message.endswith(": timeSeries[1]")
    (detail,) = caught.value.details
    summary = mt.CreateTimeSeriesSummary.pb()()
    assert detail.Unpack(summary)
    assert (summary.total_point_count, summary.success_point_count) == (3, 2)
    assert [(e.status.code, e.point_count) for e in summary.errors] == [(3, 1)]
    written = read(emulator, f'metric.type="{FAILURES}"', now - timedelta(seconds=1), now)
    assert sorted(ts.resource.labels["task_id"] for ts in written) == ["a", "b"]


@pytest.mark.parametrize(
    ("email", "message"),
    [
        pytest.param(
            "nobody@example.com",
            "Permission monitoring.timeSeries.create denied (or the resource may not exist).",
            id="no-role",
        ),
        pytest.param(
            "viewer@example.com",
            "Permission monitoring.timeSeries.create denied (or the resource may not exist).",
            id="no-role-either",
        ),
    ],
)
def test_caller_without_time_series_create_is_denied(emulator: Any, email: str, message: str) -> None:
    with pytest.raises(exceptions.PermissionDenied) as caught:
        write(emulator, series(emulator.world.clock.now()), email=email)
    assert caught.value.message == message
    assert caught.value.details == []  # Monitoring's denial carries no details


# ListTimeSeries and aggregation -----------------------------------------------------------------------------


@pytest.fixture
def failures(emulator: Any) -> tuple[Any, datetime, datetime]:
    """Four points: iam@t1 = 2 then 1, quota@t1 = 1, iam@t2 = 1."""
    t0 = emulator.world.clock.now()
    write(emulator, series(t0, value=2), series(t0, cause="quota"), series(t0, task_id="t2"))
    t1 = advance(emulator, 60)
    write(emulator, series(t1))
    return emulator, t0, t1


def test_filter_on_metric_and_resource_labels_reads_points_back(failures: tuple[Any, datetime, datetime]) -> None:
    emu, t0, t1 = failures
    query = f'metric.type="{FAILURES}" AND metric.labels.cause="iam" AND resource.labels.task_id="t1"'
    (ts,) = read(emu, query, t0 - timedelta(seconds=1), t1)
    assert points_of(ts) == [(t1, 1), (t0, 2)]
    assert (ts.resource.type, dict(ts.metric.labels)) == ("generic_task", {"cause": "iam"})
    assert read(emu, query, t0, t1)[0].points[0].interval.end_time == t1  # (start, end]: t0 itself is out


@pytest.mark.parametrize(
    ("aligner", "expected"),
    [
        pytest.param(mt.Aggregation.Aligner.ALIGN_SUM, {"iam": 4, "quota": 1}, id="ALIGN_SUM+REDUCE_SUM"),
        pytest.param(mt.Aggregation.Aligner.ALIGN_COUNT, {"iam": 3, "quota": 1}, id="ALIGN_COUNT+REDUCE_SUM"),
    ],
)
def test_alert_policy_aggregation_groups_by_cause(
    failures: tuple[Any, datetime, datetime], aligner: mt.Aggregation.Aligner, expected: dict[str, int]
) -> None:
    emu, _, t1 = failures
    aggregation = mt.Aggregation(
        alignment_period=duration_pb2.Duration(seconds=300),
        per_series_aligner=aligner,
        cross_series_reducer=mt.Aggregation.Reducer.REDUCE_SUM,
        group_by_fields=["metric.label.cause"],
    )
    result = read(emu, f'metric.type="{FAILURES}" AND resource.type="generic_task"', t1 - timedelta(seconds=300), t1)
    assert len(result) == 3  # unaggregated: one series per (cause, task)
    grouped = read(
        emu, f'metric.type="{FAILURES}" AND resource.type="generic_task"', t1 - timedelta(seconds=300), t1, aggregation
    )
    assert {ts.metric.labels["cause"]: points_of(ts) for ts in grouped} == {
        cause: [(t1, total)] for cause, total in expected.items()
    }
    assert all(dict(ts.resource.labels) == {} for ts in grouped)  # task_id etc. aggregated away


# Metric descriptors ------------------------------------------------------------------------------------------


def test_metric_descriptor_crud(emulator: Any) -> None:
    metrics = clients(emulator, email=OWNER).metrics
    created = metrics.create_metric_descriptor(
        name=NAME,
        metric_descriptor=metric_pb2.MetricDescriptor(
            type=RUNS,
            metric_kind=metric_pb2.MetricDescriptor.MetricKind.GAUGE,
            value_type=metric_pb2.MetricDescriptor.ValueType.INT64,
            labels=[label_pb2.LabelDescriptor(key="outcome")],
            description="Canary runs",
        ),
    )
    assert created.name == f"{NAME}/metricDescriptors/{RUNS}"
    got = metrics.get_metric_descriptor(name=created.name)
    assert (got.type, got.description, [lb.key for lb in got.labels]) == (RUNS, "Canary runs", ["outcome"])
    listed = list(metrics.list_metric_descriptors(request={"name": NAME, "filter": f'metric.type="{RUNS}"'}))
    assert [d.type for d in listed] == [RUNS]
    metrics.delete_metric_descriptor(name=created.name)
    with pytest.raises(exceptions.NotFound) as caught:
        metrics.get_metric_descriptor(name=created.name, retry=None)
    assert caught.value.message == f"Could not find descriptor for metric '{RUNS}'."


def test_metric_descriptor_of_a_google_metric_is_refused(emulator: Any) -> None:
    with pytest.raises(exceptions.InvalidArgument) as caught:
        clients(emulator, email=OWNER).metrics.create_metric_descriptor(
            name=NAME,
            metric_descriptor=metric_pb2.MetricDescriptor(
                type="logging.googleapis.com/user/x",
                metric_kind=metric_pb2.MetricDescriptor.MetricKind.GAUGE,
                value_type=metric_pb2.MetricDescriptor.ValueType.INT64,
            ),
        )
    assert caught.value.message == (
        'Field metricDescriptor.type had an invalid value of "logging.googleapis.com/user/x": only custom metric '
        "types can be created."
    )


def test_writing_creates_the_descriptor(emulator: Any) -> None:
    write(emulator, series(emulator.world.clock.now()))
    got = clients(emulator, email=OWNER).metrics.get_metric_descriptor(name=f"{NAME}/metricDescriptors/{FAILURES}")
    assert (metric_pb2.MetricDescriptor.ValueType.Name(got.value_type), [lb.key for lb in got.labels]) == (
        "INT64",
        ["cause"],
    )


def _failures_descriptor(*labels: str, value_type: str = "INT64") -> metric_pb2.MetricDescriptor:
    return metric_pb2.MetricDescriptor(
        type=FAILURES,
        metric_kind=metric_pb2.MetricDescriptor.MetricKind.GAUGE,
        value_type=metric_pb2.MetricDescriptor.ValueType.Value(value_type),
        unit="1",
        labels=[label_pb2.LabelDescriptor(key=k) for k in labels],
    )


def test_creating_an_existing_descriptor_updates_it_and_never_removes_labels(emulator: Any) -> None:
    """projects.metricDescriptors.create: "updated if it already exists, except that metric labels are never
    removed" — so a deploy tool can fill in what Google auto-created from the first write."""
    write(emulator, series(emulator.world.clock.now()))  # auto-created: label cause, no unit
    metrics = clients(emulator, email=OWNER).metrics
    wanted = _failures_descriptor("target")
    wanted.description = "1 for a failing target"
    metrics.create_metric_descriptor(name=NAME, metric_descriptor=wanted)
    got = metrics.get_metric_descriptor(name=f"{NAME}/metricDescriptors/{FAILURES}")
    assert (got.unit, got.description, [lb.key for lb in got.labels]) == ("1", wanted.description, ["cause", "target"])


def test_a_point_must_fit_its_created_descriptor(emulator: Any) -> None:
    """Once a descriptor is created, a point with a label it does not declare, or another value type, is refused
    (the label text as a real CreateTimeSeries answer shows it)."""
    clients(emulator, email=OWNER).metrics.create_metric_descriptor(
        name=NAME, metric_descriptor=_failures_descriptor("target")
    )
    with pytest.raises(exceptions.InvalidArgument) as caught:
        write(emulator, series(emulator.world.clock.now()))
    assert 'Field timeSeries[0].metric.labels[0] had an invalid value of "cause": Unrecognized metric label.' in (
        caught.value.message
    )
    assert not emulator.world.projects[PROJECT].store(MonitoringStore).time_series
    doubles = _failures_descriptor("cause", value_type="DOUBLE")
    clients(emulator, email=OWNER).metrics.create_metric_descriptor(name=NAME, metric_descriptor=doubles)
    with pytest.raises(exceptions.InvalidArgument) as caught:
        write(emulator, series(emulator.world.clock.now()))
    assert f"Value type for metric {FAILURES} must be DOUBLE, but is INT64." in caught.value.message


# Alert policies and notification channels ---------------------------------------------------------------------


def channel(emu: Any) -> mt.NotificationChannel:
    return clients(emu, email=OWNER).channels.create_notification_channel(
        name=NAME,
        notification_channel=mt.NotificationChannel(
            type_="email", display_name="on-call", labels={"email_address": "oncall@example.com"}
        ),
    )


def policy(channels: list[str], absent_seconds: int = 1800, threshold_filter: str | None = None) -> mt.AlertPolicy:
    denied = threshold_filter or f'metric.type="{FAILURES}" AND resource.type="generic_task"'
    return mt.AlertPolicy(
        display_name="Gemini canary",
        combiner=mt.AlertPolicy.ConditionCombinerType.OR,
        notification_channels=channels,
        documentation={"mime_type": "text/markdown", "subject": "Gemini ${metric.label.cause}", "content": "x"},
        conditions=[
            {
                "display_name": "denied",
                "condition_threshold": {
                    "filter": denied,
                    "aggregations": [
                        {
                            "alignment_period": {"seconds": 300},
                            "per_series_aligner": mt.Aggregation.Aligner.ALIGN_SUM,
                            "cross_series_reducer": mt.Aggregation.Reducer.REDUCE_SUM,
                            "group_by_fields": ["metric.label.cause"],
                        }
                    ],
                    "comparison": mt.ComparisonType.COMPARISON_GT,
                    "threshold_value": 0,
                    "duration": {"seconds": 0},
                    "trigger": {"count": 1},
                },
            },
            {
                "display_name": "silent",
                "condition_absent": {
                    "filter": f'metric.type="{RUNS}" AND resource.type="generic_task"',
                    "aggregations": [
                        {
                            "alignment_period": {"seconds": 300},
                            "per_series_aligner": mt.Aggregation.Aligner.ALIGN_COUNT,
                            "cross_series_reducer": mt.Aggregation.Reducer.REDUCE_SUM,
                        }
                    ],
                    "duration": {"seconds": absent_seconds},
                },
            },
        ],
    )


def test_alert_policy_and_channel_crud(emulator: Any) -> None:
    owner = clients(emulator, email=OWNER)
    ch = channel(emulator)
    assert ch.name.startswith(f"{NAME}/notificationChannels/")
    assert owner.channels.get_notification_channel(name=ch.name).labels["email_address"] == "oncall@example.com"
    assert [c.name for c in owner.channels.list_notification_channels(name=NAME)] == [ch.name]

    created = owner.alerts.create_alert_policy(name=NAME, alert_policy=policy([ch.name]))
    assert created.name.startswith(f"{NAME}/alertPolicies/")
    assert created.creation_record.mutated_by == OWNER
    assert all(c.name.startswith(created.name + "/conditions/") for c in created.conditions)
    assert owner.alerts.get_alert_policy(name=created.name).display_name == "Gemini canary"
    listed = owner.alerts.list_alert_policies(request={"name": NAME, "filter": 'display_name="Gemini canary"'})
    assert [p.name for p in listed] == [created.name]

    renamed = mt.AlertPolicy(name=created.name, display_name="Gemini canary v2")
    updated = owner.alerts.update_alert_policy(
        alert_policy=renamed, update_mask=field_mask_pb2.FieldMask(paths=["display_name"])
    )
    assert (updated.display_name, len(updated.conditions)) == ("Gemini canary v2", 2)

    with pytest.raises(exceptions.FailedPrecondition) as in_use:
        owner.channels.delete_notification_channel(name=ch.name)
    assert in_use.value.message == (
        f"Notification channel '{ch.name}' is used by alert policies: {created.name}. Set force=true to delete it "
        "anyway."
    )
    owner.alerts.delete_alert_policy(name=created.name)
    with pytest.raises(exceptions.NotFound) as gone:
        owner.alerts.get_alert_policy(name=created.name, retry=None)
    assert gone.value.message == f"Alert policy '{created.name}' does not exist."
    owner.channels.delete_notification_channel(name=ch.name)
    assert list(owner.channels.list_notification_channels(name=NAME)) == []


@pytest.mark.parametrize(
    ("build", "exc_type", "message"),
    [
        pytest.param(
            lambda ch: policy([ch], absent_seconds=60),
            exceptions.InvalidArgument,
            "Field alert_policy.conditions[1].condition_absent.duration had an invalid value: must be at least 120s.",
            id="absent-duration-under-120s",
        ),
        pytest.param(
            lambda ch: policy([ch], absent_seconds=150),
            exceptions.InvalidArgument,
            "Field alert_policy.conditions[1].condition_absent.duration had an invalid value: must be a multiple "
            "of 60s.",
            id="absent-duration-not-whole-minutes",
        ),
        pytest.param(
            lambda ch: policy([ch], threshold_filter=f'metric.type="{FAILURES}"'),
            exceptions.InvalidArgument,
            "Field alert_policy.conditions[0].condition_threshold.filter had an invalid value of "
            f'"metric.type="{FAILURES}"": must specify a restriction on "resource.type" in the filter; see '
            '"https://cloud.google.com/monitoring/api/resources" for a list of available resource types.',
            id="filter-without-resource.type",
        ),
        pytest.param(
            lambda ch: policy([f"{NAME}/notificationChannels/404"]),
            exceptions.NotFound,
            f"Notification channel '{NAME}/notificationChannels/404' does not exist.",
            id="unknown-notification-channel",
        ),
    ],
)
def test_alert_policy_validation(emulator: Any, build: Any, exc_type: type[Exception], message: str) -> None:
    ch = channel(emulator)
    alerts = clients(emulator, email=OWNER).alerts
    with pytest.raises(exc_type) as caught:
        alerts.create_alert_policy(name=NAME, alert_policy=build(ch.name))
    assert caught.value.message == message  # type: ignore[attr-defined]
    assert list(alerts.list_alert_policies(name=NAME)) == []


@pytest.mark.parametrize(
    ("channel_type", "labels", "message"),
    [
        pytest.param(
            "email",
            {},
            "Field notification_channel.labels had an invalid value: label 'email_address' is required for type email.",
            id="email-without-address",
        ),
        pytest.param(
            "carrier_pigeon",
            {"loft": "x"},
            'Field notification_channel.type had an invalid value of "carrier_pigeon": unknown channel type.',
            id="unknown-type",
        ),
    ],
)
def test_notification_channel_validation(
    emulator: Any, channel_type: str, labels: dict[str, str], message: str
) -> None:
    with pytest.raises(exceptions.InvalidArgument) as caught:
        clients(emulator, email=OWNER).channels.create_notification_channel(
            name=NAME, notification_channel=mt.NotificationChannel(type_=channel_type, labels=labels)
        )
    assert caught.value.message == message


def test_workload_cannot_manage_alert_policies(emulator: Any) -> None:
    with pytest.raises(exceptions.PermissionDenied) as caught:
        clients(emulator).alerts.create_alert_policy(name=NAME, alert_policy=monitoring_v3.AlertPolicy())
    assert caught.value.message == "Permission monitoring.alertPolicies.create denied (or the resource may not exist)."


def test_documentation_limits_are_alert_protos(emulator: Any) -> None:
    """alert.proto: a subject may take 10,240 bytes (notifications cut it to 255); content 8,192 characters."""
    ch = channel(emulator)
    alerts = clients(emulator, email=OWNER).alerts
    long_subject = policy([ch.name])
    long_subject.documentation.subject = "Gemini canary " + "s" * 400  # > 255, well under 10,240 bytes
    created = alerts.create_alert_policy(name=NAME, alert_policy=long_subject)
    assert created.documentation.subject == long_subject.documentation.subject
    too_long = policy([ch.name])
    too_long.documentation.subject = "é" * 5121  # 10,242 bytes
    with pytest.raises(exceptions.InvalidArgument) as caught:
        alerts.create_alert_policy(name=NAME, alert_policy=too_long)
    assert caught.value.message == (
        "Field alert_policy.documentation.subject had an invalid value: at most 10240 bytes."
    )
    too_much = policy([ch.name])
    too_much.documentation.content = "é" * 6000  # 6,000 characters, 12,000 bytes
    with pytest.raises(exceptions.InvalidArgument):
        alerts.create_alert_policy(name=NAME, alert_policy=too_much)
