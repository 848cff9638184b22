"""The deploy tool's IAM handling, pinned down where mutation testing found it loose (`make mutation`, MUTATION.md):
grants and their record, the build account, Data Access logs, public members on the function's service, teardown.

As in test_reconcile.py, the tool's own gcloud wrapper is replaced by a stand-in, here one that keeps a project's IAM
state in dicts and applies the tool's commands to it the way gcloud documents them; no Google code is replaced. Each
test asserts the state the project is left in and the record on the invoker account, not the calls alone.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from deploy.alerting import Monitoring
from deploy.gcloud import Gcloud, GcloudError
from deploy.reconcile import BUILD_ROLE, UNLABELLED, Manifest, Project, _data_read_on, _members, source_hash
from deploy.spec import make_spec
from function.roles import OPTIONAL, REQUIRED
from tests.shared import WORKLOAD

WHO = f"serviceAccount:{WORKLOAD}"
INVOKER = "gemini-canary-invoker@demo-proj.iam.gserviceaccount.com"
BUILDER = "123456-compute@developer.gserviceaccount.com"
VERTEX = "aiplatform.googleapis.com"


def _flag(argv: tuple[str, ...], name: str) -> str:
    return next(a.split("=", 1)[1] for a in argv if a.startswith(f"--{name}="))


def _add(policy: dict[str, Any], role: str, who: str) -> None:
    bindings = policy.setdefault("bindings", [])
    binding = next((b for b in bindings if b["role"] == role and "condition" not in b), None)
    if binding is None:
        bindings.append({"role": role, "members": [who]})
    elif who not in binding.get("members", []):
        binding.setdefault("members", []).append(who)


def _remove(policy: dict[str, Any], role: str, who: str) -> None:
    for binding in policy.get("bindings", []):
        if binding["role"] == role and "condition" not in binding and who in binding.get("members", []):
            binding["members"].remove(who)
    policy["bindings"] = [b for b in policy.get("bindings", []) if b.get("members")]


# The reads of the function's resources and the project, whole: one naming another resource or leaving out a flag
# is a mistake the stand-in refuses.
READS = {
    ("projects", "get-iam-policy"): ("projects", "get-iam-policy", "demo-proj"),
    ("projects", "describe"): ("projects", "describe", "demo-proj"),
    ("run", "services", "get-iam-policy"): (
        "run", "services", "get-iam-policy", "gemini-canary", "--region=us-central1"
    ),
    ("scheduler", "jobs", "describe"): ("scheduler", "jobs", "describe", "gemini-canary", "--location=us-central1"),
    ("functions", "describe"): ("functions", "describe", "gemini-canary", "--region=us-central1", "--gen2"),
    ("pubsub", "topics", "describe"): ("pubsub", "topics", "describe", "gemini-canary"),
    ("monitoring", "dashboards", "list"): ("monitoring", "dashboards", "list"),
}  # fmt: skip


class IamWorld(Gcloud):
    """One project's IAM as gcloud shows it; `refuse` fails the commands whose text contains one of its strings,
    `lost` fails them after they took effect (the reply lost), `sticky_public` makes the service's set-iam-policy
    change nothing (something puts allUsers back)."""

    def __init__(
        self,
        *,
        dry_run: bool = False,
        refuse: tuple[str, ...] = (),
        lost: tuple[str, ...] = (),
        sticky_public: bool = False,
    ) -> None:
        super().__init__("demo-proj", dry_run=dry_run)
        self.project_policy: dict[str, Any] = {"bindings": [], "etag": "BwY="}
        self.service_policy: dict[str, Any] = {"bindings": [], "etag": "BwZ="}
        self.accounts: dict[str, dict[str, Any]] = {WORKLOAD: {"email": WORKLOAD}}
        self.refuse = refuse
        self.lost = lost
        self.sticky_public = sticky_public
        self.done: list[tuple[str, ...]] = []
        self.reads: list[tuple[str, ...]] = []
        self.others: dict[tuple[str, ...], Any] = {}  # what other reads answer: (argv prefix) → document
        self.files: list[str] = []  # the policy files set-iam-policy was given

    def read(self, *argv: str) -> Any:
        self.reads.append(argv)
        for prefix, whole in READS.items():
            assert argv[: len(prefix)] != prefix or argv == whole, argv
        if argv[:3] == ("iam", "service-accounts", "describe"):
            return copy.deepcopy(self.accounts.get(argv[3]))
        if argv[:2] == ("projects", "get-iam-policy"):
            return copy.deepcopy(self.project_policy)
        if argv[:2] == ("projects", "describe"):
            return {"projectId": "demo-proj", "projectNumber": "123456"}
        if argv[:3] == ("run", "services", "get-iam-policy"):
            return copy.deepcopy(self.service_policy)
        for prefix, answer in self.others.items():
            if argv[: len(prefix)] == prefix:
                return copy.deepcopy(answer)
        if argv[:3] == ("monitoring", "dashboards", "list"):
            return []
        return None  # scheduler job, function, topic: absent unless `others` has them

    def change(self, *argv: str, **_: Any) -> Any:
        self.plan.append(" ".join(argv))
        if self.dry_run:
            return None
        if any(r in " ".join(argv) for r in self.refuse):
            raise GcloudError(list(argv), 1, "ERROR: (gcloud) PERMISSION_DENIED: refused")
        self.done.append(argv)
        self.check(argv)
        if argv[:3] == ("iam", "service-accounts", "create"):
            self.accounts[f"{argv[3]}@demo-proj.iam.gserviceaccount.com"] = {"description": _flag(argv, "description")}
        elif argv[:3] == ("iam", "service-accounts", "update"):
            self.accounts[argv[3]]["description"] = _flag(argv, "description")
        elif argv[:3] == ("iam", "service-accounts", "delete"):
            del self.accounts[argv[3]]
        elif argv[:2] == ("projects", "add-iam-policy-binding"):
            assert _flag(argv, "condition") == "None"
            _add(self.project_policy, _flag(argv, "role"), _flag(argv, "member"))
        elif argv[:2] == ("projects", "remove-iam-policy-binding"):
            assert _flag(argv, "condition") == "None"
            _remove(self.project_policy, _flag(argv, "role"), _flag(argv, "member"))
        elif argv[:2] == ("projects", "set-iam-policy"):
            self.project_policy = json.loads(Path(argv[3]).read_text())
        elif argv[:3] == ("run", "services", "set-iam-policy"):
            assert argv[5] == "--region=us-central1"
            if not self.sticky_public:
                self.service_policy = json.loads(Path(argv[4]).read_text())
        elif argv[:2] == ("functions", "add-invoker-policy-binding"):
            _add(self.service_policy, "roles/run.invoker", _flag(argv, "member"))
        if any(r in " ".join(argv) for r in self.lost):
            raise GcloudError(list(argv), 1, "ERROR: (gcloud) DEADLINE_EXCEEDED: the reply was lost")
        return None

    def check(self, argv: tuple[str, ...]) -> None:
        """The shape gcloud's documentation gives each command the tool runs; a policy file is JSON, by name too."""
        if argv[:3] == ("iam", "service-accounts", "create"):
            assert argv[3:5] == ("gemini-canary-invoker", "--display-name=Gemini canary invoker"), argv
            assert [a.split("=", 1)[0] for a in argv[5:]] == ["--description"], argv
        elif argv[1:2] in (("add-iam-policy-binding",), ("remove-iam-policy-binding",)):
            assert (argv[0], argv[2]) == ("projects", "demo-proj"), argv
            assert [a.split("=", 1)[0] for a in argv[3:]] == ["--member", "--role", "--condition"], argv
        elif argv[:2] == ("projects", "set-iam-policy"):
            assert (argv[2], len(argv), Path(argv[3]).suffix) == ("demo-proj", 4, ".json"), argv
            self.files.append(argv[3])
        elif argv[:3] == ("run", "services", "set-iam-policy"):
            assert (argv[3], len(argv), Path(argv[4]).suffix) == ("gemini-canary", 6, ".json"), argv
            self.files.append(argv[4])
        elif argv[:2] == ("functions", "add-invoker-policy-binding"):
            assert (argv[2:4], len(argv)) == (("gemini-canary", "--region=us-central1"), 5), argv

    def held(self, who: str = WHO) -> set[str]:
        return {
            b["role"]
            for b in self.project_policy.get("bindings", [])
            if who in b.get("members", []) and "condition" not in b
        }

    def record(self) -> Manifest:
        return Manifest.parse(self.accounts[INVOKER]["description"])


@dataclass
class Managed:
    name: str
    display_name: str = ""
    labels: dict[str, str] = field(default_factory=dict)


class NoMonitoring(Monitoring):
    """The tool's Monitoring wrapper answering from lists: the alert policies and channels it manages."""

    policies: list[Managed] = []  # noqa: RUF012 - replaced per instance by a test
    channels: list[Managed] = []  # noqa: RUF012
    deleted: list[str] = []  # noqa: RUF012

    def managed_policies(self) -> list[Any]:
        return list(self.policies)

    def managed_channels(self) -> list[Any]:
        return list(self.channels)

    def delete_policy(self, name: str) -> None:
        self.deleted.append(name)

    def delete_channel(self, name: str) -> None:
        self.deleted.append(name)


def project(world: IamWorld, **spec: Any) -> Project:
    built = make_spec(projects=["demo-proj"], region="us-central1", service_account=WORKLOAD, **spec)
    return Project(built, "demo-proj", world, NoMonitoring("demo-proj", dry_run=world.dry_run))


def iam(target: Project) -> None:
    """The IAM part of apply, in apply's order."""
    target._invoker_account()
    target._grants()
    target._build_account()
    target._data_access_logs()
    target._save_manifest()


def notes(target: Project) -> list[tuple[str, str, str]]:
    return [(c.resource, c.action, c.detail) for c in target.changes]


# --- the record (Manifest) ---


def test_the_record_reads_back_what_it_wrote() -> None:
    written = Manifest(granted={"roles/browser", "roles/aiplatform.user"}, audit=True, build=BUILDER)
    assert written.text() == (
        f"Invoker of the Gemini canary. granted=roles/aiplatform.user,roles/browser; audit=1; build={BUILDER}"
    )
    assert Manifest.parse(written.text()) == written
    assert Manifest().text() == "Invoker of the Gemini canary. granted=; audit=0"
    assert Manifest.parse(Manifest().text()) == Manifest()


@pytest.mark.parametrize("description", [None, "", "made by hand", "granted=roles/browser; audit=2"])
def test_a_description_that_is_no_record_records_nothing(description: str | None) -> None:
    assert Manifest.parse(description) == Manifest(granted=set(), audit=False, build=None)


def test_the_record_never_names_a_role_the_tool_does_not_manage() -> None:
    parsed = Manifest.parse("x granted=roles/owner,roles/browser,roles/editor; audit=0")
    assert parsed == Manifest(granted={"roles/browser"}, audit=False, build=None)


# --- pure helpers ---


def test_members_include_conditional_bindings_and_keep_their_role() -> None:
    policy = {
        "bindings": [
            {"role": "roles/a", "members": ["allUsers", "user:x@example.com"]},
            {"role": "roles/b", "members": ["allUsers"], "condition": {"expression": "true"}},
            {"role": "roles/c"},
        ]
    }
    assert _members(policy, lambda m: m == "allUsers") == [("roles/a", "allUsers"), ("roles/b", "allUsers")]
    assert _members({}, lambda m: True) == []
    assert _members({"bindings": [{"members": ["allUsers"]}]}, lambda m: True) == [("", "allUsers")]


@pytest.mark.parametrize(
    ("configs", "on"),
    [
        ([{"service": VERTEX, "auditLogConfigs": [{"logType": "DATA_READ"}]}], True),
        ([{"service": VERTEX, "auditLogConfigs": [{"logType": "DATA_WRITE"}, {"logType": "DATA_READ"}]}], True),
        ([{"service": VERTEX, "auditLogConfigs": [{"logType": "DATA_WRITE"}]}], False),
        ([{"service": VERTEX}], False),
        ([{"service": "allServices", "auditLogConfigs": [{"logType": "DATA_READ"}]}], False),
        ([], False),
    ],
)
def test_data_read_on_means_data_read_for_vertex_ai(configs: list[dict[str, Any]], on: bool) -> None:
    assert _data_read_on({"auditConfigs": configs}) is on
    assert _data_read_on({}) is False


# --- grants ---


def test_a_first_run_creates_the_invoker_grants_every_role_and_records_them() -> None:
    world = IamWorld()
    target = project(world, evidence_roles=True)
    iam(target)
    assert world.held() == set(REQUIRED) | set(OPTIONAL)
    assert world.held(f"serviceAccount:{BUILDER}") == {BUILD_ROLE}
    assert world.record() == Manifest(granted=set(REQUIRED) | set(OPTIONAL), audit=False, build=BUILDER)
    assert ("invoker service account", "created", INVOKER) in notes(target)
    assert all((f"grant {role}", "created", WHO) in notes(target) for role in REQUIRED + OPTIONAL)
    assert ("build account roles/cloudbuild.builds.builder", "created", BUILDER) in notes(target)
    assert ("Data Access audit logs (aiplatform)", "unchanged", "off") in notes(target)

    again = project(world, evidence_roles=True)
    world.done.clear()
    iam(again)
    assert world.done == []
    assert ("invoker service account", "unchanged", INVOKER) in notes(again)
    assert all((f"grant {role}", "unchanged", "") in notes(again) for role in REQUIRED + OPTIONAL)
    assert world.record() == Manifest(granted=set(REQUIRED) | set(OPTIONAL), audit=False, build=BUILDER)


def test_a_role_held_only_under_a_condition_is_granted_unconditionally() -> None:
    world = IamWorld()
    world.project_policy["bindings"] = [
        {"role": REQUIRED[0], "members": [WHO], "condition": {"title": "weekdays", "expression": "true"}}
    ]
    target = project(world)
    iam(target)
    assert REQUIRED[0] in world.held()
    assert ("projects", "add-iam-policy-binding", "demo-proj", f"--member={WHO}", f"--role={REQUIRED[0]}",
            "--condition=None") in world.done  # fmt: skip
    assert REQUIRED[0] in world.record().granted


def test_roles_held_already_are_neither_granted_nor_recorded() -> None:
    world = IamWorld()
    for role in REQUIRED:
        _add(world.project_policy, role, WHO)
    target = project(world)
    iam(target)
    assert not any(step[:2] == ("projects", "add-iam-policy-binding") and WHO in " ".join(step) for step in world.done)
    assert world.record().granted == set()


def test_optional_roles_no_longer_requested_are_removed_only_where_the_tool_granted_them() -> None:
    world = IamWorld()
    iam(project(world, evidence_roles=True))
    # someone else granted roles/browser by hand after it was recorded and removed once: simulate a role held
    # but not in the record, and one in the record that someone already took away
    _remove(world.project_policy, OPTIONAL[0], WHO)
    target = project(world, evidence_roles=False)
    iam(target)
    assert world.held() == set(REQUIRED)
    assert world.record().granted == set(REQUIRED)
    assert (f"grant {OPTIONAL[1]}", "deleted", "no longer requested") in notes(target)
    assert not any(n[0] == f"grant {OPTIONAL[0]}" for n in notes(target))

    by_hand = IamWorld()
    _add(by_hand.project_policy, OPTIONAL[1], WHO)
    iam(project(by_hand, evidence_roles=False))
    assert OPTIONAL[1] in by_hand.held()  # not the tool's: left alone


def test_a_refused_grant_keeps_the_granted_ones_in_the_record() -> None:
    world = IamWorld(refuse=(f"--role={REQUIRED[1]}",))
    target = project(world)
    target._invoker_account()
    with pytest.raises(GcloudError):
        target._grants()
    assert world.held() == {REQUIRED[0]}
    assert world.record().granted == {REQUIRED[0]}


def test_when_even_the_policy_cannot_be_read_after_a_refusal_the_record_stays_as_written() -> None:
    world = IamWorld(refuse=(f"--role={REQUIRED[0]}",))
    target = project(world)
    target._invoker_account()
    target._policy()  # read once before the grants; the read after the refusal is the one that fails

    def broken(*argv: str) -> Any:
        raise GcloudError(list(argv), 1, "ERROR: (gcloud) UNAVAILABLE")

    world.read = broken  # type: ignore[method-assign]
    with pytest.raises(GcloudError, match="PERMISSION_DENIED"):
        target._grants()
    assert world.record().granted == set(REQUIRED)


# --- the build account ---


def test_a_build_account_holding_editor_needs_no_grant() -> None:
    world = IamWorld()
    _add(world.project_policy, "roles/editor", f"serviceAccount:{BUILDER}")
    target = project(world)
    iam(target)
    assert world.held(f"serviceAccount:{BUILDER}") == {"roles/editor"}
    assert world.record().build is None
    assert ("build account roles/cloudbuild.builds.builder", "unchanged", f"{BUILDER} holds roles/editor") in notes(
        target
    )


def test_a_new_build_account_takes_the_grant_from_the_one_the_tool_granted_before() -> None:
    world = IamWorld()
    iam(project(world))
    other = "builder@demo-proj.iam.gserviceaccount.com"
    target = project(world, build_service_account=other)
    iam(target)
    assert world.held(f"serviceAccount:{BUILDER}") == set()
    assert world.held(f"serviceAccount:{other}") == {BUILD_ROLE}
    assert world.record().build == other
    assert (f"grant {BUILD_ROLE}", "deleted", f"{BUILDER} no longer builds the function") in notes(target)


def test_a_previous_build_account_no_longer_holding_the_role_is_only_forgotten() -> None:
    world = IamWorld()
    iam(project(world))
    _remove(world.project_policy, BUILD_ROLE, f"serviceAccount:{BUILDER}")
    _add(world.project_policy, "roles/owner", "serviceAccount:builder@demo-proj.iam.gserviceaccount.com")
    world.done.clear()
    target = project(world, build_service_account="builder@demo-proj.iam.gserviceaccount.com")
    iam(target)
    assert not any(step[1] == "remove-iam-policy-binding" for step in world.done)
    assert world.record().build is None


def test_a_refused_build_grant_is_not_recorded() -> None:
    world = IamWorld(refuse=(f"--role={BUILD_ROLE}",))
    target = project(world)
    target._invoker_account()
    target._grants()
    with pytest.raises(GcloudError):
        target._build_account()
    assert world.record().build is None
    assert world.record().granted == set(REQUIRED)


def test_the_default_build_account_needs_the_project_number() -> None:
    world = IamWorld()
    world.read = lambda *argv: {} if argv[:2] == ("projects", "describe") else None  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="cannot read the project number of demo-proj"):
        project(world).builder()
    dry = IamWorld(dry_run=True)
    dry.read = lambda *argv: None  # type: ignore[method-assign]
    assert project(dry).builder() == "PROJECT_NUMBER-compute@developer.gserviceaccount.com"


# --- Data Access logs ---


def test_data_access_logs_turned_on_keep_other_services_configs_and_are_recorded() -> None:
    world = IamWorld()
    storage = {"service": "storage.googleapis.com", "auditLogConfigs": [{"logType": "ADMIN_READ"}]}
    world.project_policy["auditConfigs"] = [storage]
    target = project(world, data_access_logs=True)
    iam(target)
    assert world.project_policy["auditConfigs"] == [
        storage,
        {"service": VERTEX, "auditLogConfigs": [{"logType": "DATA_READ"}, {"logType": "DATA_WRITE"}]},
    ]
    assert world.record().audit is True
    assert ("Data Access audit logs (aiplatform)", "created", "DATA_READ, DATA_WRITE") in notes(target)

    off = project(world, data_access_logs=False)
    iam(off)
    assert world.project_policy["auditConfigs"] == [storage]
    assert world.record().audit is False
    assert ("Data Access audit logs (aiplatform)", "deleted", "no longer requested") in notes(off)


def test_data_access_logs_someone_else_turned_on_are_left_on() -> None:
    world = IamWorld()
    ours = {"service": VERTEX, "auditLogConfigs": [{"logType": "DATA_READ"}]}
    world.project_policy["auditConfigs"] = [ours]
    target = project(world, data_access_logs=False)
    iam(target)
    assert world.project_policy["auditConfigs"] == [ours]
    assert ("Data Access audit logs (aiplatform)", "unchanged", "on") in notes(target)
    assert world.record().audit is False


def test_a_refused_audit_change_is_recorded_as_the_policy_shows_it() -> None:
    world = IamWorld(refuse=("set-iam-policy",))
    target = project(world, data_access_logs=True)
    target._invoker_account()
    with pytest.raises(GcloudError):
        target._data_access_logs()
    assert world.record().audit is False


# --- public members on the function's service ---


def test_public_members_leave_every_role_and_the_invoker_is_added() -> None:
    world = IamWorld()
    world.service_policy["bindings"] = [
        {"role": "roles/run.invoker", "members": ["allUsers", "user:ops@example.com"]},
        {"role": "roles/run.viewer", "members": ["allAuthenticatedUsers"]},
        {"role": "roles/run.developer", "members": ["domain:example.com"]},
    ]
    target = project(world)
    target._invoker_binding()
    assert world.service_policy["bindings"] == [
        {"role": "roles/run.invoker", "members": ["user:ops@example.com", f"serviceAccount:{INVOKER}"]},
        {"role": "roles/run.developer", "members": ["domain:example.com"]},
    ]
    assert notes(target)[:3] == [
        ("public access", "deleted", "allUsers removed from roles/run.invoker"),
        ("public access", "deleted", "allAuthenticatedUsers removed from roles/run.viewer"),
        ("invoker binding", "created", f"roles/run.invoker on gemini-canary only, for {INVOKER}"),
    ]
    resource, action, detail = notes(target)[3]
    assert (resource, action) == ("domain-wide access", "warning")
    assert detail.startswith("domain:example.com holds roles/run.developer on the function's service")
    assert "--member=domain:example.com --role=roles/run.developer removes it" in detail


def test_a_private_service_with_the_invoker_is_left_alone() -> None:
    world = IamWorld()
    world.service_policy["bindings"] = [{"role": "roles/run.invoker", "members": [f"serviceAccount:{INVOKER}"]}]
    target = project(world)
    target._invoker_binding()
    assert world.done == []
    assert notes(target) == [("invoker binding", "unchanged", f"roles/run.invoker for {INVOKER}")]
    assert sum(r[:3] == ("run", "services", "get-iam-policy") for r in world.reads) == 1


def test_public_members_put_back_fail_the_project_naming_each() -> None:
    world = IamWorld(sticky_public=True)
    world.service_policy["bindings"] = [
        {"role": "roles/run.invoker", "members": ["allUsers"]},
        {"role": "roles/run.viewer", "members": ["allAuthenticatedUsers"]},
    ]
    with pytest.raises(RuntimeError) as raised:
        project(world)._invoker_binding()
    assert str(raised.value) == (
        "the function gemini-canary is still public after its public members were removed: allUsers in "
        "roles/run.invoker, allAuthenticatedUsers in roles/run.viewer; remove them by hand (gcloud run services "
        "get-iam-policy gemini-canary --region=us-central1) and run again"
    )


def test_a_dry_run_plans_the_removal_without_reading_the_policy_again() -> None:
    world = IamWorld(dry_run=True)
    world.service_policy["bindings"] = [{"role": "roles/run.invoker", "members": ["allUsers"]}]
    target = project(world)
    target._invoker_binding()
    assert sum(r[:3] == ("run", "services", "get-iam-policy") for r in world.reads) == 1
    assert [p.split()[:3] for p in world.plan] == [
        ["run", "services", "set-iam-policy"],
        ["functions", "add-invoker-policy-binding", "gemini-canary"],
    ]


# --- teardown ---


def test_teardown_removes_what_the_record_names_and_nothing_else() -> None:
    world = IamWorld()
    iam(project(world, evidence_roles=True, data_access_logs=True))
    storage = {"service": "storage.googleapis.com", "auditLogConfigs": [{"logType": "ADMIN_READ"}]}
    world.project_policy["auditConfigs"].insert(0, storage)
    _add(world.project_policy, "roles/viewer", WHO)  # granted by hand: not the tool's
    _remove(world.project_policy, OPTIONAL[0], WHO)  # already taken away by someone
    world.done.clear()
    target = project(world)
    target.teardown()
    assert world.held() == {"roles/viewer"}
    assert world.held(f"serviceAccount:{BUILDER}") == set()
    assert world.project_policy["auditConfigs"] == [storage]
    assert INVOKER not in world.accounts
    removed = [step for step in world.done if step[1] == "remove-iam-policy-binding"]
    assert sorted(_flag(s, "role") for s in removed) == sorted([*REQUIRED, OPTIONAL[1], BUILD_ROLE])
    assert (f"grant {BUILD_ROLE}", "deleted", f"from the build account {BUILDER}") in notes(target)
    assert ("Data Access audit logs (aiplatform)", "deleted", "") in notes(target)
    assert ("invoker service account", "deleted", "") in notes(target)


def test_teardown_without_a_record_touches_no_grant() -> None:
    world = IamWorld()
    for role in REQUIRED:
        _add(world.project_policy, role, WHO)
    _add(world.project_policy, BUILD_ROLE, f"serviceAccount:{BUILDER}")
    world.project_policy["auditConfigs"] = [{"service": VERTEX, "auditLogConfigs": [{"logType": "DATA_READ"}]}]
    target = project(world)
    target.teardown()
    assert world.done == []
    assert world.held() == set(REQUIRED)
    assert ("invoker service account", "deleted", "") not in notes(target)


def test_teardown_leaves_a_build_role_someone_else_already_removed() -> None:
    world = IamWorld()
    iam(project(world))
    _remove(world.project_policy, BUILD_ROLE, f"serviceAccount:{BUILDER}")
    world.done.clear()
    project(world).teardown()
    assert not any(_flag(s, "role") == BUILD_ROLE for s in world.done if s[1] == "remove-iam-policy-binding")


def test_teardown_deletes_only_what_carries_the_tools_marks() -> None:
    world = IamWorld()
    iam(project(world))
    label = {"managed-by": "gemini-canary"}
    world.others = {
        ("scheduler", "jobs", "describe"): {"description": "Runs the Gemini access canary"},
        ("functions", "describe"): {"labels": label},
        ("pubsub", "topics", "describe"): {"labels": label},
        ("monitoring", "dashboards", "list"): [
            {"name": "projects/1/dashboards/ours", "displayName": "Gemini access canary", "labels": label},
            {"name": "projects/1/dashboards/key", "displayName": "Gemini access canary",
             "labels": {"managed-by-gemini-canary": ""}},
            {"name": "projects/1/dashboards/theirs", "displayName": "Gemini access canary"},
            {"name": "projects/1/dashboards/other", "displayName": "Something else", "labels": label},
        ],
    }  # fmt: skip
    world.done.clear()
    world.plan.clear()
    target = project(world)
    monitoring = target.monitoring
    assert isinstance(monitoring, NoMonitoring)
    monitoring.policies = [Managed("projects/1/alertPolicies/7", "Gemini canary: denied")]
    monitoring.channels = [Managed("projects/1/notificationChannels/9", labels={"email_address": "ops@example.com"})]
    monitoring.deleted = []
    target.teardown()
    assert world.plan[:5] == [
        "scheduler jobs delete gemini-canary --location=us-central1",
        "functions delete gemini-canary --region=us-central1 --gen2",
        "pubsub topics delete gemini-canary",
        "monitoring dashboards delete projects/1/dashboards/ours",
        "monitoring dashboards delete projects/1/dashboards/key",
    ]
    assert monitoring.deleted == ["projects/1/alertPolicies/7", "projects/1/notificationChannels/9"]
    assert notes(target)[:9] == [
        ("scheduler job", "deleted", ""),
        ("function", "deleted", ""),
        ("pub/sub topic", "deleted", ""),
        ("dashboard", "deleted", ""),
        ("dashboard", "deleted", ""),
        ("dashboard", "kept", f"projects/1/dashboards/theirs: {UNLABELLED}"),
        ("alert policy 'Gemini canary: denied'", "deleted", ""),
        ("notification channel", "deleted", "ops@example.com"),
        (f"grant {REQUIRED[0]}", "deleted", ""),
    ]
    assert ("metric descriptors", "kept", "deleting them would delete the canary's metric history") in notes(target)


def test_teardown_keeps_what_someone_else_made_under_the_same_names() -> None:
    world = IamWorld()
    world.others = {
        ("scheduler", "jobs", "describe"): {"description": "someone's job"},
        ("functions", "describe"): {"labels": {"managed-by": "someone"}},
        ("pubsub", "topics", "describe"): {"labels": {}},
    }
    target = project(world)
    target.teardown()
    assert world.done == []
    kept = "gemini-canary exists but was not created by this tool"
    assert notes(target)[:2] == [("scheduler job", "kept", kept), ("function", "kept", kept)]
    assert not any(n[0] == "pub/sub topic" for n in notes(target))

    nothing = IamWorld()
    gone = project(nothing)
    gone.teardown()
    assert notes(gone)[:2] == [("scheduler job", "absent", ""), ("function", "absent", "")]


# --- policies without bindings, bindings without members ---

EMPTY = {"etag": "ACAB"}  # an IAM policy with no binding, as get-iam-policy prints it: no `bindings` key at all
OLD_BUILDER = "old-builder@demo-proj.iam.gserviceaccount.com"


def test_a_project_policy_without_bindings_gets_every_grant() -> None:
    world = IamWorld()
    world.project_policy = copy.deepcopy(EMPTY)
    world.accounts[INVOKER] = {"description": Manifest(build=OLD_BUILDER).text()}
    target = project(world, data_access_logs=True)
    iam(target)
    assert world.held() == set(REQUIRED)
    assert world.held(f"serviceAccount:{BUILDER}") == {BUILD_ROLE}
    assert world.project_policy["auditConfigs"] == [
        {"service": VERTEX, "auditLogConfigs": [{"logType": "DATA_READ"}, {"logType": "DATA_WRITE"}]}
    ]
    assert world.record() == Manifest(granted=set(REQUIRED), audit=True, build=BUILDER)
    assert not any(step[1] == "remove-iam-policy-binding" for step in world.done)


def test_bindings_without_members_hold_nothing() -> None:
    world = IamWorld()
    world.project_policy["bindings"] = [{"role": BUILD_ROLE}, {"role": REQUIRED[0]}]
    world.accounts[INVOKER] = {"description": Manifest(build=OLD_BUILDER).text()}
    target = project(world)
    iam(target)
    assert world.held() == set(REQUIRED)
    assert world.record() == Manifest(granted=set(REQUIRED), audit=False, build=BUILDER)
    assert not any(step[1] == "remove-iam-policy-binding" for step in world.done)


def test_a_service_policy_without_bindings_gets_the_invoker() -> None:
    world = IamWorld()
    world.service_policy = copy.deepcopy(EMPTY)
    target = project(world)
    target._invoker_binding()
    assert world.service_policy["bindings"] == [{"role": "roles/run.invoker", "members": [f"serviceAccount:{INVOKER}"]}]
    assert notes(target) == [("invoker binding", "created", f"roles/run.invoker on gemini-canary only, for {INVOKER}")]


def test_service_bindings_without_members_are_dropped_with_the_public_ones() -> None:
    world = IamWorld()
    world.service_policy["bindings"] = [
        {"role": "roles/run.invoker", "members": ["allUsers"]},
        {"role": "roles/run.viewer"},
    ]
    target = project(world)
    target._invoker_binding()
    assert world.service_policy["bindings"] == [{"role": "roles/run.invoker", "members": [f"serviceAccount:{INVOKER}"]}]

    bare = IamWorld()
    bare.service_policy["bindings"] = [{"role": "roles/run.invoker"}]
    again = project(bare)
    again._invoker_binding()
    assert [step[:2] for step in bare.done] == [("functions", "add-invoker-policy-binding")]


def test_teardown_of_a_project_whose_policy_lost_every_binding_and_audit_config() -> None:
    world = IamWorld()
    world.project_policy = copy.deepcopy(EMPTY)
    world.accounts[INVOKER] = {"description": Manifest(granted=set(REQUIRED), audit=True, build=BUILDER).text()}
    target = project(world)
    target.teardown()
    assert [step[:2] for step in world.done] == [
        ("projects", "set-iam-policy"),
        ("iam", "service-accounts"),
    ]
    assert world.project_policy == {"etag": "ACAB", "auditConfigs": []}
    assert INVOKER not in world.accounts


def test_teardown_skips_bindings_without_members() -> None:
    world = IamWorld()
    world.project_policy["bindings"] = [{"role": BUILD_ROLE}, {"role": REQUIRED[0]}]
    world.accounts[INVOKER] = {"description": Manifest(granted={REQUIRED[0]}, build=BUILDER).text()}
    project(world).teardown()
    assert world.done == [("iam", "service-accounts", "delete", INVOKER)]


# --- the build account, once more ---


def test_a_previous_build_account_holding_other_roles_keeps_them() -> None:
    world = IamWorld()
    _add(world.project_policy, "roles/viewer", f"serviceAccount:{OLD_BUILDER}")
    world.accounts[INVOKER] = {"description": Manifest(build=OLD_BUILDER).text()}
    target = project(world)
    iam(target)
    assert world.held(f"serviceAccount:{OLD_BUILDER}") == {"roles/viewer"}
    assert not any(step[1] == "remove-iam-policy-binding" for step in world.done)
    assert world.record().build == BUILDER


def test_teardown_removes_the_build_role_only_from_the_recorded_build_account() -> None:
    world = IamWorld()
    _add(world.project_policy, "roles/viewer", f"serviceAccount:{BUILDER}")
    _add(world.project_policy, BUILD_ROLE, f"serviceAccount:{OLD_BUILDER}")
    world.accounts[INVOKER] = {"description": Manifest(build=BUILDER).text()}
    project(world).teardown()
    assert world.held(f"serviceAccount:{BUILDER}") == {"roles/viewer"}
    assert world.held(f"serviceAccount:{OLD_BUILDER}") == {BUILD_ROLE}
    assert world.done == [("iam", "service-accounts", "delete", INVOKER)]


def test_the_record_in_memory_is_the_one_written() -> None:
    forgotten = IamWorld()
    _add(forgotten.project_policy, "roles/owner", f"serviceAccount:{BUILDER}")
    forgotten.accounts[INVOKER] = {"description": Manifest(build=OLD_BUILDER).text()}
    target = project(forgotten)
    iam(target)
    assert target.manifest == forgotten.record() == Manifest(granted=set(REQUIRED), audit=False, build=None)

    refused = IamWorld(refuse=(f"--role={BUILD_ROLE}",))
    other = project(refused)
    other._invoker_account()
    other._grants()
    with pytest.raises(GcloudError):
        other._build_account()
    assert other.manifest == refused.record() == Manifest(granted=set(REQUIRED), audit=False, build=None)


def test_a_build_grant_whose_reply_was_lost_stays_recorded() -> None:
    world = IamWorld(lost=(f"--role={BUILD_ROLE}",))
    target = project(world)
    target._invoker_account()
    target._grants()
    with pytest.raises(GcloudError, match="DEADLINE_EXCEEDED"):
        target._build_account()
    assert world.held(f"serviceAccount:{BUILDER}") == {BUILD_ROLE}
    assert world.record().build == BUILDER


# --- the invoker account and its record ---


def test_the_invoker_account_is_created_with_its_name_and_an_empty_record_written_once() -> None:
    world = IamWorld()
    for role in REQUIRED:
        _add(world.project_policy, role, WHO)
    _add(world.project_policy, "roles/editor", f"serviceAccount:{BUILDER}")
    iam(project(world))
    assert world.done == [
        (
            "iam",
            "service-accounts",
            "create",
            "gemini-canary-invoker",
            "--display-name=Gemini canary invoker",
            "--description=Invoker of the Gemini canary. granted=; audit=0",
        )
    ]


def test_each_change_of_the_record_is_written_once() -> None:
    world = IamWorld()
    iam(project(world))
    updates = [_flag(step, "description") for step in world.done if step[:3] == ("iam", "service-accounts", "update")]
    granted = ",".join(sorted(REQUIRED))
    assert updates == [
        f"Invoker of the Gemini canary. granted={granted}; audit=0",
        f"Invoker of the Gemini canary. granted={granted}; audit=0; build={BUILDER}",
    ]


# --- Data Access logs, once more ---


def test_turning_data_access_logs_on_replaces_a_vertex_config_without_data_read() -> None:
    world = IamWorld()
    write_only = {"service": VERTEX, "auditLogConfigs": [{"logType": "DATA_WRITE", "exemptedMembers": [WHO]}]}
    storage = {"service": "storage.googleapis.com", "auditLogConfigs": [{"logType": "ADMIN_READ"}]}
    world.project_policy["auditConfigs"] = [write_only, storage]
    iam(project(world, data_access_logs=True))
    assert world.project_policy["auditConfigs"] == [
        storage,
        {"service": VERTEX, "auditLogConfigs": [{"logType": "DATA_READ"}, {"logType": "DATA_WRITE"}]},
    ]


# --- policy reads and policy files ---


def test_the_project_policy_is_read_again_after_the_tool_set_it() -> None:
    world = IamWorld()
    target = project(world)
    first = target._policy()
    first["auditConfigs"] = [{"service": VERTEX, "auditLogConfigs": [{"logType": "DATA_READ"}]}]
    target._set_policy(first)
    world.project_policy["etag"] = "BwZ2"  # what Google answers after a change: a new etag
    assert target._policy() == {**first, "etag": "BwZ2"}
    assert world.reads.count(("projects", "get-iam-policy", "demo-proj")) == 2


def test_policy_files_are_json_and_removed_after_use() -> None:
    world = IamWorld()
    world.service_policy["bindings"] = [{"role": "roles/run.invoker", "members": ["allUsers"]}]
    target = project(world, data_access_logs=True)
    iam(target)
    target._invoker_binding()
    assert len(world.files) == 2
    assert [Path(name).suffix for name in world.files] == [".json", ".json"]
    assert [Path(name).exists() for name in world.files] == [False, False]


def test_a_public_member_put_back_next_to_the_invoker_still_fails_the_project() -> None:
    world = IamWorld(sticky_public=True)
    world.service_policy["bindings"] = [
        {"role": "roles/run.invoker", "members": ["allUsers", f"serviceAccount:{INVOKER}"]}
    ]
    with pytest.raises(RuntimeError, match="still public after its public members were removed: allUsers in"):
        project(world)._invoker_binding()
    assert sum(r[:3] == ("run", "services", "get-iam-policy") for r in world.reads) == 2


# --- teardown, once more ---


def test_teardown_keeps_an_unlabelled_function_and_topic_and_reads_past_other_dashboards() -> None:
    world = IamWorld()
    world.accounts[INVOKER] = {"description": Manifest().text()}
    world.others = {
        ("functions", "describe"): {"name": "projects/demo-proj/locations/us-central1/functions/gemini-canary"},
        ("pubsub", "topics", "describe"): {"name": "projects/demo-proj/topics/gemini-canary"},
        ("monitoring", "dashboards", "list"): [
            {"name": "projects/1/dashboards/other", "displayName": "Something else"},
            {"name": "projects/1/dashboards/ours", "displayName": "Gemini access canary",
             "labels": {"managed-by": "gemini-canary"}},
        ],
    }  # fmt: skip
    target = project(world)
    monitoring = target.monitoring
    assert isinstance(monitoring, NoMonitoring)
    monitoring.policies = []
    monitoring.channels = [Managed("projects/1/notificationChannels/3")]
    monitoring.deleted = []
    target.teardown()
    assert world.done == [
        ("monitoring", "dashboards", "delete", "projects/1/dashboards/ours"),
        ("iam", "service-accounts", "delete", INVOKER),
    ]
    assert notes(target)[:4] == [
        ("scheduler job", "absent", ""),
        ("function", "kept", "gemini-canary exists but was not created by this tool"),
        ("dashboard", "deleted", ""),
        ("notification channel", "deleted", ""),
    ]


# --- the source label ---


def test_the_source_hash_covers_each_uploaded_file_by_its_path_and_bytes(tmp_path: Path) -> None:
    (tmp_path / "function").mkdir()
    (tmp_path / "function" / "b.py").write_bytes(b"B")
    (tmp_path / "function" / "a.py").write_bytes(b"A")
    (tmp_path / "function" / "notes.txt").write_bytes(b"not uploaded")
    (tmp_path / "main.py").write_bytes(b"M")
    (tmp_path / "requirements.txt").write_bytes(b"R")
    (tmp_path / "other.py").write_bytes(b"not uploaded")
    framed = b"function/a.py\0A\0function/b.py\0B\0main.py\0M\0requirements.txt\0R\0"
    assert source_hash(tmp_path) == hashlib.sha256(framed).hexdigest()[:12]


def test_a_dry_run_on_a_project_policy_without_bindings_plans_each_grant_and_no_removal() -> None:
    world = IamWorld(dry_run=True)
    world.project_policy = copy.deepcopy(EMPTY)
    world.accounts[INVOKER] = {"description": Manifest(build=OLD_BUILDER).text()}
    iam(project(world))
    grants = [p for p in world.plan if p.startswith("projects add-iam-policy-binding demo-proj")]
    assert grants == [
        f"projects add-iam-policy-binding demo-proj --member={who} --role={role} --condition=None"
        for who, role in [*((WHO, r) for r in REQUIRED), (f"serviceAccount:{BUILDER}", BUILD_ROLE)]
    ]
    assert not any("remove-iam-policy-binding" in p for p in world.plan)
