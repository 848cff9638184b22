"""Cloud Storage JSON API v1 (storage.googleapis.com): what `gcloud run jobs deploy --source` calls to stage the
source (googlecloudsdk/command_lib/run/sourcedeploys/sources.py, api_lib/storage/storage_api.py): buckets.get of the
staging bucket `run-sources-PROJECT-REGION`, buckets.insert when it is missing (a 404), buckets.list with the
project and the name as prefix when it exists (gcloud's check that the bucket is the project's own, against name
squatting), then objects.insert of the zip at `jobs/JOB/STAMP-UUID.zip` as a media upload on the `/upload/` path.
Cloud Build reads the object back (services/cloudbuild.py, `read_object`).

Buckets and objects are kept in memory; bucket names are global, as Google's are (a name taken in one project is
taken for every project). The upload path is plain HTTP beside the API rules (`receive_upload`, like Cloud Functions'
signed URL): it authenticates the bearer token and checks `storage.objects.create` itself.

Assumption: the Cloud Storage JSON API counts as enabled in every project (Google enables it by default and the
emulator's scenarios do not list it); its error bodies are google.rpc.Status JSON (Google's carry the older `errors`
list beside code and message, which gcloud does not read).
Assumption: a denial reads "EMAIL does not have PERMISSION access to the Google Cloud Storage bucket. Permission
'PERMISSION' denied on resource (or it may not exist).", the text users report from Cloud Storage; a missing bucket
"The specified bucket does not exist."; a taken name on insert 409 "The requested bucket name is not available. The
bucket namespace is shared by all users of the system. Please select a different name and try again." (or "Your
previous request to create the named bucket succeeded and you already own it." in the owner's project).
Assumption: uploads are single requests (uploadType=media or multipart, at most the HTTP port's body limit);
resumable uploads are refused with 400 naming what is served.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import zlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from google.rpc import code_pb2

from emulator.core import iam
from emulator.core.clock import rfc3339
from emulator.core.handlers import Api, Call, Doc, HttpRule, JsonMethod, Service, json_method
from emulator.core.http import Request, Response
from emulator.core.status import RpcError, invalid_argument
from emulator.core.world import Project, World
from emulator.services.kit import audited, message, now, text

API = "storage.googleapis.com"
PROTO = "google.storage.v1.Storage"  # the JSON API's methods as the audit log names them (storage.buckets.create …)
# Bucket names: 3-63 characters of lowercase letters, digits, hyphens, underscores and dots, starting and ending
# with a letter or digit (cloud.google.com/storage/docs/buckets#naming); "google" may not appear in them.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]\Z")
MAX_OBJECT_NAME = 1024  # bytes of UTF-8 (cloud.google.com/storage/docs/objects#naming)
_UPLOAD = re.compile(r"^(?:/storage/v1)?/upload/storage/v1/b/([^/]+)/o\Z|^/upload/storage/v1/b/([^/]+)/o\Z")


@dataclass
class StoredObject:
    name: str
    data: bytes
    content_type: str
    generation: str
    created: str


@dataclass
class Bucket:
    name: str
    location: str
    created: str
    storage_class: str = "STANDARD"
    uniform_access: bool = False
    cors: list[Any] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    objects: dict[str, StoredObject] = field(default_factory=dict)
    policy: iam.Policy = field(default_factory=iam.Policy)


@dataclass
class StorageStore:
    """One project's buckets, by name."""

    buckets: dict[Any, Any] = field(default_factory=dict)


# Errors and lookups ------------------------------------------------------------------------------------------


def denied(email: str, permission: str, what: str = "bucket") -> RpcError:
    return RpcError(
        code_pb2.PERMISSION_DENIED,
        f"{email} does not have {permission} access to the Google Cloud Storage {what}. Permission '{permission}' "
        "denied on resource (or it may not exist).",
    )


def no_bucket() -> RpcError:
    return RpcError(code_pb2.NOT_FOUND, "The specified bucket does not exist.")


def find_bucket(world: World, name: str) -> tuple[Project, Bucket] | None:
    for project in world.projects.values():
        bucket = project.store(StorageStore).buckets.get(name)
        if bucket is not None:
            return project, bucket
    return None


def _allowed(world: World, email: str, project: Project, permission: str, bucket: Bucket | None = None) -> bool:
    policies = [bucket.policy] if bucket is not None else []
    return world.allows(project, iam.member_of(email), permission, *policies)


def _project(call: Call, request: Doc, permission: str) -> Project:
    """The request's `project` parameter (bucket insert and list), with the caller's `permission` on it."""
    email = call.authenticate()
    project = call.world.project(text(request, "project"))
    if project is None:
        raise RpcError(code_pb2.INVALID_ARGUMENT, f"Unknown project id: {text(request, 'project')[:100]}")
    if not _allowed(call.world, email, project, permission):
        raise denied(email, permission, "project")
    return project


def bucket_json(project: Project, bucket: Bucket) -> Doc:
    return {
        "kind": "storage#bucket",
        "selfLink": f"https://www.googleapis.com/storage/v1/b/{bucket.name}",
        "id": bucket.name,
        "name": bucket.name,
        "projectNumber": project.number,
        "metageneration": "1",
        "location": bucket.location,
        "storageClass": bucket.storage_class,
        "etag": "CAE=",
        "timeCreated": bucket.created,
        "updated": bucket.created,
        "locationType": "region" if "-" in bucket.location else "multi-region",
        "iamConfiguration": {
            "uniformBucketLevelAccess": {"enabled": bucket.uniform_access},
            "publicAccessPrevention": "inherited",
        },
        **({"cors": bucket.cors} if bucket.cors else {}),
        **({"labels": bucket.labels} if bucket.labels else {}),
    }


def object_json(bucket: Bucket, stored: StoredObject) -> Doc:
    crc = zlib.crc32(stored.data).to_bytes(4, "big")  # Cloud Storage reports CRC32C; the emulator's is CRC32
    return {
        "kind": "storage#object",
        "id": f"{bucket.name}/{stored.name}/{stored.generation}",
        "selfLink": f"https://www.googleapis.com/storage/v1/b/{bucket.name}/o/{stored.name}",
        "name": stored.name,
        "bucket": bucket.name,
        "generation": stored.generation,
        "metageneration": "1",
        "contentType": stored.content_type,
        "storageClass": bucket.storage_class,
        "size": str(len(stored.data)),
        "md5Hash": base64.b64encode(hashlib.md5(stored.data, usedforsecurity=False).digest()).decode(),
        "crc32c": base64.b64encode(crc).decode(),
        "etag": base64.b64encode(stored.generation.encode()).decode(),
        "timeCreated": stored.created,
        "updated": stored.created,
    }


def read_object(world: World, bucket_name: str, name: str, generation: str = "") -> bytes | None:
    """An object's bytes for Google's own side (Cloud Build reading a staged source), None when it is not there."""
    found = find_bucket(world, bucket_name)
    stored = found[1].objects.get(name) if found is not None else None
    if stored is None or (generation and stored.generation != generation):
        return None
    return stored.data


# The API ---------------------------------------------------------------------------------------------------


def get_bucket(call: Call, request: Doc) -> Doc:
    email = call.authenticate()
    name = text(request, "bucket")
    found = find_bucket(call.world, name)
    if found is None:
        # Cloud Storage answers 404 for a name nobody holds, whoever asks
        raise no_bucket()
    project, bucket = found
    if not _allowed(call.world, email, project, "storage.buckets.get", bucket):
        raise denied(email, "storage.buckets.get")
    return bucket_json(project, bucket)


def insert_bucket(call: Call, request: Doc) -> Doc:
    project = _project(call, request, "storage.buckets.create")
    given = message(request, "bucket")
    name = text(given, "name")
    if not _BUCKET.match(name) or "google" in name or ".." in name:
        raise invalid_argument(f"Invalid bucket name: '{name[:100]}'")
    taken = find_bucket(call.world, name)
    if taken is not None:
        owner = taken[0] is project
        raise RpcError(
            code_pb2.ALREADY_EXISTS,
            "Your previous request to create the named bucket succeeded and you already own it."
            if owner
            else "The requested bucket name is not available. The bucket namespace is shared by all users of the "
            "system. Please select a different name and try again.",
        )
    iam_configuration = message(given, "iamConfiguration")
    uniform = message(iam_configuration, "uniformBucketLevelAccess").get("enabled") is True
    cors = given.get("cors") or []
    labels = given.get("labels") or {}
    if not isinstance(cors, list) or not isinstance(labels, dict):
        raise invalid_argument("Invalid bucket: cors is a list and labels a map.")
    location = (text(given, "location") or "US").upper()
    if not re.fullmatch(r"[A-Z0-9-]{2,40}", location):
        raise invalid_argument(f"Invalid location: '{location[:50]}'")
    bucket = Bucket(name, location, now(call), text(given, "storageClass") or "STANDARD", uniform, cors, labels)
    project.store(StorageStore).buckets[name] = bucket
    doc = bucket_json(project, bucket)
    audited(
        call,
        project,
        method="storage.buckets.create",
        resource=f"projects/_/buckets/{name}",
        permission="storage.buckets.create",
        resource_type={
            "type": "gcs_bucket",
            "labels": {"bucket_name": name, "location": location.lower(), "project_id": project.project_id},
        },
    )
    return doc


def list_buckets(call: Call, request: Doc) -> Doc:
    project = _project(call, request, "storage.buckets.list")
    prefix = text(request, "prefix")
    items = [
        bucket_json(project, b)
        for name, b in sorted(project.store(StorageStore).buckets.items())
        if name.startswith(prefix)
    ]
    return {"kind": "storage#buckets", **({"items": items} if items else {})}


# The upload path ---------------------------------------------------------------------------------------------


def _error(err: RpcError) -> Response:
    return Response.json(err.to_json(), err.http_status)


def _media(request: Request) -> tuple[Doc, bytes, str]:
    """The object's metadata, bytes and content type of a media or multipart upload."""
    kind = request.param("uploadType") or "media"
    content_type = request.headers.get("content-type", "application/octet-stream")
    if kind == "media":
        return {"name": request.param("name") or ""}, request.body, content_type
    if kind != "multipart":
        raise invalid_argument(f"Unsupported uploadType {kind[:40]!r}: this emulator serves media and multipart.")
    parts = _multipart(content_type, request.body)
    if len(parts) != 2:
        raise invalid_argument("A multipart upload has two parts: the object's metadata (JSON) and its data.")
    try:
        metadata = json.loads(parts[0][1] or b"{}")
    except ValueError:
        raise invalid_argument("The first part of a multipart upload is the object's metadata as JSON.") from None
    if not isinstance(metadata, dict):
        raise invalid_argument("The first part of a multipart upload is the object's metadata as JSON.")
    return metadata, parts[1][1], parts[1][0].get("content-type", "application/octet-stream")


def _multipart(content_type: str, body: bytes) -> list[tuple[dict[str, str], bytes]]:
    """The parts of a multipart/related body: each part's headers (lower-case names) and bytes. The boundary may be
    quoted with single quotes, as apitools (gcloud) writes it."""
    found = re.search(r"boundary=(\"[^\"]+\"|'[^']+'|[^;\s]+)", content_type)
    if not content_type.startswith("multipart/") or found is None:
        return []
    boundary = b"--" + found.group(1).strip("\"'").encode("latin-1", errors="replace")
    chunks = body.split(boundary)
    parts: list[tuple[dict[str, str], bytes]] = []
    for raw in chunks[1:]:
        if raw.startswith(b"--"):
            break  # the closing delimiter
        chunk = raw.removeprefix(b"\r\n").removeprefix(b"\n")
        head, sep, payload = chunk.partition(b"\r\n\r\n") if b"\r\n\r\n" in chunk else chunk.partition(b"\n\n")
        if not sep:
            return []
        headers = {}
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        payload = payload[:-2] if payload.endswith(b"\r\n") else payload.removesuffix(b"\n")
        parts.append((headers, payload))
    return parts


def receive_upload(world: World, request: Request) -> Response | None:
    """POST /upload/storage/v1/b/BUCKET/o: objects.insert with the data (None for any other request)."""
    match = _UPLOAD.match(request.path) if request.method == "POST" else None
    if match is None:
        return None
    bucket_name = unquote(match.group(1) or match.group(2))
    auth = request.headers.get("authorization", "")
    token = auth[len("Bearer ") :].strip() if auth.startswith("Bearer ") else ""
    try:
        metadata, data, content_type = _media(request)
        name = request.param("name") or str(metadata.get("name") or "")
        if not name or len(name.encode()) > MAX_OBJECT_NAME or "\n" in name or "\r" in name:
            raise invalid_argument("Invalid object name: 1-1024 bytes of UTF-8, no carriage return or line feed.")
        with world.lock:
            state, email = world.token_state(token)
            if state != "ok":
                raise RpcError(code_pb2.UNAUTHENTICATED, "Invalid Credentials")
            found = find_bucket(world, bucket_name)
            if found is None:
                raise no_bucket()
            project, bucket = found
            if not _allowed(world, email, project, "storage.objects.create", bucket):
                raise denied(email, "storage.objects.create")
            stamp = rfc3339(world.clock.now())
            generation = str(int(world.clock.now().timestamp() * 1_000_000) + secrets.randbelow(1000))
            stored = StoredObject(name, data, content_type, generation, stamp)
            bucket.objects[name] = stored
            return Response.json(object_json(bucket, stored))
    except RpcError as err:
        return _error(err)


METHODS: list[JsonMethod] = [
    json_method(
        PROTO,
        "GetBucket",
        get_bucket,
        API,
        {
            "bucket": None,
            "ifMetagenerationMatch": None,
            "ifMetagenerationNotMatch": None,
            "projection": None,
            "userProject": None,
            "alt": None,
        },
    ),
    json_method(
        PROTO,
        "InsertBucket",
        insert_bucket,
        API,
        {
            "project": None,
            "bucket": None,
            "predefinedAcl": None,
            "predefinedDefaultObjectAcl": None,
            "projection": None,
            "userProject": None,
            "enableObjectRetention": None,
            "alt": None,
        },
    ),
    json_method(
        PROTO,
        "ListBuckets",
        list_buckets,
        API,
        {
            "project": None,
            "prefix": None,
            "maxResults": None,
            "pageToken": None,
            "projection": None,
            "userProject": None,
            "softDeleted": None,
            "alt": None,
        },
    ),
]

RULES: list[HttpRule] = [
    HttpRule("GET", "/storage/v1/b/{bucket}", f"{PROTO}.GetBucket"),
    HttpRule("POST", "/storage/v1/b", f"{PROTO}.InsertBucket", "bucket"),
    HttpRule("GET", "/storage/v1/b", f"{PROTO}.ListBuckets"),
]


SERVICE = Service(
    apis=(Api(API, "Cloud Storage API", gcloud="STORAGE"),),
    methods=(*METHODS,),
    rules=(*RULES,),
    http=receive_upload,
)
