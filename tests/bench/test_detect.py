"""`make bench-detect` at its smallest (one schedule, one phase), so it cannot rot unnoticed.

The real canary deployed by the deploy tool with the real gcloud, run by Scheduler on the emulator's clock, its
role removed just before a run and restored after the page. Asserts the report's shape and the goal's PASS (a page
within one period plus two minutes of the change, exactly once): both are on the emulator's clock, which the
emulator models, so they do not depend on the machine. About 45 s real (the deploy, and a denied run waiting out the
canary's 20 s audit-lag budget).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.prerequisites import need

ROOT = Path(__file__).resolve().parents[2]


def test_one_trial_detects_and_recovers(tmp_path: Path) -> None:
    need("gcloud")
    raw, table = tmp_path / "raw.json", tmp_path / "detect.md"
    argv = ["--schedules", "3", "--phases", "before", "--json", str(raw), "--output", str(table)]
    done = subprocess.run(
        [sys.executable, "-m", "bench.detect", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    results = json.loads(raw.read_text())

    [block] = results["schedules"]
    assert (block["schedule"], block["supported"], block["window_s"]) == ("*/3 * * * *", True, 240)
    [trial] = block["trials"]
    assert trial["error"] == ""
    assert (trial["phase"], trial["period_s"]) == ("before", 180)
    assert 150 <= trial["phase_s"] <= 180  # removed in the last seconds before the next run
    assert trial["denied_runs"] == 1
    assert trial["policies"] == ["Gemini canary: access denied"]
    # One incident, opened and closed once on each channel, every notification delivered.
    assert (trial["pages"], trial["undelivered"]) == (1, 0)
    [counts] = trial["incidents"].values()
    assert counts == {"OPEN email": 1, "OPEN webhook": 1, "CLOSED email": 1, "CLOSED webhook": 1}
    assert trial["webhook_received"] == 2  # the receiver took both posts
    # The next run denies, and the evaluation minute after it pages: within the goal's period + 2 minutes.
    assert 0 < trial["detect_s"] <= 180 + 120
    assert 0 < trial["to_run_s"] <= 30  # the run it missed by seconds
    assert trial["to_run_s"] + trial["run_s"] <= trial["detect_s"] <= trial["to_run_s"] + trial["run_s"] + 60
    # Closed about one alert window (240 s) after the last denied run, never before the role came back.
    assert 0 < trial["recover_s"] <= 240 + 60
    assert trial["opened_at"] < trial["closed_at"]

    text = table.read_text()
    assert text == done.stdout
    header = "| schedule | phase | change at | detect | = to the run + run + to the evaluation | recover |"
    assert header in text
    [row] = [line for line in text.splitlines() if line.startswith("| */3 * * * * | before |")]
    assert row.endswith("| PASS |")
    assert "- **PASS** */3 * * * * before: page within one period + 2 min (≤ 300 s) and exactly once" in text
    assert "MISS" not in text
