"""The fleet benchmark: the deploy tool against N emulated projects in one command, with the real gcloud.

    python -m bench.fleet --projects 50 [--parallel 8] [--json PATH]

Reports the wall time of a first apply (everything created) and of a second (everything unchanged), and the
API calls per project by method, as the emulator counted them. gcloud itself is most of the time: each command is a
fresh Python process of ~0.7 s CPU, and this machine has 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from devkit import fleet
from emulator.server import Emulator

ROOT = Path(__file__).resolve().parents[1]


def run_fleet(projects: int, parallel: int) -> dict[str, Any]:
    if shutil.which("gcloud") is None:
        raise SystemExit("bench.fleet needs the gcloud CLI on PATH")
    work = Path(tempfile.mkdtemp(prefix="fleet-"))
    scenario = fleet.fleet_scenario(work / "fleet.yaml", projects)
    names = [fleet.fleet_project(i) for i in range(1, projects + 1)]
    args = [a for p in names for a in ("--project", p)]
    args += [
        "--region",
        "us-central1",
        "--service-account",
        "canary-workload@{project}.iam.gserviceaccount.com",
        "--no-notifications",  # the benchmark times the deploy; no one to page
        "--parallel",
        str(parallel),
    ]
    out: dict[str, Any] = {"projects": projects, "parallel": parallel, "runs": []}
    with Emulator(str(scenario)) as emulator:
        env = {
            **emulator.gcloud_env(work / "home", fleet.DEPLOYER),
            "PYTHONPATH": str(ROOT),
            "GRPC_VERBOSITY": "NONE",
        }
        for label in ("first apply (create)", "second apply (unchanged)"):
            emulator.world.calls.clear()
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "deploy", "apply", *args],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=3600,
                check=False,
            )
            wall = time.perf_counter() - started
            statuses = Counter(
                line.split()[1]
                for line in done.stdout.splitlines()
                if line.startswith("fleet-proj-") and len(line.split()) > 1
            )
            calls = {m: n / projects for m, n in sorted(emulator.world.calls.items())}
            out["runs"].append(
                {
                    "label": label,
                    "exit": done.returncode,
                    "wall_s": round(wall, 1),
                    "per_project_s": round(wall / projects, 2),
                    "statuses": dict(statuses),
                    "calls_per_project": calls,
                    "calls_total_per_project": sum(calls.values()),
                }
            )
    shutil.rmtree(work, ignore_errors=True)
    return out


def table(result: dict[str, Any]) -> str:
    lines = [
        f"Fleet: the deploy tool against {result['projects']} emulated projects, --parallel {result['parallel']}",
        "",
        "| run | exit | wall | per project | statuses | API calls per project |",
        "|---|---|---|---|---|---|",
    ]
    for run in result["runs"]:
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(run["statuses"].items()))
        lines.append(
            f"| {run['label']} | {run['exit']} | {run['wall_s']} s | {run['per_project_s']} s | {statuses} | "
            f"{run['calls_total_per_project']:.0f} |"
        )
    lines += ["", "Calls per project, by method (first apply / second apply):", ""]
    first, second = (r["calls_per_project"] for r in result["runs"])
    for method in sorted(set(first) | set(second)):
        lines.append(f"- `{method}`: {first.get(method, 0):g} / {second.get(method, 0):g}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet", description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=50)
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--json", help="write the raw results here")
    args = parser.parse_args(argv)
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    result = run_fleet(args.projects, args.parallel)
    print(table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0 if all(r["exit"] == 0 for r in result["runs"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
