"""`make bench-fleet` end to end at two projects (the real gcloud against the emulator), so it cannot rot unnoticed.

Asserts what the benchmark counts, never its timings (those depend on the machine): both sides deploy and then find
nothing to change; the same API calls either way; a no-change check in-process starts no gcloud at all, through
gcloud it starts one a read; the report carries the projection's arithmetic and the cost per project.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.prerequisites import need

ROOT = Path(__file__).resolve().parents[2]


def test_the_fleet_benchmark_runs_both_sides_at_two_projects(tmp_path: Path) -> None:
    need("gcloud")
    raw, markdown = tmp_path / "fleet.json", tmp_path / "fleet.md"
    done = subprocess.run(
        [sys.executable, "-m", "bench.fleet", "--projects", "2", "--parallel", "2", "--json", str(raw),
         "--markdown", str(markdown)],
        cwd=ROOT, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(raw.read_text())
    reference, ours = (result["sides"][side]["runs"] for side in ("reference", "in-process reads"))
    for side in (reference, ours):
        assert [(r["exit"], r["statuses"]) for r in side] == [(0, {"created": 2}), (0, {"unchanged": 2})]
        assert all(r["cpu_per_project_s"] > 0 for r in side)  # measured, whatever the value
    for first, second in zip(reference, ours, strict=True):
        assert first["calls_by_method_per_project"] == second["calls_by_method_per_project"]  # the same work
    assert ours[1]["gcloud_per_project"] == 0  # a no-change check starts no gcloud process
    assert ours[1]["inprocess_reads_per_project"] == reference[1]["gcloud_per_project"] > 0  # one read each
    assert ours[0]["gcloud_per_project"] < reference[0]["gcloud_per_project"]  # gcloud kept for changes only
    assert "functions deploy" in ours[0]["gcloud_by_command"]
    text = markdown.read_text()
    assert "10,000 projects / 10 builds = 1,000 projects a build" in text
    assert "central, announced: $" in text
    assert result["sides"]["reference"]["startup"]["cpu_s"] > 0
