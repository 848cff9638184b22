"""python -m deploy: put the canary into one project or a thousand, safely re-runnable; or take it out again.

python -m deploy apply    --project P [--project P2 | --projects-file F] --region R --service-account SA [...]
python -m deploy apply    ... --dry-run        # print every command and API call; change nothing
python -m deploy teardown --project P --region R --service-account SA
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any, NoReturn

from .runner import run_all
from .spec import SpecError, make_spec, read_projects_file

MAX_MESSAGE = 400  # an error line quotes at most this much (a value can be megabytes)


class _Parser(argparse.ArgumentParser):
    """argparse that raises SpecError instead of printing its usage and exiting: every input error is one
    `deploy: --flag: …` line."""

    def error(self, message: str) -> NoReturn:
        raise SpecError(_argparse_message(message))

    def parse_args(self, args: Any = None, namespace: Any = None) -> Any:
        """Python 3.11's argparse takes `--flag=--` as an empty list where one value belongs; refuse it like any
        missing value instead of handing a list on."""
        parsed = super().parse_args(args, namespace)
        for action in self._actions:
            value = getattr(parsed, action.dest, None)
            values = value if action.nargs is None and isinstance(action, argparse._AppendAction) else [value]
            if action.nargs is None and action.option_strings and any(isinstance(v, list) for v in values or []):
                self.error(f"argument {action.option_strings[0]}: expected one argument")
        return parsed


def _argparse_message(message: str) -> str:
    """argparse's error text, as `FLAG: what is wrong`."""
    if match := re.match(r"argument ([^:]+?): (.*)\Z", message, re.S):
        flag = match.group(1).split("/")[0]
        return f"{flag}: {match.group(2)}"
    if match := re.match(r"the following arguments are required: (.*)\Z", message, re.S):
        first, *more = match.group(1).split(", ")
        also = f" (also missing: {', '.join(more)})" if more else ""
        return f"{first}: required{also}"
    if match := re.match(r"unrecognized arguments: (.*)\Z", message, re.S):
        first = match.group(1).split(" ")[0]
        if first.startswith("-"):
            return f"{first.split('=')[0]}: not an option of python -m deploy (see --help)"
        return f"command: unexpected extra argument {first!r}"
    if match := re.match(r"ambiguous option: (\S+?)(=.*)? could match (.*)\Z", message, re.S):
        return f"{match.group(1)}: ambiguous; it could be {match.group(3)}"
    return f"arguments: {message}"


def one_line(message: str) -> str:
    """A message as one printable line of at most MAX_MESSAGE characters."""
    flat = "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)
    return flat if len(flat) <= MAX_MESSAGE else flat[: MAX_MESSAGE - 1] + "…"


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m deploy", description=__doc__.splitlines()[0])
    p.add_argument("command", choices=("apply", "teardown"))
    p.add_argument("--project", action="append", default=[], help="a project to deploy into (repeatable)")
    p.add_argument("--projects-file", help="a file with one project id a line (# comments allowed)")
    p.add_argument("--region", required=True, help="region of the function and the Scheduler job, e.g. us-central1")
    p.add_argument(
        "--service-account",
        required=True,
        help="the workload's service account: the function runs as it (required); {project} is replaced by each "
        "project id, e.g. workload@{project}.iam.gserviceaccount.com",
    )
    p.add_argument(
        "--targets",
        default="gemini-2.5-flash-lite@us-central1",
        help="comma-separated MODEL@LOCATION targets (default: %(default)s)",
    )
    p.add_argument("--schedule", default="*/5 * * * *", help="unix-cron schedule (default: every 5 minutes)")
    p.add_argument("--time-zone", default="Etc/UTC")
    p.add_argument(
        "--notification-channel",
        action="append",
        default=[],
        help="an existing notification channel id for the alert policies (repeatable)",
    )
    p.add_argument("--notify-email", help="create (or reuse) an e-mail notification channel for this address")
    p.add_argument("--pubsub", action="store_true", help="trigger through Pub/Sub instead of HTTP")
    p.add_argument(
        "--grant-evidence-roles",
        action="store_true",
        help="also grant the optional evidence roles (roles/logging.privateLogViewer, roles/browser)",
    )
    p.add_argument(
        "--enable-data-access-logs",
        action="store_true",
        help="turn on Data Access audit logs (DATA_READ, DATA_WRITE) for aiplatform.googleapis.com — "
        "billed as log ingestion beyond the free tier; see README",
    )
    p.add_argument(
        "--force-default-service-account",
        action="store_true",
        help="allow the default compute service account as the workload's",
    )
    p.add_argument(
        "--build-service-account",
        help="the account Cloud Build builds the function as (default: the project's default compute account, "
        "Google's default for projects created since July 2024); it is granted roles/cloudbuild.builds.builder "
        "unless it holds it (or editor/owner), and teardown removes only a grant this tool made",
    )
    p.add_argument("--parallel", type=int, default=8, help="projects at once (default: %(default)s)")
    p.add_argument("--dry-run", action="store_true", help="print the plan; change nothing")
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
        projects = list(args.project)
        if args.projects_file is not None:
            projects += read_projects_file(args.projects_file)
        spec = make_spec(
            projects=projects,
            region=args.region,
            service_account=args.service_account,
            targets=args.targets.split(","),
            schedule=args.schedule,
            time_zone=args.time_zone,
            channels=args.notification_channel,
            notify_email=args.notify_email,
            pubsub=args.pubsub,
            evidence_roles=args.grant_evidence_roles,
            data_access_logs=args.enable_data_access_logs,
            force_default_sa=args.force_default_service_account,
            build_service_account=args.build_service_account,
            parallel=args.parallel,
            dry_run=args.dry_run,
        )
    except SpecError as err:
        print(one_line(f"deploy: {err}"), file=sys.stderr)
        return 2
    results = run_all(spec, args.command, out=sys.stdout)
    return 1 if any(r.status == "failed" for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
