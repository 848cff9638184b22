"""Time to detect and time to recover: how long after a teammate removes the workload's Gemini role the on-call
person is paged, and how long after the role is restored the incident closes.

    python -m bench.detect [--schedules 5,3] [--phases after,mid,before,lasting] [--one-minute] [--json PATH]

For each schedule, one emulator (devkit/story.py: the real canary deployed by the deploy tool with the real gcloud,
served by the emulator, run by Cloud Scheduler, its alert policies evaluated by Cloud Monitoring and notifying an
e-mail and a webhook channel) and one deploy; then one trial per phase: a healthy run passes, the role is removed
at the phase's point of the period, the clock moves on (in real time while anything happens, jumping over idle time)
until the first "open" notification, the role is restored, and the clock moves on until the incident's "closed"
notification and one more quiet period. Times are on the emulator's clock (what a person would see); the real
seconds a trial took are reported beside them.

`--one-minute` also measures a one-minute schedule, which the deploy tool refuses (deploy/spec.py MIN_PERIOD_S): it
deploys with */3 and then changes only the Scheduler job's schedule with the real gcloud, so the alert policies
keep the */3 timing. Reported apart, as outside what the deploy tool supports.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench import goals
from deploy.alerting import alert_window_s
from deploy.spec import MIN_PERIOD_S, TIMEOUT_S, schedule_period_s
from devkit import emulated, fleet
from devkit.story import JOB, PROJECT, REGION, Story
from emulator.core.clock import parse_rfc3339

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "detect.md"
MINUTE = timedelta(minutes=1)
# How far into the period each phase removes the role, from the healthy run's scheduled time.
PHASES: dict[str, Callable[[int], int]] = {
    "after": lambda period: 15,  # right after a run (it has finished: a healthy run takes about a second)
    "mid": lambda period: period // 2,
    "before": lambda period: period - 15,  # just before the next run
    "lasting": lambda period: period // 2,  # mid-period, and the denial lasts LASTING_PERIODS periods
}
LASTING_PERIODS = 4
# Cloud Monitoring evaluates a condition about once a minute ("Behavior of metric-based alerting policies",
# cloud.google.com/monitoring/alerts/concepts-indepth); the emulator evaluates on whole minutes of its clock.
EVALUATION_S = 60
RUN_TIMEOUT_S = TIMEOUT_S  # a run's whole timeout (deploy/spec.py); a run's point is written within it


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@dataclass
class Trial:
    schedule: str
    period_s: int
    phase: str
    supported: bool  # False: a schedule the deploy tool refuses, set on the Scheduler job after deploying
    healthy_run: str = ""
    changed_at: str = ""
    phase_s: float = 0.0  # seconds from the healthy run's scheduled time to the change
    opened_at: str = ""
    detect_s: float | None = None
    restored_at: str = ""
    closed_at: str = ""
    recover_s: float | None = None
    denied_runs: int = 0
    to_run_s: float | None = None  # from the change to the first denied run's scheduled time
    run_s: float | None = None  # that run's duration (the canary's own duration_ms)
    incidents: dict[str, dict[str, int]] = field(default_factory=dict)  # incident → "open webhook" → count
    policies: list[str] = field(default_factory=list)  # display names of the policies that paged
    undelivered: int = 0
    webhook_received: int = 0  # posts the on-call webhook receiver actually took during the trial
    real_s: float = 0.0
    error: str = ""

    @property
    def pages(self) -> int:
        """Incidents that notified their opening: what paged the on-call person."""
        return sum(1 for counts in self.incidents.values() if any(k.startswith("OPEN") for k in counts))

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "pages": self.pages}


class Driver:
    """Moves a Story's clock the way a person waiting would see it: never over a scheduled run (the run starts on
    time, in real time), otherwise minute by minute, a few seconds past each minute (alert evaluations)."""

    def __init__(self, story: Story) -> None:
        self.story = story

    def notifications(self) -> list[dict[str, Any]]:
        status, doc = emulated.admin(self.story.emulator, "GET", "notifications")
        if status != 200:
            raise RuntimeError(f"notifications: {doc}")
        return list(doc.get("notifications", []))

    def received(self) -> int:
        assert self.story.receiver is not None
        return len(self.story.receiver.taken())

    def step(self) -> None:
        story = self.story
        due = parse_rfc3339(str(story.job()["scheduleTime"]))
        minute = story.now.replace(second=0, microsecond=0) + MINUTE + timedelta(seconds=5)
        if due - timedelta(seconds=1) <= minute:
            before = len(story.runs())
            story.skip_to(due - timedelta(seconds=1))
            story.wait_for(lambda: True if len(story.runs()) > before else None, f"the run due at {due:%H:%M:%S}", 180)
            story.skip_to(story.now)  # returns once the attempt has finished
        else:
            story.skip_to(minute)

    def until(self, found: Callable[[], Any], what: str, limit: timedelta) -> Any:
        end = self.story.now + limit
        while True:
            value = found()
            if value is not None:
                return value
            if self.story.now > end:
                raise RuntimeError(f"{what} did not happen within {limit} of the emulator's clock")
            self.step()

    def healthy_run(self) -> datetime:
        run = self.story.next_run()
        self.story.skip_to(self.story.now)
        if run.verdict != "healthy":
            raise RuntimeError(f"the run before the change was not healthy: {run.verdict} {run.summary}")
        return run.scheduled


def _seconds(start: str | datetime, end: str | datetime) -> float:
    a = parse_rfc3339(start) if isinstance(start, str) else start
    b = parse_rfc3339(end) if isinstance(end, str) else end
    return round((b - a).total_seconds(), 1)


def _policy_names(story: Story) -> dict[str, str]:
    client = emulated.clients(story.emulator, fleet.DEPLOYER).alerts
    return {p.name: p.display_name for p in client.list_alert_policies(name=f"projects/{PROJECT}")}


def trial(driver: Driver, schedule: str, period_s: int, phase: str, supported: bool) -> Trial:
    story = driver.story
    out = Trial(schedule, period_s, phase, supported)
    started = time.monotonic()
    seen = len(driver.notifications())
    received = driver.received()
    runs_before = 0
    removed = False
    try:
        scheduled = driver.healthy_run()
        out.healthy_run = scheduled.isoformat()
        at = scheduled + timedelta(seconds=PHASES[phase](period_s))
        story.skip_to(max(at, story.now))
        story.gemini_role(False)
        removed = True
        changed = story.now
        out.changed_at, out.phase_s = changed.isoformat(), _seconds(scheduled, changed)
        runs_before = len(story.runs())

        def fresh() -> list[dict[str, Any]]:
            return driver.notifications()[seen:]

        limit = timedelta(seconds=3 * period_s + 600)
        opened = driver.until(
            lambda: next((n for n in fresh() if n["event"] == "OPEN"), None), "an open notification", limit
        )
        out.opened_at, out.detect_s = opened["at"], _seconds(changed, opened["at"])
        first = next((r for r in story.runs()[runs_before:] if r.verdict == "denied"), None)
        if first is not None:
            out.to_run_s = _seconds(changed, first.scheduled)
            out.run_s = round(float(first.line.get("duration_ms", 0)) / 1000, 2)
        if phase == "lasting":
            last = changed + timedelta(seconds=LASTING_PERIODS * period_s)
            driver.until(lambda: True if story.now >= last else None, "the lasting denial", limit * LASTING_PERIODS)
        story.gemini_role(True)
        removed = False
        restored = story.now
        out.restored_at = restored.isoformat()
        out.denied_runs = sum(1 for r in story.runs()[runs_before:] if r.verdict == "denied")

        def all_closed() -> dict[str, Any] | None:
            got = fresh()
            opened_ids = {n["incident_id"] for n in got if n["event"] == "OPEN"}
            closed = [n for n in got if n["event"] == "CLOSED"]
            if opened_ids and opened_ids <= {n["incident_id"] for n in closed}:
                return max(closed, key=lambda n: str(n["at"]))
            return None

        closed = driver.until(all_closed, "the closed notification", limit)
        out.closed_at, out.recover_s = closed["at"], _seconds(restored, closed["at"])
        # One more period and evaluation with the role back: nothing else may page for this change.
        quiet = story.now + timedelta(seconds=period_s + EVALUATION_S)
        driver.until(lambda: True if story.now >= quiet else None, "a quiet period", limit)
    except RuntimeError as err:
        out.error = str(err)
        if removed:  # the next trial starts from a healthy world
            story.gemini_role(True)
    names = _policy_names(story)
    for note in driver.notifications()[seen:]:
        kind = "webhook" if note["type"] == "webhook_tokenauth" else note["type"]
        counts = out.incidents.setdefault(note["incident_id"], {})
        key = f"{note['event']} {kind}"
        counts[key] = counts.get(key, 0) + 1
        policy = names.get(note["policy"], note["policy"])
        if note["event"] == "OPEN" and policy not in out.policies:
            out.policies.append(policy)
        out.undelivered += 0 if note["delivered"] else 1
    out.webhook_received = driver.received() - received
    out.real_s = round(time.monotonic() - started, 1)
    return out


def set_schedule(story: Story, schedule: str) -> None:
    """The real gcloud changes only the Scheduler job's schedule (as a person could, outside the deploy tool)."""
    env = {**story.emulator.gcloud_env(story.home / "deployer", fleet.DEPLOYER), "GRPC_VERBOSITY": "NONE"}
    job = JOB.rsplit("/", 1)[1]
    argv = ["gcloud", "scheduler", "jobs", "update", "http", job, f"--location={REGION}", f"--schedule={schedule}"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"gcloud scheduler jobs update failed: {done.stderr[-2000:]}")
    if story.job()["schedule"] != schedule:
        raise RuntimeError(f"the job's schedule is {story.job()['schedule']!r}, not {schedule!r}")


def run_schedule(minutes: int, phases: list[str], one_minute: bool = False) -> dict[str, Any]:
    schedule = f"*/{minutes} * * * *" if minutes > 1 else "* * * * *"
    deployed = "*/3 * * * *" if one_minute else schedule
    home = Path(tempfile.mkdtemp(prefix="detect-"))
    result: dict[str, Any] = {"schedule": schedule, "deployed_with": deployed, "supported": not one_minute}
    try:
        with Story(home) as story:
            started = time.monotonic()
            story.deploy(schedule=deployed)
            if one_minute:
                set_schedule(story, schedule)
            result["deploy_real_s"] = round(time.monotonic() - started, 1)
            result["window_s"] = alert_window_s(schedule_period_s(deployed))
            driver = Driver(story)
            result["trials"] = []
            for phase in phases:
                say(f"  {schedule}: phase {phase}")
                done = trial(driver, schedule, schedule_period_s(schedule), phase, not one_minute)
                say(
                    f"    detect {done.detect_s} s, recover {done.recover_s} s, pages {done.pages}, "
                    f"{done.real_s} s real{'  ERROR ' + done.error if done.error else ''}"
                )
                result["trials"].append(done.to_json())
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return result


def bounds(period_s: int, window_s: int) -> dict[str, int]:
    """The worst cases, from the modelled latencies (see the report's arithmetic)."""
    return {
        "detect_worst_s": period_s + RUN_TIMEOUT_S + EVALUATION_S,
        "recover_worst_s": window_s + EVALUATION_S,
        "goal_s": period_s + goals.DETECT_SLACK_S,
    }


def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    minutes, seconds = divmod(round(value), 60)
    return f"{minutes}:{seconds:02d}"


def _parts(trial: dict[str, Any]) -> str:
    """detect = the wait for the next run + that run's duration + the wait for the next evaluation minute."""
    detect, to_run, run = trial["detect_s"], trial.get("to_run_s"), trial.get("run_s")
    if detect is None or to_run is None or run is None:
        return "—"
    return f"{_fmt(to_run)} + {run:.1f} s + {detect - to_run - run:.1f} s"


def report(results: dict[str, Any]) -> str:
    lines = [
        "# Time to detect and time to recover",
        "",
        f"{results['started']}, `python -m bench.detect {results['argv']}`, {results['real_s']:.0f} s real; "
        f"load average (1 min) {results['load'][0]} at the start, {results['load'][-1]} at the end.",
        "",
        "Times are on the emulator's clock, as m:ss: detect = from the role's removal to the first open "
        "notification, recover = from the role's restoration to the closed notification. Pages = incidents that "
        "notified their opening (each to both channels: e-mail and webhook).",
        "",
        "| schedule | phase | change at | detect | = to the run + run + to the evaluation | recover | denied runs "
        "| pages | notices | paged by | real s | goal |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    for block in results["schedules"]:
        label = block["schedule"] if block["supported"] else f"{block['schedule']} (not deployable¹)"
        for t in block["trials"]:
            ok, why = goals.judge_detect(t)
            verdicts.append((ok, f"{block['schedule']} {t['phase']}: {why}"))
            notices = "; ".join(
                ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) for counts in t["incidents"].values()
            )
            lines.append(
                f"| {label} | {t['phase']} | +{_fmt(t['phase_s'])} | {_fmt(t['detect_s'])} | {_parts(t)} "
                f"| {_fmt(t['recover_s'])} "
                f"| {t['denied_runs']} | {t['pages']} | {notices or '—'} | {', '.join(t['policies']) or '—'} "
                f"| {t['real_s']:.0f} | {'PASS' if ok else 'MISS'} |"
            )
    if not all(block["supported"] for block in results["schedules"]):
        lines += [
            "",
            "¹ deployed with */3 (the deploy tool's finest), then only the Scheduler job's schedule changed with "
            "`gcloud scheduler jobs update http`; its alert policies keep the */3 window.",
        ]
    lines += [
        "",
        "Bounds from the modelled latencies (worst case; see BENCHMARKS.md for the arithmetic):",
        "",
        "| schedule | period | alert window W | detect worst = period + run timeout + evaluation minute | "
        "goal = period + 2 min | recover worst = W + evaluation minute | deploy real s |",
        "|---|---|---|---|---|---|---|",
    ]
    for block in results["schedules"]:
        period = schedule_period_s(block["schedule"])
        b = bounds(period, block["window_s"])
        lines.append(
            f"| {block['schedule']} | {_fmt(period)} | {_fmt(block['window_s'])} | {_fmt(b['detect_worst_s'])} | "
            f"{_fmt(b['goal_s'])} | {_fmt(b['recover_worst_s'])} | {block['deploy_real_s']:.0f} |"
        )
    lines += ["", "### Goal", ""]
    lines += [f"- **{'PASS' if ok else 'MISS'}** {why}" for ok, why in verdicts]
    errors = [(b["schedule"], t) for b in results["schedules"] for t in b["trials"] if t["error"]]
    if errors:
        lines += ["", "### Errors", ""]
        lines += [f"- {s} {t['phase']}: {t['error']}" for s, t in errors]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.detect", description=__doc__.splitlines()[0])
    parser.add_argument("--schedules", default="5,3", help="minutes between runs, comma-separated (default 5,3)")
    parser.add_argument("--phases", default=",".join(PHASES), help=f"comma-separated, of {', '.join(PHASES)}")
    parser.add_argument("--one-minute", action="store_true", help="also a */1 schedule set on the job after deploying")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"the Markdown report (default {RESULTS})")
    args = parser.parse_args(argv)
    if shutil.which("gcloud") is None:
        parser.error("bench.detect needs the gcloud CLI on PATH")
    phases = args.phases.split(",")
    unknown = [p for p in phases if p not in PHASES]
    if unknown:
        parser.error(f"--phases: unknown {', '.join(unknown)}; known: {', '.join(PHASES)}")
    try:
        minutes = [int(m) for m in args.schedules.split(",")]
    except ValueError:
        parser.error(f"--schedules: {args.schedules!r} is not a comma-separated list of minutes")
    for m in minutes:
        if not MIN_PERIOD_S <= m * 60 <= 3600 or 60 % m:
            parser.error(f"--schedules: */{m} is not a schedule the deploy tool accepts (every 3 to 60 minutes)")
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    started = time.monotonic()
    results: dict[str, Any] = {
        "started": datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "argv": " ".join(argv if argv is not None else sys.argv[1:]),
        "schedules": [],
        "load": [round(os.getloadavg()[0], 2)],  # other work on the machine stretches runs and real seconds
    }
    for m in minutes:
        say(f"schedule */{m}: deploying")
        results["schedules"].append(run_schedule(m, phases))
    if args.one_minute:
        say("schedule * * * * * (set on the job after deploying */3)")
        results["schedules"].append(run_schedule(1, phases, one_minute=True))
    results["real_s"] = time.monotonic() - started
    results["load"].append(round(os.getloadavg()[0], 2))
    text = report(results)
    sys.stdout.write(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    trials = [t for b in results["schedules"] for t in b["trials"]]
    return 0 if all(not t["error"] for t in trials) else 1


if __name__ == "__main__":
    raise SystemExit(main())
