"""Grading a class: every submission, one gradebook, feedback, the export and a grade table."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import nbformat

from aelab.plots import show_table

from ..course import Course, correct_submission
from ..quality.banks import demo_mutant
from ..source import Lab, read_source
from ..tables import write_csv
from .grader import Grader
from .submissions import find_submissions

# Statuses whose points are not the student's own: the table says so and the command fails.
ENVIRONMENT = "environment error"


def grade_table(grader: Grader, outcomes: list) -> list[dict]:
    """One row per submission: points, the tests that lost points, and the status with its reason."""
    rows = []
    for outcome in sorted(outcomes, key=lambda o: (o.submission.lab.lab_id, o.submission.student)):
        sub = outcome.submission
        status, reason = grader.status(sub, outcome)
        scores = grader.course.test_scores(sub.lab, sub.student) if status != "not graded" else {}
        total = sum(m for _, m in scores.values()) or sum(
            float(c.metadata["nbgrader"].get("points", 0)) for c in read_source(sub.lab).cells
            if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code")
        rows.append({"student": sub.student, "lab": sub.lab.lab_id,
                     "autograded": sum(s for s, _ in scores.values()), "out of": total, "status": status,
                     "failed tests": ", ".join(n for n, (s, m) in scores.items() if s < m) or "-",
                     "reason": reason})
    return rows


def grade_class(course_root: Path, submissions: Path, chosen: list[Lab], export: Path,
                workers: int | None = None, shard: tuple[int, int] | None = None,
                ingest_only: bool = False) -> list[dict]:
    """Grade SUBMISSIONS/<student>/<lab>.ipynb in parallel; feedback, export and a grade table.

    Raises preflight.GradingEnvironmentError, before any grade is written, when the data cannot
    reach the grading kernels.
    """
    grader = Grader(course_root, workers=workers)
    subs, skipped = find_submissions(submissions, chosen)
    for line in skipped:
        print(f"skipped {line}")
    print(f"grading {len(subs)} submission(s) with {grader.workers} worker(s) ...", flush=True)
    start = time.perf_counter()
    outcomes = grader.run(subs, shard=shard, execute=not ingest_only, ingest=shard is None)
    if shard is not None:
        done = sum(o.ok for o in outcomes)
        print(f"shard {shard[0]}/{shard[1]}: {done} of {len(outcomes)} submission(s) graded; "
              "run again with --ingest-only on one machine to build the gradebook and export")
        return []
    elapsed = time.perf_counter() - start
    for outcome in outcomes:
        if not outcome.ok:
            print(f"could not grade {outcome.submission.key}: {outcome.reason}")
    fresh = [o for o in outcomes if not o.resumed]
    resumed = len(outcomes) - len(fresh)
    if fresh:
        per = sum(o.seconds for o in fresh) / len(fresh)
        print(f"graded {len(fresh)} submission(s) in {elapsed:.0f} s of wall time with {grader.workers} worker(s); "
              f"{per:.1f} s per submission on one worker", flush=True)
    if resumed:
        print(f"{resumed} submission(s) were already graded by an earlier run and kept", flush=True)
    grader.course.export(export)
    rows = grade_table(grader, outcomes)
    by_test = export.with_name(export.stem + "_by_test.csv")
    write_csv(by_test, rows)
    show_table([{k: (v[:60] + "..." if isinstance(v, str) and len(v) > 63 else v) for k, v in r.items()}
                for r in rows], title="autograded points", digits=3)
    if any(r["reason"] for r in rows):
        print(f"the reasons in full are in {by_test}")
    print(f"\ngrades exported to {export}\nfeedback in {grader.course.root / 'feedback'}")
    broken = [r for r in rows if r["status"] == ENVIRONMENT]
    if broken:
        print(f"\n{len(broken)} submission(s) hit an environment error: their points are not theirs. "
              f"First: {broken[0]['reason']}")
    return rows


def make_example_submissions(folder: Path, chosen: list[Lab], course: Course) -> None:
    """Three students per lab: one correct, one who handed in the stubs, one with a planted bug."""
    shutil.rmtree(folder, ignore_errors=True)
    for lab in chosen:
        course.release(lab)
        released = course.released_notebook(lab)
        correct = correct_submission(released, course.source_notebook(lab))
        mutant = demo_mutant(lab)
        examples = {"ada_correct": correct, "ben_stubs": released}
        if mutant is not None:
            examples["cy_planted_bug"] = mutant.apply(correct)
        for student, nb in examples.items():
            (folder / student).mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, folder / student / f"{lab.lab_id}.ipynb")
