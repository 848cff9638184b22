"""Alert policies and notification channels through the monitoring_v3 client library (gcloud has them only in
alpha/beta). Policies are the JSON files in deploy/policies/, in the REST form `gcloud alpha monitoring policies
create --policy-from-file` and the console accept, rendered with the project's channels, prefix and schedule.

Credentials: Application Default Credentials (the deployer's, e.g. the Cloud Build service account). Against the
local emulator only, DEPLOY_MONITORING_GRPC=host:port points the client at its gRPC port, with the token gcloud
uses (CLOUDSDK_AUTH_ACCESS_TOKEN_FILE).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.api_core import exceptions
from google.cloud import monitoring_v3
from google.cloud.monitoring_v3.services.alert_policy_service.transports import AlertPolicyServiceGrpcTransport
from google.cloud.monitoring_v3.services.notification_channel_service.transports import (
    NotificationChannelServiceGrpcTransport,
)
from google.oauth2.credentials import Credentials
from google.protobuf import json_format

from function.metrics import SCHEMA

from .spec import MANAGED_LABEL, Spec

POLICY_DIR = Path(__file__).resolve().parent / "policies"
POLICY_FILES = ("denied.json", "silent.json", "degraded.json", "denial_log.json")
DEFAULT_PREFIX = "custom.googleapis.com/gemini_canary"
SERVER_FIELDS = ("name", "creationRecord", "mutationRecord", "validity")


def load_policy_file(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((POLICY_DIR / name).read_text())
    return doc


def render_policy(doc: dict[str, Any], spec: Spec, channels: list[str], prefix: str = DEFAULT_PREFIX) -> dict[str, Any]:
    """A policy file with this deployment's channels, metric prefix and schedule filled in."""
    out = json.loads(json.dumps(doc).replace(DEFAULT_PREFIX, prefix))
    out["notificationChannels"] = sorted(channels)
    for condition in out["conditions"]:
        absent = condition.get("conditionAbsent")
        if absent is not None:
            # "Canary silent": three schedule periods without a run, in whole minutes, at least 2 minutes.
            period = spec.schedule_period_s()
            absent["duration"] = f"{max(120, 3 * period) // 60 * 60}s"
            for aggregation in absent.get("aggregations", []):
                aggregation["alignmentPeriod"] = f"{max(60, period)}s"
    return out


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


def metric_types() -> set[str]:
    return {m.type(DEFAULT_PREFIX) for m in SCHEMA}


@dataclass
class Monitoring:
    """Reads always run; changes go into the plan and run unless dry-running."""

    project: str
    dry_run: bool
    plan: list[str] = field(default_factory=list)
    _policies: Any = None
    _channels: Any = None

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
            else:
                self._policies = monitoring_v3.AlertPolicyServiceClient()
                self._channels = monitoring_v3.NotificationChannelServiceClient()
        return self._policies, self._channels

    def _do(self, description: str, call: Callable[[], Any]) -> Any:
        self.plan.append(description)
        return None if self.dry_run else call()

    # Channels -----------------------------------------------------------------------------------------

    def channel_exists(self, name: str) -> bool:
        _, channels = self._clients()
        try:
            channels.get_notification_channel(name=name)
            return True
        except exceptions.NotFound:
            return False

    def ensure_email_channel(self, email: str) -> tuple[str, str]:
        """(channel name, created|unchanged) for an e-mail channel this tool manages."""
        _, channels = self._clients()
        for channel in channels.list_notification_channels(name=f"projects/{self.project}"):
            if (
                channel.type_ == "email"
                and channel.labels.get("email_address") == email
                and channel.user_labels.get(MANAGED_LABEL[0]) == MANAGED_LABEL[1]
            ):
                return channel.name, "unchanged"
        channel = monitoring_v3.NotificationChannel(
            type_="email",
            display_name=f"Gemini canary: {email}",
            labels={"email_address": email},
            user_labels=dict([MANAGED_LABEL]),
        )
        created = self._do(
            f"monitoring.notificationChannels.create projects/{self.project} email={email}",
            lambda: channels.create_notification_channel(name=f"projects/{self.project}", notification_channel=channel),
        )
        return (
            created.name if created is not None else f"projects/{self.project}/notificationChannels/(new)"
        ), "created"

    def managed_channels(self) -> list[Any]:
        _, channels = self._clients()
        return [
            c
            for c in channels.list_notification_channels(name=f"projects/{self.project}")
            if c.user_labels.get(MANAGED_LABEL[0]) == MANAGED_LABEL[1]
        ]

    def delete_channel(self, name: str) -> None:
        _, channels = self._clients()
        self._do(
            f"monitoring.notificationChannels.delete {name}",
            lambda: channels.delete_notification_channel(name=name, force=True),
        )

    # Policies -------------------------------------------------------------------------------------------

    def managed_policies(self) -> list[Any]:
        policies, _ = self._clients()
        return [
            p
            for p in policies.list_alert_policies(name=f"projects/{self.project}")
            if p.user_labels.get(MANAGED_LABEL[0]) == MANAGED_LABEL[1]
        ]

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
