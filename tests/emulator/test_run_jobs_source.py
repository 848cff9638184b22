"""`gcloud run jobs deploy --source` with the real gcloud against the emulator: the staging bucket and upload (Cloud
Storage), the cloud-run-source-deploy repository (Artifact Registry), Cloud Run's builds:submit and the build's
operation (Cloud Build), then the job; the execution runs the uploaded source, a redeploy runs the new source, a
failed build fails the deploy with gcloud's text, a denial is reported as gcloud reports it, and a hostile archive
fails its build before anything runs."""

from __future__ import annotations

import io
import json
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devkit.emulated import clients, token_for
from emulator.server import Emulator
from tests.emulator.rest_support import grant, rest
from tests.emulator.support import DEPLOYER, OWNER, PROJECT, advance, list_entries, raw_http
from tests.prerequisites import need
from tests.shared import WORKLOAD

REGION = "us-central1"
OUTSIDER = f"outsider@{PROJECT}.iam.gserviceaccount.com"
TASK = 'import os\nprint("task says", os.environ.get("GREETING", ""), "{version}")\n'


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator("deploy_ready", serve_functions=True) as emulator:
        grant(emulator, f"serviceAccount:{DEPLOYER}", "roles/run.sourceDeveloper")
        grant(emulator, f"serviceAccount:{OUTSIDER}", "roles/run.developer", "roles/iam.serviceAccountUser")
        yield emulator


def gcloud(emu: Emulator, home: Path, email: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [need("gcloud"), *args, f"--region={REGION}"],
        capture_output=True,
        text=True,
        env=emu.gcloud_env(home, email),
        timeout=180,
        check=False,
    )


def deploy(emu: Emulator, home: Path, source: Path, email: str = DEPLOYER) -> subprocess.CompletedProcess[str]:
    return gcloud(
        emu,
        home,
        email,
        "run",
        "jobs",
        "deploy",
        "src-job",
        f"--source={source}",
        f"--service-account={WORKLOAD}",
        "--set-env-vars=GREETING=hello",
        "--max-retries=0",
        "--task-timeout=120s",
        "--command=python",
        "--args=task.py",
    )


def source(folder: Path, version: str, **extra: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "task.py").write_text(TASK.format(version=version))
    for name, content in extra.items():
        (folder / name.replace("_", ".")).write_text(content)
    return folder


def task_lines(emu: Emulator) -> list[str]:
    advance(emu, 10)
    entries = list_entries(
        clients(emu, email=OWNER).logging,
        'resource.type="cloud_run_job" AND resource.labels.job_name="src-job" AND logName:"stdout"',
    )
    return sorted(e.text_payload for e in entries)


def test_deploy_from_source_runs_the_uploaded_source_and_a_redeploy_runs_the_new_one(
    emu: Emulator, tmp_path: Path
) -> None:
    home = tmp_path / "deployer"
    done = deploy(emu, home, source(tmp_path / "v1", "v1"))
    assert done.returncode == 0, done.stderr
    assert "Job [src-job] has successfully been deployed." in done.stderr

    # What gcloud left behind: the staging bucket with the zip, the repository, the image the job names by digest.
    status, bucket = rest(emu, "GET", f"/storage/v1/b/run-sources-{PROJECT}-{REGION}")
    assert status == 200, bucket
    assert bucket["location"] == REGION.upper()
    repository = f"/v1/projects/{PROJECT}/locations/{REGION}/repositories/cloud-run-source-deploy"
    status, repo = rest(emu, "GET", repository)
    assert (status, repo["format"], repo["description"]) == (200, "DOCKER", "Cloud Run Source Deployments")
    status, images = rest(emu, "GET", f"{repository}/dockerImages")
    assert status == 200, images
    [first] = images["dockerImages"]
    assert first["uri"].startswith(f"{REGION}-docker.pkg.dev/{PROJECT}/cloud-run-source-deploy/src-job@sha256:")
    job = json.loads(gcloud(emu, home, DEPLOYER, "run", "jobs", "describe", "src-job", "--format=json").stdout)
    assert job["spec"]["template"]["spec"]["template"]["spec"]["containers"][0]["image"] == first["uri"]

    done = gcloud(emu, home, DEPLOYER, "run", "jobs", "execute", "src-job", "--wait")
    assert done.returncode == 0, done.stderr
    assert task_lines(emu) == ["task says hello v1"]

    # A redeploy with changed source: a new image, and the next execution runs it.
    done = deploy(emu, home, source(tmp_path / "v2", "v2"))
    assert done.returncode == 0, done.stderr
    status, images = rest(emu, "GET", f"{repository}/dockerImages")
    latest = [i for i in images["dockerImages"] if "latest" in i.get("tags", [])]
    assert len(images["dockerImages"]) == 2
    assert len(latest) == 1
    assert latest[0]["uri"] != first["uri"]
    done = gcloud(emu, home, DEPLOYER, "run", "jobs", "execute", "src-job", "--wait")
    assert done.returncode == 0, done.stderr
    assert task_lines(emu) == ["task says hello v1", "task says hello v2"]

    # The build is audited, and its log is readable.
    builds = list_entries(
        clients(emu, email=OWNER).logging,
        'logName:"cloudaudit.googleapis.com%2Factivity" AND '
        'protoPayload.methodName="google.devtools.cloudbuild.v1.CloudBuild.CreateBuild"',
    )
    assert len(builds) == 2


def test_a_failed_build_fails_the_deploy_with_gclouds_text_and_pips_in_the_build_log(
    emu: Emulator, tmp_path: Path
) -> None:
    folder = source(tmp_path / "bad", "v1", requirements_txt="surely-not-installed-package==9.9\n")
    done = deploy(emu, tmp_path / "deployer", folder)
    assert done.returncode == 1
    assert "Build failed; check build logs for details" in done.stderr
    status, _ = rest(emu, "GET", f"/apis/run.googleapis.com/v1/namespaces/{PROJECT}/jobs/src-job")
    assert status == 404  # no job was made
    advance(emu, 10)
    lines = [
        e.text_payload
        for e in list_entries(clients(emu, email=OWNER).logging, 'resource.type="build" AND logName:"cloudbuild"')
    ]
    assert any("No matching distribution found for surely-not-installed-package==9.9" in line for line in lines)


def test_a_deployer_without_artifact_registry_access_is_refused_as_gcloud_reports_it(
    emu: Emulator, tmp_path: Path
) -> None:
    done = deploy(emu, tmp_path / "outsider", source(tmp_path / "v1", "v1"), OUTSIDER)
    assert done.returncode == 1
    assert "Permission denied while accessing Artifact Registry." in done.stderr
    assert "artifactregistry.repositories.get" in done.stderr


def _upload(emu: Emulator, email: str, bucket: str, name: str, data: bytes) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token_for(emu, email)}", "Content-Type": "application/zip"}
    url = f"{emu.rest_url}/upload/storage/v1/b/{bucket}/o?uploadType=media&name={name}"
    status, text = raw_http(url, "POST", data, headers)
    return status, json.loads(text) if text else None


def test_storage_denials_and_a_hostile_archive_fail_before_anything_is_built(emu: Emulator) -> None:
    bucket = f"run-sources-{PROJECT}-{REGION}"
    status, body = rest(emu, "POST", f"/storage/v1/b?project={PROJECT}", {"name": bucket, "location": REGION})
    assert status == 200, body
    status, body = rest(emu, "POST", f"/storage/v1/b?project={PROJECT}", {"name": bucket}, email=OUTSIDER)
    assert status == 403
    assert body["error"]["message"].startswith(f"{OUTSIDER} does not have storage.buckets.create access")
    status, body = _upload(emu, OUTSIDER, bucket, "jobs/x.zip", b"PK")
    assert status == 403
    assert "storage.objects.create" in body["error"]["message"]

    hostile = io.BytesIO()
    with zipfile.ZipFile(hostile, "w") as archive:
        archive.writestr("../escape.py", "print('out')")
    status, obj = _upload(emu, DEPLOYER, bucket, "jobs/hostile.zip", hostile.getvalue())
    assert status == 200, obj
    rest(
        emu, "POST", f"/v1/projects/{PROJECT}/locations/{REGION}/repositories?repositoryId=cloud-run-source-deploy", {}
    )
    image = f"{REGION}-docker.pkg.dev/{PROJECT}/cloud-run-source-deploy/hostile"
    status, answer = rest(
        emu,
        "POST",
        f"/v2/projects/{PROJECT}/locations/{REGION}/builds:submit",
        {
            "storageSource": {"bucket": bucket, "object": obj["name"], "generation": obj["generation"]},
            "imageUri": image,
            "buildpackBuild": {},
        },
    )
    assert status == 200, answer
    operation = answer["buildOperation"]
    assert operation["error"]["message"] == "Build failed; check build logs for details."
    build = operation["metadata"]["build"]
    assert build["status"] == "FAILURE"
    assert "points outside the source folder" in build["failureInfo"]["detail"]
    status, polled = rest(emu, "GET", f"/v1/projects/{PROJECT}/locations/{REGION}/operations/{build['id']}")
    assert status == 200
    assert polled["error"] == operation["error"]
    status, images = rest(
        emu, "GET", f"/v1/projects/{PROJECT}/locations/{REGION}/repositories/cloud-run-source-deploy/dockerImages"
    )
    assert status == 200
    assert "dockerImages" not in images
