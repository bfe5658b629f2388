"""The banks' plumbing: grouping equivalents into rounds, and the direct (no nbgrader) mode."""

from __future__ import annotations

import pytest

from aelab_course.quality import bank_direct, banks
from aelab_course.source import labs


def entry(name: str, *cells: str, kind: str = "equivalent", targets=(), breaks: str = "") -> banks.Entry:
    return banks.Entry(kind=kind, lab_id="lab09_demo", name=name, description=name,
                       patches=tuple(banks.Patch(c, source="pass") for c in cells), targets=targets, breaks=breaks)


def test_rounds_place_every_entry_once_and_never_two_on_one_cell():
    entries = [entry("a", "f"), entry("b", "f"), entry("c", "g"), entry("d", "f", "g"), entry("e", "h")]
    groups = banks.rounds(entries)
    assert sorted(e.name for g in groups for e in g) == sorted(e.name for e in entries)
    for group in groups:
        cells = [c for e in group for c in e.cells]
        assert len(cells) == len(set(cells)), [e.name for e in group]
    assert len(groups) == 3  # "f" is changed by three entries, so no fewer rounds can hold them
    assert [e.name for e in groups[0]] == ["a", "c", "e"]  # the first round is what `make test` grades


@pytest.mark.parametrize("lab", labs(), ids=lambda lab: lab.lab_id)
def test_every_bank_entry_applies_to_the_code_the_runner_runs(lab):
    for kind in ("mutant", "equivalent"):
        for e in banks.load(kind, lab):
            changed = bank_direct.replacements(e, lab)
            assert set(changed) == set(e.cells), e.name
            if kind == "mutant":
                assert bank_direct.stop_point(e, lab) in e.targets


def test_a_mutant_is_killed_only_when_its_targets_fail():
    mutant = entry("m", "f", kind="mutant", targets=("test_f",))
    ran = [{"grade_id": "test_f", "kind": "test", "error": "CheckFailed: ...", "max_points": 2.0},
           {"grade_id": "test_g", "kind": "test", "error": "", "max_points": 1.0}]
    row = bank_direct.judge(mutant, ran)
    assert row["killed"] and row["targets hit"] and row["as expected"] and row["points lost"] == 2.0
    ran[0]["error"] = ""
    ran[1]["error"] = "CheckFailed: ..."
    row = bank_direct.judge(mutant, ran)
    assert row["killed"] and not row["targets hit"] and not row["as expected"]
    assert not bank_direct.judge(mutant, [dict(ran[0])])["killed"]


def test_an_equivalent_that_loses_a_point_or_crashes_is_a_false_fail():
    good = entry("q", "f")
    passed = [{"grade_id": "test_f", "kind": "test", "error": "", "max_points": 2.0}]
    assert bank_direct.judge(good, passed)["as expected"]
    failed = [dict(passed[0], error="CheckFailed: ...")]
    assert bank_direct.judge(good, failed)["false fail"]
    assert bank_direct.judge(good, [], crashed="Traceback ...")["false fail"]
    assert bank_direct.judge(entry("r", "f", breaks="a sentence of the spec"), failed)["as expected"]
