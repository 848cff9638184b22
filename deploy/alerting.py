"""Alert policies, notification channels and metric descriptors through the monitoring_v3 client library (gcloud
528 has policies only in its alpha track). Policies are the JSON files in deploy/policies/, in the REST form
`gcloud alpha monitoring policies create --policy-from-file` and the console accept, rendered with the project's
channels, prefix, schedule timing, region and the cause lists of function/causes.py.

Credentials: Application Default Credentials (the deployer's, e.g. the Cloud Build service account). Against the
local emulator only, DEPLOY_MONITORING_GRPC=host:port points the client at its gRPC port, with the token gcloud
uses (CLOUDSDK_AUTH_ACCESS_TOKEN_FILE).
"""

from __future__ import annotations

import copy
import json
import os
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc
from google.api import label_pb2, metric_pb2
from google.api_core import exceptions
from google.cloud import monitoring_v3
from google.cloud.monitoring_v3.services.alert_policy_service.transports import AlertPolicyServiceGrpcTransport
from google.cloud.monitoring_v3.services.metric_service.transports import MetricServiceGrpcTransport
from google.cloud.monitoring_v3.services.notification_channel_service.transports import (
    NotificationChannelServiceGrpcTransport,
)
from google.oauth2.credentials import Credentials
from google.protobuf import json_format

from function.causes import DENIALS, TRANSIENT, Cause
from function.metrics import MetricDef

from .spec import MANAGED_LABEL, NAME, TIMEOUT_S, Spec

POLICY_DIR = Path(__file__).resolve().parent / "policies"
POLICY_FILES = ("denied.json", "silent.json", "degraded.json", "denial_log.json")
# Central alerting: the metric policies go once into the scoping project, where they read every monitored project's
# series; the log-match policy stays in each project, because a log-match condition reads only its own project's
# log entries (docs/google-behaviour.md, "Central alerting").
METRIC_POLICY_FILES = ("denied.json", "silent.json", "degraded.json")
LOG_POLICY_FILE = "denial_log.json"
# The user label that tells the central policies, channels and dashboard (in the scoping project) from a project's
# own: a scoping project may run the canary too, and its own teardown must not take the fleet's alerting with it.
CENTRAL_LABEL = ("canary-layout", "central")
DEFAULT_PREFIX = "custom.googleapis.com/gemini_canary"
SERVER_FIELDS = ("name", "creationRecord", "mutationRecord", "validity")


def load_policy_file(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((POLICY_DIR / name).read_text())
    return doc


def logs_url(query: str) -> str:
    """A Logs Explorer link for the alerted project; the ${...} documentation variables stay unencoded so that
    Monitoring expands them (AlertPolicy.Documentation.Link.url may be templated, alert.proto)."""
    encoded = urllib.parse.quote(query, safe="${}")
    return f"https://console.cloud.google.com/logs/query;query={encoded}?project=${{resource.project}}"


# The canary's own log lines, of either kind: a function's are its Cloud Run service's (cloud_run_revision, label
# service_name), a job's its Cloud Run job's (cloud_run_job, label job_name) (Cloud Run "Logging and viewing logs").
# In a Logging filter OR binds tighter than AND; the outer parentheses keep a term appended with AND on both.
CANARY_LOGS = (
    f'((resource.type="cloud_run_revision" AND resource.labels.service_name="{NAME}") OR '
    f'(resource.type="cloud_run_job" AND resource.labels.job_name="{NAME}"))'
)


def _causes(causes: frozenset[Cause]) -> str:
    return ", ".join(f'\\"{c}\\"' for c in sorted(causes))


def alert_window_s(period_s: int) -> int:
    """The sliding alignment window of the failure policies: one schedule period plus a run's whole timeout,
    rounded up to whole minutes. Why this makes "two consecutive runs" exact: docs/google-behaviour.md,
    "Alert policies".

    Cloud Monitoring evaluates a threshold condition about once a minute over a window of the alignment period
    that slides with it, and opens an incident only when the condition held for the whole `duration`. A failing
    target writes a point only on failing runs (a healthy run writes cause=ok, outside these filters), so with
    ALIGN_MAX a series is above 0 from a failing run's point until one window later. With the window W longer
    than the longest gap between two runs' points (period + timeout), consecutive failures keep the condition
    true without a break: one incident for a lasting failure, closed one window after it ends. With the
    duration equal to W, one failing run is true for less than W and never opens an incident, while two
    consecutive ones are true for at least W + period - timeout, which covers W plus one evaluation when the
    period is at least the timeout plus a minute; and two failures with a healthy run between them are at least
    2 × period - timeout apart, more than W when the period exceeds two timeouts (spec.MIN_PERIOD_S), so they
    never join into one stretch that long. tests/deploy/test_policies.py simulates this for every schedule.
    """
    return -(-(period_s + TIMEOUT_S) // 60) * 60


def render_policy(
    doc: dict[str, Any], spec: Spec, channels: list[str], prefix: str = DEFAULT_PREFIX, *, central: bool = False
) -> dict[str, Any]:
    """A policy file with this deployment's channels, metric prefix, schedule timing, region, cause lists (from
    function.causes, so they never drift) and links filled in. `central`: the copy for the scoping project
    (labelled as such; its dashboard link opens the fleet's dashboard there). The documentation names the
    project with `${resource.project}`, the monitored resource's project, in either layout."""
    period = spec.schedule_period_s()
    fills = {
        "__LASTING_CAUSES__": _causes(DENIALS | {Cause.UNKNOWN}),
        "__TRANSIENT_CAUSES__": _causes(TRANSIENT),
        "__WINDOW__": f"{alert_window_s(period)}s",
        "__PERIOD__": f"{period}s",
        # "Canary silent": three schedule periods without a run (whole minutes: periods are whole minutes).
        "__THREE_PERIODS__": f"{3 * period}s",
        "__REGION__": spec.region,
        "__LOGS_ALL__": logs_url(CANARY_LOGS),
        "__LOGS_DENIED__": logs_url(f'{CANARY_LOGS} AND jsonPayload.verdict="denied"'),
        "__LOGS_DEGRADED__": logs_url(f'{CANARY_LOGS} AND jsonPayload.verdict="degraded"'),
        "__LOGS_RUN__": logs_url(f'{CANARY_LOGS} AND jsonPayload.run_id="${{log.extracted_label.run_id}}"'),
    }
    text = json.dumps(doc).replace(DEFAULT_PREFIX, prefix)
    for marker, value in fills.items():
        text = text.replace(marker, value)
    if central and spec.scoping_project:
        text = text.replace("dashboards?project=${resource.project}", f"dashboards?project={spec.scoping_project}")
    out: dict[str, Any] = json.loads(text)
    out["notificationChannels"] = sorted(channels)
    if central:
        out["userLabels"] = {**out.get("userLabels", {}), CENTRAL_LABEL[0]: CENTRAL_LABEL[1]}
    return out


def is_central(labels: Any) -> bool:
    """Whether a resource's labels (a policy's or channel's user labels, a dashboard's labels) mark it central."""
    return bool(labels and labels.get(CENTRAL_LABEL[0]) == CENTRAL_LABEL[1])


def comparable(doc: dict[str, Any]) -> dict[str, Any]:
    """A policy without the fields the server assigns, normalized through the real proto type."""
    policy = monitoring_v3.AlertPolicy.from_json(json.dumps(doc), ignore_unknown_fields=False)
    data: dict[str, Any] = json_format.MessageToDict(monitoring_v3.AlertPolicy.pb(policy))
    for key in SERVER_FIELDS:
        data.pop(key, None)
    for condition in data.get("conditions", []):
        condition.pop("name", None)
    data.setdefault("enabled", True)
    data["notificationChannels"] = sorted(data.get("notificationChannels", []))
    return data


def descriptor(metric: MetricDef, prefix: str = DEFAULT_PREFIX) -> metric_pb2.MetricDescriptor:
    """The MetricDescriptor of one metric of function/metrics.py's schema: its kind, value type, unit (the
    dashboard shows latency in ms), description and labels (string-valued, as the canary writes them)."""
    return metric_pb2.MetricDescriptor(
        type=metric.type(prefix),
        # Enum names as in google/api/metric.proto (MetricKind, ValueType), checked there by Value().
        metric_kind=metric_pb2.MetricDescriptor.MetricKind.Value(metric.kind),
        value_type=metric_pb2.MetricDescriptor.ValueType.Value(metric.value_type),
        unit=metric.unit,
        description=metric.description,
        display_name=f"Gemini canary {metric.name}",
        labels=[
            label_pb2.LabelDescriptor(key=key, value_type=label_pb2.LabelDescriptor.STRING) for key in metric.labels
        ],
    )


def descriptor_matches(current: metric_pb2.MetricDescriptor, wanted: metric_pb2.MetricDescriptor) -> bool:
    """Whether an existing descriptor already says what `wanted` says. Extra labels do not count: Google never
    removes a descriptor's labels (projects.metricDescriptors.create, docs/google-behaviour.md)."""
    fields = ("metric_kind", "value_type", "unit", "description", "display_name")
    return all(getattr(current, f) == getattr(wanted, f) for f in fields) and {
        label.key for label in wanted.labels
    } <= {label.key for label in current.labels}


@dataclass
class Monitoring:
    """Reads always run; changes go into the plan and run unless dry-running."""

    project: str
    dry_run: bool
    plan: list[str] = field(default_factory=list)
    _policies: Any = None
    _channels: Any = None
    _metrics: Any = None

    def _clients(self) -> tuple[Any, Any]:
        if self._policies is None:
            endpoint = os.environ.get("DEPLOY_MONITORING_GRPC")
            if endpoint:
                token_file = os.environ.get("CLOUDSDK_AUTH_ACCESS_TOKEN_FILE", "")
                credentials = Credentials(token=Path(token_file).read_text().strip())
                local = grpc.local_channel_credentials()
                self._policies = monitoring_v3.AlertPolicyServiceClient(
                    transport=AlertPolicyServiceGrpcTransport(
                        host=endpoint, credentials=credentials, ssl_channel_credentials=local
                    )
                )
                self._channels = monitoring_v3.NotificationChannelServiceClient(
                    transport=NotificationChannelServiceGrpcTransport(
                        host=endpoint, credentials=credentials, ssl_channel_credentials=local
                    )
                )
                self._metrics = monitoring_v3.MetricServiceClient(
                    transport=MetricServiceGrpcTransport(
                        host=endpoint, credentials=credentials, ssl_channel_credentials=local
                    )
                )
            else:
                self._policies = monitoring_v3.AlertPolicyServiceClient()
                self._channels = monitoring_v3.NotificationChannelServiceClient()
                self._metrics = monitoring_v3.MetricServiceClient()
        return self._policies, self._channels

    def _do(self, description: str, call: Callable[[], Any]) -> Any:
        self.plan.append(description)
        return None if self.dry_run else call()

    # Metric descriptors -------------------------------------------------------------------------------

    def current_descriptor(self, metric_type: str) -> Any:
        """The project's descriptor of a metric type, or None."""
        self._clients()
        try:
            return self._metrics.get_metric_descriptor(name=f"projects/{self.project}/metricDescriptors/{metric_type}")
        except exceptions.NotFound:
            return None

    def ensure_descriptor(self, wanted: metric_pb2.MetricDescriptor) -> str:
        """created | updated | unchanged. CreateMetricDescriptor also updates an existing descriptor (Google's
        documented behaviour), including one Google auto-created from the canary's first write, without units."""
        current = self.current_descriptor(wanted.type)
        if current is not None and descriptor_matches(current, wanted):
            return "unchanged"
        self._do(
            f"monitoring.metricDescriptors.create projects/{self.project} {wanted.type} unit={wanted.unit!r}",
            lambda: self._metrics.create_metric_descriptor(name=f"projects/{self.project}", metric_descriptor=wanted),
        )
        return "created" if current is None else "updated"

    # Channels -----------------------------------------------------------------------------------------

    def channel_exists(self, name: str) -> bool:
        _, channels = self._clients()
        try:
            channels.get_notification_channel(name=name)
            return True
        except exceptions.NotFound:
            return False

    def ensure_email_channel(self, email: str) -> tuple[str, str]:
        """(channel name, created|unchanged) for an e-mail channel this tool manages in a project."""
        return self._email_channel(email, central=False)

    def ensure_central_email_channel(self, email: str) -> tuple[str, str]:
        """The same, for the central policies in a scoping project (labelled central)."""
        return self._email_channel(email, central=True)

    def _email_channel(self, email: str, *, central: bool) -> tuple[str, str]:
        _, channels = self._clients()
        for channel in channels.list_notification_channels(name=f"projects/{self.project}"):
            if (
                channel.type_ == "email"
                and channel.labels.get("email_address") == email
                and channel.user_labels.get(MANAGED_LABEL[0]) == MANAGED_LABEL[1]
                and is_central(channel.user_labels) == central
            ):
                return channel.name, "unchanged"
        channel = monitoring_v3.NotificationChannel(
            type_="email",
            display_name=f"Gemini canary{' (fleet)' if central else ''}: {email}",
            labels={"email_address": email},
            user_labels=dict([MANAGED_LABEL, *([CENTRAL_LABEL] if central else [])]),
        )
        created = self._do(
            f"monitoring.notificationChannels.create projects/{self.project} email={email}",
            lambda: channels.create_notification_channel(name=f"projects/{self.project}", notification_channel=channel),
        )
        return (
            created.name if created is not None else f"projects/{self.project}/notificationChannels/(new)"
        ), "created"

    def managed_channels(self) -> list[Any]:
        """The channels this tool made for a project's own policies."""
        return self._channels_made(central=False)

    def central_channels(self) -> list[Any]:
        """The channels this tool made for the central policies (a scoping project)."""
        return self._channels_made(central=True)

    def _channels_made(self, *, central: bool) -> list[Any]:
        _, channels = self._clients()
        return [
            c
            for c in channels.list_notification_channels(name=f"projects/{self.project}")
            if c.user_labels.get(MANAGED_LABEL[0]) == MANAGED_LABEL[1] and is_central(c.user_labels) == central
        ]

    def delete_channel(self, name: str) -> None:
        _, channels = self._clients()
        self._do(
            f"monitoring.notificationChannels.delete {name}",
            lambda: channels.delete_notification_channel(name=name, force=True),
        )

    # Policies -------------------------------------------------------------------------------------------

    def managed_policies(self) -> list[Any]:
        """The policies this tool made for a project itself."""
        return self._policies_made(central=False)

    def central_policies(self) -> list[Any]:
        """The central policies this tool made (a scoping project)."""
        return self._policies_made(central=True)

    def _policies_made(self, *, central: bool) -> list[Any]:
        policies, _ = self._clients()
        return [
            p
            for p in policies.list_alert_policies(name=f"projects/{self.project}")
            if p.user_labels.get(MANAGED_LABEL[0]) == MANAGED_LABEL[1] and is_central(p.user_labels) == central
        ]

    # Time series ----------------------------------------------------------------------------------------

    def list_series(self, metric_type: str, start: datetime, end: datetime) -> list[Any]:
        """Every generic_task series of one metric type this project's metrics scope reads between start and end
        (in a scoping project: every monitored project's), one ListTimeSeries (pages followed)."""
        self._clients()
        found = self._metrics.list_time_series(
            name=f"projects/{self.project}",
            filter=f'metric.type = "{metric_type}" AND resource.type = "generic_task"',
            interval=monitoring_v3.TimeInterval(start_time=start, end_time=end),
            view=monitoring_v3.ListTimeSeriesRequest.TimeSeriesView.FULL,
        )
        return list(found)

    def ensure_policy(self, desired: dict[str, Any], existing: list[Any]) -> str:
        """created | updated | unchanged for one policy, matched by display name among the managed ones."""
        policies, _ = self._clients()
        current = next((p for p in existing if p.display_name == desired["displayName"]), None)
        wanted = monitoring_v3.AlertPolicy.from_json(json.dumps(desired), ignore_unknown_fields=False)
        if current is None:
            self._do(
                f"monitoring.alertPolicies.create projects/{self.project} {desired['displayName']!r}",
                lambda: policies.create_alert_policy(name=f"projects/{self.project}", alert_policy=wanted),
            )
            return "created"
        current_doc = json.loads(monitoring_v3.AlertPolicy.to_json(current))
        if comparable(current_doc) == comparable(desired):
            return "unchanged"
        update = copy.deepcopy(wanted)
        update.name = current.name
        self._do(
            f"monitoring.alertPolicies.update {current.name} {desired['displayName']!r}",
            lambda: policies.update_alert_policy(alert_policy=update),
        )
        return "updated"

    def delete_policy(self, name: str) -> None:
        policies, _ = self._clients()
        self._do(f"monitoring.alertPolicies.delete {name}", lambda: policies.delete_alert_policy(name=name))
