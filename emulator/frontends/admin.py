"""The control API, apart from Google's paths: everything under /_emulator/.

    GET    /_emulator/world            the world as a scenario document (plus clock, logs and counters)
    PATCH  /_emulator/world            merge a partial scenario document into the live world (validated whole)
    POST   /_emulator/reset            rebuild the world from its scenario
    POST   /_emulator/clock            {"advance_seconds": N} | {"set": RFC3339} | {"mode": "virtual"|"running"|"wall"}
                                       ("running" may take "rate": emulated seconds per real second, up to 1000)
    POST   /_emulator/actions          {"actor", "action", ...params}: a change made now, audited as a person's
    GET    /_emulator/faults           armed faults;  DELETE clears them
    POST   /_emulator/faults           {"method", "count", and one of "status" | "hang_seconds" | "close" |
                                        "malformed" | "http_status"(+"http_body", metadata only)}
    GET    /_emulator/calls            calls served, by method;  DELETE resets the counts (and the timings)
    GET    /_emulator/timings          calls served and seconds spent in their handlers, by method
    POST   /_emulator/tokens           {"email", "ttl_seconds"?} → a token the emulator accepts for that e-mail
    POST   /_emulator/tokens:revoke    {"email"} → every token of that e-mail is revoked
    GET    /_emulator/logs             every log entry, visible yet or not, with the time it becomes visible

Bad input is answered 400 with a message that names the field, and leaves the world unchanged. Bodies are read by
`core.http.parse_json` (no NaN/Infinity, no duplicate keys, nesting at most 100 deep), and every number must fit what
it sets: durations at most `MAX_SECONDS` (100 years), the clock never past `LATEST` (so that adding any duration stays
within what a datetime holds), counts whole numbers up to `MAX_COUNT`, HTTP statuses 400-599.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from emulator.core import changes, scenario
from emulator.core.clock import parse_rfc3339, rfc3339
from emulator.core.http import Request, Response
from emulator.core.status import status_from_json
from emulator.core.world import Fault, TimelineEvent, World

ADMIN_PREFIX = "/_emulator/"
METADATA_METHODS = (
    "metadata.token",
    "metadata.identity",
    "metadata.project",
    "metadata.service_account",
    "metadata.other",
    # one path each (frontends/metadata.py, `_selector`): a fault on one of them leaves the rest of its bucket served
    "metadata.ping",
    "metadata.project_id",
    "metadata.email",
    "metadata.region",
)

MAX_SECONDS = 100 * 365 * 86400  # any duration: clock advance, token lifetime, ingestion lag
LATEST = datetime(9000, 1, 1, tzinfo=UTC)  # the clock's limit; LATEST + MAX_SECONDS still fits in a datetime
MAX_COUNT = 1_000_000
MAX_HANG = 600


class AdminError(ValueError):
    pass


def status(world: World) -> dict[str, Any]:
    doc = scenario.export(world)
    doc["clock"] = {"mode": world.clock.mode, "now": rfc3339(world.clock.now())}
    doc["timeline"] = [
        {"at": rfc3339(e.at), "actor": e.actor, "action": e.action, **e.params, "done": e.done} for e in world.timeline
    ]
    doc["log_entries"] = len(world.logs)
    doc["faults"] = [f.describe() for f in world.faults]
    return doc


def patch_world(world: World, patch: Any) -> None:
    """Validate current ⊕ patch as a whole scenario, then apply only what the patch names."""
    if not isinstance(patch, Mapping):
        raise AdminError("the body must be a JSON object in the scenario schema")
    for key in ("clock", "timeline"):
        if key in patch:
            raise AdminError(f"{key}: not patchable here; use /_emulator/clock or /_emulator/actions")
    for key in ("organization", "folders"):
        if key in patch:
            raise AdminError(
                f"{key}: the resource hierarchy is set by the scenario file; change it there and POST /_emulator/reset"
            )
    merged = scenario.merge(scenario.export(world), patch)
    try:
        spec = scenario.validate(merged, "patch")
    except scenario.ScenarioError as err:
        raise AdminError(str(err).removeprefix("scenario patch: ")) from None
    _check_bounds(spec, patch)
    scenario.apply_sections(world, spec, patch)


def _check_bounds(spec: dict[str, Any], patch: Mapping[str, Any]) -> None:
    """What the scenario schema lets through but no timedelta or HTTP status line holds (e.g. 1e300)."""
    if "logging" in patch:
        _number("logging.ingestion_lag_seconds", spec["lag"], 0, MAX_SECONDS)
    if "tokens" in patch:
        _number("tokens.ttl_seconds", spec["ttl"], 1, MAX_SECONDS)
    failure = (patch.get("metadata") or {}).get("failure") or {}  # the given value (the schema made it an int)
    if "status" in failure:
        _number("metadata.failure.status", failure["status"], 400, 599, whole=True)


def _fields(body: Any, allowed: set[str], required: set[str] = frozenset()) -> Mapping[str, Any]:  # type: ignore[assignment]
    if not isinstance(body, Mapping):
        raise AdminError("the body must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise AdminError(f"{unknown[0]}: unknown field; allowed: {', '.join(sorted(allowed))}")
    missing = sorted(required - set(body))
    if missing:
        raise AdminError(f"{missing[0]}: required")
    return body


def _num(
    body: Mapping[str, Any], key: str, minimum: float = 0, maximum: float | None = None, whole: bool = False
) -> float:
    return _number(key, body[key], minimum, maximum, whole)


def _number(where: str, value: Any, minimum: float = 0, maximum: float | None = None, whole: bool = False) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (isinstance(value, float) and not math.isfinite(value))
        or value < minimum
    ):
        raise AdminError(f"{where}: expected a number >= {minimum:g}, got {value!r}")
    if maximum is not None and value > maximum:
        shown = "600" if maximum == MAX_HANG else f"{maximum:.0f}"
        suffix = " (100 years)" if maximum == MAX_SECONDS else ""
        raise AdminError(f"{where}: at most {shown}{suffix}" + ("" if maximum == MAX_HANG else f", got {value!r}"))
    if whole and value != int(value):
        raise AdminError(f"{where}: expected a whole number, got {value!r}")
    return float(value)


def _text(body: Mapping[str, Any], key: str) -> str:
    value = body[key]
    if not isinstance(value, str) or not value:
        raise AdminError(f"{key}: expected a non-empty string, got {value!r}")
    return value


def set_clock(world: World, body: Any) -> dict[str, Any]:
    doc = _fields(body, {"advance_seconds", "set", "mode", "rate"})
    rate = doc.get("rate")
    doc = {k: v for k, v in doc.items() if k != "rate"}
    if len(doc) != 1:
        raise AdminError(f"give exactly one of advance_seconds, set, mode (got {', '.join(sorted(doc)) or 'none'})")
    if rate is not None and doc.get("mode") != "running":
        raise AdminError('rate: only with {"mode": "running"}')
    try:
        if "advance_seconds" in doc:
            seconds = _num(doc, "advance_seconds", maximum=MAX_SECONDS)
            if world.clock.now() + timedelta(seconds=seconds) > LATEST:
                raise AdminError(f"advance_seconds: the clock may not pass {rfc3339(LATEST)}")
            world.clock.advance(seconds)
        elif "set" in doc:
            at = parse_rfc3339(_text(doc, "set"))
            if at > LATEST:
                raise AdminError(f"set: at most {rfc3339(LATEST)}, got {doc['set']!r}")
            world.clock.set(at)
        elif doc["mode"] == "virtual":
            world.clock.freeze(world.clock.now())
        elif doc["mode"] == "running":
            speed = 1.0 if rate is None else _num({"rate": rate}, "rate", maximum=1000)
            if speed <= 0:
                raise AdminError(f"rate: seconds of emulated time per real second, above 0, got {rate!r}")
            world.clock.run_from(world.clock.now(), speed)
        elif doc["mode"] == "wall":
            world.clock.unfreeze()
        else:
            raise AdminError(f"mode: expected virtual, running or wall, got {doc['mode']!r}")
    except ValueError as err:
        if isinstance(err, AdminError):
            raise
        raise AdminError(f"{next(iter(doc))}: {err}") from None
    world.tick()
    return {"mode": world.clock.mode, "now": rfc3339(world.clock.now()), "rate": world.clock.rate}


def add_fault(world: World, body: Any, known_methods: set[str]) -> Fault:
    doc = _fields(
        body,
        {"method", "count", "status", "hang_seconds", "close", "malformed", "http_status", "http_body"},
        {"method"},
    )
    method = _text(doc, "method")
    if method not in known_methods and method not in METADATA_METHODS:
        raise AdminError(
            f"method: unknown method {method!r}; examples: "
            "google.cloud.aiplatform.v1.PredictionService.GenerateContent, metadata.token"
        )
    count = int(_num(doc, "count", 1, MAX_COUNT, whole=True)) if "count" in doc else 1
    kinds = [k for k in ("status", "hang_seconds", "close", "malformed", "http_status") if k in doc]
    if len(kinds) != 1:
        raise AdminError(
            "give exactly one of status, hang_seconds, close, malformed, http_status "
            f"(got {', '.join(kinds) or 'none'})"
        )
    fault = Fault(method=method, count=count)
    kind = kinds[0]
    if kind == "status":
        if method.startswith("metadata."):  # the metadata server answers HTTP, not google.rpc.Status
            raise AdminError("status: only for gRPC/REST methods; metadata.* methods take http_status")
        try:
            fault.status = status_from_json(doc["status"])
        except ValueError as err:
            raise AdminError(str(err)) from None
    elif kind == "hang_seconds":
        fault.hang_seconds = _num(doc, "hang_seconds", maximum=MAX_HANG)
    elif kind in ("close", "malformed"):
        if doc[kind] is not True:
            raise AdminError(f"{kind}: expected true")
        setattr(fault, kind, True)
    else:
        if not method.startswith("metadata."):
            raise AdminError("http_status: only for metadata.* methods; gRPC/REST methods take a status")
        fault.http_status = int(_num(doc, "http_status", 400, 599, whole=True))
        fault.http_body = str(doc.get("http_body", ""))
    if "http_body" in doc and kind != "http_status":
        raise AdminError("http_body: only with http_status")
    world.faults.append(fault)
    return fault


def run_action(world: World, body: Any) -> dict[str, Any]:
    if not isinstance(body, Mapping):
        raise AdminError("the body must be a JSON object")
    event_doc = {"at": rfc3339(world.clock.now()), **body}
    doc = {**scenario.export(world), "timeline": [event_doc]}
    try:
        spec = scenario.validate(doc, "action")
    except scenario.ScenarioError as err:
        raise AdminError(str(err).removeprefix("scenario action: ").replace("timeline[0].", "")) from None
    event: TimelineEvent = spec["timeline"][0]
    if event.action == "set_ingestion_lag":
        _number("seconds", event.params["seconds"], 0, MAX_SECONDS)
    event.done = True
    changes.run_event(world, event)
    return {"applied": event.action, "at": rfc3339(event.at)}


@dataclass(frozen=True)
class _Admin:
    """What an admin route works on: the world, how to rebuild it from its scenario, and the API methods a fault may
    name."""

    world: World
    rebuild: Callable[[], None]
    known_methods: set[str]


def _reset(admin: _Admin, body: Any) -> Response:
    admin.rebuild()
    return Response.json(status(admin.world))


def _patch(admin: _Admin, body: Any) -> Response:
    patch_world(admin.world, body)
    return Response.json(status(admin.world))


def _arm(admin: _Admin, body: Any) -> Response:
    return Response.json(add_fault(admin.world, body, admin.known_methods).describe(), 201)


def _clear_faults(admin: _Admin, body: Any) -> Response:
    admin.world.faults.clear()
    return Response.json({"faults": []})


def _clear_calls(admin: _Admin, body: Any) -> Response:
    admin.world.calls.clear()
    admin.world.call_seconds.clear()
    return Response.json({"calls": {}})


def _timings(admin: _Admin, body: Any) -> Response:
    seconds = {m: round(s, 6) for m, s in sorted(admin.world.call_seconds.items())}
    return Response.json({"calls": dict(sorted(admin.world.calls.items())), "seconds": seconds})


def _mint(admin: _Admin, body: Any) -> Response:
    world = admin.world
    doc = _fields(body, {"email", "ttl_seconds"}, {"email"})
    ttl = timedelta(seconds=_num(doc, "ttl_seconds", 1, MAX_SECONDS)) if "ttl_seconds" in doc else None
    token, info = world.mint_token(_text(doc, "email"), ttl)
    expires_in = int((info.expiry - world.clock.now()).total_seconds())
    return Response.json({"access_token": token, "expires_in": expires_in, "token_type": "Bearer"})


def _revoke(admin: _Admin, body: Any) -> Response:
    doc = _fields(body, {"email"}, {"email"})
    return Response.json({"revoked": admin.world.revoke_tokens(_text(doc, "email"))})


# The admin API, one table: (path under /_emulator/, verb) → handler. README.md's admin table lists the same routes.
ROUTES: dict[tuple[str, str], Callable[[_Admin, Any], Response]] = {
    ("world", "GET"): lambda admin, body: Response.json(status(admin.world)),
    ("world", "PATCH"): _patch,
    ("reset", "POST"): _reset,
    ("clock", "POST"): lambda admin, body: Response.json(set_clock(admin.world, body)),
    ("actions", "POST"): lambda admin, body: Response.json(run_action(admin.world, body)),
    ("faults", "GET"): lambda admin, body: Response.json({"faults": [f.describe() for f in admin.world.faults]}),
    ("faults", "POST"): lambda admin, body: Response.json(
        add_fault(admin.world, body, admin.known_methods).describe(), 201
    ),
    ("faults", "DELETE"): _clear_faults,
    ("calls", "GET"): lambda admin, body: Response.json({"calls": dict(sorted(admin.world.calls.items()))}),
    ("calls", "DELETE"): _clear_calls,
    ("timings", "GET"): _timings,
    ("tokens", "POST"): _mint,
    ("tokens:revoke", "POST"): _revoke,
    ("logs", "GET"): lambda admin, body: Response.json(
        {"entries": [{"visible_at": rfc3339(r.visible_at), "entry": r.entry} for r in admin.world.logs]}
    ),
}


def _service_route(served: Callable[[World, Any], Any]) -> Callable[[_Admin, Any], Response]:
    def handle(admin: _Admin, body: Any) -> Response:
        try:
            return Response.json(served(admin.world, body))
        except ValueError as err:
            raise AdminError(str(err)) from err

    return handle


def make_app(
    world: World,
    rebuild: Callable[[], None],
    known_methods: set[str],
    clock_moved: Callable[[], None] = lambda: None,
    extra: Mapping[tuple[str, str], Callable[[World, Any], Any]] | None = None,
) -> Callable[[Request], Response]:
    """The admin routes, plus the services' own (`extra`: (path, verb) → handler(world, body) → JSON; a ValueError
    is the caller's mistake, 400). `clock_moved` runs after the clock was moved (outside the world's lock), so
    whatever came due in the time skipped (Scheduler runs, alert evaluations) has happened when the answer arrives."""
    admin = _Admin(world, rebuild, known_methods)
    routes = dict(ROUTES)
    for key, served in (extra or {}).items():
        if key in routes:
            raise ValueError(f"admin route {key} is served twice")
        routes[key] = _service_route(served)

    def handle(request: Request) -> Response:
        route = request.path[len(ADMIN_PREFIX) :].rstrip("/")
        try:
            body = request.json() if request.method in ("POST", "PATCH", "PUT") else None
        except ValueError as err:
            return Response.json({"error": str(err)}, 400)
        handler = routes.get((route, request.method))
        if handler is None:
            if any(path == route for path, _ in routes):
                return Response.json({"error": f"method {request.method} not allowed on /_emulator/{route}"}, 405)
            return Response.json({"error": f"unknown admin path /_emulator/{route}"}, 404)
        try:
            with world.lock:
                answer = handler(admin, body)
        except AdminError as err:
            return Response.json({"error": str(err)}, 400)
        if route == "clock":
            clock_moved()
        return answer

    return handle
