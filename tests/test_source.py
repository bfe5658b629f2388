"""The lab-source format (solutions/*.py) and what it turns into."""

import pytest

from aelab_course.paths import course_config
from aelab_course.source import Lab, SourceError, check_test_cell, install_url, labs, read_source


def write_lab(tmp_path, text, name="lab09_demo"):
    path = tmp_path / f"{name}.py"
    path.write_text(text)
    return Lab(name, path)


GOOD = '''\
# %% [markdown]
# # Title
#
# text

# %% setup

# %% solution id=f
def f(x: int) -> int:
    """Doubles x."""
    ### BEGIN SOLUTION
    return 2 * x
    ### END SOLUTION

# %% test id=test_f points=2
def _test_f():
    assert f(2) == 4

_test_f()

# %% [markdown] answer id=words points=3
# An answer.

# %%
print("plain")
'''


def test_cells_get_nbgrader_metadata(tmp_path):
    nb = read_source(write_lab(tmp_path, GOOD))
    kinds = [(c.cell_type, c.metadata.get("nbgrader", {}).get("grade_id")) for c in nb.cells]
    assert kinds == [("markdown", None), ("code", "setup"), ("code", "f"), ("code", "test_f"),
                     ("markdown", "words"), ("code", None)]
    meta = {c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"] for c in nb.cells if "nbgrader" in c.metadata}
    assert meta["setup"]["locked"] and not meta["setup"]["grade"]
    assert meta["f"]["solution"] and not meta["f"]["grade"]
    assert meta["test_f"]["grade"] and meta["test_f"]["locked"] and meta["test_f"]["points"] == 2
    assert meta["words"]["grade"] and meta["words"]["solution"] and meta["words"]["points"] == 3
    assert nb.cells[0].source == "# Title\n\ntext"
    assert nb.metadata["kernelspec"]["name"] == "python3"


def test_setup_cell_installs_the_pinned_student_package_without_touching_torch(tmp_path):
    setup = read_source(write_lab(tmp_path, GOOD)).cells[1].source
    config = course_config()
    assert f"git+{config['student_repo']}@v{config['student_version']}#subdirectory=package" in setup
    assert install_url() in setup and "@main" not in setup
    assert f"version={config['student_version']!r}" in setup, "the notebook names the aelab version it needs"
    assert "--no-deps" in setup and "google.colab" in setup
    code = [line for line in setup.splitlines() if not line.lstrip().startswith("#")]
    assert not any("torch" in line for line in code), "the setup cell must not install or touch torch"


@pytest.mark.parametrize("text, message", [
    ("# %% setup\n# %% solution\nx = 1\n", "needs id="),
    ("# %% setup\n# %% test id=t\n_x = 1\n", "needs points="),
    ("# %% setup\n# %% solution id=s\nx = 1\n", "BEGIN SOLUTION"),
    ("# %% setup\n# %% frobnicate id=s\n", "unknown cell kind"),
    ("# %% setup\n# %% [markdown]\nnot a comment\n", "must start with '# '"),
    ("x = 1\n# %% setup\n", "before the first"),
    ("# %%\nx = 1\n", "needs a '# %% setup' cell"),
    ("# %% setup\n# %% readonly id=a\n# %% readonly id=a\n", "used twice"),
])
def test_malformed_sources_name_file_and_line(tmp_path, text, message):
    with pytest.raises(SourceError, match=message) as info:
        read_source(write_lab(tmp_path, text))
    assert "lab09_demo.py" in str(info.value)


def test_every_lab_source_parses():
    found = labs()
    assert [lab.lab_id[:5] for lab in found][:2] == ["lab01", "lab02"]
    for lab in found:
        nb = read_source(lab)
        assert any(c.metadata.get("nbgrader", {}).get("grade") for c in nb.cells), lab.lab_id
    with pytest.raises(SourceError, match="no lab called"):
        labs(["lab99"])


def test_every_calibrated_threshold_is_the_one_its_test_cell_applies():
    """autograder/thresholds/<lab>.toml mirrors the numbers in the test cells; `make calibrate` reads it."""
    import re

    from aelab_course.quality.calibrate import load_thresholds

    thresholds = load_thresholds()
    assert {t["lab"] for t in thresholds} == {lab.lab_id for lab in labs()}, "every lab registers its thresholds"
    by_lab = {lab.lab_id: lab for lab in labs()}
    for t in thresholds:
        assert t["bound"] in ("max", "min"), t
        cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in read_source(by_lab[t["lab"]]).cells}
        assert t["test"] in cells, f"{t['lab']} has no test cell {t['test']}"
        code = "\n".join(line.split("#")[0] for line in cells[t["test"]].splitlines())  # not the comments
        numbers = {float(n) for n in re.findall(r"(?<![\w.])\d+\.\d+|(?<![\w.])\d+(?![\w.])", code)}
        assert t["value"] in numbers, f"{t['lab']}/{t['test']} does not apply the threshold {t['value']} ({t['metric']})"



def test_every_claim_quotes_its_labs_text_and_names_what_it_measures():
    """A claim (autograder/thresholds/<lab>.toml) is a sentence of the lab's text checked over every
    calibration seed: the sentence must still be in the lab, and the claim must say what it bounds."""
    import re

    from aelab_course.quality.calibrate import claim_value, load_thresholds

    claims = load_thresholds("claim")
    assert claims, "the labs' text states results: they are registered as claims"
    by_lab = {lab.lab_id: lab for lab in labs()}
    for c in claims:
        assert c["bound"] in ("max", "min") and c.get("text") and c.get("metric"), c
        markdown = " ".join(cell.source for cell in read_source(by_lab[c["lab"]]).cells if cell.cell_type == "markdown")
        assert " ".join(c["text"].split()) in " ".join(markdown.split()), f"{c['lab']}: the text no longer says {c['text']!r}"
        needed = re.findall(r"m\['([^']+)'\]", c.get("expr", "")) or [c["metric"]]
        assert claim_value(c, {name: 1.0 for name in needed}) is not None, c
        assert claim_value(c, {}) is None, "a run that did not record a number must show as not recorded"

def test_a_test_cell_may_not_end_with_a_value(tmp_path):
    text = "# %% setup\n# %% test id=t points=1\nfrom aelab import checks as _checks\n_checks.less(0.1, 0.2, 'x')\n"
    with pytest.raises(SourceError, match="score"):
        read_source(write_lab(tmp_path, text))
    ok = text + "_checks.passed('x')\n"
    read_source(write_lab(tmp_path, ok))


@pytest.mark.parametrize("code, bound", [
    ("F = 1", "F"),
    ("import numpy as np", "np"),
    ("from aelab import checks", "checks"),
    ("for n in range(3):\n    pass", "n"),
    ("def helper():\n    pass", "helper"),
    ("class Probe:\n    pass", "Probe"),
    ("vq, data = 1, 2", "data, vq"),
    ("with open('x') as optimizer:\n    pass", "optimizer"),
    ("try:\n    pass\nexcept Exception as mean:\n    pass", "mean"),
    ("if (codebook := 3):\n    pass", "codebook"),
])
def test_a_test_cell_may_not_bind_a_student_name(code, bound):
    """Test cells leave the student's names alone (issue 11): F, vq, optimizer, data, codebook, n, mean."""
    with pytest.raises(SourceError, match=f"binds {bound} "):
        check_test_cell(code + "\n", "lab.py:1")


def test_names_inside_functions_and_with_underscores_are_fine():
    check_test_cell("def _test():\n    F = 1\n    import numpy as np\n    [n for n in range(2)]\n\n_test()\n", "x")
    check_test_cell("_gen = 1\nfor _i in range(2):\n    pass\n_f = lambda x: x\n", "x")


def test_every_test_cell_of_every_lab_leaves_the_students_names_alone():
    """The rule holds for each lab's visible and hidden tests (read_source enforces it)."""
    for lab in labs():
        read_source(lab)


def test_a_readonly_cell_includes_an_earlier_labs_answers(tmp_path, monkeypatch):
    from aelab_course import source

    earlier = write_lab(tmp_path, GOOD.replace("# %% solution id=f", "# %% solution id=f"), name="lab01_demo")
    later = write_lab(tmp_path, "# %% setup\n\n# %% readonly id=given include=lab01_demo:f\n", name="lab02_demo")
    monkeypatch.setattr(source, "SOLUTIONS", tmp_path)
    cell = next(c for c in read_source(later).cells if c.metadata.get("nbgrader", {}).get("grade_id") == "given")
    assert "return 2 * x" in cell.source and "BEGIN SOLUTION" not in cell.source
    assert cell.metadata["nbgrader"]["locked"] and not cell.metadata["nbgrader"]["solution"]
    bad = write_lab(tmp_path, "# %% setup\n\n# %% readonly id=g include=lab01_demo:nope\n", name="lab03_demo")
    with pytest.raises(SourceError, match="no solution cell 'nope'"):
        read_source(bad)
    assert earlier.lab_id == "lab01_demo"
