"""The emulator's assumptions, from the markers in its code: `python -m tools.assumptions` prints the README's list,
`python -m tools.assumptions --write` puts it into emulator/README.md.

Where Google's behaviour is not documented or not verified, the emulator chooses, and says so where it chooses, with
a marker: `Assumption: the choice` or `Assumption (qualifier): the choice`, e.g. `Assumption (unverified): …`.

* In a comment, on its own line or after code: `# Assumption: …`. The following lines that hold only a comment
  continue it, up to an empty comment line, a line that is not only a comment, or the next marker.
* In a module, class or function docstring, at the start of a line: `Assumption: …`. The following lines of the
  same paragraph continue it, up to a blank line or the next marker.

emulator/README.md's "Assumptions" list is this module's output between the lines `<!-- assumptions:start -->` and
`<!-- assumptions:end -->` (tests/emulator/test_assumptions.py keeps them equal), so the code is the one source and
the list can neither miss a marker nor keep one the code dropped.
"""

from __future__ import annotations

import ast
import io
import re
import sys
import tokenize
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "emulator" / "README.md"
START = "<!-- assumptions:start -->"
END = "<!-- assumptions:end -->"
_MARKER = re.compile(r"^(Assumption(?:\s*\([^)]*\))?):\s*(.*)$")

_Scope = ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(frozen=True)
class Assumption:
    path: str  # relative to the repository root
    line: int
    place: str  # the innermost class or function around it, "Class.method" for a method, or "" for the module
    text: str  # "(qualifier) the choice" when the marker has a qualifier


def _places(tree: ast.Module) -> list[tuple[int, int, str]]:
    found: list[tuple[int, int, str]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                found.append((child.lineno, child.end_lineno or child.lineno, name))
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def _place(places: list[tuple[int, int, str]], line: int) -> str:
    inside = [(end - start, name) for start, end, name in places if start <= line <= end]
    return min(inside)[1] if inside else ""


def _marker(text: str) -> tuple[str, str] | None:
    """(the rendered label, the text after the colon) when `text` starts a marker."""
    match = _MARKER.match(text.strip())
    if match is None:
        return None
    qualifier = match.group(1).removeprefix("Assumption").strip()
    return (f"{qualifier} " if qualifier else ""), match.group(2).strip()


def _from_comments(source: str) -> list[tuple[int, str]]:
    """(line, text) of each comment marker, its continuation lines joined."""
    comments: dict[int, tuple[str, bool]] = {}  # line -> (text after '#', the line holds only the comment)
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            alone = not token.line[: token.start[1]].strip()
            comments[token.start[0]] = (token.string[1:].strip(), alone)
    found: list[tuple[int, str]] = []
    for line, (text, _) in sorted(comments.items()):
        start = _marker(text)
        if start is None:
            continue
        parts = [start[1]]
        following = line + 1
        while following in comments:
            more, alone = comments[following]
            if not alone or not more or _marker(more) is not None:
                break
            parts.append(more)
            following += 1
        found.append((line, start[0] + " ".join(parts)))
    return found


def _from_docstrings(tree: ast.Module) -> list[tuple[int, str]]:
    """(line, text) of each docstring marker, the rest of its paragraph joined."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if not isinstance(node, _Scope) or not node.body:
            continue
        first = node.body[0]
        if not (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)):
            continue
        if not isinstance(first.value.value, str):
            continue
        lines = first.value.value.splitlines()
        for k, line in enumerate(lines):
            start = _marker(line)
            if start is None:
                continue
            parts = [start[1]]
            for more in lines[k + 1 :]:
                if not more.strip() or _marker(more) is not None:
                    break
                parts.append(more.strip())
            found.append((first.lineno + k, start[0] + " ".join(parts)))
    return found


def collect(folder: Path = ROOT / "emulator", root: Path = ROOT) -> list[Assumption]:
    """Every marker under `folder`, in path and line order; paths relative to `root`."""
    found: list[Assumption] = []
    for path in sorted(folder.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
        places = _places(tree)
        rel = path.relative_to(root).as_posix()
        for line, text in sorted(_from_comments(source) + _from_docstrings(tree)):
            found.append(Assumption(rel, line, _place(places, line), text))
    return found


def readme_list(assumptions: list[Assumption] | None = None) -> str:
    """The README's list: numbered in file order, grouped by file, each with the class or function it sits in."""
    out: list[str] = []
    current = ""
    for number, item in enumerate(assumptions if assumptions is not None else collect(), 1):
        if item.path != current:
            current = item.path
            out += ["", f"**`{current}`**", ""]
        where = f" — `{item.place}`" if item.place else ""
        out.append(f"{number}. {item.text}{where}")
    return "\n".join(out).strip()


def readme_section(readme: str) -> str:
    """What the README holds between the start and end lines, without the blank lines around it."""
    _, start, rest = readme.partition(START + "\n")
    inside, end, _ = rest.partition(END)
    if not start or not end:
        raise ValueError(f"the README lacks the lines {START} and {END}")
    return inside.strip()


def with_list(readme: str, listing: str) -> str:
    """The README with `listing` between the start and end lines."""
    head, _, rest = readme.partition(START + "\n")
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n\n{listing}\n\n{END}{tail}"


def main(argv: list[str]) -> int:
    listing = readme_list()
    if argv == ["--write"]:
        readme = README.read_text(encoding="utf-8")
        readme_section(readme)  # both lines are there
        README.write_text(with_list(readme, listing), encoding="utf-8")
        return 0
    if argv:
        sys.stderr.write("usage: python -m tools.assumptions [--write]\n")
        return 2
    sys.stdout.write(listing + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
