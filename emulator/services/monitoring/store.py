"""Cloud Monitoring's state in one project (a module of its own so that alert evaluation can read it), and the metrics
scope a project hosts (docs/google-behaviour.md, "Metrics scopes")."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from emulator.core.world import Project, World


@dataclass
class MonitoringStore:
    """Cloud Monitoring in one project: metric descriptors and time series (keyed by type and by series identity), alert
    policies and notification channels (by resource name)."""

    metric_descriptors: dict[Any, Any] = field(default_factory=dict)
    time_series: dict[Any, Any] = field(default_factory=dict)
    alert_policies: dict[Any, Any] = field(default_factory=dict)
    notification_channels: dict[Any, Any] = field(default_factory=dict)


@dataclass
class MetricsScopeStore:
    """The metrics scope this project hosts (every project is the scoping project of its own): the projects added to
    it, by project id, with the time each was added; when the scope was first read or changed, and last changed."""

    monitored: dict[str, datetime] = field(default_factory=dict)
    created: datetime | None = None
    updated: datetime | None = None

    def stamp(self, now: datetime) -> tuple[datetime, datetime]:
        """createTime and updateTime, set to `now` the first time the scope is read or changed."""
        if self.created is None or self.updated is None:
            self.created = self.updated = now
        return self.created, self.updated


def scope_projects(world: World, scoping: Project) -> list[Project]:
    """The projects whose time series the scoping project reads: itself first, then each project added to its metrics
    scope that still exists, in the order they were added."""
    members = [scoping]
    for project_id in scoping.store(MetricsScopeStore).monitored:
        project = world.projects.get(project_id)
        if project is not None and project is not scoping:
            members.append(project)
    return members
