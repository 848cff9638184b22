"""Metrics scopes: the real gcloud (`gcloud beta monitoring metrics-scopes`) and plain REST add and remove monitored
projects with Google's permissions and limits; the real monitoring_v3 client reads a fleet's series through the
scoping project; an alert policy in the scoping project groups by project and names the failing one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud.monitoring_v3 import types as mt
from google.protobuf import duration_pb2

from devkit.emulated import admin, clients
from emulator.server import Emulator
from tests.emulator.rest_support import rest
from tests.emulator.support import OWNER, PROJECT, advance, audit_of, list_entries
from tests.emulator.test_alert_evaluation import Receiver, channel, incidents
from tests.emulator.test_gcloud_deploy import Gcloud
from tests.prerequisites import need

FLEET = {"fleet-a": "500000000001", "fleet-b": "500000000002"}
ADMIN_HERE = "bob@example.com"  # Monitoring Admin on the scoping project only
READER = "carol@example.com"  # Monitoring Viewer on the scoping project only
FLEET_READER = "dave@example.com"  # Monitoring Viewer on the fleet's projects, not on the scoping project
METRIC = "custom.googleapis.com/fleet/failures"
SCOPE = f"/v1/locations/global/metricsScopes/{PROJECT}"
SERVICES = ["monitoring.googleapis.com", "logging.googleapis.com", "cloudresourcemanager.googleapis.com"]


def add_projects(emu: Emulator, numbers: dict[str, str], bindings: dict[str, list[str]]) -> None:
    """New projects through the admin API, each with Monitoring on and the given bindings."""
    projects = {pid: {"number": int(n), "services": SERVICES, "bindings": bindings} for pid, n in numbers.items()}
    status, body = admin(emu, "PATCH", "world", {"projects": projects})
    assert status == 200, body


def grant_here(emu: Emulator, role: str, *emails: str) -> None:
    current = {b.role: list(b.members) for b in emu.world.projects[PROJECT].policy.bindings}
    members = sorted({*current.get(role, []), *(f"user:{e}" for e in emails)})
    status, body = admin(emu, "PATCH", "world", {"projects": {PROJECT: {"bindings": {role: members}}}})
    assert status == 200, body


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def fleet(emulator: Emulator) -> Emulator:
    add_projects(
        emulator,
        FLEET,
        {"roles/owner": [f"user:{OWNER}"], "roles/monitoring.viewer": [f"user:{FLEET_READER}"]},
    )
    grant_here(emulator, "roles/monitoring.admin", ADMIN_HERE)
    grant_here(emulator, "roles/monitoring.viewer", READER)
    return emulator


def link(emu: Emulator, project: str, email: str = OWNER) -> tuple[int, Any]:
    body = {"name": f"locations/global/metricsScopes/{PROJECT}/projects/{project}"}
    return rest(emu, "POST", f"{SCOPE}/projects", body, email)


def write(emu: Emulator, project: str, value: int) -> None:
    """One point of the fleet metric in `project`, written there as the owner."""
    at = emu.world.clock.now()
    clients(emu, email=OWNER).metrics.create_time_series(
        name=f"projects/{project}",
        time_series=[
            mt.TimeSeries(
                metric={"type": METRIC, "labels": {"target": "gemini"}},
                resource={
                    "type": "generic_task",
                    "labels": {
                        "project_id": project,
                        "location": "us-central1",
                        "namespace": "canary",
                        "job": "canary",
                        "task_id": "t1",
                    },
                },
                points=[mt.Point(interval={"end_time": at}, value={"int64_value": value})],
            )
        ],
    )


def read(emu: Emulator, email: str, filter_extra: str = "") -> list[str]:
    """The projects whose series ListTimeSeries on the scoping project returns (their resource's project_id)."""
    now = emu.world.clock.now()
    found = clients(emu, email=email).metrics.list_time_series(
        name=f"projects/{PROJECT}",
        filter=f'metric.type = "{METRIC}"{filter_extra}',
        interval=mt.TimeInterval(start_time=now.replace(year=now.year - 1), end_time=now),
        retry=None,
    )
    return sorted(s.resource.labels["project_id"] for s in found)


def test_gcloud_adds_lists_describes_and_removes_monitored_projects(fleet: Emulator, tmp_path: Path) -> None:
    binary = need("gcloud")
    owner = Gcloud(binary, fleet, tmp_path / "owner", OWNER)
    scope_admin = Gcloud(binary, fleet, tmp_path / "bob", ADMIN_HERE)
    numbers = {PROJECT: fleet.world.projects[PROJECT].number, **FLEET}

    # Monitoring Admin on the scoping project alone is not enough: the link permission is needed on both projects.
    denied = scope_admin.run("beta", "monitoring", "metrics-scopes", "create", "projects/fleet-a")
    assert denied.returncode != 0
    assert "Permission monitoring.metricsScopes.link denied" in denied.stderr

    for project in FLEET:
        operation = owner("beta", "monitoring", "metrics-scopes", "create", f"projects/{project}")
        assert operation["done"] is True
        assert operation["response"]["name"] == (
            f"locations/global/metricsScopes/{numbers[PROJECT]}/projects/{numbers[project]}"
        )
        assert operation["metadata"]["state"] == "DONE"
    again = owner.run("beta", "monitoring", "metrics-scopes", "create", "projects/fleet-a")
    assert again.returncode != 0
    assert "already exists" in again.stderr

    scope = owner("beta", "monitoring", "metrics-scopes", "describe", PROJECT)
    assert scope["name"] == f"locations/global/metricsScopes/{numbers[PROJECT]}"
    listed = [p["name"].rsplit("/", 1)[1] for p in scope["monitoredProjects"]]
    assert listed == [numbers[PROJECT], FLEET["fleet-a"], FLEET["fleet-b"]]  # the scope always holds its own project

    scopes = owner("beta", "monitoring", "metrics-scopes", "list", "projects/fleet-a")
    assert [s["name"].rsplit("/", 1)[1] for s in scopes["metricsScopes"]] == [FLEET["fleet-a"], numbers[PROJECT]]

    owner("beta", "monitoring", "metrics-scopes", "delete", "projects/fleet-b")
    scope = owner("beta", "monitoring", "metrics-scopes", "describe", PROJECT)
    assert [p["name"].rsplit("/", 1)[1] for p in scope["monitoredProjects"]] == [numbers[PROJECT], FLEET["fleet-a"]]

    # Admin Activity: each change is an operation's first and last entry in the scoping project's log.
    advance(fleet, 5)
    entries = list_entries(
        clients(fleet, email=OWNER).logging,
        'logName:"cloudaudit.googleapis.com%2Factivity" AND '
        'protoPayload.serviceName="monitoring.googleapis.com" AND protoPayload.methodName:"MonitoredProject"',
    )
    methods = sorted(audit_of(e).method_name.rsplit(".", 1)[1] for e in entries)
    assert methods == ["CreateMonitoredProject"] * 4 + ["DeleteMonitoredProject"] * 2  # an operation's first and last
    assert {audit_of(e).authentication_info.principal_email for e in entries} == {OWNER}
    assert all(e.operation.id for e in entries)


def test_refusals_name_what_was_wrong_and_change_nothing(fleet: Emulator) -> None:
    status, body = rest(fleet, "POST", f"{SCOPE}/projects", {"name": "projects/fleet-a"}, OWNER)
    assert status == 400
    assert "monitored_project.name" in body["error"]["message"]
    status, body = link(fleet, PROJECT)  # the scope already holds its own project
    assert (status, body["error"]["status"]) == (409, "ALREADY_EXISTS")
    status, body = link(fleet, "no-such-project")
    assert (status, body["error"]["message"]) == (
        403,
        "Permission monitoring.metricsScopes.link denied (or the resource may not exist).",
    )
    status, body = rest(fleet, "DELETE", f"{SCOPE}/projects/fleet-a", None, OWNER)
    assert (status, body["error"]["status"]) == (404, "NOT_FOUND")
    status, body = rest(fleet, "DELETE", f"{SCOPE}/projects/{PROJECT}", None, OWNER)
    assert status == 400
    status, scope = rest(fleet, "GET", SCOPE, None, OWNER)
    assert status == 200
    assert len(scope["monitoredProjects"]) == 1


def test_the_376th_monitored_project_is_refused(emulator: Emulator) -> None:
    numbers = {f"fleet-{i:03d}": str(600000000000 + i) for i in range(376)}
    add_projects(emulator, numbers, {"roles/owner": [f"user:{OWNER}"]})
    for project in list(numbers)[:375]:
        status, body = link(emulator, project)
        assert status == 200, body
    status, body = link(emulator, "fleet-375")
    assert (status, body["error"]["status"]) == (429, "RESOURCE_EXHAUSTED")
    assert "375" in body["error"]["message"]
    status, scope = rest(emulator, "GET", SCOPE, None, OWNER)
    assert len(scope["monitoredProjects"]) == 376  # the scoping project and 375 others


def test_list_time_series_in_the_scoping_project_reads_every_monitored_project(fleet: Emulator) -> None:
    for project in FLEET:
        assert link(fleet, project)[0] == 200
    write(fleet, "fleet-a", 1)
    write(fleet, "fleet-b", 0)
    write(fleet, PROJECT, 0)

    assert read(fleet, READER) == [PROJECT, "fleet-a", "fleet-b"]
    assert read(fleet, READER, ' AND resource.labels.project_id = "fleet-a"') == ["fleet-a"]
    assert read(fleet, READER, ' AND project = "fleet-b"') == ["fleet-b"]
    # Reading through a scope needs the permission on the scoping project; on the monitored projects it is no use.
    with pytest.raises(exceptions.PermissionDenied, match=r"monitoring\.timeSeries\.list"):
        read(fleet, FLEET_READER)
    # A monitored project's own view is its own series only.
    found = clients(fleet, email=FLEET_READER).metrics.list_time_series(
        name="projects/fleet-a",
        filter=f'metric.type = "{METRIC}"',
        interval=mt.TimeInterval(end_time=fleet.world.clock.now()),
    )
    assert [s.resource.labels["project_id"] for s in found] == ["fleet-a"]

    assert rest(fleet, "DELETE", f"{SCOPE}/projects/fleet-b", None, OWNER)[0] == 200
    assert read(fleet, READER) == [PROJECT, "fleet-a"]


def by_project_policy(channels: list[str]) -> mt.AlertPolicy:
    return mt.AlertPolicy(
        display_name="Fleet failures",
        combiner=mt.AlertPolicy.ConditionCombinerType.OR,
        conditions=[
            mt.AlertPolicy.Condition(
                display_name="failures in a project",
                condition_threshold=mt.AlertPolicy.Condition.MetricThreshold(
                    filter=f'metric.type = "{METRIC}" AND resource.type = "generic_task"',
                    aggregations=[
                        mt.Aggregation(
                            alignment_period=duration_pb2.Duration(seconds=60),
                            per_series_aligner=mt.Aggregation.Aligner.ALIGN_MAX,
                            cross_series_reducer=mt.Aggregation.Reducer.REDUCE_SUM,
                            group_by_fields=["resource.label.project_id"],
                        )
                    ],
                    comparison=mt.ComparisonType.COMPARISON_GT,
                    threshold_value=0,
                    duration=duration_pb2.Duration(seconds=0),
                ),
            )
        ],
        documentation=mt.AlertPolicy.Documentation(
            subject="Canary failing in ${resource.project}",
            content="Scope ${project}; project ${resource.project}.",
            mime_type="text/markdown",
        ),
        notification_channels=channels,
    )


def test_a_policy_in_the_scoping_project_opens_one_incident_per_failing_project(
    fleet: Emulator, receiver: Receiver
) -> None:
    for project in FLEET:
        assert link(fleet, project)[0] == 200
    hook = channel(fleet, "webhook_tokenauth", {"url": receiver.url})
    clients(fleet, email=OWNER).alerts.create_alert_policy(
        name=f"projects/{PROJECT}", alert_policy=by_project_policy([hook])
    )

    advance(fleet, 10)
    write(fleet, "fleet-a", 2)
    write(fleet, "fleet-b", 0)
    advance(fleet, 60)

    (incident,) = incidents(fleet)
    assert (incident["project"], incident["resource_project"], incident["state"]) == (PROJECT, "fleet-a", "OPEN")
    assert incident["group"]["resource"]["labels"] == {"project_id": "fleet-a"}
    (post,) = receiver.posts
    sent = post["json"]["incident"]
    assert sent["scoping_project_id"] == PROJECT
    assert sent["scoping_project_number"] == int(fleet.world.projects[PROJECT].number)
    assert sent["resource"]["labels"]["project_id"] == "fleet-a"
    assert sent["documentation"]["subject"] == "Canary failing in fleet-a"
    assert sent["documentation"]["content"] == f"Scope {PROJECT}; project fleet-a."

    write(fleet, "fleet-b", 3)
    advance(fleet, 60)
    opened = sorted((i["resource_project"], i["state"]) for i in incidents(fleet))
    assert opened == [("fleet-a", "OPEN"), ("fleet-b", "OPEN")]
    assert sorted(p["json"]["incident"]["documentation"]["subject"] for p in receiver.posts) == [
        "Canary failing in fleet-a",
        "Canary failing in fleet-b",
    ]


def test_a_project_removed_from_the_scope_is_no_longer_alerted_on(fleet: Emulator) -> None:
    assert link(fleet, "fleet-a")[0] == 200
    clients(fleet, email=OWNER).alerts.create_alert_policy(
        name=f"projects/{PROJECT}", alert_policy=by_project_policy([])
    )
    assert rest(fleet, "DELETE", f"{SCOPE}/projects/fleet-a", None, OWNER)[0] == 200
    advance(fleet, 10)
    write(fleet, "fleet-a", 2)
    advance(fleet, 60)
    assert incidents(fleet) == []
