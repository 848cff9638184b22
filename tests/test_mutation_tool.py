"""The mutation report's list of equivalent mutants (tools/equivalents/*.toml): the shipped files load, every entry
names a module in the mutation scope, and a malformed file is refused by name rather than silently dropped."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tools import mutation

ROOT = Path(__file__).resolve().parents[1]


def _in_scope(module: str) -> bool:
    scope = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mutmut"]["only_mutate"]
    path = module.replace(".", "/") + ".py"
    return any(Path(path).match(pattern) for pattern in scope)


def test_the_shipped_equivalents_load_and_name_mutants_in_scope() -> None:
    found = mutation.equivalents(ROOT / "tools" / "equivalents")
    assert found, "tools/equivalents/ holds no entry"
    for name, entry in found.items():
        assert "__mutmut_" in name, name
        module = entry.source.stem.split("+")[0]
        assert _in_scope(module), f"{entry.source.name}: {module} is not mutated"
        assert entry.line, name
        assert len(entry.why) > 3, f"{name}: reason key {entry.why!r} is not in the file's [reasons]"


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "function.causes.toml").write_text(text, encoding="utf-8")
    return tmp_path


def test_a_reason_key_is_resolved(tmp_path: Path) -> None:
    folder = _write(
        tmp_path,
        '[reasons]\nk = "never read"\n\n[[equivalent]]\nmutant = "function.causes.x_f__mutmut_1"\n'
        'line = "  x = 1  "\nwhy = "k"\n',
    )
    entry = mutation.equivalents(folder)["function.causes.x_f__mutmut_1"]
    assert (entry.line, entry.why) == ("x = 1", "never read")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[equivalent]\n", "not TOML"),
        ('[reason]\nk = "x"\n', "unknown table 'reason'"),
        ('[[explained]]\nmutant = "function.causes.x_f__mutmut_1"\nline = "x"\n', "explained #1: needs exactly"),
        ('[[equivalent]]\nmutant = "function.causes.x_f__mutmut_1"\nline = "x"\n', "needs exactly mutant, line"),
        ('[[equivalent]]\nmutant = "function.causes.x_f__mutmut_1"\nline = ""\nwhy = "w"\n', "non-empty"),
        ('[[equivalent]]\nmutant = "function.report.x_f__mutmut_1"\nline = "x"\nwhy = "w"\n', "not a mutant of"),
        (
            '[[equivalent]]\nmutant = "function.causes.x_f__mutmut_1"\nline = "x"\nwhy = "w"\n' * 2,
            "written down twice",
        ),
    ],
)
def test_a_malformed_file_is_refused_by_name(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SystemExit) as refused:
        mutation.equivalents(_write(tmp_path, text))
    assert "function.causes.toml" in str(refused.value)
    assert message in str(refused.value)


def test_an_explained_survivor_is_told_from_an_equivalent(tmp_path: Path) -> None:
    folder = _write(
        tmp_path,
        '[[equivalent]]\nmutant = "function.causes.x_f__mutmut_1"\nline = "a"\nwhy = "same"\n\n'
        '[[explained]]\nmutant = "function.causes.x_f__mutmut_2"\nline = "b"\nwhy = "timing only"\n',
    )
    found = mutation.equivalents(folder)
    assert [(e.kind, e.why) for e in found.values()] == [("equivalent", "same"), ("explained", "timing only")]
