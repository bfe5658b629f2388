"""Finding the submissions of a class: SUBMISSIONS/<student>/<lab>.ipynb."""

from __future__ import annotations

from pathlib import Path

import nbformat

from ..source import Lab, read_source
from .grader import Submission


def _grade_ids(path: Path) -> set[str]:
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception:  # noqa: BLE001 - an unreadable file is reported when it is graded
        return set()
    return {c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells} - {None}


def find_submissions(submissions: Path, chosen: list[Lab]) -> tuple[list[Submission], list[str]]:
    """SUBMISSIONS/<student>/<lab>.ipynb; returns the submissions and what was skipped and why.

    A renamed notebook ("Copy of lab01_pca.ipynb", "lab01_pca (1).ipynb") is recognised by its
    cells and graded, with a note, unless the student also handed in one under the right name.
    """
    skipped = []
    found = []
    by_id = {lab.lab_id: lab for lab in chosen}
    lab_cells = {lab.lab_id: {c.metadata["nbgrader"]["grade_id"] for c in read_source(lab).cells
                              if c.metadata.get("nbgrader", {}).get("grade_id")} for lab in chosen}
    for student_dir in sorted(p for p in submissions.iterdir() if p.is_dir()):
        files = sorted(p for p in student_dir.iterdir() if p.is_file())
        named = {f.stem for f in files if f.suffix == ".ipynb" and f.stem in by_id}
        for notebook in files:
            if notebook.suffix == ".ipynb" and notebook.stem in by_id:
                found.append(Submission(student_dir.name, by_id[notebook.stem], notebook))
                continue
            ids = _grade_ids(notebook) if notebook.suffix == ".ipynb" else set()
            match = max(lab_cells, key=lambda lab_id: len(ids & lab_cells[lab_id]), default=None)
            if match and ids & lab_cells[match] and match not in named:
                named.add(match)
                found.append(Submission(student_dir.name, by_id[match], notebook,
                                        note=f"graded as {match}.ipynb (the file was named {notebook.name!r})"))
                continue
            skipped.append(f"{student_dir.name}/{notebook.name}: not a lab notebook "
                           f"(expected one of {', '.join(f'{i}.ipynb' for i in by_id)})")
    return found, skipped
