"""Notifications of alert incidents: the policy's documentation rendered with Google's variables, delivered to each of
the policy's notification channels (docs/google-behaviour.md, "Alert policy evaluation and notifications").

- `webhook_tokenauth`: a POST of Google's incident JSON (schema version 1.2) to the channel's `url`, through the
  world's network (a loopback receiver in tests); delivered when the answer is 2xx.
- `email`: one RFC 5322 message a notification, written to the world's outbox folder (failed when there is none).
- `pubsub`: the same JSON published to the channel's `topic` (Pub/Sub's `publish`).
- `slack`, `pagerduty`, `sms`: recorded as not delivered by the emulator.

Variables (https://cloud.google.com/monitoring/alerts/doc-variables): `${condition.name}`, `${condition.display_name}`,
`${metric.type}`, `${metric.display_name}`, `${metric.label.KEY}`, `${policy.name}`, `${policy.display_name}`,
`${policy.user_label.KEY}`, `${project}`, `${resource.type}`, `${resource.project}`, `${resource.label.KEY}`,
`${metadata.system_label.KEY}`, `${metadata.user_label.KEY}`, `${log.extracted_label.KEY}`; `$${` renders `${`. Label
variables read only the labels the incident's group kept (the condition's aggregation decides). The subject is cut
to 255 bytes after expansion, at a UTF-8 character boundary (alert.proto, Documentation.subject).
`${project}` and the incident JSON's `scoping_project_id` / `scoping_project_number` are the scoping project (the
policy's); `${resource.project}` and `resource.labels` the project the series came from (docs/google-behaviour.md,
"Metrics scopes").

Assumption: a documented variable with no value for the incident (a label the grouping dropped, metadata labels, which
the emulator has none of) renders as the empty string; `${resource.label.project_id}` too (the page sends readers to
`${resource.project}` for it); a name the page does not document is left in the text as written.
Assumption: `${resource.project}` (the project of the monitored resource) is the `project_id` label of the incident's
series when the grouping kept it (a monitored project's, in a metrics scope), else the scoping project; the incident
JSON's `resource_name` and summary name that project too.
Assumption: the expanded content is cut at 10,240 bytes (the stored limit) at a UTF-8 character boundary.
Assumption: a policy without a subject gets "[ALERT - SEVERITY] POLICY" when an incident opens and
"[RESOLVED] POLICY" when it closes (severity "No severity" when unset); a closed incident's summary says the
condition returned to normal; its documentation is rendered as for the opening.
Assumption: a webhook is tried once (no retries), with a 10 s deadline; `User-Agent: Google-Alerts`.
Assumption: an email comes from `Google Cloud Alerting <alerting-noreply@google.com>`; the file is named after the
time, incident and event.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from google.cloud.monitoring_v3 import types as mt
from google.protobuf import json_format

from emulator.core.network import Outbound, Unreachable
from emulator.core.world import Project, World
from emulator.services import pubsub
from emulator.services.monitoring.alerting import AlertingStore, Incident, Pending, evaluate_project
from emulator.services.monitoring.store import MonitoringStore

SUBJECT_BYTES = 255  # alert.proto, Documentation.subject: truncated to 255 bytes after variable expansion
CONTENT_BYTES = 10240  # alert.proto, Documentation.content: at most 10,240 UTF-8 bytes
WEBHOOK_TIMEOUT_S = 10.0
SCHEMA_VERSION = "1.2"  # the webhook/Pub/Sub incident JSON's "version" (public samples of Google's notifications)
NOT_DELIVERED = {"slack", "pagerduty", "sms"}
_VARIABLE = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_DOCUMENTED = re.compile(
    r"^(condition\.(name|display_name)|metric\.(type|display_name)|policy\.(name|display_name)|project|"
    r"resource\.(type|project)|(metric|resource)\.label\.[^.]+|policy\.user_label\..+|"
    r"metadata\.(system|user)_label\..+|log\.extracted_label\..+)$"
)


def _cut(text: str, limit: int) -> str:
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", errors="ignore")


def variables(incident: Incident, policy: mt.AlertPolicy, condition: mt.AlertPolicy.Condition | None) -> dict[str, str]:
    group = incident.group
    found = {
        "condition.name": incident.condition,
        "condition.display_name": condition.display_name if condition is not None else "",
        "metric.type": group.metric_type,
        "metric.display_name": "",
        "policy.name": policy.name,
        "policy.display_name": policy.display_name,
        "project": incident.project,
        "resource.type": group.resource_type,
        "resource.project": group.project(incident.project),
    }
    found.update({f"metric.label.{k}": v for k, v in group.metric_labels.items()})
    found.update({f"resource.label.{k}": v for k, v in group.resource_labels.items() if k != "project_id"})
    found.update({f"policy.user_label.{k}": v for k, v in policy.user_labels.items()})
    found.update({f"log.extracted_label.{k}": v for k, v in group.log_labels.items()})
    return found


def render(template: str, values: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "${"
        if name in values:
            return values[name]
        return "" if _DOCUMENTED.match(name) else match.group(0)

    return _VARIABLE.sub(one, template)


def _condition(policy: mt.AlertPolicy, name: str) -> mt.AlertPolicy.Condition | None:
    return next((c for c in policy.conditions if c.name == name), None)


def _number(value: float | None) -> str | None:
    return None if value is None else f"{value:g}"


def _summary(incident: Incident, policy: mt.AlertPolicy, event: str, what: str) -> str:
    # Assumption wording (see the module docstring): modelled on the summaries public samples show.
    project = incident.group.project(incident.project)
    if event == "CLOSED":
        return f"{what} for {project} returned to normal."
    if incident.observed_value is not None and incident.threshold_value is not None:
        side = "above" if incident.observed_value > incident.threshold_value else "at"
        return (
            f"{what} for {project} is {side}"
            f" the threshold of {incident.threshold_value:.3f} with a value of {incident.observed_value:.3f}."
        )
    return f"{what} for {project}: condition met ({policy.display_name})."


def compose(pending: Pending) -> dict[str, Any]:
    """The notification's subject, text and Google's incident JSON."""
    incident, policy, event = pending.incident, pending.policy, pending.event
    condition = _condition(policy, incident.condition)
    values = variables(incident, policy, condition)
    doc = policy.documentation
    if doc.subject:
        subject = render(doc.subject, values)
    else:
        severity = mt.AlertPolicy.Severity(policy.severity).name
        shown = "No severity" if severity == "SEVERITY_UNSPECIFIED" else severity.capitalize()
        subject = (
            f"[RESOLVED] {policy.display_name}" if event == "CLOSED" else f"[ALERT - {shown}] {policy.display_name}"
        )
    subject = _cut(subject, SUBJECT_BYTES)
    content = _cut(render(doc.content, values), CONTENT_BYTES)
    links = [{"displayName": link.display_name, "url": render(link.url, values)} for link in doc.links]
    what = (condition.display_name if condition is not None else "") or incident.group.metric_type or "Log match"
    summary = _summary(incident, policy, event, what)
    condition_json = json_format.MessageToDict(mt.AlertPolicy.Condition.pb(condition)) if condition is not None else {}
    payload: dict[str, Any] = {
        "version": SCHEMA_VERSION,
        "incident": {
            "incident_id": incident.incident_id,
            "scoping_project_id": incident.project,
            "scoping_project_number": int(incident.project_number) if incident.project_number.isdigit() else 0,
            "url": f"https://console.cloud.google.com/monitoring/alerting/incidents/{incident.incident_id}"
            f"?project={incident.project}",
            "severity": "No severity"
            if policy.severity == 0
            else mt.AlertPolicy.Severity(policy.severity).name.capitalize(),
            "started_at": int(incident.opened_at.timestamp()),
            "ended_at": int(pending.at.timestamp()) if event == "CLOSED" else None,
            "state": "closed" if event == "CLOSED" else "open",
            "summary": summary,
            "apigee_url": "",
            "observed_value": _number(incident.observed_value),
            "resource": {"type": incident.group.resource_type, "labels": dict(incident.group.resource_labels)},
            "resource_type_display_name": incident.group.resource_type,
            "resource_id": "",
            "resource_display_name": "",
            "resource_name": f"{incident.group.project(incident.project)} {incident.group.resource_type} labels "
            + "{"
            + ", ".join(f"{k}={v}" for k, v in sorted(incident.group.resource_labels.items()))
            + "}",
            "metric": {
                "type": incident.group.metric_type,
                "displayName": "",
                "labels": dict(incident.group.metric_labels),
            },
            "metadata": {"system_labels": {}, "user_labels": {}},
            "policy_name": policy.display_name,
            "policy_user_labels": dict(policy.user_labels),
            "documentation": {
                "content": content,
                "mime_type": doc.mime_type or "text/markdown",
                "subject": subject,
                "links": links,
            },
            "condition": condition_json,
            "condition_name": condition.display_name if condition is not None else "",
            "threshold_value": _number(incident.threshold_value),
        },
    }
    if incident.group.log_labels:
        payload["incident"]["log_match"] = {"extracted_labels": dict(incident.group.log_labels)}
    return {"subject": subject, "content": content, "summary": summary, "payload": payload}


def _email(world: World, to: str, composed: dict[str, Any], pending: Pending, channel: str) -> str:
    """Write the message; its file name (raises OSError / ValueError when it cannot be written)."""
    if world.outbox is None:
        raise ValueError("no outbox folder is set for email notifications")
    message = EmailMessage()
    message["From"] = "Google Cloud Alerting <alerting-noreply@google.com>"
    message["To"] = to
    message["Subject"] = composed["subject"]
    message["Date"] = format_datetime(pending.at.astimezone(UTC))
    incident = composed["payload"]["incident"]
    lines = [
        composed["summary"],
        "",
        f"Incident: {incident['incident_id']} ({incident['state']})",
        f"Policy: {incident['policy_name']}",
        f"Condition: {incident['condition_name']}",
        f"Project: {incident['scoping_project_id']}",
        f"View incident: {incident['url']}",
        "",
        "Policy documentation:",
        composed["content"],
    ]
    for link in incident["documentation"]["links"]:
        lines.append(f"{link['displayName']}: {link['url']}")
    message.set_content("\n".join(lines) + "\n")
    stamp = pending.at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    safe_id = re.sub(r"[^a-z0-9.]", "", incident["incident_id"])
    name = f"{stamp}-{safe_id}-{pending.event.lower()}-{channel.rsplit('/', 1)[-1]}.eml"
    world.outbox.mkdir(parents=True, exist_ok=True)
    (world.outbox / name).write_bytes(bytes(message))
    return name


def _pubsub(world: World, topic: str, composed: dict[str, Any]) -> str:
    data = json.dumps(composed["payload"]).encode()
    return pubsub.publish(world, topic, data, {})


def deliver(
    world: World, project_id: str, channel: mt.NotificationChannel | None, name: str, pending: Pending
) -> dict[str, Any]:
    """One delivery attempt, outside the world's lock; the record for /_emulator/notifications."""
    composed = compose(pending)
    record: dict[str, Any] = {
        "project": project_id,
        "channel": name,
        "type": channel.type_ if channel is not None else "",
        "incident_id": pending.incident.incident_id,
        "policy": pending.policy.name,
        "event": pending.event,
        "at": pending.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "subject": composed["subject"],
        "body": composed["content"],
        "payload": composed["payload"],
        "delivered": False,
        "failure": None,
    }
    if channel is None:
        record["failure"] = "the notification channel does not exist"
        return record
    kind = channel.type_
    try:
        if kind == "webhook_tokenauth":
            body = json.dumps(composed["payload"]).encode()
            reply = world.network.send(
                Outbound(
                    "POST",
                    channel.labels["url"],
                    {"Content-Type": "application/json", "User-Agent": "Google-Alerts"},
                    body,
                    WEBHOOK_TIMEOUT_S,
                )
            )
            record["status"] = reply.status
            if 200 <= reply.status < 300:
                record["delivered"] = True
            else:
                record["failure"] = f"the webhook answered HTTP {reply.status}"
        elif kind == "email":
            record["file"] = _email(world, channel.labels["email_address"], composed, pending, name)
            record["to"] = channel.labels["email_address"]
            record["delivered"] = True
        elif kind == "pubsub":
            record["message_id"] = _pubsub(world, channel.labels["topic"], composed)
            record["delivered"] = True
        elif kind in NOT_DELIVERED:
            record["failure"] = f"{kind} channels are not delivered by the emulator"
        else:
            record["failure"] = f"unknown channel type {kind!r}"
    except Unreachable as err:
        record["failure"] = f"unreachable ({err.reason}): {err}"
    except (OSError, ValueError) as err:
        record["failure"] = str(err)
    except Exception as err:  # noqa: BLE001 - a Pub/Sub refusal (RpcError) is a failed delivery, not a crash
        record["failure"] = getattr(err, "message", None) or str(err) or type(err).__name__
    return record


def _channels(project: Project, pending: Pending) -> list[tuple[str, mt.NotificationChannel | None]]:

    stored = project.store(MonitoringStore).notification_channels
    return [(name, stored.get(name)) for name in pending.policy.notification_channels]


def tick(world: World, now: datetime) -> None:
    """Evaluate every project's policies up to `now` under the lock; deliver outside it; record the attempts."""
    with world.lock:
        work: list[tuple[Project, str, mt.NotificationChannel | None, Pending]] = []
        for project in list(world.projects.values()):
            for pending in evaluate_project(world, project, now):
                for name, channel in _channels(project, pending):
                    copy = mt.NotificationChannel(channel) if channel is not None else None
                    work.append((project, name, copy, pending))
    records = [(project, deliver(world, project.project_id, channel, name, p)) for project, name, channel, p in work]
    if records:
        with world.lock:
            for project, record in records:
                project.store(AlertingStore).notifications.append(record)


def list_incidents(world: World, body: Any) -> dict[str, Any]:
    return {
        "incidents": [
            incident.to_json()
            for project in world.projects.values()
            for incident in project.store(AlertingStore).incidents
        ]
    }


def list_notifications(world: World, body: Any) -> dict[str, Any]:
    return {
        "notifications": [
            record for project in world.projects.values() for record in project.store(AlertingStore).notifications
        ]
    }


ADMIN = {("incidents", "GET"): list_incidents, ("notifications", "GET"): list_notifications}
