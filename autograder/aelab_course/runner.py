"""Running a lab's reference, with its tests, hidden ones included.

Two ways:

* `execute_notebook`: in a Jupyter kernel (nbclient), as `make solutions` and `make calibrate` do;
* `run_script` / `python -m aelab_course.runner LAB`: as plain Python, cell after cell in one
  namespace, on a machine with torch but without Jupyter (the GPU check). Every test cell runs
  whole, hidden tests included; a failing cell is recorded and the run goes on, as in a notebook.

`definitions` loads only a lab's imports, functions and classes (no data, no training): the
benchmarks and the checks on the student package use the labs' own models and stubs this way,
so no copy of them can drift.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import sys
import time
import traceback
import types
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from .source import BEGIN_HIDDEN, END_HIDDEN, Lab, RawCell, included_answers, raw_cells

# The setup cell without the Colab install: what a script runs instead.
SCRIPT_SETUP = "import aelab\ndevice = aelab.setup_notebook({title!r})"


def execute_notebook(nb, cwd: Path, timeout: int | None) -> list[str]:
    """Execute in a fresh python3 kernel; returns a description of every failing cell."""
    from nbclient import NotebookClient

    client = NotebookClient(nb, kernel_name="python3", timeout=timeout, allow_errors=True,
                            resources={"metadata": {"path": str(cwd)}})
    client.execute()
    failures = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", f"cell {index}")
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                failures.append(f"{grade_id}: {output.ename}: {output.evalue}")
    return failures


def cell_code(cell: RawCell, lab: Lab, *, hidden: bool = True) -> str:
    """The code a cell runs in a script: the setup cell without its install, includes resolved,
    hidden tests kept (`hidden`) or dropped."""
    if cell.kind == "setup":
        return SCRIPT_SETUP.format(title=lab.title)
    if "include" in cell.options:
        own = cell.text.strip("\n")
        included = included_answers(cell.options["include"], cell.where)
        return own + "\n\n" + included if own else included
    if cell.kind == "test" and not hidden:
        lines, inside = [], False
        for line in cell.lines:
            if line.strip() == BEGIN_HIDDEN:
                inside = True
            elif line.strip() == END_HIDDEN:
                inside = False
            elif not inside:
                lines.append(line)
        return "\n".join(lines)
    return cell.text


@dataclass
class CellResult:
    index: int
    grade_id: str
    kind: str
    seconds: float
    error: str = ""        # "Name: message" of the exception, or ""
    points: float = 0.0    # a test cell's points when it passed


@dataclass
class ScriptResult:
    lab: str
    cells: list[CellResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failures(self) -> list[CellResult]:
        return [c for c in self.cells if c.error]

    @property
    def points(self) -> float:
        """The points of the test cells that passed."""
        return sum(c.points for c in self.cells)


def run_script(lab: Lab, *, hidden: bool = True, replace: dict[str, str] | None = None,
               stop_after: str | None = None, only: set[str] | None = None, echo: bool = False,
               on_cell: Callable[[CellResult], None] | None = None) -> ScriptResult:
    """Run the lab's code cells in order in one fresh namespace, in this process.

    `replace` maps a cell's grade_id to other code (a stub's stand-in); `stop_after` ends the run
    after the cell with that grade_id; `only` runs no training: the setup cell, the plain cells up
    to the first test (imports and data), every solution and readonly cell, the plain cells that only
    define things (imports, functions, classes), and, of the test cells, those named in it.
    `on_cell` is called with each cell's result as soon as the cell ends (the GPU check writes
    them to disk, so that a run stopped at its time limit keeps what it finished). Figures are
    closed after each cell.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    replace = replace or {}
    namespace: dict = {"__name__": "__main__"}
    module = types.ModuleType("__main__")
    module.__dict__.update(namespace)
    saved_main = sys.modules.get("__main__")
    sys.modules["__main__"] = module
    result = ScriptResult(lab.lab_id)
    start = time.perf_counter()
    seen_test = False
    try:
        for index, cell in enumerate(raw_cells(lab.path)):
            if cell.cell_type != "code":
                continue
            grade_id = cell.grade_id or f"cell {index}"
            if only is not None:
                wanted = (cell.kind in ("setup", "readonly", "solution") or grade_id in only
                          or (cell.kind is None and (not seen_test or _defines_only(cell.text))))
                seen_test = seen_test or cell.kind == "test"
                if not wanted:
                    continue
            code = replace.get(grade_id, cell_code(cell, lab, hidden=hidden))
            began = time.perf_counter()
            error = ""
            output = io.StringIO() if not echo else None
            try:
                with contextlib.redirect_stdout(output) if output is not None else contextlib.nullcontext():
                    exec(compile(code, f"<{lab.lab_id}:{grade_id}>", "exec"), module.__dict__)
            except Exception as exc:  # noqa: BLE001 - a failing cell is recorded; the run goes on
                error = f"{type(exc).__name__}: {exc}"
                if echo:
                    traceback.print_exc()
            finally:
                plt.close("all")
            points = float(cell.options.get("points", 0)) if cell.kind == "test" and not error else 0.0
            result.cells.append(CellResult(index, grade_id, cell.kind or "code", time.perf_counter() - began,
                                           error, points))
            if on_cell is not None:
                on_cell(result.cells[-1])
            if stop_after is not None and grade_id == stop_after:
                break
    finally:
        if saved_main is not None:
            sys.modules["__main__"] = saved_main
    result.seconds = time.perf_counter() - start
    return result


def _defines_only(code: str) -> bool:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return False
    return all(isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)) for node in tree.body)


def tests_of(lab: Lab, stub: str) -> list[str]:
    """The test cells that check a solution cell: those after it, up to the next solution cell."""
    found, after = [], False
    for cell in raw_cells(lab.path):
        if cell.kind == "solution":
            if after:
                break
            after = cell.grade_id == stub
        elif after and cell.kind == "test":
            found.append(cell.grade_id)
    return found


# Calls a constant setting may make: a setting like EPOCHS = aelab.by_budget(quick=2, full=30) is
# kept by `definitions`, an assignment that loads data or trains is not.
SETTING_CALLS = {"by_budget", "dict", "tuple", "list", "set", "frozenset", "range", "float", "int", "str", "device"}


def _is_setting(node: ast.AST) -> bool:
    if not isinstance(node, (ast.Assign, ast.AnnAssign)) or getattr(node, "value", None) is None:
        return False
    for call in (n for n in ast.walk(node.value) if isinstance(n, ast.Call)):
        name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
        if name not in SETTING_CALLS:
            return False
    return True


def definitions(lab: Lab, **globals_) -> types.ModuleType:
    """A module holding the lab's imports, functions, classes and constant settings (assignments
    that call nothing but aelab.by_budget, dict, tuple and the like), taken from its setup, solution
    and read-only cells and its plain cells, in order (reference answers included), and nothing
    that loads data or trains. `globals_` are set first (say DATA_VARIANCE, which the lab computes
    from the data). A setting that cannot be computed without the data is left out."""
    module = types.ModuleType(f"aelab_solutions.{lab.lab_id}")
    module.__dict__.update(globals_)
    for cell in raw_cells(lab.path):
        if cell.cell_type != "code" or cell.kind == "test":
            continue
        tree = ast.parse(cell_code(cell, lab) if cell.kind != "setup" else "import aelab")
        where = f"<{lab.lab_id}:{cell.grade_id or 'code'}>"
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)):
                exec(compile(ast.Module(body=[node], type_ignores=[]), where, "exec"), module.__dict__)
            elif _is_setting(node):
                try:
                    exec(compile(ast.Module(body=[node], type_ignores=[]), where, "exec"), module.__dict__)
                except Exception:  # noqa: BLE001 - a setting that needs the data is not a constant
                    continue
    return module


def main(argv: list[str] | None = None) -> int:
    """python -m aelab_course.runner LAB [--out results.json]: run one lab as a script."""
    import argparse

    from .source import labs

    parser = argparse.ArgumentParser(prog="python -m aelab_course.runner", description=main.__doc__)
    parser.add_argument("lab")
    parser.add_argument("--out", help="write the result as JSON here")
    parser.add_argument("--echo", action="store_true", help="show the cells' output")
    args = parser.parse_args(argv)
    os.environ.setdefault("AELAB_PROGRESS", "0")
    result = run_script(labs([args.lab])[0], echo=args.echo)
    for cell in result.cells:
        mark = "FAILED " + cell.error if cell.error else "ok"
        print(f"{cell.grade_id:>28} {cell.seconds:7.1f} s  {mark}")
    if args.out:
        Path(args.out).write_text(json.dumps(asdict(result), indent=1))
    return 1 if result.failures else 0


if __name__ == "__main__":
    sys.exit(main())
