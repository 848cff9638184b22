"""Alert policy evaluation: Cloud Monitoring evaluates the stored policies on the emulator's clock, opens an incident
per condition and time-series group when the condition is met, and closes it when it no longer is
(docs/google-behaviour.md, "Alert policy evaluation and notifications").

- Cadence: every policy is evaluated once a minute, on whole minutes of the emulator's clock. After the clock jumps,
  each minute in between is evaluated in order (`tick` keeps the minute it evaluated up to, per project).
- Metrics scope: a policy reads the series of every project in its scoping project's metrics scope (the scoping
  project and each project added to it, metricsscopes.py); grouping by `resource.label.project_id` keeps one group,
  so one incident, per project.
- Threshold conditions: the condition's filter (the ListTimeSeries filter language) and aggregations (applied in
  order over a window of each aggregation's alignment period ending at the evaluated minute, so the window slides),
  `comparison` against `thresholdValue`; a group is met once it has violated without a break for `duration`;
  `trigger` count (default 1) or percent of the groups with data; `evaluationMissingData` when a group has no data.
- Absence conditions: a group (after aggregation) that had data and then none for `duration` is met; it closes when
  data arrives.
- Log-match conditions: each log entry of the scoping project (only its own: alert.proto, LogMatch, leaves the logs
  of the other projects in the metrics scope out) that becomes visible (after Logging's ingestion lag)
  and matches the Logging filter opens an incident for its label extractors' values, unless one is open for them;
  at most one notification per `notificationRateLimit.period` for the policy; such incidents close only by
  `autoClose`, and only the opening is notified (alert.proto: log-based prompts are always [OPENED]).
- Combiners: OR (each condition on its own), AND (every condition met at the same minute, on any resources) and
  AND_WITH_MATCHING_RESOURCE (every condition met on one same monitored resource).
- `enabled: false` policies are not evaluated; `alertStrategy.autoClose` (default 7 days) closes an incident whose
  group had no data that long; `notificationPrompts` chooses whether opening and closing are notified.

Assumption: a metric point counts from its end time, at evaluations run after it was written (no further ingestion
delay); a point written for a minute already evaluated is seen only by later windows.
Assumption: after a clock jump of more than 25 hours only the last 25 hours of minutes are evaluated (points cannot be
written further back than that).
Assumption: with evaluationMissingData unset (NO_OP) a group that stops reporting keeps an open incident open until
autoClose passes after its last data, but a minute without data ends a violation streak (a `duration` is never
met across a gap); INACTIVE closes the incident at the first minute without data; ACTIVE counts that minute as
violating.
Assumption: a disabled policy keeps its open incidents as they are; deleting a policy closes its incidents without a
notification.
Assumption: a log-match entry matching while an incident is open for the same extracted labels keeps that incident
open (its autoClose counts from the newest match) and opens nothing new; entries are matched in the order they
become visible, at the first minute at or after that.
Assumption: absence incidents close only when data returns (autoClose does not close them).
Assumption: without aggregations a threshold condition compares each series' newest point in the last minute.
"""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from google.cloud.monitoring_v3 import types as mt

from emulator.core.world import LogRecord, Project, World
from emulator.services.logging.filter import FilterError, compile_filter
from emulator.services.monitoring import aggregation as agg
from emulator.services.monitoring.filter import MonFilterError, SeriesView, compile_monitoring_filter
from emulator.services.monitoring.store import MonitoringStore, scope_projects

MINUTE = timedelta(minutes=1)
CATCH_UP = timedelta(hours=25)
# alert.proto, AlertStrategy.auto_close: "If an alerting policy that was active has no data for this long, any open
# incidents will close"; unset, Cloud Monitoring's default is 7 days (concepts-indepth, "auto-close").
DEFAULT_AUTO_CLOSE = timedelta(days=7)

GroupKey = tuple[tuple[str, ...], ...]


@dataclass
class Group:
    """One time-series group (or one set of extracted log labels) a condition is evaluated on."""

    metric_type: str = ""
    metric_labels: dict[str, str] = field(default_factory=dict)
    resource_type: str = ""
    resource_labels: dict[str, str] = field(default_factory=dict)
    log_labels: dict[str, str] = field(default_factory=dict)

    def key(self) -> GroupKey:
        return (
            (self.metric_type,),
            tuple(f"{k}={v}" for k, v in sorted(self.metric_labels.items())),
            (self.resource_type,),
            tuple(f"{k}={v}" for k, v in sorted(self.resource_labels.items())),
            tuple(f"{k}={v}" for k, v in sorted(self.log_labels.items())),
        )

    def resource_key(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        return self.resource_type, tuple(sorted(self.resource_labels.items()))

    def project(self, scoping: str) -> str:
        """The project the group's data came from: its resource's `project_id` label when the grouping kept it
        (in a metrics scope each series carries the project it is stored in), else the scoping project."""
        return self.resource_labels.get("project_id") or scoping

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        if self.metric_type:
            doc["metric"] = {"type": self.metric_type, "labels": dict(self.metric_labels)}
        if self.resource_type:
            doc["resource"] = {"type": self.resource_type, "labels": dict(self.resource_labels)}
        if self.log_labels:
            doc["log_labels"] = dict(self.log_labels)
        return doc


@dataclass
class Incident:
    incident_id: str
    project: str
    project_number: str
    policy: str  # the policy's resource name
    condition: str  # the condition's resource name
    group: Group
    opened_at: datetime
    closed_at: datetime | None = None
    observed_value: float | None = None
    threshold_value: float | None = None
    last_data: datetime | None = None
    close_reason: str = ""
    suppressed: int = 0  # notifications the log-match rate limit held back

    @property
    def state(self) -> str:
        return "OPEN" if self.closed_at is None else "CLOSED"

    def to_json(self) -> dict[str, Any]:
        return {
            "incident_id": self.incident_id,
            "project": self.project,
            "resource_project": self.group.project(self.project),
            "policy": self.policy,
            "condition": self.condition,
            "group": self.group.to_json(),
            "state": self.state,
            "opened_at": _rfc3339(self.opened_at),
            "closed_at": _rfc3339(self.closed_at) if self.closed_at else None,
            "close_reason": self.close_reason or None,
            "observed_value": self.observed_value,
            "threshold_value": self.threshold_value,
            "notifications_rate_limited": self.suppressed,
        }


@dataclass
class Pending:
    """A notification to send once the world's lock is released: the incident as it was, the policy as it was."""

    incident: Incident
    policy: mt.AlertPolicy
    event: str  # OPEN | CLOSED
    at: datetime


@dataclass
class _ConditionState:
    since: dict[GroupKey, datetime] = field(default_factory=dict)  # violating without a break since
    met: dict[GroupKey, Group] = field(default_factory=dict)  # groups meeting the condition at the last minute
    values: dict[GroupKey, float] = field(default_factory=dict)
    last_data: dict[GroupKey, datetime] = field(default_factory=dict)
    seen: dict[GroupKey, Group] = field(default_factory=dict)


@dataclass
class AlertingStore:
    """Alerting in one project: the minute evaluated up to, each condition's state, incidents, deliveries."""

    evaluated_to: datetime | None = None
    conditions: dict[tuple[str, str], _ConditionState] = field(default_factory=dict)
    incidents: list[Incident] = field(default_factory=list)
    open: dict[tuple[str, str, GroupKey], Incident] = field(default_factory=dict)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    log_cursor: int = 0  # index in world.logs below which every record was matched
    log_done: set[int] = field(default_factory=set)  # records above the cursor already matched
    last_log_notice: dict[str, datetime] = field(default_factory=dict)  # by policy name


def _rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _seconds(value: Any) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else 0.0


def _minute_floor(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def _new_incident_id() -> str:
    # Incident ids in Google's notifications look like "0.mtdi83m6w8ao" (public webhook samples).
    alphabet = string.ascii_lowercase + string.digits
    return "0." + "".join(secrets.choice(alphabet) for _ in range(12))


def _which(condition: mt.AlertPolicy.Condition) -> str:
    return mt.AlertPolicy.Condition.pb(condition).WhichOneof("condition") or ""


def is_log_policy(policy: mt.AlertPolicy) -> bool:
    return any(_which(c) == "condition_matched_log" for c in policy.conditions)


def _enabled(policy: mt.AlertPolicy) -> bool:
    raw = mt.AlertPolicy.pb(policy)
    return not raw.HasField("enabled") or raw.enabled.value


def _auto_close(policy: mt.AlertPolicy) -> timedelta:
    raw = mt.AlertPolicy.pb(policy)
    if raw.alert_strategy.HasField("auto_close"):
        return raw.alert_strategy.auto_close.ToTimedelta()
    return DEFAULT_AUTO_CLOSE


def prompts(policy: mt.AlertPolicy) -> set[str]:
    """OPENED / CLOSED: alert.proto, AlertStrategy.notification_prompts (log-based policies: always [OPENED])."""
    if is_log_policy(policy):
        return {"OPENED"}
    chosen = {
        mt.AlertPolicy.AlertStrategy.NotificationPrompt(p).name for p in policy.alert_strategy.notification_prompts
    }
    return chosen or {"OPENED", "CLOSED"}


# Metric data -------------------------------------------------------------------------------------------------


def _aggregations(body: Any) -> list[agg.Aggregation]:
    return [
        agg.Aggregation(
            _seconds(a.alignment_period),
            mt.Aggregation.Aligner(a.per_series_aligner).name,
            mt.Aggregation.Reducer(a.cross_series_reducer).name,
            tuple(a.group_by_fields),
        )
        for a in body.aggregations
    ]


def _series_groups(scope: list[Project], body: Any, start: datetime, end: datetime) -> list[tuple[Group, float]]:
    """The condition's groups with data in the window ending at `end` (each aggregation's alignment period, or
    (start, end] when that is longer: an absence condition's duration), each with its newest value. The series are
    those of every project in the scoping project's metrics scope (`scope`, the scoping project first)."""

    try:
        matches = compile_monitoring_filter(body.filter)
    except MonFilterError:
        return []
    series = [
        s
        for member in scope
        for s in member.store(MonitoringStore).time_series.values()
        if matches(SeriesView(s.metric_type, s.metric_labels, s.resource_type, s.resource_labels, member.project_id))
    ]
    specs = _aggregations(body)
    try:
        if not specs:
            series = agg.aggregate(series, end - MINUTE, end, agg.Aggregation())
        for spec in specs:
            window = max(timedelta(seconds=spec.alignment_period_s), end - start)
            series = agg.aggregate(series, end - window, end, spec)
    except agg.AggregationError:
        return []
    out = []
    for s in series:
        if not s.points:
            continue
        newest = max(s.points, key=lambda p: p.end)
        group = Group(s.metric_type, dict(s.metric_labels), s.resource_type, dict(s.resource_labels))
        out.append((group, float(newest.value)))
    return out


def _violates(value: float, comparison: str, threshold: float) -> bool:
    # google/monitoring/v3/common.proto, ComparisonType.
    return {
        "COMPARISON_GT": value > threshold,
        "COMPARISON_GE": value >= threshold,
        "COMPARISON_LT": value < threshold,
        "COMPARISON_LE": value <= threshold,
        "COMPARISON_EQ": value == threshold,
        "COMPARISON_NE": value != threshold,
    }.get(comparison, False)


def _triggered(met: int, total: int, trigger: Any) -> bool:
    raw = mt.AlertPolicy.Condition.Trigger.pb(trigger)
    if raw.WhichOneof("type") == "percent":
        return total > 0 and met * 100.0 >= raw.percent * total and met > 0
    return met >= (raw.count or 1)


def _threshold(scope: list[Project], state: _ConditionState, body: Any, now: datetime) -> dict[GroupKey, Group]:
    duration = timedelta(seconds=_seconds(body.duration))
    comparison = mt.ComparisonType(body.comparison).name
    missing = mt.AlertPolicy.Condition.EvaluationMissingData(body.evaluation_missing_data).name
    present = {g.key(): (g, v) for g, v in _series_groups(scope, body, now - MINUTE, now)}
    for key, (group, value) in present.items():
        state.seen[key] = group
        state.last_data[key] = now
        state.values[key] = value
        if _violates(value, comparison, body.threshold_value):
            state.since.setdefault(key, now)
        else:
            state.since.pop(key, None)
    for key in list(state.seen):
        if key in present:
            continue
        if missing == "EVALUATION_MISSING_DATA_ACTIVE":
            state.since.setdefault(key, now)
        else:  # INACTIVE, or NO_OP / unspecified: no violation without data, so a streak does not span a gap
            state.since.pop(key, None)
    met = {key: state.seen[key] for key, since in state.since.items() if now - since >= duration}
    return met if _triggered(len(met), len(present) or len(state.seen), body.trigger) else {}


def _absence(scope: list[Project], state: _ConditionState, body: Any, now: datetime) -> dict[GroupKey, Group]:
    duration = timedelta(seconds=_seconds(body.duration))
    present = {g.key(): g for g, _ in _series_groups(scope, body, now - duration, now)}
    for key, group in present.items():
        state.seen[key] = group
        state.last_data[key] = now
    # A group that reported once and has had no data for the whole duration.
    met = {key: group for key, group in state.seen.items() if key not in present}
    return met if _triggered(len(met), len(state.seen), body.trigger) else {}


# Log entries --------------------------------------------------------------------------------------------------

_EXTRACTOR = re.compile(r'^\s*(EXTRACT|REGEXP_EXTRACT)\(\s*([^,()\s]+)\s*(?:,\s*"((?:[^"\\]|\\.)*)"\s*)?\)\s*$')


def extract(expression: str, entry: Mapping[str, Any]) -> str:
    """A label extractor's value (LogMetric.label_extractors syntax: EXTRACT(field) or REGEXP_EXTRACT(field, "re")
    with one capture group); "" when the field is absent or the expression does not match."""
    found = _EXTRACTOR.match(expression)
    if found is None:
        return ""
    kind, path, pattern = found.groups()
    value: Any = entry
    for part in _path(path):
        if not isinstance(value, Mapping) or part not in value:
            return ""
        value = value[part]
    text = value if isinstance(value, str) else ("" if isinstance(value, (dict, list)) else _scalar(value))
    if kind == "EXTRACT":
        return text
    try:
        hit = re.search(bytes(pattern or "", "utf-8").decode("unicode_escape"), text)
    except re.error:
        return ""
    return (hit.group(1) if hit.groups() else hit.group(0)) or "" if hit else ""


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _path(text: str) -> list[str]:
    parts = re.findall(r'"([^"]*)"|([^.]+)', text)
    return [quoted or bare for quoted, bare in parts]


def _new_log_entries(world: World, store: AlertingStore, project: Project, now: datetime) -> list[dict[str, Any]]:
    """Entries of the project's logs visible at `now` that were not matched yet, in the order they became visible."""
    prefix = f"projects/{project.project_id}/logs/"
    fresh: list[tuple[datetime, int, LogRecord]] = []
    for index in range(store.log_cursor, len(world.logs)):
        record = world.logs[index]
        if index in store.log_done or record.visible_at > now:
            continue
        fresh.append((record.visible_at, index, record))
    for _, index, _ in fresh:
        store.log_done.add(index)
    while store.log_cursor in store.log_done:
        store.log_done.discard(store.log_cursor)
        store.log_cursor += 1
    fresh.sort(key=lambda item: (item[0], item[1]))
    return [r.entry for _, _, r in fresh if str(r.entry.get("logName", "")).startswith(prefix)]


def _log_match(body: Any, entries: Iterable[dict[str, Any]]) -> list[Group]:
    try:
        matches = compile_filter(body.filter)
    except FilterError:
        return []
    groups = []
    for entry in entries:
        if matches(entry):
            labels = {k: extract(v, entry) for k, v in sorted(body.label_extractors.items())}
            resource = entry.get("resource") or {}
            groups.append(Group("", {}, str(resource.get("type", "")), dict(resource.get("labels") or {}), labels))
    return groups


# Evaluation --------------------------------------------------------------------------------------------------


def _open(
    store: AlertingStore,
    project: Project,
    policy: mt.AlertPolicy,
    condition: mt.AlertPolicy.Condition,
    group: Group,
    now: datetime,
    value: float | None,
    threshold: float | None,
) -> Incident:
    incident = Incident(
        _new_incident_id(),
        project.project_id,
        project.number,
        policy.name,
        condition.name,
        group,
        now,
        observed_value=value,
        threshold_value=threshold,
        last_data=now,
    )
    store.incidents.append(incident)
    store.open[(policy.name, condition.name, group.key())] = incident
    return incident


def _close(store: AlertingStore, incident: Incident, now: datetime, reason: str) -> None:
    incident.closed_at = now
    incident.close_reason = reason
    store.open.pop(
        next((k for k, v in store.open.items() if v is incident), ("", "", ())),
        None,
    )


def evaluate_policy(world: World, project: Project, policy: mt.AlertPolicy, now: datetime) -> list[Pending]:
    store = project.store(AlertingStore)
    out: list[Pending] = []
    wanted = prompts(policy)
    entries: list[dict[str, Any]] | None = None
    met_by_condition: list[tuple[mt.AlertPolicy.Condition, dict[GroupKey, Group], _ConditionState]] = []
    scope = scope_projects(world, project)
    for condition in policy.conditions:
        state = store.conditions.setdefault((policy.name, condition.name), _ConditionState())
        which = _which(condition)
        if which == "condition_threshold":
            met = _threshold(scope, state, condition.condition_threshold, now)
        elif which == "condition_absent":
            met = _absence(scope, state, condition.condition_absent, now)
        elif which == "condition_matched_log":
            if entries is None:
                entries = store_entries(world, project, now)
            met = {g.key(): g for g in _log_match(condition.condition_matched_log, entries)}
            for key in met:
                state.last_data[key] = now
        else:
            met = {}
        met_by_condition.append((condition, met, state))
    combiner = mt.AlertPolicy.ConditionCombinerType(policy.combiner).name
    if len(met_by_condition) > 1 and combiner in ("AND", "AND_WITH_MATCHING_RESOURCE"):
        if not all(met for _, met, _ in met_by_condition):
            met_by_condition = [(c, {}, s) for c, _, s in met_by_condition]
        elif combiner == "AND_WITH_MATCHING_RESOURCE":
            shared = set.intersection(*({g.resource_key() for g in met.values()} for _, met, _ in met_by_condition))
            met_by_condition = [
                (c, {k: g for k, g in met.items() if g.resource_key() in shared}, s) for c, met, s in met_by_condition
            ]
    auto_close = _auto_close(policy)
    for condition, met, state in met_by_condition:
        log = _which(condition) == "condition_matched_log"
        threshold = (
            condition.condition_threshold.threshold_value if _which(condition) == "condition_threshold" else None
        )
        for key, group in met.items():
            incident = store.open.get((policy.name, condition.name, key))
            if incident is not None:
                incident.last_data = state.last_data.get(key, incident.last_data)
                incident.observed_value = state.values.get(key, incident.observed_value)
                continue
            incident = _open(store, project, policy, condition, group, now, state.values.get(key), threshold)
            if "OPENED" not in wanted:
                continue
            if log:
                period = mt.AlertPolicy.pb(policy).alert_strategy.notification_rate_limit.period.ToTimedelta()
                last = store.last_log_notice.get(policy.name)
                if last is not None and now - last < period:
                    incident.suppressed += 1
                    continue
                store.last_log_notice[policy.name] = now
            out.append(Pending(_snapshot(incident), policy, "OPEN", now))
        for (pname, cname, key), incident in list(store.open.items()):
            if pname != policy.name or cname != condition.name:
                continue
            reason = _close_reason(condition, state, key, key in met, incident, now, auto_close)
            if reason:
                _close(store, incident, now, reason)
                if reason == "auto_close":
                    state.since.pop(key, None)
                    state.seen.pop(key, None)
                if "CLOSED" in wanted:
                    out.append(Pending(_snapshot(incident), policy, "CLOSED", now))
    return out


def _close_reason(
    condition: mt.AlertPolicy.Condition,
    state: _ConditionState,
    key: GroupKey,
    met: bool,
    incident: Incident,
    now: datetime,
    auto_close: timedelta,
) -> str:
    """Why an open incident closes at this minute ("" when it stays open)."""
    which = _which(condition)
    if which == "condition_absent":
        return "" if met else "condition_not_met"
    last = incident.last_data or incident.opened_at
    if now - last >= auto_close:
        return "auto_close"
    if which == "condition_matched_log" or met:
        return ""
    missing = mt.AlertPolicy.Condition.EvaluationMissingData(condition.condition_threshold.evaluation_missing_data).name
    if state.last_data.get(key) == now or missing == "EVALUATION_MISSING_DATA_INACTIVE":
        return "condition_not_met"
    return ""  # no data and NO_OP: the incident keeps its state until autoClose


def store_entries(world: World, project: Project, now: datetime) -> list[dict[str, Any]]:
    return _new_log_entries(world, project.store(AlertingStore), project, now)


def _snapshot(incident: Incident) -> Incident:
    return Incident(**{f: getattr(incident, f) for f in incident.__dataclass_fields__})


def evaluate_project(world: World, project: Project, now: datetime) -> list[Pending]:
    """Evaluate every minute from the last one evaluated up to `now`, in order; what to notify."""

    store = project.store(AlertingStore)
    target = _minute_floor(now)
    start = store.evaluated_to + MINUTE if store.evaluated_to is not None else target
    start = max(start, target - CATCH_UP)
    out: list[Pending] = []
    minute = start
    while minute <= target:
        policies = list(project.store(MonitoringStore).alert_policies.values())
        names = {p.name for p in policies}
        for incident in list(store.open.values()):
            if incident.policy not in names:
                _close(store, incident, minute, "policy_deleted")
        has_log = any(is_log_policy(p) and _enabled(p) for p in policies)
        for policy in policies:
            if _enabled(policy):
                out.extend(evaluate_policy(world, project, policy, minute))
        if not has_log:
            store_entries(world, project, minute)  # nothing waits for them
        minute += MINUTE
    store.evaluated_to = target
    return out
