"""A run's verdict, and everything that follows from it: the log line's severity and first word (what log-based
alerts match), the HTTP status of the answer, and the runs metric's `outcome` label."""

from __future__ import annotations

from enum import StrEnum


class Verdict(StrEnum):
    HEALTHY = "healthy"  # every target answered
    DEGRADED = "degraded"  # a target failed for a passing reason (quota, capacity, a timeout)
    DENIED = "denied"  # a target was refused for a lasting reason, or one the canary cannot name
    ERROR = "error"  # the canary itself failed

    @property
    def severity(self) -> str:
        """The LogEntry severity of the run's log line."""
        return _SEVERITY[self]

    @property
    def word(self) -> str:
        """The stable word the log line's message starts with (`gemini-canary DENIED: …`)."""
        return _WORD[self]

    @property
    def http_status(self) -> int:
        """The answer's status: 200 when healthy, 502 when Gemini failed (a bad gateway for the caller), 500 when the
        canary did."""
        return _HTTP_STATUS[self]

    @property
    def run_outcome(self) -> str:
        """The `outcome` label of the runs metric: healthy, failing or error."""
        return {Verdict.HEALTHY: "healthy", Verdict.ERROR: "error"}.get(self, "failing")


_SEVERITY = {Verdict.HEALTHY: "INFO", Verdict.DEGRADED: "WARNING", Verdict.DENIED: "ERROR", Verdict.ERROR: "ERROR"}
_WORD = {Verdict.HEALTHY: "OK", Verdict.DEGRADED: "DEGRADED", Verdict.DENIED: "DENIED", Verdict.ERROR: "ERROR"}
_HTTP_STATUS = {Verdict.HEALTHY: 200, Verdict.DEGRADED: 502, Verdict.DENIED: 502, Verdict.ERROR: 500}
