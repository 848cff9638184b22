"""The real gcloud CLI against the emulator's REST front end, as the deploy tool drives it, with assertions on the
world it leaves behind. gcloud is pointed at the emulator with CLOUDSDK_API_ENDPOINT_OVERRIDES_* and a token file
(emulator/README.md, "REST: … gcloud") and also uses the emulator's HTTP port as its proxy: `gcloud functions
add-invoker-policy-binding` derives the regional Cloud Run endpoint `us-central1-<host>` from the override, a
host name nothing resolves, and through a proxy the name needs no resolving (the emulator serves the request line's
path whatever its host).

Each gcloud command takes about a second, so the commands are walked in two combined tests.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from devkit.emulated import admin
from emulator.server import Emulator
from emulator.services.functions import BUILD_FAILED, FunctionStore
from emulator.services.iamadmin import IamStore
from emulator.services.pubsub import TopicStore
from emulator.services.run import RunStore
from emulator.services.scheduler import SchedulerStore
from tests.emulator.support import DEPLOYER, OWNER, PROJECT
from tests.prerequisites import need
from tests.shared import WORKLOAD

REGION = "us-central1"
LOC = f"projects/{PROJECT}/locations/{REGION}"
INVOKER = f"gemini-canary-invoker@{PROJECT}.iam.gserviceaccount.com"


@pytest.fixture
def gcloud() -> str:
    return need("gcloud")


class Gcloud:
    """Runs gcloud as one principal against one emulator, with a private config directory."""

    def __init__(self, binary: str, emu: Emulator, home: Path, email: str) -> None:
        self.binary = binary
        self.env = emu.gcloud_env(home, email)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.binary, *args, "--format=json"],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=120,
            check=False,
        )

    def __call__(self, *args: str) -> Any:
        done = self.run(*args)
        assert done.returncode == 0, f"gcloud {' '.join(args)} failed:\n{done.stderr}"
        return json.loads(done.stdout) if done.stdout.strip() else None


def _source(tmp_path: Path) -> Path:
    source = tmp_path / "source"
    source.mkdir()
    (source / "main.py").write_text("def canary(request):\n    return 'ok'\n")
    (source / "requirements.txt").write_text("functions-framework\n")
    return source


def test_gcloud_deploys_the_function_and_its_schedule(gcloud: str, start_emulator: Any, tmp_path: Path) -> None:
    emu = start_emulator("deploy_ready")
    run = Gcloud(gcloud, emu, tmp_path / "deployer", DEPLOYER)
    project = emu.world.projects[PROJECT]
    region = f"--region={REGION}"
    deploy = (
        "functions", "deploy", "gemini-canary", "--gen2", region, "--runtime=python311",
        f"--source={_source(tmp_path)}", "--entry-point=canary", "--trigger-http", "--no-allow-unauthenticated",
        f"--service-account={WORKLOAD}", "--set-env-vars=CANARY_TARGETS=gemini-2.5-flash-lite@us-central1",
        "--memory=256Mi", "--timeout=60s",
    )  # fmt: skip

    # The default build account (the project's compute account) lacks the build role: the build fails as Google's
    # does, the function is kept in state FAILED, and no service runs it.
    builder = f"{project.number}-compute@developer.gserviceaccount.com"
    failed = run.run(*deploy)
    assert failed.returncode != 0
    assert f"ERROR: (gcloud.functions.deploy) {BUILD_FAILED}" in " ".join(failed.stderr.split()), failed.stderr
    assert run("functions", "describe", "gemini-canary", region, "--gen2")["state"] == "FAILED"
    assert project.store(RunStore).run_services == {}
    granted = {"projects": {PROJECT: {"bindings": {"roles/cloudbuild.builds.builder": [f"serviceAccount:{builder}"]}}}}
    assert admin(emu, "PATCH", "world", granted)[0] == 200

    deployed = run(*deploy)
    record = project.store(FunctionStore).functions[f"{LOC}/functions/gemini-canary"]
    service = record.resource["serviceConfig"]
    assert service["serviceAccountEmail"] == WORKLOAD
    assert service["environmentVariables"] == {"CANARY_TARGETS": "gemini-2.5-flash-lite@us-central1"}
    assert (service["availableMemory"], service["timeoutSeconds"]) == ("256Mi", 60)
    assert sorted(record.source_files) == ["main.py", "requirements.txt"]
    run_service = project.store(RunStore).run_services[f"{LOC}/services/gemini-canary"]
    assert run_service.policy.bindings == []  # --no-allow-unauthenticated: no allUsers, no one
    assert deployed["serviceConfig"]["uri"] == service["uri"]
    assert run("functions", "describe", "gemini-canary", region, "--gen2")["state"] == "ACTIVE"
    assert [f["name"] for f in run("functions", "list")] == [f"{LOC}/functions/gemini-canary"]

    run("functions", "add-invoker-policy-binding", "gemini-canary", region, f"--member=serviceAccount:{INVOKER}")
    assert run_service.policy.members_with("roles/run.invoker") == {f"serviceAccount:{INVOKER}"}
    policy = run("run", "services", "get-iam-policy", "gemini-canary", region)
    assert policy["bindings"] == [{"role": "roles/run.invoker", "members": [f"serviceAccount:{INVOKER}"]}]
    run(
        "run", "services", "add-iam-policy-binding", "gemini-canary", region, f"--member=user:{OWNER}",
        "--role=roles/run.invoker",
    )  # fmt: skip
    assert run_service.policy.members_with("roles/run.invoker") == {f"serviceAccount:{INVOKER}", f"user:{OWNER}"}

    uri = service["uri"]
    location = f"--location={REGION}"
    run(
        "scheduler", "jobs", "create", "http", "gemini-canary", location, "--schedule=*/5 * * * *",
        f"--uri={uri}", "--http-method=POST", f"--oidc-service-account-email={WORKLOAD}",
        f"--oidc-token-audience={uri}", "--attempt-deadline=90s", "--max-retry-attempts=0",
        "--headers=Content-Type=application/json", "--message-body={}",
    )  # fmt: skip
    job = project.store(SchedulerStore).scheduler_jobs[f"{LOC}/jobs/gemini-canary"]
    assert job["httpTarget"]["oidcToken"] == {"serviceAccountEmail": WORKLOAD, "audience": uri}
    assert (job["schedule"], job["attemptDeadline"], job["httpTarget"]["body"]) == ("*/5 * * * *", "90s", "e30=")
    run(
        "scheduler", "jobs", "update", "http", "gemini-canary", location, "--schedule=*/15 * * * *",
        "--time-zone=Europe/Paris", "--max-retry-attempts=0",
    )  # fmt: skip
    job = project.store(SchedulerStore).scheduler_jobs[f"{LOC}/jobs/gemini-canary"]
    assert (job["schedule"], job["timeZone"], job["httpTarget"]["uri"]) == ("*/15 * * * *", "Europe/Paris", uri)
    assert run("scheduler", "jobs", "describe", "gemini-canary", location)["state"] == "ENABLED"
    run("scheduler", "jobs", "delete", "gemini-canary", location)
    assert project.store(SchedulerStore).scheduler_jobs == {}
    missing = run.run("scheduler", "jobs", "describe", "gemini-canary", location)
    assert missing.returncode != 0
    assert "NOT_FOUND: Job not found." in missing.stderr

    run("functions", "delete", "gemini-canary", region, "--gen2")
    assert (project.store(FunctionStore).functions, project.store(RunStore).run_services) == ({}, {})


def test_gcloud_admin_commands_change_the_world(gcloud: str, start_emulator: Any, tmp_path: Path) -> None:
    emu = start_emulator("deploy_ready")
    # gcloud logging read bounds its filter by the wall clock (--freshness=1d): run the world on it.
    assert admin(emu, "POST", "clock", {"mode": "wall"})[0] == 200
    assert admin(emu, "PATCH", "world", {"logging": {"ingestion_lag_seconds": 0}})[0] == 200
    run = Gcloud(gcloud, emu, tmp_path / "deployer", DEPLOYER)
    project = emu.world.projects[PROJECT]

    run("services", "enable", "secretmanager.googleapis.com")
    assert "secretmanager.googleapis.com" in project.services
    enabled = {s["config"]["name"] for s in run("services", "list", "--enabled")}
    assert {"secretmanager.googleapis.com", "cloudfunctions.googleapis.com"} <= enabled
    run("services", "disable", "secretmanager.googleapis.com")
    assert "secretmanager.googleapis.com" not in project.services

    run("iam", "service-accounts", "create", "gemini-canary-invoker", "--display-name=Gemini canary invoker")
    assert run("iam", "service-accounts", "describe", INVOKER)["displayName"] == "Gemini canary invoker"
    run(
        "iam", "service-accounts", "add-iam-policy-binding", INVOKER, f"--member=user:{OWNER}",
        "--role=roles/iam.serviceAccountUser",
    )  # fmt: skip
    assert project.store(IamStore).service_accounts[INVOKER].policy.members_with("roles/iam.serviceAccountUser") == {
        f"user:{OWNER}"
    }
    run("iam", "service-accounts", "delete", INVOKER)
    assert project.store(IamStore).service_accounts[INVOKER].deleted

    member = f"--member=serviceAccount:{WORKLOAD}"
    assert {"role": "roles/owner", "members": [f"user:{OWNER}"]} in run("projects", "get-iam-policy", PROJECT)[
        "bindings"
    ]
    run("projects", "add-iam-policy-binding", PROJECT, member, "--role=roles/logging.viewer", "--condition=None")
    assert f"serviceAccount:{WORKLOAD}" in project.policy.members_with("roles/logging.viewer")
    run("projects", "remove-iam-policy-binding", PROJECT, member, "--role=roles/logging.viewer", "--condition=None")
    assert f"serviceAccount:{WORKLOAD}" not in project.policy.members_with("roles/logging.viewer")
    entries = run("logging", "read", 'protoPayload.methodName="SetIamPolicy"', "--limit=5")
    assert len(entries) == 2
    assert {e["protoPayload"]["authenticationInfo"]["principalEmail"] for e in entries} == {DEPLOYER}

    run("pubsub", "topics", "create", "gemini-canary", "--labels=managed-by=gemini-canary")
    assert project.store(TopicStore).topics[f"projects/{PROJECT}/topics/gemini-canary"]["labels"] == {
        "managed-by": "gemini-canary"
    }
    run("pubsub", "topics", "delete", "gemini-canary")
    assert project.store(TopicStore).topics == {}

    stranger = Gcloud(gcloud, emu, tmp_path / "stranger", "stranger@example.com")
    denied = stranger.run("services", "enable", "secretmanager.googleapis.com")
    assert denied.returncode != 0
    assert "Permission denied to enable service [secretmanager.googleapis.com]" in denied.stderr


def test_gcloud_names_a_build_account(gcloud: str, start_emulator: Any, tmp_path: Path) -> None:
    """--build-service-account: the caller must be able to act as it, and it must hold the build's permissions."""
    emu = start_emulator("deploy_ready")
    project = emu.world.projects[PROJECT]
    builder = f"projects/{PROJECT}/serviceAccounts/{WORKLOAD}"
    deploy = (
        "functions", "deploy", "gemini-canary", "--gen2", f"--region={REGION}", "--runtime=python311",
        f"--source={_source(tmp_path)}", "--entry-point=canary", "--trigger-http", "--no-allow-unauthenticated",
        f"--service-account={WORKLOAD}", f"--build-service-account={builder}",
    )  # fmt: skip
    # The owner can act as any account; the workload's account has no build permissions yet.
    owner = Gcloud(gcloud, emu, tmp_path / "owner", OWNER)
    failed = owner.run(*deploy)
    assert failed.returncode != 0
    assert BUILD_FAILED in " ".join(failed.stderr.split()), failed.stderr
    # The roles Google lists for a custom build account do it too.
    roles = ("roles/logging.logWriter", "roles/artifactregistry.writer", "roles/storage.objectViewer")
    grants = {role: [f"serviceAccount:{WORKLOAD}"] for role in roles}
    assert admin(emu, "PATCH", "world", {"projects": {PROJECT: {"bindings": grants}}})[0] == 200
    owner(*deploy)
    record = project.store(FunctionStore).functions[f"{LOC}/functions/gemini-canary"]
    assert (record.resource["state"], record.resource["buildConfig"]["serviceAccount"]) == ("ACTIVE", builder)
    # A deployer who may not act as the build account is refused before anything is built.
    revoke: dict[str, Any] = {"projects": {PROJECT: {"bindings": {"roles/iam.serviceAccountUser": []}}}}
    assert admin(emu, "PATCH", "world", revoke)[0] == 200
    deployer = Gcloud(gcloud, emu, tmp_path / "deployer", DEPLOYER)
    compute = f"{project.number}-compute@developer.gserviceaccount.com"
    refused = deployer.run(*deploy[:-1], f"--build-service-account=projects/{PROJECT}/serviceAccounts/{compute}")
    assert refused.returncode != 0
    assert f"Permission 'iam.serviceaccounts.actAs' denied on service account {compute}" in refused.stderr
    assert record.resource["buildConfig"]["serviceAccount"] == builder  # nothing changed
