"""Central alerting end to end, with the real gcloud, the real functions-framework and the real client libraries: a
fleet of two projects is deployed with --scoping-project, Cloud Scheduler runs both canaries on the clock, a denial in
ONE project opens one incident in the scoping project and notifies once, naming that project, the cause and the fix;
`status --scoping-project` shows the failing project from the scope's series; recovery closes the incident; tearing
down one project keeps the central alerting the other still uses, and the last one takes it away.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from deploy.central import FLEET_DASHBOARD
from devkit import fleet
from devkit.story import Notice, Story
from emulator.core.clock import parse_rfc3339
from emulator.services.functions import FunctionStore
from emulator.services.monitoring.dashboards import DashboardStore
from emulator.services.monitoring.service import MonitoringStore
from emulator.services.monitoring.store import MetricsScopeStore
from emulator.services.scheduler import SchedulerStore
from tests.prerequisites import need

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-central1"
SCOPING = "fleet-ops-000"
FLEET = (fleet.fleet_project(1), fleet.fleet_project(2))
BROKEN = FLEET[1]
ONCALL = "oncall@example.com"
TARGET = "gemini-2.5-flash-lite@us-central1"
WORKLOAD = "canary-workload@{project}.iam.gserviceaccount.com"


def scenario(path: Path) -> Path:
    """The fleet scenario, and a scoping project; the deployer holds Monitoring Admin (the metrics scope's link
    permission) on the scoping project and on each project of the fleet, as Google asks."""
    fleet.fleet_scenario(path, len(FLEET))
    doc = json.loads(path.read_text())
    doc["projects"][SCOPING] = {
        "number": 500000000999,
        "services": list(fleet.FLEET_SERVICES),
        "bindings": {"roles/owner": ["user:alice@example.com"]},
    }
    for project in doc["projects"].values():
        project["billing"] = True
        project["bindings"]["roles/monitoring.admin"] = [f"serviceAccount:{fleet.DEPLOYER}"]
    path.write_text(json.dumps(doc))
    return path


class FleetStory(Story):
    """Story's clock and notifications for a fleet: every project's Scheduler job and runs."""

    def _busy(self) -> bool:
        with self.emulator.world.lock:
            return any(
                attempt.busy
                for project in FLEET
                for attempt in self.emulator.world.projects[project].store(SchedulerStore).executions.values()
            )

    def job(self) -> dict[str, Any]:
        with self.emulator.world.lock:
            jobs = self.emulator.world.projects[FLEET[0]].store(SchedulerStore).scheduler_jobs
            return dict(next(iter(jobs.values())))

    def tool(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {
            **self.emulator.gcloud_env(self.home / "deployer", fleet.DEPLOYER),
            "PYTHONPATH": str(ROOT),
            "GRPC_VERBOSITY": "NONE",
        }
        return subprocess.run(
            [sys.executable, "-m", "deploy", *args, "--region", REGION, "--scoping-project", SCOPING],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip

    def serving(self) -> bool:
        with self.emulator.world.lock:
            states = [
                str(r.resource.get("state"))
                for p in FLEET
                for r in self.emulator.world.projects[p].store(FunctionStore).functions.values()
            ]
        return states == ["ACTIVE"] * len(FLEET)

    def next_runs(self) -> list[str]:
        """Both canaries' next scheduled run (they share the schedule): their verdicts, sorted; readable when this
        returns."""
        before = len(self.runs())
        due = parse_rfc3339(str(self.job()["scheduleTime"]))
        self.skip_to(due - timedelta(seconds=1))
        runs = self.wait_for(
            lambda: self.runs()[before:] if len(self.runs()) >= before + len(FLEET) else None, "both runs", 120
        )
        self.skip_to(self.now + self.emulator.world.ingestion_lag + timedelta(seconds=1))
        return sorted(r.verdict for r in runs)

    def role(self, project: str, granted: bool) -> None:
        member = f"serviceAccount:{WORKLOAD.format(project=project)}"
        action = "add_binding" if granted else "remove_binding"
        self.change(action, role="roles/aiplatform.user", member=member, project=project)


def pages(story: Story, policy: str, state: str = "open") -> list[Notice]:
    return [n for n in story.notices() if n.state == state and policy in (n.subject + n.policy)]


@pytest.fixture
def story(tmp_path: Path) -> Iterator[FleetStory]:
    need("gcloud")
    told = FleetStory(tmp_path, str(scenario(tmp_path / "fleet.json")))
    with told:
        yield told


def test_a_denial_in_one_project_of_a_centrally_alerted_fleet_pages_once_naming_it(story: FleetStory) -> None:
    projects = [arg for p in FLEET for arg in ("--project", p)]
    done = story.tool("apply", *projects, "--service-account", WORKLOAD, "--notify-email", ONCALL,
                      "--schedule", "*/3 * * * *", "--targets", TARGET)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{SCOPING} (central alerting)  created" in done.stdout, done.stdout
    world = story.emulator.world
    with world.lock:
        scope = world.projects[SCOPING].store(MetricsScopeStore)
        assert set(scope.monitored) == set(FLEET)
        central = world.projects[SCOPING].store(MonitoringStore).alert_policies.values()
        assert sorted(p.display_name for p in central) == [
            "Gemini canary: access denied",
            "Gemini canary: degraded",
            "Gemini canary: silent",
        ]
        for project in FLEET:  # each project keeps only the log-match policy, no dashboard of its own
            own = world.projects[project].store(MonitoringStore).alert_policies.values()
            assert [p.display_name for p in own] == ["Gemini canary: denial log line"]
            assert not world.projects[project].store(DashboardStore).dashboards
        dashboards = list(world.projects[SCOPING].store(DashboardStore).dashboards.values())
        assert [d["displayName"] for d in dashboards] == [FLEET_DASHBOARD]
    story.wait_for(lambda: story.serving() or None, "both functions to serve", 180)

    assert story.next_runs() == ["healthy", "healthy"]

    story.role(BROKEN, False)
    assert story.next_runs() == ["denied", "healthy"]
    opened = story.until(lambda: pages(story, "Gemini access denied") or None, "the denied page")
    story.next_runs()  # the denial lasts another run: no second page
    story.next_minutes(2)
    sent = pages(story, "Gemini access denied")
    assert len(sent) == len(opened) == 1, sent  # one e-mail, for one incident
    notice = sent[0]
    assert notice.subject == f"Gemini access denied: iam_permission_denied for {TARGET} in {BROKEN}"
    assert f"project **{BROKEN}** cannot call **{TARGET}**" in notice.body
    assert f"**Fix:** `gcloud projects add-iam-policy-binding {BROKEN} " in notice.body
    open_incidents = [i for i in story.incidents() if i["state"] == "OPEN"]
    assert [(i["project"], i["resource_project"]) for i in open_incidents] == [(SCOPING, BROKEN)]

    status = story.tool("status", *projects, "--format", "json")
    assert status.returncode == 1, status.stdout + status.stderr
    doc = json.loads(status.stdout)
    states = {p["project"]: (p["state"], p["source"], p["causes"]) for p in doc["projects"]}
    assert states == {
        FLEET[0]: ("healthy", "scope", []),
        BROKEN: ("failing", "scope", ["iam_permission_denied"]),
    }
    assert doc["central"].startswith(f"central alert policies in {SCOPING}: 3 of 3 enabled")

    story.role(BROKEN, True)
    story.next_runs()
    story.until(lambda: pages(story, "Gemini access denied", "closed") or None, "the recovery notice")
    assert [i["state"] for i in story.incidents()] == ["CLOSED"]

    # one project torn down: the other still runs the canary, so the central alerting stays
    workload = ["--service-account", WORKLOAD]
    one = story.tool("teardown", "--project", FLEET[0], *workload)
    assert one.returncode == 0, one.stdout + one.stderr
    assert (
        "kept      central alerting  1 other project(s) in the metrics scope (number 500000000002); the canary "
        f"still runs in {BROKEN}: the central policies" in one.stdout
    ), one.stdout
    with world.lock:
        assert set(world.projects[SCOPING].store(MetricsScopeStore).monitored) == {BROKEN}
        assert len(world.projects[SCOPING].store(MonitoringStore).alert_policies) == 3
    last = story.tool("teardown", "--project", BROKEN, *workload)
    assert last.returncode == 0, last.stdout + last.stderr
    with world.lock:
        assert not world.projects[SCOPING].store(MetricsScopeStore).monitored
        assert not world.projects[SCOPING].store(MonitoringStore).alert_policies
        assert not world.projects[SCOPING].store(MonitoringStore).notification_channels
        assert not world.projects[SCOPING].store(DashboardStore).dashboards
