"""Config: every setting the canary takes, from environment variables, validated once at cold start.

Each variable has a default; a bad value raises ConfigError naming the variable and what it allows, so the
instance fails to start instead of failing at the first scheduled run. The README's config table mirrors VARIABLES.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_TARGETS = "gemini-2.5-flash-lite@us-central1"
EVIDENCE_STEPS = ("iam", "audit_config", "data_access", "policy_denied", "admin_activity")
MAX_TARGETS = 20

# \Z, not $: "$" also matches before a trailing newline, which would let "gemini\n@us" through
_MODEL = re.compile(r"^[a-z0-9][a-z0-9.\-]{0,62}\Z")
_LOCATION = re.compile(r"^(global|us|eu|[a-z]+-[a-z]+[0-9]{1,2})\Z")
PROJECT_ID = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]\Z")
_PREFIX = re.compile(r"^(custom|workload)\.googleapis\.com(/[a-z0-9_]+)+\Z")
_LABEL_VALUE = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,62}\Z")
_HOSTPORT = re.compile(r"^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost|\[::1\]):\d{1,5}\Z")


class ConfigError(ValueError):
    """A setting the canary cannot run with; the message names the variable and the allowed values."""


@dataclass(frozen=True, order=True)
class Target:
    model: str
    location: str

    def __str__(self) -> str:
        return f"{self.model}@{self.location}"

    def resource(self, project: str) -> str:
        return f"projects/{project}/locations/{self.location}/publishers/google/models/{self.model}"

    @classmethod
    def parse(cls, text: str, variable: str = "CANARY_TARGETS") -> Target:
        model, sep, location = text.strip().partition("@")
        if not sep or not _MODEL.match(model) or not _LOCATION.match(location):
            raise ConfigError(
                f"{variable}: {text.strip()!r} is not MODEL@LOCATION (for example gemini-2.5-flash@us-central1 or "
                "gemini-2.5-pro@global; model ids are lower-case letters, digits, '.' and '-')"
            )
        return cls(model, location)


@dataclass(frozen=True)
class Config:
    targets: tuple[Target, ...] = (Target.parse(DEFAULT_TARGETS),)
    project: str | None = None  # None: the runtime's project, from Application Default Credentials
    deadline_s: float = 30.0
    concurrency: int = 4
    audit_lookback_s: float = 3600.0
    audit_lag_budget_s: float = 20.0
    metric_prefix: str = "custom.googleapis.com/gemini_canary"
    evidence: frozenset[str] = field(default_factory=lambda: frozenset(EVIDENCE_STEPS))
    job: str = "gemini-canary"
    namespace: str = "gemini-canary"
    emulator: str | None = None  # host:port of the local emulator's gRPC port; None in production

    def public(self) -> dict[str, Any]:
        """The effective config as ?debug=true shows it (nothing here is secret, but keep it explicit)."""
        return {
            "targets": [str(t) for t in self.targets],
            "project": self.project or "(from Application Default Credentials)",
            "deadline_seconds": self.deadline_s,
            "concurrency": self.concurrency,
            "audit_lookback_seconds": self.audit_lookback_s,
            "audit_lag_budget_seconds": self.audit_lag_budget_s,
            "metric_prefix": self.metric_prefix,
            "evidence": sorted(self.evidence),
            "job": self.job,
            "namespace": self.namespace,
            "endpoint": f"emulator at {self.emulator}" if self.emulator else "Google (TLS)",
        }


# name → (default, one-line meaning); the README's table is generated from the same facts.
VARIABLES: dict[str, tuple[str, str]] = {
    "CANARY_TARGETS": (DEFAULT_TARGETS, f"comma-separated MODEL@LOCATION pairs to probe (1 to {MAX_TARGETS})"),
    "CANARY_PROJECT": ("(runtime project)", "project whose Vertex AI is probed; default: the project ADC reports"),
    "CANARY_DEADLINE_SECONDS": (
        "30",
        "deadline for one whole run (its last 20 %, at most 2 s, kept for the metrics write), 5-540",
    ),
    "CANARY_CONCURRENCY": ("4", "targets probed at once, 1-16"),
    "CANARY_AUDIT_LOOKBACK_SECONDS": ("3600", "how far back audit-log queries look, 60-2592000"),
    "CANARY_AUDIT_LAG_BUDGET_SECONDS": (
        "20 (at most the deadline - 10)",
        "how long a run waits for its own denial to reach the audit log, 0-300",
    ),
    "CANARY_METRIC_PREFIX": (
        "custom.googleapis.com/gemini_canary",
        "metric type prefix (custom. or workload.googleapis.com/...)",
    ),
    "CANARY_EVIDENCE": ("all", f"evidence steps: all, none, or a comma list of {', '.join(EVIDENCE_STEPS)}"),
    "CANARY_JOB": ("$K_SERVICE or gemini-canary", "the generic_task `job` label of the metrics"),
    "CANARY_NAMESPACE": ("gemini-canary", "the generic_task `namespace` label of the metrics"),
    "CANARY_EMULATOR_GRPC": ("(unset)", "host:port of a local emulator; unset in production (Google endpoints, TLS)"),
}


def _num(value: float) -> str:
    """A number as the README writes it: 2592000, not 2.592e+06 (which :g would show, even for 2592001)."""
    return str(int(value)) if float(value).is_integer() else str(value)


def _number(env: Mapping[str, str], name: str, default: float, low: float, high: float, integer: bool = False) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise ConfigError(f"{name}: {raw!r} is not {kind}; allowed: {_num(low)} to {_num(high)}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}: {_num(value)} is out of range; allowed: {_num(low)} to {_num(high)}")
    return value


def _targets(env: Mapping[str, str]) -> tuple[Target, ...]:
    raw = env.get("CANARY_TARGETS", "").strip() or DEFAULT_TARGETS
    parts = [p for p in raw.split(",") if p.strip()]
    if not parts:
        raise ConfigError("CANARY_TARGETS: no targets given; allowed: MODEL@LOCATION[,MODEL@LOCATION...]")
    if len(parts) > MAX_TARGETS:
        raise ConfigError(f"CANARY_TARGETS: {len(parts)} targets; allowed: at most {MAX_TARGETS}")
    targets = tuple(Target.parse(p) for p in parts)
    if len(set(targets)) != len(targets):
        raise ConfigError("CANARY_TARGETS: a target is listed twice")
    return targets


def _evidence(env: Mapping[str, str]) -> frozenset[str]:
    raw = env.get("CANARY_EVIDENCE", "").strip().lower()
    if raw in ("", "all"):
        return frozenset(EVIDENCE_STEPS)
    if raw == "none":
        return frozenset()
    steps = {s.strip() for s in raw.split(",") if s.strip()}
    unknown = sorted(steps - set(EVIDENCE_STEPS))
    if unknown:
        raise ConfigError(
            f"CANARY_EVIDENCE: unknown step {unknown[0]!r}; allowed: all, none, or {', '.join(EVIDENCE_STEPS)}"
        )
    return frozenset(steps)


def _label(env: Mapping[str, str], name: str, default: str, default_from: str | None = None) -> str:
    """`default_from`: the variable the default was read from, named when that value is the bad one."""
    given = env.get(name, "").strip()
    value = given or default
    if not _LABEL_VALUE.match(value):
        shown = (
            f"{name}: {value!r}" if given or default_from is None else f"{default_from}: {value!r} ({name}'s default)"
        )
        raise ConfigError(
            f"{shown} is not a label value; allowed: lower-case letters, digits, '_' and '-', "
            "starting with a letter or digit, at most 63 characters"
        )
    return value


def load(env: Mapping[str, str]) -> Config:
    """The Config for an environment; raises ConfigError for the first bad variable."""
    unknown = sorted(k for k in env if k.startswith("CANARY_") and k not in VARIABLES)
    if unknown:
        # compared without the shared CANARY_ prefix, which would make every name look alike
        tails = {name.removeprefix("CANARY_"): name for name in VARIABLES}
        close = difflib.get_close_matches(unknown[0].removeprefix("CANARY_"), tails, n=1)
        hint = f"did you mean {tails[close[0]]}? " if close else ""
        raise ConfigError(f"{unknown[0]}: not a setting of the canary; {hint}known: {', '.join(sorted(VARIABLES))}")
    project = env.get("CANARY_PROJECT", "").strip() or None
    if project is not None and not PROJECT_ID.match(project):
        raise ConfigError(f"CANARY_PROJECT: {project!r} is not a project id (6-30 lower-case letters, digits, hyphens)")
    prefix = env.get("CANARY_METRIC_PREFIX", "").strip() or Config.metric_prefix
    if not _PREFIX.match(prefix):
        raise ConfigError(
            f"CANARY_METRIC_PREFIX: {prefix!r}; allowed: custom.googleapis.com/NAME or "
            "workload.googleapis.com/NAME (lower-case letters, digits, '_', '/' separated)"
        )
    emulator = env.get("CANARY_EMULATOR_GRPC", "").strip() or None
    if emulator is not None and not _HOSTPORT.match(emulator):
        raise ConfigError(f"CANARY_EMULATOR_GRPC: {emulator!r}; allowed: a loopback host:port such as 127.0.0.1:8085")
    deadline = _number(env, "CANARY_DEADLINE_SECONDS", 30, 5, 540)
    # The default leaves a run at least 10 s for everything else; a value given must still be below the deadline.
    budget = _number(env, "CANARY_AUDIT_LAG_BUDGET_SECONDS", max(0.0, min(20.0, deadline - 10)), 0, 300)
    if budget >= deadline:
        raise ConfigError(
            f"CANARY_AUDIT_LAG_BUDGET_SECONDS: {_num(budget)} must be less than "
            f"CANARY_DEADLINE_SECONDS ({_num(deadline)})"
        )
    return Config(
        targets=_targets(env),
        project=project,
        deadline_s=deadline,
        concurrency=int(_number(env, "CANARY_CONCURRENCY", 4, 1, 16, integer=True)),
        audit_lookback_s=_number(env, "CANARY_AUDIT_LOOKBACK_SECONDS", 3600, 60, 2592000),
        audit_lag_budget_s=budget,
        metric_prefix=prefix,
        evidence=_evidence(env),
        job=_label(env, "CANARY_JOB", env.get("K_SERVICE", "").strip().lower() or "gemini-canary", "K_SERVICE"),
        namespace=_label(env, "CANARY_NAMESPACE", "gemini-canary"),
        emulator=emulator,
    )
