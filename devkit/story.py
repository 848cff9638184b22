"""The whole story on one machine: the deploy tool (real gcloud) deploys the canary into an emulated project, the
emulator serves it with the real functions-framework as the workload's service account, Cloud Scheduler runs it on
the clock, Cloud Monitoring evaluates its alert policies and notifies by e-mail and webhook.

`Story` drives it and waits for what happens; the demo (devkit/demo.py) tells it, tests/e2e/test_whole_story.py
asserts it, bench/detect.py times it. Time: the emulator's clock runs with real time while anything happens (a
run, a delivery) and jumps over the idle minutes in between (`skip_to`); every process reads that one clock (served
functions through the runtime's clock hook), so a run stamps its points and audit-log windows with the emulator's
time. Nothing in function/ knows.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from google.cloud import monitoring_v3

from devkit import emulated, fleet
from devkit.receiver import Receiver, receiving
from emulator.core.clock import parse_rfc3339, rfc3339
from emulator.server import Emulator
from emulator.services.functions import FunctionStore
from emulator.services.runjobs import JobStore
from emulator.services.scheduler import SchedulerStore

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "demo-proj"
REGION = "us-central1"
TEAMMATE = "alice@example.com"
ONCALL = "oncall@example.com"
SCHEDULE = "*/3 * * * *"  # the deploy tool's finest: its policies' arithmetic needs a period of 3 minutes or more
TARGETS = "gemini-2.5-flash-lite@us-central1"
GEMINI_ROLE = "roles/aiplatform.user"
JOB = f"projects/{PROJECT}/locations/{REGION}/jobs/gemini-canary"
T = TypeVar("T")


@dataclass(frozen=True)
class Run:
    """One scheduled run of the deployed canary, as its log line tells it."""

    scheduled: datetime
    line: dict[str, Any]  # the log entry's jsonPayload

    @property
    def verdict(self) -> str:
        return str(self.line.get("verdict", ""))

    @property
    def summary(self) -> str:
        return str(self.line.get("message") or self.line.get("summary") or "")


@dataclass(frozen=True)
class Notice:
    """One notification as it reached a person: the channel, the incident's state, subject and body."""

    channel: str  # "email" | "webhook"
    state: str  # "open" | "closed"
    subject: str
    body: str
    incident: str
    policy: str


class Story:
    """`with Story(home) as story:` an emulator (serving functions) and a webhook receiver; `deploy()` first."""

    def __init__(self, home: Path, scenario: str = "story") -> None:
        self.home = home
        self.outbox = home / "outbox"
        self.outbox.mkdir(parents=True, exist_ok=True)
        self._stack = ExitStack()
        self.emulator = Emulator(scenario, serve_functions=True, clock_mode="running", outbox=self.outbox)
        self.receiver: Receiver | None = None
        self.deploy_output = ""

    def __enter__(self) -> Story:
        self._stack.enter_context(self.emulator)
        self.receiver = self._stack.enter_context(receiving())
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    # Reading the world --------------------------------------------------------------------------------------

    @property
    def now(self) -> datetime:
        return self.emulator.world.clock.now()

    def job(self) -> dict[str, Any]:
        with self.emulator.world.lock:
            project = self.emulator.world.projects[PROJECT]
            return dict(project.store(SchedulerStore).scheduler_jobs[JOB])

    def runs(self) -> list[Run]:
        """Every run the deployed canary logged, oldest first (entries written yet, visible or not)."""
        with self.emulator.world.lock:
            entries = [r.entry for r in self.emulator.world.logs]
        found = []
        for entry in entries:
            payload = entry.get("jsonPayload", {})
            if entry.get("logName", "").endswith("run.googleapis.com%2Fstdout") and "verdict" in payload:
                scheduled = payload.get("trigger", {}).get("schedule_time") or payload.get("started_at")
                found.append(Run(parse_rfc3339(scheduled) if scheduled else self.now, payload))
        return found

    def notices(self) -> list[Notice]:
        """Every notification delivered so far, as received: the webhook's posts and the outbox's messages."""
        found: list[Notice] = []
        assert self.receiver is not None
        for request in self.receiver.taken():
            doc = json.loads(request.body or b"{}")
            incident = doc.get("incident", {})
            documentation = incident.get("documentation", {})
            found.append(
                Notice(
                    "webhook",
                    str(incident.get("state", "")),
                    str(documentation.get("subject", "")),
                    str(documentation.get("content", "")),
                    str(incident.get("incident_id", "")),
                    str(incident.get("policy_name", "")),
                )
            )
        status, sent = emulated.admin(self.emulator, "GET", "notifications")
        assert status == 200, sent
        for item in sent.get("notifications", []):
            if item.get("type") == "email" and item.get("delivered"):
                found.append(
                    Notice(
                        "email",
                        "closed" if "CLOSE" in str(item.get("event", "")).upper() else "open",
                        str(item.get("subject", "")),
                        str(item.get("body", "")),
                        str(item.get("incident_id", "")),
                        str(item.get("policy", "")),
                    )
                )
        return found

    def incidents(self) -> list[dict[str, Any]]:
        status, doc = emulated.admin(self.emulator, "GET", "incidents")
        assert status == 200, doc
        return list(doc.get("incidents", []))

    # Acting -----------------------------------------------------------------------------------------------------

    def deploy(self, *extra: str, schedule: str = SCHEDULE) -> str:
        """The deploy tool with the real gcloud, as the deployer: the canary, its Scheduler job, its four alert
        policies notifying an e-mail channel and a webhook channel; then waits until the function serves."""
        assert self.receiver is not None
        channels = emulated.clients(self.emulator, fleet.DEPLOYER).channels
        webhook = channels.create_notification_channel(
            name=f"projects/{PROJECT}",
            notification_channel=monitoring_v3.NotificationChannel(
                type_="webhook_tokenauth",
                display_name="on-call webhook",
                labels={"url": f"{self.receiver.url}/alerts"},
            ),
        )
        env = {
            **self.emulator.gcloud_env(self.home / "deployer", fleet.DEPLOYER),
            "PYTHONPATH": str(ROOT),
            "GRPC_VERBOSITY": "NONE",
        }
        argv = [
            *(sys.executable, "-m", "deploy", "apply", "--project", PROJECT, "--region", REGION),
            *("--service-account", self.emulator.world.workload, "--targets", TARGETS, "--schedule", schedule),
            *("--notify-email", ONCALL, "--notification-channel", webhook.name.rsplit("/", 1)[1]),
            "--enable-data-access-logs",
            *extra,
        ]
        done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)
        self.deploy_output = done.stdout + done.stderr
        if done.returncode != 0:
            raise RuntimeError(f"the deploy tool failed ({done.returncode}):\n{self.deploy_output[-4000:]}")
        if "job" in extra and "--kind" in extra:
            self.wait_for(lambda: self._job_deployed() or None, "the Cloud Run job", 180)
        else:
            self.wait_for(lambda: self._function_state() == "ACTIVE" or None, "the function to serve", 180)
        return self.deploy_output

    def _job_deployed(self) -> bool:
        with self.emulator.world.lock:
            return bool(self.emulator.world.projects[PROJECT].store(JobStore).jobs)

    def executions(self) -> list[Any]:
        """The Cloud Run job's executions (the job kind), oldest first."""
        with self.emulator.world.lock:
            found = list(self.emulator.world.projects[PROJECT].store(JobStore).executions.values())
        return sorted(found, key=lambda e: str(e.created))

    def _function_state(self) -> str:
        with self.emulator.world.lock:
            records = self.emulator.world.projects[PROJECT].store(FunctionStore).functions
            return next((str(r.resource.get("state")) for r in records.values()), "")

    def change(self, action: str, **params: Any) -> None:
        """A teammate changes the world now (audited as theirs), e.g. remove_binding role=… member=…."""
        status, doc = emulated.admin(self.emulator, "POST", "actions", {"actor": TEAMMATE, "action": action, **params})
        if status != 200:
            raise RuntimeError(f"{action}: {doc}")

    def patch_world(self, doc: dict[str, Any]) -> None:
        """Change the world directly (a partial scenario document, e.g. a quota), not as anyone: no audit entry."""
        status, answer = emulated.admin(self.emulator, "PATCH", "world", doc)
        if status != 200:
            raise RuntimeError(f"world: {answer}")

    def gemini_role(self, granted: bool) -> None:
        member = f"serviceAccount:{self.emulator.world.workload}"
        self.change("add_binding" if granted else "remove_binding", role=GEMINI_ROLE, member=member)

    def _busy(self) -> bool:
        """Whether a Scheduler attempt is out or a job's execution runs (a run in progress: time must pass with it,
        not jump over it)."""
        with self.emulator.world.lock:
            project = self.emulator.world.projects[PROJECT]
            attempts = project.store(SchedulerStore).executions.values()
            # the job kind: Scheduler's attempt ends when the execution starts; the execution runs on
            tasks = project.store(JobStore).executions.values()
            return any(a.busy for a in attempts) or any(e.running or e.pending for e in tasks)

    def skip_to(self, at: datetime) -> None:
        """Jump the clock over idle time to `at` (never backwards, never while a run is in progress); whatever came
        due has happened, and any run it started has finished, on return."""
        self.wait_for(lambda: None if self._busy() else True, "the run in progress to finish", 300)
        if at > self.now:
            status, doc = emulated.admin(self.emulator, "POST", "clock", {"set": rfc3339(at)})
            if status != 200:
                raise RuntimeError(f"clock: {doc}")
        self.wait_for(lambda: None if self._busy() else True, "the run in progress to finish", 300)

    def next_run(self, limit_s: float = 120) -> Run:
        """Skip to just before the job's next scheduled time, wait for that run's log line, and skip past Logging's
        ingestion lag so that the line is readable."""
        before = len(self.runs())
        due = parse_rfc3339(str(self.job()["scheduleTime"]))
        self.skip_to(due - timedelta(seconds=1))
        run = self.wait_for(lambda: self.runs()[before] if len(self.runs()) > before else None, "the run", limit_s)
        # past Logging's ingestion lag, so the run's log line can be read (gcloud logging read) when this returns
        self.skip_to(self.now + self.emulator.world.ingestion_lag + timedelta(seconds=1))
        return run

    def next_minutes(self, minutes: int = 1) -> None:
        """Skip to a few seconds past the minute `minutes` from now: alert policies are evaluated on the minute."""
        at = self.now.replace(second=0, microsecond=0) + timedelta(minutes=minutes, seconds=5)
        self.skip_to(at)

    def until(self, found: Callable[[], T | None], what: str, max_minutes: int = 30) -> T:
        """Skip minute by minute until `found()` returns something; RuntimeError after `max_minutes`."""
        for _ in range(max_minutes):
            value = found()
            if value is not None:
                return value
            self.next_minutes()
        value = found()
        if value is None:
            raise RuntimeError(f"{what} did not happen within {max_minutes} minutes of the emulator's clock")
        return value

    def wait_for(self, found: Callable[[], T | None], what: str, limit_s: float) -> T:
        """Wait in real time (a run or a start takes seconds) until `found()` returns something."""
        deadline = time.monotonic() + limit_s
        while True:
            value = found()
            if value is not None:
                return value
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not happen within {limit_s:g} s")
            time.sleep(0.1)  # waiting for another process; the loop ends on the condition


def notices_for(notices: list[Notice], state: str, channel: str | None = None) -> Iterator[Notice]:
    return (n for n in notices if n.state == state and (channel is None or n.channel == channel))
