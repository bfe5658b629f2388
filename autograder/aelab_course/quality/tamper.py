"""Hostile and broken submissions, each graded by the real pipeline against what must happen.

`make tamper` builds every case from lab 01 (the quickest lab to grade), grades them in one batch
next to an honest `control` submission and an honest copy of each case's starting point, and
writes build/tamper.csv. A case starts from the stubs (no work done), the correct answers, or the
lab's planted bug; it may not earn more points than that starting point earns honestly.

Expected outcomes:
    withheld     the grade is withheld for review with a reason, and no points are given
    no points    0 points
    fair         no more points than the honest starting point
    stopped      no more points than the honest starting point, and the reason the run stopped
    full         the full points (a harmless difference: Colab's metadata, a renamed file)
    not graded   reported with a reason; the batch goes on
"""

from __future__ import annotations

import json
import hashlib
import html
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell

from ..grading import jail
from ..grading.grader import Grader
from .banks import demo_mutant
from ..course import Course, correct_submission
from ..grading.submissions import find_submissions
from ..source import Lab, labs, read_source

Notebook = nbformat.NotebookNode


@dataclass(frozen=True)
class Start:
    correct: Notebook
    stubs: Notebook
    planted: Notebook  # the correct answers with the lab's demo mutant


@dataclass(frozen=True)
class Case:
    name: str
    description: str
    base: str  # "stubs", "correct" or "planted": the honest submission it is compared with
    expect: str  # see the module's docstring
    make: Callable[[Start], Notebook | bytes]
    filename: str = ""  # when the case is about the file's name
    fast: bool = False  # part of `make test`'s subset


def _copy(nb: Notebook) -> Notebook:
    return nbformat.from_dict(json.loads(json.dumps(nb)))


def _index(nb: Notebook, grade_id: str) -> int:
    return next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _with_cell(nb: Notebook, code: str, after: str = "setup") -> Notebook:
    """A copy of `nb` with a new code cell (as a student would add one) after cell `after`."""
    nb = _copy(nb)
    nb.cells.insert(_index(nb, after) + 1, new_code_cell(code))
    return nb


def _after_each(nb: Notebook, code: str, cells: tuple[str, ...]) -> Notebook:
    """A copy of `nb` with the same new code cell after each of `cells` (so that each answer cell's
    own definitions are replaced before its test runs)."""
    for grade_id in cells:
        nb = _with_cell(nb, code, after=grade_id)
    return nb


# Lab 01's answer cells that the always-equal case replaces, each right before its test.
PCA_ANSWER_CELLS = ("fit_pca", "pca_reconstruct", "explained_variance", "components_for", "principal_angles")


def _tests(nb: Notebook) -> list[Notebook]:
    return [c for c in nb.cells if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")
            and not c.metadata["nbgrader"].get("solution")]


def _edit_tests(start: Start) -> Notebook:
    nb = _copy(start.stubs)
    for cell in _tests(nb):
        cell.source = "pass  # edited to pass"
    return nb


def _delete_failing_test(start: Start) -> Notebook:
    nb = _copy(start.planted)
    del nb.cells[_index(nb, demo_mutant(labs(["lab01_pca"])[0]).targets[0])]  # the test the planted bug fails
    return nb


def _duplicate_cells(start: Start) -> Notebook:
    nb = _copy(start.stubs)
    tests = _tests(nb)
    for cell in tests:
        twin = _copy(cell)
        twin.id = f"{cell.id}-twin"  # the same grade id, a distinct cell id
        twin.source = "pass"
        nb.cells.insert(0, twin)  # copies with the same grade id, first in the notebook
    return nb


def _retype_tests(start: Start) -> Notebook:
    nb = _copy(start.stubs)
    for cell in _tests(nb):
        cell.cell_type = "markdown"
        cell.pop("outputs", None)
        cell.pop("execution_count", None)
    return nb


ALWAYS_EQUAL = '''
class Anything(float):
    """Equal to everything, less and greater than everything, a tensor of any shape."""
    shape = property(lambda self: (6, 6))
    def __eq__(self, other): return True
    __le__ = __ge__ = __lt__ = __gt__ = __eq__
    def __bool__(self): return True
    def __getattr__(self, name): return lambda *a, **k: self
    def __getitem__(self, key): return self
    def __call__(self, *a, **k): return self

def fit_pca(X): return Anything(), Anything(), Anything()
def pca_reconstruct(X, mean, components, k): return Anything()
def explained_variance_ratio(singular_values, k): return Anything()
def components_for(singular_values, fraction): return Anything()
def principal_angles(A, B): return Anything()
'''

PATCH_CHECKS_THROUGH_A_FUNCTION = '''
from aelab import checks

def relax(module):
    # The static scan does not follow an alias passed to a function: the seal must catch this.
    for name in ("tensor", "number", "close", "less", "greater", "between", "true", "raises"):
        module.__dict__[name] = lambda value=None, *args, **kwargs: value
relax(checks)
'''

PATCH_TORCH_THROUGH_A_FUNCTION = '''
import torch

def relax(module):
    module.allclose = lambda *args, **kwargs: True
relax(torch)
'''

SETATTR_CHECKS = '''
from aelab import checks
for name in ("tensor", "number", "close", "less", "greater", "between", "true"):
    setattr(checks, name, lambda value=None, *args, **kwargs: value)
'''

SWALLOW_ERRORS = '''
shell = get_ipython()
shell.showtraceback = lambda *args, **kwargs: None
shell.set_custom_exc((BaseException,), lambda *args, **kwargs: None)
'''

EMPTY_EVERY_CELL = '''
# Every later cell, tests included, would run as `pass` and raise nothing.
get_ipython().input_transformers_post.append(lambda lines: ["pass\\n"])
'''

PARTIAL_CREDIT = '''
import sys
# A number as a test cell's result is nbgrader's partial credit: try to claim 100 points a cell.
sys.displayhook = lambda value: print(100)
get_ipython().displayhook.__class__.__call__ = lambda self, value=None: self.shell.display_pub.publish({"text/plain": "100"})
'''

READ_HIDDEN = '''
# Reading the hidden tests, the gradebook and the solutions without `open` (NumPy reads files too).
import numpy as np
import aelab
root = aelab.__file__.rsplit("/student/src/", 1)[0]  # the course repository: <root>/student/src/aelab
for path in ["../../../source/lab01_pca/lab01_pca.ipynb", "../../../gradebook.db", root + "/solutions/lab01_pca.py",
             root + "/autograder/thresholds/lab01_pca.toml", root + "/autograder/mutants/lab01_pca.toml"]:
    try:
        print(path, "".join(np.loadtxt(path, dtype=str, delimiter="\\x00", comments=None, encoding="latin-1"))[:5000])
    except Exception as error:
        print(path, "->", type(error).__name__)
'''

WRITE_OTHERS = '''
# Overwrite the gradebook, another student's graded notebook, the class course and aelab's checks.
import numpy as np
import aelab
import aelab.checks
root = aelab.__file__.rsplit("/student/src/", 1)[0]  # the course repository: <root>/student/src/aelab
targets = ["../../../gradebook.db", "../../../../control/autograded/control/lab01_pca/lab01_pca.ipynb",
           root + "/build/tamper/course/gradebook.db", aelab.checks.__file__]
for path in targets:
    try:
        np.savetxt(path, np.array(["def close(*a, **k): pass"]), fmt="%s")
        print("wrote", path)
    except Exception as error:
        print(path, "->", type(error).__name__)
'''

RAISE_SYSTEM_EXIT = "raise SystemExit('bye')  # IPython catches this; the kernel goes on\n"
SYS_EXIT = "import sys\nsys.exit(0)\n"
KILL_KERNEL = "getattr(torch.os, '_' + 'exit')(0)  # os._exit, spelled past the static scan\n"
INFINITE_LOOP = '''
while True:  # and ignore the autograder's interrupt
    try:
        pass
    except KeyboardInterrupt:
        pass
'''
MEMORY_BOMB = '''
hoard = []
try:
    while True:
        hoard.append(torch.ones(2**27))  # 512 MiB at a time
except (MemoryError, RuntimeError) as error:
    print("stopped by the memory cap:", type(error).__name__)
'''


def _colab(start: Start) -> Notebook:
    nb = _copy(start.correct)
    nb.metadata = {"colab": {"provenance": [], "gpuType": "T4"}, "accelerator": "GPU",
                   "kernelspec": {"name": "python3-colab", "display_name": "Python 3 (Colab)"},
                   "language_info": {"name": "python"}}
    for index, cell in enumerate(nb.cells):
        cell.metadata["id"] = f"colab{index:04d}"
        if cell.cell_type == "code":
            cell.execution_count = index
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="output from Colab\n")]
    return nb


def _malformed(start: Start) -> bytes:
    return nbformat.writes(start.correct).encode()[:5000]


CASES = [
    Case("edited-test-cells", "every test cell edited to `pass`", "stubs", "no points", _edit_tests, fast=True),
    Case("deleted-failing-test", "the visible test the planted bug fails, deleted", "planted", "fair",
         _delete_failing_test),
    Case("duplicated-test-cells", "copies of every test cell, emptied, put first", "stubs", "no points",
         _duplicate_cells),
    Case("test-cells-made-markdown", "every test cell changed to a markdown cell", "stubs", "no points",
         _retype_tests),
    Case("always-equal-objects", "answers returning an object equal to everything", "stubs", "no points",
         lambda s: _after_each(s.stubs, ALWAYS_EQUAL, PCA_ANSWER_CELLS)),
    Case("setattr-on-checks", "aelab's checks replaced with setattr", "planted", "withheld",
         lambda s: _with_cell(s.planted, SETATTR_CHECKS)),
    Case("checks-patched-past-the-scan", "aelab's checks replaced through a function argument", "planted",
         "withheld", lambda s: _with_cell(s.planted, PATCH_CHECKS_THROUGH_A_FUNCTION), fast=True),
    Case("torch-patched-past-the-scan", "torch.allclose replaced through a function argument", "planted",
         "withheld", lambda s: _with_cell(s.planted, PATCH_TORCH_THROUGH_A_FUNCTION)),
    Case("swallowed-tracebacks", "showtraceback and a custom exception handler that hide every error",
         "stubs", "withheld", lambda s: _with_cell(s.stubs, SWALLOW_ERRORS)),
    Case("emptied-test-cells", "an input transformer that turns every later cell into `pass`", "stubs",
         "withheld", lambda s: _with_cell(s.stubs, EMPTY_EVERY_CELL), fast=True),
    Case("displayhook-partial-credit", "sys.displayhook and the shell's displayhook print 100", "stubs",
         "withheld", lambda s: _with_cell(s.stubs, PARTIAL_CREDIT)),
    Case("read-hidden-tests", "print the hidden tests, the gradebook and the solutions (no `open`)", "stubs",
         "no points", lambda s: _with_cell(s.stubs, READ_HIDDEN), fast=True),
    Case("write-gradebook-and-others", "overwrite the gradebook, another student's notebook and aelab",
         "stubs", "no points", lambda s: _with_cell(s.stubs, WRITE_OTHERS), fast=True),
    Case("raise-system-exit", "raise SystemExit in a cell of a correct notebook", "correct", "full",
         lambda s: _with_cell(s.correct, RAISE_SYSTEM_EXIT)),
    Case("sys-exit", "sys.exit() in a cell of a correct notebook", "correct", "withheld",
         lambda s: _with_cell(s.correct, SYS_EXIT)),
    Case("os-exit", "os._exit (kills the kernel) after the first test", "correct", "stopped",
         lambda s: _with_cell(s.correct, KILL_KERNEL, after="test_pca")),
    Case("infinite-loop", "a loop that ignores the interrupt, after the first test", "correct", "stopped",
         lambda s: _with_cell(s.correct, INFINITE_LOOP, after="test_pca")),
    Case("memory-bomb", "allocate until memory runs out, after the first test", "correct", "fair",
         lambda s: _with_cell(s.correct, MEMORY_BOMB, after="test_pca")),
    Case("saved-by-colab", "a correct notebook saved by Colab: other kernel name, metadata, outputs",
         "correct", "full", _colab),
    Case("renamed-notebook", "a correct notebook saved as 'Copy of lab01_pca.ipynb'", "correct", "full",
         lambda s: _copy(s.correct), filename="Copy of lab01_pca.ipynb"),
    # The same for `make test`, where a whole correct notebook would cost half a minute more.
    Case("renamed-stubs", "the stubs saved as 'lab01_pca (1).ipynb': recognised and graded", "stubs",
         "no points", lambda s: _copy(s.stubs), filename="lab01_pca (1).ipynb", fast=True),
    Case("malformed-json", "a notebook cut off in the middle of its JSON", "stubs", "not graded", _malformed,
         fast=True),
    Case("empty-file", "an empty file", "stubs", "not graded", lambda s: b"", fast=True),
]


def judge(case: Case, points: float, honest: float, full: float, status: str, reason: str) -> tuple[bool, str]:
    """Whether the outcome is what `case.expect` asks for; and the unfair points, if any."""
    unfair = max(0.0, points - honest)
    ok = {
        "withheld": status == "withheld" and points == 0,
        "no points": points == 0 and status != "not graded",
        "fair": True,
        "stopped": bool(reason),
        "full": points == full and status == "graded",
        "not graded": status == "not graded" and bool(reason),
    }[case.expect]
    return ok and unfair == 0, f"{unfair:g}"


def hidden_lines(lab: Lab) -> list[str]:
    """The distinctive lines of the lab's hidden tests (what must never reach a student)."""
    lines, inside = [], False
    for cell in read_source(lab).cells:
        for line in cell.source.splitlines():
            if "BEGIN HIDDEN TESTS" in line or "END HIDDEN TESTS" in line:
                inside = "BEGIN" in line
            elif inside and len(line.strip()) > 30:
                lines.append(line.strip())
    return lines


def run(out: Path, *, fast: bool = False, only: list[str] | None = None,
        workers: int | None = None) -> tuple[list[dict], list[dict]]:
    """Grade every case (or the fast subset, or `only` some) in one batch; returns (case rows, batch rows)."""
    lab = labs(["lab01_pca"])[0]
    shutil.rmtree(out, ignore_errors=True)
    scratch = Course(out / "scratch")
    released = nbformat.read(scratch.release(lab), as_version=4)
    correct = correct_submission(released, scratch.source_notebook(lab))
    start = Start(correct=correct, stubs=released, planted=demo_mutant(lab).apply(correct))
    cases = [c for c in CASES if (c.fast or not fast) and (not only or c.name in only)]
    folder = out / "submissions"
    honest = {"control": start.correct, "honest-planted": start.planted}
    for student, nb in honest.items():
        (folder / student).mkdir(parents=True)
        nbformat.write(nb, folder / student / f"{lab.lab_id}.ipynb")
    for case in cases:
        made = case.make(start)
        path = folder / case.name / (case.filename or f"{lab.lab_id}.ipynb")
        path.parent.mkdir(parents=True)
        path.write_bytes(made if isinstance(made, bytes) else nbformat.writes(made).encode())
    subs, skipped = find_submissions(folder, [lab])
    grader = Grader(out / "course", workers=workers)
    checks_file = Path(__import__("aelab.checks").checks.__file__)
    checks_before = hashlib.sha256(checks_file.read_bytes()).hexdigest()
    outcomes = {o.submission.student: o for o in grader.run(subs, desc="tamper cases")}

    def points(student: str) -> tuple[float, float, str, str]:
        outcome = outcomes.get(student)
        if outcome is None:
            return 0.0, 0.0, "not graded", "not found: " + "; ".join(s for s in skipped if s.startswith(student))
        status, reason = grader.status(outcome.submission, outcome)
        scores = grader.course.test_scores(lab, student) if status != "not graded" else {}
        return sum(s for s, _ in scores.values()), sum(m for _, m in scores.values()), status, reason

    control, full, _, _ = points("control")
    baseline = {"stubs": 0.0, "correct": control, "planted": points("honest-planted")[0]}
    rows = []
    for case in cases:
        got, _, status, reason = points(case.name)
        passed, unfair = judge(case, got, baseline[case.base], full, status, reason)
        rows.append({"case": case.name, "description": case.description, "starts from": case.base,
                     "expected": case.expect, "status": status, "points": got, "honest points": baseline[case.base],
                     "unfair points": unfair, "as expected": passed, "reason": reason[:300]})
    feedback = "\n".join(p.read_text(errors="replace") for p in (grader.course.root / "feedback").rglob("*.html"))
    leaked = [line for line in hidden_lines(lab) if line in feedback or html.escape(line) in feedback]
    batch = [
        {"check": "the honest control submission keeps its full points", "as expected": control == full > 0,
         "detail": f"{control:g} of {full:g}"},
        {"check": "no hidden test line appears in any feedback", "as expected": not leaked,
         "detail": f"{len(leaked)} leaked" + (f", e.g. {leaked[0]!r}" if leaked else "")},
        {"check": "aelab's own files are unchanged after grading",
         "as expected": hashlib.sha256(checks_file.read_bytes()).hexdigest() == checks_before, "detail": str(checks_file)},
        {"check": "every submission was graded or reported", "as expected": len(outcomes) == len(cases) + 2,
         "detail": f"{len(outcomes)} of {len(cases) + 2}"},
        # A check that can fail: without the sandbox the read and write cases rest on the scan alone.
        {"check": "kernels were sandboxed", "as expected": jail.available(),
         "detail": "yes" if jail.available() else "no: the sandbox needs root on Linux; isolation rested on the scan and seal"},
    ]
    return rows, batch
