"""What must never reach a student, and a scan of a student release for it.

The secrets of the course are, line by line:

* the reference answers: every line inside a ``### BEGIN SOLUTION`` region, and the text of the
  written answers (``[markdown] answer`` cells);
* the hidden tests: every line inside a ``### BEGIN HIDDEN TESTS`` region;
* the banks: the text of every planted bug (mutant) and every correct alternative (equivalent).

A line only counts when it is distinctive (at least MIN_CHARS characters once whitespace is
collapsed) and does not also appear in the public part of some lab source (its text, its given
code, the visible tests, the signatures and docstrings of its stubs): ``model.eval()`` is no
secret. A later lab may include an earlier lab's answers in a read-only cell (``include=``); those
lines are allowed in that later lab's notebook, and nowhere else.
"""

from __future__ import annotations

import json
import re
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from ..paths import AUTOGRADER
from ..source import BEGIN, BEGIN_HIDDEN, END, END_HIDDEN, Lab, labs, raw_cells

MIN_CHARS = 16
TEXT_SUFFIXES = {".py", ".md", ".txt", ".toml", ".cfg", ".json", ".ipynb", ".yml", ".yaml", ".html", ".csv", ""}


def normalize(line: str) -> str:
    return re.sub(r"\s+", " ", line.strip())


@dataclass
class Secrets:
    """Distinctive secret lines, each with where it comes from; and the lines each lab may show."""

    lines: dict[str, str] = field(default_factory=dict)           # normalized line -> origin
    allowed: dict[str, set[str]] = field(default_factory=dict)    # lab_id -> lines its notebook may hold

    def add(self, text: str, origin: str, public: set[str]) -> None:
        for line in text.splitlines():
            key = normalize(line)
            if len(key) >= MIN_CHARS and key not in public and not key.startswith("#") and not _is_import(key):
                self.lines.setdefault(key, origin)


def _is_import(line: str) -> bool:
    """An import names a library, not an answer."""
    return bool(re.match(r"^(import [\w., ]+( as \w+)?|from [\w.]+ import [\w., ()]+)$", line))


def _regions(lines: tuple[str, ...], begin: str, end: str) -> tuple[list[str], list[str]]:
    """(lines inside begin/end regions, lines outside them), markers dropped."""
    inside, outside, within = [], [], False
    for line in lines:
        if line.strip() == begin:
            within = True
        elif line.strip() == end:
            within = False
        else:
            (inside if within else outside).append(line)
    return inside, outside


def collect(chosen: list[Lab] | None = None, banks: Path = AUTOGRADER) -> Secrets:
    """The secrets of every lab (public lines taken from every lab, so that nothing public is flagged)."""
    every = labs()
    secret_parts: list[tuple[str, str]] = []
    public: set[str] = set()
    included: dict[str, list[str]] = {}
    for lab in every:
        for cell in raw_cells(lab.path):
            if cell.cell_type == "markdown":
                if cell.kind == "answer":
                    secret_parts.append(("\n".join(cell.lines), f"{lab.lab_id}: written answer {cell.grade_id}"))
                else:
                    public.update(normalize(line.removeprefix("#")) for line in cell.lines)
                continue
            if cell.kind == "solution":
                inside, outside = _regions(cell.lines, BEGIN, END)
                secret_parts.append(("\n".join(inside), f"{lab.lab_id}: answer {cell.grade_id}"))
                public.update(normalize(line) for line in outside)
            elif cell.kind == "test":
                inside, outside = _regions(cell.lines, BEGIN_HIDDEN, END_HIDDEN)
                secret_parts.append(("\n".join(inside), f"{lab.lab_id}: hidden tests of {cell.grade_id}"))
                public.update(normalize(line) for line in outside)
            else:
                public.update(normalize(line) for line in cell.lines)
                if "include" in cell.options:
                    included.setdefault(lab.lab_id, []).append(cell.options["include"])
    for kind in ("mutants", "equivalents"):
        for path in sorted((banks / kind).glob("*.toml")):
            with path.open("rb") as f:
                for entry in tomllib.load(f).get(kind[:-1], []):
                    for key in ("find", "replace", "source"):
                        if entry.get(key):
                            secret_parts.append((entry[key], f"{kind}/{path.name}: {entry.get('name', '?')} ({key})"))
    secrets = Secrets()
    for text, origin in secret_parts:
        secrets.add(text, origin, public)
    by_id = {lab.lab_id: lab for lab in every}
    for lab_id, specs in included.items():
        allowed: set[str] = set()
        for spec in specs:
            source_lab, _, names = spec.partition(":")
            cells = {c.grade_id: c for c in raw_cells(by_id[source_lab].path) if c.kind == "solution"}
            for name in names.split(","):
                inside, _ = _regions(cells[name].lines, BEGIN, END)
                allowed.update(normalize(line) for line in inside)
        secrets.allowed[lab_id] = allowed
    return secrets


@dataclass(frozen=True)
class Leak:
    path: str      # the file (for a wheel: wheel!member)
    line: str
    origin: str

    def __str__(self) -> str:
        return f"{self.path}: {self.line!r} ({self.origin})"


def _lines_of(name: str, data: bytes) -> list[str]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return []
    if name.endswith(".ipynb"):
        try:
            nb = json.loads(text)
        except ValueError:
            return text.splitlines()
        lines = []
        for cell in nb.get("cells", []):
            source = cell.get("source", "")
            lines += ("".join(source) if isinstance(source, list) else source).splitlines()
            for output in cell.get("outputs", []):
                for value in output.get("data", {}).values():
                    lines += ("".join(value) if isinstance(value, list) else str(value)).splitlines()
                text_out = output.get("text", "")
                lines += ("".join(text_out) if isinstance(text_out, list) else text_out).splitlines()
        return lines
    return text.splitlines()


def _lab_of(name: str) -> str | None:
    match = re.search(r"(lab\d\d_\w+?)\.ipynb$", name)
    return match.group(1) if match else None


def scan(folder: Path, secrets: Secrets) -> list[Leak]:
    """Every secret line in the files under `folder`, wheels and zips opened."""
    leaks: list[Leak] = []

    def check(name: str, data: bytes) -> None:
        allowed = secrets.allowed.get(_lab_of(name) or "", set())
        for line in _lines_of(name, data):
            key = normalize(line)
            if key in secrets.lines and key not in allowed:
                leaks.append(Leak(name, key, secrets.lines[key]))

    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = str(path.relative_to(folder))
        if path.suffix in (".whl", ".zip"):
            with zipfile.ZipFile(path) as archive:
                for member in archive.namelist():
                    if Path(member).suffix in TEXT_SUFFIXES:
                        check(f"{relative}!{member}", archive.read(member))
        elif path.suffix in TEXT_SUFFIXES:
            check(relative, path.read_bytes())
    return leaks
