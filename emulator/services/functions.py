"""Cloud Functions v2 (cloudfunctions.googleapis.com): functions, their long-running operations, runtimes, the
function IAM policy, and the source upload URL (a signed-URL PUT of a zip, served by the emulator itself).

`gcloud functions deploy --gen2` asks, in order: GET the function (404 when new), list runtimes, generateUploadUrl,
PUT the zip to the URL, POST the function (or PATCH it with an updateMask), GET the operation until done, then GET the
function. A function owns a Cloud Run service of the same name (services/run.py) whose policy holds the invokers.
The zip is kept with the function: when the emulator serves functions (`world.serving`, emulator/runtime), the
deploy's operation stays running until the new revision listens (or fails to), and the function reads DEPLOYING
meanwhile; otherwise the operation finishes at once. The upload PUT is Cloud Storage's, not an API method of
this service: it is not counted and takes no faults; a URL this emulator did not sign gets Cloud Storage's 403.

Checks, in order: credentials → project (unknown: the denial) → API enabled → IAM on the project or the function
→ request validation → iam.serviceAccounts.actAs on the runtime service account (create, or a changed account).

Assumption: operations finish at once (done: true in the create/update/delete answer); gcloud still polls them.
Assumption: denials read "Permission 'P' denied on resource 'NAME' (or resource may not exist)." and a missing
function "Resource 'NAME' was not found"; the actAs denial "Could not create Cloud Run service F. Permission
'iam.serviceaccounts.actAs' denied on service account SA (or it may not exist)." — texts seen in users' reports,
details unknown.
Assumption: the service URI is https://NAME-HASH-CODE.a.run.app with HASH from the project number and CODE the
region's two letters (uc for us-central1; unknown regions get uc); `url` is https://REGION-PROJECT.cloudfunctions.net/NAME.
Assumption: the source must be a zip uploaded to a URL this emulator issued; any other source is refused.

The build runs as the build service account (buildConfig.serviceAccount, else the project's default compute account,
Google's default since July 2024). Its build needs BUILD_PERMISSIONS in the project — what the documented fix,
roles/cloudbuild.builds.builder, gives it ("Troubleshoot Cloud Run functions": build service account missing
permissions). Without them the operation ends with code 3 and Google's text (BUILD_FAILED, seen verbatim in users'
reports of `gcloud functions deploy`), and the function is kept in state FAILED, as Google keeps a failed first
deploy. The caller must be able to act as a build account it names (the deployer's documented
roles/iam.serviceAccountUser).
Assumption: which of the build's permissions Google finds missing first is not known; the text names none.
Assumption: the caller's actAs denial on the build account has the runtime account's text, without the service.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import importlib.metadata
import io
import re
import secrets
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from google.rpc import code_pb2
from packaging.requirements import InvalidRequirement, Requirement

from emulator.core import egress, iam
from emulator.core.clock import rfc3339
from emulator.core.handlers import Api, Call, Doc, Fields, HttpRule, JsonMethod, RestCall, Service, json_method
from emulator.core.http import Request, Response
from emulator.core.status import RpcError, invalid_argument, not_found
from emulator.core.world import Project, World
from emulator.services import iamadmin, pubsub
from emulator.services.kit import (
    OperationStore,
    allowed_on,
    apply_mask,
    audited,
    iam_policy_methods,
    integer,
    listed,
    mask_paths,
    message,
    new_operation,
    now,
    operation_ended,
    operation_id,
    require_enabled,
    text,
)
from emulator.services.run import RunService, RunStore

API = "cloudfunctions.googleapis.com"
PROTO = "google.cloud.functions.v2.FunctionService"
OPERATIONS = "google.cloud.functions.v2.Operations"  # google.longrunning.Operations on this API's endpoint
FUNCTION_TYPE = "type.googleapis.com/google.cloud.functions.v2.Function"
METADATA_TYPE = "type.googleapis.com/google.cloud.functions.v2.OperationMetadata"
_PARENT = re.compile(r"^projects/([^/]+)/locations/([^/]+)\Z")
_NAME = re.compile(r"^projects/([^/]+)/locations/([^/]+)/functions/([^/]+)\Z")
_FUNCTION_ID = re.compile(r"^[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?\Z")
_MEMORY = re.compile(r"^\d+(?:\.\d+)?(?:k|M|G|Mi|Gi|Ki)?\Z")
_UPLOAD = re.compile(r"^/(gcf-v2-uploads-(\d+)-([a-z0-9-]+))/([0-9a-f-]+\.zip)\Z")
REGION_CODES = {
    "us-central1": "uc",
    "us-east1": "ue",
    "us-east4": "uk",
    "us-west1": "uw",
    "europe-west1": "ew",
    "europe-west2": "nw",
    "europe-west3": "ey",
    "europe-west4": "ez",
    "asia-northeast1": "an",
    "asia-southeast1": "as",
}
RUNTIMES = {
    "python310": "Python 3.10",
    "python311": "Python 3.11",
    "python312": "Python 3.12",
    "python313": "Python 3.13",
    "nodejs20": "Node.js 20",
    "nodejs22": "Node.js 22",
    "go122": "Go 1.22",
    "go123": "Go 1.23",
    "java17": "Java 17",
    "java21": "Java 21",
}
MAX_TIMEOUT_S = 3600
# What a function build does as the build account: write its logs, read the uploaded source, pull and push the
# image cache and image in Artifact Registry (the failing steps the troubleshooting page quotes; see
# docs/google-behaviour.md, "Function builds").
BUILD_PERMISSIONS = (
    "logging.logEntries.create",
    "storage.objects.get",
    "artifactregistry.repositories.downloadArtifacts",
    "artifactregistry.repositories.uploadArtifacts",
)
# Verbatim from users' reports (`OperationError: code=3, message=...`) and the troubleshooting page.
BUILD_FAILED = (
    "Build failed with status: FAILURE. Could not build the function due to a missing permission on the build "
    "service account. If you didn't revoke that permission explicitly, this could be caused by a change in the "
    "organization policies."
)

_STORAGE: Fields = {"bucket": None, "object": None, "generation": None, "sourceUploadUrl": None}
_REPO: Fields = {
    "projectId": None,
    "repoName": None,
    "branchName": None,
    "tagName": None,
    "commitSha": None,
    "dir": None,
}
_BUILD: Fields = {
    "automaticUpdatePolicy": {},
    "build": None,
    "dockerRegistry": None,
    "dockerRepository": None,
    "entryPoint": None,
    "environmentVariables": None,
    "onDeployUpdatePolicy": {"runtimeVersion": None},
    "runtime": None,
    "serviceAccount": None,
    "source": {"storageSource": _STORAGE, "repoSource": _REPO, "gitUri": None},
    "sourceProvenance": {"resolvedStorageSource": _STORAGE, "resolvedRepoSource": _REPO, "gitUri": None},
    "sourceToken": None,
    "workerPool": None,
}
_SERVICE: Fields = {
    "allTrafficOnLatestRevision": None,
    "availableCpu": None,
    "availableMemory": None,
    "binaryAuthorizationPolicy": None,
    # Direct VPC egress (Cloud Functions v2 REST reference, ServiceConfig; not in gcloud 528's client, which has no
    # flags for it): one interface {network, subnetwork, tags} and VPC_EGRESS_ALL_TRAFFIC | _PRIVATE_RANGES_ONLY.
    "directVpcEgress": None,
    "directVpcNetworkInterface": {"network": None, "subnetwork": None, "tags": None},
    "environmentVariables": None,
    "ingressSettings": None,
    "maxInstanceCount": None,
    "maxInstanceRequestConcurrency": None,
    "minInstanceCount": None,
    "revision": None,
    "secretEnvironmentVariables": {"key": None, "projectId": None, "secret": None, "version": None},
    "secretVolumes": {"mountPath": None, "projectId": None, "secret": None, "versions": None},
    "securityLevel": None,
    "service": None,
    "serviceAccountEmail": None,
    "timeoutSeconds": None,
    "uri": None,
    "vpcConnector": None,
    "vpcConnectorEgressSettings": None,
}
_TRIGGER: Fields = {
    "channel": None,
    "eventFilters": {"attribute": None, "operator": None, "value": None},
    "eventType": None,
    "pubsubTopic": None,
    "retryPolicy": None,
    "service": None,
    "serviceAccountEmail": None,
    "trigger": None,
    "triggerRegion": None,
}
FUNCTION: Fields = {
    "name": None,
    "description": None,
    "buildConfig": _BUILD,
    "serviceConfig": _SERVICE,
    "eventTrigger": _TRIGGER,
    "state": None,
    "updateTime": None,
    "createTime": None,
    "labels": None,
    "stateMessages": None,
    "environment": None,
    "upgradeInfo": None,
    "url": None,
    "kmsKeyName": None,
    "satisfiesPzs": None,
    "satisfiesPzi": None,
    "buildpackStack": None,
}


@dataclass
class FunctionStore:
    """Cloud Functions in one project: functions by resource name, and the source upload URLs it signed, by object
    path."""

    functions: dict[Any, Any] = field(default_factory=dict)
    uploads: dict[Any, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Wanted:
    """One revision the runtime should serve: everything it needs, copied out of the store."""

    function: str  # projects/P/locations/R/functions/F
    project_id: str
    region: str
    function_id: str
    revision: str
    source: bytes
    source_file: str  # GOOGLE_FUNCTION_SOURCE, else main.py
    entry_point: str
    signature_type: str  # http | cloudevent
    service_account: str
    environment: dict[str, str]
    hosts: tuple[str, ...]  # the service URL's host, the function URL's host
    operation: str  # the deploy's operation, "" once it has ended
    network: str = ""  # the VPC network its calls to Google APIs leave through, "" for Cloud Run's default egress


@dataclass
class FunctionRecord:
    resource: Doc  # the Function as the API returns it
    source_size: int = 0
    source_files: list[str] = field(default_factory=list)
    policy: iam.Policy = field(default_factory=iam.Policy)
    source: bytes = b""
    deploying: Wanted | None = None  # the revision being started (serving on)
    live: Wanted | None = None  # the revision serving
    subscription: str = ""  # the Eventarc trigger's push subscription on its topic


@dataclass
class Upload:
    signature: str
    expires: datetime
    size: int | None = None  # set once the zip has arrived
    files: list[str] | None = None
    data: bytes = b""


# Names, errors and checks --------------------------------------------------------------------------------------


def denied(permission: str, resource: str) -> RpcError:
    return RpcError(
        code_pb2.PERMISSION_DENIED,
        f"Permission '{permission}' denied on resource '{resource}' (or resource may not exist).",
    )


def _project(call: Call, ref: str, permission: str, resource: str) -> Project:
    call.authenticate()
    project = call.world.project(ref)
    if project is None:
        raise denied(permission, resource)
    require_enabled(project, API)
    return project


def _parent(call: Call, parent: str, permission: str, resource: str = "") -> tuple[Project, str]:
    match = _PARENT.match(parent)
    if match is None:
        raise invalid_argument(f"Invalid parent: {parent!r}. Expected projects/PROJECT/locations/LOCATION.")
    project = _project(call, match.group(1), permission, resource or parent)
    if not allowed_on(call, project, permission):
        raise denied(permission, resource or parent)
    return project, match.group(2)


def _function(call: Call, name: str, permission: str | None) -> tuple[Project, FunctionRecord]:
    match = _NAME.match(name)
    if match is None:
        raise invalid_argument(f"Invalid function name: {name!r}. Expected projects/P/locations/L/functions/F.")
    project = _project(call, match.group(1), permission or "cloudfunctions.functions.get", name)
    record = project.store(FunctionStore).functions.get(_key(project, match.group(2), match.group(3)))
    policies = [record.policy] if record is not None else []
    if permission and not allowed_on(call, project, permission, *policies):
        raise denied(permission, name)
    if record is None:
        raise not_found(f"Resource '{name}' was not found")
    return project, record


def _key(project: Project, region: str, function_id: str) -> str:
    return f"projects/{project.project_id}/locations/{region}/functions/{function_id}"


def service_uri(project: Project, region: str, function_id: str) -> str:
    digest = base64.b32encode(hashlib.sha256(project.number.encode()).digest()).decode().lower()
    return f"https://{function_id}-{digest[:10]}-{REGION_CODES.get(region, 'uc')}.a.run.app"


def _runtime_account(project: Project, service: Doc) -> str:
    return text(service, "serviceAccountEmail") or f"{project.number}-compute@developer.gserviceaccount.com"


def _check_act_as(call: Call, function_id: str, email: str) -> None:
    if not iamadmin.can_act_as(call, email):
        raise RpcError(
            code_pb2.PERMISSION_DENIED,
            f"Could not create Cloud Run service {function_id}. Permission 'iam.serviceaccounts.actAs' denied on "
            f"service account {email} (or it may not exist).",
        )


def build_account(project: Project, build: Doc) -> str:
    """The e-mail of the account the build runs as."""
    given = text(build, "serviceAccount")
    if given:
        return given.rsplit("/", 1)[-1]
    return f"{project.number}-compute@developer.gserviceaccount.com"


def _check_build_act_as(call: Call, project: Project, build: Doc, previous: Doc | None) -> None:
    """A named build account is used on the caller's behalf: the caller must be able to act as it."""
    given = text(build, "serviceAccount")
    if not given or (previous is not None and text(previous, "serviceAccount") == given):
        return
    email = build_account(project, build)
    if not iamadmin.can_act_as(call, email):
        raise RpcError(
            code_pb2.PERMISSION_DENIED,
            f"Permission 'iam.serviceaccounts.actAs' denied on service account {email} (or it may not exist).",
        )


def build_error(call: Call, project: Project, build: Doc) -> RpcError | None:
    """The build's failure when its account lacks a permission the build needs, else None."""
    who = iam.member_of(build_account(project, build))
    if all(call.world.allows(project, who, p) for p in BUILD_PERMISSIONS):
        return None
    return RpcError(code_pb2.INVALID_ARGUMENT, BUILD_FAILED)


def source_file(build: Doc) -> str:
    """The file the Python buildpack serves: GOOGLE_FUNCTION_SOURCE from the build environment, else main.py."""
    given = message(build, "environmentVariables").get("GOOGLE_FUNCTION_SOURCE")
    return given if isinstance(given, str) and given else "main.py"


def buildpack_error(build: Doc, files: list[str], data: bytes) -> str | None:
    """What the Python buildpack stops on, in its words (docs/google-behaviour.md, "Function builds"): the source
    file missing, or a requirements.txt line this environment cannot satisfy (pip's words). None when it builds."""
    given = message(build, "environmentVariables").get("GOOGLE_FUNCTION_SOURCE")
    if given:
        if given not in files:
            return f'GOOGLE_FUNCTION_SOURCE specified file "{given}" but it does not exist'
    elif "main.py" not in files:
        return (
            "missing main.py and GOOGLE_FUNCTION_SOURCE not specified. Either create the function in main.py or "
            "specify GOOGLE_FUNCTION_SOURCE to point to the file that contains the function"
        )
    if "requirements.txt" not in files or not data:
        return None
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        text_ = archive.read("requirements.txt")[: 1 << 20].decode("utf-8", errors="replace")
    return unsatisfied(text_)


def unsatisfied(requirements: str) -> str | None:
    """pip's error for the first requirement the installed environment does not satisfy, None when all are.

    Assumption: the function's environment is the emulator's own Python environment; a requirement is met when an
    installed distribution's version is in its specifier (markers evaluated), as the buildpack's pip install would
    find nothing newer to install. Options (-r, --index-url, …) and URLs are not followed.
    """
    for raw in requirements.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            return f"ERROR: Invalid requirement: {line[:200]!r}"
        if requirement.url or (requirement.marker is not None and not requirement.marker.evaluate()):
            continue
        try:
            installed = importlib.metadata.version(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            installed = None
        if installed is None or not requirement.specifier.contains(installed, prereleases=True):
            shown = line[:200]
            return (
                f"ERROR: Could not find a version that satisfies the requirement {shown} (from versions: "
                f"{installed or 'none'})\nERROR: No matching distribution found for {shown}"
            )
    return None


def _build_failed(project: Project, region: str, build: Doc, detail: str) -> RpcError:
    """The operation error of a failed build: Google's form, seen in users' reports of `gcloud functions deploy`."""
    build_id = text(build, "build").rsplit("/", 1)[-1]
    return RpcError(
        code_pb2.INVALID_ARGUMENT,
        f"Build failed with status: FAILURE and message: {detail}. For more details see the logs at "
        f"https://console.cloud.google.com/cloud-build/builds;region={region}/{build_id}?project={project.number}.",
    )


def _validate(project: Project, function: Doc) -> None:
    build, service = message(function, "buildConfig"), message(function, "serviceConfig")
    runtime = text(build, "runtime")
    if runtime not in RUNTIMES:
        raise invalid_argument(
            f"Invalid value '{runtime}' for field 'build_config.runtime': supported runtimes are "
            f"{', '.join(sorted(RUNTIMES))}."
        )
    memory = text(service, "availableMemory")
    if memory and not _MEMORY.match(memory):
        raise invalid_argument(f"Invalid value '{memory}' for field 'service_config.available_memory'.")
    timeout = integer(service, "timeoutSeconds", 60)
    if not 1 <= timeout <= MAX_TIMEOUT_S:
        raise invalid_argument(
            f"Invalid value '{timeout}' for field 'service_config.timeout_seconds': must be between 1 and "
            f"{MAX_TIMEOUT_S}."
        )
    email = _runtime_account(project, service)
    if not email.endswith(".gserviceaccount.com"):
        raise invalid_argument(f"Invalid service account email: {email}.")
    try:
        egress.function_egress_network(project.project_id, service)
    except ValueError as error:
        raise invalid_argument(f"Invalid Direct VPC egress settings: {error}.") from None


def _source(project: Project, build: Doc) -> tuple[Doc, Upload]:
    storage = message(message(build, "source"), "storageSource")
    key = f"{text(storage, 'bucket')}/{text(storage, 'object')}"
    upload = project.store(FunctionStore).uploads.get(key)
    if upload is None or upload.size is None:
        raise invalid_argument(
            f"Function source gs://{key} not found: upload a zip to the URL generateUploadUrl returned first."
        )
    if upload.files is None:
        raise invalid_argument(f"Function source gs://{key} is not a valid zip archive.")
    return storage, upload


# The function resource ---------------------------------------------------------------------------------------


def _build(project: Project, region: str, given: Doc, storage: Doc) -> Doc:
    generation = str(secrets.randbelow(10**15) + 10**15)
    resolved = {"bucket": storage["bucket"], "object": storage["object"], "generation": generation}
    return {
        **{k: v for k, v in given.items() if k not in ("source", "sourceProvenance")},
        "build": f"projects/{project.number}/locations/{region}/builds/{secrets.token_hex(18)}",
        "source": {"storageSource": resolved},
        "sourceProvenance": {"resolvedStorageSource": resolved},
        "dockerRegistry": "ARTIFACT_REGISTRY",
        "dockerRepository": given.get(
            "dockerRepository", f"projects/{project.project_id}/locations/{region}/repositories/gcf-artifacts"
        ),
        "serviceAccount": given.get(
            "serviceAccount",
            f"projects/{project.project_id}/serviceAccounts/{project.number}-compute@developer.gserviceaccount.com",
        ),
    }


def _service(project: Project, region: str, function_id: str, given: Doc, revision: int) -> Doc:
    return {
        "timeoutSeconds": 60,
        "availableMemory": "256M",
        "availableCpu": "0.1666",
        "maxInstanceCount": 100,
        "maxInstanceRequestConcurrency": 1,
        "ingressSettings": "ALLOW_ALL",
        "allTrafficOnLatestRevision": True,
        **given,
        "service": f"projects/{project.project_id}/locations/{region}/services/{function_id}",
        "serviceAccountEmail": _runtime_account(project, given),
        "uri": service_uri(project, region, function_id),
        "revision": f"{function_id}-{revision:05d}-{secrets.token_hex(2)[:3]}",
    }


def _assemble(call: Call, project: Project, region: str, function_id: str, given: Doc, created: str) -> Doc:
    """The stored Function from what the caller gave: output-only fields filled, the rest kept."""
    storage, _ = _source(project, message(given, "buildConfig"))
    previous = project.store(FunctionStore).functions.get(_key(project, region, function_id))
    revision = 1 if previous is None else int(previous.resource["serviceConfig"]["revision"].split("-")[-2]) + 1
    return {
        **{k: v for k, v in given.items() if k in FUNCTION and k not in ("state", "updateTime", "createTime")},
        "name": _key(project, region, function_id),
        "buildConfig": _build(project, region, message(given, "buildConfig"), storage),
        "serviceConfig": _service(project, region, function_id, message(given, "serviceConfig"), revision),
        "state": "ACTIVE",
        "updateTime": now(call),
        "createTime": created,
        "environment": "GEN_2",
        "url": f"https://{region}-{project.project_id}.cloudfunctions.net/{function_id}",
        "satisfiesPzi": True,
    }


def _store(call: Call, project: Project, resource: Doc) -> FunctionRecord:
    """Keep the function, its source summary and its Cloud Run service (the invokers' policy lives there)."""
    name = resource["name"]
    _, upload = _source(project, resource["buildConfig"])
    record = project.store(FunctionStore).functions.get(name) or FunctionRecord(resource)
    record.resource = resource
    record.source_size, record.source_files = upload.size or 0, list(upload.files or [])
    record.source = upload.data
    _event_trigger(call, project, record)
    project.store(FunctionStore).functions[name] = record
    service_name = resource["serviceConfig"]["service"]
    service = project.store(RunStore).run_services.get(service_name)
    account = resource["serviceConfig"]["serviceAccountEmail"]
    if service is None:
        uri = resource["serviceConfig"]["uri"]
        project.store(RunStore).run_services[service_name] = RunService(
            service_name, uri, account, name, now(call), now(call)
        )
    else:
        service.service_account, service.update_time = account, now(call)
        service.generation += 1
    return record


def _buildpack(project: Project, resource: Doc) -> RpcError | None:
    record_files = _source(project, resource["buildConfig"])[1]
    detail = buildpack_error(resource["buildConfig"], list(record_files.files or []), record_files.data)
    region = resource["name"].split("/")[3]
    return None if detail is None else _build_failed(project, region, resource["buildConfig"], detail)


def _deployed(call: Call, project: Project, record: FunctionRecord, verb: str) -> Doc:
    """The deploy's operation: finished at once, or (serving on) running until the runtime starts the revision."""
    resource = record.resource
    operation = _operation(call, project, resource["name"], verb, resource)
    if not call.world.serving:
        return operation
    operation["done"] = False
    operation.pop("response", None)
    operation["metadata"]["endTime"] = None
    operation["metadata"].pop("endTime")
    for stage in operation["metadata"]["stages"]:
        stage["state"] = "COMPLETE" if stage["name"] == "BUILD" else "IN_PROGRESS"
    resource["state"] = "DEPLOYING"
    record.deploying = _wanted(project, record, operation["name"])
    return copy.deepcopy(operation)


def _wanted(project: Project, record: FunctionRecord, operation: str) -> Wanted:
    resource = record.resource
    build, service = resource["buildConfig"], resource["serviceConfig"]
    _, region, function_id = resource["name"].split("/")[1::2]
    return Wanted(
        function=resource["name"],
        project_id=project.project_id,
        region=region,
        function_id=function_id,
        revision=service["revision"],
        source=record.source,
        source_file=source_file(build),
        entry_point=text(build, "entryPoint") or function_id,
        signature_type="cloudevent" if "eventTrigger" in resource else "http",
        service_account=service["serviceAccountEmail"],
        environment={str(k): str(v) for k, v in message(service, "environmentVariables").items()},
        hosts=(_host(service["uri"]), _host(resource["url"])),
        operation=operation,
        network=wanted_network(project, record),  # validated on create / update
    )


def wanted_network(project: Project, record: FunctionRecord) -> str:
    """The network a function's instances egress through to Google APIs ("" for Cloud Run's default egress)."""
    return egress.function_egress_network(project.project_id, record.resource["serviceConfig"])


def _host(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0].lower()


# What the runtime (emulator/runtime) reads and reports, under the world's lock ---------------------------------


def _records(world: World) -> list[tuple[Project, FunctionRecord]]:
    return [(p, r) for p in world.projects.values() for r in p.store(FunctionStore).functions.values()]


def wanted_revisions(world: World) -> dict[str, Wanted]:
    """The revision each function should serve: the one being deployed, else the one serving."""
    found: dict[str, Wanted] = {}
    for _, record in _records(world):
        want = record.deploying or record.live
        if want is not None:
            found[want.function] = want
    return found


def _finish(
    world: World, want: Wanted, error: RpcError | None, settle: Callable[[FunctionRecord], None]
) -> FunctionRecord | None:
    """End the deploy of `want`: `settle` the function's state first, then the operation and its audit entry, which
    show the function as it now is."""
    for project, record in _records(world):
        if record.resource["name"] != want.function or record.deploying is not want:
            continue
        record.deploying = None
        settle(record)
        operation = project.store(OperationStore).operations.get(want.operation)
        if operation is not None:
            operation["done"] = True
            operation["metadata"]["endTime"] = rfc3339(world.clock.now())
            for stage in operation["metadata"]["stages"]:
                stage["state"] = "COMPLETE"
            if error is None:
                operation["response"] = {"@type": FUNCTION_TYPE, **copy.deepcopy(record.resource)}
            else:
                operation["error"] = {"code": error.code, "message": error.message}
        operation_ended(world, project, want.operation, _logged_function(record.resource) if error is None else None)
        return record
    return None


def revision_ready(world: World, want: Wanted) -> None:
    def settle(record: FunctionRecord) -> None:
        record.live = want
        record.resource["state"] = "ACTIVE"
        record.resource.pop("stateMessages", None)

    _finish(world, want, None, settle)


def revision_failed(world: World, want: Wanted, detail: str) -> None:
    """The revision did not start: Cloud Run's health-check failure (users' reports of gen2 deploys); a function
    that was serving keeps its last revision."""
    error = RpcError(
        code_pb2.INVALID_ARGUMENT,
        f"Could not create or update Cloud Run service {want.function_id}, Container Healthcheck failed. Revision "
        f"'{want.revision}' is not ready and cannot serve traffic. The user-provided container failed to start and "
        "listen on the port defined provided by the PORT=8080 environment variable within the allocated timeout. "
        "This can happen when the container port is misconfigured or if the timeout is too short. The health check "
        "timeout can be extended. Logs for this revision might contain more information.",
    )
    del detail  # in the revision's own logs, as on Google

    def settle(record: FunctionRecord) -> None:
        record.resource["state"] = "FAILED"
        record.resource["stateMessages"] = [
            {"severity": "ERROR", "type": "CloudRunServiceFailed", "message": error.message}
        ]

    _finish(world, want, error, settle)


def invocation_target(world: World, function: str) -> tuple[Project, list[iam.Policy], set[str]] | None:
    """What Cloud Run's ingress checks a call to the function against: its project, the Cloud Run service's policy,
    and the audiences an ID token may name (the service URL and the function URL, with or without a final /)."""
    for project, record in _records(world):
        if record.resource["name"] == function:
            service = project.store(RunStore).run_services.get(record.resource["serviceConfig"]["service"])
            policies = [service.policy] if service is not None else []
            urls = {record.resource["serviceConfig"]["uri"], record.resource["url"]}
            return project, policies, urls | {u + "/" for u in urls}
    return None


def timeout_s(world: World, function: str) -> float:
    for _, record in _records(world):
        if record.resource["name"] == function:
            return float(integer(record.resource["serviceConfig"], "timeoutSeconds", 60))
    return 60.0


def revision_of(world: World, function: str) -> tuple[str, str, str, str] | None:
    """(project id, region, service, revision serving) for the request log."""
    for project, record in _records(world):
        if record.resource["name"] == function and record.live is not None:
            return project.project_id, record.live.region, record.live.function_id, record.live.revision
    return None


def _event_trigger(call: Call, project: Project, record: FunctionRecord) -> None:
    """A function with an eventTrigger on a topic gets what Eventarc makes for it: a trigger and a push
    subscription on the topic delivering each message to the function's URL as a CloudEvent, with an ID token of
    the trigger's service account (default: the Compute Engine default account). A redeploy replaces it."""
    if record.subscription:
        pubsub.unsubscribe(call.world, project.project_id, record.subscription)
        record.subscription = ""
    trigger = record.resource.get("eventTrigger")
    if not isinstance(trigger, dict) or not trigger.get("pubsubTopic"):
        return
    _, region, function_id = record.resource["name"].split("/")[1::2]
    uri = record.resource["serviceConfig"]["uri"]
    account = text(trigger, "serviceAccountEmail") or f"{project.number}-compute@developer.gserviceaccount.com"
    suffix = f"{secrets.randbelow(1000):03d}-sub-{secrets.randbelow(1000):03d}"
    record.subscription = pubsub.subscribe_push(
        call.world,
        project.project_id,
        trigger["pubsubTopic"],
        f"eventarc-{region}-{function_id}-{suffix}",
        uri,
        account,
        uri,
        cloudevent=True,
    )
    trigger.setdefault(
        "trigger", f"projects/{project.project_id}/locations/{region}/triggers/{function_id}-{secrets.token_hex(3)}"
    )
    trigger.setdefault("eventType", "google.cloud.pubsub.topic.v1.messagePublished")
    trigger.setdefault("serviceAccountEmail", account)


def _failed(call: Call, project: Project, resource: Doc, verb: str, error: RpcError) -> Doc:
    """A build that failed: the operation ends with the error; a new function is kept in state FAILED, an existing
    one keeps serving its last revision and reads FAILED."""
    name = resource["name"]
    record = project.store(FunctionStore).functions.get(name)
    if record is None:
        _, upload = _source(project, resource["buildConfig"])
        record = FunctionRecord(resource, upload.size or 0, list(upload.files or []))  # no Cloud Run service
        project.store(FunctionStore).functions[name] = record
    record.resource["state"] = "FAILED"
    record.resource["stateMessages"] = [{"severity": "ERROR", "type": "BuildFailed", "message": error.message}]
    operation = _operation(call, project, name, verb, None)
    operation.pop("response", None)
    operation["error"] = {"code": error.code, "message": error.message}
    return operation


def _operation(call: Call, project: Project, name: str, verb: str, response: Doc | None) -> Doc:
    region = name.split("/")[3]
    stages = (
        []
        if verb == "delete"
        else ["BUILD", "PROTO", *(["TRIGGER"] if response and "eventTrigger" in response else [])]
    )
    metadata = {
        "@type": METADATA_TYPE,
        "createTime": now(call),
        "endTime": now(call),
        "target": name,
        "verb": verb,
        "cancelRequested": False,
        "apiVersion": "v2",
        "stages": [{"name": stage, "state": "COMPLETE", "message": ""} for stage in stages],
        "operationType": {"create": "CREATE_FUNCTION", "update": "UPDATE_FUNCTION"}.get(verb, "DELETE_FUNCTION"),
    }
    typed = {"@type": FUNCTION_TYPE, **response} if response is not None else None
    op_name = f"projects/{project.project_id}/locations/{region}/operations/{operation_id()}"
    return new_operation(project, op_name, metadata, typed)


def cloud_function(name: str) -> Doc:
    """The monitored resource of a function's audit entries: cloud_function, labelled by name, region and project
    (Cloud Functions' monitored-resource type; docs/google-behaviour.md, "Admin Activity entries")."""
    _, project_id, _, region, _, function_id = name.split("/")
    return {
        "type": "cloud_function",
        "labels": {"function_name": function_id, "region": region, "project_id": project_id},
    }


def _logged_function(resource: Doc) -> Doc:
    return {"@type": FUNCTION_TYPE, **copy.deepcopy(resource)}


def _audit(call: Call, project: Project, request: Doc, verb: str, operation: Doc) -> Doc:
    """The Admin Activity entries of a create, update or delete: long-running (Cloud Functions' audit page marks
    them LRO), so a first entry with the request now and a last one when the operation ends."""
    metadata = operation["metadata"]
    name = metadata["target"]
    permission = f"cloudfunctions.functions.{verb}"
    request_type = f"type.googleapis.com/google.cloud.functions.v2.{verb.capitalize()}FunctionRequest"
    response = operation.get("response") if verb != "delete" else None
    audited(
        call,
        project,
        resource=name,
        permission=permission,
        resource_type=cloud_function(name),
        request={"@type": request_type, **copy.deepcopy(request)},
        response=copy.deepcopy(response) if response else None,
        operation=operation["name"],
        done=bool(operation["done"]),
    )
    return operation


# Handlers ------------------------------------------------------------------------------------------------------


def get_function(call: Call, request: Doc) -> Doc:
    return copy.deepcopy(_function(call, text(request, "name"), "cloudfunctions.functions.get")[1].resource)


def list_functions(call: Call, request: Doc) -> Doc:
    project, region = _parent(call, text(request, "parent"), "cloudfunctions.functions.list")
    found = [
        copy.deepcopy(r.resource)
        for name, r in sorted(project.store(FunctionStore).functions.items())
        if region == "-" or name.split("/")[3] == region
    ]
    return listed("functions", found, request, 1000, 1000)


def create_function(call: Call, request: Doc) -> Doc:
    function_id = text(request, "functionId")
    parent = text(request, "parent")
    project, region = _parent(call, parent, "cloudfunctions.functions.create", f"{parent}/functions/{function_id}")
    if not _FUNCTION_ID.match(function_id):
        raise invalid_argument(
            f"Invalid function_id '{function_id}': it must start with a letter, contain only lower case letters, "
            "digits and hyphens, end with a letter or digit, and be at most 63 characters long."
        )
    if _key(project, region, function_id) in project.store(FunctionStore).functions:
        raise RpcError(code_pb2.ALREADY_EXISTS, f"Resource '{_key(project, region, function_id)}' already exists")
    given = message(request, "function")
    _validate(project, given)
    _check_act_as(call, function_id, _runtime_account(project, message(given, "serviceConfig")))
    _check_build_act_as(call, project, message(given, "buildConfig"), None)
    resource = _assemble(call, project, region, function_id, given, now(call))
    failed = build_error(call, project, resource["buildConfig"]) or _buildpack(project, resource)
    if failed is not None:
        return _audit(call, project, request, "create", _failed(call, project, resource, "create", failed))
    record = _store(call, project, resource)
    return _audit(call, project, request, "create", _deployed(call, project, record, "create"))


def update_function(call: Call, request: Doc) -> Doc:
    given = message(request, "function")
    name = text(given, "name")
    project, record = _function(call, name, "cloudfunctions.functions.update")
    paths = mask_paths(request)
    for path in paths:
        if path.split(".")[0] not in FUNCTION:
            raise invalid_argument(f"Invalid update_mask path: {path}.")
    merged = apply_mask(record.resource, given, paths) if paths else {**record.resource, **given}
    _validate(project, merged)
    function_id = name.rsplit("/", 1)[1]
    old_account = record.resource["serviceConfig"]["serviceAccountEmail"]
    new_account = _runtime_account(project, message(merged, "serviceConfig"))
    if new_account != old_account:
        _check_act_as(call, function_id, new_account)
    _check_build_act_as(call, project, message(merged, "buildConfig"), record.resource.get("buildConfig"))
    region = name.split("/")[3]
    resource = _assemble(call, project, region, function_id, merged, record.resource["createTime"])
    failed = build_error(call, project, resource["buildConfig"]) or _buildpack(project, resource)
    if failed is not None:
        return _audit(call, project, request, "update", _failed(call, project, resource, "update", failed))
    record = _store(call, project, resource)
    return _audit(call, project, request, "update", _deployed(call, project, record, "update"))


def delete_function(call: Call, request: Doc) -> Doc:
    project, record = _function(call, text(request, "name"), "cloudfunctions.functions.delete")
    del project.store(FunctionStore).functions[record.resource["name"]]
    if record.subscription:
        pubsub.unsubscribe(call.world, project.project_id, record.subscription)
    project.store(RunStore).run_services.pop(record.resource["serviceConfig"]["service"], None)
    return _audit(call, project, request, "delete", _operation(call, project, record.resource["name"], "delete", None))


def list_gen1_functions(call: Call, request: Doc) -> Doc:
    """Cloud Functions v1 ListFunctions: gen1 functions only, and this emulator deploys gen2 only (none to list).

    `gcloud functions list` asks both versions and fails if either is missing.
    """
    _parent(call, text(request, "parent"), "cloudfunctions.functions.list")
    return {}


def get_operation(call: Call, request: Doc) -> Doc:
    name = text(request, "name")
    match = re.match(r"^projects/([^/]+)/locations/([^/]+)/operations/([^/]+)$", name)
    project = _project(call, match.group(1) if match else "", "cloudfunctions.operations.get", name)
    if not allowed_on(call, project, "cloudfunctions.operations.get"):
        raise denied("cloudfunctions.operations.get", name)
    operation = project.store(OperationStore).operations.get(name)
    if operation is None:
        raise not_found(f"Operation {name} not found")
    return copy.deepcopy(operation)


def list_runtimes(call: Call, request: Doc) -> Doc:
    """Assumption (docs/google-behaviour.md, "IAM"): Google has no cloudfunctions.runtimes.list permission, so the
    list needs an authenticated caller and the API enabled, nothing more."""
    parent = text(request, "parent")
    match = _PARENT.match(parent)
    if match is None:
        raise invalid_argument(f"Invalid parent: {parent!r}. Expected projects/PROJECT/locations/LOCATION.")
    _project(call, match.group(1), "cloudfunctions.functions.list", parent)
    return {
        "runtimes": [
            {"name": rid, "displayName": title, "stage": "GA", "environment": "GEN_2"}
            for rid, title in sorted(RUNTIMES.items())
        ]
    }


def generate_upload_url(call: Call, request: Doc) -> Doc:
    project, region = _parent(call, text(request, "parent"), "cloudfunctions.functions.sourceCodeSet")
    bucket = f"gcf-v2-uploads-{project.number}-{region}"
    obj = f"{uuid.uuid4()}.zip"
    expires = call.world.clock.now() + timedelta(minutes=30)
    upload = Upload(signature=secrets.token_urlsafe(32), expires=expires)
    project.store(FunctionStore).uploads[f"{bucket}/{obj}"] = upload
    base = call.base_url if isinstance(call, RestCall) else "http://127.0.0.1"
    url = (
        f"{base}/{bucket}/{obj}?GoogleAccessId=service-{project.number}%40gcf-admin-robot.iam.gserviceaccount.com"
        f"&Expires={int(expires.timestamp())}&Signature={upload.signature}"
    )
    return {"uploadUrl": url, "storageSource": {"bucket": bucket, "object": obj}}


# The upload URL (a Cloud Storage signed URL, served here) -----------------------------------------------------


def receive_upload(world: World, request: Request) -> Response | None:
    """A PUT to a signed upload URL: keep the zip's size and file names; refuse a URL this emulator did not sign (as
    Cloud Storage does, 403). None for any other request."""
    match = _UPLOAD.match(request.path) if request.method == "PUT" else None
    if match is None:
        return None
    bucket, number, _, obj = match.groups()
    with world.lock:
        project = world.project(number)
        upload = project.store(FunctionStore).uploads.get(f"{bucket}/{obj}") if project is not None else None
        if upload is None or request.param("Signature") != upload.signature or world.clock.now() > upload.expires:
            body = (
                "<?xml version='1.0' encoding='UTF-8'?><Error><Code>SignatureDoesNotMatch</Code><Message>The request "
                "signature we calculated does not match the signature you provided.</Message></Error>"
            )
            return Response(403, body.encode(), {"Content-Type": "application/xml; charset=UTF-8"})
        upload.size = len(request.body)
        upload.data = request.body
        try:
            with zipfile.ZipFile(io.BytesIO(request.body)) as archive:
                upload.files = sorted(archive.namelist())
        except zipfile.BadZipFile:
            upload.files = None
    etag = hashlib.md5(request.body, usedforsecurity=False).hexdigest()
    return Response(200, b"", {"ETag": f'"{etag}"', "x-goog-generation": str(secrets.randbelow(10**15))})


_FN = "projects/*/locations/*/functions/*"
METHODS: list[JsonMethod] = [
    json_method(PROTO, "GetFunction", get_function, API, {"name": None, "revision": None}),
    json_method(
        PROTO,
        "ListFunctions",
        list_functions,
        API,
        {"parent": None, "pageSize": None, "pageToken": None, "filter": None, "orderBy": None},
    ),
    json_method(
        PROTO, "CreateFunction", create_function, API, {"parent": None, "function": FUNCTION, "functionId": None}
    ),
    json_method(PROTO, "UpdateFunction", update_function, API, {"function": FUNCTION, "updateMask": None}),
    json_method(PROTO, "DeleteFunction", delete_function, API, {"name": None}),
    json_method(
        PROTO,
        "GenerateUploadUrl",
        generate_upload_url,
        API,
        {"parent": None, "kmsKeyName": None, "environment": None},
    ),
    json_method(PROTO, "ListRuntimes", list_runtimes, API, {"parent": None, "filter": None}),
    *iam_policy_methods(
        PROTO,
        API,
        "cloudfunctions.functions",
        _function,
        audit_target=lambda project, record, name: (name, cloud_function(name)),
    ),
    json_method(OPERATIONS, "GetOperation", get_operation, API, {"name": None}),
    json_method(
        "google.cloud.functions.v1.CloudFunctionsService",
        "ListFunctions",
        list_gen1_functions,
        API,
        {"parent": None, "pageSize": None, "pageToken": None},
    ),
]

RULES: list[HttpRule] = [
    HttpRule("GET", f"/v2/{{name={_FN}}}", f"{PROTO}.GetFunction"),
    HttpRule("GET", "/v2/{parent=projects/*/locations/*}/functions", f"{PROTO}.ListFunctions"),
    HttpRule("POST", "/v2/{parent=projects/*/locations/*}/functions", f"{PROTO}.CreateFunction", "function"),
    HttpRule("PATCH", f"/v2/{{function.name={_FN}}}", f"{PROTO}.UpdateFunction", "function"),
    HttpRule("DELETE", f"/v2/{{name={_FN}}}", f"{PROTO}.DeleteFunction"),
    HttpRule(
        "POST", "/v2/{parent=projects/*/locations/*}/functions:generateUploadUrl", f"{PROTO}.GenerateUploadUrl", "*"
    ),
    HttpRule("GET", "/v2/{parent=projects/*/locations/*}/runtimes", f"{PROTO}.ListRuntimes"),
    HttpRule("GET", f"/v2/{{resource={_FN}}}:getIamPolicy", f"{PROTO}.GetIamPolicy"),
    HttpRule("POST", f"/v2/{{resource={_FN}}}:setIamPolicy", f"{PROTO}.SetIamPolicy", "*"),
    HttpRule("POST", f"/v2/{{resource={_FN}}}:testIamPermissions", f"{PROTO}.TestIamPermissions", "*"),
    # Cloud Run v2 has the same operations path; only Cloud Functions creates operations here.
    HttpRule("GET", "/v2/{name=projects/*/locations/*/operations/*}", f"{OPERATIONS}.GetOperation"),
    HttpRule(
        "GET",
        "/v1/{parent=projects/*/locations/*}/functions",
        "google.cloud.functions.v1.CloudFunctionsService.ListFunctions",
    ),
]


SERVICE = Service(
    apis=(Api(API, "Cloud Functions API", gcloud="CLOUDFUNCTIONS"),),
    methods=(*METHODS,),
    rules=(*RULES,),
    http=receive_upload,
)
