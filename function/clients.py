"""Builds the Google clients once per instance, lazily, as the identity Application Default Credentials give.

Production: Google's endpoints with TLS, the credentials of the runtime's attached service account (the
workload's). Against the local emulator (CANARY_EMULATOR_GRPC) only the endpoint and the channel security differ:
gRPC local channel credentials on loopback, which still carry the same ADC token on every call. No other code path
exists for tests. The logging and Resource Manager clients are imported only on the failure path.
"""

from __future__ import annotations

import http.client
import os
import re
import threading
import time
import urllib.error
import urllib.request
import uuid
from typing import TYPE_CHECKING, Any

import google.auth
import google.auth.exceptions
import google.auth.transport.requests
import grpc

from .config import Config

if TYPE_CHECKING:
    from google.cloud.aiplatform_v1 import PredictionServiceClient
    from google.cloud.logging_v2.services.logging_service_v2 import LoggingServiceV2Client
    from google.cloud.monitoring_v3 import MetricServiceClient
    from google.cloud.resourcemanager_v3 import FoldersClient, OrganizationsClient, ProjectsClient

SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]


def vertex_endpoint(location: str) -> str:
    """Vertex AI's regional endpoint for a location; `global` uses the global host.

    Assumption (unverified): the multi-regions `us` and `eu` are served at aiplatform.{us,eu}.rep.googleapis.com.
    """
    if location == "global":
        return "aiplatform.googleapis.com"
    if location in ("us", "eu"):
        return f"aiplatform.{location}.rep.googleapis.com"
    return f"{location}-aiplatform.googleapis.com"


# A project id, or a legacy domain-scoped one (example.com:my-project).
_PROJECT_REF = re.compile(r"^([a-z0-9.\-]{1,63}:)?[a-z][a-z0-9-]{4,28}[a-z0-9]\Z")
_REGION = re.compile(r"^projects/[0-9a-z-]+/regions/([a-z]+-[a-z]+[0-9]{1,2})\Z")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+\-]{1,128}@[A-Za-z0-9.\-]{1,255}\Z")
# The metadata server answers in milliseconds on Cloud Run: a lookup that takes longer than this is not coming.
METADATA_TIMEOUT_S = 2.0


class MetadataError(Exception):
    """One metadata lookup that did not give a usable answer; the message says what the server did."""


class ProjectUnknown(RuntimeError):
    """The canary cannot learn which project to probe: its own failure, never cached (the next run asks again)."""


def _metadata(path: str, timeout: float, valid: re.Pattern[str]) -> str:
    """One value from the metadata server (the one google.auth uses), within `timeout`; MetadataError otherwise."""
    host = os.environ.get("GCE_METADATA_HOST", "metadata.google.internal")
    request = urllib.request.Request(f"http://{host}/computeMetadata/v1/{path}", headers={"Metadata-Flavor": "Google"})
    try:
        with urllib.request.urlopen(request, timeout=max(0.05, timeout)) as response:
            raw = response.read(4096)
    except urllib.error.HTTPError as error:
        body = error.read(200).decode(errors="replace").strip()
        raise MetadataError(f"{path} answered HTTP {error.code}{f': {body!r}' if body else ''}") from None
    except TimeoutError:
        raise MetadataError(f"{path} did not answer within {timeout:.1f} s") from None
    except urllib.error.URLError as error:
        if isinstance(error.reason, TimeoutError):
            raise MetadataError(f"{path} did not answer within {timeout:.1f} s") from None
        raise MetadataError(f"{path} could not be read: {error.reason}") from None
    except (OSError, http.client.HTTPException) as error:
        raise MetadataError(f"{path} could not be read: {type(error).__name__}: {error}") from None
    value = raw.decode(errors="replace").strip()
    if not valid.match(value):
        raise MetadataError(f"{path} answered something that is not a valid value: {value[:60]!r}")
    return value


class _Attempt:
    """One google.auth.default() and token refresh, in a thread of its own; overlapping runs wait for the same one.

    A run that gives up on it marks it abandoned, so the next run starts afresh instead of waiting behind a lookup
    that hangs (google.auth retries the metadata server with backoff a caller cannot interrupt).
    """

    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.abandoned = False


class Clients:
    """One per instance. Thread-safe: probes run concurrently.

    What the metadata server told it (project, region) is kept for the instance's life; a lookup that failed is never
    kept, so one bad answer costs one run, not the instance.
    """

    def __init__(self, config: Config) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._credentials: Any = None
        self._adc_project: str | None = None
        self._attempt: _Attempt | None = None
        self._prediction: dict[str, PredictionServiceClient] = {}
        self._logging: LoggingServiceV2Client | None = None
        self._metrics: MetricServiceClient | None = None
        self._projects: ProjectsClient | None = None
        self._folders: FoldersClient | None = None
        self._organizations: OrganizationsClient | None = None
        self._region: str | None = None
        self.task_id = uuid.uuid4().hex  # one per instance: each instance writes its own series

    # Identity ------------------------------------------------------------------------------------------

    def credentials(self) -> Any:
        credentials = self._credentials
        if credentials is None:
            # Not under the lock: a google.auth.default() that hangs must not hold up a later run's own attempt.
            credentials, project = google.auth.default(scopes=SCOPES)
            with self._lock:
                if self._credentials is None:
                    self._credentials = credentials
                if not self._adc_project and project and _PROJECT_REF.match(str(project)):
                    self._adc_project = str(project)  # None (the lookup failed) is never kept
                credentials = self._credentials
        return credentials

    def prepare(self, timeout: float) -> str:
        """Credentials, a fresh access token and the project, within `timeout`: returns the project.

        google.auth retries the metadata server with backoff (about 15 s for five 5xx answers) and a gRPC deadline
        does not interrupt a token refresh, so the harness bounds this step itself. Credentials that do not come
        raise TransportError (the credentials cause); a project that cannot be learned raises ProjectUnknown.
        """
        end = time.monotonic() + timeout
        credentials = self._credentials
        if credentials is None or not credentials.valid:  # warm: nothing to fetch, no thread to bound
            self._identity(timeout)
        return self.project(min(METADATA_TIMEOUT_S, max(0.5, end - time.monotonic())))

    def _identity(self, timeout: float) -> None:
        with self._lock:
            attempt = self._attempt
            if attempt is None or attempt.abandoned or attempt.done.is_set():
                attempt = self._attempt = _Attempt()
                threading.Thread(target=self._authenticate, args=(attempt,), name="adc", daemon=True).start()
        if not attempt.done.wait(timeout):
            attempt.abandoned = True
            raise google.auth.exceptions.TransportError(
                f"the metadata server issued no credentials within {timeout:.0f} s"
            )
        error = attempt.error
        if error is None:
            return
        if isinstance(error, google.auth.exceptions.GoogleAuthError):
            raise error
        raise google.auth.exceptions.RefreshError(f"could not get an access token: {type(error).__name__}: {error}")

    def _authenticate(self, attempt: _Attempt) -> None:
        try:
            credentials = self.credentials()
            if not credentials.valid:
                credentials.refresh(google.auth.transport.requests.Request())
        except Exception as error:  # noqa: BLE001 - handed to the waiting run
            attempt.error = error
        finally:
            attempt.done.set()

    def known_project(self) -> str | None:
        """The project if it is already known, without any I/O (for reporting after a credentials failure)."""
        return self._config.project or self._adc_project

    def project(self, timeout: float = METADATA_TIMEOUT_S) -> str:
        """The project to probe: CANARY_PROJECT, else the runtime's (ADC's, or the metadata server's when ADC's own
        lookup failed). Raises ProjectUnknown, saying what the metadata server answered; nothing failed is kept."""
        known = self.known_project()
        if known:
            return known
        try:
            project = _metadata("project/project-id", timeout, _PROJECT_REF)
        except MetadataError as error:
            raise ProjectUnknown(
                f"cannot learn which project to probe: the runtime's metadata server's {error}. This is the "
                "runtime's metadata server failing, not Gemini: the next run asks again (outside Google Cloud, "
                "where there is no metadata server, set CANARY_PROJECT)"
            ) from None
        with self._lock:
            self._adc_project = project
        return project

    def principal(self, timeout: float = METADATA_TIMEOUT_S) -> str | None:
        """The e-mail the canary calls as (None when unknown, e.g. user credentials on a laptop, or a failed lookup)."""
        email = getattr(self._credentials, "service_account_email", None)
        if email and email != "default":
            return str(email)
        if email == "default":  # compute credentials not yet refreshed (e.g. the token endpoint failed)
            try:
                return _metadata("instance/service-accounts/default/email", timeout, _EMAIL)
            except MetadataError:
                return None
        return None

    def region(self, timeout: float = METADATA_TIMEOUT_S) -> str:
        """Where this instance runs (the generic_task `location` label), from the metadata server, within `timeout`.
        Raises MetadataError when it cannot tell; only an answer is kept."""
        if self._region is None:
            answer = _metadata("instance/region", timeout, _REGION)
            self._region = answer.rsplit("/", 1)[-1]
        return self._region

    # Transports ---------------------------------------------------------------------------------------

    def _transport(self, transport_cls: Any, host: str) -> Any:
        credentials = self.credentials()
        if self._config.emulator:
            return transport_cls(
                host=self._config.emulator,
                credentials=credentials,
                ssl_channel_credentials=grpc.local_channel_credentials(),
            )
        return transport_cls(host=host, credentials=credentials)

    def prediction(self, location: str) -> PredictionServiceClient:
        endpoint = vertex_endpoint(location)
        client = self._prediction.get(endpoint)
        if client is None:
            from google.cloud.aiplatform_v1.services.prediction_service import PredictionServiceClient
            from google.cloud.aiplatform_v1.services.prediction_service.transports import (
                PredictionServiceGrpcTransport,
            )

            client = PredictionServiceClient(transport=self._transport(PredictionServiceGrpcTransport, endpoint))
            with self._lock:
                client = self._prediction.setdefault(endpoint, client)
        return client

    def metrics(self) -> MetricServiceClient:
        if self._metrics is None:
            from google.cloud.monitoring_v3.services.metric_service import MetricServiceClient
            from google.cloud.monitoring_v3.services.metric_service.transports import MetricServiceGrpcTransport

            self._metrics = MetricServiceClient(
                transport=self._transport(MetricServiceGrpcTransport, "monitoring.googleapis.com")
            )
        return self._metrics

    def logging(self) -> LoggingServiceV2Client:
        if self._logging is None:
            from google.cloud.logging_v2.services.logging_service_v2 import LoggingServiceV2Client
            from google.cloud.logging_v2.services.logging_service_v2.transports import LoggingServiceV2GrpcTransport

            self._logging = LoggingServiceV2Client(
                transport=self._transport(LoggingServiceV2GrpcTransport, "logging.googleapis.com")
            )
        return self._logging

    def projects(self) -> ProjectsClient:
        if self._projects is None:
            from google.cloud.resourcemanager_v3.services.projects import ProjectsClient
            from google.cloud.resourcemanager_v3.services.projects.transports import ProjectsGrpcTransport

            self._projects = ProjectsClient(
                transport=self._transport(ProjectsGrpcTransport, "cloudresourcemanager.googleapis.com")
            )
        return self._projects

    def folders(self) -> FoldersClient:
        if self._folders is None:
            from google.cloud.resourcemanager_v3.services.folders import FoldersClient
            from google.cloud.resourcemanager_v3.services.folders.transports import FoldersGrpcTransport

            self._folders = FoldersClient(
                transport=self._transport(FoldersGrpcTransport, "cloudresourcemanager.googleapis.com")
            )
        return self._folders

    def organizations(self) -> OrganizationsClient:
        if self._organizations is None:
            from google.cloud.resourcemanager_v3.services.organizations import OrganizationsClient
            from google.cloud.resourcemanager_v3.services.organizations.transports import OrganizationsGrpcTransport

            self._organizations = OrganizationsClient(
                transport=self._transport(OrganizationsGrpcTransport, "cloudresourcemanager.googleapis.com")
            )
        return self._organizations
