"""Direct VPC egress for the function kind.

A gen2 function takes it in its Cloud Functions v2 resource: `serviceConfig.directVpcNetworkInterface` (one interface:
network and/or subnetwork) and `serviceConfig.directVpcEgress` (VPC_EGRESS_ALL_TRAFFIC | VPC_EGRESS_PRIVATE_RANGES_ONLY)
(Cloud Functions v2 REST reference, ServiceConfig; "Configure Direct VPC egress for 2nd gen functions"). gcloud's
`functions deploy` has flags for them only from version 558 on, so the tool sets the two fields itself, with the
PATCH gcloud would send (`updateMask` naming exactly them, so nothing else of the function changes) after the deploy,
and waits for its operation. A redeploy by gcloud names its own fields in its mask and leaves these alone; apply
compares them on every run anyway and sets them again if they differ.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from . import reads
from .gcloud import Gcloud

FIELDS = ("serviceConfig.directVpcNetworkInterface", "serviceConfig.directVpcEgress")
# gcloud's --vpc-egress words → the Cloud Functions v2 enum (ServiceConfig.DirectVpcEgress).
EGRESS = {"all-traffic": "VPC_EGRESS_ALL_TRAFFIC", "private-ranges-only": "VPC_EGRESS_PRIVATE_RANGES_ONLY"}
WAIT_S = 900  # a change of egress rolls out a new revision: minutes on Google
POLL_S = 1.0


def desired(network: str | None, subnet: str | None, egress: str | None) -> dict[str, Any] | None:
    """The two fields as the function should carry them; None for no Direct VPC egress."""
    if network is None and subnet is None:
        return None
    interface = {k: v for k, v in (("network", network), ("subnetwork", subnet)) if v}
    return {"directVpcNetworkInterface": [interface], "directVpcEgress": EGRESS[egress or "all-traffic"]}


def observed(function: Mapping[str, Any]) -> dict[str, Any] | None:
    """The two fields as a function (gcloud's describe, REST form) carries them; None when it has none."""
    service = function.get("serviceConfig", {})
    interfaces = service.get("directVpcNetworkInterface") or []
    if not interfaces:
        return None
    first = interfaces[0] if isinstance(interfaces[0], dict) else {}
    interface = {k: str(first[k]) for k in ("network", "subnetwork") if first.get(k)}
    egress = str(service.get("directVpcEgress") or "VPC_EGRESS_PRIVATE_RANGES_ONLY")  # Google's default
    return {"directVpcNetworkInterface": [interface], "directVpcEgress": egress}


def set_egress(gcloud: Gcloud, name: str, wanted: dict[str, Any] | None) -> None:
    """PATCH the function's Direct VPC fields to `wanted` (None clears them) and wait for the operation; planned
    like a gcloud command, and only planned in a dry run."""
    cleared = {"directVpcNetworkInterface": [], "directVpcEgress": "DIRECT_VPC_EGRESS_UNSPECIFIED"}
    body = {"name": name, "serviceConfig": wanted or cleared}
    path = f"v2/{name}?updateMask={','.join(FIELDS)}"
    gcloud.plan.append(
        f"PATCH cloudfunctions.googleapis.com/{path} (Direct VPC egress: {shown(wanted)}; gcloud's functions deploy "
        "has no flag for it before version 558)"
    )
    if gcloud.dry_run:
        return
    env = gcloud.env if gcloud.env is not None else os.environ
    argv = ["functions", "deploy", name.rsplit("/", 1)[-1], "--direct-vpc"]
    operation = reads.call(argv, reads.Request("CLOUDFUNCTIONS", "functions.deploy", "PATCH", path, body), env)
    deadline = time.monotonic() + WAIT_S
    while not operation.get("done"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"Direct VPC egress of {name}: operation {operation.get('name')} not done in {WAIT_S} s")
        time.sleep(POLL_S)
        ask = reads.Request("CLOUDFUNCTIONS", "functions.operations.describe", "GET", f"v2/{operation['name']}")
        operation = reads.call(argv, ask, env)
    error = operation.get("error")
    if error:
        raise RuntimeError(f"Direct VPC egress of {name} failed: {str(error.get('message', error))[:300]}")


def shown(wanted: dict[str, Any] | None) -> str:
    if wanted is None:
        return "none"
    interface = wanted["directVpcNetworkInterface"][0]
    where = " ".join(f"{k}={v}" for k, v in interface.items())
    return f"{where}, {wanted['directVpcEgress']}"
