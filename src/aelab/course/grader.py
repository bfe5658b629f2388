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
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from ..training import progress_bar
from .nbgrader_course import Course, CourseError
from .source import Lab

@dataclass(frozen=True)
class Submission:
    student: str
    lab: Lab
    notebook: Path

    @property
    def key(self) -> str:
        return f"{self.lab.lab_id}/{self.student}"

    def digest(self) -> str:
        return hashlib.sha256(self.notebook.read_bytes()).hexdigest()


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

    # --- preparation -------------------------------------------------------------------------
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
        course = Course(shard)
        course.submit(sub.student, sub.lab, sub.notebook)
        try:
            course.autograde(sub.lab, sub.student)
        except CourseError as exc:
            return Outcome(sub, False, time.perf_counter() - start, reason=_last_error_line(str(exc)))
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
        for lab in {s.lab.lab_id: s.lab for s in subs}.values():
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
        return outcomes


def _last_error_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line or "error" in line]
    return (errors or lines or ["unknown error"])[-1][:300]
