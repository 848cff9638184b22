"""The harness: one run from trigger to Result. It owns the deadline, the timing, the evidence budget and the
metrics; a probe only probes.

    trigger → probe every target (bounded concurrency) → classify → evidence (on failure) → remedies
            → one CreateTimeSeries → Result (rendered by report.py as the log line and the HTTP response)
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .causes import Cause, classify, constraint_of
from .clients import METADATA_TIMEOUT_S, Clients, ProjectUnknown
from .config import Config, Target
from .evidence import Evidence, EvidenceShare, gather
from .metrics import MetricsReport, MetricsWriter, TargetSignal
from .probe import Outcome, probe
from .recorder import Deadline, Recorder
from .remedies import Remedy, remedies
from .trigger import Trigger
from .verdict import Verdict


@dataclass
class Result:
    run_id: str
    started_at: datetime
    trigger: Trigger
    config: Config
    project: str | None = None
    principal: str | None = None
    outcomes: list[Outcome] = field(default_factory=list)
    evidence: Evidence = field(default_factory=Evidence)
    remedies: dict[str, list[Remedy]] = field(default_factory=dict)
    metrics: MetricsReport = field(default_factory=MetricsReport)
    calls: list[dict[str, Any]] = field(default_factory=list)
    duration_ms: float = 0.0
    error: str | None = None  # the canary itself failed

    @property
    def verdict(self) -> Verdict:
        """What the log line, the status code and the alerts key on."""
        if self.error is not None:
            return Verdict.ERROR
        failing = [o for o in self.outcomes if not o.ok]
        if not failing:
            return Verdict.HEALTHY
        if any(o.cause.is_denial or o.cause == Cause.UNKNOWN for o in failing):
            return Verdict.DENIED
        return Verdict.DEGRADED

    @property
    def run_outcome(self) -> str:
        """The `outcome` label of the runs metric."""
        return self.verdict.run_outcome


class Instance:
    """What lives as long as the function instance: config, clients, the metrics writer, the shared evidence."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.clients = Clients(config)
        self.writer = MetricsWriter()
        self.evidence = EvidenceShare()


def _probe_all(
    instance: Instance, project: str, targets: list[Target], deadline: Deadline, recorder: Recorder
) -> list[Outcome]:
    if len(targets) == 1:
        return [probe(targets[0], project, instance.clients, deadline, recorder)]
    pool = ThreadPoolExecutor(max_workers=min(instance.config.concurrency, len(targets)), thread_name_prefix="probe")
    try:
        futures = [(t, pool.submit(probe, t, project, instance.clients, deadline, recorder)) for t in targets]
        outcomes = []
        for target, future in futures:
            try:
                outcomes.append(future.result(timeout=deadline.remaining() + 1.0))
            except FutureTimeout as error:
                failure = classify(error)
                outcomes.append(Outcome(target, failure.cause, deadline.seconds * 1000, failure=failure))
        return outcomes
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def steady_fix(result: Result, outcome: Outcome) -> str:
    """The fix the metrics (and so the alert) name: the first remedy drawn only from what stays the same for as long
    as one failure lasts (the failure itself, the principal's own permission test), not from audit entries. Those
    arrive with Logging's lag, so a later run of the same failure may find the change an earlier one could not; a
    fix drawn from them would change the metric's `remedy` label, which the denied policy groups by, and open a
    second incident. The run's log line and answer keep the fix the audit entries point to."""
    steady = Evidence(predict_granted=result.evidence.predict_granted)
    first = next(iter(remedies(outcome, steady, result.project or "", result.principal)), None)
    return (first.command or first.url or "") if first else ""


def _signals(result: Result) -> list[TargetSignal]:
    signals = []
    for outcome in result.outcomes:
        permission = ""
        remedy = ""
        if outcome.failure is not None:
            permission = outcome.failure.metadata.get("permission", "")
            remedy = steady_fix(result, outcome)
        signals.append(TargetSignal(str(outcome.target), outcome.cause, outcome.latency_ms, permission, remedy))
    return signals


def execute(instance: Instance, trigger: Trigger, targets: list[Target]) -> Result:
    """One run. Never raises: a failure of the canary itself becomes Result.error."""
    config = instance.config
    started = time.perf_counter()
    deadline = Deadline(config.deadline_s)
    recorder = Recorder()
    result = Result(run_id=uuid.uuid4().hex[:16], started_at=datetime.now(UTC), trigger=trigger, config=config)
    try:
        _run(instance, result, targets, deadline, recorder)
    except Exception as error:  # noqa: BLE001 - the canary reports its own failure instead of crashing
        result.error = f"{type(error).__name__}: {error}"
        if result.project and not result.metrics.written:
            result.metrics = instance.writer.write(
                config, instance.clients, result.project, "error", [], deadline, recorder
            )
    result.calls = recorder.calls
    result.duration_ms = (time.perf_counter() - started) * 1000
    return result


def report_reserve(deadline_s: float) -> float:
    """The end of a run kept for its report: the one CreateTimeSeries (a few ms to Monitoring, one retry on
    UNAVAILABLE) and the log line. 20 % of the deadline, at most 2 s."""
    return min(2.0, deadline_s * 0.2)


def _metadata_timeout(deadline: Deadline) -> float:
    """One metadata lookup's share of the run: the server answers in milliseconds; never most of what is left."""
    return min(METADATA_TIMEOUT_S, max(0.05, deadline.remaining() / 4))


def _run(instance: Instance, result: Result, targets: list[Target], deadline: Deadline, recorder: Recorder) -> None:
    clients = instance.clients
    # Probes and evidence end early enough that the report still has its reserve when one of them hangs.
    work = deadline.reserving(report_reserve(deadline.seconds))
    try:
        # Cloud Run's metadata server answers in milliseconds: ten seconds is ample, and leaves time to report.
        project = clients.prepare(timeout=min(10.0, max(1.0, deadline.remaining() / 2)))
    except ProjectUnknown as error:
        _project_unknown(result, error)
        return
    except Exception as error:  # no credentials is the workload's failure too
        failure = classify(error)
        if failure.cause == Cause.UNKNOWN:
            raise
        result.outcomes = [Outcome(t, failure.cause, 0.0, failure=failure) for t in targets]
        try:  # known already, or one bounded lookup: the result names the project whenever it can
            project = clients.project(_metadata_timeout(deadline))
        except ProjectUnknown as unknown:
            _project_unknown(result, unknown)
            return
    else:
        result.outcomes = _probe_all(instance, project, targets, work, recorder)
    result.project = project
    result.principal = clients.principal(_metadata_timeout(work))
    if any(not o.ok for o in result.outcomes):
        result.evidence = _evidence(instance, result, project, work, recorder)
        result.remedies = {
            str(o.target): remedies(o, result.evidence, project, result.principal) for o in result.outcomes if not o.ok
        }
    if result.outcomes and all(o.cause == Cause.CREDENTIALS for o in result.outcomes):
        # Every call needs the same credentials: Monitoring would refuse (or hang on) them just the same.
        result.metrics = MetricsReport(
            skipped="not attempted: the canary's own credentials failed (cause credentials); "
            "the log line carries the result"
        )
        return
    result.metrics = instance.writer.write(
        instance.config, clients, project, result.run_outcome, _signals(result), deadline, recorder
    )


def _project_unknown(result: Result, error: ProjectUnknown) -> None:
    """The canary's own failure: nothing can be probed or written without a project. Nothing of it is kept, so the
    next run asks the metadata server again. No target is reported: none was probed, and google.auth's own failure
    to read the project id (a 503, a reset, a hang) is this same fault, not the workload's credentials."""
    result.error = str(error)
    result.outcomes = []
    result.metrics = MetricsReport(
        skipped="not attempted: the canary does not know its project, so it has nowhere to write (this run is in "
        "its log line; the silent alert fires if no run can write for three schedule periods)"
    )


def _evidence(instance: Instance, result: Result, project: str, deadline: Deadline, recorder: Recorder) -> Evidence:
    """Gathered once for overlapping runs of this instance with the same failures (EvidenceShare)."""
    failures = [o.failure for o in result.outcomes if o.failure is not None]
    key = (
        project,
        result.principal,
        frozenset(f.cause for f in failures),
        frozenset(constraint_of(f) for f in failures if f.cause == Cause.ORG_POLICY),
    )
    share = instance.evidence
    return share.get(
        key,
        result.run_id,
        deadline,
        lambda: gather(
            instance.config,
            instance.clients,
            project,
            result.principal,
            result.outcomes,
            deadline,
            recorder,
            permit=share.permit_list_call,
        ),
    )
