"""The REST-only APIs the deploy tool and gcloud use (Cloud Functions, Cloud Run, Cloud Scheduler, Service Usage,
IAM, Dashboards, Pub/Sub): each checks the caller's permission and the API's enablement as Google does, with the
API's own denial text, and keeps what it is given in the world."""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from devkit.emulated import admin, token_for
from emulator.server import Emulator
from emulator.services.functions import FunctionStore
from emulator.services.run import RunStore
from emulator.services.scheduler import SchedulerStore, next_run
from tests.emulator.support import DEPLOYER, NUMBER, OWNER, PROJECT, raw_http
from tests.shared import WORKLOAD

STRANGER = "stranger@example.com"  # holds no role anywhere
DEVELOPER = "dev@example.com"
LOC = f"projects/{PROJECT}/locations/us-central1"
URI = "https://gemini-canary-3pbqmqz6le-uc.a.run.app"


def rest(emu: Emulator, verb: str, path: str, body: Any = None, email: str = DEPLOYER) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {token_for(emu, email)}", "Content-Type": "application/json"}
    status, text = raw_http(f"{emu.rest_url}{path}", verb, data, headers)
    return status, json.loads(text) if text else None


def grant(emu: Emulator, member: str, *roles: str) -> None:
    bindings = {b.role: list(b.members) for b in emu.world.projects[PROJECT].policy.bindings}
    patch = {role: sorted({*bindings.get(role, []), member}) for role in roles}
    status, body = admin(emu, "PATCH", "world", {"projects": {PROJECT: {"bindings": patch}}})
    assert status == 200, body


def builder_ready(emu: Emulator) -> None:
    """The project's build account (the Compute Engine default) may build: a new project's may not."""
    number = emu.world.projects[PROJECT].number
    grant(emu, f"serviceAccount:{number}-compute@developer.gserviceaccount.com", "roles/cloudbuild.builds.builder")


def upload_source(emu: Emulator, email: str = DEPLOYER) -> dict[str, str]:
    """generateUploadUrl, then the PUT of a zip gcloud makes; the storageSource to deploy from."""
    status, answer = rest(emu, "POST", f"/v2/{LOC}/functions:generateUploadUrl", {}, email)
    assert status == 200, answer
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("main.py", "def canary(request):\n    return 'ok'\n")
        zf.writestr("requirements.txt", "functions-framework\n")
    status, _ = raw_http(answer["uploadUrl"], "PUT", archive.getvalue(), {"Content-Type": "application/zip"})
    assert status == 200
    return dict(answer["storageSource"])


def function_body(source: dict[str, str], account: str = WORKLOAD) -> dict[str, Any]:
    return {
        "buildConfig": {"runtime": "python311", "entryPoint": "canary", "source": {"storageSource": source}},
        "serviceConfig": {"serviceAccountEmail": account, "availableMemory": "256Mi", "timeoutSeconds": 60},
    }


# Permission denials, per API, with the API's own text ------------------------------------------------------------

DENIALS = [
    pytest.param(
        "GET",
        f"/v2/{LOC}/functions/gemini-canary",
        None,
        403,
        f"Permission 'cloudfunctions.functions.get' denied on resource '{LOC}/functions/gemini-canary' "
        "(or resource may not exist).",
        id="functions-get",
    ),
    pytest.param(
        "POST",
        f"/v2/{LOC}/functions?functionId=gemini-canary",
        {},
        403,
        f"Permission 'cloudfunctions.functions.create' denied on resource '{LOC}/functions/gemini-canary' "
        "(or resource may not exist).",
        id="functions-create",
    ),
    pytest.param(
        "GET",
        f"/v2/{LOC}/services/gemini-canary:getIamPolicy",
        None,
        403,
        f"Permission 'run.services.getIamPolicy' denied on resource '{LOC}/services/gemini-canary' "
        "(or resource may not exist).",
        id="run-getIamPolicy",
    ),
    pytest.param(
        "POST",
        f"/v1/{LOC}/services/gemini-canary:setIamPolicy",
        {"policy": {}},
        403,
        f"Permission 'run.services.setIamPolicy' denied on resource '{LOC}/services/gemini-canary' "
        "(or resource may not exist).",
        id="run-v1-setIamPolicy",
    ),
    pytest.param(
        "POST",
        f"/v1/{LOC}/jobs",
        {"name": f"{LOC}/jobs/x"},
        403,
        'The principal (user or service account) lacks IAM permission "cloudscheduler.jobs.create" for the '
        f'resource "{LOC}" (or the resource may not exist).',
        id="scheduler-create",
    ),
    pytest.param(
        "POST",
        f"/v1/projects/{PROJECT}/services/secretmanager.googleapis.com:enable",
        {},
        403,
        "Permission denied to enable service [secretmanager.googleapis.com]",
        id="serviceusage-enable",
    ),
    pytest.param(
        "POST",
        f"/v1/projects/{PROJECT}/serviceAccounts",
        {"accountId": "gemini-canary-invoker"},
        403,
        "Permission 'iam.serviceAccounts.create' denied on resource (or it may not exist).",
        id="iam-create-service-account",
    ),
    pytest.param(
        "POST",
        f"/v1/projects/{PROJECT}/dashboards",
        {"displayName": "x"},
        403,
        "Permission monitoring.dashboards.create denied (or the resource may not exist).",
        id="dashboards-create",
    ),
    pytest.param(
        "PUT",
        f"/v1/projects/{PROJECT}/topics/gemini-canary",
        {},
        403,
        "User not authorized to perform this action.",
        id="pubsub-create",
    ),
]


@pytest.mark.parametrize(("verb", "path", "body", "status", "message"), DENIALS)
def test_a_caller_without_the_permission_is_denied(
    start_emulator: Callable[[str], Emulator], verb: str, path: str, body: Any, status: int, message: str
) -> None:
    emu = start_emulator("deploy_ready")
    code, answer = rest(emu, verb, path, body, STRANGER)
    assert (code, answer["error"]["status"], answer["error"]["message"]) == (status, "PERMISSION_DENIED", message)


def test_service_usage_denial_carries_its_details(start_emulator: Callable[[str], Emulator]) -> None:
    emu = start_emulator("deploy_ready")
    _, answer = rest(emu, "POST", f"/v1/projects/{PROJECT}/services/pubsub.googleapis.com:disable", {}, STRANGER)
    assert answer["error"]["details"] == [
        {
            "@type": "type.googleapis.com/google.rpc.PreconditionFailure",
            "violations": [{"type": "googleapis.com", "subject": "110002"}],
        },
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "AUTH_PERMISSION_DENIED",
            "domain": "serviceusage.googleapis.com",
        },
    ]


def test_a_disabled_api_is_service_disabled(emulator: Emulator) -> None:
    """healthy has no Pub/Sub API: even the owner gets SERVICE_DISABLED."""
    status, answer = rest(emulator, "GET", f"/v1/projects/{PROJECT}/topics/gemini-canary", email=OWNER)
    assert status == 403
    assert answer["error"]["message"].startswith(
        f"Cloud Pub/Sub API has not been used in project {NUMBER} before or it is disabled."
    )
    assert answer["error"]["details"][0]["reason"] == "SERVICE_DISABLED"


def test_deploying_as_an_account_one_may_not_act_as_is_denied(start_emulator: Callable[[str], Emulator]) -> None:
    emu = start_emulator("deploy_ready")
    grant(emu, f"user:{DEVELOPER}", "roles/cloudfunctions.developer")  # no roles/iam.serviceAccountUser
    source = upload_source(emu, DEVELOPER)
    status, answer = rest(
        emu, "POST", f"/v2/{LOC}/functions?functionId=gemini-canary", function_body(source), DEVELOPER
    )
    assert status == 403
    assert answer["error"]["message"] == (
        "Could not create Cloud Run service gemini-canary. Permission 'iam.serviceaccounts.actAs' denied on "
        f"service account {WORKLOAD} (or it may not exist)."
    )
    assert emu.world.projects[PROJECT].store(FunctionStore).functions == {}


def test_a_scheduler_oidc_token_needs_act_as(start_emulator: Callable[[str], Emulator]) -> None:
    emu = start_emulator("deploy_ready")
    grant(emu, f"user:{DEVELOPER}", "roles/cloudscheduler.admin")
    status, answer = rest(emu, "POST", f"/v1/{LOC}/jobs", _job(), DEVELOPER)
    assert status == 403
    assert answer["error"]["message"] == (
        'The principal (user or service account) lacks IAM permission "iam.serviceAccounts.actAs" for the '
        f'resource "{WORKLOAD}" (or the resource may not exist).'
    )


# Cloud Functions and Cloud Run --------------------------------------------------------------------------------


def test_a_deployed_function_keeps_its_source_summary_and_runs_as_its_account(
    start_emulator: Callable[[str], Emulator],
) -> None:
    emu = start_emulator("deploy_ready")
    builder_ready(emu)
    source = upload_source(emu)
    status, operation = rest(emu, "POST", f"/v2/{LOC}/functions?functionId=gemini-canary", function_body(source))
    assert status == 200, operation
    assert operation["done"] is True
    assert operation["response"]["@type"] == "type.googleapis.com/google.cloud.functions.v2.Function"
    assert rest(emu, "GET", f"/v2/{operation['name']}")[1] == operation
    project = emu.world.projects[PROJECT]
    record = project.store(FunctionStore).functions[f"{LOC}/functions/gemini-canary"]
    assert record.source_files == ["main.py", "requirements.txt"]
    assert record.source_size > 0
    service_config = record.resource["serviceConfig"]
    assert service_config["serviceAccountEmail"] == WORKLOAD
    assert re.fullmatch(r"https://gemini-canary-[a-z0-9]{10}-uc\.a\.run\.app", service_config["uri"])
    run_service = project.store(RunStore).run_services[f"{LOC}/services/gemini-canary"]
    assert run_service.policy.bindings == []  # no public invoker, nor any other
    status, service = rest(emu, "GET", f"/v2/{LOC}/services/gemini-canary")
    assert (status, service["uri"], service["template"]["serviceAccount"]) == (200, service_config["uri"], WORKLOAD)


def test_a_function_from_an_unsigned_or_missing_upload_is_refused(start_emulator: Callable[[str], Emulator]) -> None:
    emu = start_emulator("deploy_ready")
    status, answer = rest(emu, "POST", f"/v2/{LOC}/functions:generateUploadUrl", {})
    forged = answer["uploadUrl"].rsplit("Signature=", 1)[0] + "Signature=forged"
    assert raw_http(forged, "PUT", b"PK", {})[0] == 403
    status, answer = rest(
        emu, "POST", f"/v2/{LOC}/functions?functionId=gemini-canary", function_body(answer["storageSource"])
    )
    assert status == 400
    assert "upload a zip to the URL generateUploadUrl returned first" in answer["error"]["message"]


def test_unknown_field_in_a_json_api_body_is_refused(start_emulator: Callable[[str], Emulator]) -> None:
    emu = start_emulator("deploy_ready")
    body = {"buildConfig": {"runtime": "python311", "sourceDir": "x"}}
    status, answer = rest(emu, "POST", f"/v2/{LOC}/functions?functionId=gemini-canary", body)
    assert (status, answer["error"]["message"]) == (
        400,
        "Invalid JSON payload received. Unknown name \"sourceDir\" at 'function.build_config': Cannot find field.",
    )


def test_run_invoker_binding_round_trip(start_emulator: Callable[[str], Emulator]) -> None:
    emu = start_emulator("deploy_ready")
    builder_ready(emu)
    rest(emu, "POST", f"/v2/{LOC}/functions?functionId=gemini-canary", function_body(upload_source(emu)))
    resource = f"/v1/{LOC}/services/gemini-canary"
    status, policy = rest(emu, "GET", f"{resource}:getIamPolicy")
    binding = {"role": "roles/run.invoker", "members": [f"serviceAccount:{WORKLOAD}"]}
    status, updated = rest(emu, "POST", f"{resource}:setIamPolicy", {"policy": {**policy, "bindings": [binding]}})
    assert (status, updated["bindings"]) == (200, [binding])
    status, stale = rest(emu, "POST", f"{resource}:setIamPolicy", {"policy": {**policy, "bindings": []}})
    assert (status, stale["error"]["status"]) == (409, "ABORTED")  # the etag read first is no longer current


# Cloud Scheduler ------------------------------------------------------------------------------------------------


def _job(**changes: Any) -> dict[str, Any]:
    job: dict[str, Any] = {
        "name": f"{LOC}/jobs/gemini-canary",
        "schedule": "*/5 * * * *",
        "timeZone": "Etc/UTC",
        "attemptDeadline": "90s",
        "retryConfig": {"retryCount": 0},
        "httpTarget": {
            "uri": URI,
            "httpMethod": "POST",
            "body": "e30=",
            "headers": {"Content-Type": "application/json"},
            "oidcToken": {"serviceAccountEmail": WORKLOAD, "audience": URI},
        },
    }
    job.update(changes)
    return job


def test_a_job_is_stored_with_what_google_adds(start_emulator: Callable[[str], Emulator]) -> None:
    emu = start_emulator("deploy_ready")
    status, job = rest(emu, "POST", f"/v1/{LOC}/jobs", _job())
    assert status == 200, job
    assert job["state"] == "ENABLED"
    assert job["scheduleTime"] == "2026-11-26T09:05:00Z"
    assert job["httpTarget"]["headers"] == {"Content-Type": "application/json", "User-Agent": "Google-Cloud-Scheduler"}
    assert job["retryConfig"] == {
        "maxRetryDuration": "0s",
        "minBackoffDuration": "5s",
        "maxBackoffDuration": "3600s",
        "maxDoublings": 5,
    }
    assert emu.world.projects[PROJECT].store(SchedulerStore).scheduler_jobs[f"{LOC}/jobs/gemini-canary"] == job
    assert rest(emu, "POST", f"/v1/{LOC}/jobs", _job())[0] == 409


INVALID_JOBS = [
    pytest.param({"schedule": "every 5 minutes"}, "Schedule or time zone is invalid.", id="english-schedule"),
    pytest.param({"schedule": "61 * * * *"}, "Schedule or time zone is invalid.", id="minute-out-of-range"),
    pytest.param({"timeZone": "Mars/Olympus"}, "Schedule or time zone is invalid.", id="unknown-time-zone"),
    pytest.param({"attemptDeadline": "10s"}, "between 15s and 30m", id="deadline-too-short"),
    pytest.param({"retryConfig": {"retryCount": 6}}, "retry_count must be between 0 and 5", id="too-many-retries"),
    pytest.param(
        {"pubsubTarget": {"topicName": f"projects/{PROJECT}/topics/t"}}, "exactly one target", id="two-targets"
    ),
    pytest.param(
        {"httpTarget": {"uri": URI, "httpMethod": "GET", "body": "e30="}},
        "only with the POST, PUT and PATCH methods",
        id="body-with-get",
    ),
    pytest.param({"httpTarget": {"uri": "ftp://x"}}, "absolute http or https URL", id="not-http"),
    pytest.param(
        {
            "httpTarget": {
                "uri": URI,
                "oidcToken": {"serviceAccountEmail": WORKLOAD},
                "oauthToken": {"serviceAccountEmail": WORKLOAD},
            }
        },
        "only one of oidc_token and oauth_token",
        id="oidc-and-oauth",
    ),
    pytest.param(
        {"httpTarget": {"uri": URI, "oidcToken": {"serviceAccountEmail": "x@other-proj.iam.gserviceaccount.com"}}},
        "must exist in the job's project",
        id="oidc-account-elsewhere",
    ),
]


@pytest.mark.parametrize(("changes", "text"), INVALID_JOBS)
def test_an_invalid_job_is_refused(
    start_emulator: Callable[[str], Emulator], changes: dict[str, Any], text: str
) -> None:
    emu = start_emulator("deploy_ready")
    status, answer = rest(emu, "POST", f"/v1/{LOC}/jobs", _job(**changes))
    assert (status, answer["error"]["status"]) == (400, "INVALID_ARGUMENT")
    assert text in answer["error"]["message"]


@pytest.mark.parametrize(
    ("schedule", "zone", "expected"),
    [
        pytest.param("*/5 * * * *", "Etc/UTC", "2026-11-26T09:05:00+00:00", id="every-5-min"),
        pytest.param("0 9 * * *", "Europe/Paris", "2026-11-27T08:00:00+00:00", id="daily-in-paris"),
        pytest.param("30 8 1 JAN *", "Etc/UTC", "2027-01-01T08:30:00+00:00", id="month-name"),
        pytest.param("0 0 * * SUN", "Etc/UTC", "2026-11-29T00:00:00+00:00", id="weekday-name"),
        pytest.param("0 0 1 * 1", "Etc/UTC", "2026-11-30T00:00:00+00:00", id="dom-or-dow"),
    ],
)
def test_next_run_follows_unix_cron(schedule: str, zone: str, expected: str) -> None:
    after = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)  # a Thursday
    assert next_run(schedule, zone, after).astimezone(UTC).isoformat() == expected


# Service Usage, IAM, Dashboards, Pub/Sub -------------------------------------------------------------------------


def test_enabling_a_service_is_audited_as_the_caller(start_emulator: Callable[[str], Emulator]) -> None:
    emu = start_emulator("deploy_ready")
    status, operation = rest(emu, "POST", f"/v1/projects/{PROJECT}/services/secretmanager.googleapis.com:enable", {})
    assert (status, operation["done"], operation["response"]["service"]["state"]) == (200, True, "ENABLED")
    assert "secretmanager.googleapis.com" in emu.world.projects[PROJECT].services
    [entry] = [r.entry for r in emu.world.logs if "EnableService" in r.entry["protoPayload"]["methodName"]]
    assert entry["protoPayload"]["authenticationInfo"]["principalEmail"] == DEPLOYER
    assert rest(emu, "GET", f"/v1/{operation['name']}")[1] == operation
    status, listed = rest(emu, "GET", f"/v1/projects/{PROJECT}/services?filter=state:ENABLED")
    assert "secretmanager.googleapis.com" in [s["config"]["name"] for s in listed["services"]]


def test_service_account_lifecycle(start_emulator: Callable[[str], Emulator]) -> None:
    emu = start_emulator("deploy_ready")
    email = f"gemini-canary-invoker@{PROJECT}.iam.gserviceaccount.com"
    body = {"accountId": "gemini-canary-invoker", "serviceAccount": {"displayName": "invoker"}}
    status, account = rest(emu, "POST", f"/v1/projects/{PROJECT}/serviceAccounts", body)
    assert (status, account["email"]) == (200, email)
    assert rest(emu, "POST", f"/v1/projects/{PROJECT}/serviceAccounts", body)[1]["error"]["message"] == (
        f"Service account gemini-canary-invoker already exists within project projects/{PROJECT}."
    )
    patch = {"serviceAccount": {"description": "managed"}, "updateMask": "description"}
    assert rest(emu, "PATCH", f"/v1/projects/{PROJECT}/serviceAccounts/{email}", patch)[1]["description"] == "managed"
    assert rest(emu, "DELETE", f"/v1/projects/-/serviceAccounts/{email}") == (200, {})
    status, gone = rest(emu, "GET", f"/v1/projects/-/serviceAccounts/{email}")
    assert (status, gone["error"]["message"]) == (404, "Unknown service account")


def test_dashboard_and_topic_round_trip(start_emulator: Callable[[str], Emulator]) -> None:
    emu = start_emulator("deploy_ready")
    status, dashboard = rest(emu, "POST", f"/v1/projects/{PROJECT}/dashboards", {"displayName": "canary"})
    assert (status, dashboard["name"].startswith(f"projects/{NUMBER}/dashboards/")) == (200, True)
    stale = {**dashboard, "etag": "0" * 32}
    assert rest(emu, "PATCH", f"/v1/{dashboard['name']}", stale)[0] == 409
    status, topic = rest(emu, "PUT", f"/v1/projects/{PROJECT}/topics/gemini-canary", {"labels": {"a": "b"}})
    assert (status, topic["name"]) == (200, f"projects/{PROJECT}/topics/gemini-canary")
    status, again = rest(emu, "PUT", f"/v1/projects/{PROJECT}/topics/gemini-canary", {})
    assert (status, again["error"]["message"]) == (
        409,
        "Resource already exists in the project (resource=gemini-canary).",
    )
