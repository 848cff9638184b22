"""Scenario files: every shipped one builds; a bad one is refused with a message naming the file and the field,
and nothing is built from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator.core import changes, scenario
from emulator.core.world import World
from tests.shared import WORKLOAD

SHIPPED = scenario.shipped_names()


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_scenario_builds(name: str) -> None:
    world = scenario.build(name)
    assert world.workload == WORKLOAD
    assert "demo-proj" in world.projects
    assert world.clock.mode == "virtual"
    doc = scenario.load_document(name)
    assert doc.get("description"), f"{name}.yaml has no description"
    assert all(event.at > world.clock.now() for event in world.timeline)  # timelines lie ahead of the start


def test_the_failure_scenarios_are_shipped() -> None:
    causes = {"iam_denied", "deny_policy", "api_disabled", "billing_disabled", "vpc_sc", "org_policy"}
    causes |= {"wrong_project", "model_unavailable", "quota", "credentials_expired", "metadata_down"}
    assert causes <= set(SHIPPED)


ACTIONS = ", ".join(sorted(changes.ACTION_PARAMS))
BAD = [
    pytest.param(
        "colour: red\n",
        "colour: unknown field; allowed: clock, deny, description, folders, logging, metadata, models, name, "
        "organization, perimeter, "
        "principals, projects, quota, region, timeline, tokens, workload",
        id="unknown-top-field",
    ),
    pytest.param(
        "projects:\n  demo-proj:\n    billng: false\n",
        "projects.demo-proj.billng: unknown field; allowed: allowed_models, audit_logs, billing, bindings, "
        "denied_services, number, parent, services",
        id="unknown-project-field",
    ),
    pytest.param(
        "projects:\n  demo-proj:\n    billing: 'no'\n",
        "projects.demo-proj.billing: expected true or false, got str 'no'",
        id="wrong-type-bool",
    ),
    pytest.param(
        "logging:\n  ingestion_lag_seconds: 3s\n",
        "logging.ingestion_lag_seconds: expected a number >= 0, got str '3s'",
        id="wrong-type-number",
    ),
    pytest.param(
        "logging:\n  ingestion_lag_seconds: 1.0e+300\n",
        "logging.ingestion_lag_seconds: at most 3153600000 (100 years), got 1e+300",
        id="huge-number",  # would overflow the clock at load
    ),
    pytest.param(
        "logging:\n  ingestion_lag_seconds: .nan\n",
        "logging.ingestion_lag_seconds: expected a number >= 0, got float nan",
        id="nan",
    ),
    pytest.param(
        "tokens:\n  ttl_seconds: .inf\n",
        "tokens.ttl_seconds: at most 3153600000 (100 years), got inf",
        id="infinity",
    ),
    pytest.param(
        "projects:\n  demo-proj:\n    services: aiplatform.googleapis.com\n",
        "projects.demo-proj.services: expected a list, got str 'aiplatform.googleapis.com'",
        id="wrong-type-list",
    ),
    pytest.param(
        "projects:\n  demo-proj:\n    bindings:\n      roles/aiplatform.user: [canary@demo-proj.example]\n",
        "projects.demo-proj.bindings.roles/aiplatform.user[0]: 'canary@demo-proj.example' is not an IAM member "
        "(user:EMAIL, serviceAccount:EMAIL, group:EMAIL, …)",
        id="bad-member",
    ),
    pytest.param(
        "projects:\n  demo-proj:\n    bindings:\n      roles/aiplatform.usr: [user:a@example.com]\n",
        "projects.demo-proj.bindings.roles/aiplatform.usr: unknown role (see emulator/core/iam.py for the catalogue)",
        id="unknown-role",
    ),
    pytest.param(
        "projects:\n  Demo_Proj:\n    number: 123456789\n",
        "projects.Demo_Proj: a project id is 6-30 lower-case letters, digits or hyphens, starting with a letter",
        id="bad-project-id",
    ),
    pytest.param(
        "projects:\n  demo-proj:\n    number: abc\n",
        "projects.demo-proj.number: expected a project number (digits), got str 'abc'",
        id="bad-project-number",
    ),
    pytest.param(
        "projects:\n  demo-proj:\n    audit_logs:\n      aiplatform.googleapis.com: [DATA_READS]\n",
        "projects.demo-proj.audit_logs.aiplatform.googleapis.com[0]: expected one of ADMIN_READ, DATA_READ, "
        "DATA_WRITE, got str 'DATA_READS'",
        id="bad-audit-log-type",
    ),
    pytest.param(
        "workload: canary-workload\n",
        "workload: 'canary-workload' is not a valid e-mail address",
        id="bad-workload-email",
    ),
    pytest.param(
        "clock:\n  mode: fast\n",
        "clock.mode: expected virtual, running or wall, got str 'fast'",
        id="bad-clock-mode",
    ),
    pytest.param(
        "deny:\n  - {principal: 'serviceAccount:a@b.iam.gserviceaccount.com', permission: predict}\n",
        "deny[0].permission: 'predict' is not a valid permission name",
        id="bad-deny-permission",
    ),
    pytest.param(
        "perimeter:\n  projects: [other-proj]\n",
        "perimeter.projects[0]: 'other-proj' is not one of the scenario's projects",
        id="perimeter-unknown-project",
    ),
    pytest.param(
        "timeline:\n  - {at: '+10x', actor: alice@example.com, action: disable_billing}\n",
        "timeline[0].at: '+10x' is neither an offset like +10m / +1h30m / +90s nor an RFC 3339 time",
        id="bad-time-offset",
    ),
    pytest.param(
        "timeline:\n  - {at: '+10m', actor: alice@example.com, action: explode}\n",
        f"timeline[0].action: expected one of {ACTIONS}, got str 'explode'",
        id="unknown-action",
    ),
    pytest.param(
        "timeline:\n  - {at: '+10m', actor: alice@example.com, action: remove_binding, role: roles/aiplatform.user}\n",
        "timeline[0].member: required by action remove_binding",
        id="missing-action-param",
    ),
    pytest.param(
        "timeline:\n  - {at: '+10m', actor: alice@example.com, action: disable_service, service: x, colour: red}\n",
        "timeline[0].colour: unknown field; allowed: api_version, project, service",
        id="unknown-action-param",
    ),
    pytest.param(
        "timeline:\n  - {at: '+10m', actor: alice, action: disable_billing}\n",
        "timeline[0].actor: 'alice' is not a valid e-mail address",
        id="bad-actor",
    ),
    pytest.param(
        "timeline:\n  - {at: '+10m', actor: a@example.com, action: add_binding, role: roles/x, member: 'user:b@c.d'}\n",
        "timeline[0].role: unknown role",
        id="action-unknown-role",
    ),
    pytest.param(
        "projects: [unclosed\n",
        "not valid YAML at line 3, column 1: expected ',' or ']', but got '<stream end>'",
        id="bad-yaml",
    ),
    pytest.param("- a\n- b\n", "the top level must be a mapping", id="top-level-list"),
    pytest.param("extends: [healthy]\n", "extends: expected a scenario name", id="extends-not-a-name"),
]


@pytest.mark.parametrize(("body", "message"), BAD)
def test_bad_scenario_is_refused_naming_the_field(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(body if body.startswith(("- ", "extends")) else "extends: healthy\n" + body)
    with pytest.raises(scenario.ScenarioError) as caught:
        scenario.build(str(path))
    assert str(caught.value) == f"scenario bad.yaml: {message}"


def test_circular_extends_is_refused(tmp_path: Path) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(f"extends: {b}\n")
    b.write_text(f"extends: {a}\n")
    with pytest.raises(scenario.ScenarioError) as caught:
        scenario.build(str(a))
    assert str(caught.value) == f"scenario a.yaml: extends: circular ({a} -> {b} -> {a})"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        pytest.param(
            "nope",
            f"unknown scenario 'nope'; shipped scenarios: {', '.join(SHIPPED)}",
            id="unknown-shipped-name",
        ),
        pytest.param("/nonexistent/x.yaml", "scenario file not found: /nonexistent/x.yaml", id="missing-file"),
    ],
)
def test_unknown_scenario_is_refused(name: str, message: str) -> None:
    with pytest.raises(scenario.ScenarioError) as caught:
        scenario.build(name)
    assert str(caught.value) == message


def test_a_refused_scenario_leaves_the_world_as_it_was(tmp_path: Path) -> None:
    world = scenario.build("healthy", World())
    path = tmp_path / "bad.yaml"
    path.write_text("extends: billing_disabled\nquota: {'*': -1}\n")
    with pytest.raises(scenario.ScenarioError):
        scenario.build(str(path), world)
    assert world.projects["demo-proj"].billing_enabled is True
    assert world.quota_rpm == {}


def test_own_scenario_file_extends_a_shipped_one(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("extends: iam_denied\nprojects:\n  demo-proj:\n    billing: false\n")
    world = scenario.build(str(path))
    project = world.projects["demo-proj"]
    assert project.billing_enabled is False
    assert "roles/aiplatform.user" not in {b.role for b in project.policy.bindings}  # from iam_denied
    assert project.policy.data_logging_on("aiplatform.googleapis.com", "DATA_READ", "user:x@example.com")
