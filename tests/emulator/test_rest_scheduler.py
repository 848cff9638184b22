"""Cloud Scheduler v1 over REST: a job is stored with what Google adds, an invalid one is refused with Google's
text, and the next run follows unix-cron in the job's zone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from emulator.server import Emulator
from emulator.services.scheduler import SchedulerStore, next_run
from tests.emulator.rest_support import (
    LOC,
    URI,
    rest,
    scheduler_job,
)
from tests.emulator.support import PROJECT
from tests.shared import WORKLOAD

# Cloud Scheduler ------------------------------------------------------------------------------------------------


def test_a_job_is_stored_with_what_google_adds(start_emulator: Callable[[str], Emulator]) -> None:
    emu = start_emulator("deploy_ready")
    status, job = rest(emu, "POST", f"/v1/{LOC}/jobs", scheduler_job())
    assert status == 200, job
    assert job["state"] == "ENABLED"
    assert job["scheduleTime"] == "2026-11-26T09:05:00Z"
    assert job["httpTarget"]["headers"] == {"Content-Type": "application/json", "User-Agent": "Google-Cloud-Scheduler"}
    assert job["retryConfig"] == {
        "maxRetryDuration": "0s",
        "minBackoffDuration": "5s",
        "maxBackoffDuration": "3600s",
        "maxDoublings": 5,
    }
    assert emu.world.projects[PROJECT].store(SchedulerStore).scheduler_jobs[f"{LOC}/jobs/gemini-canary"] == job
    assert rest(emu, "POST", f"/v1/{LOC}/jobs", scheduler_job())[0] == 409


INVALID_JOBS = [
    pytest.param({"schedule": "every 5 minutes"}, "Schedule or time zone is invalid.", id="english-schedule"),
    pytest.param({"schedule": "61 * * * *"}, "Schedule or time zone is invalid.", id="minute-out-of-range"),
    pytest.param({"timeZone": "Mars/Olympus"}, "Schedule or time zone is invalid.", id="unknown-time-zone"),
    pytest.param({"attemptDeadline": "10s"}, "between 15s and 30m", id="deadline-too-short"),
    pytest.param({"retryConfig": {"retryCount": 6}}, "retry_count must be between 0 and 5", id="too-many-retries"),
    pytest.param(
        {"pubsubTarget": {"topicName": f"projects/{PROJECT}/topics/t"}}, "exactly one target", id="two-targets"
    ),
    pytest.param(
        {"httpTarget": {"uri": URI, "httpMethod": "GET", "body": "e30="}},
        "only with the POST, PUT and PATCH methods",
        id="body-with-get",
    ),
    pytest.param({"httpTarget": {"uri": "ftp://x"}}, "absolute http or https URL", id="not-http"),
    pytest.param(
        {
            "httpTarget": {
                "uri": URI,
                "oidcToken": {"serviceAccountEmail": WORKLOAD},
                "oauthToken": {"serviceAccountEmail": WORKLOAD},
            }
        },
        "only one of oidc_token and oauth_token",
        id="oidc-and-oauth",
    ),
    pytest.param(
        {"httpTarget": {"uri": URI, "oidcToken": {"serviceAccountEmail": "x@other-proj.iam.gserviceaccount.com"}}},
        "must exist in the job's project",
        id="oidc-account-elsewhere",
    ),
]


@pytest.mark.parametrize(("changes", "text"), INVALID_JOBS)
def test_an_invalid_job_is_refused(
    start_emulator: Callable[[str], Emulator], changes: dict[str, Any], text: str
) -> None:
    emu = start_emulator("deploy_ready")
    status, answer = rest(emu, "POST", f"/v1/{LOC}/jobs", scheduler_job(**changes))
    assert (status, answer["error"]["status"]) == (400, "INVALID_ARGUMENT")
    assert text in answer["error"]["message"]


@pytest.mark.parametrize(
    ("schedule", "zone", "expected"),
    [
        pytest.param("*/5 * * * *", "Etc/UTC", "2026-11-26T09:05:00+00:00", id="every-5-min"),
        pytest.param("0 9 * * *", "Europe/Paris", "2026-11-27T08:00:00+00:00", id="daily-in-paris"),
        pytest.param("30 8 1 JAN *", "Etc/UTC", "2027-01-01T08:30:00+00:00", id="month-name"),
        pytest.param("0 0 * * SUN", "Etc/UTC", "2026-11-29T00:00:00+00:00", id="weekday-name"),
        pytest.param("0 0 1 * 1", "Etc/UTC", "2026-11-30T00:00:00+00:00", id="dom-or-dow"),
    ],
)
def test_next_run_follows_unix_cron(schedule: str, zone: str, expected: str) -> None:
    after = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)  # a Thursday
    assert next_run(schedule, zone, after).astimezone(UTC).isoformat() == expected
