"""One project: read what exists, compare with what should, and create / update / leave alone — or tear down.

Every resource is read first, so a second run with the same inputs changes nothing and says so. What the tool
created in a project (roles it granted, Data Access logs it turned on) is recorded in the invoker service account's
description, so `teardown` removes exactly that and nothing else, from any machine.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from function.metrics import SCHEMA
from function.roles import OPTIONAL, REQUIRED

from . import directvpc
from .alerting import (
    LOG_POLICY_FILE,
    METRIC_POLICY_FILES,
    POLICY_FILES,
    Monitoring,
    descriptor,
    load_policy_file,
    render_policy,
)
from .gcloud import Gcloud, GcloudError
from .spec import (
    ATTEMPT_DEADLINE_S,
    INVOKER_ID,
    MANAGED_LABEL,
    MAX_INSTANCES,
    MEMORY,
    NAME,
    RUNTIME,
    TIMEOUT_S,
    Spec,
)

DASHBOARD_FILE = Path(__file__).resolve().parent / "dashboard.json"
PUBLIC = ("allUsers", "allAuthenticatedUsers")
VERTEX = "aiplatform.googleapis.com"
_MANIFEST = re.compile(r"granted=([a-zA-Z./,]*); audit=([01])(?:; build=([a-z0-9@.-]+))?")
MANAGEABLE_ROLES = set(REQUIRED) | set(OPTIONAL)
# The APIs a deploy and the canary use, as Service Usage names them: Cloud Functions (gen2) builds with Cloud Build,
# stores the image in Artifact Registry and runs on Cloud Run (Cloud Functions "Deploy a Cloud Run function":
# enable the Cloud Functions, Cloud Build, Artifact Registry, Cloud Run and Logging APIs); Cloud Scheduler triggers
# it; the canary calls Vertex AI, Monitoring, Logging and IAM (README, "Roles the deployer needs").
REQUIRED_APIS = (
    "cloudfunctions.googleapis.com",
    "run.googleapis.com",
    "cloudbuild.googleapis.com",
    "artifactregistry.googleapis.com",
    "cloudscheduler.googleapis.com",
    "monitoring.googleapis.com",
    "logging.googleapis.com",
    "iam.googleapis.com",
    "aiplatform.googleapis.com",
)
# A job is built from the same source by Cloud Build into Artifact Registry and runs on Cloud Run (Cloud Run "Deploy
# jobs from source"); it needs no Cloud Functions API.
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"  # the OAuth scope Google APIs accept
JOB_APIS = tuple(api for api in REQUIRED_APIS if api != "cloudfunctions.googleapis.com")
# The job's container runs the canary's job entry point (function/cli.py `job`): one run, metrics written, the log
# line on stdout, the verdict as the exit status.
JOB_COMMAND = ("python",)
JOB_ARGS = ("-m", "function", "job")
# Cloud Run jobs' Direct VPC egress, as gcloud writes it on the execution template (Cloud Run Admin API v1,
# run.googleapis.com/network-interfaces and run.googleapis.com/vpc-access-egress annotations).
NETWORK_ANNOTATION = "run.googleapis.com/network-interfaces"
EGRESS_ANNOTATION = "run.googleapis.com/vpc-access-egress"
# The role Google documents for the account that builds a function ("Troubleshoot Cloud Run functions", build
# service account missing permissions; docs/google-behaviour.md, "Function builds"). Editor and owner hold its
# permissions too (projects whose default compute account still has Editor), so they need no grant.
BUILD_ROLE = "roles/cloudbuild.builds.builder"
BUILD_SUFFICIENT = {BUILD_ROLE, "roles/editor", "roles/owner"}
DASHBOARD_KEY_LABEL = f"{MANAGED_LABEL[0]}-{MANAGED_LABEL[1]}"
UNLABELLED = f"same name, but no label {MANAGED_LABEL[0]}={MANAGED_LABEL[1]}: not created by this tool, left alone"


@dataclass
class Change:
    resource: str
    action: str  # created | updated | enabled | unchanged | deleted | absent | kept | warning
    detail: str = ""


# What a dry run says instead of what a run did.
WOULD = {"created": "would create", "updated": "would update", "deleted": "would delete", "enabled": "would enable"}


def shown_action(action: str, dry_run: bool) -> str:
    return WOULD.get(action, action) if dry_run else action


class Refused(RuntimeError):
    """A preflight check failed: nothing was changed in the project; the message is one line saying why."""


@dataclass
class Manifest:
    granted: set[str] = field(default_factory=set)
    audit: bool = False
    build: str | None = None  # the build account this tool granted BUILD_ROLE to

    def text(self) -> str:
        # A service account's description holds at most 256 bytes: kept short enough for the longest e-mails.
        build = f"; build={self.build}" if self.build else ""
        return f"Invoker of the Gemini canary. granted={','.join(sorted(self.granted))}; audit={int(self.audit)}{build}"

    @classmethod
    def parse(cls, description: str | None) -> Manifest:
        match = _MANIFEST.search(description or "")
        if match is None:
            return cls()
        granted = {r for r in match.group(1).split(",") if r in MANAGEABLE_ROLES}
        return cls(granted=granted, audit=match.group(2) == "1", build=match.group(3))


def source_hash(root: Path) -> str:
    """What gets uploaded (see .gcloudignore): the function package and requirements.txt."""
    digest = hashlib.sha256()
    for path in sorted([*root.joinpath("function").glob("*.py"), root / "main.py", root / "requirements.txt"]):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def member(email: str) -> str:
    return f"serviceAccount:{email}"


def _members(policy: dict[str, Any], which: Callable[[str], bool]) -> list[tuple[str, str]]:
    """(role, member) of every member of a policy's bindings that `which` selects, conditional bindings included."""
    return [(b.get("role", ""), m) for b in policy.get("bindings", []) for m in b.get("members", []) if which(m)]


def _managed(resource: dict[str, Any] | None) -> bool:
    """Whether a resource (REST form) carries the tool's label: managed-by=gemini-canary, or on a dashboard the
    key-only label deploy/dashboard.json has always carried (the console shows dashboard labels by key)."""
    labels = (resource or {}).get("labels", {})
    return bool(labels.get(MANAGED_LABEL[0]) == MANAGED_LABEL[1] or DASHBOARD_KEY_LABEL in labels)


def _target_kind(job: dict[str, Any]) -> str:
    """What a Scheduler job calls and with which token: pubsub | oauth (an HTTP target with an OAuth token) | oidc."""
    if "pubsubTarget" in job:
        return "pubsub"
    return "oauth" if "oauthToken" in job.get("httpTarget", {}) else "oidc"


def write_dashboard(gcloud: Gcloud, doc: dict[str, Any], current: dict[str, Any] | None, shown: str) -> str:
    """Create the dashboard, or update `current` with its etag (a concurrent change is refused), from a temporary
    file the plan names `shown`; "created" or "updated"."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({**doc, "etag": current["etag"]} if current and current.get("etag") else doc, handle)
    try:
        verb = ["create"] if current is None else ["update", current["name"]]
        gcloud.change(
            "monitoring", "dashboards", *verb, f"--config-from-file={handle.name}", shown={handle.name: shown}
        )
    finally:
        Path(handle.name).unlink(missing_ok=True)
    return "created" if current is None else "updated"


def _managed_job(job: dict[str, Any]) -> bool:
    """Whether a Cloud Run job (v1 form) carries the tool's label."""
    return bool(job.get("metadata", {}).get("labels", {}).get(MANAGED_LABEL[0]) == MANAGED_LABEL[1])


def _denied(err: GcloudError) -> bool:
    """Whether gcloud's error is a permission denial (its wording varies by command: the status name, or the
    sentence gcloud writes for a 403)."""
    return any(marker in err.stderr for marker in ("PERMISSION_DENIED", "does not have permission", "403"))


def _data_read_on(policy: dict[str, Any]) -> bool:
    """Whether a project policy turns on DATA_READ audit logs for Vertex AI."""
    ours = next((c for c in policy.get("auditConfigs", []) if c.get("service") == VERTEX), None)
    return ours is not None and any(lc.get("logType") == "DATA_READ" for lc in ours.get("auditLogConfigs", []))


class Project:
    def __init__(
        self,
        spec: Spec,
        project: str,
        gcloud: Gcloud,
        monitoring: Monitoring,
        monitored: frozenset[str] | None = None,
    ) -> None:
        self.spec = spec
        # central alerting: the project numbers the scoping project's metrics scope held when this run read it
        self.monitored = monitored if monitored is not None else frozenset()
        self.number = ""  # the project's number (read in the preflight)
        self.project = project
        self.gcloud = gcloud
        self.monitoring = monitoring
        self.changes: list[Change] = []
        self.invoker = spec.invoker(project)
        self.workload = spec.workload(project)
        self.manifest = Manifest()
        self._policy_doc: dict[str, Any] | None = None
        self._builder: str | None = None
        self._saved_manifest: str | None = None  # the invoker account's description as it stands
        self.progress: Callable[[str], None] = lambda text: None

    def note(self, resource: str, action: str, detail: str = "") -> None:
        self.changes.append(Change(resource, action, detail))
        shown = shown_action(action, self.gcloud.dry_run)
        self.progress(f"{resource}: {shown}{' — ' + detail if detail else ''}")

    # preflight ----------------------------------------------------------------------------------------

    def preflight(self, command: str) -> None:
        """Checks made before anything changes, each refusing the project with one line: the project exists and
        the deployer can see it; (apply) the workload's account is in it and exists; the APIs to be enabled."""
        self._project_visible()
        if command == "apply":
            self._workload_account()

    def _project_visible(self) -> None:
        try:
            found = self.gcloud.read("projects", "describe", self.project)
        except GcloudError as err:
            if not _denied(err):
                raise
            found = None  # Resource Manager answers 403 alike for a project that is not there and one not yours
        if found is not None:
            self.number = str(found.get("projectNumber", ""))
            self.progress("preflight: project found")
            return
        try:
            visible = [str(p.get("projectId", "")) for p in self.gcloud.read("projects", "list") or []]
        except GcloudError:
            visible = []
        closest = difflib.get_close_matches(self.project, visible, n=1)
        hint = f"; the closest project id you can see: {closest[0]}" if closest else ""
        raise Refused(f"project {self.project} not found, or the deploying account cannot see it{hint}")

    def _workload_account(self) -> None:
        account = self.workload
        home = account.split("@", 1)[1].removesuffix(".iam.gserviceaccount.com") if "@" in account else ""
        if account.endswith(".iam.gserviceaccount.com") and home != self.project:
            raise Refused(
                f"service account {account} is in project {home}, not {self.project}: the function runs as an "
                f"account of its own project (for a fleet: NAME@{{project}}.iam.gserviceaccount.com)"
            )
        try:
            found = self.gcloud.read("iam", "service-accounts", "describe", account)
        except GcloudError as err:
            if not _denied(err):
                raise
            raise Refused(
                f"service account {account}: the deploying account may not read it (iam.serviceAccounts.get in "
                f"{self.project}, e.g. roles/iam.serviceAccountAdmin)"
            ) from None
        if found is None:
            raise Refused(f"service account {account} does not exist in project {self.project}")
        self.progress(f"preflight: service account {account} found")

    def _apis(self) -> None:
        """Enable the APIs the canary and its deploy use that are off (Service Usage); say which."""
        needed = [*(JOB_APIS if self.spec.kind == "job" else REQUIRED_APIS)]
        needed += ["pubsub.googleapis.com"] if self.spec.pubsub else []
        try:
            listed = self.gcloud.read("services", "list", "--enabled") or []
        except GcloudError as err:
            if not _denied(err):
                raise
            self.note(
                "APIs",
                "warning",
                "not checked: the deploying account may not list the project's services (serviceusage.services.list, "
                "e.g. roles/serviceusage.serviceUsageConsumer)",
            )
            return
        enabled = {str(s.get("config", {}).get("name") or s.get("name", "").rsplit("/", 1)[-1]) for s in listed}
        missing = [api for api in needed if api not in enabled]
        if not missing:
            self.note("APIs", "unchanged", f"all {len(needed)} enabled")
            return
        self.gcloud.change("services", "enable", *missing)
        self.note("APIs", "enabled", ", ".join(missing))

    # apply --------------------------------------------------------------------------------------------

    def apply(self) -> None:
        self.preflight("apply")
        self._apis()
        self._invoker_account()
        self._grants()
        self._build_account()
        self._data_access_logs()
        self._save_manifest()  # what was removed above is no longer in the record
        if self.spec.kind == "job":
            self._other_kind_gone("function")
            self._job()
            self._job_invoker_binding()  # Scheduler's OAuth token runs the job: run.invoker on the job only
            self._scheduler(self._run_job_url())
        else:
            self._other_kind_gone("job")
            if self.spec.pubsub:
                self._topic()
            uri = self._function()
            self._invoker_binding()  # Scheduler's OIDC token, or the Pub/Sub trigger's push, both need run.invoker
            self._scheduler(uri)
        self._descriptors()  # before the policies, which name these metric types
        if self.spec.scoping_project:
            self._join_scope()
        channels = self._channels()
        self._policies(channels)
        if self.spec.scoping_project:
            self._dashboard_gone("the fleet's dashboard is in the scoping project")
        else:
            self._dashboard()
        self._save_manifest()

    # central alerting ---------------------------------------------------------------------------------

    def _scope_gcloud(self) -> Gcloud:
        """gcloud for the scoping project (metrics-scopes commands name it with --project); its plan is this
        project's."""
        assert self.spec.scoping_project is not None
        return Gcloud(self.spec.scoping_project, dry_run=self.gcloud.dry_run, plan=self.gcloud.plan)

    def _join_scope(self) -> None:
        """This project in the scoping project's metrics scope (read once for the fleet before the projects ran;
        adding one already there is answered 409, which means another run added it meanwhile)."""
        scoping = self.spec.scoping_project
        assert scoping is not None
        if self.project == scoping or (self.number and self.number in self.monitored):
            self.note("metrics scope", "unchanged", f"in the metrics scope of {scoping}")
            return
        try:
            self._scope_gcloud().change("beta", "monitoring", "metrics-scopes", "create", f"projects/{self.project}")
        except GcloudError as err:
            if "ALREADY_EXISTS" in err.stderr or "already exists" in err.stderr:
                self.note("metrics scope", "unchanged", f"in the metrics scope of {scoping}")
                return
            if "RESOURCE_EXHAUSTED" in err.stderr or "375" in err.stderr:
                # Cloud Monitoring's quotas page: at most 375 projects in one metrics scope
                raise RuntimeError(
                    f"the metrics scope of {scoping} is full: Cloud Monitoring supports at most 375 monitored "
                    "projects a scope; give this part of the fleet another --scoping-project"
                ) from None
            raise
        self.note("metrics scope", "created", f"added to the metrics scope of {scoping}")

    def _leave_scope(self) -> None:
        scoping = self.spec.scoping_project
        assert scoping is not None
        if self.project == scoping:
            return  # a scope always holds its own project
        if not (self.number and self.number in self.monitored):
            self.note("metrics scope", "absent", f"not in the metrics scope of {scoping}")
            return
        try:
            self._scope_gcloud().change("beta", "monitoring", "metrics-scopes", "delete", f"projects/{self.project}")
        except GcloudError as err:
            if not err.not_found:
                raise
        self.note("metrics scope", "deleted", f"removed from the metrics scope of {scoping}")

    def _dashboard_gone(self, why: str) -> None:
        """The project's own dashboard removed (it was made in the per-project layout)."""
        title = json.loads(DASHBOARD_FILE.read_text())["displayName"]
        for dashboard in self.gcloud.read("monitoring", "dashboards", "list") or []:
            if dashboard.get("displayName") == title and _managed(dashboard):
                self.gcloud.change("monitoring", "dashboards", "delete", dashboard["name"])
                self.note("dashboard", "deleted", why)

    def _invoker_account(self) -> None:
        current = self.gcloud.read("iam", "service-accounts", "describe", self.invoker)
        if current is None:
            self.gcloud.change(
                "iam",
                "service-accounts",
                "create",
                INVOKER_ID,
                "--display-name=Gemini canary invoker",
                f"--description={Manifest().text()}",
            )
            self._saved_manifest = Manifest().text()
            self.note("invoker service account", "created", self.invoker)
            return
        self._saved_manifest = current.get("description")
        self.manifest = Manifest.parse(current.get("description"))
        self.note("invoker service account", "unchanged", self.invoker)

    def _policy(self) -> dict[str, Any]:
        """The project's IAM policy, read once until this run changes it (a stale etag would be refused)."""
        if self._policy_doc is None:
            self._policy_doc = self.gcloud.read("projects", "get-iam-policy", self.project) or {}
        return json.loads(json.dumps(self._policy_doc))

    @staticmethod
    def _held(policy: dict[str, Any], who: str) -> set[str]:
        """The roles `who` holds unconditionally in a policy."""
        return {b["role"] for b in policy.get("bindings", []) if who in b.get("members", []) and "condition" not in b}

    def _grants(self) -> None:
        policy = self._policy()
        who = member(self.workload)
        held = self._held(policy, who)
        for role in self.spec.roles:
            if role in held:
                self.note(f"grant {role}", "unchanged")
        for role in sorted(self.manifest.granted - set(self.spec.roles)):
            if role in held:
                self._remove_grant(who, role, "no longer requested")
            self.manifest.granted.discard(role)
        missing = [role for role in self.spec.roles if role not in held]
        if not missing:
            return
        # Recorded before they are made: whatever fails from here on, teardown knows what this tool added.
        self.manifest.granted.update(missing)
        self._save_manifest()
        try:
            for role in missing:
                self._add_grant(who, role)
                self.note(f"grant {role}", "created", who)
        except BaseException:
            self._settle(lambda policy: self.manifest.granted.difference_update(set(missing) - self._held(policy, who)))
            raise

    def _add_grant(self, who: str, role: str) -> None:
        self.gcloud.change(
            "projects",
            "add-iam-policy-binding",
            self.project,
            f"--member={who}",
            f"--role={role}",
            "--condition=None",
        )
        self._policy_doc = None

    def _settle(self, adjust: Callable[[dict[str, Any]], None]) -> None:
        """After a failed change: keep in the record only what the project's policy shows this run did, so that a
        refused grant is not removed later from someone who was given it by hand. If even that fails, the record
        stays as written before the change (teardown removes only roles still held)."""
        try:
            self._policy_doc = None
            adjust(self._policy())
            self._save_manifest()
        except Exception:  # noqa: BLE001, S110 - the change's own error is the one to report
            pass

    def builder(self) -> str:
        """The account Cloud Build builds the function as (the default one needs the project number)."""
        if self._builder is None:
            number = ""
            if not self.spec.build_service_account:
                project = self.gcloud.read("projects", "describe", self.project) or {}
                number = str(project.get("projectNumber", ""))
                if not number and self.gcloud.dry_run:
                    number = "PROJECT_NUMBER"  # a project this dry run would find first
                elif not number:
                    raise RuntimeError(f"cannot read the project number of {self.project}")
            self._builder = self.spec.builder(self.project, number)
        return self._builder

    def _build_account(self) -> None:
        """Make sure the build account holds the documented build role; record a grant this tool made."""
        account = self.builder()
        who = member(account)
        policy = self._policy()
        held = self._held(policy, who)
        previous = self.manifest.build
        if previous and previous != account:
            old = member(previous)
            if any(b["role"] == BUILD_ROLE and old in b.get("members", []) for b in policy.get("bindings", [])):
                self._remove_grant(old, BUILD_ROLE, f"{previous} no longer builds the function")
            self.manifest.build = None
        if held & BUILD_SUFFICIENT:
            self.note(
                f"build account {BUILD_ROLE}", "unchanged", f"{account} holds {sorted(held & BUILD_SUFFICIENT)[0]}"
            )
            return
        self.manifest.build = account  # recorded before it is granted (see _grants)
        self._save_manifest()
        try:
            self._add_grant(who, BUILD_ROLE)
        except BaseException:

            def adjust(policy: dict[str, Any]) -> None:
                if BUILD_ROLE not in self._held(policy, who):
                    self.manifest.build = None

            self._settle(adjust)
            raise
        self.note(f"build account {BUILD_ROLE}", "created", account)

    def _descriptors(self) -> None:
        for metric in SCHEMA:
            wanted = descriptor(metric)
            action = self.monitoring.ensure_descriptor(wanted)
            self.note(f"metric descriptor {metric.name}", action, f"unit {metric.unit}")

    def _remove_grant(self, who: str, role: str, why: str = "") -> None:
        self.gcloud.change(
            "projects",
            "remove-iam-policy-binding",
            self.project,
            f"--member={who}",
            f"--role={role}",
            "--condition=None",
        )
        self._policy_doc = None
        self.note(f"grant {role}", "deleted", why)

    def _data_access_logs(self) -> None:
        policy = self._policy()
        configs = policy.get("auditConfigs", [])
        on = _data_read_on(policy)
        if self.spec.data_access_logs and not on:
            others = [c for c in configs if c.get("service") != VERTEX]
            policy["auditConfigs"] = [
                *others,
                {"service": VERTEX, "auditLogConfigs": [{"logType": "DATA_READ"}, {"logType": "DATA_WRITE"}]},
            ]
            self.manifest.audit = True  # recorded before it is turned on (see _grants)
            self._save_manifest()
            try:
                self._set_policy(policy)
            except BaseException:

                def adjust(now: dict[str, Any]) -> None:
                    self.manifest.audit = _data_read_on(now)

                self._settle(adjust)
                raise
            self.note("Data Access audit logs (aiplatform)", "created", "DATA_READ, DATA_WRITE")
        elif not self.spec.data_access_logs and on and self.manifest.audit:
            policy["auditConfigs"] = [c for c in configs if c.get("service") != VERTEX]
            self._set_policy(policy)
            self.manifest.audit = False
            self.note("Data Access audit logs (aiplatform)", "deleted", "no longer requested")
        else:
            self.note("Data Access audit logs (aiplatform)", "unchanged", "on" if on else "off")

    def _set_policy(self, policy: dict[str, Any]) -> None:
        """set-iam-policy from a file: gcloud adds auditConfigs to the update mask when the file has them."""
        self._policy_doc = None
        self._with_policy_file(policy, "projects", "set-iam-policy", self.project)

    def _with_policy_file(self, policy: dict[str, Any], *argv: str, region: str | None = None) -> None:
        """A `gcloud … set-iam-policy` with the policy (its etag included: a concurrent change is refused) in a
        temporary file."""
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
            json.dump(policy, handle)
        try:
            self.gcloud.change(*argv, handle.name, *([region] if region else []), shown={handle.name: "POLICY.json"})
        finally:
            Path(handle.name).unlink(missing_ok=True)

    def _topic(self) -> None:
        if self.gcloud.read("pubsub", "topics", "describe", NAME) is None:
            self.gcloud.change("pubsub", "topics", "create", NAME, f"--labels={MANAGED_LABEL[0]}={MANAGED_LABEL[1]}")
            self.note("pub/sub topic", "created", NAME)
        else:
            self.note("pub/sub topic", "unchanged", NAME)

    def _desired_function(self) -> dict[str, Any]:
        return {
            "runtime": RUNTIME,
            "entryPoint": "canary_pubsub" if self.spec.pubsub else "canary",
            "buildEnv": {"GOOGLE_FUNCTION_SOURCE": "function/main.py"},
            "serviceAccount": self.workload,
            "buildServiceAccount": f"projects/{self.project}/serviceAccounts/{self.builder()}",
            "memory": MEMORY,
            "timeout": TIMEOUT_S,
            "maxInstances": MAX_INSTANCES,
            "env": {"CANARY_TARGETS": ",".join(self.spec.targets)},
            "labels": {MANAGED_LABEL[0]: MANAGED_LABEL[1], "canary-source": source_hash(self.spec.source)},
            "topic": f"projects/{self.project}/topics/{NAME}" if self.spec.pubsub else None,
        }

    @staticmethod
    def _observed_function(fn: dict[str, Any]) -> dict[str, Any]:
        build, service = fn.get("buildConfig", {}), fn.get("serviceConfig", {})
        env = {k: v for k, v in service.get("environmentVariables", {}).items() if k.startswith("CANARY_")}
        return {
            "runtime": build.get("runtime"),
            "entryPoint": build.get("entryPoint"),
            "buildEnv": {
                k: v for k, v in build.get("environmentVariables", {}).items() if k == "GOOGLE_FUNCTION_SOURCE"
            },
            "serviceAccount": service.get("serviceAccountEmail"),
            "buildServiceAccount": build.get("serviceAccount"),
            "memory": service.get("availableMemory"),
            "timeout": int(service.get("timeoutSeconds", 0)),
            "maxInstances": int(service.get("maxInstanceCount", 0)),
            "env": env,
            "labels": {k: v for k, v in fn.get("labels", {}).items() if k in (MANAGED_LABEL[0], "canary-source")},
            "topic": fn.get("eventTrigger", {}).get("pubsubTopic"),
        }

    def _function(self) -> str:
        region = f"--region={self.spec.region}"
        current = self.gcloud.read("functions", "describe", NAME, region, "--gen2")
        desired = self._desired_function()
        if current is not None and current.get("state") == "ACTIVE" and self._observed_function(current) == desired:
            self.note("function", "unchanged", current.get("serviceConfig", {}).get("uri", ""))
            self._function_egress(current)
            return str(current.get("serviceConfig", {}).get("uri", ""))
        trigger = (
            [f"--trigger-topic={NAME}", f"--trigger-service-account={self.invoker}"]
            if self.spec.pubsub
            else ["--trigger-http"]
        )
        labels = ",".join(f"{k}={v}" for k, v in desired["labels"].items())
        if not self.gcloud.dry_run:
            self.progress("function: deploying (a build, then a revision; on Google this takes minutes)")
        result = self.gcloud.change(
            "functions",
            "deploy",
            NAME,
            "--gen2",
            region,
            f"--runtime={RUNTIME}",
            f"--source={self.spec.source}",
            f"--entry-point={desired['entryPoint']}",
            *trigger,
            "--no-allow-unauthenticated",
            f"--service-account={self.workload}",
            f"--build-service-account={desired['buildServiceAccount']}",
            "--set-build-env-vars=GOOGLE_FUNCTION_SOURCE=function/main.py",
            f"--set-env-vars=^;^CANARY_TARGETS={desired['env']['CANARY_TARGETS']}",
            f"--memory={MEMORY}",
            f"--timeout={TIMEOUT_S}s",
            f"--max-instances={MAX_INSTANCES}",
            f"--update-labels={labels}",
        )
        self.note("function", "created" if current is None else "updated", self._function_diff(current, desired))
        after = result if isinstance(result, dict) and result.get("serviceConfig", {}).get("uri") else None
        if after is None and not self.gcloud.dry_run:
            after = self.gcloud.read("functions", "describe", NAME, region, "--gen2")
        self._function_egress(after if after is not None else current)
        return str((after or {}).get("serviceConfig", {}).get("uri", "https://FUNCTION-URL-AFTER-DEPLOY"))

    def _function_egress(self, function: dict[str, Any] | None) -> None:
        """The function's Direct VPC egress as asked (--network/--subnet/--vpc-egress), set through the Cloud
        Functions API where gcloud has no flag for it (deploy/directvpc.py); nothing is said when neither the
        function nor the request has any."""
        wanted = directvpc.desired(self.spec.network, self.spec.subnet, self.spec.vpc_egress)
        have = directvpc.observed(function or {})
        shown = directvpc.shown(wanted if wanted is not None else have)
        if wanted == have:
            if wanted is not None:
                self.note("direct VPC egress", "unchanged", shown)
            return
        name = f"projects/{self.project}/locations/{self.spec.region}/functions/{NAME}"
        directvpc.set_egress(self.gcloud, name, wanted)
        action = "created" if have is None else "deleted" if wanted is None else "updated"
        self.note("direct VPC egress", action, shown)

    def _function_diff(self, current: dict[str, Any] | None, desired: dict[str, Any]) -> str:
        if current is None:
            return f"as {self.workload}"
        observed = self._observed_function(current)
        return ", ".join(sorted(k for k in desired if observed.get(k) != desired[k])) or "state"

    # the job kind ------------------------------------------------------------------------------------

    def _run_job_url(self) -> str:
        """The Cloud Run Admin API URL that starts one execution of the job (Cloud Run "Execute jobs on a schedule":
        the regional v1 endpoint, namespace = project)."""
        region = self.spec.region
        return (
            f"https://{region}-run.googleapis.com/apis/run.googleapis.com/v1/namespaces/{self.project}/jobs/{NAME}:run"
        )

    def _desired_job(self) -> dict[str, Any]:
        return {
            "serviceAccount": self.workload,
            "command": list(JOB_COMMAND),
            "args": list(JOB_ARGS),
            "env": {"CANARY_TARGETS": ",".join(self.spec.targets)},
            "maxRetries": 0,  # a denial is not run again and counted twice
            "timeout": TIMEOUT_S,
            "memory": MEMORY,
            "labels": {MANAGED_LABEL[0]: MANAGED_LABEL[1], "canary-source": source_hash(self.spec.source)},
            "network": self._desired_network(),
        }

    def _desired_network(self) -> dict[str, str] | None:
        if self.spec.network is None and self.spec.subnet is None:
            return None
        interface = {k: v for k, v in (("network", self.spec.network), ("subnetwork", self.spec.subnet)) if v}
        return {**interface, "egress": self.spec.vpc_egress or "all-traffic"}

    @staticmethod
    def _observed_job(job: dict[str, Any]) -> dict[str, Any]:
        execution = job.get("spec", {}).get("template", {})
        task = execution.get("spec", {}).get("template", {}).get("spec", {})
        container = (task.get("containers") or [{}])[0]
        env = {
            e.get("name"): e.get("value") for e in container.get("env", []) if str(e.get("name")).startswith("CANARY_")
        }
        annotations = execution.get("metadata", {}).get("annotations", {})
        network = None
        if NETWORK_ANNOTATION in annotations:
            try:
                first = (json.loads(annotations[NETWORK_ANNOTATION]) or [{}])[0]
            except (ValueError, TypeError, IndexError, KeyError):
                first = {}
            interface = {k: str(first[k]) for k in ("network", "subnetwork") if first.get(k)}
            network = {**interface, "egress": annotations.get(EGRESS_ANNOTATION, "private-ranges-only")}
        labels = job.get("metadata", {}).get("labels", {})
        return {
            "serviceAccount": task.get("serviceAccountName"),
            "command": list(container.get("command", [])),
            "args": list(container.get("args", [])),
            "env": env,
            "maxRetries": int(task.get("maxRetries", 3)),  # Cloud Run's default when unset
            "timeout": int(task.get("timeoutSeconds", 0)),
            "memory": container.get("resources", {}).get("limits", {}).get("memory"),
            "labels": {k: v for k, v in labels.items() if k in (MANAGED_LABEL[0], "canary-source")},
            "network": network,
        }

    def _job(self) -> None:
        region = f"--region={self.spec.region}"
        current = self.gcloud.read("run", "jobs", "describe", NAME, region)
        desired = self._desired_job()
        if current is not None and not _managed_job(current):
            raise RuntimeError(
                f"a Cloud Run job {NAME} exists in {self.spec.region} without the label "
                f"{MANAGED_LABEL[0]}={MANAGED_LABEL[1]}: this tool did not create it and leaves it alone"
            )
        if current is not None and self._observed_job(current) == desired:
            self.note("job", "unchanged", f"as {self.workload}")
            return
        labels = ",".join(f"{k}={v}" for k, v in desired["labels"].items())
        network: list[str] = []
        if desired["network"] is not None:
            wanted = desired["network"]
            network = [
                *([f"--network={wanted['network']}"] if "network" in wanted else []),
                *([f"--subnet={wanted['subnetwork']}"] if "subnetwork" in wanted else []),
                f"--vpc-egress={wanted['egress']}",
            ]
        elif current is not None and self._observed_job(current)["network"] is not None:
            network = ["--clear-network"]
        if not self.gcloud.dry_run:
            self.progress("job: deploying (the source is uploaded and built; on Google this takes minutes)")
        self.gcloud.change(
            "run",
            "jobs",
            "deploy",
            NAME,
            region,
            f"--source={self.spec.source}",
            f"--service-account={self.workload}",
            f"--command={','.join(JOB_COMMAND)}",
            f"--args={','.join(JOB_ARGS)}",
            f"--set-env-vars=^;^CANARY_TARGETS={desired['env']['CANARY_TARGETS']}",
            "--max-retries=0",
            f"--task-timeout={TIMEOUT_S}s",
            f"--memory={MEMORY}",
            f"--labels={labels}",
            *network,
        )
        what = f"as {self.workload}" if current is None else self._job_diff(current, desired)
        self.note("job", "created" if current is None else "updated", what)

    def _job_diff(self, current: dict[str, Any], desired: dict[str, Any]) -> str:
        observed = self._observed_job(current)
        return ", ".join(sorted(k for k in desired if observed.get(k) != desired[k])) or "state"

    def _job_invoker_binding(self) -> None:
        """roles/run.invoker for the invoker account on this job only (what Google's scheduling page asks of the
        account that runs a job); every public member removed."""
        region = f"--region={self.spec.region}"
        policy: dict[str, Any] = self.gcloud.read("run", "jobs", "get-iam-policy", NAME, region) or {}
        for role, who in _members(policy, lambda m: m in PUBLIC):
            self.gcloud.change("run", "jobs", "remove-iam-policy-binding", NAME, region, f"--member={who}",
                               f"--role={role}")  # fmt: skip
            self.note("public access", "deleted", f"{who} removed from {role}")
        invokers = {m for b in policy.get("bindings", []) if b.get("role") == "roles/run.invoker"
                    for m in b.get("members", [])}  # fmt: skip
        if member(self.invoker) in invokers:
            self.note("invoker binding", "unchanged", f"roles/run.invoker for {self.invoker}")
            return
        self.gcloud.change(
            "run", "jobs", "add-iam-policy-binding", NAME, region, f"--member={member(self.invoker)}",
            "--role=roles/run.invoker",
        )  # fmt: skip
        self.note("invoker binding", "created", f"roles/run.invoker on the job {NAME} only, for {self.invoker}")

    def _other_kind_gone(self, other: str) -> None:
        """A project switched kinds: the other kind's canary (created by this tool) is deleted, so one canary
        runs, not two."""
        self._delete(*self._canary(other), quiet_absent=True, why=f"the canary is now a {self.spec.kind}")

    def _canary(self, kind: str) -> tuple[str, tuple[str, ...], tuple[str, ...], Callable[[dict[str, Any]], bool]]:
        """The canary of one kind as `_delete` takes it: its name in the summary, how to read and delete it, and
        whether this tool created it."""
        region = f"--region={self.spec.region}"
        if kind == "function":
            return (
                "function",
                ("functions", "describe", NAME, region, "--gen2"),
                ("functions", "delete", NAME, region, "--gen2"),
                lambda fn: fn.get("labels", {}).get(MANAGED_LABEL[0]) == MANAGED_LABEL[1],
            )
        return "job", ("run", "jobs", "describe", NAME, region), ("run", "jobs", "delete", NAME, region), _managed_job

    def _service_policy(self) -> dict[str, Any]:
        """The IAM policy of the function's Cloud Run service, where invokers are granted."""
        policy: dict[str, Any] = (
            self.gcloud.read("run", "services", "get-iam-policy", NAME, f"--region={self.spec.region}") or {}
        )
        return policy

    def _invoker_binding(self) -> None:
        """roles/run.invoker for the invoker account on this function's service only; every public member
        (allUsers, allAuthenticatedUsers) removed from every role, and the policy read again to prove it."""
        region = f"--region={self.spec.region}"
        policy = self._service_policy()
        changed = False
        public = _members(policy, lambda m: m in PUBLIC)
        if public:
            kept = json.loads(json.dumps(policy))
            kept["bindings"] = [
                {**b, "members": [m for m in b.get("members", []) if m not in PUBLIC]}
                for b in kept.get("bindings", [])
                if any(m not in PUBLIC for m in b.get("members", []))
            ]
            self._with_policy_file(kept, "run", "services", "set-iam-policy", NAME, region=region)
            for role, who in public:
                self.note("public access", "deleted", f"{who} removed from {role}")
            policy, changed = kept, True
        invokers = {
            m for b in policy.get("bindings", []) if b.get("role") == "roles/run.invoker" for m in b.get("members", [])
        }
        if member(self.invoker) in invokers:
            self.note("invoker binding", "unchanged", f"roles/run.invoker for {self.invoker}")
        else:
            self.gcloud.change(
                "functions", "add-invoker-policy-binding", NAME, region, f"--member={member(self.invoker)}"
            )
            self.note("invoker binding", "created", f"roles/run.invoker on {NAME} only, for {self.invoker}")
            changed = True
        if changed and not self.gcloud.dry_run:
            policy = self._service_policy()
            left = _members(policy, lambda m: m in PUBLIC)
            if left:
                raise RuntimeError(
                    f"the function {NAME} is still public after its public members were removed: "
                    + ", ".join(f"{who} in {role}" for role, who in left)
                    + f"; remove them by hand (gcloud run services get-iam-policy {NAME} {region}) and run again"
                )
        for role, who in _members(policy, lambda m: m.startswith("domain:")):
            self.note(
                "domain-wide access",
                "warning",
                f"{who} holds {role} on the function's service: anyone in that domain has it; this tool never "
                f"grants it (gcloud run services remove-iam-policy-binding {NAME} {region} --member={who} "
                f"--role={role} removes it)",
            )

    def _scheduler(self, uri: str) -> None:
        location = f"--location={self.spec.region}"
        current = self.gcloud.read("scheduler", "jobs", "describe", NAME, location)
        common = [
            f"--schedule={self.spec.schedule}",
            f"--time-zone={self.spec.time_zone}",
            "--max-retry-attempts=0",
            "--description=Runs the Gemini access canary",
        ]
        if self.spec.pubsub:
            kind = "pubsub"  # gcloud has no --attempt-deadline for Pub/Sub jobs: publishing has no HTTP deadline
            target = [f"--topic={NAME}", "--message-body={}"]
        elif self.spec.kind == "job":
            # Cloud Run "Execute jobs on a schedule": an HTTP target POSTing to the job's :run URL with an OAuth
            # token (not OIDC: the Cloud Run Admin API takes access tokens) of an account holding run.invoker on it.
            kind = "http"
            target = [
                f"--attempt-deadline={ATTEMPT_DEADLINE_S}s",
                f"--uri={uri}",
                "--http-method=POST",
                f"--oauth-service-account-email={self.invoker}",
                f"--oauth-token-scope={CLOUD_PLATFORM}",
            ]
        else:
            kind = "http"
            target = [
                f"--attempt-deadline={ATTEMPT_DEADLINE_S}s",
                f"--uri={uri}",
                "--http-method=POST",
                # `create` takes --headers, `update` --update-headers (gcloud 528)
                f"--{'headers' if current is None else 'update-headers'}=Content-Type=application/json",
                "--message-body={}",
                f"--oidc-service-account-email={self.invoker}",
                f"--oidc-token-audience={uri}",
            ]
        if current is not None and self._job_matches(current, uri):
            self.note("scheduler job", "unchanged", self.spec.schedule)
            return
        if current is not None and _target_kind(current) != self._target_kind():
            # another kind of target or token (the canary changed kind): an update would keep the old token beside
            # the new one, which Scheduler refuses; the job is made again
            self.gcloud.change("scheduler", "jobs", "delete", NAME, location)
            self.gcloud.change("scheduler", "jobs", "create", kind, NAME, location, *common, *target)
            self.note("scheduler job", "updated", f"{self.spec.schedule}, now {self._target_kind()}")
            return
        verb = "create" if current is None else "update"
        self.gcloud.change("scheduler", "jobs", verb, kind, NAME, location, *common, *target)
        self.note("scheduler job", "created" if current is None else "updated", self.spec.schedule)

    def _target_kind(self) -> str:
        if self.spec.pubsub:
            return "pubsub"
        return "oauth" if self.spec.kind == "job" else "oidc"

    def _job_matches(self, job: dict[str, Any], uri: str) -> bool:
        retry = job.get("retryConfig", {})
        same = (
            job.get("schedule") == self.spec.schedule
            and job.get("timeZone", "Etc/UTC") == self.spec.time_zone
            and int(retry.get("retryCount", 0)) == 0
        )
        if self.spec.pubsub:
            return same and job.get("pubsubTarget", {}).get("topicName") == f"projects/{self.project}/topics/{NAME}"
        http = job.get("httpTarget", {})
        if self.spec.kind == "job":  # an OAuth token for the Admin API, no OIDC token beside it
            token_ok = http.get("oauthToken", {}).get("serviceAccountEmail") == self.invoker and "oidcToken" not in http
        else:  # an OIDC token for the function's URL
            oidc = http.get("oidcToken", {})
            token_ok = oidc.get("serviceAccountEmail") == self.invoker and oidc.get("audience") == uri
        return (
            same
            and token_ok
            and job.get("attemptDeadline") == f"{ATTEMPT_DEADLINE_S}s"
            and http.get("uri") == uri
            and http.get("httpMethod") == "POST"
        )

    def _channels(self) -> list[str]:
        names = []
        # with central alerting the channels named are the scoping project's: the central policies use them
        for channel in () if self.spec.scoping_project else self.spec.channels:
            name = (
                channel
                if channel.startswith("projects/")
                else f"projects/{self.project}/notificationChannels/{channel}"
            )
            if not self.monitoring.channel_exists(name):
                raise RuntimeError(f"notification channel {name} does not exist")
            names.append(name)
        if self.spec.notify_email:
            name, action = self.monitoring.ensure_email_channel(self.spec.notify_email)
            self.note("notification channel", action, self.spec.notify_email)
            names.append(name)
        return names

    def _policies(self, channels: list[str]) -> None:
        """The four policies; with central alerting only the log-match one (the metric ones are the scoping
        project's), and a metric policy left from the per-project layout is removed so that nothing pages twice."""
        existing = self.monitoring.managed_policies()
        files = (LOG_POLICY_FILE,) if self.spec.scoping_project else POLICY_FILES
        for file in files:
            desired = render_policy(load_policy_file(file), self.spec, channels)
            action = self.monitoring.ensure_policy(desired, existing)
            detail = "" if channels else "no notification channel: give --notify-email to be told"
            self.note(f"alert policy {desired['displayName']!r}", action, detail if self.spec.scoping_project else "")
        if self.spec.scoping_project:
            central = {load_policy_file(f)["displayName"] for f in METRIC_POLICY_FILES}
            for policy in existing:
                if policy.display_name in central:
                    self.monitoring.delete_policy(policy.name)
                    self.note(
                        f"alert policy {policy.display_name!r}", "deleted", f"central in {self.spec.scoping_project}"
                    )

    def _dashboard(self) -> None:
        """The dashboard, labelled managed-by=gemini-canary; one of the same name without the label is someone
        else's and is never changed."""
        doc = json.loads(DASHBOARD_FILE.read_text())
        doc["labels"] = {**doc.get("labels", {}), MANAGED_LABEL[0]: MANAGED_LABEL[1]}
        named = [
            d
            for d in self.gcloud.read("monitoring", "dashboards", "list") or []
            if d.get("displayName") == doc["displayName"]
        ]
        current = next((d for d in named if _managed(d)), None)
        for other in named:
            if not _managed(other):
                self.note("dashboard", "kept", f"{other.get('name')}: {UNLABELLED}")
        if current is None and named:
            raise RuntimeError(
                f"a dashboard named {doc['displayName']!r} exists ({named[0].get('name')}) without the label "
                f"{MANAGED_LABEL[0]}={MANAGED_LABEL[1]}: this tool did not create it and leaves it alone; rename it, "
                "or add that label to hand it to this tool"
            )
        if current is not None and all(current.get(k) == doc[k] for k in ("mosaicLayout", "labels")):
            self.note("dashboard", "unchanged")
            return
        self.note("dashboard", write_dashboard(self.gcloud, doc, current, "deploy/dashboard.json"))

    def _save_manifest(self) -> None:
        text = self.manifest.text()
        if self._saved_manifest != text:
            self.gcloud.change("iam", "service-accounts", "update", self.invoker, f"--description={text}")
            self._saved_manifest = text

    # teardown -------------------------------------------------------------------------------------------

    def teardown(self) -> None:
        self.preflight("teardown")
        if self.spec.scoping_project:
            self._leave_scope()
        account = self.gcloud.read("iam", "service-accounts", "describe", self.invoker)
        self.manifest = Manifest.parse((account or {}).get("description"))
        location = f"--location={self.spec.region}"
        self._delete(
            "scheduler job",
            ("scheduler", "jobs", "describe", NAME, location),
            ("scheduler", "jobs", "delete", NAME, location),
            lambda job: job.get("description") == "Runs the Gemini access canary",
        )
        self._delete(*self._canary("function"))
        self._delete(*self._canary("job"), quiet_absent=True)  # a function-kind project has no job to mention
        topic = self.gcloud.read("pubsub", "topics", "describe", NAME)
        if topic is not None and topic.get("labels", {}).get(MANAGED_LABEL[0]) == MANAGED_LABEL[1]:
            self.gcloud.change("pubsub", "topics", "delete", NAME)
            self.note("pub/sub topic", "deleted")
        title = json.loads(DASHBOARD_FILE.read_text())["displayName"]
        for dashboard in self.gcloud.read("monitoring", "dashboards", "list") or []:
            if dashboard.get("displayName") != title:
                continue
            if _managed(dashboard):
                self.gcloud.change("monitoring", "dashboards", "delete", dashboard["name"])
                self.note("dashboard", "deleted")
            else:
                self.note("dashboard", "kept", f"{dashboard.get('name')}: {UNLABELLED}")
        for policy in self.monitoring.managed_policies():
            self.monitoring.delete_policy(policy.name)
            self.note(f"alert policy {policy.display_name!r}", "deleted")
        for channel in self.monitoring.managed_channels():
            self.monitoring.delete_channel(channel.name)
            self.note("notification channel", "deleted", channel.labels.get("email_address", ""))
        who = member(self.workload)
        held = {b["role"] for b in self._policy().get("bindings", []) if who in b.get("members", [])}
        for role in sorted(self.manifest.granted & held):
            self._remove_grant(who, role)
        if self.manifest.build:
            builder = member(self.manifest.build)
            if any(
                b["role"] == BUILD_ROLE and builder in b.get("members", []) for b in self._policy().get("bindings", [])
            ):
                self._remove_grant(builder, BUILD_ROLE, f"from the build account {self.manifest.build}")
        # Deleting a metric descriptor deletes its data: the canary's history stays (docs/google-behaviour.md).
        self.note("metric descriptors", "kept", "deleting them would delete the canary's metric history")
        if self.manifest.audit:
            policy = self._policy()
            policy["auditConfigs"] = [c for c in policy.get("auditConfigs", []) if c.get("service") != VERTEX]
            self._set_policy(policy)
            self.note("Data Access audit logs (aiplatform)", "deleted")
        if account is not None:
            self.gcloud.change("iam", "service-accounts", "delete", self.invoker)
            self.note("invoker service account", "deleted")

    def _delete(
        self,
        what: str,
        describe: tuple[str, ...],
        delete: tuple[str, ...],
        ours: Callable[[dict[str, Any]], bool],
        *,
        quiet_absent: bool = False,
        why: str = "",
    ) -> None:
        current = self.gcloud.read(*describe)
        if current is None:
            if not quiet_absent:
                self.note(what, "absent")
        elif not ours(current):
            self.note(what, "kept", f"{NAME} exists but was not created by this tool")
        else:
            self.gcloud.change(*delete)
            self.note(what, "deleted", why)
