"""The fleet benchmark: the deploy tool against N emulated projects, with the real gcloud, first rollout and no-change
check, every read through gcloud (the reference: the tool as it was) and in-process (deploy/reads.py), side by side.

    python -m bench.fleet --projects 200 [--parallel 8] [--json PATH] [--markdown PATH]

For each side, in a fresh emulator with the same fleet (devkit/fleet.py): a first `python -m deploy apply` over the
whole fleet (everything created), then the same command again (nothing to change). Measured: wall time; CPU time
(user + system) of the tool and of its gcloud processes, each gcloud process's own from its resource usage
(DEPLOY_TRACE, deploy/gcloud.py); gcloud processes and API calls per project (the emulator counts every call it
serves: world.calls). gcloud's start-up alone is measured with a command that calls no API
(`gcloud config get-value core/project`). Then the projection to 10,000 projects on 10 parallel Cloud Build builds,
with its arithmetic, and the monthly cost per project from bench/costs.py with and without central alerting.

The emulator runs inside this process, on the same cores as the tool: the wall times here include its CPU. The
CPU figures per project do not (they are the tool's and gcloud's only).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from bench import costs
from deploy.gcloud import _spawn
from devkit import fleet
from emulator.server import Emulator

ROOT = Path(__file__).resolve().parents[1]
SIDES = (("reference", "gcloud"), ("in-process reads", ""))  # (label, DEPLOY_READS)
RUNS = ("first rollout (create)", "no-change check")
# The goal (issue #14): a no-change check of 10,000 projects in under an hour on 10 parallel builds.
FLEET = 10_000
BUILDS = 10
HOUR_S = 3600.0
# Cloud Build's default worker is an e2-standard-2: 2 vCPUs ("Cloud Build pricing" and the build config reference's
# machineType options; bench/costs.py prices its build-minutes). Larger machine types (E2_HIGHCPU_8: 8 vCPUs) exist.
BUILD_VCPUS = 2
# Assumption: a read on Google's APIs takes about 0.25 s from a build in the same region (not published by Google;
# the emulator answers in about a millisecond, so this side of a project's time is not measured here).
GOOGLE_READ_S = 0.25
STARTUP_SAMPLES = 3


def _base_env(emulator: Emulator, home: Path) -> dict[str, str]:
    return {**emulator.gcloud_env(home, fleet.DEPLOYER), "PYTHONPATH": str(ROOT), "GRPC_VERBOSITY": "NONE"}


def gcloud_startup(env: dict[str, str], samples: int = STARTUP_SAMPLES) -> dict[str, float]:
    """gcloud's own start-up: a command that reads its configuration and calls nothing."""
    walls, cpus = [], []
    for _ in range(samples):
        started = time.perf_counter()
        code, _, err, cpu = _spawn(["gcloud", "config", "get-value", "core/project"], env)
        if code != 0:
            raise SystemExit(f"gcloud config get-value failed: {err.strip()[:300]}")
        walls.append(time.perf_counter() - started)
        cpus.append(cpu)
    return {"wall_s": round(statistics.median(walls), 3), "cpu_s": round(statistics.median(cpus), 3)}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _one_run(emulator: Emulator, env: dict[str, str], args: list[str], label: str, projects: int) -> dict[str, Any]:
    trace = Path(env["DEPLOY_TRACE"])
    trace.write_text("")
    with emulator.world.lock:
        emulator.world.calls.clear()
    cpu_before, started = _children_cpu(), time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "deploy", "apply", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=7200,
        check=False,
    )
    wall, cpu = time.perf_counter() - started, _children_cpu() - cpu_before
    with emulator.world.lock:
        calls = dict(emulator.world.calls)
    lines = [json.loads(line) for line in trace.read_text().splitlines() if line.strip()]
    by_command: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in lines:
        if line["kind"] == "gcloud":
            by_command[line["command"]].append(line)
    gcloud_cpu = sum(line["cpu"] for line in lines if line["kind"] == "gcloud")
    statuses = Counter(
        line.split()[1] for line in done.stdout.splitlines() if line.startswith("fleet-proj-") and len(line.split()) > 1
    )
    return {
        "label": label,
        "exit": done.returncode,
        "stderr_tail": done.stderr[-2000:] if done.returncode else "",
        "statuses": dict(statuses),
        "wall_s": round(wall, 2),
        "wall_per_project_s": round(wall / projects, 3),
        "cpu_per_project_s": round(cpu / projects, 3),
        "gcloud_cpu_per_project_s": round(gcloud_cpu / projects, 3),
        "tool_cpu_per_project_s": round((cpu - gcloud_cpu) / projects, 3),
        "gcloud_per_project": round(sum(len(v) for v in by_command.values()) / projects, 2),
        "inprocess_reads_per_project": round(sum(1 for line in lines if line["kind"] == "api") / projects, 2),
        "api_calls_per_project": round(sum(n for m, n in calls.items() if not m.startswith("metadata.")) / projects, 2),
        "calls_by_method_per_project": {m: n / projects for m, n in sorted(calls.items())},
        "gcloud_by_command": {
            command: {
                "per_project": round(len(runs) / projects, 2),
                "wall_s": round(statistics.mean(r["wall"] for r in runs), 3),
                "cpu_s": round(statistics.mean(r["cpu"] for r in runs), 3),
            }
            for command, runs in sorted(by_command.items())
        },
    }


def run_world(
    scenario: Path, names: list[str], parallel: int, plan: list[tuple[str, str, str]], work: Path
) -> tuple[float, dict[str, float], list[tuple[str, dict[str, Any]]]]:
    """In one fresh emulator, the runs of `plan` in order, each (side, run label, DEPLOY_READS); the load average
    and gcloud's start-up as it began."""
    args = [a for p in names for a in ("--project", p)]
    args += ["--region", "us-central1", "--service-account", "canary-workload@{project}.iam.gserviceaccount.com"]
    args += ["--no-notifications", "--parallel", str(parallel)]  # the benchmark times the deploy; no one to page
    with Emulator(str(scenario)) as emulator:
        base = {**_base_env(emulator, work / f"home-{len(plan)}"), "DEPLOY_TRACE": str(work / "trace")}
        load = os.getloadavg()[0]
        startup = gcloud_startup(base)
        runs = []
        for side, label, reads in plan:
            env = {**base, "DEPLOY_READS": reads} if reads else base
            runs.append((side, _one_run(emulator, env, args, label, len(names))))
    return load, startup, runs


def projection(check: dict[str, Any], startup: dict[str, float], parallel: int) -> dict[str, Any]:
    """A no-change check of FLEET projects on BUILDS builds: the larger of the CPU-bound time (the tool's and
    gcloud's CPU per project over the build's vCPUs) and the latency-bound time (a project's calls one after the
    other at GOOGLE_READ_S each, plus gcloud's start-up wall per process; --parallel projects at once)."""
    per_build = FLEET / BUILDS
    cpu_s = check["cpu_per_project_s"]
    calls, processes = check["api_calls_per_project"], check["gcloud_per_project"]
    project_s = calls * GOOGLE_READ_S + processes * startup["wall_s"]
    cpu_bound = per_build * cpu_s / BUILD_VCPUS
    latency_bound = per_build * project_s / parallel
    build_s = max(cpu_bound, latency_bound)
    return {
        "projects_per_build": per_build,
        "cpu_bound_s": round(cpu_bound),
        "latency_bound_s": round(latency_bound),
        "build_s": round(build_s),
        "goal_met": build_s <= HOUR_S,
        "build_minutes_usd": round(costs.build_minutes_cost(FLEET, build_s / per_build), 2),
        "arithmetic": (
            f"{FLEET:,} projects / {BUILDS} builds = {per_build:,.0f} projects a build; CPU-bound: {per_build:,.0f} × "
            f"{cpu_s:.3f} s CPU / {BUILD_VCPUS} vCPUs = {cpu_bound:,.0f} s; latency-bound: {per_build:,.0f} × "
            f"({calls:g} calls × {GOOGLE_READ_S} s + {processes:g} gcloud starts × {startup['wall_s']} s) / "
            f"--parallel {parallel} = {latency_bound:,.0f} s; a build takes the larger, {build_s:,.0f} s "
            f"({build_s / 60:.1f} min), against the goal of {HOUR_S:,.0f} s: {'met' if build_s <= HOUR_S else 'missed'}"
        ),
    }


def monthly_costs() -> dict[str, float]:
    """Per project a month, the canary as a function, 10,000 projects (bench/costs.py, marginal: no free tiers)."""
    return {
        f"{layout}, {regime}": round(costs.per_project(FLEET, layout, regime, "function"), 3)
        for layout in costs.LAYOUTS
        for regime in costs.REGIMES
    }


def run_fleet(projects: int, parallel: int, reference_rollout: bool = True) -> dict[str, Any]:
    if shutil.which("gcloud") is None:
        raise SystemExit("bench.fleet needs the gcloud CLI on PATH")
    if not 1 <= projects <= 1000:
        raise SystemExit(f"--projects must be 1 to 1000, not {projects}")
    work = Path(tempfile.mkdtemp(prefix="fleet-"))
    try:
        scenario = fleet.fleet_scenario(work / "fleet.yaml", projects)
        names = [fleet.fleet_project(i) for i in range(1, projects + 1)]
        worlds = (
            [[(side, label, reads) for label in RUNS] for side, reads in SIDES]
            if reference_rollout
            else [[*((SIDES[1][0], label, SIDES[1][1]) for label in RUNS), (SIDES[0][0], RUNS[1], SIDES[0][1])]]
        )
        sides: dict[str, dict[str, Any]] = {
            side: {"runs": [] if reference_rollout or side != SIDES[0][0] else [{"label": RUNS[0], "skipped": True}]}
            for side, _ in SIDES
        }
        for plan in worlds:
            load, startup, runs = run_world(scenario, names, parallel, plan, work)
            for side, run in runs:
                sides[side].setdefault("load_at_start", round(load, 2))
                sides[side].setdefault("startup", startup)
                sides[side]["runs"].append(run)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "projects": projects,
        "parallel": parallel,
        "reference_rollout": reference_rollout,
        "machine": f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, Python "
        f"{platform.python_version()}, {platform.system()} {platform.release()}",
        "at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "sides": sides,
        "projection": {label: projection(s["runs"][1], s["startup"], parallel) for label, s in sides.items()},
        "monthly_per_project_usd": monthly_costs(),
    }


def table(result: dict[str, Any]) -> str:
    sides = result["sides"]
    lines: list[str] = [
        f"Fleet: `python -m bench.fleet --projects {result['projects']} --parallel {result['parallel']}"
        f"{'' if result.get('reference_rollout', True) else ' --no-reference-rollout'}`, "
        f"{result['at']}, {result['machine']}; load average as each side started: "
        + ", ".join(f"{label} {side['load_at_start']}" for label, side in sides.items()),
        "",
        "| run | reads | exit | statuses | wall | wall per project | CPU per project (tool + gcloud) | "
        "gcloud processes per project | API calls per project |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for index in range(len(RUNS)):
        for label, side in sides.items():
            run = side["runs"][index]
            if run.get("skipped"):
                lines.append(f"| {run['label']} | {label} | not run (--no-reference-rollout) |" + " |" * 6)
                continue
            statuses = ", ".join(f"{k} {v}" for k, v in sorted(run["statuses"].items()))
            lines.append(
                f"| {run['label']} | {label} | {run['exit']} | {statuses} | {run['wall_s']} s | "
                f"{run['wall_per_project_s']} s | {run['cpu_per_project_s']} s ({run['tool_cpu_per_project_s']} + "
                f"{run['gcloud_cpu_per_project_s']}) | {run['gcloud_per_project']:g} | "
                f"{run['api_calls_per_project']:g} |"
            )
    reference = sides["reference"]
    startup = reference["startup"]
    lines += [
        "",
        f"gcloud's start-up alone (`gcloud config get-value core/project`, no API call, median of "
        f"{STARTUP_SAMPLES}): {startup['wall_s']} s wall, {startup['cpu_s']} s CPU.",
        "",
        "Where a project's time goes with every read through gcloud (the reference), per gcloud command: processes "
        "per project, and each one's mean wall and CPU; the start-up is the share gcloud spends before any call.",
        "",
        "| command | first rollout: per project | wall | CPU | no-change: per project | wall | CPU | start-up share |",
        "|---|---|---|---|---|---|---|---|",
    ]
    first, check = (run.get("gcloud_by_command", {}) for run in reference["runs"])
    for command in sorted(set(first) | set(check)):
        a, b = first.get(command), check.get(command)
        cpu = (b or a or {}).get("cpu_s", 0.0)
        share = f"{min(1.0, startup['cpu_s'] / cpu):.0%} of CPU" if cpu else "–"
        cells = [f"{x['per_project']:g} | {x['wall_s']} s | {x['cpu_s']} s" if x else "0 | – | –" for x in (a, b)]
        lines.append(f"| `gcloud {command}` | {cells[0]} | {cells[1]} | {share} |")
    lines += ["", "Projection to a no-change check of 10,000 projects on 10 parallel Cloud Build builds:", ""]
    for label, proj in result["projection"].items():
        lines.append(f"- {label}: {proj['arithmetic']}.")
    lines += [
        "",
        "Build-minutes of one no-change pass over 10,000 projects as projected (bench/costs.py, e2-standard-2, no "
        "free minutes): "
        + "; ".join(f"{label} ${proj['build_minutes_usd']}" for label, proj in result["projection"].items())
        + ".",
        "",
        "Monthly cost per project, 10,000 projects, the function kind (bench/costs.py; `today`: alerting not "
        "charged; `announced`: Google's announced alerting prices):",
        "",
    ]
    lines += [f"- {key}: ${value:.3f}" for key, value in result["monthly_per_project_usd"].items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet", description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=200)
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--json", help="write the raw results here")
    parser.add_argument("--markdown", help="write the tables here too")
    parser.add_argument(
        "--no-reference-rollout",
        action="store_true",
        help="skip the reference's first rollout (the longest part: every read and change a gcloud process); its "
        "no-change check then runs on the other side's fleet once that side is done",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    result = run_fleet(args.projects, args.parallel, reference_rollout=not args.no_reference_rollout)
    text = table(result)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    if args.markdown:
        Path(args.markdown).write_text(text)
    failed = [(label, r) for label, s in result["sides"].items() for r in s["runs"] if r.get("exit", 0) != 0]
    for label, run in failed:
        print(f"{label}, {run['label']}: exit {run['exit']}\n{run['stderr_tail']}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
