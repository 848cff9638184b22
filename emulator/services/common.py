"""What every emulated Google API checks first: the consumer project's service state and the caller's IAM."""

from __future__ import annotations

from google.rpc import code_pb2

from emulator.dispatch import Call
from emulator.rpc import RpcError, error_info, help_link, localized
from emulator.world import Project

TITLES = {
    "aiplatform.googleapis.com": "Vertex AI API",
    "logging.googleapis.com": "Cloud Logging API",
    "monitoring.googleapis.com": "Cloud Monitoring API",
    "cloudresourcemanager.googleapis.com": "Cloud Resource Manager API",
    "serviceusage.googleapis.com": "Service Usage API",
    "cloudfunctions.googleapis.com": "Cloud Functions API",
    "run.googleapis.com": "Cloud Run Admin API",
    "cloudscheduler.googleapis.com": "Cloud Scheduler API",
    "iam.googleapis.com": "Identity and Access Management (IAM) API",
    "pubsub.googleapis.com": "Cloud Pub/Sub API",
    "cloudbuild.googleapis.com": "Cloud Build API",
}


def service_disabled(project: Project, service: str) -> RpcError:
    """SERVICE_DISABLED exactly as docs/google-behaviour.md gives it (the project by number)."""
    title = TITLES.get(service, service)
    url = f"https://console.developers.google.com/apis/api/{service}/overview?project={project.number}"
    message = (
        f"{title} has not been used in project {project.number} before or it is disabled. Enable it by "
        f"visiting {url} then retry. If you enabled this API recently, wait a few minutes for the action to "
        "propagate to our systems and retry."
    )
    return RpcError(
        code_pb2.PERMISSION_DENIED,
        message,
        [
            error_info(
                "SERVICE_DISABLED",
                "googleapis.com",
                {
                    "service": service,
                    "consumer": f"projects/{project.number}",
                    "containerInfo": project.number,
                    "serviceTitle": title,
                    "activationUrl": url,
                },
            ),
            localized(message),
            help_link("Google developers console API activation", url),
        ],
    )


def require_enabled(project: Project, service: str) -> None:
    if service not in project.services:
        raise service_disabled(project, service)


def allowed(call: Call, project: Project, permission: str) -> bool:
    """Allow policy grants it and no deny rule takes it away."""
    member = call.member()
    return call.world.allows(project, member, permission)
