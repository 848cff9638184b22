"""The measurements: cold starts, warm runs and call counts, each a plain dict (the raw JSON results).

Every run is timed by the bench (the client side of the HTTP call); the emulator says which calls it served and how
long their handlers took (GET /_emulator/timings), reset before each run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.emulator_proc import EmulatorProcess
from bench.function_proc import ROOT, FunctionProcess, Side, environment

GENERATE = "google.cloud.aiplatform.v1.PredictionService.GenerateContent"
CREATE_SERIES = "google.monitoring.v3.MetricService.CreateTimeSeries"
TEST_PERMISSIONS = "google.cloud.resourcemanager.v3.Projects.TestIamPermissions"
GET_POLICY = "google.cloud.resourcemanager.v3.Projects.GetIamPolicy"
LIST_ENTRIES = "google.logging.v2.LoggingServiceV2.ListLogEntries"
CAUSE_SCENARIOS = (
    "iam_denied",
    "deny_policy",
    "api_disabled",
    "billing_disabled",
    "vpc_sc",
    "org_policy",
    "wrong_project",
    "model_unavailable",
    "quota",
    "metadata_down",
)


@dataclass(frozen=True)
class World:
    """A world to run in: a shipped scenario, plus the role removal done now when `remove_role` (so the Admin
    Activity entry that explains the denial exists, with Data Access logs on: the full evidence path)."""

    label: str
    scenario: str
    remove_role: bool = False

    def enter(self, emulator: EmulatorProcess) -> None:
        emulator.switch(self.scenario)
        if self.remove_role:
            emulator.remove_role()


HEALTHY = World("healthy", "healthy")
DENIAL = World("denial (role removed, Data Access logs on)", "data_access_on", remove_role=True)


def cause_of(body: Any) -> str:
    """The first target's cause, from either side's JSON answer."""
    if not isinstance(body, dict):
        return "no JSON answer"
    if "targets" in body:  # ours
        return str(body["targets"][0]["cause"]) if body["targets"] else str(body.get("verdict"))
    return str(body.get("cause", "?"))


def evidence_of(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or "evidence" not in body:
        return {}
    evidence = body["evidence"]
    if "items" in evidence:  # ours: step → status
        return {item["step"]: item["status"] for item in evidence["items"]}
    found = {"audit_entries": len(evidence.get("audit_entries", []))}  # naive: how many entries it read
    if "error" in evidence:
        found["error"] = evidence["error"]
    return found


def cold(emulator: EmulatorProcess, side: Side, world: World) -> dict[str, Any]:
    """A fresh instance: process start → its first answer, served by functions-framework."""
    world.enter(emulator)
    emulator.reset_calls()
    with FunctionProcess(side, emulator.client_env()) as function:
        answer = function.get("/")
        wall = time.perf_counter() - function.started
        memory = function.memory()
        listening = function.listening_s
    calls, seconds = emulator.timings()
    return {
        "side": side.name,
        "world": world.label,
        "wall_s": wall,
        "listening_s": listening,
        "first_request_s": answer.seconds,
        **memory,
        "status": answer.status,
        "cause": cause_of(answer.body),
        "evidence": evidence_of(answer.body),
        "calls": calls,
        "emulator_s": sum(seconds.values()),
    }


def alternate(sides: list[Side], runs: int, one: Callable[[Side], dict[str, Any]]) -> list[dict[str, Any]]:
    """A B A B …: drift in the machine's state (page cache, CPU frequency, neighbours) hits both sides alike."""
    return [one(side) for _ in range(runs) for side in sides]


def warm(emulator: EmulatorProcess, sides: list[Side], runs: int) -> list[dict[str, Any]]:
    """One instance per side, already warm (its first run built the clients), then `runs` runs each, alternately.

    overhead = the run's wall time seen by the caller − the time the emulator's handlers took for that run.
    """
    HEALTHY.enter(emulator)
    functions: list[FunctionProcess] = []
    results = []
    try:
        for side in sides:
            functions.append(FunctionProcess(side, emulator.client_env()))
            functions[-1].get("/")
        for _ in range(runs):
            for function in functions:
                emulator.reset_calls()
                answer = function.get("/")
                calls, seconds = emulator.timings()
                inside = answer.body.get("duration_ms") if isinstance(answer.body, dict) else None
                results.append(
                    {
                        "side": function.side.name,
                        "wall_ms": answer.seconds * 1000,
                        "emulator_ms": sum(seconds.values()) * 1000,
                        "overhead_ms": (answer.seconds - sum(seconds.values())) * 1000,
                        "function_ms": inside,  # what the function itself timed, inside the framework
                        "status": answer.status,
                        "calls": calls,
                    }
                )
    finally:
        for function in functions:
            function.stop()
    return results


def call_counts(emulator: EmulatorProcess, sides: list[Side], scenarios: list[str]) -> list[dict[str, Any]]:
    """Calls by method for one run of a fresh instance in each scenario (a cold instance: its metadata calls too)."""
    return [cold(emulator, side, World(name, name)) for name in scenarios for side in sides]


def imports_probe(emulator: EmulatorProcess, side: Side, world: World) -> dict[str, Any]:
    """Which client libraries one run of ours imports (bench/probe_imports.py, a fresh process)."""
    world.enter(emulator)
    out = subprocess.run(
        [sys.executable, "-m", "bench.probe_imports", side.source],
        cwd=ROOT,
        env=environment(emulator.client_env(), side),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return {"world": world.label, **json.loads(out.stdout.strip().splitlines()[-1])}


def profile(emulator: EmulatorProcess, side: Side, runs: int) -> str:
    """cProfile of `runs` warm runs of ours in one process (bench/profile_warm.py): where the time goes."""
    HEALTHY.enter(emulator)
    out = subprocess.run(
        [sys.executable, "-m", "bench.profile_warm", side.source, str(runs)],
        cwd=ROOT,
        env=environment(emulator.client_env(), side),
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return out.stdout
