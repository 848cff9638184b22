"""The real gcloud's service account impersonation against the emulator: `gcloud auth print-access-token` and
`gcloud auth print-identity-token --audiences=URL` with `--impersonate-service-account`, pointed at the emulator
by `Emulator.gcloud_env` alone (its IAMCREDENTIALS endpoint override reaches google-auth's impersonated
credentials, which gcloud 528 uses: generateAccessToken, then generateIdToken for the ID token).

Each gcloud command takes about a second, so the cases share two tests.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from devkit.emulated import token_for
from emulator.server import Emulator
from emulator.services.iamcredentials import API
from tests.emulator.rest_support import DEVELOPER, grant_on_account
from tests.emulator.support import PROJECT, raw_http
from tests.prerequisites import need
from tests.shared import WORKLOAD

AUDIENCE = "https://gemini-canary-3pbqmqz6le-uc.a.run.app"
NOBODY = f"nobody@{PROJECT}.iam.gserviceaccount.com"


@pytest.fixture
def gcloud() -> str:
    return need("gcloud")


@pytest.fixture
def emu(start_emulator: Any) -> Emulator:
    started: Emulator = start_emulator("deploy_ready")
    with started.world.lock:
        started.world.projects[PROJECT].services.add(API)
    return started


def _run(binary: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([binary, *args], capture_output=True, text=True, env=env, timeout=120, check=False)


def test_a_token_creator_impersonates_the_workload(gcloud: str, emu: Emulator, tmp_path: Path) -> None:
    grant_on_account(emu, f"user:{DEVELOPER}", "roles/iam.serviceAccountTokenCreator")
    env = emu.gcloud_env(tmp_path / "dev", DEVELOPER)
    impersonate = f"--impersonate-service-account={WORKLOAD}"

    done = _run(gcloud, env, "auth", "print-identity-token", impersonate, f"--audiences={AUDIENCE}", "--include-email")
    assert done.returncode == 0, done.stderr
    claims = emu.world.signer.verify(done.stdout.strip(), {AUDIENCE})
    assert (claims["email"], claims["aud"], claims["iss"]) == (WORKLOAD, AUDIENCE, "https://accounts.google.com")

    # Without --include-email gcloud asks for none, and Google's token then carries no email claim.
    done = _run(gcloud, env, "auth", "print-identity-token", impersonate, f"--audiences={AUDIENCE}")
    assert done.returncode == 0, done.stderr
    assert "email" not in emu.world.signer.verify(done.stdout.strip(), {AUDIENCE})

    done = _run(gcloud, env, "auth", "print-access-token", impersonate)
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert emu.world.token_state(token) == ("ok", WORKLOAD)
    # On a real API the token is the workload's: roles/browser lets it read the project, which the developer cannot.
    project_url = f"{emu.rest_url}/v3/projects/{PROJECT}"
    assert raw_http(project_url, headers={"Authorization": f"Bearer {token}"})[0] == 200
    assert raw_http(project_url, headers={"Authorization": f"Bearer {token_for(emu, DEVELOPER)}"})[0] == 403


def test_gcloud_reports_googles_refusals(gcloud: str, emu: Emulator, tmp_path: Path) -> None:
    env = emu.gcloud_env(tmp_path / "dev", DEVELOPER)

    denied = _run(gcloud, env, "auth", "print-identity-token", f"--impersonate-service-account={WORKLOAD}",
                  f"--audiences={AUDIENCE}")  # fmt: skip
    assert denied.returncode == 1
    assert (
        "ERROR: (gcloud.auth.print-identity-token) PERMISSION_DENIED: Failed to impersonate "
        f"[{WORKLOAD}]. Make sure the account that's trying to impersonate it has access to the service account "
        'itself and the "roles/iam.serviceAccountTokenCreator" role. Permission '
        "'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist)."
    ) in " ".join(denied.stderr.split())
    assert "reason: IAM_PERMISSION_DENIED" in denied.stderr

    unknown = _run(gcloud, env, "auth", "print-access-token", f"--impersonate-service-account={NOBODY}")
    assert unknown.returncode == 1
    assert f"ERROR: (gcloud.auth.print-access-token) NOT_FOUND: Failed to impersonate [{NOBODY}]." in " ".join(
        unknown.stderr.split()
    )
    assert f"Not found; Gaia id not found for email {NOBODY}." in " ".join(unknown.stderr.split())
