"""Time-series alignment and cross-series reduction (google.monitoring.v3.Aggregation).

Semantics from google/monitoring/v3/common.proto (Aggregation, Aligner, Reducer) and the REST
reference for TimeInterval, which says reads use a half-open interval "(startTime, endTime]"
(googleapis.dev/ruby/google-apis-monitoring_v3/v0.68.0/Google/Apis/MonitoringV3/TimeInterval.html).

* Points count when interval_start < end <= interval_end (series points outside only serve as the
  baseline of a CUMULATIVE delta).
* Alignment periods end at interval_end and go back: (end - p, end], (end - 2p, end - p], ... as long as
  a period ends after interval_start; each aligned point sits at its period's end, newest first.
* Aligners: ALIGN_NONE, ALIGN_DELTA, ALIGN_RATE, ALIGN_NEXT_OLDER, ALIGN_MIN, ALIGN_MAX, ALIGN_MEAN,
  ALIGN_COUNT, ALIGN_SUM, ALIGN_COUNT_TRUE, ALIGN_COUNT_FALSE, ALIGN_FRACTION_TRUE, with the proto's
  metric-kind / value-type rules and output value types. Reducers: REDUCE_NONE, REDUCE_SUM,
  REDUCE_COUNT, REDUCE_MEAN, REDUCE_MAX, REDUCE_MIN, REDUCE_COUNT_TRUE, REDUCE_COUNT_FALSE,
  REDUCE_FRACTION_TRUE. The proto's other aligners and reducers (interpolate, stddev, percentiles,
  percent change) are validated like the rest, then raise AggregationUnsupported, as do DISTRIBUTION
  values (a Point cannot hold one).
* A reduced series keeps only the labels named in group_by_fields (and its resource.type, which is
  always grouped on); every other label is aggregated away, as the proto says.

Assumption: periods with no points yield no aligned point - no interpolation for ALIGN_DELTA/RATE.
Assumption: ALIGN_NEXT_OLDER looks only inside the period (the newest point in it).
Assumption: a CUMULATIVE point's increment is its rise over the previous point of the same run
  (same start time, not decreasing); after a reset it is the new value; a first point with nothing
  before it counts whole only when its start is inside the interval, else 0.
Assumption: ALIGN_RATE divides the period's delta by the alignment period; ALIGN_SUM and ALIGN_DELTA
  keep a DELTA series' kind, every other aligner yields GAUGE (ALIGN_RATE: per the proto).
Assumption: a series missing a grouped label joins the group without it, and its output omits it.

Error texts whose wording is this emulator's own are marked where they are raised.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

Value = float | int | bool


@dataclass(frozen=True)
class Point:
    end: datetime
    value: Value
    start: datetime | None = None


@dataclass
class Series:
    metric_type: str
    metric_labels: dict[str, str]
    resource_type: str
    resource_labels: dict[str, str]
    metric_kind: str  # GAUGE | DELTA | CUMULATIVE
    value_type: str  # INT64 | DOUBLE | BOOL | DISTRIBUTION (validated, never aggregated)
    points: list[Point]  # newest first


@dataclass(frozen=True)
class Aggregation:
    alignment_period_s: float = 0
    per_series_aligner: str = "ALIGN_NONE"
    cross_series_reducer: str = "REDUCE_NONE"
    group_by_fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class GroupBy:
    metric_labels: tuple[str, ...]
    resource_labels: tuple[str, ...]


class AggregationError(ValueError):
    """An aggregation the API refuses; str(err) is the INVALID_ARGUMENT message."""


class AggregationUnsupported(AggregationError):
    """A real Monitoring feature this emulator does not implement."""


@dataclass(frozen=True)
class _Rule:
    kinds: frozenset[str]
    value_types: frozenset[str]
    output_type: str | None  # None: the input's value type


_GAUGE, _DELTA, _CUMULATIVE = frozenset({"GAUGE"}), frozenset({"DELTA"}), frozenset({"CUMULATIVE"})
_NUMERIC, _BOOL, _DIST = frozenset({"INT64", "DOUBLE"}), frozenset({"BOOL"}), frozenset({"DISTRIBUTION"})

_PERCENTILES = ("99", "95", "50", "05")
ALIGNERS = {  # every Aligner in common.proto, with the kinds and value types it says it is valid for
    "ALIGN_DELTA": _Rule(_CUMULATIVE | _DELTA, _NUMERIC | _DIST, None),
    "ALIGN_RATE": _Rule(_CUMULATIVE | _DELTA, _NUMERIC, "DOUBLE"),
    "ALIGN_INTERPOLATE": _Rule(_GAUGE, _NUMERIC, None),
    "ALIGN_NEXT_OLDER": _Rule(_GAUGE, _NUMERIC | _BOOL | _DIST | {"STRING"}, None),
    "ALIGN_MIN": _Rule(_GAUGE | _DELTA, _NUMERIC, None),
    "ALIGN_MAX": _Rule(_GAUGE | _DELTA, _NUMERIC, None),
    "ALIGN_MEAN": _Rule(_GAUGE | _DELTA, _NUMERIC, "DOUBLE"),
    "ALIGN_COUNT": _Rule(_GAUGE | _DELTA, _NUMERIC | _BOOL, "INT64"),
    "ALIGN_SUM": _Rule(_GAUGE | _DELTA, _NUMERIC | _DIST, None),
    "ALIGN_STDDEV": _Rule(_GAUGE | _DELTA, _NUMERIC, "DOUBLE"),
    "ALIGN_COUNT_TRUE": _Rule(_GAUGE, _BOOL, "INT64"),
    "ALIGN_COUNT_FALSE": _Rule(_GAUGE, _BOOL, "INT64"),
    "ALIGN_FRACTION_TRUE": _Rule(_GAUGE, _BOOL, "DOUBLE"),
    **{f"ALIGN_PERCENTILE_{n}": _Rule(_GAUGE | _DELTA, _DIST, "DOUBLE") for n in _PERCENTILES},
    "ALIGN_PERCENT_CHANGE": _Rule(_GAUGE | _DELTA, _NUMERIC, "DOUBLE"),
}
REDUCERS = {  # every Reducer: (valid input value types, output value type); all valid for GAUGE and DELTA
    "REDUCE_MEAN": (_NUMERIC | _DIST, "DOUBLE"),
    "REDUCE_MIN": (_NUMERIC, None),
    "REDUCE_MAX": (_NUMERIC, None),
    "REDUCE_SUM": (_NUMERIC | _DIST, None),
    "REDUCE_STDDEV": (_NUMERIC | _DIST, "DOUBLE"),
    "REDUCE_COUNT": (_NUMERIC | _BOOL | _DIST | {"STRING"}, "INT64"),
    "REDUCE_COUNT_TRUE": (_BOOL, "INT64"),
    "REDUCE_COUNT_FALSE": (_BOOL, "INT64"),
    "REDUCE_FRACTION_TRUE": (_BOOL, "DOUBLE"),
    **{f"REDUCE_PERCENTILE_{n}": (_NUMERIC | _DIST, "DOUBLE") for n in _PERCENTILES},
}


def validate_aggregation(agg: Aggregation, metric_kind: str, value_type: str) -> None:
    """Raise what Monitoring answers for this aggregation over a metric of this kind and value type."""
    _check_shape(agg)
    aligner, reducer = agg.per_series_aligner, agg.cross_series_reducer
    if aligner in ALIGNERS:
        rule = ALIGNERS[aligner]
        if metric_kind not in rule.kinds or value_type not in rule.value_types:
            # Verbatim: github.com/google/exposure-notifications-verification-server/issues/659,
            # github.com/grafana/grafana/issues/22634, github.com/google/slo-generator/issues/231.
            raise AggregationError(
                f'Field aggregation.perSeriesAligner had an invalid value of "{aligner}": The aligner cannot '
                f"be applied to metrics with kind {metric_kind} and value type {value_type}."
            )
    aligned_type = _aligned_type(aligner, value_type)
    if reducer in REDUCERS and aligned_type not in REDUCERS[reducer][0]:
        # "The reducer cannot be applied to metrics with value type DOUBLE" is quoted from a live
        # rejection in a public repository's tests.
        # Assumption: the prefix `Field aggregation.crossSeriesReducer had an invalid value of ...` is the
        # aligner error's, by analogy.
        raise AggregationError(
            f'Field aggregation.crossSeriesReducer had an invalid value of "{reducer}": '
            f"The reducer cannot be applied to metrics with value type {aligned_type}."
        )
    for name in (aligner, reducer):
        if name not in _ALIGN and name not in _REDUCE and name not in ("ALIGN_NONE", "REDUCE_NONE"):
            raise AggregationUnsupported(f"The emulator does not implement {name}.")
    if value_type == "DISTRIBUTION":
        raise AggregationUnsupported("The emulator does not aggregate DISTRIBUTION values.")


def check_alert_alignment_period(agg: Aggregation, field: str) -> None:
    """Alert conditions take whole minutes only. `field` names the alignment_period being checked."""
    seconds = agg.alignment_period_s
    if seconds and seconds % 60:
        # Verbatim: github.com/hashicorp/terraform-provider-google/pull/10893, where field was
        # alert_policy.conditions[0].condition_threshold.aggregations[0].alignment_period.
        whole, nanos = divmod(round(seconds * 1e9), 10**9)
        shown = f'{{"seconds":{whole}}}' if not nanos else f'{{"seconds":{whole},"nanos":{nanos}}}'
        raise AggregationError(
            f'Field {field} had an invalid value of "{shown}": alignment period must be in multiples of one minute'
        )


def group_key_labels(fields: Sequence[str]) -> GroupBy:
    """The metric and resource label keys a group_by_fields list keeps (resource.type is implicit)."""
    metric: list[str] = []
    resource: list[str] = []
    for field in fields:
        scope, _, rest = field.partition(".")
        kind, _, key = rest.partition(".")
        key = key[1:-1] if len(key) > 1 and key[0] == key[-1] == '"' else key
        if field in ("resource.type", "metric.type"):
            continue
        if scope in ("metric", "resource") and kind in ("label", "labels") and key:
            target = metric if scope == "metric" else resource
            if key not in target:
                target.append(key)
            continue
        # Assumption (unverified): the wording for a bad group_by_fields entry.
        raise AggregationError(
            f'Field aggregation.groupByFields had an invalid value of "{field}": expected metric.label.KEY, '
            "resource.label.KEY or resource.type."
        )
    return GroupBy(tuple(metric), tuple(resource))


def kept_metric_labels(agg: Aggregation) -> set[str] | None:
    """Metric labels left on the output series; None when there is no reduction, so all of them."""
    if agg.cross_series_reducer == "REDUCE_NONE":
        return None
    return set(group_key_labels(agg.group_by_fields).metric_labels)


def aggregate(series: list[Series], interval_start: datetime, interval_end: datetime, agg: Aggregation) -> list[Series]:
    if interval_start.tzinfo is None or interval_end.tzinfo is None:
        raise ValueError("interval times must be timezone-aware")
    _check_shape(agg)
    for one in series:
        validate_aggregation(agg, one.metric_kind, one.value_type)
    if agg.per_series_aligner == "ALIGN_NONE":
        kept = [replace(s, points=[p for p in s.points if interval_start < p.end <= interval_end]) for s in series]
        return [s for s in kept if s.points]
    aligned = [_align(s, interval_start, interval_end, agg) for s in series]
    aligned = [s for s in aligned if s.points]
    if agg.cross_series_reducer == "REDUCE_NONE":
        return aligned
    return _reduce(aligned, agg)


# --- validation ---------------------------------------------------------------------------------


def _check_shape(agg: Aggregation) -> None:
    """What needs no metric descriptor: known names, an aligner under a reducer, the period."""
    if agg.per_series_aligner not in ALIGNERS and agg.per_series_aligner != "ALIGN_NONE":
        raise AggregationError(_bad_enum("per_series_aligner", "Aligner", agg.per_series_aligner))
    if agg.cross_series_reducer not in REDUCERS and agg.cross_series_reducer != "REDUCE_NONE":
        raise AggregationError(_bad_enum("cross_series_reducer", "Reducer", agg.cross_series_reducer))
    if agg.cross_series_reducer != "REDUCE_NONE" and agg.per_series_aligner == "ALIGN_NONE":
        # Assumption (unverified): the wording for a reducer over ALIGN_NONE; the rule itself is the proto's.
        raise AggregationError(
            'Field aggregation.perSeriesAligner had an invalid value of "ALIGN_NONE": a cross-series reducer '
            "needs a per-series aligner other than ALIGN_NONE."
        )
    if agg.per_series_aligner != "ALIGN_NONE" and agg.alignment_period_s < 60:
        # Verbatim: github.com/spinnaker/spinnaker/issues/3025 ("10s").
        # Assumption: a missing alignment period is shown as "0s" in the "must be greater than or equal to 1 minute"
        # error.
        shown = _duration_json(agg.alignment_period_s)
        raise AggregationError(
            f'Field aggregation.alignmentPeriod had an invalid value of "{shown}": '
            "The alignment period must be greater than or equal to 1 minute."
        )
    if agg.cross_series_reducer != "REDUCE_NONE":
        group_key_labels(agg.group_by_fields)


def _bad_enum(field: str, enum: str, name: str) -> str:
    # Assumption (unverified): the shape of Google's JSON-transcoding error for an unknown enum name.
    message_type = f"type.googleapis.com/google.monitoring.v3.Aggregation.{enum}"
    return f"Invalid value at 'aggregation.{field}' ({message_type}), \"{name}\""


def _aligned_type(aligner: str, value_type: str) -> str:
    rule = ALIGNERS.get(aligner)
    return value_type if rule is None or rule.output_type is None else rule.output_type


def _aligned_kind(aligner: str, metric_kind: str) -> str:
    if aligner == "ALIGN_DELTA" or (aligner == "ALIGN_SUM" and metric_kind == "DELTA"):
        return "DELTA"
    return "GAUGE"


def _duration_json(seconds: float) -> str:
    sign = "-" if seconds < 0 else ""
    whole, nanos = divmod(round(abs(seconds) * 1e9), 10**9)
    if not nanos:
        return f"{sign}{whole}s"
    digits = 3 if nanos % 10**6 == 0 else 6 if nanos % 1000 == 0 else 9
    return f"{sign}{whole}.{nanos // 10 ** (9 - digits):0{digits}d}s"


# --- alignment ----------------------------------------------------------------------------------


def _align(series: Series, start: datetime, end: datetime, agg: Aggregation) -> Series:
    period = timedelta(seconds=agg.alignment_period_s)
    period_us = max(1, period // timedelta(microseconds=1))
    oldest_first = sorted(series.points, key=lambda p: p.end)
    if series.metric_kind == "CUMULATIVE":
        samples = _cumulative_increments(oldest_first, start)
    else:
        samples = [(p.end, p.value) for p in oldest_first]
    buckets: dict[int, list[Value]] = {}
    for at, value in samples:
        if start < at <= end:
            buckets.setdefault((end - at) // timedelta(microseconds=1) // period_us, []).append(value)
    aligner = agg.per_series_aligner
    kind = _aligned_kind(aligner, series.metric_kind)
    value_type = _aligned_type(aligner, series.value_type)
    points = []
    for index in sorted(buckets):
        period_end = end - index * period
        value = _ALIGN[aligner](buckets[index], agg.alignment_period_s)
        points.append(Point(period_end, _typed(value, value_type), period_end - period if kind == "DELTA" else None))
    return replace(series, metric_kind=kind, value_type=value_type, points=points)


def _cumulative_increments(oldest_first: list[Point], start: datetime) -> list[tuple[datetime, Value]]:
    increments: list[tuple[datetime, Value]] = []
    previous: Point | None = None
    for point in oldest_first:
        same_run = (
            previous is not None
            and (point.start is None or previous.start is None or point.start == previous.start)
            and point.value >= previous.value
        )
        if previous is not None and same_run:
            increment = point.value - previous.value
        elif previous is not None or (point.start is not None and point.start >= start):
            increment = point.value
        else:
            increment = 0
        increments.append((point.end, increment))
        previous = point
    return increments


def _typed(value: Value, value_type: str) -> Value:
    if value_type == "INT64":
        return int(value)
    if value_type == "DOUBLE":
        return float(value)
    return bool(value) if value_type == "BOOL" else value


_ALIGN: dict[str, Callable[[list[Value], float], Value]] = {
    "ALIGN_DELTA": lambda values, _p: sum(values),
    "ALIGN_RATE": lambda values, period: sum(values) / period,
    "ALIGN_NEXT_OLDER": lambda values, _p: values[-1],
    "ALIGN_MIN": lambda values, _p: min(values),
    "ALIGN_MAX": lambda values, _p: max(values),
    "ALIGN_MEAN": lambda values, _p: sum(values) / len(values),
    "ALIGN_COUNT": lambda values, _p: len(values),
    "ALIGN_SUM": lambda values, _p: sum(values),
    "ALIGN_COUNT_TRUE": lambda values, _p: sum(1 for v in values if v is True),
    "ALIGN_COUNT_FALSE": lambda values, _p: sum(1 for v in values if v is False),
    "ALIGN_FRACTION_TRUE": lambda values, _p: sum(1 for v in values if v is True) / len(values),
}


# --- reduction ----------------------------------------------------------------------------------


def _reduce(aligned: list[Series], agg: Aggregation) -> list[Series]:
    keys = group_key_labels(agg.group_by_fields)
    groups: dict[tuple[str, tuple[str | None, ...], tuple[str | None, ...]], list[Series]] = {}
    for one in aligned:
        key = (
            one.resource_type,
            tuple(one.metric_labels.get(k) for k in keys.metric_labels),
            tuple(one.resource_labels.get(k) for k in keys.resource_labels),
        )
        groups.setdefault(key, []).append(one)
    reducer = agg.cross_series_reducer
    output = []
    for key in sorted(groups, key=lambda k: (k[0], [v or "" for v in k[1]], [v or "" for v in k[2]])):
        members = groups[key]
        first = members[0]
        value_type = REDUCERS[reducer][1] or first.value_type
        by_end: dict[datetime, list[Point]] = {}
        for member in members:
            for point in member.points:
                by_end.setdefault(point.end, []).append(point)
        points = [
            Point(at, _typed(_REDUCE[reducer]([p.value for p in by_end[at]]), value_type), by_end[at][0].start)
            for at in sorted(by_end, reverse=True)
        ]
        output.append(
            Series(
                metric_type=first.metric_type,
                metric_labels={k: v for k, v in zip(keys.metric_labels, key[1], strict=True) if v is not None},
                resource_type=key[0],
                resource_labels={k: v for k, v in zip(keys.resource_labels, key[2], strict=True) if v is not None},
                metric_kind=first.metric_kind,
                value_type=value_type,
                points=points,
            )
        )
    return output


_REDUCE: dict[str, Callable[[list[Value]], Value]] = {
    "REDUCE_SUM": sum,
    "REDUCE_MIN": min,
    "REDUCE_MAX": max,
    "REDUCE_MEAN": lambda values: sum(values) / len(values),
    "REDUCE_COUNT": len,
    "REDUCE_COUNT_TRUE": lambda values: sum(1 for v in values if v is True),
    "REDUCE_COUNT_FALSE": lambda values: sum(1 for v in values if v is False),
    "REDUCE_FRACTION_TRUE": lambda values: sum(1 for v in values if v is True) / len(values),
}
