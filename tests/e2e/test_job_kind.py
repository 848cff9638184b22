"""The canary as a Cloud Run job, end to end with the real gcloud: the deploy tool builds the job from the same
source (`gcloud run jobs deploy --source`), Cloud Scheduler starts it through the Cloud Run Admin API with an OAuth
token of an account that may only run that job, each execution is one run whose exit status is the verdict, the
same alert policies page and recover, `call` and `status` read it, and teardown takes it all out. A mixed fleet
(function kind and job kind) deploys, switches kind and tears down."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from deploy.spec import INVOKER_ID
from devkit import fleet
from devkit.story import PROJECT, REGION, TARGETS, Story
from emulator.server import Emulator
from emulator.services.functions import FunctionStore
from emulator.services.runjobs import JobStore
from emulator.services.scheduler import SchedulerStore
from tests.prerequisites import need

ROOT = Path(__file__).resolve().parents[2]
JOB_URL = f"https://{REGION}-run.googleapis.com/apis/run.googleapis.com/v1/namespaces/{PROJECT}/jobs/gemini-canary:run"


def _tool(emulator: Emulator, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**emulator.gcloud_env(home, fleet.DEPLOYER), "PYTHONPATH": str(ROOT), "GRPC_VERBOSITY": "NONE"}
    return subprocess.run(
        [sys.executable, "-m", "deploy", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
        check=False,
    )  # fmt: skip


def _pages(story: Story, policy: str, state: str = "open") -> list[Any]:
    return [n for n in story.notices() if n.state == state and policy in (n.subject + n.policy)]


def test_the_job_kind_runs_on_schedule_pages_with_the_fix_and_recovers(tmp_path: Path) -> None:
    need("gcloud")
    with Story(tmp_path) as story:
        output = story.deploy("--kind", "job")
        assert "job: created" in output, output
        emulator = story.emulator
        with emulator.world.lock:
            project = emulator.world.projects[PROJECT]
            assert not project.store(FunctionStore).functions  # one canary: the job
            scheduled = dict(project.store(SchedulerStore).scheduler_jobs[f"projects/{PROJECT}/locations/{REGION}"
                                                                          "/jobs/gemini-canary"])  # fmt: skip
        target = scheduled["httpTarget"]
        assert (target["uri"], target["httpMethod"]) == (JOB_URL, "POST")
        invoker = f"{INVOKER_ID}@{PROJECT}.iam.gserviceaccount.com"
        assert target["oauthToken"]["serviceAccountEmail"] == invoker
        assert "oidcToken" not in target

        # least privilege: the account Scheduler's token is for holds run.invoker on that job, nothing in the project
        with emulator.world.lock:
            assert not project.policy.roles_of(f"serviceAccount:{invoker}")
        policy = json.loads(
            subprocess.run(
                ["gcloud", "run", "jobs", "get-iam-policy", "gemini-canary", f"--region={REGION}",
                 f"--project={PROJECT}", "--format=json"],
                env=emulator.gcloud_env(tmp_path / "reader", fleet.DEPLOYER), capture_output=True, text=True,
                check=True,
            ).stdout
        )  # fmt: skip
        assert policy["bindings"] == [{"role": "roles/run.invoker", "members": [f"serviceAccount:{invoker}"]}]

        healthy = story.next_run()
        assert healthy.verdict == "healthy"
        assert healthy.line["trigger"]["kind"] == "job"
        assert healthy.line["metrics"]["written"] is True

        story.gemini_role(False)
        denied = story.next_run()
        assert denied.verdict == "denied"

        def ended() -> list[Any] | None:
            found = story.executions()
            return found if len(found) >= 2 and not found[-1].running else None

        executions = story.wait_for(ended, "the denied execution to end", 60)
        assert (executions[-2].succeeded, executions[-2].failed) == (1, 0)  # the healthy run exited 0
        assert (executions[-1].succeeded, executions[-1].failed) == (0, 1)  # the denied one exited 2: a failed task
        assert len(executions) == 2  # no retry: max-retries 0, a denial is not run and counted twice

        pages = story.until(lambda: _pages(story, "Gemini access denied") or None, "the denied page")
        email = next(n for n in pages if n.channel == "email")
        assert email.subject == f"Gemini access denied: iam_permission_denied for {TARGETS} in {PROJECT}"
        assert "**Fix:** `gcloud projects add-iam-policy-binding" in email.body

        called = _tool(emulator, tmp_path / "operator", "call", "--project", PROJECT, "--region", REGION)
        assert called.returncode == 1, called.stdout + called.stderr
        assert called.stdout.startswith("gemini-canary DENIED: iam_permission_denied"), called.stdout
        assert "fix: gcloud projects add-iam-policy-binding" in called.stdout
        status = _tool(emulator, tmp_path / "operator", "status", "--project", PROJECT, "--region", REGION)
        assert status.returncode == 1, status.stdout + status.stderr
        assert "job READY current; scheduler ENABLED" in status.stdout, status.stdout

        story.gemini_role(True)
        assert story.next_run().verdict == "healthy"
        story.until(lambda: _pages(story, "Gemini access denied", "closed") or None, "the recovery notice")

        gone = _tool(emulator, tmp_path / "deployer", "teardown", "--project", PROJECT, "--region", REGION,
                     "--service-account", emulator.world.workload)  # fmt: skip
        assert gone.returncode == 0, gone.stdout + gone.stderr
        with emulator.world.lock:
            assert not project.store(JobStore).jobs
            assert not project.store(SchedulerStore).scheduler_jobs


def test_a_fleet_of_both_kinds_deploys_switches_kind_and_tears_down(tmp_path: Path) -> None:
    need("gcloud")
    scenario = fleet.fleet_scenario(tmp_path / "fleet.yaml", 2)
    one, two = fleet.fleet_project(1), fleet.fleet_project(2)
    common = ["--region", REGION, "--service-account", "canary-workload@{project}.iam.gserviceaccount.com",
              "--no-notifications"]  # fmt: skip
    with Emulator(str(scenario)) as emulator:
        home = tmp_path / "deployer"
        assert _tool(emulator, home, "apply", "--project", one, *common).returncode == 0
        job = _tool(emulator, home, "apply", "--project", two, "--kind", "job", "--network", "workload-vpc",
                    "--subnet", "workload-subnet", *common, "--format", "json")  # fmt: skip
        assert job.returncode == 0, job.stdout + job.stderr
        changes = {c["resource"]: c["action"] for c in json.loads(job.stdout)["projects"][0]["changes"]}
        assert (changes["job"], changes["invoker binding"], changes["scheduler job"]) == ("created",) * 3

        def kinds() -> dict[str, tuple[int, int]]:
            with emulator.world.lock:
                return {p: (len(emulator.world.projects[p].store(FunctionStore).functions),
                            len(emulator.world.projects[p].store(JobStore).jobs)) for p in (one, two)}  # fmt: skip

        assert kinds() == {one: (1, 0), two: (0, 1)}
        with emulator.world.lock:
            [record] = emulator.world.projects[two].store(JobStore).jobs.values()
            annotations = record.template["metadata"]["annotations"]
        assert json.loads(annotations["run.googleapis.com/network-interfaces"]) == [
            {"network": "workload-vpc", "subnetwork": "workload-subnet"}
        ]
        assert annotations["run.googleapis.com/vpc-access-egress"] == "all-traffic"

        again = _tool(emulator, home, "apply", "--project", two, "--kind", "job", "--network", "workload-vpc",
                      "--subnet", "workload-subnet", *common)  # fmt: skip
        assert again.returncode == 0, again.stderr
        assert f"{two}  unchanged" in again.stdout, again.stdout  # idempotent: the same inputs change nothing

        switched = _tool(emulator, home, "apply", "--project", one, "--kind", "job", *common, "--dry-run")
        assert "would delete   function" in switched.stdout or "would delete" in switched.stdout, switched.stdout
        assert kinds()[one] == (1, 0)  # a dry run changes nothing
        switched = _tool(emulator, home, "apply", "--project", one, "--kind", "job", *common)
        assert switched.returncode == 0, switched.stdout + switched.stderr
        assert "the canary is now a job" in switched.stdout
        assert kinds() == {one: (0, 1), two: (0, 1)}

        projects = tmp_path / "fleet.txt"
        projects.write_text(f"{one}\n{two}\n")
        gone = _tool(emulator, home, "teardown", "--projects-file", str(projects), *common[:4])
        assert gone.returncode == 0, gone.stdout + gone.stderr
        assert kinds() == {one: (0, 0), two: (0, 0)}
        with emulator.world.lock:
            assert not any(emulator.world.projects[p].store(SchedulerStore).scheduler_jobs for p in (one, two))


PERIMETER = {
    "perimeter": {
        "name": "accessPolicies/555555555555/servicePerimeters/ml_perimeter",
        "organization_id": "123456789012",
        "projects": [PROJECT],
        "restricted_services": ["aiplatform.googleapis.com"],
        "ingress_rules": [
            {
                "title": "the workload from its VPC network",
                "from": {
                    "identities": ["serviceAccount:canary-workload@demo-proj.iam.gserviceaccount.com"],
                    "sources": [
                        {"resource": "//compute.googleapis.com/projects/net-host/global/networks/workload-vpc"}
                    ],
                },
                "to": {
                    "operations": [
                        {"service_name": "aiplatform.googleapis.com", "method_selectors": [{"method": "*"}]}
                    ],
                    "resources": ["*"],
                },
            }
        ],
    }
}


def test_a_perimeter_that_admits_the_workloads_network_is_diagnosed_with_and_without_its_egress(
    tmp_path: Path,
) -> None:
    """The workload is admitted from its VPC network only. The canary as a job from Cloud Run's default egress is
    refused, and its diagnosis says where the request came from and how to fix it; deployed again with the
    workload's Direct VPC egress, its execution's calls leave through that network and pass."""
    need("gcloud")
    with Story(tmp_path) as story:
        story.deploy("--kind", "job")
        story.patch_world(PERIMETER)
        refused = story.next_run()
        assert refused.verdict == "denied"
        [target] = refused.line["targets"]
        assert target["cause"] == "vpc_sc"
        assert (
            "the request came from outside any VPC network (Cloud Run's default egress, or the internet)"
            in target["summary"]
        )
        assert "--kind job --network NETWORK --subnet SUBNET --vpc-egress all-traffic" in target["summary"]

        story.deploy(
            "--kind", "job", "--network", "projects/net-host/global/networks/workload-vpc",
            "--subnet", "projects/net-host/regions/us-central1/subnetworks/workload-subnet",
        )  # fmt: skip
        admitted = story.next_run()
        assert admitted.verdict == "healthy", admitted.summary
        assert admitted.line["principal"] == "canary-workload@demo-proj.iam.gserviceaccount.com"
