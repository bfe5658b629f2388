"""Part 3 of the benchmark: seconds to autograde one (correct) submission of each lab, at the
quick budget, with the course's own grader. (`make bench-grading`, in grading_bench.py, compares
the grader with plain serial nbgrader over a class.)"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from .measure import PeakMemory


def run_grading(lab_id: str, work: Path) -> dict:
    """Release the lab, make the reference submission (every answer cell as the solution has it),
    and grade it with the course's Grader (nbgrader autograde in a course of its own, quick budget,
    CPU, the grading part's threads: one unless --threads says otherwise); the seconds are those
    of the grading of that one submission."""
    import nbformat

    from ..course import Course, correct_submission
    from ..grading.grader import Grader, Submission
    from ..source import labs

    os.environ["AELAB_BUDGET"] = "quick"  # the grading kernels' budget, whatever this shell says
    lab = labs([lab_id])[0]
    root = work / lab.lab_id / "course"
    shutil.rmtree(root.parent, ignore_errors=True)  # the course, its shards and the submission
    with PeakMemory() as memory:
        grader = Grader(root, workers=1)
        start = time.perf_counter()
        template = grader.template(lab)
        release_s = time.perf_counter() - start
        released = nbformat.read(template / "release" / lab.lab_id / f"{lab.lab_id}.ipynb", as_version=4)
        correct = correct_submission(released, Course(template).source_notebook(lab))
        path = root.parent / "submissions" / "correct" / f"{lab.lab_id}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(correct, path)
        outcome = grader.run([Submission("correct", lab, path)], desc=f"grading {lab.lab_id}", ingest=False)[0]
    row = {"part": "grading", "lab": lab.lab_id, "variant": "reference submission, quick budget",
           "seconds": round(outcome.seconds, 1), "warmup_s": round(release_s, 1), "peak_rss_mb": memory.rss_mb,
           "status": "ok" if outcome.ok else f"failed: {outcome.reason}"}
    if outcome.ok:
        shard = grader.shards / lab.lab_id / "correct"
        scores = Course(shard).test_scores(lab, "correct")
        got, total = sum(s for s, _ in scores.values()), sum(m for _, m in scores.values())
        row["note"] = f"autograded {got:g} of {total:g} points"
    return row
