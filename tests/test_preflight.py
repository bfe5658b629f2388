"""Data reaches the grading kernels, whatever the set-up, or grading stops before it starts (issue 11).

An instructor's machine has no AELAB_DATA: the data lands in the checkout's data/ (torchvision's
download) and the grading kernels, which run in the submission's folder inside a sandbox, must
read it there. Without data, grading must stop with a message saying what is missing, where it
looked and how to fix it, write no grades, and exit non-zero; and a cell that fails for such a
reason must not be graded as the student's loss.
"""

from __future__ import annotations

import os
import shutil

import nbformat
import pytest

from aelab_course import cli
from aelab_course.grading import jail, preflight
from aelab_course.grading.grader import Grader, Submission
from aelab_course.source import labs


def test_each_lab_names_the_data_it_reads():
    found = {lab.lab_id: preflight.datasets_of(lab) for lab in labs()}
    assert found["lab01_pca"] == ["MNIST"] and found["lab05_vqvae"] == ["CIFAR-10"]
    assert preflight.needed(labs()) == ["CIFAR-10", "MNIST"]


def _submission(tmp_path, lab):
    path = tmp_path / "subs" / "ada" / f"{lab.lab_id}.ipynb"
    path.parent.mkdir(parents=True)
    shutil.copyfile(os.path.join(os.path.dirname(__file__), "..", "notebooks", f"{lab.lab_id}.ipynb"), path)
    return Submission("ada", lab, path)


def test_without_data_grading_stops_before_any_kernel_and_writes_no_grades(tmp_path, monkeypatch):
    monkeypatch.setenv("AELAB_DATA", str(tmp_path / "empty"))
    (tmp_path / "empty").mkdir()
    lab = labs(["lab01"])[0]
    grader = Grader(tmp_path / "course", workers=1)
    with pytest.raises(preflight.GradingEnvironmentError) as info:
        grader.run([_submission(tmp_path, lab)])
    message = str(info.value)
    assert "MNIST" in message and str(tmp_path / "empty") in message, message
    assert "AELAB_DATA" in message and "Nothing was graded" in message, message
    assert not (tmp_path / "course" / "autograded").exists() and not (tmp_path / "course" / "gradebook.db").exists()


def test_autograde_exits_non_zero_and_says_why(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AELAB_DATA", str(tmp_path / "empty"))
    (tmp_path / "empty").mkdir()
    lab = labs(["lab01"])[0]
    _submission(tmp_path, lab)
    code = cli.main(["autograde", str(tmp_path / "subs"), "lab01", "--out", str(tmp_path / "out")])
    assert code == 2
    assert "cannot grade: MNIST" in capsys.readouterr().err
    assert not (tmp_path / "out" / "grades.csv").exists()


@pytest.mark.needs_data
@pytest.mark.skipif(not jail.available(), reason="the sandbox needs root on Linux")
def test_a_sandboxed_kernel_reads_data_reached_through_a_symbolic_link(tmp_path, monkeypatch, real_data):
    """The grader hands the kernels the data folder with its links resolved: a link under /tmp (which
    the sandbox replaces by a private one) must still work."""
    link = tmp_path / "data-link"
    link.symlink_to(real_data)
    monkeypatch.setenv("AELAB_DATA", str(link))
    grader = Grader(tmp_path / "course", workers=1)
    grader.prepare(labs(["lab01"]))
    assert grader.data == real_data.resolve()


@pytest.mark.skipif(not jail.available(), reason="the sandbox needs root on Linux")
def test_data_the_sandbox_cannot_read_is_reported_before_grading(tmp_path, monkeypatch, real_data):
    """Data the grading process (root) can read but a sandboxed kernel (its own user) cannot: a folder
    only its owner may enter."""
    private = tmp_path / "private"
    (private / "MNIST").mkdir(parents=True)
    for name in os.listdir(real_data / "MNIST" / "raw"):
        if name.endswith(".gz"):
            (private / "MNIST" / "raw").mkdir(exist_ok=True)
            shutil.copyfile(real_data / "MNIST" / "raw" / name, private / "MNIST" / "raw" / name)
    os.chmod(private, 0o700)
    monkeypatch.setenv("AELAB_DATA", str(private))
    grader = Grader(tmp_path / "course", workers=1)
    with pytest.raises(preflight.GradingEnvironmentError, match="could not read the data"):
        grader.prepare(labs(["lab01"]))


def _graded(cells):
    nb = nbformat.v4.new_notebook()
    for grade_id, locked, outputs in cells:
        cell = nbformat.v4.new_code_cell("x")
        cell.metadata["nbgrader"] = {"grade_id": grade_id, "locked": locked, "grade": False, "solution": not locked}
        cell.outputs = [nbformat.v4.new_output("error", ename=e, evalue=v, traceback=[]) for e, v in outputs]
        nb.cells.append(cell)
    return nb


@pytest.mark.parametrize("cells, broken", [
    ([("cell-003", False, [("DataError", "MNIST was not found")])], True),
    ([("setup", True, [("ModuleNotFoundError", "No module named 'aelab'")])], True),
    ([("test_pca", True, [("NotRun", "not run: the grading kernel could not be prepared (KeyError)")])], True),
    ([("fit_pca", False, [("ModuleNotFoundError", "No module named 'seaborn'")])], False),  # the student's import
    ([("test_pca", True, [("CheckFailed", "mean: expected 1, got 2")])], False),
    ([("test_pca", True, [("NotRun", "not run: the kernel died while running fit_pca")])], False),
])
def test_environment_failures_are_told_apart_from_the_students(cells, broken):
    reason = preflight.environment_failure(_graded(cells))
    assert bool(reason) == broken, reason
    if broken:
        assert "not the student's" in reason


def test_an_environment_failure_is_the_status_of_the_submission(tmp_path):
    lab = labs(["lab01"])[0]
    grader = Grader(tmp_path / "course", workers=1)
    sub = Submission("ada", lab, tmp_path / "x.ipynb")
    graded = tmp_path / "course" / "autograded" / "ada" / lab.lab_id / f"{lab.lab_id}.ipynb"
    graded.parent.mkdir(parents=True)
    nbformat.write(_graded([("cell-003", False, [("DataError", "MNIST was not found")])]), graded)
    status, reason = grader.status(sub)
    assert status == "environment error" and "DataError" in reason
