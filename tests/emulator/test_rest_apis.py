"""What every REST-only API checks, as Google does: the caller's permission with the API's own denial text, the
API being enabled, and actAs on the accounts a deployment runs as."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from emulator.server import Emulator
from emulator.services.functions import FunctionStore
from tests.emulator.rest_support import (
    DEVELOPER,
    LOC,
    STRANGER,
    function_body,
    grant,
    rest,
    scheduler_job,
    upload_source,
)
from tests.emulator.support import NUMBER, OWNER, PROJECT
from tests.shared import WORKLOAD

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
    status, answer = rest(emu, "POST", f"/v1/{LOC}/jobs", scheduler_job(), DEVELOPER)
    assert status == 403
    assert answer["error"]["message"] == (
        'The principal (user or service account) lacks IAM permission "iam.serviceAccounts.actAs" for the '
        f'resource "{WORKLOAD}" (or the resource may not exist).'
    )
