"""google.cloud.location.Locations on the v1 and v2 paths (`/v1/projects/P/locations`, `/v2/...`): the regions a
project may use. Cloud Functions (`gcloud functions list` asks before listing) and Cloud Scheduler share these
paths on one port here, so one handler answers for both.

Assumption: listing locations needs only valid credentials and an existing project (any API's viewer may list);
every API offers the same regions here.
"""

from __future__ import annotations

import re

from emulator.core.handlers import Call, Doc, HttpRule, JsonMethod, Service, json_method
from emulator.core.status import not_found
from emulator.core.world import Project
from emulator.services.kit import caller_denied, listed, text

PROTO = "google.cloud.location.Locations"
REGIONS = (
    "asia-northeast1",
    "asia-southeast1",
    "europe-west1",
    "europe-west2",
    "europe-west3",
    "europe-west4",
    "us-central1",
    "us-east1",
    "us-east4",
    "us-west1",
)


def _project(call: Call, ref: str) -> Project:
    call.authenticate()
    project = call.world.project(ref)
    if project is None:
        raise caller_denied()
    return project


def _location(name: str, region: str) -> Doc:
    return {
        "name": f"{name}/locations/{region}",
        "locationId": region,
        "labels": {"cloud.googleapis.com/region": region},
    }


def list_locations(call: Call, request: Doc) -> Doc:
    name = text(request, "name")
    _project(call, name.removeprefix("projects/"))
    regions = sorted({*REGIONS, call.world.region})
    return listed("locations", [_location(name, r) for r in regions], request, 100, 1000, always=True)


def get_location(call: Call, request: Doc) -> Doc:
    name = text(request, "name")
    match = re.fullmatch(r"(projects/[^/]+)/locations/([^/]+)", name)
    _project(call, match.group(1).removeprefix("projects/") if match else "")
    if match is None or match.group(2) not in {*REGIONS, call.world.region}:
        raise not_found(f"Location {name} not found.")
    return _location(match.group(1), match.group(2))


METHODS: list[JsonMethod] = [
    json_method(
        PROTO,
        "ListLocations",
        list_locations,
        "",
        {"name": None, "filter": None, "pageSize": None, "pageToken": None, "extraLocationTypes": None},
    ),
    json_method(PROTO, "GetLocation", get_location, "", {"name": None}),
]

RULES: list[HttpRule] = [
    *[HttpRule("GET", f"/{v}/{{name=projects/*}}/locations", f"{PROTO}.ListLocations") for v in ("v1", "v2")],
    *[HttpRule("GET", f"/{v}/{{name=projects/*/locations/*}}", f"{PROTO}.GetLocation") for v in ("v1", "v2")],
]


SERVICE = Service(
    apis=(),
    methods=(*METHODS,),
    rules=(*RULES,),
)
