"""`python -m devkit.timeline`: the canary alone against a scripted timeline, on this machine (no gcloud needed).

Starts the emulator with the `demo` scenario (a running clock: it moves with real time and jumps ahead at each
step), serves the canary with the real functions-framework on loopback as the workload's service account, calls
it as Cloud Scheduler would at each step, and prints what changed in the world and the canary's verdict: cause,
permission, who changed it and when, the fix, and the metrics written. Ends by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from devkit.launcher import serve_function
from emulator.core.clock import parse_rfc3339, rfc3339
from emulator.server import Emulator

ROOT = Path(__file__).resolve().parent.parent
STEPS = (0, 10, 20, 30, 40, 50, 60)  # minutes after the start; the timeline changes the world at :10, :20, …
SPACING_S = 5.2  # Cloud Monitoring takes one point per series every 5 s: keep real steps at least that far apart


def _request(
    url: str, *, method: str = "GET", body: Any = None, headers: dict[str, str] | None = None, timeout: float = 60
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def _changes(world: dict[str, Any], seen: int) -> list[str]:
    done = [e for e in world["timeline"] if e["done"]]
    lines = []
    for event in done[seen:]:
        detail = {k: v for k, v in event.items() if k not in ("at", "actor", "action", "done")}
        what = ", ".join(f"{k}={v}" for k, v in detail.items())
        lines.append(f"{event['actor']} {event['action'].replace('_', ' ')} {what} (at {event['at'][11:19]})")
    return lines


def _print_step(now: datetime, changes: list[str], status: int, doc: dict[str, Any]) -> None:
    stamp = now.strftime("%H:%M:%S")
    world = "; ".join(changes) if changes else "no change"
    print(f"[{stamp}] world:   {world}")
    print(f"           canary:  HTTP {status}  {doc['verdict'].upper()}")
    for target in doc["targets"]:
        if target["cause"] == "ok":
            print(f"             {target['target']}: ok ({target['latency_ms']:.0f} ms)")
            continue
        error = target.get("error", {})
        permission = error.get("metadata", {}).get("permission", "-")
        print(f"             {target['target']}: cause={target['cause']}  permission={permission}")
        fix = next((r for r in target.get("remedies", []) if r.get("command")), None)
        if fix:
            print(textwrap.fill(f"fix: {fix['command']}", 116, initial_indent=" " * 13, subsequent_indent=" " * 18))
    evidence = doc.get("evidence", {})
    change = evidence.get("change")
    if change:
        print(f"           who/when: {change['detail']} by {change['actor']} at {change['at']}")
    for item in evidence.get("items", []):
        if item["step"] in ("data_access", "policy_denied"):
            print(
                textwrap.fill(
                    f"{item['step']}: {item['status']} — {item['summary']}",
                    116,
                    initial_indent=" " * 11,
                    subsequent_indent=" " * 13,
                )
            )
    metrics = doc["metrics"]
    state = "written" if metrics["written"] else f"NOT written ({metrics.get('error') or metrics.get('skipped')})"
    print(f"           metrics: {state}, {metrics['series']} series")
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devkit.timeline", description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="demo", help="a scenario with a timeline (default: demo)")
    args = parser.parse_args(argv)
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    emulator = Emulator(args.scenario, clock_mode="running").start()
    env = {
        **os.environ,
        **emulator.client_env(),
        "CANARY_AUDIT_LAG_BUDGET_SECONDS": "4",
        "CANARY_TARGETS": "gemini-2.5-flash-lite@us-central1,gemini-2.5-flash@global",
        "CLOUDSDK_CONFIG": str(ROOT / ".cache" / "demo-gcloud"),  # never the user's own ADC
        "PYTHONPATH": str(ROOT),
    }
    env.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
    log_path = ROOT / ".cache" / "demo-canary.log"
    log_path.parent.mkdir(exist_ok=True)
    try:
        with serve_function(env, log_path) as port:
            info = emulator.info()
            print("Gemini access canary — demo against the local Google Cloud emulator\n")
            print(f"  emulator  gRPC {info['grpc']}  metadata {info['metadata']}  admin {info['admin']}")
            print(f"  project   {info['project']}    workload service account {info['service_account']}")
            print(
                f"  canary    real functions-framework on http://127.0.0.1:{port}/ (target canary), "
                "called as Cloud Scheduler calls it"
            )
            print(f"  canary log lines: {log_path.relative_to(ROOT)}\n")
            _, world = _request(f"{emulator.admin_url}/world")
            start = parse_rfc3339(world["clock"]["now"])
            seen = 0
            last = 0.0
            for minutes in STEPS:
                wait = SPACING_S - (time.monotonic() - last)
                if wait > 0:
                    time.sleep(wait)
                at = start + timedelta(minutes=minutes, seconds=30 if minutes else 0)
                if minutes:
                    _request(f"{emulator.admin_url}/clock", method="POST", body={"set": rfc3339(at)})
                _, world = _request(f"{emulator.admin_url}/world")
                changes = _changes(world, seen)
                seen += len(changes)
                status, doc = _request(
                    f"http://127.0.0.1:{port}/",
                    method="POST",
                    body={},
                    headers={
                        "X-CloudScheduler": "true",
                        "X-CloudScheduler-JobName": "gemini-canary-demo",
                        "X-CloudScheduler-ScheduleTime": rfc3339(at),
                        "User-Agent": "Google-Cloud-Scheduler",
                    },
                )
                last = time.monotonic()
                _print_step(at, changes, status, doc)
            _, calls = _request(f"{emulator.admin_url}/calls")
            print("Calls the emulator served, by method:")
            for method, count in calls["calls"].items():
                print(f"  {count:4d}  {method}")
            return 0
    finally:
        emulator.stop()


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        print("\npython -m devkit.timeline: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
