"""Property-based: whatever a client sends, a mistake is never a 5xx, and a refused request never calls Gemini or
writes a metric. Whatever the environment holds, config loading either works or names the bad variable."""

from __future__ import annotations

import json
import string
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from function.config import VARIABLES, ConfigError, load
from tests.e2e.conftest import StartCanary

GEN = "google.cloud.aiplatform.v1.PredictionService.GenerateContent"
WRITE = "google.monitoring.v3.MetricService.CreateTimeSeries"
TARGETS = ("gemini-2.5-flash-lite@us-central1", "gemini-2.5-pro@global")

header_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)
param_names = st.sampled_from(["targets", "format", "debug", "verbose", "target", "", "TARGETS", "x" * 40])
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


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]),
    query=st.lists(st.tuples(param_names, param_values), max_size=4),
    body=bodies,
    extra=headers,
)
def test_client_mistakes_are_4xx_and_call_nothing(
    start_canary: StartCanary, method: str, query: list[tuple[str, str]], body: bytes | None, extra: dict[str, str]
) -> None:
    canary = _canary(start_canary)
    before = (canary.calls(GEN), canary.calls(WRITE))
    response = canary.client.open("/", method=method, query_string=query, data=body, headers=extra)
    assert response.status_code < 500 or response.status_code == 502, response.get_data(as_text=True)
    if response.status_code >= 400 and response.status_code != 502:
        assert (canary.calls(GEN), canary.calls(WRITE)) == before
        assert set(response.get_json()) == {"error"}
    canary.outputs.append(response.get_data(as_text=True))


_CANARIES: dict[int, Any] = {}


def _canary(start_canary: StartCanary) -> Any:
    """One canary per test (hypothesis calls the test body many times with the same fixture)."""
    key = id(start_canary)
    if key not in _CANARIES:
        _CANARIES.clear()
        _CANARIES[key] = start_canary("healthy", CANARY_TARGETS=",".join(TARGETS))
    return _CANARIES[key]


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


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from([*VARIABLES, "CANARY_TYPO", "K_SERVICE"]), env_values, max_size=6))
def test_config_either_loads_or_names_the_variable(env: dict[str, str]) -> None:
    try:
        config = load(env)
    except ConfigError as err:
        message = str(err)
    else:
        assert 1 <= len(config.targets) <= 20
        assert 5 <= config.deadline_s <= 540
        assert 0 <= config.audit_lag_budget_s < config.deadline_s
        return
    variable = message.split(":", 1)[0]
    assert variable in env or variable in VARIABLES, message
