"""Which admin change explains a denial: only the removal of a role that grants aiplatform.endpoints.predict."""

from __future__ import annotations

import pytest
from google.cloud.logging_v2 import types as lt
from google.protobuf import json_format

from function.evidence import _change

SA = "canary-workload@demo-proj.iam.gserviceaccount.com"


def entry(role: str, action: str = "REMOVE", member: str = f"serviceAccount:{SA}") -> lt.LogEntry:
    doc = {
        "logName": "projects/demo-proj/logs/cloudaudit.googleapis.com%2Factivity",
        "timestamp": "2026-11-26T09:10:00Z",
        "protoPayload": {
            "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
            "methodName": "SetIamPolicy",
            "authenticationInfo": {"principalEmail": "alice@example.com"},
            "serviceData": {
                "@type": "type.googleapis.com/google.iam.v1.logging.AuditData",
                "policyDelta": {"bindingDeltas": [{"action": action, "role": role, "member": member}]},
            },
        },
    }
    raw = lt.LogEntry.pb()()
    json_format.ParseDict(doc, raw)
    return lt.LogEntry.wrap(raw)


@pytest.mark.parametrize("role", ["roles/aiplatform.user", "roles/editor", "roles/owner", "roles/aiplatform.admin"])
def test_removing_a_predict_role_explains_it(role: str) -> None:
    change = _change(entry(role), SA)
    assert change is not None
    assert (change.kind, change.actor, change.role, change.at) == (
        "role_removed",
        "alice@example.com",
        role,
        "2026-11-26T09:10:00Z",
    )


@pytest.mark.parametrize(
    ("role", "action", "member"),
    [
        ("roles/logging.viewer", "REMOVE", f"serviceAccount:{SA}"),
        ("roles/aiplatform.user", "ADD", f"serviceAccount:{SA}"),
        ("roles/aiplatform.user", "REMOVE", "serviceAccount:other@demo-proj.iam.gserviceaccount.com"),
    ],
    ids=["unrelated-role", "an-addition", "another-principal"],
)
def test_other_changes_do_not(role: str, action: str, member: str) -> None:
    assert _change(entry(role, action, member), SA) is None
