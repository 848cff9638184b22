"""The emulated Google APIs. Each module (or package) serves one API and ends with `SERVICE = Service(...)`: the APIs
it serves (name, title, gcloud's endpoint-override name), its methods and their HTTP rules. `REGISTRY` is the one
list of them: the front ends, gcloud's endpoint overrides and SERVICE_DISABLED's titles are all derived from it.
Services import `emulator.core` and `emulator.services.kit`, never a front end and never another service."""

from __future__ import annotations

from emulator.core.handlers import Api, Method, Service
from emulator.services import (
    ancestry,
    artifactregistry,
    cloudbuild,
    functions,
    iamadmin,
    iamcredentials,
    locations,
    pubsub,
    resourcemanager,
    run,
    runjobs,
    scheduler,
    serviceusage,
    storage,
    vertex,
)
from emulator.services.logging import service as logging
from emulator.services.monitoring import dashboards, metricsscopes
from emulator.services.monitoring import service as monitoring

# One line an API: the modules whose SERVICE the emulator serves.
MODULES = (
    vertex,
    logging,
    monitoring,
    dashboards,
    metricsscopes,
    resourcemanager,
    ancestry,
    serviceusage,
    functions,
    run,
    runjobs,
    scheduler,
    iamadmin,
    pubsub,
    cloudbuild,
    locations,
    iamcredentials,
    artifactregistry,
    storage,
)
REGISTRY: tuple[Service, ...] = tuple(module.SERVICE for module in MODULES)


def apis() -> dict[str, Api]:
    """Every API the registry serves, by service name (one record each, however many modules serve it)."""
    found: dict[str, Api] = {}
    for service in REGISTRY:
        for api in service.apis:
            if found.setdefault(api.name, api) != api:
                raise ValueError(f"{api.name} is declared twice, differently: {found[api.name]} and {api}")
    return found


def methods() -> list[Method]:
    return [method for service in REGISTRY for method in service.methods]
