"""What the REST-only API tests share: a JSON call as any principal, granting roles through the admin API, and a
function's source uploaded the way gcloud uploads it."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from devkit.emulated import admin, token_for
from emulator.server import Emulator
from tests.emulator.support import DEPLOYER, PROJECT, raw_http
from tests.shared import WORKLOAD

STRANGER = "stranger@example.com"  # holds no role anywhere
DEVELOPER = "dev@example.com"
LOC = f"projects/{PROJECT}/locations/us-central1"
URI = "https://gemini-canary-3pbqmqz6le-uc.a.run.app"


def rest(emu: Emulator, verb: str, path: str, body: Any = None, email: str = DEPLOYER) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {token_for(emu, email)}", "Content-Type": "application/json"}
    status, text = raw_http(f"{emu.rest_url}{path}", verb, data, headers)
    return status, json.loads(text) if text else None


def grant(emu: Emulator, member: str, *roles: str) -> None:
    bindings = {b.role: list(b.members) for b in emu.world.projects[PROJECT].policy.bindings}
    patch = {role: sorted({*bindings.get(role, []), member}) for role in roles}
    status, body = admin(emu, "PATCH", "world", {"projects": {PROJECT: {"bindings": patch}}})
    assert status == 200, body


def grant_on_account(emu: Emulator, member: str, role: str, account: str = WORKLOAD, project: str = PROJECT) -> None:
    """A binding on a service account's own policy, set through IAM Admin as the deployer (an account admin)."""
    path = f"/v1/projects/{project}/serviceAccounts/{account}"
    status, policy = rest(emu, "POST", f"{path}:getIamPolicy", {})
    assert status == 200, policy
    policy.setdefault("bindings", []).append({"role": role, "members": [member]})
    status, answer = rest(emu, "POST", f"{path}:setIamPolicy", {"policy": policy})
    assert status == 200, answer


def builder_ready(emu: Emulator) -> None:
    """The project's build account (the Compute Engine default) may build: a new project's may not."""
    number = emu.world.projects[PROJECT].number
    grant(emu, f"serviceAccount:{number}-compute@developer.gserviceaccount.com", "roles/cloudbuild.builds.builder")


SOURCE = {"main.py": "def canary(request):\n    return 'ok'\n", "requirements.txt": "functions-framework\n"}


def upload_source(emu: Emulator, email: str = DEPLOYER, files: dict[str, str] | None = None) -> dict[str, str]:
    """generateUploadUrl, then the PUT of a zip gcloud makes (of `files`, default SOURCE); the storageSource to
    deploy from."""
    status, answer = rest(emu, "POST", f"/v2/{LOC}/functions:generateUploadUrl", {}, email)
    assert status == 200, answer
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        for name, content in (SOURCE if files is None else files).items():
            zf.writestr(name, content)
    status, _ = raw_http(answer["uploadUrl"], "PUT", archive.getvalue(), {"Content-Type": "application/zip"})
    assert status == 200
    return dict(answer["storageSource"])


def function_body(source: dict[str, str], account: str = WORKLOAD) -> dict[str, Any]:
    return {
        "buildConfig": {"runtime": "python311", "entryPoint": "canary", "source": {"storageSource": source}},
        "serviceConfig": {"serviceAccountEmail": account, "availableMemory": "256Mi", "timeoutSeconds": 60},
    }


def scheduler_job(**changes: Any) -> dict[str, Any]:
    job: dict[str, Any] = {
        "name": f"{LOC}/jobs/gemini-canary",
        "schedule": "*/5 * * * *",
        "timeZone": "Etc/UTC",
        "attemptDeadline": "90s",
        "retryConfig": {"retryCount": 0},
        "httpTarget": {
            "uri": URI,
            "httpMethod": "POST",
            "body": "e30=",
            "headers": {"Content-Type": "application/json"},
            "oidcToken": {"serviceAccountEmail": WORKLOAD, "audience": URI},
        },
    }
    job.update(changes)
    return job
