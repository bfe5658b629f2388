"""Before any kernel starts: the data the labs read is there, and a sandboxed kernel can read it.

A grading kernel never downloads anything and sees little of the machine (aelab_course.grading.jail),
so a missing data set would otherwise surface as failed tests in every submission, graded as if
the students had lost those points. Grading instead

1. finds the data where the rest of aelab does (``AELAB_DATA``, else the repository's ``data/``),
   downloading it there once, in this process, when that is allowed and it is missing;
2. hands the kernels that folder explicitly (``AELAB_DATA``), so that they find it from any
   working folder and inside the sandbox;
3. runs a sandboxed check that loads every data set the labs read, exactly as a kernel would.

If any step fails, grading stops with a GradingEnvironmentError that says what is missing, where
it looked and how to fix it, and writes no grades. A cell that still fails for such a reason
while grading makes the submission's status "environment error" (environment_failure).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat

from ..source import Lab
from .preprocessors import ENVIRONMENT_ERRORS, NOT_PREPARED

LOADERS = {"MNIST": "load_mnist", "CIFAR-10": "load_cifar10"}


class GradingEnvironmentError(RuntimeError):
    """The machine cannot grade (data, modules, sandbox); the message says what to fix."""


def datasets_of(lab: Lab) -> list[str]:
    """The data sets a lab reads ("MNIST", "CIFAR-10"), from the loaders its source calls."""
    text = lab.path.read_text()
    return [name for name, loader in LOADERS.items() if re.search(rf"\b{loader}\(", text)]


def needed(chosen: list[Lab]) -> list[str]:
    return sorted({name for lab in chosen for name in datasets_of(lab)})


def ensure_data(chosen: list[Lab]) -> Path:
    """Load every data set the labs read here, in the grading process (which downloads a missing
    one into the data folder when downloads are allowed); return the data folder, symlinks resolved
    (the sandbox keeps real paths)."""
    from aelab import data

    for name in needed(chosen):
        try:
            getattr(data, LOADERS[name])()
        except data.DataError as exc:
            raise GradingEnvironmentError(
                f"cannot grade: {name} is not available to the grader. {exc} Nothing was graded.") from None
    return Path(os.path.realpath(data.data_root()))


CHECK = """
import sys
import aelab
for loader in sys.argv[1:]:
    dataset = getattr(aelab, loader)()
    print(f"{dataset.name}: {len(dataset.train_images)} training images, read in the sandbox")
"""


def check_in_sandbox(chosen: list[Lab], sandbox_env: dict[str, str], cwd: Path) -> None:
    """Load the labs' data sets in a process started exactly as a grading kernel is (the sandbox,
    the grading environment), but before any submission runs."""
    from ..course import grading_env

    loaders = [LOADERS[name] for name in needed(chosen)]
    if not loaders:
        return
    command = [sys.executable, "-m", "aelab_course.grading.jail", sys.executable, "-c", CHECK, *loaders]
    try:
        proc = subprocess.run(command, cwd=cwd, env=grading_env(sandbox_env), capture_output=True, text=True,
                              timeout=600)
    except subprocess.TimeoutExpired:
        raise GradingEnvironmentError("cannot grade: reading the data inside the grading sandbox took over "
                                      "10 minutes. Nothing was graded.") from None
    if proc.returncode != 0:
        lines = [line for line in (proc.stderr + proc.stdout).splitlines() if line.strip()]
        error = next((line for line in reversed(lines) if re.match(r"^\w*(Error|Exception)\b", line)), "")
        where = sandbox_env.get("AELAB_DATA", "(no data folder)")
        raise GradingEnvironmentError(
            f"cannot grade: a grading kernel could not read the data in {where}: "
            f"{error or (lines[-1] if lines else 'no output')}. Check that the folder and its parents can be "
            "read by other users (the sandbox runs each kernel as a user of its own), or set AELAB_DATA to a "
            "folder they can read. Nothing was graded.")


def environment_failure(nb: nbformat.NotebookNode) -> str:
    """Why a graded notebook's failures belong to the machine, not the student (or "").

    Data and settings errors come from the machine wherever they appear. A module that cannot be
    imported counts when a cell the student cannot edit (setup, read-only, test) raised it, and a
    kernel that could not be prepared always counts.
    """
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        locked = bool(meta.get("locked")) or (bool(meta.get("grade")) and not meta.get("solution"))
        for output in cell.get("outputs", []):
            if output.get("output_type") != "error":
                continue
            name, value = output.get("ename", ""), output.get("evalue", "")
            if name in ENVIRONMENT_ERRORS or (locked and name in ("ModuleNotFoundError", "ImportError")) \
                    or (name == "NotRun" and NOT_PREPARED in value):
                where = meta.get("grade_id") or "a cell"
                return (f"the grading environment is broken ({where}: {name}: {value[:240]}); these points are "
                        "not the student's: fix the machine and grade again")
    return ""
