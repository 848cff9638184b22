"""Scenario files: a world described in YAML, validated strictly, then built.

A scenario may `extends:` another shipped scenario; mappings merge key by key, everything else replaces.
Every error names the file and the field path, and nothing is built from a scenario that fails validation.
The full schema is documented in emulator/README.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from emulator.core import changes, egress, iam
from emulator.core.clock import parse_rfc3339
from emulator.core.world import (
    AccessLevel,
    IngressRule,
    LevelCondition,
    Node,
    Perimeter,
    Project,
    TimelineEvent,
    World,
)

SCENARIO_DIR = Path(__file__).parents[1] / "scenarios"
DEFAULT_START = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)

# The default model catalogue: model id → locations where Google serves it. A scenario's `models` merges in;
# a model with no locations is retired everywhere.
DEFAULT_MODELS: dict[str, list[str]] = {
    "gemini-2.5-flash": [
        "global",
        "us-central1",
        "us-east1",
        "us-east4",
        "us-east5",
        "us-south1",
        "us-west1",
        "us-west4",
        "europe-west1",
        "europe-west4",
        "europe-west8",
        "europe-west9",
        "asia-northeast1",
        "asia-southeast1",
    ],
    "gemini-2.5-flash-lite": [
        "global",
        "us-central1",
        "us-east1",
        "us-east4",
        "us-west1",
        "europe-west1",
        "europe-west4",
    ],
    "gemini-2.5-pro": [
        "global",
        "us-central1",
        "us-east1",
        "us-east4",
        "us-west1",
        "europe-west1",
        "europe-west4",
        "asia-northeast1",
    ],
    "gemini-3-pro-preview": ["global"],
    "gemini-2.0-flash-001": [],
    "gemini-1.5-flash-002": [],
}

_PROJECT_ID = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]\Z")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\Z")
_OFFSET = re.compile(r"^\+(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?\Z")
_LOG_TYPES = {"DATA_READ", "DATA_WRITE", "ADMIN_READ"}


class ScenarioError(ValueError):
    """A scenario that cannot be built; the message names the file and the field."""


@dataclass
class _Ctx:
    source: str

    def fail(self, path: str, message: str) -> ScenarioError:
        return ScenarioError(f"scenario {self.source}: {path}: {message}")


# Loading ----------------------------------------------------------------------------------------------


def resolve(name_or_path: str) -> Path:
    """A shipped scenario by name (`healthy`) or a YAML file by path."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or "/" in name_or_path:
        if not candidate.is_file():
            raise ScenarioError(f"scenario file not found: {name_or_path}")
        return candidate
    shipped = SCENARIO_DIR / f"{name_or_path}.yaml"
    if not shipped.is_file():
        raise ScenarioError(f"unknown scenario {name_or_path!r}; shipped scenarios: {', '.join(shipped_names())}")
    return shipped


def shipped_names() -> list[str]:
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))


def load_document(name_or_path: str, _seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """The scenario's document with every `extends` merged in."""
    path = resolve(name_or_path)
    if str(path) in _seen:
        raise ScenarioError(f"scenario {path.name}: extends: circular ({' -> '.join((*_seen, str(path)))})")
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        # PyYAML's own text spans several lines and names "<unicode string>"; give the position and the problem.
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError(f"scenario {path.name}: not valid YAML{where}: {problem}") from None
    if not isinstance(doc, dict):
        raise ScenarioError(f"scenario {path.name}: the top level must be a mapping")
    parent = doc.pop("extends", None)
    if parent is None:
        return doc
    if not isinstance(parent, str):
        raise ScenarioError(f"scenario {path.name}: extends: expected a scenario name")
    if parent.endswith((".yaml", ".yml")) and not Path(parent).is_absolute():
        parent = str(path.parent / parent)  # a file path is relative to the file that names it
    return merge(load_document(parent, (*_seen, str(path))), doc)


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """JSON Merge Patch (RFC 7396): mappings merge key by key, null removes a key, anything else replaces."""
    out = dict(base)
    for key, value in override.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def build(name_or_path: str, world: World | None = None, clock_mode: str | None = None) -> World:
    """Build a scenario's world; `clock_mode` overrides the scenario's clock (starting now)."""
    doc = load_document(name_or_path)
    if clock_mode is not None:
        doc["clock"] = {"mode": clock_mode}
    source = resolve(name_or_path).name
    return build_from(doc, source, world)


def build_from(doc: Mapping[str, Any], source: str, world: World | None = None) -> World:
    """Validate the whole document first, then build (into `world`, reset, if given)."""
    spec = validate(doc, source)
    target = world or World()
    with target.lock:
        _apply(spec, target)
    return target


# Validation -------------------------------------------------------------------------------------------

_TOP = {
    "description",
    "name",
    "clock",
    "workload",
    "region",
    "principals",
    "projects",
    "deny",
    "perimeter",
    "models",
    "quota",
    "logging",
    "tokens",
    "metadata",
    "timeline",
    "organization",
    "folders",
}
_PROJECT = {"number", "services", "billing", "bindings", "audit_logs", "allowed_models", "denied_services", "parent"}
_NODE = {"bindings", "audit_logs", "allowed_models", "denied_services", "display_name"}
_NUMERIC_ID = re.compile(r"^[1-9]\d{5,18}\Z")
_OPTIONAL_PARAMS = {"service", "log_types", "resource", "api_version", "attached_to"}
_PERIMETER = {
    "name",
    "organization_id",
    "projects",
    "restricted_services",
    "refuse_outside",
    "ingress_members",
    "violation_reason",
    "dry_run",
    "networks",
    "access_levels",
    "levels",
    "ingress_rules",
}
# Access Context Manager v1 (gcloud 528's generated accesscontextmanager_v1 messages, from Google's discovery
# document): IngressFrom.IdentityType values and BasicLevel.CombiningFunction values.
_IDENTITY_TYPES = {"IDENTITY_TYPE_UNSPECIFIED", "ANY_IDENTITY", "ANY_USER_ACCOUNT", "ANY_SERVICE_ACCOUNT"}
_COMBINING = {"AND", "OR"}
# Violation reasons the emulator writes (docs/google-behaviour.md, "VPC Service Controls by source network").
_VIOLATION_REASONS = {
    "NO_MATCHING_ACCESS_LEVEL",
    "NETWORK_NOT_IN_SAME_SERVICE_PERIMETER",
    "RESOURCES_NOT_IN_SAME_SERVICE_PERIMETER",
    "SERVICE_NOT_ALLOWED_FROM_VPC",
}
_POLICY_NAME = re.compile(r"^accessPolicies/(\d+)/servicePerimeters/([A-Za-z][A-Za-z0-9_]*)\Z")
_LEVEL_NAME = re.compile(r"^accessPolicies/(\d+)/accessLevels/([A-Za-z][A-Za-z0-9_]*)\Z")
_LEVEL_SHORT = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,49}\Z")
_PROJECT_NUMBER_RESOURCE = re.compile(r"^projects/\d+\Z")


def _mapping(ctx: _Ctx, path: str, value: Any, allowed: set[str] | None = None) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ctx.fail(path, f"expected a mapping, got {_show(value)}")
    if allowed is not None:
        unknown = sorted(set(map(str, value)) - allowed)
        if unknown:
            raise ctx.fail(
                f"{path}.{unknown[0]}" if path else unknown[0],
                f"unknown field; allowed: {', '.join(sorted(allowed))}",
            )
    return value


def _str(ctx: _Ctx, path: str, value: Any, pattern: re.Pattern[str] | None = None, what: str = "") -> str:
    if not isinstance(value, str) or not value:
        raise ctx.fail(path, f"expected a non-empty string, got {_show(value)}")
    if pattern is not None and not pattern.match(value):
        raise ctx.fail(path, f"{value!r} is not a valid {what}")
    return value


def _bool(ctx: _Ctx, path: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ctx.fail(path, f"expected true or false, got {_show(value)}")
    return value


# The largest number a scenario may give (seconds, counts): a century of seconds, so that any duration added to the
# clock still fits in a datetime; NaN and infinities are refused with it.
NUMBER_MAX = 100 * 365 * 24 * 3600


def _number(ctx: _Ctx, path: str, value: Any, minimum: float = 0, maximum: float = NUMBER_MAX) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= minimum:  # NaN fails >=
        raise ctx.fail(path, f"expected a number >= {minimum:g}, got {_show(value)}")
    if value > maximum:
        limit = f"{NUMBER_MAX} (100 years)" if maximum == NUMBER_MAX else f"{maximum:g}"
        raise ctx.fail(path, f"at most {limit}, got {value!r}")
    return float(value)


def _list(ctx: _Ctx, path: str, value: Any, item: Callable[[str, Any], Any]) -> list[Any]:
    if not isinstance(value, list):
        raise ctx.fail(path, f"expected a list, got {_show(value)}")
    return [item(f"{path}[{i}]", v) for i, v in enumerate(value)]


def _show(value: Any) -> str:
    return "nothing" if value is None else f"{type(value).__name__} {value!r}"


def _member(ctx: _Ctx, path: str, value: Any) -> str:
    text = _str(ctx, path, value)
    if not iam.MEMBER_SHAPE.match(text):
        raise ctx.fail(path, f"{text!r} is not an IAM member (user:EMAIL, serviceAccount:EMAIL, group:EMAIL, …)")
    return text


def _time(ctx: _Ctx, path: str, value: Any, start: datetime) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ctx.fail(path, "a time needs a timezone, e.g. 2026-11-26T09:10:00Z")
        return value.astimezone(UTC)
    text = _str(ctx, path, value)
    offset = _OFFSET.match(text)
    if offset and any(offset.groups()):
        h, m, s = (int(g or 0) for g in offset.groups())
        return start + timedelta(hours=h, minutes=m, seconds=s)
    try:
        return parse_rfc3339(text)
    except ValueError:
        raise ctx.fail(path, f"{text!r} is neither an offset like +10m / +1h30m / +90s nor an RFC 3339 time") from None


def validate(doc: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Check every field; return a normalized spec that `apply_sections` can build without further checks. `source`
    names the document in errors (a file, "patch", "action")."""
    ctx = _Ctx(source)
    top = _mapping(ctx, "", doc, _TOP)
    clock = _mapping(ctx, "clock", top.get("clock", {}), {"mode", "start"})
    mode = clock.get("mode", "virtual")
    if mode not in ("virtual", "running", "wall"):
        raise ctx.fail("clock.mode", f"expected virtual, running or wall, got {_show(mode)}")
    if mode == "wall" and "start" in clock:
        raise ctx.fail("clock.start", "only a virtual or running clock has a start time")
    default_start = DEFAULT_START if mode == "virtual" else datetime.now(UTC)
    raw_start = clock.get("start", "now")
    start = default_start if raw_start == "now" else _time(ctx, "clock.start", raw_start, default_start)

    workload = _str(ctx, "workload", top.get("workload"), _EMAIL, "e-mail address")
    principals = _list(
        ctx, "principals", top.get("principals", []), lambda p, v: _str(ctx, p, v, _EMAIL, "e-mail address")
    )
    org, folders = _hierarchy(ctx, top)
    parents = {org["name"], *(f["name"] for f in folders)}
    raw_projects = _mapping(ctx, "projects", top.get("projects"))
    if not raw_projects:
        raise ctx.fail("projects", "at least one project is required")
    projects = [_project(ctx, str(pid), spec, parents) for pid, spec in raw_projects.items()]
    ids = {p["id"] for p in projects}
    resources = parents | {f"projects/{i}" for i in ids}
    numbers = [p["number"] for p in projects]
    if len(set(numbers)) != len(numbers):
        raise ctx.fail("projects", "two projects share a number")

    deny = _list(ctx, "deny", top.get("deny", []), lambda p, v: _deny(ctx, p, v, resources))
    perimeter = _perimeter(ctx, top["perimeter"], ids) if top.get("perimeter") is not None else None

    models = {k: list(v) for k, v in DEFAULT_MODELS.items()}
    for model, locations in _mapping(ctx, "models", top.get("models", {})).items():
        models[str(model)] = _list(ctx, f"models.{model}", locations, lambda p, v: _str(ctx, p, v))

    quota = {
        str(k): int(_number(ctx, f"quota.{k}", v)) for k, v in _mapping(ctx, "quota", top.get("quota", {})).items()
    }
    for key in quota:
        if key != "*":
            _member(ctx, f"quota.{key}", key)
    logging = _mapping(ctx, "logging", top.get("logging", {}), {"ingestion_lag_seconds"})
    lag = _number(ctx, "logging.ingestion_lag_seconds", logging.get("ingestion_lag_seconds", 3))
    tokens = _mapping(ctx, "tokens", top.get("tokens", {}), {"ttl_seconds"})
    ttl = _number(ctx, "tokens.ttl_seconds", tokens.get("ttl_seconds", 3600), minimum=1)
    metadata = _mapping(ctx, "metadata", top.get("metadata", {}), {"project_id", "failure"})
    failure = None
    if metadata.get("failure") is not None:
        raw = _mapping(ctx, "metadata.failure", metadata["failure"], {"status", "body", "paths"})
        status = int(_number(ctx, "metadata.failure.status", raw.get("status", 503), minimum=400, maximum=599))
        paths = raw.get("paths", "token")
        if paths not in ("token", "all"):
            raise ctx.fail("metadata.failure.paths", f"expected token or all, got {_show(paths)}")
        failure = {
            "status": status,
            "body": str(raw.get("body", "metadata server unavailable")),
            "paths": paths,
        }
    meta_project = metadata.get("project_id")
    if meta_project is not None:
        _str(ctx, "metadata.project_id", meta_project, _PROJECT_ID, "project id")

    timeline = _list(ctx, "timeline", top.get("timeline", []), lambda p, v: _event(ctx, p, v, start, ids, parents))
    return {
        "mode": mode,
        "start": start,
        "workload": workload,
        "principals": principals,
        "projects": projects,
        "deny": deny,
        "perimeter": perimeter,
        "models": models,
        "quota": quota,
        "lag": lag,
        "ttl": ttl,
        "metadata_failure": failure,
        "metadata_project": meta_project,
        "region": _str(ctx, "region", top.get("region", "us-central1")),
        "timeline": timeline,
        "organization": org,
        "folders": folders,
    }


def _policy_fields(ctx: _Ctx, path: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """bindings, audit_logs and the organization-policy lists a project, folder or organization may set."""
    bindings = {}
    for role, members in _mapping(ctx, f"{path}.bindings", spec.get("bindings", {})).items():
        if not iam.known_role(str(role)):
            raise ctx.fail(f"{path}.bindings.{role}", "unknown role (see emulator/core/iam.py for the catalogue)")
        bindings[str(role)] = _list(ctx, f"{path}.bindings.{role}", members, lambda p, v: _member(ctx, p, v))
    audit_logs = {}
    for service, types in _mapping(ctx, f"{path}.audit_logs", spec.get("audit_logs", {})).items():

        def log_type(p: str, v: Any) -> str:
            if v not in _LOG_TYPES:
                raise ctx.fail(p, f"expected one of {', '.join(sorted(_LOG_TYPES))}, got {_show(v)}")
            return str(v)

        audit_logs[str(service)] = _list(ctx, f"{path}.audit_logs.{service}", types, log_type)
    lists = {}
    for key in ("allowed_models", "denied_services"):
        raw = spec.get(key)
        lists[key] = None if raw is None else _list(ctx, f"{path}.{key}", raw, lambda p, v: _str(ctx, p, v))
    return {"bindings": bindings, "audit_logs": audit_logs, **lists}


def _hierarchy(ctx: _Ctx, top: Mapping[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The organization and its folders (each parent must exist; no cycles)."""
    raw_org = _mapping(ctx, "organization", top.get("organization") or {}, {"id", *_NODE})
    org_id = str(raw_org.get("id", "123456789012"))
    if not _NUMERIC_ID.match(org_id):
        raise ctx.fail("organization.id", f"expected an organization number (digits), got {_show(raw_org.get('id'))}")
    org = {
        "name": f"organizations/{org_id}",
        "parent": "",
        "display_name": str(raw_org.get("display_name", "example.com")),
        **_policy_fields(ctx, "organization", raw_org),
    }
    raw_folders = _mapping(ctx, "folders", top.get("folders") or {})
    folders = []
    for fid, raw in raw_folders.items():
        path = f"folders.{fid}"
        if not _NUMERIC_ID.match(str(fid)):
            raise ctx.fail(path, "a folder id is a number (digits)")
        spec = _mapping(ctx, path, raw or {}, {"parent", *_NODE})
        folders.append(
            {
                "name": f"folders/{fid}",
                "parent": str(spec.get("parent", org["name"])),
                "display_name": str(spec.get("display_name", f"folder-{fid}")),
                **_policy_fields(ctx, path, spec),
            }
        )
    names = {org["name"], *(f["name"] for f in folders)}
    by_name = {f["name"]: f for f in folders}
    for f in folders:
        path = f"folders.{f['name'].removeprefix('folders/')}.parent"
        if f["parent"] not in names:
            raise ctx.fail(path, f"{f['parent']!r} is neither the organization nor one of the scenario's folders")
        seen, name = {f["name"]}, f["parent"]
        while name in by_name:
            if name in seen:
                raise ctx.fail(path, "folders form a cycle")
            seen.add(name)
            name = by_name[name]["parent"]
    return org, folders


def _project(ctx: _Ctx, pid: str, raw: Any, parents: set[str]) -> dict[str, Any]:
    path = f"projects.{pid}"
    if not _PROJECT_ID.match(pid):
        raise ctx.fail(path, "a project id is 6-30 lower-case letters, digits or hyphens, starting with a letter")
    spec = _mapping(ctx, path, raw or {}, _PROJECT)
    number = str(spec.get("number", ""))
    if not re.fullmatch(r"[1-9]\d{5,15}", number):
        raise ctx.fail(f"{path}.number", f"expected a project number (digits), got {_show(spec.get('number'))}")
    parent = spec.get("parent", "")
    if parent and parent not in parents:
        raise ctx.fail(f"{path}.parent", f"{parent!r} is neither the organization nor one of the scenario's folders")
    return {
        "id": pid,
        "number": number,
        "services": _list(ctx, f"{path}.services", spec.get("services", []), lambda p, v: _str(ctx, p, v)),
        "billing": _bool(ctx, f"{path}.billing", spec.get("billing", True)),
        "parent": str(parent),
        **_policy_fields(ctx, path, spec),
    }


def _deny(ctx: _Ctx, path: str, raw: Any, resources: set[str]) -> iam.DenyRule:
    spec = _mapping(ctx, path, raw, {"principal", "permission", "attached_to"})
    principal = _member(ctx, f"{path}.principal", spec.get("principal"))
    permission = _str(ctx, f"{path}.permission", spec.get("permission"), iam.PERMISSION_SHAPE, "permission name")
    attached = spec.get("attached_to", "")
    if attached and attached not in resources:
        raise ctx.fail(f"{path}.attached_to", f"{attached!r} is not the organization, a folder or a project here")
    return iam.DenyRule(principal, permission, str(attached))


def _perimeter(ctx: _Ctx, raw: Any, ids: set[str]) -> Perimeter:
    spec = _mapping(ctx, "perimeter", raw, _PERIMETER)
    projects = _list(ctx, "perimeter.projects", spec.get("projects", []), lambda p, v: _str(ctx, p, v))
    for i, pid in enumerate(projects):
        if pid not in ids:
            raise ctx.fail(f"perimeter.projects[{i}]", f"{pid!r} is not one of the scenario's projects")
    name = _str(
        ctx,
        "perimeter.name",
        spec.get("name", "accessPolicies/555555555555/servicePerimeters/canary_perimeter"),
        _POLICY_NAME,
        "service perimeter name (accessPolicies/NUMBER/servicePerimeters/NAME)",
    )
    policy = name.split("/")[1]
    levels = _levels(ctx, spec.get("levels", {}), policy)
    level_names = _list(
        ctx,
        "perimeter.access_levels",
        spec.get("access_levels", []),
        lambda p, v: _level_ref(ctx, p, v, policy, levels, star=False),
    )
    reason = spec.get("violation_reason", "")
    if reason and reason not in _VIOLATION_REASONS:
        raise ctx.fail(
            "perimeter.violation_reason", f"{reason!r} is not one of {', '.join(sorted(_VIOLATION_REASONS))}"
        )
    return Perimeter(
        name=name,
        organization_id=str(spec.get("organization_id", "123456789012")),
        projects=set(projects),
        restricted_services=set(
            _list(
                ctx,
                "perimeter.restricted_services",
                spec.get("restricted_services", ["aiplatform.googleapis.com"]),
                lambda p, v: _str(ctx, p, v),
            )
        ),
        refuse_outside=_bool(ctx, "perimeter.refuse_outside", spec.get("refuse_outside", True)),
        ingress_members=set(
            _list(
                ctx,
                "perimeter.ingress_members",
                spec.get("ingress_members", []),
                lambda p, v: _member(ctx, p, v),
            )
        ),
        violation_reason=str(reason),
        dry_run=_bool(ctx, "perimeter.dry_run", spec.get("dry_run", False)),
        networks=set(_list(ctx, "perimeter.networks", spec.get("networks", []), lambda p, v: _vpc(ctx, p, v))),
        access_levels=level_names,
        ingress_rules=_list(
            ctx,
            "perimeter.ingress_rules",
            spec.get("ingress_rules", []),
            lambda p, v: _ingress_rule(ctx, p, v, policy, levels),
        ),
        levels=levels,
    )


def _vpc(ctx: _Ctx, path: str, value: Any) -> str:
    """A VPC network as VPC Service Controls names it: //compute.googleapis.com/projects/P/global/networks/N."""
    text = _str(ctx, path, value)
    if not text.startswith("//compute.googleapis.com/projects/"):
        raise ctx.fail(path, f"{text!r} is not a VPC network (//compute.googleapis.com/projects/P/global/networks/N)")
    try:
        return "//compute.googleapis.com/" + egress.network_name("", text, path)
    except ValueError as error:
        raise ctx.fail(path, str(error).removeprefix(f"{path}: ")) from None


def _level_ref(ctx: _Ctx, path: str, value: Any, policy: str, levels: Mapping[str, AccessLevel], star: bool) -> str:
    text = _str(ctx, path, value)
    if star and text == "*":
        return text
    full = f"accessPolicies/{policy}/accessLevels/{text}" if _LEVEL_SHORT.match(text) else text
    match = _LEVEL_NAME.match(full)
    if match is None:
        raise ctx.fail(path, f"{text!r} is not an access level (NAME or accessPolicies/NUMBER/accessLevels/NAME)")
    if match.group(1) != policy:
        raise ctx.fail(path, f"{text!r} is not in the perimeter's access policy accessPolicies/{policy}")
    if full not in levels:
        raise ctx.fail(path, f"{text!r} is not defined under perimeter.levels")
    return full


def _levels(ctx: _Ctx, raw: Any, policy: str) -> dict[str, AccessLevel]:
    out: dict[str, AccessLevel] = {}
    for key, body in _mapping(ctx, "perimeter.levels", raw).items():
        path = f"perimeter.levels.{key}"
        text = str(key)
        full = f"accessPolicies/{policy}/accessLevels/{text}" if _LEVEL_SHORT.match(text) else text
        match = _LEVEL_NAME.match(full)
        if match is None or match.group(1) != policy:
            raise ctx.fail(path, f"not an access level name of accessPolicies/{policy} (NAME or the full name)")
        spec = _mapping(ctx, path, body, {"combining_function", "conditions"})
        combining = spec.get("combining_function", "AND")
        if combining not in _COMBINING:
            raise ctx.fail(f"{path}.combining_function", f"expected AND or OR, got {_show(combining)}")
        conditions = _list(ctx, f"{path}.conditions", spec.get("conditions"), lambda p, v: _condition(ctx, p, v))
        if not conditions:
            raise ctx.fail(f"{path}.conditions", "a basic access level needs at least one condition")
        out[full] = AccessLevel(full, tuple(conditions), str(combining))
    return out


def _condition(ctx: _Ctx, path: str, raw: Any) -> LevelCondition:
    spec = _mapping(ctx, path, raw, {"members", "vpc_network_sources"})
    members = _list(ctx, f"{path}.members", spec.get("members", []), lambda p, v: _member(ctx, p, v))
    for i, m in enumerate(members):
        if not m.startswith(("user:", "serviceAccount:")):
            raise ctx.fail(f"{path}.members[{i}]", "an access level's members are user: or serviceAccount: only")
    networks = _list(
        ctx, f"{path}.vpc_network_sources", spec.get("vpc_network_sources", []), lambda p, v: _vpc_source(ctx, p, v)
    )
    if not members and not networks:
        raise ctx.fail(path, "a condition needs members and/or vpc_network_sources (nothing else is emulated)")
    return LevelCondition(frozenset(members), frozenset(networks))


def _vpc_source(ctx: _Ctx, path: str, raw: Any) -> str:
    """A VpcNetworkSource: {vpc_subnetwork: {network, vpc_ip_subnetworks}}; the IP ranges are not evaluated."""
    spec = _mapping(ctx, path, raw, {"vpc_subnetwork"})
    sub = _mapping(ctx, f"{path}.vpc_subnetwork", spec.get("vpc_subnetwork"), {"network", "vpc_ip_subnetworks"})
    _list(
        ctx,
        f"{path}.vpc_subnetwork.vpc_ip_subnetworks",
        sub.get("vpc_ip_subnetworks", []),
        lambda p, v: _str(ctx, p, v),
    )
    return _vpc(ctx, f"{path}.vpc_subnetwork.network", sub.get("network"))


def _ingress_rule(ctx: _Ctx, path: str, raw: Any, policy: str, levels: Mapping[str, AccessLevel]) -> IngressRule:
    spec = _mapping(ctx, path, raw, {"title", "from", "to"})
    frm = _mapping(ctx, f"{path}.from", spec.get("from"), {"identities", "identity_type", "sources"})
    identities = _list(ctx, f"{path}.from.identities", frm.get("identities", []), lambda p, v: _member(ctx, p, v))
    identity_type = frm.get("identity_type", "IDENTITY_TYPE_UNSPECIFIED")
    if identity_type not in _IDENTITY_TYPES:
        raise ctx.fail(f"{path}.from.identity_type", f"expected one of {', '.join(sorted(_IDENTITY_TYPES))}")
    if identity_type != "IDENTITY_TYPE_UNSPECIFIED" and identities:
        raise ctx.fail(f"{path}.from", "give identities or an identity_type, not both")
    if identity_type == "IDENTITY_TYPE_UNSPECIFIED" and not identities:
        raise ctx.fail(f"{path}.from", "needs identities or an identity_type (ANY_IDENTITY, …)")

    def source(p: str, v: Any) -> tuple[str, str]:
        item = _mapping(ctx, p, v, {"access_level", "resource"})
        if len(item) != 1:
            raise ctx.fail(p, "a source is exactly one of access_level or resource")
        if "access_level" in item:
            return ("access_level", _level_ref(ctx, f"{p}.access_level", item["access_level"], policy, levels, True))
        text = _str(ctx, f"{p}.resource", item["resource"])
        if _PROJECT_NUMBER_RESOURCE.match(text):
            return ("resource", text)
        return ("resource", _vpc(ctx, f"{p}.resource", text))

    sources = _list(ctx, f"{path}.from.sources", frm.get("sources"), source)
    if not sources:
        raise ctx.fail(f"{path}.from.sources", 'at least one source (an access level, "*", a project or a VPC network)')
    to = _mapping(ctx, f"{path}.to", spec.get("to", {}), {"operations", "resources"})

    def operation(p: str, v: Any) -> tuple[str, tuple[str, ...]]:
        item = _mapping(ctx, p, v, {"service_name", "method_selectors"})
        service = _str(ctx, f"{p}.service_name", item.get("service_name"))
        selectors = _list(
            ctx,
            f"{p}.method_selectors",
            item.get("method_selectors", [{"method": "*"}]),
            lambda q, w: _selector(ctx, q, w),
        )
        return (service, tuple(selectors))

    operations = _list(ctx, f"{path}.to.operations", to.get("operations", [{"service_name": "*"}]), operation)
    resources = _list(ctx, f"{path}.to.resources", to.get("resources", ["*"]), lambda p, v: _str(ctx, p, v))
    for i, r in enumerate(resources):
        if r != "*" and not _PROJECT_NUMBER_RESOURCE.match(r):
            raise ctx.fail(f"{path}.to.resources[{i}]", f'{r!r} is neither "*" nor projects/PROJECT_NUMBER')
    return IngressRule(
        identities=frozenset(identities),
        identity_type="" if identity_type == "IDENTITY_TYPE_UNSPECIFIED" else str(identity_type),
        sources=tuple(sources),
        operations=tuple(operations),
        resources=tuple(resources),
        title=str(spec.get("title", "")),
    )


def _selector(ctx: _Ctx, path: str, raw: Any) -> str:
    item = _mapping(ctx, path, raw, {"method", "permission"})
    if len(item) != 1:
        raise ctx.fail(path, "a method selector is exactly one of method or permission")
    key = next(iter(item))
    return (
        f"{key}:{_str(ctx, f'{path}.{key}', item[key])}"
        if key == "permission"
        else _str(ctx, f"{path}.method", item[key])
    )


def _event(ctx: _Ctx, path: str, raw: Any, start: datetime, ids: set[str], parents: set[str]) -> TimelineEvent:
    spec = _mapping(ctx, path, raw)
    action = spec.get("action")
    if action not in changes.ACTION_PARAMS:
        raise ctx.fail(
            f"{path}.action",
            f"expected one of {', '.join(sorted(changes.ACTION_PARAMS))}, got {_show(action)}",
        )
    params = {k: v for k, v in spec.items() if k not in ("at", "actor", "action")}
    allowed = changes.ACTION_PARAMS[action] | {"project"}
    _mapping(ctx, path, params, allowed)
    optional = _OPTIONAL_PARAMS - ({"service"} if action in ("disable_service", "enable_service") else set())
    missing = sorted(changes.ACTION_PARAMS[action] - optional - set(params))
    if missing:
        raise ctx.fail(f"{path}.{missing[0]}", f"required by action {action}")
    if "project" in params and params["project"] not in ids:
        raise ctx.fail(f"{path}.project", f"{params['project']!r} is not one of the scenario's projects")
    for key in ("member", "principal"):
        if key in params:
            _member(ctx, f"{path}.{key}", params[key])
    if "role" in params and not iam.known_role(str(params["role"])):
        raise ctx.fail(f"{path}.role", "unknown role")
    if "seconds" in params:
        _number(ctx, f"{path}.seconds", params["seconds"])
    if "models" in params:
        _list(ctx, f"{path}.models", params["models"], lambda p, v: _str(ctx, p, v))
    if "services" in params:
        _list(ctx, f"{path}.services", params["services"], lambda p, v: _str(ctx, p, v))
    if "resource" in params and params["resource"] not in parents:
        raise ctx.fail(f"{path}.resource", f"{params['resource']!r} is neither the organization nor a folder here")
    if "attached_to" in params and params["attached_to"] not in parents | {f"projects/{i}" for i in ids}:
        raise ctx.fail(
            f"{path}.attached_to", f"{params['attached_to']!r} is not the organization, a folder or a project"
        )
    if params.get("api_version", "v1") not in ("v1", "v1beta1"):
        raise ctx.fail(f"{path}.api_version", f"expected v1 or v1beta1, got {_show(params['api_version'])}")
    return TimelineEvent(
        at=_time(ctx, f"{path}.at", spec.get("at"), start),
        actor=_str(ctx, f"{path}.actor", spec.get("actor"), _EMAIL, "e-mail address"),
        action=str(action),
        params=params,
    )


# Building ---------------------------------------------------------------------------------------------


def policy_from_spec(project: Mapping[str, Any]) -> iam.Policy:  # a project, folder or organization spec
    """A validated project spec's bindings and audit logs as an IAM policy."""
    return iam.Policy(
        bindings=[iam.Binding(role, list(members)) for role, members in project["bindings"].items() if members],
        audit_configs=[
            iam.AuditConfig(s, [iam.AuditLogConfig(t) for t in types])
            for s, types in project["audit_logs"].items()
            if types
        ],
    )


def _apply(spec: dict[str, Any], world: World) -> None:
    """Replace the world's state with the scenario's (the clock object and the lock stay).

    Assumption: `POST /_emulator/reset` rebuilds everything, so tokens issued before it are unknown afterwards (401).
    """
    fresh = World(world.clock)
    world.__dict__.update({k: v for k, v in fresh.__dict__.items() if k not in ("lock", "clock")})
    if spec["mode"] == "virtual":
        world.clock.freeze(spec["start"])
    elif spec["mode"] == "running":
        world.clock.run_from(spec["start"])
    else:
        world.clock.unfreeze()
    world.principals = {spec["workload"]: "serviceAccount"}
    world.organization_id = spec["organization"]["name"].removeprefix("organizations/")
    world.nodes = {}
    for n in (spec["organization"], *spec["folders"]):
        world.nodes[n["name"]] = Node(
            name=n["name"],
            parent=n["parent"],
            display_name=n["display_name"],
            policy=policy_from_spec(n),
            allowed_models=n["allowed_models"],
            denied_services=n["denied_services"],
        )
    world.default_project = spec["projects"][0]["id"]
    apply_sections(world, spec, ["projects", *SECTIONS])
    world.timeline = list(spec["timeline"])
    world.event_runner = changes.run_event


def apply_project(world: World, p: Mapping[str, Any]) -> None:
    """A validated project spec onto the world: a new project, or an existing one updated in place (what services
    stored in it stays; its policy's etag moves on)."""
    project = world.projects.get(p["id"])
    if project is None:
        project = world.projects[p["id"]] = Project(project_id=p["id"], number=p["number"], policy=policy_from_spec(p))
    else:
        fresh = policy_from_spec(p)
        project.policy.bindings = fresh.bindings
        project.policy.audit_configs = fresh.audit_configs
        project.policy.etag_counter += 1
    project.services = set(p["services"])
    project.billing_enabled = p["billing"]
    project.allowed_models = p["allowed_models"]
    project.denied_services = p["denied_services"]
    project.parent = p["parent"]


def _apply_projects(world: World, spec: Mapping[str, Any], only: Collection[str] | None) -> None:
    for p in spec["projects"]:
        if only is None or p["id"] in only:
            apply_project(world, p)


def _apply_metadata(world: World, spec: Mapping[str, Any]) -> None:
    world.metadata_failure = spec["metadata_failure"]
    if spec["metadata_project"]:
        world.default_project = spec["metadata_project"]


def _apply_principals(world: World, spec: Mapping[str, Any]) -> None:
    for email in spec["principals"]:
        world.principals[email] = "serviceAccount" if email.endswith(".gserviceaccount.com") else "user"


# How each top-level section of a validated spec is applied to a world: by a whole build (every section) and by the
# admin API's PATCH (the sections the patch names). The hierarchy, the clock and the timeline are the build's alone.
SECTIONS: dict[str, Callable[[World, Mapping[str, Any]], None]] = {
    "workload": lambda world, spec: setattr(world, "workload", spec["workload"]),
    "region": lambda world, spec: setattr(world, "region", spec["region"]),
    "principals": _apply_principals,
    "deny": lambda world, spec: setattr(world, "deny_rules", list(spec["deny"])),
    "perimeter": lambda world, spec: setattr(world, "perimeter", spec["perimeter"]),
    "models": lambda world, spec: setattr(world, "models", {m: set(v) for m, v in spec["models"].items()}),
    "quota": lambda world, spec: setattr(world, "quota_rpm", dict(spec["quota"])),
    "logging": lambda world, spec: setattr(world, "ingestion_lag", timedelta(seconds=spec["lag"])),
    "tokens": lambda world, spec: setattr(world, "token_ttl", timedelta(seconds=spec["ttl"])),
    "metadata": _apply_metadata,
}


def apply_sections(world: World, spec: Mapping[str, Any], names: Collection[str]) -> None:
    """Apply the named sections of a validated spec; `projects` applies only the projects `names["projects"]` lists
    when `names` is a patch (a mapping), every project otherwise."""
    if "projects" in names:
        patched = names.get("projects") if isinstance(names, Mapping) else None
        _apply_projects(world, spec, patched)
    for key, apply in SECTIONS.items():
        if key in names:
            apply(world, spec)


# Export --------------------------------------------------------------------------------------------------------


def export(world: World) -> dict[str, Any]:
    """The live world in the scenario schema, so it can be read, edited and PATCHed back."""
    projects: dict[str, Any] = {}
    for p in world.projects.values():
        projects[p.project_id] = {
            "number": p.number,
            "services": sorted(p.services),
            "billing": p.billing_enabled,
            **_exported_policy(p),
            **({"parent": p.parent} if p.parent else {}),
        }
    org = world.organization
    folders = {
        n.name.removeprefix("folders/"): {"parent": n.parent, "display_name": n.display_name, **_exported_policy(n)}
        for n in world.nodes.values()
        if n.kind == "folders"
    }
    perimeter = None
    if world.perimeter is not None:
        pm = world.perimeter
        perimeter = {
            "name": pm.name,
            "organization_id": pm.organization_id,
            "projects": sorted(pm.projects),
            "restricted_services": sorted(pm.restricted_services),
            "refuse_outside": pm.refuse_outside,
            "ingress_members": sorted(pm.ingress_members),
            **({"violation_reason": pm.violation_reason} if pm.violation_reason else {}),
            "dry_run": pm.dry_run,
            "networks": sorted(pm.networks),
            "access_levels": list(pm.access_levels),
            "levels": {name: _exported_level(level) for name, level in pm.levels.items()},
            "ingress_rules": [_exported_rule(rule) for rule in pm.ingress_rules],
        }
    doc: dict[str, Any] = {
        "workload": world.workload,
        "region": world.region,
        "principals": sorted(e for e in world.principals if e != world.workload),
        "organization": {"id": world.organization_id, "display_name": org.display_name, **_exported_policy(org)},
        "folders": folders,
        "projects": projects,
        "deny": [
            {
                "principal": r.principal,
                "permission": r.permission,
                **({"attached_to": r.attached_to} if r.attached_to else {}),
            }
            for r in world.deny_rules
        ],
        "perimeter": perimeter,
        "models": {m: sorted(locs) for m, locs in world.models.items()},
        "quota": dict(world.quota_rpm),
        "logging": {"ingestion_lag_seconds": world.ingestion_lag.total_seconds()},
        "tokens": {"ttl_seconds": world.token_ttl.total_seconds()},
        "metadata": {"failure": world.metadata_failure},
    }
    if world.default_project not in world.projects:
        doc["metadata"]["project_id"] = world.default_project
    return doc


def _exported_level(level: AccessLevel) -> dict[str, Any]:
    return {
        "combining_function": level.combining_function,
        "conditions": [
            {
                **({"members": sorted(c.members)} if c.members else {}),
                **(
                    {"vpc_network_sources": [{"vpc_subnetwork": {"network": n}} for n in sorted(c.networks)]}
                    if c.networks
                    else {}
                ),
            }
            for c in level.conditions
        ],
    }


def _exported_rule(rule: IngressRule) -> dict[str, Any]:
    frm: dict[str, Any] = {"sources": [{kind: value} for kind, value in rule.sources]}
    if rule.identities:
        frm["identities"] = sorted(rule.identities)
    else:
        frm["identity_type"] = rule.identity_type
    operations = []
    for service, selectors in rule.operations:
        picks = [
            {"permission": s.removeprefix("permission:")} if s.startswith("permission:") else {"method": s}
            for s in selectors
        ]
        operations.append({"service_name": service, "method_selectors": picks})
    return {
        **({"title": rule.title} if rule.title else {}),
        "from": frm,
        "to": {"operations": operations, "resources": list(rule.resources)},
    }


def _exported_policy(holder: Project | Node) -> dict[str, Any]:
    policy = holder.policy
    doc: dict[str, Any] = {
        "bindings": {b.role: list(b.members) for b in policy.bindings},
        "audit_logs": {c.service: [lc.log_type for lc in c.audit_log_configs] for c in policy.audit_configs},
    }
    for key in ("allowed_models", "denied_services"):
        if getattr(holder, key) is not None:
            doc[key] = getattr(holder, key)
    return doc
