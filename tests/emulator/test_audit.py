"""Cloud Audit Logs through the real logging_v2 GAPIC client: a denied Gemini call is in data_access only when
DATA_READ is on and only after the ingestion lag; VPC-SC denials are in the policy log under the error's unique
id; private logs need roles/logging.privateLogViewer; ListLogEntries validates and pages like Google's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import aiplatform_v1
from google.protobuf import json_format

from devkit.emulated import admin, clients, token_for
from tests.emulator.support import (
    DEPLOYER,
    GENERATE,
    OWNER,
    PROJECT,
    advance,
    audit_of,
    call_v1beta1,
    generate,
    list_entries,
    model_name,
    prompt,
    since,
)
from tests.shared import WORKLOAD

LOG = f"projects/{PROJECT}/logs/cloudaudit.googleapis.com%2F"
VERTEX = "aiplatform.googleapis.com"
INFO, ERROR = 200, 500  # google.logging.type.LogSeverity (proto-plus hands the field back as an int)


def denied_filter(emu: Any, email: str) -> str:
    """What an operator writes, plus the time bound google-cloud-logging appends."""
    return (
        f'protoPayload.status.code=7 AND protoPayload.authenticationInfo.principalEmail="{email}" '
        f'AND protoPayload.serviceName="{VERTEX}" AND timestamp>="{since(emu)}"'
    )


@pytest.mark.parametrize(
    ("scenario", "email", "logged"),
    [
        pytest.param("iam_denied", WORKLOAD, True, id="iam_denied-DATA_READ-on"),
        pytest.param("data_access_on", DEPLOYER, True, id="data_access_on-no-grant"),
        pytest.param("data_access_off", DEPLOYER, False, id="data_access_off-never-logged"),
        pytest.param("healthy", DEPLOYER, False, id="healthy-default-off-never-logged"),
    ],
)
def test_denied_call_is_in_data_access_only_when_data_read_is_on(
    start_emulator: Callable[[str], Any], scenario: str, email: str, logged: bool
) -> None:
    emu = start_emulator(scenario)
    with pytest.raises(exceptions.PermissionDenied):
        generate(clients(emu, email=email).prediction)
    reader = clients(emu, email=OWNER).logging
    query = denied_filter(emu, email)
    assert list_entries(reader, query) == []  # not yet ingested
    advance(emu, 2)
    assert list_entries(reader, query) == []  # the scenario's lag is 3 s
    advance(emu, 1)
    found = list_entries(reader, query)
    if not logged:
        advance(emu, 600)
        assert list_entries(reader, query) == []
        return
    (entry,) = found
    assert entry.log_name == LOG + "data_access"
    assert entry.resource.type == "audited_resource"
    assert dict(entry.resource.labels) == {"service": VERTEX, "method": GENERATE, "project_id": PROJECT}
    audit = audit_of(entry)
    assert (audit.service_name, audit.method_name, audit.resource_name) == (VERTEX, GENERATE, model_name())
    assert audit.authentication_info.principal_email == email
    assert audit.status.code == 7
    assert audit.status.message.startswith("Permission 'aiplatform.endpoints.predict' denied on resource")
    (authz,) = audit.authorization_info
    assert (authz.permission, authz.granted, authz.resource) == ("aiplatform.endpoints.predict", False, model_name())


def test_denied_user_is_redacted_but_found_by_status(start_emulator: Callable[[str], Any]) -> None:
    """Google may redact the caller of a denied read unless it is a service account; the emulator always does."""
    emu = start_emulator("data_access_on")
    with pytest.raises(exceptions.PermissionDenied):
        generate(clients(emu, email="bob@example.com").prediction)
    advance(emu, 3)
    reader = clients(emu, email=OWNER).logging
    assert list_entries(reader, denied_filter(emu, "bob@example.com")) == []
    (entry,) = list_entries(reader, f'protoPayload.status.code=7 AND timestamp>="{since(emu)}"')
    assert audit_of(entry).authentication_info.principal_email == ""


def test_allowed_call_is_logged_granted_with_the_method_version(start_emulator: Callable[[str], Any]) -> None:
    emu = start_emulator("data_access_on")
    generate(clients(emu).prediction)
    request = aiplatform_v1.GenerateContentRequest(model=model_name(), contents=prompt())
    call_v1beta1(emu, "GenerateContent", request, aiplatform_v1.GenerateContentResponse, token_for(emu, WORKLOAD))
    advance(emu, 3)
    entries = list_entries(
        clients(emu).logging, f'LOG_ID("cloudaudit.googleapis.com/data_access") AND timestamp>="{since(emu)}"'
    )
    methods = sorted(audit_of(e).method_name for e in entries)
    assert methods == [GENERATE, "google.cloud.aiplatform.v1beta1.PredictionService.GenerateContent"]
    for entry in entries:
        audit = audit_of(entry)
        assert entry.severity == INFO
        assert audit.authorization_info[0].granted is True
        assert audit.status.code == 0
        assert audit.authentication_info.principal_email == WORKLOAD


def test_vpc_sc_denial_is_in_the_policy_log_under_its_unique_id(start_emulator: Callable[[str], Any]) -> None:
    emu = start_emulator("vpc_sc")  # Data Access is off: policy logs are written regardless
    with pytest.raises(exceptions.PermissionDenied) as caught:
        generate(clients(emu).prediction)
    uid = dict(caught.value.metadata)["uid"]
    query = f'LOG_ID("cloudaudit.googleapis.com/policy") AND protoPayload.metadata.vpcServiceControlsUniqueId="{uid}"'
    reader = clients(emu).logging
    assert list_entries(reader, query) == []
    advance(emu, 3)
    (entry,) = list_entries(reader, query)
    assert entry.log_name == LOG + "policy"
    assert entry.severity == ERROR
    audit = audit_of(entry)
    assert audit.status.code == 7
    assert audit.status.message == (
        f"Request is prohibited by organization's policy. vpcServiceControlsUniqueIdentifier: {uid}"
    )
    metadata = json_format.MessageToDict(audit.metadata)
    assert metadata["violationReason"] == "NO_MATCHING_ACCESS_LEVEL"
    assert metadata["securityPolicyInfo"] == {
        "servicePerimeterName": "accessPolicies/555555555555/servicePerimeters/ml_perimeter",
        "organizationId": "123456789012",
    }
    assert "dryRun" not in metadata  # enforced denials carry no dryRun key
    assert list_entries(reader, query.replace(uid, uid + "x")) == []
    assert list_entries(reader, f'LOG_ID("cloudaudit.googleapis.com/data_access") AND timestamp>="{since(emu)}"') == []


VIEWER = "viewer@example.com"
NOBODY = "nobody@example.com"


@pytest.mark.parametrize(
    ("reader", "log_ids"),
    [
        pytest.param(VIEWER, ["activity", "policy"], id="logging.viewer-no-data_access"),
        pytest.param(WORKLOAD, ["activity", "data_access", "policy"], id="privateLogViewer-sees-all"),
        pytest.param(OWNER, ["activity", "data_access", "policy"], id="owner-sees-all"),
    ],
)
def test_private_logs_need_private_log_viewer(start_emulator: Callable[[str], Any], reader: str, log_ids: list[str]):
    emu = start_emulator("data_access_on")
    patch = {
        "projects": {PROJECT: {"bindings": {"roles/logging.viewer": [f"user:{VIEWER}"]}}},
        "perimeter": {"projects": [PROJECT], "ingress_members": [f"serviceAccount:{WORKLOAD}"]},
    }
    assert admin(emu, "PATCH", "world", patch)[0] == 200
    generate(clients(emu).prediction)  # inside the perimeter: data_access entry
    with pytest.raises(exceptions.PermissionDenied):
        generate(clients(emu, email=DEPLOYER).prediction)  # outside: policy entry
    action = {"actor": OWNER, "action": "add_binding", "role": "roles/aiplatform.viewer", "member": f"user:{VIEWER}"}
    assert admin(emu, "POST", "actions", action)[0] == 200  # activity entry
    advance(emu, 3)
    entries = list_entries(clients(emu, email=reader).logging, f'timestamp>="{since(emu)}"')
    assert sorted({e.log_name.removeprefix(LOG) for e in entries}) == log_ids


def test_caller_without_a_logging_role_is_denied(emulator: Any) -> None:
    with pytest.raises(exceptions.PermissionDenied) as caught:
        list_entries(clients(emulator, email=NOBODY).logging, "")
    err = caught.value
    assert err.message == "Permission 'logging.logEntries.list' denied on resource (or it may not exist)."
    assert (err.reason, err.domain) == ("IAM_PERMISSION_DENIED", "iam.googleapis.com")
    assert dict(err.metadata) == {"permission": "logging.logEntries.list"}


# ListLogEntries request handling --------------------------------------------------------------------------------


def _five_calls(emu: Any) -> None:
    prediction = clients(emu).prediction
    for _ in range(5):
        generate(prediction)
        advance(emu, 1)
    advance(emu, 3)


@pytest.mark.parametrize(
    ("order_by", "descending"),
    [
        pytest.param("", False, id="default-asc"),
        pytest.param("timestamp asc", False, id="asc"),
        pytest.param("timestamp desc", True, id="desc"),
    ],
)
def test_pages_and_order(start_emulator: Callable[[str], Any], order_by: str, descending: bool) -> None:
    emu = start_emulator("data_access_on")
    _five_calls(emu)
    pager = clients(emu).logging.list_log_entries(
        request={
            "resource_names": [f"projects/{PROJECT}"],
            "filter": f'LOG_ID("cloudaudit.googleapis.com/data_access") AND timestamp>="{since(emu)}"',
            "order_by": order_by,
            "page_size": 2,
        },
        retry=None,
    )
    pages = list(pager.pages)
    assert [len(p.entries) for p in pages] == [2, 2, 1]
    assert [bool(p.next_page_token) for p in pages] == [True, True, False]
    stamps: list[Any] = [e.timestamp for p in pages for e in p.entries]
    assert stamps == sorted(stamps, reverse=descending)
    assert len(set(stamps)) == 5


@pytest.mark.parametrize(
    ("request_fields", "message"),
    [
        pytest.param({"page_size": 1001}, "page_size must be between 0 and 1000, got 1001.", id="page_size>1000"),
        pytest.param(
            {"order_by": "severity desc"},
            'order_by: only "timestamp asc" and "timestamp desc" are supported, got \'severity desc\'.',
            id="order_by-not-timestamp",
        ),
        pytest.param(
            {"filter": "timestamp>=2026-11-26T09:00:00Z"},
            "Unparseable filter: syntax error at line 1, column 25, token ':'",
            id="unquoted-timestamp",
        ),
        pytest.param(
            {"filter": "protoPayload.status.code="},
            "Unparseable filter: syntax error at line 1, column 26, token '<EOF>'",
            id="missing-value",
        ),
        pytest.param(
            {"filter": 'foo.bar="x"'},
            "Unparseable filter: undefined field at line 1, column 1, token 'foo'",
            id="undefined-field",
        ),
        pytest.param(
            {"filter": 'timestamp>="yesterday"'},
            "Unparseable filter: invalid timestamp at line 1, column 12, token '\"yesterday\"'",
            id="bad-timestamp",
        ),
        pytest.param(
            {"page_token": "not-a-token"},
            "page_token: not a page token returned by this API.",
            id="bad-page-token",
        ),
    ],
)
def test_bad_requests_are_invalid_argument(emulator: Any, request_fields: dict[str, Any], message: str) -> None:
    with pytest.raises(exceptions.InvalidArgument) as caught:
        clients(emulator).logging.list_log_entries(
            request={"resource_names": [f"projects/{PROJECT}"], **request_fields}, retry=None
        )
    assert caught.value.message == message


def test_page_token_must_match_the_query(start_emulator: Callable[[str], Any]) -> None:
    emu = start_emulator("data_access_on")
    _five_calls(emu)
    logging = clients(emu).logging
    first = logging.list_log_entries(
        request={"resource_names": [f"projects/{PROJECT}"], "filter": "", "page_size": 2}, retry=None
    )
    token = next(iter(first.pages)).next_page_token
    with pytest.raises(exceptions.InvalidArgument) as caught:
        logging.list_log_entries(
            request={"resource_names": [f"projects/{PROJECT}"], "filter": "severity=INFO", "page_token": token},
            retry=None,
        )
    assert caught.value.message == "page_token: the page token does not match the other arguments of the request."
