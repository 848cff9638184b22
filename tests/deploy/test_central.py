"""Central alerting in the deploy tool (--scoping-project), with the real gcloud and the real monitoring_v3 client
against the emulator: what goes once into the scoping project and what stays in each project, idempotence, the dry
run, switching a fleet from per-project policies, the metrics scope's 375-project limit in one line, and teardown.
The rendering (policies, dashboard) and reading the fleet's state from series are checked on their own too."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from google.cloud import monitoring_v3

from deploy.alerting import CENTRAL_LABEL, METRIC_POLICY_FILES, load_policy_file, render_policy
from deploy.central import FLEET_DASHBOARD, fleet_dashboard
from deploy.spec import make_spec
from deploy.status import from_series
from devkit import emulated, fleet
from emulator.server import Emulator
from emulator.services.monitoring.dashboards import DashboardStore
from emulator.services.monitoring.service import MonitoringStore
from emulator.services.monitoring.store import MetricsScopeStore
from tests.prerequisites import need

ROOT = Path(__file__).resolve().parents[2]
SCOPING = "fleet-ops-000"
ONE, TWO = fleet.fleet_project(1), fleet.fleet_project(2)
WORKLOAD = "canary-workload@{project}.iam.gserviceaccount.com"
COMMON = ("--region", "us-central1", "--scoping-project", SCOPING)


def scenario(path: Path, count: int = 2) -> Path:
    fleet.fleet_scenario(path, count)
    doc = json.loads(path.read_text())
    doc["projects"][SCOPING] = {"number": 500000000999, "services": list(fleet.FLEET_SERVICES), "bindings": {}}
    for project in doc["projects"].values():
        project["bindings"]["roles/monitoring.admin"] = [f"serviceAccount:{fleet.DEPLOYER}"]
    path.write_text(json.dumps(doc))
    return path


def tool(emulator: Emulator, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**emulator.gcloud_env(home, fleet.DEPLOYER), "PYTHONPATH": str(ROOT), "GRPC_VERBOSITY": "NONE"}
    return subprocess.run(
        [sys.executable, "-m", "deploy", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
        check=False,
    )  # fmt: skip


def names(emulator: Emulator, project: str) -> list[str]:
    with emulator.world.lock:
        return sorted(
            p.display_name for p in emulator.world.projects[project].store(MonitoringStore).alert_policies.values()
        )


def test_the_central_policies_group_by_project_and_name_it() -> None:
    spec = make_spec(projects=[ONE], region="us-central1", service_account=WORKLOAD, scoping_project=SCOPING)
    for file in METRIC_POLICY_FILES:
        policy = render_policy(load_policy_file(file), spec, [], central=True)
        assert policy["userLabels"][CENTRAL_LABEL[0]] == CENTRAL_LABEL[1]
        condition = policy["conditions"][0].get("conditionThreshold") or policy["conditions"][0]["conditionAbsent"]
        assert "resource.label.project_id" in condition["aggregations"][0]["groupByFields"]
        doc = policy["documentation"]
        assert "${resource.project}" in doc["subject"]
        assert "${resource.project}" in doc["content"]
        assert all(
            "dashboards?project=" + SCOPING in link["url"] for link in doc["links"] if "dashboard" in link["url"]
        )
    own = render_policy(load_policy_file("denied.json"), spec, [])
    assert CENTRAL_LABEL[0] not in own["userLabels"]


def test_the_fleet_dashboard_charts_every_series_by_project() -> None:
    doc = fleet_dashboard()
    assert doc["displayName"] == FLEET_DASHBOARD
    assert doc["labels"][CENTRAL_LABEL[0]] == CENTRAL_LABEL[1]
    charts = [
        d["timeSeriesQuery"]["timeSeriesFilter"]["aggregation"]
        for tile in doc["mosaicLayout"]["tiles"]
        for d in tile["widget"].get("xyChart", {}).get("dataSets", [])
    ]
    assert charts
    assert all(c["groupByFields"][0] == "resource.label.project_id" for c in charts)


def _series(project: str, metric: str, labels: dict[str, str], points: list[tuple[datetime, int]]) -> object:
    return monitoring_v3.TimeSeries(
        metric={"type": f"custom.googleapis.com/gemini_canary/{metric}", "labels": labels},
        resource={"type": "generic_task", "labels": {"project_id": project}},
        points=[monitoring_v3.Point(interval={"end_time": at}, value={"int64_value": v}) for at, v in points],
    )


def test_the_fleets_state_from_its_series() -> None:
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    five = timedelta(minutes=5)
    runs = [
        _series("p-healthy", "runs", {"outcome": "healthy"}, [(now - five, 1), (now - 2 * five, 1)]),
        _series("p-failing", "runs", {"outcome": "failing"}, [(now - five, 1)]),
        _series("p-failing", "runs", {"outcome": "healthy"}, [(now - 2 * five, 1)]),
        _series("p-silent", "runs", {"outcome": "healthy"}, [(now - 6 * five, 1), (now - 7 * five, 1)]),
    ]
    failures = [
        _series("p-failing", "failures", {"cause": "iam_permission_denied"}, [(now - five, 1)]),
        _series("p-failing", "failures", {"cause": "quota"}, [(now - 2 * five, 1)]),  # an earlier run's
        _series("p-healthy", "failures", {"cause": "ok"}, [(now - five, 0)]),
    ]
    found = from_series(runs, failures, now)
    assert {p: (s.state, s.verdict, s.causes) for p, s in found.items()} == {
        "p-healthy": ("healthy", "healthy", []),
        "p-failing": ("failing", "failing", ["iam_permission_denied"]),
        "p-silent": ("silent", "healthy", []),
    }
    assert found["p-silent"].problems == [f"no run since {found['p-silent'].last_run} (runs every 5 min)"]


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    need("gcloud")
    with Emulator(str(scenario(tmp_path / "fleet.json"))) as emu:
        yield emu


def test_central_apply_is_idempotent_dry_runs_and_tears_down(emulator: Emulator, tmp_path: Path) -> None:
    home = tmp_path / "deployer"
    fleet_args = ("--project", ONE, "--project", TWO, "--service-account", WORKLOAD, *COMMON)
    apply = ("apply", *fleet_args, "--notify-email", "oncall@example.com")

    dry = tool(emulator, home, *apply, "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "would create metrics scope  added to the metrics scope of fleet-ops-000" in dry.stdout, dry.stdout
    assert f"gcloud beta monitoring metrics-scopes create projects/{ONE} --project={SCOPING}" in dry.stdout
    assert f"{SCOPING} (central alerting)  would create" in dry.stdout
    assert names(emulator, SCOPING) == []
    with emulator.world.lock:
        assert not emulator.world.projects[SCOPING].store(MetricsScopeStore).monitored

    first = tool(emulator, home, *apply)
    assert first.returncode == 0, first.stdout + first.stderr
    assert names(emulator, SCOPING) == ["Gemini canary: access denied", "Gemini canary: degraded",
                                        "Gemini canary: silent"]  # fmt: skip
    assert names(emulator, ONE) == names(emulator, TWO) == ["Gemini canary: denial log line"]
    with emulator.world.lock:
        assert set(emulator.world.projects[SCOPING].store(MetricsScopeStore).monitored) == {ONE, TWO}
        central = list(emulator.world.projects[SCOPING].store(MonitoringStore).alert_policies.values())
        channels = emulator.world.projects[SCOPING].store(MonitoringStore).notification_channels
        assert [c.labels["email_address"] for c in channels.values()] == ["oncall@example.com"]
        assert all(p.notification_channels == list(channels) for p in central)
        assert len(emulator.world.projects[SCOPING].store(DashboardStore).dashboards) == 1

    again = tool(emulator, home, *apply, "--format", "json")
    assert again.returncode == 0, again.stdout + again.stderr
    assert [p["status"] for p in json.loads(again.stdout)["projects"]] == ["unchanged"] * 3

    # a teardown of one project: removed from the scope; the central policies stay for the other
    part = tool(emulator, home, "teardown", "--project", ONE, "--service-account", WORKLOAD, *COMMON)
    assert part.returncode == 0, part.stdout + part.stderr
    with emulator.world.lock:
        assert set(emulator.world.projects[SCOPING].store(MetricsScopeStore).monitored) == {TWO}
    assert len(names(emulator, SCOPING)) == 3
    assert "central alerting  1 other project(s) in the metrics scope (number 500000000002): the central" in (
        part.stdout
    ), part.stdout

    whole = tool(emulator, home, "teardown", *fleet_args)
    assert whole.returncode == 0, whole.stdout + whole.stderr
    assert names(emulator, SCOPING) == names(emulator, TWO) == []
    with emulator.world.lock:
        assert not emulator.world.projects[SCOPING].store(MetricsScopeStore).monitored
        assert not emulator.world.projects[SCOPING].store(DashboardStore).dashboards
        assert not emulator.world.projects[SCOPING].store(MonitoringStore).notification_channels


def test_switching_to_central_removes_the_projects_own_metric_policies(emulator: Emulator, tmp_path: Path) -> None:
    home = tmp_path / "deployer"
    own = tool(emulator, home, "apply", "--project", ONE, "--region", "us-central1", "--service-account", WORKLOAD,
               "--no-notifications")  # fmt: skip
    assert own.returncode == 0, own.stdout + own.stderr
    assert len(names(emulator, ONE)) == 4
    # an existing channel of the scoping project, named by its id: the central policies' (never looked up in ONE)
    channel = emulated.clients(emulator, fleet.DEPLOYER).channels.create_notification_channel(
        name=f"projects/{SCOPING}",
        notification_channel=monitoring_v3.NotificationChannel(
            type_="email", display_name="on-call", labels={"email_address": "oncall@example.com"}
        ),
    )
    central = tool(emulator, home, "apply", "--project", ONE, "--service-account", WORKLOAD, *COMMON,
                   "--notification-channel", channel.name.rsplit("/", 1)[1])  # fmt: skip
    assert central.returncode == 0, central.stdout + central.stderr
    with emulator.world.lock:
        scoped = emulator.world.projects[SCOPING].store(MonitoringStore).alert_policies.values()
        assert all(p.notification_channels == [channel.name] for p in scoped)
    assert "deleted   alert policy 'Gemini canary: access denied'  central in fleet-ops-000" in central.stdout
    assert names(emulator, ONE) == ["Gemini canary: denial log line"]
    with emulator.world.lock:
        assert not emulator.world.projects[ONE].store(DashboardStore).dashboards  # the fleet's is in the scope
    assert len(names(emulator, SCOPING)) == 3


def test_a_full_metrics_scope_is_one_line_and_the_other_projects_go_on(emulator: Emulator, tmp_path: Path) -> None:
    # 375 projects already monitored: Cloud Monitoring's supported maximum
    filler = {f"other-{i:03d}": {"number": 700000000000 + i, "services": ["monitoring.googleapis.com"]}
              for i in range(375)}  # fmt: skip
    status, body = emulated.admin(emulator, "PATCH", "world", {"projects": filler})
    assert status == 200, body
    with emulator.world.lock:
        scope = emulator.world.projects[SCOPING].store(MetricsScopeStore)
        now = emulator.world.clock.now()
        scope.monitored.update(dict.fromkeys(filler, now))
    done = tool(emulator, tmp_path / "d", "apply", "--project", ONE, "--service-account", WORKLOAD, *COMMON,
                "--no-notifications", "--format", "json")  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    [project, central] = json.loads(done.stdout)["projects"]
    assert project["status"] == "failed"
    assert project["error"] == (
        f"RuntimeError: the metrics scope of {SCOPING} is full: Cloud Monitoring supports at most 375 monitored "
        "projects a scope; give this part of the fleet another --scoping-project"
    )
    assert central["status"] == "created"  # the scoping project's own step still ran
