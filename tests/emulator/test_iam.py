"""IAM through the real resourcemanager_v3 ProjectsClient: SetIamPolicy changes access and leaves an Admin Activity
entry, etags guard concurrent edits, the update mask decides whether auditConfigs change, TestIamPermissions
evaluates allow policies only, and scenario timelines apply their changes audited at the event time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from google.api_core import exceptions
from google.iam.v1 import iam_policy_pb2, policy_pb2
from google.iam.v1.logging import audit_data_pb2
from google.protobuf import field_mask_pb2

from devkit.emulated import clients
from tests.emulator.support import DEPLOYER, NUMBER, OWNER, PROJECT, advance, audit_of, generate, list_entries, since
from tests.shared import WORKLOAD, WORKLOAD_MEMBER

RESOURCE = f"projects/{PROJECT}"
USER_ROLE = "roles/aiplatform.user"
MEMBER = f"serviceAccount:{WORKLOAD}"
ACTIVITY = f"projects/{PROJECT}/logs/cloudaudit.googleapis.com%2Factivity"
PREDICT = "aiplatform.endpoints.predict"


def get_policy(projects: Any) -> policy_pb2.Policy:
    return projects.get_iam_policy(request={"resource": RESOURCE})


def set_policy(projects: Any, policy: policy_pb2.Policy, mask: list[str] | None = None) -> policy_pb2.Policy:
    request = iam_policy_pb2.SetIamPolicyRequest(resource=RESOURCE, policy=policy)
    if mask is not None:
        request.update_mask.CopyFrom(field_mask_pb2.FieldMask(paths=mask))
    return projects.set_iam_policy(request=request)


def change_member(policy: policy_pb2.Policy, role: str, member: str, add: bool) -> None:
    binding = next((b for b in policy.bindings if b.role == role), None)
    if binding is None:
        binding = policy.bindings.add(role=role)
    if add:
        binding.members.append(member)
    else:
        binding.members.remove(member)


def binding_deltas(entry: Any) -> list[tuple[str, str, str]]:
    data = audit_data_pb2.AuditData()
    assert audit_of(entry).service_data.Unpack(data)
    action = policy_pb2.BindingDelta.Action.Name
    return [(action(d.action), d.role, d.member) for d in data.policy_delta.binding_deltas]


def activity_query(emu: Any, action: str) -> str:
    return (
        f'logName="{ACTIVITY}" AND protoPayload.methodName="SetIamPolicy" '
        f'AND protoPayload.authenticationInfo.principalEmail="{OWNER}" '
        f'AND protoPayload.serviceData.policyDelta.bindingDeltas.action="{action}" '
        f'AND protoPayload.serviceData.policyDelta.bindingDeltas.member="{MEMBER}" AND timestamp>="{since(emu)}"'
    )


def test_removing_the_role_denies_and_is_audited_then_restoring_it_allows(emulator: Any) -> None:
    owner = clients(emulator, email=OWNER)
    prediction = clients(emulator).prediction
    assert generate(prediction).candidates

    policy = get_policy(owner.projects)
    change_member(policy, USER_ROLE, MEMBER, add=False)
    updated = set_policy(owner.projects, policy)
    assert USER_ROLE not in {b.role for b in updated.bindings}
    assert updated.etag != policy.etag
    with pytest.raises(exceptions.PermissionDenied) as caught:
        generate(prediction)
    assert caught.value.reason == "IAM_PERMISSION_DENIED"

    query = activity_query(emulator, "REMOVE")
    assert list_entries(owner.logging, query) == []  # before the ingestion lag
    advance(emulator, 3)
    (entry,) = list_entries(owner.logging, query)
    audit = audit_of(entry)
    assert (audit.service_name, audit.method_name, audit.resource_name) == (
        "cloudresourcemanager.googleapis.com",
        "SetIamPolicy",
        RESOURCE,
    )
    assert audit.authentication_info.principal_email == OWNER
    assert binding_deltas(entry) == [("REMOVE", USER_ROLE, MEMBER)]
    assert entry.resource.type == "project"

    policy = get_policy(owner.projects)
    change_member(policy, USER_ROLE, MEMBER, add=True)
    set_policy(owner.projects, policy)
    assert generate(prediction).candidates
    advance(emulator, 3)
    (added,) = list_entries(owner.logging, activity_query(emulator, "ADD"))
    assert binding_deltas(added) == [("ADD", USER_ROLE, MEMBER)]


def test_stale_etag_is_aborted(emulator: Any) -> None:
    projects = clients(emulator, email=OWNER).projects
    stale = get_policy(projects)
    fresh = get_policy(projects)
    change_member(fresh, "roles/monitoring.viewer", f"user:{OWNER}", add=True)
    set_policy(projects, fresh)
    change_member(stale, USER_ROLE, MEMBER, add=False)
    with pytest.raises(exceptions.Aborted) as caught:
        set_policy(projects, stale)
    assert caught.value.message == (
        "There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff."
    )
    assert MEMBER in next(b for b in get_policy(projects).bindings if b.role == USER_ROLE).members


@pytest.mark.parametrize(
    ("mask", "data_read_on"),
    [
        pytest.param(None, False, id="default-mask-bindings,etag-ignores-auditConfigs"),
        pytest.param(["bindings", "etag"], False, id="explicit-bindings,etag"),
        pytest.param(["audit_configs"], True, id="audit_configs"),
        pytest.param(["auditConfigs"], True, id="auditConfigs-json-spelling"),
    ],
)
def test_update_mask_decides_whether_audit_configs_change(
    emulator: Any, mask: list[str] | None, data_read_on: bool
) -> None:
    owner = clients(emulator, email=OWNER)
    policy = get_policy(owner.projects)
    config = policy.audit_configs.add(service="aiplatform.googleapis.com")
    config.audit_log_configs.add(log_type=policy_pb2.AuditLogConfig.LogType.DATA_READ)
    set_policy(owner.projects, policy, mask)
    services = [c.service for c in get_policy(owner.projects).audit_configs]
    assert services == (["aiplatform.googleapis.com"] if data_read_on else [])

    with pytest.raises(exceptions.PermissionDenied):
        generate(clients(emulator, email=DEPLOYER).prediction)
    advance(emulator, 3)
    query = f'LOG_ID("cloudaudit.googleapis.com/data_access") AND timestamp>="{since(emulator)}"'
    assert len(list_entries(owner.logging, query)) == (1 if data_read_on else 0)


def test_bad_update_mask_path_is_refused(emulator: Any) -> None:
    projects = clients(emulator, email=OWNER).projects
    with pytest.raises(exceptions.InvalidArgument) as caught:
        set_policy(projects, get_policy(projects), ["owners"])
    assert caught.value.message == "Invalid update_mask path: 'owners'. Allowed: bindings, etag, audit_configs."


@pytest.mark.parametrize(
    ("scenario", "held"),
    [
        pytest.param("healthy", [PREDICT, "logging.privateLogEntries.list"], id="healthy"),
        pytest.param("iam_denied", ["logging.privateLogEntries.list"], id="iam_denied-not-granted"),
        pytest.param("deny_policy", [PREDICT, "logging.privateLogEntries.list"], id="deny_policy-granted-yet-denied"),
    ],
)
def test_test_iam_permissions_reports_allow_policy_grants(
    start_emulator: Callable[[str], Any], scenario: str, held: list[str]
) -> None:
    emu = start_emulator(scenario)
    response = clients(emu).projects.test_iam_permissions(
        request={
            "resource": RESOURCE,
            "permissions": [PREDICT, "logging.privateLogEntries.list", "resourcemanager.projects.setIamPolicy"],
        }
    )
    assert list(response.permissions) == held


def test_workload_cannot_set_iam_policy(emulator: Any) -> None:
    workload = clients(emulator).projects
    policy = get_policy(workload)  # roles/browser may read it
    change_member(policy, "roles/owner", MEMBER, add=True)
    with pytest.raises(exceptions.PermissionDenied) as caught:
        set_policy(workload, policy)
    assert caught.value.message == "The caller does not have permission"
    assert MEMBER not in next(b for b in get_policy(workload).bindings if b.role == "roles/owner").members


def test_unknown_role_is_refused(emulator: Any) -> None:
    projects = clients(emulator, email=OWNER).projects
    policy = get_policy(projects)
    change_member(policy, "roles/aiplatform.superuser", MEMBER, add=True)
    with pytest.raises(exceptions.InvalidArgument) as caught:
        set_policy(projects, policy)
    assert caught.value.message == "Role (roles/aiplatform.superuser) does not exist in the resource's hierarchy."


# Scenario timelines ------------------------------------------------------------------------------------------

AT_0910 = datetime(2026, 11, 26, 9, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("scenario", "reason", "service", "method", "resource"),
    [
        pytest.param(
            "role_removed_at_t",
            "IAM_PERMISSION_DENIED",
            "cloudresourcemanager.googleapis.com",
            "SetIamPolicy",
            RESOURCE,
            id="role_removed_at_t",
        ),
        pytest.param(
            "api_disabled_at_t",
            "SERVICE_DISABLED",
            "serviceusage.googleapis.com",
            "google.api.serviceusage.v1.ServiceUsage.DisableService",
            f"projects/{NUMBER}/services/aiplatform.googleapis.com",
            id="api_disabled_at_t",
        ),
    ],
)
def test_timeline_change_applies_at_its_time_audited_with_the_actor(
    start_emulator: Callable[[str], Any], scenario: str, reason: str, service: str, method: str, resource: str
) -> None:
    emu = start_emulator(scenario)
    prediction = clients(emu).prediction
    reader = clients(emu, email=OWNER).logging
    query = f'logName="{ACTIVITY}" AND protoPayload.methodName="{method}" AND timestamp>="{since(emu)}"'
    advance(emu, 599)
    assert generate(prediction).candidates  # 09:09:59: not yet
    advance(emu, 2)  # 09:10:01
    with pytest.raises(exceptions.PermissionDenied) as caught:
        generate(prediction)
    assert caught.value.reason == reason
    assert list_entries(reader, query) == []  # written at 09:10:00, visible at 09:10:03
    advance(emu, 2)
    (entry,) = list_entries(reader, query)
    assert entry.timestamp == AT_0910
    audit = audit_of(entry)
    assert (audit.service_name, audit.resource_name) == (service, resource)
    assert audit.authentication_info.principal_email == OWNER
    advance(emu, 30 * 60)  # past +40m: the change is undone
    assert generate(prediction).candidates


@pytest.mark.parametrize(
    ("role", "permission", "granted"),
    [
        ("roles/owner", "logging.privateLogEntries.list", True),
        ("roles/editor", "logging.privateLogEntries.list", False),  # Data Access logs need privateLogViewer or owner
        ("roles/viewer", "logging.privateLogEntries.list", False),
        ("roles/editor", "resourcemanager.projects.setIamPolicy", False),
        ("roles/viewer", "logging.logEntries.list", True),
        ("roles/viewer", "aiplatform.endpoints.predict", True),  # Google's viewer holds it
        ("roles/viewer", "resourcemanager.projects.setIamPolicy", False),
        ("roles/aiplatform.viewer", "aiplatform.endpoints.predict", False),
        ("roles/iam.securityReviewer", "logging.privateLogEntries.list", True),
        ("roles/iam.securityReviewer", "resourcemanager.folders.get", False),
        ("roles/browser", "resourcemanager.folders.get", True),
    ],
)
def test_roles_hold_what_googles_definitions_give(role: str, permission: str, granted: bool) -> None:
    from emulator.core import iam

    assert iam.role_grants(role, permission) is granted


def test_a_conditional_binding_is_never_counted_as_held() -> None:
    from emulator.core import iam

    member = WORKLOAD_MEMBER
    policy = iam.Policy(
        bindings=[iam.Binding("roles/aiplatform.user", [member], {"expression": "request.time < x", "title": "t"})]
    )
    assert not iam.allowed_by_policy(
        policy, "serviceAccount:x@y.iam.gserviceaccount.com", "aiplatform.endpoints.predict"
    )
    assert not iam.allowed_by_policy(policy, member, "aiplatform.endpoints.predict")
    policy.bindings.append(iam.Binding("roles/aiplatform.user", [member]))
    assert iam.allowed_by_policy(policy, member, "aiplatform.endpoints.predict")
