"""`python -m bench.probe_imports SOURCE`: which client libraries one run of a canary loads.

Loads SOURCE as functions-framework does (`create_app`), answers one request through its test client against the
emulator the environment names, and prints one JSON line: the libraries loaded after the import and after the run.
A fresh process, so nothing else has imported them first.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys

from functions_framework import create_app

WATCHED = {
    "logging": "google.cloud.logging_v2",
    "resourcemanager": "google.cloud.resourcemanager_v3",
    "monitoring": "google.cloud.monitoring_v3",
    "aiplatform_v1": "google.cloud.aiplatform_v1",
    "aiplatform": "google.cloud.aiplatform",
    "vertexai": "vertexai",
}


def loaded() -> list[str]:
    return [name for name, module in WATCHED.items() if module in sys.modules]


def main() -> None:
    app = create_app(target="canary", source=sys.argv[1])
    at_start = loaded()
    with contextlib.redirect_stdout(io.StringIO()):  # the canary's own log line
        response = app.test_client().get("/")
    body = response.get_json(silent=True) or {}
    targets = body.get("targets") or [{}]
    print(
        json.dumps(
            {
                "status": response.status_code,
                "cause": targets[0].get("cause", body.get("cause")),
                "loaded_at_start": at_start,
                "loaded_after_run": loaded(),
                "logging_loaded": WATCHED["logging"] in sys.modules,
                "modules": len(sys.modules),
            }
        )
    )


if __name__ == "__main__":
    main()
