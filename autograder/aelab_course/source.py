"""Lab sources: percent-format Python files in solutions/ that become nbgrader source notebooks.

A source is plain Python, readable and diffable, split into cells by ``# %%`` lines:

``# %% [markdown]``                         a markdown cell; its lines start with ``# ``
``# %% [markdown] answer id=ID points=N``   a manually graded written answer
``# %% setup``                              the read-only setup cell (its code comes from SETUP_TEMPLATE)
``# %% solution id=ID``                     code the students write (``### BEGIN/END SOLUTION`` marks it)
``# %% test id=ID points=N``                an autograded test cell (``### BEGIN/END HIDDEN TESTS`` inside)
``# %% readonly id=ID``                     code students may run but not edit
``# %% readonly id=ID include=LAB:CELL,...``  the same, holding the reference answers of an earlier
                                            lab's cells (e.g. ``include=lab02_fc:train_epoch``): a later
                                            lab gets an earlier lab's model or loop this way, in the
                                            notebook, never from the student package
``# %%``                                    ordinary code

Test cells leave the student's names alone: every name a test cell binds at its top level
(assignments, imports, functions, loop variables) starts with ``_``, so a student's helper called
``F``, ``vq`` or ``mean`` survives grading. Put the checks in a function, ``def _test_x(): ...``,
and call it. A test cell also must not end with an expression that has a value (nbgrader would
read a number there as the cell's score).
"""

from __future__ import annotations

import ast
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .paths import NOTEBOOKS, ROOT, SOLUTIONS, course_config  # noqa: F401 - re-exported for the tools

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}

SETUP_TEMPLATE = '''\
# Setup (read-only): run this first.
# On Colab it installs the course's helper package, aelab {version}, from the course's student
# repository; --no-deps keeps Colab's own torch and torchvision. Elsewhere it uses the aelab you
# installed (see the course README).
import subprocess, sys
if "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "aelab @ {install_url}"], check=True)
import aelab
device = aelab.setup_notebook({title!r}, version={version!r})'''

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"


def install_url(config: dict | None = None) -> str:
    """Where the setup cell installs the student package from: the tag v<version> of the student repo."""
    config = config or course_config()
    return f"git+{config['student_repo']}@v{config['student_version']}#subdirectory=package"


class SourceError(ValueError):
    """A lab source file is malformed; the message names the file and line."""


@dataclass(frozen=True)
class Lab:
    """One lab: its id (also the nbgrader assignment and notebook name) and its source file."""

    lab_id: str
    path: Path

    @property
    def title(self) -> str:
        return "Lab " + self.lab_id[3:5]

    @property
    def short(self) -> str:
        """"lab01": the name its metrics are recorded under."""
        return self.lab_id[:5]


def labs(selected: list[str] | None = None) -> list[Lab]:
    """Every lab in solutions/ (lab01_*.py, lab02_*.py, ...), or those named in `selected`."""
    found = [Lab(p.stem, p) for p in sorted(SOLUTIONS.glob("lab[0-9][0-9]_*.py"))]
    if not selected:
        return found
    by_id = {lab.lab_id: lab for lab in found}
    short = {lab.short: lab for lab in found}
    chosen = []
    for name in selected:
        lab = by_id.get(name) or short.get(name)
        if lab is None:
            raise SourceError(f"no lab called {name!r}; the labs are {', '.join(by_id)}")
        chosen.append(lab)
    return chosen


_HEADER = re.compile(r"^# %%(?:\s+\[(?P<type>markdown)\])?(?P<rest>.*)$")
_KINDS = {"setup", "solution", "test", "readonly", "answer"}


def _parse_header(line: str, where: str) -> tuple[str, str | None, dict[str, str]]:
    match = _HEADER.match(line)
    assert match
    cell_type = "markdown" if match["type"] else "code"
    words = shlex.split(match["rest"])
    kind = words[0] if words and "=" not in words[0] else None
    if kind is not None and kind not in _KINDS:
        raise SourceError(f"{where}: unknown cell kind {kind!r}; use one of {sorted(_KINDS)}")
    options = {}
    for word in words[1 if kind else 0:]:
        if "=" not in word:
            raise SourceError(f"{where}: expected key=value, got {word!r}")
        key, value = word.split("=", 1)
        options[key] = value
    return cell_type, kind, options


@dataclass(frozen=True)
class RawCell:
    """One cell of a source file as written: its header, its lines and where it starts."""

    cell_type: str
    kind: str | None
    options: dict
    lines: tuple[str, ...]
    where: str

    @property
    def grade_id(self) -> str | None:
        return self.options.get("id") or ("setup" if self.kind == "setup" else None)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def raw_cells(path: Path) -> list[RawCell]:
    """The cells of a source file, in order, without interpretation."""
    cells: list[RawCell] = []
    header: tuple[str, str | None, dict[str, str], str] | None = None
    body: list[str] = []

    def flush() -> None:
        if header is None:
            return
        lines = body[:]
        while lines and not lines[-1].strip():
            lines.pop()
        while lines and not lines[0].strip():
            lines.pop(0)
        cell_type, kind, options, where = header
        cells.append(RawCell(cell_type, kind, options, tuple(lines), where))

    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.startswith("# %%"):
            flush()
            where = f"{path.name}:{number}"
            header = (*_parse_header(line, where), where)
            body = []
        elif header is None:
            if line.strip() and not line.startswith("#"):
                raise SourceError(f"{path.name}:{number}: code before the first '# %%' cell marker")
        else:
            body.append(line)
    flush()
    return cells


def strip_solution_markers(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if line.strip() not in (BEGIN, END))


def included_answers(spec: str, where: str) -> str:
    """The reference answers of the cells named by an include=LAB:CELL,CELL option, markers removed."""
    lab_id, _, names = spec.partition(":")
    if not names:
        raise SourceError(f"{where}: include= takes LAB:CELL[,CELL...], got {spec!r}")
    try:
        (lab,) = labs([lab_id])
    except (SourceError, ValueError):
        raise SourceError(f"{where}: include= names no lab called {lab_id!r}") from None
    by_id = {c.grade_id: c for c in raw_cells(lab.path) if c.kind == "solution"}
    parts = []
    for name in names.split(","):
        if name not in by_id:
            raise SourceError(f"{where}: {lab_id} has no solution cell {name!r} to include")
        parts.append(strip_solution_markers(by_id[name].text).strip("\n"))
    return "\n\n\n".join(parts)


if TYPE_CHECKING:
    import nbformat


def read_source(lab: Lab) -> "nbformat.NotebookNode":
    """Parse a lab source into an nbgrader *source* notebook (solutions and hidden tests included)."""
    import nbformat  # here, not at the top: the GPU check parses sources on a machine without Jupyter

    config = course_config()
    cells: list[nbformat.NotebookNode] = []
    seen_ids: set[str] = set()
    for raw in raw_cells(lab.path):
        kind, options, where = raw.kind, dict(raw.options), raw.where
        if raw.cell_type == "markdown":
            cell = nbformat.v4.new_markdown_cell("\n".join(_markdown_line(line, where) for line in raw.lines))
        elif kind == "setup":
            cell = nbformat.v4.new_code_cell(SETUP_TEMPLATE.format(
                install_url=install_url(config), version=config["student_version"], title=lab.title))
            options.setdefault("id", "setup")
        elif "include" in options:
            if kind != "readonly":
                raise SourceError(f"{where}: only a readonly cell may include= other cells")
            own = raw.text.strip("\n")
            included = included_answers(options["include"], where)
            cell = nbformat.v4.new_code_cell(own + "\n\n" + included if own else included)
        else:
            cell = nbformat.v4.new_code_cell(raw.text)
        cell.metadata = {}
        if kind is not None:
            grade_id = options.get("id")
            if not grade_id:
                raise SourceError(f"{where}: a {kind} cell needs id=...")
            if grade_id in seen_ids:
                raise SourceError(f"{where}: the id {grade_id!r} is used twice")
            seen_ids.add(grade_id)
            if kind == "answer" and raw.cell_type != "markdown":
                raise SourceError(f"{where}: an answer cell must be [markdown]")
            meta = {
                "grade": kind in ("test", "answer"),
                "solution": kind in ("solution", "answer"),
                "locked": kind in ("test", "readonly", "setup"),
                "grade_id": grade_id,
                "schema_version": 3,
            }
            if meta["grade"]:
                try:
                    meta["points"] = float(options["points"])
                except (KeyError, ValueError):
                    raise SourceError(f"{where}: a {kind} cell needs points=N") from None
            if kind == "solution" and BEGIN not in cell.source:
                raise SourceError(f"{where}: a solution cell needs a {BEGIN} / {END} block")
            if kind == "test":
                check_test_cell(cell.source, where)
            cell.metadata["nbgrader"] = meta
        cell.id = _cell_id(len(cells), options.get("id"))
        cells.append(cell)
    if not any(c.metadata.get("nbgrader", {}).get("grade_id") == "setup" for c in cells):
        raise SourceError(f"{lab.path.name}: every lab needs a '# %% setup' cell")
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}
    return nb


# The checks that return what they checked (and so must not end a test cell).
VALUE_RETURNING_CHECKS = {"less", "greater", "between", "number", "tensor"}


def check_test_cell(source: str, where: str) -> None:
    """A test cell parses, binds only names that start with "_" at its top level, and does not end
    with an expression that has a value."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise SourceError(f"{where}: the test cell does not parse: {exc}") from None
    bound = sorted({name for node in tree.body for name in _bound_names(node) if not name.startswith("_")})
    if bound:
        raise SourceError(f"{where}: a test cell binds {', '.join(bound)} in the student's namespace; "
                          "name them with a leading '_' or move the checks into a function")
    last = tree.body[-1] if tree.body else None
    if isinstance(last, ast.Expr):
        call = last.value.func if isinstance(last.value, ast.Call) else None
        name = call.attr if isinstance(call, ast.Attribute) else getattr(call, "id", None)
        if call is None or name in VALUE_RETURNING_CHECKS:
            raise SourceError(f"{where}: a test cell must not end with an expression that has a value "
                              "(nbgrader would take it as the score); end it with a call that returns None")


def _bound_names(node: ast.AST) -> set[str]:
    """The names a top-level statement binds in the module namespace (not inside the functions,
    classes, lambdas and comprehensions it defines, which have scopes of their own)."""
    found: set[str] = set()

    def visit(n: ast.AST) -> None:
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.add(n.name)
            return
        if isinstance(n, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            return
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
            found.add(n.id)
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            found.update((alias.asname or alias.name).split(".")[0] for alias in n.names)
        elif isinstance(n, ast.ExceptHandler) and n.name:
            found.add(n.name)
        for child in ast.iter_child_nodes(n):
            visit(child)

    visit(node)
    return found


def _markdown_line(line: str, where: str) -> str:
    if line == "#":
        return ""
    if line.startswith("# "):
        return line[2:]
    if not line.strip():
        return ""
    raise SourceError(f"{where}: markdown lines must start with '# ', got {line!r}")


def _cell_id(index: int, grade_id: str | None) -> str:
    # Stable ids keep regenerated notebooks byte-identical, which the sync test relies on.
    return re.sub(r"[^A-Za-z0-9_-]", "-", grade_id) if grade_id else f"cell-{index:03d}"


def write_source_notebook(lab: Lab, course_root: Path) -> Path:
    """Write the lab's nbgrader source notebook to course_root/source/<lab>/<lab>.ipynb."""
    import nbformat

    target = course_root / "source" / lab.lab_id / f"{lab.lab_id}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(read_source(lab), target)
    return target
