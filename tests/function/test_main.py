"""The deployed entry point's cold start (function/main.py): a bad setting stops the start with one plain first
line (the variable, what it allows, the closest known name) before the traceback, in a real functions-framework
process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS_FRAMEWORK = Path(sys.executable).parent / "functions-framework"


@pytest.mark.parametrize(
    ("variable", "value", "first_line"),
    [
        (
            "CANARY_TARGET",
            "gemini-2.5-flash@us-central1",
            "gemini-canary cannot start: CANARY_TARGET: not a setting of the canary; did you mean CANARY_TARGETS? "
            "known: CANARY_AUDIT_LAG_BUDGET_SECONDS,",
        ),
        (
            "CANARY_DEADLINE_SECONDS",
            "1",
            "gemini-canary cannot start: CANARY_DEADLINE_SECONDS: 1 is out of range; allowed: 5 to 540",
        ),
    ],
)
def test_a_bad_setting_is_the_first_line_and_the_start_fails(variable: str, value: str, first_line: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CANARY_")}
    env[variable] = value
    done = subprocess.run(
        [str(FUNCTIONS_FRAMEWORK), "--target", "canary", "--source", "function/main.py", "--port", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    lines = done.stderr.splitlines()
    assert lines[0].startswith(first_line)
    assert lines[1] == "Traceback (most recent call last):"
