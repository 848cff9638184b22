"""`python -m function explain` (function/explain.py through function/cli.py): the three forms an error is logged
in, read from an argument or stdin; what it says for each; input it cannot use, huge, nested or hostile."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from function import cli
from function.explain import MAX_INPUT

RESOURCE = "projects/my-proj-1/locations/us-central1/publishers/google/models/gemini-2.5-flash"
DENIED_TEXT = (
    f"Permission 'aiplatform.endpoints.predict' denied on resource '//aiplatform.googleapis.com/{RESOURCE}' "
    "(or it may not exist)."
)
# What a Python client prints for a gRPC PermissionDenied with its ErrorInfo (the details' protobuf text form)
CLIENT_TRACEBACK = f"""Traceback (most recent call last):
  File "/srv/app.py", line 12, in <module>
    client.generate_content(request)
google.api_core.exceptions.PermissionDenied: 403 {DENIED_TEXT} [reason: "IAM_PERMISSION_DENIED"
domain: "aiplatform.googleapis.com"
metadata {{
  key: "resource"
  value: "{RESOURCE}"
}}
metadata {{
  key: "permission"
  value: "aiplatform.endpoints.predict"
}}
]
"""
REST_BODY = {
    "error": {
        "code": 403,
        "message": "Vertex AI API has not been used in project my-proj-1 before or it is disabled.",
        "status": "PERMISSION_DENIED",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "SERVICE_DISABLED",
                "domain": "googleapis.com",
                "metadata": {"consumer": "projects/my-proj-1", "service": "aiplatform.googleapis.com"},
            }
        ],
    }
}
RPC_STATUS = {
    "code": 9,  # FAILED_PRECONDITION
    "message": "This API method requires billing to be enabled.",
    "details": [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "BILLING_DISABLED",
            "domain": "googleapis.com",
            "metadata": {"consumer": "projects/my-proj-1"},
        }
    ],
}


def _explain(*args: str, stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["explain", *args], stdin=io.StringIO(stdin), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_a_python_clients_traceback_from_stdin() -> None:
    code, out, err = _explain("--format", "text", stdin=CLIENT_TRACEBACK)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "cause      iam_permission_denied (lasting: it stays until someone changes something)"
    assert lines[1].startswith("means      The identity the workload calls as is refused")
    assert lines[2] == "error      403 PERMISSION_DENIED IAM_PERMISSION_DENIED aiplatform.googleapis.com"
    assert f"permission aiplatform.endpoints.predict on {RESOURCE}" in lines
    assert (
        "             $ gcloud projects add-iam-policy-binding my-proj-1 --member=serviceAccount:SERVICE_ACCOUNT_EMAIL "
        "--role=roles/aiplatform.user --condition=None" in lines
    )
    assert lines[-1].startswith("note       the error did not name the principal")


def test_the_exception_line_alone_and_a_principal_given() -> None:
    line = f"google.api_core.exceptions.PermissionDenied: 403 {DENIED_TEXT}"
    code, out, _ = _explain(line, "--principal", "sa@my-proj-1.iam.gserviceaccount.com", "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["cause"] == "iam_permission_denied"
    assert (doc["project"], doc["target"]) == ("my-proj-1", "gemini-2.5-flash@us-central1")
    assert doc["error"]["metadata"]["permission"] == "aiplatform.endpoints.predict"
    assert "--member=serviceAccount:sa@my-proj-1.iam.gserviceaccount.com" in doc["remedies"][0]["command"]


def test_a_rest_error_body() -> None:
    code, out, _ = _explain(json.dumps(REST_BODY), "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["cause"] == "api_disabled"
    assert doc["error"]["status"] == "PERMISSION_DENIED"
    assert doc["remedies"][0]["command"] == "gcloud services enable aiplatform.googleapis.com --project=my-proj-1"


def test_a_google_rpc_status() -> None:
    code, out, _ = _explain("--format", "text", stdin=json.dumps(RPC_STATUS))
    assert code == 0
    assert out.startswith("cause      billing_disabled (lasting")
    assert "error      400 FAILED_PRECONDITION BILLING_DISABLED googleapis.com" in out.splitlines()
    assert "note" not in out  # nothing in the fixes needed a name the error did not give


def test_a_transient_status_says_it_passes() -> None:
    status = {"code": 8, "message": "Resource exhausted. Please try again later."}
    code, out, _ = _explain(json.dumps(status), "--format", "text")
    assert code == 0
    assert out.startswith("cause      capacity (passing: it may clear by itself)")


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("", "no input; expected an error as a workload logs it"),
        ("hello world", "no error found in that text; expected"),
        ('{"code": 403', "the input starts like JSON but is not"),
        ('{"name": "x"}', "that JSON has no error code and message"),
        ('{"code": 0, "message": ""}', "that status is OK (code 0): there is no error to explain"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ("x" * (MAX_INPUT + 1), f"the input is over {MAX_INPUT} characters"),
    ],
    ids=["empty", "prose", "broken-json", "other-json", "ok-status", "nested", "huge"],
)
def test_input_it_cannot_use_gets_one_line_saying_what_was_expected(given: str, said: str) -> None:
    code, out, err = _explain(stdin=given)
    assert (code, out) == (cli.EXIT_USAGE, "")
    [line] = err.splitlines()
    assert line.startswith("python -m function explain: ")
    assert said in line


def test_control_characters_and_tokens_never_reach_the_terminal() -> None:
    hostile = {
        "error": {
            "code": 403,
            "message": "denied\x1b[2J\nFORGED LINE\u202e Bearer ya29.secret-token-value",
            "status": "PERMISSION_DENIED",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "EVIL\x07", "domain": "x"}],
        }
    }
    code, out, _ = _explain(json.dumps(hostile), "--format", "text")
    assert code == 0
    assert not {"\x1b", "\u202e", "\x07"} & set(out)
    assert "ya29.secret" not in out
    assert not any(line.startswith("FORGED") for line in out.splitlines())
    assert "denied\\x1b[2J\\nFORGED LINE\\u202e Bearer [redacted]" in out


def test_ctrl_c_ends_with_130_and_one_line() -> None:
    class Interrupted(io.StringIO):
        def read(self, *args: Any) -> str:
            raise KeyboardInterrupt

    err = io.StringIO()
    assert cli.main(["explain"], stdin=Interrupted(), out=io.StringIO(), err=err) == cli.EXIT_INTERRUPTED
    assert err.getvalue() == "interrupted\n"


def test_help_documents_the_exit_statuses_and_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["probe", "--help"])
    assert done.value.code == 0
    shown = capsys.readouterr().out
    for line in ("  0    healthy", "  1    the canary itself failed", "  2    Gemini is failing", "examples:"):
        assert line in shown
    assert "--impersonate-service-account SA_EMAIL" in shown
    assert "--write-metrics" in shown


def test_bad_arguments_exit_64_naming_the_argument(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["probe", "--impersonate-service-account", "me@example.com"])
    assert done.value.code == cli.EXIT_USAGE
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith("python -m function probe: error: argument --impersonate-service-account: 'me@example.com'")
