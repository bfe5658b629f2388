import nbformat

from aelab_course.grading.preprocessors import ShortTracebacksInHiddenTests, StderrToStdout


def graded_cell(source, outputs, grade=True):
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade": grade, "solution": False, "grade_id": "t", "points": 1}
    cell.outputs = [nbformat.from_dict(o) for o in outputs]
    return cell


def test_stderr_of_graded_cells_becomes_stdout_and_errors_stay():
    warning = {"output_type": "stream", "name": "stderr", "text": "UserWarning: harmless\n"}
    error = {"output_type": "error", "ename": "CheckFailed", "evalue": "x", "traceback": []}
    nb = nbformat.v4.new_notebook(cells=[graded_cell("t()", [warning, error]),
                                         graded_cell("u()", [dict(warning)], grade=False)])
    assert StderrToStdout().enabled
    nb, _ = StderrToStdout().preprocess(nb, {})
    assert [o.get("name") for o in nb.cells[0].outputs] == ["stdout", None]
    assert nb.cells[0].outputs[1].output_type == "error"
    assert nb.cells[1].outputs[0].name == "stderr"  # only graded cells are touched


def test_hidden_test_tracebacks_keep_only_the_message():
    error = {"output_type": "error", "ename": "CheckFailed", "evalue": "mean: expected 1, got 2",
             "traceback": ["----> 5 secret_hidden_check(model)", "CheckFailed: mean: expected 1, got 2"]}
    hidden = graded_cell("visible()\n### BEGIN HIDDEN TESTS\nsecret_hidden_check(model)\n### END HIDDEN TESTS", [error])
    visible = graded_cell("visible()", [dict(error)])
    nb = nbformat.v4.new_notebook(cells=[hidden, visible])
    nb, _ = ShortTracebacksInHiddenTests().preprocess(nb, {})
    assert nb.cells[0].outputs[0].traceback == ["CheckFailed: mean: expected 1, got 2"]
    assert len(nb.cells[1].outputs[0].traceback) == 2
