"""Central alerting (--scoping-project S): what goes once into the scoping project, apart from the projects.

Before the projects run, S's metrics scope is read once (which projects it already holds); each project then joins
it (deploy/reconcile.py). After the projects, S gets the notification channels, the three metric alert policies
(access denied, degraded, silent: they read every monitored project's series and group by
`resource.label.project_id`, so an incident and its notification name the project) and the fleet's dashboard
(charts grouped by project). The log-match policy stays in each project: a log-match condition reads only the log
entries of the project it is in (docs/google-behaviour.md, "Central alerting").

Teardown removes the projects from the scope, and the central policies, channels and dashboard only when no project
left in the scope still runs the canary (one ListTimeSeries in S): tearing down one shard of a fleet never takes
the alerting of the other shards with it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from function.metrics import RUNS

from .alerting import (
    CENTRAL_LABEL,
    DEFAULT_PREFIX,
    METRIC_POLICY_FILES,
    Monitoring,
    is_central,
    load_policy_file,
    render_policy,
)
from .gcloud import Gcloud, GcloudError
from .reconcile import DASHBOARD_FILE, Change, shown_action, write_dashboard
from .spec import MANAGED_LABEL, Spec

FLEET_DASHBOARD = "Gemini access canary: fleet"
# How far back teardown looks for a run of a project still in the scope (status looks as far: deploy/status.py).
STILL_RUNNING = timedelta(days=2)
CLOCK_SKEW = timedelta(hours=1)  # as deploy/status.py's


def fleet_dashboard() -> dict[str, Any]:
    """deploy/dashboard.json as the scoping project's fleet dashboard: every chart grouped by the monitored project
    too (`resource.label.project_id`, the generic_task label the canary writes), labelled managed and central."""
    doc: dict[str, Any] = json.loads(DASHBOARD_FILE.read_text())
    doc = copy.deepcopy(doc)
    doc["displayName"] = FLEET_DASHBOARD
    doc["labels"] = {**doc.get("labels", {}), MANAGED_LABEL[0]: MANAGED_LABEL[1], CENTRAL_LABEL[0]: CENTRAL_LABEL[1]}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            fields = node.get("groupByFields")
            if isinstance(fields, list) and "resource.label.project_id" not in fields:
                node["groupByFields"] = ["resource.label.project_id", *fields]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc["mosaicLayout"])
    return doc


@dataclass
class Central:
    """The scoping project's part of a fleet's deploy: reads always run, changes go into the plan."""

    spec: Spec
    gcloud: Gcloud
    monitoring: Monitoring
    changes: list[Change] = field(default_factory=list)
    progress: Callable[[str], None] = lambda text: None

    @classmethod
    def for_spec(cls, spec: Spec) -> Central:
        assert spec.scoping_project is not None
        return cls(
            spec,
            Gcloud(spec.scoping_project, dry_run=spec.dry_run),
            Monitoring(spec.scoping_project, dry_run=spec.dry_run),
        )

    @property
    def project(self) -> str:
        return self.gcloud.project

    def note(self, resource: str, action: str, detail: str = "") -> None:
        self.changes.append(Change(resource, action, detail))
        self.progress(f"{resource}: {shown_action(action, self.gcloud.dry_run)}{' — ' + detail if detail else ''}")

    # before the projects --------------------------------------------------------------------------------------

    def monitored(self) -> frozenset[str]:
        """The numbers of the projects the scoping project's metrics scope holds (GetMetricsScope, once)."""
        scope = self.gcloud.read("beta", "monitoring", "metrics-scopes", "describe", self.project)
        if scope is None:
            raise RuntimeError(f"scoping project {self.project} not found, or the deploying account cannot see it")
        numbers = frozenset(str(p.get("name", "")).rsplit("/", 1)[-1] for p in scope.get("monitoredProjects", []))
        self.note("metrics scope", "unchanged", f"{max(len(numbers) - 1, 0)} monitored project(s) besides itself")
        return numbers

    # after the projects ---------------------------------------------------------------------------------------

    def apply(self) -> None:
        channels = self._channels()
        existing = self.monitoring.central_policies()
        for file in METRIC_POLICY_FILES:
            desired = render_policy(load_policy_file(file), self.spec, channels, DEFAULT_PREFIX, central=True)
            action = self.monitoring.ensure_policy(desired, existing)
            self.note(f"alert policy {desired['displayName']!r}", action, "central: every monitored project")
        self._dashboard()

    def _channels(self) -> list[str]:
        names = []
        for channel in self.spec.channels:
            name = channel if channel.startswith("projects/") else f"{self._prefix()}/notificationChannels/{channel}"
            if not name.startswith(f"{self._prefix()}/"):
                raise RuntimeError(
                    f"notification channel {name} is not in the scoping project {self.project}: a policy notifies "
                    "only through channels of its own project"
                )
            if not self.monitoring.channel_exists(name):
                raise RuntimeError(f"notification channel {name} does not exist")
            names.append(name)
        if self.spec.notify_email:
            name, action = self.monitoring.ensure_central_email_channel(self.spec.notify_email)
            self.note("notification channel", action, self.spec.notify_email)
            names.append(name)
        return names

    def _prefix(self) -> str:
        return f"projects/{self.project}"

    def _fleet_dashboards(self) -> list[dict[str, Any]]:
        listed = self.gcloud.read("monitoring", "dashboards", "list") or []
        return [d for d in listed if d.get("displayName") == FLEET_DASHBOARD]

    def _dashboard(self) -> None:
        doc = fleet_dashboard()
        named = self._fleet_dashboards()
        current = next((d for d in named if is_central(d.get("labels"))), None)
        if current is None and named:
            raise RuntimeError(
                f"a dashboard named {FLEET_DASHBOARD!r} exists in {self.project} ({named[0].get('name')}) without the "
                f"label {CENTRAL_LABEL[0]}={CENTRAL_LABEL[1]}: this tool did not create it and leaves it alone"
            )
        if current is not None and all(current.get(k) == doc[k] for k in ("mosaicLayout", "labels")):
            self.note("fleet dashboard", "unchanged")
            return
        self.note("fleet dashboard", write_dashboard(self.gcloud, doc, current, "FLEET_DASHBOARD.json"))

    # teardown ---------------------------------------------------------------------------------------------------

    def still_running(self, leaving: set[str], now: datetime) -> list[str]:
        """The projects other than `leaving` whose canary wrote a run into the scope in the last two days (one
        ListTimeSeries in the scoping project)."""
        # the window's end a little ahead of this machine's clock, as status reads it (deploy/status.py, CLOCK_SKEW)
        series = self.monitoring.list_series(RUNS.type(DEFAULT_PREFIX), now - STILL_RUNNING, now + CLOCK_SKEW)
        found = {str(s.resource.labels.get("project_id", "")) for s in series}
        return sorted(found - leaving - {""})

    def left_in_scope(self, leaving_numbers: set[str]) -> list[str]:
        """The numbers of the projects the metrics scope still holds once `leaving_numbers` are gone (its own
        project aside)."""
        scope = self.gcloud.read("beta", "monitoring", "metrics-scopes", "describe", self.project) or {}
        own = str(scope.get("name", "")).rsplit("/", 1)[-1]
        members = {str(p.get("name", "")).rsplit("/", 1)[-1] for p in scope.get("monitoredProjects", [])}
        return sorted(members - leaving_numbers - {own, ""})

    def teardown(self, leaving: set[str], leaving_numbers: set[str], now: datetime) -> None:
        """The central policies, channels and dashboard removed, unless another project may still use them: one
        left in the metrics scope, or one whose canary still writes runs there (the scoping project's own)."""
        left, running = self.left_in_scope(leaving_numbers), self.still_running(leaving, now)
        if left or running:
            parts = [f"{len(left)} other project(s) in the metrics scope (number {_few(left)})"] if left else []
            parts += [f"the canary still runs in {_few(running)}"] if running else []
            self.note(
                "central alerting",
                "kept",
                "; ".join(parts) + ": the central policies, channels and dashboard go with the last of them",
            )
            return
        for policy in self.monitoring.central_policies():
            self.monitoring.delete_policy(policy.name)
            self.note(f"alert policy {policy.display_name!r}", "deleted", "central")
        for channel in self.monitoring.central_channels():
            self.monitoring.delete_channel(channel.name)
            self.note("notification channel", "deleted", channel.labels.get("email_address", ""))
        for dashboard in self._fleet_dashboards():
            if is_central(dashboard.get("labels")):
                self.gcloud.change("monitoring", "dashboards", "delete", dashboard["name"])
                self.note("fleet dashboard", "deleted")


def _few(items: list[str]) -> str:
    return ", ".join(items[:3]) + (f" and {len(items) - 3} more" if len(items) > 3 else "")


__all__ = ["FLEET_DASHBOARD", "Central", "GcloudError", "fleet_dashboard"]
