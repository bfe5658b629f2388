"""The student versions of the labs: notebooks/ regenerated from solutions/ through nbgrader."""

from __future__ import annotations

from pathlib import Path

import nbformat

from ..course import Course
from ..paths import NOTEBOOKS
from ..source import Lab


def release_to_notebooks(course: Course, labs: list[Lab], target: Path = NOTEBOOKS) -> list[Path]:
    """Run `nbgrader generate_assignment` on each lab and write the released notebook to `target`."""
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for lab in labs:
        released = course.release(lab)
        out = target / f"{lab.lab_id}.ipynb"
        nbformat.write(nbformat.read(released, as_version=4), out)
        written.append(out)
    return written
