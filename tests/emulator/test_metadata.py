"""The metadata server through google.auth's production path (conftest points GCE_METADATA_HOST/IP at it):
ADC yields the scenario's project and the workload's compute credentials, whose token Vertex accepts; the
Metadata-Flavor header is enforced; identity tokens carry the audience; token failures reach the client as
google.auth raises them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import google.auth
import grpc
import pytest
from google.api_core import exceptions
from google.auth import _exponential_backoff, compute_engine, jwt
from google.auth import exceptions as auth_exceptions
from google.auth.transport.requests import Request
from google.cloud import aiplatform_v1
from google.cloud.aiplatform_v1.services.prediction_service.transports import PredictionServiceGrpcTransport
from google.oauth2 import id_token

from devkit.emulated import admin
from tests.emulator.support import NUMBER, PROJECT, generate, model_name, raw_http
from tests.shared import WORKLOAD

SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]


class _NoSleep:
    """Stands in for `time` inside google.auth's backoff so its retries run instantly; records the waits."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture(autouse=True)
def _adc_from_metadata_only(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT", "GOOGLE_APPLICATION_CREDENTIALS", "CLOUDSDK_CORE_PROJECT"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> _NoSleep:
    """google.auth retries metadata 5xx and transport errors 5 times with 1-2-4-8 s waits; skip the waits."""
    clock = _NoSleep()
    monkeypatch.setattr(_exponential_backoff, "time", clock)
    return clock


def metadata_url(emu: Any, path: str) -> str:
    return f"http://{emu.metadata.address}/computeMetadata/v1/{path}"


def token_requests(emu: Any) -> int:
    return int(admin(emu, "GET", "calls")[1]["calls"].get("metadata.token", 0))


def adc(emu: Any) -> tuple[compute_engine.Credentials, str]:
    del emu  # google.auth finds the emulator's metadata server through the environment conftest set
    credentials, project = google.auth.default(scopes=SCOPES)
    assert isinstance(credentials, compute_engine.Credentials)
    return credentials, str(project)


@pytest.mark.parametrize(
    ("scenario", "project"),
    [pytest.param("healthy", PROJECT, id="healthy"), pytest.param("wrong_project", "demo-prj-typo", id="typo")],
)
def test_adc_is_the_workload_in_the_scenarios_project(
    start_emulator: Callable[[str], Any], scenario: str, project: str
) -> None:
    emu = start_emulator(scenario)
    credentials, found = adc(emu)
    assert found == project
    assert credentials.service_account_email == "default"  # until the first refresh
    credentials.refresh(Request())
    assert credentials.service_account_email == WORKLOAD
    assert str(credentials.token).startswith("ya29.")
    assert token_requests(emu) == 1


def test_the_metadata_token_is_accepted_by_vertex(emulator: Any) -> None:
    credentials, project = adc(emulator)
    transport = PredictionServiceGrpcTransport(
        host=emulator.grpc.address, credentials=credentials, ssl_channel_credentials=grpc.local_channel_credentials()
    )
    response = generate(aiplatform_v1.PredictionServiceClient(transport=transport), model_name(project))
    assert response.candidates
    assert credentials.service_account_email == WORKLOAD  # refreshed by the gRPC auth plugin


@pytest.mark.parametrize(
    ("path", "status", "body"),
    [
        pytest.param("project/project-id", 200, PROJECT, id="project-id"),
        pytest.param("project/numeric-project-id", 200, NUMBER, id="numeric-project-id"),
        pytest.param("instance/region", 200, f"projects/{NUMBER}/regions/us-central1", id="region"),
        pytest.param("instance/service-accounts/default/email", 200, WORKLOAD, id="default-email"),
        pytest.param(f"instance/service-accounts/{WORKLOAD}/email", 200, WORKLOAD, id="email-by-name"),
        pytest.param(
            "instance/service-accounts/default/identity",
            400,
            "non-empty audience parameter required",
            id="id-no-audience",
        ),
        pytest.param("instance/attributes/nope", 404, "Not Found", id="unknown-path"),
    ],
)
def test_metadata_paths(emulator: Any, path: str, status: int, body: str) -> None:
    assert raw_http(metadata_url(emulator, path), headers={"Metadata-Flavor": "Google"}) == (status, body)


@pytest.mark.parametrize(
    "headers",
    [pytest.param({}, id="no-header"), pytest.param({"Metadata-Flavor": "google"}, id="wrong-case-value")],
)
def test_requests_without_metadata_flavor_are_refused(emulator: Any, headers: dict[str, str]) -> None:
    status, body = raw_http(metadata_url(emulator, "project/project-id"), headers=headers)
    assert (status, body) == (
        403,
        "Your client does not have permission to get URL /computeMetadata/v1/project/project-id from this server. "
        "Missing Metadata-Flavor:Google header.",
    )


def test_identity_token_carries_the_audience_and_the_workload(emulator: Any) -> None:
    audience = "https://canary-abc123-uc.a.run.app"
    token = id_token.fetch_id_token(Request(), audience)
    claims = jwt.decode(token, verify=False)
    assert (claims["aud"], claims["email"], claims["iss"]) == (audience, WORKLOAD, "https://accounts.google.com")
    assert claims["email_verified"] is True
    assert claims["exp"] - claims["iat"] == 3600


def test_metadata_down_fails_the_refresh_client_side(
    start_emulator: Callable[[str], Any], no_backoff: _NoSleep
) -> None:
    emu = start_emulator("metadata_down")
    credentials, project = adc(emu)  # discovery and the project id still work: only the token path fails
    assert project == PROJECT
    with pytest.raises(auth_exceptions.RefreshError) as caught:
        credentials.refresh(Request())
    token_url = metadata_url(emu, "instance/service-accounts/default/token")
    assert str(caught.value) == (
        f"Failed to retrieve {token_url}?scopes=https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fcloud-platform from the "
        "Google Compute Engine metadata service. Compute Engine Metadata server unavailable. Response status: 500\n"
        "Response details:\nInternal error while fetching the access token"
    )
    assert token_requests(emu) == 5  # google.auth tried five times
    assert len(no_backoff.waits) == 4


def test_metadata_down_on_grpc_is_a_retryable_unavailable(
    start_emulator: Callable[[str], Any], no_backoff: _NoSleep
) -> None:
    """On gRPC the credential failure surfaces as 503 'Getting metadata from plugin failed'.

    Source: docs/google-behaviour.md.
    """
    emu = start_emulator("metadata_down")
    credentials, project = adc(emu)
    transport = PredictionServiceGrpcTransport(
        host=emu.grpc.address, credentials=credentials, ssl_channel_credentials=grpc.local_channel_credentials()
    )
    with pytest.raises(exceptions.ServiceUnavailable) as caught:
        generate(aiplatform_v1.PredictionServiceClient(transport=transport), model_name(project))
    assert caught.value.message.startswith("Getting metadata from plugin failed with error: ")
    assert "Compute Engine Metadata server unavailable" in caught.value.message
    assert (
        admin(emu, "GET", "calls")[1]["calls"].get("google.cloud.aiplatform.v1.PredictionService.GenerateContent")
        is None
    )


def _arm(emu: Any, **fault: Any) -> None:
    status, body = admin(emu, "POST", "faults", {"method": "metadata.token", **fault})
    assert status == 201, body


@pytest.mark.parametrize(
    ("fault", "refresh_ok", "requests"),
    [
        pytest.param({"http_status": 403, "http_body": "denied by test"}, False, 1, id="http_status-403-not-retried"),
        pytest.param({"http_status": 503, "count": 2}, True, 3, id="http_status-503-retried-then-ok"),
        pytest.param({"close": True}, True, 2, id="close-retried-then-ok"),
        pytest.param({"malformed": True}, False, 1, id="malformed-json"),
    ],
)
def test_token_faults_reach_google_auth(
    emulator: Any, no_backoff: _NoSleep, fault: dict[str, Any], refresh_ok: bool, requests: int
) -> None:
    credentials, _ = adc(emulator)
    _arm(emulator, **fault)
    if refresh_ok:
        credentials.refresh(Request())
        assert credentials.token
    else:
        with pytest.raises(auth_exceptions.RefreshError):
            credentials.refresh(Request())
    assert token_requests(emulator) == requests
    assert admin(emulator, "GET", "faults")[1] == {"faults": []}  # used up
    credentials.refresh(Request())  # and the server serves again
    assert credentials.token


def test_token_fault_http_status_body_reaches_the_error(emulator: Any) -> None:
    credentials, _ = adc(emulator)
    _arm(emulator, http_status=404, http_body="no such account")
    with pytest.raises(auth_exceptions.RefreshError) as caught:
        credentials.refresh(Request())
    assert "Status: 404" in str(caught.value)
    assert "no such account" in str(caught.value)


def test_token_hang_trips_the_client_timeout(emulator: Any) -> None:
    _arm(emulator, hang_seconds=20)  # far past the client's 0.3 s: no race between the two on a loaded runner
    url = metadata_url(emulator, "instance/service-accounts/default/token")
    with pytest.raises(auth_exceptions.TransportError):
        Request()(url=url, method="GET", headers={"Metadata-Flavor": "Google"}, timeout=0.3)
    response = Request()(url=url, method="GET", headers={"Metadata-Flavor": "Google"}, timeout=5)
    assert response.status == 200
