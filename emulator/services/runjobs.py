"""Cloud Run jobs and their executions (run.googleapis.com), in the form gcloud 528 uses: the v1 Knative-style API
on the regional endpoint (`https://REGION-run.googleapis.com/apis/run.googleapis.com/v1/namespaces/PROJECT/jobs`),
which `gcloud run jobs create/update/deploy/execute/list/describe/delete` and `gcloud run jobs executions
list/describe/cancel` call (googlecloudsdk/command_lib/run/serverless_operations.py: namespaces_jobs.Create,
ReplaceJob, Get, List, Delete, Run; namespaces_executions.Get, List, Cancel), and the `:run` URL Google's "Execute
jobs on a schedule" page gives a Cloud Scheduler HTTP target with an OAuth token. The job's IAM policy is on the v1
one-platform path gcloud's `run jobs add-iam-policy-binding` uses (`/v1/projects/P/locations/R/jobs/J:…IamPolicy`).

The region is the endpoint's: the host's `REGION-` prefix (us-central1-run.googleapis.com, or what gcloud derives
from an endpoint override, us-central1-127.0.0.1:PORT). A job's template is kept as given (containers, env,
maxRetries, timeoutSeconds, serviceAccountName, taskCount, parallelism); a run makes an Execution with a copy of it.

Executions run for real when the emulator serves (`world.serving`, emulator/runtime/): each task is a process of
the job's source as its service account. An image is a name: the source behind it is what the admin route
`POST /_emulator/run/images {"project", "image", "source", "command"?}` registered for that project (the emulator's
stand-in for pushing an image to Artifact Registry); the task runs the container's command and args (else the
registered command) in that folder. Without serving, an execution is recorded and succeeds at once (nothing runs).

Assumption: on an endpoint without a region prefix the region is us-central1.
Assumption: a job name is 1-63 characters: a lowercase letter, then lowercase letters, digits and hyphens, not ending
in a hyphen (Cloud Run's resource-name rule as gcloud reports it); a duplicate create is 409 ALREADY_EXISTS "Resource
'J' already exists."; a missing job or execution 404 "Resource 'X' of kind 'JOB' in region 'R' in project 'P' does
not exist."; denials "Permission 'run.jobs.X' denied on resource 'namespaces/P/jobs/J' (or resource may not exist).",
no details — the texts of Cloud Run's services, which users report; Google's details are not known.
Assumption: an execution's name is the job's name, a hyphen and five lowercase letters or digits, as Cloud Run's
consoles show them; its namespace is the project number.
Assumption: an image no source was registered for fails each task at once ("Image 'I' not found", on the
execution's Completed condition) (Cloud Run refuses such a deploy; the emulator cannot know which images exist).
Assumption: the task timeout is measured in wall time (the process runs in real time); a task over it is killed and
counts as failed ("The configured timeout was reached (N s)" on the Completed condition).
Assumption: the command `python`/`python3` is the emulator's own Python (the source is not built into an image, so
the packages are the emulator's environment, as served functions' requirements are).
"""

from __future__ import annotations

import copy
import hashlib
import re
import secrets
import string
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.rpc import code_pb2

from emulator.core import iam
from emulator.core.clock import rfc3339
from emulator.core.egress import vpc_egress_network
from emulator.core.handlers import Api, Call, Doc, HttpRule, JsonMethod, RestCall, Service, json_method
from emulator.core.status import RpcError, invalid_argument
from emulator.core.world import Project, World
from emulator.services import artifactregistry, cloudbuild, iamadmin
from emulator.services.kit import (
    allowed_on,
    audited,
    iam_policy_methods,
    integer,
    message,
    now,
    require_enabled,
    text,
)

API = "run.googleapis.com"
V1_JOBS = "google.cloud.run.v1.Jobs"
V1_EXECUTIONS = "google.cloud.run.v1.Executions"
API_VERSION = "run.googleapis.com/v1"  # the apiVersion of v1 Job and Execution objects (REST reference, v1)
DEFAULT_REGION = "us-central1"
_REGION = re.compile(r"^([a-z]+-[a-z]+[0-9]+)-")
_JOB_ID = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?\Z")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*\Z")
# Cloud Run jobs: at most 10 retries per task, a task timeout of at most 24 h (cloud.google.com/run/docs/configuring/
# max-retries and /jobs/task-timeout); up to 10,000 tasks (/jobs/parallelism): the emulator runs at most 100.
MAX_RETRIES = 10
MAX_TIMEOUT_S = 24 * 3600
DEFAULT_TIMEOUT_S = 600  # the default task timeout: 10 minutes (/jobs/task-timeout)
DEFAULT_RETRIES = 3  # the default max retries (/configuring/max-retries)
MAX_TASKS = 100
# Cloud Run writes the variables CLOUD_RUN_JOB, CLOUD_RUN_EXECUTION, CLOUD_RUN_TASK_INDEX, CLOUD_RUN_TASK_ATTEMPT and
# CLOUD_RUN_TASK_COUNT into every task's environment (cloud.google.com/run/docs/container-contract#jobs-env-vars).
RESERVED_ENV = ("CLOUD_RUN_JOB", "CLOUD_RUN_EXECUTION", "CLOUD_RUN_TASK_INDEX", "CLOUD_RUN_TASK_ATTEMPT",
                "CLOUD_RUN_TASK_COUNT")  # fmt: skip


@dataclass
class TaskRun:
    """One attempt of one task, to be run by the runtime."""

    project_id: str
    region: str
    job_id: str
    execution: str  # the execution's id
    index: int
    attempt: int
    task_count: int
    argv: list[str]
    cwd: str
    environment: dict[str, str]
    service_account: str
    timeout_s: float
    image: str
    network: str = ""  # the VPC network its calls to Google APIs leave through, "" for Cloud Run's default egress
    archive: bytes = b""  # the source zip a build checked, unpacked by the runtime as the task's folder (else cwd)
    claimed: bool = False


@dataclass
class Execution:
    execution_id: str
    job_id: str
    region: str
    uid: str
    created: str
    creator: str
    template: Doc  # the job's spec.template at the run (ExecutionTemplateSpec)
    started: str = ""
    completed: str = ""
    succeeded: int = 0
    failed: int = 0
    retried: int = 0
    cancelled: int = 0
    running: int = 0
    reason: str = ""  # why it failed
    pending: list[TaskRun] = field(default_factory=list)

    @property
    def task_count(self) -> int:
        return int(self.template.get("spec", {}).get("taskCount", 1) or 1)

    @property
    def done(self) -> bool:
        return bool(self.completed)


@dataclass
class Job:
    job_id: str
    region: str
    uid: str
    created: str
    updated: str
    creator: str
    modifier: str
    labels: dict[str, str]
    annotations: dict[str, str]
    template: Doc  # spec.template (ExecutionTemplateSpec)
    generation: int = 1
    executions: int = 0
    latest: str = ""  # latest execution id
    policy: iam.Policy = field(default_factory=iam.Policy)


@dataclass
class JobStore:
    """Cloud Run jobs and their executions, in one project (their images are Artifact Registry's)."""

    jobs: dict[Any, Any] = field(default_factory=dict)  # (region, job id) → Job
    executions: dict[Any, Any] = field(default_factory=dict)  # (region, execution id) → Execution


# Cloud Run's Direct VPC egress annotations on an execution template (gcloud 528 writes them for run jobs deploy
# --network/--subnet/--vpc-egress; docs/google-behaviour.md, "VPC Service Controls by source network").
NETWORK_INTERFACES = "run.googleapis.com/network-interfaces"
VPC_ACCESS_EGRESS = "run.googleapis.com/vpc-access-egress"


# Errors ------------------------------------------------------------------------------------------------------


def denied(permission: str, resource: str) -> RpcError:
    return RpcError(
        code_pb2.PERMISSION_DENIED,
        f"Permission '{permission}' denied on resource '{resource}' (or resource may not exist).",
    )


def missing(kind: str, name: str, region: str, project: str) -> RpcError:
    return RpcError(
        code_pb2.NOT_FOUND,
        f"Resource '{name}' of kind '{kind}' in region '{region}' in project '{project}' does not exist.",
    )


def act_as_denied(job_id: str, email: str) -> RpcError:
    return RpcError(
        code_pb2.PERMISSION_DENIED,
        f"Could not create Cloud Run job {job_id}. Permission 'iam.serviceaccounts.actAs' denied on service account "
        f"{email} (or it may not exist).",
    )


# Lookups -----------------------------------------------------------------------------------------------------


def region_of(call: Call) -> str:
    host = call.base_url.removeprefix("http://") if isinstance(call, RestCall) else ""
    found = _REGION.match(host)
    return found.group(1) if found else DEFAULT_REGION


def _namespace(call: Call, name: str, kind: str, permission: str) -> tuple[Project, str, str]:
    """The project of `namespaces/P/KIND[/ID]`, after credentials and the API; the region; the id ("" for the
    collection). The permission names the denial of a namespace that is not there."""
    call.authenticate()
    match = re.fullmatch(rf"namespaces/([^/]+)(?:/{kind}/([^/]+))?", name)
    project = call.world.project(match.group(1)) if match else None
    if match is None or project is None:
        raise denied(permission, name)
    require_enabled(project, API)
    return project, region_of(call), match.group(2) or ""


def _collection(call: Call, parent: str, kind: str, permission: str) -> tuple[Project, str]:
    """The project and region of `namespaces/P/KIND`, with the caller's `permission` on the project."""
    project, region, _ = _namespace(call, parent, kind, permission)
    if not allowed_on(call, project, permission):
        raise denied(permission, parent)
    return project, region


def find_job(call: Call, name: str, permission: str | None) -> tuple[Project, Job]:
    """A job by `namespaces/P/jobs/J` or `projects/P/locations/R/jobs/J`, with the caller's `permission` on it."""
    one_platform = re.fullmatch(r"projects/([^/]+)/locations/([^/]+)/jobs/([^/]+)", name)
    if one_platform:
        call.authenticate()
        project = call.world.project(one_platform.group(1))
        if project is None:
            raise denied(permission or "run.jobs.get", name)
        require_enabled(project, API)
        region, job_id = one_platform.group(2), one_platform.group(3)
    else:
        project, region, job_id = _namespace(call, name, "jobs", permission or "run.jobs.get")
    job = project.store(JobStore).jobs.get((region, job_id))
    policies = [job.policy] if job is not None else []
    if permission and not allowed_on(call, project, permission, *policies):
        raise denied(permission, name)
    if job is None:
        raise missing("JOB", job_id, region, project.project_id)
    return project, job


def _job_policy(project: Project, region: str, job_id: str) -> list[iam.Policy]:
    job = project.store(JobStore).jobs.get((region, job_id))
    return [job.policy] if job is not None else []


def find_execution(call: Call, name: str, permission: str) -> tuple[Project, Execution]:
    project, region, execution_id = _namespace(call, name, "executions", permission)
    execution = project.store(JobStore).executions.get((region, execution_id))
    policies = _job_policy(project, region, execution.job_id) if execution is not None else []
    if not allowed_on(call, project, permission, *policies):
        raise denied(permission, name)
    if execution is None:
        raise missing("EXECUTION", execution_id, region, project.project_id)
    return project, execution


# Wire forms --------------------------------------------------------------------------------------------------


def _uid(*parts: str) -> str:
    return str(uuid.UUID(hashlib.md5("/".join(parts).encode(), usedforsecurity=False).hexdigest()))


def _condition(kind: str, status: str, at: str, reason: str = "", text_: str = "") -> Doc:
    doc: Doc = {"type": kind, "status": status, "lastTransitionTime": at}
    if reason:
        doc["reason"] = reason
    if text_:
        doc["message"] = text_
    return doc


def execution_state(execution: Execution) -> str:
    """The v2 ExecutionReference.CompletionStatus the execution is in (run/v2/job.proto)."""
    if execution.cancelled and execution.done:
        return "EXECUTION_CANCELLED"
    if execution.done:
        return "EXECUTION_FAILED" if execution.failed else "EXECUTION_SUCCEEDED"
    return "EXECUTION_RUNNING" if execution.started else "EXECUTION_PENDING"


def job_json(project: Project, job: Job) -> Doc:
    """A v1 Job (REST reference, namespaces.jobs): KRM metadata, the spec as given, the status."""
    status: Doc = {
        "observedGeneration": job.generation,
        "conditions": [_condition("Ready", "True", job.updated)],
        "executionCount": job.executions,
    }
    latest = project.store(JobStore).executions.get((job.region, job.latest)) if job.latest else None
    if latest is not None:
        reference: Doc = {"name": latest.execution_id, "creationTimestamp": latest.created}
        if latest.completed:
            reference["completionTimestamp"] = latest.completed
        reference["completionStatus"] = execution_state(latest)
        status["latestCreatedExecution"] = reference
    return {
        "apiVersion": API_VERSION,
        "kind": "Job",
        "metadata": {
            "name": job.job_id,
            "namespace": project.number,
            "selfLink": f"/apis/{API_VERSION}/namespaces/{project.number}/jobs/{job.job_id}",
            "uid": job.uid,
            "resourceVersion": f"{job.generation:x}",
            "generation": job.generation,
            "creationTimestamp": job.created,
            # gcloud's job printer reads the last change's time from this label (api_lib/run/job.py)
            "labels": {
                **job.labels,
                "cloud.googleapis.com/location": job.region,
                "run.googleapis.com/lastUpdatedTime": job.updated,
            },
            "annotations": {
                **job.annotations,
                "run.googleapis.com/creator": job.creator,
                "run.googleapis.com/lastModifier": job.modifier,
            },
        },
        "spec": {"template": copy.deepcopy(job.template)},
        "status": status,
    }


def execution_json(project: Project, execution: Execution) -> Doc:
    """A v1 Execution (REST reference, namespaces.executions): conditions Completed (the terminal one gcloud waits
    for), ResourcesAvailable, Started; the task counts; start and completion times."""
    created = execution.created
    started = execution.started
    if execution.done:
        completed_status = "False" if (execution.failed or execution.cancelled) else "True"
        reason = "Cancelled" if execution.cancelled else ("NonZeroExitCode" if execution.failed else "")
        completed = _condition("Completed", completed_status, execution.completed, reason, execution.reason)
    else:
        completed = _condition("Completed", "Unknown", started or created, "", "")
    conditions = [
        completed,
        _condition("ResourcesAvailable", "True" if started else "Unknown", started or created),
        _condition("Started", "True" if started else "Unknown", started or created),
    ]
    status: Doc = {
        "observedGeneration": 1,
        "conditions": conditions,
        "logUri": (
            "https://console.cloud.google.com/logs/viewer?project="
            f"{project.project_id}&advancedFilter=resource.type%3D%22cloud_run_job%22%0Aresource.labels.job_name"
            f"%3D%22{execution.job_id}%22%0Alabels.%22run.googleapis.com%2Fexecution_name%22%3D%22"
            f"{execution.execution_id}%22"
        ),
    }
    if started:
        status["startTime"] = started
    if execution.completed:
        status["completionTime"] = execution.completed
    for key, value in (
        ("succeededCount", execution.succeeded),
        ("failedCount", execution.failed),
        ("runningCount", execution.running),
        ("retriedCount", execution.retried),
        ("cancelledCount", execution.cancelled),
    ):
        if value:
            status[key] = value
    template = copy.deepcopy(execution.template)
    return {
        "apiVersion": API_VERSION,
        "kind": "Execution",
        "metadata": {
            "name": execution.execution_id,
            "namespace": project.number,
            "selfLink": f"/apis/{API_VERSION}/namespaces/{project.number}/executions/{execution.execution_id}",
            "uid": execution.uid,
            "resourceVersion": "1",
            "generation": 1,
            "creationTimestamp": created,
            "labels": {
                "run.googleapis.com/job": execution.job_id,
                "run.googleapis.com/jobUid": _uid(project.project_id, execution.region, execution.job_id),
                "cloud.googleapis.com/location": execution.region,
            },
            "annotations": {"run.googleapis.com/creator": execution.creator},
            "ownerReferences": [
                {
                    "kind": "Job",
                    "name": execution.job_id,
                    "apiVersion": API_VERSION,
                    "uid": _uid(project.project_id, execution.region, execution.job_id),
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "parallelism": int(template.get("spec", {}).get("parallelism", 0) or 0) or execution.task_count,
            "taskCount": execution.task_count,
            "template": template.get("spec", {}).get("template", {}),
        },
        "status": status,
    }


# Validation --------------------------------------------------------------------------------------------------


def _container(task_spec: Doc) -> Doc:
    containers = task_spec.get("containers")
    if not isinstance(containers, list) or len(containers) != 1 or not isinstance(containers[0], dict):
        raise invalid_argument("spec.template.spec.template.spec.containers: exactly one container is required.")
    return containers[0]


def validated_template(given: Doc) -> Doc:
    """spec.template of a Job, checked: one container with an image, well-formed env, retries, timeout, tasks."""
    template = message(given, "template")
    execution_spec = message(template, "spec")
    task_spec = message(message(execution_spec, "template"), "spec")
    container = _container(task_spec)
    image = container.get("image")
    if not isinstance(image, str) or not image.strip():
        raise invalid_argument("spec.template.spec.template.spec.containers[0].image: an image is required.")
    for key in ("command", "args"):
        value = container.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise invalid_argument(f"spec.template.spec.template.spec.containers[0].{key}: a list of strings.")
    for variable in container.get("env", []) or []:
        name = variable.get("name") if isinstance(variable, dict) else None
        if not isinstance(name, str) or not _ENV_NAME.match(name):
            raise invalid_argument(f"spec.template.spec.template.spec.containers[0].env: invalid name {name!r}.")
        if name in RESERVED_ENV:
            raise invalid_argument(
                f"spec.template.spec.template.spec.containers[0].env: {name} is a reserved environment variable."
            )
    retries = integer(task_spec, "maxRetries", DEFAULT_RETRIES)
    if not 0 <= retries <= MAX_RETRIES:
        raise invalid_argument(f"spec.template.spec.template.spec.maxRetries: must be 0 to {MAX_RETRIES}.")
    timeout = integer(task_spec, "timeoutSeconds", DEFAULT_TIMEOUT_S)
    if not 1 <= timeout <= MAX_TIMEOUT_S:
        raise invalid_argument(f"spec.template.spec.template.spec.timeoutSeconds: must be 1 to {MAX_TIMEOUT_S}.")
    tasks = integer(execution_spec, "taskCount", 1)
    if not 1 <= tasks <= MAX_TASKS:
        raise invalid_argument(f"spec.template.spec.taskCount: must be 1 to {MAX_TASKS} in the emulator.")
    account = task_spec.get("serviceAccountName", "")
    if not isinstance(account, str):
        raise invalid_argument("spec.template.spec.template.spec.serviceAccountName: a string.")
    return copy.deepcopy(template)


def egress_network(project_id: str, template: Doc) -> str:
    """The VPC network an execution's calls to Google APIs leave through: Direct VPC egress, from the execution
    template's annotations as gcloud writes them (`run.googleapis.com/network-interfaces`, `…/vpc-access-egress`;
    emulator/core/egress.py), "" for Cloud Run's default egress. Malformed annotations are 400 INVALID_ARGUMENT."""
    notes = template.get("metadata", {}).get("annotations", {}) or {}
    try:
        return vpc_egress_network(
            project_id, str(notes.get(NETWORK_INTERFACES, "")), str(notes.get(VPC_ACCESS_EGRESS, ""))
        )
    except ValueError as error:
        raise invalid_argument(f"spec.template.metadata.annotations: {error}.") from None


def _service_account(project: Project, template: Doc) -> str:
    spec = template.get("spec", {}).get("template", {}).get("spec", {})
    return str(spec.get("serviceAccountName") or f"{project.number}-compute@developer.gserviceaccount.com")


def _string_map(doc: Doc, key: str) -> dict[str, str]:
    value = doc.get(key) or {}
    if not isinstance(value, dict):
        raise invalid_argument(f"metadata.{key}: a map of strings.")
    return {str(k): str(v) for k, v in value.items()}


def _audit_resource(project: Project, job: Job) -> tuple[str, Doc]:
    """Cloud Run's job changes are logged on the cloud_run_job resource (job_name, location, project_id)."""
    name = f"namespaces/{project.project_id}/jobs/{job.job_id}"
    labels = {"job_name": job.job_id, "location": job.region, "project_id": project.project_id}
    return name, {"type": "cloud_run_job", "labels": labels}


# Handlers ----------------------------------------------------------------------------------------------------


def create_job(call: Call, request: Doc) -> Doc:
    parent = text(request, "parent")
    project, region = _collection(call, parent, "jobs", "run.jobs.create")
    body = message(request, "job")
    metadata = message(body, "metadata")
    job_id = text(metadata, "name")
    if not _JOB_ID.match(job_id):
        raise invalid_argument(
            f"metadata.name: '{job_id[:100]}' is not a valid job name: 1-63 lowercase letters, digits or hyphens, "
            "starting with a letter and not ending with a hyphen."
        )
    template = validated_template(message(body, "spec"))
    egress_network(project.project_id, template)  # a malformed Direct VPC egress is refused now, not at run time
    store = project.store(JobStore)
    if (region, job_id) in store.jobs:
        raise RpcError(code_pb2.ALREADY_EXISTS, f"Resource '{job_id}' already exists.")
    account = _service_account(project, template)
    if not iamadmin.can_act_as(call, account):
        raise act_as_denied(job_id, account)
    email = call.authenticate()
    stamp = now(call)
    job = Job(
        job_id,
        region,
        _uid(project.project_id, region, job_id),
        stamp,
        stamp,
        email,
        email,
        _string_map(metadata, "labels"),
        _string_map(metadata, "annotations"),
        template,
    )
    store.jobs[(region, job_id)] = job
    doc = job_json(project, job)
    _audit_job(call, project, job, "CreateJob", "run.jobs.create", {"parent": parent, "job": body}, ("Job", doc))
    return doc


def _audit_job(
    call: Call,
    project: Project,
    job: Job,
    verb: str,
    permission: str,
    request: Doc,
    response: tuple[str, Doc] | None = None,
) -> None:
    """A job change's Admin Activity entry: google.cloud.run.v1.Jobs.<verb> on the job's monitored resource, with
    the request (and the response, typed) as given."""
    logged, resource_type = _audit_resource(project, job)
    audited(
        call,
        project,
        method=f"google.cloud.run.v1.Jobs.{verb}",
        resource=logged,
        permission=permission,
        resource_type=resource_type,
        request={"@type": f"type.googleapis.com/google.cloud.run.v1.{verb}Request", **request},
        response=None
        if response is None
        else {"@type": f"type.googleapis.com/google.cloud.run.v1.{response[0]}", **response[1]},
    )


def get_job(call: Call, request: Doc) -> Doc:
    project, job = find_job(call, text(request, "name"), "run.jobs.get")
    return job_json(project, job)


def list_jobs(call: Call, request: Doc) -> Doc:
    parent = text(request, "parent")
    project, region = _collection(call, parent, "jobs", "run.jobs.list")
    jobs = sorted((j for (r, _), j in project.store(JobStore).jobs.items() if r == region), key=lambda j: j.job_id)
    return {
        "apiVersion": API_VERSION,
        "kind": "JobsList",
        "metadata": {},
        "items": [job_json(project, job) for job in jobs],
    }


def replace_job(call: Call, request: Doc) -> Doc:
    name = text(request, "name")
    project, job = find_job(call, name, "run.jobs.update")
    body = message(request, "job")
    metadata = message(body, "metadata")
    if text(metadata, "name") and text(metadata, "name") != job.job_id:
        raise invalid_argument(f"metadata.name: '{text(metadata, 'name')[:100]}' does not match '{job.job_id}'.")
    template = validated_template(message(body, "spec"))
    egress_network(project.project_id, template)
    account = _service_account(project, template)
    if account != _service_account(project, job.template) and not iamadmin.can_act_as(call, account):
        raise act_as_denied(job.job_id, account)
    job.template = template
    job.labels = {
        k: v
        for k, v in _string_map(metadata, "labels").items()
        if k not in ("cloud.googleapis.com/location", "run.googleapis.com/lastUpdatedTime")
    }
    job.annotations = {
        k: v
        for k, v in _string_map(metadata, "annotations").items()
        if k not in ("run.googleapis.com/creator", "run.googleapis.com/lastModifier")
    }
    job.generation += 1
    job.updated = now(call)
    job.modifier = call.authenticate()
    doc = job_json(project, job)
    _audit_job(call, project, job, "ReplaceJob", "run.jobs.update", {"name": name, "job": body}, ("Job", doc))
    return doc


def delete_job(call: Call, request: Doc) -> Doc:
    name = text(request, "name")
    project, job = find_job(call, name, "run.jobs.delete")
    store = project.store(JobStore)
    del store.jobs[(job.region, job.job_id)]
    for key in [k for k, e in store.executions.items() if e.job_id == job.job_id and e.region == job.region]:
        _cancel(call.world, store.executions[key])
        del store.executions[key]
    _audit_job(call, project, job, "DeleteJob", "run.jobs.delete", {"name": name})
    return {"status": "Success", "details": {"name": job.job_id, "kind": "jobs", "uid": job.uid}}


def _execution_id(store: JobStore, region: str, job_id: str) -> str:
    alphabet = string.ascii_lowercase + string.digits
    while True:
        candidate = f"{job_id}-" + "".join(secrets.choice(alphabet) for _ in range(5))
        if (region, candidate) not in store.executions:
            return candidate


def _env(container: Doc) -> dict[str, str]:
    return {str(v["name"]): str(v.get("value", "")) for v in container.get("env", []) or [] if isinstance(v, dict)}


def _bare_image(image: str) -> str:
    """An image without its tag or digest: REGISTRY/PATH."""
    image = image.split("@", 1)[0]
    head, _, last = image.rpartition("/")
    return f"{head}/{last.split(':', 1)[0]}" if head else last.split(":", 1)[0]


def _overrides(template: Doc, request: Doc) -> Doc:
    """RunJobRequest.overrides (containerOverrides args/env, taskCount, timeoutSeconds) applied to a copy."""
    overrides = message(request, "overrides")
    if not overrides:
        return template
    out = copy.deepcopy(template)
    execution_spec = out.setdefault("spec", {})
    task_spec = execution_spec.setdefault("template", {}).setdefault("spec", {})
    if "taskCount" in overrides:
        execution_spec["taskCount"] = integer(overrides, "taskCount", 1)
    if "timeoutSeconds" in overrides:
        task_spec["timeoutSeconds"] = str(integer(overrides, "timeoutSeconds", DEFAULT_TIMEOUT_S))
    for given in overrides.get("containerOverrides", []) or []:
        if not isinstance(given, dict):
            continue
        container = task_spec["containers"][0]
        if given.get("clearArgs"):
            container["args"] = []
        if given.get("args"):
            container["args"] = list(given["args"])
        env = {v["name"]: v for v in container.get("env", []) or []}
        for variable in given.get("env", []) or []:
            env[variable["name"]] = variable
        container["env"] = list(env.values())
    return validated_template({"template": out})


def run_job(call: Call, request: Doc) -> Doc:
    name = text(request, "name")
    project, job = find_job(call, name, "run.jobs.run")
    world = call.world
    store = project.store(JobStore)
    template = _overrides(job.template, request)
    stamp = now(call)
    execution = Execution(
        _execution_id(store, job.region, job.job_id),
        job.job_id,
        job.region,
        str(uuid.uuid4()),
        stamp,
        call.authenticate(),
        template,
    )
    store.executions[(job.region, execution.execution_id)] = execution
    job.executions += 1
    job.latest = execution.execution_id
    if not world.serving:  # nothing runs: the execution is recorded and succeeds at once
        execution.started = execution.completed = stamp
        execution.succeeded = execution.task_count
    else:
        execution.started = stamp
        execution.running = execution.task_count
        execution.pending = [_task(project, job, execution, index, 0) for index in range(execution.task_count)]
    doc = execution_json(project, execution)
    _audit_job(call, project, job, "RunJob", "run.jobs.run", {"name": name}, ("Execution", doc))
    return doc


def _task(project: Project, job: Job, execution: Execution, index: int, attempt: int) -> TaskRun:
    task_spec = execution.template.get("spec", {}).get("template", {}).get("spec", {})
    container = task_spec["containers"][0]
    image = artifactregistry.resolve(project, str(container["image"]))
    command = list(container.get("command") or (image.command if image else []))
    argv = [*command, *(container.get("args") or [])]
    return TaskRun(
        project.project_id,
        execution.region,
        job.job_id,
        execution.execution_id,
        index,
        attempt,
        execution.task_count,
        argv,
        image.source if image is not None else "",
        _env(container),
        _service_account(project, execution.template),
        float(integer(task_spec, "timeoutSeconds", DEFAULT_TIMEOUT_S)),
        str(container["image"]),
        archive=image.archive if image is not None else b"",
        network=egress_network(project.project_id, execution.template),
    )


def get_execution(call: Call, request: Doc) -> Doc:
    project, execution = find_execution(call, text(request, "name"), "run.executions.get")
    return execution_json(project, execution)


def list_executions(call: Call, request: Doc) -> Doc:
    parent = text(request, "parent")
    project, region = _collection(call, parent, "executions", "run.executions.list")
    wanted_job = ""
    selector = text(request, "labelSelector").replace(" ", "")
    if selector:
        found = re.fullmatch(r"run\.googleapis\.com/job=([a-z0-9-]{1,63})", selector)
        if found is None:
            raise invalid_argument(f"labelSelector: only run.googleapis.com/job = NAME is supported, not {selector!r}.")
        wanted_job = found.group(1)
    items = [
        e
        for (r, _), e in project.store(JobStore).executions.items()
        if r == region and (not wanted_job or e.job_id == wanted_job)
    ]
    items.sort(key=lambda e: e.created, reverse=True)
    return {
        "apiVersion": API_VERSION,
        "kind": "ExecutionsList",
        "metadata": {},
        "items": [execution_json(project, e) for e in items],
    }


def _cancel(world: World, execution: Execution) -> None:
    if execution.done:
        return
    execution.cancelled = execution.running + len(execution.pending)
    execution.running = 0
    execution.pending = []
    execution.completed = rfc3339(world.clock.now())
    execution.reason = "The execution was cancelled."


def cancel_execution(call: Call, request: Doc) -> Doc:
    project, execution = find_execution(call, text(request, "name"), "run.executions.cancel")
    _cancel(call.world, execution)
    return execution_json(project, execution)


def delete_execution(call: Call, request: Doc) -> Doc:
    name = text(request, "name")
    project, execution = find_execution(call, name, "run.executions.delete")
    _cancel(call.world, execution)
    del project.store(JobStore).executions[(execution.region, execution.execution_id)]
    return {"status": "Success", "details": {"name": execution.execution_id, "kind": "executions"}}


# The runtime's side ------------------------------------------------------------------------------------------


def claim_tasks(world: World) -> list[TaskRun]:
    """The task attempts waiting to run (called under world.lock by the runtime), each handed out once."""
    out: list[TaskRun] = []
    for project in world.projects.values():
        for execution in project.store(JobStore).executions.values():
            for task in execution.pending:
                if not task.claimed:
                    task.claimed = True
                    out.append(task)
    return out


def task_ended(world: World, task: TaskRun, exit_code: int, reason: str) -> TaskRun | None:
    """A task attempt ended (under world.lock): its exit status counted, a retry returned while retries are left."""
    project = world.projects.get(task.project_id)
    store = project.store(JobStore) if project is not None else None
    execution = store.executions.get((task.region, task.execution)) if store is not None else None
    if project is None or execution is None or task not in execution.pending:
        return None  # cancelled or deleted meanwhile
    execution.pending.remove(task)
    task_spec = execution.template.get("spec", {}).get("template", {}).get("spec", {})
    if exit_code != 0 and task.attempt < integer(task_spec, "maxRetries", DEFAULT_RETRIES):
        retry = TaskRun(**{**task.__dict__, "attempt": task.attempt + 1, "claimed": False})
        execution.retried += 1
        execution.pending.append(retry)
        return retry
    execution.running -= 1
    if exit_code == 0:
        execution.succeeded += 1
    else:
        execution.failed += 1
        execution.reason = execution.reason or reason
    if execution.running <= 0 and not execution.pending:
        execution.completed = rfc3339(world.clock.now())
        if execution.failed:
            execution.reason = (
                f"Task {execution.execution_id}-task{task.index} failed: {execution.reason}. "
                f"{execution.failed} of {execution.task_count} tasks failed."
            )
    return None


def register_image(world: World, body: Any) -> Doc:
    """POST /_emulator/run/images: an image built elsewhere pushed into the project's Artifact Registry: the source
    folder (and default command) behind it."""
    if not isinstance(body, dict):
        raise ValueError("body: an object with project, image and source")
    project = world.project(str(body.get("project", "")))
    if project is None:
        raise ValueError(f"project: no project {str(body.get('project'))[:100]!r}")
    image = body.get("image")
    if not isinstance(image, str) or not re.fullmatch(r"[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+(:[\w.-]+)?", image):
        raise ValueError("image: an image name such as REGION-docker.pkg.dev/PROJECT/REPO/NAME")
    source = body.get("source")
    if not isinstance(source, str) or not Path(source).is_absolute() or not Path(source).is_dir():
        raise ValueError("source: the absolute path of an existing folder")
    command = body.get("command", [])
    if not isinstance(command, list) or not all(isinstance(c, str) for c in command):
        raise ValueError("command: a list of strings")
    folder = str(Path(source).resolve())
    pushed = artifactregistry.push(project, image, rfc3339(world.clock.now()), command=list(command), source=folder)
    return {"image": _bare_image(image), "source": folder, "command": command, "digest": pushed.digest}


# Source deploys: Cloud Run's builds:submit (v2) ---------------------------------------------------------------


def submit_build(call: Call, request: Doc) -> Doc:
    """POST /v2/projects/P/locations/R/builds:submit (run/v2/build.proto, SubmitBuildRequest): a Cloud Build build
    of the staged source making `imageUri`, with buildpacks or docker; the answer holds the build's operation, which
    gcloud polls on Cloud Build (deployer.py, _SubmitBuild)."""
    parent = text(request, "parent")
    match = re.fullmatch(r"projects/([^/]+)/locations/([a-z0-9-]+)", parent)
    call.authenticate()
    project = call.world.project(match.group(1)) if match else None
    if match is None or project is None:
        raise denied("run.builds.create", parent)
    require_enabled(project, API)
    if not allowed_on(call, project, "run.builds.create"):
        raise denied("run.builds.create", parent)
    image = text(request, "imageUri")
    if not image:
        raise invalid_argument("image_uri: the image to build is required.")
    packs = message(request, "buildpackBuild")
    kind = "docker" if "dockerBuild" in request and not packs else "buildpacks"
    env = {str(k): str(v) for k, v in message(packs, "environmentVariables").items()}
    plan = cloudbuild.Plan(image, kind, env)
    tags = [str(t) for t in request.get("tags") or [] if isinstance(t, str)]
    operation = cloudbuild.start(call, project, match.group(2), plan, message(request, "storageSource"), tags, {})
    return {"buildOperation": operation}


# The API -----------------------------------------------------------------------------------------------------

_FREE = {"apiVersion": None, "kind": None, "metadata": None, "spec": None, "status": None}
_V1 = "/apis/run.googleapis.com/v1"
_JOB = "namespaces/*/jobs/*"
_EXEC = "namespaces/*/executions/*"
_LIST = {"parent": None, "labelSelector": None, "limit": None, "continue": None, "fieldSelector": None,
         "includeUninitialized": None, "resourceVersion": None, "watch": None}  # fmt: skip
_DELETE = {"name": None, "apiVersion": None, "kind": None, "propagationPolicy": None}


def _one_platform(call: Call, name: str, permission: str | None) -> tuple[Project, Job]:
    return find_job(call, name, permission)


METHODS: list[JsonMethod] = [
    json_method(V1_JOBS, "CreateJob", create_job, API, {"parent": None, "job": _FREE}),
    json_method(V1_JOBS, "GetJob", get_job, API, {"name": None}),
    json_method(V1_JOBS, "ListJobs", list_jobs, API, _LIST),
    json_method(V1_JOBS, "ReplaceJob", replace_job, API, {"name": None, "job": _FREE}),
    json_method(V1_JOBS, "DeleteJob", delete_job, API, _DELETE),
    json_method(
        V1_JOBS,
        "RunJob",
        run_job,
        API,
        {"name": None, "overrides": {"containerOverrides": None, "taskCount": None, "timeoutSeconds": None}},
    ),
    json_method(V1_EXECUTIONS, "GetExecution", get_execution, API, {"name": None}),
    json_method(V1_EXECUTIONS, "ListExecutions", list_executions, API, _LIST),
    json_method(V1_EXECUTIONS, "CancelExecution", cancel_execution, API, {"name": None}),
    json_method(V1_EXECUTIONS, "DeleteExecution", delete_execution, API, _DELETE),
    json_method(
        "google.cloud.run.v2.Builds",
        "SubmitBuild",
        submit_build,
        API,
        {
            "parent": None,
            "storageSource": None,
            "imageUri": None,
            "buildpackBuild": None,
            "dockerBuild": None,
            "serviceAccount": None,
            "workerPool": None,
            "tags": None,
            "machineType": None,
            "releaseTrack": None,
            "client": None,
        },
    ),
    *iam_policy_methods(V1_JOBS, API, "run.jobs", _one_platform, audit_target=lambda p, j, n: _audit_resource(p, j)),
]

_PJOB = "projects/*/locations/*/jobs/*"
RULES: list[HttpRule] = [
    HttpRule("POST", f"{_V1}/{{parent=namespaces/*}}/jobs", f"{V1_JOBS}.CreateJob", "job"),
    HttpRule("GET", f"{_V1}/{{name={_JOB}}}", f"{V1_JOBS}.GetJob"),
    HttpRule("GET", f"{_V1}/{{parent=namespaces/*}}/jobs", f"{V1_JOBS}.ListJobs"),
    HttpRule("PUT", f"{_V1}/{{name={_JOB}}}", f"{V1_JOBS}.ReplaceJob", "job"),
    HttpRule("DELETE", f"{_V1}/{{name={_JOB}}}", f"{V1_JOBS}.DeleteJob"),
    HttpRule("POST", f"{_V1}/{{name={_JOB}}}:run", f"{V1_JOBS}.RunJob", "*"),
    HttpRule("GET", f"{_V1}/{{name={_EXEC}}}", f"{V1_EXECUTIONS}.GetExecution"),
    HttpRule("GET", f"{_V1}/{{parent=namespaces/*}}/executions", f"{V1_EXECUTIONS}.ListExecutions"),
    HttpRule("POST", f"{_V1}/{{name={_EXEC}}}:cancel", f"{V1_EXECUTIONS}.CancelExecution", "*"),
    HttpRule("DELETE", f"{_V1}/{{name={_EXEC}}}", f"{V1_EXECUTIONS}.DeleteExecution"),
    HttpRule(
        "POST", "/v2/{parent=projects/*/locations/*}/builds:submit", "google.cloud.run.v2.Builds.SubmitBuild", "*"
    ),
    HttpRule("GET", f"/v1/{{resource={_PJOB}}}:getIamPolicy", f"{V1_JOBS}.GetIamPolicy"),
    HttpRule("POST", f"/v1/{{resource={_PJOB}}}:setIamPolicy", f"{V1_JOBS}.SetIamPolicy", "*"),
    HttpRule("POST", f"/v1/{{resource={_PJOB}}}:testIamPermissions", f"{V1_JOBS}.TestIamPermissions", "*"),
]


SERVICE = Service(
    apis=(Api(API, "Cloud Run Admin API", gcloud="RUN"),),
    methods=(*METHODS,),
    rules=(*RULES,),
    admin={("run/images", "POST"): register_image},
)
