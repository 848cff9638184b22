"""The IAM Service Account Credentials API over real HTTP (generateAccessToken, generateIdToken: who may, in what
order, with what errors) and the published ID-token keys, verified with google.oauth2.id_token exactly as a
client verifies Google's."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
import requests
from google.auth import exceptions as auth_exceptions
from google.auth import iam, impersonated_credentials
from google.auth.transport.requests import Request
from google.oauth2 import id_token
from google.oauth2.credentials import Credentials

from devkit.emulated import token_for
from emulator.server import Emulator
from emulator.services.iamcredentials import API
from tests.emulator.rest_support import DEVELOPER, STRANGER, grant, grant_on_account, rest
from tests.emulator.support import DEPLOYER, NUMBER, OWNER, PROJECT, raw_http
from tests.shared import WORKLOAD

AUDIENCE = "https://gemini-canary-3pbqmqz6le-uc.a.run.app"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
SA = f"/v1/projects/-/serviceAccounts/{WORKLOAD}"


def _enable(emu: Emulator) -> None:
    with emu.world.lock:
        emu.world.projects[PROJECT].services.add(API)


@pytest.fixture
def emu(start_emulator: Any) -> Emulator:
    started: Emulator = start_emulator("deploy_ready")
    _enable(started)
    return started


def _denied(permission: str) -> dict[str, Any]:
    return {
        "error": {
            "code": 403,
            "message": f"Permission '{permission}' denied on resource (or it may not exist).",
            "status": "PERMISSION_DENIED",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "IAM_PERMISSION_DENIED",
                    "domain": "iam.googleapis.com",
                    "metadata": {"permission": permission},
                }
            ],
        }
    }


def test_a_token_creator_on_the_account_gets_an_access_token_the_emulator_accepts(emu: Emulator) -> None:
    grant_on_account(emu, f"user:{DEVELOPER}", "roles/iam.serviceAccountTokenCreator")
    status, answer = rest(emu, "POST", f"{SA}:generateAccessToken", {"scope": SCOPES, "lifetime": "600s"}, DEVELOPER)
    assert status == 200, answer
    assert set(answer) == {"accessToken", "expireTime"}
    # Whole seconds, the form google-auth parses; the emulator's virtual clock starts at 09:00:00.
    assert answer["expireTime"] == "2026-11-26T09:10:00Z"
    assert emu.world.token_state(answer["accessToken"]) == ("ok", WORKLOAD)
    # The token acts as the workload on a real API: the workload may not list service accounts.
    headers = {"Authorization": f"Bearer {answer['accessToken']}"}
    status, body = raw_http(f"{emu.rest_url}/v1/projects/{PROJECT}/serviceAccounts", "GET", None, headers)
    assert (status, '"iam.serviceAccounts.list"' in body) == (403, True)


def test_the_default_lifetime_is_an_hour(emu: Emulator) -> None:
    grant(emu, f"user:{DEVELOPER}", "roles/iam.serviceAccountTokenCreator")  # on the project: every account in it
    status, answer = rest(emu, "POST", f"{SA}:generateAccessToken", {"scope": SCOPES}, DEVELOPER)
    assert (status, answer["expireTime"]) == (200, "2026-11-26T10:00:00Z")


def test_a_caller_without_the_role_is_denied_naming_the_permission(emu: Emulator) -> None:
    # serviceAccountUser (actAs) is not enough to mint tokens.
    assert rest(emu, "POST", f"{SA}:generateAccessToken", {"scope": SCOPES}) == (
        403,
        _denied("iam.serviceAccounts.getAccessToken"),
    )
    assert rest(emu, "POST", f"{SA}:generateIdToken", {"audience": AUDIENCE}, STRANGER) == (
        403,
        _denied("iam.serviceAccounts.getOpenIdToken"),
    )


def test_the_openid_token_creator_gets_id_tokens_only(emu: Emulator) -> None:
    grant_on_account(emu, f"user:{DEVELOPER}", "roles/iam.serviceAccountOpenIdTokenCreator")
    status, answer = rest(emu, "POST", f"{SA}:generateIdToken", {"audience": AUDIENCE, "includeEmail": True}, DEVELOPER)
    assert status == 200, answer
    claims = emu.world.signer.verify(answer["token"], {AUDIENCE})
    assert (claims["email"], claims["email_verified"], claims["aud"]) == (WORKLOAD, True, AUDIENCE)
    status, _ = rest(emu, "POST", f"{SA}:generateAccessToken", {"scope": SCOPES}, DEVELOPER)
    assert status == 403


def test_without_include_email_the_id_token_has_no_email(emu: Emulator) -> None:
    grant_on_account(emu, f"user:{DEVELOPER}", "roles/iam.serviceAccountTokenCreator")
    status, answer = rest(emu, "POST", f"{SA}:generateIdToken", {"audience": AUDIENCE}, DEVELOPER)
    assert status == 200, answer
    claims = emu.world.signer.verify(answer["token"], {AUDIENCE})
    assert "email" not in claims
    assert claims["sub"] == claims["azp"]


def test_an_unknown_account_is_404_whoever_asks(emu: Emulator) -> None:
    nobody = f"nobody@{PROJECT}.iam.gserviceaccount.com"
    expected = {
        "error": {"code": 404, "message": f"Not found; Gaia id not found for email {nobody}", "status": "NOT_FOUND"}
    }
    for caller in (OWNER, STRANGER):
        path = f"/v1/projects/-/serviceAccounts/{nobody}:generateIdToken"
        assert rest(emu, "POST", path, {"audience": AUDIENCE}, caller) == (404, expected)


def test_the_api_must_be_enabled_in_the_accounts_project(start_emulator: Any) -> None:
    emu = start_emulator("deploy_ready")
    status, answer = rest(emu, "POST", f"{SA}:generateAccessToken", {"scope": SCOPES}, OWNER)
    assert status == 403
    reason = answer["error"]["details"][0]
    assert (reason["reason"], reason["metadata"]["service"]) == ("SERVICE_DISABLED", API)
    assert answer["error"]["message"].startswith(
        f"IAM Service Account Credentials API has not been used in project {NUMBER} before or it is disabled."
    )


def test_credentials_come_first(emu: Emulator) -> None:
    status, body = raw_http(f"{emu.rest_url}{SA}:generateAccessToken", "POST", b"{}", {})
    assert status == 401
    assert '"CREDENTIALS_MISSING"' in body


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        pytest.param(
            f"/v1/projects/{PROJECT}/serviceAccounts/{WORKLOAD}:generateAccessToken",
            {"scope": SCOPES},
            f"Invalid value for name: 'projects/{PROJECT}/serviceAccounts/{WORKLOAD}'. Expected "
            "projects/-/serviceAccounts/ACCOUNT_EMAIL_OR_UNIQUEID (the '-' wildcard is required).",
            id="project-instead-of-wildcard",
        ),
        pytest.param(f"{SA}:generateAccessToken", {}, "scope: at least one OAuth scope is required.", id="no-scope"),
        pytest.param(
            f"{SA}:generateAccessToken",
            {"scope": SCOPES, "lifetime": "3601s"},
            "lifetime: 3601s is out of range; it must be at least 1s and at most 3600s.",
            id="lifetime-too-long",
        ),
        pytest.param(
            f"{SA}:generateAccessToken",
            {"scope": SCOPES, "lifetime": "0s"},
            "lifetime: 0s is out of range; it must be at least 1s and at most 3600s.",
            id="lifetime-zero",
        ),
        pytest.param(
            f"{SA}:generateAccessToken",
            {"scope": SCOPES, "lifetime": "an hour"},
            "Invalid value at 'lifetime' (type.googleapis.com/google.protobuf.Duration), \"an hour\"",
            id="lifetime-not-a-duration",
        ),
        pytest.param(f"{SA}:generateIdToken", {}, "audience: an audience is required.", id="no-audience"),
        pytest.param(f"{SA}:generateIdToken", {"audience": "  "}, "audience: an audience is required.", id="blank"),
        pytest.param(
            f"{SA}:generateIdToken",
            {"audience": AUDIENCE, "delegates": [WORKLOAD]},
            f"Invalid value for delegates[0]: '{WORKLOAD}'. Expected "
            "projects/-/serviceAccounts/ACCOUNT_EMAIL_OR_UNIQUEID (the '-' wildcard is required).",
            id="delegate-not-a-name",
        ),
    ],
)
def test_bad_arguments_are_400_and_mint_nothing(emu: Emulator, path: str, body: Any, message: str) -> None:
    before = len(emu.world.tokens)
    status, answer = rest(emu, "POST", path, body, OWNER)
    assert (status, answer["error"]["status"], answer["error"]["message"]) == (400, "INVALID_ARGUMENT", message)
    assert len(emu.world.tokens) == before + 1  # only the caller's own token, from `rest`


def test_an_unknown_field_is_refused_with_googles_text(emu: Emulator) -> None:
    status, answer = rest(emu, "POST", f"{SA}:generateIdToken", {"audience": AUDIENCE, "aud": "x"}, OWNER)
    assert status == 400
    assert answer["error"]["message"] == 'Invalid JSON payload received. Unknown name "aud": Cannot find field.'


def test_delegation_needs_implicit_delegation_on_each_hop(emu: Emulator) -> None:
    """DEVELOPER → deployer → workload: DEVELOPER needs implicitDelegation on the deployer; the deployer (the last
    delegate) needs getOpenIdToken on the workload."""
    body = {"audience": AUDIENCE, "delegates": [f"projects/-/serviceAccounts/{DEPLOYER}"]}
    assert rest(emu, "POST", f"{SA}:generateIdToken", body, DEVELOPER) == (
        403,
        _denied("iam.serviceAccounts.implicitDelegation"),
    )
    grant_on_account(emu, f"user:{DEVELOPER}", "roles/iam.serviceAccountTokenCreator", DEPLOYER)
    assert rest(emu, "POST", f"{SA}:generateIdToken", body, DEVELOPER) == (
        403,
        _denied("iam.serviceAccounts.getOpenIdToken"),
    )
    grant_on_account(emu, f"serviceAccount:{DEPLOYER}", "roles/iam.serviceAccountOpenIdTokenCreator")
    status, answer = rest(emu, "POST", f"{SA}:generateIdToken", body, DEVELOPER)
    assert status == 200, answer
    assert emu.world.signer.verify(answer["token"], {AUDIENCE})["sub"]


def test_the_account_by_unique_id(emu: Emulator) -> None:
    status, account = rest(emu, "GET", f"/v1/projects/{PROJECT}/serviceAccounts/{WORKLOAD}")
    assert status == 200, account
    status, answer = rest(
        emu,
        "POST",
        f"/v1/projects/-/serviceAccounts/{account['uniqueId']}:generateAccessToken",
        {"scope": SCOPES},
        OWNER,
    )
    assert status == 200, answer
    assert emu.world.token_state(answer["accessToken"]) == ("ok", WORKLOAD)


# Published keys ---------------------------------------------------------------------------------------------


def test_the_certs_documents_publish_the_signers_key(emu: Emulator) -> None:
    v1 = requests.get(f"{emu.rest_url}/oauth2/v1/certs", timeout=10)
    v3 = requests.get(f"{emu.rest_url}/oauth2/v3/certs", timeout=10)
    assert (v1.status_code, v3.status_code) == (200, 200)
    assert v1.json() == emu.world.signer.certs()
    assert next(iter(v1.json().values())).startswith("-----BEGIN CERTIFICATE-----")
    assert [k["kid"] for k in v3.json()["keys"]] == list(v1.json())
    assert v1.headers["Content-Type"].startswith("application/json")


def test_google_auth_verifies_metadata_and_generated_id_tokens_against_the_published_certs(emu: Emulator) -> None:
    certs_url = f"{emu.rest_url}/oauth2/v1/certs"
    status, from_metadata = raw_http(
        f"http://{emu.metadata.address}/computeMetadata/v1/instance/service-accounts/default/identity"
        f"?audience={AUDIENCE}&format=full",
        headers={"Metadata-Flavor": "Google"},
    )
    assert status == 200, from_metadata
    status, answer = rest(emu, "POST", f"{SA}:generateIdToken", {"audience": AUDIENCE, "includeEmail": True}, OWNER)
    assert status == 200, answer
    for token in (from_metadata, answer["token"]):
        claims = id_token.verify_token(token, Request(), AUDIENCE, certs_url=certs_url)
        assert (claims["email"], claims["aud"]) == (WORKLOAD, AUDIENCE)
        with pytest.raises(ValueError, match="Token has wrong audience"):
            id_token.verify_token(token, Request(), "https://elsewhere.example.com", certs_url=certs_url)


def test_google_auth_impersonated_credentials_against_the_emulator(emu: Emulator, monkeypatch: Any) -> None:
    """google-auth's impersonated credentials (what gcloud uses) with its IAM endpoint pointed at the emulator."""
    base = "https://iamcredentials.googleapis.com/"
    monkeypatch.setattr(iam, "_IAM_ENDPOINT", iam._IAM_ENDPOINT.replace(base, f"{emu.rest_url}/"))
    monkeypatch.setattr(iam, "_IAM_IDTOKEN_ENDPOINT", iam._IAM_IDTOKEN_ENDPOINT.replace(base, f"{emu.rest_url}/"))
    source = Credentials(token=token_for(emu, DEVELOPER))
    target = impersonated_credentials.Credentials(source, WORKLOAD, SCOPES, lifetime=300)
    with pytest.raises(auth_exceptions.RefreshError) as caught:
        target.refresh(Request())
    assert "iam.serviceAccounts.getAccessToken" in str(caught.value)
    grant_on_account(emu, f"user:{DEVELOPER}", "roles/iam.serviceAccountTokenCreator")
    target.refresh(Request())
    assert emu.world.token_state(str(target.token)) == ("ok", WORKLOAD)
    assert isinstance(target.expiry, datetime)
    minted = impersonated_credentials.IDTokenCredentials(target, target_audience=AUDIENCE, include_email=True)
    minted.refresh(Request())
    claims = id_token.verify_token(str(minted.token), Request(), AUDIENCE, certs_url=f"{emu.rest_url}/oauth2/v1/certs")
    assert claims["email"] == WORKLOAD
