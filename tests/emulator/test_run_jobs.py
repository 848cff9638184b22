"""Cloud Run jobs with the real gcloud: create (an image whose source is registered with the emulator), execute
--wait, executions list/describe, the exit status on the execution, the task's output read back with the real
logging client, the Admin Activity entry, the denials (no run.jobs.run, no actAs on the job's account), and a
Cloud Scheduler job whose OAuth token starts the job through jobs.run on the emulator's clock."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devkit.emulated import admin, clients
from emulator.server import Emulator
from emulator.services.runjobs import JobStore
from tests.emulator.rest_support import grant, rest
from tests.emulator.support import DEPLOYER, OWNER, PROJECT, advance, list_entries, since
from tests.prerequisites import need
from tests.shared import WORKLOAD

REGION = "us-central1"
IMAGE = f"{REGION}-docker.pkg.dev/{PROJECT}/canary/job"
OUTSIDER = f"outsider@{PROJECT}.iam.gserviceaccount.com"
RUNNER = f"job-runner@{PROJECT}.iam.gserviceaccount.com"
TASK = """\
import json, os, sys
print(json.dumps({"severity": "INFO", "message": "task ran", "as": os.environ["CLOUD_RUN_EXECUTION"],
                  "index": os.environ["CLOUD_RUN_TASK_INDEX"], "count": os.environ["CLOUD_RUN_TASK_COUNT"],
                  "job": os.environ["CLOUD_RUN_JOB"], "greeting": os.environ.get("GREETING", "")}))
print("stderr line", file=sys.stderr)
sys.exit(int(os.environ.get("EXIT_WITH", "0")))
"""


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[Emulator]:
    source = tmp_path / "source"
    source.mkdir()
    (source / "task.py").write_text(TASK)
    with Emulator("deploy_ready", serve_functions=True) as emulator:
        status, body = admin(
            emulator, "POST", "run/images", {"project": PROJECT, "image": IMAGE, "source": str(source)}
        )
        assert status == 200, body
        grant(emulator, f"serviceAccount:{DEPLOYER}", "roles/run.developer")
        yield emulator


class Gcloud:
    def __init__(self, emu: Emulator, home: Path, email: str) -> None:
        self.binary = need("gcloud")
        self.env = emu.gcloud_env(home, email)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.binary, *args, f"--region={REGION}", "--format=json"],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=180,
            check=False,
        )

    def __call__(self, *args: str) -> Any:
        done = self.run(*args)
        assert done.returncode == 0, f"gcloud {' '.join(args)} failed:\n{done.stderr}"
        return json.loads(done.stdout) if done.stdout.strip() else None


def _create(gcloud: Gcloud, name: str, *extra: str) -> Any:
    return gcloud(
        "run", "jobs", "create", name, f"--image={IMAGE}:latest", f"--service-account={WORKLOAD}",
        "--max-retries=0", "--task-timeout=120s", "--command=python", "--args=task.py", *extra,
    )  # fmt: skip


def test_gcloud_creates_executes_and_reads_a_job(emu: Emulator, tmp_path: Path) -> None:
    gcloud = Gcloud(emu, tmp_path / "deployer", DEPLOYER)
    _create(gcloud, "canary-job", "--set-env-vars=GREETING=hello")
    job = gcloud("run", "jobs", "describe", "canary-job")
    assert job["spec"]["template"]["spec"]["template"]["spec"]["serviceAccountName"] == WORKLOAD
    assert job["status"]["conditions"][0] == {**job["status"]["conditions"][0], "type": "Ready", "status": "True"}

    done = gcloud.run("run", "jobs", "execute", "canary-job", "--wait")
    assert done.returncode == 0, done.stderr
    executions = gcloud("run", "jobs", "executions", "list", "--job=canary-job")
    assert len(executions) == 1
    name = executions[0]["metadata"]["name"]
    assert name.startswith("canary-job-")
    described = gcloud("run", "jobs", "executions", "describe", name)
    assert described["status"]["succeededCount"] == 1
    assert "failedCount" not in described["status"]
    completed = next(c for c in described["status"]["conditions"] if c["type"] == "Completed")
    assert completed["status"] == "True"
    assert described["status"]["completionTime"]

    # The task's output: on cloud_run_job, with the execution and task as labels, structured where it was JSON.
    advance(emu, 10)
    logging = clients(emu, email=OWNER).logging
    entries = list_entries(
        logging,
        f'resource.type="cloud_run_job" AND resource.labels.job_name="canary-job" AND '
        f'labels."run.googleapis.com/execution_name"="{name}" AND timestamp>="{since(emu)}"',
    )
    by_log = {e.log_name.rsplit("%2F", 1)[-1]: e for e in entries}
    assert set(by_log) == {"stdout", "stderr"}
    payload = dict(by_log["stdout"].json_payload)
    assert (payload["as"], payload["job"], payload["greeting"]) == (name, "canary-job", "hello")
    assert (payload["index"], payload["count"]) == ("0", "1")
    assert by_log["stdout"].labels["run.googleapis.com/task_index"] == "0"
    assert by_log["stderr"].text_payload == "stderr line"

    # The create is audited on cloud_run_job.
    audits = list_entries(
        logging,
        'logName:"cloudaudit.googleapis.com%2Factivity" AND '
        'protoPayload.methodName="google.cloud.run.v1.Jobs.CreateJob"',
    )
    assert [e.resource.labels["job_name"] for e in audits] == ["canary-job"]


def test_an_execution_that_exits_non_zero_fails(emu: Emulator, tmp_path: Path) -> None:
    gcloud = Gcloud(emu, tmp_path / "deployer", DEPLOYER)
    _create(gcloud, "failing-job", "--set-env-vars=EXIT_WITH=3")
    done = gcloud.run("run", "jobs", "execute", "failing-job", "--wait")
    assert done.returncode != 0
    assert "The execution failed" in done.stderr
    (execution,) = gcloud("run", "jobs", "executions", "list", "--job=failing-job")
    assert execution["status"]["failedCount"] == 1
    completed = next(c for c in execution["status"]["conditions"] if c["type"] == "Completed")
    assert completed["status"] == "False"
    assert "exit code 3" in completed["message"]


def test_denials_without_run_jobs_run_or_act_as(emu: Emulator, tmp_path: Path) -> None:
    gcloud = Gcloud(emu, tmp_path / "deployer", DEPLOYER)
    _create(gcloud, "guarded-job")
    outsider = Gcloud(emu, tmp_path / "outsider", OUTSIDER)
    refused = outsider.run("run", "jobs", "execute", "guarded-job")
    assert refused.returncode != 0
    assert "Permission 'run.jobs.run' denied" in refused.stderr
    # A developer who may not act as the account cannot create a job that runs as it.
    grant(emu, f"serviceAccount:{OUTSIDER}", "roles/run.developer")
    refused = outsider.run(
        "run", "jobs", "create", "other-job", f"--image={IMAGE}", f"--service-account={WORKLOAD}"
    )  # fmt: skip
    assert refused.returncode != 0
    assert "iam.serviceaccounts.actAs" in refused.stderr
    with emu.world.lock:
        assert ("us-central1", "other-job") not in emu.world.projects[PROJECT].store(JobStore).jobs


def _schedule(emu: Emulator, job: str, account: str, scheduled: str) -> None:
    uri = f"https://{REGION}-run.googleapis.com/apis/run.googleapis.com/v1/namespaces/{PROJECT}/jobs/{job}:run"
    parent = f"/v1/projects/{PROJECT}/locations/{REGION}"
    body = {
        "name": f"projects/{PROJECT}/locations/{REGION}/jobs/{scheduled}",
        "schedule": "*/5 * * * *",
        "timeZone": "Etc/UTC",
        "httpTarget": {"uri": uri, "httpMethod": "POST", "oauthToken": {"serviceAccountEmail": account}},
    }
    status, answer = rest(emu, "POST", f"{parent}/jobs", body)
    assert status == 200, answer


def test_scheduler_starts_the_job_with_an_oauth_token(emu: Emulator, tmp_path: Path) -> None:
    gcloud = Gcloud(emu, tmp_path / "deployer", DEPLOYER)
    _create(gcloud, "scheduled-job")
    for email in (RUNNER, OUTSIDER):
        status, answer = rest(
            emu,
            "POST",
            f"/v1/projects/{PROJECT}/serviceAccounts",
            {"accountId": email.split("@")[0], "serviceAccount": {}},
        )
        assert status in (200, 409), answer
    # The runner may run this job only (roles/run.invoker on the job's own policy, set with gcloud by the owner).
    owner = Gcloud(emu, tmp_path / "owner", OWNER)
    owner("run", "jobs", "add-iam-policy-binding", "scheduled-job", f"--member=serviceAccount:{RUNNER}",
          "--role=roles/run.invoker")  # fmt: skip
    _schedule(emu, "scheduled-job", RUNNER, "start-job")
    _schedule(emu, "scheduled-job", OUTSIDER, "cannot-start-job")
    store = emu.world.projects[PROJECT].store(JobStore)
    with emu.world.lock:
        assert not store.executions
    advance(emu, 300)
    with emu.world.lock:
        started = [e for e in store.executions.values() if e.job_id == "scheduled-job"]
        assert [e.creator for e in started] == [RUNNER]
