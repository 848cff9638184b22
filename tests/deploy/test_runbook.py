"""The README's runbook query, run with the real `gcloud logging read` after a denial, prints the evidence."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
from google.api_core import exceptions
from google.cloud import aiplatform_v1

from devkit import emulated
from emulator.server import Emulator
from tests.prerequisites import need
from tests.shared import WORKLOAD

ROOT = Path(__file__).resolve().parents[2]
METADATA_PORT = int(os.environ["GCE_METADATA_HOST"].rsplit(":", 1)[1])


def runbook_commands() -> list[str]:
    """The `gcloud logging read` commands of the README's runbook, as a user would paste them."""
    text = (ROOT / "README.md").read_text()
    block = text.split("### Runbook: reading the evidence yourself", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = re.split(r"\n(?=gcloud )", block.strip())
    return [" ".join(c.split()) for c in commands]


def test_the_runbook_query_prints_the_evidence(tmp_path: Path) -> None:
    need("gcloud")
    with Emulator("role_removed_at_t", metadata_port=METADATA_PORT, clock_mode="running") as emulator:
        emulated.admin(emulator, "POST", "clock", {"advance_seconds": 10 * 60 + 1})  # alice removes the role
        clients = emulated.clients(emulator, WORKLOAD)
        with pytest.raises(exceptions.PermissionDenied):
            clients.prediction.generate_content(
                request=aiplatform_v1.GenerateContentRequest(
                    model="projects/demo-proj/locations/us-central1/publishers/google/models/gemini-2.5-flash-lite",
                    contents=[aiplatform_v1.Content(role="user", parts=[aiplatform_v1.Part(text="hi")])],
                )
            )
        emulated.admin(emulator, "POST", "clock", {"advance_seconds": 10})  # past the ingestion lag
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
    need("gcloud", "jq")
    from function.remedies import enable_data_access_logs

    with Emulator("data_access_off", metadata_port=METADATA_PORT) as emulator:
        before = emulated.admin(emulator, "GET", "world")[1]["projects"]["demo-proj"]
        env = {**emulator.gcloud_env(tmp_path, "alice@example.com"), "TMPDIR": str(tmp_path / "tmp")}
        (tmp_path / "tmp").mkdir()
        command = enable_data_access_logs("demo-proj")
        done = subprocess.run(
            ["bash", "-o", "pipefail", "-c", command], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, done.stderr
        after = emulated.admin(emulator, "GET", "world")[1]["projects"]["demo-proj"]
    assert before["audit_logs"] == {}
    assert after["audit_logs"] == {"aiplatform.googleapis.com": ["DATA_READ", "DATA_WRITE"]}
    assert after["bindings"] == before["bindings"]
    assert list((tmp_path / "tmp").iterdir()) == []
    assert "/tmp/" not in command


DENY_ON_FOLDER = """
extends: data_access_on
organization:
  bindings:
    roles/owner: [user:alice@example.com]
folders:
  "345678901234": {display_name: ml-workloads}
projects:
  demo-proj: {parent: folders/345678901234}
deny:
  - principal: serviceAccount:canary-workload@demo-proj.iam.gserviceaccount.com
    permission: aiplatform.endpoints.predict
    attached_to: folders/345678901234
"""


def test_the_deny_policy_remedies_run_verbatim_and_find_the_folders_policy(tmp_path: Path) -> None:
    """ "Granted, yet denied": the canary's two deny-policy commands, pasted as printed, with the real gcloud. The one
    for the project finds nothing there; the one for the ancestors finds the folder's deny policy, in the v2 API's
    principal and permission forms."""
    need("gcloud")
    from function.causes import Cause, Failure
    from function.config import Target
    from function.evidence import Evidence
    from function.probe import Outcome
    from function.remedies import remedies

    target = Target("gemini-2.5-flash-lite", "us-central1")
    outcome = Outcome(target, Cause.IAM_PERMISSION_DENIED, 10.0, failure=Failure(Cause.IAM_PERMISSION_DENIED))
    commands = [
        r.command
        for r in remedies(outcome, Evidence(predict_granted=True, data_read_on=True), "demo-proj", WORKLOAD)
        if r.command and "deny" in r.command
    ]
    assert len(commands) == 2
    scenario = tmp_path / "deny_on_folder.yaml"
    scenario.write_text(DENY_ON_FOLDER)
    with Emulator(str(scenario), metadata_port=METADATA_PORT) as emulator:
        env = emulator.gcloud_env(tmp_path, "alice@example.com")
        outputs = []
        for command in commands:
            done = subprocess.run(
                shlex.split(command), env=env, capture_output=True, text=True, timeout=120, check=False
            )
            assert done.returncode == 0, done.stderr
            outputs.append(json.loads(done.stdout or "null"))
    on_project, ancestors = outputs
    assert not on_project  # nothing attached to the project itself
    deny = [a for a in ancestors if a["policy"].get("kind") == "DenyPolicy"]
    assert [(a["type"], a["id"]) for a in deny] == [("folder", "345678901234")]
    [rule] = deny[0]["policy"]["rules"]
    assert rule["denyRule"] == {
        "deniedPrincipals": [f"principal://iam.googleapis.com/projects/-/serviceAccounts/{WORKLOAD}"],
        "deniedPermissions": ["aiplatform.googleapis.com/endpoints.predict"],
    }
    assert [(a["type"], a["id"]) for a in ancestors if "bindings" in a["policy"]][:1] == [("project", "demo-proj")]
