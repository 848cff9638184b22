"""The network-dependent VPC Service Controls case, end to end against the emulator: in a world whose perimeter
admits the workload only from its VPC network, the canary calling from Cloud Run's default egress is diagnosed as
VPC_SC naming where its request came from, with the fix (the workload's egress, or an ingress rule); given the
workload's egress (its tokens carry the network), the same canary is healthy."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from devkit.emulated import admin
from emulator.server import Emulator
from function import report
from function.causes import Cause
from function.config import Config
from function.run import Instance, Result, execute
from function.trigger import Trigger

WORKLOAD_VPC = "projects/net-host/global/networks/workload-vpc"


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    port = int(os.environ["GCE_METADATA_HOST"].rsplit(":", 1)[1])
    emu = Emulator("vpc_sc_network", metadata_port=port, clock_mode="running").start()
    try:
        status, body = admin(emu, "PATCH", "world", {"logging": {"ingestion_lag_seconds": 0}})
        assert status == 200, body
        yield emu
    finally:
        emu.stop()


def run(emu: Emulator) -> Result:
    config = Config(emulator=emu.grpc.address, audit_lag_budget_s=0.0)
    return execute(Instance(config), Trigger("http"), list(config.targets))


def test_from_default_egress_the_diagnosis_names_where_the_request_came_from(emulator: Emulator) -> None:
    result = run(emulator)
    assert result.verdict == "denied"
    (outcome,) = result.outcomes
    assert outcome.cause == Cause.VPC_SC
    facts = result.evidence.policy_denial
    assert facts is not None
    assert facts["violation_reason"] == "NO_MATCHING_ACCESS_LEVEL"
    assert facts["caller_network"] == ""
    assert facts["network_detail"].startswith(
        "the request came from outside any VPC network (Cloud Run's default egress, or the internet)"
    )
    summary = report.explain(result, outcome)
    assert "403 SECURITY_POLICY_VIOLATED: the request came from outside any VPC network" in summary
    assert "fix: python -m deploy apply --project demo-proj --region REGION --service-account" in summary
    assert "--kind job --network NETWORK --subnet SUBNET --vpc-egress all-traffic" in summary
    remedies = [r.title for r in result.remedies[str(outcome.target)]]
    assert any(
        'add an ingress rule for the identity from any source (an ingress source with accessLevel "*")' in t
        for t in remedies
    )
    line = report.log_entry(result)
    assert line["evidence"]["policy_denied_entry"]["network_detail"] == facts["network_detail"]


def test_with_the_workloads_egress_the_same_canary_is_healthy(emulator: Emulator) -> None:
    with emulator.world.lock:
        emulator.world.workload_network = WORKLOAD_VPC  # Direct VPC egress, all traffic, through the workload's VPC
    result = run(emulator)
    assert result.verdict == "healthy", report.to_text(result)
    assert all(o.ok for o in result.outcomes)


def test_from_another_network_the_diagnosis_names_that_network(emulator: Emulator) -> None:
    other = "projects/net-host/global/networks/other-vpc"
    with emulator.world.lock:
        emulator.world.workload_network = other
    result = run(emulator)
    facts = result.evidence.policy_denial
    assert facts is not None
    assert facts["violation_reason"] == "NETWORK_NOT_IN_SAME_SERVICE_PERIMETER"
    assert facts["caller_network"] == other
    assert facts["network_detail"].startswith(f"the request came from {other};")
