"""The canary's cost model: list prices as named constants, each with its source, and the arithmetic per project and
per fleet, for both layouts (alert policies in every project, or once in a scoping project), both alerting regimes
(today's: alerting not charged; the announced one: per metric reference and per point returned) and both kinds
(a Cloud Run function, a Cloud Run job). No Google call: the figures are list prices read from Google's pricing
pages (USD, Tier 1 regions such as us-central1), and the tables in docs/costs.md are this module's output.

    python -m bench.costs            # print the generated part of docs/costs.md
    python -m bench.costs --write    # put it into docs/costs.md (tests/bench/test_costs.py keeps them equal)

Where a page was read, its title is named and the date it gave; "seen 2026-11-30" marks a page whose stored copy
carried no date. Where Google publishes no figure, the choice is marked "Assumption".

Assumption: a month is 30 days (Google's own alerting examples count 86,400 thirty-second periods a month), so the
canary's default schedule (every 5 minutes) runs 12 × 24 × 30 = 8,640 times.

Assumption: free allotments are counted once for the whole fleet, as if the fleet were the only user of one billing
account (Logging's is per project). The "marginal" figures assume other workloads have used them up already, which
is what a platform team with an existing billing account should budget.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "costs.md"
START = "<!-- costs:start -->"
END = "<!-- costs:end -->"

MIB = 1024 * 1024
GIB = 1024 * MIB
MILLION = 1_000_000

# --- the canary's own figures (this repository) -------------------------------------------------------------------

RUNS_PER_MONTH = 12 * 24 * 30  # every 5 minutes, 30 days
POINTS_PER_RUN = 4  # function/metrics.py: `runs` once, then success, latency and failures for each target (1 target)
# Cloud Monitoring bills custom metrics by bytes: 8 bytes a point for INT64 and DOUBLE values — "Google Cloud
# Observability pricing", Monitoring section (seen 2026-11-30).
BYTES_PER_POINT = 8
INPUT_TOKENS_PER_RUN = 8  # the probe's prompt, as counted by the emulator's and Vertex AI's usage metadata
OUTPUT_TOKENS_PER_RUN = 1  # max_output_tokens=1
LOG_LINE_BYTES = 3 * 1024  # the canary's one structured log line a run, ≈3 KiB with its evidence block
# deploy/spec.py MEMORY = "256Mi"; a 256 MiB function gets 0.167 vCPU ("Configure memory and vCPU limits", Cloud Run
# functions docs, memory/CPU table, seen 2026-11-30).
FUNCTION_MEMORY_GIB = 0.25
FUNCTION_VCPU = 0.167
# Assumption: ≈1 s billed a run (warm runs take ≈0.1 s, a cold start ≈1.3 s; Cloud Run rounds each up to 100 ms),
# as measured in BENCHMARKS.md.
FUNCTION_BILLED_S = 1.0
# A job's task defaults to 1 vCPU and 512 MiB ("Configure CPU limits for jobs" / "Configure memory limits for jobs",
# Cloud Run docs, seen 2026-11-30).
JOB_VCPU = 1.0
JOB_MEMORY_GIB = 0.5
# Assumption: a job's task is billed ≈5 s a run: every execution is a cold container (start, Python imports, the
# credentials, one Gemini call, one CreateTimeSeries). Not measured on Google; replace with a measured figure.
JOB_TASK_S = 5.0

# The policies README.md describes (deploy/policies): denied, degraded and silent are metric conditions, each naming
# one metric type (one metric reference each); denial_log is a log-match condition with none.
METRIC_CONDITIONS = 3
# Points a project's conditions return per evaluation while it is healthy: `silent` groups `runs` by project and job
# (one series); denied and degraded filter on failing causes, and a healthy run writes `failures` with cause=ok, so
# they return none. A failing project adds one series per failing cause for as long as it fails.
POINTS_PER_EVALUATION_HEALTHY = 1
# Assumption: a metric condition is evaluated every 30 s, as in Google's alerting pricing examples (86,400
# thirty-second execution periods in a 30-day month).
EVALUATIONS_PER_MONTH = 2 * 60 * 24 * 30

# --- list prices ---------------------------------------------------------------------------------------------------

# Cloud Scheduler: $0.10 a job per 31 days, billed per day; 3 jobs free per billing account (not per project); a
# paused job counts — "Google Cloud Scheduler pricing", cloud.google.com/scheduler/pricing (seen 2026-11-30).
SCHEDULER_JOB_MONTH = 0.10
SCHEDULER_FREE_JOBS = 3

# Cloud Run, Tier 1 regions — "Cloud Run pricing", cloud.google.com/run/pricing (seen 2026-11-30). Request-based
# billing (a function's default): per vCPU-second and GiB-second while a request is handled, plus per request; free
# per billing account: 180,000 vCPU-s, 360,000 GiB-s, 2 million requests.
RUN_REQ_VCPU_S = 0.000024
RUN_REQ_GIB_S = 0.0000025
RUN_REQUEST = 0.40 / MILLION
RUN_REQ_FREE_VCPU_S = 180_000
RUN_REQ_FREE_GIB_S = 360_000
RUN_FREE_REQUESTS = 2 * MILLION
# Instance-based rows ("services with CPU always allocated" and jobs share them): $0.000018 a vCPU-second, free
# 240,000 vCPU-s a month; no request charge (a job has no requests: Scheduler starts an execution through the Run
# Admin API).
RUN_JOB_VCPU_S = 0.000018
RUN_JOB_FREE_VCPU_S = 240_000
# Assumption (unverified): the same row's memory price and allotment, $0.000002 a GiB-second and 450,000 GiB-s free;
# the stored copy of the page was cut off before these two figures.
RUN_JOB_GIB_S = 0.000002
RUN_JOB_FREE_GIB_S = 450_000

# Cloud Monitoring custom metrics: $0.2580 a MiB from 150 to 100,000 MiB a month, the first 150 MiB free per billing
# account — "Google Cloud Observability pricing", cloud.google.com/stackdriver/pricing (seen 2026-11-30). A fleet of
# 10,000 projects writes ≈2,600 MiB, well inside the first paid tier.
METRIC_MIB = 0.2580
METRIC_FREE_MIB = 150

# Cloud Logging: $0.50 a GiB stored, the first 50 GiB a project a month free (effective July 1, 2018) — "Google Cloud
# Observability pricing", Cloud Logging summary (seen 2026-11-30). Log Router: no charge.
LOG_GIB = 0.50
LOG_FREE_GIB_PER_PROJECT = 50

# Alerting, the announced model: free until no sooner than 1 September 2027, then $0.35 a month per metric reference
# in a policy and $0.50 per million points returned by the policies' queries. Google's "Manage alerting costs" page
# (docs.cloud.google.com/monitoring/alerts/cost-control, seen 2026-11-30) confirms the model (a charge per metric
# reference, one per metric-threshold condition, plus points returned).
# Assumption (unverified): the two figures and the date; no stored copy of Google's price table carried them.
ALERT_METRIC_REFERENCE_MONTH = 0.35
ALERT_POINT = 0.50 / MILLION
# Assumption: a log-match condition has no metric reference and returns no points, so it costs nothing in either
# regime (Google's alerting pricing counts metric references and points).

# Metrics scopes: a scoping project supports 375 monitored projects (up to 3,500 without performance guarantees) —
# "Metrics scope" / managed-prometheus unusual configurations, cloud.google.com (seen 2026-11-30). Metrics scopes
# themselves carry no charge on the pricing page.
MONITORED_PROJECTS_PER_SCOPE = 375

# Vertex AI, Gemini 2.5 Flash-Lite: $0.10 per million input tokens, $0.40 per million output tokens (text).
# Assumption (unverified): figures as in README.md; no stored copy of Vertex AI's generative AI pricing page carried
# the row, and whether 2.5 Flash-Lite has a retirement date was not confirmed.
GEMINI_INPUT_TOKEN = 0.10 / MILLION
GEMINI_OUTPUT_TOKEN = 0.40 / MILLION

# Cloud Build: $0.006 a build-minute on e2-standard-2 (the default pool's default machine), 2,500 build-minutes free a
# month per billing account — "Cloud Build pricing", cloud.google.com/build/pricing (last updated 2025-08-25).
BUILD_MINUTE = 0.006
BUILD_FREE_MINUTES = 2_500
# Build time a project takes on one 2-vCPU worker (BENCHMARKS.md, the fleet benchmark, reads in-process): a first
# rollout is CPU-bound, ≈9.3 s of CPU a project (gcloud's deploys and grants) over 2 vCPUs; a no-change check starts no
# gcloud: 16 API calls a project at an assumed 0.25 s each (Google publishes no latency), 8 projects at once.
ROLLOUT_S_PER_PROJECT = 9.3 / 2
CHECK_S_PER_PROJECT = 16 * 0.25 / 8

LAYOUTS = ("per-project", "central")
REGIMES = ("today", "announced")
KINDS = ("function", "job")
FLEETS = (1, 200, 10_000)
GOAL_PER_PROJECT = 0.25


@dataclass(frozen=True)
class Item:
    """One line of the bill: the fleet's monthly dollars for it, and how they were reached."""

    name: str
    usd: float
    arithmetic: str


def _free(used: float, free: float, free_tiers: bool) -> float:
    return max(0.0, used - free) if free_tiers else used


def scopes(projects: int) -> int:
    """Scoping projects a central layout needs: one per 375 monitored projects."""
    return math.ceil(projects / MONITORED_PROJECTS_PER_SCOPE)


def items(projects: int, layout: str, regime: str, kind: str, free_tiers: bool = False) -> list[Item]:
    """The fleet's monthly bill, line by line. `free_tiers=False` is the marginal cost (allotments used elsewhere)."""
    if projects < 1:
        raise ValueError(f"projects must be at least 1, not {projects}")
    for value, allowed, what in ((layout, LAYOUTS, "layout"), (regime, REGIMES, "regime"), (kind, KINDS, "kind")):
        if value not in allowed:
            raise ValueError(f"{what} must be one of {', '.join(allowed)}, not {value!r}")
    n, runs = projects, RUNS_PER_MONTH
    out: list[Item] = []

    tokens_in, tokens_out = n * runs * INPUT_TOKENS_PER_RUN, n * runs * OUTPUT_TOKENS_PER_RUN
    out.append(
        Item(
            "Gemini tokens",
            tokens_in * GEMINI_INPUT_TOKEN + tokens_out * GEMINI_OUTPUT_TOKEN,
            f"{INPUT_TOKENS_PER_RUN} in × {runs:,} × $0.10/M + {OUTPUT_TOKENS_PER_RUN} out × {runs:,} × $0.40/M",
        )
    )

    if kind == "function":
        requests = _free(n * runs, RUN_FREE_REQUESTS, free_tiers)
        out.append(Item("invocations", requests * RUN_REQUEST, f"{runs:,} requests × $0.40/M"))
        vcpu_s = _free(n * runs * FUNCTION_BILLED_S * FUNCTION_VCPU, RUN_REQ_FREE_VCPU_S, free_tiers)
        gib_s = _free(n * runs * FUNCTION_BILLED_S * FUNCTION_MEMORY_GIB, RUN_REQ_FREE_GIB_S, free_tiers)
        out.append(
            Item(
                "CPU and memory",
                vcpu_s * RUN_REQ_VCPU_S + gib_s * RUN_REQ_GIB_S,
                f"{FUNCTION_BILLED_S:g} s × {runs:,} × ({FUNCTION_VCPU} vCPU × $0.000024 + "
                f"{FUNCTION_MEMORY_GIB} GiB × $0.0000025)",
            )
        )
    else:
        vcpu_s = _free(n * runs * JOB_TASK_S * JOB_VCPU, RUN_JOB_FREE_VCPU_S, free_tiers)
        gib_s = _free(n * runs * JOB_TASK_S * JOB_MEMORY_GIB, RUN_JOB_FREE_GIB_S, free_tiers)
        out.append(Item("invocations", 0.0, "a job execution has no request charge"))
        out.append(
            Item(
                "CPU and memory",
                vcpu_s * RUN_JOB_VCPU_S + gib_s * RUN_JOB_GIB_S,
                f"{JOB_TASK_S:g} s × {runs:,} × ({JOB_VCPU:g} vCPU × $0.000018 + {JOB_MEMORY_GIB} GiB × $0.000002)",
            )
        )

    jobs = _free(n, SCHEDULER_FREE_JOBS, free_tiers)
    out.append(Item("Scheduler job", jobs * SCHEDULER_JOB_MONTH, "1 job × $0.10 (central alerting keeps it)"))

    mib = _free(n * runs * POINTS_PER_RUN * BYTES_PER_POINT / MIB, METRIC_FREE_MIB, free_tiers)
    out.append(
        Item(
            "custom metric volume",
            mib * METRIC_MIB,
            f"{POINTS_PER_RUN} points × {BYTES_PER_POINT} B × {runs:,} = "
            f"{POINTS_PER_RUN * BYTES_PER_POINT * runs / MIB:.2f} MiB × $0.258",
        )
    )

    log_gib_project = runs * LOG_LINE_BYTES / GIB
    billed_log = n * (_free(log_gib_project, LOG_FREE_GIB_PER_PROJECT, free_tiers))
    out.append(
        Item(
            "the canary's log line",
            billed_log * LOG_GIB,
            f"3 KiB × {runs:,} = {log_gib_project * 1024:.0f} MiB × $0.50/GiB (50 GiB a project free)",
        )
    )

    if regime == "today":
        out.append(Item("alert policies", 0.0, "alerting is not charged before September 2027"))
    else:
        points = n * POINTS_PER_EVALUATION_HEALTHY * EVALUATIONS_PER_MONTH
        if layout == "per-project":
            refs = n * METRIC_CONDITIONS
            how = f"{METRIC_CONDITIONS} metric references × $0.35 in every project"
        else:
            refs = scopes(n) * METRIC_CONDITIONS
            how = f"{METRIC_CONDITIONS} metric references × $0.35 in each of {scopes(n)} scoping project(s)"
        out.append(
            Item(
                "alert policies",
                refs * ALERT_METRIC_REFERENCE_MONTH + points * ALERT_POINT,
                f"{how}, + {POINTS_PER_EVALUATION_HEALTHY} point × {EVALUATIONS_PER_MONTH:,} evaluations × $0.50/M "
                "a project",
            )
        )
    return out


def fleet_month(projects: int, layout: str, regime: str, kind: str, free_tiers: bool = False) -> float:
    return sum(i.usd for i in items(projects, layout, regime, kind, free_tiers))


def per_project(projects: int, layout: str, regime: str, kind: str, free_tiers: bool = False) -> float:
    return fleet_month(projects, layout, regime, kind, free_tiers) / projects


def build_minutes_cost(projects: int, seconds_per_project: float, free_tiers: bool = False) -> float:
    """One pass of the deploy tool over the fleet on Cloud Build (e2-standard-2), in dollars."""
    minutes = _free(projects * seconds_per_project / 60, BUILD_FREE_MINUTES, free_tiers)
    return minutes * BUILD_MINUTE


def routed_log_cost(projects: int) -> float:
    """If the log-match policy were central: the canary's log lines routed to the scoping project are stored there
    too (marginal, beyond the scoping project's 50 GiB)."""
    return projects * RUNS_PER_MONTH * LOG_LINE_BYTES / GIB * LOG_GIB


def job_compute(vcpu: float, memory_gib: float, task_s: float) -> float:
    """A job's CPU and memory a project a month (marginal), for other sizes than the default."""
    return RUNS_PER_MONTH * task_s * (vcpu * RUN_JOB_VCPU_S + memory_gib * RUN_JOB_GIB_S)


def alert_points(evaluations_per_month: int) -> float:
    """A healthy project's share of the points returned, a month, under the announced regime."""
    return POINTS_PER_EVALUATION_HEALTHY * evaluations_per_month * ALERT_POINT


def _money(x: float) -> str:
    return f"{x:.3f}" if x < 10 else f"{x:,.0f}"


def render() -> str:
    """The generated part of docs/costs.md."""
    lines: list[str] = []
    add = lines.append
    add("### One project, line by line (marginal: free allotments used elsewhere)\n")
    for kind in KINDS:
        add(f"**{kind}**, per-project layout:\n")
        add("| item | arithmetic | today $/month | announced $/month |")
        add("|---|---|---|---|")
        today = items(1, "per-project", "today", kind)
        announced = items(1, "per-project", "announced", kind)
        for a, b in zip(today, announced, strict=True):
            arith = b.arithmetic if a.name == "alert policies" else a.arithmetic
            add(f"| {a.name} | {arith} | {_money(a.usd)} | {_money(b.usd)} |")
        add(f"| **total** | | **{_money(sum(i.usd for i in today))}** | **{_money(sum(i.usd for i in announced))}** |")
        add("")
    add("### Per project and month, by fleet size\n")
    add("Marginal cost (free allotments used elsewhere); in brackets, with the free allotments of one billing account")
    add("that serves only the fleet.\n")
    add("| kind | layout | regime | " + " | ".join(f"{n:,} project{'s' if n > 1 else ''}" for n in FLEETS) + " |")
    add("|---|---|---|" + "---|" * len(FLEETS))
    for kind in KINDS:
        for layout in LAYOUTS:
            for regime in REGIMES:
                cells = [
                    f"{per_project(n, layout, regime, kind):.3f} ({per_project(n, layout, regime, kind, True):.3f})"
                    for n in FLEETS
                ]
                add(f"| {kind} | {layout} | {regime} | " + " | ".join(cells) + " |")
    add("")
    add("### Fleet per month (marginal)\n")
    add("| kind | layout | regime | " + " | ".join(f"{n:,}" for n in FLEETS) + " |")
    add("|---|---|---|" + "---|" * len(FLEETS))
    for kind in KINDS:
        for layout in LAYOUTS:
            for regime in REGIMES:
                cells = [f"${_money(fleet_month(n, layout, regime, kind))}" for n in FLEETS]
                add(f"| {kind} | {layout} | {regime} | " + " | ".join(cells) + " |")
    add("")
    add("### Rollout on Cloud Build (e2-standard-2)\n")
    add("| pass | " + " | ".join(f"{n:,} project{'s' if n > 1 else ''}" for n in FLEETS) + " |")
    add("|---|" + "---|" * len(FLEETS))
    for label, secs in (("first rollout", ROLLOUT_S_PER_PROJECT), ("no-change check", CHECK_S_PER_PROJECT)):
        cells = [
            f"{n * secs / 60:,.1f} min: ${build_minutes_cost(n, secs):.2f} (${build_minutes_cost(n, secs, True):.2f})"
            for n in FLEETS
        ]
        add(f"| {label} | " + " | ".join(cells) + " |")
    add("")
    add("### The goal: under $0.25 a project a month with central alerting\n")
    for kind in KINDS:
        for regime in REGIMES:
            worst = max(per_project(n, "central", regime, kind) for n in FLEETS[1:])
            verdict = "holds" if worst < GOAL_PER_PROJECT else "does not hold"
            add(f"- {kind}, {regime}: {verdict} from 200 projects up (at most ${worst:.3f} a project, marginal).")
    add(
        f"- Levers: a job of 0.5 vCPU and 512 MiB costs ${job_compute(0.5, 0.5, JOB_TASK_S):.3f} a project for CPU and "
        f"memory instead of ${job_compute(JOB_VCPU, JOB_MEMORY_GIB, JOB_TASK_S):.3f}, and "
        f"${job_compute(0.5, 0.5, 2.0):.3f} if its task takes 2 s; evaluating `silent` every 5 minutes (a PromQL "
        f"condition's evaluation interval) instead of every 30 s cuts its points from "
        f"${alert_points(EVALUATIONS_PER_MONTH):.4f} to ${alert_points(EVALUATIONS_PER_MONTH // 10):.4f} a project."
    )
    add(
        f"- Routing the canary's log lines to the scoping project instead of keeping the log-match policy per project "
        f"would add ${routed_log_cost(1):.3f} a project (marginal)."
    )
    return "\n".join(lines) + "\n"


def write(doc: Path = DOC) -> None:
    text = doc.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    doc.write_text(f"{head}{START}\n{render()}{END}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.costs", description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="put the tables into docs/costs.md")
    args = parser.parse_args(argv)
    if args.write:
        write()
    else:
        sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
