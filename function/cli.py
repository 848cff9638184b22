"""The canary from a terminal, a runbook or a Cloud Run job: `python -m function probe`, `explain` and `job`.

`probe` runs the deployed code path once (run.execute, the same harness, classification, evidence and remedies as
the function) as Application Default Credentials, or as a service account it impersonates through the IAM
Credentials API (google.auth's impersonated credentials, as gcloud's --impersonate-service-account does). Unlike
the deployed function it writes no metrics unless asked, so a probe from a runbook never opens or closes an incident.
`explain` reads an error a workload logged and prints its cause and fixes without calling anything (explain.py).
`job` is the container command of the canary deployed as a Cloud Run job: one execution is one scheduled run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from typing import IO, Any, NoReturn

from google.auth import impersonated_credentials

from . import config as _config
from . import explain as _explain
from . import report, run
from .causes import Cause
from .clients import SCOPES, Clients
from .config import Config, ConfigError
from .metrics import MetricsReport
from .trigger import Trigger
from .verdict import Verdict

EXIT_HEALTHY = 0
EXIT_CANARY_FAILED = 1
EXIT_GEMINI_FAILING = 2
EXIT_USAGE = 64  # bad arguments or unreadable input (sysexits.h EX_USAGE), kept apart from the verdicts
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C

EXIT_BY_VERDICT = {
    Verdict.HEALTHY: EXIT_HEALTHY,
    Verdict.ERROR: EXIT_CANARY_FAILED,
    Verdict.DEGRADED: EXIT_GEMINI_FAILING,
    Verdict.DENIED: EXIT_GEMINI_FAILING,
}

EXIT_STATUSES = """exit status:
  0    healthy: every target answered
  1    the canary itself failed (it could not learn its project, or failed in a way it cannot classify); for a
       probe, also: no credentials to call with (yours, or the impersonated account's), said in one line on stderr
  2    Gemini is failing: denied (a lasting cause) or degraded (a passing one); the output says why
  64   bad arguments
  130  interrupted (Ctrl-C)"""

PROBE_EXAMPLES = """examples:
  # as Application Default Credentials (gcloud auth application-default login), in the project ADC reports
  python -m function probe --project my-project

  # as the workload's service account (needs roles/iam.serviceAccountTokenCreator on it)
  python -m function probe --project my-project \\
      --impersonate-service-account gemini-canary@my-project.iam.gserviceaccount.com

  # two targets, no evidence gathering, JSON for a script
  python -m function probe --targets gemini-2.5-flash@us-central1,gemini-2.5-pro@global --evidence off --format json
"""

EXPLAIN_EXAMPLES = """examples:
  python -m function explain '{"error": {"code": 403, "status": "PERMISSION_DENIED", "message": "..."}}'
  kubectl logs my-workload | tail -n 20 | python -m function explain
  python -m function explain --project my-project < error.txt

exit status:
  0    explained (whatever the cause)
  64   the input is none of the forms read, or bad arguments
  130  interrupted (Ctrl-C)"""

_SERVICE_ACCOUNT = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z0-9][a-z0-9.\-]{0,200}\.gserviceaccount\.com\Z")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+\-]{1,128}@[A-Za-z0-9.\-]{1,255}\Z")
# the CANARY_* variable each probe option stands for, to name the option in a config error
_OPTION_OF = {"CANARY_PROJECT": "--project", "CANARY_TARGETS": "--targets", "CANARY_EVIDENCE": "--evidence"}


class _Parser(argparse.ArgumentParser):
    """argparse's usage line and one error line, with EXIT_USAGE (2 means Gemini is failing here)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _service_account(value: str) -> str:
    if not _SERVICE_ACCOUNT.match(value):
        raise argparse.ArgumentTypeError(
            f"{value[:80]!r} is not a service account e-mail (NAME@PROJECT.iam.gserviceaccount.com)"
        )
    return value


def _email(value: str) -> str:
    if not _EMAIL.match(value):
        raise argparse.ArgumentTypeError(f"{value[:80]!r} is not an e-mail address")
    return value


def _project(value: str) -> str:
    if not _config.PROJECT_ID.match(value):
        raise argparse.ArgumentTypeError(
            f"{value[:80]!r} is not a project id (6-30 lower-case letters, digits and hyphens)"
        )
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m function",
        description="The Gemini access canary from a terminal: probe a project now, or explain an error.",
        epilog="Run `python -m function COMMAND --help` for a command's options and examples.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    probe = commands.add_parser(
        "probe",
        help="run the canary once, now, and print its verdict",
        description="Run the deployed canary's code path once: probe each target, classify a failure, gather the "
        "evidence and print the fixes. Writes no metrics unless --write-metrics is given, so a probe never opens "
        "or closes an incident.",
        epilog=f"{PROBE_EXAMPLES}\n{EXIT_STATUSES}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    probe.add_argument("--project", type=_project, help="project to probe (default: the project ADC reports)")
    probe.add_argument(
        "--targets",
        metavar="MODEL@LOCATION[,...]",
        help=f"targets to probe (default: {_config.DEFAULT_TARGETS})",
    )
    probe.add_argument(
        "--impersonate-service-account",
        metavar="SA_EMAIL",
        type=_service_account,
        help="call as this service account, through the IAM Credentials API (as gcloud does); your ADC identity "
        "needs roles/iam.serviceAccountTokenCreator on it",
    )
    probe.add_argument(
        "--evidence", choices=("on", "off"), default="on", help="gather evidence on a failure (default: on)"
    )
    probe.add_argument(
        "--format",
        choices=("text", "json"),
        help="output format (default: text on a terminal, json otherwise)",
    )
    probe.add_argument("--debug", action="store_true", help="add the effective config and every call made")
    probe.add_argument(
        "--write-metrics",
        action="store_true",
        help="write the run's metrics to Cloud Monitoring as a scheduled run does (default: off)",
    )
    commands.add_parser(
        "job",
        help="one execution of the canary as a Cloud Run job (its container's command)",
        description="Run the canary once exactly as a scheduled run of the deployed function does: configured by "
        "the CANARY_* environment variables, metrics written, the structured log line on stdout. The exit status is "
        "the job execution's: Cloud Run records a task that exits non-zero as failed (run the job with "
        "--max-retries 0, so a denial is not run again and counted twice).",
        epilog=EXIT_STATUSES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    explain = commands.add_parser(
        "explain",
        help="explain an error a workload logged, without calling Google",
        description="Print the cause, what it means and the fixes of an error a workload logged: a google.rpc.Status "
        'JSON, a REST error body ({"error": {...}}), or the exception text a Python client prints (a whole '
        "traceback will do). Reads the argument, or standard input when there is none. Nothing is called.",
        epilog=EXPLAIN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    explain.add_argument("error", nargs="?", help="the error text (default: read standard input)")
    explain.add_argument("--project", type=_project, help="the project, when the error does not name it")
    explain.add_argument("--principal", type=_email, help="the identity the workload calls as, for the fix commands")
    explain.add_argument(
        "--format", choices=("text", "json"), help="output format (default: text on a terminal, json otherwise)"
    )
    return parser


class ImpersonatingClients(Clients):
    """The canary's clients, calling as `target`: ADC's identity asks the IAM Credentials API for the target's
    access tokens (generateAccessToken), refreshed as they expire."""

    def __init__(self, config: Config, target: str) -> None:
        super().__init__(config)
        self._target = target
        self._impersonated: Any = None

    def credentials(self) -> Any:
        if self._impersonated is None:
            source = super().credentials()
            with self._lock:
                if self._impersonated is None:
                    self._impersonated = impersonated_credentials.Credentials(
                        source_credentials=source, target_principal=self._target, target_scopes=SCOPES
                    )
                    self._credentials = self._impersonated
        return self._impersonated


class NoMetrics:
    """Stands in for the metrics writer: a probe from a terminal writes nothing unless asked."""

    def write(self, *args: Any, **kwargs: Any) -> MetricsReport:
        return MetricsReport(skipped="a probe from the command line writes none unless --write-metrics is given")


def _format(chosen: str | None, out: IO[str]) -> str:
    if chosen:
        return chosen
    return "text" if out.isatty() else "json"


def _config_for(args: argparse.Namespace, environ: Mapping[str, str]) -> Config:
    env = dict(environ)
    if args.project:
        env["CANARY_PROJECT"] = args.project
    if args.targets is not None:
        env["CANARY_TARGETS"] = args.targets
    env["CANARY_EVIDENCE"] = "all" if args.evidence == "on" else "none"
    return _config.load(env)


def probe(args: argparse.Namespace, environ: Mapping[str, str], out: IO[str], err: IO[str]) -> int:
    try:
        config = _config_for(args, environ)
    except ConfigError as error:
        text = str(error)
        name = text.partition(":")[0]
        if name in _OPTION_OF and name != "CANARY_EVIDENCE":
            text = _OPTION_OF[name] + text[len(name) :]
        err.write(f"python -m function probe: error: {text}\n")
        return EXIT_USAGE
    instance = run.Instance(config)
    if args.impersonate_service_account:
        instance.clients = ImpersonatingClients(config, args.impersonate_service_account)
    if not args.write_metrics:
        instance.writer = NoMetrics()  # type: ignore[assignment]
    result = run.execute(instance, Trigger(kind="http"), list(config.targets))
    own = _own_credentials_failed(result, args.impersonate_service_account)
    if own:
        # Not Gemini's answer: the probe had nothing to call with. One line, and the fix, before anything else.
        err.write(f"python -m function probe: {own}\n")
        err.flush()
    if _format(args.format, out) == "json":
        out.write(json.dumps(report.to_json(result, args.debug), indent=2, default=str) + "\n")
    elif not own or args.debug:  # the workload-side fixes of a credentials cause would mislead a person here
        out.write(report.to_text(result, args.debug))
    out.flush()
    return EXIT_CANARY_FAILED if own else EXIT_BY_VERDICT[result.verdict]


def _own_credentials_failed(result: run.Result, target: str | None) -> str:
    """The line to print when every failing target failed for the probe's own credentials (the operator's
    Application Default Credentials, or the impersonation through them), "" otherwise. Deployed, that cause is the
    workload's; run from a terminal it is the operator's, and says nothing about Gemini."""
    failed = [o for o in result.outcomes if not o.ok]
    if not failed or any(o.cause != Cause.CREDENTIALS for o in failed):
        return ""
    failure = failed[0].failure
    said = " ".join((failure.message if failure else "").split())[:200]
    kind = failure.error_type if failure else ""
    if kind == "DefaultCredentialsError":
        return (
            "no Application Default Credentials on this machine: run `gcloud auth application-default login` (or set "
            "GOOGLE_APPLICATION_CREDENTIALS), then probe again; nothing was asked of Gemini"
        )
    if target and "getAccessToken" in said:
        return (
            f"your credentials may not act as {target} (iam.serviceAccounts.getAccessToken): grant yourself "
            f"roles/iam.serviceAccountTokenCreator on it: gcloud iam service-accounts add-iam-policy-binding {target} "
            f"--member=user:YOUR_EMAIL --role=roles/iam.serviceAccountTokenCreator; nothing was asked of Gemini"
        )
    who = f"as {target}" if target else "as your Application Default Credentials"
    return f"could not get credentials to call {who}: {said or kind or 'no detail'}; nothing was asked of Gemini"


def explain(args: argparse.Namespace, stdin: IO[str], out: IO[str], err: IO[str]) -> int:
    raw = args.error if args.error is not None else stdin.read(_explain.MAX_INPUT + 1)
    try:
        found = _explain.explain(raw, args.project, args.principal)
    except _explain.Unreadable as error:
        err.write(f"python -m function explain: {error}\n")
        return EXIT_USAGE
    if _format(args.format, out) == "json":
        out.write(json.dumps(found.to_json(), indent=2) + "\n")
    else:
        out.write(found.to_text())
    out.flush()
    return EXIT_HEALTHY


def job(environ: Mapping[str, str], out: IO[str], err: IO[str]) -> int:
    """One Cloud Run job execution: the deployed function's run (run.execute with its own metrics writer), triggered
    by the job (CLOUD_RUN_JOB and CLOUD_RUN_EXECUTION, which Cloud Run sets in every task), reported by the one
    structured log line Cloud Logging parses from stdout, and the verdict as the exit status."""
    try:
        config = _config.load(environ)
    except ConfigError as error:
        err.write(f"gemini-canary cannot start: {error}\n")
        return EXIT_CANARY_FAILED
    instance = run.Instance(config)
    started = Trigger(kind="job", job=environ.get("CLOUD_RUN_JOB"), execution=environ.get("CLOUD_RUN_EXECUTION"))
    result = run.execute(instance, started, list(config.targets))
    out.write(report.log_line(result) + "\n")
    out.flush()
    return EXIT_BY_VERDICT[result.verdict]


def main(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    stdin: IO[str] | None = None,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
) -> int:
    """Runs one command; returns its exit status (EXIT_INTERRUPTED after Ctrl-C, with one line on stderr)."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        args = build_parser().parse_args(argv)
        if args.command == "probe":
            return probe(args, os.environ if environ is None else environ, out, err)
        if args.command == "job":
            return job(os.environ if environ is None else environ, out, err)
        return explain(args, stdin or sys.stdin, out, err)
    except KeyboardInterrupt:
        err.write("interrupted\n")
        err.flush()
        return EXIT_INTERRUPTED
