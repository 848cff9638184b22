"""Cloud Scheduler fires its jobs on the emulator's clock: each due run in the job's time zone, with the headers and
the OIDC token Google sends, retries per the retry config on the clock, nothing while paused, and execution log
entries the real logging client reads."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from google.logging.type import log_severity_pb2

from devkit.emulated import admin, clients
from devkit.receiver import Receiver, receiving
from emulator.core.clock import parse_rfc3339
from emulator.server import Emulator
from emulator.services.scheduler import backoff, next_run
from tests.emulator.rest_support import LOC, rest, scheduler_job
from tests.emulator.support import DEPLOYER, PROJECT, advance, list_entries
from tests.prerequisites import need
from tests.shared import WORKLOAD

JOB = f"{LOC}/jobs/gemini-canary"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as found:
        yield found


def _create(emu: Emulator, receiver: Receiver, **changes: object) -> dict[str, object]:
    job = scheduler_job(**changes)
    job["httpTarget"]["uri"] = f"{receiver.url}/canary"
    job["httpTarget"]["oidcToken"]["audience"] = "https://canary.example.test"
    status, body = rest(emu, "POST", f"/v1/{LOC}/jobs", job)
    assert status == 200, body
    return dict(body)


def _job(emu: Emulator) -> dict[str, object]:
    status, body = rest(emu, "GET", f"/v1/{JOB}")
    assert status == 200, body
    return dict(body)


def _set_clock(emu: Emulator, at: str) -> None:
    status, body = admin(emu, "POST", "clock", {"set": at})
    assert status == 200, body


def test_an_http_job_fires_with_googles_headers_and_a_verifiable_oidc_token(
    start_emulator: Callable[[str], Emulator], receiver: Receiver
) -> None:
    emu = start_emulator("deploy_ready")
    created = _create(emu, receiver)
    assert receiver.taken() == []
    advance(emu, (parse_rfc3339(str(created["scheduleTime"])) - emu.world.clock.now()).total_seconds())
    [got] = receiver.taken()
    assert (got.method, got.path, got.body) == ("POST", "/canary", b"{}")
    assert got.headers["user-agent"] == "Google-Cloud-Scheduler"
    assert got.headers["x-cloudscheduler"] == "true"
    assert got.headers["x-cloudscheduler-jobname"] == "gemini-canary"
    assert got.headers["x-cloudscheduler-scheduletime"] == created["scheduleTime"]
    assert got.headers["content-type"] == "application/json"
    scheme, token = got.headers["authorization"].split(" ", 1)
    assert scheme == "Bearer"
    claims = emu.world.signer.verify(token, {"https://canary.example.test"})
    assert claims["email"] == WORKLOAD
    job = _job(emu)
    assert job["lastAttemptTime"] == created["scheduleTime"]
    assert job["status"] == {}
    assert job["scheduleTime"] == "2026-11-26T09:10:00Z"
    assert job["userUpdateTime"] == created["userUpdateTime"]


def test_a_clock_jump_fires_each_due_run_in_the_jobs_time_zone(
    start_emulator: Callable[[str], Emulator], receiver: Receiver
) -> None:
    emu = start_emulator("deploy_ready")
    _set_clock(emu, "2027-03-13T12:00:00Z")
    # 01:30 and 03:30 New York time every day; 2027-03-14 is the spring-forward day (02:00 EST → 03:00 EDT).
    _create(emu, receiver, schedule="30 1,3 * * *", timeZone="America/New_York")
    advance(emu, 2 * 86400)
    times = [r.headers["x-cloudscheduler-scheduletime"] for r in receiver.taken()]
    assert times == [
        "2027-03-14T06:30:00Z",  # 01:30 EST
        "2027-03-14T07:30:00Z",  # 03:30 EDT
        "2027-03-15T05:30:00Z",  # 01:30 EDT
        "2027-03-15T07:30:00Z",  # 03:30 EDT
    ]
    assert _job(emu)["scheduleTime"] == "2027-03-16T05:30:00Z"


def test_a_paused_job_does_not_fire_and_resuming_skips_the_missed_runs(
    start_emulator: Callable[[str], Emulator], receiver: Receiver
) -> None:
    emu = start_emulator("deploy_ready")
    _create(emu, receiver)
    assert rest(emu, "POST", f"/v1/{JOB}:pause", {})[0] == 200
    advance(emu, 3600)
    assert receiver.taken() == []
    status, resumed = rest(emu, "POST", f"/v1/{JOB}:resume", {})
    assert status == 200, resumed
    assert resumed["scheduleTime"] == "2026-11-26T10:05:00Z"
    advance(emu, 300)
    assert [r.headers["x-cloudscheduler-scheduletime"] for r in receiver.taken()] == ["2026-11-26T10:05:00Z"]


def test_a_failing_target_is_retried_with_the_documented_backoff_on_the_clock(
    start_emulator: Callable[[str], Emulator], receiver: Receiver
) -> None:
    emu = start_emulator("deploy_ready")
    retry = {"retryCount": 3, "minBackoffDuration": "10s", "maxBackoffDuration": "300s", "maxDoublings": 3}
    created = _create(emu, receiver, retryConfig=retry)
    first = parse_rfc3339(str(created["scheduleTime"]))
    receiver.statuses = [500, 503, 500, 500]
    advance(emu, (first - emu.world.clock.now()).total_seconds())
    assert len(receiver.taken()) == 1
    job = _job(emu)
    assert job["status"] == {"code": 13}  # INTERNAL, for an HTTP 500
    assert job["scheduleTime"] == "2026-11-26T09:05:10Z"
    advance(emu, 10)
    assert len(receiver.taken()) == 2
    assert _job(emu)["status"] == {"code": 14}  # UNAVAILABLE, for an HTTP 503
    advance(emu, 30)  # the next retries come 20 s and 40 s after the previous: 09:05:30, then 09:06:10
    assert len(receiver.taken()) == 3
    advance(emu, 180)  # to 09:08:40
    attempts = receiver.taken()
    assert len(attempts) == 4  # the first attempt and three retries; then the schedule goes on
    assert {a.headers["x-cloudscheduler-scheduletime"] for a in attempts} == {"2026-11-26T09:05:00Z"}
    job = _job(emu)
    assert job["lastAttemptTime"] == "2026-11-26T09:06:10Z"
    assert job["status"] == {"code": 13}
    assert job["scheduleTime"] == "2026-11-26T09:10:00Z"


def test_backoff_follows_the_retry_config_example() -> None:
    retry = {"minBackoffDuration": "10s", "maxBackoffDuration": "300s", "maxDoublings": 3}
    assert [backoff(retry, n) for n in range(8)] == [10, 20, 40, 80, 160, 240, 300, 300]


def test_run_job_fires_now_and_leaves_the_schedule(
    start_emulator: Callable[[str], Emulator], receiver: Receiver
) -> None:
    emu = start_emulator("deploy_ready")
    created = _create(emu, receiver)
    receiver.statuses = [404]
    assert rest(emu, "POST", f"/v1/{JOB}:run", {})[0] == 200
    advance(emu, 0)
    assert len(receiver.taken()) == 1
    job = _job(emu)
    assert job["status"] == {"code": 5}
    assert job["scheduleTime"] == created["scheduleTime"]


def test_each_attempt_writes_execution_log_entries_the_logging_client_reads(
    start_emulator: Callable[[str], Emulator], receiver: Receiver
) -> None:
    emu = start_emulator("deploy_ready")
    created = _create(emu, receiver)
    receiver.statuses = [404]
    advance(emu, (parse_rfc3339(str(created["scheduleTime"])) - emu.world.clock.now()).total_seconds() + 5)
    logging = clients(emu, DEPLOYER).logging
    filter_ = 'resource.type="cloud_scheduler_job" AND log_id("cloudscheduler.googleapis.com/executions")'
    entries = {str(e.json_payload["@type"]).rsplit(".", 1)[-1]: e for e in list_entries(logging, filter_)}
    assert sorted(entries) == ["AttemptFinished", "AttemptStarted"]
    started, finished = entries["AttemptStarted"], entries["AttemptFinished"]
    assert started.log_name == f"projects/{PROJECT}/logs/cloudscheduler.googleapis.com%2Fexecutions"
    assert dict(started.resource.labels) == {
        "project_id": PROJECT,
        "job_id": "gemini-canary",
        "location": "us-central1",
    }
    assert started.json_payload["jobName"] == JOB
    assert started.json_payload["scheduledTime"] == created["scheduleTime"]
    assert started.json_payload["targetType"] == "HTTP"
    assert started.json_payload["url"] == f"{receiver.url}/canary"
    assert started.severity == log_severity_pb2.INFO
    assert finished.severity == log_severity_pb2.ERROR
    assert finished.json_payload["status"] == "NOT_FOUND"
    assert finished.json_payload["debugInfo"] == "URL_ERROR-ERROR_NOT_FOUND. Original HTTP response code number = 404"
    assert finished.http_request.status == 404
    assert started.timestamp == datetime(2026, 11, 26, 9, 5, tzinfo=UTC)
    assert finished.timestamp.timestamp() > started.timestamp.timestamp()  # type: ignore[attr-defined]


def test_daylight_saving_skipped_and_repeated_wall_times() -> None:
    zone = "America/New_York"
    # 2027-03-14: 02:30 does not exist (02:00 EST → 03:00 EDT); it runs at the instant EST gives it, 03:30 EDT.
    skipped = next_run("30 2 * * *", zone, datetime(2027, 3, 14, 5, 0, tzinfo=UTC))
    assert skipped.astimezone(UTC) == datetime(2027, 3, 14, 7, 30, tzinfo=UTC)
    # 2027-11-07: 01:30 happens twice (EDT, then EST); it runs once, at the first.
    first = next_run("30 1 * * *", zone, datetime(2027, 11, 7, 4, 0, tzinfo=UTC))
    assert first.astimezone(UTC) == datetime(2027, 11, 7, 5, 30, tzinfo=UTC)
    again = next_run("30 1 * * *", zone, first)
    assert again.astimezone(UTC) == datetime(2027, 11, 8, 6, 30, tzinfo=UTC)


def test_a_job_gcloud_creates_fires_with_its_oidc_token(
    start_emulator: Callable[[str], Emulator], receiver: Receiver, tmp_path: Path
) -> None:
    binary = need("gcloud")
    emu = start_emulator("deploy_ready")
    create = [
        binary,
        "scheduler",
        "jobs",
        "create",
        "http",
        "gemini-canary",
        "--location=us-central1",
        "--schedule=*/10 * * * *",
        "--time-zone=Europe/Berlin",
        f"--uri={receiver.url}/run",
        "--http-method=POST",
        "--message-body={}",
        f"--oidc-service-account-email={WORKLOAD}",
        "--format=json",
    ]
    done = subprocess.run(
        create, capture_output=True, text=True, env=emu.gcloud_env(tmp_path, DEPLOYER), timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["scheduleTime"] == "2026-11-26T09:10:00Z"
    advance(emu, 600)
    [got] = receiver.taken()
    token = got.headers["authorization"].removeprefix("Bearer ")
    assert emu.world.signer.verify(token, {f"{receiver.url}/run"})["email"] == WORKLOAD  # audience: the URI
    assert got.headers["x-cloudscheduler-scheduletime"] == "2026-11-26T09:10:00Z"
    assert got.headers["content-type"] == "application/octet-stream"  # a body and no Content-Type given
