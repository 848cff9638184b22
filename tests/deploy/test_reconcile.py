"""The reconciler's safety nets where Google cannot be made to misbehave on cue: the tool's own gcloud wrapper is
replaced by a stand-in that answers from a dict (no Google code is replaced); the real-gcloud runs are in
test_deploy_gcloud.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

from deploy.alerting import Monitoring
from deploy.gcloud import Gcloud, GcloudError
from deploy.reconcile import Manifest, Project
from deploy.spec import make_spec
from tests.shared import WORKLOAD

WHO = f"serviceAccount:{WORKLOAD}"


class FakeGcloud(Gcloud):
    """Reads answer from `state`; changes are recorded, and those `refuse` names fail."""

    def __init__(self, state: dict[str, Any], refuse: tuple[str, ...] = ()) -> None:
        super().__init__("demo-proj")
        self.state = state
        self.refuse = refuse
        self.done: list[tuple[str, ...]] = []

    def read(self, *argv: str) -> Any:
        if argv[:3] == ("run", "services", "get-iam-policy"):
            return json.loads(json.dumps(self.state["service_policy"]))
        if argv[:2] == ("projects", "get-iam-policy"):
            return json.loads(json.dumps(self.state["project_policy"]))
        raise AssertionError(f"unexpected read {argv}")

    def change(self, *argv: str, **_: Any) -> Any:
        self.plan.append(" ".join(argv))
        if any(r in " ".join(argv) for r in self.refuse):
            raise GcloudError(list(argv), 1, "ERROR: (gcloud) PERMISSION_DENIED: refused")
        self.done.append(argv)
        if argv[:2] == ("projects", "add-iam-policy-binding"):
            role = next(a.split("=", 1)[1] for a in argv if a.startswith("--role="))
            self.state["project_policy"]["bindings"].append({"role": role, "members": [WHO]})
        if argv[:3] == ("iam", "service-accounts", "update"):
            self.state["description"] = next(a.split("=", 1)[1] for a in argv if a.startswith("--description="))
        return None


def project(gcloud: Gcloud, **spec: Any) -> Project:
    built = make_spec(projects=["demo-proj"], region="us-central1", service_account=WORKLOAD, **spec)
    return Project(built, "demo-proj", gcloud, Monitoring("demo-proj", dry_run=False))


def test_a_service_still_public_after_the_removal_fails_loudly() -> None:
    """The removal 'succeeds' yet allUsers is still there when the policy is read again (someone, or something,
    put it back): the project fails, naming what is public."""
    public = {"bindings": [{"role": "roles/run.invoker", "members": ["allUsers"]}], "etag": "BwY="}
    gcloud = FakeGcloud({"service_policy": public})  # set-iam-policy changes nothing in the stand-in
    target = project(gcloud)
    with pytest.raises(RuntimeError, match=r"still public .*: allUsers in roles/run\.invoker"):
        target._invoker_binding()
    assert any(step[:3] == ("run", "services", "set-iam-policy") for step in gcloud.done)


def test_a_refused_grant_is_not_left_in_the_record() -> None:
    """Grants are recorded before they are made; when one is refused, the record keeps only those the policy
    shows, so teardown never takes a role someone grants by hand afterwards."""
    state: dict[str, Any] = {"project_policy": {"bindings": [], "etag": "BwY="}, "description": ""}
    gcloud = FakeGcloud(state, refuse=("--role=roles/browser",))
    target = project(gcloud, evidence_roles=True)
    with pytest.raises(GcloudError):
        target._grants()
    updates = [Manifest.parse(step[-1].split("=", 1)[1]).granted for step in gcloud.done if step[2] == "update"]
    assert updates[0] == {"roles/aiplatform.user", "roles/monitoring.metricWriter", "roles/logging.privateLogViewer",
                          "roles/browser"}  # fmt: skip
    assert Manifest.parse(state["description"]).granted == {
        "roles/aiplatform.user",
        "roles/monitoring.metricWriter",
        "roles/logging.privateLogViewer",
    }
