"""The text a person reads in a runbook (`?format=text`)."""

from __future__ import annotations

from datetime import UTC, datetime

from function import report
from function.causes import Cause, Failure
from function.config import Config, Target
from function.evidence import Evidence
from function.probe import Outcome
from function.run import Result, Trigger

TARGET = Target("gemini-2.5-flash-lite", "us-central1")


def _result(failure: Failure) -> Result:
    return Result(
        run_id="r1",
        started_at=datetime(2026, 11, 26, 9, 10, tzinfo=UTC),
        trigger=Trigger("http"),
        config=Config(targets=(TARGET,)),
        project="demo-proj",
        principal=None,
        outcomes=[Outcome(TARGET, failure.cause, 0.0, failure=failure)],
        evidence=Evidence(),
    )


def _error_line(failure: Failure) -> str:
    """The target's own line under its cause: the target, what the error said, the latency."""
    [line] = [line for line in report.to_text(_result(failure)).splitlines() if line.startswith(f"  {TARGET}  ")]
    return line.strip()


def test_a_google_error_shows_its_code_status_and_reason() -> None:
    failure = Failure(Cause.API_DISABLED, code=403, status="PERMISSION_DENIED", reason="SERVICE_DISABLED")
    assert _error_line(failure) == f"{TARGET}  403 PERMISSION_DENIED SERVICE_DISABLED  0 ms"


def test_a_failure_that_never_reached_google_names_what_raised_it() -> None:
    # DefaultCredentialsError has no HTTP code: the line used to read "error     None"
    failure = Failure(Cause.CREDENTIALS, message="no credentials", error_type="DefaultCredentialsError")
    assert _error_line(failure) == f"{TARGET}  DefaultCredentialsError  0 ms"
