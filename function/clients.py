"""Builds the Google clients once per instance, lazily, as the identity Application Default Credentials give.

Production: Google's endpoints with TLS, the credentials of the runtime's attached service account (the
workload's). Against the local emulator (CANARY_EMULATOR_GRPC) only the endpoint and the channel security differ:
gRPC local channel credentials on loopback, which still carry the same ADC token on every call. No other code path
exists for tests. The logging and Resource Manager clients are imported only on the failure path.
"""

from __future__ import annotations

import os
import threading
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


def _metadata(path: str) -> str | None:
    """One value from the metadata server (the one google.auth uses), or None when it doesn't answer."""
    host = os.environ.get("GCE_METADATA_HOST", "metadata.google.internal")
    request = urllib.request.Request(f"http://{host}/computeMetadata/v1/{path}", headers={"Metadata-Flavor": "Google"})
    try:
        with urllib.request.urlopen(request, timeout=1) as response:
            return response.read().decode().strip() or None
    except (OSError, ValueError):
        return None


class Clients:
    """One per instance. Thread-safe: probes run concurrently."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._credentials: Any = None
        self._adc_project: str | None = None
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
        with self._lock:
            if self._credentials is None:
                self._credentials, self._adc_project = google.auth.default(scopes=SCOPES)
            return self._credentials

    def prepare(self, timeout: float) -> str:
        """Credentials, project and a fresh access token, within `timeout`: returns the project.

        google.auth retries the metadata server with backoff (about 15 s for five 5xx answers) and a gRPC deadline
        does not interrupt a token refresh, so the harness bounds this step itself. A step that does not finish
        raises TransportError (the credentials cause); it goes on in the background and a later run reuses it.
        """
        credentials = self._credentials
        if credentials is not None and credentials.valid:  # warm: nothing to fetch, no thread to bound
            return self.project()
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                project = self.project()
                credentials = self.credentials()
                if not credentials.valid:
                    credentials.refresh(google.auth.transport.requests.Request())
                box["project"] = project
            except Exception as error:  # noqa: BLE001 - handed to the caller below
                box["error"] = error

        worker = threading.Thread(target=work, name="adc", daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            raise google.auth.exceptions.TransportError(
                f"the metadata server issued no credentials within {timeout:.0f} s"
            )
        error = box.get("error")
        if error is None:
            return str(box["project"])
        if isinstance(error, google.auth.exceptions.GoogleAuthError | RuntimeError):
            raise error
        raise google.auth.exceptions.RefreshError(f"could not get an access token: {type(error).__name__}: {error}")

    def known_project(self) -> str | None:
        """The project if it is already known, without any I/O (for reporting after a credentials failure)."""
        return self._config.project or self._adc_project

    def project(self) -> str:
        """The project to probe: CANARY_PROJECT, else the one ADC reports (the runtime's)."""
        if self._config.project:
            return self._config.project
        self.credentials()
        if not self._adc_project:
            raise RuntimeError("cannot tell which project to probe: ADC reports none; set CANARY_PROJECT")
        return self._adc_project

    def principal(self) -> str | None:
        """The e-mail the canary calls as (None when unknown, e.g. user credentials on a laptop)."""
        email = getattr(self._credentials, "service_account_email", None)
        if email and email != "default":
            return str(email)
        if email == "default":  # compute credentials not yet refreshed (e.g. the token endpoint failed)
            return _metadata("instance/service-accounts/default/email")
        return None

    def region(self) -> str:
        """Where this instance runs (the generic_task `location` label), from the metadata server; else global."""
        if self._region is None:
            region = _metadata("instance/region")
            self._region = region.rsplit("/", 1)[-1] if region else "global"
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
