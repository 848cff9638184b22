"""The VPC network a served function's or job's calls to Google APIs leave through (Direct VPC egress).

Google's rules this module encodes (docs/google-behaviour.md, "VPC Service Controls by source network"):
- Direct VPC egress is one network interface: `network` and/or `subnetwork` (and tags). Given only a subnetwork, the
  network is looked up from it; given only a network, the subnetwork of the same name is used (Cloud Run Admin API v2
  `VpcAccess.NetworkInterface`).
- Which traffic goes through it is the egress setting. Cloud Run's annotation `run.googleapis.com/vpc-access-egress`
  takes `all-traffic`, `private-ranges-only`, or the deprecated `all` (the same as `all-traffic`) (gcloud 528,
  `api_lib/run/container_resource.py` and `command_lib/run/flags.py`); without it, only private ranges go through the
  VPC (v2 `VpcAccess.egress`: "If not provided, it defaults to PRIVATE_RANGES_ONLY"). Cloud Functions v2 spells the
  same setting `serviceConfig.directVpcEgress` = VPC_EGRESS_ALL_TRAFFIC | VPC_EGRESS_PRIVATE_RANGES_ONLY (default
  private ranges only).
- Google APIs answer on public addresses, so with private-ranges-only a call to Vertex AI leaves through Cloud Run's
  default egress, not the VPC; only all-traffic sends it through the network (Cloud Run "Direct VPC egress").

Assumption: with all-traffic the call reaches Google APIs through the VPC (Private Google Access on the subnet, or
Cloud NAT) and VPC Service Controls sees the VPC network as its source; a subnetwork given without a network is
taken to belong to the network of the same name (Google looks the network up from the subnetwork, which the
emulator does not model).
"""

from __future__ import annotations

import json
import re
from typing import Any

# A VPC network or subnetwork name is an RFC 1035 label (Compute Engine resource naming).
NAME = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?\Z")
_PROJECT = re.compile(r"^[a-z][-a-z0-9]{4,28}[a-z0-9]\Z")
_NETWORK_PATH = re.compile(r"^(?://compute\.googleapis\.com/)?projects/([^/]+)/global/networks/([^/]+)\Z")
_SUBNET_PATH = re.compile(r"^(?://compute\.googleapis\.com/)?projects/([^/]+)/regions/([^/]+)/subnetworks/([^/]+)\Z")

# Cloud Run annotation values (gcloud 528 container_resource.EGRESS_SETTINGS_*): "all" is the deprecated alias.
ALL_TRAFFIC_ANNOTATION = {"all-traffic", "all"}
EGRESS_ANNOTATION_VALUES = {"all-traffic", "all", "private-ranges-only"}
# Cloud Functions v2 ServiceConfig.directVpcEgress values (REST reference).
FUNCTION_EGRESS_VALUES = {"DIRECT_VPC_EGRESS_UNSPECIFIED", "VPC_EGRESS_ALL_TRAFFIC", "VPC_EGRESS_PRIVATE_RANGES_ONLY"}


def network_name(project_id: str, value: str, field: str = "network") -> str:
    """`projects/P/global/networks/N` for a short name or a (scheme-less) resource name; ValueError names the field."""
    value = value.strip()
    match = _NETWORK_PATH.match(value)
    if match is not None:
        project, name = match.groups()
        if not (_PROJECT.match(project) or project.isdigit()) or not NAME.match(name):
            raise ValueError(f"{field}: {value!r} is not a VPC network (projects/PROJECT/global/networks/NAME)")
        return f"projects/{project}/global/networks/{name}"
    if not NAME.match(value):
        raise ValueError(
            f"{field}: {value!r} is not a VPC network name or projects/PROJECT/global/networks/NAME "
            "(a name is 1-63 lowercase letters, digits and hyphens, starting with a letter)"
        )
    return f"projects/{project_id}/global/networks/{value}"


def _subnet_network(project_id: str, value: str, field: str) -> str:
    value = value.strip()
    match = _SUBNET_PATH.match(value)
    if match is not None:
        project, _, name = match.groups()
        if not NAME.match(name):
            raise ValueError(f"{field}: {value!r} is not a subnetwork")
        return f"projects/{project}/global/networks/{name}"
    if not NAME.match(value):
        raise ValueError(f"{field}: {value!r} is not a subnetwork name or projects/P/regions/R/subnetworks/NAME")
    return f"projects/{project_id}/global/networks/{value}"


def interface_network(project_id: str, interface: Any, field: str = "networkInterface") -> str:
    """The network of one Direct VPC interface ({network?, subnetwork?, tags?}); ValueError on a bad one."""
    if not isinstance(interface, dict):
        raise ValueError(f"{field}: must be an object with network and/or subnetwork")
    unknown = set(interface) - {"network", "subnetwork", "tags"}
    if unknown:
        raise ValueError(f"{field}: unknown field {sorted(unknown)[0]!r} (network, subnetwork, tags)")
    network, subnet = interface.get("network") or "", interface.get("subnetwork") or ""
    if not isinstance(network, str) or not isinstance(subnet, str):
        raise ValueError(f"{field}: network and subnetwork must be strings")
    tags = interface.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) and NAME.match(t) for t in tags):
        raise ValueError(f"{field}.tags: must be a list of network tag names")
    if network:
        return network_name(project_id, network, f"{field}.network")
    if subnet:
        return _subnet_network(project_id, subnet, f"{field}.subnetwork")
    raise ValueError(f"{field}: at least one of network or subnetwork must be specified")


def vpc_egress_network(project_id: str, interfaces_json: str, egress: str) -> str:
    """The effective egress network of a Cloud Run revision from its annotations, "" for Cloud Run's default egress.

    `interfaces_json` is `run.googleapis.com/network-interfaces` (a JSON list of one interface), `egress` is
    `run.googleapis.com/vpc-access-egress`; both may be "". ValueError names what is malformed.
    """
    if egress and egress not in EGRESS_ANNOTATION_VALUES:
        raise ValueError(
            f"run.googleapis.com/vpc-access-egress: {egress!r} is not one of {sorted(EGRESS_ANNOTATION_VALUES)}"
        )
    if not interfaces_json:
        return ""
    try:
        interfaces = json.loads(interfaces_json)
    except json.JSONDecodeError as error:
        raise ValueError(f"run.googleapis.com/network-interfaces: not JSON ({error.msg})") from None
    if not isinstance(interfaces, list) or len(interfaces) != 1:
        raise ValueError("run.googleapis.com/network-interfaces: must be a JSON list of exactly one interface")
    network = interface_network(project_id, interfaces[0], "run.googleapis.com/network-interfaces[0]")
    return network if egress in ALL_TRAFFIC_ANNOTATION else ""


def function_egress_network(project_id: str, service_config: dict[str, Any]) -> str:
    """The effective egress network of a Cloud Functions v2 function from its serviceConfig, "" for the default."""
    interfaces = service_config.get("directVpcNetworkInterface") or []
    egress = service_config.get("directVpcEgress") or ""
    if egress and egress not in FUNCTION_EGRESS_VALUES:
        raise ValueError(f"serviceConfig.directVpcEgress: {egress!r} is not one of {sorted(FUNCTION_EGRESS_VALUES)}")
    if not isinstance(interfaces, list) or len(interfaces) > 1:
        raise ValueError("serviceConfig.directVpcNetworkInterface: currently only a single Direct VPC is supported")
    if not interfaces:
        if egress and egress != "DIRECT_VPC_EGRESS_UNSPECIFIED":
            raise ValueError("serviceConfig.directVpcEgress: needs serviceConfig.directVpcNetworkInterface")
        return ""
    if service_config.get("vpcConnector"):
        raise ValueError(
            "serviceConfig.directVpcNetworkInterface: Direct VPC egress and a VPC connector (vpcConnector) cannot "
            "be used together"
        )
    network = interface_network(project_id, interfaces[0], "serviceConfig.directVpcNetworkInterface[0]")
    return network if egress == "VPC_EGRESS_ALL_TRAFFIC" else ""
