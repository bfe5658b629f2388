"""`python -m aelab_course COMMAND`: the instructor's and TA's commands (the Makefile calls these).

    release      regenerate notebooks/ from solutions/ through nbgrader
    student      write dist/student/, the student repository, and check it holds no answer
    solutions    execute every reference notebook, write executed copies and build/metrics.csv
    autograde    grade a folder of submissions: SUBMISSIONS/<student>/<lab>.ipynb
    demo         the whole round trip on example submissions
    mutants      grade every planted student bug (autograder/mutants/); write build/mutants.csv
    equivalents  grade every correct alternative (autograder/equivalents/); write build/equivalents.csv
    calibrate    run the references over many seeds; each threshold's worst case and margin
    tamper       grade hostile and broken submissions; write build/tamper.csv
    bench-grading  20 submissions graded by aelab's parallel grader and by serial `nbgrader autograde`
    lines        the lines of code a student writes in each lab (the reference answers, counted)

Each command is a thin layer over the library: this module parses arguments and prints.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import nbformat

from aelab.plots import show_table

from .course import Course, CourseError
from .grading.classroom import ENVIRONMENT, grade_class, make_example_submissions
from .grading.preflight import GradingEnvironmentError
from .paths import BUILD, NOTEBOOKS, ROOT
from .quality.banks import BankError
from .release.notebooks import release_to_notebooks
from .runner import execute_notebook
from .source import SourceError, labs, read_source
from .tables import write_csv


# --- release --------------------------------------------------------------------------------------
def cmd_release(args: argparse.Namespace) -> int:
    course_root = BUILD / "release-course"
    shutil.rmtree(course_root, ignore_errors=True)
    for path in release_to_notebooks(Course(course_root), labs(args.labs), Path(args.out)):
        print(f"released {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


def cmd_student(args: argparse.Namespace) -> int:
    from .release import student

    release = student.build(Path(args.out).resolve(), labs(args.labs))
    print(f"wrote {release.folder} (aelab {release.version}, labs {', '.join(release.labs)}):")
    for name in release.files():
        print(f"  {name}")
    leaks = student.check(release)
    if leaks:
        print(f"\nLEAK: {len(leaks)} secret line(s) in the student release:", file=sys.stderr)
        for leak in leaks[:20]:
            print(f"  {leak}", file=sys.stderr)
        return 1
    print(f"\nno answer, hidden test, mutant or equivalent in it (wheel included). Publish it: README, "
          f"'Publishing the student repository' (tag v{release.version}).")
    return 0


# --- solutions ------------------------------------------------------------------------------------
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
def _shard(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    try:
        index, count = (int(x) for x in text.split("/"))
        assert 0 <= index < count
    except (ValueError, AssertionError):
        raise SystemExit(f"error: --shard takes I/N with 0 <= I < N, got {text!r}") from None
    return index, count


def cmd_autograde(args: argparse.Namespace) -> int:
    submissions = Path(args.submissions).resolve()
    if not submissions.is_dir():
        print(f"error: the submissions folder {submissions} does not exist. Put each student's notebooks in "
              f"SUBMISSIONS/<student>/<lab>.ipynb", file=sys.stderr)
        return 2
    out = Path(args.out).resolve()
    rows = grade_class(out / "course", submissions, labs(args.labs), out / "grades.csv", workers=args.workers,
                       shard=_shard(args.shard), ingest_only=args.ingest_only)
    return 3 if any(r["status"] == ENVIRONMENT for r in rows) else 0


def cmd_demo(args: argparse.Namespace) -> int:
    demo = BUILD / "demo"
    shutil.rmtree(demo, ignore_errors=True)
    chosen = labs(args.labs)
    print("1/5 release: generating the student notebooks with nbgrader", flush=True)
    make_example_submissions(demo / "submissions", chosen, Course(demo / "scratch"))
    print("2/5 collect, 3/5 autograde, 4/5 feedback, 5/5 export", flush=True)
    rows = grade_class(demo / "course", demo / "submissions", chosen, demo / "grades.csv")
    return 3 if any(r["status"] == ENVIRONMENT for r in rows) else 0


# --- the banks ------------------------------------------------------------------------------------
def cmd_bank(args: argparse.Namespace) -> int:
    from .quality import bank_runs

    kind = args.kind
    start = time.perf_counter()
    if args.direct:
        from .quality import bank_direct

        rows = bank_direct.run(kind, labs(args.labs), workers=args.workers, only=args.only, fast=args.fast)
        table = BUILD / f"{kind}s-direct.csv"
    else:
        rows = bank_runs.run(kind, labs(args.labs), BUILD / f"{kind}s", workers=args.workers, only=args.only,
                             resume=args.resume, fast=args.fast)
        table = BUILD / f"{kind}s.csv"
    write_csv(table, rows)
    columns = (("lab", "name", "points lost", "killed", "targets hit", "failed tests") if kind == "mutant"
               else ("lab", "name", "points lost", "false fail", "failed tests", "reference"))
    show_table([{k: r[k] for k in columns} for r in rows], title=f"{kind}s")
    bad = [r for r in rows if not r["as expected"]]
    elapsed = time.perf_counter() - start
    if kind == "mutant":
        print(f"\nkill rate: {sum(r['killed'] for r in rows)}/{len(rows)} mutants lost points ({elapsed:.0f} s); "
              f"table in {table}")
        for r in bad:
            print(f"  SURVIVOR or missed target: {r['lab']}/{r['name']}: failed {r['failed tests']}")
    else:
        print(f"\nfalse fails: {sum(r['false fail'] for r in rows)} of {len(rows)} equivalents ({elapsed:.0f} s); "
              f"table in {table}")
        for r in bad:
            print(f"  FALSE FAIL: {r['lab']}/{r['name']}: failed {r['failed tests']}")
    return 1 if bad else 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from .quality import calibrate

    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    rows, runs = calibrate.run(labs(args.labs), seeds=seeds, budget=args.budget, workers=args.workers,
                               threads=args.threads, capability=args.cpu_capability, resume=args.resume,
                               docs=args.docs)
    show_table([{k: r[k] for k in ("lab", "test", "metric", "bound", "threshold", "seeds", "worst", "median",
                                   "margin", "relative margin")} for r in rows],
               title=f"calibration over seeds {seeds[0]}-{seeds[-1]}, {args.budget} budget")
    failed = [r for r in runs if not r["passed"]]
    print(f"\nthe reference passed every test in {len(runs) - len(failed)} of {len(runs)} runs")
    for r in failed:
        print(f"  {r['lab']} seed {r['seed']}: {r['failures']}")
    bad = [r for r in rows if r["seeds"] == 0 or (isinstance(r["margin"], float) and r["margin"] <= 0)]
    for r in bad:
        print(f"  NO MARGIN: {r['lab']}/{r['test']} {r['metric']} {r['bound']} {r['threshold']}: worst {r['worst']}")
    return 1 if bad or failed else 0


def cmd_tamper(args: argparse.Namespace) -> int:
    """Grade every tamper case next to honest submissions; write build/tamper.csv."""
    from .quality import tamper

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
    from .bench import grading_bench

    return grading_bench.run(args.lab, args.count, args.workers)


def cmd_lines(args: argparse.Namespace) -> int:
    from .release.stats import student_lines

    rows = student_lines(labs(args.labs))
    show_table(rows, title="lines of code in the reference answers (blank lines and comments excluded)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aelab_course", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("release", help="regenerate notebooks/ from solutions/")
    p.add_argument("labs", nargs="*")
    p.add_argument("--out", default=str(NOTEBOOKS))
    p.set_defaults(func=cmd_release)
    p = sub.add_parser("student", help="write dist/student/ and check it for answers")
    p.add_argument("labs", nargs="*", help="the labs released so far (default: all)")
    p.add_argument("--out", default=str(ROOT / "dist" / "student"))
    p.set_defaults(func=cmd_student)
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
    for kind, text in (("mutant", "grade every planted bug; write build/mutants.csv"),
                       ("equivalent", "grade every correct alternative; write build/equivalents.csv")):
        p = sub.add_parser(f"{kind}s", help=text)
        p.add_argument("labs", nargs="*")
        p.add_argument("--only", nargs="*", help="only these names")
        p.add_argument("--fast", action="store_true", help="only the entries marked fast")
        p.add_argument("--workers", type=int, default=None)
        p.add_argument("--resume", action="store_true", help="keep what an interrupted run already graded")
        p.add_argument("--direct", action="store_true",
                       help="run each entry's lab as plain Python instead of through nbgrader (a quick look; "
                            "writes build/<bank>-direct.csv)")
        p.set_defaults(func=cmd_bank, kind=kind)
    p = sub.add_parser("calibrate", help="run the references over many seeds; each threshold's margin")
    p.add_argument("labs", nargs="*")
    p.add_argument("--seeds", type=int, default=20, help="how many seeds (default 20)")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--budget", choices=("quick", "full"), default="quick")
    p.add_argument("--workers", type=int, default=None, help="runs at once (default: cores / threads)")
    p.add_argument("--threads", type=int, default=1, help="threads per run (default 1, as when grading)")
    p.add_argument("--cpu-capability", default="", help="ATEN_CPU_CAPABILITY for every run, e.g. avx2 or default")
    p.add_argument("--resume", action="store_true", help="reuse runs already done")
    p.add_argument("--docs", action="store_true", help="also write docs/calibration/<budget>.md")
    p.set_defaults(func=cmd_calibrate)
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
    p = sub.add_parser("demo", help="the instructor round trip on example submissions")
    p.add_argument("labs", nargs="*")
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("lines", help="lines of code a student writes per lab")
    p.add_argument("labs", nargs="*")
    p.set_defaults(func=cmd_lines)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except GradingEnvironmentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (CourseError, SourceError, BankError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
