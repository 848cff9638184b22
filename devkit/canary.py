"""`make canary SCENARIO=iam_denied`: rehearse a cause locally in seconds.

Starts the emulator with one of its shipped scenarios and a clock that starts now and runs with real time (the
canary stamps metric points and audit-log queries with its own clock, as on Google Cloud), then runs the operator's
command, `python -m function probe`, against it: the same process a person runs on their own project, pointed at
the emulator only by the environment Emulator.client_env gives. Prints the text verdict; exits with the probe's
status (0 healthy, 1 the canary failed, 2 Gemini failing).

`python -m devkit.canary --list` prints the shipped scenarios, one line each (the README's list is this output).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

from emulator.core.scenario import ScenarioError, load_document, shipped_names
from emulator.server import Emulator

ROOT = Path(__file__).resolve().parents[1]
# How long the probe waits for its own denial to reach the audit log: the emulator's ingestion lag (3 s) and a
# margin, instead of the deployed default of 20 s, so a rehearsal takes seconds and still finds the entry.
AUDIT_LAG_BUDGET_S = "5"


def summary(name: str) -> str:
    """The first sentence of a shipped scenario's description (two when the first is short: it sets the scene)."""
    text = " ".join(str(load_document(name).get("description", "")).split())
    sentences = re.split(r"(?<=\.)\s+(?=[A-Z])", text)
    return " ".join(sentences[:2]) if len(sentences[0]) < 60 else sentences[0]


def scenario_lines() -> list[str]:
    """The README's scenario list: one Markdown line per shipped scenario."""
    return [f"- `{name}`: {summary(name)}" for name in shipped_names()]


def probe(scenario: str, extra: list[str]) -> int:
    with Emulator(scenario, clock_mode="running") as emulator:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CANARY_")}
        env.update(emulator.client_env(), PYTHONPATH=str(ROOT), CANARY_AUDIT_LAG_BUDGET_SECONDS=AUDIT_LAG_BUDGET_S)
        print(f"emulator: scenario {scenario}, project {emulator.world.default_project}", flush=True)
        command = [sys.executable, "-m", "function", "probe", "--format", "text", *extra]
        return subprocess.run(command, env=env, cwd=ROOT, check=False).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devkit.canary",
        description="Probe the local emulator in one of its scenarios, as `python -m function probe` does a project.",
        epilog="example: make canary SCENARIO=iam_denied   (or: python -m devkit.canary iam_denied --debug)",
    )
    parser.add_argument("scenario", nargs="?", default="healthy", help="a shipped scenario (default: healthy)")
    parser.add_argument("--list", action="store_true", help="list the shipped scenarios and exit")
    args, extra = parser.parse_known_args(argv)
    if args.list:
        print("\n".join(scenario_lines()))
        return 0
    if args.scenario not in shipped_names():
        parser.error(f"unknown scenario {args.scenario!r}; shipped: {', '.join(shipped_names())}")
    try:
        return probe(args.scenario, extra)
    except ScenarioError as error:
        print(f"python -m devkit.canary: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
