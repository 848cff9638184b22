"""Artifact Registry v1 (artifactregistry.googleapis.com): the Docker repositories and images `gcloud run jobs deploy
--source` uses. gcloud 528 gets the repository `cloud-run-source-deploy` in the job's region
(googlecloudsdk/command_lib/run/artifact_registry.py: GetRepository; a 404 means "create it"), creates it when missing
(CreateRepository, format DOCKER, description "Cloud Run Source Deployments") and waits on the returned operation
(operations.get). Cloud Build then pushes the built image into it, and a Cloud Run job's image resolves here.

An image is kept by its URI `LOCATION-docker.pkg.dev/PROJECT/REPOSITORY/PACKAGE`, its digest and tags (a push moves
the tag `latest`, as `docker push` of an untagged image does). What stands behind an image in the emulator is not a
container: either the folder the admin route `POST /_emulator/run/images` named (an image built elsewhere and pushed),
or the source archive a build checked (services/cloudbuild.py); and its default command (a buildpack's entrypoint).

Assumption: a missing repository is 404 NOT_FOUND "Requested entity was not found." (Google's generic text; the
exact text Artifact Registry gives is not documented); a duplicate create 409 ALREADY_EXISTS "the repository already
exists"; a denial 403 "Permission 'artifactregistry.repositories.X' denied on resource 'NAME' (or it may not exist)."
with ErrorInfo IAM_PERMISSION_DENIED, the form Google's newer front ends use.
Assumption: operations end at once (done on the create's answer); an image pushed through the admin route creates its
repository when missing (it stands for a push from elsewhere into a repository made beforehand).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from google.rpc import code_pb2

from emulator.core.handlers import Api, Call, Doc, HttpRule, JsonMethod, Service, json_method
from emulator.core.status import RpcError, error_info, invalid_argument
from emulator.core.world import Project
from emulator.services.kit import (
    allowed_on,
    audited,
    listed,
    message,
    now,
    require_enabled,
    text,
)

API = "artifactregistry.googleapis.com"
PROTO = "google.devtools.artifactregistry.v1.ArtifactRegistry"
# The @type of a repository in an operation's response and of the operations' metadata (artifactregistry/v1
# repository.proto and service.proto: Repository, OperationMetadata).
REPOSITORY_TYPE = "type.googleapis.com/google.devtools.artifactregistry.v1.Repository"
METADATA_TYPE = "type.googleapis.com/google.devtools.artifactregistry.v1.OperationMetadata"
# Repository ids: lowercase letters, digits and hyphens, starting with a letter, at most 63 characters (the "Create
# standard repositories" page's naming rule).
_REPO_ID = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?\Z")
_REPO = re.compile(r"^projects/([^/]+)/locations/([a-z0-9-]+)/repositories/([^/]+)\Z")
_PARENT = re.compile(r"^projects/([^/]+)/locations/([a-z0-9-]+)\Z")
_OPERATION = re.compile(r"^projects/([^/]+)/locations/([a-z0-9-]+)/operations/([^/]+)\Z")
# A Docker image in Artifact Registry: LOCATION-docker.pkg.dev/PROJECT/REPOSITORY/IMAGE (the Docker repository page).
_AR_IMAGE = re.compile(r"^([a-z0-9-]+)-docker\.pkg\.dev/([^/]+)/([^/]+)/(.+)\Z")
FORMATS = ("DOCKER", "MAVEN", "NPM", "PYTHON", "APT", "YUM", "GO", "KFP", "GENERIC")  # Repository.Format


@dataclass
class Image:
    """What stands behind one image digest: a folder (pushed from elsewhere) or a checked source zip (built here)."""

    uri: str  # LOCATION-docker.pkg.dev/PROJECT/REPO/PACKAGE, or any registry's image without tag or digest
    digest: str  # sha256:HEX
    tags: list[str]
    uploaded: str
    command: list[str] = field(default_factory=list)
    source: str = ""  # an absolute folder on this machine
    archive: bytes = b""  # a source zip core/archive.py checked


@dataclass
class Repository:
    name: str
    format: str
    description: str
    labels: dict[str, str]
    created: str
    updated: str


@dataclass
class RegistryStore:
    """One project's repositories (by name) and images (by URI, then digest)."""

    repositories: dict[Any, Any] = field(default_factory=dict)
    images: dict[Any, Any] = field(default_factory=dict)
    operations: dict[Any, Any] = field(default_factory=dict)


def denied(permission: str, resource: str) -> RpcError:
    return RpcError(
        code_pb2.PERMISSION_DENIED,
        f"Permission '{permission}' denied on resource '{resource}' (or it may not exist).",
        [error_info("IAM_PERMISSION_DENIED", "iam.googleapis.com", {"permission": permission, "resource": resource})],
    )


def _project(call: Call, ref: str, permission: str, resource: str) -> Project:
    call.authenticate()
    project = call.world.project(ref)
    if project is None:
        raise denied(permission, resource)
    require_enabled(project, API)
    if not allowed_on(call, project, permission):
        raise denied(permission, resource)
    return project


def repository_json(repository: Repository) -> Doc:
    return {
        "name": repository.name,
        "format": repository.format,
        "description": repository.description,
        "labels": dict(repository.labels),
        "createTime": repository.created,
        "updateTime": repository.updated,
        "mode": "STANDARD_REPOSITORY",
    }


def get_repository(call: Call, request: Doc) -> Doc:
    name = text(request, "name")
    match = _REPO.match(name)
    if match is None:
        raise invalid_argument(f"Invalid repository name: {name[:200]!r}.")
    project = _project(call, match.group(1), "artifactregistry.repositories.get", name)
    repository = project.store(RegistryStore).repositories.get(_canonical(project, name))
    if repository is None:
        raise RpcError(code_pb2.NOT_FOUND, "Requested entity was not found.")
    return repository_json(repository)


def _canonical(project: Project, name: str) -> str:
    """A repository name with the project's id (callers may give its number)."""
    match = _REPO.match(name)
    assert match is not None
    return f"projects/{project.project_id}/locations/{match.group(2)}/repositories/{match.group(3)}"


def create_repository(call: Call, request: Doc) -> Doc:
    parent = text(request, "parent")
    match = _PARENT.match(parent)
    if match is None:
        raise invalid_argument(f"Invalid parent: {parent[:200]!r}; expected projects/P/locations/L.")
    project = _project(call, match.group(1), "artifactregistry.repositories.create", parent)
    repository_id = text(request, "repositoryId")
    if not _REPO_ID.match(repository_id):
        raise invalid_argument(
            f"Invalid repository id {repository_id[:100]!r}: use 1-63 lowercase letters, digits and hyphens, "
            "starting with a letter and not ending with a hyphen."
        )
    given = message(request, "repository")
    kind = text(given, "format") or "DOCKER"
    if kind not in FORMATS:
        raise invalid_argument(f"Invalid value at 'repository.format': {kind[:50]!r}.")
    store = project.store(RegistryStore)
    name = f"projects/{project.project_id}/locations/{match.group(2)}/repositories/{repository_id}"
    if name in store.repositories:
        raise RpcError(code_pb2.ALREADY_EXISTS, "the repository already exists")
    labels = given.get("labels") or {}
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise invalid_argument("Invalid value at 'repository.labels': a map of strings.")
    stamp = now(call)
    repository = Repository(name, kind, text(given, "description")[:2048], dict(labels), stamp, stamp)
    store.repositories[name] = repository
    operation_name = f"projects/{project.project_id}/locations/{match.group(2)}/operations/{uuid.uuid4()}"
    doc = repository_json(repository)
    operation = {
        "name": operation_name,
        "metadata": {"@type": METADATA_TYPE},
        "done": True,
        "response": {"@type": REPOSITORY_TYPE, **doc},
    }
    store.operations[operation_name] = operation
    audited(
        call,
        project,
        resource=name,
        permission="artifactregistry.repositories.create",
        request={
            "@type": "type.googleapis.com/google.devtools.artifactregistry.v1.CreateRepositoryRequest",
            "parent": parent,
            "repositoryId": repository_id,
            "repository": given,
        },
        operation=operation_name,
    )
    return operation


def operation(call: Call, name: str) -> Doc | None:
    """operations.get of one of this API's operations (None when `name` is not one): `/v1/projects/*/locations/*/
    operations/*` is Cloud Build's path too, so services/cloudbuild.py serves the path and asks here first."""
    match = _OPERATION.match(name)
    project = call.world.project(match.group(1)) if match else None
    found = project.store(RegistryStore).operations.get(name) if project is not None else None
    if project is None or found is None:
        return None
    require_enabled(project, API)
    return dict(found)


def list_docker_images(call: Call, request: Doc) -> Doc:
    parent = text(request, "parent")
    match = _REPO.match(parent)
    if match is None:
        raise invalid_argument(f"Invalid parent: {parent[:200]!r}.")
    project = _project(call, match.group(1), "artifactregistry.dockerimages.list", parent)
    location, repository_id = match.group(2), match.group(3)
    if _canonical(project, parent) not in project.store(RegistryStore).repositories:
        raise RpcError(code_pb2.NOT_FOUND, "Requested entity was not found.")
    prefix = f"{location}-docker.pkg.dev/{project.project_id}/{repository_id}/"
    images = [
        image
        for uri, versions in sorted(project.store(RegistryStore).images.items())
        if uri.startswith(prefix)
        for image in versions.values()
    ]
    docs = [
        {
            "name": f"{parent}/dockerImages/{image.uri.removeprefix(prefix).replace('/', '%2F')}@{image.digest}",
            "uri": f"{image.uri}@{image.digest}",
            "tags": list(image.tags),
            "uploadTime": image.uploaded,
            "updateTime": image.uploaded,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        }
        for image in images
    ]
    return listed("dockerImages", docs, request, 100, 1000)


# What other services do with images ---------------------------------------------------------------------------


def bare(image: str) -> tuple[str, str, str]:
    """An image reference split into its URI (no tag or digest), its tag ("" when none) and digest ("" when none)."""
    reference, _, digest = image.partition("@")
    head, _, last = reference.rpartition("/")
    package, _, tag = last.partition(":")
    return (f"{head}/{package}" if head else package), tag, digest


def repository_of(uri: str) -> tuple[str, str, str] | None:
    """(location, project, repository) of an Artifact Registry Docker image URI; None for another registry's."""
    match = _AR_IMAGE.match(uri)
    return (match.group(1), match.group(2), match.group(3)) if match else None


def push(project: Project, image: str, at: str, *, command: list[str], source: str = "", archive: bytes = b"") -> Image:
    """An image pushed into `project`'s registry (under world.lock): a new digest, tagged (`latest` when the
    reference has no tag), the tag moved off the image that had it."""
    uri, tag, _ = bare(image)
    tag = tag or "latest"
    store = project.store(RegistryStore)
    place = repository_of(uri)
    if place is not None:
        location, _, repository_id = place
        name = f"projects/{project.project_id}/locations/{location}/repositories/{repository_id}"
        store.repositories.setdefault(name, Repository(name, "DOCKER", "", {}, at, at))
    seed = hashlib.sha256(archive or source.encode())
    seed.update(" ".join(command).encode())
    seed.update(uri.encode())
    digest = f"sha256:{seed.hexdigest()}"
    versions = store.images.setdefault(uri, {})
    for other in versions.values():
        if tag in other.tags:
            other.tags.remove(tag)
    pushed = versions.get(digest) or Image(uri, digest, [], at, list(command), source, archive)
    pushed.tags.append(tag)
    pushed.uploaded = at
    versions[digest] = pushed
    return pushed


def repository_exists(project: Project, location: str, repository_id: str) -> bool:
    name = f"projects/{project.project_id}/locations/{location}/repositories/{repository_id}"
    return name in project.store(RegistryStore).repositories


def resolve(project: Project, image: str) -> Image | None:
    """The image a reference names in `project`'s registry: by digest when it has one, else by tag (`latest`)."""
    uri, tag, digest = bare(image)
    versions = project.store(RegistryStore).images.get(uri) or {}
    if digest:
        found: Image | None = versions.get(digest)
        return found
    wanted = tag or "latest"
    return next((v for v in versions.values() if wanted in v.tags), None)


_REPO_PATH = "projects/*/locations/*/repositories/*"
METHODS: list[JsonMethod] = [
    json_method(PROTO, "GetRepository", get_repository, API, {"name": None}),
    json_method(
        PROTO,
        "CreateRepository",
        create_repository,
        API,
        {
            "parent": None,
            "repositoryId": None,
            "repository": {
                "name": None,
                "format": None,
                "description": None,
                "labels": None,
                "kmsKeyName": None,
                "mode": None,
                "dockerConfig": None,
                "cleanupPolicies": None,
                "cleanupPolicyDryRun": None,
            },
        },
    ),
    json_method(
        PROTO,
        "ListDockerImages",
        list_docker_images,
        API,
        {"parent": None, "pageSize": None, "pageToken": None, "orderBy": None},
    ),
]

RULES: list[HttpRule] = [
    HttpRule("GET", f"/v1/{{name={_REPO_PATH}}}", f"{PROTO}.GetRepository"),
    HttpRule("POST", "/v1/{parent=projects/*/locations/*}/repositories", f"{PROTO}.CreateRepository", "repository"),
    HttpRule("GET", f"/v1/{{parent={_REPO_PATH}}}/dockerImages", f"{PROTO}.ListDockerImages"),
]


SERVICE = Service(
    apis=(Api(API, "Artifact Registry API", gcloud="ARTIFACTREGISTRY"),),
    methods=(*METHODS,),
    rules=(*RULES,),
)
