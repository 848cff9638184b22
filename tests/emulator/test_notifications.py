"""Notifications: documentation variables as Google documents them ($$ escape, labels only when the grouping kept
them, undocumented names left as written, the 255-byte subject), and each channel type's delivery or refusal as
/_emulator/notifications records it (email without an outbox, Slack, an unreachable webhook, Pub/Sub)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from google.cloud.monitoring_v3 import types as mt
from google.protobuf import duration_pb2

from devkit.emulated import clients
from emulator.server import Emulator
from tests.emulator.rest_support import rest
from tests.emulator.support import OWNER, PROJECT, advance
from tests.emulator.test_alert_evaluation import channel, incidents, notifications

NAME = f"projects/{PROJECT}"
METRIC = "custom.googleapis.com/demo/errors"
TASK = {"project_id": PROJECT, "location": "us-central1", "namespace": "ns", "job": "job", "task_id": "t1"}


def policy(channels: list[str], subject: str, content: str = "", group_by: tuple[str, ...] = ()) -> mt.AlertPolicy:
    return mt.AlertPolicy(
        display_name="Errors",
        user_labels={"team": "sre"},
        combiner=mt.AlertPolicy.ConditionCombinerType.OR,
        conditions=[
            mt.AlertPolicy.Condition(
                display_name="errors above zero",
                condition_threshold=mt.AlertPolicy.Condition.MetricThreshold(
                    filter=f'metric.type = "{METRIC}" AND resource.type = "generic_task"',
                    aggregations=[
                        mt.Aggregation(
                            alignment_period=duration_pb2.Duration(seconds=60),
                            per_series_aligner=mt.Aggregation.Aligner.ALIGN_MAX,
                            cross_series_reducer=mt.Aggregation.Reducer.REDUCE_MAX,
                            group_by_fields=list(group_by),
                        )
                    ],
                    comparison=mt.ComparisonType.COMPARISON_GT,
                    threshold_value=0,
                    duration=duration_pb2.Duration(seconds=0),
                ),
            )
        ],
        documentation=mt.AlertPolicy.Documentation(subject=subject, content=content, mime_type="text/markdown"),
        notification_channels=channels,
    )


def fire(emu: Emulator, alert: mt.AlertPolicy, email: str = OWNER) -> datetime:
    clients(emu, email=email).alerts.create_alert_policy(name=NAME, alert_policy=alert)
    at = advance(emu, 10)
    clients(emu, email=email).metrics.create_time_series(
        name=NAME,
        time_series=[
            mt.TimeSeries(
                metric={"type": METRIC, "labels": {"code": "500", "path": "/x"}},
                resource={"type": "generic_task", "labels": TASK},
                points=[mt.Point(interval={"end_time": at}, value={"int64_value": 3})],
            )
        ],
    )
    return advance(emu, 60)


def test_documentation_variables_follow_googles_rules(emulator: Emulator) -> None:
    slack = channel(emulator, "slack", {"channel_name": "#oncall"})
    content = (
        "code ${metric.label.code}; path [${metric.label.path}]; job [${resource.label.job}]; "
        "project ${resource.project} / ${project}; pid [${resource.label.project_id}]; team ${policy.user_label.team}; "
        "cond ${condition.display_name}; policy ${policy.display_name}; type ${metric.type}; "
        "literal $${metric.type}; unknown ${no.such.thing}; meta [${metadata.user_label.x}]"
    )
    fire(emulator, policy([slack], "x" * 250 + " ééé ${metric.label.code}", content, ("metric.label.code",)))

    (record,) = notifications(emulator)
    assert record["body"] == (
        f"code 500; path []; job []; project {PROJECT} / {PROJECT}; pid []; team sre; "
        f"cond errors above zero; policy Errors; type {METRIC}; "
        "literal ${metric.type}; unknown ${no.such.thing}; meta []"
    )
    # 255 bytes after expansion, cut at a character boundary: 250 x, a space, two two-byte characters.
    assert record["subject"] == "x" * 250 + " éé"
    assert len(record["subject"].encode()) == 255
    assert (record["type"], record["delivered"]) == ("slack", False)
    assert record["failure"] == "slack channels are not delivered by the emulator"


def test_email_without_an_outbox_and_an_unreachable_webhook_are_failed_deliveries(emulator: Emulator) -> None:
    assert emulator.world.outbox is None
    mail = channel(emulator, "email", {"email_address": "oncall@example.com"})
    hook = channel(emulator, "webhook_tokenauth", {"url": "https://hooks.example.com/alert"})
    fire(emulator, policy([mail, hook], "Errors in ${resource.project}"))

    (incident,) = incidents(emulator)
    assert incident["state"] == "OPEN"
    failures = {n["type"]: (n["delivered"], n["failure"]) for n in notifications(emulator)}
    assert failures["email"] == (False, "no outbox folder is set for email notifications")
    delivered, failure = failures["webhook_tokenauth"]
    assert not delivered
    assert failure.startswith("unreachable (dns): hooks.example.com does not resolve")


def test_a_pubsub_channel_publishes_the_incident(start_emulator: Callable[[str], Emulator]) -> None:
    emu = start_emulator("deploy_ready")
    status, _ = rest(emu, "PUT", f"/v1/{NAME}/topics/alerts", {})
    assert status == 200
    topic = channel(emu, "pubsub", {"topic": f"{NAME}/topics/alerts"})
    missing = channel(emu, "pubsub", {"topic": f"{NAME}/topics/nowhere"})
    fire(emu, policy([topic, missing], "Errors in ${resource.project}"))

    by_channel = {n["channel"]: n for n in notifications(emu)}
    assert by_channel[topic]["delivered"] is True
    assert by_channel[topic]["message_id"]
    assert by_channel[topic]["payload"]["incident"]["documentation"]["subject"] == f"Errors in {PROJECT}"
    assert by_channel[missing]["delivered"] is False
    assert "nowhere" in by_channel[missing]["failure"]
