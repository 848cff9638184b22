"""The tool's in-process reads (deploy/reads.py) answer as the real gcloud does: for every read the tool makes, on a
project with the canary deployed (a function, and a job in a second project), the same JSON as `gcloud … --format=json`
and, for what is not there or not allowed, an error the tool reads the same way (not found; denied)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from deploy import reads
from deploy.gcloud import Gcloud, GcloudError
from deploy.reconcile import _denied
from deploy.spec import NAME
from devkit import fleet
from emulator.server import Emulator
from tests.prerequisites import need

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-central1"


def _tool(env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "deploy", "apply", *args, "--region", REGION, "--no-notifications",
         "--service-account", "canary-workload@{project}.iam.gserviceaccount.com"],
        cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT), "GRPC_VERBOSITY": "NONE"}, capture_output=True, text=True,
        timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def _answer(gcloud: Gcloud, argv: list[str]) -> tuple[str, Any]:
    try:
        return "ok", gcloud._read(argv)
    except GcloudError as err:
        return "error", (err.not_found, _denied(err))


def test_every_read_answers_as_gcloud_does(tmp_path: Path) -> None:
    need("gcloud")
    function, job = fleet.fleet_project(1), fleet.fleet_project(2)
    with Emulator(str(fleet.fleet_scenario(tmp_path / "fleet.yaml", 2))) as emulator:
        env = emulator.gcloud_env(tmp_path / "home", fleet.DEPLOYER)
        _tool(env, "--project", function)
        _tool(env, "--project", job, "--kind", "job")
        region = f"--region={REGION}"
        cases = {
            function: [
                ["projects", "describe", function],
                ["projects", "get-iam-policy", function],
                ["iam", "service-accounts", "describe", f"canary-workload@{function}.iam.gserviceaccount.com"],
                ["iam", "service-accounts", "describe", f"nobody@{function}.iam.gserviceaccount.com"],  # not found
                ["services", "list", "--enabled"],  # the fleet's deployer may not list services: denied
                ["scheduler", "jobs", "describe", NAME, f"--location={REGION}"],
                ["functions", "describe", NAME, region, "--gen2"],
                ["run", "services", "get-iam-policy", NAME, region],
                ["run", "jobs", "describe", NAME, region],  # not found: this project's canary is a function
                ["monitoring", "dashboards", "list"],
                ["pubsub", "topics", "describe", NAME],  # not found
            ],
            job: [
                ["run", "jobs", "describe", NAME, region],
                ["run", "jobs", "get-iam-policy", NAME, region],
                ["functions", "describe", NAME, region, "--gen2"],  # not found
                ["scheduler", "jobs", "describe", NAME, f"--location={REGION}"],
            ],
        }
        seen = set()
        for project, argvs in cases.items():
            by_gcloud = Gcloud(project, env={**env, "DEPLOY_READS": "gcloud"})
            in_process = Gcloud(project, env=env)
            for argv in argvs:
                assert reads.request_for(project, argv) is not None, argv  # every read the tool makes is covered
                expected, got = _answer(by_gcloud, argv), _answer(in_process, argv)
                assert got == expected, argv
                seen.add(expected[0] if expected[0] == "ok" else str(expected[1]))
        assert seen == {"ok", "(True, False)", "(False, True)"}  # resources, absences and a denial all compared


def test_only_known_reads_are_sent_in_process_and_nothing_changes_a_path() -> None:
    assert reads.request_for("p-1", ["projects", "list"]) is None  # still gcloud
    assert reads.request_for("p-1", ["functions", "describe", NAME, "--region=r"]) is None  # gen1: not known
    assert reads.request_for("p-1", ["projects", "describe", "other-project"]) is None  # only the project's own
    odd = reads.request_for("p-1", ["iam", "service-accounts", "describe", "a/../b?x=1#@p.iam.gserviceaccount.com"])
    assert odd is not None
    dots = reads.request_for("p-1", ["pubsub", "topics", "describe", ".."])
    assert dots is not None
    assert dots.path == "v1/projects/p-1/topics/%2E%2E"
    assert odd.path == "v1/projects/-/serviceAccounts/a%2F..%2Fb%3Fx%3D1%23@p.iam.gserviceaccount.com"


@pytest.mark.parametrize(
    ("argv", "env", "url"),
    [
        (["projects", "describe", "p-1"], {}, "https://cloudresourcemanager.googleapis.com/v1/projects/p-1"),
        (
            ["run", "jobs", "describe", NAME, "--region=europe-west1"],
            {},
            f"https://europe-west1-run.googleapis.com/apis/run.googleapis.com/v1/namespaces/p-1/jobs/{NAME}",
        ),
        (
            ["monitoring", "dashboards", "list"],
            {"CLOUDSDK_API_ENDPOINT_OVERRIDES_MONITORING": "http://127.0.0.1:9/"},
            "http://127.0.0.1:9/v1/projects/p-1/dashboards",
        ),
    ],
)
def test_endpoints_are_google_s_unless_gcloud_is_pointed_elsewhere(
    argv: list[str], env: dict[str, str], url: str
) -> None:
    request = reads.request_for("p-1", argv)
    assert request is not None
    assert reads.url_of(request, env) == url


def test_the_switch_sends_reads_back_through_gcloud() -> None:
    assert reads.enabled({})
    assert not reads.enabled({"DEPLOY_READS": "gcloud"})


def test_no_application_default_credentials_is_one_line_with_the_command(tmp_path: Path) -> None:
    """A workstation with gcloud but without `gcloud auth application-default login`: the in-process reads say
    what is missing and how to set it, not google.auth's message and link."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    env["GCE_METADATA_HOST"] = "127.0.0.1:9"  # nothing listens there: no metadata server either
    done = subprocess.run(
        [sys.executable, "-m", "deploy", "status", "--project", "demo-proj", "--region", "us-central1"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    [problem] = [line.strip() for line in done.stdout.splitlines() if line.strip().startswith("! ")]
    assert problem.startswith("! NoCredentials: no Application Default Credentials: run `gcloud auth "
                              "application-default login` as the account gcloud is logged in as"), problem  # fmt: skip
    assert "Traceback" not in done.stderr
