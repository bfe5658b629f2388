"""Students get the labs, not the answers (issue 12).

* `make student` writes dist/student/; no line of an answer, a hidden test, a mutant or an
  equivalent may appear in it, the wheel included; and the scan does find a planted one.
* The wheel holds the student package alone: no grader, no benchmark, no solution.
* The student package never imports the instructor's package.
* No public function of the student package passes a graded stub's tests when the stub is
  replaced by a call to it (LOOKALIKES lists the functions that look like stubs).
"""

from __future__ import annotations

import ast
import shutil
import zipfile
from pathlib import Path

import pytest

import aelab
from aelab_course.paths import NOTEBOOKS, STUDENT, course_config
from aelab_course.release import leaks, student
from aelab_course import runner
from aelab_course.source import labs


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    return student.build(tmp_path_factory.mktemp("dist") / "student", labs())


def test_the_release_holds_the_notebooks_the_package_and_the_readme(release):
    files = release.files()
    for lab in labs():
        assert f"notebooks/{lab.lab_id}.ipynb" in files
        assert (release.folder / "notebooks" / f"{lab.lab_id}.ipynb").read_bytes() == \
            (NOTEBOOKS / f"{lab.lab_id}.ipynb").read_bytes()
    for name in ("README.md", "package/pyproject.toml", "package/src/aelab/__init__.py", "data/README.md",
                 "requirements.txt", "RELEASE.json"):
        assert name in files
    readme = (release.folder / "README.md").read_text()
    config = course_config()
    assert f"aelab` {release.version}" in readme and "{" not in readme.replace("{{", "")
    for lab in labs():
        assert f"{config['student_repo'].removeprefix('https://github.com/')}/blob/{config['branch']}/notebooks/" \
               f"{lab.lab_id}.ipynb" in readme, f"no Colab badge for {lab.lab_id}"
    requirements = (release.folder / "requirements.txt").read_text()
    assert "torch==" in requirements and "nbgrader" not in requirements and "pytest" not in requirements


def test_no_secret_reaches_the_student_release(release):
    found = student.check(release)
    assert not found, "\n".join(str(leak) for leak in found[:20])


def test_the_scan_finds_a_solution_line_planted_in_the_package(tmp_path):
    secrets = leaks.collect()
    planted_line, origin = next((line, origin) for line, origin in secrets.lines.items() if "answer" in origin)
    copy = tmp_path / "student"
    shutil.copytree(STUDENT, copy, ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    module = copy / "src" / "aelab" / "metrics.py"
    module.write_text(module.read_text() + f"\n\ndef _planted():\n    {planted_line}\n")
    release = student.build(tmp_path / "dist", labs(), student=copy)
    found = student.check(release)
    places = {leak.path for leak in found}
    assert any(p.startswith("package/src/aelab/metrics.py") for p in places), found
    assert any(".whl!aelab/metrics.py" in p for p in places), "the wheel must be scanned too"


def test_the_scan_finds_a_hidden_test_and_a_mutant_in_a_notebook(tmp_path):
    secrets = leaks.collect()
    hidden = next(line for line, origin in secrets.lines.items() if "hidden tests" in origin)
    mutant = next(line for line, origin in secrets.lines.items() if origin.startswith("mutants/"))
    folder = tmp_path / "release"
    folder.mkdir()
    (folder / "notes.md").write_text(f"# notes\n{hidden}\nsome text\n  {mutant}\n")
    found = leaks.scan(folder, secrets)
    assert {leak.line for leak in found} >= {leaks.normalize(hidden), leaks.normalize(mutant)}


def test_the_wheel_holds_the_student_package_alone(release):
    with zipfile.ZipFile(release.wheel) as wheel:
        names = wheel.namelist()
    top = {name.split("/")[0] for name in names}
    assert top == {"aelab", f"aelab-{release.version}.dist-info"}, top
    assert not [n for n in names if "course" in n or "bench" in n or "solution" in n or "grad" in n]
    assert "aelab/__init__.py" in names and "aelab/checks.py" in names


def test_the_student_package_never_imports_the_instructors():
    for path in (STUDENT / "src" / "aelab").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.startswith(("aelab_course", "nbgrader", "nbformat", "nbclient")) for n in names), \
                f"{path.name} imports {names}"


def test_the_package_version_is_the_one_the_notebooks_pin():
    assert aelab.__version__ == course_config()["student_version"]
    for lab in labs():
        text = (NOTEBOOKS / f"{lab.lab_id}.ipynb").read_text()
        assert f"v{aelab.__version__}#subdirectory=package" in text, lab.lab_id


# ------------------------------------------------------------------------------------------------
# The public functions of the student package that look like a graded stub, each with the most
# natural way a student could hand the stub over to it. Every one must fail the stub's tests.
LOOKALIKES = [
    ("lab02_fc", "evaluate", "aelab.reconstruction_mse",
     "def evaluate(model, batches, loss_fn=None):\n    return aelab.reconstruction_mse(model, batches)"),
    ("lab02_fc", "evaluate", "aelab.metrics.reconstruction_mse, with the loss function's value ignored",
     "def evaluate(model, batches, loss_fn=None):\n"
     "    return aelab.metrics.reconstruction_mse(model, batches) * 1.0"),
    ("lab03_conv", "overlap_1d", "aelab.upsampling.resize_conv_counts",
     "def overlap_1d(kernel_size, stride, length):\n"
     "    return aelab.upsampling.resize_conv_counts(kernel_size if kernel_size % 2 else kernel_size + 1,"
     " stride, length)[0]"),
    # The context-free cost of a set of codes scored on itself is their entropy, and exp(entropy)
    # is the perplexity; the helper's Laplace smoothing must keep it from answering the stub.
    ("lab05_vqvae", "perplexity", "aelab.prior.context_free_nats",
     "import math\n"
     "def perplexity(counts):\n"
     "    codes = torch.repeat_interleave(torch.arange(len(counts)), counts.long().cpu())\n"
     "    return math.exp(aelab.prior.context_free_nats(codes, codes, len(counts)))"),
]


def _available(lab_id: str, stub: str) -> bool:
    lab = next((lab for lab in labs() if lab.lab_id == lab_id), None)
    return lab is not None and bool(runner.tests_of(lab, stub))


@pytest.mark.needs_data
@pytest.mark.parametrize("lab_id, stub, helper, code", LOOKALIKES, ids=[f"{a}:{b}<-{c}" for a, b, c, _ in LOOKALIKES])
def test_no_package_function_passes_a_stubs_tests(lab_id, stub, helper, code):
    if not _available(lab_id, stub):
        pytest.fail(f"{lab_id} has no stub {stub!r} with tests any more: update LOOKALIKES")
    lab = labs([lab_id])[0]
    tests = runner.tests_of(lab, stub)
    honest = runner.run_script(lab, only=set(tests))
    # Tests of a trained model need the cells that train it, which the harness does not run: the
    # stub is judged by the tests the reference passes without them (there must be one).
    tests = [c.grade_id for c in honest.cells if c.grade_id in tests and not c.error]
    assert tests, f"the reference passes none of {lab_id}'s tests of {stub} in the harness"
    code = "import aelab, aelab.metrics, aelab.upsampling, aelab.generative, aelab.codebook, aelab.prior\n" + code
    replaced = runner.run_script(lab, only=set(tests), replace={stub: code})
    failed = {c.grade_id for c in replaced.cells if c.error and c.grade_id in tests}
    assert failed, f"{helper} passes every test of {lab_id}'s stub {stub} ({tests}): it answers the stub"


def test_every_package_function_is_either_plumbing_or_listed():
    """A new public function must be looked at: add it to LOOKALIKES if it resembles a stub."""
    import inspect

    from aelab import codebook, data, generative, metrics, plots, prior, probe, runtime, tracking, upsampling

    modules = (codebook, data, generative, metrics, plots, prior, probe, runtime, tracking, upsampling)
    public = {f"{m.__name__}.{name}" for m in modules
              for name, f in inspect.getmembers(m, inspect.isfunction)
              if f.__module__ == m.__name__ and not name.startswith("_")}
    reviewed = Path(__file__).with_name("student_package_functions.txt").read_text().split()
    assert sorted(public) == sorted(reviewed), (
        "the student package's public functions changed: review each new one (could a student hand a "
        "graded stub over to it?), add it to LOOKALIKES if so, and list it in tests/student_package_functions.txt. "
        f"new: {sorted(public - set(reviewed))}; gone: {sorted(set(reviewed) - public)}")
