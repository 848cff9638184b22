"""python -m deploy: put the canary into one project or a thousand, safely re-runnable; see where it runs and what it
last said; call it now; or take it out again.

python -m deploy apply    --project P [--project P2 | --projects-file F] --region R --service-account SA [...]
python -m deploy apply    ... --dry-run        # print every command and API call it would make; change nothing
python -m deploy status   --project P [...] --region R        # deployed? current? the last run's verdict
python -m deploy call     --project P --region R              # run the deployed canary now, print its verdict
python -m deploy teardown --project P --region R --service-account SA
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any, NoReturn

from . import shard
from .call import run_call
from .runner import run_all
from .spec import SpecError, check_targets, make_spec, make_targets, read_projects_file
from .status import run_status

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
        chosen = getattr(self, "subcommands", {}).get(getattr(parsed, "command", None))
        for action in [*self._actions, *(chosen._actions if chosen is not None else [])]:
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


EXIT_CODES = """exit status:
  0  done: every project succeeded (status: every project deployed, its last run recent and healthy;
     call: the canary answered healthy)
  1  at least one project failed or was refused by a preflight check (status: a project is failing, silent or
     not deployed; call: the canary answered, and its verdict is not healthy)
  2  bad input: nothing ran (one line on stderr names the flag)
  3  call only: the canary could not be called (no function, no identity token, no answer)"""

EXAMPLES = {
    "apply": """examples:
  # one project, paging an e-mail address
  python -m deploy apply --project my-proj --region us-central1 \\
      --service-account my-workload@my-proj.iam.gserviceaccount.com --notify-email oncall@example.com
  # what it would do, changing nothing
  python -m deploy apply --project my-proj --region us-central1 \\
      --service-account my-workload@my-proj.iam.gserviceaccount.com --notify-email oncall@example.com --dry-run
  # a fleet, eight projects at a time, the workload's account in each project, a summary for scripts
  python -m deploy apply --projects-file fleet.txt --region us-central1 \\
      --service-account workload@{project}.iam.gserviceaccount.com --notification-channel 1234567 --format json
  # the same fleet with central alerting: the metric policies, channels and dashboard once in ops-proj
  python -m deploy apply --projects-file fleet.txt --region us-central1 --scoping-project ops-proj \\
      --service-account workload@{project}.iam.gserviceaccount.com --notify-email oncall@example.com""",
    "teardown": """examples:
  # exactly what apply created, nothing else
  python -m deploy teardown --project my-proj --region us-central1 \\
      --service-account my-workload@my-proj.iam.gserviceaccount.com
  python -m deploy teardown --projects-file fleet.txt --region us-central1 \\
      --service-account workload@{project}.iam.gserviceaccount.com --dry-run""",
    "status": """examples:
  python -m deploy status --project my-proj --region us-central1
  # from CI: non-zero when any project is failing, silent or not deployed
  python -m deploy status --projects-file fleet.txt --region us-central1 --format json
  # the fleet's state from its scoping project's series (central alerting)
  python -m deploy status --projects-file fleet.txt --region us-central1 --scoping-project ops-proj""",
    "call": """examples:
  python -m deploy call --project my-proj --region us-central1
  python -m deploy call --project my-proj --region us-central1 --targets gemini-2.5-pro@global --format json""",
}

SUMMARIES = {
    "apply": "deploy the canary (or bring it up to date) in each project",
    "teardown": "remove what apply created, and nothing else",
    "status": "whether the canary is deployed and current, and what its last run said",
    "call": "run the deployed canary now with an identity token for its URL and print its verdict",
}


def _command_parser(sub: Any, name: str) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        name,
        help=SUMMARIES[name],
        description=f"python -m deploy {name}: {SUMMARIES[name]}.",
        epilog=f"{EXAMPLES[name]}\n\n{EXIT_CODES}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return p


def _where(p: argparse.ArgumentParser, *, fleet: bool = True) -> None:
    if fleet:
        p.add_argument("--project", action="append", default=[], help="a project (repeatable)")
        p.add_argument("--projects-file", help="a file with one project id a line (# comments allowed)")
        p.add_argument(
            "--shard",
            help="K/N: only the projects of shard K of N (a stable hash of each project id), so N parallel builds "
            "can each take one shard of a large fleet",
        )
        p.add_argument(
            "--scoping-project",
            help="central alerting: the project whose metrics scope holds the fleet and that carries the alert "
            "policies, channels and dashboard once (default: each project has its own)",
        )
    else:
        p.add_argument("--project", required=True, help="the project the canary is deployed in")
    p.add_argument("--region", required=True, help="region of the function and the Scheduler job, e.g. us-central1")


def _workload(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--service-account",
        required=True,
        help="the workload's service account: the function runs as it (required); {project} is replaced by each "
        "project id, e.g. workload@{project}.iam.gserviceaccount.com",
    )


def _fleet_options(p: argparse.ArgumentParser, *, dry_run: bool) -> None:
    p.add_argument("--parallel", type=int, default=8, help="projects at once (default: %(default)s)")
    p.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="the summary on stdout: a table, or one JSON document (default: %(default)s); progress goes to stderr",
    )
    if dry_run:
        p.add_argument("--dry-run", action="store_true", help="print what it would do; change nothing")


def parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m deploy",
        description=__doc__.splitlines()[0] + " " + __doc__.splitlines()[1],
        epilog="`python -m deploy COMMAND --help` shows a command's flags and examples.\n\n" + EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="command", parser_class=_Parser)

    apply = _command_parser(sub, "apply")
    _where(apply)
    _workload(apply)
    apply.add_argument(
        "--targets",
        default="gemini-2.5-flash-lite@us-central1",
        help="comma-separated MODEL@LOCATION targets (default: %(default)s)",
    )
    apply.add_argument("--schedule", default="*/5 * * * *", help="unix-cron schedule (default: every 5 minutes)")
    apply.add_argument("--time-zone", default="Etc/UTC")
    apply.add_argument(
        "--notification-channel",
        action="append",
        default=[],
        help="an existing notification channel id for the alert policies (repeatable)",
    )
    apply.add_argument("--notify-email", help="create (or reuse) an e-mail notification channel for this address")
    apply.add_argument(
        "--no-notifications",
        action="store_true",
        help="create the alert policies without any notification channel (they open incidents, nobody is told); "
        "without a channel, apply refuses unless this is given",
    )
    apply.add_argument(
        "--kind",
        choices=("function", "job"),
        default="function",
        help="function: a gen2 Cloud Function Scheduler calls over HTTP (default); job: a Cloud Run job Scheduler "
        "starts through the Cloud Run Admin API (no ingress at all; each execution's exit status is its verdict)",
    )
    apply.add_argument("--pubsub", action="store_true", help="trigger through Pub/Sub instead of HTTP (function only)")
    apply.add_argument(
        "--network",
        help="Direct VPC egress: the workload's VPC network, so the canary's calls to Google leave as the "
        "workload's do (matters for VPC Service Controls rules on the source network; see README)",
    )
    apply.add_argument("--subnet", help="Direct VPC egress: the subnet in --region (with or instead of --network)")
    apply.add_argument(
        "--vpc-egress",
        help="with --network/--subnet: all-traffic (default; Google API calls go through the network) or "
        "private-ranges-only (they do not)",
    )
    apply.add_argument(
        "--grant-evidence-roles",
        action="store_true",
        help="also grant the optional evidence roles (roles/logging.privateLogViewer, roles/browser)",
    )
    apply.add_argument(
        "--enable-data-access-logs",
        action="store_true",
        help="turn on Data Access audit logs (DATA_READ, DATA_WRITE) for aiplatform.googleapis.com — "
        "billed as log ingestion beyond the free tier; see README",
    )
    apply.add_argument(
        "--force-default-service-account",
        action="store_true",
        help="allow the default compute service account as the workload's",
    )
    apply.add_argument(
        "--build-service-account",
        help="the account Cloud Build builds the function as (default: the project's default compute account, "
        "Google's default for projects created since July 2024); it is granted roles/cloudbuild.builds.builder "
        "unless it holds it (or editor/owner), and teardown removes only a grant this tool made",
    )
    _fleet_options(apply, dry_run=True)

    teardown = _command_parser(sub, "teardown")
    _where(teardown)
    _workload(teardown)
    _fleet_options(teardown, dry_run=True)

    status = _command_parser(sub, "status")
    _where(status)
    _fleet_options(status, dry_run=False)

    call = _command_parser(sub, "call")
    _where(call, fleet=False)
    call.add_argument("--targets", help="comma-separated MODEL@LOCATION targets for this run (default: the function's)")
    call.add_argument(
        "--format", choices=("text", "json"), default="text", help="the canary's answer (default: %(default)s)"
    )
    p.subcommands = sub.choices  # type: ignore[attr-defined]
    return p


def _projects(args: argparse.Namespace) -> list[str]:
    projects = list(args.project)
    if getattr(args, "projects_file", None) is not None:
        projects += read_projects_file(args.projects_file)
    which = shard.parse(getattr(args, "shard", None))
    chosen = shard.select(projects, which)
    if projects and not chosen:
        raise SpecError(f"--shard: shard {args.shard} holds none of the {len(projects)} projects given")
    line = shard.heading(which, len(chosen), len(projects))
    if line is not None:
        print(line, file=sys.stderr, flush=True)
    return chosen


def main(argv: list[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
        if args.command == "status":
            targets = make_targets(
                projects=_projects(args),
                region=args.region,
                parallel=args.parallel,
                scoping_project=args.scoping_project,
            )
            return run_status(targets, fmt=args.format, out=sys.stdout, err=sys.stderr)
        if args.command == "call":
            targets = make_targets(projects=[args.project], region=args.region, parallel=1)
            chosen = check_targets(args.targets.split(",")) if args.targets is not None else None
            return run_call(targets, chosen, fmt=args.format, out=sys.stdout, err=sys.stderr)
        apply = args.command == "apply"
        spec = make_spec(
            projects=_projects(args),
            region=args.region,
            service_account=args.service_account,
            targets=args.targets.split(",") if apply else None,
            schedule=args.schedule if apply else "*/5 * * * *",
            time_zone=args.time_zone if apply else "Etc/UTC",
            channels=args.notification_channel if apply else [],
            notify_email=args.notify_email if apply else None,
            no_notifications=args.no_notifications if apply else None,
            pubsub=apply and args.pubsub,
            evidence_roles=apply and args.grant_evidence_roles,
            data_access_logs=apply and args.enable_data_access_logs,
            force_default_sa=not apply or args.force_default_service_account,  # teardown deploys nothing as it
            build_service_account=args.build_service_account if apply else None,
            parallel=args.parallel,
            dry_run=args.dry_run,
            kind=args.kind if apply else "function",
            network=args.network if apply else None,
            subnet=args.subnet if apply else None,
            vpc_egress=args.vpc_egress if apply else None,
            scoping_project=args.scoping_project,
        )
    except SpecError as err:
        print(one_line(f"deploy: {err}"), file=sys.stderr)
        return 2
    results = run_all(spec, args.command, out=sys.stdout, fmt=args.format, err=sys.stderr)
    return 1 if any(r.status in ("failed", "refused") for r in results) else 0


def interruptible(argv: list[str] | None = None) -> int:
    """main, with Ctrl-C ending in one line and status 130 (a project being changed may be half done: apply is safe
    to run again, it reads before it writes)."""
    try:
        return main(argv)
    except KeyboardInterrupt:
        message = "deploy: interrupted; run the same command again to finish (it changes only what differs)"
        print(message, file=sys.stderr, flush=True)
        sys.stdout.flush()
        # now: the projects' worker threads would otherwise run on to the end of their project before the exit
        os._exit(130)


if __name__ == "__main__":
    raise SystemExit(interruptible())
