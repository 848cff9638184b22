"""The Monitoring filter language: what matches, what Google refuses and with which words."""

from __future__ import annotations

import pytest

from emulator.services.monitoring.filter import (
    MonFilterError,
    SeriesView,
    compile_monitoring_filter,
    labels_named,
    metric_types_named,
    require_resource_type_restriction,
    require_single_metric_type,
    resource_types_named,
)

METRIC = "logging.googleapis.com/user/gemini_canary_failures"
VIEW = SeriesView(
    metric_type=METRIC,
    metric_labels={
        "cause": "PERMISSION_DENIED",
        "model": "gemini-2.5-flash",
        "code": "403",
        "detail": 'quota "exceeded"',
    },
    resource_type="cloud_run_revision",
    resource_labels={"service_name": "gemini-canary", "location": "us-central1"},
    project="canary-proj",
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(f'metric.type = "{METRIC}"', True, id="metric-type-equal"),
        pytest.param('metric.type = "logging.googleapis.com/user/other"', False, id="metric-type-other"),
        pytest.param('metric.label.cause = "PERMISSION_DENIED"', True, id="metric-label-singular"),
        pytest.param('metric.labels.cause = "PERMISSION_DENIED"', True, id="metric-labels-plural"),
        pytest.param('resource.label.location = "us-central1"', True, id="resource-label-singular"),
        pytest.param('resource.labels.service_name != "gemini-canary"', False, id="resource-labels-not-equal"),
        pytest.param('resource.type = "cloud_run_revision"', True, id="resource-type"),
        pytest.param('project = "canary-proj"', True, id="project"),
        pytest.param('project = "other-proj"', False, id="project-other"),
        pytest.param('resource.label."location" = "us-central1"', True, id="quoted-label-key"),
        pytest.param('metric.labels.detail = "quota \\"exceeded\\""', True, id="escaped-quotes"),
        pytest.param("resource.type = cloud_run_revision", True, id="bare-word-literal"),
        pytest.param("metric.labels.code = 403", True, id="bare-number-literal"),
        pytest.param('metric.labels.model : "gemini"', True, id="has-operator"),
        pytest.param('metric.labels.model : "claude"', False, id="has-operator-miss"),
        pytest.param('metric.labels.model = starts_with("gemini-2")', True, id="starts-with"),
        pytest.param('metric.labels.model = ends_with("flash")', True, id="ends-with"),
        pytest.param('metric.labels.model = has_substring("2.5")', True, id="has-substring"),
        pytest.param('metric.labels.cause = one_of("UNAUTHENTICATED", "PERMISSION_DENIED")', True, id="one-of"),
        pytest.param('metric.labels.cause = one_of("UNAUTHENTICATED")', False, id="one-of-miss"),
        pytest.param(
            'metric.labels.model = monitoring.regex.full_match("gemini-[0-9.]+-flash")',
            True,
            id="regex-full-match",
        ),
        pytest.param('metric.labels.model = monitoring.regex.full_match("gemini")', False, id="regex-must-match-all"),
        pytest.param('metric.labels.model != starts_with("gemini")', False, id="not-equal-function"),
        pytest.param('metric.labels.model != ends_with("pro")', True, id="not-equal-function-true"),
        pytest.param("metric.labels.code > 400", True, id="greater-numeric"),
        pytest.param("metric.labels.code >= 403", True, id="greater-equal-numeric"),
        pytest.param("metric.labels.code < 403", False, id="less-numeric"),
        pytest.param('metric.labels.code <= "403"', True, id="less-equal-quoted-number"),
        pytest.param('metric.labels.code > "1000"', False, id="numbers-compare-as-numbers-not-text"),
        pytest.param('metric.labels.missing = ""', True, id="absent-label-reads-empty"),
        pytest.param('metric.labels.missing != "x"', True, id="absent-label-not-equal"),
        pytest.param("metric.label:cause", True, id="label-map-has-key"),
        pytest.param("resource.label:zone", False, id="label-map-lacks-key"),
        pytest.param(f'metric.type="{METRIC}" resource.type="cloud_run_revision"', True, id="juxtaposition-is-and"),
        pytest.param('metric.type="x" resource.type="cloud_run_revision"', False, id="juxtaposition-is-and-miss"),
        pytest.param(
            f'metric.type = "{METRIC}"\n  AND metric.labels.cause = "PERMISSION_DENIED"',
            True,
            id="multi-line-and",
        ),
        pytest.param('metric.labels.cause = "A" OR metric.labels.cause = "PERMISSION_DENIED"', True, id="or"),
        pytest.param('NOT metric.labels.cause = "PERMISSION_DENIED"', False, id="not"),
        pytest.param('NOT (metric.labels.cause = "A" OR metric.labels.code = "500")', True, id="not-parenthesised"),
        pytest.param(
            'metric.labels.code = "403" OR resource.type = "gce_instance" AND project = "other"',
            False,
            id="or-binds-tighter-than-and",
        ),
        pytest.param(
            'metric.labels.code = "403" OR resource.type = "gce_instance" project = "canary-proj"',
            True,
            id="or-binds-tighter-than-juxtaposition",
        ),
        pytest.param(
            'metric.labels.code = "403" OR (resource.type = "gce_instance" AND project = "other")',
            True,
            id="parentheses-override",
        ),
    ],
)
def test_filter_matches(text: str, expected: bool) -> None:
    assert compile_monitoring_filter(text)(VIEW) is expected


# Google's answer to an alert policy carrying =~, verbatim from
# github.com/chainguard-dev/terraform-infra-common/pull/463.
DLQ_FILTER = (
    '        metric.type="pubsub.googleapis.com/topic/send_request_count"\n'
    '        resource.type="pubsub_topic"\n'
    '        metadata.system_labels."name"=~".*-dlq-.*"\n'
    '        metadata.system_labels."name"!=monitoring.regex.full_match(".*ing-vuln-dlq.*")\n'
)
DLQ_ERROR = (
    'Field alert_policy.conditions[0].condition_threshold.filter had an invalid value of "' + DLQ_FILTER + '": '
    'Could not parse filter "        metric.type=\\"pubsub.googleapis.com/topic/send_request_count\\"\\n'
    '        resource.type=\\"pubsub_topic\\"\\n'
    '        metadata.system_labels.\\"name\\"=~\\".*-dlq-.*\\"\\n'
    '        metadata.system_labels.\\"name\\"!=monitoring.regex.full_match(\\".*ing-vuln-dlq.*\\")\\n"; '
    "syntax error at line 3, column 38, token '=~'"
)


def test_google_regex_operator_error_is_reproduced_verbatim() -> None:
    with pytest.raises(MonFilterError) as caught:
        compile_monitoring_filter(DLQ_FILTER, field="alert_policy.conditions[0].condition_threshold.filter")
    assert str(caught.value) == DLQ_ERROR


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            'metric.type = starts_with(""serviceruntime.googleapis.com"")',
            'Field filter had an invalid value of "metric.type = starts_with(""serviceruntime.googleapis.com"")": '
            'Could not parse filter "metric.type = starts_with(\\"\\"serviceruntime.googleapis.com\\"\\")"; '
            # Google said column 26 here (stackdriver_exporter#52); the emulator counts the token's start.
            "syntax error at line 1, column 27, token '\"\"'",
            id="empty-function-argument",
        ),
        pytest.param(
            'metric.labels.cause =~ "PERM.*"',
            'Field filter had an invalid value of "metric.labels.cause =~ "PERM.*"": '
            'Could not parse filter "metric.labels.cause =~ \\"PERM.*\\""; '
            "syntax error at line 1, column 21, token '=~'",
            id="regex-operator",
        ),
        pytest.param(
            'metric.type = "abc',
            'Field filter had an invalid value of "metric.type = "abc": '
            'Could not parse filter "metric.type = \\"abc"; syntax error at line 1, column 15, token \'"abc\'',
            id="unterminated-string",
        ),
        pytest.param(
            '(metric.type = "a"',
            'Field filter had an invalid value of "(metric.type = "a"": '
            'Could not parse filter "(metric.type = \\"a\\""; syntax error at line 1, column 19, token \'\'',
            id="missing-close-paren",
        ),
        pytest.param(
            'metric.type = "a" and resource.type = "b"',
            'Field filter had an invalid value of "metric.type = "a" and resource.type = "b"": '
            'Could not parse filter "metric.type = \\"a\\" and resource.type = \\"b\\""; '
            "syntax error at line 1, column 23, token 'resource.type'",
            id="lowercase-and-is-not-a-keyword",
        ),
        pytest.param(
            "metric.type = 'a'",
            "Field filter had an invalid value of \"metric.type = 'a'\": "
            "Could not parse filter \"metric.type = 'a'\"; syntax error at line 1, column 15, token '''",
            id="single-quotes",
        ),
        pytest.param(
            "",
            'Field filter had an invalid value of "": Could not parse filter ""; '
            "syntax error at line 1, column 1, token ''",
            id="empty-filter",
        ),
        pytest.param(
            'metric.type = "a" AND',
            'Field filter had an invalid value of "metric.type = "a" AND": '
            'Could not parse filter "metric.type = \\"a\\" AND"; syntax error at line 1, column 22, token \'\'',
            id="dangling-and",
        ),
        pytest.param(
            'metric.state = "used"',
            'Field filter had an invalid value of "metric.state = "used"": '
            "The comparison operand: 'state' cannot be used in this filter (line 1, column 1)",
            id="unknown-selector",
        ),
        pytest.param(
            'metadata.user_labels.team = "ml"',
            'Field filter had an invalid value of "metadata.user_labels.team = "ml"": '
            "The emulator cannot evaluate 'metadata.user_labels.team': series carry no metadata or groups "
            "(line 1, column 1)",
            id="metadata-rejected",
        ),
        pytest.param(
            'metric.type = prefix("a")',
            'Field filter had an invalid value of "metric.type = prefix("a")": '
            "Unknown function 'prefix' (line 1, column 15)",
            id="unknown-function",
        ),
        pytest.param(
            'metric.labels.code > starts_with("4")',
            'Field filter had an invalid value of "metric.labels.code > starts_with("4")": '
            "The function starts_with can only follow = or != (line 1, column 22)",
            id="function-after-greater",
        ),
        pytest.param(
            'metric.labels.code = starts_with("4", "5")',
            'Field filter had an invalid value of "metric.labels.code = starts_with("4", "5")": '
            "The function starts_with takes exactly one string (line 1, column 22)",
            id="starts-with-two-arguments",
        ),
        pytest.param(
            'metric.labels.code = monitoring.regex.full_match("(")',
            'Field filter had an invalid value of "metric.labels.code = monitoring.regex.full_match("(")": '
            "Invalid regular expression '(': missing ), unterminated subpattern at position 0 (line 1, column 22)",
            id="bad-regex",
        ),
        pytest.param(
            'metric.label = "x"',
            'Field filter had an invalid value of "metric.label = "x"": '
            "'metric.label' needs a label key, as in metric.label.KEY = \"value\" (line 1, column 1)",
            id="label-map-without-key",
        ),
    ],
)
def test_filter_errors(text: str, message: str) -> None:
    with pytest.raises(MonFilterError) as caught:
        compile_monitoring_filter(text)
    assert str(caught.value) == message


def test_error_can_be_reported_against_an_alert_condition() -> None:
    with pytest.raises(MonFilterError) as caught:
        compile_monitoring_filter('metric.state = "used"')
    moved = caught.value.for_field("alert_policy.conditions[1].condition_absent.filter")
    assert str(moved) == (
        'Field alert_policy.conditions[1].condition_absent.filter had an invalid value of "metric.state = "used"": '
        "The comparison operand: 'state' cannot be used in this filter (line 1, column 1)"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param('metric.type = "a/b"', {"a/b"}, id="one"),
        pytest.param('metric.type = "a/b" OR (metric.type = "c/d" resource.type = "r")', {"a/b", "c/d"}, id="two"),
        pytest.param('metric.type = one_of("a/b", "c/d")', {"a/b", "c/d"}, id="one-of"),
        pytest.param('metric.type = starts_with("a/")', set(), id="prefix-names-nothing"),
        pytest.param('NOT metric.type = "a/b"', {"a/b"}, id="negated-still-named"),
        pytest.param('resource.type = "r"', set(), id="none"),
    ],
)
def test_metric_types_named(text: str, expected: set[str]) -> None:
    assert metric_types_named(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param('resource.type = "cloud_run_revision"', {"cloud_run_revision"}, id="one"),
        pytest.param('resource.type = one_of("a", "b") metric.type = "m"', {"a", "b"}, id="one-of"),
        pytest.param('metric.type = "m"', set(), id="none"),
    ],
)
def test_resource_types_named(text: str, expected: set[str]) -> None:
    assert resource_types_named(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            'metric.labels.cause = "x" AND metric.label.model = "y"',
            {"metric.label.cause", "metric.label.model"},
            id="both-metric-spellings",
        ),
        pytest.param(
            'resource.labels.location = "x" OR resource.label."service_name" = "y"',
            {"resource.label.location", "resource.label.service_name"},
            id="both-resource-spellings-and-quoted",
        ),
        pytest.param('metric.type = "m" resource.type = "r" project = "p"', set(), id="no-labels"),
        pytest.param("metric.label:cause", set(), id="label-map-names-no-label"),
    ],
)
def test_labels_named(text: str, expected: set[str]) -> None:
    assert labels_named(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param('metric.type = "a/b" AND resource.type = "r"', "a/b", id="and"),
        pytest.param('resource.type = "r" metric.type="a/b"', "a/b", id="juxtaposed"),
        pytest.param('(metric.type = "a/b" AND metric.labels.x = "1") project = "p"', "a/b", id="nested-and"),
        pytest.param('metric.type = "a/b" AND (metric.labels.x = "1" OR metric.labels.x = "2")', "a/b", id="with-or"),
    ],
)
def test_require_single_metric_type(text: str, expected: str) -> None:
    assert require_single_metric_type(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param('resource.type = "r"', "The provided filter doesn't refer to any known metric.", id="none"),
        pytest.param(
            'metric.type = "a/b" OR metric.type = "c/d"',
            "The provided filter doesn't refer to any known metric.",
            id="either-of-two",
        ),
        pytest.param(
            'metric.type = starts_with("a/")',
            "The provided filter doesn't refer to any known metric.",
            id="prefix",
        ),
        pytest.param(
            'metric.type = "a/b" metric.type = "c/d"',
            'Field filter had an invalid value of "metric.type = "a/b" metric.type = "c/d"": '
            'The filter must name exactly one metric type; it names "a/b", "c/d".',
            id="two-pinned",
        ),
        pytest.param(
            'metric.type = "a/b" AND',
            'Field filter had an invalid value of "metric.type = "a/b" AND": '
            'Could not parse filter "metric.type = \\"a/b\\" AND"; syntax error at line 1, column 24, token \'\'',
            id="syntax-error-first",
        ),
    ],
)
def test_require_single_metric_type_errors(text: str, message: str) -> None:
    with pytest.raises(MonFilterError) as caught:
        require_single_metric_type(text)
    assert str(caught.value) == message


def _view(resource_type: str, **metric_labels: str) -> SeriesView:
    return SeriesView(metric_type="m", metric_labels=metric_labels, resource_type=resource_type, resource_labels={})


@pytest.mark.parametrize(
    ("text", "neighbour", "matched", "unmatched"),
    [
        pytest.param(
            'metric.type = "m" resource.type = "r"',
            'metric.type = "m" resource.label.type = "r"',  # a resource label named "type" is not the type
            _view("r"),
            _view("q"),
            id="equal",
        ),
        pytest.param(
            'metric.type = "m" resource.type = one_of("a", "b")',
            'metric.type = "m" metric.labels.type = one_of("a", "b")',
            _view("b"),
            _view("c", type="a"),
            id="one-of",
        ),
        pytest.param(
            'metric.type = "m" (resource.type = "a" OR metric.labels.x = "1")',
            'metric.type = "m" (resource.labels.type = "a" OR metric.labels.x = "1")',
            _view("z", x="1"),
            _view("z", x="2"),
            id="under-or",
        ),
    ],
)
def test_resource_type_restriction_present(
    text: str, neighbour: str, matched: SeriesView, unmatched: SeriesView
) -> None:
    """Accepted, and the restriction does restrict; the nearest filter that restricts something else is refused."""
    require_resource_type_restriction(text)
    matches = compile_monitoring_filter(text)
    assert (matches(matched), matches(unmatched)) == (True, False)
    with pytest.raises(MonFilterError) as caught:
        require_resource_type_restriction(neighbour)
    assert str(caught.value) == f'Field filter had an invalid value of "{neighbour}": {NO_RESOURCE_TYPE_WORDS}'


# Verbatim from github.com/googleapis/nodejs-monitoring/pull/46 (as the test below quotes it whole).
NO_RESOURCE_TYPE_WORDS = (
    'must specify a restriction on "resource.type" in the filter; '
    'see "https://cloud.google.com/monitoring/api/resources" for a list of available resource types.'
)


def test_resource_type_restriction_missing_uses_googles_words() -> None:
    field = "alert_policy.conditions[0].condition_absent.filter"
    text = 'metric.type = "cloudfunctions.googleapis.com/function/execution_count"'
    with pytest.raises(MonFilterError) as caught:
        require_resource_type_restriction(text, field)
    # Verbatim from github.com/googleapis/nodejs-monitoring/pull/46.
    assert str(caught.value) == (
        "Field alert_policy.conditions[0].condition_absent.filter had an invalid value of "
        '"metric.type = "cloudfunctions.googleapis.com/function/execution_count"": '
        'must specify a restriction on "resource.type" in the filter; '
        'see "https://cloud.google.com/monitoring/api/resources" for a list of available resource types.'
    )
