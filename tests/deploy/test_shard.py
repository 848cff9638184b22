"""--shard K/N: every project in exactly one shard, chosen by its id alone; bad input named in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from deploy import shard
from deploy.__main__ import main
from deploy.spec import SpecError
from devkit import fleet
from emulator.server import Emulator

ROOT = Path(__file__).resolve().parents[2]

FLEET = [f"fleet-proj-{i:03d}" for i in range(1, 201)]


def test_the_shards_cover_the_fleet_once_whatever_its_order() -> None:
    parts = [shard.select(FLEET, (k, 10)) for k in range(1, 11)]
    assert sorted(p for part in parts for p in part) == sorted(FLEET)  # each project once
    assert all(5 <= len(part) <= 40 for part in parts), [len(p) for p in parts]  # spread, not all in one
    backwards = [shard.select(list(reversed(FLEET)), (k, 10)) for k in range(1, 11)]
    assert [sorted(p) for p in backwards] == [sorted(p) for p in parts]  # the order of the file does not matter
    grown = shard.select([*FLEET, "new-proj-001"], (3, 10))
    assert [p for p in grown if p != "new-proj-001"] == parts[2]  # adding a project moves no other
    assert shard.select(FLEET, None) == FLEET


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("3", "--shard: '3' is not K/N (for example 3/10: the third of ten shards)"),
        ("0/10", "--shard: shard 0 of 10 does not exist; allowed: 1 to 10"),
        ("11/10", "--shard: shard 11 of 10 does not exist; allowed: 1 to 10"),
        ("1/0", "--shard: 0 shards is out of range; allowed: 1 to 1000"),
        ("1/5000", "--shard: 5000 shards is out of range; allowed: 1 to 1000"),
        ("1/10\n", "--shard: '1/10\\n' is not K/N (for example 3/10: the third of ten shards)"),
        ("-1/10", "--shard: '-1/10' is not K/N (for example 3/10: the third of ten shards)"),
    ],
)
def test_a_bad_shard_is_refused_naming_the_flag(given: str, message: str) -> None:
    with pytest.raises(SpecError) as err:
        shard.parse(given)
    assert str(err.value) == message


def test_an_empty_shard_is_refused_before_anything_runs(capsys: pytest.CaptureFixture[str]) -> None:
    lonely = next(k for k in range(1, 11) if not shard.select(["demo-proj"], (k, 10)))
    code = main(["status", "--project", "demo-proj", "--region", "us-central1", "--shard", f"{lonely}/10"])
    assert code == 2
    assert capsys.readouterr().err == f"deploy: --shard: shard {lonely}/10 holds none of the 1 projects given\n"


def test_a_sharded_run_says_which_part_of_the_fleet_it_took(tmp_path: Path) -> None:
    """A dry run over two projects with --shard takes the one of its shard, says so before the progress, and the
    summary names only that project."""
    names = [fleet.fleet_project(i) for i in range(1, 20)]
    one = next(p for p in names if shard.shard_of(p, 2) == 1)
    two = next(p for p in names if shard.shard_of(p, 2) == 2)
    with Emulator(str(fleet.fleet_scenario(tmp_path / "fleet.yaml", 19))) as emulator:
        env = {**emulator.gcloud_env(tmp_path / "home", fleet.DEPLOYER), "PYTHONPATH": str(ROOT)}
        done = subprocess.run(
            [sys.executable, "-m", "deploy", "apply", "--project", one, "--project", two, "--shard", "2/2",
             "--dry-run", "--region", "us-central1", "--no-notifications", "--format", "json",
             "--service-account", "canary-workload@{project}.iam.gserviceaccount.com"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr.splitlines()[0] == "shard 2 of 2: 1 of 2 projects"
    assert [p["project"] for p in json.loads(done.stdout)["projects"]] == [two]


def test_the_heading_is_only_for_a_sharded_run() -> None:
    assert shard.heading((3, 10), 21, 200) == "shard 3 of 10: 21 of 200 projects"
    assert shard.heading(None, 200, 200) is None
