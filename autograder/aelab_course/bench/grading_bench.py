"""`make bench-grading`: the same class graded by plain serial `nbgrader autograde` and by aelab's
parallel grader, in one run; writes build/grading_bench.{csv,md}."""

from __future__ import annotations

import os
import shutil
import time

import nbformat

from aelab.plots import show_table

from ..course import Course, correct_submission
from ..grading.grader import Grader
from ..grading.submissions import find_submissions
from ..paths import BUILD
from ..quality.banks import load_mutants
from ..source import labs
from ..tables import write_csv


def run(lab_id: str = "lab01_pca", count: int = 20, workers: int | None = None) -> int:
    """Grade the same 20 submissions twice in one run: with plain serial `nbgrader autograde` in
    one course, and with aelab's grader on every core. Writes build/grading_bench.{csv,md}."""
    import platform

    out = BUILD / "grading-bench"
    shutil.rmtree(out, ignore_errors=True)
    lab = labs([lab_id])[0]
    scratch = Course(out / "scratch")
    released = nbformat.read(scratch.release(lab), as_version=4)
    correct = correct_submission(released, scratch.source_notebook(lab))
    planted = [m.apply(correct) for m in load_mutants(lab)]
    # A class: mostly correct work, some bugs, a few untouched stubs.
    kinds = [("correct", correct)] * 12 + [("bug", planted[i % len(planted)]) for i in range(5)] + [("stubs", released)] * 3
    folder = out / "submissions"
    for i, (kind, nb) in enumerate(kinds[:count]):
        (folder / f"s{i:02d}-{kind}").mkdir(parents=True)
        nbformat.write(nb, folder / f"s{i:02d}-{kind}" / f"{lab.lab_id}.ipynb")
    subs, _ = find_submissions(folder, [lab])

    print(f"1/2 plain nbgrader: {len(subs)} submissions, one `nbgrader autograde` (serial) ...", flush=True)
    serial = Course(out / "serial")
    serial.release(lab)
    for sub in subs:
        serial.submit(sub.student, lab, sub.notebook)
    start = time.perf_counter()
    serial.autograde(lab)
    serial_seconds = time.perf_counter() - start

    grader = Grader(out / "parallel", workers=workers)
    print(f"2/2 aelab's grader: the same submissions on {grader.workers} worker(s) ...", flush=True)
    start = time.perf_counter()
    outcomes = grader.run(subs, desc="parallel")
    parallel_seconds = time.perf_counter() - start
    same = all(serial.test_scores(lab, s.student) == grader.course.test_scores(lab, s.student) for s in subs)
    n = len(subs)
    rows = [
        {"grader": "nbgrader autograde (serial)", "workers": 1, "submissions": n,
         "wall seconds": round(serial_seconds, 1), "seconds per submission": round(serial_seconds / n, 1),
         "submissions per minute": round(60 * n / serial_seconds, 2), "speed-up": 1.0},
        {"grader": "aelab (parallel, sandboxed, resumable)", "workers": grader.workers, "submissions": n,
         "wall seconds": round(parallel_seconds, 1), "seconds per submission": round(parallel_seconds / n, 1),
         "submissions per minute": round(60 * n / parallel_seconds, 2),
         "speed-up": round(serial_seconds / parallel_seconds, 2)},
    ]
    write_csv(BUILD / "grading_bench.csv", rows)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    lines = [f"# Grading {n} submissions of {lab.lab_id}", "", f"Machine: {machine}. One run of "
             "`make bench-grading`; both graders used the course's nbgrader settings and the quick budget.",
             "", "| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(str(v) for v in r.values()) + " |" for r in rows]
    lines += ["", "aelab's wall time includes what plain nbgrader's does not: gathering the graded notebooks "
              "into one gradebook and writing every student's feedback; each of its kernels also runs "
              "sandboxed and sealed (see README).",
              "", f"Every submission got the same points from both: {same}. "
              f"Graded without error by aelab: {sum(o.ok for o in outcomes)} of {n}."]
    (BUILD / "grading_bench.md").write_text("\n".join(lines) + "\n")
    show_table(rows, title=f"grading {n} submissions of {lab.lab_id}")
    print(f"same points from both graders: {same}; table in {BUILD / 'grading_bench.md'}")
    return 0 if same else 1
