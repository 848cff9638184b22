"""Many projects in one command: in parallel with a bound, each isolated (one project's failure never stops the
others), then a summary table per project."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TextIO

from .alerting import Monitoring
from .gcloud import Gcloud, GcloudError
from .reconcile import Change, Project
from .spec import Spec


@dataclass
class ProjectResult:
    project: str
    status: str  # created | updated | unchanged | deleted | failed
    changes: list[Change] = field(default_factory=list)
    plan: list[str] = field(default_factory=list)
    error: str | None = None


def _status(changes: list[Change], command: str) -> str:
    actions = {c.action for c in changes}
    if command == "teardown":
        return "deleted" if "deleted" in actions else "unchanged"
    for status in ("created", "updated", "deleted"):
        if status in actions:
            return "updated" if status == "deleted" else status
    return "unchanged"


def run_project(spec: Spec, project: str, command: str) -> ProjectResult:
    gcloud = Gcloud(project, dry_run=spec.dry_run)
    monitoring = Monitoring(project, dry_run=spec.dry_run)
    target = Project(spec, project, gcloud, monitoring)
    try:
        target.apply() if command == "apply" else target.teardown()
    except GcloudError as err:
        return ProjectResult(
            project, "failed", target.changes, gcloud.plan + monitoring.plan, err.first_line or str(err)
        )
    except Exception as err:  # noqa: BLE001 - one project's failure must not stop the others
        return ProjectResult(
            project, "failed", target.changes, gcloud.plan + monitoring.plan, f"{type(err).__name__}: {err}"
        )
    return ProjectResult(project, _status(target.changes, command), target.changes, gcloud.plan + monitoring.plan)


def run_all(spec: Spec, command: str, out: TextIO) -> list[ProjectResult]:
    with ThreadPoolExecutor(max_workers=min(spec.parallel, len(spec.projects))) as pool:
        results = list(pool.map(lambda p: run_project(spec, p, command), spec.projects))
    for result in results:
        print(f"== {result.project}: {result.status}", file=out)
        for change in result.changes:
            if change.action != "unchanged":
                print(
                    f"   {change.action:9} {change.resource}{'  ' + change.detail if change.detail else ''}", file=out
                )
        if spec.dry_run:
            print("   plan (nothing was changed):" if result.plan else "   plan: nothing to do", file=out)
            for step in result.plan:
                print(f"     {step}", file=out)
        if result.error:
            print(f"   error: {result.error}", file=out)
    print(file=out)
    width = max(len(r.project) for r in results)
    print(f"{'project':{width}}  status     changes  why", file=out)
    for r in results:
        changed = sum(1 for c in r.changes if c.action not in ("unchanged", "absent", "kept", "warning"))
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
        print(f"{r.project:{width}}  {r.status:9}  {changed:7}  {why}", file=out)
    return results
