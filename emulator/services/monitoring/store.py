"""Cloud Monitoring's state in one project (a module of its own so that alert evaluation can read it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class MonitoringStore:
    """Cloud Monitoring in one project: metric descriptors and time series (keyed by type and by series identity), alert
    policies and notification channels (by resource name)."""

    metric_descriptors: dict[Any, Any] = field(default_factory=dict)
    time_series: dict[Any, Any] = field(default_factory=dict)
    alert_policies: dict[Any, Any] = field(default_factory=dict)
    notification_channels: dict[Any, Any] = field(default_factory=dict)
