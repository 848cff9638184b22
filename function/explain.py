"""`python -m function explain`: the cause, meaning and fixes of an error a workload logged, without calling Google.

Three forms are read, as an on-call engineer finds them:

    a google.rpc.Status JSON        {"code": 7, "message": "...", "details": [{"@type": "...ErrorInfo", ...}]}
    a REST error body               {"error": {"code": 403, "status": "PERMISSION_DENIED", "message": ..., ...}}
                                    (also streamGenerateContent's [{"error": {...}}])
    a Python client's exception     google.api_core.exceptions.PermissionDenied: 403 Permission '…' denied on …
                                    [reason: "IAM_PERMISSION_DENIED" domain: "…" metadata { key: … value: … }]
                                    (the last such line of a traceback; or gRPC's `status = StatusCode.X` with
                                    `details = "…"`)

Where each form comes from: docs/google-behaviour.md, "Error texts a workload logs". What is read becomes the
google-api-core exception the client would have raised, and goes through the canary's own
classifier (causes.classify) and remedy table (remedies.remedies): one classification, whichever way the error came.
Input is capped (MAX_INPUT), JSON nesting bounded, and every string shown passes through sanitize.text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import grpc
from google.api_core import exceptions as core

from . import sanitize
from .causes import Cause, Failure, classify
from .config import PROJECT_ID, Target
from .evidence import Evidence
from .probe import Outcome
from .remedies import UNKNOWN_PRINCIPAL, Remedy, remedies

MAX_INPUT = 256 * 1024  # characters: a whole traceback fits; a log file does not belong here
PLACEHOLDER_PROJECT = "PROJECT_ID"
PLACEHOLDER_TARGET = Target("MODEL", "LOCATION")

EXPECTED = (
    'expected an error as a workload logs it: a google.rpc.Status JSON ({"code": 7, "message": ...}), a REST '
    'error body ({"error": {"code": 403, ...}}), or a Python client\'s exception text '
    "(google.api_core.exceptions.PermissionDenied: 403 ...)"
)

# What each cause means for the workload, in one or two sentences (the README's cause table says more).
MEANINGS: dict[Cause, str] = {
    Cause.IAM_PERMISSION_DENIED: "The identity the workload calls as is refused a permission Gemini needs "
    "(aiplatform.endpoints.predict): a role was removed, never granted, or a deny policy or principal access "
    "boundary blocks it.",
    Cause.API_DISABLED: "The Vertex AI API (aiplatform.googleapis.com) is not enabled in the project the call is "
    "billed to, or was disabled.",
    Cause.BILLING_DISABLED: "The project has no active billing account, so Google refuses paid APIs such as Gemini.",
    Cause.VPC_SC: "A VPC Service Controls perimeter refused the call: the caller or the network it comes from is "
    "outside the perimeter around the project. Its Policy Denied audit entry names the reason and the network "
    "(requestMetadata.callerNetwork, absent for a call from outside any VPC network): a perimeter whose ingress rules "
    "or access levels depend on the source network treats a call from Cloud Run's default egress differently from "
    "the same identity's call from its VPC network.",
    Cause.ORG_POLICY: "An organization policy constraint (for example the allowed models, or the services a project "
    "may use) forbids this call.",
    Cause.WRONG_PROJECT: "The call names a project that does not exist or that the caller cannot see: a wrong "
    "project id, or an identity from another project.",
    Cause.MODEL_UNAVAILABLE: "The model is not available to this project in this location: a wrong or retired "
    "model id, or one not offered in that region.",
    Cause.QUOTA: "A quota the project owns was exceeded (requests per minute, tokens, or provisioned throughput).",
    Cause.CAPACITY: "Google's shared capacity for the model was exhausted for a moment (a 429 naming no quota of "
    "the project); it passes by itself, retries with backoff help.",
    Cause.CREDENTIALS: "The call's credentials were missing, expired or refused (or lacked the cloud-platform "
    "scope): the request never got as far as a permission check.",
    Cause.UNAVAILABLE: "Google's service was unavailable or failed inside for a moment; it passes by itself.",
    Cause.DEADLINE: "The call did not finish within its deadline: slow answers, a network problem, or a deadline "
    "set too short.",
    Cause.UNKNOWN: "The error names no cause the canary knows; read the reason and message below as Google gave them.",
}

_RESOURCE = re.compile(
    r"projects/([a-z][a-z0-9-]{4,28}[a-z0-9])/locations/([a-z0-9-]{1,40})/publishers/google/models/"
    r"([a-z0-9][a-z0-9.\-]{0,62})"
)
_PROJECT = re.compile(r"projects/([a-z][a-z0-9-]{4,28}[a-z0-9])\b")
_PERMISSION_TEXT = re.compile(r"Permission '([a-zA-Z0-9.]{1,200})' denied on resource '([^'\s]{1,500})'")
# A Python client's exception line: `google.api_core.exceptions.PermissionDenied: 403 …` or just `403 …`.
_EXCEPTION_LINE = re.compile(r"^\s*(?:(?:[A-Za-z_][\w]*\.)*(?P<cls>[A-Z]\w{0,60}): )?(?P<code>[1-5][0-9]{2}) ", re.M)
_DETAILS_START = re.compile(r"\s\[(?=\s*[a-z_]+(?: \{|: ))")
_QUOTED = r'"((?:[^"\\]|\\.){0,2000})"'
_REASON = re.compile(r'\breason: "([A-Z0-9_]{1,100})"')
_DOMAIN = re.compile(r'\bdomain: "([a-z0-9.\-]{1,200})"')
_METADATA = re.compile(r"metadata \{\s*key: " + _QUOTED + r"\s*value: " + _QUOTED + r"\s*\}")
_LINK = re.compile(r"links \{\s*description: " + _QUOTED + r"\s*url: " + _QUOTED + r"\s*\}")
_GRPC_STATUS = re.compile(r"status = StatusCode\.([A-Z_]{1,40})")
_GRPC_DETAILS = re.compile(r'details = "((?:[^"\\]|\\.){0,4000})"')
_STATUS_NAME = re.compile(r"[A-Z_]{1,40}")


class Unreadable(ValueError):
    """The input is none of the forms explain reads; the message says what was expected."""


@dataclass
class Explanation:
    failure: Failure
    target: Target
    project: str
    principal: str | None
    remedies: list[Remedy]

    @property
    def cause(self) -> Cause:
        return self.failure.cause

    def kind(self) -> str:
        if self.cause.is_denial:
            return "lasting: it stays until someone changes something"
        if self.cause.is_transient:
            return "passing: it may clear by itself"
        return "not one the canary can name"

    def to_json(self) -> dict[str, Any]:
        return {
            "cause": str(self.cause),
            "kind": self.kind(),
            "means": MEANINGS[self.cause],
            "target": None if self.target == PLACEHOLDER_TARGET else str(self.target),
            "project": None if self.project == PLACEHOLDER_PROJECT else self.project,
            "error": self.failure.to_json(),
            "remedies": [r.to_json() for r in self.remedies],
        }

    def to_text(self) -> str:
        f = self.failure
        said = " ".join(str(part) for part in (f.code, f.status, f.reason, f.domain) if part) or "-"
        lines = [
            f"cause      {self.cause} ({self.kind()})",
            f"means      {MEANINGS[self.cause]}",
            f"error      {said}",
        ]
        if f.message:
            lines.append(f"message    {sanitize.text(f.message, 300)}")
        if f.metadata.get("permission"):
            lines.append(f"permission {f.metadata['permission']} on {f.metadata.get('resource', '')}".rstrip())
        for remedy in self.remedies:
            lines.append(f"fix        {remedy.title}")
            if remedy.command:
                lines.append(f"             $ {remedy.command}")
            if remedy.url:
                lines.append(f"             {remedy.url}")
        shown = " ".join(f"{r.command or ''} {r.url or ''}" for r in self.remedies)
        missing = [
            what
            for what, placeholder in (("the project", PLACEHOLDER_PROJECT), ("the principal", UNKNOWN_PRINCIPAL))
            if placeholder in shown
        ]
        if missing:
            lines.append(
                f"note       the error did not name {' or '.join(missing)}: replace the placeholder, or give "
                "--project / --principal"
            )
        return "\n".join(sanitize.text(line) for line in lines) + "\n"


def _json_error(doc: Any) -> tuple[core.GoogleAPICallError, str | None] | None:
    """A REST error body or a google.rpc.Status as the exception a client raises for it, with the status name a REST
    body states (google-api-core keeps only the HTTP code); None if it is neither."""
    if isinstance(doc, list):  # streamGenerateContent's [{"error": {...}}]
        doc = next((item for item in doc if isinstance(item, dict)), None)
    if not isinstance(doc, dict):
        return None
    body: dict[str, Any] = doc["error"] if isinstance(doc.get("error"), dict) else doc
    code = body.get("code")
    message = body.get("message")
    if not isinstance(code, int) or isinstance(code, bool) or not isinstance(message, str | type(None)):
        return None
    raw_details = body.get("details")
    details = [d for d in raw_details if isinstance(d, dict)] if isinstance(raw_details, list) else []
    if body is doc and 0 <= code <= 16:  # google.rpc.Status: a google.rpc.Code
        if code == 0:
            raise Unreadable("that status is OK (code 0): there is no error to explain")
        return core.from_grpc_status(code, message or "", details=details), None
    if 100 <= code <= 599:  # an HTTP status
        status = body.get("status")
        named = status if isinstance(status, str) and _STATUS_NAME.fullmatch(status) else None
        return core.from_http_status(code, message or "", details=details), named
    return None


def _unquote(value: str) -> str:
    """A protobuf text-format string's escapes (\\" and \\\\), as far as they matter for reading."""
    return re.sub(r"\\(.)", r"\1", value)


def _text_error(text: str) -> core.GoogleAPICallError | None:
    """A Python client's printed exception (the last such line of a traceback), or gRPC's _InactiveRpcError text."""
    matches = list(_EXCEPTION_LINE.finditer(text))
    if matches:
        last = matches[-1]
        code = int(last.group("code"))
        rest = text[last.end() :]
        split = _DETAILS_START.search(rest)
        message, details_text = (rest[: split.start()], rest[split.end() :]) if split else (rest, "")
        message = message.strip().splitlines()[0] if message.strip() else ""
        details: list[dict[str, Any]] = []
        reason = _REASON.search(details_text)
        if reason:
            domain = _DOMAIN.search(details_text)
            details.append(
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": reason.group(1),
                    "domain": domain.group(1) if domain else "",
                    "metadata": {_unquote(k): _unquote(v) for k, v in _METADATA.findall(details_text)},
                }
            )
        links = [{"description": _unquote(d), "url": _unquote(u)} for d, u in _LINK.findall(details_text)]
        if links:
            details.append({"@type": "type.googleapis.com/google.rpc.Help", "links": links})
        return core.from_http_status(code, message, details=details)
    status = _GRPC_STATUS.search(text)
    if status and status.group(1) in grpc.StatusCode.__members__:
        said = _GRPC_DETAILS.search(text)
        return core.from_grpc_status(grpc.StatusCode[status.group(1)], _unquote(said.group(1)) if said else "")
    return None


def parse(raw: str) -> tuple[core.GoogleAPICallError, str | None]:
    """The exception the input stands for (and the status name a REST body states); Unreadable, saying what was
    expected, when it is none of the forms."""
    if len(raw) > MAX_INPUT:
        raise Unreadable(f"the input is over {MAX_INPUT} characters; give the error itself (its last lines)")
    text = raw.strip()
    if not text:
        raise Unreadable(f"no input; {EXPECTED}")
    if text[0] in "[{":
        try:
            doc = json.loads(text)
        except RecursionError:
            raise Unreadable(f"the JSON is nested too deeply to be an error; {EXPECTED}") from None
        except json.JSONDecodeError as error:
            raise Unreadable(
                f"the input starts like JSON but is not ({error.msg}, line {error.lineno}); {EXPECTED}"
            ) from None
        found = _json_error(doc)
        if found is None:
            raise Unreadable(f"that JSON has no error code and message; {EXPECTED}")
        return found
    printed = _text_error(text)
    if printed is None:
        raise Unreadable(f"no error found in that text; {EXPECTED}")
    return printed, None


def explain(raw: str, project: str | None = None, principal: str | None = None) -> Explanation:
    error, status_name = parse(raw)
    failure = classify(error)
    if status_name:
        failure.status = status_name  # what the REST body said, rather than a guess from the HTTP code
    said = f"{failure.message} {' '.join(failure.metadata.values())}"
    named = _PERMISSION_TEXT.search(failure.message)
    if named and "permission" not in failure.metadata:  # the message form, when no ErrorInfo came with it
        failure.metadata = {**failure.metadata, "permission": named.group(1), "resource": named.group(2)}
    resource = _RESOURCE.search(said)
    target = PLACEHOLDER_TARGET
    if resource:
        try:
            target = Target.parse(f"{resource.group(3)}@{resource.group(2)}")
        except ValueError:
            target = PLACEHOLDER_TARGET
    if project is None:
        found = _PROJECT.search(said)
        project = found.group(1) if found and PROJECT_ID.match(found.group(1)) else PLACEHOLDER_PROJECT
    outcome = Outcome(target, failure.cause, 0.0, failure=failure)
    return Explanation(failure, target, project, principal, remedies(outcome, Evidence(), project, principal))
