"""Alert policies evaluated on the emulator's clock: the canary's four real policies (deploy/policies/*.json rendered by
deploy.alerting.render_policy) with points and log lines shaped like the canary's, driven through the real
monitoring_v3 and logging clients; incidents read from /_emulator/incidents, notifications from
/_emulator/notifications, a loopback webhook receiver and the email outbox."""

from __future__ import annotations

import email
import email.policy
import json
import threading
from collections.abc import Iterator
from datetime import datetime
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from google.cloud.logging_v2 import types as lt
from google.cloud.monitoring_v3 import types as mt
from google.protobuf import struct_pb2

from deploy.alerting import load_policy_file, render_policy
from deploy.spec import Spec
from devkit.emulated import admin, clients
from emulator.server import Emulator
from function.causes import Cause
from tests.emulator.support import OWNER, PROJECT, advance

NAME = f"projects/{PROJECT}"
PREFIX = "custom.googleapis.com/gemini_canary"
TARGET = "gemini-2.5-flash-lite@us-central1"
PERMISSION = "aiplatform.endpoints.predict"
TASK = {"project_id": PROJECT, "location": "us-central1", "namespace": "gemini-canary", "job": "gemini-canary"}
PERIOD = 300  # the default schedule, */5
SPEC = Spec(
    projects=(PROJECT,), region="us-central1", service_account="canary-workload@{project}.iam.gserviceaccount.com"
)


class Receiver:
    """A loopback HTTP server that keeps every POST it receives."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        received = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                received.append({"headers": dict(self.headers), "json": json.loads(body)})
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/alerts?auth_token=secret"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def channel(emu: Emulator, kind: str, labels: dict[str, str]) -> str:
    created = clients(emu, email=OWNER).channels.create_notification_channel(
        name=NAME, notification_channel=mt.NotificationChannel(type_=kind, display_name=kind, labels=labels)
    )
    return str(created.name)


def install(emu: Emulator, policy_file: str, channels: list[str]) -> mt.AlertPolicy:
    doc = render_policy(load_policy_file(policy_file), SPEC, channels)
    policy = mt.AlertPolicy.from_json(json.dumps(doc))
    return clients(emu, email=OWNER).alerts.create_alert_policy(name=NAME, alert_policy=policy)


def run(emu: Emulator, at: datetime, cause: Cause, task: str = "t1") -> None:
    """The series one canary run writes for one target (function/metrics.py's shapes)."""
    ok = cause == Cause.OK

    def one(metric: str, labels: dict[str, str], value: int) -> mt.TimeSeries:
        return mt.TimeSeries(
            metric={"type": f"{PREFIX}/{metric}", "labels": labels},
            resource={"type": "generic_task", "labels": {**TASK, "task_id": task}},
            points=[mt.Point(interval={"end_time": at}, value={"int64_value": value})],
        )

    failure = {"target": TARGET, "cause": str(cause), "permission": "none" if ok else PERMISSION, "remedy": "none"}
    clients(emu, email=OWNER).metrics.create_time_series(
        name=NAME,
        time_series=[
            one("runs", {"outcome": "healthy" if ok else "failing"}, 1),
            one("success", {"target": TARGET}, 1 if ok else 0),
            one("failures", failure, 0 if ok else 1),
        ],
    )


def read_mail(folder: Path, pattern: str = "*.eml") -> list[EmailMessage]:
    return [
        email.message_from_bytes(path.read_bytes(), _class=EmailMessage, policy=email.policy.default)
        for path in sorted(folder.glob(pattern))
    ]


def incidents(emu: Emulator) -> list[dict[str, Any]]:
    status, body = admin(emu, "GET", "incidents")
    assert status == 200, body
    return list(body["incidents"])


def notifications(emu: Emulator) -> list[dict[str, Any]]:
    status, body = admin(emu, "GET", "notifications")
    assert status == 200, body
    return list(body["notifications"])


def runs(emu: Emulator, causes: list[Cause]) -> datetime:
    """One run per schedule period (the point written 30 s after the tick), the clock moved to the next tick."""
    now = emu.world.clock.now()
    for cause in causes:
        run(emu, advance(emu, 30), cause)
        now = advance(emu, PERIOD - 30)
    return now


def test_a_lasting_denial_pages_once_and_its_recovery_sends_a_recovery_notice(
    emulator: Emulator, receiver: Receiver, tmp_path: Path
) -> None:
    emulator.world.outbox = tmp_path
    hook = channel(emulator, "webhook_tokenauth", {"url": receiver.url})
    mail = channel(emulator, "email", {"email_address": "oncall@example.com"})
    policy = install(emulator, "denied.json", [hook, mail])

    runs(emulator, [Cause.IAM_PERMISSION_DENIED] * 4)

    (incident,) = incidents(emulator)
    assert (incident["policy"], incident["state"]) == (policy.name, "OPEN")
    assert incident["group"]["metric"]["labels"] == {
        "target": TARGET,
        "cause": "iam_permission_denied",
        "permission": PERMISSION,
        "remedy": "none",
    }
    (post,) = receiver.posts
    sent = post["json"]
    assert sent["version"] == "1.2"
    assert sent["incident"]["state"] == "open"
    assert sent["incident"]["incident_id"] == incident["incident_id"]
    assert sent["incident"]["scoping_project_id"] == PROJECT
    assert sent["incident"]["policy_name"] == "Gemini canary: access denied"
    subject = sent["incident"]["documentation"]["subject"]
    assert subject == f"Gemini access denied: iam_permission_denied for {TARGET} in {PROJECT}"
    content = sent["incident"]["documentation"]["content"]
    assert f"project **{PROJECT}** cannot call **{TARGET}**" in content
    assert f"denied permission **{PERMISSION}**" in content
    assert "${" not in content
    assert "Policy: Gemini canary: access denied." in content
    (message,) = read_mail(tmp_path)
    assert (message["Subject"], message["To"]) == (subject, "oncall@example.com")
    assert content in message.get_content()

    # Recovery: healthy runs only. The failure series stops reporting; evaluated as false without data
    # (evaluationMissingData INACTIVE), the incident closes once the window after the last denied run has passed:
    # the window is one period plus the run's timeout (360 s), so by the next tick after one healthy run.
    runs(emulator, [Cause.OK])
    (incident,) = incidents(emulator)
    assert incident["state"] == "CLOSED"
    assert incident["close_reason"] == "condition_not_met"
    closed = [p["json"]["incident"] for p in receiver.posts[1:]]
    assert [c["state"] for c in closed] == ["closed"]
    assert closed[0]["ended_at"] is not None
    assert closed[0]["incident_id"] == incident["incident_id"]
    (recovery,) = read_mail(tmp_path, "*-closed-*.eml")
    assert recovery["Subject"] == subject
    assert "returned to normal" in recovery.get_content()
    sent_all = [(n["event"], n["type"], n["delivered"]) for n in notifications(emulator)]
    assert sorted(sent_all) == [
        ("CLOSED", "email", True),
        ("CLOSED", "webhook_tokenauth", True),
        ("OPEN", "email", True),
        ("OPEN", "webhook_tokenauth", True),
    ]
    assert [n["event"] for n in notifications(emulator)] == ["OPEN", "OPEN", "CLOSED", "CLOSED"]


def test_a_single_transient_failure_does_not_page_and_two_consecutive_ones_do(
    emulator: Emulator, receiver: Receiver
) -> None:
    install(emulator, "degraded.json", [channel(emulator, "webhook_tokenauth", {"url": receiver.url})])

    runs(emulator, [Cause.QUOTA, Cause.OK, Cause.QUOTA, Cause.OK, Cause.OK])
    assert incidents(emulator) == []
    assert receiver.posts == []

    runs(emulator, [Cause.QUOTA, Cause.QUOTA, Cause.OK])
    (incident,) = incidents(emulator)
    assert incident["group"]["metric"]["labels"] == {"target": TARGET, "cause": "quota"}
    opened, closed = receiver.posts  # and once the quota failures are out of the window, the recovery
    assert opened["json"]["incident"]["documentation"]["subject"] == f"Gemini degraded: quota for {TARGET} in {PROJECT}"
    assert closed["json"]["incident"]["state"] == "closed"


def test_a_silent_canary_opens_the_absence_incident_and_a_run_closes_it(emulator: Emulator, receiver: Receiver) -> None:
    install(emulator, "silent.json", [channel(emulator, "webhook_tokenauth", {"url": receiver.url})])
    runs(emulator, [Cause.OK] * 2)
    advance(emulator, 2 * PERIOD)
    assert incidents(emulator) == []  # two periods without a run: not yet

    advance(emulator, PERIOD + 60)
    (incident,) = incidents(emulator)
    assert incident["state"] == "OPEN"
    assert incident["group"]["resource"]["labels"] == {"project_id": PROJECT, "job": "gemini-canary"}
    (post,) = receiver.posts
    assert post["json"]["incident"]["documentation"]["subject"] == f"Gemini canary silent in {PROJECT}"
    assert "**gemini-canary** in project **demo-proj**" in post["json"]["incident"]["documentation"]["content"]

    runs(emulator, [Cause.OK])
    (incident,) = incidents(emulator)
    assert incident["state"] == "CLOSED"
    assert [p["json"]["incident"]["state"] for p in receiver.posts] == ["open", "closed"]


def log_run(emu: Emulator, run_id: str, written: bool, causes: str = "iam_permission_denied") -> None:
    payload = struct_pb2.Struct()
    payload.update(
        {
            "message": "gemini-canary DENIED: ...",
            "verdict": "denied",
            "run_id": run_id,
            "metrics": {"written": written, "series": 0},
        }
    )
    entry = lt.LogEntry(
        log_name=f"{NAME}/logs/run.googleapis.com%2Fstdout",
        resource={
            "type": "cloud_run_revision",
            "labels": {"project_id": PROJECT, "service_name": "gemini-canary", "location": "us-central1"},
        },
        severity="ERROR",
        json_payload=payload,
        labels={"canary_causes": causes, "canary_run_id": run_id},
    )
    clients(emu, email=OWNER).logging.write_log_entries(entries=[entry])


def test_the_log_line_policy_pages_when_metrics_were_not_written_at_most_once_an_hour(
    emulator: Emulator, receiver: Receiver
) -> None:
    install(emulator, "denial_log.json", [channel(emulator, "webhook_tokenauth", {"url": receiver.url})])

    log_run(emulator, "run-0", written=True)  # the metric policy sees this run: no page from the log line
    advance(emulator, PERIOD)
    assert incidents(emulator) == []

    for i in range(1, 7):  # 30 minutes of denied runs whose metrics could not be written
        log_run(emulator, f"run-{i}", written=False)
        advance(emulator, PERIOD)
    opened = incidents(emulator)
    assert [i["group"]["log_labels"]["run_id"] for i in opened] == [f"run-{i}" for i in range(1, 7)]
    (post,) = receiver.posts  # the rate limit: one notification an hour
    sent = post["json"]["incident"]
    assert sent["documentation"]["subject"] == (
        f"Gemini canary logged a denial without metrics: iam_permission_denied in {PROJECT}"
    )
    assert "(causes: iam_permission_denied, run run-1)" in sent["documentation"]["content"]
    assert sum(i["notifications_rate_limited"] for i in opened) == 5

    advance(emulator, 3600)
    log_run(emulator, "run-7", written=False)
    advance(emulator, 60)
    assert len(receiver.posts) == 2  # a new hour: pages again
    assert receiver.posts[1]["json"]["incident"]["documentation"]["content"].count("run run-7") == 1
    # Log-match incidents close only by autoClose (1800 s after their last match), with no recovery notice.
    assert {i["state"] for i in incidents(emulator)[:6]} == {"CLOSED"}
    assert len(receiver.posts) == 2


def test_a_denial_incident_closes_about_one_period_after_the_last_denied_run(emulator: Emulator) -> None:
    install(emulator, "denied.json", [])
    runs(emulator, [Cause.IAM_PERMISSION_DENIED] * 2)
    assert [i["state"] for i in incidents(emulator)] == ["OPEN"]
    runs(emulator, [Cause.OK] * 3)  # three periods: "about one period" plus the window, generously
    assert [i["state"] for i in incidents(emulator)] == ["CLOSED"]
