"""Raw results → the Markdown tables `make bench` prints and writes to bench/results/latest.md, and the targets of
the benchmarks issue as PASS/MISS lines (reported as measured, never asserted)."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from collections.abc import Iterable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.runs import CREATE_SERIES, GENERATE, GET_POLICY, LIST_ENTRIES, TEST_PERMISSIONS

PACKAGES = (
    "functions-framework",
    "google-cloud-aiplatform",
    "google-cloud-logging",
    "google-cloud-monitoring",
    "google-cloud-resource-manager",
    "google-api-core",
    "google-auth",
    "grpcio",
    "protobuf",
    "proto-plus",
)
CALL_COLUMNS = (
    ("GenerateContent", (GENERATE,)),
    ("CreateTimeSeries", (CREATE_SERIES,)),
    ("TestIamPermissions", (TEST_PERMISSIONS,)),
    ("GetIamPolicy", (GET_POLICY,)),
    ("ListLogEntries", (LIST_ENTRIES,)),
)


def machine() -> dict[str, Any]:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in _lines("/proc/cpuinfo") if line.startswith("model name")), "?"
    )
    mem_kib = next((int(line.split()[1]) for line in _lines("/proc/meminfo") if line.startswith("MemTotal")), 0)
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "packages": {name: _version(name) for name in PACKAGES},
        "source": source_state(),
    }


def source_state() -> str:
    """Which function/ was measured: the commit, and whether its files differed from it (others edit concurrently)."""

    def git(*args: str) -> str:
        root = Path(__file__).resolve().parent.parent
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout

    try:
        head, dirty = git("rev-parse", "--short", "HEAD").strip(), git("status", "--porcelain", "function/")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    changed = len(dirty.splitlines())
    return f"commit {head}" + (f", {changed} uncommitted change(s) in function/" if changed else "")


def _lines(path: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "-"


# Statistics ---------------------------------------------------------------------------------------------


def values(runs: Iterable[dict[str, Any]], side: str, key: str) -> list[float]:
    return [float(r[key]) for r in runs if r["side"] == side and r.get(key) is not None]


def median(runs: list[dict[str, Any]], side: str, key: str) -> float | None:
    found = values(runs, side, key)
    return statistics.median(found) if found else None


def cell(found: list[float], digits: int) -> str:
    if not found:
        return "-"
    mid = statistics.median(found)
    return f"{mid:.{digits}f} ({min(found):.{digits}f}–{max(found):.{digits}f})"


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a is not None and b else "-"


def compare(runs: list[dict[str, Any]], rows: list[tuple[str, str, int]]) -> list[str]:
    out = ["| | ours: median (min–max) | naive: median (min–max) | ours / naive |", "|---|---|---|---|"]
    for label, key, digits in rows:
        ours, naive = values(runs, "ours", key), values(runs, "naive", key)
        mid = [statistics.median(v) if v else None for v in (ours, naive)]
        out.append(f"| {label} | {cell(ours, digits)} | {cell(naive, digits)} | {ratio(*mid)} |")
    return out


# Tables -------------------------------------------------------------------------------------------------

COLD_ROWS = [
    ("process start → first answer, s", "wall_s", 2),
    ("  of which start → port listening (imports, gunicorn), s", "listening_s", 2),
    ("  of which the first request (fork, clients, calls), s", "first_request_s", 3),
    ("peak RSS: gunicorn worker VmHWM, MiB", "peak_rss_mib", 1),
    ("gunicorn master VmHWM, MiB", "master_hwm_mib", 1),
    ("master + worker PSS after the answer (shared pages once), MiB", "tree_pss_mib", 1),
]
WARM_ROWS = [
    ("run, wall time at the caller, ms", "wall_ms", 2),
    ("  of which inside the emulator's handlers, ms", "emulator_ms", 2),
    ("**overhead: wall − emulator, ms**", "overhead_ms", 2),
    ("the function's own timer (inside the framework), ms", "function_ms", 2),
]


def calls_row(run: dict[str, Any]) -> str:
    calls = run["calls"]
    counts = [str(sum(calls.get(m, 0) for m in methods)) for _, methods in CALL_COLUMNS]
    metadata_calls = sum(n for m, n in calls.items() if m.startswith("metadata."))
    other = sum(n for m, n in calls.items() if not m.startswith("metadata.")) - sum(map(int, counts))
    return f"| {run['world']} | {run['side']} | {run['cause']} | {' | '.join(counts)} | {other} | {metadata_calls} |"


def calls_table(runs: list[dict[str, Any]]) -> list[str]:
    head = " | ".join(name for name, _ in CALL_COLUMNS)
    return [
        f"| world | side | cause | {head} | other | metadata server |",
        "|---|---|---|" + "---|" * (len(CALL_COLUMNS) + 2),
        *(calls_row(r) for r in runs),
    ]


def floor_lines(runs: list[dict[str, Any]]) -> list[str]:
    """The floor side (bench/floor/) and what each canary costs above it."""
    floor = median(runs, "floor", "overhead_ms")
    if floor is None:
        return []
    wall, handlers = median(runs, "floor", "wall_ms"), median(runs, "floor", "emulator_ms")
    above = [f"{side} {m - floor:.2f} ms" for side in ("ours", "naive") if (m := median(runs, side, "overhead_ms"))]
    return [
        f"Floor (bench/floor/: functions-framework and the same two calls as bare gRPC, served the same way): "
        f"wall {wall:.2f} ms, handlers {handlers:.2f} ms, **overhead {floor:.2f} ms** (medians). "
        f"Overhead above the floor, i.e. each canary's own code: {', '.join(above)}."
    ]


def evidence_line(runs: list[dict[str, Any]]) -> list[str]:
    out = []
    for side in ("ours", "naive"):
        first = next((r for r in runs if r["side"] == side), None)
        if first is not None:
            shown = ", ".join(f"{k}: {v}" for k, v in first["evidence"].items()) or "none"
            out.append(f"- {side}: cause `{first['cause']}`, HTTP {first['status']}; evidence: {shown}")
    return out


def load_lines(load: dict[str, float], cpus: int) -> list[str]:
    if not load:
        return []
    shown = ", ".join(f"{phase} {value:g}" for phase, value in load.items())
    lines = [f"Load average (1 min) as each phase started: {shown}."]
    # The bench itself keeps about one CPU busy (the function, the emulator and the caller take turns), so a load
    # above the CPU count means other work was queueing for them too.
    if max(load.values()) > cpus:
        lines.append(
            "**Busy machine:** other processes competed for the CPUs during this run; its timings are inflated "
            "and noisier than on an idle machine (call counts and memory are not affected)."
        )
    return lines


def render(results: dict[str, Any], targets: list[tuple[bool, str]]) -> str:
    m, o = results["machine"], results["options"]
    packages = ", ".join(f"{k} {v}" for k, v in m["packages"].items())
    lines = [
        "# Benchmarks: the canary (ours) against the naive reference (bench/naive/)",
        "",
        f"{m['date']} · {m['nproc']} CPUs ({m['cpu']}) · {m['memory_gib']} GiB · Python {m['python']} · "
        f"kernel {m['kernel']}",
        f"Packages: {packages}",
        f"Ours measured at: {m['source']}",
        f"Command: `{o['command']}` — {o['runs']} cold starts per side per path, {o['warm']} warm runs per side, "
        "ours and naive alternating (A B A B …); the emulator in its own process.",
        *load_lines(results.get("load", {}), m["nproc"] or 1),
        "",
        "## 1. Cold start, healthy path",
        "",
        *compare(results["cold_healthy"], COLD_ROWS),
        "",
        "## 2. Cold start, denial path with full evidence",
        "",
        "World: `data_access_on`, then alice removes roles/aiplatform.user from the workload (audited now).",
        "",
        *compare(results["cold_denial"], COLD_ROWS),
        "",
        *evidence_line(results["cold_denial"]),
        "",
        "## 3. Warm runs, healthy path (each run writes its metrics)",
        "",
        *compare(results["warm"], WARM_ROWS),
        "",
        *floor_lines(results["warm"]),
        "",
        "## 4. API calls per run, by method (a fresh instance for each world)",
        "",
        *calls_table(results["calls"]),
        "",
        "## 5. Client libraries ours loads (a fresh process, one run through functions-framework's test client)",
        "",
        "| world | cause | loaded after import | loaded after the run | modules |",
        "|---|---|---|---|---|",
        *(
            f"| {p['world']} | {p['cause']} | {', '.join(p['loaded_at_start'])} | {', '.join(p['loaded_after_run'])} "
            f"| {p['modules']} |"
            for p in results["probe"]
        ),
        "",
        "## Targets",
        "",
        *(f"- **{'PASS' if ok else 'MISS'}** {text}" for ok, text in targets),
    ]
    if results.get("profile"):
        lines += ["", "## Profile of ours' warm runs", "", "```", results["profile"].rstrip(), "```"]
    return "\n".join(lines) + "\n"
