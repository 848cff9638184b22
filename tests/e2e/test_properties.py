"""Property-based: whatever a client sends, a mistake is never a 5xx, and a refused request never calls Gemini or
writes a metric. Whatever the environment holds, config loading either works or names the bad variable."""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from function.config import VARIABLES, ConfigError, load
from tests.e2e.conftest import StartCanary

GEN = "google.cloud.aiplatform.v1.PredictionService.GenerateContent"
WRITE = "google.monitoring.v3.MetricService.CreateTimeSeries"
TARGETS = ("gemini-2.5-flash-lite@us-central1", "gemini-2.5-pro@global")

header_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)
param_names = st.one_of(
    st.sampled_from(["targets", "format", "debug"]), st.sampled_from(["verbose", "target", "", "TARGETS", "x" * 40])
)
param_values = st.one_of(
    st.sampled_from([*TARGETS, ",".join(TARGETS), "json", "text", "true", "false", "1", ""]), st.text(max_size=40)
)
bodies = st.one_of(
    st.none(),
    st.binary(max_size=200),
    st.builds(
        lambda v: json.dumps(v).encode(),
        st.recursive(
            st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20), st.sampled_from(TARGETS)),
            lambda inner: st.one_of(
                st.lists(inner, max_size=4),
                st.dictionaries(st.sampled_from(["targets", "target", "x"]), inner, max_size=3),
            ),
            max_leaves=8,
        ),
    ),
    st.just(b"x" * 5000),
)
headers = st.dictionaries(
    st.sampled_from(
        [
            "Content-Type",
            "X-CloudScheduler",
            "X-CloudScheduler-JobName",
            "X-CloudScheduler-ScheduleTime",
            "X-Cloud-Trace-Context",
            "Authorization",
            "Content-Encoding",
        ]
    ),
    st.one_of(header_text, st.sampled_from(["true", "application/json", "text/plain", "2026-11-26T09:00:00Z"])),
    max_size=4,
)


# Requests the API accepts, so that a good share of those sent are valid (the oracle must tell them 200).
target_lists = st.lists(st.sampled_from(TARGETS), min_size=1, max_size=3)
valid_query = st.fixed_dictionaries(
    {},
    optional={
        "targets": st.sampled_from([",".join(TARGETS), TARGETS[0], f" {TARGETS[1]} ", f"{TARGETS[0]},{TARGETS[0]}"]),
        "format": st.sampled_from(["json", "text", "TEXT", ""]),
        "debug": st.sampled_from(["true", "0", "Yes", ""]),
    },
).map(lambda q: list(q.items()))
valid_body = st.one_of(
    st.none(), st.just(b""), st.just(b"{}"), st.builds(lambda t: json.dumps({"targets": t}).encode(), target_lists)
)
valid_headers = st.fixed_dictionaries(
    {},
    optional={
        "Content-Type": st.sampled_from(["application/json", "application/octet-stream", "application/json; x=y"]),
        "X-CloudScheduler": st.sampled_from(["true", "True", "false"]),
        "X-CloudScheduler-JobName": st.sampled_from(["gemini-canary", "projects/p/locations/l/jobs/j_1.v2"]),
        "X-CloudScheduler-ScheduleTime": st.sampled_from(["2026-11-26T09:00:00Z", "2026-11-26T09:00:00.5+01:00"]),
        "X-Cloud-Trace-Context": header_text,
        "Authorization": header_text,
    },
)


# What the API documents (README "HTTP API"), restated here as the oracle: a request is valid, or which 4xx it is.
KNOWN_PARAMETERS = ("debug", "format", "targets")
JOB_NAME = re.compile(r"[A-Za-z0-9_./-]{1,500}")  # Cloud Scheduler job ids and their resource paths
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")


def _targets_ok(names: Any) -> bool:
    return isinstance(names, list) and bool(names) and all(isinstance(n, str) and n.strip() in TARGETS for n in names)


def expected_status(method: str, query: list[tuple[str, str]], body: bytes | None, extra: dict[str, str]) -> int:
    """200 for a valid request (the world is healthy), else the 4xx the first mistake earns."""
    if method not in ("GET", "POST"):
        return 405
    names = [n for n, _ in query]
    if set(names) - set(KNOWN_PARAMETERS) or len(names) != len(set(names)):
        return 400
    args = dict(query)
    if args.get("format", "").strip().lower() not in ("", "json", "text"):
        return 400
    if args.get("debug", "").strip().lower() not in ("true", "1", "yes", "false", "0", "no", ""):
        return 400
    raw = body or b""
    if len(raw) > 4096:
        return 413
    doc: Any = {}
    if raw.strip():
        if method == "GET":
            return 400
        content_type = extra.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type not in ("application/json", "application/octet-stream", ""):
            return 415
        try:
            doc = json.loads(raw)
        except ValueError:
            return 400
        if not isinstance(doc, dict) or set(doc) - {"targets"} or ("targets" in doc and "targets" in args):
            return 400
    if "targets" in args and not _targets_ok(args["targets"].split(",")):
        return 400
    if "targets" in doc and not _targets_ok(doc["targets"]):
        return 400
    if extra.get("X-CloudScheduler", "").lower() == "true":
        job = extra.get("X-CloudScheduler-JobName", "")
        when = extra.get("X-CloudScheduler-ScheduleTime", "")
        if (job and not JOB_NAME.fullmatch(job)) or (when and not RFC3339.fullmatch(when)):
            return 400
    return 200


Request = tuple[str, list[tuple[str, str]], bytes | None, dict[str, str]]
SCHEDULED = {"X-CloudScheduler": "true"}
MISTAKES: list[Callable[[str, list[tuple[str, str]], bytes | None, dict[str, str]], Request]] = [
    lambda m, q, b, h: ("PATCH", q, b, h),
    lambda m, q, b, h: (m, [*q, ("verbose", "1")], b, h),
    lambda m, q, b, h: (m, [*q, ("format", "xml")], b, h) if "format" not in dict(q) else (m, q, b"{" * 5000, h),
    lambda m, q, b, h: (m, [("debug", "maybe")], b, h),
    lambda m, q, b, h: (m, q, b"x" * 4097, h),
    lambda m, q, b, h: ("POST", [], b"{}", {**h, "Content-Type": "text/plain"}),
    lambda m, q, b, h: ("POST", [], b'{"targets": [', {}),
    lambda m, q, b, h: ("POST", [], json.dumps({"targets": [TARGETS[0].upper()]}).encode(), h),
    lambda m, q, b, h: ("GET", q, b'{"targets": []}', h),
    lambda m, q, b, h: (m, q, b, {**h, **SCHEDULED, "X-CloudScheduler-JobName": "job; rm"}),
    lambda m, q, b, h: (m, q, b, {**h, **SCHEDULED, "X-CloudScheduler-ScheduleTime": "yesterday"}),
]


def test_client_mistakes_are_4xx_and_call_nothing(start_canary: StartCanary) -> None:
    """Every request gets the status the API documents: a mistake its exact 4xx (and nothing called), a valid request
    200 with the healthy verdict (never a 502: the world is healthy, so a 502 would be the canary misreading it)."""
    canary = start_canary("healthy", CANARY_TARGETS=",".join(TARGETS))
    seen: Counter[int] = Counter()

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=st.data(), kind=st.sampled_from(["valid", "one-mistake", "anything"]))
    def request(data: st.DataObject, kind: str) -> None:
        if kind != "anything":
            method = data.draw(st.sampled_from(["GET", "POST"]))
            query = data.draw(valid_query)
            body = data.draw(valid_body) if method == "POST" and "targets" not in dict(query) else None
            extra = data.draw(valid_headers)
            if kind == "one-mistake":
                method, query, body, extra = data.draw(st.sampled_from(MISTAKES))(method, query, body, extra)
        else:
            method = data.draw(st.sampled_from(["GET", "POST", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]))
            query = data.draw(st.lists(st.tuples(param_names, param_values), max_size=3))
            body, extra = data.draw(bodies), data.draw(headers)
        before = (canary.calls(GEN), canary.calls(WRITE))
        response = canary.client.open("/", method=method, query_string=query, data=body, headers=extra)
        canary.outputs.append(response.get_data(as_text=True))
        want = expected_status(method, query, body, extra)
        seen[want] += 1
        assert response.status_code == want, (response.status_code, response.get_data(as_text=True))
        if want == 200:
            doc = response.get_data(as_text=True)
            if dict(query).get("format", "").strip().lower() == "text":
                assert doc.startswith("gemini-canary OK: "), doc
            else:
                assert json.loads(doc)["verdict"] == "healthy", doc
            assert canary.calls(GEN) > before[0]
        else:
            assert (canary.calls(GEN), canary.calls(WRITE)) == before
            assert set(response.get_json()) == {"error"}
            assert response.get_json()["error"]

    request()
    # not vacuous: valid requests and each kind of mistake were all among those sent
    assert seen[200] >= 30, seen
    assert seen[400] >= 20, seen
    assert seen[405] >= 5, seen


BASE: Request = ("POST", [("debug", "false")], None, {"Content-Type": "application/json"})


@pytest.mark.parametrize(
    ("mistake", "status"),
    list(zip(MISTAKES, [405, 400, 400, 400, 413, 415, 400, 400, 400, 400, 400], strict=True)),
    ids=["method", "param", "format", "debug", "size", "content-type", "json", "target", "get-body", "job", "time"],
)
def test_each_mistake_is_its_4xx(start_canary: StartCanary, mistake: Callable[..., Request], status: int) -> None:
    """Each mistake the fuzzer makes, made once to a valid request: the oracle and the canary agree on its status."""
    canary = start_canary("healthy", CANARY_TARGETS=",".join(TARGETS))
    method, query, body, extra = mistake(*BASE)
    assert expected_status(method, query, body, extra) == status
    response = canary.client.open("/", method=method, query_string=query, data=body, headers=extra)
    assert response.status_code == status, response.get_data(as_text=True)
    assert canary.calls(GEN) == 0


def test_the_request_oracle_accepts_and_refuses() -> None:
    """The oracle above is not vacuous: it tells valid from each kind of mistake."""
    assert expected_status("GET", [], None, {}) == 200
    assert expected_status("POST", [("targets", TARGETS[1])], b"", {"X-CloudScheduler": "true"}) == 200
    assert expected_status("POST", [], json.dumps({"targets": [TARGETS[0]]}).encode(), {}) == 200
    assert expected_status("PUT", [], None, {}) == 405
    assert expected_status("GET", [("verbose", "1")], None, {}) == 400
    assert expected_status("POST", [], b"x" * 5000, {}) == 413
    assert expected_status("POST", [], b"{}", {"Content-Type": "text/plain"}) == 415
    assert expected_status("POST", [], b"{}", {"X-CloudScheduler": "true", "X-CloudScheduler-JobName": "a b"}) == 400


env_values = st.one_of(
    st.text(max_size=30),
    st.text(alphabet=string.digits + ".-e", max_size=8),
    st.sampled_from(
        [
            "",
            " ",
            "0",
            "-1",
            "1e9",
            "nan",
            "inf",
            "gemini-2.5-pro@global",
            "all",
            "none",
            "127.0.0.1:1",
            "custom.googleapis.com/x",
        ]
    ),
)


LAG, DEADLINE = "CANARY_AUDIT_LAG_BUDGET_SECONDS", "CANARY_DEADLINE_SECONDS"


def _loads(env: dict[str, str]) -> bool:
    try:
        load(env)
    except ConfigError:
        return False
    return True


def _bad(env: dict[str, str]) -> set[str]:
    """The variables whose value is wrong, each judged on its own: with the deadline beside the lag budget (the budget
    must be below it), and K_SERVICE only where CANARY_JOB does not override the default it gives."""
    bad = set()
    for name, value in env.items():
        alone = {name: value}
        if name == LAG and DEADLINE in env and _loads({DEADLINE: env[DEADLINE]}):
            alone[DEADLINE] = env[DEADLINE]
        if name == "K_SERVICE" and env.get("CANARY_JOB", "").strip():
            continue
        if not _loads(alone):
            bad.add(name)
    return bad


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from([*VARIABLES, "CANARY_TYPO", "K_SERVICE"]), env_values, max_size=6))
def test_config_either_loads_or_names_the_bad_variable(env: dict[str, str]) -> None:
    """Loads exactly when every variable's value is good; otherwise the error names one of the bad ones."""
    bad = _bad(env)
    event("refused" if bad else "loaded")
    try:
        config = load(env)
    except ConfigError as err:
        message = str(err)
    else:
        assert not bad, bad
        assert 1 <= len(config.targets) <= 20
        assert 5 <= config.deadline_s <= 540
        assert 0 <= config.audit_lag_budget_s < config.deadline_s
        return
    variable = message.split(":", 1)[0]
    assert variable in bad, (message, bad)


def test_a_bad_k_service_is_named_not_canary_job() -> None:
    """CANARY_JOB defaults to $K_SERVICE: when that default is not a label value, the error names K_SERVICE (the
    variable that holds it), not CANARY_JOB, which the operator never set."""
    with pytest.raises(ConfigError) as caught:
        load({"K_SERVICE": "my service"})
    assert str(caught.value) == (
        "K_SERVICE: 'my service' (CANARY_JOB's default) is not a label value; allowed: lower-case letters, digits, "
        "'_' and '-', starting with a letter or digit, at most 63 characters"
    )
    assert load({"K_SERVICE": "my service", "CANARY_JOB": "canary"}).job == "canary"
