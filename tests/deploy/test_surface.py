"""The deployed surface: for any valid input, the deploy tool never grants allUsers or allAuthenticatedUsers
anything, and never deploys the function without --no-allow-unauthenticated.

The plan is taken from the tool itself in dry-run mode, over an empty project (every read answers "absent"), so every
command it can issue for that input is in the plan. The stand-ins below replace the tool's own gcloud and Monitoring
wrappers only, not Google code; the real-gcloud runs are in test_deploy_gcloud.py.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from deploy.alerting import Monitoring
from deploy.gcloud import Gcloud
from deploy.reconcile import BUILD_ROLE, Project
from deploy.spec import make_spec


class EmptyProjectGcloud(Gcloud):
    def read(self, *argv: str) -> Any:
        if argv[:3] == ("iam", "service-accounts", "describe") and "invoker" not in argv[3]:
            return {"email": argv[3]}  # the workload's account exists
        if argv[:2] == ("projects", "describe"):
            return {"projectId": argv[2]}  # the deployer can see the project
        return None


class EmptyMonitoring(Monitoring):
    def _clients(self) -> tuple[Any, Any]:
        return None, None  # a dry run never calls them

    def managed_policies(self) -> list[Any]:
        return []

    def current_descriptor(self, metric_type: str) -> Any:
        return None

    def managed_channels(self) -> list[Any]:
        return []

    def channel_exists(self, name: str) -> bool:
        return True

    def ensure_email_channel(self, email: str) -> tuple[str, str]:
        self.plan.append(f"monitoring.notificationChannels.create email={email}")
        return f"projects/{self.project}/notificationChannels/1", "created"


projects = st.from_regex(r"\A[a-z][a-z0-9-]{4,20}[a-z0-9]\Z")
specs = st.builds(
    lambda project, targets, schedule, pubsub, evidence, logs, email, channels: make_spec(
        projects=[project],
        region="us-central1",
        service_account=f"workload@{project}.iam.gserviceaccount.com",
        targets=targets,
        schedule=schedule,
        pubsub=pubsub,
        evidence_roles=evidence,
        data_access_logs=logs,
        notify_email=email,
        channels=channels,
        dry_run=True,
    ),
    projects,
    st.lists(
        st.sampled_from(["gemini-2.5-flash@global", "gemini-2.5-pro@us-central1", "gemini-3-pro-preview@global"]),
        min_size=1,
        max_size=3,
        unique=True,
    ),
    st.sampled_from(["*/5 * * * *", "*/3 * * * *", "0 * * * *", "15,45 * * * *"]),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.one_of(st.none(), st.just("oncall@example.com")),
    st.lists(st.from_regex(r"\A[1-9][0-9]{3,12}\Z"), max_size=2),
)


@settings(max_examples=60, deadline=None)
@given(specs, st.sampled_from(["apply", "teardown"]))
def test_nothing_is_ever_public(spec: Any, command: str) -> None:
    project = spec.projects[0]
    gcloud = EmptyProjectGcloud(project, dry_run=True)
    monitoring = EmptyMonitoring(project, dry_run=True)
    target = Project(spec, project, gcloud, monitoring)
    target.apply() if command == "apply" else target.teardown()
    plan = gcloud.plan + monitoring.plan
    for step in plan:
        assert "allUsers" not in step
        assert "allAuthenticatedUsers" not in step
        assert "--allow-unauthenticated" not in step
    if command == "apply":
        [deploy] = [s for s in plan if s.startswith("gcloud functions deploy ")]
        assert "--no-allow-unauthenticated" in deploy
        grants = [s for s in plan if "add-iam-policy-binding" in s or "add-invoker-policy-binding" in s]
        build = f"--member=serviceAccount:PROJECT_NUMBER-compute@developer.gserviceaccount.com --role={BUILD_ROLE} "
        assert all(f"workload@{project}" in g or "gemini-canary-invoker" in g or build in g for g in grants)
        assert f"--build-service-account=projects/{project}/serviceAccounts/PROJECT_NUMBER-compute@" in deploy
