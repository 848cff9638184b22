"""`make bench` (`python -m bench`): the canary against the naive reference, in one invocation.

Starts the emulator in its own process, then measures, ours and naive alternating: cold starts on the healthy path
and on the denial path with full evidence, warm runs, and the API calls a run makes in each cause's world. Prints
the tables and the issue's targets as PASS/MISS, and writes the same to bench/results/latest.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from bench import goals, report, runs
from bench.emulator_proc import EmulatorProcess
from bench.function_proc import FLOOR, NAIVE, OURS, OURS_EVERY_WRITE

RESULTS = Path(__file__).resolve().parent / "results" / "latest.md"
QUICK_SCENARIOS = ["healthy", "iam_denied"]
PROFILE_ABOVE_MS = 5.0


def options(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="cold starts per side and path (default 10)")
    parser.add_argument("--warm", type=int, default=300, help="warm runs per side (default 300)")
    parser.add_argument("--quick", action="store_true", help="1 cold start, 3 warm runs, 2 worlds: a smoke run")
    parser.add_argument("--scenarios", help="comma-separated worlds for the call counts (default: healthy + causes)")
    parser.add_argument("--profile", action="store_true", help="profile ours' warm runs even when within 5 ms")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"the Markdown report (default {RESULTS})")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.warm = 1, 3
        args.scenarios = args.scenarios or ",".join(QUICK_SCENARIOS)
    if args.runs < 1 or args.warm < 1:
        parser.error("--runs and --warm must be at least 1")
    return args


def say(text: str, load: dict[str, float] | None = None) -> None:
    """Progress on stderr; with `load`, also the machine's 1-minute load average as this phase starts."""
    if load is not None:
        load[text.split(":", maxsplit=1)[0]] = round(os.getloadavg()[0], 2)
    print(text, file=sys.stderr, flush=True)


def measure(args: argparse.Namespace, emulator: EmulatorProcess) -> dict[str, Any]:
    sides = [OURS, NAIVE]
    load: dict[str, float] = {}  # other work on the machine inflates every timing: recorded, and flagged
    scenarios = args.scenarios.split(",") if args.scenarios else ["healthy", *runs.CAUSE_SCENARIOS]
    if not args.quick:
        say("warming up: one untimed start of each side (page cache, bytecode)")
        for side in sides:
            runs.cold(emulator, side, runs.HEALTHY)
    say(f"cold starts, healthy path: {args.runs} per side", load)
    cold_healthy = runs.alternate(sides, args.runs, lambda side: runs.cold(emulator, side, runs.HEALTHY))
    say(f"cold starts, denial path: {args.runs} per side", load)
    cold_denial = runs.alternate(sides, args.runs, lambda side: runs.cold(emulator, side, runs.DENIAL))
    say(f"warm runs: {args.warm} per side", load)
    warm = runs.warm(emulator, [OURS_EVERY_WRITE, NAIVE, FLOOR], args.warm)
    say(f"call counts: {len(scenarios)} worlds × {len(sides)} sides", load)
    calls = runs.call_counts(emulator, sides, scenarios)
    say("which libraries ours loads")
    probe = [runs.imports_probe(emulator, OURS, world) for world in (runs.HEALTHY, runs.DENIAL)]
    results: dict[str, Any] = {
        "machine": report.machine(),
        "options": {"command": command(args), "runs": args.runs, "warm": args.warm, "scenarios": scenarios},
        "cold_healthy": cold_healthy,
        "cold_denial": cold_denial,
        "warm": warm,
        "calls": calls,
        "probe": probe,
        "profile": None,
        "load": {**load, "end": round(os.getloadavg()[0], 2)},
    }
    overhead = report.median(warm, "ours", "overhead_ms")
    # Where ours' warm time goes, when over the target (a smoke run's three samples say nothing worth profiling).
    if args.profile or (not args.quick and overhead is not None and overhead > PROFILE_ABOVE_MS):
        say("profiling ours' warm runs")
        results["profile"] = runs.profile(emulator, OURS_EVERY_WRITE, min(args.warm, 200))
    return results


def command(args: argparse.Namespace) -> str:
    given = " ".join(sys.argv[1:])
    return f"make bench BENCH_ARGS='{given}'" if given else "make bench"


def main(argv: list[str] | None = None) -> int:
    args = options(argv)
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    with EmulatorProcess() as emulator:
        results = measure(args, emulator)
    judged = goals.judge(results)
    results["targets"] = [{"met": ok, "target": text} for ok, text in judged]
    text = report.render(results, judged)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
    say(f"written: {args.output}" + (f", {args.json}" if args.json else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
