"""Cloud Build v1 (cloudbuild.googleapis.com): only GetDefaultServiceAccount, which `gcloud functions deploy` asks
for to warn when the build service account lacks roles/cloudbuild.builds.builder. Builds themselves are not emulated:
a function's build finishes the moment it is created (services/functions.py).

Assumption: the default build service account is the project's default compute account (Google's default for
projects created since 2024), and reading it needs only credentials and the API enabled; the permission Google
checks here is not documented.
"""

from __future__ import annotations

import re

from emulator.core.handlers import Api, Call, Doc, HttpRule, JsonMethod, Service, json_method
from emulator.core.status import invalid_argument
from emulator.services.kit import caller_denied, require_enabled, text

API = "cloudbuild.googleapis.com"
PROTO = "google.devtools.cloudbuild.v1.CloudBuild"
_NAME = re.compile(r"^projects/([^/]+)/locations/([^/]+)/defaultServiceAccount\Z")


def get_default_service_account(call: Call, request: Doc) -> Doc:
    call.authenticate()
    name = text(request, "name")
    match = _NAME.match(name)
    if match is None:
        raise invalid_argument(f"Invalid name: {name!r}. Expected projects/P/locations/L/defaultServiceAccount.")
    project = call.world.project(match.group(1))
    if project is None:
        raise caller_denied()
    require_enabled(project, API)
    email = f"{project.number}-compute@developer.gserviceaccount.com"
    return {"name": name, "serviceAccountEmail": f"projects/{project.project_id}/serviceAccounts/{email}"}


METHODS: list[JsonMethod] = [
    json_method(PROTO, "GetDefaultServiceAccount", get_default_service_account, API, {"name": None}),
]

RULES: list[HttpRule] = [
    HttpRule(
        "GET",
        "/v1/{name=projects/*/locations/*/defaultServiceAccount}",
        f"{PROTO}.GetDefaultServiceAccount",
    ),
]


SERVICE = Service(
    apis=(Api(API, "Cloud Build API", gcloud="CLOUDBUILD"),),
    methods=(*METHODS,),
    rules=(*RULES,),
)
