"""Planted student bugs ("mutants"): small find-and-replace patches to one answer cell.

They live in autograder/mutants/<lab>.toml, one [[mutant]] table each:

    [[mutant]]
    name = "pca-no-centring"          # unique within the lab
    cell = "fit_pca"                  # grade_id of the answer cell to patch
    find = "X - mean"                 # must occur exactly once in that cell
    replace = "X"
    targets = ["test_pca"]            # tests that must lose points
    description = "PCA without centring the data"
    demo = true                       # the one planted bug `make demo` hands in for this lab
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass

import nbformat

from .source import ROOT, Lab

MUTANTS = ROOT / "autograder" / "mutants"


class MutantError(ValueError):
    """A mutant no longer applies to its lab (the solution changed); the message says which."""


@dataclass(frozen=True)
class Mutant:
    lab_id: str
    name: str
    cell: str
    find: str
    replace: str
    targets: tuple[str, ...]
    description: str
    demo: bool = False

    def apply(self, notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
        """A copy of `notebook` (a filled-in submission) with this bug planted."""
        nb = nbformat.from_dict(notebook)
        cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == self.cell]
        if len(cells) != 1:
            raise MutantError(f"{self.lab_id}/{self.name}: no answer cell {self.cell!r}")
        count = cells[0].source.count(self.find)
        if count != 1:
            raise MutantError(f"{self.lab_id}/{self.name}: {self.find!r} occurs {count} times in cell "
                              f"{self.cell!r}; it must occur exactly once")
        cells[0].source = cells[0].source.replace(self.find, self.replace)
        return nb


def load_mutants(lab: Lab) -> list[Mutant]:
    path = MUTANTS / f"{lab.lab_id}.toml"
    if not path.is_file():
        return []
    with path.open("rb") as f:
        entries = tomllib.load(f).get("mutant", [])
    mutants = []
    for entry in entries:
        try:
            mutants.append(Mutant(lab_id=lab.lab_id, name=entry["name"], cell=entry["cell"], find=entry["find"],
                                  replace=entry["replace"], targets=tuple(entry["targets"]),
                                  description=entry["description"], demo=bool(entry.get("demo", False))))
        except KeyError as exc:
            raise MutantError(f"{path}: a mutant lacks the key {exc}") from None
    names = [m.name for m in mutants]
    if len(set(names)) != len(names):
        raise MutantError(f"{path}: mutant names must be unique")
    return mutants


def demo_mutant(lab: Lab) -> Mutant | None:
    return next((m for m in load_mutants(lab) if m.demo), None)
