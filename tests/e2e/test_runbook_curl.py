"""The README's on-demand runbook, run verbatim with the real gcloud and curl against the real canary, deployed into
the emulator by the deploy tool and served there: only the environment points the tools at the emulator (gcloud's
proxy and endpoint overrides, curl's `https_proxy` and `CURL_CA_BUNDLE`), as a user would set a proxy and a CA."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from deploy.spec import INVOKER_ID
from devkit import emulated, fleet
from emulator.server import Emulator
from emulator.services.iamcredentials import API as IAMCREDENTIALS
from tests.emulator.rest_support import grant_on_account, rest
from tests.prerequisites import need
from tests.shared import WORKLOAD

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "demo-proj"
OPERATOR = "dev@example.com"  # the person running the runbook: a project viewer, nothing more
FUNCTION = f"projects/{PROJECT}/locations/us-central1/functions/gemini-canary"


def runbook_block() -> str:
    """The README's curl runbook, as a user would paste it."""
    text = (ROOT / "README.md").read_text()
    [block] = [
        b.split("```", 1)[0] for b in text.split("```bash")[1:] if "gcloud functions describe gemini-canary" in b
    ]
    return block.strip()


def _deploy(emu: Emulator, home: Path) -> None:
    env = {**emu.gcloud_env(home, fleet.DEPLOYER), "PYTHONPATH": str(ROOT), "GRPC_VERBOSITY": "NONE"}
    argv = [sys.executable, "-m", "deploy", "apply", "--project", PROJECT, "--region", "us-central1",
            "--service-account", WORKLOAD, "--notify-email", "oncall@example.com",
            "--targets", "gemini-2.5-flash-lite@us-central1,gemini-2.5-pro@global"]  # fmt: skip
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def _served(emu: Emulator) -> dict[str, Any]:
    """The function once its revision is running (the deploy's build and start are asynchronous)."""
    deadline = time.monotonic() + 120
    while True:
        status, function = rest(emu, "GET", f"/v2/{FUNCTION}")
        assert status == 200, function
        if function["state"] == "ACTIVE" or time.monotonic() > deadline:
            assert function["state"] == "ACTIVE", function
            return function
        time.sleep(0.2)  # polled as gcloud polls; the loop ends on the condition


def _bash(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _split(stdout: str) -> tuple[str, dict[str, Any]]:
    """The two curls' outputs: the text verdict, then the JSON document."""
    start = stdout.index("\n{") + 1 if not stdout.startswith("{") else 0
    return stdout[:start], json.loads(stdout[start:])


def test_the_readme_runbook_prints_the_verdict_through_the_emulator(tmp_path: Path) -> None:
    need("gcloud", "curl")
    with Emulator("deploy_ready", serve_functions=True, clock_mode="running") as emu:
        _deploy(emu, tmp_path / "deployer")
        function = _served(emu)
        url = function["serviceConfig"]["uri"]
        invoker_sa = f"{INVOKER_ID}@{PROJECT}.iam.gserviceaccount.com"
        # What the README says the runbook needs: the deploy tool granted run.invoker on the service to the invoker
        # account; the operator gets the token creator role on that account (and can read the function).
        service = function["serviceConfig"]["service"]  # projects/P/locations/R/services/S, Cloud Run's v2 name
        status, service_policy = rest(emu, "GET", f"/v2/{service}:getIamPolicy")
        assert status == 200, service_policy
        invokers = {
            m for b in service_policy.get("bindings", []) if b["role"] == "roles/run.invoker" for m in b["members"]
        }
        assert f"serviceAccount:{invoker_sa}" in invokers, service_policy
        emulated.admin(
            emu, "PATCH", "world", {"projects": {PROJECT: {"bindings": {"roles/viewer": [f"user:{OPERATOR}"]}}}}
        )
        grant_on_account(emu, f"user:{OPERATOR}", "roles/iam.serviceAccountTokenCreator", invoker_sa)
        with emu.world.lock:
            emu.world.projects[PROJECT].services.add(IAMCREDENTIALS)

        env = {
            **emu.gcloud_env(tmp_path / "operator", OPERATOR),
            "https_proxy": emu.rest_url,
            "CURL_CA_BUNDLE": str(emu.ca_file),
        }
        script = runbook_block().replace("PROJECT", PROJECT).replace("INVOKER_SA", invoker_sa)

        done = _bash(script, env)
        assert done.returncode == 0, done.stderr
        text, doc = _split(done.stdout)
        assert text.startswith(f"gemini-canary OK: 2/2 targets answered in project {PROJECT} as {WORKLOAD}\n"), text
        assert (doc["verdict"], doc["principal"], doc["trigger"]) == ("healthy", WORKLOAD, {"kind": "http"}), doc
        assert [t["target"] for t in doc["targets"]] == ["gemini-2.5-pro@global"]
        assert "config" in doc  # debug=true

        # The workload loses its Gemini role: the same runbook now prints the denial, naming the permission.
        emulated.admin(emu, "PATCH", "world", {"projects": {PROJECT: {"bindings": {"roles/aiplatform.user": []}}}})
        done = _bash(script, env)
        assert done.returncode == 0, done.stderr
        text, doc = _split(done.stdout)
        assert text.startswith("gemini-canary DENIED: iam_permission_denied ("), text
        assert "\niam_permission_denied  gemini-2.5-flash-lite@us-central1, " in text, text
        assert f"{WORKLOAD} lacks aiplatform.endpoints.predict on {PROJECT}" in text
        assert doc["verdict"] == "denied", doc
        assert doc["targets"][0]["error"]["metadata"]["permission"] == "aiplatform.endpoints.predict"

        # The same curl without a token is Cloud Run's 403 page; with a token for another audience, 401.
        curl = ["curl", "-sS", "-w", "\n%{http_code}", f"{url}/?format=text"]
        bare = subprocess.run(curl, env=env, capture_output=True, text=True, timeout=60, check=False)
        assert bare.returncode == 0, bare.stderr
        assert bare.stdout.endswith("\n403"), bare.stdout
        assert "<title>403 Forbidden</title>" in bare.stdout
        other = emu.world.signer.id_token(invoker_sa, "https://elsewhere-3pbqmqz6le-uc.a.run.app")
        wrong = subprocess.run(
            [*curl, "-H", f"Authorization: Bearer {other}"], env=env, capture_output=True, text=True, timeout=60,
            check=False,
        )  # fmt: skip
        assert wrong.stdout.endswith("\n401"), wrong.stdout
        assert "<title>401 Unauthorized</title>" in wrong.stdout
