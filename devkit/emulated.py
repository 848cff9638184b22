"""Helpers for tests and scripts: start an emulator and build real Google clients that act as any principal.

The clients are the unmodified GAPIC clients over a gRPC channel with local credentials, carrying a bearer
token the emulator minted for the chosen e-mail, so every permission check applies as it would on Google.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import grpc
from google.cloud import aiplatform_v1, monitoring_v3, resourcemanager_v3
from google.cloud.aiplatform_v1.services.prediction_service.transports import PredictionServiceGrpcTransport
from google.cloud.logging_v2.services.logging_service_v2 import LoggingServiceV2Client
from google.cloud.logging_v2.services.logging_service_v2.transports import LoggingServiceV2GrpcTransport
from google.cloud.monitoring_v3.services.alert_policy_service.transports import AlertPolicyServiceGrpcTransport
from google.cloud.monitoring_v3.services.metric_service.transports import MetricServiceGrpcTransport
from google.cloud.monitoring_v3.services.notification_channel_service.transports import (
    NotificationChannelServiceGrpcTransport,
)
from google.cloud.resourcemanager_v3.services.projects.transports import ProjectsGrpcTransport
from google.oauth2.credentials import Credentials

from emulator.server import Emulator


@contextmanager
def running(scenario: str = "healthy") -> Iterator[Emulator]:
    emulator = Emulator(scenario).start()
    try:
        yield emulator
    finally:
        emulator.stop()


def admin(emulator: Emulator, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """Call the admin API; returns (HTTP status, decoded JSON)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{emulator.admin_url}/{path.lstrip('/')}",
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def token_for(emulator: Emulator, email: str, ttl_seconds: float | None = None) -> str:
    with emulator.world.lock:
        token, _ = emulator.world.mint_token(email, None if ttl_seconds is None else timedelta(seconds=ttl_seconds))
    return token


@dataclass
class Clients:
    prediction: aiplatform_v1.PredictionServiceClient
    logging: LoggingServiceV2Client
    metrics: monitoring_v3.MetricServiceClient
    alerts: monitoring_v3.AlertPolicyServiceClient
    channels: monitoring_v3.NotificationChannelServiceClient
    projects: resourcemanager_v3.ProjectsClient


def clients(emulator: Emulator, email: str | None = None, token: str | None = None) -> Clients:
    """Real GAPIC clients acting as `email` (default: the scenario's workload) or with a given raw token."""
    if token is None:
        token = token_for(emulator, email or emulator.world.workload)
    credentials = Credentials(token=token)
    host = emulator.grpc.address
    local = grpc.local_channel_credentials()

    def transport(cls: Any) -> Any:
        return cls(host=host, credentials=credentials, ssl_channel_credentials=local)

    return Clients(
        prediction=aiplatform_v1.PredictionServiceClient(transport=transport(PredictionServiceGrpcTransport)),
        logging=LoggingServiceV2Client(transport=transport(LoggingServiceV2GrpcTransport)),
        metrics=monitoring_v3.MetricServiceClient(transport=transport(MetricServiceGrpcTransport)),
        alerts=monitoring_v3.AlertPolicyServiceClient(transport=transport(AlertPolicyServiceGrpcTransport)),
        channels=monitoring_v3.NotificationChannelServiceClient(
            transport=transport(NotificationChannelServiceGrpcTransport)
        ),
        projects=resourcemanager_v3.ProjectsClient(transport=transport(ProjectsGrpcTransport)),
    )
