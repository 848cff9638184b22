"""`make bench` end to end at its smallest counts (`--quick`), so it cannot rot unnoticed.

Asserts structure and API call counts only, never timing or memory: those depend on the machine and are reported by
the bench as PASS/MISS, not tested. One run takes about 25 s (the naive reference's imports alone take 2 s a start).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
GENERATE = "google.cloud.aiplatform.v1.PredictionService.GenerateContent"
CREATE_SERIES = "google.monitoring.v3.MetricService.CreateTimeSeries"
TEST_PERMISSIONS = "google.cloud.resourcemanager.v3.Projects.TestIamPermissions"
LIST_ENTRIES = "google.logging.v2.LoggingServiceV2.ListLogEntries"


def _api_calls(run: dict[str, Any]) -> dict[str, int]:
    return {m: n for m, n in run["calls"].items() if not m.startswith("metadata.")}


def test_quick_bench_runs_end_to_end(tmp_path: Path) -> None:
    raw, table = tmp_path / "raw.json", tmp_path / "latest.md"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--json", str(raw), "--output", str(table)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    results = json.loads(raw.read_text())

    for phase in ("cold_healthy", "cold_denial"):
        assert [r["side"] for r in results[phase]] == ["ours", "naive"]  # alternating, one start each
        assert all(r["peak_rss_mib"] > 0 and r["wall_s"] > 0 for r in results[phase])  # measured, whatever the value
    assert [(r["status"], r["cause"]) for r in results["cold_healthy"]] == [(200, "ok"), (200, "ok")]
    for run in results["cold_denial"]:
        assert (run["status"], run["cause"]) == (502, "iam_permission_denied")
    ours_denial = results["cold_denial"][0]["evidence"]
    assert ours_denial["data_access"] == ours_denial["admin_activity"] == "found"

    assert sorted({r["side"] for r in results["warm"]}) == ["floor", "naive", "ours"]
    assert len(results["warm"]) == 9  # 3 runs per side
    for run in results["warm"]:
        assert run["status"] == 200
        assert _api_calls(run) == {GENERATE: 1, CREATE_SERIES: 1}

    by_world = {(r["world"], r["side"]): r for r in results["calls"]}
    assert set(by_world) == {(w, s) for w in ("healthy", "iam_denied") for s in ("ours", "naive")}
    for side in ("ours", "naive"):
        assert _api_calls(by_world["healthy", side]) == {GENERATE: 1, CREATE_SERIES: 1}
        denied = by_world["iam_denied", side]
        assert denied["cause"] == "iam_permission_denied"
        assert denied["calls"][GENERATE] == denied["calls"][CREATE_SERIES] == 1
        assert denied["calls"][TEST_PERMISSIONS] == 1
        assert 1 <= denied["calls"][LIST_ENTRIES] <= 3

    assert [p["cause"] for p in results["probe"]] == ["ok", "iam_permission_denied"]
    assert [p["logging_loaded"] for p in results["probe"]] == [False, True]  # the failure path alone loads it

    text = table.read_text()
    for heading in ("## 1. Cold start, healthy path", "## 3. Warm runs", "## 4. API calls per run", "## Targets"):
        assert heading in text
    verdicts = [line for line in text.splitlines() if line.startswith(("- **PASS**", "- **MISS**"))]
    assert len(verdicts) == len(results["targets"]) == 7
