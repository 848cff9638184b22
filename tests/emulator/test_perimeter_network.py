"""VPC Service Controls by source network: the same identity is let in from the VPC network an ingress rule or an
access level names and refused from another network or from none (Cloud Run's default egress), through the real
aiplatform_v1 client; the Policy Denied entry, read back with the real logging client, names the reason and the
caller's network. Scenario errors name the field."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.api_core import exceptions
from google.protobuf import json_format

from devkit.emulated import admin, clients
from emulator.core.egress import function_egress_network, vpc_egress_network
from emulator.core.scenario import ScenarioError, build
from emulator.services import functions
from emulator.services.functions import FunctionStore
from tests.emulator.rest_support import LOC, builder_ready, function_body, rest, upload_source
from tests.emulator.support import DEPLOYER, NUMBER, OWNER, PROJECT, advance, audit_of, generate, list_entries
from tests.shared import WORKLOAD

WORKLOAD_VPC = "projects/net-host/global/networks/workload-vpc"
OTHER_VPC = "projects/net-host/global/networks/other-vpc"
PERIMETER = "accessPolicies/555555555555/servicePerimeters/ml_perimeter"


def token(emu: Any, email: str, network: str) -> str:
    """A token as a served instance's metadata server mints it: carrying the instance's egress network."""
    with emu.world.lock:
        minted, _ = emu.world.mint_token(email, network=network)
    return minted


def refused(emu: Any, email: str, network: str) -> dict[str, Any]:
    """Call Gemini as `email` from `network`, expect the VPC-SC refusal, return its Policy Denied entry's fields."""
    with pytest.raises(exceptions.PermissionDenied) as caught:
        generate(clients(emu, token=token(emu, email, network)).prediction)
    assert caught.value.reason == "SECURITY_POLICY_VIOLATED"
    uid = dict(caught.value.metadata)["uid"]
    advance(emu, 3)
    query = f'LOG_ID("cloudaudit.googleapis.com/policy") AND protoPayload.metadata.vpcServiceControlsUniqueId="{uid}"'
    (entry,) = list_entries(clients(emu).logging, query)
    audit = audit_of(entry)
    return {
        "metadata": json_format.MessageToDict(audit.metadata),
        "caller_network": audit.request_metadata.caller_network,
    }


def test_an_ingress_rule_from_a_vpc_network_admits_only_calls_from_that_network(
    start_emulator: Callable[[str], Any],
) -> None:
    emu = start_emulator("vpc_sc_network")
    reply = generate(clients(emu, token=token(emu, WORKLOAD, WORKLOAD_VPC)).prediction)
    assert reply.candidates[0].content.parts[0].text

    default_egress = refused(emu, WORKLOAD, "")
    assert default_egress["metadata"]["violationReason"] == "NO_MATCHING_ACCESS_LEVEL"
    assert default_egress["caller_network"] == ""  # no VPC network: Google sets no callerNetwork
    assert default_egress["metadata"]["ingressViolations"] == [
        {"targetResource": f"projects/{NUMBER}", "servicePerimeter": PERIMETER}
    ]

    other = refused(emu, WORKLOAD, OTHER_VPC)
    assert other["metadata"]["violationReason"] == "NETWORK_NOT_IN_SAME_SERVICE_PERIMETER"
    assert other["caller_network"] == f"//compute.googleapis.com/{OTHER_VPC}"

    # The rule's from needs the identity AND the source: another principal from the right network is refused.
    wrong_identity = refused(emu, DEPLOYER, WORKLOAD_VPC)
    assert wrong_identity["caller_network"] == f"//compute.googleapis.com/{WORKLOAD_VPC}"


def test_an_access_level_with_vpc_network_sources_and_a_network_inside_the_perimeter(
    start_emulator: Callable[[str], Any],
) -> None:
    emu = start_emulator("vpc_sc")
    patch = {
        "perimeter": {
            "name": PERIMETER,
            "projects": [PROJECT],
            "levels": {
                "from_workload_vpc": {
                    "conditions": [
                        {
                            "members": [f"serviceAccount:{WORKLOAD}"],
                            "vpc_network_sources": [
                                {"vpc_subnetwork": {"network": f"//compute.googleapis.com/{WORKLOAD_VPC}"}}
                            ],
                        }
                    ]
                }
            },
            "access_levels": ["from_workload_vpc"],
        }
    }
    status, body = admin(emu, "PATCH", "world", patch)
    assert status == 200, body
    assert generate(clients(emu, token=token(emu, WORKLOAD, WORKLOAD_VPC)).prediction).candidates
    assert refused(emu, WORKLOAD, "")["metadata"]["violationReason"] == "NO_MATCHING_ACCESS_LEVEL"
    assert refused(emu, DEPLOYER, WORKLOAD_VPC)["caller_network"] == f"//compute.googleapis.com/{WORKLOAD_VPC}"
    # A VPC network of a project inside the perimeter is inside it: no rule needed, for any identity.
    inside = f"projects/{PROJECT}/global/networks/default"
    assert generate(clients(emu, token=token(emu, WORKLOAD, inside)).prediction).candidates
    exported = admin(emu, "GET", "world")[1]["perimeter"]
    assert exported["access_levels"] == ["accessPolicies/555555555555/accessLevels/from_workload_vpc"]


def test_a_project_source_matches_calls_from_that_projects_networks(start_emulator: Callable[[str], Any]) -> None:
    emu = start_emulator("vpc_sc")
    host = {"number": "498765432109", "services": []}
    rule = {
        "from": {"identity_type": "ANY_SERVICE_ACCOUNT", "sources": [{"resource": "projects/498765432109"}]},
        "to": {"operations": [{"service_name": "aiplatform.googleapis.com"}], "resources": [f"projects/{NUMBER}"]},
    }
    patch = {
        "projects": {"net-host": host},
        "perimeter": {"name": PERIMETER, "projects": [PROJECT], "ingress_rules": [rule]},
    }
    status, body = admin(emu, "PATCH", "world", patch)
    assert status == 200, body
    assert generate(clients(emu, token=token(emu, WORKLOAD, OTHER_VPC)).prediction).candidates
    assert refused(emu, WORKLOAD, "")["metadata"]["violationReason"] == "NO_MATCHING_ACCESS_LEVEL"
    assert refused(emu, OWNER, OTHER_VPC)["caller_network"] == f"//compute.googleapis.com/{OTHER_VPC}"  # a user


@pytest.mark.parametrize(
    ("perimeter", "where", "what"),
    [
        pytest.param(
            {"ingress_rules": [{"from": {"sources": [{"access_level": "*"}]}}]},
            "perimeter.ingress_rules[0].from",
            "needs identities or an identity_type",
            id="no-identity",
        ),
        pytest.param(
            {"ingress_rules": [{"from": {"identity_type": "ANY_IDENTITY", "sources": []}}]},
            "perimeter.ingress_rules[0].from.sources",
            "at least one source",
            id="no-source",
        ),
        pytest.param(
            {"ingress_rules": [{"from": {"identity_type": "ANY_IDENTITY", "sources": [{"resource": "net-1"}]}}]},
            "perimeter.ingress_rules[0].from.sources[0].resource",
            "is not a VPC network",
            id="bad-network",
        ),
        pytest.param(
            {"ingress_rules": [{"from": {"identity_type": "ANYONE", "sources": [{"access_level": "*"}]}}]},
            "perimeter.ingress_rules[0].from.identity_type",
            "expected one of",
            id="bad-identity-type",
        ),
        pytest.param(
            {"access_levels": ["missing"]},
            "perimeter.access_levels[0]",
            "is not defined under perimeter.levels",
            id="undefined-level",
        ),
        pytest.param(
            {"levels": {"l": {"conditions": [{"ip_subnetworks": ["10.0.0.0/8"]}]}}},
            "perimeter.levels.l.conditions[0].ip_subnetworks",
            "unknown field",
            id="ip-subnetworks-not-emulated",
        ),
        pytest.param(
            {
                "ingress_rules": [
                    {
                        "from": {"identity_type": "ANY_IDENTITY", "sources": [{"access_level": "*"}]},
                        "to": {"resources": ["projects/demo-proj"]},
                    }
                ]
            },
            "perimeter.ingress_rules[0].to.resources[0]",
            "projects/PROJECT_NUMBER",
            id="resource-by-id",
        ),
        pytest.param(
            {"violation_reason": "BECAUSE"},
            "perimeter.violation_reason",
            "is not one of",
            id="bad-reason",
        ),
    ],
)
def test_a_bad_perimeter_is_refused_naming_the_field(
    tmp_path: Path, perimeter: dict[str, Any], where: str, what: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"extends": "healthy", "perimeter": {"projects": [PROJECT], **perimeter}}))
    with pytest.raises(ScenarioError) as caught:
        build(str(path))
    assert f"{where}:" in str(caught.value)
    assert what in str(caught.value)


def test_a_bad_patch_leaves_the_perimeter_as_it_was(start_emulator: Callable[[str], Any]) -> None:
    emu = start_emulator("vpc_sc_network")
    before = admin(emu, "GET", "world")[1]["perimeter"]
    status, body = admin(emu, "PATCH", "world", {"perimeter": {"projects": [PROJECT], "access_levels": ["nope"]}})
    assert status == 400
    assert "perimeter.access_levels[0]" in str(body)
    assert admin(emu, "GET", "world")[1]["perimeter"] == before
    assert generate(clients(emu, token=token(emu, WORKLOAD, WORKLOAD_VPC)).prediction).candidates


@pytest.mark.parametrize(
    ("interfaces", "egress", "network"),
    [
        (
            '[{"network": "workload-vpc", "subnetwork": "s1"}]',
            "all-traffic",
            "projects/p-one/global/networks/workload-vpc",
        ),
        ('[{"network": "workload-vpc"}]', "all", "projects/p-one/global/networks/workload-vpc"),
        ('[{"subnetwork": "workload-vpc"}]', "all-traffic", "projects/p-one/global/networks/workload-vpc"),
        (
            '[{"network": "projects/host-1/global/networks/shared"}]',
            "all-traffic",
            "projects/host-1/global/networks/shared",
        ),
        ('[{"network": "workload-vpc"}]', "private-ranges-only", ""),
        ('[{"network": "workload-vpc"}]', "", ""),
        ("", "all-traffic", ""),
    ],
)
def test_the_effective_egress_network_of_cloud_run_annotations(interfaces: str, egress: str, network: str) -> None:
    assert vpc_egress_network("p-one", interfaces, egress) == network


@pytest.mark.parametrize(
    ("interfaces", "egress", "what"),
    [
        ("[{", "all-traffic", "not JSON"),
        ('[{"network": "Bad Name"}]', "all-traffic", "is not a VPC network name"),
        ("[]", "all-traffic", "exactly one interface"),
        ('[{"tags": ["t"]}]', "all-traffic", "at least one of network or subnetwork"),
        ('[{"network": "n"}]', "everything", "vpc-access-egress"),
    ],
)
def test_bad_cloud_run_annotations_are_named(interfaces: str, egress: str, what: str) -> None:
    with pytest.raises(ValueError, match=what):
        vpc_egress_network("p-one", interfaces, egress)


def test_a_functions_direct_vpc_settings() -> None:
    config = {"directVpcNetworkInterface": [{"network": "workload-vpc"}], "directVpcEgress": "VPC_EGRESS_ALL_TRAFFIC"}
    assert function_egress_network("p-one", config) == "projects/p-one/global/networks/workload-vpc"
    config["directVpcEgress"] = "VPC_EGRESS_PRIVATE_RANGES_ONLY"
    assert function_egress_network("p-one", config) == ""
    with pytest.raises(ValueError, match="cannot be used together"):
        function_egress_network("p-one", {**config, "vpcConnector": "projects/p/locations/r/connectors/c"})
    with pytest.raises(ValueError, match="only a single Direct VPC"):
        function_egress_network("p-one", {"directVpcNetworkInterface": [{"network": "a"}, {"network": "b"}]})


def test_a_function_takes_direct_vpc_egress_on_create_and_update(start_emulator: Callable[[str], Any]) -> None:
    emu = start_emulator("deploy_ready")
    builder_ready(emu)
    body = function_body(upload_source(emu))
    body["serviceConfig"]["directVpcNetworkInterface"] = [{"network": "workload-vpc", "subnetwork": "workload-vpc"}]
    body["serviceConfig"]["directVpcEgress"] = "VPC_EGRESS_ALL_TRAFFIC"
    status, operation = rest(emu, "POST", f"/v2/{LOC}/functions?functionId=gemini-canary", body)
    assert status == 200, operation
    name = f"{LOC}/functions/gemini-canary"
    record = emu.world.projects[PROJECT].store(FunctionStore).functions[name]
    assert record.resource["serviceConfig"]["directVpcEgress"] == "VPC_EGRESS_ALL_TRAFFIC"
    assert (
        functions.wanted_network(emu.world.projects[PROJECT], record)
        == f"projects/{PROJECT}/global/networks/workload-vpc"
    )

    change = {"name": name, "serviceConfig": {"directVpcEgress": "VPC_EGRESS_PRIVATE_RANGES_ONLY"}}
    status, operation = rest(emu, "PATCH", f"/v2/{name}?updateMask=serviceConfig.directVpcEgress", change)
    assert status == 200, operation
    record = emu.world.projects[PROJECT].store(FunctionStore).functions[name]
    assert functions.wanted_network(emu.world.projects[PROJECT], record) == ""  # private ranges: default egress

    bad = {"name": name, "serviceConfig": {"directVpcNetworkInterface": [{"network": "Workload VPC"}]}}
    status, answer = rest(emu, "PATCH", f"/v2/{name}?updateMask=serviceConfig.directVpcNetworkInterface", bad)
    assert status == 400
    assert "'Workload VPC' is not a VPC network name" in answer["error"]["message"]
    kept = emu.world.projects[PROJECT].store(FunctionStore).functions[name].resource["serviceConfig"]
    assert kept["directVpcNetworkInterface"] == [{"network": "workload-vpc", "subnetwork": "workload-vpc"}]
