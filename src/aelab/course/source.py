"""Lab sources: percent-format Python files in solutions/ that become nbgrader source notebooks.

A source is plain Python, readable and diffable, split into cells by ``# %%`` lines:

``# %% [markdown]``                         a markdown cell; its lines start with ``# ``
``# %% [markdown] answer id=ID points=N``   a manually graded written answer
``# %% setup``                              the read-only setup cell (its code comes from SETUP_TEMPLATE)
``# %% solution id=ID``                     code the students write (``### BEGIN/END SOLUTION`` marks it)
``# %% test id=ID points=N``                an autograded test cell (``### BEGIN/END HIDDEN TESTS`` inside)
``# %% readonly id=ID``                     code students may run but not edit
``# %%``                                    ordinary code
"""

from __future__ import annotations

import ast
import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[3]
SOLUTIONS = ROOT / "solutions"
NOTEBOOKS = ROOT / "notebooks"

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}

SETUP_TEMPLATE = '''\
# Setup (read-only): run this first.
# On Colab it installs the course's helper package, aelab, from the course repository. It passes
# --no-deps so that Colab's own torch and torchvision are never reinstalled. Locally it uses the
# aelab that `make setup` installed.
import importlib.util, subprocess, sys
if "google.colab" in sys.modules and importlib.util.find_spec("aelab") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "aelab @ git+{repo_url}@{branch}"], check=True)
import aelab
device = aelab.setup_notebook({title!r})'''


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


def course_config() -> dict:
    """The [tool.aelab] table of pyproject.toml: the one place the course repository is set."""
    with (ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)["tool"]["aelab"]


def labs(selected: list[str] | None = None) -> list[Lab]:
    """Every lab in solutions/ (lab01_*.py, lab02_*.py, ...), or those named in `selected`."""
    found = [Lab(p.stem, p) for p in sorted(SOLUTIONS.glob("lab[0-9][0-9]_*.py"))]
    if not selected:
        return found
    by_id = {lab.lab_id: lab for lab in found}
    short = {lab.lab_id[:5]: lab for lab in found}
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


def read_source(lab: Lab) -> nbformat.NotebookNode:
    """Parse a lab source into an nbgrader *source* notebook (solutions and hidden tests included)."""
    config = course_config()
    cells: list[nbformat.NotebookNode] = []
    header: tuple[str, str | None, dict[str, str], str] | None = None
    body: list[str] = []
    seen_ids: set[str] = set()

    def flush() -> None:
        if header is None:
            return
        cell_type, kind, options, where = header
        lines = body[:]
        while lines and not lines[-1].strip():
            lines.pop()
        while lines and not lines[0].strip():
            lines.pop(0)
        if cell_type == "markdown":
            text = "\n".join(_markdown_line(line, where) for line in lines)
            cell = nbformat.v4.new_markdown_cell(text)
        elif kind == "setup":
            text = SETUP_TEMPLATE.format(repo_url=config["repo_url"], branch=config["branch"], title=lab.title)
            cell = nbformat.v4.new_code_cell(text)
            options.setdefault("id", "setup")
        else:
            cell = nbformat.v4.new_code_cell("\n".join(lines))
        cell.metadata = {}
        if kind is not None:
            grade_id = options.get("id")
            if not grade_id:
                raise SourceError(f"{where}: a {kind} cell needs id=...")
            if grade_id in seen_ids:
                raise SourceError(f"{where}: the id {grade_id!r} is used twice")
            seen_ids.add(grade_id)
            if kind == "answer" and cell_type != "markdown":
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
            if kind == "solution" and "### BEGIN SOLUTION" not in cell.source:
                raise SourceError(f"{where}: a solution cell needs a ### BEGIN SOLUTION / ### END SOLUTION block")
            if kind == "test":
                _check_test_cell_ends_without_a_value(cell.source, where)
            cell.metadata["nbgrader"] = meta
        cell.id = _cell_id(len(cells), options.get("id"))
        cells.append(cell)

    for number, line in enumerate(lab.path.read_text().splitlines(), start=1):
        if line.startswith("# %%"):
            flush()
            where = f"{lab.path.name}:{number}"
            cell_type, kind, options = _parse_header(line, where)
            header = (cell_type, kind, options, where)
            body = []
        elif header is None:
            if line.strip() and not line.startswith("#"):
                raise SourceError(f"{lab.path.name}:{number}: code before the first '# %%' cell marker")
        else:
            body.append(line)
    flush()
    if not any(c.metadata.get("nbgrader", {}).get("grade_id") == "setup" for c in cells):
        raise SourceError(f"{lab.path.name}: every lab needs a '# %% setup' cell")
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}
    return nb


# The checks that return what they checked (and so must not end a test cell).
VALUE_RETURNING_CHECKS = {"less", "greater", "between", "number", "tensor"}


def _check_test_cell_ends_without_a_value(source: str, where: str) -> None:
    """nbgrader takes a number that a test cell's last line evaluates to as the cell's score
    (partial credit, or a crash when it exceeds the points). `checks.less` and friends return
    the value they checked, so a test cell must not end with one: end with checks.passed(...)."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise SourceError(f"{where}: the test cell does not parse: {exc}") from None
    last = tree.body[-1] if tree.body else None
    if isinstance(last, ast.Expr):
        call = last.value.func if isinstance(last.value, ast.Call) else None
        name = call.attr if isinstance(call, ast.Attribute) else getattr(call, "id", None)
        if call is None or name in VALUE_RETURNING_CHECKS:
            raise SourceError(f"{where}: a test cell must not end with an expression that has a value "
                              "(nbgrader would take it as the score); end it with checks.passed(...)")


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
    target = course_root / "source" / lab.lab_id / f"{lab.lab_id}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(read_source(lab), target)
    return target
