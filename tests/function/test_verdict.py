"""A run's verdict and what follows from it, each value taken from its own source: the LogEntry severity from
google/logging/type/log_severity.proto, the status from http.HTTPStatus, the words from the README's verdict list."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from google.logging.type import log_severity_pb2

from function.verdict import Verdict

LS = log_severity_pb2.LogSeverity


@pytest.mark.parametrize(
    ("verdict", "severity", "word", "status", "outcome"),
    [
        (Verdict.HEALTHY, LS.INFO, "OK", HTTPStatus.OK, "healthy"),
        (Verdict.DEGRADED, LS.WARNING, "DEGRADED", HTTPStatus.BAD_GATEWAY, "failing"),
        (Verdict.DENIED, LS.ERROR, "DENIED", HTTPStatus.BAD_GATEWAY, "failing"),
        (Verdict.ERROR, LS.ERROR, "ERROR", HTTPStatus.INTERNAL_SERVER_ERROR, "error"),
    ],
)
def test_each_verdict_carries_its_severity_word_status_and_outcome(
    verdict: Verdict, severity: int, word: str, status: HTTPStatus, outcome: str
) -> None:
    assert verdict.severity == LS.Name(severity)
    assert verdict.word == word
    assert verdict.http_status == status.value
    assert verdict.run_outcome == outcome


def test_the_verdicts_are_the_four_the_readme_lists() -> None:
    assert [v.value for v in Verdict] == ["healthy", "degraded", "denied", "error"]
    assert all(isinstance(v, str) for v in Verdict)  # the JSON answer and the log label carry the plain word
