"""Service Usage, IAM service accounts, Dashboards and Pub/Sub over REST: enabling is audited as the caller, an
account's lifecycle, dashboards and topics round-trip."""

from __future__ import annotations

from collections.abc import Callable

from emulator.server import Emulator
from tests.emulator.rest_support import (
    rest,
)
from tests.emulator.support import DEPLOYER, NUMBER, PROJECT

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
