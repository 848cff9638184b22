"""Result → the one structured log line, the JSON response, and the text a person reads in a runbook.

The log line's `message` starts with a stable verdict word that log-based alerts match:
    gemini-canary OK: …        (INFO)     every target answered
    gemini-canary DEGRADED: …  (WARNING)  only transient causes: quota, capacity, unavailable, deadline
    gemini-canary DENIED: …    (ERROR)    a lasting cause: permission, API, billing, VPC-SC, org policy, …
    gemini-canary ERROR: …     (ERROR)    the canary itself failed
The same verdict is in the field `verdict` and the label `canary_verdict`. Nothing here carries a token or the
prompt/response text (the canary never keeps the latter).

The headline (the message, the JSON's `summary`, the text's first line) is under 200 characters whatever came from
outside: the verdict word, the causes and their targets (counted when naming them does not fit), the principal, and
who changed what and when; cut with "…" only when even its briefest form is too long. The log line keeps the rest:
each failing target's own one-line `summary` with its fix, every remedy, the evidence whole.

The text groups the failing targets by cause: each cause once, its primary fix's command alone on a line (nothing
before it but indentation, never wrapped, so it pastes), the other remedies after it, and the console and
documentation links numbered at the very end, kept whole.

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
from .remedies import Remedy
from .run import Result

# "Under 200 characters" (what a person takes in at a glance, and what fits a notification's subject or a console
# row); the log line keeps everything the headline leaves out.
HEADLINE_MAX = 199
MESSAGE_SHOWN = 160  # of an error's message, in a one-line explanation


def explain(result: Result, outcome: Outcome) -> str:
    """One line: what broke, who changed it and when, and the fix (each failing target's `summary` in the JSON)."""
    return sanitize.text(_explain(result, outcome))


def _why(result: Result, outcome: Outcome) -> str:
    """Why the target failed, in words: the IAM case spelled out, else the error's code and reason (or message)."""
    failure = outcome.failure
    if failure is None:
        return "ok"
    permission = failure.metadata.get("permission")
    if failure.cause == Cause.IAM_PERMISSION_DENIED:
        who = result.principal or "the workload's identity"
        if result.evidence.predict_granted:
            return (
                f"{who} holds {permission or 'the permission'} through its roles yet is denied "
                "(a deny policy on the project, a folder or the organization, or a principal access boundary)"
            )
        return f"{who} lacks {permission or 'aiplatform.endpoints.predict'} on {result.project}"
    detail = (result.evidence.policy_denial or {}).get("network_detail", "")
    if failure.cause == Cause.VPC_SC and detail:
        return f"{failure.code} {failure.reason or 'SECURITY_POLICY_VIOLATED'}: {detail}"
    if failure.reason:
        return f"{failure.code} {failure.reason}"
    return f"{failure.code or ''} {failure.message[:MESSAGE_SHOWN]}".strip()


def _explain(result: Result, outcome: Outcome) -> str:
    if outcome.failure is None:
        return f"{outcome.target}: ok ({outcome.latency_ms:.0f} ms)"
    evidence = result.evidence
    parts = [f"{outcome.target}: {outcome.failure.cause}", _why(result, outcome)]
    if evidence.change is not None:
        change = evidence.change
        parts.append(f"{change.detail} by {change.actor} at {change.at}")
    elif evidence.pending:
        parts.append("audit evidence pending")
    first = _primary(result.remedies.get(str(outcome.target), []))
    if first is not None:
        parts.append(f"fix: {first.command or first.url}")
    return "; ".join(parts)


def _primary(fixes: list[Remedy]) -> Remedy | None:
    """The fix to run first: the first with a command (it pastes), else the first."""
    return next((r for r in fixes if r.command), None) or next(iter(fixes), None)


def _groups(result: Result) -> dict[Cause, list[Outcome]]:
    """The failing targets by cause, in the order the causes first appear."""
    groups: dict[Cause, list[Outcome]] = {}
    for outcome in result.outcomes:
        if not outcome.ok:
            groups.setdefault(outcome.cause, []).append(outcome)
    return groups


def _change_short(result: Result) -> str | None:
    """Who changed what and when, as briefly as the headline needs: a removed role is named by the role alone."""
    change = result.evidence.change
    if change is not None:
        what = f"{change.role} removed" if change.kind == "role_removed" and change.role else change.detail
        return f"{what} by {change.actor} at {change.at}"
    return "audit evidence pending" if result.evidence.pending else None


def headline(result: Result) -> str:
    """The verdict at a glance, under HEADLINE_MAX characters whatever the inputs: the verdict word, the cause(s) and
    their targets, the principal, and who changed what and when (when known). The log line's `message` and the
    JSON's `summary`; everything it leaves out is in the rest of the log line."""
    candidates = [sanitize.text(line) for line in _headlines(result)]
    fitting = next((line for line in candidates if len(line) <= HEADLINE_MAX), None)
    return fitting if fitting is not None else sanitize.text(candidates[-1], limit=HEADLINE_MAX)


def _headlines(result: Result) -> list[str]:
    """The headline from the fullest to the briefest; the first that fits is used, and the last is cut to fit."""
    verdict = result.verdict
    prefix = f"gemini-canary {verdict.word}:"
    if verdict == "error":
        return [f"{prefix} {result.error}"]
    who = result.principal or ("ADC identity" if verdict == "healthy" else "the workload's identity")
    if verdict == "healthy":
        n = len(result.outcomes)
        return [f"{prefix} {n}/{n} targets answered in project {result.project} as {who}"]
    groups = _groups(result)
    change = _change_short(result)
    tail = f" as {who}" + (f"; {change}" if change else "")
    named = ", ".join(f"{cause} ({', '.join(str(o.target) for o in group)})" for cause, group in groups.items())
    counted = ", ".join(
        f"{cause} ({len(group)} target{'s' if len(group) > 1 else ''})" for cause, group in groups.items()
    )
    bare = ", ".join(str(cause) for cause in groups)
    return [f"{prefix} {named}{tail}", f"{prefix} {counted}{tail}", f"{prefix} {bare}{tail}"]


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


def to_text(result: Result, debug: bool = False) -> str:
    """For a person reading a runbook: the headline; the failing targets grouped by cause, each cause with its one
    primary fix (the command alone on its line, so it pastes whole) and the other remedies after it; the healthy
    targets; the run, the evidence and the metrics; with `debug`, the effective config and the calls made; and
    last, the console and documentation links the remedies point to, numbered and kept whole."""
    links: list[str] = []

    def ref(url: str | None) -> str:
        if not url:
            return ""
        if url not in links:
            links.append(url)
        return f" [{links.index(url) + 1}]"

    lines = [headline(result), ""]
    for cause, group in _groups(result).items():
        lines.append(f"{cause}  {', '.join(str(o.target) for o in group)}")
        for outcome in group:
            lines.append(f"  {outcome.target}  {_said(outcome)}  {outcome.latency_ms:.0f} ms")
        for why in dict.fromkeys(w for o in group if (w := _why_in_text(result, o))):
            lines.append(f"  why         {why}")
        denied = [o.failure.metadata for o in group if o.failure is not None and o.failure.metadata.get("permission")]
        resources = {d.get("resource", "") for d in denied}
        for permission in dict.fromkeys(d["permission"] for d in denied):
            # the resource when one (a permission denied on each target's own model names each one's: in the JSON)
            on = f" on {next(iter(resources))}" if len(resources) == 1 and next(iter(resources)) else ""
            lines.append(f"  permission  {permission}{on}")
        fixes = list(dict.fromkeys(r for o in group for r in result.remedies.get(str(o.target), [])))
        first = _primary(fixes)
        for remedy in ([first] if first else []) + [r for r in fixes if r is not first]:
            label = "fix" if remedy is first else "also"
            lines.append(f"  {label:10}  {remedy.title}{ref(remedy.url)}")
            if remedy.command:
                lines.append(f"    {remedy.command}")
        lines.append("")
    answered = [o for o in result.outcomes if o.ok]
    for outcome in answered:
        lines.append(f"ok  {outcome.target}  {outcome.latency_ms:.0f} ms")
    if answered:
        lines.append("")
    trigger = result.trigger
    lines.append(
        f"run {result.run_id}  project {result.project}  as {result.principal or '(unknown)'}  "
        f"trigger {trigger.kind}{' ' + trigger.job if trigger.job else ''}  {result.duration_ms:.0f} ms"
    )
    if any(not o.ok for o in result.outcomes):
        change = result.evidence.change
        if change is not None:
            lines.append(f"changed  {change.detail} by {change.actor} at {change.at}")
        lines.append("evidence")
        for item in result.evidence.items:
            extra = f" (missing permission: {item.missing_permission})" if item.missing_permission else ""
            lines.append(f"  {item.step:15} {item.status:10} {item.summary}{extra}")
    m = result.metrics
    state = "written" if m.written else f"not written: {m.skipped or m.error or 'skipped'}"
    lines.append(f"metrics  {state} ({m.series} series)")
    if result.error:
        lines.append(f"canary error: {result.error}")
    if debug:
        lines += ["", "debug config"]
        lines += [f"  {key:24} {_plain(value)}" for key, value in result.config.public().items()]
        lines.append("debug calls")
        lines += [
            f"  {call.get('method', '')}  {call.get('outcome', '')}  {call.get('ms', '')} ms" for call in result.calls
        ]
    if links:
        lines += ["", "links"]
        lines += [f"  [{n}] {url}" for n, url in enumerate(links, 1)]
    return "\n".join(sanitize.text(line) for line in lines) + "\n"


def _why_in_text(result: Result, outcome: Outcome) -> str | None:
    """What the target line's code, status and reason do not already say: the IAM case, or the error's message when
    it has no reason."""
    f = outcome.failure
    if f is None:
        return None
    if f.cause == Cause.IAM_PERMISSION_DENIED:
        return _why(result, outcome)
    return None if f.reason or not f.message.strip() else f.message.strip()[:MESSAGE_SHOWN]


def _said(outcome: Outcome) -> str:
    """A failure's code, status and reason; one that never reached Google (no code: credentials, a deadline) says
    what raised it instead."""
    f = outcome.failure
    if f is None:
        return "ok"
    return " ".join(str(part) for part in (f.code, f.status, f.reason) if part) or f.error_type or "-"


def _plain(value: Any) -> str:
    return ", ".join(str(v) for v in value) if isinstance(value, list | tuple) else str(value)
