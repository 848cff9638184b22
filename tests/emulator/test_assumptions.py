"""The README's Assumptions list is the markers in the code (tools/assumptions.py), and the markers are read right."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

from tools.assumptions import README, ROOT, Assumption, collect, readme_list, readme_section, with_list

SAMPLE = textwrap.dedent(
    '''\
    """A module.

    Assumption: the first choice
    continues on this line.

    Not part of it.
    """

    # Assumption (unverified, see the docs): a comment
    # over two lines.
    #
    # Not part of it either.
    LIMIT = 3
    TEXT = "Assumption: a string that is not a docstring."


    class Store:
        """A store."""

        def put(self) -> int:
            """Put.

            Assumption (unverified): a method's docstring.
            Assumption: a second marker ends the first.
            """
            value = LIMIT  # Assumption: a comment after code.
            return value


    def helper() -> None:
        # Assumptions are not markers: no colon right after the word.
        pass
    '''
)

EXPECTED = [
    Assumption("pkg/mod.py", 3, "", "the first choice continues on this line."),
    Assumption("pkg/mod.py", 9, "", "(unverified, see the docs) a comment over two lines."),
    Assumption("pkg/mod.py", 23, "Store.put", "(unverified) a method's docstring."),
    Assumption("pkg/mod.py", 24, "Store.put", "a second marker ends the first."),
    Assumption("pkg/mod.py", 26, "Store.put", "a comment after code."),
]


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    folder = tmp_path / "pkg"
    folder.mkdir()
    (folder / "mod.py").write_text(SAMPLE, encoding="utf-8")
    (folder / "empty.py").write_text("X = 1  # no marker here\n", encoding="utf-8")
    return folder


def test_the_readme_list_is_the_markers_in_the_code() -> None:
    section = readme_section(README.read_text(encoding="utf-8"))
    stale = "emulator/README.md's Assumptions differ from the code's markers: run python -m tools.assumptions --write"
    assert section == readme_list(), stale


def test_markers_are_read_from_comments_and_docstrings(sample: Path) -> None:
    assert collect(sample, root=sample.parent) == EXPECTED


def test_the_list_is_numbered_grouped_by_file_and_names_the_place(sample: Path) -> None:
    assert readme_list(collect(sample, root=sample.parent)) == "\n".join(
        [
            "**`pkg/mod.py`**",
            "",
            "1. the first choice continues on this line.",
            "2. (unverified, see the docs) a comment over two lines.",
            "3. (unverified) a method's docstring. — `Store.put`",
            "4. a second marker ends the first. — `Store.put`",
            "5. a comment after code. — `Store.put`",
        ]
    )


def test_the_list_goes_between_the_marker_lines() -> None:
    start, end = "<!-- assumptions:start -->", "<!-- assumptions:end -->"
    readme = f"# Title\n\nIntro.\n\n{start}\n\nold\n\n{end}\n\n## Next\n"
    written = with_list(readme, "1. new")
    assert written == f"# Title\n\nIntro.\n\n{start}\n\n1. new\n\n{end}\n\n## Next\n"
    assert readme_section(written) == "1. new"
    with pytest.raises(ValueError, match="lacks the lines"):
        readme_section("# Title\n")


def _scope(tree: ast.Module, place: str) -> ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef:
    """The class or function `place` ("Class.method") names."""
    node: ast.AST = tree
    for name in place.split("."):
        node = next(
            child
            for child in ast.walk(node)
            if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and child.name == name
        )
    assert isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
    return node


def test_every_marker_has_a_text_and_a_real_place() -> None:
    found = collect()
    assert found
    for item in found:
        assert item.text.strip(" .()"), item
        assert not item.text.startswith("()"), item
        path = ROOT / item.path
        lines = path.read_text(encoding="utf-8").splitlines()
        assert "Assumption" in lines[item.line - 1], item
        if item.place:
            scope = _scope(ast.parse("\n".join(lines)), item.place)
            assert scope.lineno <= item.line <= (scope.end_lineno or scope.lineno), item
