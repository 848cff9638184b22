"""The evidence a failed run reads, pinned exactly: what the canary may do (TestIamPermissions), whether Data Access
audit logs are on in the project, its folders and its organization (every level read, refused, failing or out of
budget), the ListLogEntries calls and their per-run and per-instance limits, and how overlapping runs of one
instance share one gathering (EvidenceShare).

gather() runs in process with the real GAPIC clients against the emulator, as in test_mutants.py; worlds with a
hierarchy the shipped scenarios lack are small scenario files extending them. The run's deadline and the share's
clock are the canary's own seams and are set by hand, so no test sleeps or depends on how fast the machine is.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

import pytest
from google.api_core import exceptions as core

from devkit.emulated import admin
from emulator.core import iam
from emulator.server import Emulator
from function import evidence as evidence_module
from function.causes import Cause, Failure
from function.clients import Clients
from function.config import Config, Target
from function.evidence import LIST_CALLS_PER_MINUTE, Evidence, EvidenceShare, Item, gather
from function.probe import Outcome
from function.recorder import Deadline, Recorder

T = TypeVar("T")

SA = "canary-workload@demo-proj.iam.gserviceaccount.com"
SA_MEMBER = f"serviceAccount:{SA}"
ORG = "organizations/123456789012"
FOLDER = "folders/345678901234"
TARGET = Target("gemini-2.5-flash-lite", "us-central1")
DENIED = Outcome(
    TARGET,
    Cause.IAM_PERMISSION_DENIED,
    12.0,
    failure=Failure(Cause.IAM_PERMISSION_DENIED, 403, "PERMISSION_DENIED", "IAM_PERMISSION_DENIED"),
)
# Resource Manager's refusal of getIamPolicy, as the emulator gives it (emulator/services/kit.py caller_denied).
REFUSED = "the canary may not read this: The caller does not have permission"
ON_FOLDER_SUMMARY = (
    "Data Access audit logs (DATA_READ) for aiplatform.googleapis.com are on (set on folders/345678901234)"
)
# The gRPC methods the canary calls, as the emulator counts them (google/cloud/resourcemanager/v3/*.proto).
PROJECTS = "google.cloud.resourcemanager.v3.Projects"
FOLDERS = "google.cloud.resourcemanager.v3.Folders"
LIST_LOG_ENTRIES = "google.logging.v2.LoggingServiceV2.ListLogEntries"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[Callable[..., Emulator]]:
    """world("data_access_on_folder") or world("iam_denied", "folders: ...") (a scenario file extending it):
    an emulator on a running clock, on the metadata port tests/conftest.py reserved for this process."""
    port = int(os.environ["GCE_METADATA_HOST"].rsplit(":", 1)[1])
    started: list[Emulator] = []

    def start(scenario: str, extra: str = "") -> Emulator:
        for old in started:
            old.stop()
        started.clear()
        name = scenario
        if extra:
            path = tmp_path / f"world{len(list(tmp_path.iterdir()))}.yaml"
            path.write_text(f"extends: {scenario}\n{extra}")
            name = str(path)
        emulator = Emulator(name, metadata_port=port, clock_mode="running").start()
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


class Left(Deadline):
    """A run's deadline with a set number of seconds left, and a set timeout for each call."""

    def __init__(self, left: float, call_timeout: float = 10.0) -> None:
        super().__init__(30.0)
        self.left = left
        self.call_timeout = call_timeout
        self.asked = threading.Event()

    def remaining(self) -> float:
        self.asked.set()
        return self.left

    def timeout(self, cap: float | None = None) -> float:
        return self.call_timeout


class LowersAfter(Recorder):
    """A run's record of calls whose deadline drops to `left` seconds once the call `name` has been made."""

    def __init__(self, deadline: Left, name: str, left: float) -> None:
        super().__init__()
        self.deadline, self.name, self.left = deadline, name, left

    def call(self, name: str, fn: Callable[[], T]) -> T:
        try:
            return super().call(name, fn)
        finally:
            if name == self.name:
                self.deadline.left = self.left


@dataclass
class Run:
    evidence: Evidence
    recorder: Recorder
    slept: list[float]

    def items(self) -> dict[str, dict[str, Any]]:
        return {i.step: i.to_json() for i in self.evidence.items}

    def calls(self) -> list[str]:
        return [f"{c['method']} {c['outcome']}" for c in self.recorder.calls]


def run(
    emulator: Emulator,
    steps: set[str],
    outcomes: tuple[Outcome, ...] = (DENIED,),
    principal: str | None = SA,
    deadline: Deadline | None = None,
    recorder: Recorder | None = None,
    lag_budget_s: float = 0.0,
) -> Run:
    config = Config(emulator=emulator.grpc.address, evidence=frozenset(steps), audit_lag_budget_s=lag_budget_s)
    recorder = recorder or Recorder()
    slept: list[float] = []
    evidence = gather(
        config,
        Clients(config),
        "demo-proj",
        principal,
        list(outcomes),
        deadline or Left(20.0),
        recorder,
        sleep=slept.append,
    )
    return Run(evidence, recorder, slept)


def fault(emulator: Emulator, method: str, **kind: Any) -> None:
    status, body = admin(emulator, "POST", "faults", {"method": method, **kind})
    assert status == 201, body


UNAVAILABLE = {"status": {"code": 14, "message": "backend down"}}
HANG = {"hang_seconds": 3.0}  # the canary gives up after Left's 0.3 s call timeout; a call without one gets an answer


def exempt(emulator: Emulator, holder: str) -> None:
    """The workload exempted from the DATA_READ logs `holder` (a folder, or the project) turns on."""
    with emulator.world.lock:
        node = emulator.world.projects["demo-proj"] if holder == "project" else emulator.world.nodes[holder]
        for config in node.policy.audit_configs:
            for log_config in config.audit_log_configs:
                log_config.exempted_members.append(SA_MEMBER)
        node.policy.audit_configs.append(
            iam.AuditConfig("aiplatform.googleapis.com", [iam.AuditLogConfig("DATA_READ", [SA_MEMBER])])
        )


# --- TestIamPermissions -------------------------------------------------------------------------------------------


def test_the_permission_check_when_no_principal_is_known(world: Callable[..., Emulator]) -> None:
    result = run(world("iam_denied"), {"iam"}, principal=None)
    assert result.items() == {
        "iam": {
            "step": "iam",
            "status": "found",
            "summary": "the canary's identity does not hold aiplatform.endpoints.predict on projects/demo-proj: "
            "no role grants it",
            "data": {
                "held": [
                    "logging.logEntries.list",
                    "logging.privateLogEntries.list",
                    "monitoring.timeSeries.create",
                    "resourcemanager.projects.getIamPolicy",
                ],
                "missing": [],
            },
        }
    }
    assert result.calls() == ["resourcemanager.TestIamPermissions OK"]


@pytest.mark.parametrize(("left", "called"), [(0.5, True), (0.49, False)])
def test_each_read_needs_half_a_second_left(world: Callable[..., Emulator], left: float, called: bool) -> None:
    """TestIamPermissions, GetIamPolicy and the denial query each start only with at least 0.5 s of the run left."""
    result = run(world("iam_denied"), {"iam", "audit_config", "data_access"}, deadline=Left(left))
    items = result.items()
    if called:
        assert result.calls() == [
            "resourcemanager.TestIamPermissions OK",
            "resourcemanager.GetIamPolicy OK",
            "logging.ListLogEntries(denial) OK",
        ]
        assert [items[s]["status"] for s in ("iam", "audit_config", "data_access")] == ["found", "found", "pending"]
        return
    assert result.calls() == []
    assert items == {
        "iam": {"step": "iam", "status": "skipped", "summary": "no time left in the run's deadline"},
        "audit_config": {"step": "audit_config", "status": "skipped", "summary": "no time left in the run's deadline"},
        "data_access": {
            "step": "data_access",
            "status": "skipped",
            "summary": "not attempted: no time left: earlier steps used the run's 30 s deadline (0.5 s left)",
        },
    }


def test_calls_that_hang_are_given_up_at_the_runs_deadline(world: Callable[..., Emulator]) -> None:
    """Every read passes the run's remaining time as its timeout: a hung backend costs the step, not the run."""
    emulator = world("iam_denied")
    for method in (f"{PROJECTS}.TestIamPermissions", f"{PROJECTS}.GetIamPolicy", LIST_LOG_ENTRIES):
        fault(emulator, method, **HANG)
    result = run(emulator, {"iam", "audit_config", "data_access"}, deadline=Left(20.0, call_timeout=0.3))
    late = "the call did not finish within the run's deadline"
    assert result.items() == {
        "iam": {"step": "iam", "status": "unavailable", "summary": late},
        "audit_config": {"step": "audit_config", "status": "unavailable", "summary": late},
        "data_access": {"step": "data_access", "status": "unavailable", "summary": late},
    }
    assert result.calls() == [
        "resourcemanager.TestIamPermissions DEADLINE_EXCEEDED",
        "resourcemanager.GetIamPolicy DEADLINE_EXCEEDED",
        "logging.ListLogEntries(denial) DEADLINE_EXCEEDED",
    ]
    assert result.evidence.complete() is False


def test_a_failing_read_is_not_retried(world: Callable[..., Emulator]) -> None:
    """retry=None: one UNAVAILABLE costs the step (Google's default retry would spend the run's time on it)."""
    emulator = world("iam_denied")
    for method in (f"{PROJECTS}.TestIamPermissions", f"{PROJECTS}.GetIamPolicy", LIST_LOG_ENTRIES):
        fault(emulator, method, **UNAVAILABLE)
    result = run(emulator, {"iam", "audit_config", "data_access"})
    failed = "ServiceUnavailable 503: backend down"
    assert result.items() == {
        "iam": {"step": "iam", "status": "error", "summary": failed},
        "audit_config": {"step": "audit_config", "status": "error", "summary": failed},
        "data_access": {"step": "data_access", "status": "error", "summary": failed},
    }
    assert result.calls() == [
        "resourcemanager.TestIamPermissions UNAVAILABLE",
        "resourcemanager.GetIamPolicy UNAVAILABLE",
        "logging.ListLogEntries(denial) UNAVAILABLE",
    ]


def test_refused_reads_say_so_and_name_the_permission(world: Callable[..., Emulator]) -> None:
    emulator = world("iam_denied")
    denied = {"status": {"code": 7, "message": "The caller does not have permission"}}
    for method in (f"{PROJECTS}.TestIamPermissions", f"{PROJECTS}.GetIamPolicy"):
        fault(emulator, method, **denied)
    result = run(emulator, {"iam", "audit_config"})
    assert result.items() == {
        "iam": {"step": "iam", "status": "unavailable", "summary": REFUSED},
        "audit_config": {
            "step": "audit_config",
            "status": "unavailable",
            "summary": REFUSED,
            "missing_permission": "resourcemanager.projects.getIamPolicy",
        },
    }
    assert result.evidence.complete() is False  # TestIamPermissions refused names no permission


def test_the_permission_check_runs_only_when_asked_for(world: Callable[..., Emulator]) -> None:
    result = run(world("iam_denied"), {"audit_config"})
    assert result.calls() == ["resourcemanager.GetIamPolicy OK"]
    assert result.evidence.own_permissions is None


# --- Data Access audit logs: the project, then its folders and organization ----------------------------------------


def test_on_in_the_folder(world: Callable[..., Emulator]) -> None:
    result = run(world("data_access_on_folder"), {"audit_config"})
    assert result.items()["audit_config"] == {
        "step": "audit_config",
        "status": "found",
        "summary": f"{ON_FOLDER_SUMMARY}; {SA} holds roles/browser, roles/logging.privateLogViewer, "
        "roles/monitoring.metricWriter on the project",
        "data": {
            "data_read": True,
            "where": FOLDER,
            "roles_held": ["roles/browser", "roles/logging.privateLogViewer", "roles/monitoring.metricWriter"],
        },
    }
    assert result.calls() == [
        "resourcemanager.GetIamPolicy OK",
        "resourcemanager.GetProject OK",
        "resourcemanager.GetIamPolicy(folders) OK",
    ]
    assert (result.evidence.unreadable_ancestor, result.evidence.ancestor_failed) == (None, False)


def test_off_on_every_level(world: Callable[..., Emulator]) -> None:
    result = run(world("data_access_off_everywhere"), {"audit_config"}, principal="other@example.com")
    assert result.items()["audit_config"] == {
        "step": "audit_config",
        "status": "found",
        "summary": "Data Access audit logs (DATA_READ) for aiplatform.googleapis.com are off: not enabled on "
        "projects/demo-proj nor on any of its folders or its organization; other@example.com holds no roles on the "
        "project",
        "data": {"data_read": False, "roles_held": []},
    }
    assert result.calls() == [
        "resourcemanager.GetIamPolicy OK",
        "resourcemanager.GetProject OK",
        "resourcemanager.GetIamPolicy(folders) OK",
        "resourcemanager.GetFolder OK",
        "resourcemanager.GetIamPolicy(organizations) OK",
    ]


ORG_ON = "organization:\n  audit_logs:\n    aiplatform.googleapis.com: [DATA_READ]\n"


def test_on_in_the_organization_above_a_folder(world: Callable[..., Emulator]) -> None:
    result = run(world("data_access_off_everywhere", ORG_ON), {"audit_config"})
    assert (result.evidence.data_read_on, result.evidence.data_read_where) == (True, ORG)
    assert result.calls()[-1] == "resourcemanager.GetIamPolicy(organizations) OK"


def test_on_in_the_organization_right_above_the_project(world: Callable[..., Emulator]) -> None:
    result = run(
        world("data_access_off_everywhere", ORG_ON + f"projects:\n  demo-proj:\n    parent: {ORG}\n"), {"audit_config"}
    )
    assert (result.evidence.data_read_on, result.evidence.data_read_where) == (True, ORG)
    assert result.calls() == [
        "resourcemanager.GetIamPolicy OK",
        "resourcemanager.GetProject OK",
        "resourcemanager.GetIamPolicy(organizations) OK",
    ]


def test_no_principal_no_roles_named(world: Callable[..., Emulator]) -> None:
    result = run(world("data_access_off_everywhere"), {"audit_config"}, principal=None)
    assert result.items()["audit_config"]["summary"] == (
        "Data Access audit logs (DATA_READ) for aiplatform.googleapis.com are off: not enabled on projects/demo-proj "
        "nor on any of its folders or its organization"
    )
    assert result.evidence.roles_held == []


@pytest.mark.parametrize("holder", ["project", FOLDER])
def test_logs_on_with_the_principal_exempted_are_off_for_it(world: Callable[..., Emulator], holder: str) -> None:
    """An exemption of the principal in the project's or the folder's config means its calls are not logged there."""
    emulator = world("data_access_off_everywhere")
    exempt(emulator, holder)
    result = run(emulator, {"audit_config"})
    assert (result.evidence.data_read_on, result.evidence.data_read_where) == (False, None)
    assert result.calls()[-1] == "resourcemanager.GetIamPolicy(organizations) OK"


def _chain(folders: int) -> str:
    """`folders` folders between the project and the organization, the last one the scenario's own."""
    ids = ["111111111111", "222222222222"][: folders - 1]
    lines = ["folders:"]
    parent = FOLDER
    for fid in ids:
        lines += [f'  "{fid}":', f"    parent: {parent}"]
        parent = f"folders/{fid}"
    lines += ["projects:", "  demo-proj:", f"    parent: {parent}", ""]
    return "\n".join(lines)


def test_two_folders_are_read_to_the_organization(world: Callable[..., Emulator]) -> None:
    """GetProject, then GetIamPolicy and GetFolder for each folder, then the organization's policy: six calls, the
    most one run makes."""
    result = run(world("data_access_off_everywhere", _chain(2)), {"audit_config"})
    assert result.evidence.data_read_on is False
    assert len(result.calls()) == 1 + 6


def test_a_third_folder_is_beyond_the_runs_budget(world: Callable[..., Emulator]) -> None:
    result = run(world("data_access_off_everywhere", _chain(3)), {"audit_config"})
    reason = "TimeoutError: no call or time left in this run's budget"
    assert result.items()["audit_config"] == {
        "step": "audit_config",
        "status": "found",
        "summary": "Data Access audit logs (DATA_READ) for aiplatform.googleapis.com are not enabled on "
        f"projects/demo-proj; they may be enabled on a folder or the organization ({FOLDER} could not be read: "
        f"{reason}); {SA} holds roles/browser, roles/logging.privateLogViewer, roles/monitoring.metricWriter on the "
        "project",
        "data": {
            "roles_held": ["roles/browser", "roles/logging.privateLogViewer", "roles/monitoring.metricWriter"],
            "unreadable": FOLDER,
        },
    }
    assert (result.evidence.data_read_on, result.evidence.unreadable_reason) == (None, reason)
    assert result.evidence.ancestor_failed is True
    assert len(result.calls()) == 1 + 6


def test_a_folder_that_refuses_its_policy(world: Callable[..., Emulator]) -> None:
    """Refused is Google's answer: the evidence is complete (fit to share), the folder named with the refusal."""
    extra = f'folders:\n  "{FOLDER.removeprefix("folders/")}":\n    bindings:\n      roles/iam.securityReviewer: []\n'
    result = run(world("data_access_on_folder", extra), {"audit_config"}, principal=None)
    assert result.items()["audit_config"] == {
        "step": "audit_config",
        "status": "found",
        "summary": "Data Access audit logs (DATA_READ) for aiplatform.googleapis.com are not enabled on "
        f"projects/demo-proj; they may be enabled on a folder or the organization ({FOLDER} could not be read: "
        f"{REFUSED})",
        "data": {"roles_held": [], "unreadable": FOLDER},
    }
    assert result.calls()[-1] == "resourcemanager.GetIamPolicy(folders) PERMISSION_DENIED"
    assert result.evidence.ancestor_failed is False
    assert result.evidence.complete() is True


def test_a_folder_whose_read_fails(world: Callable[..., Emulator]) -> None:
    """A failed read (not a refusal) may answer next time: the evidence is not complete, and the read is not
    retried."""
    emulator = world("data_access_on_folder")
    fault(emulator, f"{FOLDERS}.GetIamPolicy", **UNAVAILABLE)
    result = run(emulator, {"audit_config"})
    assert (result.evidence.unreadable_ancestor, result.evidence.unreadable_reason) == (
        FOLDER,
        "ServiceUnavailable 503: backend down",
    )
    assert result.evidence.ancestor_failed is True
    assert result.evidence.complete() is False


def test_a_hung_get_project_is_given_up(world: Callable[..., Emulator]) -> None:
    emulator = world("data_access_on_folder")
    fault(emulator, f"{PROJECTS}.GetProject", **HANG)
    result = run(emulator, {"audit_config"}, deadline=Left(20.0, call_timeout=0.3))
    assert (result.evidence.unreadable_ancestor, result.evidence.unreadable_reason) == (
        "projects/demo-proj",
        "the call did not finish within the run's deadline",
    )
    assert result.calls()[-1] == "resourcemanager.GetProject DEADLINE_EXCEEDED"


def test_the_ancestors_are_read_only_with_time_left(world: Callable[..., Emulator]) -> None:
    deadline = Left(20.0)
    recorder = LowersAfter(deadline, "resourcemanager.GetIamPolicy", 0.49)
    result = run(world("data_access_on_folder"), {"audit_config"}, deadline=deadline, recorder=recorder)
    assert (result.evidence.unreadable_ancestor, result.evidence.unreadable_reason) == (
        "projects/demo-proj",
        "TimeoutError: no call or time left in this run's budget",
    )
    assert result.calls() == ["resourcemanager.GetIamPolicy OK"]


@pytest.mark.parametrize(
    ("error", "summary"),
    [
        pytest.param(TimeoutError("no time"), "TimeoutError: no time", id="no-code"),
        pytest.param(core.InternalServerError("boom"), "InternalServerError 500: boom", id="a-google-code"),
    ],
)
def test_a_failed_call_is_named_by_its_type_and_code_without_a_stray_space(error: Exception, summary: str) -> None:
    assert evidence_module._unavailable("admin_activity", error, None) == Item("admin_activity", "error", summary)


def test_the_ancestors_are_read_with_exactly_half_a_second_left(world: Callable[..., Emulator]) -> None:
    result = run(world("data_access_on_folder"), {"audit_config"}, deadline=Left(0.5))
    assert result.items()["audit_config"]["summary"].startswith(ON_FOLDER_SUMMARY + ";")


# --- ListLogEntries -----------------------------------------------------------------------------------------------


def test_three_list_calls_a_run_two_looks_for_the_denial_and_one_for_the_change(
    world: Callable[..., Emulator],
) -> None:
    """Data Access logs known on: the denial query looks, waits out the lag budget, looks again; the Admin Activity
    query still gets the run's third ListLogEntries."""
    result = run(world("iam_denied"), {"audit_config", "data_access", "admin_activity"}, lag_budget_s=20.0)
    assert result.calls() == [
        "resourcemanager.GetIamPolicy OK",
        "logging.ListLogEntries(denial) OK",
        "logging.ListLogEntries(denial) OK",
        "logging.ListLogEntries(activity) OK",
    ]
    assert len(result.slept) == 1
    items = result.items()
    assert items["data_access"]["status"] == "pending"
    assert "this run looked 2 times" in items["data_access"]["summary"]
    assert items["admin_activity"]["status"] == "not_found"


def test_an_instance_out_of_its_allowance_says_so_word_for_word(world: Callable[..., Emulator]) -> None:
    config = Config(emulator=world("iam_denied").grpc.address, evidence=frozenset({"admin_activity"}))
    found = gather(config, Clients(config), "demo-proj", SA, [DENIED], Left(20.0), Recorder(), permit=lambda: False)
    assert [i.to_json() for i in found.items] == [
        {
            "step": "admin_activity",
            "status": "skipped",
            "summary": f"not attempted: this instance made its {LIST_CALLS_PER_MINUTE} ListLogEntries of the last "
            "minute (Cloud Logging allows 60 a minute per project, shared with the project's people); a later run "
            "reads it",
        }
    ]


# --- Admin Activity: which organization-policy constraint to look for ------------------------------------------


def _org_policy(reason: str) -> Outcome:
    return Outcome(
        TARGET,
        Cause.ORG_POLICY,
        12.0,
        failure=Failure(Cause.ORG_POLICY, 400, "FAILED_PRECONDITION", reason),
    )


def test_the_constraints_of_org_policy_failures_only_are_looked_for(world: Callable[..., Emulator]) -> None:
    outcomes = (
        _org_policy("RESOURCE_USAGE_RESTRICTION_VIOLATED"),
        _org_policy("LOCATION_ORG_POLICY_VIOLATED"),
        DENIED,
    )
    result = run(world("healthy"), {"admin_activity"}, outcomes=outcomes)
    assert result.items()["admin_activity"]["summary"] == (
        "no admin change that explains it in the last 60 min of the project's Admin Activity log: "
        "constraints/gcp.resourceLocations, constraints/gcp.restrictServiceUsage is most likely set on a folder or "
        "the organization, whose changes are logged there, not in the project; ask your organization policy "
        "administrator (see remedies)"
    )


# --- Evidence -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("items", "ancestor_failed", "complete"),
    [
        pytest.param([], False, True, id="nothing"),
        pytest.param([], True, False, id="an-ancestor-failed"),
        pytest.param([Item("iam", "found", "s")], False, True, id="found"),
        pytest.param([Item("iam", "found", "s")], True, False, id="found-but-an-ancestor-failed"),
        pytest.param([Item("iam", "error", "s")], False, False, id="error"),
        pytest.param([Item("iam", "skipped", "s")], False, False, id="skipped"),
        pytest.param([Item("iam", "unavailable", "s")], False, False, id="unavailable"),
        pytest.param([Item("iam", "unavailable", "s", "p.q.r")], False, True, id="a-missing-permission"),
        pytest.param([Item("iam", "found", "s"), Item("audit_config", "error", "s")], False, False, id="one-of-two"),
    ],
)
def test_complete_is_every_step_answered(items: list[Item], ancestor_failed: bool, complete: bool) -> None:
    assert Evidence(items=items, ancestor_failed=ancestor_failed).complete() is complete


def test_item_finds_the_step_asked_for() -> None:
    iam_item, audit = Item("iam", "found", "a"), Item("audit_config", "found", "b")
    assert Evidence(items=[iam_item, audit]).item("audit_config") is audit
    assert Evidence(items=[iam_item]).item("audit_config") is None


def test_shared_evidence_names_the_run_and_when_it_was_gathered_in_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "IST-5:30")  # POSIX form: no time zone database needed
    time.tzset()
    try:
        at = datetime(2026, 11, 26, 9, 10, 5, tzinfo=timezone(timedelta(hours=2)))
        assert Evidence(shared_with="run-1", gathered_at=at).to_json() == {
            "items": [],
            "pending": False,
            "shared_with": "run-1",
            "gathered_at": "2026-11-26T07:10:05Z",
        }
        assert Evidence(shared_with="run-1").to_json() == {"items": [], "pending": False, "shared_with": "run-1"}
    finally:
        monkeypatch.undo()
        time.tzset()


# --- EvidenceShare ------------------------------------------------------------------------------------------------


class ShareClock:
    """time.monotonic for function/evidence.py, moved by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> ShareClock:
    fake = ShareClock()
    monkeypatch.setattr(evidence_module, "time", SimpleNamespace(monotonic=fake.monotonic, sleep=time.sleep))
    return fake


class Works:
    """`work` for EvidenceShare.get: counts its calls; each gathers a fresh, complete Evidence."""

    def __init__(self) -> None:
        self.made: list[Evidence] = []

    def __call__(self) -> Evidence:
        found = Evidence(items=[Item("iam", "found", f"gathering {len(self.made) + 1}")])
        self.made.append(found)
        return found


KEY: tuple[str, str, frozenset[Cause], frozenset[str]] = (
    "demo-proj",
    SA,
    frozenset({Cause.IAM_PERMISSION_DENIED}),
    frozenset(),
)


def test_six_list_calls_a_minute_per_instance(clock: ShareClock) -> None:
    share = EvidenceShare()
    assert [share.permit_list_call() for _ in range(7)] == [True] * 6 + [False]
    clock.now = 1059.999
    assert share.permit_list_call() is False
    clock.now = 1060.0  # exactly a minute after the first six
    assert [share.permit_list_call() for _ in range(7)] == [True] * 6 + [False]


def test_a_run_after_another_gathers_afresh_while_the_allowance_lasts(clock: ShareClock) -> None:
    share, work = EvidenceShare(), Works()
    first = share.get(KEY, "run-1", Left(20.0), work)
    second = share.get(KEY, "run-2", Left(20.0), work)
    assert len(work.made) == 2
    assert first is work.made[0]
    assert second is work.made[1]
    assert (first.shared_with, second.shared_with) == (None, None)


def _use(share: EvidenceShare, calls: int) -> None:
    assert all(share.permit_list_call() for _ in range(calls))


@pytest.mark.parametrize(("used", "reused"), [(3, False), (4, True)])
def test_a_burst_reuses_the_last_gathering_once_the_allowance_is_low(
    clock: ShareClock, used: int, reused: bool
) -> None:
    """Reused only when fewer ListLogEntries are left than one gathering may make (3)."""
    share, work = EvidenceShare(), Works()
    before = datetime.now(UTC)
    first = share.get(KEY, "run-1", Left(20.0), work)
    after = datetime.now(UTC)
    _use(share, used)
    second = share.get(KEY, "run-2", Left(20.0), work)
    if not reused:
        assert (len(work.made), second.shared_with) == (2, None)
        return
    assert len(work.made) == 1
    assert second.shared_with == "run-1"
    assert second.gathered_at is not None
    assert before <= second.gathered_at <= after
    assert second.items == first.items
    assert second.items is not first.items  # a copy: the first run's is untouched
    second.items.append(Item("admin_activity", "found", "x"))
    assert len(first.items) == 1


@pytest.mark.parametrize(("seconds", "reused"), [(59.999, True), (60.0, False)])
def test_only_a_gathering_of_the_last_minute_is_reused(clock: ShareClock, seconds: float, reused: bool) -> None:
    share, work = EvidenceShare(), Works()
    share.get(KEY, "run-1", Left(20.0), work)
    clock.now = 1000.0 + seconds - 1.0
    _use(share, 4)
    clock.now = 1000.0 + seconds
    second = share.get(KEY, "run-2", Left(20.0), work)
    assert (len(work.made), second.shared_with) == ((1, "run-1") if reused else (2, None))


def test_an_incomplete_gathering_is_never_reused(clock: ShareClock) -> None:
    share = EvidenceShare()
    share.get(KEY, "run-1", Left(20.0), lambda: Evidence(items=[Item("iam", "error", "x")]))
    _use(share, 4)
    work = Works()
    second = share.get(KEY, "run-2", Left(20.0), work)
    assert (second, second.shared_with) == (work.made[0], None)


def test_another_key_is_never_reused(clock: ShareClock) -> None:
    share, work = EvidenceShare(), Works()
    share.get(KEY, "run-1", Left(20.0), work)
    _use(share, 4)
    other = share.get(("demo-proj", SA, frozenset({Cause.API_DISABLED}), frozenset()), "run-2", Left(20.0), work)
    assert (len(work.made), other.shared_with) == (2, None)


class Overlap:
    """Run 1 gathers in a thread of its own and finishes only once run 2 has taken its place in the queue (run 2's
    deadline was asked how long it may wait), so the two always overlap; `fails` makes run 1's gathering raise."""

    def __init__(self, share: EvidenceShare, fails: bool = False) -> None:
        self.share, self.fails = share, fails
        self.second = Left(20.0)
        self.first: list[Evidence | BaseException] = []
        self.first_started = threading.Event()
        self.made = Works()

    def _work(self) -> Evidence:
        self.first_started.set()
        assert self.second.asked.wait(5.0)
        if self.fails:
            raise RuntimeError("gathering failed")
        return self.made()

    def _first(self) -> None:
        try:
            self.first.append(self.share.get(KEY, "run-1", Left(20.0), self._work))
        except RuntimeError as error:
            self.first.append(error)

    def __call__(self, second_work: Callable[[], Evidence]) -> Evidence:
        thread = threading.Thread(target=self._first)
        thread.start()
        assert self.first_started.wait(5.0)
        try:
            return self.share.get(KEY, "run-2", self.second, second_work)
        finally:
            thread.join(10.0)


def test_an_overlapping_run_waits_for_the_gathering_under_way() -> None:
    overlap = Overlap(EvidenceShare())
    own = Works()
    second = overlap(own)
    [first] = overlap.first
    assert own.made == []
    assert isinstance(first, Evidence)
    assert first.shared_with is None
    assert (second.shared_with, second.items) == ("run-1", first.items)
    assert second is not first


def test_an_overlapping_run_gathers_alone_when_the_gathering_under_way_fails() -> None:
    overlap = Overlap(EvidenceShare(), fails=True)
    own = Works()
    second = overlap(own)
    assert [str(e) for e in overlap.first] == ["gathering failed"]
    assert (second, second.shared_with) == (own.made[0], None)


def test_an_overlapping_run_without_a_second_to_spare_gathers_alone() -> None:
    """A run may wait only for what its deadline leaves after a second for its own report."""
    share = EvidenceShare()
    release = threading.Event()
    started = threading.Event()

    def slow() -> Evidence:
        started.set()
        release.wait(5.0)
        return Evidence()

    first = threading.Thread(target=lambda: share.get(KEY, "run-1", Left(20.0), slow))
    first.start()
    try:
        assert started.wait(5.0)
        own = Works()
        second = share.get(KEY, "run-2", Left(1.0), own)
        assert (second, second.shared_with) == (own.made[0], None)
    finally:
        release.set()
        first.join(10.0)


# --- The look-back window ---------------------------------------------------------------------------------------

# 01:30 on the night US Eastern time falls back (2026-11-01): the second 01:30, in EST.
FALL_BACK = datetime(2026, 11, 1, 6, 30, tzinfo=UTC)


class FallBackNow(datetime):
    """datetime with now() fixed at FALL_BACK, as datetime.now gives it (naive local time without a zone)."""

    @classmethod
    def now(cls, tz: Any = None) -> Any:
        return datetime.fromtimestamp(FALL_BACK.timestamp(), tz)


def test_the_look_back_is_counted_in_utc_whatever_the_hosts_zone(
    world: Callable[..., Emulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An hour back from the second 01:30 of a fall-back night is 00:30 EST (05:30 UTC), not 00:30 EDT."""
    emulator = world("iam_denied")
    monkeypatch.setattr(evidence_module, "datetime", FallBackNow)
    monkeypatch.setenv("TZ", "EST5EDT,M3.2.0,M11.1.0")  # POSIX form: no time zone database needed
    time.tzset()
    try:
        result = run(emulator, {"data_access"})
    finally:
        monkeypatch.undo()
        time.tzset()
    assert result.evidence.logs_query is not None
    assert result.evidence.logs_query.startswith('timestamp>="2026-11-01T05:30:00Z" AND (')
