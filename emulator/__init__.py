"""A local Google Cloud for rehearsing how a Gemini workload fails: `python -m emulator --scenario NAME`.

The real client libraries and the real `gcloud` talk to it over the real wire protocols (gRPC with
`grpc-status-details-bin`, REST with the google.rpc.Status JSON body) and raise their real errors.

Layout, and what each part may import (a test checks it):
- `core/`: the world, IAM, audit entries, admin changes, scenarios, the handler contract, google.rpc.Status;
  imports only `emulator.core`.
- `services/`: one module or package per emulated API, each ending with `SERVICE = Service(...)`; `REGISTRY` in
  `services/__init__.py` is the one list of them. Imports `emulator.core` and `emulator.services.kit`.
- `frontends/`: gRPC, REST (+ transcoding), the metadata server, the admin API, the HTTP server; imports
  `emulator.core` and the registry, never a service module.
- `runtime/`: what runs deployed code: a gen2 function's revision served from its uploaded source by the real
  functions-framework as its own service account, its output as log entries, Cloud Run's ingress in front of it.
  Imports `emulator.core`, the metadata front end and HTTP server, and the services whose resources it serves.
- `server.py` assembles them (ports + the registry); `__main__.py` is the command line; `scenarios/` the shipped
  worlds. Nothing here imports `function/`, `deploy/` or `devkit/`.
"""
