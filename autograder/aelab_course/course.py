"""The instructor's side, driving the real nbgrader command line: release, collect, autograde,
feedback and export, in a course folder under build/."""

from __future__ import annotations

import functools
import os
import resource
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .paths import AUTOGRADER
from .source import Lab, strip_solution_markers, write_source_notebook

CONFIG = AUTOGRADER / "nbgrader_config.py"


class CourseError(RuntimeError):
    """An nbgrader step failed; the message carries nbgrader's own output."""


def grading_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment nbgrader and the grading kernels run in.

    The venv's bin goes first on PATH because nbgrader shells out to `alembic`. Grading runs
    at the quick budget, without progress bars, on the CPU, and never downloads data.
    """
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env.setdefault("AELAB_BUDGET", "quick")
    env["AELAB_PROGRESS"] = "0"
    env.setdefault("AELAB_DEVICE", "cpu")
    env["AELAB_DOWNLOAD"] = "0"
    env.setdefault("MPLBACKEND", "Agg")
    # One thread per grading kernel: the models are small, kernels run side by side, and
    # oversubscribed OpenMP threads slow torch down by an order of magnitude on a busy machine.
    env.setdefault("OMP_NUM_THREADS", "1")
    env["PYTHONWARNINGS"] = "ignore"
    env.pop("AELAB_METRICS", None)
    if env.get("AELAB_DATA"):  # kernels run in the submission's folder: a relative path would break
        env["AELAB_DATA"] = str(Path(env["AELAB_DATA"]).resolve())
    env.update(extra or {})
    return env


MEMORY_ENV = "AELAB_MEMORY_LIMIT_GB"


@functools.cache
def network_isolation() -> list[str]:
    """The command prefix that runs grading without network (`unshare --net`), where the system
    allows it; otherwise nothing, and grading runs with the machine's network."""
    if shutil.which("unshare") and subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode == 0:
        return ["unshare", "--net"]
    return []


def _limit_memory() -> None:
    """Cap the address space of nbgrader and the kernels it starts (a memory bomb then fails
    with MemoryError in the student's cell instead of taking the machine down)."""
    gigabytes = float(os.environ.get(MEMORY_ENV, "8"))
    limit = int(gigabytes * 1024**3)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


@dataclass
class Course:
    """An nbgrader course folder: source/, release/, submitted/, autograded/, feedback/, gradebook.db."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "nbgrader_config.py").write_text(
            "# Written by aelab: the course settings live in autograder/nbgrader_config.py.\n"
            "c = get_config()  # noqa: F821\n"
            f"load_subconfig({str(CONFIG)!r})  # noqa: F821\n"
            f"c.CourseDirectory.root = {str(self.root)!r}\n"
        )

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.root / 'gradebook.db'}"

    def nbgrader(self, *args: str, check: bool = True, sandbox: bool = False,
                 timeout: float | None = None) -> subprocess.CompletedProcess:
        """Run an nbgrader command on this course. `sandbox` (for autograding student code) adds
        a memory cap and, where the system allows, no network; kernels talk over IPC sockets.
        Past `timeout` seconds the command is killed and CourseError says so."""
        cmd = [sys.executable, "-m", "nbgrader", *args]
        if sandbox:
            cmd = network_isolation() + cmd
        # nbgrader reads nbgrader_config.py from its working directory.
        try:
            proc = subprocess.run(cmd, cwd=self.root, env=grading_env(self.env), capture_output=True, text=True,
                                  preexec_fn=_limit_memory if sandbox else None, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise CourseError(f"`nbgrader {' '.join(args)}` was stopped after {timeout:.0f} s") from None
        if check and proc.returncode != 0:
            raise CourseError(f"`nbgrader {' '.join(args)}` failed (exit {proc.returncode}):\n"
                              f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
        return proc

    # --- release -------------------------------------------------------------------------
    def release(self, lab: Lab) -> Path:
        """Generate the student version of a lab; returns the released notebook."""
        write_source_notebook(lab, self.root)
        self.nbgrader("generate_assignment", lab.lab_id, "--force", "--create")
        released = self.root / "release" / lab.lab_id / f"{lab.lab_id}.ipynb"
        if not released.is_file():
            raise CourseError(f"nbgrader did not write {released}")
        return released

    def source_notebook(self, lab: Lab) -> nbformat.NotebookNode:
        return nbformat.read(self.root / "source" / lab.lab_id / f"{lab.lab_id}.ipynb", as_version=4)

    def released_notebook(self, lab: Lab) -> nbformat.NotebookNode:
        return nbformat.read(self.root / "release" / lab.lab_id / f"{lab.lab_id}.ipynb", as_version=4)

    # --- collect -------------------------------------------------------------------------
    def submit(self, student: str, lab: Lab, notebook: Path) -> Path:
        """Place one student's notebook where nbgrader expects a collected submission."""
        target = self.root / "submitted" / student / lab.lab_id / f"{lab.lab_id}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(notebook, target)
        (target.parent / "timestamp.txt").write_text("2026-01-01 00:00:00.000000 UTC\n")
        return target

    def students(self, lab: Lab) -> list[str]:
        submitted = self.root / "submitted"
        return sorted(p.name for p in submitted.iterdir() if (p / lab.lab_id).is_dir()) if submitted.is_dir() else []

    # --- grade ---------------------------------------------------------------------------
    def autograde(self, lab: Lab, student: str | None = None, timeout: float | None = None) -> subprocess.CompletedProcess:
        args = ["autograde", lab.lab_id, "--force"]
        if student:
            args += ["--student", student]
        return self.nbgrader(*args, sandbox=True, timeout=timeout)

    def feedback(self, lab: Lab, student: str | None = None) -> None:
        args = ["generate_feedback", lab.lab_id, "--force"]
        if student:
            args += ["--student", student]
        self.nbgrader(*args)

    def export(self, csv_path: Path) -> Path:
        csv_path = Path(csv_path).resolve()
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        self.nbgrader("export", "--to", str(csv_path))
        return csv_path

    def test_scores(self, lab: Lab, student: str) -> dict[str, tuple[float, float]]:
        """Points per autograded test cell: grade_id -> (score, max score)."""
        from nbgrader.api import Gradebook, MissingEntry

        with Gradebook(self.db_url) as gb:
            try:
                nb = gb.find_submission_notebook(lab.lab_id, lab.lab_id, student)
            except MissingEntry:
                return {}
            return {g.name: (float(g.auto_score or 0.0), float(g.max_score)) for g in nb.grades
                    if g.cell.cell_type == "code"}


# ---------------------------------------------------------------------------------------------
# Submissions made from the solutions: what a correct, an untouched and a buggy student hand in.

def correct_submission(released: nbformat.NotebookNode, source: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The released notebook with every answer cell filled in as the solution has it."""
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source.cells
               if c.metadata.get("nbgrader", {}).get("solution")}
    nb = nbformat.from_dict(released)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = strip_solution_markers(answers[grade_id])
    return nb
