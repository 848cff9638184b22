"""Cloud Monitoring custom metrics: the schema (one definition, used by the deploy tool and its alert policies
too), and the writer that sends one CreateTimeSeries a run for all series.

Resource: `generic_task` with all five labels (project_id, location, namespace, job, task_id); task_id is unique
per instance, so instances never write the same series. Monitoring takes one point per series per 5 s: an instance
serving overlapping runs writes for the first and reports the others as coalesced instead of failing the write.
A write error is reported in the result and the log line, never raised.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from google.api_core import exceptions as core

from .causes import Cause
from .clients import METADATA_TIMEOUT_S, Clients, MetadataError
from .config import Config
from .recorder import Deadline, Recorder

MIN_SPACING_S = 5.0
LABEL_MAX = 1024


@dataclass(frozen=True)
class MetricDef:
    name: str
    value_type: str  # INT64 | DOUBLE
    unit: str
    labels: tuple[str, ...]
    description: str
    kind: str = "GAUGE"

    def type(self, prefix: str) -> str:
        return f"{prefix}/{self.name}"


RUNS = MetricDef(
    "runs",
    "INT64",
    "1",
    ("outcome",),
    "1 for every run of the canary; outcome is healthy, failing or error. Its absence means the canary is silent.",
)
SUCCESS = MetricDef("success", "INT64", "1", ("target",), "1 when the target answered, 0 when the call failed.")
LATENCY = MetricDef("latency", "DOUBLE", "ms", ("target", "cause"), "Time from the call to Gemini's answer or error.")
FAILURES = MetricDef(
    "failures",
    "INT64",
    "1",
    ("target", "cause", "permission", "remedy"),
    "1 for a failing target, labelled with its cause, the denied permission and the first remedy; "
    "0 with cause=ok for a healthy target.",
)
SCHEMA: tuple[MetricDef, ...] = (RUNS, SUCCESS, LATENCY, FAILURES)
RESOURCE_TYPE = "generic_task"
RESOURCE_LABELS = ("project_id", "location", "namespace", "job", "task_id")


@dataclass
class TargetSignal:
    """What the metrics need to know of one target's outcome."""

    target: str
    cause: Cause
    latency_ms: float
    permission: str
    remedy: str


@dataclass
class MetricsReport:
    written: bool = False
    series: int = 0
    skipped: str | None = None
    error: str | None = None
    note: str | None = None  # something about the series written, e.g. a location label the canary could not learn
    time_series: list[dict[str, Any]] = field(default_factory=list)  # for ?debug=true

    def to_json(self, debug: bool = False) -> dict[str, Any]:
        doc: dict[str, Any] = {"written": self.written, "series": self.series}
        if self.skipped:
            doc["skipped"] = self.skipped
        if self.error:
            doc["error"] = self.error
        if self.note:
            doc["note"] = self.note
        if debug:
            doc["time_series"] = self.time_series
        return doc


def _label(value: str) -> str:
    return value if len(value) <= LABEL_MAX else value[: LABEL_MAX - 1] + "…"


def series_for(
    prefix: str, outcome: str, signals: list[TargetSignal], resource: dict[str, str], at: datetime
) -> list[dict[str, Any]]:
    """The run's time series as plain dicts (the TimeSeries JSON shape), one point each."""

    def one(metric: MetricDef, labels: dict[str, str], value: float | int) -> dict[str, Any]:
        typed = {"double_value": float(value)} if metric.value_type == "DOUBLE" else {"int64_value": int(value)}
        return {
            "metric": {"type": metric.type(prefix), "labels": {k: _label(v) for k, v in labels.items()}},
            "resource": {"type": RESOURCE_TYPE, "labels": dict(resource)},
            "points": [{"interval": {"end_time": at}, "value": typed}],
        }

    out = [one(RUNS, {"outcome": outcome}, 1)]
    for s in signals:
        ok = s.cause == Cause.OK
        out.append(one(SUCCESS, {"target": s.target}, 1 if ok else 0))
        out.append(one(LATENCY, {"target": s.target, "cause": str(s.cause)}, s.latency_ms))
        out.append(
            one(
                FAILURES,
                {
                    "target": s.target,
                    "cause": str(s.cause),
                    "permission": s.permission or "none",
                    "remedy": s.remedy or "none",
                },
                0 if ok else 1,
            )
        )
    return out


class MetricsWriter:
    """One per instance; remembers the end time of the points this instance last wrote, to honour the 5-second rule.

    The rule is about the points' end times, so it is checked on them (the clock the points are stamped with), not
    on a second clock: a point stamped less than 5 s after the last one written, or before it (the clock stepped
    back), is not written."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_write: datetime | None = None

    def _claim(self, at: datetime) -> float | None:
        """Reserve this instance's write slot for points ending at `at`; seconds since the last write when it is
        too soon."""
        with self._lock:
            if self._last_write is not None:
                since = (at - self._last_write).total_seconds()
                if since < MIN_SPACING_S:
                    return since
            self._last_write = at
            return None

    def write(
        self,
        config: Config,
        clients: Clients,
        project: str,
        outcome: str,
        signals: list[TargetSignal],
        deadline: Deadline,
        recorder: Recorder,
    ) -> MetricsReport:
        report = MetricsReport()
        try:
            location = clients.region(deadline.timeout(METADATA_TIMEOUT_S))
        except MetadataError as error:
            # Only an answer is kept: the next run asks again rather than labelling every later series global.
            location = "global"
            report.note = (
                f"location label 'global' for this run: the metadata server's {error}; the next run asks again"
            )
        try:
            resource = {
                "project_id": project,
                "location": location,
                "namespace": config.namespace,
                "job": config.job,
                "task_id": clients.task_id,
            }
            at = datetime.now(UTC)
            series = series_for(config.metric_prefix, outcome, signals, resource, at)
        except Exception as error:  # noqa: BLE001 - a failing sink never hides the result
            report.error = f"could not build the time series: {type(error).__name__}: {error}"
            return report
        report.series = len(series)
        report.time_series = [_printable(s) for s in series]
        too_soon = self._claim(at)
        if too_soon is not None:
            report.skipped = (
                f"coalesced: this instance wrote metrics {too_soon:.1f} s ago and Cloud Monitoring accepts "
                f"one point per series every {MIN_SPACING_S:g} s; this run's result is in its log line"
            )
            return report
        for attempt in range(2):  # one retry, only for UNAVAILABLE, only if time allows
            try:
                recorder.call(
                    "monitoring.CreateTimeSeries",
                    lambda: clients.metrics().create_time_series(
                        name=f"projects/{project}",
                        time_series=series,  # type: ignore[arg-type]  # proto-plus takes the dict form
                        timeout=deadline.timeout(10),
                        retry=None,
                    ),
                )
                report.written = True
                return report
            except core.ServiceUnavailable as error:
                report.error = _describe(error)
                if attempt == 0 and deadline.remaining() > 2:
                    time.sleep(0.5)
                    continue
                return report
            except Exception as error:  # noqa: BLE001 - a failing sink never hides the result
                report.error = _describe(error)
                return report
        return report


def _describe(error: BaseException) -> str:
    message = getattr(error, "message", None) or str(error)
    return f"{type(error).__name__}: {message}"[:2000]


def _printable(series: dict[str, Any]) -> dict[str, Any]:
    point = series["points"][0]
    return {
        "metric": series["metric"],
        "resource": series["resource"],
        "value": next(iter(point["value"].values())),
        "end_time": point["interval"]["end_time"].strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }
