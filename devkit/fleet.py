"""Fleet fixtures for the deploy tool: scenario files with many projects, each ready for a deploy (the deployer's
roles, the APIs it needs, a workload account)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DEPLOYER = "deployer@demo-proj.iam.gserviceaccount.com"
DEPLOYER_ROLES = (
    "roles/cloudfunctions.admin",
    "roles/iam.serviceAccountUser",
    "roles/iam.serviceAccountAdmin",
    "roles/cloudscheduler.admin",
    "roles/resourcemanager.projectIamAdmin",
    "roles/monitoring.editor",
    "roles/pubsub.admin",
    # the job kind: the job from source (bucket, repository, build) and its IAM policy (Cloud Run "Deploy jobs from
    # source" and IAM roles pages)
    "roles/run.sourceDeveloper",
    "roles/run.admin",
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
