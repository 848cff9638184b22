"""Helpers for tests and scripts: start an emulator and build real Google clients that act as any principal.

The clients are the unmodified GAPIC clients over a gRPC channel with local credentials, carrying a bearer
token the emulator minted for the chosen e-mail, so every permission check applies as it would on Google.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
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


DEPLOYER = "deployer@demo-proj.iam.gserviceaccount.com"
DEPLOYER_ROLES = (
    "roles/cloudfunctions.admin",
    "roles/iam.serviceAccountUser",
    "roles/iam.serviceAccountAdmin",
    "roles/cloudscheduler.admin",
    "roles/resourcemanager.projectIamAdmin",
    "roles/monitoring.editor",
    "roles/pubsub.admin",
)
FLEET_SERVICES = (
    "aiplatform.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "serviceusage.googleapis.com",
    "cloudfunctions.googleapis.com",
    "run.googleapis.com",
    "cloudscheduler.googleapis.com",
    "cloudbuild.googleapis.com",
    "iam.googleapis.com",
    "pubsub.googleapis.com",
    "artifactregistry.googleapis.com",
)


def fleet_project(index: int) -> str:
    return f"fleet-proj-{index:03d}"


def fleet_scenario(path: Path, count: int, disabled: dict[int, str] | None = None) -> Path:
    """A scenario file with `count` projects ready for the deploy tool (deployer roles, APIs, a workload account
    per project); `disabled` maps a project index to an API turned off there."""
    disabled = disabled or {}
    projects: dict[str, Any] = {}
    principals = ["alice@example.com", DEPLOYER]
    for i in range(1, count + 1):
        project = fleet_project(i)
        workload = f"canary-workload@{project}.iam.gserviceaccount.com"
        principals.append(workload)
        projects[project] = {
            "number": 500000000000 + i,
            "services": [s for s in FLEET_SERVICES if s != disabled.get(i)],
            "bindings": {
                "roles/owner": ["user:alice@example.com"],
                **{role: [f"serviceAccount:{DEPLOYER}"] for role in DEPLOYER_ROLES},
            },
        }
    doc = {
        "description": f"{count} projects ready for the deploy tool",
        "extends": "healthy",
        "principals": principals,
        "projects": projects,
    }
    path.write_text(json.dumps(doc, indent=1))
    return path


ROOT = Path(__file__).resolve().parents[1]
# gunicorn says where it listens (`Listening at: http://127.0.0.1:PORT (PID)`) at log level info; functions-framework
# sets error unless GUNICORN_LOG_LEVEL says otherwise.
FUNCTIONS_FRAMEWORK_ENV = {"GUNICORN_LOG_LEVEL": "info"}
_LISTENING = re.compile(rb"Listening at: http://127\.0\.0\.1:([0-9]+) ")


def functions_framework_argv(source: str, target: str, *extra: str) -> list[str]:
    """`python -m functions_framework` on loopback port 0: gunicorn binds a port the kernel picks and says which, so
    no port number is chosen beforehand (a port bound, closed and handed over can be taken by anyone in between)."""
    return [
        *(sys.executable, "-m", "functions_framework", "--source", source, "--target", target),
        *("--host", "127.0.0.1", "--port", "0", *extra),
    ]


def bound_port(process: subprocess.Popen[bytes], output: Callable[[], bytes], limit_s: float) -> int:
    """The port a functions_framework_argv process listens on, once its gunicorn master has bound it (read from its
    output); RuntimeError with the output's tail if it exits first or says nothing within `limit_s`."""
    end = time.monotonic() + limit_s
    while True:
        text = output()
        found = _LISTENING.search(text)
        if found:
            return int(found.group(1))
        if process.poll() is not None:
            tail = output().decode(errors="replace")[-2000:]
            raise RuntimeError(f"functions-framework exited with {process.returncode}: {tail}")
        if time.monotonic() > end:
            tail = text.decode(errors="replace")[-2000:]
            raise RuntimeError(f"functions-framework did not listen within {limit_s:g} s: {tail}")
        time.sleep(0.005)  # polling the log for the line; the loop ends on the condition, not on the time


@contextmanager
def serve_function(
    env: dict[str, str], log: Path, target: str = "canary", *extra: str, start_seconds: float = 60
) -> Iterator[int]:
    """The canary in a real `functions-framework` process (gunicorn) on a loopback port it binds itself, as deployed
    from the repo root (function/main.py); its output goes to `log`. Yields the port once it listens; stops it after.
    `start_seconds` only bounds a start that never comes (a cold start takes about a second)."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            functions_framework_argv("function/main.py", target, *extra),
            cwd=ROOT,
            env={**env, **FUNCTIONS_FRAMEWORK_ENV},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield bound_port(process, log.read_bytes, start_seconds)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
