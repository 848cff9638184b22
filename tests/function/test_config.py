"""config.load(environ): defaults, every variable valid and invalid, exact messages naming the variable."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from function.config import (
    DEFAULT_TARGETS,
    EVIDENCE_STEPS,
    MAX_TARGETS,
    VARIABLES,
    Config,
    ConfigError,
    Target,
    load,
)

FUNCTION = Path(__file__).resolve().parents[2] / "function"
STEPS = ", ".join(EVIDENCE_STEPS)
TARGET_HINT = (
    "is not MODEL@LOCATION (for example gemini-2.5-flash@us-central1 or gemini-2.5-pro@global; "
    "model ids are lower-case letters, digits, '.' and '-')"
)
LABEL_HINT = (
    "is not a label value; allowed: lower-case letters, digits, '_' and '-', starting with a letter or digit, "
    "at most 63 characters"
)


def test_defaults() -> None:
    config = load({})
    assert config == Config()
    assert config == Config(
        targets=(Target("gemini-2.5-flash-lite", "us-central1"),),
        project=None,
        deadline_s=30.0,
        concurrency=4,
        audit_lookback_s=3600.0,
        audit_lag_budget_s=20.0,
        metric_prefix="custom.googleapis.com/gemini_canary",
        evidence=frozenset(EVIDENCE_STEPS),
        job="gemini-canary",
        namespace="gemini-canary",
        emulator=None,
    )


def test_blank_values_mean_the_default() -> None:
    assert load(dict.fromkeys(VARIABLES, "  ")) == Config()


VALID = [
    ("CANARY_TARGETS", "gemini-2.5-flash@us-central1", "targets", (Target("gemini-2.5-flash", "us-central1"),)),
    (
        "CANARY_TARGETS",
        " gemini-2.5-pro@global , gemini-2.0-flash-001@europe-west4,",
        "targets",
        (Target("gemini-2.5-pro", "global"), Target("gemini-2.0-flash-001", "europe-west4")),
    ),
    (
        "CANARY_TARGETS",
        "m@us,m@eu,m@northamerica-northeast1",
        "targets",
        tuple(Target("m", loc) for loc in ("us", "eu", "northamerica-northeast1")),
    ),
    ("CANARY_PROJECT", "demo-proj", "project", "demo-proj"),
    ("CANARY_PROJECT", "a" * 30, "project", "a" * 30),
    ("CANARY_DEADLINE_SECONDS", "60", "deadline_s", 60.0),
    ("CANARY_DEADLINE_SECONDS", "540", "deadline_s", 540.0),
    ("CANARY_DEADLINE_SECONDS", "22.5", "deadline_s", 22.5),
    ("CANARY_CONCURRENCY", "1", "concurrency", 1),
    ("CANARY_CONCURRENCY", " 16 ", "concurrency", 16),
    ("CANARY_AUDIT_LOOKBACK_SECONDS", "60", "audit_lookback_s", 60.0),
    ("CANARY_AUDIT_LOOKBACK_SECONDS", "2592000", "audit_lookback_s", 2592000.0),
    ("CANARY_AUDIT_LAG_BUDGET_SECONDS", "0", "audit_lag_budget_s", 0.0),
    ("CANARY_AUDIT_LAG_BUDGET_SECONDS", "29.5", "audit_lag_budget_s", 29.5),
    ("CANARY_METRIC_PREFIX", "workload.googleapis.com/canary", "metric_prefix", "workload.googleapis.com/canary"),
    ("CANARY_METRIC_PREFIX", "custom.googleapis.com/a/b_c1", "metric_prefix", "custom.googleapis.com/a/b_c1"),
    ("CANARY_EVIDENCE", "all", "evidence", frozenset(EVIDENCE_STEPS)),
    ("CANARY_EVIDENCE", "ALL", "evidence", frozenset(EVIDENCE_STEPS)),
    ("CANARY_EVIDENCE", "none", "evidence", frozenset()),
    ("CANARY_EVIDENCE", "iam, data_access,", "evidence", frozenset({"iam", "data_access"})),
    ("CANARY_JOB", "nightly_canary-2", "job", "nightly_canary-2"),
    ("CANARY_NAMESPACE", "team-a", "namespace", "team-a"),
    ("CANARY_EMULATOR_GRPC", "127.0.0.1:8085", "emulator", "127.0.0.1:8085"),
    ("CANARY_EMULATOR_GRPC", "localhost:1", "emulator", "localhost:1"),
    ("CANARY_EMULATOR_GRPC", "[::1]:9000", "emulator", "[::1]:9000"),
]


@pytest.mark.parametrize(("name", "value", "attribute", "want"), VALID, ids=[f"{v[0]}={v[1]!r}" for v in VALID])
def test_valid(name: str, value: str, attribute: str, want: object) -> None:
    assert getattr(load({name: value}), attribute) == want


def test_job_defaults_to_the_cloud_run_service_name() -> None:
    assert load({"K_SERVICE": "Gemini-Canary-Prod"}).job == "gemini-canary-prod"
    assert load({"K_SERVICE": "svc", "CANARY_JOB": "explicit"}).job == "explicit"


NUMBERS = {  # name → (low, high, whole number)
    "CANARY_DEADLINE_SECONDS": ("5", "540", False),
    "CANARY_CONCURRENCY": ("1", "16", True),
    "CANARY_AUDIT_LOOKBACK_SECONDS": ("60", "2592000", False),
    "CANARY_AUDIT_LAG_BUDGET_SECONDS": ("0", "300", False),
}

INVALID = [
    ("CANARY_TARGETS", "gemini", f"CANARY_TARGETS: 'gemini' {TARGET_HINT}"),
    ("CANARY_TARGETS", "Gemini-2.5-flash@us-central1", f"CANARY_TARGETS: 'Gemini-2.5-flash@us-central1' {TARGET_HINT}"),
    ("CANARY_TARGETS", "gemini@us_central1", f"CANARY_TARGETS: 'gemini@us_central1' {TARGET_HINT}"),
    ("CANARY_TARGETS", "@us-central1", f"CANARY_TARGETS: '@us-central1' {TARGET_HINT}"),
    ("CANARY_TARGETS", "gemini@", f"CANARY_TARGETS: 'gemini@' {TARGET_HINT}"),
    ("CANARY_TARGETS", "a@b@us", f"CANARY_TARGETS: 'a@b@us' {TARGET_HINT}"),
    (
        "CANARY_TARGETS",
        "gemini-2.5-flash\n@us-central1",
        f"CANARY_TARGETS: 'gemini-2.5-flash\\n@us-central1' {TARGET_HINT}",
    ),
    ("CANARY_TARGETS", "m@us,bad", f"CANARY_TARGETS: 'bad' {TARGET_HINT}"),
    ("CANARY_TARGETS", "gemini@us-central1 OR x", f"CANARY_TARGETS: 'gemini@us-central1 OR x' {TARGET_HINT}"),
    ("CANARY_TARGETS", ", ,", "CANARY_TARGETS: no targets given; allowed: MODEL@LOCATION[,MODEL@LOCATION...]"),
    ("CANARY_TARGETS", "m@us, m@us", "CANARY_TARGETS: a target is listed twice"),
    (
        "CANARY_TARGETS",
        ",".join(f"m{i}@us" for i in range(MAX_TARGETS + 1)),
        f"CANARY_TARGETS: {MAX_TARGETS + 1} targets; allowed: at most {MAX_TARGETS}",
    ),
    *[
        (
            "CANARY_PROJECT",
            bad,
            f"CANARY_PROJECT: {bad!r} is not a project id (6-30 lower-case letters, digits, hyphens)",
        )
        for bad in ("Demo-proj", "short", "1demo-proj", "demo-proj-", "a" * 31, "demo_proj", "demo-proj\n-x")
    ],
    ("CANARY_DEADLINE_SECONDS", "abc", "CANARY_DEADLINE_SECONDS: 'abc' is not a number; allowed: 5 to 540"),
    ("CANARY_DEADLINE_SECONDS", "4.9", "CANARY_DEADLINE_SECONDS: 4.9 is out of range; allowed: 5 to 540"),
    ("CANARY_DEADLINE_SECONDS", "541", "CANARY_DEADLINE_SECONDS: 541 is out of range; allowed: 5 to 540"),
    ("CANARY_DEADLINE_SECONDS", "nan", "CANARY_DEADLINE_SECONDS: nan is out of range; allowed: 5 to 540"),
    ("CANARY_DEADLINE_SECONDS", "inf", "CANARY_DEADLINE_SECONDS: inf is out of range; allowed: 5 to 540"),
    ("CANARY_CONCURRENCY", "0", "CANARY_CONCURRENCY: 0 is out of range; allowed: 1 to 16"),
    ("CANARY_CONCURRENCY", "17", "CANARY_CONCURRENCY: 17 is out of range; allowed: 1 to 16"),
    ("CANARY_CONCURRENCY", "2.5", "CANARY_CONCURRENCY: '2.5' is not a whole number; allowed: 1 to 16"),
    ("CANARY_CONCURRENCY", "four", "CANARY_CONCURRENCY: 'four' is not a whole number; allowed: 1 to 16"),
    (
        "CANARY_AUDIT_LOOKBACK_SECONDS",
        "59",
        "CANARY_AUDIT_LOOKBACK_SECONDS: 59 is out of range; allowed: 60 to 2592000",
    ),
    (
        "CANARY_AUDIT_LOOKBACK_SECONDS",
        "2592001",
        "CANARY_AUDIT_LOOKBACK_SECONDS: 2592001 is out of range; allowed: 60 to 2592000",
    ),
    (
        "CANARY_AUDIT_LOOKBACK_SECONDS",
        "1h",
        "CANARY_AUDIT_LOOKBACK_SECONDS: '1h' is not a number; allowed: 60 to 2592000",
    ),
    ("CANARY_AUDIT_LAG_BUDGET_SECONDS", "-1", "CANARY_AUDIT_LAG_BUDGET_SECONDS: -1 is out of range; allowed: 0 to 300"),
    (
        "CANARY_AUDIT_LAG_BUDGET_SECONDS",
        "301",
        "CANARY_AUDIT_LAG_BUDGET_SECONDS: 301 is out of range; allowed: 0 to 300",
    ),
    (
        "CANARY_AUDIT_LAG_BUDGET_SECONDS",
        "30",
        "CANARY_AUDIT_LAG_BUDGET_SECONDS: 30 must be less than CANARY_DEADLINE_SECONDS (30)",
    ),
    *[
        (
            "CANARY_METRIC_PREFIX",
            bad,
            f"CANARY_METRIC_PREFIX: {bad!r}; allowed: custom.googleapis.com/NAME or workload.googleapis.com/NAME "
            "(lower-case letters, digits, '_', '/' separated)",
        )
        for bad in (
            "custom.googleapis.com",
            "custom.googleapis.com/",
            "custom.googleapis.com/Gemini",
            "custom.googleapis.com/a//b",
            "example.com/gemini",
            "customXgoogleapisXcom/a",
        )
    ],
    ("CANARY_EVIDENCE", "iam,bogus", f"CANARY_EVIDENCE: unknown step 'bogus'; allowed: all, none, or {STEPS}"),
    ("CANARY_EVIDENCE", "all,iam", f"CANARY_EVIDENCE: unknown step 'all'; allowed: all, none, or {STEPS}"),
    ("CANARY_EVIDENCE", "none,iam", f"CANARY_EVIDENCE: unknown step 'none'; allowed: all, none, or {STEPS}"),
    *[
        (name, bad, f"{name}: {bad!r} {LABEL_HINT}")
        for name in ("CANARY_JOB", "CANARY_NAMESPACE")
        for bad in ("My-Job", "my job", "-job", "j" * 64, "job.name", "job\nx")
    ],
    *[
        (
            "CANARY_EMULATOR_GRPC",
            bad,
            f"CANARY_EMULATOR_GRPC: {bad!r}; allowed: a loopback host:port such as 127.0.0.1:8085",
        )
        for bad in ("10.0.0.1:8085", "127.0.0.1", "example.com:443", "http://127.0.0.1:8085", "localhost:8085\nx")
    ],
]


@pytest.mark.parametrize(("name", "value", "message"), INVALID, ids=[f"{v[0]}={v[1][:40]!r}" for v in INVALID])
def test_invalid(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load({name: value})
    assert str(caught.value) == message
    assert str(caught.value).startswith(f"{name}: ")


@pytest.mark.parametrize(
    ("name", "hint"),
    [("CANARY_TARGET", "did you mean CANARY_TARGETS? "), ("CANARY_DEBUG", ""), ("CANARY_", "")],
)
def test_unknown_canary_variable_is_refused(name: str, hint: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load({name: "x"})
    assert str(caught.value) == f"{name}: not a setting of the canary; {hint}known: {', '.join(sorted(VARIABLES))}"


def test_other_variables_are_ignored() -> None:
    assert load({"PATH": "/bin", "canary_targets": "nonsense", "GOOGLE_CLOUD_PROJECT": "x"}) == Config()


def test_lag_budget_must_be_below_the_deadline() -> None:
    ok = load({"CANARY_DEADLINE_SECONDS": "10", "CANARY_AUDIT_LAG_BUDGET_SECONDS": "9.5"})
    assert (ok.deadline_s, ok.audit_lag_budget_s) == (10.0, 9.5)
    # The default budget leaves the run at least 10 s: 20 for a 30 s deadline, 5 for 15, none for 10.
    assert [load({"CANARY_DEADLINE_SECONDS": d}).audit_lag_budget_s for d in ("30", "15", "10", "5")] == [20, 5, 0, 0]
    with pytest.raises(ConfigError) as caught:
        load({"CANARY_DEADLINE_SECONDS": "10", "CANARY_AUDIT_LAG_BUDGET_SECONDS": "20"})
    assert str(caught.value) == "CANARY_AUDIT_LAG_BUDGET_SECONDS: 20 must be less than CANARY_DEADLINE_SECONDS (10)"


def test_exactly_the_most_targets_allowed() -> None:
    config = load({"CANARY_TARGETS": ",".join(f"m{i}@us" for i in range(MAX_TARGETS))})
    assert len(config.targets) == MAX_TARGETS


@pytest.mark.parametrize("name", sorted(NUMBERS))
def test_numeric_bounds_are_the_ones_the_table_states(name: str) -> None:
    low, high, whole = NUMBERS[name]
    assert VARIABLES[name][1].endswith(f"{low}-{high}")
    room = {  # the lag budget must stay below the deadline, whichever edge is tried
        "CANARY_DEADLINE_SECONDS": {"CANARY_AUDIT_LAG_BUDGET_SECONDS": "0"},
        "CANARY_AUDIT_LAG_BUDGET_SECONDS": {"CANARY_DEADLINE_SECONDS": "540"},
    }.get(name, {})
    for edge in (low, high):
        load({name: edge, **room})
    step = 1 if whole else 0.5
    for outside in (float(low) - step, float(high) + step):
        with pytest.raises(ConfigError, match=f"^{name}: .* is out of range; allowed: {low} to {high}$"):
            load({name: str(int(outside)) if whole else str(outside), **room})


# The README table can't drift: VARIABLES is every variable load reads, no more --------------------------------


class Recording(Mapping[str, str]):
    """An environment that notes every key the code looks up."""

    def __init__(self, values: dict[str, str]) -> None:
        self.data = values
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return self.data[key]

    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        self.read.add(key)
        return self.data.get(key, default)

    def __contains__(self, key: object) -> bool:
        self.read.add(str(key))
        return key in self.data

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


def test_variables_names_every_variable_load_reads() -> None:
    env = Recording({})
    load(env)
    assert {k for k in env.read if k.startswith("CANARY_")} == set(VARIABLES)
    assert env.read - set(VARIABLES) == {"K_SERVICE"}


def test_every_canary_literal_in_the_source_is_in_variables() -> None:
    literals = {
        name
        for path in sorted(FUNCTION.glob("*.py"))
        for name in re.findall(r"""["'](CANARY_[A-Z0-9_]+)""", path.read_text(encoding="utf-8"))
    }
    assert literals == set(VARIABLES)


def test_variables_defaults_are_the_defaults() -> None:
    config = Config()
    assert VARIABLES["CANARY_TARGETS"][0] == DEFAULT_TARGETS == ",".join(str(t) for t in config.targets)
    assert float(VARIABLES["CANARY_DEADLINE_SECONDS"][0]) == config.deadline_s
    assert int(VARIABLES["CANARY_CONCURRENCY"][0]) == config.concurrency
    assert float(VARIABLES["CANARY_AUDIT_LOOKBACK_SECONDS"][0]) == config.audit_lookback_s
    assert float(VARIABLES["CANARY_AUDIT_LAG_BUDGET_SECONDS"][0].split()[0]) == config.audit_lag_budget_s
    assert VARIABLES["CANARY_METRIC_PREFIX"][0] == config.metric_prefix
    assert VARIABLES["CANARY_NAMESPACE"][0] == config.namespace
    assert VARIABLES["CANARY_EVIDENCE"][0] == "all"
    assert config.evidence == frozenset(EVIDENCE_STEPS)


# Config.public(): what ?debug=true shows -------------------------------------------------------------------

PUBLIC_KEY_OF_FIELD = {
    "targets": "targets",
    "project": "project",
    "deadline_s": "deadline_seconds",
    "concurrency": "concurrency",
    "audit_lookback_s": "audit_lookback_seconds",
    "audit_lag_budget_s": "audit_lag_budget_seconds",
    "metric_prefix": "metric_prefix",
    "evidence": "evidence",
    "job": "job",
    "namespace": "namespace",
    "emulator": "endpoint",
}


def test_public_shows_every_field() -> None:
    assert {f.name for f in dataclasses.fields(Config)} == set(PUBLIC_KEY_OF_FIELD)
    config = load(
        {
            "CANARY_TARGETS": "gemini-2.5-pro@global,gemini-2.5-flash@us-central1",
            "CANARY_PROJECT": "demo-proj",
            "CANARY_DEADLINE_SECONDS": "45",
            "CANARY_CONCURRENCY": "2",
            "CANARY_AUDIT_LOOKBACK_SECONDS": "600",
            "CANARY_AUDIT_LAG_BUDGET_SECONDS": "10",
            "CANARY_METRIC_PREFIX": "workload.googleapis.com/canary",
            "CANARY_EVIDENCE": "iam,data_access",
            "CANARY_JOB": "job-1",
            "CANARY_NAMESPACE": "ns-1",
            "CANARY_EMULATOR_GRPC": "127.0.0.1:8085",
        }
    )
    public = config.public()
    assert public == {
        "targets": ["gemini-2.5-pro@global", "gemini-2.5-flash@us-central1"],
        "project": "demo-proj",
        "deadline_seconds": 45.0,
        "concurrency": 2,
        "audit_lookback_seconds": 600.0,
        "audit_lag_budget_seconds": 10.0,
        "metric_prefix": "workload.googleapis.com/canary",
        "evidence": ["data_access", "iam"],
        "job": "job-1",
        "namespace": "ns-1",
        "endpoint": "emulator at 127.0.0.1:8085",
    }
    assert set(public) == set(PUBLIC_KEY_OF_FIELD.values())
    assert json.loads(json.dumps(public)) == public


def test_public_defaults_say_where_values_come_from() -> None:
    public = Config().public()
    assert (public["project"], public["endpoint"]) == ("(from Application Default Credentials)", "Google (TLS)")


def test_public_holds_nothing_from_the_environment_but_the_settings() -> None:
    secret = "ya29.super-secret-token"
    env = {"GOOGLE_OAUTH_ACCESS_TOKEN": secret, "API_KEY": secret, "K_SERVICE": "svc"}
    assert secret not in json.dumps(load(env).public())
