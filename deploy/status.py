"""python -m deploy status: for each project, whether the canary is deployed and current (function or Cloud Run job,
Scheduler job, alert policies), its schedule, and its last run's time, verdict and cause, read from the canary's own
log line through Cloud Logging. Exit status 1 when any project is failing, silent or not deployed.

With --scoping-project S (central alerting), the fleet's state comes from one ListTimeSeries in S: the canary's
`runs` series of every monitored project (its points' times and `outcome` label), and the causes of the failing ones
from a second (`failures`: ListTimeSeries takes one metric type a call), whatever the fleet's size. Only a project with
no run in that window (not deployed, silent, or not in the scope) is read the per-project way, which says which.

Open incidents are not listed: Cloud Monitoring API v3 has no method that lists incidents (the console's incident list
has no public API), so the alert policies are reported as present and enabled, and the run history (the log lines)
says whether a failure is going on.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from function.metrics import FAILURES, RUNS

from .alerting import CANARY_LOGS, DEFAULT_PREFIX, LOG_POLICY_FILE, METRIC_POLICY_FILES, POLICY_FILES, Monitoring
from .gcloud import Gcloud, GcloudError
from .reconcile import source_hash
from .spec import MANAGED_LABEL, MAX_PERIOD_S, NAME, TIMEOUT_S, SpecError, Where, schedule_period_s

# The canary writes its line to stdout; Cloud Run's log for a service's stdout is run.googleapis.com/stdout
# (Cloud Run "Logging and viewing logs": stdout and stderr go to run.googleapis.com%2Fstdout and %2Fstderr).
STDOUT_LOG = "run.googleapis.com%2Fstdout"
LOOKBACK = "2d"  # how far back the last run is looked for
# Central: the series window covers two runs of the longest schedule and a run's timeout, so a project's last two
# runs show its period and whether it fell silent.
SERIES_WINDOW = timedelta(seconds=2 * MAX_PERIOD_S + TIMEOUT_S)
# The window's end lies a little ahead of this machine's clock, so that a point stamped by a clock running slightly
# ahead is still read (Monitoring returns the points up to the present).
CLOCK_SKEW = timedelta(hours=1)


@dataclass
class ProjectStatus:
    project: str
    state: str = "not deployed"  # healthy | failing | silent | not deployed | unknown
    function: str = "absent"  # ACTIVE | … | absent | unknown (it could not be read)
    current: bool | None = None  # the deployed source is this checkout's
    url: str = ""
    schedule: str = ""
    job: str = "absent"  # the Scheduler job: ENABLED | PAUSED | absent | unknown
    kind: str = ""  # function | job (the canary as a Cloud Run job) | "" (neither is deployed)
    run_job: str = "absent"  # the Cloud Run job of the job kind: READY | NOT READY | absent | unknown
    policies: str = ""
    last_run: str = ""
    verdict: str = ""
    causes: list[str] = field(default_factory=list)
    message: str = ""
    problems: list[str] = field(default_factory=list)
    source: str = "project"  # project (read in the project) | scope (from the scoping project's series)


def _last_run(gcloud: Gcloud, project: str) -> dict[str, Any] | None:
    query = f'logName="projects/{project}/logs/{STDOUT_LOG}" AND {CANARY_LOGS}'
    for entry in gcloud.read("logging", "read", query, "--limit=20", f"--freshness={LOOKBACK}") or []:
        payload = entry.get("jsonPayload") or {}
        if payload.get("verdict"):
            return dict(entry)
    return None


def _age_s(stamp: str, now: datetime) -> float:
    at = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return (now - at).total_seconds()


def project_status(where: Where, project: str, now: datetime | None = None) -> ProjectStatus:
    gcloud = Gcloud(project)
    found = ProjectStatus(project)
    read: set[str] = set()  # what was read before an error: the rest is unknown, not absent
    try:
        fn = gcloud.read("functions", "describe", NAME, f"--region={where.region}", "--gen2")
        read.add("function")
        run_job = None if fn is not None else gcloud.read("run", "jobs", "describe", NAME, f"--region={where.region}")
        read.add("run_job")
        job = gcloud.read("scheduler", "jobs", "describe", NAME, f"--location={where.region}")
        read.add("job")
        if run_job is not None:
            found.kind = "job"
            ready: dict[str, Any] = next(
                (c for c in run_job.get("status", {}).get("conditions", []) if c.get("type") == "Ready"), {}
            )
            found.run_job = "READY" if ready.get("status") == "True" else "NOT READY"
            labels = run_job.get("metadata", {}).get("labels", {})
            found.current = labels.get("canary-source") == source_hash(where.source)
            if not found.current:
                found.problems.append("the deployed source is not this checkout's (apply updates it)")
        if fn is not None:
            found.kind = "function"
            found.function = str(fn.get("state", ""))
            found.url = str(fn.get("serviceConfig", {}).get("uri", ""))
            found.current = fn.get("labels", {}).get("canary-source") == source_hash(where.source)
            if not found.current:
                found.problems.append("the deployed source is not this checkout's (apply updates it)")
        if job is not None:
            found.job = str(job.get("state", ""))
            found.schedule = str(job.get("schedule", ""))
            if found.job != "ENABLED":
                found.problems.append(f"the Scheduler job is {found.job}")
        managed = Monitoring(project, dry_run=True).managed_policies()
        # unset reads as enabled: Google's default on write (alert.proto, AlertPolicy.enabled)
        enabled = sum(1 for p in managed if p.enabled is not False)
        wanted = 1 if where.scoping_project else len(POLICY_FILES)  # central: only the log-match policy here
        found.policies = f"{enabled} of {wanted} enabled"
        if enabled < wanted:
            found.problems.append(f"alert policies: {found.policies}")
        if (fn is None and run_job is None) or job is None:
            found.state = "not deployed"
            found.problems.insert(0, "no function or Cloud Run job" if not found.kind else "no Scheduler job")
            return found
        entry = _last_run(gcloud, project)
    except (GcloudError, Exception) as err:  # noqa: BLE001 - one project's error must not stop the others
        found.state = "unknown"
        found.function = found.function if "function" in read else "unknown"
        found.run_job = found.run_job if "run_job" in read else "unknown"
        found.job = found.job if "job" in read else "unknown"
        found.problems.append(err.first_line if isinstance(err, GcloudError) else f"{type(err).__name__}: {err}")
        return found
    now = now or datetime.now(UTC)
    try:
        period = schedule_period_s(found.schedule)
    except (SpecError, ValueError):
        period = 3600
    if entry is None:
        found.state = "silent"
        found.problems.append(f"no run logged in the last {LOOKBACK}")
        return found
    payload = entry["jsonPayload"]
    found.last_run = str(entry.get("timestamp", ""))
    found.verdict = str(payload.get("verdict"))
    # the log line's targets carry each cause (function/report.py); "ok" is no cause
    targets = payload.get("targets") or []
    found.causes = sorted({str(t.get("cause")) for t in targets if isinstance(t, dict) and t.get("cause") != "ok"})
    found.message = str(payload.get("message", ""))[:300]
    if found.last_run and _age_s(found.last_run, now) > 2 * period + TIMEOUT_S:
        found.state = "silent"
        found.problems.append(f"no run since {found.last_run} (runs every {period // 60} min)")
    elif found.verdict != "healthy":
        found.state = "failing"
    else:
        found.state = "healthy"
    return found


def _at(point: Any) -> datetime:
    end: datetime = point.interval.end_time
    return end if end.tzinfo else end.replace(tzinfo=UTC)


def from_series(runs: list[Any], failures: list[Any], now: datetime) -> dict[str, ProjectStatus]:
    """Each monitored project's state from the `runs` and `failures` series read in the scoping project: the last
    run's time and outcome, silent when it is older than two of its runs' spacing and a timeout, and the causes of
    the failing targets at that run."""
    times: dict[str, dict[datetime, str]] = {}
    for series in runs:
        project = str(series.resource.labels.get("project_id", ""))
        for point in series.points:
            times.setdefault(project, {})[_at(point)] = str(series.metric.labels.get("outcome", ""))
    found: dict[str, ProjectStatus] = {}
    for project, outcomes in times.items():
        stamps = sorted(outcomes)
        last = stamps[-1]
        period = (last - stamps[-2]).total_seconds() if len(stamps) > 1 else MAX_PERIOD_S
        status = ProjectStatus(project, source="scope", last_run=last.isoformat().replace("+00:00", "Z"))
        status.verdict = outcomes[last]
        status.causes = sorted(
            {
                str(s.metric.labels.get("cause", ""))
                for s in failures
                if s.resource.labels.get("project_id") == project
                for point in s.points
                if _at(point) >= last - timedelta(seconds=TIMEOUT_S)
                and point.value.int64_value > 0
                and s.metric.labels.get("cause") != "ok"
            }
        )
        if (now - last).total_seconds() > 2 * period + TIMEOUT_S:
            status.state = "silent"
            status.problems.append(f"no run since {status.last_run} (runs every {int(period) // 60} min)")
        else:
            status.state = "healthy" if status.verdict == "healthy" else "failing"
        found[project] = status
    return found


def scope_status(where: Where, now: datetime | None = None) -> tuple[list[ProjectStatus], str]:
    """The fleet's state from the scoping project's series; the per-project reads only for the projects the series
    say nothing of. Also a line on the central policies."""
    assert where.scoping_project is not None
    now = now or datetime.now(UTC)
    monitoring = Monitoring(where.scoping_project, dry_run=True)
    start, end = now - SERIES_WINDOW, now + CLOCK_SKEW
    runs = monitoring.list_series(RUNS.type(DEFAULT_PREFIX), start, end)
    failures = monitoring.list_series(FAILURES.type(DEFAULT_PREFIX), start, end)
    known = from_series(runs, failures, now)
    unread = [p for p in where.projects if p not in known]
    with ThreadPoolExecutor(max_workers=max(1, min(where.parallel, len(unread)))) as pool:
        read = dict(zip(unread, pool.map(lambda p: project_status(where, p, now), unread), strict=True))
    central = monitoring.central_policies()
    enabled = sum(1 for p in central if p.enabled is not False)
    line = (
        f"central alert policies in {where.scoping_project}: {enabled} of {len(METRIC_POLICY_FILES)} enabled "
        f"(each project keeps its {LOG_POLICY_FILE.removesuffix('.json').replace('_', ' ')} policy)"
    )
    return [known.get(p) or read[p] for p in where.projects], line


def run_status(where: Where, fmt: str, out: TextIO, err: TextIO) -> int:
    central = ""
    try:
        if where.scoping_project:
            results, central = scope_status(where)
        else:
            with ThreadPoolExecutor(max_workers=min(where.parallel, len(where.projects))) as pool:
                results = list(pool.map(lambda p: project_status(where, p), where.projects))
    except Exception as failure:  # noqa: BLE001 - the scoping project could not be read: one line, exit 1
        print(f"status: the metrics scope of {where.scoping_project} could not be read: {failure}"[:400], file=err)
        return 1
    if fmt == "json":
        doc = {
            "ok": all(r.state == "healthy" for r in results),
            "projects": [asdict(r) for r in results],
            **({"central": central} if central else {}),
        }
        json.dump(doc, out, indent=2)
        print(file=out)
    else:
        width = max(len(r.project) for r in results)
        print(f"{'project':{width}}  {'state':12}  {'last run':20}  verdict / cause", file=out)
        for r in results:
            cause = f"{r.verdict}{' (' + ', '.join(r.causes) + ')' if r.causes else ''}"
            print(f"{r.project:{width}}  {r.state:12}  {r.last_run[:19]:20}  {cause}", file=out)
            current = {True: " current", False: " stale", None: ""}[r.current]
            schedule = f" {r.schedule}" if r.schedule else ""
            canary = f"job {r.run_job}" if r.kind == "job" else f"function {r.function}"
            if r.source == "scope":
                print(f"   from the metrics scope of {where.scoping_project} (one query)", file=out)
            elif r.state != "unknown":  # nothing was read that could be shown: only the reason below
                print(f"   {canary}{current}; scheduler {r.job}{schedule}; policies {r.policies}", file=out)
            for problem in r.problems:
                print(f"   ! {problem}", file=out)
        if central:
            print(central, file=out)
        print(
            "(open incidents: Cloud Monitoring API v3 has no incidents list; see the console's Incidents page)",
            file=out,
        )
    return 0 if all(r.state == "healthy" for r in results) else 1


__all__ = ["MANAGED_LABEL", "ProjectStatus", "project_status", "run_status"]
