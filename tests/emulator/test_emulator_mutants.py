"""The emulator's IAM and audit code, pinned down where mutation testing found it loose (`make mutation`,
MUTATION.md): the deltas and v2 names Google writes, audit-config unions and exemptions, and each audit entry as the
emulator writes it, whole. The canary's evidence reads these entries field by field, so a field renamed here would
make the tests of the canary pass against a world Google never shows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from emulator.core import audit, scenario
from emulator.core.iam import (
    AuditConfig,
    AuditLogConfig,
    Binding,
    DenyRule,
    Policy,
    audit_config_deltas,
    binding_deltas,
    denied_by_rules,
    role_grants,
    v2_permission,
    v2_principal,
)
from tests.shared import WORKLOAD

SA = WORKLOAD
MODEL = "projects/demo-proj/locations/us-central1/publishers/google/models/gemini-2.5-flash-lite"
GENERATE = "google.cloud.aiplatform.v1.PredictionService.GenerateContent"
REQUEST = "type.googleapis.com/google.cloud.aiplatform.v1.GenerateContentRequest"

# --- emulator/core/iam.py ---


def test_audit_config_deltas_name_each_log_type_removed_then_added() -> None:
    old = Policy(
        audit_configs=[
            AuditConfig("aiplatform.googleapis.com", [AuditLogConfig("DATA_READ"), AuditLogConfig("DATA_WRITE")]),
            AuditConfig("storage.googleapis.com", [AuditLogConfig("ADMIN_READ", ["user:a@example.com"])]),
        ]
    )
    new = Policy(
        audit_configs=[
            AuditConfig("aiplatform.googleapis.com", [AuditLogConfig("DATA_WRITE")]),
            AuditConfig("storage.googleapis.com", [AuditLogConfig("ADMIN_READ", ["user:b@example.com"])]),
            AuditConfig("allServices", [AuditLogConfig("DATA_READ")]),
        ]
    )
    assert audit_config_deltas(old, new) == [
        {"action": "REMOVE", "service": "aiplatform.googleapis.com", "logType": "DATA_READ"},
        {"action": "REMOVE", "service": "storage.googleapis.com", "logType": "ADMIN_READ"},
        {"action": "ADD", "service": "allServices", "logType": "DATA_READ"},
        {"action": "ADD", "service": "storage.googleapis.com", "logType": "ADMIN_READ"},
    ]
    assert audit_config_deltas(new, new) == []


def test_binding_deltas_name_each_member_removed_then_added() -> None:
    old = Policy(bindings=[Binding("roles/a", ["user:x@example.com", "user:y@example.com"])])
    new = Policy(bindings=[Binding("roles/a", ["user:y@example.com"]), Binding("roles/b", ["user:x@example.com"])])
    assert binding_deltas(old, new) == [
        {"action": "REMOVE", "role": "roles/a", "member": "user:x@example.com"},
        {"action": "ADD", "role": "roles/b", "member": "user:x@example.com"},
    ]


@pytest.mark.parametrize(
    ("member", "v2"),
    [
        (f"serviceAccount:{SA}", f"principal://iam.googleapis.com/projects/-/serviceAccounts/{SA}"),
        ("user:alice@example.com", "principal://goog/subject/alice@example.com"),
        ("group:ops@example.com", "principalSet://goog/group/ops@example.com"),
        ("domain:example.com", "domain:example.com"),
        ("allUsers", "allUsers"),
    ],
)
def test_v2_principal(member: str, v2: str) -> None:
    assert v2_principal(member) == v2


@pytest.mark.parametrize(
    ("permission", "v2"),
    [
        ("aiplatform.endpoints.predict", "aiplatform.googleapis.com/endpoints.predict"),
        ("resourcemanager.projects.getIamPolicy", "resourcemanager.googleapis.com/projects.getIamPolicy"),
        ("nodot", "nodot"),
        ("1bad.x", "1bad.x"),
    ],
)
def test_v2_permission(permission: str, v2: str) -> None:
    assert v2_permission(permission) == v2


def test_data_logging_is_the_union_of_the_service_and_all_services_with_every_exemption() -> None:
    policy = Policy(
        audit_configs=[
            AuditConfig("aiplatform.googleapis.com", [AuditLogConfig("DATA_READ", ["user:a@example.com"])]),
            AuditConfig("allServices", [AuditLogConfig("DATA_READ", ["user:b@example.com"])]),
            AuditConfig("storage.googleapis.com", [AuditLogConfig("DATA_WRITE")]),
        ]
    )
    assert [lc.exempted_members for lc in policy.log_configs("aiplatform.googleapis.com", "DATA_READ")] == [
        ["user:a@example.com"],
        ["user:b@example.com"],
    ]
    assert policy.log_configs("aiplatform.googleapis.com", "DATA_WRITE") == []
    assert policy.data_logging_on("aiplatform.googleapis.com", "DATA_READ", "user:c@example.com") is True
    assert policy.data_logging_on("aiplatform.googleapis.com", "DATA_READ", "user:a@example.com") is False
    assert policy.data_logging_on("aiplatform.googleapis.com", "DATA_READ", "user:b@example.com") is False
    assert policy.data_logging_on("aiplatform.googleapis.com", "DATA_WRITE", "user:c@example.com") is False
    assert policy.data_logging_on("storage.googleapis.com", "DATA_WRITE", "user:c@example.com") is True


@pytest.mark.parametrize(
    ("role", "permission", "grants"),
    [
        ("roles/owner", "anything.at.all", True),
        ("roles/viewer", "aiplatform.endpoints.predict", True),
        ("roles/viewer", "logging.logEntries.list", True),
        ("roles/viewer", "logging.privateLogEntries.list", False),
        ("roles/viewer", "resourcemanager.projects.setIamPolicy", False),
        ("roles/aiplatform.user", "aiplatform.endpoints.predict", True),
        ("roles/monitoring.metricWriter", "aiplatform.endpoints.predict", False),
        ("roles/unknown", "aiplatform.endpoints.predict", False),
    ],
)
def test_role_grants(role: str, permission: str, grants: bool) -> None:
    assert role_grants(role, permission) is grants


def test_policy_membership_and_deny_rules() -> None:
    policy = Policy(
        bindings=[
            Binding("roles/a", ["user:x@example.com"]),
            Binding("roles/b", ["user:y@example.com", "user:x@example.com"], {"expression": "false"}),
        ]
    )
    assert policy.members_with("roles/b") == {"user:x@example.com", "user:y@example.com"}
    assert policy.roles_of("user:x@example.com") == {"roles/a"}
    rules = [DenyRule("user:x@example.com", "p.q.r")]
    assert denied_by_rules(rules, "user:x@example.com", "p.q.r") is True
    assert denied_by_rules(rules, "user:y@example.com", "p.q.r") is False
    assert denied_by_rules(rules, "user:x@example.com", "p.q.s") is False


# --- emulator/core/audit.py: each entry whole, as the emulator appends it ---


def _entries(name: str, write: Any) -> list[dict[str, Any]]:
    world = scenario.build(name, clock_mode="virtual")
    project = world.project("demo-proj")
    assert project is not None
    before = len(world.logs)
    write(world, project)
    written = [dict(record.entry) for record in world.logs[before:]]
    for entry in written:
        assert len(entry.pop("insertId")) == 12
    return written


CASES: dict[str, tuple[str, Any]] = {
    "data_access_denied_sa": ("data_access_on", lambda w, p: audit.vertex_data_access(
        w, p, email=SA, method=GENERATE, resource=MODEL, permission="aiplatform.endpoints.predict", granted=False,
        code=7, message="denied", user_agent="ua/1", caller_ip="10.0.0.1", request_type=REQUEST)),
    "data_access_ok_user_redacted": ("data_access_on", lambda w, p: audit.vertex_data_access(
        w, p, email="bob@example.com", method="m", resource=MODEL, permission="aiplatform.endpoints.predict",
        granted=False, code=7, message="denied", user_agent="", caller_ip="10.0.0.2", request_type="t")),
    "data_access_granted": ("data_access_on", lambda w, p: audit.vertex_data_access(
        w, p, email="bob@example.com", method="m", resource=MODEL, permission="aiplatform.endpoints.predict",
        granted=True, code=0, message="", user_agent="ua", caller_ip="10.0.0.2", request_type="t")),
    "data_access_off": ("healthy", lambda w, p: audit.vertex_data_access(
        w, p, email=SA, method="m", resource=MODEL, permission="p", granted=False, code=7, message="x",
        user_agent="", caller_ip="1", request_type="t")),
    "vpc_sc": ("vpc_sc", lambda w, p: audit.vpc_sc_policy_denied(
        w, p, email=SA, service="aiplatform.googleapis.com", method=GENERATE, resource=MODEL, uid="UID123",
        message="Request is prohibited by organization's policy.", caller_ip="10.0.0.3")),
    "admin": ("healthy", lambda w, p: audit.admin_activity(
        w, p, email="alice@example.com", service="cloudresourcemanager.googleapis.com", method="SetIamPolicy",
        resource="projects/demo-proj", at=datetime(2026, 11, 26, 9, 10, tzinfo=UTC),
        permission="resourcemanager.projects.setIamPolicy", service_data={"k": "v"}, request={"r": 1})),
}  # fmt: skip

EXPECTED_ENTRIES: dict[str, list[dict[str, Any]]] = {
    "data_access_denied_sa": [
        {
            "logName": "projects/demo-proj/logs/cloudaudit.googleapis.com%2Fdata_access",
            "protoPayload": {
                "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
                "authenticationInfo": {
                    "principalEmail": "canary-workload@demo-proj.iam.gserviceaccount.com",
                    "principalSubject": f"serviceAccount:{SA}",
                },
                "authorizationInfo": [
                    {
                        "granted": False,
                        "permission": "aiplatform.endpoints.predict",
                        "permissionType": "DATA_READ",
                        "resource": MODEL,
                        "resourceAttributes": {},
                    }
                ],
                "methodName": "google.cloud.aiplatform.v1.PredictionService.GenerateContent",
                "request": {
                    "@type": "type.googleapis.com/google.cloud.aiplatform.v1.GenerateContentRequest",
                    "model": MODEL,
                },
                "requestMetadata": {
                    "callerIp": "10.0.0.1",
                    "callerSuppliedUserAgent": "ua/1,gzip(gfe)",
                    "destinationAttributes": {},
                    "requestAttributes": {"auth": {}, "time": "2026-11-26T09:00:00Z"},
                },
                "resourceName": MODEL,
                "serviceName": "aiplatform.googleapis.com",
                "status": {"code": 7, "message": "denied"},
            },
            "receiveTimestamp": "2026-11-26T09:00:03Z",
            "resource": {
                "labels": {
                    "method": "google.cloud.aiplatform.v1.PredictionService.GenerateContent",
                    "project_id": "demo-proj",
                    "service": "aiplatform.googleapis.com",
                },
                "type": "audited_resource",
            },
            "severity": "ERROR",
            "timestamp": "2026-11-26T09:00:00Z",
        }
    ],
    "data_access_ok_user_redacted": [
        {
            "logName": "projects/demo-proj/logs/cloudaudit.googleapis.com%2Fdata_access",
            "protoPayload": {
                "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
                "authenticationInfo": {},
                "authorizationInfo": [
                    {
                        "granted": False,
                        "permission": "aiplatform.endpoints.predict",
                        "permissionType": "DATA_READ",
                        "resource": MODEL,
                        "resourceAttributes": {},
                    }
                ],
                "methodName": "m",
                "request": {
                    "@type": "t",
                    "model": MODEL,
                },
                "requestMetadata": {
                    "callerIp": "10.0.0.2",
                    "callerSuppliedUserAgent": "",
                    "destinationAttributes": {},
                    "requestAttributes": {"auth": {}, "time": "2026-11-26T09:00:00Z"},
                },
                "resourceName": MODEL,
                "serviceName": "aiplatform.googleapis.com",
                "status": {"code": 7, "message": "denied"},
            },
            "receiveTimestamp": "2026-11-26T09:00:03Z",
            "resource": {
                "labels": {"method": "m", "project_id": "demo-proj", "service": "aiplatform.googleapis.com"},
                "type": "audited_resource",
            },
            "severity": "ERROR",
            "timestamp": "2026-11-26T09:00:00Z",
        }
    ],
    "data_access_granted": [
        {
            "logName": "projects/demo-proj/logs/cloudaudit.googleapis.com%2Fdata_access",
            "protoPayload": {
                "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
                "authenticationInfo": {"principalEmail": "bob@example.com", "principalSubject": "user:bob@example.com"},
                "authorizationInfo": [
                    {
                        "granted": True,
                        "permission": "aiplatform.endpoints.predict",
                        "permissionType": "DATA_READ",
                        "resource": MODEL,
                        "resourceAttributes": {},
                    }
                ],
                "methodName": "m",
                "request": {
                    "@type": "t",
                    "model": MODEL,
                },
                "requestMetadata": {
                    "callerIp": "10.0.0.2",
                    "callerSuppliedUserAgent": "ua,gzip(gfe)",
                    "destinationAttributes": {},
                    "requestAttributes": {"auth": {}, "time": "2026-11-26T09:00:00Z"},
                },
                "resourceName": MODEL,
                "serviceName": "aiplatform.googleapis.com",
            },
            "receiveTimestamp": "2026-11-26T09:00:03Z",
            "resource": {
                "labels": {"method": "m", "project_id": "demo-proj", "service": "aiplatform.googleapis.com"},
                "type": "audited_resource",
            },
            "severity": "INFO",
            "timestamp": "2026-11-26T09:00:00Z",
        }
    ],
    "data_access_off": [],
    "vpc_sc": [
        {
            "logName": "projects/demo-proj/logs/cloudaudit.googleapis.com%2Fpolicy",
            "protoPayload": {
                "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
                "authenticationInfo": {
                    "principalEmail": "canary-workload@demo-proj.iam.gserviceaccount.com",
                    "principalSubject": f"serviceAccount:{SA}",
                },
                "metadata": {
                    "@type": "type.googleapis.com/google.cloud.audit.VpcServiceControlAuditMetadata",
                    "deviceState": "Unknown",
                    "ingressViolations": [
                        {
                            "servicePerimeter": "accessPolicies/555555555555/servicePerimeters/ml_perimeter",
                            "targetResource": "projects/412345678901",
                        }
                    ],
                    "resourceNames": ["projects/412345678901"],
                    "securityPolicyInfo": {
                        "organizationId": "123456789012",
                        "servicePerimeterName": "accessPolicies/555555555555/servicePerimeters/ml_perimeter",
                    },
                    "violationReason": "NO_MATCHING_ACCESS_LEVEL",
                    "vpcServiceControlsUniqueId": "UID123",
                },
                "methodName": "google.cloud.aiplatform.v1.PredictionService.GenerateContent",
                "requestMetadata": {"callerIp": "10.0.0.3", "destinationAttributes": {}, "requestAttributes": {}},
                "resourceName": MODEL,
                "serviceName": "aiplatform.googleapis.com",
                "status": {
                    "code": 7,
                    "details": [
                        {
                            "@type": "type.googleapis.com/google.rpc.PreconditionFailure",
                            "violations": [{"description": "UID123", "type": "VPC_SERVICE_CONTROLS"}],
                        }
                    ],
                    "message": "Request is prohibited by organization's policy.",
                },
            },
            "receiveTimestamp": "2026-11-26T09:00:03Z",
            "resource": {
                "labels": {
                    "method": "google.cloud.aiplatform.v1.PredictionService.GenerateContent",
                    "project_id": "demo-proj",
                    "service": "aiplatform.googleapis.com",
                },
                "type": "audited_resource",
            },
            "severity": "ERROR",
            "timestamp": "2026-11-26T09:00:00Z",
        }
    ],
    "admin": [
        {
            "logName": "projects/demo-proj/logs/cloudaudit.googleapis.com%2Factivity",
            "protoPayload": {
                "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
                "authenticationInfo": {
                    "principalEmail": "alice@example.com",
                    "principalSubject": "user:alice@example.com",
                },
                "authorizationInfo": [
                    {
                        "granted": True,
                        "permission": "resourcemanager.projects.setIamPolicy",
                        "resource": "projects/demo-proj",
                        "resourceAttributes": {},
                    }
                ],
                "methodName": "SetIamPolicy",
                "request": {"r": 1},
                "requestMetadata": {"callerIp": "127.0.0.1", "destinationAttributes": {}, "requestAttributes": {}},
                "resourceName": "projects/demo-proj",
                "serviceData": {"k": "v"},
                "serviceName": "cloudresourcemanager.googleapis.com",
            },
            "receiveTimestamp": "2026-11-26T09:10:03Z",
            "resource": {
                "labels": {
                    "method": "SetIamPolicy",
                    "project_id": "demo-proj",
                    "service": "cloudresourcemanager.googleapis.com",
                },
                "type": "audited_resource",
            },
            "severity": "NOTICE",
            "timestamp": "2026-11-26T09:10:00Z",
        }
    ],
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_audit_entry_whole(case: str) -> None:
    scenario_name, write = CASES[case]
    assert _entries(scenario_name, write) == EXPECTED_ENTRIES[case]


def test_the_basic_editor_role_holds_all_but_iam_policy_changes_and_private_logs() -> None:
    assert role_grants("roles/editor", "aiplatform.endpoints.predict") is True
    assert role_grants("roles/editor", "logging.logEntries.list") is True
    assert role_grants("roles/editor", "resourcemanager.projects.setIamPolicy") is False
    assert role_grants("roles/editor", "logging.privateLogEntries.list") is False


def test_a_folder_change_is_written_to_the_folders_own_activity_log() -> None:
    written = _entries(
        "healthy",
        lambda w, p: audit.admin_activity(
            w,
            p,
            email="alice@example.com",
            service="cloudresourcemanager.googleapis.com",
            method="SetIamPolicy",
            resource="folders/246",
            at=datetime(2026, 11, 26, 9, 10, tzinfo=UTC),
            resource_type={"type": "folder", "labels": {"folder_id": "246"}},
            log_parent="folders/246",
        ),
    )
    assert [(e["logName"], e["resource"]) for e in written] == [
        ("folders/246/logs/cloudaudit.googleapis.com%2Factivity", {"type": "folder", "labels": {"folder_id": "246"}})
    ]


def test_an_admin_entry_without_a_permission_has_no_authorization_info_and_keeps_its_metadata() -> None:
    written = _entries(
        "healthy",
        lambda w, p: audit.admin_activity(
            w,
            p,
            email="alice@example.com",
            service="serviceusage.googleapis.com",
            method="google.api.serviceusage.v1.ServiceUsage.EnableService",
            resource="projects/412345678901/services/aiplatform.googleapis.com",
            at=datetime(2026, 11, 26, 9, 10, tzinfo=UTC),
            response={"done": True},
            metadata={"@type": "type.googleapis.com/google.protobuf.Empty"},
        ),
    )
    payload = written[0]["protoPayload"]
    assert payload["authorizationInfo"] == []
    assert payload["metadata"] == {"@type": "type.googleapis.com/google.protobuf.Empty"}
    assert payload["response"] == {"done": True}
    assert "request" not in payload
    assert "serviceData" not in payload


def _data_read(project_policy_exempts: list[str], email: str) -> list[dict[str, Any]]:
    def write(world: Any, project: Any) -> None:
        project.policy.audit_configs = [
            AuditConfig("aiplatform.googleapis.com", [AuditLogConfig("DATA_READ", project_policy_exempts)])
        ]
        audit.vertex_data_access(
            world, project, email=email, method=GENERATE, resource=MODEL, permission="aiplatform.endpoints.predict",
            granted=True, code=0, message="", user_agent="", caller_ip="10.0.0.4", request_type=REQUEST,
        )  # fmt: skip

    return _entries("healthy", write)


def test_an_exempted_caller_is_not_written_to_the_data_access_log() -> None:
    assert _data_read([f"serviceAccount:{SA}"], SA) == []
    assert [e["protoPayload"]["authenticationInfo"] for e in _data_read(["user:other@example.com"], SA)] == [
        {"principalEmail": SA, "principalSubject": f"serviceAccount:{SA}"}
    ]


def test_a_caller_without_an_identity_is_matched_against_the_empty_member() -> None:
    assert _data_read([""], "") == []
    assert [e["protoPayload"]["authenticationInfo"] for e in _data_read([], "")] == [{}]


def test_a_dry_run_perimeter_marks_its_denial_as_dry_run() -> None:
    def write(world: Any, project: Any) -> None:
        assert world.perimeter is not None
        world.perimeter.dry_run = True
        audit.vpc_sc_policy_denied(
            world, project, email=SA, service="aiplatform.googleapis.com", method=GENERATE, resource=MODEL,
            uid="UID9", message="Request is prohibited by organization's policy.", caller_ip="10.0.0.3",
        )  # fmt: skip

    (entry,) = _entries("vpc_sc", write)
    metadata = entry["protoPayload"]["metadata"]
    assert metadata["dryRun"] is True
    assert sorted(metadata) == [
        "@type",
        "deviceState",
        "dryRun",
        "ingressViolations",
        "resourceNames",
        "securityPolicyInfo",
        "violationReason",
        "vpcServiceControlsUniqueId",
    ]
