"""Facts about Google the canary once had wrong, each shown end to end against the emulator: the constraint behind
RESOURCE_USAGE_RESTRICTION_VIOLATED, org-policy changes made above the project, DisableService under Service Usage
v1beta1, and Cloud Billing's real audited method names (docs/google-behaviour.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e.conftest import StartCanary


def _items(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {i["step"]: i for i in body["evidence"]["items"]}


def test_restricted_service_usage_names_its_constraint_and_where_it_lives(start_canary: StartCanary) -> None:
    canary = start_canary("service_restricted")
    canary.advance(10 * 60 + 5)  # bob denies the service on the folder
    response = canary.scheduler()
    assert response.status_code == 502
    body = response.get_json()
    [target] = body["targets"]
    assert target["cause"] == "org_policy"
    assert target["error"]["reason"] == "RESOURCE_USAGE_RESTRICTION_VIOLATED"
    commands = [r.get("command", "") for r in target["remedies"]]
    assert "gcloud org-policies describe gcp.restrictServiceUsage --project=demo-proj --effective" in commands
    assert not any("allowedModels" in c for c in commands)
    assert any("stop denying aiplatform.googleapis.com" in r["title"] for r in target["remedies"])
    # The change is in the folder's log: the project's says where it most likely lives.
    activity = _items(body)["admin_activity"]
    assert activity["status"] == "not_found"
    assert (
        "constraints/gcp.restrictServiceUsage is most likely set on a folder or the organization"
        in (activity["summary"])
    )


def test_disable_service_through_v1beta1_is_found(start_canary: StartCanary, tmp_path: Path) -> None:
    scenario = tmp_path / "disabled_v1beta1.yaml"
    scenario.write_text(
        "extends: healthy\n"
        "timeline:\n"
        "  - {at: '+10m', actor: alice@example.com, action: disable_service, service: aiplatform.googleapis.com,"
        " api_version: v1beta1}\n"
    )
    canary = start_canary(str(scenario))
    canary.advance(10 * 60 + 5)
    body = canary.scheduler().get_json()
    assert body["targets"][0]["cause"] == "api_disabled"
    change = body["evidence"]["change"]
    assert (change["kind"], change["actor"]) == ("service_disabled", "alice@example.com")


def test_billing_unlinked_is_found_under_its_real_method(start_canary: StartCanary, tmp_path: Path) -> None:
    scenario = tmp_path / "billing_unlinked.yaml"
    scenario.write_text(
        "extends: healthy\ntimeline:\n  - {at: '+10m', actor: alice@example.com, action: disable_billing}\n"
    )
    canary = start_canary(str(scenario))
    canary.advance(10 * 60 + 5)
    body = canary.scheduler().get_json()
    assert body["targets"][0]["cause"] == "billing_disabled"
    change = body["evidence"]["change"]
    assert change["kind"] == "billing_changed"
    assert change["detail"] == "the project's billing changed (DisableResourceBilling)"


def test_a_deny_policy_on_the_folder_is_looked_for_above_the_project(start_canary: StartCanary, tmp_path: Path) -> None:
    scenario = tmp_path / "deny_on_folder.yaml"
    scenario.write_text(
        "extends: data_access_on\n"
        "folders:\n"
        '  "345678901234": {display_name: ml-workloads}\n'
        "projects:\n"
        "  demo-proj: {parent: folders/345678901234}\n"
        "deny:\n"
        "  - principal: serviceAccount:canary-workload@demo-proj.iam.gserviceaccount.com\n"
        "    permission: aiplatform.endpoints.predict\n"
        "    attached_to: folders/345678901234\n"
    )
    canary = start_canary(str(scenario))
    body = canary.scheduler().get_json()
    [target] = body["targets"]
    assert target["cause"] == "iam_permission_denied"
    assert body["evidence"]["predict_granted"] is True
    iam = _items(body)["iam"]["summary"]
    assert "deny policy (attached to the project, a folder or the organization)" in iam
    assert "does not exist" not in iam  # a missing model is a 404 once the permission check passes
    commands = [r.get("command", "") for r in target["remedies"]]
    assert "gcloud beta projects get-ancestors-iam-policy demo-proj --include-deny --format=json" in commands
    assert not any("add-iam-policy-binding" in c for c in commands)
    assert not any("model" in r["title"].lower() and "exist" in r["title"].lower() for r in target["remedies"])
