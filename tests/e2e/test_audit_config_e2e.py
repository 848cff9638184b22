"""Data Access audit logs as Google decides them: each log type alone, and configs inherited from a folder or the
organization (Google unions them with the project's). The canary must never call them off from the project's
policy alone, and gives the turn-on command only when it has seen every level off."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e.conftest import StartCanary

ENABLE = "gcloud projects set-iam-policy demo-proj /dev/stdin"
ANCESTORS = "gcloud beta projects get-ancestors-iam-policy demo-proj --format=json"


def _evidence(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {i["step"]: i for i in body["evidence"]["items"]}


def _commands(body: dict[str, Any]) -> list[str]:
    return [r.get("command", "") for r in body["targets"][0]["remedies"]]


def test_data_read_alone_is_on_and_the_denial_is_found(start_canary: StartCanary) -> None:
    # DATA_READ is 3 in google/iam/v1/policy.proto; comparing with 2 (DATA_WRITE) read this project as "off".
    canary = start_canary("data_read_only")
    assert _evidence(canary.scheduler().get_json())["data_access"]["status"] == "pending"  # known on: on its way
    canary.advance(5)  # past the ingestion lag: the next run finds the first run's denial
    body = canary.scheduler().get_json()
    items = _evidence(body)
    assert body["evidence"]["data_access_logs_on"] is True
    assert body["evidence"]["data_access_logs_where"] == "projects/demo-proj"
    assert items["audit_config"]["data"]["data_read"] is True
    assert items["data_access"]["status"] == "found"
    assert not any(ENABLE in c for c in _commands(body))


def test_data_write_alone_is_not_data_read(start_canary: StartCanary) -> None:
    canary = start_canary("data_write_only")
    body = canary.scheduler().get_json()
    items = _evidence(body)
    assert "data_access_logs_on" not in body["evidence"]  # not on in the project; the organization is unreadable
    assert "not enabled on projects/demo-proj" in items["audit_config"]["summary"]
    assert "may be enabled on a folder or the organization" in items["audit_config"]["summary"]
    assert items["data_access"]["status"] == "not_found"
    assert "does NOT mean the call was allowed" in items["data_access"]["summary"]
    commands = _commands(body)
    assert ANCESTORS in commands
    assert not any(ENABLE in c for c in commands)  # not sure it is off, so no command to turn it on


def test_data_access_on_in_the_folder_is_seen(start_canary: StartCanary) -> None:
    canary = start_canary("data_access_on_folder")
    assert _evidence(canary.scheduler().get_json())["data_access"]["status"] == "pending"
    canary.advance(5)
    body = canary.scheduler().get_json()
    items = _evidence(body)
    assert body["evidence"]["data_access_logs_on"] is True
    assert body["evidence"]["data_access_logs_where"] == "folders/345678901234"
    assert items["data_access"]["status"] == "found"
    assert not any(ENABLE in c for c in _commands(body))
    assert canary.calls("google.cloud.resourcemanager.v3.Folders.GetIamPolicy") == 2  # one a run
    assert canary.calls("google.cloud.resourcemanager.v3.Organizations.GetIamPolicy") == 0  # found one level up


def test_an_unreadable_folder_never_hides_the_denial(start_canary: StartCanary, tmp_path: Path) -> None:
    # The project shows nothing and the canary may not read the folder: it still queries, and finds the entry.
    scenario = tmp_path / "folder_unreadable.yaml"
    scenario.write_text(
        "extends: data_access_on_folder\n"
        "folders:\n"
        '  "345678901234":\n'
        "    bindings:\n"
        "      roles/iam.securityReviewer: []\n"
    )
    canary = start_canary(str(scenario))
    assert _evidence(canary.scheduler().get_json())["data_access"]["status"] == "not_found"
    canary.advance(5)
    body = canary.scheduler().get_json()
    items = _evidence(body)
    assert "data_access_logs_on" not in body["evidence"]
    assert "folders/345678901234 could not be read" in items["audit_config"]["summary"]
    assert items["data_access"]["status"] == "found"
    assert not any(ENABLE in c for c in _commands(body))


def test_off_on_every_level_is_said_plainly_with_the_command(start_canary: StartCanary) -> None:
    canary = start_canary("data_access_off_everywhere")
    body = canary.scheduler().get_json()
    items = _evidence(body)
    assert body["evidence"]["data_access_logs_on"] is False
    assert "nor on any of its folders or its organization" in items["audit_config"]["summary"]
    assert items["data_access"]["status"] == "off"
    assert "does NOT mean the call was allowed" in items["data_access"]["summary"]
    assert any(ENABLE in c and "DATA_READ" in c for c in _commands(body))
    # The data_access query still runs once (never skipped because a policy shows nothing); it does not wait.
    assert canary.calls("google.logging.v2.LoggingServiceV2.ListLogEntries") == 2  # denial + activity
