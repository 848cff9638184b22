"""Alignment and reduction: exact outputs per aligner/reducer, grouping, and Google's refusals."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from emulator.services.monitoring.aggregation import (
    Aggregation,
    AggregationError,
    AggregationUnsupported,
    GroupBy,
    Point,
    Series,
    Value,
    aggregate,
    check_alert_alignment_period,
    group_key_labels,
    kept_metric_labels,
    validate_aggregation,
)

END = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
METRIC = "logging.googleapis.com/user/gemini_canary_failures"


def ago(seconds: float) -> datetime:
    return END - timedelta(seconds=seconds)


def series(
    values: Sequence[tuple[float, Value]],
    kind: str = "GAUGE",
    value_type: str = "DOUBLE",
    metric_labels: dict[str, str] | None = None,
    resource_labels: dict[str, str] | None = None,
    resource_type: str = "cloud_run_revision",
    start: datetime | None = None,
) -> Series:
    """Points given as (seconds before END, value), newest first as Monitoring returns them."""
    points = [
        Point(ago(s), v, start if start is not None else (ago(s + 1) if kind == "DELTA" else None)) for s, v in values
    ]
    return Series(
        METRIC,
        dict(metric_labels or {}),
        resource_type,
        dict(resource_labels or {}),
        kind,
        value_type,
        sorted(points, key=lambda p: p.end, reverse=True),
    )


def relative(points: Sequence[Point]) -> list[tuple[float, Value]]:
    return [((END - p.end).total_seconds(), p.value) for p in points]


GAUGE_DOUBLE: list[tuple[float, Value]] = [(10, 1.0), (20, 3.0), (70, 2.0), (80, 6.0)]
GAUGE_BOOL: list[tuple[float, Value]] = [(10, True), (20, False), (70, True), (80, True), (90, False)]


@pytest.mark.parametrize(
    ("aligner", "values", "value_type", "out_type", "expected"),
    [
        pytest.param("ALIGN_MEAN", GAUGE_DOUBLE, "DOUBLE", "DOUBLE", [(0, 2.0), (60, 4.0)], id="mean"),
        pytest.param("ALIGN_MAX", GAUGE_DOUBLE, "DOUBLE", "DOUBLE", [(0, 3.0), (60, 6.0)], id="max"),
        pytest.param("ALIGN_MIN", GAUGE_DOUBLE, "DOUBLE", "DOUBLE", [(0, 1.0), (60, 2.0)], id="min"),
        pytest.param("ALIGN_SUM", GAUGE_DOUBLE, "DOUBLE", "DOUBLE", [(0, 4.0), (60, 8.0)], id="sum"),
        pytest.param("ALIGN_COUNT", GAUGE_DOUBLE, "DOUBLE", "INT64", [(0, 2), (60, 2)], id="count"),
        pytest.param("ALIGN_NEXT_OLDER", GAUGE_DOUBLE, "DOUBLE", "DOUBLE", [(0, 1.0), (60, 2.0)], id="next-older"),
        pytest.param("ALIGN_MEAN", [(5, 1), (6, 2)], "INT64", "DOUBLE", [(0, 1.5)], id="mean-of-int-is-double"),
        pytest.param("ALIGN_MAX", [(5, 1), (6, 2)], "INT64", "INT64", [(0, 2)], id="max-keeps-int"),
        pytest.param("ALIGN_COUNT_TRUE", GAUGE_BOOL, "BOOL", "INT64", [(0, 1), (60, 2)], id="count-true"),
        pytest.param("ALIGN_COUNT_FALSE", GAUGE_BOOL, "BOOL", "INT64", [(0, 1), (60, 1)], id="count-false"),
        pytest.param("ALIGN_FRACTION_TRUE", GAUGE_BOOL, "BOOL", "DOUBLE", [(0, 0.5), (60, 2 / 3)], id="fraction-true"),
        pytest.param("ALIGN_COUNT", GAUGE_BOOL, "BOOL", "INT64", [(0, 2), (60, 3)], id="count-bool"),
        pytest.param("ALIGN_NEXT_OLDER", GAUGE_BOOL, "BOOL", "BOOL", [(0, True), (60, True)], id="next-older-bool"),
    ],
)
def test_gauge_aligners(
    aligner: str, values: list[tuple[float, Value]], value_type: str, out_type: str, expected: list[tuple[float, Value]]
) -> None:
    [out] = aggregate([series(values, value_type=value_type)], ago(180), END, Aggregation(60, aligner))
    assert (out.metric_kind, out.value_type, relative(out.points)) == ("GAUGE", out_type, expected)
    assert all(p.start is None for p in out.points)
    assert all(type(p.value) is type(expected[0][1]) for p in out.points)


DELTA_INT: list[tuple[float, Value]] = [(5, 2), (50, 3), (65, 4), (175, 1)]


@pytest.mark.parametrize(
    ("aligner", "out_kind", "out_type", "expected"),
    [
        pytest.param("ALIGN_DELTA", "DELTA", "INT64", [(0, 5), (60, 4), (120, 1)], id="delta"),
        pytest.param("ALIGN_SUM", "DELTA", "INT64", [(0, 5), (60, 4), (120, 1)], id="sum"),
        pytest.param("ALIGN_RATE", "GAUGE", "DOUBLE", [(0, 5 / 60), (60, 4 / 60), (120, 1 / 60)], id="rate"),
        pytest.param("ALIGN_MEAN", "GAUGE", "DOUBLE", [(0, 2.5), (60, 4.0), (120, 1.0)], id="mean"),
        pytest.param("ALIGN_MAX", "GAUGE", "INT64", [(0, 3), (60, 4), (120, 1)], id="max"),
        pytest.param("ALIGN_COUNT", "GAUGE", "INT64", [(0, 2), (60, 1), (120, 1)], id="count"),
    ],
)
def test_delta_aligners(aligner: str, out_kind: str, out_type: str, expected: list[tuple[float, Value]]) -> None:
    [out] = aggregate([series(DELTA_INT, "DELTA", "INT64")], ago(180), END, Aggregation(60, aligner))
    assert (out.metric_kind, out.value_type, relative(out.points)) == (out_kind, out_type, expected)


def test_delta_output_points_cover_their_period() -> None:
    [out] = aggregate([series(DELTA_INT, "DELTA", "INT64")], ago(180), END, Aggregation(60, "ALIGN_DELTA"))
    assert out.points == [Point(END, 5, ago(60)), Point(ago(60), 4, ago(120)), Point(ago(120), 1, ago(180))]


@pytest.mark.parametrize(
    ("values", "start", "aligner", "expected"),
    [
        pytest.param(
            [(30, 20), (100, 15), (150, 14), (200, 10)],
            ago(1000),
            "ALIGN_DELTA",
            [(0, 5), (60, 1), (120, 4)],
            id="delta-uses-earlier-point-as-baseline",
        ),
        pytest.param(
            [(30, 20), (100, 15), (150, 14), (200, 10)],
            ago(1000),
            "ALIGN_RATE",
            [(0, 5 / 60), (60, 1 / 60), (120, 4 / 60)],
            id="rate",
        ),
        pytest.param(
            [(30, 20), (100, 15), (150, 14)],
            ago(1000),
            "ALIGN_DELTA",
            [(0, 5), (60, 1), (120, 0)],
            id="first-point-without-baseline-counts-zero",
        ),
        pytest.param(
            [(30, 20), (100, 15), (150, 14)],
            ago(170),
            "ALIGN_DELTA",
            [(0, 5), (60, 1), (120, 14)],
            id="counter-started-inside-interval-counts-whole",
        ),
    ],
)
def test_cumulative_aligners(
    values: list[tuple[float, Value]], start: datetime, aligner: str, expected: list[tuple[float, Value]]
) -> None:
    [out] = aggregate([series(values, "CUMULATIVE", "INT64", start=start)], ago(180), END, Aggregation(60, aligner))
    assert relative(out.points) == expected


def test_cumulative_reset_counts_the_new_value() -> None:
    before, after = ago(1000), ago(95)
    points = [Point(ago(150), 10, before), Point(ago(90), 3, after), Point(ago(30), 7, after)]
    counter = Series(METRIC, {}, "global", {}, "CUMULATIVE", "INT64", list(reversed(points)))
    [out] = aggregate([counter], ago(180), END, Aggregation(60, "ALIGN_DELTA"))
    assert relative(out.points) == [(0, 4), (60, 3), (120, 0)]


def test_interval_is_start_exclusive_end_inclusive() -> None:
    values = [(-1, 9.0), (0, 1.0), (30, 2.0), (60, 3.0), (61, 4.0)]
    [raw] = aggregate([series(values)], ago(60), END, Aggregation())
    assert relative(raw.points) == [(0, 1.0), (30, 2.0)]


def test_period_boundary_point_belongs_to_the_period_it_ends() -> None:
    [out] = aggregate([series([(0, 1.0), (60, 2.0), (61, 3.0)])], ago(180), END, Aggregation(60, "ALIGN_SUM"))
    assert relative(out.points) == [(0, 1.0), (60, 5.0)]


def test_empty_periods_and_empty_series_are_left_out() -> None:
    quiet = series([(500, 1.0)], metric_labels={"cause": "old"})
    sparse = series([(10, 1.0), (130, 2.0)], metric_labels={"cause": "new"})
    out = aggregate([quiet, sparse], ago(180), END, Aggregation(60, "ALIGN_MAX"))
    assert [(s.metric_labels, relative(s.points)) for s in out] == [({"cause": "new"}, [(0, 1.0), (120, 2.0)])]


def test_align_none_returns_raw_points_and_labels() -> None:
    one = series([(10, 1.0)], metric_labels={"cause": "x"}, resource_labels={"location": "eu"})
    [out] = aggregate([one], ago(60), END, Aggregation())
    assert out == one


FLEET = [
    series([(10, 1), (70, 2)], "DELTA", "INT64", {"cause": "DENIED", "model": "flash"}, {"location": "us"}),
    series([(20, 4)], "DELTA", "INT64", {"cause": "DENIED", "model": "pro"}, {"location": "eu"}),
    series([(30, 8)], "DELTA", "INT64", {"cause": "QUOTA", "model": "flash"}, {"location": "us"}),
    series([(40, 16)], "DELTA", "INT64", {"model": "flash"}, {"location": "us"}),
]


@pytest.mark.parametrize(
    ("reducer", "group_by", "expected"),
    [
        pytest.param(
            "REDUCE_SUM",
            ("metric.label.cause",),
            [({}, {}, [(0, 16)]), ({"cause": "DENIED"}, {}, [(0, 5), (60, 2)]), ({"cause": "QUOTA"}, {}, [(0, 8)])],
            id="sum-by-cause-missing-label-omitted",
        ),
        pytest.param(
            "REDUCE_SUM",
            (),
            [({}, {}, [(0, 29), (60, 2)])],
            id="sum-all-into-one",
        ),
        pytest.param(
            "REDUCE_COUNT",
            ("resource.labels.location",),
            [({}, {"location": "eu"}, [(0, 1)]), ({}, {"location": "us"}, [(0, 3), (60, 1)])],
            id="count-by-resource-label",
        ),
        pytest.param(
            "REDUCE_MAX",
            ("metric.labels.model", "resource.label.location"),
            [
                ({"model": "flash"}, {"location": "us"}, [(0, 16), (60, 2)]),
                ({"model": "pro"}, {"location": "eu"}, [(0, 4)]),
            ],
            id="max-by-metric-and-resource-label",
        ),
        pytest.param("REDUCE_MIN", ("resource.type",), [({}, {}, [(0, 1), (60, 2)])], id="min-by-resource-type"),
        pytest.param("REDUCE_MEAN", (), [({}, {}, [(0, 7.25), (60, 2.0)])], id="mean"),
    ],
)
def test_reducers(
    reducer: str,
    group_by: tuple[str, ...],
    expected: list[tuple[dict[str, str], dict[str, str], list[tuple[float, Value]]]],
) -> None:
    out = aggregate(FLEET, ago(120), END, Aggregation(60, "ALIGN_SUM", reducer, group_by))
    assert [(s.metric_labels, s.resource_labels, relative(s.points)) for s in out] == expected


def test_reduced_series_shape() -> None:
    [out] = aggregate(FLEET, ago(120), END, Aggregation(60, "ALIGN_DELTA", "REDUCE_SUM", ("metric.label.cause",)))[1:2]
    assert out == Series(
        METRIC,
        {"cause": "DENIED"},
        "cloud_run_revision",
        {},
        "DELTA",
        "INT64",
        [Point(END, 5, ago(60)), Point(ago(60), 2, ago(120))],
    )


@pytest.mark.parametrize(
    ("reducer", "out_type", "expected"),
    [
        pytest.param("REDUCE_COUNT_TRUE", "INT64", [(0, 2)], id="count-true"),
        pytest.param("REDUCE_COUNT_FALSE", "INT64", [(0, 1)], id="count-false"),
        pytest.param("REDUCE_FRACTION_TRUE", "DOUBLE", [(0, 2 / 3)], id="fraction-true"),
        pytest.param("REDUCE_COUNT", "INT64", [(0, 3)], id="count"),
    ],
)
def test_bool_reducers(reducer: str, out_type: str, expected: list[tuple[float, Value]]) -> None:
    checkers = [
        series([(10, v)], value_type="BOOL", resource_labels={"checker": c})
        for c, v in [("a", True), ("b", False), ("c", True)]
    ]
    [out] = aggregate(checkers, ago(60), END, Aggregation(60, "ALIGN_NEXT_OLDER", reducer))
    assert (out.value_type, relative(out.points)) == (out_type, expected)


def test_resource_types_are_never_reduced_together() -> None:
    run = series([(10, 1.0)], resource_type="cloud_run_revision")
    fn = series([(10, 2.0)], resource_type="cloud_function")
    out = aggregate([run, fn], ago(60), END, Aggregation(60, "ALIGN_MEAN", "REDUCE_SUM"))
    assert [(s.resource_type, relative(s.points)) for s in out] == [
        ("cloud_function", [(0, 2.0)]),
        ("cloud_run_revision", [(0, 1.0)]),
    ]


@pytest.mark.parametrize(
    ("agg", "expected"),
    [
        pytest.param(Aggregation(60, "ALIGN_SUM"), None, id="no-reduction-keeps-all"),
        pytest.param(Aggregation(), None, id="raw-keeps-all"),
        pytest.param(Aggregation(60, "ALIGN_SUM", "REDUCE_SUM"), set(), id="reduce-all-keeps-none"),
        pytest.param(
            Aggregation(60, "ALIGN_SUM", "REDUCE_SUM", ("metric.label.cause", "resource.label.location")),
            {"cause"},
            id="only-grouped-metric-labels",
        ),
        pytest.param(
            Aggregation(60, "ALIGN_SUM", "REDUCE_COUNT", ("metric.labels.cause", "metric.label.model")),
            {"cause", "model"},
            id="both-spellings",
        ),
    ],
)
def test_kept_metric_labels(agg: Aggregation, expected: set[str] | None) -> None:
    assert kept_metric_labels(agg) == expected


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param(("metric.label.cause",), GroupBy(("cause",), ()), id="metric-label"),
        pytest.param(("metric.labels.cause", "metric.label.cause"), GroupBy(("cause",), ()), id="deduplicated"),
        pytest.param(("resource.labels.location", "resource.type"), GroupBy((), ("location",)), id="resource"),
        pytest.param(('metric.label."cause"',), GroupBy(("cause",), ()), id="quoted-key"),
        pytest.param((), GroupBy((), ()), id="none"),
    ],
)
def test_group_key_labels(fields: tuple[str, ...], expected: GroupBy) -> None:
    assert group_key_labels(fields) == expected


@pytest.mark.parametrize(
    ("agg", "kind", "value_type", "message"),
    [
        pytest.param(
            Aggregation(30, "ALIGN_SUM"),
            "DELTA",
            "INT64",
            'Field aggregation.alignmentPeriod had an invalid value of "30s": '
            "The alignment period must be greater than or equal to 1 minute.",
            id="period-under-a-minute",
        ),
        pytest.param(
            Aggregation(0, "ALIGN_MEAN"),
            "GAUGE",
            "DOUBLE",
            'Field aggregation.alignmentPeriod had an invalid value of "0s": '
            "The alignment period must be greater than or equal to 1 minute.",
            id="period-missing",
        ),
        pytest.param(
            Aggregation(59.5, "ALIGN_MEAN"),
            "GAUGE",
            "DOUBLE",
            'Field aggregation.alignmentPeriod had an invalid value of "59.500s": '
            "The alignment period must be greater than or equal to 1 minute.",
            id="period-fractional",
        ),
        pytest.param(
            Aggregation(60, "ALIGN_NONE", "REDUCE_SUM"),
            "GAUGE",
            "DOUBLE",
            'Field aggregation.perSeriesAligner had an invalid value of "ALIGN_NONE": '
            "a cross-series reducer needs a per-series aligner other than ALIGN_NONE.",
            id="reducer-without-aligner",
        ),
        pytest.param(
            Aggregation(60, "ALIGN_RATE"),
            "GAUGE",
            "BOOL",
            'Field aggregation.perSeriesAligner had an invalid value of "ALIGN_RATE": '
            "The aligner cannot be applied to metrics with kind GAUGE and value type BOOL.",
            id="rate-on-bool",
        ),
        pytest.param(
            Aggregation(60, "ALIGN_RATE"),
            "GAUGE",
            "INT64",
            'Field aggregation.perSeriesAligner had an invalid value of "ALIGN_RATE": '
            "The aligner cannot be applied to metrics with kind GAUGE and value type INT64.",
            id="rate-on-gauge",
        ),
        pytest.param(
            Aggregation(60, "ALIGN_RATE"),
            "DELTA",
            "DISTRIBUTION",
            'Field aggregation.perSeriesAligner had an invalid value of "ALIGN_RATE": '
            "The aligner cannot be applied to metrics with kind DELTA and value type DISTRIBUTION.",
            id="rate-on-distribution",
        ),
        pytest.param(
            Aggregation(60, "ALIGN_SUM"),
            "CUMULATIVE",
            "INT64",
            'Field aggregation.perSeriesAligner had an invalid value of "ALIGN_SUM": '
            "The aligner cannot be applied to metrics with kind CUMULATIVE and value type INT64.",
            id="sum-on-cumulative",
        ),
        pytest.param(
            Aggregation(60, "ALIGN_MEAN"),
            "GAUGE",
            "BOOL",
            'Field aggregation.perSeriesAligner had an invalid value of "ALIGN_MEAN": '
            "The aligner cannot be applied to metrics with kind GAUGE and value type BOOL.",
            id="mean-on-bool",
        ),
        pytest.param(
            Aggregation(60, "ALIGN_DELTA"),
            "GAUGE",
            "DOUBLE",
            'Field aggregation.perSeriesAligner had an invalid value of "ALIGN_DELTA": '
            "The aligner cannot be applied to metrics with kind GAUGE and value type DOUBLE.",
            id="delta-on-gauge",
        ),
        pytest.param(
            Aggregation(60, "ALIGN_COUNT_TRUE"),
            "DELTA",
            "BOOL",
            'Field aggregation.perSeriesAligner had an invalid value of "ALIGN_COUNT_TRUE": '
            "The aligner cannot be applied to metrics with kind DELTA and value type BOOL.",
            id="count-true-on-delta",
        ),
        pytest.param(
            Aggregation(60, "ALIGN_PERCENTILE_99"),
            "CUMULATIVE",
            "DISTRIBUTION",
            'Field aggregation.perSeriesAligner had an invalid value of "ALIGN_PERCENTILE_99": '
            "The aligner cannot be applied to metrics with kind CUMULATIVE and value type DISTRIBUTION.",
            id="percentile-on-cumulative",
        ),
        pytest.param(
            Aggregation(60, "ALIGN_FRACTION_TRUE", "REDUCE_COUNT_FALSE"),
            "GAUGE",
            "BOOL",
            'Field aggregation.crossSeriesReducer had an invalid value of "REDUCE_COUNT_FALSE": '
            "The reducer cannot be applied to metrics with value type DOUBLE.",
            id="count-false-after-fraction",
        ),
        pytest.param(
            Aggregation(60, "ALIGN_NEXT_OLDER", "REDUCE_SUM"),
            "GAUGE",
            "BOOL",
            'Field aggregation.crossSeriesReducer had an invalid value of "REDUCE_SUM": '
            "The reducer cannot be applied to metrics with value type BOOL.",
            id="sum-of-bool",
        ),
        pytest.param(
            Aggregation(60, "ALIGN_AVERAGE"),
            "GAUGE",
            "DOUBLE",
            "Invalid value at 'aggregation.per_series_aligner' "
            '(type.googleapis.com/google.monitoring.v3.Aggregation.Aligner), "ALIGN_AVERAGE"',
            id="unknown-aligner",
        ),
        pytest.param(
            Aggregation(60, "ALIGN_MEAN", "REDUCE_AVG"),
            "GAUGE",
            "DOUBLE",
            "Invalid value at 'aggregation.cross_series_reducer' "
            '(type.googleapis.com/google.monitoring.v3.Aggregation.Reducer), "REDUCE_AVG"',
            id="unknown-reducer",
        ),
        pytest.param(
            Aggregation(60, "ALIGN_MEAN", "REDUCE_MEAN", ("cause",)),
            "GAUGE",
            "DOUBLE",
            'Field aggregation.groupByFields had an invalid value of "cause": '
            "expected metric.label.KEY, resource.label.KEY or resource.type.",
            id="bad-group-by-field",
        ),
    ],
)
def test_validation_errors(agg: Aggregation, kind: str, value_type: str, message: str) -> None:
    with pytest.raises(AggregationError) as caught:
        validate_aggregation(agg, kind, value_type)
    assert type(caught.value) is AggregationError
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("agg", "kind", "value_type", "message"),
    [
        pytest.param(
            Aggregation(60, "ALIGN_PERCENTILE_99"),
            "DELTA",
            "DISTRIBUTION",
            "The emulator does not implement ALIGN_PERCENTILE_99.",
            id="percentile-aligner",
        ),
        pytest.param(
            Aggregation(60, "ALIGN_MEAN", "REDUCE_STDDEV"),
            "GAUGE",
            "DOUBLE",
            "The emulator does not implement REDUCE_STDDEV.",
            id="stddev-reducer",
        ),
        pytest.param(
            Aggregation(),
            "DELTA",
            "DISTRIBUTION",
            "The emulator does not aggregate DISTRIBUTION values.",
            id="distribution-values",
        ),
    ],
)
def test_unsupported(agg: Aggregation, kind: str, value_type: str, message: str) -> None:
    with pytest.raises(AggregationUnsupported) as caught:
        validate_aggregation(agg, kind, value_type)
    assert str(caught.value) == message


BASELINE = ago(1000)
ALIGNER_REFUSED = (
    'Field aggregation.perSeriesAligner had an invalid value of "{}": The aligner cannot be applied to metrics with '
    "kind {} and value type {}."
)
Out = tuple[str, str, str, list[tuple[float, Value]]]  # (resource type, kind, value type, points) of one output


def labelled(
    values: Sequence[tuple[float, Value]],
    kind: str,
    value_type: str,
    name: str,
    resource_type: str = "cloud_run_revision",
) -> Series:
    return series(values, kind, value_type, metric_labels={"instance": name}, resource_type=resource_type)


VALID = [
    pytest.param(
        Aggregation(),
        [series([(10, 9), (70, 4)], "CUMULATIVE", "INT64", start=BASELINE)],
        [("cloud_run_revision", "CUMULATIVE", "INT64", [(10, 9), (70, 4)])],  # the raw points, untouched
        (Aggregation(60, "ALIGN_COUNT_TRUE"), "CUMULATIVE", "INT64"),
        ALIGNER_REFUSED.format("ALIGN_COUNT_TRUE", "CUMULATIVE", "INT64"),
        id="raw",
    ),
    pytest.param(
        Aggregation(30),
        [series([(10, 1.5), (70, 2.5)])],
        [("cloud_run_revision", "GAUGE", "DOUBLE", [(10, 1.5), (70, 2.5)])],  # no aligner: the period means nothing
        (Aggregation(30, "ALIGN_MEAN"), "GAUGE", "DOUBLE"),
        'Field aggregation.alignmentPeriod had an invalid value of "30s": '
        "The alignment period must be greater than or equal to 1 minute.",
        id="period-ignored-without-aligner",
    ),
    pytest.param(
        Aggregation(60, "ALIGN_DELTA"),
        [series([(10, 9), (70, 4), (130, 1)], "CUMULATIVE", "INT64", start=BASELINE)],
        [("cloud_run_revision", "DELTA", "INT64", [(0, 9 - 4), (60, 4 - 1), (120, 0)])],  # the first has no baseline
        (Aggregation(60, "ALIGN_DELTA"), "GAUGE", "INT64"),
        ALIGNER_REFUSED.format("ALIGN_DELTA", "GAUGE", "INT64"),
        id="delta-on-cumulative",
    ),
    pytest.param(
        Aggregation(60, "ALIGN_RATE", "REDUCE_SUM"),
        [labelled([(10, 6), (70, 3)], "DELTA", "INT64", "a"), labelled([(20, 12)], "DELTA", "INT64", "b")],
        [("cloud_run_revision", "GAUGE", "DOUBLE", [(0, pytest.approx(6 / 60 + 12 / 60)), (60, 3 / 60)])],
        (Aggregation(60, "ALIGN_RATE", "REDUCE_SUM"), "GAUGE", "INT64"),
        ALIGNER_REFUSED.format("ALIGN_RATE", "GAUGE", "INT64"),
        id="rate-sum-on-delta",
    ),
    pytest.param(
        Aggregation(60, "ALIGN_SUM", "REDUCE_SUM"),
        [labelled([(10, 6), (20, 1), (70, 3)], "DELTA", "INT64", "a"), labelled([(20, 12)], "DELTA", "INT64", "b")],
        [("cloud_run_revision", "DELTA", "INT64", [(0, 6 + 1 + 12), (60, 3)])],
        (Aggregation(60, "ALIGN_SUM", "REDUCE_SUM"), "GAUGE", "BOOL"),
        ALIGNER_REFUSED.format("ALIGN_SUM", "GAUGE", "BOOL"),
        id="sum-sum-on-delta",
    ),
    pytest.param(
        Aggregation(60, "ALIGN_FRACTION_TRUE", "REDUCE_MEAN"),
        [labelled([(10, True), (20, False)], "GAUGE", "BOOL", "a"), labelled([(10, True)], "GAUGE", "BOOL", "b")],
        [("cloud_run_revision", "GAUGE", "DOUBLE", [(0, (0.5 + 1.0) / 2)])],
        (Aggregation(60, "ALIGN_FRACTION_TRUE", "REDUCE_MEAN"), "GAUGE", "DOUBLE"),
        ALIGNER_REFUSED.format("ALIGN_FRACTION_TRUE", "GAUGE", "DOUBLE"),
        id="fraction-mean-on-bool",
    ),
    pytest.param(
        Aggregation(60, "ALIGN_NEXT_OLDER", "REDUCE_COUNT_FALSE"),
        [labelled([(10, v)], "GAUGE", "BOOL", name) for name, v in (("a", True), ("b", False), ("c", False))],
        [("cloud_run_revision", "GAUGE", "INT64", [(0, 2)])],  # two of the three are down
        (Aggregation(60, "ALIGN_NEXT_OLDER", "REDUCE_COUNT_FALSE"), "GAUGE", "DOUBLE"),
        'Field aggregation.crossSeriesReducer had an invalid value of "REDUCE_COUNT_FALSE": '
        "The reducer cannot be applied to metrics with value type DOUBLE.",
        id="uptime-style",
    ),
    pytest.param(
        Aggregation(60, "ALIGN_COUNT_TRUE", "REDUCE_SUM"),
        [
            labelled([(10, True), (20, True), (30, False)], "GAUGE", "BOOL", "a"),
            labelled([(10, True)], "GAUGE", "BOOL", "b"),
        ],
        [("cloud_run_revision", "GAUGE", "INT64", [(0, 2 + 1)])],
        (Aggregation(60, "ALIGN_COUNT_TRUE", "REDUCE_SUM"), "GAUGE", "INT64"),
        ALIGNER_REFUSED.format("ALIGN_COUNT_TRUE", "GAUGE", "INT64"),
        id="count-true-sum",
    ),
    pytest.param(
        Aggregation(90, "ALIGN_MAX", "REDUCE_MAX", ("resource.type",)),
        [
            labelled([(10, 3), (50, 8)], "GAUGE", "INT64", "a"),
            labelled([(10, 5)], "GAUGE", "INT64", "b"),
            labelled([(10, 99)], "GAUGE", "INT64", "c", resource_type="gce_instance"),
        ],
        [("cloud_run_revision", "GAUGE", "INT64", [(0, 8)]), ("gce_instance", "GAUGE", "INT64", [(0, 99)])],
        (Aggregation(90, "ALIGN_MAX", "REDUCE_MAX", ("resource.type",)), "GAUGE", "BOOL"),
        ALIGNER_REFUSED.format("ALIGN_MAX", "GAUGE", "BOOL"),
        id="max-max",
    ),
]


@pytest.mark.parametrize(("agg", "sample", "expected", "neighbour", "refusal"), VALID)
def test_valid_aggregations(
    agg: Aggregation,
    sample: list[Series],
    expected: list[Out],
    neighbour: tuple[Aggregation, str, str],
    refusal: str,
) -> None:
    """Accepted, with the result Monitoring gives on a sample; its nearest neighbour (one kind, type or field away)
    is refused with Google's words."""
    validate_aggregation(agg, sample[0].metric_kind, sample[0].value_type)
    out = aggregate(sample, ago(180), END, agg)
    assert [(o.resource_type, o.metric_kind, o.value_type, relative(o.points)) for o in out] == expected
    with pytest.raises(AggregationError) as caught:
        validate_aggregation(*neighbour)
    assert str(caught.value) == refusal


def test_aggregate_validates_every_series() -> None:
    good = series([(10, 1)], "DELTA", "INT64")
    bad = series([(10, True)], "GAUGE", "BOOL")
    with pytest.raises(AggregationError) as caught:
        aggregate([good, bad], ago(60), END, Aggregation(60, "ALIGN_RATE"))
    assert str(caught.value) == (
        'Field aggregation.perSeriesAligner had an invalid value of "ALIGN_RATE": '
        "The aligner cannot be applied to metrics with kind GAUGE and value type BOOL."
    )


def test_aggregate_checks_the_period_even_without_series() -> None:
    with pytest.raises(AggregationError):
        aggregate([], ago(60), END, Aggregation(10, "ALIGN_SUM"))


def test_aggregate_requires_aware_times() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        aggregate([], datetime(2026, 1, 1), END, Aggregation())  # noqa: DTZ001 - the point of the test


FIELD = "alert_policy.conditions[0].condition_threshold.aggregations[0].alignment_period"


@pytest.mark.parametrize(
    ("seconds", "message"),
    [
        pytest.param(
            450,
            f'Field {FIELD} had an invalid value of "{{"seconds":450}}": '
            "alignment period must be in multiples of one minute",
            id="seven-and-a-half-minutes",
        ),
        pytest.param(
            90.5,
            f'Field {FIELD} had an invalid value of "{{"seconds":90,"nanos":500000000}}": '
            "alignment period must be in multiples of one minute",
            id="fractional",
        ),
    ],
)
def test_alert_alignment_period_must_be_whole_minutes(seconds: float, message: str) -> None:
    with pytest.raises(AggregationError) as caught:
        check_alert_alignment_period(Aggregation(seconds, "ALIGN_SUM"), FIELD)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("seconds", "neighbour", "shown"),
    [
        pytest.param(0, 1, '{"seconds":1}', id="unset"),
        pytest.param(300, 301, '{"seconds":301}', id="five-minutes"),
        pytest.param(300, 330, '{"seconds":330}', id="five-and-a-half-minutes"),
        pytest.param(60, 59.5, '{"seconds":59,"nanos":500000000}', id="minute"),
    ],
)
def test_alert_alignment_period_accepted(seconds: float, neighbour: float, shown: str) -> None:
    """Accepted, where a value a little off a whole minute is refused, naming the field and the value."""
    check_alert_alignment_period(Aggregation(seconds, "ALIGN_SUM"), FIELD)
    with pytest.raises(AggregationError) as caught:
        check_alert_alignment_period(Aggregation(neighbour, "ALIGN_SUM"), FIELD)
    assert str(caught.value) == (
        f'Field {FIELD} had an invalid value of "{shown}": alignment period must be in multiples of one minute'
    )
