"""The cost model's arithmetic on hand-computed cases, and docs/costs.md kept equal to the model's output."""

from __future__ import annotations

import pytest

from bench import costs


def _by_name(projects: int, layout: str, regime: str, kind: str, free: bool = False) -> dict[str, float]:
    return {i.name: i.usd for i in costs.items(projects, layout, regime, kind, free)}


def test_one_function_project_today_marginal_by_hand() -> None:
    got = _by_name(1, "per-project", "today", "function")
    runs = 8_640
    assert got["Gemini tokens"] == pytest.approx(runs * 8 * 0.10e-6 + runs * 1 * 0.40e-6)  # 0.010368
    assert got["invocations"] == pytest.approx(runs * 0.40e-6)  # 0.003456
    assert got["CPU and memory"] == pytest.approx(runs * (0.167 * 0.000024 + 0.25 * 0.0000025))  # 0.04003
    assert got["Scheduler job"] == pytest.approx(0.10)
    assert got["custom metric volume"] == pytest.approx(4 * 8 * runs / 2**20 * 0.258)  # 0.06803
    assert got["the canary's log line"] == pytest.approx(3 * 1024 * runs / 2**30 * 0.50)  # 0.01236
    assert got["alert policies"] == 0
    assert costs.per_project(1, "per-project", "today", "function") == pytest.approx(0.2342, abs=1e-4)  # their sum


def test_announced_alerting_per_project_and_central_by_hand() -> None:
    # Per project: 3 metric references × $0.35 + 86,400 evaluations × 1 point × $0.50 per million.
    per_project = _by_name(200, "per-project", "announced", "function")["alert policies"]
    assert per_project == pytest.approx(200 * (3 * 0.35 + 86_400 * 0.50e-6))  # 218.64
    # Central, 200 projects: one scoping project, 3 references once; the points still grow with the fleet.
    central = _by_name(200, "central", "announced", "function")["alert policies"]
    assert central == pytest.approx(3 * 0.35 + 200 * 86_400 * 0.50e-6)  # 9.69
    # 10,000 projects need 27 scoping projects (375 each).
    assert costs.scopes(10_000) == 27
    assert costs.scopes(375) == 1
    assert costs.scopes(376) == 2
    big = _by_name(10_000, "central", "announced", "function")["alert policies"]
    assert big == pytest.approx(27 * 3 * 0.35 + 10_000 * 86_400 * 0.50e-6)  # 460.35


def test_central_layout_changes_only_alerting() -> None:
    for regime in costs.REGIMES:
        a = _by_name(10_000, "per-project", regime, "function")
        b = _by_name(10_000, "central", regime, "function")
        assert {k: v for k, v in a.items() if k != "alert policies"} == {
            k: v for k, v in b.items() if k != "alert policies"
        }
    # Central alerting keeps every project's Scheduler job.
    assert _by_name(10_000, "central", "announced", "job")["Scheduler job"] == pytest.approx(1_000.0)


def test_job_kind_by_hand() -> None:
    got = _by_name(1, "per-project", "today", "job")
    assert got["invocations"] == 0
    assert got["CPU and memory"] == pytest.approx(8_640 * 5 * (1 * 0.000018 + 0.5 * 0.000002))  # 0.82080


def test_free_allotments_by_hand() -> None:
    # One project on its own billing account: Scheduler, requests, CPU, metrics and Logging are all inside the free
    # allotments; only the tokens remain.
    got = _by_name(1, "per-project", "today", "function", free=True)
    assert got["Scheduler job"] == 0
    assert got["invocations"] == 0
    assert got["CPU and memory"] == 0
    assert got["custom metric volume"] == 0
    assert got["the canary's log line"] == 0
    assert sum(got.values()) == pytest.approx(got["Gemini tokens"])
    # 200 projects: 197 paid Scheduler jobs; CPU past 180,000 vCPU-s.
    fleet = _by_name(200, "per-project", "today", "function", free=True)
    assert fleet["Scheduler job"] == pytest.approx(197 * 0.10)
    vcpu_s = 200 * 8_640 * 0.167 - 180_000
    gib_s = 200 * 8_640 * 0.25 - 360_000
    assert fleet["CPU and memory"] == pytest.approx(vcpu_s * 0.000024 + gib_s * 0.0000025)


def test_build_minutes_by_hand() -> None:
    assert costs.build_minutes_cost(10_000, 2.6) == pytest.approx(10_000 * 2.6 / 60 * 0.006)  # 2.60
    assert costs.build_minutes_cost(10_000, 7.0, free_tiers=True) == 0  # 1,167 min < 2,500 free
    assert costs.build_minutes_cost(30_000, 7.0, free_tiers=True) == pytest.approx((3_500 - 2_500) * 0.006)


def test_goal_verdicts() -> None:
    assert costs.per_project(10_000, "central", "today", "function") < costs.GOAL_PER_PROJECT
    assert costs.per_project(10_000, "central", "announced", "function") > costs.GOAL_PER_PROJECT
    assert costs.per_project(10_000, "per-project", "announced", "function") > 1.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0, "central", "today", "function"), "projects must be at least 1"),
        ((1, "sideways", "today", "function"), "layout must be one of per-project, central"),
        ((1, "central", "tomorrow", "function"), "regime must be one of today, announced"),
        ((1, "central", "today", "vm"), "kind must be one of function, job"),
    ],
)
def test_bad_input_names_what_was_wrong(args: tuple[int, str, str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        costs.items(*args)


def test_docs_costs_md_is_the_models_output() -> None:
    text = costs.DOC.read_text()
    start, end = text.index(costs.START) + len(costs.START), text.index(costs.END)
    assert text[start:end].strip() == costs.render().strip(), "run: python -m bench.costs --write"
