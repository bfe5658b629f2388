"""The declared version floors are true (issue 13: "make the declared floors true").

Students install aelab with whatever Python, torch and NumPy they have (Colab's own, an old
laptop's), so each floor in student/pyproject.toml must cover every feature the package and the
labs use. This checks it without installing old stacks: a table of features, the version that
first has each, and where the course uses them.
"""

from __future__ import annotations

import ast
import re
import tomllib

import pytest

from aelab_course.paths import ROOT, SOLUTIONS, STUDENT

with (STUDENT / "pyproject.toml").open("rb") as f:
    STUDENT_PROJECT = tomllib.load(f)["project"]
with (ROOT / "pyproject.toml").open("rb") as f:
    COURSE_PROJECT = tomllib.load(f)["project"]


def floor(requirement_name: str) -> tuple[int, ...]:
    for requirement in STUDENT_PROJECT["dependencies"]:
        match = re.match(rf"^{re.escape(requirement_name)}>=([\d.]+)$", requirement)
        if match:
            return tuple(int(x) for x in match.group(1).split("."))
    raise AssertionError(f"student/pyproject.toml declares no floor for {requirement_name}")


def python_floor(project: dict) -> tuple[int, ...]:
    return tuple(int(x) for x in re.match(r">=([\d.]+)", project["requires-python"]).group(1).split("."))


def student_code() -> dict[str, str]:
    """What runs on a student's machine: the package and the labs (the released notebooks' code)."""
    files = {p.relative_to(ROOT).as_posix(): p.read_text() for p in (STUDENT / "src").rglob("*.py")}
    files.update({p.relative_to(ROOT).as_posix(): p.read_text() for p in SOLUTIONS.glob("lab*.py")})
    return files


# (what, a pattern in the code, the package, the first version that has it)
FEATURES = [
    ("a fused Adam on the CPU (fused=True)", r"fused\s*=", "torch", (2, 4)),
    ("NumPy 2 arrays in torch.from_numpy (numpy has no upper bound)", r"torch\.from_numpy", "torch", (2, 3)),
    ("torch.nn.functional.scaled_dot_product_attention", r"scaled_dot_product_attention", "torch", (2, 0)),
    ("torch.special.entr", r"torch\.special\.entr", "torch", (1, 9)),
    ("torch.linalg", r"torch\.linalg\.", "torch", (1, 9)),
    ("torch.inference_mode", r"inference_mode", "torch", (1, 9)),
    ("torch.compile", r"torch\.compile", "torch", (2, 0)),
    ("Axes.set_xticks(ticks, labels)", r"set_xticks\([^)]*,\s*\[", "matplotlib", (3, 5)),
    ("torchvision's MNIST and CIFAR10 with download=", r"datasets\.(MNIST|CIFAR10)\(", "torchvision", (0, 8)),
]


@pytest.mark.parametrize("what, pattern, package, first", FEATURES, ids=[f[0][:40] for f in FEATURES])
def test_each_feature_is_covered_by_its_floor(what, pattern, package, first):
    used = [name for name, text in student_code().items() if re.search(pattern, text)]
    if used:
        assert floor(package) >= first, (f"{', '.join(used)} use {what}, which needs {package} >= "
                                          f"{'.'.join(map(str, first))}; student/pyproject.toml says >= "
                                          f"{'.'.join(map(str, floor(package)))}")


def test_the_student_code_parses_on_the_oldest_python_it_claims():
    version = python_floor(STUDENT_PROJECT)
    for name, text in student_code().items():
        ast.parse(text, filename=name, feature_version=version[:2])  # a newer syntax raises SyntaxError
        if version < (3, 11):
            assert not re.search(r"^\s*(import tomllib|from tomllib)", text, re.MULTILINE), \
                f"{name} imports tomllib, which Python {version[0]}.{version[1]} lacks"


def test_the_instructor_tooling_claims_the_python_it_needs():
    uses_tomllib = any("tomllib" in p.read_text() for p in (ROOT / "autograder" / "aelab_course").rglob("*.py"))
    if uses_tomllib:
        assert python_floor(COURSE_PROJECT) >= (3, 11), "aelab_course imports tomllib: requires-python >= 3.11"


def test_the_pinned_stack_meets_the_floors():
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        match = re.match(r"^([\w-]+)==([\d.]+)", line.strip())
        if match:
            pins[match.group(1).lower()] = tuple(int(x) for x in match.group(2).split("."))
    for requirement in STUDENT_PROJECT["dependencies"]:
        name = re.match(r"^[\w-]+", requirement).group(0).lower()
        assert name in pins, f"requirements.txt pins no {name}"
        assert pins[name] >= floor(name), f"the pinned {name} is below the declared floor"
    assert pins["torch"][:2] == (2, 14) and pins["torchvision"][:2] == (0, 29), "torch and torchvision are pinned together"
