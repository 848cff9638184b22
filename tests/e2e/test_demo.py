"""`make run` as a newcomer runs it: the story ends with the page received and the recovery notice, and says how long
detection and recovery took."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.prerequisites import need

ROOT = Path(__file__).resolve().parents[2]


def test_make_run_tells_the_whole_story() -> None:
    need("gcloud")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GCE_METADATA", "CLOUDSDK_"))}
    done = subprocess.run(
        [sys.executable, "-m", "devkit.demo"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    for said in (
        "Cloud Scheduler runs the canary → HEALTHY",
        "alice@example.com removes roles/aiplatform.user",
        "Cloud Scheduler runs the canary → DENIED",
        "The alert policy opened an incident; 2 notifications received:",
        "Subject: Gemini access denied: iam_permission_denied for gemini-2.5-flash-lite@us-central1 in demo-proj",
        "**Fix:** `gcloud projects add-iam-policy-binding demo-proj",
        "The incident closed; 2 recovery notices received:",
        "1 page for the incident",
    ):
        assert said in out, out[-4000:]
    assert out.index("→ DENIED") < out.index("opened an incident") < out.index("restores") < out.index("closed;")
