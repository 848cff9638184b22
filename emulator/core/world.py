"""The one in-memory state every emulated API reads and changes.

A front end (gRPC, REST, admin, metadata) takes `world.lock` for the whole of a handler call, after running any
timeline events that have come due (`world.tick()`), so each call sees one consistent world.
"""

from __future__ import annotations

import secrets
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from emulator.core import iam
from emulator.core.clock import Clock
from emulator.core.iam import DenyRule, Policy
from emulator.core.network import Network
from emulator.core.tokens import Signer

VERTEX = "aiplatform.googleapis.com"


S = TypeVar("S")


@dataclass
class Project:
    project_id: str
    number: str
    policy: Policy = field(default_factory=Policy)
    services: set[str] = field(default_factory=set)
    billing_enabled: bool = True
    # Organization policy (docs/google-behaviour.md, "Organization policy"); None = not set here, inherited.
    # constraints/vertexai.allowedModels allowed values; constraints/gcp.restrictServiceUsage denied values.
    allowed_models: list[str] | None = None
    denied_services: list[str] | None = None
    # Each service's own state in this project, by the service's store class (`store`).
    stores: dict[type, Any] = field(default_factory=dict)
    parent: str = ""  # folders/N or organizations/N; "" = the world's organization

    @property
    def name(self) -> str:
        return f"projects/{self.project_id}"

    def store(self, kind: type[S]) -> S:
        """The state a service keeps in this project (its store class, created empty on first use): the world holds
        projects, principals, the clock and the log, and each service owns what it stores."""
        found = self.stores.get(kind)
        if found is None:
            found = self.stores[kind] = kind()
        return found


@dataclass
class Node:
    """A folder or the organization above projects: its own allow policy (with audit configs) and parent.

    Google evaluates a project's access with the allow policies of the project and every ancestor, and unions
    the audit configs of all of them (docs/google-behaviour.md, "Resource hierarchy").
    """

    name: str  # organizations/N or folders/N
    parent: str = ""  # the parent's name; "" for the organization
    display_name: str = ""
    policy: Policy = field(default_factory=Policy)
    allowed_models: list[str] | None = None  # as on Project: organization policy set on this node
    denied_services: list[str] | None = None

    @property
    def kind(self) -> str:
        return self.name.split("/", 1)[0]


@dataclass(frozen=True)
class LevelCondition:
    """One condition of a basic access level (Access Context Manager v1 `Condition`): an AND over its fields, an
    empty field matching anything. Only `members` and `vpcNetworkSources` (their networks; `vpcIpSubnetworks` ranges
    are not evaluated) are emulated."""

    members: frozenset[str] = frozenset()  # user:… / serviceAccount:…
    networks: frozenset[str] = frozenset()  # //compute.googleapis.com/projects/P/global/networks/N

    def matches(self, member: str, network: str) -> bool:
        if self.members and member not in self.members:
            return False
        return not self.networks or (bool(network) and f"//compute.googleapis.com/{network}" in self.networks)


@dataclass(frozen=True)
class AccessLevel:
    """A basic access level (accessPolicies/A/accessLevels/L): its conditions combined by AND (default) or OR."""

    name: str
    conditions: tuple[LevelCondition, ...]
    combining_function: str = "AND"

    def grants(self, member: str, network: str) -> bool:
        results = [c.matches(member, network) for c in self.conditions]
        return any(results) if self.combining_function == "OR" else all(results)


@dataclass(frozen=True)
class IngressRule:
    """An ingress policy (ServicePerimeterConfig.IngressPolicy): matches when both its from and its to match.

    from: the identity (`identities` member strings, or `identity_type` ANY_IDENTITY / ANY_USER_ACCOUNT /
    ANY_SERVICE_ACCOUNT) AND one of `sources` (an access level name, "*" for any source, `projects/NUMBER` for the
    project of the source network, or a VPC network `//compute.googleapis.com/projects/P/global/networks/N`).
    to: one of `operations` ((service, methods); "*" for any service or method) AND one of `resources` ("*" or
    `projects/NUMBER`).
    """

    identities: frozenset[str] = frozenset()
    identity_type: str = ""
    sources: tuple[tuple[str, str], ...] = (("access_level", "*"),)  # ("access_level" | "resource", value)
    operations: tuple[tuple[str, tuple[str, ...]], ...] = (("*", ("*",)),)
    resources: tuple[str, ...] = ("*",)
    title: str = ""


@dataclass
class Perimeter:
    """A VPC Service Controls service perimeter around some projects (and VPC networks)."""

    name: str  # accessPolicies/A/servicePerimeters/X
    organization_id: str
    projects: set[str]  # project ids inside
    restricted_services: set[str] = field(default_factory=lambda: {VERTEX})
    refuse_outside: bool = True  # refuse calls that come from outside the perimeter
    # Principals let in from any source (the shorthand for an ingress rule with identities and source "*").
    ingress_members: set[str] = field(default_factory=set)
    violation_reason: str = ""  # "" = as the request's source gives it (emulator/services/vertex.py)
    dry_run: bool = False
    # VPC networks inside the perimeter besides those of its projects (//compute.googleapis.com/projects/P/global/…).
    networks: set[str] = field(default_factory=set)
    access_levels: list[str] = field(default_factory=list)  # the perimeter's own access levels (names)
    ingress_rules: list[IngressRule] = field(default_factory=list)
    levels: dict[str, AccessLevel] = field(default_factory=dict)  # the access policy's levels, by name


@dataclass
class TokenInfo:
    email: str
    expiry: datetime
    revoked: bool = False
    # The VPC network whose egress the token's calls come from (projects/P/global/networks/N), "" for none: a
    # token a served function's or job's metadata server minted carries its instance's egress network.
    network: str = ""


@dataclass
class Fault:
    """The next `count` calls of `method` fail this way instead of being served."""

    method: str  # full gRPC method name, a metadata bucket (metadata.token) or one metadata path (metadata.region)
    count: int
    status: Any = None  # google.rpc.Status (pb2) to answer with
    hang_seconds: float = 0.0
    close: bool = False
    malformed: bool = False
    http_status: int = 0  # metadata server faults answer with an HTTP status and body instead
    http_body: str = ""

    def describe(self) -> dict[str, Any]:
        kinds = {
            "status": self.status is not None,
            "hang": bool(self.hang_seconds),
            "close": self.close,
            "malformed": self.malformed,
            "http_status": bool(self.http_status),
        }
        return {
            "method": self.method,
            "remaining": self.count,
            "kind": next(k for k, on in kinds.items() if on),
        }


@dataclass
class TimelineEvent:
    at: datetime
    actor: str  # e-mail of the person or account making the change
    action: str
    params: dict[str, Any]
    done: bool = False


@dataclass
class LogRecord:
    entry: dict[str, Any]  # LogEntry in proto3 JSON form
    visible_at: datetime


class World:
    def __init__(self, clock: Clock | None = None) -> None:
        self.lock = threading.RLock()
        self.clock = clock or Clock()
        self.projects: dict[str, Project] = {}
        self.principals: dict[str, str] = {}  # e-mail → display kind ("serviceAccount" | "user")
        self.deny_rules: list[DenyRule] = []
        self.perimeter: Perimeter | None = None
        self.models: dict[str, set[str]] = {}
        self.retired_models: set[str] = set()
        self.quota_rpm: dict[str, int] = {}  # member → requests per minute on Gemini calls; "*" for everyone
        self._quota_used: Counter[tuple[str, str, int]] = Counter()
        self.tokens: dict[str, TokenInfo] = {}
        self.workload = ""  # the metadata server's default service account
        self.workload_network = ""  # the VPC network the emulator's own metadata server's tokens egress through
        self.default_project = ""
        self.region = "us-central1"
        self.instance_id = "00" + secrets.token_hex(40)
        self.token_ttl = timedelta(hours=1)
        self.metadata_failure: dict[str, Any] | None = None  # {"status": 503, "body": "..."} or {"hang_seconds": x}
        self.logs: list[LogRecord] = []
        self.ingestion_lag = timedelta(seconds=3)
        self.faults: list[Fault] = []
        self.calls: Counter[str] = Counter()
        self.call_seconds: dict[str, float] = {}  # time inside handlers, by method (bench/ subtracts it)
        self.timeline: list[TimelineEvent] = []
        self.event_runner: Callable[[World, TimelineEvent], None] | None = None
        self.organization_id = "123456789012"
        self.nodes: dict[str, Node] = {}  # folders and the organization, by resource name
        self.signer = Signer()  # signs ID tokens (core/tokens.py)
        self.serving = False  # deployed functions run (emulator/runtime); off, a deploy only records them
        self.outbox: Path | None = None  # where email notification channels' messages are written, one file each
        self.network = Network()  # the requests Google's side sends: Scheduler, push, webhooks (core/network.py)

    # Hierarchy ----------------------------------------------------------------------------------

    @property
    def organization(self) -> Node:
        name = f"organizations/{self.organization_id}"
        if name not in self.nodes:
            self.nodes[name] = Node(name, display_name="example.com")
        return self.nodes[name]

    def parent_of(self, project: Project) -> str:
        return project.parent or self.organization.name

    def ancestors(self, project: Project) -> list[Node]:
        """The folders above the project, nearest first, then the organization."""
        name = self.parent_of(project)
        first = self.organization if name == self.organization.name else self.nodes.get(name)
        return self.node_chain(first) if first is not None else []

    def node_chain(self, node: Node) -> list[Node]:
        """A folder or the organization, then its ancestors, nearest first."""
        chain = [node]
        name = node.parent
        while name and len(chain) < 12:
            parent = self.organization if name == self.organization.name else self.nodes.get(name)
            if parent is None:
                break
            chain.append(parent)
            name = parent.parent
        return chain

    def allows_on_node(self, node: Node, member: str, permission: str) -> bool:
        """An allow binding on the node or an ancestor grants it, and no deny rule attached to them takes it."""
        chain = self.node_chain(node)
        points = {n.name for n in chain}
        rules = [r for r in self.deny_rules if (r.attached_to or self.organization.name) in points]
        granted = any(iam.allowed_by_policy(n.policy, member, permission) for n in chain)
        return granted and not iam.denied_by_rules(rules, member, permission)

    def policies(self, project: Project) -> list[Policy]:
        """The allow policies that apply to the project: its own, then its ancestors'."""
        return [project.policy, *(n.policy for n in self.ancestors(project))]

    def deny_rules_for(self, project: Project) -> list[DenyRule]:
        """Deny rules attached to the project or an ancestor ("" attaches to the organization)."""
        points = {project.name, f"projects/{project.number}", *(n.name for n in self.ancestors(project))}
        return [r for r in self.deny_rules if (r.attached_to or self.organization.name) in points]

    def allows(self, project: Project, member: str, permission: str, *resource_policies: Policy) -> bool:
        """An allow binding on the resource, the project or an ancestor grants it, and no deny rule takes it."""
        granted = any(
            iam.allowed_by_policy(p, member, permission) for p in (*resource_policies, *self.policies(project))
        )
        return granted and not iam.denied_by_rules(self.deny_rules_for(project), member, permission)

    def constraint(self, project: Project, attribute: str) -> list[str] | None:
        """An organization policy's effective values: the nearest of the project and its ancestors that sets it.

        Simplified: a policy set lower replaces the inherited one (no merging of inherited values).
        """
        for holder in (project, *self.ancestors(project)):
            values = getattr(holder, attribute)
            if values is not None:
                return list(values)
        return None

    def resource(self, name: str) -> Project | Node | None:
        """A project (projects/ID or projects/NUMBER), folder or the organization by resource name."""
        if name.startswith("projects/"):
            return self.project(name.removeprefix("projects/"))
        if name == self.organization.name:
            return self.organization
        return self.nodes.get(name)

    def audit_log_on(self, project: Project, service: str, log_type: str, member: str) -> bool:
        """Whether a log type is on for the service in the project's merged (project + ancestors) audit config."""
        # Assumption (unverified): the union reaches across the hierarchy as within one policy, so an exemption on
        # any level exempts the member (docs/google-behaviour.md, "Cloud Audit Logs").
        configs = [lc for p in self.policies(project) for lc in p.log_configs(service, log_type)]
        return bool(configs) and not any(member in lc.exempted_members for lc in configs)

    # Identity -----------------------------------------------------------------------------------

    def project(self, ref: str) -> Project | None:
        """A project by id or by number (Google accepts either in resource names)."""
        if ref in self.projects:
            return self.projects[ref]
        return next((p for p in self.projects.values() if p.number == ref), None)

    def mint_token(self, email: str, ttl: timedelta | None = None, network: str = "") -> tuple[str, TokenInfo]:
        token = "ya29.emu-" + secrets.token_urlsafe(24)
        info = TokenInfo(email=email, expiry=self.clock.now() + (ttl or self.token_ttl), network=network)
        self.tokens[token] = info
        return token, info

    def token_state(self, token: str) -> tuple[str, str]:
        """("ok", email) or ("missing"|"invalid"|"expired"|"revoked", email-or-empty)."""
        if not token:
            return "missing", ""
        info = self.tokens.get(token)
        if info is None:
            return "invalid", ""
        if info.revoked:
            return "revoked", info.email
        if self.clock.now() >= info.expiry:
            return "expired", info.email
        return "ok", info.email

    def revoke_tokens(self, email: str) -> int:
        n = 0
        for info in self.tokens.values():
            if info.email == email and not info.revoked:
                info.revoked = True
                n += 1
        return n

    # Quota ----------------------------------------------------------------------------------------

    def take_quota(self, member: str, bucket: str) -> bool:
        """Count one request against the member's per-minute limit; False when the limit is used up."""
        limit = self.quota_rpm.get(member, self.quota_rpm.get("*"))
        if limit is None:
            return True
        minute = int(self.clock.now().timestamp() // 60)
        key = (member, bucket, minute)
        if self._quota_used[key] >= limit:
            return False
        self._quota_used[key] += 1
        return True

    # Logs -----------------------------------------------------------------------------------------

    def append_log(self, entry: dict[str, Any], at: datetime) -> None:
        self.logs.append(LogRecord(entry=entry, visible_at=at + self.ingestion_lag))

    def visible_logs(self) -> list[dict[str, Any]]:
        now = self.clock.now()
        return [r.entry for r in self.logs if r.visible_at <= now]

    # Faults and counting --------------------------------------------------------------------------

    def take_fault(self, method: str) -> Fault | None:
        for fault in self.faults:
            if fault.method == method and fault.count > 0:
                fault.count -= 1
                if fault.count == 0:
                    self.faults.remove(fault)
                return fault
        return None

    def count_call(self, method: str) -> None:
        self.calls[method] += 1

    # Timeline ---------------------------------------------------------------------------------------

    def tick(self) -> None:
        """Apply every timeline event whose time has come, in order."""
        if self.event_runner is None:
            return
        now = self.clock.now()
        for event in sorted(self.timeline, key=lambda e: e.at):
            if not event.done and event.at <= now:
                event.done = True
                self.event_runner(self, event)
