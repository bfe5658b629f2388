"""The two banks of patched answers the grader is tested with.

* **Mutants** (autograder/mutants/<lab>.toml): planted student bugs. Each must lose points, in the
  tests it names (`targets`).
* **Equivalents** (autograder/equivalents/<lab>.toml): correct answers written the way other
  people write them (another algorithm, other sign conventions, nn.functional instead of modules,
  the style of a well-known public implementation). Each must keep every point. One that is not
  correct by the lab's written spec says so: `breaks` quotes the spec sentence it breaks, and it
  is then expected to lose points.

An entry patches one answer cell of the reference submission, and optionally more (`more`):

    [[mutant]]                              # or [[equivalent]]
    name = "pca-no-centring"               # unique within the lab
    cell = "fit_pca"                       # grade_id of the answer cell
    find = "X - mean"                      # must occur exactly once in that cell ...
    replace = "X"                          # ... and is replaced by this
    # source = '''...'''                   # or: the whole new cell
    targets = ["test_pca"]                 # mutants: the tests that must lose points
    description = "PCA without centring the data"
    demo = true                            # mutants: the one `make demo` hands in
    reference = "pytorch/examples vae"     # equivalents: whose style it follows
    fast = true                            # part of `make test`'s subset
    [[mutant.more]]                        # further cells, same keys (cell, find/replace or source)
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from ..paths import AUTOGRADER
from ..source import Lab

BANKS = {"mutant": AUTOGRADER / "mutants", "equivalent": AUTOGRADER / "equivalents"}


class BankError(ValueError):
    """An entry no longer applies to its lab (the solution changed); the message says which."""


@dataclass(frozen=True)
class Patch:
    cell: str
    find: str = ""
    replace: str = ""
    source: str | None = None

    def apply(self, cell_source: str, where: str) -> str:
        if self.source is not None:
            return self.source.strip("\n")
        count = cell_source.count(self.find)
        if not self.find or count != 1:
            raise BankError(f"{where}: {self.find!r} occurs {count} times in cell {self.cell!r}; it must occur "
                            "exactly once")
        return cell_source.replace(self.find, self.replace)


@dataclass(frozen=True)
class Entry:
    """A mutant or an equivalent of one lab."""

    kind: str                      # "mutant" or "equivalent"
    lab_id: str
    name: str
    description: str
    patches: tuple[Patch, ...]
    targets: tuple[str, ...] = ()  # mutants: tests that must lose points
    demo: bool = False
    fast: bool = False
    reference: str = ""            # equivalents: whose way of writing it follows
    breaks: str = ""               # equivalents: the spec sentence it breaks (then it may lose points)
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def must_keep_points(self) -> bool:
        return self.kind == "equivalent" and not self.breaks

    @property
    def cells(self) -> tuple[str, ...]:
        return tuple(p.cell for p in self.patches)

    def apply(self, notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
        """A copy of `notebook` (a filled-in submission) with this entry's patches applied."""
        nb = nbformat.from_dict(notebook)
        for patch in self.patches:
            cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == patch.cell]
            if len(cells) != 1:
                raise BankError(f"{self.lab_id}/{self.name}: no answer cell {patch.cell!r}")
            cells[0].source = patch.apply(cells[0].source, f"{self.lab_id}/{self.name}")
        return nb


def _patch(table: dict, where: str) -> Patch:
    try:
        cell = table["cell"]
    except KeyError:
        raise BankError(f"{where}: an entry lacks the key 'cell'") from None
    if "source" in table:
        return Patch(cell, source=table["source"])
    if "find" not in table or "replace" not in table:
        raise BankError(f"{where}: give either source, or find and replace")
    return Patch(cell, find=table["find"], replace=table["replace"])


def load(kind: str, lab: Lab, folder: Path | None = None) -> list[Entry]:
    """The mutants or equivalents of `lab` (an empty list when it has none)."""
    path = (folder or BANKS[kind]) / f"{lab.lab_id}.toml"
    if not path.is_file():
        return []
    with path.open("rb") as f:
        tables = tomllib.load(f).get(kind, [])
    entries = []
    for table in tables:
        where = f"{path.name}: {table.get('name', '?')}"
        try:
            patches = (_patch(table, where), *(_patch(more, where) for more in table.get("more", [])))
            entries.append(Entry(kind=kind, lab_id=lab.lab_id, name=table["name"], description=table["description"],
                                 patches=patches, targets=tuple(table.get("targets", ())),
                                 demo=bool(table.get("demo", False)), fast=bool(table.get("fast", False)),
                                 reference=table.get("reference", ""), breaks=table.get("breaks", "")))
        except KeyError as exc:
            raise BankError(f"{where}: lacks the key {exc}") from None
        if kind == "mutant" and not entries[-1].targets:
            raise BankError(f"{where}: a mutant names the tests it must fail (targets)")
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise BankError(f"{path}: names must be unique")
    return entries


def load_mutants(lab: Lab) -> list[Entry]:
    return load("mutant", lab)


def load_equivalents(lab: Lab) -> list[Entry]:
    return load("equivalent", lab)


def demo_mutant(lab: Lab) -> Entry | None:
    return next((m for m in load_mutants(lab) if m.demo), None)


def combined(entries: list[Entry], notebook: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, list[Entry]]:
    """One submission with as many `entries` applied as touch different cells (the first of each
    cell wins); returns it and the entries applied. `make test` grades this one notebook instead of
    one per entry."""
    applied = rounds(entries)[0] if entries else []
    nb = notebook
    for entry in applied:
        nb = entry.apply(nb)
    return nb, applied


def rounds(entries: list[Entry]) -> list[list[Entry]]:
    """`entries` split into as few groups as possible, each changing different cells (first come,
    first placed): `make equivalents` grades one submission per group instead of one per entry."""
    groups: list[list[Entry]] = []
    for entry in entries:
        home = next((g for g in groups if all(set(e.cells).isdisjoint(entry.cells) for e in g)), None)
        if home is None:
            groups.append([entry])
        else:
            home.append(entry)
    return groups
