"""Table-driven tests of the Cloud Logging query language evaluator (emulator/services/logging/filter.py)."""

from typing import Any

import pytest

from emulator.services.logging.filter import MAX_FILTER_LENGTH, FilterError, compile_filter

AUDIT = "type.googleapis.com/google.cloud.audit.AuditLog"
MODEL = "projects/p1/locations/us-central1/publishers/google/models/gemini-2.5-flash"
VERTEX = {
    "type": "audited_resource",
    "labels": {
        "service": "aiplatform.googleapis.com",
        "method": "google.cloud.aiplatform.v1.PredictionService.GenerateContent",
        "project_id": "p1",
    },
}

ENTRIES: list[dict[str, Any]] = [
    {
        "insertId": "deny-predict",
        "logName": "projects/p1/logs/cloudaudit.googleapis.com%2Fdata_access",
        "severity": "ERROR",
        "timestamp": "2026-11-26T09:00:01.250Z",
        "receiveTimestamp": "2026-11-26T09:00:01.400123456Z",
        "labels": {"k": "v", "compute.googleapis.com/resource_id": "123"},
        "resource": VERTEX,
        "protoPayload": {
            "@type": AUDIT,
            "serviceName": "aiplatform.googleapis.com",
            "methodName": "google.cloud.aiplatform.v1.PredictionService.GenerateContent",
            "resourceName": MODEL,
            "authenticationInfo": {"principalEmail": "sa@p1.iam.gserviceaccount.com"},
            "authorizationInfo": [
                {
                    "resource": MODEL,
                    "permission": "aiplatform.endpoints.predict",
                    "granted": False,
                    "permissionType": "DATA_READ",
                }
            ],
            "status": {"code": 7, "message": "Permission 'aiplatform.endpoints.predict' denied on resource"},
            "metadata": {
                "vpcServiceControlsUniqueId": "UID123",
                "violationReason": "NO_MATCHING_ACCESS_LEVEL",
            },
        },
    },
    {
        "insertId": "ok-predict",
        "logName": "projects/p1/logs/cloudaudit.googleapis.com%2Fdata_access",
        "severity": "INFO",
        "timestamp": "2026-11-26T09:00:02Z",
        "labels": {"k": "V"},
        "resource": VERTEX,
        "protoPayload": {
            "@type": AUDIT,
            "serviceName": "aiplatform.googleapis.com",
            "methodName": "google.cloud.aiplatform.v1.PredictionService.GenerateContent",
            "authenticationInfo": {"principalEmail": "alice@example.com"},
            "authorizationInfo": [
                {"permission": "aiplatform.endpoints.predict", "granted": True},
                {"permission": "aiplatform.models.get", "granted": True},
            ],
            "numResponseItems": "12",
        },
    },
    {
        "insertId": "iam-remove",
        "logName": "projects/p1/logs/cloudaudit.googleapis.com%2Factivity",
        "severity": "NOTICE",
        "timestamp": "2026-11-25T09:00:00.123456Z",
        "resource": {"type": "project", "labels": {"project_id": "p1"}},
        "protoPayload": {
            "@type": AUDIT,
            "serviceName": "cloudresourcemanager.googleapis.com",
            "methodName": "SetIamPolicy",
            "serviceData": {
                "@type": "type.googleapis.com/google.iam.v1.logging.AuditData",
                "policyDelta": {
                    "bindingDeltas": [
                        {
                            "action": "REMOVE",
                            "role": "roles/aiplatform.user",
                            "member": "serviceAccount:sa@p1.iam.gserviceaccount.com",
                        }
                    ]
                },
            },
        },
    },
    {
        "insertId": "app-text",
        "logName": "projects/p1/logs/app",
        "timestamp": "2026-11-25T08:59:59.999999999Z",
        "labels": {"env": "prod"},
        "resource": {"type": "global"},
        "textPayload": "Permission DENIED for unicorn and phoenix",
    },
    {
        "insertId": "json",
        "logName": "projects/p2/logs/syslog",
        "severity": "WARNING",
        "timestamp": "2026-11-25T10:00:00.5+01:00",
        "trace": "projects/p2/traces/abc",
        "jsonPayload": {
            "a.b": "dotted",
            "message": 'He said "hi"\tthen left',
            "count": 3,
            "flag": True,
            "nothing": None,
            "shoeSize": [8.5, 9, 6],
            "end_time": "soon",
            "big": "9223372036854775807",
        },
    },
]
ALL = "deny-predict ok-predict iam-remove app-text json"

VALID: list[tuple[str, str, str]] = [
    # (id, filter, space-separated insertIds expected to match)
    ("empty", "", ALL),
    ("whitespace", "  \n\t ", ALL),
    ("only-comment", "-- nothing but a comment", ALL),
    # boolean operators and precedence
    ("and", "severity=ERROR AND insertId=deny-predict", "deny-predict"),
    ("or", "insertId=json OR insertId=app-text", "app-text json"),
    ("not", "NOT severity=ERROR", "ok-predict iam-remove app-text json"),
    ("minus-is-not", "-severity=ERROR", "ok-predict iam-remove app-text json"),
    ("juxtaposition-is-and", "severity>=INFO -insertId=ok-predict", "deny-predict iam-remove json"),
    (
        "or-binds-tighter-than-and",
        "severity=ERROR AND insertId=deny-predict OR insertId=json",
        "deny-predict",
    ),
    (
        "or-tighter-than-juxtaposition",
        "severity=ERROR insertId=deny-predict OR insertId=json",
        "deny-predict",
    ),
    ("or-before-and-left", "insertId=json OR insertId=deny-predict AND severity=ERROR", "deny-predict"),
    (
        "parentheses-override",
        "(severity=ERROR AND insertId=deny-predict) OR insertId=json",
        "deny-predict json",
    ),
    ("not-binds-tightest", "NOT severity=ERROR OR insertId=deny-predict", ALL),
    ("not-of-group", "NOT (severity=ERROR OR insertId=deny-predict)", "ok-predict iam-remove app-text json"),
    ("doc-precedence-example", '"unicorn" OR NOT "aiplatform" AND NOT "syslog" OR "dotted"', "app-text json"),
    ("double-not", "NOT NOT severity=ERROR", "deny-predict"),
    ("lowercase-and-is-a-search-term", "textPayload:unicorn and", "app-text"),
    ("newline-joins-with-and", "severity>=INFO\nresource.type=audited_resource", "deny-predict ok-predict"),
    # comments
    ("comment-between-terms", "severity=ERROR -- errors only\nOR severity=WARNING", "deny-predict json"),
    ("comment-disables-clause", "unicorn --severity=ERROR", "app-text"),
    ("comment-after-string", 'textPayload:"unicorn"-- trailing', "app-text"),
    # equality, strings
    ("string-equality", 'protoPayload.serviceName="aiplatform.googleapis.com"', "deny-predict ok-predict"),
    ("bare-dotted-value", "protoPayload.serviceName=aiplatform.googleapis.com", "deny-predict ok-predict"),
    ("equality-ignores-case", "labels.k=V", "deny-predict ok-predict"),
    ("equality-is-whole-value", "protoPayload.serviceName=aiplatform", ""),
    ("not-equal-present", "labels.k!=other", "deny-predict ok-predict"),
    ("not-equal-same-value", "labels.k!=v", ""),
    ("value-combination-or", "insertId=(json OR app-text)", "app-text json"),
    ("value-combination-not", "resource.type=(NOT global)", "deny-predict ok-predict iam-remove json"),
    ("string-ordering", "insertId>=json", "ok-predict json"),
    # numbers and booleans
    ("number-equality", "protoPayload.status.code=7", "deny-predict"),
    ("number-quoted", 'protoPayload.status.code="7"', "deny-predict"),
    ("number-ordering", "protoPayload.status.code>=5", "deny-predict"),
    ("int64-as-json-string", "protoPayload.numResponseItems=12", "ok-predict"),
    ("int64-string-numeric-order", "protoPayload.numResponseItems>9", "ok-predict"),
    ("int64-full-precision", "jsonPayload.big=9223372036854775807", "json"),
    ("int64-off-by-one", "jsonPayload.big=9223372036854775806", ""),
    ("double-equals-int", "jsonPayload.count=3.0", "json"),
    ("exponent", "jsonPayload.count<3.1e0", "json"),
    ("number-not-convertible", "jsonPayload.count=three", ""),
    ("negative-number", "jsonPayload.count>-1", "json"),
    ("negative-number-in-values", "jsonPayload.count=(-1 OR 3)", "json"),
    ("minus-before-word-in-values-is-not", "insertId=(-json)", "deny-predict ok-predict iam-remove app-text"),
    ("bool-true", "jsonPayload.flag=true", "json"),
    ("bool-any-case", 'jsonPayload.flag="TRUE"', "json"),
    ("bool-false", "jsonPayload.flag=false", ""),
    ("bool-not-convertible", "jsonPayload.flag=yes", ""),
    ("null-value", "jsonPayload.nothing=NULL_VALUE", "json"),
    ("not-null-value", "NOT jsonPayload.nothing=NULL_VALUE", "deny-predict ok-predict iam-remove app-text"),
    ("quoted-null-is-a-string", 'jsonPayload.nothing="NULL_VALUE"', ""),
    ("null-is-present", "jsonPayload.nothing:*", "json"),
    # repeated fields
    (
        "repeated-any-element",
        'protoPayload.authorizationInfo.permission="aiplatform.endpoints.predict"',
        "deny-predict ok-predict",
    ),
    (
        "repeated-second-element",
        "protoPayload.authorizationInfo.permission=aiplatform.models.get",
        "ok-predict",
    ),
    ("repeated-bool", "protoPayload.authorizationInfo.granted=false", "deny-predict"),
    ("repeated-nested", "protoPayload.serviceData.policyDelta.bindingDeltas.action=REMOVE", "iam-remove"),
    ("repeated-scalars", "jsonPayload.shoeSize<7", "json"),
    ("repeated-scalars-none", "jsonPayload.shoeSize>9", ""),
    # missing and defaulted fields
    ("missing-equal", "jsonPayload.missing=x", ""),
    ("missing-not-equal-is-false", "jsonPayload.missing!=x", ""),
    ("not-missing-is-true", "NOT jsonPayload.missing=x", ALL),
    ("missing-label-not-equal", "labels.env!=dev", "app-text"),
    ("missing-ordering", "protoPayload.status.code<100", "deny-predict"),
    ("exists", "protoPayload.status:*", "deny-predict"),
    ("not-exists", "-labels.k:*", "iam-remove app-text json"),
    ("defaulted-severity", "severity=DEFAULT", "app-text"),
    ("defaulted-resource-type", 'resource.type=""', "json"),
    (
        "defaulted-string-not-equal",
        'trace!="projects/p2/traces/abc"',
        "deny-predict ok-predict iam-remove app-text",
    ),
    ("defaulted-is-not-present", "trace:*", "json"),
    # has (:)
    ("has-substring-any-case", "protoPayload.methodName:generatecontent", "deny-predict ok-predict"),
    ("has-implicit-and", "textPayload:(unicorn phoenix)", "app-text"),
    ("has-implicit-and-fails", "textPayload:(unicorn dragon)", ""),
    ("has-phrase", 'textPayload:"unicorn and"', "app-text"),
    ("has-phrase-order", 'textPayload:"unicorn phoenix"', ""),
    ("has-inside-object", "protoPayload.status:denied", "deny-predict"),
    ("has-payload-anywhere", "protoPayload:UID123", "deny-predict"),
    ("has-number", "protoPayload.status.code:7", "deny-predict"),
    ("has-severity-name", "severity:err", "deny-predict"),
    ("has-log-name", 'logName:"cloudaudit.googleapis.com"', "deny-predict ok-predict iam-remove"),
    # regular expressions
    ("regex", 'protoPayload.methodName=~"GenerateContent$"', "deny-predict ok-predict"),
    ("regex-case-sensitive", 'protoPayload.methodName=~"generatecontent$"', ""),
    ("regex-flag", 'protoPayload.methodName=~"(?i)generatecontent$"', "deny-predict ok-predict"),
    ("regex-not", 'logName!~"cloudaudit"', "app-text json"),
    ("regex-missing-not-match-is-false", 'textPayload!~"x"', ""),
    ("regex-combination", 'resource.type=~("^audited" OR "^glob")', "deny-predict ok-predict app-text"),
    ("regex-escape-kept", r'insertId=~"^\w+-\w+$"', "deny-predict ok-predict iam-remove app-text"),
    # severity
    ("severity-at-least", "severity>=WARNING", "deny-predict json"),
    ("severity-below-includes-default", "severity<NOTICE", "ok-predict app-text"),
    ("severity-lower-case-name", "severity=error", "deny-predict"),
    ("severity-number", "severity>=400", "deny-predict json"),
    ("severity-values", "severity=(ERROR OR WARNING)", "deny-predict json"),
    ("severity-not-equal", "severity!=ERROR", "ok-predict iam-remove app-text json"),
    # timestamps
    (
        "ts-python-client-offset",
        'timestamp>="2026-11-25T09:00:00.123456+0000"',
        "deny-predict ok-predict iam-remove json",
    ),
    ("ts-before", 'timestamp<"2026-11-25T09:00:00.123456Z"', "app-text"),
    ("ts-colon-offset", 'timestamp>"2026-11-25T10:00:00.2+01:00"', "deny-predict ok-predict json"),
    ("ts-equal-instant", 'timestamp="2026-11-25T09:00:00.5Z"', "json"),
    ("ts-equal-long-fraction", 'timestamp="2026-11-25T09:00:00.123456000000Z"', "iam-remove"),
    (
        "ts-nanoseconds",
        'timestamp>"2026-11-25T08:59:59.999999998Z" timestamp<"2026-11-25T09:00:00Z"',
        "app-text",
    ),
    ("ts-date-only", 'timestamp>="2026-11-26"', "deny-predict ok-predict"),
    ("ts-negative-offset", 'timestamp<"2026-11-25T04:00:00-05:00"', "app-text"),
    ("receive-timestamp", 'receiveTimestamp>"2026-11-26T09:00:01.4001Z"', "deny-predict"),
    (
        "ts-range",
        'timestamp>="2026-11-25T00:00:00Z" AND timestamp<"2026-11-26T00:00:00Z"',
        "iam-remove app-text json",
    ),
    # field paths
    ("quoted-segment", 'jsonPayload."a.b"=dotted', "json"),
    ("unquoted-dots-are-a-path", "jsonPayload.a.b=dotted", ""),
    ("label-key-with-slash", 'labels."compute.googleapis.com/resource_id"=123', "deny-predict"),
    ("resource-label", "resource.labels.project_id=p1", "deny-predict ok-predict iam-remove"),
    ("snake-case-top-level", "proto_payload.status.code=7", "deny-predict"),
    (
        "snake-case-nested",
        'protoPayload.authentication_info.principal_email="sa@p1.iam.gserviceaccount.com"',
        "deny-predict",
    ),
    ("snake-case-log-name", "log_name:syslog", "json"),
    ("struct-keys-exact", "jsonPayload.end_time=soon", "json"),
    ("struct-keys-not-camel-cased", "jsonPayload.endTime=soon", ""),
    ("map-keys-exact", "resource.labels.projectId=p1", ""),
    (
        "at-type",
        'protoPayload."@type"=type.googleapis.com/google.cloud.audit.AuditLog',
        "deny-predict ok-predict iam-remove",
    ),
    ("at-type-bare", "protoPayload.@type:AuditLog", "deny-predict ok-predict iam-remove"),
    # escapes
    ("escaped-quote-and-tab", r'jsonPayload.message="He said \"hi\"\tthen left"', "json"),
    ("escape-case-insensitive", r'jsonPayload.message="he said \"HI\"\tthen LEFT"', "json"),
    ("unicode-escape", r'jsonPayload.message="He said \u0022hi\u0022\u0009then left"', "json"),
    ("hex-and-octal-escape", r'jsonPayload.message:"\x22hi\042"', "json"),
    ("backslash-escape", r'textPayload:"\\"', ""),
    # functions
    ("log-id", 'LOG_ID("cloudaudit.googleapis.com/data_access")', "deny-predict ok-predict"),
    ("log-id-lower-case", 'log_id("cloudaudit.googleapis.com/activity")', "iam-remove"),
    ("log-id-bare", "log_id(syslog)", "json"),
    ("log-id-url-encoded-arg", 'log_id("cloudaudit.googleapis.com%2Factivity")', "iam-remove"),
    ("log-id-negated", 'NOT log_id("app")', "deny-predict ok-predict iam-remove json"),
    ("search", 'SEARCH("unicorn")', "app-text"),
    ("search-token-not-substring", 'SEARCH("unicor")', ""),
    ("search-all-tokens-any-order", 'SEARCH("Phoenix UNICORN")', "app-text"),
    ("search-field", 'SEARCH(textPayload, "denied")', "app-text"),
    ("search-whole-entry", 'search("denied")', "deny-predict app-text"),
    ("search-phrase", 'SEARCH("`unicorn and phoenix`")', "app-text"),
    ("search-phrase-order", 'SEARCH("`phoenix and unicorn`")', ""),
    # global restrictions
    ("global-bare", "unicorn", "app-text"),
    ("global-quoted", '"denied"', "deny-predict app-text"),
    ("global-any-case", "DENIED", "deny-predict app-text"),
    ("global-dotted", "aiplatform.endpoints.predict", "deny-predict ok-predict"),
    ("global-and", "unicorn phoenix", "app-text"),
    ("global-grouped", '("unicorn" OR "dotted") AND "p1"', "app-text"),
    ("global-in-label", "UID123", "deny-predict"),
    # hostile-looking data stays data
    ("quoted-or-is-data", r'protoPayload.authenticationInfo.principalEmail="x\" OR logName:*"', ""),
    ("quoted-paren-is-data", r'insertId="json\") OR (insertId:\""', ""),
    ("quoted-comment-is-data", 'insertId="json -- rest"', ""),
    ("quoted-keyword-is-data", 'insertId:"AND"', ""),
    ("quoted-star-is-data", 'textPayload:"*"', ""),
]

P = "Unparseable filter: "  # the prefix of every parse error
INVALID: list[tuple[str, str, str]] = [
    # (id, filter, exact error message)
    ("missing-value", "severity=", P + "syntax error at line 1, column 10, token '<EOF>'"),
    (
        "unquoted-timestamp",
        "timestamp>=2026-06-12T03:23:45Z",
        P + "syntax error at line 1, column 25, token ':'",
    ),
    ("doc-illegal-colon", "insertId = abc:def", P + "syntax error at line 1, column 15, token ':'"),
    ("unclosed-paren", "(severity=ERROR", P + "syntax error at line 1, column 16, token '<EOF>'"),
    ("extra-paren", "severity=ERROR)", P + "syntax error at line 1, column 15, token ')'"),
    ("empty-parens", "()", P + "syntax error at line 1, column 2, token ')'"),
    ("unterminated-string", 'insertId="abc', P + "syntax error at line 1, column 10, token '\"abc'"),
    ("escaped-closing-quote", 'insertId="abc\\"', P + "syntax error at line 1, column 10, token '\"abc\\\"'"),
    ("dangling-and", "severity=ERROR AND", P + "syntax error at line 1, column 19, token '<EOF>'"),
    ("dangling-or", "severity=ERROR OR ", P + "syntax error at line 1, column 19, token '<EOF>'"),
    ("leading-and", "AND severity=ERROR", P + "syntax error at line 1, column 1, token 'AND'"),
    ("second-line", "severity=ERROR\nAND OR x", P + "syntax error at line 2, column 5, token 'OR'"),
    ("lone-bang", "jsonPayload.x ! 3", P + "syntax error at line 1, column 15, token '!'"),
    ("lone-not", "NOT", P + "syntax error at line 1, column 4, token '<EOF>'"),
    ("star-without-has", "insertId=*", P + "syntax error at line 1, column 10, token '*'"),
    ("keyword-as-value", "insertId=OR", P + "syntax error at line 1, column 10, token 'OR'"),
    ("trailing-dot", "jsonPayload.=x", P + "syntax error at line 1, column 13, token '='"),
    ("operator-first", "=ERROR", P + "syntax error at line 1, column 1, token '='"),
    (
        "comment-swallows-paren",
        "(severity=ERROR -- )",
        P + "syntax error at line 1, column 21, token '<EOF>'",
    ),
    ("undefined-field", 'thud="x"', P + "undefined field at line 1, column 1, token 'thud'"),
    ("syntax-error-wins", 'thud="x" AND (', P + "syntax error at line 1, column 15, token '<EOF>'"),
    (
        "invalid-timestamp",
        'timestamp>="yesterday"',
        P + "invalid timestamp at line 1, column 12, token '\"yesterday\"'",
    ),
    (
        "impossible-date",
        'timestamp>="2026-02-30T00:00:00Z"',
        P + "invalid timestamp at line 1, column 12, token '\"2026-02-30T00:00:00Z\"'",
    ),
    ("invalid-severity", "severity>=LOUD", P + "invalid severity at line 1, column 11, token 'LOUD'"),
    (
        "invalid-regex",
        'jsonPayload.message=~"("',
        P + "invalid regular expression at line 1, column 22, token '\"(\"'",
    ),
    ("unknown-function", 'foo("x")', P + "unknown function at line 1, column 1, token 'foo'"),
    ("log-id-no-argument", "log_id()", P + "wrong number of arguments at line 1, column 1, token 'log_id'"),
    (
        "search-unquoted-query",
        "SEARCH(textPayload)",
        P + "SEARCH query must be a quoted string at line 1, column 8, token 'textPayload'",
    ),
    (
        "nested-too-deeply",
        "(" * 101 + "x" + ")" * 101,
        P + "expression nested too deeply at line 1, column 101, token '('",
    ),
    (
        "too-long",
        "x" * (MAX_FILTER_LENGTH + 1),
        "Invalid filter: the filter is 20001 characters long; the maximum is 20000",
    ),
]


def _matching(text: str) -> str:
    predicate = compile_filter(text)
    return " ".join(entry["insertId"] for entry in ENTRIES if predicate(entry))


@pytest.mark.parametrize(("text", "expected"), [case[1:] for case in VALID], ids=[case[0] for case in VALID])
def test_filter_matches_exactly(text: str, expected: str) -> None:
    assert _matching(text) == expected


@pytest.mark.parametrize(("text", "message"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID])
def test_malformed_filter_is_rejected_with_message(text: str, message: str) -> None:
    with pytest.raises(FilterError) as caught:
        compile_filter(text)
    assert str(caught.value) == message


def test_filter_error_is_a_value_error() -> None:
    assert issubclass(FilterError, ValueError)


def test_filter_at_the_length_limit_is_accepted() -> None:
    text = "unicorn" + " " * (MAX_FILTER_LENGTH - len("unicorn"))
    assert _matching(text) == "app-text"


def test_compiled_filter_is_reusable_and_does_not_mutate_entries() -> None:
    predicate = compile_filter("severity>=WARNING")
    before = repr(ENTRIES)
    assert [predicate(entry) for entry in ENTRIES] == [predicate(entry) for entry in ENTRIES]
    assert repr(ENTRIES) == before


def test_long_flat_conjunction_does_not_recurse_per_term() -> None:
    text = " AND ".join(["-qq OR -zz"] * 1000) + " " + " ".join(["-qq"] * 1000)
    assert len(text) < MAX_FILTER_LENGTH
    assert _matching(text) == ALL
