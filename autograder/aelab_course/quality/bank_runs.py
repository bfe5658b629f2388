"""`make mutants` and `make equivalents`: every entry of a bank graded by the real pipeline, next to
the reference submission, in one batch. Mutants must lose points (in their target tests);
equivalents must keep every point (unless they say which spec sentence they break)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import nbformat

from ..course import Course, correct_submission
from ..grading.grader import Grader
from ..grading.submissions import find_submissions
from ..source import Lab
from . import banks


def submissions_for(kind: str, chosen: list[Lab], folder: Path, scratch: Course, *, only: list[str] | None = None,
                    fast: bool = False, combine: bool = False) -> dict[tuple[str, str], list[banks.Entry]]:
    """Write the reference and the bank's submissions into `folder`; returns (lab, student) -> the
    entries that submission holds. One entry per submission, or with `combine` (equivalents) as few
    submissions as possible, each holding entries that change different cells."""
    expected: dict[tuple[str, str], list[banks.Entry]] = {}
    for lab in chosen:
        scratch.release(lab)
        correct = correct_submission(scratch.released_notebook(lab), scratch.source_notebook(lab))
        entries = [e for e in banks.load(kind, lab) if (not only or e.name in only) and (e.fast or not fast)]
        submissions = [("reference", correct, [])]
        if combine:
            # A correct answer combined with other correct answers must still get every point; an
            # entry that may lose points (`breaks`) is graded on its own.
            for number, group in enumerate(banks.rounds([e for e in entries if e.must_keep_points]), start=1):
                nb = correct
                for entry in group:
                    nb = entry.apply(nb)
                submissions.append((f"{kind}-round{number}", nb, group))
            entries = [e for e in entries if not e.must_keep_points]
        submissions += [(f"{kind}-{e.name}", e.apply(correct), [e]) for e in entries]
        for student, nb, held in submissions:
            (folder / student).mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, folder / student / f"{lab.lab_id}.ipynb")
            if held:
                expected[(lab.lab_id, student)] = held
    return expected


def _grade(kind: str, chosen: list[Lab], out: Path, *, workers: int | None, only: list[str] | None, resume: bool,
           fast: bool, combine: bool) -> list[dict]:
    if not resume:
        shutil.rmtree(out, ignore_errors=True)
    folder = out / "submissions"
    expected = submissions_for(kind, chosen, folder, Course(out / "scratch"), only=only, fast=fast, combine=combine)
    subs, _ = find_submissions(folder, chosen)
    grader = Grader(out / "course", workers=workers)
    start = time.perf_counter()
    outcomes = {(o.submission.lab.lab_id, o.submission.student): o for o in grader.run(subs, desc=f"{kind}s")}
    seconds = time.perf_counter() - start
    rows = []
    for (lab_id, student), held in sorted(expected.items()):
        lab = next(lab for lab in chosen if lab.lab_id == lab_id)
        reference = grader.course.test_scores(lab, "reference")
        outcome = outcomes[(lab_id, student)]
        status, reason = grader.status(outcome.submission, outcome)
        scores = grader.course.test_scores(lab, student) if status != "not graded" else {}
        failed = [t for t, (got, top) in scores.items() if got < top] if scores else [f"({status}: {reason})"]
        lost = sum(reference[t][0] - scores.get(t, (0.0, 0.0))[0] for t in reference)
        for entry in held:
            row = {"lab": lab_id, "name": entry.name, "description": entry.description,
                   "failed tests": " ".join(failed) or "-", "points lost": round(lost, 2), "status": status,
                   "graded in": student if len(held) > 1 else "its own submission"}
            if kind == "mutant":
                row.update({"targets": " ".join(entry.targets), "killed": lost > 0,
                            "targets hit": all(t in failed for t in entry.targets)})
                row["as expected"] = row["killed"] and row["targets hit"]
            else:
                row.update({"reference": entry.reference, "breaks": entry.breaks,
                            "false fail": entry.must_keep_points and (lost > 0 or status != "graded")})
                row["as expected"] = not row["false fail"]
            rows.append(row)
    for row in rows:
        row["batch seconds"] = round(seconds)
    return rows


def run(kind: str, chosen: list[Lab], out: Path, *, workers: int | None = None, only: list[str] | None = None,
        resume: bool = False, fast: bool = False) -> list[dict]:
    """Grade the bank `kind` ("mutant" or "equivalent") of the labs `chosen`; one row per entry.

    Mutants are graded one per submission: each must lose points by itself. Equivalents are graded
    in rounds, each submission holding several that change different cells (about a quarter of the
    gradings); the entries of a round that lost any point are then graded one by one, so every
    false fail is pinned on its own entry."""
    combine = kind == "equivalent"
    rows = _grade(kind, chosen, out, workers=workers, only=only, resume=resume, fast=fast, combine=combine)
    suspects = [r["name"] for r in rows if not r["as expected"] and r["graded in"] != "its own submission"]
    if suspects:
        alone = _grade(kind, chosen, out.with_name(out.name + "-alone"), workers=workers, only=suspects,
                       resume=False, fast=fast, combine=False)
        again = {(r["lab"], r["name"]): r for r in alone}
        rows = [again.get((r["lab"], r["name"]), r) for r in rows]
    return rows
