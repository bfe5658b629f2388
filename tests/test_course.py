"""The course end to end through the real nbgrader: releases in sync with the solutions, stubs
everywhere a solution was, and for every lab a graded round trip (correct, stubs, planted bug).

These take minutes; they run under pytest-xdist so two labs grade at once."""

from __future__ import annotations

import ast
import json

import nbformat
import pytest

from aelab_course.course import Course, correct_submission
from aelab_course.grading.grader import Grader, Submission
from aelab_course.paths import NOTEBOOKS, course_config
from aelab_course.quality.banks import combined, demo_mutant, load_equivalents, load_mutants
from aelab_course.release.notebooks import release_to_notebooks
from aelab_course.source import install_url, labs, read_source

LABS = labs()
LAB_IDS = [lab.lab_id for lab in LABS]
pytestmark = [pytest.mark.slow, pytest.mark.needs_data]


def test_committed_notebooks_equal_a_fresh_release(tmp_path):
    fresh = tmp_path / "notebooks"
    release_to_notebooks(Course(tmp_path / "course"), LABS, fresh)
    committed = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    assert committed == sorted(p.name for p in fresh.glob("*.ipynb")), "notebooks/ and solutions/ hold different labs"
    for name in committed:
        assert (NOTEBOOKS / name).read_text() == (fresh / name).read_text(), (
            f"notebooks/{name} is out of date with solutions/: run `make release` and commit the result")


@pytest.mark.parametrize("lab_id", LAB_IDS)
def test_release_has_stubs_and_no_hidden_tests(lab_id):
    released = nbformat.read(NOTEBOOKS / f"{lab_id}.ipynb", as_version=4)
    source = read_source(next(lab for lab in LABS if lab.lab_id == lab_id))
    text = json.dumps(released)
    for marker in ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "BEGIN SOLUTION", "END SOLUTION"):
        assert marker not in text, f"{lab_id}: the release contains {marker!r}"
    by_id = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in released.cells}
    for cell in source.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            stub = by_id[meta["grade_id"]].source
            expected = "raise NotImplementedError()" if cell.cell_type == "code" else "YOUR ANSWER HERE"
            assert expected in stub, f"{lab_id}: no stub in answer cell {meta['grade_id']}"
    for cell in released.cells:
        assert cell.cell_type != "code" or (not cell.outputs and cell.execution_count is None), \
            f"{lab_id}: committed with outputs"
        if cell.cell_type == "code":  # a stub must parse before the student touches it (IPython lines aside)
            code = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
            try:
                ast.parse(code)
            except SyntaxError as exc:
                raise AssertionError(f"{lab_id}: a released cell does not parse ({exc}):\n{cell.source[:300]}") from None
    assert released.metadata["kernelspec"]["name"] == "python3"
    assert install_url() in by_id["setup"].source, "the setup cell must install the pinned student package"


def test_every_mutant_and_equivalent_still_applies():
    for lab in LABS:
        mutants = load_mutants(lab)
        assert sum(m.demo for m in mutants) == 1, f"{lab.lab_id}: exactly one mutant needs demo = true"
        source = read_source(lab)
        for entry in mutants + load_equivalents(lab):
            entry.apply(source)  # raises BankError when the solution has drifted


@pytest.mark.parametrize("lab_id", LAB_IDS)
def test_round_trip(lab_id, tmp_path):
    """Grade three submissions with the course's grader (nbgrader autograde per submission,
    then one gradebook), feedback and export; then check a rerun keeps finished grades.

    The correct submission runs the whole reference solution at the quick budget with the
    hidden tests put back by nbgrader, so this is also the test that every solution notebook
    passes every test.
    """
    lab = next(lab for lab in LABS if lab.lab_id == lab_id)
    scratch = Course(tmp_path / "scratch")
    released = nbformat.read(scratch.release(lab), as_version=4)
    correct = correct_submission(released, scratch.source_notebook(lab))
    mutant = demo_mutant(lab)
    alternatives, applied = combined([e for e in load_equivalents(lab) if e.fast], correct)
    subs = []
    examples = {"correct": correct, "stubs": released, "planted": mutant.apply(correct)}
    if applied:
        examples["equivalents"] = alternatives
    for student, nb in examples.items():
        path = tmp_path / "submissions" / student / f"{lab_id}.ipynb"
        path.parent.mkdir(parents=True)
        nbformat.write(nb, path)
        subs.append(Submission(student, lab, path))
    grader = Grader(tmp_path / "course", workers=1)  # xdist already grades two labs at once
    outcomes = grader.run(subs)
    assert all(o.ok for o in outcomes), [o.reason for o in outcomes if not o.ok]
    course = grader.course
    grades = course.export(tmp_path / "grades.csv").read_text()

    correct_scores = course.test_scores(lab, "correct")
    assert correct_scores, "no grades recorded"
    lost = {name: s for name, s in correct_scores.items() if s[0] < s[1]}
    assert not lost, f"the reference solution lost points in {lost}; see {tmp_path}/course/autograded"

    stub_scores = course.test_scores(lab, "stubs")
    earned = {name: s for name, s in stub_scores.items() if s[0] > 0}
    assert not earned, f"tests that pass on the untouched release: {earned}"

    planted = course.test_scores(lab, "planted")
    for target in mutant.targets:
        assert planted[target][0] < planted[target][1], (
            f"the planted bug {mutant.name!r} ({mutant.description}) did not lose the points of {target}")

    if applied:
        lost = {name: s for name, s in course.test_scores(lab, "equivalents").items() if s[0] < s[1]}
        assert not lost, (f"correct alternatives ({', '.join(e.name for e in applied)}) lost points in {lost}; "
                          f"see {tmp_path}/course/autograded/equivalents")

    assert all(grader.status(o.submission, o)[0] == "graded" for o in outcomes), \
        [grader.status(o.submission, o) for o in outcomes]
    problems = notebook_problems(course.root / "autograded" / "correct" / lab_id / f"{lab_id}.ipynb")
    assert not problems, problems

    assert grades.count(lab_id) == len(examples), grades
    for student in examples:
        feedback = course.root / "feedback" / student / lab_id / f"{lab_id}.html"
        assert feedback.is_file(), f"no feedback for {student}"
        assert "BEGIN HIDDEN TESTS" not in feedback.read_text()

    # An interrupted or repeated run keeps what was finished and grades nothing again.
    again = Grader(tmp_path / "course", workers=1).run(subs)
    assert all(o.resumed for o in again)
    assert course.test_scores(lab, "correct") == correct_scores


def notebook_problems(path) -> list[str]:
    """What a student would find wrong in an executed notebook: a cell that echoes a value or shows
    a figure twice, a warning or stderr in a test cell."""
    nb = nbformat.read(path, as_version=4)
    problems = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        meta = cell.metadata.get("nbgrader", {})
        where = meta.get("grade_id") or cell.source.splitlines()[0][:60] if cell.source else "an empty cell"
        for output in cell.get("outputs", []):
            if output.output_type == "execute_result":
                problems.append(f"{where}: echoes a value ({str(output.get('data', {}).get('text/plain'))[:80]})")
            text = output.get("text", "") if output.output_type == "stream" else ""
            if meta.get("grade") and ("Warning" in text or output.get("name") == "stderr"):
                problems.append(f"{where}: the test cell prints {text.strip()[:160]!r}")
    return problems


def test_tamper_fast_subset(tmp_path):
    """`make tamper`'s fast cases through the real pipeline: each as expected, none earning a
    point unfairly, the honest control untouched, no hidden test in any feedback."""
    from aelab_course.quality import tamper

    rows, batch = tamper.run(tmp_path / "tamper", fast=True, workers=1)  # xdist grades a lab beside it
    assert {r["case"] for r in rows} == {c.name for c in tamper.CASES if c.fast}
    wrong = [(r["case"], r["expected"], r["status"], r["points"], r["reason"]) for r in rows if not r["as expected"]]
    assert not wrong, wrong
    assert all(float(r["unfair points"]) == 0 for r in rows)
    failed = [(b["check"], b["detail"]) for b in batch if not b["as expected"]]
    assert not failed, failed
