"""`python -m aelab.course COMMAND`: the instructor's and TA's commands (the Makefile calls these).

    release     regenerate notebooks/ from solutions/ through nbgrader
    solutions   execute every reference notebook, write executed copies and build/metrics.csv
    autograde   grade a folder of submissions: SUBMISSIONS/<student>/<lab>.ipynb
    calibrate   run the reference over seeds 0-4, write each threshold's worst-case margin
    mutants     grade every planted student bug (autograder/mutants/) and write build/mutants.csv
    tamper      grade hostile and broken submissions (aelab.course.tamper); write build/tamper.csv
    bench-grading  20 submissions graded by aelab's parallel grader and by serial `nbgrader autograde`
    demo        the whole round trip on bundled example submissions
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import nbformat

from ..plots import show_table
from .mutants import Mutant, demo_mutant, load_mutants
from .grader import Grader, Submission
from .nbgrader_course import Course, CourseError, correct_submission, release_to_notebooks, write_csv
from .source import NOTEBOOKS, ROOT, Lab, SourceError, labs, read_source

BUILD = ROOT / "build"


# --- release --------------------------------------------------------------------------------------
def cmd_release(args: argparse.Namespace) -> int:
    course_root = BUILD / "release-course"
    shutil.rmtree(course_root, ignore_errors=True)
    course = Course(course_root)
    for path in release_to_notebooks(course, labs(args.labs), Path(args.out)):
        print(f"released {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


# --- solutions ------------------------------------------------------------------------------------
def execute_notebook(nb: nbformat.NotebookNode, cwd: Path, timeout: int | None) -> list[str]:
    """Execute in a fresh python3 kernel; returns a description of every failing cell."""
    from nbclient import NotebookClient

    client = NotebookClient(nb, kernel_name="python3", timeout=timeout, allow_errors=True,
                            resources={"metadata": {"path": str(cwd)}})
    client.execute()
    failures = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", f"cell {index}")
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                failures.append(f"{grade_id}: {output.ename}: {output.evalue}")
    return failures


def cmd_solutions(args: argparse.Namespace) -> int:
    budget = "quick" if args.quick else "full"
    out_dir = BUILD / "solutions"
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics = Path(args.metrics).resolve()
    metrics.unlink(missing_ok=True)
    os.environ.update({"AELAB_BUDGET": budget, "AELAB_METRICS": str(metrics), "AELAB_PROGRESS": "0",
                       "MPLBACKEND": "Agg"})
    if args.seed is not None:
        os.environ["AELAB_SEED"] = str(args.seed)
    if budget == "quick":
        # As when grading: quick runs model the autograder, one thread per kernel (see grading_env).
        os.environ.setdefault("OMP_NUM_THREADS", "1")
    status = 0
    timings = []
    for lab in labs(args.labs):
        print(f"[{lab.lab_id}] executing the reference solution at the {budget} budget ...", flush=True)
        nb = read_source(lab)
        start = time.perf_counter()
        failures = execute_notebook(nb, out_dir, timeout=None if budget == "full" else 600)
        seconds = time.perf_counter() - start
        nbformat.write(nb, out_dir / f"{lab.lab_id}.ipynb")
        timings.append({"lab": lab.lab_id, "seconds": round(seconds, 1), "failures": len(failures)})
        if failures:
            status = 1
            print(f"[{lab.lab_id}] FAILED in {seconds:.0f} s:\n  " + "\n  ".join(failures), flush=True)
        else:
            print(f"[{lab.lab_id}] passed every test in {seconds:.0f} s", flush=True)
    show_table(timings, title=f"reference solutions, {budget} budget")
    if metrics.exists():
        print(f"metrics: {metrics}")
        print(metrics.read_text())
    return status


# --- grading --------------------------------------------------------------------------------------
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


def grade_table(grader: Grader, chosen: list[Lab], outcomes: list) -> list[dict]:
    """One row per submission: points, the tests that lost points, and the status with its reason."""
    rows = []
    for outcome in sorted(outcomes, key=lambda o: (o.submission.lab.lab_id, o.submission.student)):
        sub = outcome.submission
        status, reason = grader.status(sub, outcome)
        scores = grader.course.test_scores(sub.lab, sub.student) if status != "not graded" else {}
        total = sum(m for _, m in scores.values()) or sum(
            float(c.metadata["nbgrader"].get("points", 0)) for c in read_source(sub.lab).cells
            if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code")
        rows.append({"student": sub.student, "lab": sub.lab.lab_id,
                     "autograded": sum(s for s, _ in scores.values()), "out of": total, "status": status,
                     "failed tests": ", ".join(n for n, (s, m) in scores.items() if s < m) or "-",
                     "reason": reason})
    return rows


def grade_class(course_root: Path, submissions: Path, chosen: list[Lab], export: Path,
                workers: int | None = None, shard: tuple[int, int] | None = None,
                ingest_only: bool = False) -> list[dict]:
    """Grade SUBMISSIONS/<student>/<lab>.ipynb in parallel; feedback, export and a grade table."""
    grader = Grader(course_root, workers=workers)
    subs, skipped = find_submissions(submissions, chosen)
    for line in skipped:
        print(f"skipped {line}")
    print(f"grading {len(subs)} submission(s) with {grader.workers} worker(s) ...", flush=True)
    start = time.perf_counter()
    outcomes = grader.run(subs, shard=shard, execute=not ingest_only, ingest=shard is None)
    if shard is not None:
        done = sum(o.ok for o in outcomes)
        print(f"shard {shard[0]}/{shard[1]}: {done} of {len(outcomes)} submission(s) graded; "
              "run again with --ingest-only on one machine to build the gradebook and export")
        return []
    elapsed = time.perf_counter() - start
    for outcome in outcomes:
        if not outcome.ok:
            print(f"could not grade {outcome.submission.key}: {outcome.reason}")
    fresh = [o for o in outcomes if not o.resumed]
    resumed = len(outcomes) - len(fresh)
    if fresh:
        per = sum(o.seconds for o in fresh) / len(fresh)
        print(f"graded {len(fresh)} submission(s) in {elapsed:.0f} s of wall time with {grader.workers} worker(s); "
              f"{per:.1f} s per submission on one worker", flush=True)
    if resumed:
        print(f"{resumed} submission(s) were already graded by an earlier run and kept", flush=True)
    grader.course.export(export)
    rows = grade_table(grader, chosen, outcomes)
    write_csv(export.with_name(export.stem + "_by_test.csv"), rows)
    show_table([{k: (v[:60] + "..." if isinstance(v, str) and len(v) > 63 else v) for k, v in r.items()}
                for r in rows], title="autograded points", digits=3)
    if any(r["reason"] for r in rows):
        print(f"the reasons in full are in {export.with_name(export.stem + '_by_test.csv')}")
    print(f"\ngrades exported to {export}\nfeedback in {grader.course.root / 'feedback'}")
    return rows


def cmd_autograde(args: argparse.Namespace) -> int:
    submissions = Path(args.submissions).resolve()
    if not submissions.is_dir():
        print(f"error: the submissions folder {submissions} does not exist. Put each student's notebooks in "
              f"SUBMISSIONS/<student>/<lab>.ipynb", file=sys.stderr)
        return 2
    out = Path(args.out).resolve()
    shard = None
    if args.shard:
        try:
            index, count = (int(x) for x in args.shard.split("/"))
            assert 0 <= index < count
        except (ValueError, AssertionError):
            print(f"error: --shard takes I/N with 0 <= I < N, got {args.shard!r}", file=sys.stderr)
            return 2
        shard = (index, count)
    grade_class(out / "course", submissions, labs(args.labs), out / "grades.csv", workers=args.workers,
                shard=shard, ingest_only=args.ingest_only)
    return 0


def make_example_submissions(folder: Path, chosen: list[Lab], course: Course) -> None:
    """Three students per lab: one correct, one who handed in the stubs, one with a planted bug."""
    shutil.rmtree(folder, ignore_errors=True)
    for lab in chosen:
        course.release(lab)
        released = course.released_notebook(lab)
        correct = correct_submission(released, course.source_notebook(lab))
        mutant = demo_mutant(lab)
        examples = {"ada_correct": correct, "ben_stubs": released}
        if mutant is not None:
            examples["cy_planted_bug"] = mutant.apply(correct)
        for student, nb in examples.items():
            (folder / student).mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, folder / student / f"{lab.lab_id}.ipynb")


def cmd_demo(args: argparse.Namespace) -> int:
    demo = BUILD / "demo"
    shutil.rmtree(demo, ignore_errors=True)
    chosen = labs(args.labs)
    print("1/5 release: generating the student notebooks with nbgrader", flush=True)
    make_example_submissions(demo / "submissions", chosen, Course(demo / "scratch"))
    print("2/5 collect, 3/5 autograde, 4/5 feedback, 5/5 export", flush=True)
    grade_class(demo / "course", demo / "submissions", chosen, demo / "grades.csv")
    return 0


def cmd_mutants(args: argparse.Namespace) -> int:
    """Grade every planted bug through the real pipeline; write build/mutants.csv."""
    out = BUILD / "mutants"
    if not args.resume:
        shutil.rmtree(out, ignore_errors=True)
    chosen = labs(args.labs)
    scratch = Course(out / "scratch")
    folder = out / "submissions"
    expected: dict[tuple[str, str], Mutant] = {}
    for lab in chosen:
        scratch.release(lab)
        correct = correct_submission(scratch.released_notebook(lab), scratch.source_notebook(lab))
        mutants = load_mutants(lab)
        if args.only:
            mutants = [m for m in mutants if m.name in args.only]
        for student, nb in [("reference", correct)] + [(f"mutant-{m.name}", m.apply(correct)) for m in mutants]:
            (folder / student).mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, folder / student / f"{lab.lab_id}.ipynb")
        expected.update({(lab.lab_id, f"mutant-{m.name}"): m for m in mutants})
    subs, _ = find_submissions(folder, chosen)
    grader = Grader(out / "course", workers=args.workers)
    start = time.perf_counter()
    outcomes = {(o.submission.lab.lab_id, o.submission.student): o for o in grader.run(subs, desc="mutants")}
    rows = []
    for (lab_id, student), mutant in sorted(expected.items()):
        lab = next(lab for lab in chosen if lab.lab_id == lab_id)
        reference = grader.course.test_scores(lab, "reference")
        scores = grader.course.test_scores(lab, student)
        outcome = outcomes[(lab_id, student)]
        if not outcome.ok:
            failed, lost = ["(not graded: " + outcome.reason + ")"], sum(m for _, m in reference.values())
        else:
            failed = [t for t, (got, top) in scores.items() if got < top]
            lost = sum(reference[t][0] - scores.get(t, (0.0, 0.0))[0] for t in reference)
        rows.append({"lab": lab_id, "mutant": mutant.name, "description": mutant.description,
                     "targets": " ".join(mutant.targets), "failed tests": " ".join(failed) or "-",
                     "points lost": round(lost, 2), "killed": lost > 0,
                     "targets hit": all(t in failed for t in mutant.targets)})
    write_csv(BUILD / "mutants.csv", rows)
    show_table([{k: r[k] for k in ("lab", "mutant", "points lost", "killed", "targets hit", "failed tests")}
                for r in rows], title="mutants")
    killed = sum(r["killed"] for r in rows)
    print(f"\nkill rate: {killed}/{len(rows)} mutants lost points "
          f"({time.perf_counter() - start:.0f} s); table in {BUILD / 'mutants.csv'}")
    survivors = [r for r in rows if not r["killed"] or not r["targets hit"]]
    for r in survivors:
        print(f"  SURVIVOR or missed target: {r['lab']}/{r['mutant']}: failed {r['failed tests']}")
    return 1 if survivors else 0


def cmd_tamper(args: argparse.Namespace) -> int:
    """Grade every tamper case next to honest submissions; write build/tamper.csv."""
    from . import tamper

    # Cases include an infinite loop: a shorter cell limit than a class run's keeps the suite quick.
    os.environ.setdefault("AELAB_CELL_TIMEOUT", "120")
    start = time.perf_counter()
    rows, batch = tamper.run(BUILD / "tamper", fast=args.fast, only=args.only, workers=args.workers)
    write_csv(BUILD / "tamper.csv", rows)
    show_table([{k: r[k] for k in ("case", "expected", "status", "points", "honest points", "unfair points",
                                   "as expected")} for r in rows], title="tamper cases (lab01_pca)")
    show_table(batch, title="the batch")
    bad = [r["case"] for r in rows if not r["as expected"]] + [b["check"] for b in batch if not b["as expected"]]
    unfair = sum(float(r["unfair points"]) for r in rows)
    print(f"\n{len(rows) - sum(not r['as expected'] for r in rows)}/{len(rows)} cases as expected, "
          f"{unfair:g} points earned unfairly ({time.perf_counter() - start:.0f} s); table in {BUILD / 'tamper.csv'}")
    for name in bad:
        print(f"  NOT AS EXPECTED: {name}")
    return 1 if bad else 0


def cmd_bench_grading(args: argparse.Namespace) -> int:
    """Grade the same 20 submissions twice in one run: with plain serial `nbgrader autograde` in
    one course, and with aelab's grader on every core. Writes build/grading_bench.{csv,md}."""
    import platform

    out = BUILD / "grading-bench"
    shutil.rmtree(out, ignore_errors=True)
    lab = labs([args.lab])[0]
    scratch = Course(out / "scratch")
    released = nbformat.read(scratch.release(lab), as_version=4)
    correct = correct_submission(released, scratch.source_notebook(lab))
    planted = [m.apply(correct) for m in load_mutants(lab)]
    # A class: mostly correct work, some bugs, a few untouched stubs.
    kinds = [("correct", correct)] * 12 + [("bug", planted[i % len(planted)]) for i in range(5)] + [("stubs", released)] * 3
    folder = out / "submissions"
    for i, (kind, nb) in enumerate(kinds[: args.count]):
        (folder / f"s{i:02d}-{kind}").mkdir(parents=True)
        nbformat.write(nb, folder / f"s{i:02d}-{kind}" / f"{lab.lab_id}.ipynb")
    subs, _ = find_submissions(folder, [lab])

    print(f"1/2 plain nbgrader: {len(subs)} submissions, one `nbgrader autograde` (serial) ...", flush=True)
    serial = Course(out / "serial")
    serial.release(lab)
    for sub in subs:
        serial.submit(sub.student, lab, sub.notebook)
    start = time.perf_counter()
    serial.autograde(lab)
    serial_seconds = time.perf_counter() - start

    grader = Grader(out / "parallel", workers=args.workers)
    print(f"2/2 aelab's grader: the same submissions on {grader.workers} worker(s) ...", flush=True)
    start = time.perf_counter()
    outcomes = grader.run(subs, desc="parallel")
    parallel_seconds = time.perf_counter() - start
    same = all(serial.test_scores(lab, s.student) == grader.course.test_scores(lab, s.student) for s in subs)
    n = len(subs)
    rows = [
        {"grader": "nbgrader autograde (serial)", "workers": 1, "submissions": n,
         "wall seconds": round(serial_seconds, 1), "seconds per submission": round(serial_seconds / n, 1),
         "submissions per minute": round(60 * n / serial_seconds, 2), "speed-up": 1.0},
        {"grader": "aelab (parallel, sandboxed, resumable)", "workers": grader.workers, "submissions": n,
         "wall seconds": round(parallel_seconds, 1), "seconds per submission": round(parallel_seconds / n, 1),
         "submissions per minute": round(60 * n / parallel_seconds, 2),
         "speed-up": round(serial_seconds / parallel_seconds, 2)},
    ]
    write_csv(BUILD / "grading_bench.csv", rows)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    lines = [f"# Grading {n} submissions of {lab.lab_id}", "", f"Machine: {machine}. One run of "
             "`make bench-grading`; both graders used the course's nbgrader settings and the quick budget.",
             "", "| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(str(v) for v in r.values()) + " |" for r in rows]
    lines += ["", "aelab's wall time includes what plain nbgrader's does not: gathering the graded notebooks "
              "into one gradebook and writing every student's feedback; each of its kernels also runs "
              "sandboxed and sealed (see README).",
              "", f"Every submission got the same points from both: {same}. "
              f"Graded without error by aelab: {sum(o.ok for o in outcomes)} of {n}."]
    (BUILD / "grading_bench.md").write_text("\n".join(lines) + "\n")
    show_table(rows, title=f"grading {n} submissions of {lab.lab_id}")
    print(f"same points from both graders: {same}; table in {BUILD / 'grading_bench.md'}")
    return 0 if same else 1


def load_thresholds() -> list[dict]:
    import tomllib

    with (ROOT / "autograder" / "thresholds.toml").open("rb") as f:
        return tomllib.load(f)["threshold"]


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Run the reference at the quick budget over several seeds; write build/calibration.csv."""
    import csv

    chosen = labs(args.labs)
    runs = BUILD / "calibration"
    status = 0
    values: dict[tuple[str, str], list[float]] = {}
    for seed in range(args.seeds):
        metrics = runs / f"seed{seed}.csv"
        if not (args.resume and metrics.exists()):
            ns = argparse.Namespace(quick=True, labs=[lab.lab_id for lab in chosen], seed=seed, metrics=str(metrics))
            status |= cmd_solutions(ns)  # nonzero if the reference failed any test at this seed
        for row in csv.DictReader(metrics.open()):
            values.setdefault((row["lab"], row["metric"]), []).append(float(row["value"]))
    rows = []
    for t in load_thresholds():
        if t["lab"] not in {lab.lab_id for lab in chosen}:
            continue
        seen = values.get((t["lab"][:5], t["metric"]), [])
        if not seen:
            rows.append({"lab": t["lab"], "test": t["test"], "metric": t["metric"], "bound": t["bound"],
                         "threshold": t["value"], "seeds": 0, "worst": "not recorded", "margin": "",
                         "relative margin": ""})
            status = 1
            continue
        worst = max(seen) if t["bound"] == "max" else min(seen)
        margin = (t["value"] - worst) if t["bound"] == "max" else (worst - t["value"])
        rows.append({"lab": t["lab"], "test": t["test"], "metric": t["metric"], "bound": t["bound"],
                     "threshold": t["value"], "seeds": len(seen), "worst": round(worst, 6),
                     "margin": round(margin, 6), "relative margin": round(margin / abs(t["value"]), 4)})
        status |= margin <= 0
    write_csv(BUILD / "calibration.csv", rows)
    show_table(rows, title=f"calibration over seeds 0-{args.seeds - 1}, quick budget")
    return int(bool(status))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aelab.course", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("release", help="regenerate notebooks/ from solutions/")
    p.add_argument("labs", nargs="*")
    p.add_argument("--out", default=str(NOTEBOOKS))
    p.set_defaults(func=cmd_release)
    p = sub.add_parser("solutions", help="execute the reference solutions")
    p.add_argument("labs", nargs="*")
    p.add_argument("--quick", action="store_true", help="the quick budget (default: full)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--metrics", default=str(BUILD / "metrics.csv"))
    p.set_defaults(func=cmd_solutions)
    p = sub.add_parser("autograde", help="grade SUBMISSIONS/<student>/<lab>.ipynb")
    p.add_argument("submissions")
    p.add_argument("labs", nargs="*")
    p.add_argument("--out", default=str(BUILD / "autograde"))
    p.add_argument("--workers", type=int, default=None, help="submissions graded at once (default: the cores)")
    p.add_argument("--shard", help="I/N: grade only every N-th submission from the I-th (one machine of N)")
    p.add_argument("--ingest-only", action="store_true", help="grade nothing; gather the finished shards")
    p.set_defaults(func=cmd_autograde)
    p = sub.add_parser("mutants", help="grade every planted bug; write build/mutants.csv")
    p.add_argument("labs", nargs="*")
    p.add_argument("--only", nargs="*", help="only these mutant names")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--resume", action="store_true", help="keep what an interrupted run already graded")
    p.set_defaults(func=cmd_mutants)
    p = sub.add_parser("tamper", help="grade hostile and broken submissions; write build/tamper.csv")
    p.add_argument("--fast", action="store_true", help="only the fast subset that `make test` runs")
    p.add_argument("--only", nargs="*", help="only these cases")
    p.add_argument("--workers", type=int, default=None)
    p.set_defaults(func=cmd_tamper)
    p = sub.add_parser("bench-grading", help="aelab's parallel grader vs serial nbgrader on 20 submissions")
    p.add_argument("--lab", default="lab01_pca")
    p.add_argument("--count", type=int, default=20)
    p.add_argument("--workers", type=int, default=None)
    p.set_defaults(func=cmd_bench_grading)
    p = sub.add_parser("calibrate", help="measure every threshold over seeds; write build/calibration.csv")
    p.add_argument("labs", nargs="*")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--resume", action="store_true", help="reuse seeds already run")
    p.set_defaults(func=cmd_calibrate)
    p = sub.add_parser("demo", help="the instructor round trip on example submissions")
    p.add_argument("labs", nargs="*")
    p.set_defaults(func=cmd_demo)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (CourseError, SourceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
