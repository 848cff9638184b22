"""The text a person reads in a runbook (`?format=text`), and its headline (the log line's message)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from function import report
from function.audit_entries import Change
from function.causes import Cause, Failure
from function.config import Config, Target
from function.evidence import Evidence
from function.probe import Outcome
from function.remedies import Remedy
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


# The headline, grouping and fixes -----------------------------------------------------------------------------------

SA = "canary-workload@demo-proj.iam.gserviceaccount.com"
OTHER = Target("gemini-2.5-pro", "global")
DENIED = Failure(
    Cause.IAM_PERMISSION_DENIED,
    code=403,
    status="PERMISSION_DENIED",
    reason="IAM_PERMISSION_DENIED",
    metadata={"permission": "aiplatform.endpoints.predict"},
)
GRANT = Remedy(
    "Grant roles/aiplatform.user to the workload's service account",
    f"gcloud projects add-iam-policy-binding demo-proj --member=serviceAccount:{SA} --role=roles/aiplatform.user "
    "--condition=None",
)
TROUBLESHOOT = Remedy("Ask Policy Troubleshooter why", url="https://console.cloud.google.com/iam-admin/troubleshooter")
REMOVED = Change(
    "role_removed",
    "alice@example.com",
    "2026-11-26T09:10:00Z",
    f"roles/aiplatform.user removed from serviceAccount:{SA}",
    role="roles/aiplatform.user",
)


def _run(outcomes: list[Outcome], **fields: Any) -> Result:
    fields.setdefault("principal", SA)
    fields.setdefault("evidence", Evidence())
    return Result(
        run_id="r1",
        started_at=datetime(2026, 11, 26, 9, 10, tzinfo=UTC),
        trigger=Trigger("http"),
        config=Config(targets=tuple(o.target for o in outcomes) or (TARGET,)),
        project="demo-proj",
        outcomes=outcomes,
        **fields,
    )


def _denied(target: Target, failure: Failure = DENIED) -> Outcome:
    return Outcome(target, failure.cause, 10.0, failure=failure)


def _targets(n: int) -> list[Target]:
    return [Target(f"gemini-2.5-flash-{i:02d}", "us-central1") for i in range(n)]


def test_the_headline_names_verdict_cause_principal_and_who_changed_it_when() -> None:
    run = _run([_denied(TARGET)], evidence=Evidence(change=REMOVED))
    line = report.headline(run)
    assert line == (
        f"gemini-canary DENIED: iam_permission_denied (1 target) as {SA}; roles/aiplatform.user removed by "
        "alice@example.com at 2026-11-26T09:10:00Z"
    )
    assert len(line) < 200
    # the same line is the log line's message and the JSON's summary
    assert report.log_entry(run)["message"] == report.to_json(run)["summary"] == line


def test_the_headline_names_the_targets_when_they_fit_and_counts_them_when_not() -> None:
    two = _run([_denied(TARGET), _denied(OTHER)])
    assert report.headline(two) == (
        f"gemini-canary DENIED: iam_permission_denied (gemini-2.5-flash-lite@us-central1, gemini-2.5-pro@global) "
        f"as {SA}"
    )
    many = _run([_denied(t) for t in _targets(16)])
    assert report.headline(many) == f"gemini-canary DENIED: iam_permission_denied (16 targets) as {SA}"


HUGE = "x" * 5000


@pytest.mark.parametrize(
    "run",
    [
        _run([_denied(TARGET, Failure(Cause.UNKNOWN, code=500, message=HUGE))]),
        _run([], error=HUGE),
        _run([_denied(TARGET)], evidence=Evidence(change=Change("deny_policy", HUGE, "2026-11-26T09:10:00Z", HUGE))),
        _run([_denied(TARGET)], principal=f"{HUGE}@demo-proj.iam.gserviceaccount.com"),
        _run([_denied(t, Failure(cause, code=400)) for t, cause in zip(_targets(16), list(Cause)[1:], strict=False)]),
        _run([_denied(TARGET, Failure(Cause.UNKNOWN, code=500, message="\n" * 2000))], error="\x1b" * 3000),
        _run([Outcome(t, Cause.OK, 1.0) for t in _targets(16)], principal=HUGE),
    ],
    ids=["5000-char-message", "5000-char-error", "5000-char-actor", "long-principal", "every-cause", "escapes", "ok"],
)
def test_the_headline_stays_under_200_characters_whatever_the_inputs(run: Result) -> None:
    line = report.headline(run)
    assert len(line) < 200, len(line)
    assert line.startswith(f"gemini-canary {run.verdict.word}: ")
    assert "\n" not in line
    assert report.log_entry(run)["message"] == line
    assert report.to_text(run).splitlines()[0] == line


def test_a_headline_cut_to_fit_ends_with_an_ellipsis_and_keeps_the_causes() -> None:
    run = _run([_denied(TARGET)], evidence=Evidence(change=Change("deny_policy", HUGE, "2026-11-26T09:10:00Z", "x")))
    line = report.headline(run)
    assert (len(line), line[-1]) == (199, "…")
    assert line.startswith(f"gemini-canary DENIED: iam_permission_denied as {SA}; x by xxx")
    # the log line keeps everything: the actor whole in the evidence
    assert report.log_entry(run)["evidence"]["change"]["actor"] == HUGE


def test_two_targets_denied_for_one_reason_print_the_reason_and_the_fix_once() -> None:
    fixes = [GRANT, TROUBLESHOOT]
    on_model = [  # each denied on its own model: one permission line, the resources are in the JSON
        Failure(**{**DENIED.__dict__, "metadata": {**DENIED.metadata, "resource": f"models/{t.model}"}})
        for t in (TARGET, OTHER)
    ]
    run = _run(
        [
            _denied(TARGET, on_model[0]),
            _denied(OTHER, on_model[1]),
            Outcome(Target("gemini-2.5-flash", "global"), Cause.OK, 5.0),
        ],
        remedies={str(TARGET): fixes, str(OTHER): fixes},
        evidence=Evidence(change=REMOVED, predict_granted=False),
    )
    lines = report.to_text(run).splitlines()
    assert lines[2:12] == [
        "iam_permission_denied  gemini-2.5-flash-lite@us-central1, gemini-2.5-pro@global",
        "  gemini-2.5-flash-lite@us-central1  403 PERMISSION_DENIED IAM_PERMISSION_DENIED  10 ms",
        "  gemini-2.5-pro@global  403 PERMISSION_DENIED IAM_PERMISSION_DENIED  10 ms",
        f"  why         {SA} lacks aiplatform.endpoints.predict on demo-proj",
        "  permission  aiplatform.endpoints.predict",
        f"  fix         {GRANT.title}",
        f"    {GRANT.command}",
        f"  also        {TROUBLESHOOT.title} [1]",
        "",
        "ok  gemini-2.5-flash@global  5 ms",
    ]
    assert GRANT.command is not None
    assert sum(GRANT.command in line for line in lines) == 1
    assert lines[-2:] == ["links", f"  [1] {TROUBLESHOOT.url}"]
    # the JSON keeps each target's own remedies and one-line summary
    doc = report.to_json(run)
    assert [len(t.get("remedies", [])) for t in doc["targets"]] == [2, 2, 0]


def test_each_cause_gets_its_own_group_and_primary_fix() -> None:
    enable = Remedy("Enable the Vertex AI API", "gcloud services enable aiplatform.googleapis.com --project=demo-proj")
    disabled = Failure(Cause.API_DISABLED, code=403, status="PERMISSION_DENIED", reason="SERVICE_DISABLED")
    run = _run(
        [_denied(TARGET), _denied(OTHER, disabled)],
        remedies={str(TARGET): [TROUBLESHOOT, GRANT], str(OTHER): [enable]},
    )
    lines = report.to_text(run).splitlines()
    assert [line for line in lines if line and not line.startswith(" ")][:3] == [
        report.headline(run),
        "iam_permission_denied  gemini-2.5-flash-lite@us-central1",
        "api_disabled  gemini-2.5-pro@global",
    ]
    fixes = [line for line in lines if line.startswith("  fix ")]
    assert fixes == [f"  fix         {GRANT.title}", f"  fix         {enable.title}"]  # a command first, then links
    assert f"    {enable.command}" in lines
    assert f"  also        {TROUBLESHOOT.title} [1]" in lines


def test_the_primary_fix_is_one_unwrapped_line_however_long() -> None:
    command = "gcloud projects add-iam-policy-binding demo-proj " + " ".join(f"--flag-{i}=value" for i in range(40))
    run = _run([_denied(TARGET)], remedies={str(TARGET): [Remedy("Grant it", command)]})
    lines = report.to_text(run).splitlines()
    [line] = [line for line in lines if "add-iam-policy-binding" in line]
    assert line == f"    {command}"
    assert len(line) > 500  # never wrapped
    assert line.split()[0] == "gcloud"  # nothing before the command (no prompt sign) to break a paste


def test_links_come_last_numbered_once_each() -> None:
    url = "https://console.cloud.google.com/logs/query;query=" + "a" * 400 + "?project=demo-proj"
    logs = Remedy("See the audit entries in Logs Explorer", url=url)
    run = _run([_denied(TARGET), _denied(OTHER)], remedies={str(TARGET): [GRANT, logs], str(OTHER): [GRANT, logs]})
    lines = report.to_text(run).splitlines()
    assert [line for line in lines if url in line] == [f"  [1] {url}"]
    assert lines[-1] == f"  [1] {url}"
    assert f"  also        {logs.title} [1]" in lines


def test_debug_adds_the_config_and_the_calls_to_the_text() -> None:
    calls = [{"method": "aiplatform.GenerateContent(gemini-2.5-flash-lite@us-central1)", "ms": 3.0, "outcome": "OK"}]
    run = _run([Outcome(TARGET, Cause.OK, 3.0)], calls=calls)
    plain = report.to_text(run)
    debug = report.to_text(run, debug=True)
    assert debug.startswith(plain.rstrip("\n"))
    assert debug.splitlines()[len(plain.splitlines()) :] == [
        "",
        "debug config",
        "  targets                  gemini-2.5-flash-lite@us-central1",
        "  project                  (from Application Default Credentials)",
        "  deadline_seconds         30.0",
        "  concurrency              4",
        "  audit_lookback_seconds   3600.0",
        "  audit_lag_budget_seconds 20.0",
        "  metric_prefix            custom.googleapis.com/gemini_canary",
        "  evidence                 admin_activity, audit_config, data_access, iam, policy_denied",
        "  job                      gemini-canary",
        "  namespace                gemini-canary",
        "  endpoint                 Google (TLS)",
        "debug calls",
        "  aiplatform.GenerateContent(gemini-2.5-flash-lite@us-central1)  OK  3.0 ms",
    ]
