"""What the evidence step does and does not do, end to end against the emulator."""

from __future__ import annotations

from tests.e2e.conftest import StartCanary


def test_transient_causes_gather_no_evidence(start_canary: StartCanary) -> None:
    # Nothing in IAM or the audit logs explains a quota 429: no TestIamPermissions, no log reads.
    canary = start_canary("quota")
    body = canary.scheduler().get_json()
    assert body["targets"][0]["cause"] == "quota"
    assert body["evidence"]["items"] == []
    assert canary.calls("google.cloud.resourcemanager.v3.Projects.TestIamPermissions") == 0
    assert canary.calls("google.cloud.resourcemanager.v3.Projects.GetIamPolicy") == 0
    assert canary.calls("google.logging.v2.LoggingServiceV2.ListLogEntries") == 0


def test_this_runs_own_policy_denied_entry_is_preferred_to_an_older_one(start_canary: StartCanary) -> None:
    canary = start_canary("vpc_sc")
    canary.patch({"logging": {"ingestion_lag_seconds": 0}})
    first = canary.scheduler().get_json()
    first_uid = first["targets"][0]["error"]["metadata"]["uid"]
    canary.advance(60)
    second = canary.scheduler().get_json()
    second_uid = second["targets"][0]["error"]["metadata"]["uid"]
    assert first_uid != second_uid  # a fresh unique id per denial
    items = {i["step"]: i for i in second["evidence"]["items"]}
    assert items["policy_denied"]["status"] == "found"
    assert items["policy_denied"]["data"]["unique_id"] == second_uid
