"""The static tamper scan: hostile cells are flagged, the reference answers and common idioms are not."""

from __future__ import annotations

import nbformat
import pytest

from aelab_course.grading.scan import Finding, describe, scan_notebook
from aelab_course.source import SETUP_TEMPLATE, labs, read_source

SETUP = SETUP_TEMPLATE.format(install_url="git+https://example.org/aelab-student@v0.2.0#subdirectory=package",
                               version="0.2.0", title="Lab 01")
IMPORTS = """\
import torch
import torch.nn.functional as F
from torch import Tensor, nn
import numpy as np
import aelab
from aelab import checks"""
TEST = """\
checks.close(fit(torch.ones(3)), torch.ones(3), "fit")
checks.passed("fit")"""


def _cell(source: str, grade_id: str | None = None, locked: bool = False) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    if grade_id:
        cell.metadata["nbgrader"] = {"grade_id": grade_id, "locked": locked, "solution": not locked,
                                     "grade": False, "schema_version": 3}
    return cell


def _notebook(answer: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[
        _cell(SETUP, "setup", locked=True), _cell(IMPORTS), _cell(answer, "answer"),
        _cell(TEST, "test_fit", locked=True)])


def _scan(answer: str) -> list[Finding]:
    return scan_notebook(_notebook(answer), locked={"setup", "test_fit"})


HOSTILE = [
    ("checks.close = lambda *a, **k: None", "monkeypatching"),
    ("import aelab.checks\naelab.checks.less = lambda *a, **k: a[0]", "monkeypatching"),
    ("torch.allclose = lambda *a, **k: True", "monkeypatching"),
    ("torch.Tensor.__eq__ = lambda self, other: True", "monkeypatching"),
    ("Tensor.__bool__ = lambda self: True", "monkeypatching"),
    ("np.testing.assert_allclose = print", "monkeypatching"),
    ("plt.rcParams.__class__ = dict", "monkeypatching"),
    ("torch.backends.cudnn.__dict__['x'] = 1", "monkeypatching"),
    ("F.__dict__['mse_loss'] = lambda a, b: 0", "monkeypatching"),
    ("del torch.isfinite", "monkeypatching"),
    ("t = torch\nt.allclose = lambda *a: True", "monkeypatching"),
    ("from aelab import checks as c\nc.less = lambda *a, **k: a[0]", "monkeypatching"),
    ("class Fake:\n    def close(self, *a, **k):\n        pass\nchecks = Fake()", "rebinds checks"),
    ("def f():\n    global torch\n    torch = None", "rebinds torch"),
    ("setattr(torch, 'allclose', lambda *a: True)", "setattr"),
    ("vars(torch)['allclose'] = lambda *a: True", "vars"),
    ("sys.displayhook = lambda value: None", "hook"),
    ("get_ipython().showtraceback = lambda *a, **k: None", "hook"),
    ("get_ipython().set_custom_exc((Exception,), lambda *a: None)", "hook"),
    ("ip = get_ipython()\nip.input_transformers_post.append(lambda lines: [])", "hook"),
    ("get_ipython().ast_transformers.append(object())", "hook"),
    ("get_ipython().events.register('post_run_cell', print)", "hook"),
    ("sys.exit(0)", "exits the kernel"),
    ("import os\nos._exit(0)", "exits the kernel"),
    ("exit()", "exits the kernel"),
    ("quit()", "exits the kernel"),
    ("print(open('../source/lab01_pca/lab01_pca.ipynb').read())", "builtin open"),
    ("x = 1\n!cat ../../gradebook.db", "shell command or magic"),
    ("print(open('../../gradebook.db').read())", "builtin open"),
    ("%%bash\ncat ../../source/lab01_pca/lab01_pca.ipynb", "shell command or magic"),
    ("files = %sx ls ../..", "shell command or magic"),
    ("%timeit import subprocess", "imports subprocess"),
    ("%%time\nexec('1')", "builtin exec"),
    ("import subprocess\nsubprocess.run(['ls'])", "imports subprocess"),
    ("subprocess.run(['cat', 'x'])", "uses the subprocess module"),
    ("import sqlite3", "imports sqlite3"),
    ("from os import system\nsystem('ls')", "imports os"),
    ("check_output = subprocess.check_output\nprint(check_output(['ls']))", "uses the subprocess module"),
    ("import os\nos.system('ls')", "runs a process"),
    ("exec('torch.allclose = lambda *a: True')", "builtin exec"),
    ("eval('1 + 1')", "builtin eval"),
    ("__import__('os')", "builtin __import__"),
    ("import builtins\nbuiltins.print = None", "imports builtins"),
    ("import gc\ngc.get_objects()", "imports gc"),
    ("import ctypes", "imports ctypes"),
    ("import sys", "imports sys"),
    ("sys.modules['aelab.checks'] = None", "monkeypatching"),
    ("print(sys.modules['aelab.checks'])", "sys.modules"),
    ("checks.close.__code__ = (lambda *a, **k: None).__code__", "monkeypatching"),
    ("g = checks.close.__globals__", "internals"),
    ("f = getattr(torch, '__builtins__')", "internals"),
    ("path = 'submitted/other_student/lab01_pca.ipynb'", "grader file"),
    ("from unittest import mock\nmock.patch('aelab.checks.close').start()", "imports unittest"),
]


@pytest.mark.parametrize(("source", "family"), HOSTILE, ids=[s.splitlines()[-1][:40] for s, _ in HOSTILE])
def test_hostile_code_is_flagged(source, family):
    findings = _scan(source)
    assert any(family in f.what for f in findings), findings
    assert all(f.cell == "answer" and f.line >= 1 and f.code for f in findings)
    assert describe(findings).startswith("grade withheld for review: answer line ")


@pytest.mark.parametrize("lab", labs(), ids=lambda lab: lab.lab_id)
def test_reference_answers_give_no_findings(lab):
    nb = read_source(lab)
    locked = {c.metadata["nbgrader"]["grade_id"] for c in nb.cells if c.metadata.get("nbgrader", {}).get("locked")}
    findings = scan_notebook(nb, locked)
    assert findings == [], describe(findings)


BENIGN = """\
%matplotlib inline
%config InlineBackend.figure_format = "retina"
import math
import matplotlib.pyplot as plt


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.register_buffer("scale", torch.ones(4))

    def forward(self, input: Tensor) -> Tensor:
        return F.relu(self.fc(input)) * self.scale


def restart(codebook: Tensor, dead: Tensor, np: Tensor) -> None:
    codebook[dead] = np[: int(dead.sum())]


model = Net()
model.eval()
for param in model.parameters():
    param.requires_grad = False
x = torch.rand(2, 3)
with torch.no_grad():
    y = model(x.view(2, 3))
x.data.clamp_(0, 1)
loss = F.mse_loss(y, torch.zeros_like(y))
y[0] = 0
history = aelab.fit(model, [], epochs=1)
cfg = {"lr": 1e-3}
cfg["lr"] = 3e-4
plt.rcParams["figure.figsize"] = (8, 4)
torch.backends.cudnn.benchmark = True
print(f"{Net.__name__}: {math.sqrt(2):.3f}")
%time y = model(x)
%timeit -n 3 -r 2 model(x)
"""


def test_benign_idioms_give_no_findings():
    assert _scan(BENIGN) == []
    assert _scan("%%time\ny = torch.ones(3).sum()") == []
    assert describe([]) == ""


def test_one_finding_per_line_the_most_telling():
    findings = _scan("x = 1\n!cat ../../gradebook.db")
    assert findings == [Finding("answer", 2, "shell command or magic", "!cat ../../gradebook.db")]
    assert describe(findings) == ("grade withheld for review: answer line 2: shell command or magic "
                                  "(`!cat ../../gradebook.db`)")


def test_locked_cells_are_skipped():
    hostile = "import subprocess\ntorch.allclose = None\nexit()"
    nb = _notebook("y = 1")
    nb.cells[3].source = hostile
    assert scan_notebook(nb, locked={"setup", "test_fit"}) == []
    assert {f.cell for f in scan_notebook(nb)} == {"setup", "test_fit"}


def test_unlocked_cell_without_metadata_is_named_by_index():
    nb = _notebook("y = 1")
    nb.cells[1].source += "\nimport os"
    [finding] = scan_notebook(nb, locked={"setup", "test_fit"})
    assert finding == Finding("cell 1", 7, "imports os", "import os")


def test_unparsable_cell_gives_no_findings():
    assert _scan("def broken(:\n    exec('x')\n") == []


def test_line_numbers_count_leading_blank_lines():
    from nbformat.v4 import new_code_cell, new_notebook

    findings = scan_notebook(new_notebook(cells=[new_code_cell('\n\nx = 1\npath = "gradebook.db"')]))
    assert [(f.line, f.code) for f in findings] == [(4, 'path = "gradebook.db"')]
