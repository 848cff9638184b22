"""Result → the one structured log line, the JSON response, and the text a person reads in a runbook.

The log line's `message` starts with a stable verdict word that log-based alerts match:
    gemini-canary OK: …        (INFO)     every target answered
    gemini-canary DEGRADED: …  (WARNING)  only transient causes: quota, capacity, unavailable, deadline
    gemini-canary DENIED: …    (ERROR)    a lasting cause: permission, API, billing, VPC-SC, org policy, …
    gemini-canary ERROR: …     (ERROR)    the canary itself failed
The same verdict is in the field `verdict` and the label `canary_verdict`. Nothing here carries a token or the
prompt/response text (the canary never keeps the latter).

Every string rendered passes through sanitize.text on the way out (error messages, audit-entry fields and evidence
come from outside): no control character reaches a terminal or the log message, no field can forge a line, and
anything token-shaped is redacted.
"""

from __future__ import annotations

import json
from typing import Any

from . import sanitize
from .causes import Cause
from .probe import Outcome
from .run import Result


def explain(result: Result, outcome: Outcome) -> str:
    """One line: what broke, who changed it and when, and the fix."""
    return sanitize.text(_explain(result, outcome))


def _explain(result: Result, outcome: Outcome) -> str:
    failure = outcome.failure
    if failure is None:
        return f"{outcome.target}: ok ({outcome.latency_ms:.0f} ms)"
    evidence = result.evidence
    who = result.principal or "the workload's identity"
    parts = [f"{outcome.target}: {failure.cause}"]
    permission = failure.metadata.get("permission")
    if failure.cause == Cause.IAM_PERMISSION_DENIED:
        if evidence.predict_granted:
            parts.append(
                f"{who} holds {permission or 'the permission'} through its roles yet is denied "
                "(a deny policy on the project, a folder or the organization, or a principal access boundary)"
            )
        else:
            parts.append(f"{who} lacks {permission or 'aiplatform.endpoints.predict'} on {result.project}")
    elif failure.reason:
        parts.append(f"{failure.code} {failure.reason}")
    else:
        parts.append(f"{failure.code or ''} {failure.message[:160]}".strip())
    if evidence.change is not None:
        change = evidence.change
        parts.append(f"{change.detail} by {change.actor} at {change.at}")
    elif evidence.pending:
        parts.append("audit evidence pending")
    fixes = result.remedies.get(str(outcome.target), [])
    first = next((r for r in fixes if r.command), None) or next(iter(fixes), None)
    if first is not None:
        parts.append(f"fix: {first.command or first.url}")
    return "; ".join(parts)


def headline(result: Result) -> str:
    return sanitize.text(_headline(result))


def _headline(result: Result) -> str:
    verdict = result.verdict
    prefix = f"gemini-canary {verdict.word}:"
    if verdict == "error":
        return f"{prefix} {result.error}"
    if verdict == "healthy":
        n = len(result.outcomes)
        return f"{prefix} {n}/{n} targets answered in project {result.project} as {result.principal or 'ADC identity'}"
    return f"{prefix} " + " | ".join(explain(result, o) for o in result.outcomes if not o.ok)


def _target_json(result: Result, outcome: Outcome) -> dict[str, Any]:
    doc = outcome.to_json()
    if not outcome.ok:
        doc["summary"] = explain(result, outcome)
        doc["remedies"] = [r.to_json() for r in result.remedies.get(str(outcome.target), [])]
    return doc


def _safe(value: Any) -> Any:
    """Every string of a JSON document through sanitize.text (the document is the canary's own, a few levels deep)."""
    if isinstance(value, str):
        return sanitize.text(value)
    if isinstance(value, dict):
        return {_safe(k): _safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_safe(v) for v in value]
    return value


def to_json(result: Result, debug: bool = False) -> dict[str, Any]:
    return dict(_safe(_to_json(result, debug)))


def _to_json(result: Result, debug: bool) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "verdict": result.verdict,
        "summary": headline(result),
        "run_id": result.run_id,
        "started_at": result.started_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "duration_ms": round(result.duration_ms, 1),
        "project": result.project,
        "principal": result.principal,
        "trigger": result.trigger.to_json(),
        "targets": [_target_json(result, o) for o in result.outcomes],
        "metrics": result.metrics.to_json(debug),
    }
    if any(not o.ok for o in result.outcomes):
        doc["evidence"] = result.evidence.to_json()
    if result.error:
        doc["error"] = result.error
    if debug:
        doc["config"] = result.config.public()
        doc["calls"] = result.calls
    return doc


def log_entry(result: Result) -> dict[str, Any]:
    """The structured line Cloud Logging parses from stdout (severity, message, labels, trace)."""
    entry = to_json(result)
    entry["severity"] = result.verdict.severity
    entry["message"] = headline(result)
    entry["logging.googleapis.com/labels"] = {
        "canary_verdict": result.verdict,
        "canary_run_id": result.run_id,
        "canary_causes": ",".join(sorted({str(o.cause) for o in result.outcomes if not o.ok})) or "ok",
    }
    if result.trigger.trace and result.project:
        entry["logging.googleapis.com/trace"] = f"projects/{result.project}/traces/{result.trigger.trace}"
        if result.trigger.span:
            entry["logging.googleapis.com/spanId"] = result.trigger.span
    return entry


def log_line(result: Result) -> str:
    return json.dumps(log_entry(result), separators=(",", ":"), default=str)


def to_text(result: Result) -> str:
    """For a person reading a runbook: one block per target, evidence, fixes."""
    lines = [headline(result), ""]
    trigger = result.trigger
    lines.append(
        f"run {result.run_id}  project {result.project}  as {result.principal or '(unknown)'}  "
        f"trigger {trigger.kind}{' ' + trigger.job if trigger.job else ''}  {result.duration_ms:.0f} ms"
    )
    for outcome in result.outcomes:
        mark = "ok  " if outcome.ok else "FAIL"
        lines.append(f"  {mark} {outcome.target}  {outcome.cause}  {outcome.latency_ms:.0f} ms")
        if outcome.failure is not None:
            f = outcome.failure
            # a failure that never reached Google (no code: credentials, a deadline) says what raised it instead
            said = " ".join(str(part) for part in (f.code, f.status, f.reason) if part) or f.error_type or "-"
            lines.append(f"       error     {said}")
            if f.metadata.get("permission"):
                lines.append(f"       permission {f.metadata['permission']} on {f.metadata.get('resource', '')}")
            for remedy in result.remedies.get(str(outcome.target), []):
                lines.append(f"       fix       {remedy.title}")
                if remedy.command:
                    lines.append(f"                 $ {remedy.command}")
                if remedy.url:
                    lines.append(f"                 {remedy.url}")
    if any(not o.ok for o in result.outcomes):
        lines.append("  evidence")
        for item in result.evidence.items:
            extra = f" (missing permission: {item.missing_permission})" if item.missing_permission else ""
            lines.append(f"    {item.step:15} {item.status:10} {item.summary}{extra}")
    m = result.metrics
    state = "written" if m.written else f"not written: {m.skipped or m.error or 'skipped'}"
    lines.append(f"  metrics  {state} ({m.series} series)")
    if result.error:
        lines.append(f"  canary error: {result.error}")
    return "\n".join(sanitize.text(line) for line in lines) + "\n"
