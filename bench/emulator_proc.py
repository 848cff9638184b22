"""The emulator in its own process (`python -m emulator`), driven
through its admin API only.

One emulator serves a whole benchmark. A scenario is switched in by rebuilding the world (POST /reset), putting its
clock on wall time (the canary stamps audit-log bounds and metric points with its own clock), and PATCHing the
shipped scenario's document over it: PATCH of a scenario's merged document onto a fresh `healthy` world gives the
same world as building that scenario (checked for every shipped cause scenario). Audit-log ingestion lag is set to
0, so a denial's own audit entry is there on the first look and no run waits out its lag budget.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from emulator.core.scenario import load_document

ROOT = Path(__file__).resolve().parent.parent
WORKLOAD_MEMBER = "serviceAccount:canary-workload@demo-proj.iam.gserviceaccount.com"


class AdminError(RuntimeError):
    pass


class EmulatorProcess:
    def __init__(self) -> None:
        env = {**os.environ, "GRPC_VERBOSITY": "NONE"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "emulator", "--scenario", "healthy"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the emulator exited before printing its endpoints ({self.process.wait()})")
        self.info: dict[str, str] = json.loads(line)

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def client_env(self) -> dict[str, str]:
        """What points google.auth, the canary and the naive one at this emulator (cf. Emulator.client_env)."""
        return {
            "GCE_METADATA_HOST": self.info["metadata"],
            "GCE_METADATA_IP": self.info["metadata"],
            "CANARY_EMULATOR_GRPC": self.info["grpc"],
            "NAIVE_REST_ENDPOINT": self.info["rest"],
        }

    def admin(self, verb: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.info['admin']}/{path}", data=data, method=verb, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as err:
            raise AdminError(f"{verb} /_emulator/{path}: {err.code} {err.read().decode()[:300]}") from None

    def switch(self, scenario: str) -> None:
        """A fresh world as the shipped scenario describes it (timeline aside), on wall time, audit lag 0."""
        doc = load_document(scenario)
        for key in ("description", "clock", "timeline"):
            doc.pop(key, None)
        doc["logging"] = {"ingestion_lag_seconds": 0}
        self.admin("POST", "reset")
        self.admin("POST", "clock", {"mode": "wall"})
        self.admin("PATCH", "world", doc)

    def remove_role(self, role: str = "roles/aiplatform.user") -> None:
        """alice removes the workload's role now: the Admin Activity entry the denial's evidence should find."""
        action = {"actor": "alice@example.com", "action": "remove_binding", "role": role, "member": WORKLOAD_MEMBER}
        self.admin("POST", "actions", action)

    def reset_calls(self) -> None:
        self.admin("DELETE", "calls")

    def timings(self) -> tuple[dict[str, int], dict[str, float]]:
        """Calls served since the last reset_calls, and the seconds spent inside their handlers, by method."""
        doc = self.admin("GET", "timings")
        return doc["calls"], doc["seconds"]
