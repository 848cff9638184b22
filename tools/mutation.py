"""`make mutation`: run mutmut over the scopes in pyproject.toml's [tool.mutmut], then report the score.

    python -m tools.mutation                        # the whole scope (incremental: mutmut keeps ./mutants)
    python -m tools.mutation --fresh                # from nothing: ./mutants removed first
    python -m tools.mutation 'function.causes.*'    # some mutants only (mutmut's name globs)
    python -m tools.mutation --survivors            # after adding tests: re-check only what was not killed
    python -m tools.mutation --report-only          # the report of the results already in ./mutants

The report (counts per module and scope, the score, every survivor with its diff) prints on stdout and goes to
mutants/report.md. Progress goes to stderr. Run it from the repository root, where pyproject.toml is.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import platform
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections import Counter
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from mutmut.configuration import config
from mutmut.mutation.data import SourceFileMutationData
from mutmut.mutation.diff_apply import get_diff_for_mutant
from mutmut.stats import status_by_exit_code
from mutmut.utils.file_utils import walk_all_files, walk_mutatable_files

SCOPES = {  # module → scope, as MUTATION.md groups them
    "function/": "function/ (the canary)",
    "deploy/reconcile.py": "deploy/reconcile.py, the rest (function, scheduler, dashboard: gcloud tests only)",
    "emulator/core/iam.py": "emulator/core/iam.py + emulator/core/audit.py",
    "emulator/core/audit.py": "emulator/core/iam.py + emulator/core/audit.py",
}
IAM_SCOPE = "deploy/reconcile.py, IAM handling (grants, their record, build role, audit logs, public members)"
# The deploy tool's IAM handling: its functions in deploy/reconcile.py (mutmut's mangled names).
IAM_FUNCTIONS = {
    "x_member", "x__members", "x__data_read_on", "xǁManifestǁtext", "xǁManifestǁparse",
    "xǁProjectǁ_invoker_account", "xǁProjectǁ_policy", "xǁProjectǁ_held", "xǁProjectǁ_grants",
    "xǁProjectǁ_add_grant", "xǁProjectǁ_settle", "xǁProjectǁbuilder", "xǁProjectǁ_build_account",
    "xǁProjectǁ_remove_grant", "xǁProjectǁ_data_access_logs", "xǁProjectǁ_set_policy",
    "xǁProjectǁ_with_policy_file", "xǁProjectǁ_service_policy", "xǁProjectǁ_invoker_binding",
    "xǁProjectǁ_save_manifest", "xǁProjectǁteardown",
}  # fmt: skip
HEADER = (
    "| {} | mutants | killed | timeout | survived | equivalent | explained | no tests | other | score | unreviewed |"
)
RULE = "|---|---|---|---|---|---|---|---|---|---|---|"
KINDS = ("equivalent", "explained")  # the tables of tools/equivalents/*.toml, and the status each gives
EQUIVALENTS = Path("tools/equivalents")
NOT_KILLED = ("survived", "no tests", "suspicious")
DETECTED = ("killed", "timeout", "caught by type check", "segfault")


def _scope(path: str, name: str) -> str:
    if path == "deploy/reconcile.py" and re.sub(r"__mutmut_\d+$", "", name.split(".", 2)[2]) in IAM_FUNCTIONS:
        return IAM_SCOPE
    return next(scope for prefix, scope in SCOPES.items() if path.startswith(prefix))


def _sync_unmutated() -> int:
    """mutmut copies the source packages into ./mutants once and never again; the files it does not mutate (the rest
    of emulator/ and deploy/, data files) are brought up to date here, so a later run does not test today's tests
    against last week's helpers. The files it mutates it regenerates itself when their source changed."""
    copied = 0
    for root, name in walk_all_files():
        source = Path(root) / name
        target = Path("mutants") / source
        if not source.is_file() or (source.suffix == ".py" and config().should_mutate(source)):
            continue
        if not target.is_file() or target.read_bytes() != source.read_bytes():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
            copied += 1
    return copied


def _run(names: list[str], children: int) -> float:
    mutmut = Path(sys.executable).with_name("mutmut")
    started = time.monotonic()
    if Path("mutants").is_dir():
        print(f"{_sync_unmutated()} unmutated files brought up to date in ./mutants", file=sys.stderr)
    # mutmut's progress goes to stderr with the rest; it exits 0 whatever survived, 1 when the clean run of the
    # tests failed or the setup is wrong: then there is nothing to report.
    done = subprocess.run([str(mutmut), "run", "--max-children", str(children), *names], check=False, stdout=sys.stderr)
    if done.returncode != 0:
        raise SystemExit(f"mutmut run failed with exit status {done.returncode} (see its output above)")
    return time.monotonic() - started


def survivors(patterns: list[str]) -> list[str]:
    """The mutants the last run did not kill, among those the name globs select (all when none are given).
    Re-checking only these after adding tests is sound as long as no test was removed or weakened."""
    names = []
    for path in walk_mutatable_files():
        data = SourceFileMutationData(path=path)
        data.load()
        names += [
            name
            for name, code in data.exit_code_by_key.items()
            if status_by_exit_code[code] in NOT_KILLED
            and (not patterns or any(fnmatch.fnmatch(name, p) for p in patterns))
        ]
    return sorted(names)


class Equivalent:
    """One surviving mutant written down: its name, the mutated line as `mutmut show` prints it (stripped), and why.
    `kind` "equivalent": no input can tell it from the original (left out of the score); "explained": reviewed and
    left alive on purpose, with the reason no test kills it (it still counts against the score)."""

    def __init__(self, source: Path, mutant: str, line: str, why: str, kind: str = "equivalent") -> None:
        self.source, self.mutant, self.line, self.why, self.kind = source, mutant, line, why, kind


def equivalents(folder: Path = EQUIVALENTS) -> dict[str, Equivalent]:
    """Every entry of tools/equivalents/*.toml (MODULE.toml, or MODULE+PART.toml when several files share a
    module), by mutant name. A file's `[reasons]` table names reasons several entries share; an entry's `why` is
    one of its keys or the reason itself. Malformed files are refused by name."""
    found: dict[str, Equivalent] = {}
    for source in sorted(folder.glob("*.toml")):
        try:
            doc = tomllib.loads(source.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise SystemExit(f"{source}: not TOML: {exc}") from None
        unknown = set(doc) - {"reasons", *KINDS}
        if unknown:
            raise SystemExit(f"{source}: unknown table {sorted(unknown)[0]!r}; allowed: reasons, {', '.join(KINDS)}")
        reasons = doc.get("reasons", {})
        for kind, index, entry in [(k, i, e) for k in KINDS for i, e in enumerate(doc.get(k, []), 1)]:
            where = f"{source}: {kind} #{index}"
            if set(entry) != {"mutant", "line", "why"} or not all(isinstance(v, str) and v for v in entry.values()):
                raise SystemExit(f"{where}: needs exactly mutant, line and why, each a non-empty string")
            module = source.stem.split("+", 1)[0]  # function.evidence+logs.toml: a second file for one module
            if not entry["mutant"].startswith(module + "."):
                raise SystemExit(f"{where}: {entry['mutant']} is not a mutant of {module}")
            if entry["mutant"] in found:
                raise SystemExit(f"{where}: {entry['mutant']} is written down twice")
            why = reasons.get(entry["why"], entry["why"])
            found[entry["mutant"]] = Equivalent(source, entry["mutant"], entry["line"].strip(), why, kind)
    return found


def _mutated_line(diff: list[str]) -> str:
    return next((line[1:].strip() for line in diff if line.startswith("+")), "")


def _diff(name: str, path: str) -> list[str]:
    lines = get_diff_for_mutant(name, path=path).splitlines()
    return [line for line in lines if line[:1] in "-+" and not line.startswith(("---", "+++"))]


def report(seconds: float | None, command: str) -> tuple[str, dict[str, float | None]]:
    known = equivalents()
    per_module: dict[str, Counter[str]] = {}
    by_scope: dict[str, Counter[str]] = {}
    survivors: list[tuple[str, str, str, list[str]]] = []
    stale: list[str] = []
    seen: set[str] = set()
    for path in sorted(str(p) for p in walk_mutatable_files()):
        data = SourceFileMutationData(path=path)
        data.load()
        if not data.exit_code_by_key:
            continue
        counts = per_module.setdefault(path, Counter())
        for name, code in sorted(data.exit_code_by_key.items()):
            seen.add(name)
            status = status_by_exit_code[code]
            diff = _diff(name, path) if status in NOT_KILLED else []
            entry = known.get(name)
            if entry is not None and status in NOT_KILLED:
                if _mutated_line(diff) == entry.line:
                    status = entry.kind
                else:
                    now = _mutated_line(diff)
                    stale.append(f"`{name}` ({entry.source}): written down for `{entry.line}`, now `{now}`")
            elif entry is not None and status in DETECTED:
                stale.append(f"`{name}` ({entry.source}): written down as equivalent, yet {status}")
            counts[status] += 1
            by_scope.setdefault(_scope(path, name), Counter())[status] += 1
            if status in NOT_KILLED or status in KINDS:
                survivors.append((path, name, status, diff))
    run_modules = {name.split(".x", 1)[0] for name in seen}
    stale += [
        f"`{name}` ({entry.source}): no such mutant any more"
        for name, entry in sorted(known.items())
        if name not in seen and name.split(".x", 1)[0] in run_modules
    ]

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
    dirty = subprocess.run(["git", "status", "--porcelain", "--", *SCOPES], capture_output=True, text=True, check=False)
    out = [
        "# Mutation testing: the run",
        "",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- tool: mutmut {version('mutmut')}, pytest {version('pytest')}, Python {platform.python_version()}",
        f"- commit: {commit.stdout.strip() or '?'}" + (" (scoped sources modified)" if dirty.stdout.strip() else ""),
        f"- command: `{command}`",
        f"- time: {seconds:.0f} s" if seconds is not None else "- time: (report only)",
        f"- machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the end",
        "",
        HEADER.format("module"),
        RULE,
    ]
    scores: dict[str, float | None] = {}
    for path, counts in per_module.items():
        out.append(_row(path, counts))
    out += ["", HEADER.format("scope"), RULE]
    for scope, counts in sorted(by_scope.items()):
        out.append(_row(scope, counts))
        scores[scope] = _score(counts)
    out += [
        "",
        "score = (killed + timeout + caught by type check) / (all − skipped − not checked − equivalent); "
        "explained = reviewed and left alive, with why (counted as survived in the score); "
        "unreviewed = survived or reached by no test, and not written down in tools/equivalents/",
        "",
    ]
    if stale:
        title = "## Stale entries (the source changed under them, or a test failed by chance: review them)"
        out += [title, "", *(f"- {s}" for s in stale), ""]
    out += ["## Survivors", ""]
    for _path, name, status, diff in survivors:
        why = f": {known[name].why}" if status in KINDS else ""
        out.append(f"- `{name}` ({status}{why})")
        out += [f"  `{line.strip()}`" for line in diff]
    return "\n".join(out) + "\n", scores


def _score(counts: Counter[str]) -> float | None:
    total = sum(counts.values()) - counts["skipped"] - counts["not checked"] - counts["equivalent"]
    return sum(counts[s] for s in DETECTED) / total if total else None


def _percent(score: float | None) -> str:
    return "–" if score is None else f"{score:.1%}"


def _row(name: str, counts: Counter[str]) -> str:
    known = ("killed", "timeout", "survived", "equivalent", "explained", "no tests")
    other = sum(n for status, n in counts.items() if status not in known)
    unreviewed = sum(counts[s] for s in NOT_KILLED)
    cells = [str(sum(counts.values())), *(str(counts[s]) for s in known), str(other), _percent(_score(counts))]
    cells.append(str(unreviewed))
    return f"| {name} | " + " | ".join(cells) + " |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.mutation", description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="mutant name globs, e.g. 'function.causes.*' (default: all)")
    parser.add_argument("--fresh", action="store_true", help="remove ./mutants first (no cached results)")
    parser.add_argument("--survivors", action="store_true", help="re-check only the mutants not killed last time")
    parser.add_argument("--report-only", action="store_true", help="report the results already in ./mutants")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2, help="parallel mutants")
    args = parser.parse_args(argv)
    if not Path("pyproject.toml").is_file():
        raise SystemExit("run from the repository root (pyproject.toml holds [tool.mutmut])")
    if args.fresh:
        shutil.rmtree("mutants", ignore_errors=True)
    names = survivors(args.names) if args.survivors else args.names
    if args.survivors and not names:
        print("no survivors to re-check", file=sys.stderr)
    seconds = None if args.report_only or (args.survivors and not names) else _run(names, args.max_children)
    command = "python -m tools.mutation " + " ".join(sys.argv[1:] if argv is None else argv)
    text, scores = report(seconds, command.strip())
    Path("mutants").mkdir(exist_ok=True)
    Path("mutants/report.md").write_text(text, encoding="utf-8")
    print(text)
    for scope, score in scores.items():
        print(f"{scope}: {_percent(score)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
