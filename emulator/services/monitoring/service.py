"""Cloud Monitoring v3: MetricService (time series, metric descriptors), AlertPolicyService,
NotificationChannelService.

CreateTimeSeries applies Google's validation with its texts (docs/google-behaviour.md): at most 200
series a request, one point a series, the resource type must be writable with all its labels, points of a
series at least 5 s apart and in order. Series that pass are written even when others fail (partial success),
and the error carries a CreateTimeSeriesSummary, as Google's does.

Assumption: CreateTimeSeries texts other than those quoted in docs/google-behaviour.md (two points, non-custom type,
25 h / 5 min windows, label checks, descriptor mismatches) are this emulator's wording.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from google.api import label_pb2, metric_pb2
from google.cloud.monitoring_v3 import types as mt
from google.protobuf import empty_pb2, json_format
from google.rpc import code_pb2

from emulator.core.handlers import Api, Call, HttpRule, Method, Service
from emulator.core.status import RpcError, invalid_argument, not_found
from emulator.core.world import Project
from emulator.services.kit import allowed, audited, page_of, require_enabled
from emulator.services.monitoring import aggregation as agg
from emulator.services.monitoring import notify
from emulator.services.monitoring.filter import (
    MonFilterError,
    SeriesView,
    compile_monitoring_filter,
    require_resource_type_restriction,
    require_single_metric_type,
)
from emulator.services.monitoring.store import MonitoringStore, scope_projects

API = "monitoring.googleapis.com"
MAX_SERIES = 200
MIN_SPACING = timedelta(seconds=5)
MAX_LABELS = 30
WHICH_RESOURCE = "https://cloud.google.com/monitoring/custom-metrics/creating-metrics#which-resource"

# Writable monitored resources and their labels (the subset the project needs; §C1).
WRITABLE: dict[str, tuple[str, ...]] = {
    "generic_task": ("project_id", "location", "namespace", "job", "task_id"),
    "generic_node": ("project_id", "location", "namespace", "node_id"),
    "global": ("project_id",),
    "gce_instance": ("project_id", "instance_id", "zone"),
    "k8s_container": (
        "project_id",
        "location",
        "cluster_name",
        "namespace_name",
        "pod_name",
        "container_name",
    ),
}
NOT_WRITABLE = {"cloud_run_revision", "cloud_run_job", "cloud_function", "cloudsql_database", "gae_app"}
CUSTOM_PREFIXES = ("custom.googleapis.com/", "workload.googleapis.com/", "external.googleapis.com/")
_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_]{0,99}\Z")

SeriesKey = tuple[str, tuple[tuple[str, str], ...], str, tuple[tuple[str, str], ...]]


def monitoring_denied(permission: str) -> RpcError:
    """Cloud Monitoring's denial (its dashboards API's too): the permission unquoted, and no details
    (dynatrace-gcp-monitor#25, terraform-google-enterprise-application#159)."""
    return RpcError(code_pb2.PERMISSION_DENIED, f"Permission {permission} denied (or the resource may not exist).")


def _project(call: Call, name: str, permission: str) -> Project:
    call.authenticate()
    ref = name.removeprefix("projects/")
    project = call.world.project(ref) if name.startswith("projects/") and ref and "/" not in ref else None
    if project is None or not allowed(call, project, permission):
        raise monitoring_denied(permission)
    require_enabled(project, API)
    return project


# CreateTimeSeries -------------------------------------------------------------------------------------


def _value(point: mt.Point) -> tuple[str, float | int | bool]:
    which = mt.TypedValue.pb(point.value).WhichOneof("value")
    if which == "int64_value":
        return "INT64", int(point.value.int64_value)
    if which == "double_value":
        return "DOUBLE", float(point.value.double_value)
    if which == "bool_value":
        return "BOOL", bool(point.value.bool_value)
    raise ValueError("Only INT64, DOUBLE and BOOL points are supported by this emulator.")


def _when(value: Any) -> datetime | None:
    """A proto-plus Timestamp field (a datetime at run time; unset reads as the epoch) as an aware datetime."""
    if value is None or not isinstance(value, datetime) or value.timestamp() == 0:
        return None
    return value.astimezone(UTC)


def _seconds(value: Any) -> float:
    """A proto-plus Duration field (a timedelta at run time) in seconds."""
    return value.total_seconds() if isinstance(value, timedelta) else 0.0


def _labels_text(labels: dict[str, str]) -> str:
    return "{" + ",".join(f"{k}:{v}" for k, v in labels.items()) + "}"


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y/%m/%d-%H:%M:%S.%f")[:-3]


class _Failure(Exception):
    def __init__(self, reason: str, write: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.write = write  # a write-time failure (sampling, order) rather than a validation one


def _check_series(project: Project, series: mt.TimeSeries, now: datetime) -> tuple[SeriesKey, agg.Series, agg.Point]:
    resource = series.resource
    if resource.type in NOT_WRITABLE:
        raise _Failure(
            f"Metrics cannot be written to {resource.type}. See {WHICH_RESOURCE} for a list of writable resource types."
        )
    if resource.type not in WRITABLE:
        raise _Failure(f"Unrecognized resource type: {resource.type or '(empty)'}")
    labels = dict(resource.labels)
    unknown = sorted(set(labels) - set(WRITABLE[resource.type]))
    if unknown:
        raise _Failure(f"Unrecognized resource label: {unknown[0]}")
    missing = [k for k in sorted(WRITABLE[resource.type]) if not labels.get(k)]
    if missing:
        raise _Failure(f"The set of resource labels is incomplete. Missing labels: ({' '.join(missing)}).")
    metric_type = series.metric.type
    if not metric_type.startswith(CUSTOM_PREFIXES):
        raise _Failure(
            f"Metric type {metric_type!r} cannot be written: only custom.googleapis.com/, "
            "workload.googleapis.com/ and external.googleapis.com/ metrics are writable."
        )
    if len(series.points) != 1:
        raise _Failure("Only one point can be written per TimeSeries per request.")
    metric_labels = dict(series.metric.labels)
    bad = sorted(k for k in metric_labels if not _LABEL_KEY.match(k))
    if bad:
        raise _Failure(f"Invalid metric label key: {bad[0]}")
    too_long = sorted(k for k, v in metric_labels.items() if len(v) > 1024)
    if too_long:
        raise _Failure(f"The value of metric label {too_long[0]} is longer than 1024 characters.")
    point = series.points[0]
    try:
        value_type, value = _value(point)
    except ValueError as err:
        raise _Failure(str(err)) from None
    end = _when(point.interval.end_time)
    if end is None:
        raise _Failure("The point's interval.endTime is required.")
    if end > now + timedelta(minutes=5):
        raise _Failure("Points cannot be written more than 5 minutes in the future.")
    if end < now - timedelta(hours=25):
        raise _Failure("Points cannot be written more than 25 hours in the past.")
    kind = metric_pb2.MetricDescriptor.MetricKind.Name(series.metric_kind) if series.metric_kind else "GAUGE"
    key: SeriesKey = (
        metric_type,
        tuple(sorted(metric_labels.items())),
        resource.type,
        tuple(sorted(labels.items())),
    )
    stored = agg.Series(metric_type, metric_labels, resource.type, labels, kind, value_type, [])
    start = _when(point.interval.start_time) if kind == "CUMULATIVE" else None
    return key, stored, agg.Point(end=end, value=value, start=start)


def _descriptor_for(project: Project, series: agg.Series, index: int) -> str | None:
    """Create or extend the metric descriptor as Google does for custom metrics; an error text on mismatch."""
    existing = project.store(MonitoringStore).metric_descriptors.get(series.metric_type)
    if existing is None:
        project.store(MonitoringStore).metric_descriptors[series.metric_type] = _auto_descriptor(project, series)
        return None
    if existing["value_type"] != series.value_type:
        return (
            f"Value type for metric {series.metric_type} must be {existing['value_type']}, but is {series.value_type}."
        )
    if existing["metric_kind"] != series.metric_kind:
        return (
            f"Metric kind for metric {series.metric_type} must be {existing['metric_kind']}, "
            f"but is {series.metric_kind}."
        )
    new_keys = set(series.metric_labels) - set(existing["labels"])
    if new_keys and not existing["auto"]:
        # Assumption: a label the created descriptor does not declare is refused inside the partial-failure
        # message; the text is a real sample's ("Field timeSeries[1].metric.labels[2] had an invalid value of ...";
        # docs/google-behaviour.md).
        order = list(series.metric_labels)
        key = next(k for k in order if k in new_keys)
        return (
            f'Field timeSeries[{index}].metric.labels[{order.index(key)}] had an invalid value of "{key}": '
            "Unrecognized metric label."
        )
    if len(set(existing["labels"]) | new_keys) > MAX_LABELS:
        return f"The metric {series.metric_type} would have more than {MAX_LABELS} labels."
    existing["labels"] = sorted(set(existing["labels"]) | new_keys)
    return None


def _auto_descriptor(project: Project, series: agg.Series) -> dict[str, Any]:
    return {
        "type": series.metric_type,
        "metric_kind": series.metric_kind,
        "value_type": series.value_type,
        "labels": sorted(series.metric_labels),
        "auto": True,
        "description": "",
        "display_name": "",
        "unit": "",
        "name": f"projects/{project.project_id}/metricDescriptors/{series.metric_type}",
    }


def _write(project: Project, key: SeriesKey, series: agg.Series, point: agg.Point) -> None:
    stored = project.store(MonitoringStore).time_series.get(key)
    if stored is None:
        series.points = [point]
        project.store(MonitoringStore).time_series[key] = series
        return
    youngest = stored.points[0]
    if point.end <= youngest.end:
        edge = "start" if series.metric_kind == "CUMULATIVE" else "end"
        raise _Failure(
            "Points must be written in order. One or more of the points specified had an older "
            f"{edge} time than the most recent point.",
            write=True,
        )
    if point.end - youngest.end < MIN_SPACING:
        raise _Failure(
            "One or more points were written more frequently than the maximum sampling period configured for the "
            f"metric. {{Metric: {series.metric_type}, Timestamps: {{Youngest Existing: '{_stamp(youngest.end)}', "
            f"New: '{_stamp(point.end)}'}}}}",
            write=True,
        )
    stored.points.insert(0, point)


def _ranges(indices: Sequence[int]) -> str:
    parts: list[str] = []
    start = prev = indices[0]
    for i in [*indices[1:], None]:
        if i is not None and i == prev + 1:
            prev = i
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if i is not None:
            start = prev = i
    return ",".join(parts)


def create_time_series(call: Call, request: mt.CreateTimeSeriesRequest) -> empty_pb2.Empty:
    project = _project(call, request.name, "monitoring.timeSeries.create")
    if len(request.time_series) > MAX_SERIES:
        raise invalid_argument(
            f"Field timeSeries had an invalid value: A maximum of {MAX_SERIES} TimeSeries can be "
            "written in a single request."
        )
    now = call.world.clock.now()
    failures: dict[tuple[str, bool], list[int]] = {}
    examples: dict[tuple[str, bool], mt.TimeSeries] = {}
    seen: set[SeriesKey] = set()
    for i, series in enumerate(request.time_series):
        try:
            key, stored, point = _check_series(project, series, now)
            if key in seen:
                raise _Failure(
                    "Field timeSeries had an invalid value: Duplicate TimeSeries encountered. Only one "
                    "point can be written per TimeSeries per request."
                )
            seen.add(key)
            mismatch = _descriptor_for(project, stored, i)
            if mismatch:
                raise _Failure(mismatch)
            _write(project, key, stored, point)
        except _Failure as failure:
            slot = (failure.reason, failure.write)
            failures.setdefault(slot, []).append(i)
            examples.setdefault(slot, series)
    if failures:
        raise _partial_failure(request, failures, examples)
    return empty_pb2.Empty()


def _partial_failure(
    request: mt.CreateTimeSeriesRequest,
    failures: dict[tuple[str, bool], list[int]],
    examples: dict[tuple[str, bool], mt.TimeSeries],
) -> RpcError:
    parts = []
    for slot, indices in failures.items():
        reason, write = slot
        where = f"timeSeries[{_ranges(indices)}]"
        if write:
            ex = examples[slot]
            # As Google prints them (opentelemetry-operations-python#431): metric labels JSON-quoted, resource
            # labels bare and without project_id.
            # Assumption: in write-failure texts the metric labels are printed sorted and the resource labels in
            # descriptor order (Google's order looks arbitrary).
            labels = "{" + ", ".join(f'"{k}": "{v}"' for k, v in sorted(ex.metric.labels.items())) + "}"
            given = dict(ex.resource.labels)
            resource = {k: given[k] for k in WRITABLE.get(ex.resource.type, ()) if k != "project_id" and k in given}
            parts.append(
                f'{where} (example metric.type="{ex.metric.type}", metric.labels={labels}): write for '
                f"resource={ex.resource.type}{_labels_text(resource)} failed with: {reason}"
            )
        else:
            parts.append(f"{reason}: {where}")
    failed = sum(len(v) for v in failures.values())
    summary = mt.CreateTimeSeriesSummary(
        total_point_count=len(request.time_series),
        success_point_count=len(request.time_series) - failed,
        errors=[mt.CreateTimeSeriesSummary.Error(status={"code": code_pb2.INVALID_ARGUMENT}, point_count=failed)],
    )
    return RpcError(
        code_pb2.INVALID_ARGUMENT,
        "One or more TimeSeries could not be written: " + "; ".join(parts),
        [mt.CreateTimeSeriesSummary.pb(summary)],
    )


# ListTimeSeries -------------------------------------------------------------------------------------


def _aggregation(request: mt.ListTimeSeriesRequest) -> agg.Aggregation:
    a = request.aggregation
    return agg.Aggregation(
        alignment_period_s=_seconds(a.alignment_period),
        per_series_aligner=mt.Aggregation.Aligner(a.per_series_aligner).name,
        cross_series_reducer=mt.Aggregation.Reducer(a.cross_series_reducer).name,
        group_by_fields=tuple(a.group_by_fields),
    )


def _to_proto(series: agg.Series, headers_only: bool) -> mt.TimeSeries:
    out = mt.TimeSeries(
        metric={"type": series.metric_type, "labels": series.metric_labels},
        resource={"type": series.resource_type, "labels": series.resource_labels},
        metric_kind=metric_pb2.MetricDescriptor.MetricKind.Value(series.metric_kind),
        value_type=metric_pb2.MetricDescriptor.ValueType.Value(series.value_type),
    )
    if headers_only:
        return out
    for p in series.points:
        value = (
            {"bool_value": p.value}
            if isinstance(p.value, bool)
            else {"int64_value": p.value}
            if isinstance(p.value, int)
            else {"double_value": p.value}
        )
        interval: dict[str, Any] = {"end_time": p.end}
        if p.start is not None:
            interval["start_time"] = p.start
        out.points.append(mt.Point(interval=interval, value=value))
    return out


def list_time_series(call: Call, request: mt.ListTimeSeriesRequest) -> mt.ListTimeSeriesResponse:
    project = _project(call, request.name, "monitoring.timeSeries.list")
    try:
        require_single_metric_type(request.filter)
        matches = compile_monitoring_filter(request.filter)
    except MonFilterError as err:
        raise invalid_argument(str(err)) from None
    end = _when(request.interval.end_time)
    if end is None:
        raise invalid_argument("Field interval.endTime had an invalid value: The end time must be specified.")
    start = _when(request.interval.start_time) or end - timedelta(microseconds=1)
    # Read through the project's metrics scope: its own series and those of every project added to it, each with
    # the project it is stored in (the Monitoring API v3 page, "Project names": the metrics methods read the scope of
    # a scoping project); the caller needs the permission on the scoping project only.
    candidates = [
        s
        for member in scope_projects(call.world, project)
        for s in member.store(MonitoringStore).time_series.values()
        if matches(SeriesView(s.metric_type, s.metric_labels, s.resource_type, s.resource_labels, member.project_id))
    ]
    try:
        result = agg.aggregate(candidates, start, end, _aggregation(request))
    except agg.AggregationError as err:
        raise invalid_argument(str(err)) from None
    headers = request.view == mt.ListTimeSeriesRequest.TimeSeriesView.HEADERS
    page, token = page_of(
        result, request.page_size or 100000, request.page_token, invalid="The page token is not valid."
    )
    return mt.ListTimeSeriesResponse(time_series=[_to_proto(s, headers) for s in page], next_page_token=token)


# Metric descriptors ---------------------------------------------------------------------------------


def _audit(call: Call, project: Project, name: str, permission: str, request: Any, response: Any = None) -> None:
    """The Admin Activity entry of a descriptor, alert policy or channel change: methodName the v3 gRPC name (Cloud
    Monitoring audit logging, ADMIN_WRITE), on audited_resource; request and response in their proto3 JSON form."""

    def doc(message: Any) -> dict[str, Any]:
        raw = type(message).pb(message) if hasattr(type(message), "pb") else message
        return {"@type": f"type.googleapis.com/{raw.DESCRIPTOR.full_name}", **json_format.MessageToDict(raw)}

    audited(
        call,
        project,
        resource=name,
        permission=permission,
        request=doc(request),
        response=doc(response) if response is not None else None,
    )


def _descriptor_pb(doc: dict[str, Any]) -> metric_pb2.MetricDescriptor:
    return metric_pb2.MetricDescriptor(
        name=doc["name"],
        type=doc["type"],
        description=doc["description"],
        display_name=doc["display_name"],
        unit=doc["unit"],
        metric_kind=metric_pb2.MetricDescriptor.MetricKind.Value(doc["metric_kind"]),
        value_type=metric_pb2.MetricDescriptor.ValueType.Value(doc["value_type"]),
        labels=[label_pb2.LabelDescriptor(key=k) for k in doc["labels"]],
    )


def create_metric_descriptor(call: Call, request: mt.CreateMetricDescriptorRequest) -> metric_pb2.MetricDescriptor:
    project = _project(call, request.name, "monitoring.metricDescriptors.create")
    d = request.metric_descriptor
    if not d.type.startswith(CUSTOM_PREFIXES):
        raise invalid_argument(
            f'Field metricDescriptor.type had an invalid value of "{d.type}": only custom metric types can be created.'
        )
    if len(d.labels) > MAX_LABELS:
        raise invalid_argument(f"Field metricDescriptor.labels had an invalid value: at most {MAX_LABELS} labels.")
    for label in d.labels:
        if not _LABEL_KEY.match(label.key):
            raise invalid_argument(f"Field metricDescriptor.labels had an invalid value: bad key {label.key!r}.")
    kind = metric_pb2.MetricDescriptor.MetricKind.Name(d.metric_kind)
    value_type = metric_pb2.MetricDescriptor.ValueType.Name(d.value_type)
    if kind == "METRIC_KIND_UNSPECIFIED" or value_type == "VALUE_TYPE_UNSPECIFIED":
        raise invalid_argument("Field metricDescriptor had an invalid value: metricKind and valueType are required.")
    # "The metric descriptor is updated if it already exists, except that metric labels are never removed."
    # (projects.metricDescriptors.create reference; docs/google-behaviour.md, "Metric descriptors")
    existing = project.store(MonitoringStore).metric_descriptors.get(d.type)
    kept = set(existing["labels"]) if existing is not None else set()
    doc = {
        "type": d.type,
        "metric_kind": kind,
        "value_type": value_type,
        "labels": sorted(kept | {lb.key for lb in d.labels}),
        "auto": False,
        "description": d.description,
        "display_name": d.display_name,
        "unit": d.unit,
        "name": f"projects/{project.project_id}/metricDescriptors/{d.type}",
    }
    project.store(MonitoringStore).metric_descriptors[d.type] = doc
    _audit(call, project, doc["name"], "monitoring.metricDescriptors.create", request, _descriptor_pb(doc))
    return _descriptor_pb(doc)


def _descriptor_name(name: str) -> tuple[str, str]:
    project, sep, metric_type = name.partition("/metricDescriptors/")
    if not sep or not metric_type:
        raise invalid_argument(f"Invalid metric descriptor name: {name!r}.")
    return project, metric_type


def get_metric_descriptor(call: Call, request: mt.GetMetricDescriptorRequest) -> metric_pb2.MetricDescriptor:
    project_name, metric_type = _descriptor_name(request.name)
    project = _project(call, project_name, "monitoring.metricDescriptors.get")
    doc = project.store(MonitoringStore).metric_descriptors.get(metric_type)
    if doc is None:
        raise not_found(f"Could not find descriptor for metric '{metric_type}'.")
    return _descriptor_pb(doc)


def list_metric_descriptors(call: Call, request: mt.ListMetricDescriptorsRequest) -> mt.ListMetricDescriptorsResponse:
    project = _project(call, request.name, "monitoring.metricDescriptors.list")
    try:
        matches = compile_monitoring_filter(request.filter) if request.filter else None
    except MonFilterError as err:
        raise invalid_argument(str(err)) from None
    docs = [
        d
        for d in project.store(MonitoringStore).metric_descriptors.values()
        if matches is None or matches(SeriesView(d["type"], {}, "", {}, project.project_id))
    ]
    return mt.ListMetricDescriptorsResponse(metric_descriptors=[_descriptor_pb(d) for d in docs])


def delete_metric_descriptor(call: Call, request: mt.DeleteMetricDescriptorRequest) -> empty_pb2.Empty:
    project_name, metric_type = _descriptor_name(request.name)
    project = _project(call, project_name, "monitoring.metricDescriptors.delete")
    if project.store(MonitoringStore).metric_descriptors.pop(metric_type, None) is None:
        raise not_found(f"Could not find descriptor for metric '{metric_type}'.")
    for key in [k for k in project.store(MonitoringStore).time_series if k[0] == metric_type]:
        del project.store(MonitoringStore).time_series[key]
    _audit(call, project, request.name, "monitoring.metricDescriptors.delete", request)
    return empty_pb2.Empty()


# Alert policies and notification channels -----------------------------------------------------------


def _check_condition(i: int, condition: mt.AlertPolicy.Condition) -> None:
    base = f"alert_policy.conditions[{i}]"
    which = mt.AlertPolicy.Condition.pb(condition).WhichOneof("condition")
    if which not in ("condition_threshold", "condition_absent", "condition_matched_log"):
        raise invalid_argument(
            f"Field {base} had an invalid value: a threshold, absence or log-match condition is required."
        )
    if which == "condition_matched_log":
        if not condition.condition_matched_log.filter:
            raise invalid_argument(f"Field {base}.condition_matched_log.filter had an invalid value: required.")
        return
    body = condition.condition_threshold if which == "condition_threshold" else condition.condition_absent
    field = f"{base}.{which}.filter"
    if len(body.filter) > 2048:
        raise invalid_argument(f"Field {field} had an invalid value: longer than 2048 characters.")
    try:
        compile_monitoring_filter(body.filter, field)
        require_resource_type_restriction(body.filter, field)
    except MonFilterError as err:
        raise invalid_argument(str(err)) from None
    seconds = _seconds(body.duration)
    if seconds % 60:
        raise invalid_argument(f"Field {base}.{which}.duration had an invalid value: must be a multiple of 60s.")
    if which == "condition_absent" and seconds < 120:
        raise invalid_argument(f"Field {base}.condition_absent.duration had an invalid value: must be at least 120s.")
    for j, a in enumerate(body.aggregations):
        spec = agg.Aggregation(
            _seconds(a.alignment_period),
            mt.Aggregation.Aligner(a.per_series_aligner).name,
            mt.Aggregation.Reducer(a.cross_series_reducer).name,
            tuple(a.group_by_fields),
        )
        try:
            agg.check_alert_alignment_period(spec, f"{base}.{which}.aggregations[{j}].alignment_period")
            agg.group_key_labels(spec.group_by_fields)
        except agg.AggregationError as err:
            raise invalid_argument(str(err)) from None


def _check_policy(project: Project, policy: mt.AlertPolicy) -> None:
    if not policy.display_name:
        raise invalid_argument("Field alert_policy.display_name had an invalid value: required.")
    if not policy.conditions:
        raise invalid_argument("Field alert_policy.conditions had an invalid value: at least one condition.")
    # google/monitoring/v3/alert.proto, Documentation: content at most 8,192 characters and 10,240 UTF-8 bytes; the
    # subject at most 10,240 bytes (notifications truncate it to 255 bytes after expansion, which is not a refusal).
    # Assumption (unverified): the wording of the refusals; alert policy and notification channel validation texts
    # are this emulator's, in Google's `Field X had an invalid value: ...` shape.
    content = policy.documentation.content
    if len(content) > 8192 or len(content.encode()) > 10240:
        raise invalid_argument(
            "Field alert_policy.documentation.content had an invalid value: at most 8192 characters and 10240 bytes."
        )
    if len(policy.documentation.subject.encode()) > 10240:
        raise invalid_argument("Field alert_policy.documentation.subject had an invalid value: at most 10240 bytes.")
    for i, condition in enumerate(policy.conditions):
        _check_condition(i, condition)
    for channel in policy.notification_channels:
        if channel not in project.store(MonitoringStore).notification_channels:
            raise not_found(f"Notification channel '{channel}' does not exist.")


def _stamped(policy: mt.AlertPolicy, call: Call, created: bool) -> None:
    record = mt.MutationRecord(mutate_time=call.world.clock.now(), mutated_by=call.authenticate())
    if created:
        policy.creation_record = record
    policy.mutation_record = record
    for i, condition in enumerate(policy.conditions):
        if not condition.name:
            condition.name = f"{policy.name}/conditions/{secrets.randbelow(10**18) + i}"


def create_alert_policy(call: Call, request: mt.CreateAlertPolicyRequest) -> mt.AlertPolicy:
    project = _project(call, request.name, "monitoring.alertPolicies.create")
    policy = mt.AlertPolicy(request.alert_policy)
    _check_policy(project, policy)
    policy.name = f"projects/{project.project_id}/alertPolicies/{secrets.randbelow(10**19)}"
    if not mt.AlertPolicy.pb(policy).HasField("enabled"):
        # alert.proto, AlertPolicy.enabled: "On write, the default interpretation if unset is that the policy is
        # enabled"; what is read back says so.
        policy.enabled = True  # type: ignore[assignment]  # proto-plus takes a bool for a BoolValue
    _stamped(policy, call, created=True)
    project.store(MonitoringStore).alert_policies[policy.name] = policy
    _audit(call, project, policy.name, "monitoring.alertPolicies.create", request, policy)
    return policy


def _policy_project(call: Call, name: str, permission: str) -> tuple[Project, str]:
    project_name, sep, _ = name.partition("/alertPolicies/")
    if not sep:
        raise invalid_argument(f"Invalid alert policy name: {name!r}.")
    return _project(call, project_name, permission), name


def get_alert_policy(call: Call, request: mt.GetAlertPolicyRequest) -> mt.AlertPolicy:
    project, name = _policy_project(call, request.name, "monitoring.alertPolicies.get")
    if name not in project.store(MonitoringStore).alert_policies:
        raise not_found(f"Alert policy '{name}' does not exist.")
    return project.store(MonitoringStore).alert_policies[name]


def list_alert_policies(call: Call, request: mt.ListAlertPoliciesRequest) -> mt.ListAlertPoliciesResponse:
    project = _project(call, request.name, "monitoring.alertPolicies.list")
    policies = list(project.store(MonitoringStore).alert_policies.values())
    if request.filter:
        wanted = re.fullmatch(r'\s*display_name\s*=\s*"([^"]*)"\s*', request.filter)
        if wanted is None:
            raise invalid_argument('Only filters of the form display_name="..." are supported by this emulator.')
        policies = [p for p in policies if p.display_name == wanted.group(1)]
    return mt.ListAlertPoliciesResponse(alert_policies=policies, total_size=len(policies))


def update_alert_policy(call: Call, request: mt.UpdateAlertPolicyRequest) -> mt.AlertPolicy:
    project, name = _policy_project(call, request.alert_policy.name, "monitoring.alertPolicies.update")
    if name not in project.store(MonitoringStore).alert_policies:
        raise not_found(f"Alert policy '{name}' does not exist.")
    current = project.store(MonitoringStore).alert_policies[name]
    incoming = mt.AlertPolicy(request.alert_policy)
    paths = list(request.update_mask.paths) if request.update_mask and request.update_mask.paths else []
    if paths:
        merged = mt.AlertPolicy(current)
        for path in paths:
            top = path.split(".")[0]
            if top not in mt.AlertPolicy.pb(merged).DESCRIPTOR.fields_by_name:
                raise invalid_argument(f"Invalid update_mask path: {path!r}.")
            setattr(merged, top, getattr(incoming, top))
        incoming = merged
    incoming.name = name
    incoming.creation_record = current.creation_record
    _check_policy(project, incoming)
    _stamped(incoming, call, created=False)
    project.store(MonitoringStore).alert_policies[name] = incoming
    _audit(call, project, name, "monitoring.alertPolicies.update", request, incoming)
    return incoming


def delete_alert_policy(call: Call, request: mt.DeleteAlertPolicyRequest) -> empty_pb2.Empty:
    project, name = _policy_project(call, request.name, "monitoring.alertPolicies.delete")
    if project.store(MonitoringStore).alert_policies.pop(name, None) is None:
        raise not_found(f"Alert policy '{name}' does not exist.")
    _audit(call, project, name, "monitoring.alertPolicies.delete", request)
    return empty_pb2.Empty()


CHANNEL_TYPES = {
    "email": "email_address",
    "slack": "channel_name",
    "pagerduty": "service_key",
    "webhook_tokenauth": "url",
    "pubsub": "topic",
    "sms": "number",
}


def create_notification_channel(call: Call, request: mt.CreateNotificationChannelRequest) -> mt.NotificationChannel:
    project = _project(call, request.name, "monitoring.notificationChannels.create")
    channel = mt.NotificationChannel(request.notification_channel)
    if channel.type_ not in CHANNEL_TYPES:
        raise invalid_argument(
            f'Field notification_channel.type had an invalid value of "{channel.type_}": unknown channel type.'
        )
    required = CHANNEL_TYPES[channel.type_]
    if not channel.labels.get(required):
        raise invalid_argument(
            f"Field notification_channel.labels had an invalid value: label {required!r} is required "
            f"for type {channel.type_}."
        )
    channel.name = f"projects/{project.project_id}/notificationChannels/{secrets.randbelow(10**19)}"
    channel.verification_status = mt.NotificationChannel.VerificationStatus.VERIFIED  # type: ignore[assignment]
    project.store(MonitoringStore).notification_channels[channel.name] = channel
    _audit(call, project, channel.name, "monitoring.notificationChannels.create", request, channel)
    return channel


def _channel(call: Call, name: str, permission: str) -> tuple[Project, str]:
    project_name, sep, _ = name.partition("/notificationChannels/")
    if not sep:
        raise invalid_argument(f"Invalid notification channel name: {name!r}.")
    project = _project(call, project_name, permission)
    if name not in project.store(MonitoringStore).notification_channels:
        raise not_found(f"Notification channel '{name}' does not exist.")
    return project, name


def get_notification_channel(call: Call, request: mt.GetNotificationChannelRequest) -> mt.NotificationChannel:
    project, name = _channel(call, request.name, "monitoring.notificationChannels.get")
    return project.store(MonitoringStore).notification_channels[name]


def list_notification_channels(
    call: Call, request: mt.ListNotificationChannelsRequest
) -> mt.ListNotificationChannelsResponse:
    project = _project(call, request.name, "monitoring.notificationChannels.list")
    channels = list(project.store(MonitoringStore).notification_channels.values())
    return mt.ListNotificationChannelsResponse(notification_channels=channels, total_size=len(channels))


def delete_notification_channel(call: Call, request: mt.DeleteNotificationChannelRequest) -> empty_pb2.Empty:
    project, name = _channel(call, request.name, "monitoring.notificationChannels.delete")
    in_use = [p.name for p in project.store(MonitoringStore).alert_policies.values() if name in p.notification_channels]
    if in_use and not request.force:
        raise RpcError(
            code_pb2.FAILED_PRECONDITION,
            f"Notification channel '{name}' is used by alert policies: "
            f"{', '.join(in_use)}. Set force=true to delete it anyway.",
        )
    del project.store(MonitoringStore).notification_channels[name]
    _audit(call, project, name, "monitoring.notificationChannels.delete", request)
    return empty_pb2.Empty()


def _methods() -> list[Method]:
    metric = "google.monitoring.v3.MetricService"
    alert = "google.monitoring.v3.AlertPolicyService"
    channel = "google.monitoring.v3.NotificationChannelService"
    spec: list[tuple[str, str, Any, Any, Callable[..., Any]]] = [
        (metric, "CreateTimeSeries", mt.CreateTimeSeriesRequest, empty_pb2.Empty, create_time_series),
        (metric, "ListTimeSeries", mt.ListTimeSeriesRequest, mt.ListTimeSeriesResponse, list_time_series),
        (
            metric,
            "CreateMetricDescriptor",
            mt.CreateMetricDescriptorRequest,
            metric_pb2.MetricDescriptor,
            create_metric_descriptor,
        ),
        (
            metric,
            "GetMetricDescriptor",
            mt.GetMetricDescriptorRequest,
            metric_pb2.MetricDescriptor,
            get_metric_descriptor,
        ),
        (
            metric,
            "ListMetricDescriptors",
            mt.ListMetricDescriptorsRequest,
            mt.ListMetricDescriptorsResponse,
            list_metric_descriptors,
        ),
        (
            metric,
            "DeleteMetricDescriptor",
            mt.DeleteMetricDescriptorRequest,
            empty_pb2.Empty,
            delete_metric_descriptor,
        ),
        (alert, "CreateAlertPolicy", mt.CreateAlertPolicyRequest, mt.AlertPolicy, create_alert_policy),
        (alert, "GetAlertPolicy", mt.GetAlertPolicyRequest, mt.AlertPolicy, get_alert_policy),
        (
            alert,
            "ListAlertPolicies",
            mt.ListAlertPoliciesRequest,
            mt.ListAlertPoliciesResponse,
            list_alert_policies,
        ),
        (alert, "UpdateAlertPolicy", mt.UpdateAlertPolicyRequest, mt.AlertPolicy, update_alert_policy),
        (alert, "DeleteAlertPolicy", mt.DeleteAlertPolicyRequest, empty_pb2.Empty, delete_alert_policy),
        (
            channel,
            "CreateNotificationChannel",
            mt.CreateNotificationChannelRequest,
            mt.NotificationChannel,
            create_notification_channel,
        ),
        (
            channel,
            "GetNotificationChannel",
            mt.GetNotificationChannelRequest,
            mt.NotificationChannel,
            get_notification_channel,
        ),
        (
            channel,
            "ListNotificationChannels",
            mt.ListNotificationChannelsRequest,
            mt.ListNotificationChannelsResponse,
            list_notification_channels,
        ),
        (
            channel,
            "DeleteNotificationChannel",
            mt.DeleteNotificationChannelRequest,
            empty_pb2.Empty,
            delete_notification_channel,
        ),
    ]
    return [Method(svc, name, req, resp, handler, API) for svc, name, req, resp, handler in spec]


_MET = "google.monitoring.v3.MetricService"
_ALR = "google.monitoring.v3.AlertPolicyService"
_NCH = "google.monitoring.v3.NotificationChannelService"
# The google.api.http rules of these methods (googleapis protos; the installed GAPIC REST transports carry the
# same templates).
RULES: list[HttpRule] = [
    HttpRule("POST", "/v3/{name=projects/*}/timeSeries", f"{_MET}.CreateTimeSeries", "*"),
    HttpRule("GET", "/v3/{name=projects/*}/timeSeries", f"{_MET}.ListTimeSeries"),
    HttpRule("POST", "/v3/{name=projects/*}/metricDescriptors", f"{_MET}.CreateMetricDescriptor", "metric_descriptor"),
    HttpRule("GET", "/v3/{name=projects/*}/metricDescriptors", f"{_MET}.ListMetricDescriptors"),
    HttpRule("GET", "/v3/{name=projects/*/metricDescriptors/**}", f"{_MET}.GetMetricDescriptor"),
    HttpRule("DELETE", "/v3/{name=projects/*/metricDescriptors/**}", f"{_MET}.DeleteMetricDescriptor"),
    HttpRule("POST", "/v3/{name=projects/*}/alertPolicies", f"{_ALR}.CreateAlertPolicy", "alert_policy"),
    HttpRule("GET", "/v3/{name=projects/*}/alertPolicies", f"{_ALR}.ListAlertPolicies"),
    HttpRule("GET", "/v3/{name=projects/*/alertPolicies/*}", f"{_ALR}.GetAlertPolicy"),
    HttpRule(
        "PATCH", "/v3/{alert_policy.name=projects/*/alertPolicies/*}", f"{_ALR}.UpdateAlertPolicy", "alert_policy"
    ),
    HttpRule("DELETE", "/v3/{name=projects/*/alertPolicies/*}", f"{_ALR}.DeleteAlertPolicy"),
    HttpRule(
        "POST",
        "/v3/{name=projects/*}/notificationChannels",
        f"{_NCH}.CreateNotificationChannel",
        "notification_channel",
    ),
    HttpRule("GET", "/v3/{name=projects/*}/notificationChannels", f"{_NCH}.ListNotificationChannels"),
    HttpRule("GET", "/v3/{name=projects/*/notificationChannels/*}", f"{_NCH}.GetNotificationChannel"),
    HttpRule("DELETE", "/v3/{name=projects/*/notificationChannels/*}", f"{_NCH}.DeleteNotificationChannel"),
]


SERVICE = Service(
    apis=(Api(API, "Cloud Monitoring API", gcloud="MONITORING"),),
    methods=(*_methods(),),
    rules=(*RULES,),
    # Alert policies are evaluated on the clock and notify their channels (alerting.py, notify.py).
    tick=notify.tick,
    admin=notify.ADMIN,
)
