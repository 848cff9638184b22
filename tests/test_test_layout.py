"""The tests mirror the code: pytest imports test modules by their file name (its default import mode, with no
packages under tests/), so two test files with one name would fail the whole collection; and a test of one canary
module is named after it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
# Suites that test across modules rather than one of them: mutants pinned by module family, reviewed survivors.
ACROSS = ("test_mutants", "test_survivors")


def test_every_test_file_name_is_unique_across_the_tree() -> None:
    names = Counter(path.name for path in TESTS.rglob("test_*.py"))
    assert [name for name, count in names.items() if count > 1] == []


def test_the_canary_tests_are_named_after_the_module_they_test() -> None:
    modules = {path.stem for path in (ROOT / "function").glob("*.py")}
    strays = [
        path.name
        for path in (TESTS / "function").glob("test_*.py")
        if path.stem.removeprefix("test_") not in modules and not path.stem.startswith(ACROSS)
    ]
    assert strays == []
