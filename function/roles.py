"""The canary identity's least-privilege role set: one definition, used by the deploy tool, the tests and the README.

The canary runs as the workload's own service account, so it needs what the workload needs to call Gemini, plus
what it needs to report. Each optional role adds evidence; without it that piece says "unavailable" and names the
missing permission, and everything else still works.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Role:
    role: str
    required: bool
    permissions: tuple[str, ...]  # the permissions of the role the canary uses
    why: str


ROLES: tuple[Role, ...] = (
    Role(
        "roles/aiplatform.user",
        True,
        ("aiplatform.endpoints.predict",),
        "the probe itself: GenerateContent as the workload (the workload already needs it)",
    ),
    Role(
        "roles/monitoring.metricWriter",
        True,
        ("monitoring.timeSeries.create",),
        "the metrics and therefore the alert policies",
    ),
    Role(
        "roles/logging.privateLogViewer",
        False,
        ("logging.logEntries.list", "logging.privateLogEntries.list"),
        "audit-log evidence: the denied call (Data Access), the VPC-SC Policy Denied entry and the Admin Activity "
        "change (who, when); roles/logging.viewer alone gives all but the Data Access entry",
    ),
    # roles/browser, not roles/iam.securityReviewer: Google's securityReviewer reads every IAM policy and both log
    # permissions (thousands of permissions, and it would make privateLogViewer redundant); browser holds six,
    # among them resourcemanager.projects.getIamPolicy (Google's role definitions; docs/google-behaviour.md, "IAM").
    Role(
        "roles/browser",
        False,
        ("resourcemanager.projects.getIamPolicy",),  # and resourcemanager.projects.get, which aiplatform.user has too
        "whether Data Access audit logs are on and which roles the principal holds; the project's parent, to look "
        "at its folders' and organization's audit configs (those need resourcemanager.folders.getIamPolicy and "
        "resourcemanager.organizations.getIamPolicy granted there, e.g. roles/iam.securityReviewer on the "
        "organization); a custom role with only resourcemanager.projects.getIamPolicy is enough for the project",
    ),
)
REQUIRED = tuple(r.role for r in ROLES if r.required)
OPTIONAL = tuple(r.role for r in ROLES if not r.required)
