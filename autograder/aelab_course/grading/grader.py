"""Grading a whole class in parallel, safely, and resumably, with nbgrader doing the grading.

nbgrader grades one submission at a time against one sqlite gradebook. Here each submission is
graded by the real `nbgrader autograde` in a course folder of its own (a copy of a prepared
template with the lab's source, release and gradebook), several at once. That also isolates
submissions from each other: whatever one does to its gradebook or folders touches no one else.
Then the executed notebooks are ingested into the class's course with an nbgrader run that
restores the locked cells again but does not execute anything, which fills the one gradebook
that feedback and export read.

A finished submission leaves a marker holding the hash of what was graded, so a run that is
killed and started again regrades only what was not finished (or has changed).

Each submission's kernel runs in a sandbox (aelab_course.grading.jail) as a user of its own, with a
private folder for its sockets, and sees neither the hidden tests, nor the gradebooks, nor any
other submission. A file that is not a notebook is reported, not graded, and the batch goes on.
"""

from __future__ import annotations

import hashlib
import html
import itertools
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import nbformat

from aelab.tracking import progress_bar

from ..course import Course, CourseError
from ..paths import AUTOGRADER, BUILD, DOCS, ROOT, SOLUTIONS
from ..source import Lab
from . import jail, preflight
from .preprocessors import ENVIRONMENT_ERRORS, STOP_ERRORS

# Where the hidden tests, the solutions, the banks of answers and past gradings live: never
# visible to a kernel. (The grading code itself stays readable: the kernel imports the seal.)
PRIVATE = [SOLUTIONS, AUTOGRADER / "mutants", AUTOGRADER / "equivalents", AUTOGRADER / "thresholds", BUILD,
           DOCS, ROOT / "dist", ROOT / "tests", ROOT / ".git"]
SUBMISSION_TIMEOUT_ENV = "AELAB_SUBMISSION_TIMEOUT"

@dataclass(frozen=True)
class Submission:
    student: str
    lab: Lab
    notebook: Path
    note: str = ""  # e.g. that the file was renamed

    @property
    def key(self) -> str:
        return f"{self.lab.lab_id}/{self.student}"

    def digest(self) -> str:
        return hashlib.sha256(self.notebook.read_bytes()).hexdigest()

    def problem(self) -> str:
        """Why this file cannot be graded as a notebook, or "" when it can."""
        data = self.notebook.read_bytes()
        if not data.strip():
            return "the file is empty: download the notebook again (File > Download > .ipynb) and resubmit"
        try:
            nb = nbformat.reads(data.decode("utf-8"), as_version=4)
        except UnicodeDecodeError:
            return "the file is not a text file, so not a Jupyter notebook"
        except Exception as exc:  # noqa: BLE001 - nbformat raises several kinds for a broken file
            return f"the file is not a readable Jupyter notebook ({type(exc).__name__}: {str(exc)[:160]})"
        if not any(c.get("metadata", {}).get("nbgrader") for c in nb.cells):
            return "the notebook holds none of the lab's cells: submit the lab's notebook, not a new one"
        return ""


@dataclass
class Outcome:
    submission: Submission
    ok: bool
    seconds: float
    reason: str = ""
    resumed: bool = False


class Grader:
    """Grades submissions into the class course at `root`, using `workers` processes at once."""

    def __init__(self, root: Path, workers: int | None = None):
        self.root = Path(root).resolve()
        self.shards = self.root.parent / f"{self.root.name}-shards"
        self.course = Course(self.root)
        self.workers = max(1, workers or os.cpu_count() or 1)
        self._templates: dict[str, Path] = {}
        # One user id per kernel, so that kernels graded side by side cannot signal each other.
        self._uids = itertools.count(200_000 + (os.getpid() % 10_000) * 100)
        self.kernels = self._install_kernelspec()
        self.data: Path | None = None  # the data folder the kernels read, once prepare() found it

    def _install_kernelspec(self) -> Path:
        """A `python3` kernelspec that starts each grading kernel inside the sandbox; nbgrader
        finds it first because the grading environment puts this folder on JUPYTER_PATH."""
        folder = self.shards / "_kernels"
        spec = folder / "kernels" / "python3"
        spec.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "aelab_course.grading.jail", sys.executable, "-m", "ipykernel_launcher",
                "-f", "{connection_file}"]
        (spec / "kernel.json").write_text(json.dumps(
            {"argv": argv, "display_name": "Python 3 (aelab grading sandbox)", "language": "python"}, indent=1))
        return folder

    # --- preparation -------------------------------------------------------------------------
    def sandbox_env(self, uid: int, kernel_dir: Path) -> dict[str, str]:
        """The environment of a sandboxed kernel (and of the preflight check, which must see what
        a kernel sees)."""
        hide = [*PRIVATE, self.shards, self.root]
        env = {"JUPYTER_PATH": str(self.kernels), "JUPYTER_RUNTIME_DIR": str(kernel_dir),
               "AELAB_KERNEL_DIR": str(kernel_dir), jail.ENV_KEEP: str(kernel_dir), jail.ENV_UID: str(uid),
               jail.ENV_HIDE: os.pathsep.join(str(p) for p in hide)}
        if self.data is not None:
            env["AELAB_DATA"] = str(self.data)
        return env

    def prepare(self, chosen: list[Lab]) -> None:
        """Before any kernel starts: find (or download, once, here) the data the labs read, and check
        that a sandboxed kernel can read it. Raises preflight.GradingEnvironmentError, which says
        what is missing, where it looked and how to fix it, when it cannot."""
        self.data = preflight.ensure_data(chosen)
        work = Path(tempfile.mkdtemp(prefix="aelab-pre"))
        try:
            uid = next(self._uids)
            preflight.check_in_sandbox(chosen, self.sandbox_env(uid, work), work)
        finally:
            _kill_user(uid)
            shutil.rmtree(work, ignore_errors=True)

    def template(self, lab: Lab) -> Path:
        """A course folder with the lab released and its gradebook made: copied per submission."""
        if lab.lab_id not in self._templates:
            path = self.shards / "_template" / lab.lab_id
            shutil.rmtree(path, ignore_errors=True)
            Course(path).release(lab)
            self._templates[lab.lab_id] = path
            self.course.release(lab)
        return self._templates[lab.lab_id]

    def _shard(self, sub: Submission) -> Path:
        return self.shards / sub.lab.lab_id / sub.student

    def _marker(self, sub: Submission) -> Path:
        return self._shard(sub) / "graded.json"

    def status(self, sub: Submission, outcome: "Outcome | None" = None) -> tuple[str, str]:
        """("graded" | "withheld" | "environment error" | "not graded", the reason in a sentence, or "").

        "environment error": a cell failed because the grading machine is broken (no data, a
        missing module, a kernel that could not be prepared), not because of the submission. Its
        points are not the student's: fix the machine and grade again.
        """
        if outcome is not None and not outcome.ok:
            return "not graded", outcome.reason
        path = self.root / "autograded" / sub.student / sub.lab.lab_id / f"{sub.lab.lab_id}.ipynb"
        if not path.is_file():
            return "not graded", "no graded notebook"
        nb = nbformat.read(path, as_version=4)
        withheld = nb.metadata.get("aelab", {}).get("withheld")
        if withheld:
            return "withheld", withheld
        environment = preflight.environment_failure(nb)
        if environment:
            return "environment error", environment
        for cell in nb.cells:
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error" and output.get("ename") in STOP_ERRORS:
                    return "graded", f"{output['ename']}: {output.get('evalue', '')}"
        return "graded", sub.note

    def write_failure_feedback(self, sub: Submission, reason: str) -> Path:
        """nbgrader writes no feedback for a notebook it could not grade; this says why."""
        path = self.root / "feedback" / sub.student / sub.lab.lab_id / f"{sub.lab.lab_id}.html"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{sub.lab.lab_id}: not graded"
                        f"</title></head>\n<body><h1>{sub.lab.lab_id}: not graded</h1>\n<p>Your file "
                        f"<code>{html.escape(sub.notebook.name)}</code> could not be graded: "
                        f"{html.escape(reason)}</p>\n<p>Your grade for this lab is 0 until you resubmit.</p>"
                        f"</body></html>\n")
        return path

    def finished(self, sub: Submission) -> bool:
        marker = self._marker(sub)
        if not marker.is_file():
            return False
        try:
            return json.loads(marker.read_text()).get("sha256") == sub.digest()
        except (OSError, ValueError):
            return False

    # --- phase 1: execute each submission in its own course -----------------------------------
    def grade_one(self, sub: Submission) -> Outcome:
        start = time.perf_counter()
        shard = self._shard(sub)
        shutil.rmtree(shard, ignore_errors=True)
        shutil.copytree(self.template(sub.lab), shard)
        problem = sub.problem()
        if problem:
            return Outcome(sub, False, time.perf_counter() - start, reason=problem)
        kernel_dir = Path(tempfile.mkdtemp(prefix="aelab-k"))  # short: socket paths are limited to 107 bytes
        uid = next(self._uids)
        course = Course(shard, env=self.sandbox_env(uid, kernel_dir))
        course.submit(sub.student, sub.lab, sub.notebook)
        try:
            course.autograde(sub.lab, sub.student, timeout=float(os.environ.get(SUBMISSION_TIMEOUT_ENV, "3600")))
        except CourseError as exc:
            return Outcome(sub, False, time.perf_counter() - start, reason=_last_error_line(str(exc)))
        finally:
            _kill_user(uid)
            shutil.rmtree(kernel_dir, ignore_errors=True)
        executed = shard / "autograded" / sub.student / sub.lab.lab_id / f"{sub.lab.lab_id}.ipynb"
        if not executed.is_file():
            return Outcome(sub, False, time.perf_counter() - start, reason="nbgrader wrote no graded notebook")
        seconds = time.perf_counter() - start
        self._marker(sub).write_text(json.dumps({"sha256": sub.digest(), "seconds": round(seconds, 1)}))
        return Outcome(sub, True, seconds)

    # --- phase 2: one gradebook for the class -------------------------------------------------
    def ingest(self, lab: Lab, subs: list[Submission]) -> None:
        # The same course, with nbgrader told (autograder/nbgrader_config.py) to score the outputs
        # already there: restore the locked cells, execute nothing.
        ingest = Course(self.root, env={"AELAB_GRADING_PHASE": "ingest"})
        for sub in subs:
            executed = self._shard(sub) / "autograded" / sub.student / lab.lab_id / f"{lab.lab_id}.ipynb"
            self.course.submit(sub.student, lab, executed)
        ingest.autograde(lab)
        self.course.feedback(lab)

    def run(self, subs: list[Submission], *, desc: str = "grading", shard: tuple[int, int] | None = None,
            execute: bool = True, ingest: bool = True) -> list[Outcome]:
        """Grade `subs`, then ingest every finished one into the class gradebook.

        Across machines: each runs `execute` only on its `shard` (i, n) of the submissions (say,
        as a Slurm array task) into a shared build folder; one run with `execute=False` then
        ingests them all.
        """
        if shard is not None:
            index, count = shard
            subs = [sub for i, sub in enumerate(subs) if i % count == index]
        chosen = list({s.lab.lab_id: s.lab for s in subs}.values())
        if execute and any(not self.finished(sub) for sub in subs):
            self.prepare(chosen)
        for lab in chosen:
            self.template(lab)
        outcomes: list[Outcome] = []
        todo = []
        for sub in subs:
            if self.finished(sub):
                outcomes.append(Outcome(sub, True, 0.0, resumed=True))
            elif execute:
                todo.append(sub)
            else:
                outcomes.append(Outcome(sub, False, 0.0, reason="not graded yet (no finished shard)"))
        bar = progress_bar(len(subs), desc)
        bar.update(len(outcomes))
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            futures = [pool.submit(self.grade_one, sub) for sub in todo]
            for future in as_completed(futures):
                outcomes.append(future.result())
                bar.update(1)
        bar.close()
        if not ingest:
            return outcomes
        for lab in {s.lab.lab_id: s.lab for s in subs}.values():
            graded = [o.submission for o in outcomes if o.ok and o.submission.lab.lab_id == lab.lab_id]
            if graded:
                self.ingest(lab, graded)
        for outcome in outcomes:
            if not outcome.ok:
                self.write_failure_feedback(outcome.submission, outcome.reason)
        return outcomes


def _kill_user(uid: int) -> None:
    """Kill whatever a submission's kernel left running (its processes run as `uid`)."""
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            uids = next(line for line in status.read_text().splitlines() if line.startswith("Uid:"))
            if int(uids.split()[1]) == uid:
                os.kill(int(status.parent.name), signal.SIGKILL)
        except (OSError, StopIteration, ValueError):
            continue


def _last_error_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line or "error" in line]
    return (errors or lines or ["unknown error"])[-1][:300]
