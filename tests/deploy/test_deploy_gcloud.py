"""The deploy tool, run as a user runs it, with the real gcloud against the emulator; every assertion is made on
the emulator's world (what exists afterwards), not on the tool's own output alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from google.cloud import monitoring_v3

from deploy.reconcile import BUILD_ROLE
from devkit import emulated, fleet
from emulator.core import iam
from emulator.server import Emulator
from emulator.services.functions import FunctionStore
from emulator.services.iamadmin import IamStore
from emulator.services.monitoring.dashboards import DashboardStore
from emulator.services.monitoring.service import MonitoringStore
from emulator.services.run import RunStore
from emulator.services.scheduler import SchedulerStore
from function.metrics import SCHEMA
from function.roles import OPTIONAL, REQUIRED
from tests.prerequisites import need
from tests.shared import WORKLOAD

ROOT = Path(__file__).resolve().parents[2]
METADATA_PORT = int(os.environ["GCE_METADATA_HOST"].rsplit(":", 1)[1])
INVOKER = "gemini-canary-invoker@demo-proj.iam.gserviceaccount.com"
PREFIX = "custom.googleapis.com/gemini_canary"
MUTATING = (
    "Create",
    "Update",
    "Patch",
    "Delete",
    "SetIamPolicy",
    "Enable",
    "Disable",
    "create",
    "update",
    "patch",
    "delete",
    "setIamPolicy",
    "enable",
    "disable",
)


@pytest.fixture(autouse=True)
def _gcloud() -> None:
    need("gcloud")


def deploy(emulator: Emulator, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    if args[:1] == ("apply",) and not {"--notify-email", "--notification-channel"} & set(args):
        args = (*args, "--no-notifications")  # apply refuses policies that page nobody without it
    env = {**emulator.gcloud_env(home, fleet.DEPLOYER), "PYTHONPATH": str(ROOT), "GRPC_VERBOSITY": "NONE"}
    return subprocess.run(
        [sys.executable, "-m", "deploy", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def mutations(emulator: Emulator) -> dict[str, int]:
    return {m: n for m, n in emulator.world.calls.items() if any(word in m.rsplit(".", 1)[-1] for word in MUTATING)}


def roles_of(emulator: Emulator, project: str, email: str) -> set[str]:
    return emulator.world.projects[project].policy.roles_of(f"serviceAccount:{email}")


def test_apply_rerun_update_dry_run_teardown(tmp_path: Path) -> None:
    with Emulator("deploy_ready", metadata_port=METADATA_PORT) as emulator:
        # The workload holds only its own Gemini role before: the tool grants the canary's set, nothing more.
        emulated.admin(
            emulator,
            "PATCH",
            "world",
            {
                "projects": {
                    "demo-proj": {
                        "bindings": {
                            role: []
                            for role in (
                                "roles/monitoring.metricWriter",
                                "roles/logging.privateLogViewer",
                                "roles/browser",
                            )
                        }
                    }
                }
            },
        )
        before = roles_of(emulator, "demo-proj", WORKLOAD)
        assert before == {"roles/aiplatform.user"}
        base = [
            "--project",
            "demo-proj",
            "--region",
            "us-central1",
            "--service-account",
            WORKLOAD,
            "--notify-email",
            "oncall@example.com",
            "--grant-evidence-roles",
            "--enable-data-access-logs",
        ]

        first = deploy(emulator, tmp_path / "a", "apply", *base)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "demo-proj  created" in first.stdout, first.stdout
        project = emulator.world.projects["demo-proj"]

        [record] = project.store(FunctionStore).functions.values()
        function = record.resource
        service = function["serviceConfig"]
        assert service["serviceAccountEmail"] == WORKLOAD
        assert function["buildConfig"]["environmentVariables"] == {"GOOGLE_FUNCTION_SOURCE": "function/main.py"}
        assert "function/main.py" in record.source_files
        uploaded = sorted(f for f in record.source_files if not f.endswith("/"))  # gcloud also zips bare dirs
        assert uploaded == sorted(
            ["main.py", "requirements.txt", *(str(p.relative_to(ROOT)) for p in (ROOT / "function").glob("*.py"))]
        )
        assert service["environmentVariables"]["CANARY_TARGETS"] == "gemini-2.5-flash-lite@us-central1"
        assert service["availableMemory"] == "256Mi"
        assert int(service["timeoutSeconds"]) == 60
        uri = service["uri"]
        # No public invoker; the invoker account only, and only on this function's service.
        grants = {
            (b.role, m)
            for s in project.store(RunStore).run_services.values()
            for b in s.policy.bindings
            for m in b.members
        }
        grants |= {(b.role, m) for b in record.policy.bindings for m in b.members}
        assert grants == {("roles/run.invoker", f"serviceAccount:{INVOKER}")}
        assert not roles_of(emulator, "demo-proj", INVOKER)  # nothing project-wide for the invoker
        [job] = project.store(SchedulerStore).scheduler_jobs.values()
        assert job["schedule"] == "*/5 * * * *"
        assert job["httpTarget"]["oidcToken"] == {"serviceAccountEmail": INVOKER, "audience": uri}
        assert job["httpTarget"]["uri"] == uri
        assert job["attemptDeadline"] == "90s"
        assert int(job.get("retryConfig", {}).get("retryCount", 0)) == 0
        assert roles_of(emulator, "demo-proj", WORKLOAD) == set(REQUIRED) | set(OPTIONAL)
        assert project.policy.data_logging_on("aiplatform.googleapis.com", "DATA_READ", f"serviceAccount:{WORKLOAD}"), (
            first.stdout
        )
        policies = list(project.store(MonitoringStore).alert_policies.values())
        assert sorted(p.display_name for p in policies) == [
            "Gemini canary: access denied",
            "Gemini canary: degraded",
            "Gemini canary: denial log line",
            "Gemini canary: silent",
        ]
        [channel] = project.store(MonitoringStore).notification_channels.values()
        assert all(list(p.notification_channels) == [channel.name] for p in policies)
        # The build account: the project's default compute account, given the documented build role, recorded.
        builder = f"{project.number}-compute@developer.gserviceaccount.com"
        assert function["buildConfig"]["serviceAccount"] == f"projects/demo-proj/serviceAccounts/{builder}"
        assert roles_of(emulator, "demo-proj", builder) == {BUILD_ROLE}
        assert f"build={builder}" in project.store(IamStore).service_accounts[INVOKER].resource["description"]
        # The metric descriptors, from function/metrics.py's schema: units and descriptions, not Google's blanks.
        for metric in SCHEMA:
            stored = project.store(MonitoringStore).metric_descriptors[metric.type(PREFIX)]
            assert (stored["unit"], stored["description"], stored["auto"]) == (metric.unit, metric.description, False)
            assert stored["labels"] == sorted(metric.labels)
        assert [d["displayName"] for d in project.store(DashboardStore).dashboards.values()] == ["Gemini access canary"]

        # Second run, same inputs: nothing changes, and it says so.
        emulator.world.calls.clear()
        second = deploy(emulator, tmp_path / "b", "apply", *base)
        assert second.returncode == 0, second.stderr
        assert "demo-proj  unchanged" in second.stdout
        assert mutations(emulator) == {}

        # A changed schedule updates the job in place, and nothing else.
        emulator.world.calls.clear()
        third = deploy(emulator, tmp_path / "c", "apply", *base, "--schedule", "*/10 * * * *")
        assert third.returncode == 0, third.stderr
        assert "updated   scheduler job" in third.stdout
        assert [j["schedule"] for j in project.store(SchedulerStore).scheduler_jobs.values()] == ["*/10 * * * *"]
        assert set(mutations(emulator)) == {
            "google.cloud.scheduler.v1.CloudScheduler.UpdateJob",
            "google.monitoring.v3.AlertPolicyService.UpdateAlertPolicy",
        }

        # --dry-run with other inputs: the plan is printed, nothing changes.
        emulator.world.calls.clear()
        dry = deploy(emulator, tmp_path / "d", "apply", *base, "--targets", "gemini-2.5-pro@global", "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert "plan (nothing was changed):" in dry.stdout
        assert "gcloud functions deploy gemini-canary" in dry.stdout
        assert mutations(emulator) == {}
        assert [
            f.resource["serviceConfig"]["environmentVariables"]["CANARY_TARGETS"]
            for f in project.store(FunctionStore).functions.values()
        ] == ["gemini-2.5-flash-lite@us-central1"]

        # Teardown: nothing of ours left; what the workload held before stays.
        down = deploy(
            emulator,
            tmp_path / "e",
            "teardown",
            "--project",
            "demo-proj",
            "--region",
            "us-central1",
            "--service-account",
            WORKLOAD,
        )
        assert down.returncode == 0, down.stdout + down.stderr
        assert not project.store(FunctionStore).functions
        assert not project.store(SchedulerStore).scheduler_jobs
        assert not project.store(MonitoringStore).alert_policies
        assert not project.store(MonitoringStore).notification_channels
        assert not project.store(DashboardStore).dashboards
        invoker = project.store(IamStore).service_accounts.get(INVOKER)
        assert invoker is None or invoker.deleted  # Google keeps a deleted account 30 days, for undelete
        assert roles_of(emulator, "demo-proj", WORKLOAD) == before
        assert not project.policy.audit_configs
        assert not roles_of(emulator, "demo-proj", builder)  # the build role it granted, and only that, is gone
        assert set(project.store(MonitoringStore).metric_descriptors) == {
            m.type(PREFIX) for m in SCHEMA
        }  # kept: their data is history
        assert "kept      metric descriptors" in down.stdout


def test_ten_projects_one_broken(tmp_path: Path) -> None:
    """Ten projects in one command; the deployer can't use Cloud Functions in the seventh: nine deploy, the
    summary names the seventh and why."""
    scenario = fleet.fleet_scenario(tmp_path / "fleet.yaml", 10, disabled={7: "cloudfunctions.googleapis.com"})
    with Emulator(str(scenario), metadata_port=METADATA_PORT) as emulator:
        projects = [fleet.fleet_project(i) for i in range(1, 11)]
        args = [arg for p in projects for arg in ("--project", p)]
        done = deploy(
            emulator,
            tmp_path / "home",
            "apply",
            *args,
            "--region",
            "us-central1",
            "--service-account",
            "canary-workload@{project}.iam.gserviceaccount.com",
            "--parallel",
            "5",
        )
        assert done.returncode == 1
        summary = done.stdout.split("project ", 1)[1]
        broken = fleet.fleet_project(7)
        for p in projects:
            line = next(ln for ln in summary.splitlines() if ln.startswith(p))
            if p == broken:
                assert " failed " in line
                assert "Cloud Functions API has not been used in project 500000000007" in line
                assert not emulator.world.projects[p].store(FunctionStore).functions
            else:
                assert " created " in line
                assert len(emulator.world.projects[p].store(FunctionStore).functions) == 1
                assert len(emulator.world.projects[p].store(SchedulerStore).scheduler_jobs) == 1


def test_build_account_that_already_builds_is_left_alone_and_blank_descriptors_are_filled(tmp_path: Path) -> None:
    """A build account holding Editor needs no grant, and teardown takes nothing from it; descriptors Google
    auto-created from earlier writes (no unit) are updated in place, keeping their labels."""
    with Emulator("deploy_ready", metadata_port=METADATA_PORT) as emulator:
        project = emulator.world.projects["demo-proj"]
        builder = f"{project.number}-compute@developer.gserviceaccount.com"
        emulated.admin(
            emulator,
            "PATCH",
            "world",
            {"projects": {"demo-proj": {"bindings": {"roles/editor": [f"serviceAccount:{builder}"]}}}},
        )
        latency = f"{PREFIX}/latency"
        project.store(MonitoringStore).metric_descriptors[latency] = {
            "type": latency, "metric_kind": "GAUGE", "value_type": "DOUBLE", "labels": ["cause", "old", "target"],
            "auto": True, "description": "", "display_name": "", "unit": "",
            "name": f"projects/demo-proj/metricDescriptors/{latency}",
        }  # fmt: skip
        args = ["--project", "demo-proj", "--region", "us-central1", "--service-account", WORKLOAD]
        done = deploy(emulator, tmp_path / "a", "apply", *args)
        assert done.returncode == 0, done.stdout + done.stderr
        assert roles_of(emulator, "demo-proj", builder) == {"roles/editor"}
        assert "build=" not in project.store(IamStore).service_accounts[INVOKER].resource["description"]
        assert project.store(MonitoringStore).metric_descriptors[latency]["unit"] == "ms"
        assert project.store(MonitoringStore).metric_descriptors[latency]["labels"] == [
            "cause",
            "old",
            "target",
        ]  # never removed
        down = deploy(emulator, tmp_path / "b", "teardown", *args)
        assert down.returncode == 0, down.stdout + down.stderr
        assert roles_of(emulator, "demo-proj", builder) == {"roles/editor"}


BASE = ["--project", "demo-proj", "--region", "us-central1", "--service-account", WORKLOAD]
EVIDENCE_ROLES = ("roles/monitoring.metricWriter", "roles/logging.privateLogViewer", "roles/browser")


def service_policy(emulator: Emulator) -> dict[str, set[str]]:
    project = emulator.world.projects["demo-proj"]
    [service] = project.store(RunStore).run_services.values()
    return {b.role: set(b.members) for b in service.policy.bindings}


def test_public_members_are_removed_from_every_role_and_checked(tmp_path: Path) -> None:
    """allUsers in two roles of the function's service (and allAuthenticatedUsers in one): a rerun removes
    every one of them, reads the policy again, and reports a domain member it never grants."""
    with Emulator("deploy_ready", metadata_port=METADATA_PORT) as emulator:
        first = deploy(emulator, tmp_path / "a", "apply", *BASE)
        assert first.returncode == 0, first.stdout + first.stderr
        project = emulator.world.projects["demo-proj"]
        [service] = project.store(RunStore).run_services.values()
        invoker = f"serviceAccount:{INVOKER}"
        with emulator.world.lock:
            service.policy.bindings = [
                iam.Binding("roles/viewer", ["allUsers", "domain:example.com"]),
                iam.Binding("roles/run.invoker", ["allAuthenticatedUsers", "allUsers", invoker]),
            ]
            service.policy.etag_counter += 1
        again = deploy(emulator, tmp_path / "b", "apply", *BASE)
        assert again.returncode == 0, again.stdout + again.stderr
        assert service_policy(emulator) == {"roles/viewer": {"domain:example.com"}, "roles/run.invoker": {invoker}}
        for who, role in (
            ("allUsers", "roles/viewer"),
            ("allUsers", "roles/run.invoker"),
            ("allAuthenticatedUsers", "roles/run.invoker"),
        ):
            assert f"deleted   public access  {who} removed from {role}" in again.stdout, again.stdout
        assert "warning   domain-wide access  domain:example.com holds roles/viewer" in again.stdout
        assert "1 warning(s), see above" in again.stdout


def test_grants_made_before_a_failure_are_removed_by_teardown(tmp_path: Path) -> None:
    """Apply fails after granting the workload three roles (the function cannot be read); a rerun succeeds; teardown
    leaves the workload with exactly the roles it had before."""
    with Emulator("deploy_ready", metadata_port=METADATA_PORT) as emulator:
        emulated.admin(
            emulator, "PATCH", "world", {"projects": {"demo-proj": {"bindings": {r: [] for r in EVIDENCE_ROLES}}}}
        )
        before = roles_of(emulator, "demo-proj", WORKLOAD)
        assert before == {"roles/aiplatform.user"}
        denied = "Permission 'cloudfunctions.functions.get' denied on resource (or it may not exist)."
        status, _ = emulated.admin(
            emulator,
            "POST",
            "faults",
            {
                "method": "google.cloud.functions.v2.FunctionService.GetFunction",
                "status": {"code": 7, "message": denied},
            },
        )
        assert status == 201
        args = [*BASE, "--grant-evidence-roles", "--enable-data-access-logs"]
        failed = deploy(emulator, tmp_path / "a", "apply", *args)
        assert failed.returncode == 1, failed.stdout + failed.stderr
        assert "cloudfunctions.functions.get" in failed.stdout
        project = emulator.world.projects["demo-proj"]
        assert roles_of(emulator, "demo-proj", WORKLOAD) == before | set(EVIDENCE_ROLES)  # granted, then it failed
        description = project.store(IamStore).service_accounts[INVOKER].resource["description"]
        assert all(role in description for role in EVIDENCE_ROLES), description  # and recorded

        rerun = deploy(emulator, tmp_path / "b", "apply", *args)
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        assert project.policy.audit_configs

        down = deploy(emulator, tmp_path / "c", "teardown", *BASE)
        assert down.returncode == 0, down.stdout + down.stderr
        assert roles_of(emulator, "demo-proj", WORKLOAD) == before
        assert not project.policy.audit_configs
        assert not roles_of(emulator, "demo-proj", f"{project.number}-compute@developer.gserviceaccount.com")


def test_same_named_resources_without_the_label_are_never_touched(tmp_path: Path) -> None:
    """A user's dashboard, alert policy and e-mail channel with the names the tool uses, none labelled
    managed-by=gemini-canary: apply refuses to take over the dashboard, saying why; neither apply nor teardown
    changes or deletes any of them."""
    with Emulator("deploy_ready", metadata_port=METADATA_PORT) as emulator:
        project = emulator.world.projects["demo-proj"]
        mine = f"projects/{project.number}/dashboards/users-own"
        users_dashboard = {
            "name": mine,
            "displayName": "Gemini access canary",
            "etag": "0123456789abcdef",
            "gridLayout": {"widgets": [{"title": "my own chart", "text": {"content": "mine"}}]},
        }
        with emulator.world.lock:
            project.store(DashboardStore).dashboards[mine] = json.loads(json.dumps(users_dashboard))
        user = emulated.clients(emulator, fleet.DEPLOYER)
        users_channel = user.channels.create_notification_channel(
            name="projects/demo-proj",
            notification_channel=monitoring_v3.NotificationChannel(
                type_="email", display_name="on-call", labels={"email_address": "oncall@example.com"}
            ),
        )
        users_policy = user.alerts.create_alert_policy(
            name="projects/demo-proj",
            alert_policy=monitoring_v3.AlertPolicy(
                display_name="Gemini canary: access denied",
                combiner=monitoring_v3.AlertPolicy.ConditionCombinerType.OR,
                conditions=[
                    monitoring_v3.AlertPolicy.Condition(
                        display_name="mine",
                        condition_absent=monitoring_v3.AlertPolicy.Condition.MetricAbsence(
                            filter='metric.type="custom.googleapis.com/mine" AND resource.type="global"',
                            duration={"seconds": 600},
                        ),
                    )
                ],
            ),
        )

        def untouched() -> None:
            assert project.store(DashboardStore).dashboards[mine] == users_dashboard
            assert user.channels.get_notification_channel(name=users_channel.name) == users_channel
            assert user.alerts.get_alert_policy(name=users_policy.name) == users_policy

        args = [*BASE, "--notify-email", "oncall@example.com"]
        applied = deploy(emulator, tmp_path / "a", "apply", *args)
        assert applied.returncode == 1, applied.stdout + applied.stderr
        summary = applied.stdout.rsplit("project ", 1)[1]
        assert " failed " in summary
        assert (
            f"a dashboard named 'Gemini access canary' exists ({mine}) without the label managed-by=gemini-canary: "
            "this tool did not create it and leaves it alone; rename it, or add that label" in summary
        ), summary
        untouched()
        assert len(project.store(DashboardStore).dashboards) == 1
        ours = [p for p in project.store(MonitoringStore).alert_policies.values() if p.name != users_policy.name]
        assert len(ours) == 4  # created beside the user's, labelled
        assert all(p.user_labels.get("managed-by") == "gemini-canary" for p in ours)

        down = deploy(emulator, tmp_path / "b", "teardown", *BASE)
        assert down.returncode == 0, down.stdout + down.stderr
        untouched()
        assert [p.name for p in project.store(MonitoringStore).alert_policies.values()] == [users_policy.name]
        assert list(project.store(MonitoringStore).notification_channels) == [users_channel.name]
        assert f"kept      dashboard  {mine}: same name, but no label managed-by=gemini-canary" in down.stdout


def test_a_labelled_dashboard_is_created_updated_and_deleted(tmp_path: Path) -> None:
    """The tool's own dashboard carries the label, so a later run updates it and teardown deletes it."""
    with Emulator("deploy_ready", metadata_port=METADATA_PORT) as emulator:
        project = emulator.world.projects["demo-proj"]
        first = deploy(emulator, tmp_path / "a", "apply", *BASE)
        assert first.returncode == 0, first.stdout + first.stderr
        [dashboard] = project.store(DashboardStore).dashboards.values()
        labels = {"managed-by": "gemini-canary", "managed-by-gemini-canary": ""}
        assert dashboard["labels"] == labels
        with emulator.world.lock:
            dashboard["mosaicLayout"] = {"columns": 12, "tiles": []}  # someone edited the tool's dashboard
            dashboard["labels"] = {"managed-by-gemini-canary": ""}  # as earlier versions of the tool labelled it
        again = deploy(emulator, tmp_path / "b", "apply", *BASE)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "updated   dashboard" in again.stdout
        [dashboard] = project.store(DashboardStore).dashboards.values()
        assert dashboard["mosaicLayout"]["tiles"]
        assert dashboard["labels"] == labels
        down = deploy(emulator, tmp_path / "c", "teardown", *BASE)
        assert down.returncode == 0, down.stdout + down.stderr
        assert not project.store(DashboardStore).dashboards
