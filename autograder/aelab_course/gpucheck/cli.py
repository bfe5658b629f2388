"""``python -m aelab_course.gpucheck`` (``make gpu-check``): the command line.

    python -m aelab_course.gpucheck [--smoke] [--parts bench,labs] [--labs lab04,lab05] ...   run the check
    python -m aelab_course.gpucheck bundle [--out .gpu-bundle] [--check]                       build the data bundle
    python -m aelab_course.gpucheck publish RESULTS.json                                       copy a run into docs/gpu/
    python -m aelab_course.gpucheck plan [--labs ...]                                          print the time plan

docs/gpu/README.md says how to run it on a lent GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..paths import BUILD, ROOT
from .check import BENCH_LABS, LABS, ORDER, PLANNED_S, RESERVE_S, SMOKE_PLANNED_S, WALL_BUDGET_S, plan, run_check


def _list(text: str, allowed: tuple[str, ...], what: str) -> list[str]:
    items = [t.strip()[:5] for t in text.split(",") if t.strip()]
    bad = [t for t in items if t not in allowed]
    if bad:
        raise SystemExit(f"unknown {what} {', '.join(bad)}; they are {', '.join(allowed)}")
    return items


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m aelab_course.gpucheck",
                                description="Every lab's reference at the full budget with its hidden tests, and "
                                            "the benchmark's GPU section, on one GPU within a time budget.")
    p.add_argument("--smoke", action="store_true",
                   help="a CPU smoke test: AELAB_DEVICE=cpu, the quick budget, each lab on a tiny copy of its data")
    p.add_argument("--parts", default="bench,labs", help="bench, labs, or both (default both)")
    p.add_argument("--labs", default=",".join(o for o in ORDER if o != "bench"),
                   help="the labs to run, in this order (default: lab04,lab05,lab02,lab01,lab03)")
    p.add_argument("--bench-labs", default=",".join(BENCH_LABS),
                   help="the labs of the benchmark's GPU section (default lab02; lab03..lab05 in a second run)")
    p.add_argument("--budget", type=float, default=WALL_BUDGET_S,
                   help=f"wall-time budget of the whole run in seconds (default {WALL_BUDGET_S})")
    p.add_argument("--bundle", default=None,
                   help="the data bundle to unpack and use (default: .gpu-bundle when it exists and this is not a "
                        "smoke test; else AELAB_DATA as it is); 'none' for AELAB_DATA")
    p.add_argument("--data-dir", default=str(BUILD / "gpu-check" / "data"),
                   help="where the bundle is unpacked (default build/gpu-check/data)")
    p.add_argument("--out", default=str(BUILD / "gpu-check"),
                   help="where the results (.json, .md) and the log go, flat (default build/gpu-check; $OUT on a "
                        "lent machine)")
    p.add_argument("--work", default=None,
                   help="scratch files (default build/gpu-check/work, never under --out: a lent machine returns "
                        "at most 8 files from $OUT)")
    p.add_argument("--docs", action="store_true", help="also write the results into docs/gpu/, to commit")
    p.add_argument("--device", default=None, help="the device (default cuda; cpu with --smoke)")
    p.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS of the parts (default: 1 in smoke)")
    p.add_argument("--job", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def options(args: argparse.Namespace, argv: list[str]) -> dict:
    parts = _list(args.parts, ("bench", "labs"), "part(s)")
    labs = _list(args.labs, LABS, "lab(s)")
    chosen = (["bench"] if "bench" in parts else []) + (labs if "labs" in parts else [])
    device = args.device or ("cpu" if args.smoke else "cuda")
    bundle = args.bundle
    if bundle is None:
        bundle = str(ROOT / ".gpu-bundle") if (ROOT / ".gpu-bundle").is_dir() and not args.smoke else ""
    elif bundle == "none":
        bundle = ""
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("torch sees no CUDA GPU here: run `python -m aelab_course.gpucheck --smoke` for the CPU "
                             "smoke test, or --device cpu for the full budget on this CPU (slow)")
    return {"smoke": args.smoke, "device": device, "parts": chosen,
            "bench_labs": _list(args.bench_labs, LABS[1:], "benchmark lab(s)"), "budget_s": args.budget,
            "bundle": bundle, "data_dir": args.data_dir, "out": args.out,
            "work": args.work or str(BUILD / "gpu-check" / "work"), "docs": args.docs,
            "threads": args.threads or (1 if args.smoke else None),
            "command": ["python -m aelab_course.gpucheck", *argv]}


def cmd_bundle(argv: list[str]) -> int:
    from .bundle import BUNDLE, TRAVEL_LIMIT, BundleError, build_bundle, default_source, folder_bytes, \
        ignore_locally, travelling_bytes

    p = argparse.ArgumentParser(prog="python -m aelab_course.gpucheck bundle",
                                description="Build the data bundle a lent GPU machine carries (at most 64 MiB with "
                                            "the working tree), from the offline copy in AELAB_DATA.")
    p.add_argument("--out", default=str(BUNDLE), help="the bundle's folder (default .gpu-bundle, ignored locally)")
    p.add_argument("--source", default=None, help="the offline copy (default AELAB_DATA)")
    p.add_argument("--limit-mib", type=float, default=TRAVEL_LIMIT / 2**20,
                   help="what may travel in all, bundle and working tree (default 64)")
    p.add_argument("--max-train", type=int, default=None, help="at most this many CIFAR-10 training images")
    p.add_argument("--check", action="store_true", help="build nothing: say what would travel now")
    args = p.parse_args(argv)
    out = Path(args.out).resolve()
    if args.check:
        tree = travelling_bytes(without=out)
        size = folder_bytes(out) if out.is_dir() else 0
        total = tree + size
        print(f"working tree {tree / 2**20:.1f} MiB + bundle {size / 2**20:.1f} MiB = {total / 2**20:.1f} MiB "
              f"of {args.limit_mib:g} MiB: {'fits' if total <= args.limit_mib * 2**20 else 'TOO MUCH'}")
        return 0 if total <= args.limit_mib * 2**20 else 1
    try:
        if out.is_relative_to(ROOT.resolve()) and ignore_locally(out):
            print(f"[gpucheck] added /{out.relative_to(ROOT.resolve()).as_posix()}/ to .git/info/exclude")
        build_bundle(Path(args.source) if args.source else default_source(), out,
                     limit=int(args.limit_mib * 2**20), max_train=args.max_train)
    except BundleError as exc:
        print(f"[gpucheck] {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_publish(argv: list[str]) -> int:
    from .results import DOCS_GPU, publish

    p = argparse.ArgumentParser(prog="python -m aelab_course.gpucheck publish",
                                description="Copy a run's results (the .json a lent machine returned) into docs/gpu/ "
                                            "and write its markdown there, to commit.")
    p.add_argument("results", nargs="+", help="gpu-check-*.json files")
    p.add_argument("--to", default=str(DOCS_GPU), help="the folder (default docs/gpu)")
    args = p.parse_args(argv)
    for path in args.results:
        written = publish(Path(path), Path(args.to))
        print(f"[gpucheck] wrote {written['json']} and {written['md']}")
    return 0


def cmd_plan(argv: list[str]) -> int:
    args = parse_args(argv)
    parts = _list(args.parts, ("bench", "labs"), "part(s)")
    chosen = (["bench"] if "bench" in parts else []) + (_list(args.labs, LABS, "lab(s)") if "labs" in parts else [])
    planned = plan(chosen, args.budget, smoke=args.smoke)
    total = sum(p["planned_s"] for p in planned if p["fits"])
    for p in planned:
        print(f"{p['part']:>6}  {p['planned_s']:4d} s  "
              + ("" if p["fits"] else "does not fit, unless the parts before it are faster: then a second run"))
    print(f"planned {total} s + {RESERVE_S} s for the results, of a {args.budget:.0f} s budget "
          f"({'smoke' if args.smoke else 'one H200, full budget'}; the table: "
          f"{SMOKE_PLANNED_S if args.smoke else PLANNED_S})")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "bundle":
        return cmd_bundle(argv[1:])
    if argv and argv[0] == "publish":
        return cmd_publish(argv[1:])
    if argv and argv[0] == "plan":
        return cmd_plan(argv[1:])
    args = parse_args(argv)
    if args.job:
        from .labjob import run

        return run(json.loads(args.job))
    opts = options(args, argv)
    os.environ.setdefault("AELAB_PROGRESS", "0")
    results = run_check(opts)
    paths = results["paths"]
    print(f"[gpucheck] {results['status']} in {results['seconds']:.0f} s; results in {paths['json']} and "
          f"{paths['md']}, log in {paths['log']}", flush=True)
    return 0 if results["status"] == "ok" else 1
