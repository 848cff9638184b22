"""The emulator's house plan, checked: each part imports only what its first lines allow, every service module is in
the registry once, and the README's API table is the registry's."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest

from emulator import services
from emulator.core.handlers import JsonMethod, Service
from emulator.server import gcloud_apis

ROOT = Path(__file__).resolve().parents[2]
# Services that use another service's resource the way Google's services do: a gen2 function is a Cloud Run
# service, and a function's or a job's identity is an IAM service account (actAs).
CROSS_SERVICE = {
    # a gen2 function's event trigger is an Eventarc push subscription on its Pub/Sub topic
    ("emulator.services.functions", "emulator.services.pubsub"),
    ("emulator.services.functions", "emulator.services.iamadmin"),
    ("emulator.services.functions", "emulator.services.run"),
    ("emulator.services.scheduler", "emulator.services.iamadmin"),
    # A job runs as its service account: creating or changing it needs actAs on that account (IAM Admin's).
    ("emulator.services.runjobs", "emulator.services.iamadmin"),
    # A job's image is an Artifact Registry image; Cloud Run's builds:submit starts a Cloud Build build.
    ("emulator.services.runjobs", "emulator.services.artifactregistry"),
    ("emulator.services.runjobs", "emulator.services.cloudbuild"),
    # A build reads its source from Cloud Storage, pushes its image to Artifact Registry, and checks requirements.txt
    # as a function's build does (services/functions.py, unsatisfied).
    ("emulator.services.cloudbuild", "emulator.services.storage"),
    ("emulator.services.cloudbuild", "emulator.services.artifactregistry"),
    ("emulator.services.cloudbuild", "emulator.services.functions"),
    # Impersonation looks the target account (and each delegate) up, with its own allow policy, in IAM Admin.
    ("emulator.services.iamcredentials", "emulator.services.iamadmin"),
    # A log-match alert condition is a Logging query over the project's entries; a Pub/Sub notification channel
    # publishes the incident to a topic.
    ("emulator.services.monitoring.alerting", "emulator.services.logging"),
    ("emulator.services.monitoring.notify", "emulator.services.pubsub"),
}


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found |= {f"{node.module}.{alias.name}" for alias in node.names} | {node.module}
    return found


def _ours(name: str) -> bool:
    return name.split(".", maxsplit=1)[0] in {"emulator", "function", "deploy", "devkit", "bench", "tests", "tools"}


def _allowed(module: str, imported: str) -> bool:
    if not _ours(imported):
        return True
    if imported.split(".", maxsplit=1)[0] != "emulator":
        return False  # the emulator imports nothing of the canary, the deploy tool or the tooling
    if module.startswith("emulator.core"):
        return imported == "emulator" or imported.startswith("emulator.core")
    if module.startswith("emulator.frontends"):
        return imported.startswith(("emulator.core", "emulator.frontends")) or imported == "emulator"
    if module.startswith("emulator.runtime"):
        return imported in ("emulator", "emulator.services") or imported.startswith(
            (
                "emulator.core",
                "emulator.runtime",
                "emulator.frontends.httpserver",
                "emulator.frontends.metadata",
                "emulator.services.functions",
                "emulator.services.iamadmin",
                "emulator.services.runjobs",  # the job tasks it runs
            )
        )
    if module == "emulator.services":  # the registry
        return True
    if module.startswith("emulator.services"):
        own_package = module.rsplit(".", 1)[0]
        return (
            imported.startswith(("emulator.core", "emulator.services.kit", own_package + "."))
            or imported in ("emulator", "emulator.services", own_package)
            or any(module == a and imported.startswith(b) for a, b in CROSS_SERVICE)
        )
    return True  # server.py and __main__.py assemble everything


SOURCES = sorted((ROOT / "emulator").rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_each_part_imports_only_what_it_may(path: Path) -> None:
    module = _module(path)
    wrong = sorted(name for name in _imports(path) if not _allowed(module, name))
    assert wrong == [], f"{module} may not import {wrong} (emulator/__init__.py says who imports what)"


FORBIDDEN = {  # what the product's two parts never import
    "function": {"emulator", "devkit", "bench", "tests", "tools", "deploy"},
    "deploy": {"emulator", "devkit", "bench", "tests", "tools"},
}


@pytest.mark.parametrize("top", sorted(FORBIDDEN))
def test_the_product_never_imports_the_emulator_or_the_tooling(top: str) -> None:
    wrong = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in sorted((ROOT / top).rglob("*.py"))
        for name in _imports(path)
        if name.split(".")[0]
        in {"emulator", "devkit", "bench", "tests", "tools"} | ({"deploy"} if top == "function" else set())
    }
    assert wrong == set()


def test_every_service_module_is_registered_once() -> None:
    declared = []
    for path in sorted((ROOT / "emulator" / "services").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if any(
            isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "SERVICE" for t in n.targets) for n in tree.body
        ):
            declared.append(_module(path))
    registered = [module.__name__ for module in services.MODULES]
    assert sorted(registered) == sorted(set(registered)) == sorted(declared)
    assert all(isinstance(service, Service) for service in services.REGISTRY)


def test_method_names_are_unique_and_every_rule_reaches_a_method() -> None:
    names = [method.full_name for method in services.methods()]
    assert len(names) == len(set(names))
    for service in services.REGISTRY:
        own = {method.full_name for method in service.methods}
        assert {rule.method for rule in service.rules} <= own, "a module's rules route to its own methods only"
        served = {method.api for method in service.methods}
        assert served <= {api.name for api in service.apis} | {""}, f"methods of an API {service} does not declare"


def test_a_rest_only_method_has_an_http_rule() -> None:
    routed = {rule.method for service in services.REGISTRY for rule in service.rules}
    missing = [m.full_name for m in services.methods() if isinstance(m, JsonMethod) and m.full_name not in routed]
    assert missing == []


def registry_table() -> str:
    """The README's table, rendered from the registry."""
    rows = ["| API | title (SERVICE_DISABLED's `serviceTitle`) | gcloud override | module |", "|---|---|---|---|"]
    modules: dict[str, list[str]] = {}
    for module in services.MODULES:
        for api in module.SERVICE.apis:
            modules.setdefault(api.name, []).append(f"`{module.__name__.replace('.', '/')}.py`")
    for name, api in sorted(services.apis().items()):
        gcloud = f"`{api.gcloud}`" if api.gcloud else "–"
        rows.append(f"| `{name}` | {api.title} | {gcloud} | {', '.join(modules[name])} |")
    return "\n".join(rows)


def test_the_readme_table_is_the_registry() -> None:
    text = (ROOT / "emulator" / "README.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- registry:start -->\n(.*?)<!-- registry:end -->", text, re.S)
    assert found is not None, "emulator/README.md lost its registry table markers"
    assert found.group(1).strip() == registry_table(), "regenerate it: python -m tests.emulator.test_layout"


def test_gcloud_is_pointed_here_for_exactly_the_registered_overrides() -> None:
    assert gcloud_apis() == sorted({api.gcloud for api in services.apis().values() if api.gcloud})
    assert "AIPLATFORM" in gcloud_apis()


if __name__ == "__main__":
    print(registry_table())


NEW_API = '''
"""Example API v1: one REST-only method, as the emulator README's recipe writes a new API."""

from emulator.core.handlers import Api, Call, Doc, HttpRule, JsonMethod, Service, json_method
from emulator.services.kit import admit, caller_denied, text

API = "example.googleapis.com"
PROTO = "google.example.v1.Examples"


def get_thing(call: Call, request: Doc) -> Doc:
    name = text(request, "name")
    project = admit(call, name.split("/")[1], API, "example.things.get", caller_denied)
    return {"name": name, "project": project.number}


METHODS: list[JsonMethod] = [json_method(PROTO, "GetThing", get_thing, API, {"name": None})]
RULES = [HttpRule("GET", "/v1/{name=projects/*/things/*}", f"{PROTO}.GetThing")]
SERVICE = Service(apis=(Api(API, "Example API", gcloud="EXAMPLE"),), methods=(*METHODS,), rules=(*RULES,))
'''


def test_a_new_rest_only_api_is_one_module_and_one_registry_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's recipe, followed: the module above and one more entry in MODULES. Routes, the gcloud override,
    SERVICE_DISABLED's title and the admin API's fault targets all follow; nothing else is edited."""
    import importlib.util
    import json
    import urllib.error
    import urllib.request

    from devkit.emulated import admin, token_for
    from emulator.server import Emulator

    source = tmp_path / "example.py"
    source.write_text(NEW_API, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("emulator.services.example", source)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(services, "MODULES", (*services.MODULES, module))  # the one registry line
    monkeypatch.setattr(services, "REGISTRY", tuple(m.SERVICE for m in services.MODULES))

    def get(emu: Emulator, path: str) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(
            f"{emu.rest_url}{path}", headers={"Authorization": f"Bearer {token_for(emu, 'alice@example.com')}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    with Emulator("healthy") as emu:
        assert "CLOUDSDK_API_ENDPOINT_OVERRIDES_EXAMPLE" in emu.gcloud_env(tmp_path / "home", "alice@example.com")
        status, body = get(emu, "/v1/projects/demo-proj/things/t1")
        assert (status, body["error"]["details"][0]["reason"]) == (403, "SERVICE_DISABLED")
        assert body["error"]["details"][0]["metadata"]["serviceTitle"] == "Example API"
        code, _ = admin(emu, "PATCH", "world", {"projects": {"demo-proj": {"services": ["example.googleapis.com"]}}})
        assert code == 200
        code, fault = admin(emu, "POST", "faults", {"method": "google.example.v1.Examples.GetThing", "count": 1,
                                                    "status": {"code": 14, "message": "down"}})  # fmt: skip
        assert code == 201, fault
        assert get(emu, "/v1/projects/demo-proj/things/t1")[0] == 503
        assert get(emu, "/v1/projects/demo-proj/things/t1") == (
            200,
            {"name": "projects/demo-proj/things/t1", "project": emu.world.projects["demo-proj"].number},
        )
