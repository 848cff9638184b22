"""The tool's reads made in-process: the REST call a `gcloud … describe / list / get-iam-policy` makes, without a
gcloud process (each one is a fresh Python of ~0.7 s CPU before it sends anything).

A read is still written as its gcloud command (`Gcloud.read("scheduler", "jobs", "describe", …)`): that is how the
plan, the errors and the tests name it. `request_for` turns the commands listed in READS into the request gcloud 528
sends for them (the method, URL and body were taken from `gcloud --log-http`; the API references are cited on each),
and the answer is what gcloud prints with `--format=json`: the resource, or for a list every item of every page. A
command not listed (e.g. `projects list`, only read when a project is refused) still runs gcloud.

Credentials: an access token in the file named by CLOUDSDK_AUTH_ACCESS_TOKEN_FILE when that is set (gcloud's own
property, which gcloud then uses as well), otherwise Application Default Credentials — the identity the tool's
Cloud Monitoring clients (deploy/alerting.py) already call as. On Cloud Build both are the build's service account;
on a workstation, `gcloud auth application-default login` as the account gcloud is logged in as.

Endpoints: gcloud's CLOUDSDK_API_ENDPOINT_OVERRIDES_<API> variables are honoured (that is how the emulator is
reached); without one, the API's public host. Cloud Run jobs (v1) are regional: REGION-run.googleapis.com, or the
override as given.

DEPLOY_READS=gcloud sends every read through gcloud again (the reference path the fleet benchmark measures against).
DEPLOY_TRACE=FILE appends one JSON line per gcloud process and per in-process call (what, wall and CPU seconds).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import google.auth
import google.auth.exceptions
from google.auth.transport.requests import AuthorizedSession
from google.oauth2.credentials import Credentials
from requests.adapters import HTTPAdapter

from .gcloud import GcloudError, trace

SCOPE = "https://www.googleapis.com/auth/cloud-platform"  # the OAuth scope Google APIs accept (as gcloud asks)
TIMEOUT_S = 60
POOL = 64  # connections kept per host: at least --parallel's bound
# The public host of each API gcloud names by its override suffix (CLOUDSDK_API_ENDPOINT_OVERRIDES_<NAME>).
HOSTS = {
    "CLOUDRESOURCEMANAGER": "https://cloudresourcemanager.googleapis.com/",
    "IAM": "https://iam.googleapis.com/",
    "SERVICEUSAGE": "https://serviceusage.googleapis.com/",
    "CLOUDSCHEDULER": "https://cloudscheduler.googleapis.com/",
    "CLOUDFUNCTIONS": "https://cloudfunctions.googleapis.com/",
    "RUN": "https://run.googleapis.com/",
    "MONITORING": "https://monitoring.googleapis.com/",
    "PUBSUB": "https://pubsub.googleapis.com/",
}


@dataclass(frozen=True)
class Request:
    api: str  # the override suffix: RUN, IAM, …
    command: str  # gcloud's name for it, as its errors say: projects.describe
    method: str
    path: str  # under the API's root, no leading slash
    body: dict[str, Any] | None = None
    items: str | None = None  # a list: the response field holding the items; pages followed
    regional: str | None = None  # Cloud Run v1 namespaces: REGION-run.googleapis.com


def _seg(value: str) -> str:
    """One path segment: everything but the characters an e-mail or an id keeps is escaped, so nothing read from
    the command line changes the path's shape (nor does a `.` or `..`, which an HTTP client would resolve)."""
    segment = quote(value, safe="@-_.")
    return segment.replace(".", "%2E") if segment.strip(".") == "" else segment


def _flag(argv: Sequence[str], name: str) -> str | None:
    prefix = f"--{name}="
    return next((a[len(prefix) :] for a in argv if a.startswith(prefix)), None)


def request_for(project: str, argv: Sequence[str]) -> Request | None:
    """The request gcloud sends for one of the reads this module knows; None for any other command."""
    words = tuple(a for a in argv if not a.startswith("--"))
    flags = {a for a in argv if a.startswith("--")}
    p = _seg(project)
    region = _flag(argv, "region")
    location = _flag(argv, "location")
    # Resource Manager v1 projects.get and projects.getIamPolicy (policy version 3, as gcloud asks for it).
    if words == ("projects", "describe", project) and not flags:
        return Request("CLOUDRESOURCEMANAGER", "projects.describe", "GET", f"v1/projects/{p}")
    if words == ("projects", "get-iam-policy", project) and not flags:
        body = {"options": {"requestedPolicyVersion": 3}}
        return Request("CLOUDRESOURCEMANAGER", "projects.get-iam-policy", "POST", f"v1/projects/{p}:getIamPolicy", body)
    # IAM v1 projects.serviceAccounts.get, by e-mail under the `-` project wildcard.
    if len(words) == 4 and words[:3] == ("iam", "service-accounts", "describe") and not flags:
        return Request("IAM", "iam.service-accounts.describe", "GET", f"v1/projects/-/serviceAccounts/{_seg(words[3])}")
    # Service Usage v1 services.list, filter state:ENABLED, pages of 200.
    if words == ("services", "list") and flags == {"--enabled"}:
        return Request(
            "SERVICEUSAGE",
            "services.list",
            "GET",
            f"v1/projects/{p}/services?filter=state%3AENABLED&pageSize=200",
            items="services",
        )
    # Cloud Scheduler v1 projects.locations.jobs.get.
    if (
        len(words) == 4
        and words[:3] == ("scheduler", "jobs", "describe")
        and location
        and flags == {f"--location={location}"}
    ):
        return Request(
            "CLOUDSCHEDULER",
            "scheduler.jobs.describe",
            "GET",
            f"v1/projects/{p}/locations/{_seg(location)}/jobs/{_seg(words[3])}",
        )
    # Cloud Functions v2 projects.locations.functions.get.
    if (
        len(words) == 3
        and words[:2] == ("functions", "describe")
        and region
        and flags == {f"--region={region}", "--gen2"}
    ):
        name = f"v2/projects/{p}/locations/{_seg(region)}/functions/{_seg(words[2])}"
        return Request("CLOUDFUNCTIONS", "functions.describe", "GET", name)
    if len(words) == 4 and words[:2] == ("run", "jobs") and region and flags == {f"--region={region}"}:
        job = _seg(words[3])
        # Cloud Run Admin API v1 namespaces.jobs.get, on the regional endpoint.
        if words[2] == "describe":
            path = f"apis/run.googleapis.com/v1/namespaces/{p}/jobs/{job}"
            return Request("RUN", "run.jobs.describe", "GET", path, regional=region)
        # Cloud Run Admin API v1 projects.locations.jobs.getIamPolicy.
        if words[2] == "get-iam-policy":
            return Request(
                "RUN",
                "run.jobs.get-iam-policy",
                "GET",
                f"v1/projects/{p}/locations/{_seg(region)}/jobs/{job}:getIamPolicy",
            )
    # Cloud Run Admin API v1 projects.locations.services.getIamPolicy (policy version 3).
    if (
        words[:3] == ("run", "services", "get-iam-policy")
        and len(words) == 4
        and region
        and flags == {f"--region={region}"}
    ):
        path = f"v1/projects/{p}/locations/{_seg(region)}/services/{_seg(words[3])}:getIamPolicy"
        return Request("RUN", "run.services.get-iam-policy", "GET", f"{path}?options.requestedPolicyVersion=3")
    # Cloud Monitoring v1 projects.dashboards.list, every page.
    if words == ("monitoring", "dashboards", "list") and not flags:
        return Request(
            "MONITORING", "monitoring.dashboards.list", "GET", f"v1/projects/{p}/dashboards", items="dashboards"
        )
    # Pub/Sub v1 projects.topics.get.
    if len(words) == 4 and words[:3] == ("pubsub", "topics", "describe") and not flags:
        return Request("PUBSUB", "pubsub.topics.describe", "GET", f"v1/projects/{p}/topics/{_seg(words[3])}")
    return None


def enabled(env: Mapping[str, str]) -> bool:
    return env.get("DEPLOY_READS", "") != "gcloud"


def url_of(request: Request, env: Mapping[str, str]) -> str:
    override = env.get(f"CLOUDSDK_API_ENDPOINT_OVERRIDES_{request.api}")
    if override:
        root = override if override.endswith("/") else override + "/"
    elif request.regional is not None:
        root = f"https://{_seg(request.regional)}-run.googleapis.com/"
    else:
        root = HOSTS[request.api]
    return root + request.path


_sessions: dict[str, AuthorizedSession] = {}
_sessions_lock = threading.Lock()


def session(env: Mapping[str, str]) -> AuthorizedSession:
    """One authorized session per credential for the whole run (its connections are reused); a token file is read
    at each call, so a token written anew there is used from then on."""
    token_file = env.get("CLOUDSDK_AUTH_ACCESS_TOKEN_FILE", "")
    token = Path(token_file).read_text().strip() if token_file else ""
    with _sessions_lock:
        found = _sessions.get(token)
        if found is None:
            credentials: Any = Credentials(token=token) if token else _default_credentials()
            found = AuthorizedSession(credentials)
            adapter = HTTPAdapter(pool_connections=16, pool_maxsize=POOL)
            found.mount("https://", adapter)
            found.mount("http://", adapter)
            _sessions[token] = found
        return found


class NoCredentials(RuntimeError):
    """No Application Default Credentials on this machine: one line with the command that sets them."""


def _default_credentials() -> Any:
    try:
        return google.auth.default(scopes=[SCOPE])[0]
    except google.auth.exceptions.DefaultCredentialsError:
        raise NoCredentials(
            "no Application Default Credentials: run `gcloud auth application-default login` as the account gcloud "
            "is logged in as (the tool's reads and Monitoring calls use them), or set GOOGLE_APPLICATION_CREDENTIALS"
        ) from None


def _error(argv: Sequence[str], command: str, status: int, text: str) -> GcloudError:
    """The failure as gcloud words an API error: `ERROR: (gcloud.GROUP.COMMAND) STATUS: message`, with each
    ErrorInfo reason on a line of its own (what the tool's not-found, denied and API-off checks look for)."""
    try:
        error = json.loads(text).get("error", {})
    except ValueError:
        error = {}
    if not isinstance(error, dict):
        error = {}
    name = str(error.get("status") or status)
    message = str(error.get("message") or text.strip()[:300] or f"HTTP {status}")
    reasons = [str(d["reason"]) for d in error.get("details", []) if isinstance(d, dict) and d.get("reason")]
    lines = [f"ERROR: (gcloud.{command}) {name}: {message}", *(f"- '@type': ErrorInfo\n  reason: {r}" for r in reasons)]
    return GcloudError(list(argv), 1, "\n".join(lines) + f"\n(HTTP {status})")


def call(argv: Sequence[str], request: Request, env: Mapping[str, str]) -> Any:
    """Send the read; the resource (or every item of a list) as gcloud prints it; GcloudError as gcloud fails."""
    started, cpu = time.perf_counter(), time.thread_time()
    url = url_of(request, env)
    items: list[Any] = []
    pages = 0
    try:
        while True:
            reply = session(env).request(request.method, url, json=request.body, timeout=TIMEOUT_S)
            pages += 1
            if reply.status_code >= 300:
                raise _error(argv, request.command, reply.status_code, reply.text)
            doc = reply.json() if reply.content else {}
            if request.items is None:
                return doc
            items.extend(doc.get(request.items, []))
            token = doc.get("nextPageToken")
            if not token:
                return items
            base = url_of(request, env)
            url = f"{base}{'&' if '?' in base else '?'}pageToken={quote(str(token), safe='')}"
    finally:
        trace(env, "api", argv, time.perf_counter() - started, time.thread_time() - cpu, calls=pages)
