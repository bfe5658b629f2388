"""A quick look at a bank without nbgrader: `make mutants DIRECT=1`.

Each entry's lab runs as plain Python (`runner.run_script`, hidden tests included, the same cells
and test code the grader runs) in a process of its own, one thread, at the quick budget. A mutant
whose target tests need no training (the reference passes them with the training cells skipped,
`run_script(only=...)`) is judged on those tests alone, in seconds; any other mutant's run stops
after the last test it targets; an equivalent's run goes to the end. What this mode does not exercise is
nbgrader itself (the sandbox, the seal, the gradebook): `make mutants` and `make equivalents`
without DIRECT grade every entry through the real pipeline, and are what a release is checked with.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from aelab.tracking import progress_bar

from .. import runner
from ..source import Lab, labs
from . import banks


def replacements(entry: banks.Entry, lab: Lab) -> dict[str, str]:
    """The code of each cell the entry changes, as the runner runs it."""
    cells = {c.grade_id: runner.cell_code(c, lab) for c in runner.raw_cells(lab.path) if c.grade_id}
    changed: dict[str, str] = {}
    for patch in entry.patches:
        if patch.cell not in cells:
            raise banks.BankError(f"{lab.lab_id}/{entry.name}: no cell {patch.cell!r}")
        changed[patch.cell] = patch.apply(changed.get(patch.cell, cells[patch.cell]), f"{lab.lab_id}/{entry.name}")
    return changed


def stop_point(entry: banks.Entry, lab: Lab) -> str | None:
    """A mutant's run ends after the last of its target tests; an equivalent's runs to the end."""
    if entry.kind != "mutant":
        return None
    order = [c.grade_id for c in runner.raw_cells(lab.path) if c.grade_id]
    return max(entry.targets, key=order.index)


def judge(entry: banks.Entry, cells: list[dict], crashed: str = "") -> dict:
    """One row: the tests that failed, the points lost (of the cells that ran), and the verdict."""
    failed = [c["grade_id"] for c in cells if c["kind"] == "test" and c["error"]]
    lost = sum(c.get("max_points", 0.0) for c in cells if c["kind"] == "test" and c["error"])
    row = {"lab": entry.lab_id, "name": entry.name, "description": entry.description,
           "failed tests": " ".join(failed) or ("(crashed: " + crashed[-200:] + ")" if crashed else "-"),
           "points lost": lost}
    if entry.kind == "mutant":
        row.update({"targets": " ".join(entry.targets), "killed": bool(failed) or bool(crashed),
                    "targets hit": all(t in failed for t in entry.targets)})
        row["as expected"] = row["killed"] and row["targets hit"]
    else:
        row.update({"reference": entry.reference, "breaks": entry.breaks,
                    "false fail": entry.must_keep_points and (bool(failed) or bool(crashed))})
        row["as expected"] = not row["false fail"]
    return row


def _worker(lab_id: str, kind: str, name: str, out: str, standalone: str = "") -> int:
    lab = labs([lab_id])[0]
    points = {c.grade_id: float(c.options.get("points", 0)) for c in runner.raw_cells(lab.path) if c.kind == "test"}
    if kind == "reference":  # which tests the reference passes with no training cell run
        result = runner.run_script(lab, only=set(points))
    else:
        entry = next(e for e in banks.load(kind, lab) if e.name == name)
        alone = set(standalone.split(",")) if standalone else set()
        if entry.kind == "mutant" and set(entry.targets) <= alone:
            result = runner.run_script(lab, replace=replacements(entry, lab), only=set(entry.targets))
        else:
            result = runner.run_script(lab, replace=replacements(entry, lab), stop_after=stop_point(entry, lab))
    cells = [{"grade_id": c.grade_id, "kind": c.kind, "error": c.error, "max_points": points.get(c.grade_id, 0.0)}
             for c in result.cells]
    Path(out).write_text(json.dumps(cells))
    return 0


def _subprocess(args: list[str], timeout: int) -> tuple[list[dict] | None, str]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cells.json"
        env = dict(os.environ, AELAB_BUDGET="quick", AELAB_DEVICE="cpu", AELAB_PROGRESS="0", MPLBACKEND="Agg",
                   OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        proc = subprocess.run([sys.executable, "-m", "aelab_course.quality.bank_direct", args[0], args[1], args[2],
                               str(out), *args[3:]], env=env, capture_output=True, text=True, timeout=timeout)
        if not out.is_file():
            return None, proc.stderr or proc.stdout or f"exit {proc.returncode}"
        return json.loads(out.read_text()), ""


def standalone_tests(lab: Lab) -> set[str]:
    """The tests the reference passes with the training cells skipped."""
    cells, crashed = _subprocess([lab.lab_id, "reference", "-"], 600)
    if cells is None:
        raise RuntimeError(f"{lab.lab_id}: the reference crashed: {crashed[-400:]}")
    return {c["grade_id"] for c in cells if c["kind"] == "test" and not c["error"]}


def run_one(entry: banks.Entry, standalone: set[str] = frozenset(), *, timeout: int = 1800) -> dict:
    cells, crashed = _subprocess([entry.lab_id, entry.kind, entry.name, ",".join(sorted(standalone))], timeout)
    return judge(entry, cells or [], crashed=crashed)


def run(kind: str, chosen: list[Lab], *, workers: int | None = None, only: list[str] | None = None,
        fast: bool = False) -> list[dict]:
    """Every entry of the bank `kind` of the labs `chosen`, run directly; one row per entry."""
    entries = [e for lab in chosen for e in banks.load(kind, lab)
               if (not only or e.name in only) and (e.fast or not fast)]
    for entry in entries:  # a stale entry is reported before anything runs
        lab = next(lab for lab in chosen if lab.lab_id == entry.lab_id)
        replacements(entry, lab)
    rows = []
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        alone = dict(zip([lab.lab_id for lab in chosen], pool.map(standalone_tests, chosen))) if kind == "mutant" \
            else {}
        bar = progress_bar(len(entries), f"{kind}s (direct)")
        futures = [pool.submit(run_one, e, alone.get(e.lab_id, set())) for e in entries]
        for future in as_completed(futures):
            rows.append(future.result())
            bar.update(1)
    bar.close()
    return sorted(rows, key=lambda r: (r["lab"], r["name"]))


if __name__ == "__main__":
    sys.exit(_worker(*sys.argv[1:6]))
