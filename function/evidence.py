"""Evidence for a failed run: what the principal may do, what Cloud Audit Logs recorded, and what changed.

Bounded by design: at most one TestIamPermissions, one GetIamPolicy on the project (and, only when Data Access logs
are not on there, one GetProject and at most MAX_ANCESTOR_CALLS reads of its folders' and organization's policies)
and three ListLogEntries a run, whatever the number of failing targets (the Logging API allows 60 entries.list a
minute per project), and every call within the run's deadline. Every Logging filter is time-bounded and built only
from validated values, quoted.

Google facts this module relies on are written down, with their sources, in docs/google-behaviour.md.

When the canary's own identity lacks a permission for a piece of evidence, that piece says so and names the
permission; everything else still goes out.
"""

from __future__ import annotations

import copy
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from google.api_core import exceptions as core
from google.iam.v1 import policy_pb2

from .audit_entries import Change, change_of, denial_facts, pick_policy_denied, policy_facts
from .causes import ALLOWED_MODELS, TRANSIENT, Cause, Failure, constraint_of
from .clients import Clients
from .config import Config
from .filters import SAFE_VALUE, VERTEX, activity_filter, denial_filter, member
from .probe import Outcome
from .recorder import Deadline, Recorder

PREDICT = "aiplatform.endpoints.predict"
OWN_PERMISSIONS = (
    PREDICT,
    "logging.logEntries.list",
    "logging.privateLogEntries.list",
    "resourcemanager.projects.getIamPolicy",
    "monitoring.timeSeries.create",
)
# A denied GenerateContent is a DATA_READ permission check (docs/google-behaviour.md, "Cloud Audit Logs"); the
# number comes from the generated enum of google/iam/v1/policy.proto, never typed by hand.
DATA_READ = policy_pb2.AuditLogConfig.LogType.DATA_READ
MAX_ANCESTOR_CALLS = 6  # GetProject + folders (GetFolder, GetIamPolicy) + the organization's GetIamPolicy
MAX_LIST_CALLS = 3
# Cloud Logging allows 60 entries.list a minute per project, shared with the project's people and tools: one
# instance makes at most this many in any 60 s, whatever the number of runs (overlapping runs share one gathering).
LIST_CALLS_PER_MINUTE = 6
_MIN_CALL_SECONDS = 0.5  # don't start a call with less time than this left

# The pieces of evidence, in the order a run gathers them, and what became of each.
Step = Literal["iam", "audit_config", "data_access", "policy_denied", "admin_activity"]
Status = Literal["found", "not_found", "pending", "off", "unavailable", "skipped", "error"]


@dataclass
class Item:
    """One piece of evidence as an operator reads it."""

    step: Step
    status: Status
    summary: str
    missing_permission: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"step": self.step, "status": self.status, "summary": self.summary}
        if self.missing_permission:
            doc["missing_permission"] = self.missing_permission
        if self.data:
            doc["data"] = self.data
        return doc


@dataclass
class Evidence:
    items: list[Item] = field(default_factory=list)
    predict_granted: bool | None = None  # TestIamPermissions as the principal itself
    own_permissions: set[str] | None = None
    data_read_on: bool | None = None
    roles_held: list[str] | None = None
    change: Change | None = None
    denial: dict[str, Any] | None = None  # the data_access entry of a denial
    policy_denial: dict[str, Any] | None = None  # the VPC-SC Policy Denied entry
    pending: bool = False
    logs_query: str | None = None  # a Logs Explorer query that shows the evidence
    # Where Data Access logs were seen on (projects/P, folders/F, organizations/O), or the ancestor that could not
    # be read (data_read_on is then None: not on in the project, unknown above it).
    data_read_where: str | None = None
    unreadable_ancestor: str | None = None
    unreadable_reason: str | None = None
    ancestor_failed: bool = False  # an ancestor's read failed (not refused): the answer may differ next time
    # Set when this run reused what an overlapping (or recent) run of the same instance gathered.
    shared_with: str | None = None
    gathered_at: datetime | None = None

    def item(self, step: Step) -> Item | None:
        return next((i for i in self.items if i.step == step), None)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"items": [i.to_json() for i in self.items], "pending": self.pending}
        if self.predict_granted is not None:
            doc["predict_granted"] = self.predict_granted
        if self.data_read_on is not None:
            doc["data_access_logs_on"] = self.data_read_on
        if self.data_read_where is not None:
            doc["data_access_logs_where"] = self.data_read_where
        if self.roles_held is not None:
            doc["roles_held"] = self.roles_held
        if self.change is not None:
            doc["change"] = self.change.to_json()
        if self.denial is not None:
            doc["denial_entry"] = self.denial
        if self.policy_denial is not None:
            doc["policy_denied_entry"] = self.policy_denial
        if self.shared_with is not None:
            doc["shared_with"] = self.shared_with
            if self.gathered_at is not None:
                doc["gathered_at"] = self.gathered_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return doc

    def complete(self) -> bool:
        """Every step that ran got Google's answer (a missing permission is one): fit to be reused."""
        return not self.ancestor_failed and not any(
            i.status in ("error", "skipped") or (i.status == "unavailable" and not i.missing_permission)
            for i in self.items
        )


@dataclass
class _Gathering:
    run_id: str
    at: datetime
    done: threading.Event = field(default_factory=threading.Event)
    evidence: Evidence | None = None
    finished: float = 0.0


class EvidenceShare:
    """One per instance: overlapping runs with the same failures share one gathering, and every ListLogEntries takes
    one of the instance's LIST_CALLS_PER_MINUTE.

    The runbook calls that follow an alert come in bursts: forty at once must not make eighty ListLogEntries against
    a quota of 60 a minute that the project's people share (the same idea as metrics.MetricsWriter's coalescing).
    A finished gathering is reused only when the allowance left could not pay for another (and only a complete one,
    from the last minute): otherwise the next run looks again, at a world that may have changed.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._gatherings: dict[Hashable, _Gathering] = {}
        self._last: dict[Hashable, _Gathering] = {}  # the last finished gathering of each key
        self._list_calls: deque[float] = deque()

    def _allowance_left(self, now: float) -> int:
        while self._list_calls and now - self._list_calls[0] >= 60.0:
            self._list_calls.popleft()
        return LIST_CALLS_PER_MINUTE - len(self._list_calls)

    def permit_list_call(self) -> bool:
        """Take one ListLogEntries of this instance's per-minute allowance; False when it is used up."""
        with self._lock:
            now = time.monotonic()
            if self._allowance_left(now) <= 0:
                return False
            self._list_calls.append(now)
            return True

    def get(self, key: Hashable, run_id: str, deadline: Deadline, work: Callable[[], Evidence]) -> Evidence:
        """This run's evidence: shared from an overlapping run with the same key, else gathered by `work`."""
        with self._lock:
            now = time.monotonic()
            current = self._gatherings.get(key)
            last = self._last.get(key)
            reusable = (
                last is not None
                and now - last.finished < 60.0
                and last.evidence is not None
                and last.evidence.complete()
            )
            if current is None and reusable and self._allowance_left(now) < MAX_LIST_CALLS:
                current = last  # a burst: what this instance read in the last minute, rather than nothing
            if current is None:
                mine = self._gatherings[key] = _Gathering(run_id, datetime.now(UTC))
        if current is not None:
            # Wait for the run gathering it, leaving this run a second to write its metrics and answer.
            if current.done.wait(max(0.0, deadline.remaining() - 1.0)) and current.evidence is not None:
                shared = copy.deepcopy(current.evidence)
                shared.shared_with, shared.gathered_at = current.run_id, current.at
                return shared
            return work()  # it did not finish in time: gather alone, within the per-minute allowance
        try:
            mine.evidence = work()
            return mine.evidence
        finally:
            mine.finished = time.monotonic()
            mine.done.set()
            with self._lock:
                if self._gatherings.get(key) is mine:
                    del self._gatherings[key]
                self._last[key] = mine


# Gathering --------------------------------------------------------------------------------------------


@dataclass
class _Context:
    config: Config
    clients: Clients
    project: str
    principal: str | None
    deadline: Deadline
    recorder: Recorder
    permit: Callable[[], bool]
    list_calls: int = 0

    def why_no_list_call(self, steps_after: int = 0) -> str | None:
        """Why the next ListLogEntries may not be made (None: it may, and it is counted against the allowance)."""
        if self.list_calls >= MAX_LIST_CALLS - steps_after:
            return f"this run's {MAX_LIST_CALLS} ListLogEntries are used"
        if self.deadline.remaining() < _MIN_CALL_SECONDS:
            return (
                f"no time left: earlier steps used the run's {self.deadline.seconds:g} s deadline "
                f"({self.deadline.remaining():.1f} s left)"
            )
        if not self.permit():
            return (
                f"this instance made its {LIST_CALLS_PER_MINUTE} ListLogEntries of the last minute (Cloud Logging "
                "allows 60 a minute per project, shared with the project's people); a later run reads it"
            )
        return None


def gather(
    config: Config,
    clients: Clients,
    project: str,
    principal: str | None,
    outcomes: list[Outcome],
    deadline: Deadline,
    recorder: Recorder,
    sleep: Callable[[float], None] = time.sleep,
    permit: Callable[[], bool] = lambda: True,
) -> Evidence:
    """Evidence for every failing outcome of one run, gathered once. `permit` takes one ListLogEntries of the
    instance's per-minute allowance (EvidenceShare.permit_list_call)."""
    evidence = Evidence()
    failures = [o.failure for o in outcomes if o.failure is not None]
    causes = {f.cause for f in failures}
    if not failures or not config.evidence:
        return evidence
    ctx = _Context(config, clients, project, principal, deadline, recorder, permit)
    reachable = causes - TRANSIENT - {Cause.CREDENTIALS}  # nothing in IAM or the audit logs explains these
    if "iam" in config.evidence and reachable:
        _test_permissions(ctx, evidence, Cause.IAM_PERMISSION_DENIED in causes)
    if "audit_config" in config.evidence and Cause.IAM_PERMISSION_DENIED in causes:
        _audit_config(ctx, evidence)
    start = datetime.now(UTC) - timedelta(seconds=config.audit_lookback_s)
    _denials(ctx, evidence, failures, causes, start, sleep)
    if "admin_activity" in config.evidence:
        constraints = {constraint_of(f) for f in failures if f.cause == Cause.ORG_POLICY}
        _activity(ctx, evidence, causes, start, constraints)
    return evidence


def _lacks(evidence: Evidence, permission: str) -> bool:
    return evidence.own_permissions is not None and permission not in evidence.own_permissions


def _unavailable(step: Step, error: BaseException, permission: str | None) -> Item:
    if isinstance(error, core.PermissionDenied | core.Forbidden):
        return Item(
            step, "unavailable", f"the canary may not read this: {getattr(error, 'message', error)}", permission
        )
    if isinstance(error, core.DeadlineExceeded | core.RetryError):
        return Item(step, "unavailable", "the call did not finish within the run's deadline")
    code = getattr(error, "code", None)
    # "InternalServerError 500" for a Google error, "TimeoutError" for one without a code
    name = f"{type(error).__name__} {code}" if code else type(error).__name__
    return Item(step, "error", f"{name}: {getattr(error, 'message', error)}".strip())


def _test_permissions(ctx: _Context, evidence: Evidence, iam_denied: bool) -> None:
    if ctx.deadline.remaining() < _MIN_CALL_SECONDS:
        evidence.items.append(Item("iam", "skipped", "no time left in the run's deadline"))
        return
    try:
        response = ctx.recorder.call(
            "resourcemanager.TestIamPermissions",
            lambda: ctx.clients.projects().test_iam_permissions(
                request={"resource": f"projects/{ctx.project}", "permissions": list(OWN_PERMISSIONS)},
                timeout=ctx.deadline.timeout(),
                retry=None,
            ),
        )
    except Exception as error:  # noqa: BLE001 - evidence must never sink the run
        evidence.items.append(_unavailable("iam", error, None))
        return
    held = set(response.permissions)
    evidence.own_permissions = held
    evidence.predict_granted = PREDICT in held
    who = ctx.principal or "the canary's identity"
    if evidence.predict_granted and not iam_denied:
        # The call failed for another reason (the API, billing, an org policy…): the grant is simply in place.
        summary = f"{who} holds {PREDICT} on projects/{ctx.project} through its roles (allow policies)"
    elif evidence.predict_granted:
        # A model that does not exist is not among the reasons: once the permission check passes, Google answers a
        # missing model with 404 "Publisher Model … was not found" (docs/google-behaviour.md, "Vertex AI errors").
        summary = (
            f"{who} holds {PREDICT} on projects/{ctx.project} through its roles (allow policies), yet Google denied "
            "the call: an IAM deny policy (attached to the project, a folder or the organization) or a principal "
            "access boundary policy takes it away; TestIamPermissions sees allow policies only"
        )
    else:
        summary = f"{who} does not hold {PREDICT} on projects/{ctx.project}: no role grants it"
    missing = sorted(set(OWN_PERMISSIONS) - held - {PREDICT})
    data = {"held": sorted(held), "missing": missing}
    evidence.items.append(Item("iam", "found", summary, data=data))


def _audit_config(ctx: _Context, evidence: Evidence) -> None:
    permission = "resourcemanager.projects.getIamPolicy"
    if _lacks(evidence, permission):
        evidence.items.append(
            Item("audit_config", "unavailable", "cannot tell whether Data Access audit logs are on", permission)
        )
        return
    if ctx.deadline.remaining() < _MIN_CALL_SECONDS:
        evidence.items.append(Item("audit_config", "skipped", "no time left in the run's deadline"))
        return
    try:
        policy = ctx.recorder.call(
            "resourcemanager.GetIamPolicy",
            lambda: ctx.clients.projects().get_iam_policy(
                request={"resource": f"projects/{ctx.project}"}, timeout=ctx.deadline.timeout(), retry=None
            ),
        )
    except Exception as error:  # noqa: BLE001 - evidence must never sink the run
        evidence.items.append(_unavailable("audit_config", error, permission))
        return
    who = member(ctx.principal) if ctx.principal else None
    evidence.roles_held = sorted({b.role for b in policy.bindings if who and who in b.members})
    where = f"projects/{ctx.project}"
    if data_read_on(policy, who):
        evidence.data_read_on, evidence.data_read_where = True, where
    else:
        # Google unions the audit configs of the project's folders and organization with its own: "off" in the
        # project proves nothing until every ancestor has been read (docs/google-behaviour.md, "Cloud Audit Logs").
        _ancestors_audit_config(ctx, evidence, who)
    on = evidence.data_read_on
    if on:
        summary = f"Data Access audit logs (DATA_READ) for {VERTEX} are on (set on {evidence.data_read_where})"
    elif on is False:
        summary = (
            f"Data Access audit logs (DATA_READ) for {VERTEX} are off: not enabled on {where} nor on any of its "
            "folders or its organization"
        )
    else:
        summary = (
            f"Data Access audit logs (DATA_READ) for {VERTEX} are not enabled on {where}; they may be enabled on "
            f"a folder or the organization ({evidence.unreadable_ancestor or 'an ancestor'} could not be read"
            f"{': ' + evidence.unreadable_reason if evidence.unreadable_reason else ''})"
        )
    if evidence.roles_held is not None and who:
        summary += f"; {ctx.principal} holds {', '.join(evidence.roles_held) or 'no roles'} on the project"
    data = {"data_read": on, "where": evidence.data_read_where, "roles_held": evidence.roles_held}
    if evidence.unreadable_ancestor:
        data["unreadable"] = evidence.unreadable_ancestor
    evidence.items.append(Item("audit_config", "found", summary, data={k: v for k, v in data.items() if v is not None}))


def data_read_on(policy: Any, member: str | None) -> bool:
    """Whether a google.iam.v1 Policy turns DATA_READ on for Vertex AI for this member.

    google/iam/v1/policy.proto (AuditConfig): the configs for allServices and for the service are unioned, log types
    and exemptions alike, so one exemption in either exempts the member.
    """
    configs = [
        log_config
        for config in policy.audit_configs
        if config.service in (VERTEX, "allServices")
        for log_config in config.audit_log_configs
        if log_config.log_type == DATA_READ
    ]
    exempted = {m for c in configs for m in c.exempted_members}
    return bool(configs) and not (member and member in exempted)


def _ancestors_audit_config(ctx: _Context, evidence: Evidence, member: str | None) -> None:
    """Read the project's folders' and organization's policies, nearest first, until DATA_READ is found on, an
    ancestor cannot be read (data_read_on stays None), or the organization is reached (then it is off)."""
    calls = 0

    def call(name: str, method: Callable[..., Any], request: dict[str, str]) -> Any:
        nonlocal calls
        if calls >= MAX_ANCESTOR_CALLS or ctx.deadline.remaining() < _MIN_CALL_SECONDS:
            raise TimeoutError("no call or time left in this run's budget")
        calls += 1
        return ctx.recorder.call(name, lambda: method(request=request, timeout=ctx.deadline.timeout(), retry=None))

    current = f"projects/{ctx.project}"
    try:
        current = str(call("resourcemanager.GetProject", ctx.clients.projects().get_project, {"name": current}).parent)
        while current.startswith(("folders/", "organizations/")):
            kind = current.split("/", 1)[0]
            client: Any = ctx.clients.folders() if kind == "folders" else ctx.clients.organizations()
            policy = call(f"resourcemanager.GetIamPolicy({kind})", client.get_iam_policy, {"resource": current})
            if data_read_on(policy, member):
                evidence.data_read_on, evidence.data_read_where = True, current
                return
            if kind == "organizations":
                break
            current = str(call("resourcemanager.GetFolder", client.get_folder, {"name": current}).parent)
        # the organization reached (or a project with none above it): nothing else can turn them on
        evidence.data_read_on = False
    except Exception as error:  # noqa: BLE001 - an unreadable ancestor leaves the answer unknown, never "off"
        evidence.unreadable_ancestor = current
        evidence.unreadable_reason = _unavailable("audit_config", error, None).summary
        evidence.ancestor_failed = not isinstance(error, core.PermissionDenied | core.Forbidden)


def _list(ctx: _Context, name: str, query: str, page_size: int) -> list[Any]:
    ctx.list_calls += 1
    response = ctx.recorder.call(
        f"logging.ListLogEntries({name})",
        lambda: ctx.clients.logging().list_log_entries(
            request={
                "resource_names": [f"projects/{ctx.project}"],
                "filter": query,
                "order_by": "timestamp desc",
                "page_size": page_size,
            },
            timeout=ctx.deadline.timeout(),
            retry=None,
        ),
    )
    # One page only (iterating the pager would fetch more): the newest entries are what explain a failure.
    return list(next(iter(response.pages)).entries)


def _denials(
    ctx: _Context,
    evidence: Evidence,
    failures: list[Failure],
    causes: set[Cause],
    start: datetime,
    sleep: Callable[[float], None],
) -> None:
    uids = [f.metadata["uid"] for f in failures if f.cause == Cause.VPC_SC and f.metadata.get("uid")]
    uids = [u for u in uids if SAFE_VALUE.match(u)]
    want_data = "data_access" in ctx.config.evidence and Cause.IAM_PERMISSION_DENIED in causes
    want_policy = "policy_denied" in ctx.config.evidence and bool(uids)
    # The data_access query runs whatever the audit config looked like (one ListLogEntries is cheap, and a config
    # the canary cannot fully see must not hide an entry); only waiting for the ingestion lag needs logs known on.
    if want_data and _lacks(evidence, "logging.privateLogEntries.list"):
        evidence.items.append(
            Item(
                "data_access",
                "unavailable",
                "the canary cannot read Data Access audit logs",
                "logging.privateLogEntries.list",
            )
        )
        want_data = False
    if want_policy and _lacks(evidence, "logging.logEntries.list"):
        evidence.items.append(
            Item("policy_denied", "unavailable", "the canary cannot read audit logs", "logging.logEntries.list")
        )
        want_policy = False
    query = denial_filter(ctx.project, ctx.principal, uids if want_policy else [], want_data, start)
    if query is None:
        return
    evidence.logs_query = query
    # Waiting is worth it only when an entry is on its way: Data Access logs known on, or a VPC-SC denial (policy
    # logs are always written). Logs known off, or not known, get one look.
    wait_for_it = (
        want_policy or evidence.data_read_on is True or (want_data and "audit_config" not in ctx.config.evidence)
    )
    budget_end = time.monotonic() + (ctx.config.audit_lag_budget_s if wait_for_it else 0)
    look = _Look()
    for attempt in range(2):  # the first look, and one more after waiting out the lag budget
        why_not = ctx.why_no_list_call(1 if "admin_activity" in ctx.config.evidence else 0)
        if why_not is not None:
            look.why_not = why_not
            break
        look.made += 1
        try:
            look.entries = _list(ctx, "denial", query, page_size=10)
        except Exception as err:  # noqa: BLE001 - evidence must never sink the run
            look.error = err
            break
        if look.entries or attempt == 1 or not wait_for_it:
            break
        wait = min(budget_end - time.monotonic(), ctx.deadline.remaining() - 2 * _MIN_CALL_SECONDS)
        if wait <= 0:
            break
        sleep(wait)
        look.waited += wait
    _read_denials(ctx, evidence, look, want_data, want_policy, uids)


@dataclass
class _Look:
    """What the denial query did: calls made, entries, the error, seconds waited, and why it stopped short."""

    made: int = 0
    entries: list[Any] = field(default_factory=list)
    error: BaseException | None = None
    waited: float = 0.0
    why_not: str | None = None


def _read_denials(
    ctx: _Context, evidence: Evidence, look: _Look, want_data: bool, want_policy: bool, uids: list[str]
) -> None:
    entries, error = look.entries, look.error
    data_entry = next((e for e in entries if e.log_name.endswith("%2Fdata_access")), None)
    policy_entry = pick_policy_denied(entries, uids)
    steps: tuple[tuple[Step, bool, Any, str], ...] = (
        ("data_access", want_data, data_entry, "logging.privateLogEntries.list"),
        ("policy_denied", want_policy, policy_entry, "logging.logEntries.list"),
    )
    for step, wanted, entry, permission in steps:
        if not wanted:
            continue
        if error is not None:
            evidence.items.append(_unavailable(step, error, permission))
        elif look.made == 0:
            # Never queried: say so, and why; "pending" would claim a look that was never taken.
            evidence.items.append(Item(step, "skipped", f"not attempted: {look.why_not or 'no call was made'}"))
        elif entry is None and step == "data_access" and evidence.data_read_on is False:
            evidence.items.append(
                Item(
                    step,
                    "off",
                    f"Data Access audit logs are off for {VERTEX} on projects/{ctx.project}, its folders and its "
                    "organization, so Google did not record the denial: no audit entry here does NOT mean the call "
                    "was allowed. Turn them on to see every denied call (see remedies).",
                )
            )
        elif (
            entry is None and step == "data_access" and evidence.data_read_on is None and evidence.item("audit_config")
        ):
            evidence.items.append(
                Item(
                    step,
                    "not_found",
                    f"no data_access entry within the last {ctx.config.audit_lookback_s / 60:g} min. Data Access audit "
                    f"logs are not enabled on projects/{ctx.project}; if they are not enabled on a folder or the "
                    "organization either, Google did not record the denial (no entry does NOT mean the call was "
                    "allowed); if they are, the entry may still be on its way and a later run finds it",
                )
            )
        elif entry is None:
            evidence.pending = True
            evidence.items.append(
                Item(
                    step,
                    "pending",
                    f"audit evidence pending: no {step.replace('_', ' ')} entry yet within the last "
                    f"{ctx.config.audit_lookback_s / 60:g} min (audit entries can take minutes to arrive; this run "
                    f"looked {look.made} time{'s' if look.made > 1 else ''} and waited {look.waited:.0f} s); a later "
                    "run finds it within the look-back window",
                )
            )
        elif step == "data_access":
            evidence.denial = denial_facts(entry)
            d = evidence.denial
            evidence.items.append(
                Item(
                    step,
                    "found",
                    f"denied call recorded at {d['timestamp']}: {d['principal']} "
                    f"was refused {d['permission']} on {d['method']}",
                    data=d,
                )
            )
        else:
            evidence.policy_denial = policy_facts(entry)
            p = evidence.policy_denial
            evidence.items.append(
                Item(
                    step,
                    "found",
                    f"VPC Service Controls refused the call ({p['violation_reason']}) at perimeter {p['perimeter']}"
                    + (f"; {p['network_detail']}" if p.get("network_detail") else ""),
                    data=p,
                )
            )


def _activity(ctx: _Context, evidence: Evidence, causes: set[Cause], start: datetime, constraints: set[str]) -> None:
    constraints = {c for c in constraints if SAFE_VALUE.match(c)}
    query = activity_filter(ctx.project, ctx.principal, causes, start, constraints)
    if query is None:
        return
    if _lacks(evidence, "logging.logEntries.list"):
        evidence.items.append(
            Item("admin_activity", "unavailable", "the canary cannot read audit logs", "logging.logEntries.list")
        )
        return
    why_not = ctx.why_no_list_call()
    if why_not is not None:
        evidence.items.append(Item("admin_activity", "skipped", f"not attempted: {why_not}"))
        return
    try:
        entries = _list(ctx, "activity", query, page_size=20)
    except Exception as error:  # noqa: BLE001 - evidence must never sink the run
        evidence.items.append(_unavailable("admin_activity", error, "logging.logEntries.list"))
        return
    change = next((c for c in (change_of(e, ctx.principal) for e in entries) if c is not None), None)
    if change is None:
        evidence.items.append(
            Item(
                "admin_activity",
                "not_found",
                f"no admin change that explains it in the last {ctx.config.audit_lookback_s / 60:g} min of the "
                f"project's Admin Activity log{_where_else(causes, constraints)}",
            )
        )
        return
    evidence.change = change
    evidence.items.append(
        Item("admin_activity", "found", f"{change.detail} by {change.actor} at {change.at}", data=change.to_json())
    )


def _where_else(causes: set[Cause], constraints: set[str]) -> str:
    """Where the change most likely lives when the project's own log does not have it."""
    if Cause.ORG_POLICY in causes:
        names = ", ".join(f"constraints/{c}" for c in sorted(constraints or {ALLOWED_MODELS}))
        return (
            f": {names} is most likely set on a folder or the organization, whose changes are logged there, not in "
            "the project; ask your organization policy administrator (see remedies)"
        )
    if Cause.BILLING_DISABLED in causes:
        return ": billing changes are also logged on the billing account, which the project's log may not show"
    return " (it may be older, or made on a folder or the organization, whose changes are logged there)"
