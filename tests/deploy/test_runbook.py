"""The README's runbook query, run with the real `gcloud logging read` after a denial, prints the evidence."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from google.api_core import exceptions
from google.cloud import aiplatform_v1

from emulator import testing
from emulator.server import Emulator

ROOT = Path(__file__).resolve().parents[2]
METADATA_PORT = int(os.environ["GCE_METADATA_HOST"].rsplit(":", 1)[1])
WORKLOAD = "canary-workload@demo-proj.iam.gserviceaccount.com"


def runbook_commands() -> list[str]:
    """The `gcloud logging read` commands of the README's runbook, as a user would paste them."""
    text = (ROOT / "README.md").read_text()
    block = text.split("### Runbook: reading the evidence yourself", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = re.split(r"\n(?=gcloud )", block.strip())
    return [" ".join(c.split()) for c in commands]


def test_the_runbook_query_prints_the_evidence(tmp_path: Path) -> None:
    if shutil.which("gcloud") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("gcloud is not installed, and CI=true requires the gcloud tests to run")
        pytest.skip("gcloud is not installed")
    with Emulator("role_removed_at_t", metadata_port=METADATA_PORT, clock_mode="running") as emulator:
        testing.admin(emulator, "POST", "clock", {"advance_seconds": 10 * 60 + 1})  # alice removes the role
        clients = testing.clients(emulator, WORKLOAD)
        with pytest.raises(exceptions.PermissionDenied):
            clients.prediction.generate_content(
                request=aiplatform_v1.GenerateContentRequest(
                    model="projects/demo-proj/locations/us-central1/publishers/google/models/gemini-2.5-flash-lite",
                    contents=[aiplatform_v1.Content(role="user", parts=[aiplatform_v1.Part(text="hi")])],
                )
            )
        testing.admin(emulator, "POST", "clock", {"advance_seconds": 10})  # past the ingestion lag
        env = emulator.gcloud_env(tmp_path, "alice@example.com")
        denial, change = runbook_commands()
        outputs = []
        for command in (denial, change):
            argv = shlex.split(command.replace("PROJECT", "demo-proj").replace("WORKLOAD_SA", WORKLOAD))
            if "--format=json" not in argv:
                argv.append("--format=json")
            done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
            assert done.returncode == 0, done.stderr
            outputs.append(json.loads(done.stdout))
        [entry] = outputs[0]
        assert entry["protoPayload"]["authenticationInfo"]["principalEmail"] == WORKLOAD
        assert entry["protoPayload"]["authorizationInfo"][0]["permission"] == "aiplatform.endpoints.predict"
        assert entry["protoPayload"]["status"]["code"] == 7
        [activity] = outputs[1]
        assert activity["protoPayload"]["authenticationInfo"]["principalEmail"] == "alice@example.com"
        deltas = activity["protoPayload"]["serviceData"]["policyDelta"]["bindingDeltas"]
        assert {"action": "REMOVE", "role": "roles/aiplatform.user", "member": f"serviceAccount:{WORKLOAD}"} in deltas


def test_the_data_access_remedy_runs_verbatim_and_turns_the_logs_on(tmp_path: Path) -> None:
    """The canary's "turn on Data Access logs" command, pasted as printed, with the real gcloud and jq: DATA_READ is on
    afterwards, nothing else in the policy changed, and no file is written (it used to go through /tmp/policy.json)."""
    if shutil.which("gcloud") is None or shutil.which("jq") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("gcloud and jq are required when CI=true")
        pytest.skip("gcloud or jq is not installed")
    from function.remedies import enable_data_access_logs

    with Emulator("data_access_off", metadata_port=METADATA_PORT) as emulator:
        before = testing.admin(emulator, "GET", "world")[1]["projects"]["demo-proj"]
        env = {**emulator.gcloud_env(tmp_path, "alice@example.com"), "TMPDIR": str(tmp_path / "tmp")}
        (tmp_path / "tmp").mkdir()
        command = enable_data_access_logs("demo-proj")
        done = subprocess.run(
            ["bash", "-o", "pipefail", "-c", command], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, done.stderr
        after = testing.admin(emulator, "GET", "world")[1]["projects"]["demo-proj"]
    assert before["audit_logs"] == {}
    assert after["audit_logs"] == {"aiplatform.googleapis.com": ["DATA_READ", "DATA_WRITE"]}
    assert after["bindings"] == before["bindings"]
    assert list((tmp_path / "tmp").iterdir()) == []
    assert "/tmp/" not in command
