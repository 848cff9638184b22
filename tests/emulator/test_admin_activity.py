"""Every change made through an emulated API writes the Admin Activity entry Google writes: driven through REST or
the real clients as a principal, read back with the real logging client by methodName, naming the caller, the
method, the resource, the permission and (SetIamPolicy) the binding deltas; a refused call writes none."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from google.cloud import monitoring_v3
from google.cloud.logging_v2.types import LogEntry
from google.protobuf import json_format

from devkit.emulated import clients
from emulator.server import Emulator
from tests.emulator.rest_support import (
    LOC,
    STRANGER,
    builder_ready,
    function_body,
    rest,
    scheduler_job,
    upload_source,
)
from tests.emulator.support import DEPLOYER, PROJECT, advance, list_entries
from tests.prerequisites import need
from tests.shared import WORKLOAD

ACTIVITY = f"projects/{PROJECT}/logs/cloudaudit.googleapis.com%2Factivity"
FUNCTION = f"{LOC}/functions/gemini-canary"


def activity(emu: Emulator, method: str) -> list[dict[str, Any]]:
    """The Admin Activity entries with this methodName, as the real logging client lists them (past the lag)."""
    advance(emu, 3)
    reader = clients(emu, email=DEPLOYER).logging
    query = f'logName="{ACTIVITY}" AND protoPayload.methodName="{method}"'
    return [json_format.MessageToDict(LogEntry.pb(entry)) for entry in list_entries(reader, query)]


def one(emu: Emulator, method: str) -> dict[str, Any]:
    entries = activity(emu, method)
    assert len(entries) == 1, entries
    return entries[0]


def assert_entry(entry: dict[str, Any], *, service: str, method: str, resource: str, permission: str) -> None:
    payload = entry["protoPayload"]
    assert entry["severity"] == "NOTICE"
    assert payload["serviceName"] == service
    assert payload["methodName"] == method
    assert payload["resourceName"] == resource
    assert payload["authenticationInfo"]["principalEmail"] == DEPLOYER
    [authorization] = payload["authorizationInfo"]
    assert (authorization["permission"], authorization["granted"]) == (permission, True)


def deploy(emu: Emulator) -> dict[str, Any]:
    builder_ready(emu)
    status, operation = rest(
        emu, "POST", f"/v2/{LOC}/functions?functionId=gemini-canary", function_body(upload_source(emu))
    )
    assert status == 200, operation
    return dict(operation)


# Cloud Functions and Cloud Run --------------------------------------------------------------------------------


def test_a_function_create_writes_first_and_last_entries_of_its_operation(
    start_emulator: Callable[[str], Emulator],
) -> None:
    emu = start_emulator("deploy_ready")
    operation = deploy(emu)
    method = "google.cloud.functions.v2.FunctionService.CreateFunction"
    first, last = sorted(activity(emu, method), key=lambda e: not e["operation"].get("first", False))
    for entry in (first, last):
        assert_entry(
            entry,
            service="cloudfunctions.googleapis.com",
            method=method,
            resource=FUNCTION,
            permission="cloudfunctions.functions.create",
        )
        assert entry["resource"] == {
            "type": "cloud_function",
            "labels": {"function_name": "gemini-canary", "region": "us-central1", "project_id": PROJECT},
        }
        assert entry["operation"]["id"] == operation["name"]
    assert first["operation"]["first"] is True
    assert first["protoPayload"]["request"]["functionId"] == "gemini-canary"
    assert last["operation"]["last"] is True
    assert last["protoPayload"]["response"]["name"] == FUNCTION


def test_a_function_update_and_delete_are_audited(start_emulator: Callable[[str], Emulator]) -> None:
    emu = start_emulator("deploy_ready")
    deploy(emu)
    body = {**function_body(upload_source(emu)), "name": FUNCTION, "description": "v2"}
    assert rest(emu, "PATCH", f"/v2/{FUNCTION}", body)[0] == 200
    assert rest(emu, "DELETE", f"/v2/{FUNCTION}")[0] == 200
    for verb in ("Update", "Delete"):
        entries = activity(emu, f"google.cloud.functions.v2.FunctionService.{verb}Function")
        assert len(entries) == 2
        for entry in entries:
            assert_entry(
                entry,
                service="cloudfunctions.googleapis.com",
                method=f"google.cloud.functions.v2.FunctionService.{verb}Function",
                resource=FUNCTION,
                permission=f"cloudfunctions.functions.{verb.lower()}",
            )


def test_a_refused_call_writes_no_admin_activity_entry(start_emulator: Callable[[str], Emulator]) -> None:
    emu = start_emulator("deploy_ready")
    deploy(emu)
    assert rest(emu, "DELETE", f"/v2/{FUNCTION}", email=STRANGER)[0] == 403
    body = {"policy": {"bindings": [{"role": "roles/run.invoker", "members": ["allUsers"]}]}}
    assert rest(emu, "POST", f"/v1/{LOC}/services/gemini-canary:setIamPolicy", body, STRANGER)[0] == 403
    assert activity(emu, "google.cloud.functions.v2.FunctionService.DeleteFunction") == []
    assert activity(emu, "google.cloud.run.v1.Services.SetIamPolicy") == []
    assert [
        e["protoPayload"]["methodName"]
        for e in activity(emu, "google.cloud.functions.v2.FunctionService.CreateFunction")
    ] == ["google.cloud.functions.v2.FunctionService.CreateFunction"] * 2


def test_a_run_service_set_iam_policy_records_the_binding_deltas(start_emulator: Callable[[str], Emulator]) -> None:
    emu = start_emulator("deploy_ready")
    deploy(emu)
    resource = f"{LOC}/services/gemini-canary"
    invoker = {"role": "roles/run.invoker", "members": [f"serviceAccount:{WORKLOAD}"]}
    assert rest(emu, "POST", f"/v1/{resource}:setIamPolicy", {"policy": {"bindings": [invoker]}})[0] == 200
    entry = one(emu, "google.cloud.run.v1.Services.SetIamPolicy")
    assert_entry(
        entry,
        service="run.googleapis.com",
        method="google.cloud.run.v1.Services.SetIamPolicy",
        resource=resource,
        permission="run.services.setIamPolicy",
    )
    assert entry["resource"]["type"] == "cloud_run_revision"
    assert entry["resource"]["labels"]["service_name"] == "gemini-canary"
    assert entry["protoPayload"]["serviceData"]["policyDelta"]["bindingDeltas"] == [
        {"action": "ADD", "role": "roles/run.invoker", "member": f"serviceAccount:{WORKLOAD}"}
    ]
    assert entry["protoPayload"]["response"]["bindings"] == [invoker]


def test_a_function_set_iam_policy_is_audited_under_its_own_method(start_emulator: Callable[[str], Emulator]) -> None:
    emu = start_emulator("deploy_ready")
    deploy(emu)
    binding = {"role": "roles/cloudfunctions.invoker", "members": [f"serviceAccount:{WORKLOAD}"]}
    assert rest(emu, "POST", f"/v2/{FUNCTION}:setIamPolicy", {"policy": {"bindings": [binding]}})[0] == 200
    entry = one(emu, "google.cloud.functions.v2.FunctionService.SetIamPolicy")
    assert_entry(
        entry,
        service="cloudfunctions.googleapis.com",
        method="google.cloud.functions.v2.FunctionService.SetIamPolicy",
        resource=FUNCTION,
        permission="cloudfunctions.functions.setIamPolicy",
    )
    assert [d["action"] for d in entry["protoPayload"]["serviceData"]["policyDelta"]["bindingDeltas"]] == ["ADD"]


# IAM service accounts --------------------------------------------------------------------------------------------


def test_service_account_changes_are_audited_as_iam_logs_them(start_emulator: Callable[[str], Emulator]) -> None:
    emu = start_emulator("deploy_ready")
    body = {"accountId": "gemini-canary-invoker", "serviceAccount": {"displayName": "invoker"}}
    status, account = rest(emu, "POST", f"/v1/projects/{PROJECT}/serviceAccounts", body)
    assert status == 200, account
    created = one(emu, "google.iam.admin.v1.CreateServiceAccount")
    assert_entry(
        created,
        service="iam.googleapis.com",
        method="google.iam.admin.v1.CreateServiceAccount",
        resource=f"projects/{PROJECT}",
        permission="iam.serviceAccounts.create",
    )
    assert created["resource"] == {
        "type": "service_account",
        "labels": {"email_id": account["email"], "project_id": PROJECT, "unique_id": account["uniqueId"]},
    }
    assert created["protoPayload"]["response"]["email"] == account["email"]
    name = f"projects/-/serviceAccounts/{account['uniqueId']}"
    grant = {"role": "roles/iam.serviceAccountTokenCreator", "members": [f"user:{STRANGER}"]}
    path = f"/v1/projects/{PROJECT}/serviceAccounts/{account['email']}"
    assert rest(emu, "POST", f"{path}:setIamPolicy", {"policy": {"bindings": [grant]}})[0] == 200
    assert rest(emu, "DELETE", path)[0] == 200
    policy = one(emu, "google.iam.admin.v1.SetIAMPolicy")
    assert_entry(
        policy,
        service="iam.googleapis.com",
        method="google.iam.admin.v1.SetIAMPolicy",
        resource=name,
        permission="iam.serviceAccounts.setIamPolicy",
    )
    assert policy["protoPayload"]["serviceData"]["policyDelta"]["bindingDeltas"] == [
        {"action": "ADD", "role": "roles/iam.serviceAccountTokenCreator", "member": f"user:{STRANGER}"}
    ]
    deleted = one(emu, "google.iam.admin.v1.DeleteServiceAccount")
    assert deleted["protoPayload"]["resourceName"] == name


# Cloud Scheduler ------------------------------------------------------------------------------------------------


def test_scheduler_job_changes_are_audited(start_emulator: Callable[[str], Emulator]) -> None:
    emu = start_emulator("deploy_ready")
    job = f"{LOC}/jobs/gemini-canary"
    assert rest(emu, "POST", f"/v1/{LOC}/jobs", scheduler_job())[0] == 200
    assert rest(emu, "POST", f"/v1/{job}:pause", {})[0] == 200
    assert rest(emu, "POST", f"/v1/{job}:resume", {}, STRANGER)[0] == 403
    assert rest(emu, "DELETE", f"/v1/{job}")[0] == 200
    for verb, permission in (("CreateJob", "create"), ("PauseJob", "pause"), ("DeleteJob", "delete")):
        method = f"google.cloud.scheduler.v1.CloudScheduler.{verb}"
        entry = one(emu, method)
        assert_entry(
            entry,
            service="cloudscheduler.googleapis.com",
            method=method,
            resource=job,
            permission=f"cloudscheduler.jobs.{permission}",
        )
        assert entry["resource"] == {
            "type": "cloud_scheduler_job",
            "labels": {"job_id": "gemini-canary", "location": "us-central1", "project_id": PROJECT},
        }
    assert activity(emu, "google.cloud.scheduler.v1.CloudScheduler.ResumeJob") == []


# Cloud Monitoring ---------------------------------------------------------------------------------------------


def test_alert_policy_and_channel_changes_are_audited(start_emulator: Callable[[str], Emulator]) -> None:
    emu = start_emulator("deploy_ready")
    api = clients(emu, email=DEPLOYER)
    channel = api.channels.create_notification_channel(
        name=f"projects/{PROJECT}",
        notification_channel=monitoring_v3.NotificationChannel(type_="email", labels={"email_address": "a@b.c"}),
        retry=None,
    )
    condition = monitoring_v3.AlertPolicy.Condition(
        display_name="denied",
        condition_matched_log=monitoring_v3.AlertPolicy.Condition.LogMatch(filter="severity>=ERROR"),
    )
    policy = api.alerts.create_alert_policy(
        name=f"projects/{PROJECT}",
        alert_policy=monitoring_v3.AlertPolicy(
            display_name="canary denied",
            combiner=monitoring_v3.AlertPolicy.ConditionCombinerType.OR,
            conditions=[condition],
            notification_channels=[channel.name],
            alert_strategy=monitoring_v3.AlertPolicy.AlertStrategy(
                notification_rate_limit=monitoring_v3.AlertPolicy.AlertStrategy.NotificationRateLimit(
                    period={"seconds": 300}
                )
            ),
        ),
        retry=None,
    )
    api.alerts.delete_alert_policy(name=policy.name, retry=None)
    created = one(emu, "google.monitoring.v3.AlertPolicyService.CreateAlertPolicy")
    assert_entry(
        created,
        service="monitoring.googleapis.com",
        method="google.monitoring.v3.AlertPolicyService.CreateAlertPolicy",
        resource=policy.name,
        permission="monitoring.alertPolicies.create",
    )
    assert created["protoPayload"]["request"]["alertPolicy"]["displayName"] == "canary denied"
    assert created["resource"]["type"] == "audited_resource"
    deleted = one(emu, "google.monitoring.v3.AlertPolicyService.DeleteAlertPolicy")
    assert deleted["protoPayload"]["resourceName"] == policy.name
    made = one(emu, "google.monitoring.v3.NotificationChannelService.CreateNotificationChannel")
    assert_entry(
        made,
        service="monitoring.googleapis.com",
        method="google.monitoring.v3.NotificationChannelService.CreateNotificationChannel",
        resource=channel.name,
        permission="monitoring.notificationChannels.create",
    )


# Pub/Sub and Dashboards ---------------------------------------------------------------------------------------


def test_topic_subscription_and_dashboard_changes_are_audited(start_emulator: Callable[[str], Emulator]) -> None:
    emu = start_emulator("deploy_ready")
    topic = f"projects/{PROJECT}/topics/gemini-canary"
    subscription = f"projects/{PROJECT}/subscriptions/gemini-canary-push"
    assert rest(emu, "PUT", f"/v1/{topic}", {})[0] == 200
    assert rest(emu, "PUT", f"/v1/{subscription}", {"topic": topic})[0] == 200
    status, dashboard = rest(emu, "POST", f"/v1/projects/{PROJECT}/dashboards", {"displayName": "canary"})
    assert status == 200, dashboard
    assert rest(emu, "DELETE", f"/v1/{topic}", email=STRANGER)[0] == 403
    assert_entry(
        topic_entry := one(emu, "google.pubsub.v1.Publisher.CreateTopic"),
        service="pubsub.googleapis.com",
        method="google.pubsub.v1.Publisher.CreateTopic",
        resource=topic,
        permission="pubsub.topics.create",
    )
    assert topic_entry["resource"] == {
        "type": "pubsub_topic",
        "labels": {"project_id": PROJECT, "topic_id": "gemini-canary"},
    }
    assert one(emu, "google.pubsub.v1.Subscriber.CreateSubscription")["resource"]["type"] == "pubsub_subscription"
    assert activity(emu, "google.pubsub.v1.Publisher.DeleteTopic") == []
    assert_entry(
        one(emu, "google.monitoring.dashboard.v1.DashboardsService.CreateDashboard"),
        service="monitoring.googleapis.com",
        method="google.monitoring.dashboard.v1.DashboardsService.CreateDashboard",
        resource=dashboard["name"],
        permission="monitoring.dashboards.create",
    )


# The real gcloud ------------------------------------------------------------------------------------------------


def test_an_account_gcloud_creates_is_audited_as_the_gcloud_user(
    start_emulator: Callable[[str], Emulator], tmp_path: Path
) -> None:
    binary = need("gcloud")
    emu = start_emulator("deploy_ready")
    env = emu.gcloud_env(tmp_path / "deployer", DEPLOYER)
    done = subprocess.run(
        [binary, "iam", "service-accounts", "create", "gemini-canary-invoker", f"--project={PROJECT}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    entry = one(emu, "google.iam.admin.v1.CreateServiceAccount")
    assert entry["protoPayload"]["authenticationInfo"]["principalEmail"] == DEPLOYER
    assert entry["resource"]["labels"]["email_id"] == f"gemini-canary-invoker@{PROJECT}.iam.gserviceaccount.com"
