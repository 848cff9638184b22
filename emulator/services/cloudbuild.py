"""Cloud Build v1 (cloudbuild.googleapis.com): GetDefaultServiceAccount, which `gcloud functions deploy` asks for to
warn when the build service account lacks roles/cloudbuild.builds.builder, and the builds `gcloud run jobs deploy
--source` makes: Cloud Run's `builds:submit` (services/runjobs.py) starts one here, and gcloud then polls its
operation (`projects/P/locations/R/operations/BUILD_ID`, operations.get) until it is done
(googlecloudsdk/command_lib/run/sourcedeploys/deployer.py, _SubmitBuild and _PollUntilBuildCompletes); builds.create
and builds.get are gcloud's fallback when `builds:submit` answers 404. (A function's own build is recorded by
services/functions.py.)

A build here checks, and does not containerize: it reads the staged source from Cloud Storage, checks the zip as the
runtime unpacks it (core/archive.py: nothing escaping the folder, no links, no bombs), then does what Google's Python
buildpack checks (a Python app at the top: a `.py` file, requirements.txt or pyproject.toml; requirements.txt
satisfied by the emulator's own environment, pip's text otherwise, as services/functions.py checks a function's) and
pushes the image (the checked zip and its default command) into the Artifact Registry repository the image names. The
image's default command is a buildpack's entrypoint: GOOGLE_ENTRYPOINT from the build environment, else the
Procfile's `web` entry (cloud.google.com/docs/buildpacks/service-specific-configs and /about-procfile). Its steps'
output is written to the build's log (`projects/P/logs/cloudbuild`, resource `build`).

A failed build ends its operation with the error gcloud prints, "Build failed; check build logs for details." (the
text users report from `gcloud run deploy --source`), the build FAILURE with the step's output in its log.

Assumption: the default build service account is the project's default compute account (Google's default for
projects created since 2024), and reading it needs only credentials and the API enabled; the permission Google
checks here is not documented.
Assumption: a build runs to its end when it is created (its operation is done on the first poll); a Dockerfile build
is checked like a buildpacks one without reading the Dockerfile, and its image has no default command.
Assumption: a Python source with neither GOOGLE_ENTRYPOINT nor a Procfile `web` entry gets an image without a default
command (the job's command and args are what runs; Google's buildpack would default to a web server).
Assumption: pushing to the image's repository is not checked against the build account's permissions; a repository
that does not exist fails the build with docker's "name unknown: Repository "R" not found".
"""

from __future__ import annotations

import itertools
import re
import shlex
import uuid
from dataclasses import dataclass, field
from typing import Any

from google.rpc import code_pb2

from emulator.core import archive
from emulator.core.clock import rfc3339
from emulator.core.handlers import Api, Call, Doc, HttpRule, JsonMethod, Service, json_method
from emulator.core.status import RpcError, invalid_argument
from emulator.core.world import Project, World
from emulator.services import artifactregistry, functions, storage
from emulator.services.kit import allowed_on, audited, caller_denied, message, require_enabled, text

API = "cloudbuild.googleapis.com"
PROTO = "google.devtools.cloudbuild.v1.CloudBuild"
OPERATIONS = "google.longrunning.Operations"
# The @types of a build operation's metadata and response (cloudbuild/v1/cloudbuild.proto: BuildOperationMetadata,
# Build).
METADATA_TYPE = "type.googleapis.com/google.devtools.cloudbuild.v1.BuildOperationMetadata"
BUILD_TYPE = "type.googleapis.com/google.devtools.cloudbuild.v1.Build"
FAILED = "Build failed; check build logs for details."  # the operation error of a failed build (module docstring)
DEFAULT_REGION = "global"  # builds.create without a location (cloudbuild_util.DEFAULT_REGION in gcloud)
_NAME = re.compile(r"^projects/([^/]+)/locations/([^/]+)/defaultServiceAccount\Z")
_BUILD = re.compile(r"^projects/([^/]+)/locations/([^/]+)/builds/([^/]+)\Z")
_OPERATION = re.compile(r"^projects/([^/]+)/locations/([^/]+)/operations/([^/]+)\Z")
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass
class BuildStore:
    """One project's builds, by id."""

    builds: dict[Any, Any] = field(default_factory=dict)


def get_default_service_account(call: Call, request: Doc) -> Doc:
    call.authenticate()
    name = text(request, "name")
    match = _NAME.match(name)
    if match is None:
        raise invalid_argument(f"Invalid name: {name!r}. Expected projects/P/locations/L/defaultServiceAccount.")
    project = call.world.project(match.group(1))
    if project is None:
        raise caller_denied()
    require_enabled(project, API)
    email = f"{project.number}-compute@developer.gserviceaccount.com"
    return {"name": name, "serviceAccountEmail": f"projects/{project.project_id}/serviceAccounts/{email}"}


# A build -----------------------------------------------------------------------------------------------------


@dataclass
class Plan:
    """What a build is asked to make: the image, how (buildpacks or docker) and the build's environment."""

    image: str
    kind: str
    env: dict[str, str]


def plan_of_build(build: Doc) -> Plan:
    """The plan of a Build message (builds.create): its first image; `pack build` steps' `--env K=V` arguments."""
    images = build.get("images") or []
    steps = build.get("steps") or []
    if not isinstance(images, list) or not images or not isinstance(images[0], str):
        raise invalid_argument("A build that makes an image lists it in images.")
    env: dict[str, str] = {}
    kind = "docker"
    for step in steps if isinstance(steps, list) else []:
        if not isinstance(step, dict):
            raise invalid_argument("Invalid value at 'build.steps': each step is an object.")
        args = [str(a) for a in step.get("args") or [] if isinstance(a, str | int)]
        if "pack" in text(step, "name") or (args[:1] == ["build"] and "--builder" in args):
            kind = "buildpacks"
        for flag, value in itertools.pairwise(args):
            if flag == "--env" and "=" in value:
                key, _, val = value.partition("=")
                env[key] = val.strip('"')
    return Plan(images[0], kind, env)


def _log(world: World, project: Project, build_id: str, lines: list[str]) -> None:
    at = world.clock.now()
    for index, line in enumerate(lines):
        world.append_log(
            {
                "logName": f"projects/{project.project_id}/logs/cloudbuild",
                "resource": {
                    "type": "build",
                    "labels": {"build_id": build_id, "build_trigger_id": "", "project_id": project.project_id},
                },
                "timestamp": rfc3339(at),
                "receiveTimestamp": rfc3339(at),
                "insertId": f"{build_id[:8]}-{index:04d}",
                "severity": "INFO",
                "textPayload": line,
            },
            at,
        )


def _entrypoint(env: dict[str, str], files: list[str], data: bytes) -> list[str]:
    """The image's default command as Google's buildpacks set it: GOOGLE_ENTRYPOINT, else the Procfile's web line."""
    if env.get("GOOGLE_ENTRYPOINT"):
        return shlex.split(env["GOOGLE_ENTRYPOINT"])
    if "Procfile" in files:
        procfile = (archive.read_member(data, "Procfile") or b"").decode("utf-8", errors="replace")
        for line in procfile.splitlines():
            kind, _, command = line.partition(":")
            if kind.strip() == "web" and command.strip():
                return shlex.split(command.strip())
    return []


def _check(world: World, plan: Plan, data: bytes | None, where: str) -> tuple[str, list[str], list[str]]:
    """Why the build fails ("" when it does not), its log lines, the image's default command."""
    lines = [f"Fetching storage object: {where}"]
    if data is None:
        return f"the build's source {where} does not exist", lines, []
    try:
        files = archive.unpack(data, None)
    except archive.ArchiveError as err:
        return str(err), [*lines, f"ERROR: {err}"], []
    lines.append(f"Unpacked {len(files)} file(s)")
    if plan.kind == "buildpacks":
        top = [f for f in files if "/" not in f]
        if not any(f.endswith(".py") for f in top) and not {"requirements.txt", "pyproject.toml"} & set(top):
            detail = "No buildpack groups passed detection."
            return detail, [*lines, f"ERROR: {detail}"], []
        if "requirements.txt" in top:
            wanted = (archive.read_member(data, "requirements.txt") or b"").decode("utf-8", errors="replace")
            lines.append("Installing requirements from requirements.txt")
            pip = functions.unsatisfied(wanted)
            if pip is not None:
                return pip, [*lines, *pip.splitlines()], []
        return "", lines, _entrypoint(plan.env, files, data)
    return "", lines, []


def build_json(project: Project, record: Doc) -> Doc:
    return {k: v for k, v in record.items() if not k.startswith("_")}


def start(call: Call, project: Project, region: str, plan: Plan, source: Doc, tags: list[str], extra: Doc) -> Doc:
    """A build of `source` (a StorageSource) making `plan.image`, run to its end (under world.lock); its operation."""
    require_enabled(project, API)
    world = call.world
    build_id = str(uuid.uuid4())
    stamp = rfc3339(world.clock.now())
    bucket, obj, generation = text(source, "bucket"), text(source, "object"), text(source, "generation")
    if not bucket or not obj:
        raise invalid_argument("The build's source is a Cloud Storage object: bucket and object are required.")
    where = f"gs://{bucket}/{obj}" + (f"#{generation}" if generation else "")
    data = storage.read_object(world, bucket, obj, generation)
    failure, lines, command = _check(world, plan, data, where)
    uri, _, _ = artifactregistry.bare(plan.image)
    place = artifactregistry.repository_of(uri)
    if not failure and place is not None and not artifactregistry.repository_exists(project, place[0], place[2]):
        failure = f'name unknown: Repository "{place[2]}" not found'
        lines.append(f"ERROR: {failure}")
    build: Doc = {
        "name": f"projects/{project.number}/locations/{region}/builds/{build_id}",
        "id": build_id,
        "projectId": project.project_id,
        "status": "FAILURE" if failure else "SUCCESS",
        "source": {"storageSource": dict(source)},
        "createTime": stamp,
        "startTime": stamp,
        "finishTime": stamp,
        "timeout": "600s",
        "images": [plan.image],
        "logsBucket": f"gs://{project.number}.cloudbuild-logs.googleusercontent.com",
        "logUrl": (
            f"https://console.cloud.google.com/cloud-build/builds;region={region}/{build_id}?project={project.number}"
        ),
        "options": {"logging": "LEGACY"},
        "tags": list(tags),
        "serviceAccount": f"projects/{project.project_id}/serviceAccounts/"
        f"{project.number}-compute@developer.gserviceaccount.com",
        **extra,
    }
    if failure:
        build["statusDetail"] = failure[:500]
        build["failureInfo"] = {"type": "USER_BUILD_STEP", "detail": failure[:500]}
    else:
        pushed = artifactregistry.push(project, plan.image, stamp, command=command, archive=data or b"", source="")
        build["results"] = {"images": [{"name": plan.image, "digest": pushed.digest}]}
        lines.append(f"latest: digest: {pushed.digest}")
    lines.append("DONE" if not failure else "ERROR: build step 0 failed")
    _log(world, project, build_id, lines)
    project.store(BuildStore).builds[build_id] = build
    operation = operation_json(project, region, build)
    audited(
        call,
        project,
        method=f"{PROTO}.CreateBuild",
        resource=f"projects/{project.project_id}/builds/{build_id}",
        permission="cloudbuild.builds.create",
        resource_type={
            "type": "build",
            "labels": {"build_id": build_id, "build_trigger_id": "", "project_id": project.project_id},
        },
    )
    return operation


def operation_json(project: Project, region: str, build: Doc) -> Doc:
    doc: Doc = {
        "name": f"projects/{project.project_id}/locations/{region}/operations/{build['id']}",
        "metadata": {"@type": METADATA_TYPE, "build": build_json(project, build)},
        "done": True,
    }
    if build["status"] == "SUCCESS":
        doc["response"] = {"@type": BUILD_TYPE, **build_json(project, build)}
    else:
        doc["error"] = {"code": code_pb2.UNKNOWN, "message": FAILED}
    return doc


# The API -----------------------------------------------------------------------------------------------------


def _admit(call: Call, ref: str, permission: str) -> Project:
    call.authenticate()
    project = call.world.project(ref)
    if project is None:
        raise caller_denied()
    require_enabled(project, API)
    if not allowed_on(call, project, permission):
        raise caller_denied()
    return project


def create_build(call: Call, request: Doc) -> Doc:
    parent = text(request, "parent")
    match = re.fullmatch(r"projects/([^/]+)/locations/([a-z0-9-]+)", parent)
    ref, region = (match.group(1), match.group(2)) if match else (text(request, "projectId"), DEFAULT_REGION)
    project = _admit(call, ref, "cloudbuild.builds.create")
    given = message(request, "build")
    storage_source = message(message(given, "source"), "storageSource")
    tags = [str(t) for t in given.get("tags") or [] if isinstance(t, str)]
    return start(call, project, region, plan_of_build(given), storage_source, tags, {"steps": given.get("steps")})


def get_build(call: Call, request: Doc) -> Doc:
    name = text(request, "name")
    match = _BUILD.match(name)
    ref, build_id = (match.group(1), match.group(3)) if match else (text(request, "projectId"), text(request, "id"))
    project = _admit(call, ref, "cloudbuild.builds.get")
    build = project.store(BuildStore).builds.get(build_id)
    if build is None:
        raise RpcError(code_pb2.NOT_FOUND, f'build "{build_id[:100]}" not found')
    return build_json(project, build)


def get_operation(call: Call, request: Doc) -> Doc:
    """operations.get on `/v1/projects/*/locations/*/operations/*`: Artifact Registry's operations and Cloud Build's
    share the path (one front end serves both), so an Artifact Registry operation is answered by its service."""
    name = text(request, "name")
    call.authenticate()
    registry = artifactregistry.operation(call, name)
    if registry is not None:
        return registry
    match = _OPERATION.match(name)
    if match is None:
        raise invalid_argument(f"Invalid operation name: {name[:200]!r}.")
    project = _admit(call, match.group(1), "cloudbuild.builds.get")
    build = project.store(BuildStore).builds.get(match.group(3))
    if build is None:
        raise RpcError(code_pb2.NOT_FOUND, "Requested entity was not found.")
    return operation_json(project, match.group(2), build)


_BUILD_FIELDS = {
    "name": None,
    "id": None,
    "projectId": None,
    "status": None,
    "source": None,
    "steps": None,
    "results": None,
    "timeout": None,
    "images": None,
    "queueTtl": None,
    "artifacts": None,
    "logsBucket": None,
    "options": None,
    "logUrl": None,
    "substitutions": None,
    "tags": None,
    "secrets": None,
    "serviceAccount": None,
    "availableSecrets": None,
    "sourceProvenance": None,
    "buildTriggerId": None,
}
METHODS: list[JsonMethod] = [
    json_method(PROTO, "GetDefaultServiceAccount", get_default_service_account, API, {"name": None}),
    json_method(PROTO, "CreateBuild", create_build, API, {"projectId": None, "parent": None, "build": _BUILD_FIELDS}),
    json_method(PROTO, "GetBuild", get_build, API, {"projectId": None, "id": None, "name": None}),
    json_method(OPERATIONS, "GetOperation", get_operation, API, {"name": None}),
]

RULES: list[HttpRule] = [
    HttpRule(
        "GET",
        "/v1/{name=projects/*/locations/*/defaultServiceAccount}",
        f"{PROTO}.GetDefaultServiceAccount",
    ),
    HttpRule("POST", "/v1/projects/{projectId}/builds", f"{PROTO}.CreateBuild", "build"),
    HttpRule("POST", "/v1/{parent=projects/*/locations/*}/builds", f"{PROTO}.CreateBuild", "build"),
    HttpRule("GET", "/v1/projects/{projectId}/builds/{id}", f"{PROTO}.GetBuild"),
    HttpRule("GET", "/v1/{name=projects/*/locations/*/builds/*}", f"{PROTO}.GetBuild"),
    HttpRule("GET", "/v1/{name=projects/*/locations/*/operations/*}", f"{OPERATIONS}.GetOperation"),
]


SERVICE = Service(
    apis=(Api(API, "Cloud Build API", gcloud="CLOUDBUILD"),),
    methods=(*METHODS,),
    rules=(*RULES,),
)
