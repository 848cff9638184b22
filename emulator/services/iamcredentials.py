"""The IAM Service Account Credentials API (iamcredentials.googleapis.com v1): short-lived credentials of a service
account for a caller allowed to impersonate it — `generateAccessToken` (an OAuth access token the emulator accepts
as that account) and `generateIdToken` (a Google-signed ID token from the world's signer) — and, beside it, the
published keys those ID tokens verify with: https://www.googleapis.com/oauth2/v1/certs (x509 PEM by key id) and
/oauth2/v3/certs (a JWK set), served on the REST port by path whatever the host.

This is what `gcloud auth print-access-token --impersonate-service-account=SA` and `gcloud auth
print-identity-token --impersonate-service-account=SA --audiences=URL` call (through google-auth's
impersonated_credentials, with gcloud's iamcredentials endpoint override): generateAccessToken, then (for the ID
token) generateIdToken. docs/google-behaviour.md, "Service account credentials and ID tokens", gives the sources.

Check order: credentials → the account name's form → the account exists (404 otherwise, whoever asks) → the API is
enabled → the delegation chain, hop by hop (implicitDelegation on each delegate, then getAccessToken or
getOpenIdToken on the target, each held by the previous principal) → the request's own arguments.

Assumption: the API must be enabled in the target account's project (Google checks the caller's consumer project,
which the emulator does not model for user credentials).
Assumption: an unknown account is 404 "Not found; Gaia id not found for email X" whoever asks, before any permission
check, as the one public sample shows; a unique id that matches no account reads the same with the id in place of
the email.
Assumption: a name whose project is not the `-` wildcard, or that is not `projects/-/serviceAccounts/ID`, is 400
with this emulator's text; the proto calls it invalid but Google's text was not found.
Assumption: the texts for a missing scope, a missing audience and a lifetime outside 1s..3600s are this emulator's
own (all 400 INVALID_ARGUMENT); the 12-hour extension by organization policy is not modelled.
Assumption: `organizationNumberIncluded` is accepted and ignored (the token carries no `google.organization_number`
claim); signBlob and signJwt are not served (gcloud's impersonation does not call them).
Assumption: no Data Access audit entries are written for these calls (Google writes them only when the project's
audit config asks for DATA_READ on iamcredentials).
Assumption (unverified): the basic roles grant the token permissions as this emulator's catalogue has them grant
everything (owner) or everything but setIamPolicy (editor); Google's own basic-role lists were not checked for them.
Assumption: the certs documents are served with `Cache-Control: public, max-age=19800, must-revalidate,
no-transform` as Google's are seen to be; google.auth does not read the header.
"""

from __future__ import annotations

import re
from datetime import timedelta

from emulator.core import iam
from emulator.core.clock import rfc3339
from emulator.core.handlers import Api, Call, Doc, HttpRule, JsonMethod, Service, json_method
from emulator.core.http import Request, Response
from emulator.core.status import RpcError, invalid_argument, not_found
from emulator.core.world import Project, World
from emulator.services.iamadmin import ServiceAccount, accounts, find_account
from emulator.services.kit import boolean, duration_seconds, iam_denied, require_enabled, text

API = "iamcredentials.googleapis.com"
PROTO = "google.iam.credentials.v1.IAMCredentials"

# Permissions on the target (and each delegate), per Google's IAM permission reference and the
# iamcredentials protos' comments: a direct request needs getAccessToken / getOpenIdToken on the target; in a
# delegated request each principal needs implicitDelegation on the next delegate.
ACCESS_PERMISSION = "iam.serviceAccounts.getAccessToken"
ID_PERMISSION = "iam.serviceAccounts.getOpenIdToken"
DELEGATION_PERMISSION = "iam.serviceAccounts.implicitDelegation"

# generateAccessToken's lifetime: one hour by default and at most (the proto's GenerateAccessTokenRequest.lifetime).
DEFAULT_LIFETIME_S = 3600
MAX_LIFETIME_S = 3600
MAX_DELEGATES = 10  # Assumption (unverified): a longer chain is refused; Google documents no limit.

# `projects/-/serviceAccounts/{ACCOUNT_EMAIL_OR_UNIQUEID}`, the "-" wildcard required (the proto's `name` field).
_NAME = re.compile(r"^projects/([^/]+)/serviceAccounts/([^/]+)\Z")
_KEY = re.compile(r"^[A-Za-z0-9._%+-]{1,100}(@[A-Za-z0-9.-]{1,200})?\Z")
CERTS_V1 = "/oauth2/v1/certs"
CERTS_V3 = "/oauth2/v3/certs"
_CERTS_CACHE = "public, max-age=19800, must-revalidate, no-transform"


def _bad_name(name: str, field: str) -> RpcError:
    return invalid_argument(
        f"Invalid value for {field}: '{name[:200]}'. Expected projects/-/serviceAccounts/ACCOUNT_EMAIL_OR_UNIQUEID "
        "(the '-' wildcard is required)."
    )


def _resolve(world: World, name: str, field: str) -> tuple[str, Project, ServiceAccount | None]:
    """(email, project, account) for a `projects/-/serviceAccounts/KEY` name; 400 for a bad form, 404 when unknown."""
    match = _NAME.match(name)
    if match is None or match.group(1) != "-" or not _KEY.match(match.group(2)):
        raise _bad_name(name, field)
    key = match.group(2)
    if "@" in key:
        found = find_account(world, key)
        if found is not None:
            return key, *found
    else:
        for project in world.projects.values():
            for account in accounts(world, project).values():
                if not account.deleted and account.resource.get("uniqueId") == key:
                    return account.email, project, account
    raise not_found(f"Not found; Gaia id not found for email {key}")


def _authorize(call: Call, request: Doc, project: Project, account: ServiceAccount | None, final: str) -> None:
    """The delegation chain caller → delegates… → target: each holds implicitDelegation on the next delegate and the
    last holds `final` on the target, on the account's own policy or its project's (deny rules apply)."""
    delegates = request.get("delegates") or []
    if not isinstance(delegates, list) or not all(isinstance(d, str) for d in delegates):
        raise invalid_argument("Invalid value at 'delegates': expected a list of service account names.")
    if len(delegates) > MAX_DELEGATES:
        raise invalid_argument(f"delegates: at most {MAX_DELEGATES} service accounts may be given.")
    hops = [_resolve(call.world, d, f"delegates[{i}]") for i, d in enumerate(delegates)]
    require_enabled(project, API)
    member = call.member()
    for hop_email, hop_project, hop_account in hops:
        if not _holds(call.world, member, hop_project, hop_account, DELEGATION_PERMISSION):
            raise iam_denied(DELEGATION_PERMISSION)
        member = iam.member_of(hop_email)
    if not _holds(call.world, member, project, account, final):
        raise iam_denied(final)


def _holds(world: World, member: str, project: Project, account: ServiceAccount | None, permission: str) -> bool:
    policies = [account.policy] if account is not None else []
    return world.allows(project, member, permission, *policies)


def generate_access_token(call: Call, request: Doc) -> Doc:
    call.authenticate()
    email, project, account = _resolve(call.world, text(request, "name"), "name")
    _authorize(call, request, project, account, ACCESS_PERMISSION)
    scope = request.get("scope") or []
    if not isinstance(scope, list) or not all(isinstance(s, str) and s for s in scope):
        raise invalid_argument("Invalid value at 'scope': expected a list of OAuth scope URLs.")
    if not scope:
        raise invalid_argument("scope: at least one OAuth scope is required.")
    lifetime = request.get("lifetime")
    seconds = DEFAULT_LIFETIME_S if lifetime in (None, "") else duration_seconds(lifetime, "lifetime")
    if not 1 <= seconds <= MAX_LIFETIME_S:
        raise invalid_argument(
            f"lifetime: {lifetime} is out of range; it must be at least 1s and at most {MAX_LIFETIME_S}s."
        )
    now = call.world.clock.now()
    # Whole seconds: Google's expireTime has none, and google-auth parses it as %Y-%m-%dT%H:%M:%SZ.
    expiry = (now + timedelta(seconds=seconds)).replace(microsecond=0)
    token, _ = call.world.mint_token(email, expiry - now)
    return {"accessToken": token, "expireTime": rfc3339(expiry)}


def generate_id_token(call: Call, request: Doc) -> Doc:
    call.authenticate()
    email, project, account = _resolve(call.world, text(request, "name"), "name")
    _authorize(call, request, project, account, ID_PERMISSION)
    audience = request.get("audience")
    if not isinstance(audience, str) or not audience.strip():
        raise invalid_argument("audience: an audience is required.")
    if len(audience) > 2048:
        raise invalid_argument("audience: at most 2048 characters.")
    boolean(request, "organizationNumberIncluded")  # type-checked, then ignored (module docstring)
    token = call.world.signer.id_token(email, audience, include_email=boolean(request, "includeEmail"))
    return {"token": token}


def serve_certs(world: World, request: Request) -> Response | None:
    """GET /oauth2/v1/certs and /oauth2/v3/certs: the signer's published keys; None for any other request."""
    if request.path not in (CERTS_V1, CERTS_V3) or request.method != "GET":
        return None
    doc = world.signer.certs() if request.path == CERTS_V1 else world.signer.jwks()
    return Response.json(doc, headers={"Cache-Control": _CERTS_CACHE})


_SA = "projects/*/serviceAccounts/*"
METHODS: list[JsonMethod] = [
    json_method(
        PROTO,
        "GenerateAccessToken",
        generate_access_token,
        API,
        {"name": None, "delegates": None, "scope": None, "lifetime": None},
    ),
    json_method(
        PROTO,
        "GenerateIdToken",
        generate_id_token,
        API,
        {"name": None, "delegates": None, "audience": None, "includeEmail": None, "organizationNumberIncluded": None},
    ),
]

# google/iam/credentials/v1/iamcredentials.proto: both are POST /v1/{name=projects/*/serviceAccounts/*}:VERB, body *.
RULES: list[HttpRule] = [
    HttpRule("POST", f"/v1/{{name={_SA}}}:generateAccessToken", f"{PROTO}.GenerateAccessToken", "*"),
    HttpRule("POST", f"/v1/{{name={_SA}}}:generateIdToken", f"{PROTO}.GenerateIdToken", "*"),
]

SERVICE = Service(
    # Title as Google's API listing gives it; gcloud's override property is api_endpoint_overrides/iamcredentials.
    apis=(Api(API, "IAM Service Account Credentials API", gcloud="IAMCREDENTIALS"),),
    methods=(*METHODS,),
    rules=(*RULES,),
    http=serve_certs,
)
