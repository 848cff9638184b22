"""Behaviour the last mutation run showed no test pinned: a client per Vertex AI location, a call's milliseconds to
one decimal, a 2,000-character link, and an admin change read when the canary does not know its own principal."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from google.cloud.aiplatform_v1 import PredictionServiceClient
from google.cloud.audit import audit_log_pb2
from google.cloud.logging_v2.types import LogEntry
from google.protobuf import any_pb2, json_format

from emulator.server import Emulator
from function import recorder as recorder_module
from function.audit_entries import change_of
from function.clients import Clients
from function.config import Config
from function.recorder import Recorder
from function.sanitize import link


def test_each_location_keeps_its_own_prediction_client(emulator: Emulator) -> None:
    """Credentials from the emulator's metadata server; Google's hosts (the channels connect only when used)."""
    clients = Clients(Config())
    first, second = clients.prediction("us-central1"), clients.prediction("europe-west4")
    suffix = f"{PredictionServiceClient.DEFAULT_ENDPOINT}:443"
    assert (first._transport._host, second._transport._host) == (f"us-central1-{suffix}", f"europe-west4-{suffix}")
    assert clients.prediction("us-central1") is first  # built once per location, then reused
    assert clients.prediction("europe-west4") is second


def test_a_calls_milliseconds_keep_one_decimal(monkeypatch: pytest.MonkeyPatch) -> None:
    ticks = iter([1.0, 1.0012345])
    monkeypatch.setattr(recorder_module, "time", SimpleNamespace(perf_counter=lambda: next(ticks)))
    record = Recorder()
    record.call("logging.ListLogEntries", lambda: None)
    assert record.calls == [{"method": "logging.ListLogEntries", "ms": 1.2, "outcome": "OK"}]


def test_a_link_of_exactly_2000_characters_is_kept_and_one_more_is_not() -> None:
    base = "https://cloud.google.com/vertex-ai/docs?q="
    exactly = base + "a" * (2000 - len(base))
    assert link(exactly) == exactly
    assert link(exactly + "a") is None


def _set_iam_policy_entry(member: str) -> LogEntry:
    audit = audit_log_pb2.AuditLog()
    json_format.ParseDict(
        {
            "methodName": "SetIamPolicy",
            "authenticationInfo": {"principalEmail": "alice@example.com"},
            "serviceData": {
                "@type": "type.googleapis.com/google.iam.v1.logging.AuditData",
                "policyDelta": {
                    "bindingDeltas": [{"action": "REMOVE", "role": "roles/aiplatform.user", "member": member}]
                },
            },
        },
        audit,
        ignore_unknown_fields=True,
    )
    payload = any_pb2.Any()
    payload.Pack(audit)
    entry = LogEntry()
    LogEntry.pb(entry).proto_payload.CopyFrom(payload)
    return entry


def test_a_role_removal_is_not_matched_when_the_canary_does_not_know_its_principal() -> None:
    """With no principal, no member can be matched: no change is named, and nothing fails on the missing name."""
    sa = "serviceAccount:canary-workload@demo-proj.iam.gserviceaccount.com"
    assert change_of(_set_iam_policy_entry(sa), None) is None
    found = change_of(_set_iam_policy_entry(sa), "canary-workload@demo-proj.iam.gserviceaccount.com")
    assert found is not None
    assert (found.kind, found.role) == ("role_removed", "roles/aiplatform.user")
