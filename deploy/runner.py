"""Many projects in one command: in parallel with a bound, each isolated (one project's failure never stops the
others), progress as it goes (stderr), then a summary per project (stdout): a table, or one JSON document."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from .alerting import Monitoring
from .central import Central
from .gcloud import Gcloud, GcloudError
from .progress import Lines, progress_for
from .reconcile import Change, Project, Refused, shown_action
from .spec import Spec

NOT_CHANGED = ("unchanged", "absent", "kept", "warning")


@dataclass
class ProjectResult:
    project: str
    status: str  # created | updated | unchanged | deleted | failed | refused
    changes: list[Change] = field(default_factory=list)
    plan: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    number: str = ""  # the project's number, when it was read (central alerting's teardown needs it)


def _status(changes: list[Change], command: str) -> str:
    actions = {c.action for c in changes}
    if command == "teardown":
        return "deleted" if "deleted" in actions else "unchanged"
    for status in ("created", "updated", "deleted", "enabled"):
        if status in actions:
            return "updated" if status in ("deleted", "enabled") else status
    return "unchanged"


def run_project(
    spec: Spec,
    project: str,
    command: str,
    progress: Lines | None = None,
    monitored: frozenset[str] | None = None,
) -> ProjectResult:
    gcloud = Gcloud(project, dry_run=spec.dry_run)
    monitoring = Monitoring(project, dry_run=spec.dry_run)
    target = Project(spec, project, gcloud, monitoring, monitored)
    started = progress.elapsed() if progress else 0.0
    if progress is not None:
        target.progress = lambda text: progress.step(project, text)
        progress.step(project, f"{command}{' (dry run)' if spec.dry_run else ''}: started")

    def result(status: str, error: str | None = None) -> ProjectResult:
        seconds = (progress.elapsed() - started) if progress else 0.0
        if progress is not None:
            shown = shown_action(status, spec.dry_run)
            progress.step(project, f"{shown}{': ' + error if error else ''}", state=shown)
        plan = gcloud.plan + monitoring.plan
        return ProjectResult(project, status, target.changes, plan, error, seconds, target.number)

    try:
        target.apply() if command == "apply" else target.teardown()
    except Refused as err:
        return result("refused", f"preflight: {err}")
    except GcloudError as err:
        return result("failed", err.first_line or str(err))
    except Exception as err:  # noqa: BLE001 - one project's failure must not stop the others
        return result("failed", f"{type(err).__name__}: {err}")
    return result(_status(target.changes, command))


def central_label(spec: Spec) -> str:
    """The summary's row of the scoping project's own step (central alerting)."""
    return f"{spec.scoping_project} (central alerting)"


def run_central(spec: Spec, step: Callable[[Central], Any], progress: Lines | None = None) -> ProjectResult:
    """The scoping project's step, once for the fleet (before or after the projects), isolated like a project's."""
    central = Central.for_spec(spec)
    label = central_label(spec)
    if progress is not None:
        central.progress = lambda text: progress.step(label, text)
    try:
        step(central)
        status = _status(central.changes, "apply")
        error = None
    except GcloudError as failure:
        status, error = "failed", failure.first_line or str(failure)
    except Exception as failure:  # noqa: BLE001 - reported in its own row
        status, error = "failed", f"{type(failure).__name__}: {failure}"
    if progress is not None:
        progress.step(label, f"{shown_action(status, spec.dry_run)}{': ' + error if error else ''}")
    return ProjectResult(label, status, central.changes, central.gcloud.plan + central.monitoring.plan, error)


def run_all(
    spec: Spec, command: str, out: TextIO, *, fmt: str = "text", err: TextIO | None = None
) -> list[ProjectResult]:
    rows = (central_label(spec), *spec.projects) if spec.scoping_project else spec.projects
    monitored: dict[str, frozenset[str]] = {}
    with (
        progress_for(err or sys.stderr, rows, spec.parallel) as progress,
        ThreadPoolExecutor(max_workers=min(spec.parallel, len(spec.projects))) as pool,
    ):
        if spec.scoping_project:
            # central alerting: the scope read once before the projects; the scoping project's own part after them
            first = run_central(spec, lambda c: monitored.setdefault("numbers", c.monitored()), progress)
            if first.status == "failed":
                results = [first]
            else:
                results = list(
                    pool.map(lambda p: run_project(spec, p, command, progress, monitored["numbers"]), spec.projects)
                )
                done = [r for r in results if r.status not in ("failed", "refused")]
                leaving, numbers = {r.project for r in done}, {r.number for r in done if r.number}
                now = datetime.now(UTC)
                step: Callable[[Central], Any] = (
                    (lambda c: c.apply()) if command == "apply" else (lambda c: c.teardown(leaving, numbers, now))
                )
                after = run_central(spec, step, progress)
                after.changes[:0] = first.changes
                after.plan[:0] = first.plan
                results.append(after)
        else:
            results = list(pool.map(lambda p: run_project(spec, p, command, progress), spec.projects))
    if fmt == "json":
        json.dump(summary(spec, command, results), out, indent=2)
        print(file=out)
    else:
        print_table(spec, results, out)
    return results


def summary(spec: Spec, command: str, results: list[ProjectResult]) -> dict[str, Any]:
    """The machine-readable summary (--format json); actions read as the table's ("would create" in a dry run)."""
    return {
        "command": command,
        "dry_run": spec.dry_run,
        "ok": not any(r.status in ("failed", "refused") for r in results),
        "projects": [
            {
                "project": r.project,
                "status": shown_action(r.status, spec.dry_run),
                "seconds": round(r.seconds, 1),
                "error": r.error,
                "changes": [
                    {"resource": c.resource, "action": shown_action(c.action, spec.dry_run), "detail": c.detail}
                    for c in r.changes
                ],
                **({"plan": r.plan} if spec.dry_run else {}),
            }
            for r in results
        ],
    }


def print_table(spec: Spec, results: list[ProjectResult], out: TextIO) -> None:
    wide = 12 if spec.dry_run else 9  # "would create" / "unchanged"
    for result in results:
        print(f"== {result.project}: {shown_action(result.status, spec.dry_run)}", file=out)
        for change in result.changes:
            if change.action != "unchanged":
                action = shown_action(change.action, spec.dry_run)
                print(f"   {action:{wide}} {change.resource}{'  ' + change.detail if change.detail else ''}", file=out)
        if spec.dry_run:
            print("   plan (nothing was changed):" if result.plan else "   plan: nothing to do", file=out)
            for step in result.plan:
                print(f"     {step}", file=out)
            if any("POLICY.json" in step for step in result.plan):
                print("     (POLICY.json: the policy as read, with the change above made in it)", file=out)
        if result.error:
            print(f"   error: {result.error}", file=out)
    print(file=out)
    width = max(len(r.project) for r in results)
    print(f"{'project':{width}}  {'status':{wide}}  changes  why", file=out)
    for r in results:
        changed = sum(1 for c in r.changes if c.action not in NOT_CHANGED)
        warnings = sum(1 for c in r.changes if c.action == "warning")
        why = r.error or (
            f"{warnings} warning(s), see above"
            if warnings
            else "dry run: nothing changed"
            if spec.dry_run and r.plan
            else "nothing to change"
            if r.status == "unchanged"
            else ""
        )
        print(f"{r.project:{width}}  {shown_action(r.status, spec.dry_run):{wide}}  {changed:7}  {why}", file=out)
