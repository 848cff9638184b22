"""What to deploy: the inputs, validated before anything runs. Every value that reaches a gcloud command line or a
resource name is checked against a strict pattern here, and a bad one is refused with a message naming the flag."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from function.config import MAX_TARGETS, ConfigError, Target
from function.config import PROJECT_ID as PROJECT
from function.roles import OPTIONAL, REQUIRED

NAME = "gemini-canary"
INVOKER_ID = "gemini-canary-invoker"
MANAGED_LABEL = ("managed-by", "gemini-canary")
# From the benchmarks (BENCHMARKS.md): peak RSS stays well under 256 MiB on the failure path; a run's deadline is 30 s.
MEMORY = "256Mi"
TIMEOUT_S = 60
ATTEMPT_DEADLINE_S = 90  # Scheduler's attempt deadline must exceed the function's timeout
MAX_INSTANCES = 2
RUNTIME = "python311"

# Every pattern ends in \Z, not $: "$" also matches before a trailing newline.
REGION = re.compile(r"^[a-z]+-[a-z]+[0-9]{1,2}\Z")
SERVICE_ACCOUNT = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z][a-z0-9-]{4,28}[a-z0-9]\.iam\.gserviceaccount\.com\Z")
DEFAULT_COMPUTE_SA = re.compile(r"^[0-9]{6,20}-compute@developer\.gserviceaccount\.com\Z")
BUILD_ACCOUNT = re.compile(f"(?:{SERVICE_ACCOUNT.pattern})|(?:{DEFAULT_COMPUTE_SA.pattern})")
EMAIL = re.compile(r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,180}\.[A-Za-z]{2,24}\Z")
CHANNEL = re.compile(r"^(projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/notificationChannels/)?[0-9]{1,30}\Z")
# One item of a unix-cron field: *, N or N-M, each with an optional /STEP ([0-9], not \d: \d matches any script's
# digits, and int() reads them).
_CRON_ITEM = re.compile(r"^(?:\*|([0-9]{1,2})(?:-([0-9]{1,2}))?)(?:/([0-9]{1,2}))?\Z")
_CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day-of-month", 1, 31), ("month", 1, 12), ("day-of-week", 0, 7))
MAX_CRON_ITEMS = 60  # a field lists at most this many items (a minute field can name every minute)
# The alert policies' timing is derived from the schedule's period (deploy/alerting.py, alert_window_s): it must
# be even, longer than two of a run's whole timeouts (so failures two runs apart never join up, nor two consecutive
# ones fall inside one alert evaluation) and at most an hour.
MIN_PERIOD_S = 180
MAX_PERIOD_S = 3600
MINUTES_A_DAY = 24 * 60
MAX_TARGET_CHARS = 100  # a model id (at most 63) @ a location
MAX_PROJECTS_FILE_BYTES = 16 * 2**20  # 10,000 project ids take 310 KB
TIME_ZONE = re.compile(r"^[A-Za-z_]+(/[A-Za-z_+\-0-9]+){0,2}\Z")
KINDS = ("function", "job")
# Compute Engine resource names (networks, subnetworks): RFC 1035 labels, 1-63 characters (Compute Engine "Naming
# resources"); a Shared VPC network or subnet is named by its path in the host project.
_GCE_NAME = r"[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?"
NETWORK = re.compile(rf"^(?:projects/[a-z][a-z0-9-]{{4,28}}[a-z0-9]/global/networks/)?{_GCE_NAME}\Z")
SUBNET = re.compile(
    rf"^(?:projects/[a-z][a-z0-9-]{{4,28}}[a-z0-9]/regions/[a-z]+-[a-z]+[0-9]{{1,2}}/subnetworks/)?{_GCE_NAME}\Z"
)
# Direct VPC egress: which traffic leaves through the VPC network (gcloud run deploy --vpc-egress; Cloud Run "Direct
# VPC egress with a VPC network"): all-traffic, or private-ranges-only (calls to Google APIs then leave by the
# default path, not the network: docs/google-behaviour.md, "VPC Service Controls by source network").
VPC_EGRESS = ("all-traffic", "private-ranges-only")


class SpecError(ValueError):
    """A bad input; the message names the flag."""


@dataclass(frozen=True)
class Spec:
    projects: tuple[str, ...]
    region: str
    service_account: str
    targets: tuple[str, ...] = ("gemini-2.5-flash-lite@us-central1",)
    schedule: str = "*/5 * * * *"
    time_zone: str = "Etc/UTC"
    channels: tuple[str, ...] = ()
    notify_email: str | None = None
    pubsub: bool = False
    evidence_roles: bool = False
    data_access_logs: bool = False
    force_default_sa: bool = False
    build_service_account: str | None = None  # None: the project's default compute account (see builder())
    parallel: int = 8
    dry_run: bool = False
    source: Path = field(default_factory=lambda: Path(__file__).resolve().parents[1])
    kind: str = "function"  # function (a gen2 Cloud Function called by Scheduler) | job (a Cloud Run job it runs)
    network: str | None = None  # Direct VPC egress: the workload's VPC network …
    subnet: str | None = None  # … and subnet
    vpc_egress: str | None = None  # all-traffic | private-ranges-only (None without a network)
    # Central alerting: the project whose metrics scope holds the fleet and carries the policies, channels and
    # dashboard once (None: every project has its own, the default).
    scoping_project: str | None = None

    @property
    def roles(self) -> tuple[str, ...]:
        return REQUIRED + (OPTIONAL if self.evidence_roles else ())

    def workload(self, project: str) -> str:
        """The workload's service account in a project (`{project}` in --service-account is replaced)."""
        return self.service_account.replace("{project}", project)

    def invoker(self, project: str) -> str:
        return f"{INVOKER_ID}@{project}.iam.gserviceaccount.com"

    def builder(self, project: str, number: str) -> str:
        """The account Cloud Build builds the function as: --build-service-account, else the project's default
        compute account, Google's default build account for projects created since July 2024
        (docs/google-behaviour.md, "Function builds")."""
        if self.build_service_account:
            return self.build_service_account.replace("{project}", project)
        return f"{number}-compute@developer.gserviceaccount.com"

    def schedule_period_s(self) -> int:
        """Seconds between two runs (validate_schedule accepted only evenly spaced schedules)."""
        return schedule_period_s(self.schedule)


def _check(pattern: re.Pattern[str], value: str, flag: str, what: str) -> str:
    if not pattern.match(value):
        raise SpecError(f"{flag}: {value[:100]!r} is not {what}")
    return value


def _expand(field: str, low: int, high: int) -> set[int]:
    """The values a unix-cron field (already checked by validate_schedule) selects between low and high."""
    values: set[int] = set()
    for item in field.split(","):
        match = _CRON_ITEM.match(item)
        if match is None:  # validate_schedule refused it already
            raise SpecError(f"--schedule: {item[:20]!r} is not a unix-cron field item")
        first, last, step = match.groups()
        if first is None:
            start, end = low, high
        else:
            start = int(first)
            end = int(last) if last is not None else high if step else start
        values.update(range(start, end + 1, int(step) if step else 1))
    return {v for v in values if low <= v <= high}


def schedule_period_s(schedule: str) -> int:
    """The even spacing of a schedule's runs, in seconds; SpecError when the runs are unevenly spaced."""
    shown = _short(schedule)
    minute, hour, day, month, weekday = schedule.split()
    if (day, month, weekday) != ("*", "*", "*"):
        raise SpecError(
            f"--schedule: {shown}: the canary runs every day; day-of-month, month and day-of-week must be '*'"
        )
    runs = sorted(h * 60 + m for h in _expand(hour, 0, 23) for m in _expand(minute, 0, 59))
    if not runs:
        raise SpecError(f"--schedule: {shown} never runs")
    gaps = {b - a for a, b in zip(runs, [*runs[1:], runs[0] + MINUTES_A_DAY], strict=True)}
    if len(gaps) != 1:
        raise SpecError(
            f"--schedule: {shown} runs {min(gaps)} to {max(gaps)} minutes apart; the alert policies need "
            "evenly spaced runs (for example */5 or */15, a step that divides 60)"
        )
    return gaps.pop() * 60


def _short(value: str, limit: int = 100) -> str:
    """A value as an error message shows it: quoted and escaped (one line, whatever it holds), at most `limit`
    characters of it."""
    return repr(value[:limit]) + ("…" if len(value) > limit else "")


def _check_cron_field(schedule: str, text: str, name: str, low: int, high: int) -> None:
    shown = _short(schedule)
    items = text.split(",")
    if len(items) > MAX_CRON_ITEMS:
        raise SpecError(f"--schedule: {shown}: the {name} field lists {len(items)} items; allowed: at most 60")
    for item in items:
        match = _CRON_ITEM.match(item)
        if match is None:
            raise SpecError(
                f"--schedule: {shown}: {_short(item, 20)} in the {name} field is not *, N or N-M "
                "(each with an optional /STEP)"
            )
        first, last, step = match.groups()
        for value in (first, last):
            if value is not None and not low <= int(value) <= high:
                raise SpecError(f"--schedule: {shown}: {value} is not a {name}; allowed: {low} to {high}")
        if first is not None and last is not None and int(last) < int(first):
            raise SpecError(f"--schedule: {shown}: the {name} range {first}-{last} runs backwards")
        if step is not None and not 1 <= int(step) <= high - low:
            raise SpecError(f"--schedule: {shown}: the {name} step must be 1-{high - low}, not {step}")


def validate_schedule(schedule: str) -> str:
    """The schedule with its fields separated by single spaces; SpecError for anything else than five fields of
    *, N, N-M and /STEP items within their field's range that run the canary evenly every 3 to 60 minutes."""
    fields = [f for f in schedule.split(" ") if f]  # spaces only: any other whitespace is refused in its field
    if len(fields) != 5:
        raise SpecError(
            f"--schedule: {_short(schedule)} is not a unix-cron schedule of five fields (e.g. '*/5 * * * *')"
        )
    for text, (name, low, high) in zip(fields, _CRON_FIELDS, strict=True):
        _check_cron_field(schedule, text, name, low, high)
    period = schedule_period_s(" ".join(fields))
    if not MIN_PERIOD_S <= period <= MAX_PERIOD_S:
        raise SpecError(
            f"--schedule: {_short(schedule)} runs every {period // 60} minute(s); allowed: every "
            f"{MIN_PERIOD_S // 60} to {MAX_PERIOD_S // 60} minutes (the alert policies' timing is derived from it; "
            "see README)"
        )
    return " ".join(fields)


def _check_account(account: str, force_default_sa: bool) -> None:
    if DEFAULT_COMPUTE_SA.match(account):
        if not force_default_sa:
            raise SpecError(
                f"--service-account: {account} is the default compute service account, which most projects "
                "grant roles/editor; the canary should run as the workload's own service account. Pass "
                "--force-default-service-account if the workload really runs as it."
            )
        return
    _check(
        SERVICE_ACCOUNT,
        account,
        "--service-account",
        "a service account e-mail (NAME@PROJECT.iam.gserviceaccount.com; {project} stands for each project)",
    )


def make_spec(
    *,
    projects: list[str],
    region: str,
    service_account: str,
    targets: list[str] | None = None,
    schedule: str = "*/5 * * * *",
    time_zone: str = "Etc/UTC",
    channels: list[str] | None = None,
    notify_email: str | None = None,
    no_notifications: bool | None = None,  # the CLI's flag; None (library use) skips the channel check
    pubsub: bool = False,
    evidence_roles: bool = False,
    data_access_logs: bool = False,
    force_default_sa: bool = False,
    build_service_account: str | None = None,
    parallel: int = 8,
    dry_run: bool = False,
    kind: str = "function",
    network: str | None = None,
    subnet: str | None = None,
    vpc_egress: str | None = None,
    scoping_project: str | None = None,
) -> Spec:
    _check_where(projects, region)
    if kind not in KINDS:
        raise SpecError(f"--kind: {_short(kind)} is not a kind; allowed: {', '.join(KINDS)}")
    network, subnet, vpc_egress = check_egress(network, subnet, vpc_egress, region)
    _check_scoping(scoping_project)
    if kind == "job" and pubsub:
        raise SpecError("--pubsub: a job kind is started by Scheduler through the Cloud Run Admin API; Pub/Sub "
                        "triggers only the function kind")  # fmt: skip
    for project in projects:
        _check_account(service_account.replace("{project}", project), force_default_sa)
    parsed = check_targets(["gemini-2.5-flash-lite@us-central1"] if targets is None else targets)
    for c in channels or []:
        _check(CHANNEL, c, "--notification-channel", "a notification channel id (digits, or its full resource name)")
    if notify_email is not None:
        _check(EMAIL, notify_email, "--notify-email", "an e-mail address")
    if build_service_account is not None:
        for project in projects:
            _check(
                BUILD_ACCOUNT,
                build_service_account.replace("{project}", project),
                "--build-service-account",
                "a service account e-mail (NAME@PROJECT.iam.gserviceaccount.com, or the default compute account "
                "NUMBER-compute@developer.gserviceaccount.com; {project} stands for each project)",
            )
    _check(TIME_ZONE, time_zone, "--time-zone", "a tz database name such as Etc/UTC or Europe/Paris")
    _check_parallel(parallel)
    schedule = validate_schedule(schedule)
    if no_notifications is False and not channels and notify_email is None:
        raise SpecError(
            "--notify-email: no notification channel: the alert policies would page nobody; give --notify-email "
            "or --notification-channel, or --no-notifications to create them without one"
        )
    if no_notifications and (channels or notify_email is not None):
        raise SpecError("--no-notifications: given with --notify-email or --notification-channel; choose one")
    return Spec(
        projects=tuple(projects),
        region=region,
        service_account=service_account,
        targets=tuple(parsed),
        schedule=schedule,
        time_zone=time_zone,
        channels=tuple(channels or ()),
        notify_email=notify_email,
        pubsub=pubsub,
        evidence_roles=evidence_roles,
        data_access_logs=data_access_logs,
        force_default_sa=force_default_sa,
        build_service_account=build_service_account,
        parallel=parallel,
        dry_run=dry_run,
        kind=kind,
        network=network,
        subnet=subnet,
        vpc_egress=vpc_egress,
        scoping_project=scoping_project,
    )


def _check_scoping(scoping_project: str | None) -> None:
    if scoping_project is not None:
        _check(PROJECT, scoping_project, "--scoping-project", "a project id (6-30 lower-case letters, digits, hyphens)")


def check_egress(
    network: str | None, subnet: str | None, vpc_egress: str | None, region: str
) -> tuple[str | None, str | None, str | None]:
    """Direct VPC egress options, checked before gcloud sees them: a network and/or a subnet (Cloud Run takes
    either, and finds the other: the subnet of the network's name, or the network of the subnet), and which traffic
    goes through it (all-traffic unless told otherwise: the canary's calls go to Google APIs, which
    private-ranges-only sends by the default path)."""
    if network is None and subnet is None:
        if vpc_egress is not None:
            raise SpecError("--vpc-egress: given without --network or --subnet; it says which traffic leaves "
                            "through that network")  # fmt: skip
        return None, None, None
    if network is not None:
        _check(NETWORK, network, "--network", "a VPC network name (or projects/HOST/global/networks/NAME)")
    if subnet is not None:
        _check(
            SUBNET,
            subnet,
            "--subnet",
            f"a subnet name in {region} (or projects/HOST/regions/{region}/subnetworks/NAME)",
        )
        if "/regions/" in subnet and f"/regions/{region}/" not in subnet:
            raise SpecError(f"--subnet: {_short(subnet)} is not in {region}; Direct VPC egress needs a subnet "
                            "in the canary's region")  # fmt: skip
    egress = vpc_egress or "all-traffic"
    if egress not in VPC_EGRESS:
        raise SpecError(f"--vpc-egress: {_short(egress)} is not allowed; allowed: {', '.join(VPC_EGRESS)}")
    return network, subnet, egress


def _check_where(projects: list[str], region: str) -> None:
    if not projects:
        raise SpecError("--project: at least one project is required (or --projects-file)")
    seen = set()
    for p in projects:
        _check(PROJECT, p, "--project", "a project id (6-30 lower-case letters, digits, hyphens)")
        if p in seen:
            raise SpecError(f"--project: {p!r} is given twice")
        seen.add(p)
    _check(REGION, region, "--region", "a region such as us-central1")


def _check_parallel(parallel: int) -> None:
    if not 1 <= parallel <= 64:
        raise SpecError(f"--parallel: {parallel} is out of range; allowed: 1 to 64")


def check_targets(targets: list[str]) -> list[str]:
    """MODEL@LOCATION targets, each checked, in their canonical form."""
    chosen = [t.strip() for t in targets]
    if not chosen or not all(chosen):
        raise SpecError("--targets: an empty target; allowed: MODEL@LOCATION[,MODEL@LOCATION...]")
    if len(chosen) > MAX_TARGETS:
        raise SpecError(f"--targets: {len(chosen)} targets; allowed: at most {MAX_TARGETS}")
    for t in chosen:
        if len(t) > MAX_TARGET_CHARS:
            raise SpecError(f"--targets: {_short(t)} is not MODEL@LOCATION (at most {MAX_TARGET_CHARS} characters)")
    try:
        parsed = [str(Target.parse(t, "--targets")) for t in chosen]
    except ConfigError as err:
        raise SpecError(str(err)) from None
    if len(set(parsed)) != len(parsed):
        raise SpecError("--targets: a target is listed twice")
    return parsed


@dataclass(frozen=True)
class Where:
    """Where to look (status, call): projects and a region, checked like apply's."""

    projects: tuple[str, ...]
    region: str
    parallel: int = 8
    source: Path = field(default_factory=lambda: Path(__file__).resolve().parents[1])
    scoping_project: str | None = None  # central alerting: the fleet's state from one query there


def make_targets(*, projects: list[str], region: str, parallel: int = 8, scoping_project: str | None = None) -> Where:
    _check_where(projects, region)
    _check_parallel(parallel)
    _check_scoping(scoping_project)
    return Where(tuple(projects), region, parallel, scoping_project=scoping_project)


def read_projects_file(path: str) -> list[str]:
    """One project id a line, UTF-8; blank lines and # comments are skipped."""
    shown = _short(path)
    if not path:
        raise SpecError("--projects-file: the path is empty")
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_PROJECTS_FILE_BYTES + 1)
    except (OSError, ValueError) as err:  # ValueError: a NUL byte in the path
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise SpecError(f"--projects-file: cannot read {shown}: {reason}") from None
    if len(data) > MAX_PROJECTS_FILE_BYTES:
        raise SpecError(
            f"--projects-file: {shown} is larger than {MAX_PROJECTS_FILE_BYTES // 2**20} MiB; allowed: one project id "
            "a line"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        at = data[: err.start].count(b"\n") + 1
        raise SpecError(f"--projects-file: {shown} is not UTF-8 text (line {at}, byte {err.start})") from None
    projects = []
    for number, line in enumerate(text.split("\n"), 1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        if not PROJECT.match(entry):
            raise SpecError(f"--projects-file: line {number}: {_short(entry)} is not a project id")
        projects.append(entry)
    if not projects:
        raise SpecError(f"--projects-file: {shown} lists no project id")
    return projects
