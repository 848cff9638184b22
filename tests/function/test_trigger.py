"""trigger.from_http / from_pubsub: every request mistake is a 4xx with an exact message; values echoed are repr'd."""

from __future__ import annotations

import base64
import io
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from functions_framework import create_app

from function.config import Config, Target
from function.trigger import MAX_BODY, BadRequest, RunRequest, Trigger, from_http, from_pubsub, read_body

FLASH = Target("gemini-2.5-flash", "us-central1")
PRO = Target("gemini-2.5-pro", "global")
LITE = Target("gemini-2.5-flash-lite", "us-central1")
CONFIG = Config(targets=(FLASH, PRO, LITE))
CONFIGURED = (
    "configured targets: gemini-2.5-flash@us-central1, gemini-2.5-pro@global, gemini-2.5-flash-lite@us-central1"
)
JSON = {"content-type": "application/json"}
TRACE_ID = "105445aa7843bc8bf206b12000100000"
SCHEDULER = {
    "x-cloudscheduler": "true",
    "x-cloudscheduler-jobname": "gemini-canary",
    "x-cloudscheduler-scheduletime": "2026-11-26T09:00:00Z",
    "user-agent": "Google-Cloud-Scheduler",
}


def http(
    method: str = "POST",
    args: dict[str, list[str]] | None = None,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    declared: int | None = None,
) -> RunRequest:
    """from_http as main.py calls it: lower-case header names, args as lists, the declared Content-Length."""
    return from_http(CONFIG, method, args or {}, headers or {}, body, len(body) if declared is None else declared)


def refused(call: Any, *args: Any, **kwargs: Any) -> tuple[int, str, dict[str, str]]:
    with pytest.raises(BadRequest) as caught:
        call(*args, **kwargs)
    return caught.value.status, caught.value.message, caught.value.headers


def unknown(value: str, where: str = "targets") -> str:
    return f"{where}: unknown target {value!r}; {CONFIGURED}"


def body(doc: Any) -> bytes:
    return json.dumps(doc).encode()


# Accepted ---------------------------------------------------------------------------------------------------

ACCEPTED = [
    ("get-no-params", {"method": "GET"}, RunRequest(Trigger("http"), [FLASH, PRO, LITE])),
    ("post-empty-body", {}, RunRequest(Trigger("http"), [FLASH, PRO, LITE])),
    ("post-whitespace-body", {"body": b" \n "}, RunRequest(Trigger("http"), [FLASH, PRO, LITE])),
    ("get-whitespace-body", {"method": "GET", "body": b"\r\n"}, RunRequest(Trigger("http"), [FLASH, PRO, LITE])),
    ("format-text", {"args": {"format": ["TEXT"]}}, RunRequest(Trigger("http"), [FLASH, PRO, LITE], text=True)),
    ("format-empty-is-json", {"args": {"format": [""]}}, RunRequest(Trigger("http"), [FLASH, PRO, LITE])),
    *[
        (f"debug-{v}", {"args": {"debug": [v]}}, RunRequest(Trigger("http"), [FLASH, PRO, LITE], debug=want))
        for v, want in (("true", True), ("1", True), ("Yes", True), ("false", False), ("0", False), ("", False))
    ],
    ("query-one-target", {"args": {"targets": ["gemini-2.5-pro@global"]}}, RunRequest(Trigger("http"), [PRO])),
    (
        "query-targets-in-the-order-given",
        {"args": {"targets": ["gemini-2.5-flash-lite@us-central1,gemini-2.5-pro@global"]}},
        RunRequest(Trigger("http"), [LITE, PRO]),
    ),
    (
        "query-target-twice-is-once",
        {"args": {"targets": ["gemini-2.5-pro@global,gemini-2.5-pro@global"]}},
        RunRequest(Trigger("http"), [PRO]),
    ),
    (
        "query-target-surrounding-spaces",
        {"args": {"targets": [" gemini-2.5-pro@global "]}},
        RunRequest(Trigger("http"), [PRO]),
    ),
    (
        "body-targets",
        {"headers": JSON, "body": body({"targets": ["gemini-2.5-pro@global", "gemini-2.5-flash@us-central1"]})},
        RunRequest(Trigger("http"), [PRO, FLASH]),
    ),
    (
        "body-json-with-charset",
        {
            "headers": {"content-type": "application/json; charset=utf-8"},
            "body": body({"targets": ["gemini-2.5-pro@global"]}),
        },
        RunRequest(Trigger("http"), [PRO]),
    ),
    (
        "body-octet-stream-as-scheduler-sends-by-default",
        {"headers": {"content-type": "application/octet-stream"}, "body": body({})},
        RunRequest(Trigger("http"), [FLASH, PRO, LITE]),
    ),
    (
        "body-no-content-type",
        {"body": body({"targets": ["gemini-2.5-pro@global"]})},
        RunRequest(Trigger("http"), [PRO]),
    ),
    (
        "body-exactly-max",
        {"body": body({"targets": ["gemini-2.5-pro@global"]}).ljust(MAX_BODY)},
        RunRequest(Trigger("http"), [PRO]),
    ),
    (
        "scheduler",
        {"headers": SCHEDULER},
        RunRequest(Trigger("scheduler", job="gemini-canary", schedule_time="2026-11-26T09:00:00Z"), [FLASH, PRO, LITE]),
    ),
    (
        "scheduler-offset-fraction-no-schedule-time-job-path",
        {
            "headers": {
                "x-cloudscheduler": "True",
                "x-cloudscheduler-jobname": "projects/p/locations/us-central1/jobs/gemini_canary.v2",
                "x-cloudscheduler-scheduletime": "2026-11-26T09:00:00.123456789+01:00",
            }
        },
        RunRequest(
            Trigger(
                "scheduler",
                job="projects/p/locations/us-central1/jobs/gemini_canary.v2",
                schedule_time="2026-11-26T09:00:00.123456789+01:00",
            ),
            [FLASH, PRO, LITE],
        ),
    ),
    (
        "scheduler-without-job-or-time",
        {"headers": {"x-cloudscheduler": "true"}},
        RunRequest(Trigger("scheduler"), [FLASH, PRO, LITE]),
    ),
    (
        "not-scheduler-ignores-its-headers",
        {"headers": {"x-cloudscheduler": "false", "x-cloudscheduler-jobname": "bad job!"}},
        RunRequest(Trigger("http"), [FLASH, PRO, LITE]),
    ),
    (
        "trace-with-span-and-option",
        {"headers": {"x-cloud-trace-context": f"{TRACE_ID}/1234567890;o=1"}},
        RunRequest(Trigger("http", trace=TRACE_ID, span="1234567890"), [FLASH, PRO, LITE]),
    ),
    (
        "trace-only",
        {"headers": {"x-cloud-trace-context": TRACE_ID}},
        RunRequest(Trigger("http", trace=TRACE_ID), [FLASH, PRO, LITE]),
    ),
    (
        "trace-on-scheduler",
        {"headers": {**SCHEDULER, "x-cloud-trace-context": f"{TRACE_ID}/7;o=0"}},
        RunRequest(
            Trigger("scheduler", job="gemini-canary", schedule_time="2026-11-26T09:00:00Z", trace=TRACE_ID, span="7"),
            [FLASH, PRO, LITE],
        ),
    ),
    *[
        (
            f"trace-malformed-ignored-{i}",
            {"headers": {"x-cloud-trace-context": bad}},
            RunRequest(Trigger("http"), [FLASH, PRO, LITE]),
        )
        for i, bad in enumerate(
            (
                "not-a-trace",
                TRACE_ID[:-1],
                TRACE_ID.upper(),
                f"{TRACE_ID}/abc",
                f"{TRACE_ID}/1;o=2",
                f"{TRACE_ID}/1\nx",
                f"{TRACE_ID}/{'9' * 21}",
                "",
            )
        )
    ],
]


@pytest.mark.parametrize(("kwargs", "want"), [a[1:] for a in ACCEPTED], ids=[a[0] for a in ACCEPTED])
def test_http_accepted(kwargs: dict[str, Any], want: RunRequest) -> None:
    assert http(**kwargs) == want


# Refused ----------------------------------------------------------------------------------------------------

LONG = "g" * 10_000
REFUSED = [
    *[
        (f"method-{m}", {"method": m}, (405, f"method {m} not allowed; use GET or POST", {"Allow": "GET, POST"}))
        for m in ("PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")
    ],
    (
        "unknown-query-parameter",
        {"args": {"verbose": ["1"]}},
        (400, "unknown query parameter 'verbose'; allowed: debug, format, targets", {}),
    ),
    (
        "unknown-query-parameter-hostile-name",
        {"args": {'x" OR logName:*': ["1"]}},
        (400, "unknown query parameter 'x\" OR logName:*'; allowed: debug, format, targets", {}),
    ),
    (
        "unknown-query-parameter-case",
        {"args": {"Targets": ["gemini-2.5-pro@global"]}},
        (400, "unknown query parameter 'Targets'; allowed: debug, format, targets", {}),
    ),
    (
        "repeated-targets",
        {"args": {"targets": ["gemini-2.5-pro@global", "gemini-2.5-flash@us-central1"]}},
        (400, "query parameter targets given more than once", {}),
    ),
    ("repeated-debug", {"args": {"debug": ["true", "true"]}}, (400, "query parameter debug given more than once", {})),
    ("bad-format", {"args": {"format": ["xml"]}}, (400, "query parameter format: 'xml'; allowed: json, text", {})),
    ("bad-debug", {"args": {"debug": ["maybe"]}}, (400, "query parameter debug: 'maybe' is not true or false", {})),
    (
        "bad-debug-long-truncated",
        {"args": {"debug": [LONG]}},
        (400, f"query parameter debug: {'g' * 80 + '…'!r} is not true or false", {}),
    ),
    *[
        (f"target-{name}", {"args": {"targets": [value]}}, (400, unknown(shown), {}))
        for name, value, shown in (
            ("filter-injection", 'x" OR logName:*', 'x" OR logName:*'),
            ("newline-suffix", "gemini-2.5-flash@us-central1\nfoo", "gemini-2.5-flash@us-central1\nfoo"),
            ("cyrillic-lookalike", "gemini-2.5-flash@us-\u0441entral1", "gemini-2.5-flash@us-\u0441entral1"),
            ("fullwidth-lookalike", "\uff47emini-2.5-pro@global", "\uff47emini-2.5-pro@global"),
            ("zero-width-space", "gemini-2.5-pro\u200b@global", "gemini-2.5-pro\u200b@global"),
            ("upper-case", "GEMINI-2.5-PRO@global", "GEMINI-2.5-PRO@global"),
            ("not-configured", "gemini-2.0-flash@us-central1", "gemini-2.0-flash@us-central1"),
            ("empty", "", ""),
            ("one-empty-of-two", "gemini-2.5-pro@global,", ""),
            ("10k-chars-truncated", LONG, "g" * 80 + "…"),
        )
    ],
    ("body-malformed-json", {"body": b'{"targets": '}, (400, "the body is not valid JSON: Expecting value", {})),
    *[
        (f"body-nested-{name}", {"body": raw}, (400, "the body is not valid JSON: nested too deeply", {}))
        for name, raw in (
            ("lists", b"[" * 2000 + b"]" * 2000),
            ("in-targets", b'{"targets": ' + b"[" * 2000 + b"]" * 2000 + b"}"),
        )
    ],
    (
        "body-targets-value-nested-just-parseable",
        {"body": b'{"targets": [' + b"[" * 900 + b"]" * 900 + b"]}"},
        (400, unknown("[[[[...]]]]"), {}),
    ),
    (
        "body-huge-number",
        {"body": b'{"targets": [' + b"9" * 4000 + b"]}"},
        (400, unknown("999999999999999999...9999999999999999999"), {}),
    ),
    (
        "body-not-utf8",
        {"body": b"\xff\xfe{"},
        (400, "the body is not valid JSON: 'utf-16-le' codec can't decode byte 0x7b in position 2: truncated data", {}),
    ),
    *[
        (
            f"body-not-an-object-{name}",
            {"body": raw},
            (400, 'the body must be a JSON object, e.g. {"targets": ["gemini-2.5-flash@global"]}', {}),
        )
        for name, raw in (
            ("list", b'["gemini-2.5-pro@global"]'),
            ("string", b'"x"'),
            ("null", b"null"),
            ("number", b"1"),
        )
    ],
    (
        "body-unknown-field",
        {"body": body({"target": ["gemini-2.5-pro@global"]})},
        (400, "unknown body field 'target'; allowed: targets", {}),
    ),
    (
        "body-targets-not-a-list",
        {"body": body({"targets": "gemini-2.5-pro@global"})},
        (400, "body field targets: expected a list of MODEL@LOCATION strings", {}),
    ),
    (
        "body-targets-not-strings",
        {"body": body({"targets": [{"model": "gemini-2.5-pro"}]})},
        (400, unknown("{'model': 'gemini-2.5-pro'}"), {}),
    ),
    (
        "body-targets-hostile",
        {"body": body({"targets": ['x" OR logName:*']})},
        (400, unknown('x" OR logName:*'), {}),
    ),
    ("body-targets-empty", {"body": body({"targets": []})}, (400, f"targets: no targets given; {CONFIGURED}", {})),
    (
        "targets-in-query-and-body",
        {"args": {"targets": ["gemini-2.5-pro@global"]}, "body": body({"targets": ["gemini-2.5-pro@global"]})},
        (400, "targets given both in the query and in the body; give them once", {}),
    ),
    (
        "oversize-declared",
        {"body": b"", "declared": MAX_BODY + 904},
        (413, f"request body of {MAX_BODY + 904} bytes; at most {MAX_BODY} bytes", {}),
    ),
    (
        "oversize-actual-understated",
        {"body": b" " * (MAX_BODY + 1), "declared": 10},
        (413, f"request body of {MAX_BODY + 1} bytes; at most {MAX_BODY} bytes", {}),
    ),
    *[
        (
            f"content-type-{ct.split('/')[1]}",
            {"headers": {"content-type": ct}, "body": body({})},
            (415, f"content type {ct!r}; send application/json", {}),
        )
        for ct in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data")
    ],
    (
        "get-with-body",
        {"method": "GET", "body": body({"targets": ["gemini-2.5-pro@global"]})},
        (400, "a GET request takes no body; use query parameters", {}),
    ),
    *[
        (
            f"scheduler-bad-job-{i}",
            {"headers": {**SCHEDULER, "x-cloudscheduler-jobname": bad}},
            (400, f"header X-CloudScheduler-JobName: {shown!r} is not a job name", {}),
        )
        for i, (bad, shown) in enumerate(
            (("bad job!",) * 2, ('j" OR x',) * 2, ("job\n",) * 2, ("j" * 501, "j" * 80 + "…"), ("job;rm",) * 2)
        )
    ],
    *[
        (
            f"scheduler-bad-time-{i}",
            {"headers": {**SCHEDULER, "x-cloudscheduler-scheduletime": bad}},
            (400, f"header X-CloudScheduler-ScheduleTime: {bad!r} is not an RFC 3339 time", {}),
        )
        for i, bad in enumerate(
            ("yesterday", "2026-11-26 09:00:00Z", "2026-11-26T09:00:00", "2026-11-26T09:00:00Z\n", "1764147600")
        )
    ],
]


@pytest.mark.parametrize(("kwargs", "want"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_http_refused(kwargs: dict[str, Any], want: tuple[int, str, dict[str, str]]) -> None:
    assert refused(http, **kwargs) == want


def test_checks_run_before_the_body_is_read() -> None:
    """A wrong method is 405 whatever else is wrong; a too-long body is 413 before its JSON is parsed."""
    assert refused(http, method="PUT", args={"x": ["1"]}, body=b"{")[0] == 405
    assert refused(http, body=b"{" * (MAX_BODY + 1))[0] == 413


@pytest.fixture(scope="module")
def served() -> Iterator[Any]:
    """The real function, served by functions-framework as Cloud Run does, configured with CONFIG's targets. Its
    emulator endpoint is a closed loopback port: a request let through fails fast and never reaches Google."""
    patch = pytest.MonkeyPatch()
    for key in [k for k in os.environ if k.startswith("CANARY_")]:
        patch.delenv(key)
    patch.setenv("CANARY_TARGETS", ",".join(str(t) for t in CONFIG.targets))
    patch.setenv("CANARY_PROJECT", "demo-proj")
    patch.setenv("CANARY_EMULATOR_GRPC", "127.0.0.1:9")
    patch.setenv("CANARY_DEADLINE_SECONDS", "5")
    try:
        yield create_app(target="canary", source="function/main.py").test_client()
    finally:
        patch.undo()


# What the test client cannot send as a server receives it: a body longer than its Content-Length (the server reads
# only what was declared), and header values with a line break (no HTTP server passes them on).
UNSENDABLE = {"oversize-actual-understated", "scheduler-bad-job-2", "scheduler-bad-time-3"}


@pytest.mark.parametrize(
    ("kwargs", "want"),
    [r[1:] for r in REFUSED if r[0] not in UNSENDABLE],
    ids=[r[0] for r in REFUSED if r[0] not in UNSENDABLE],
)
def test_every_refusal_is_its_4xx_through_the_served_function(
    served: Any, capsys: pytest.CaptureFixture[str], kwargs: dict[str, Any], want: tuple[int, str, dict[str, str]]
) -> None:
    """Each refusal of the table, sent as an HTTP request to the function functions-framework serves: the response
    is that 4xx, with that message as its JSON and those headers, and one WARNING log line says it was rejected."""
    status, message, headers = want
    assert 400 <= status < 500
    body = kwargs.get("body", b"").ljust(kwargs.get("declared", 0))  # what was declared is sent, and not read
    capsys.readouterr()
    response = served.open(
        "/",
        method=kwargs.get("method", "POST"),
        query_string=[(k, v) for k, values in kwargs.get("args", {}).items() for v in values],
        headers=kwargs.get("headers", {}),
        data=body,
    )
    assert response.status_code == status
    if kwargs.get("method") != "HEAD":  # a HEAD response has no body
        assert response.get_json() == {"error": message}
    assert {k: response.headers.get(k) for k in headers} == headers
    [line] = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert line == {
        "severity": "WARNING",
        "message": f"gemini-canary REJECTED: {message}",
        "rejected": "http",
        "status": status,
    }


# Pub/Sub ----------------------------------------------------------------------------------------------------


def pubsub_data(doc: Any) -> dict[str, Any]:
    raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return {"message": {"data": base64.b64encode(raw).decode(), "messageId": "17"}, "subscription": "s"}


PUBSUB_ACCEPTED = [
    ("no-event-data", None, "17", RunRequest(Trigger("pubsub", message_id="17"), [FLASH, PRO, LITE])),
    ("no-message", {}, None, RunRequest(Trigger("pubsub"), [FLASH, PRO, LITE])),
    ("message-not-an-object", {"message": "x"}, None, RunRequest(Trigger("pubsub"), [FLASH, PRO, LITE])),
    (
        "no-data",
        {"message": {"attributes": {"a": "b"}}},
        "17",
        RunRequest(Trigger("pubsub", message_id="17"), [FLASH, PRO, LITE]),
    ),
    ("empty-data", {"message": {"data": ""}}, "17", RunRequest(Trigger("pubsub", message_id="17"), [FLASH, PRO, LITE])),
    ("blank-json", pubsub_data(b"  \n"), "17", RunRequest(Trigger("pubsub", message_id="17"), [FLASH, PRO, LITE])),
    ("empty-object", pubsub_data({}), "17", RunRequest(Trigger("pubsub", message_id="17"), [FLASH, PRO, LITE])),
    (
        "targets",
        pubsub_data({"targets": ["gemini-2.5-pro@global"]}),
        "9876543210",
        RunRequest(Trigger("pubsub", message_id="9876543210"), [PRO]),
    ),
    *[
        (f"unsafe-message-id-dropped-{i}", pubsub_data({}), bad, RunRequest(Trigger("pubsub"), [FLASH, PRO, LITE]))
        for i, bad in enumerate(("id with spaces", "x" * 101, "id\n", 'a"b', ""))
    ],
]


@pytest.mark.parametrize(
    ("event_data", "message_id", "want"), [a[1:] for a in PUBSUB_ACCEPTED], ids=[a[0] for a in PUBSUB_ACCEPTED]
)
def test_pubsub_accepted(event_data: Any, message_id: str | None, want: RunRequest) -> None:
    assert from_pubsub(CONFIG, event_data, message_id) == want


PUBSUB_REFUSED: list[tuple[str, Any, tuple[int, str, dict[str, str]]]] = [
    ("bad-base64", {"message": {"data": "!!not base64!!"}}, (400, "message data is not base64", {})),
    ("non-ascii-base64", {"message": {"data": "ZGF0YQ==é"}}, (400, "message data is not base64", {})),
    ("data-not-a-string", {"message": {"data": 12}}, (400, "message data is not base64", {})),
    (
        "malformed-json",
        pubsub_data(b"{"),
        (400, "the body is not valid JSON: Expecting property name enclosed in double quotes", {}),
    ),
    (
        "non-object-json",
        pubsub_data(["gemini-2.5-pro@global"]),
        (400, 'the body must be a JSON object, e.g. {"targets": ["gemini-2.5-flash@global"]}', {}),
    ),
    ("unknown-field", pubsub_data({"target": "x"}), (400, "unknown body field 'target'; allowed: targets", {})),
    (
        "nested-data",
        pubsub_data(b"[" * 2000 + b"]" * 2000),
        (400, "the body is not valid JSON: nested too deeply", {}),
    ),
    (
        "nested-targets-value",
        pubsub_data(b'{"targets": [' + b"[" * 900 + b"]" * 900 + b"]}"),
        (400, unknown("[[[[...]]]]"), {}),
    ),
    (
        "targets-not-a-list",
        pubsub_data({"targets": "gemini-2.5-pro@global"}),
        (400, "message field targets: expected a list of MODEL@LOCATION strings", {}),
    ),
    ("unknown-target", pubsub_data({"targets": ["gemini-9@mars"]}), (400, unknown("gemini-9@mars"), {})),
    (
        "hostile-target",
        pubsub_data({"targets": ["gemini-2.5-flash@us-central1\nfoo"]}),
        (400, unknown("gemini-2.5-flash@us-central1\nfoo"), {}),
    ),
    (
        "oversize",
        pubsub_data({"targets": ["gemini-2.5-pro@global"] * 300}),
        (
            413,
            f"message data of {len(json.dumps({'targets': ['gemini-2.5-pro@global'] * 300}))} bytes; "
            f"at most {MAX_BODY} bytes",
            {},
        ),
    ),
]


@pytest.mark.parametrize(("event_data", "want"), [r[1:] for r in PUBSUB_REFUSED], ids=[r[0] for r in PUBSUB_REFUSED])
def test_pubsub_refused(event_data: Any, want: tuple[int, str, dict[str, str]]) -> None:
    assert refused(from_pubsub, CONFIG, event_data, "17") == want


# Echoed values are repr'd and bounded: no raw newline, quote or 10k string ever reaches a message ----------------


@pytest.mark.parametrize(
    "value",
    [LONG, 'x" OR logName:*', "a\nb", "a\r\nSet-Cookie: x", "\x1b[31mred", "\u202eevil"],
    ids=["long", "quote", "newline", "crlf", "ansi", "bidi"],
)
def test_echoed_values_are_escaped_and_truncated(value: str) -> None:
    for call in (
        lambda: http(args={"targets": [value]}),
        lambda: http(body=body({"targets": [value]})),
        lambda: http(args={"format": [value]}),
        lambda: http(args={"debug": [value]}),
        lambda: http(headers={**SCHEDULER, "x-cloudscheduler-jobname": value}),
        lambda: from_pubsub(CONFIG, pubsub_data({"targets": [value]}), None),
    ):
        _, message, _ = refused(call)
        assert not set(message) & {"\n", "\r", "\x1b", "\u202e"}
        assert len(message) < 300


# Reading the body: bounded in size before anything is read ---------------------------------------------------------


class Stream(io.BytesIO):
    """A request body as the server hands it over; counts what the canary read."""

    def __init__(self, data: bytes, fail_after: int | None = None) -> None:
        super().__init__(data)
        self.fail_after = fail_after

    def read(self, size: int | None = -1) -> bytes:
        if self.fail_after is not None and self.tell() >= self.fail_after:
            raise OSError("connection reset by peer")
        return super().read(size)


@pytest.mark.parametrize(
    ("data", "declared", "want"),
    [
        (b"{}", 2, b"{}"),
        (b"x" * MAX_BODY, MAX_BODY, b"x" * MAX_BODY),
        (b"x" * 10 * MAX_BODY, None, b"x" * (MAX_BODY + 1)),  # chunked: one byte past the limit tells enough
        (b"x" * 10 * MAX_BODY, 10 * MAX_BODY, b""),  # declared too long: not read at all
    ],
    ids=["small", "exactly-max", "chunked-too-long", "declared-too-long"],
)
def test_read_body_is_bounded(data: bytes, declared: int | None, want: bytes) -> None:
    stream = Stream(data)
    assert read_body(stream, declared) == want
    assert stream.tell() == len(want)


@pytest.mark.parametrize(
    ("stream", "declared", "want"),
    [
        (Stream(b'{"tar'), 100, (400, "the request body ended after 5 of its 100 bytes", {})),
        (Stream(b'{"targets": []}', fail_after=3), None, (400, "the request body was cut off before its end", {})),
    ],
    ids=["shorter-than-declared", "stream-raises"],
)
def test_read_body_cut_off(stream: Stream, declared: int | None, want: tuple[int, str, dict[str, str]]) -> None:
    stream.read(3 if stream.fail_after else 0)
    stream.seek(0)
    assert refused(read_body, stream, declared) == want
