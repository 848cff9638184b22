"""Direct VPC egress for the function kind: gcloud 528's functions deploy has no flag for it, so apply sets the two
Cloud Functions v2 fields with one PATCH after the deploy (deploy/directvpc.py). With the real gcloud against the
emulator: created, unchanged on a re-run, updated, cleared; planned and not sent in a dry run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from devkit import fleet
from emulator.server import Emulator
from emulator.services.functions import FunctionStore
from tests.prerequisites import need
from tests.shared import WORKLOAD

ROOT = Path(__file__).resolve().parents[2]
WHERE = ["--project", "demo-proj", "--region", "us-central1", "--service-account", WORKLOAD, "--no-notifications"]
NAME = "projects/demo-proj/locations/us-central1/functions/gemini-canary"


def _apply(emulator: Emulator, home: Path, *extra: str) -> dict[str, Any]:
    env = {**emulator.gcloud_env(home, fleet.DEPLOYER), "PYTHONPATH": str(ROOT), "GRPC_VERBOSITY": "NONE"}
    done = subprocess.run(
        [sys.executable, "-m", "deploy", "apply", *WHERE, "--format", "json", *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    [project] = json.loads(done.stdout)["projects"]
    return dict(project)


def _egress(project: dict[str, Any]) -> tuple[str, str]:
    [change] = [c for c in project["changes"] if c["resource"] == "direct VPC egress"] or [{"action": "", "detail": ""}]
    return change["action"], change["detail"]


def _fields(emulator: Emulator) -> dict[str, Any]:
    with emulator.world.lock:
        service = emulator.world.projects["demo-proj"].store(FunctionStore).functions[NAME].resource["serviceConfig"]
        return {k: service.get(k) for k in ("directVpcNetworkInterface", "directVpcEgress")}


def test_a_functions_direct_vpc_egress_is_set_kept_changed_and_cleared(tmp_path: Path) -> None:
    need("gcloud")
    home = tmp_path / "deployer"
    with Emulator("deploy_ready") as emulator:
        planned = _apply(emulator, home, "--network", "workload-vpc", "--subnet", "workload-subnet", "--dry-run")
        assert any("PATCH cloudfunctions.googleapis.com/v2/" + NAME in line for line in planned["plan"]), planned
        assert _egress(planned) == ("would create", "network=workload-vpc subnetwork=workload-subnet, "
                                    "VPC_EGRESS_ALL_TRAFFIC")  # fmt: skip
        with emulator.world.lock:
            assert not emulator.world.projects["demo-proj"].store(FunctionStore).functions  # nothing was sent

        created = _apply(emulator, home, "--network", "workload-vpc", "--subnet", "workload-subnet")
        assert _egress(created)[0] == "created"
        assert _fields(emulator) == {
            "directVpcNetworkInterface": [{"network": "workload-vpc", "subnetwork": "workload-subnet"}],
            "directVpcEgress": "VPC_EGRESS_ALL_TRAFFIC",
        }
        again = _apply(emulator, home, "--network", "workload-vpc", "--subnet", "workload-subnet")
        assert again["status"] == "unchanged", again
        assert _egress(again)[0] == "unchanged"

        narrowed = _apply(emulator, home, "--network", "workload-vpc", "--subnet", "workload-subnet",
                          "--vpc-egress", "private-ranges-only")  # fmt: skip
        assert _egress(narrowed)[0] == "updated"
        assert _fields(emulator)["directVpcEgress"] == "VPC_EGRESS_PRIVATE_RANGES_ONLY"

        cleared = _apply(emulator, home)
        assert _egress(cleared)[0] == "deleted"
        assert not _fields(emulator)["directVpcNetworkInterface"]
        assert _egress(_apply(emulator, home)) == ("", "")  # no egress asked, none there: nothing said
