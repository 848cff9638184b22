"""cloudbuild.yaml's deploy step, as Cloud Build runs it: its substitutions made (`${_NAME}` replaced, `$$` a
literal `$`), the step's bash script run with the tool's Python replaced by a recorder of its arguments, so what
reaches `python -m deploy apply` is checked: the projects, the fleet file, the shard, the parallelism."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BUILD = yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())


def _substituted(script: str, values: dict[str, str]) -> str:
    """Cloud Build's substitution of user-defined variables: ${_X} and $_X by value, $$ left as one $."""
    kept = script.replace("$$", "\0")
    kept = re.sub(r"\$\{(_[A-Z0-9_]+)\}|\$(_[A-Z0-9_]+)", lambda m: values[m.group(1) or m.group(2)], kept)
    return kept.replace("\0", "$")


def _deploy_argv(tmp_path: Path, **given: str) -> list[str] | None:
    """The arguments the deploy step passes to the tool; None when it deploys nothing."""
    values = {**{k: str(v) for k, v in BUILD["substitutions"].items()}, **given}
    step: dict[str, Any] = next(s for s in BUILD["steps"] if s["id"] == "deploy")
    assert step["args"][0] == "-euc"
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > argv.txt\n')
    python.chmod(0o755)
    done = subprocess.run(
        ["bash", "-euc", _substituted(step["args"][1], values)],
        cwd=tmp_path, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    recorded = tmp_path / "argv.txt"
    return recorded.read_text().splitlines() if recorded.exists() else None


def test_each_build_passes_its_shard_and_the_fleet_file_to_the_tool(tmp_path: Path) -> None:
    argv = _deploy_argv(tmp_path, _PROJECTS_FILE="fleet.txt", _SHARD="3/10", _SERVICE_ACCOUNT="w@{project}.x")
    assert argv is not None
    assert argv[:4] == ["-m", "deploy", "apply", "--projects-file"]
    assert argv[4] == "fleet.txt"
    assert argv[argv.index("--shard") + 1] == "3/10"
    assert argv[argv.index("--parallel") + 1] == "8"
    assert argv[argv.index("--service-account") + 1] == "w@{project}.x"


def test_without_a_shard_the_whole_list_is_deployed(tmp_path: Path) -> None:
    argv = _deploy_argv(tmp_path, _PROJECTS="proj-a,proj-b", _PARALLEL="16")
    assert argv is not None
    assert "--shard" not in argv
    assert "--projects-file" not in argv
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--project"] == ["proj-a", "proj-b"]
    assert argv[argv.index("--parallel") + 1] == "16"


def test_no_projects_deploys_nothing(tmp_path: Path) -> None:
    assert _deploy_argv(tmp_path) is None


@pytest.mark.parametrize(("tests", "command"), [("yes", "make test"), ("no", "make venv")])
def test_shards_may_skip_the_tests_but_never_the_environment(tests: str, command: str) -> None:
    script = _substituted(next(s for s in BUILD["steps"] if s["id"] == "test")["args"][1], {"_TESTS": tests})
    ran = subprocess.run(
        ["bash", "-c", script.splitlines()[-1].replace("make ", "echo make ")],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert ran.stdout.strip() == command
