"""How much of each lab is the student's: lines of code in the reference answers."""

from __future__ import annotations

from pathlib import Path

from ..source import BEGIN, END, Lab, raw_cells


def answer_lines(path: Path) -> dict[str, int]:
    """For each solution cell of a lab source: its lines of code inside BEGIN/END SOLUTION regions,
    blank lines and comment lines excluded."""
    counts: dict[str, int] = {}
    for cell in raw_cells(path):
        if cell.kind != "solution":
            continue
        inside, n = False, 0
        for line in cell.lines:
            stripped = line.strip()
            if stripped == BEGIN:
                inside = True
            elif stripped == END:
                inside = False
            elif inside and stripped and not stripped.startswith("#"):
                n += 1
        counts[cell.grade_id] = n
    return counts


def student_lines(chosen: list[Lab]) -> list[dict]:
    rows = []
    for lab in chosen:
        counts = answer_lines(lab.path)
        rows.append({"lab": lab.lab_id, "answer cells": len(counts), "lines": sum(counts.values()),
                     "per cell": ", ".join(f"{k} {v}" for k, v in counts.items())})
    return rows
