"""Where things live in the instructor's repository, and the course settings ([tool.aelab])."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOLUTIONS = ROOT / "solutions"          # the reference labs: the single source (private)
NOTEBOOKS = ROOT / "notebooks"          # the released notebooks, generated from SOLUTIONS
AUTOGRADER = ROOT / "autograder"        # this package, nbgrader's settings, the banks (private)
STUDENT = ROOT / "student"              # the student package and README: what ships
BUILD = ROOT / "build"                  # everything generated (never committed)
DOCS = ROOT / "docs"                    # committed measurements: calibration tables, GPU runs


def course_config() -> dict:
    """The [tool.aelab] table of pyproject.toml, plus the student package's version."""
    with (ROOT / "pyproject.toml").open("rb") as f:
        config = dict(tomllib.load(f)["tool"]["aelab"])
    config["student_version"] = student_version()
    return config


def student_version() -> str:
    """The version of the student package (aelab.__version__ in its source), which every notebook pins."""
    text = (STUDENT / "src" / "aelab" / "__init__.py").read_text()
    match = re.search(r'^__version__ = "([^"]+)"$', text, re.MULTILINE)
    if match is None:
        raise RuntimeError("student/src/aelab/__init__.py sets no __version__")
    return match.group(1)
