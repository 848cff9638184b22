"""The README's tables are the code's facts: every variable with its default, every metric, cause and role."""

from __future__ import annotations

from pathlib import Path

import pytest

from function.causes import Cause
from function.config import VARIABLES
from function.metrics import SCHEMA
from function.roles import ROLES

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


@pytest.mark.parametrize("name", sorted(VARIABLES))
def test_every_variable_is_documented_with_its_default(name: str) -> None:
    default, meaning = VARIABLES[name]
    assert f"| `{name}` | `{default}` | {meaning} |" in README


@pytest.mark.parametrize("metric", SCHEMA, ids=lambda m: m.name)
def test_every_metric_is_documented(metric) -> None:
    row = (
        f"| `custom.googleapis.com/gemini_canary/{metric.name}` | {metric.kind} {metric.value_type} | "
        f"{metric.unit} | {', '.join(metric.labels)} | {metric.description} |"
    )
    assert row in README


@pytest.mark.parametrize("cause", list(Cause), ids=str)
def test_every_cause_has_a_row(cause: Cause) -> None:
    assert f"| `{cause}` |" in README


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r.role)
def test_every_role_is_documented(role) -> None:
    assert f"| `{role.role}` | {'yes' if role.required else 'no'} |" in README
