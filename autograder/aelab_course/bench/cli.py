"""``python -m aelab_course.bench``: one run of the benchmark on this machine.

``make bench`` calls it with ``--out build``; it writes ``build/bench.csv`` (one row per
measurement) and ``build/bench.md`` (the tables). Three parts:

``throughput``  labs 02-05: images per second and epoch time of aelab's in-memory batching
                (``ImageDataset.batches``) against the classic pipeline of the course notes (a
                torchvision Dataset with ``ToTensor`` and a ``DataLoader`` at batch 64), on the
                same model (the lab's, from its solution source) with the same optimizer for the
                same number of optimizer steps; for lab 02 also the lab's model with the notes'
                optimizer (Adam not fused), on a CPU too; on a GPU also each speed-up technique
                (data on the GPU, big batch with a scaled learning rate, channels_last, mixed
                precision, torch.compile) switched on alone, and all together.
``quality``     lab 02: the wall time to reach the test MSE that the course notes' run (dropout
                0.2, plain Adam 1e-3, the classic pipeline, batch 64, 30 epochs) ends with, with
                lab 02's defaults instead (no dropout, fused Adam 1e-3, aelab's batches, batch 64).
``grading``     seconds to autograde the reference submission of each lab at the quick budget,
                with the course's own grader (nbgrader).

Every measurement runs in a process of its own (its peak memory is its own). Threads: the
throughput rows use every core (``os.cpu_count()``, what torch takes by default and what a
student gets); the time-to-quality runs one thread each when the notes' run and the lab's run
train side by side (two at once on a 2-core CPU), every core when they run one after another;
grading one. ``--threads N`` (or OMP_NUM_THREADS in the environment) sets them all; each row
records its count. Every ratio in a table comes from rows of the same run.
``build/bench.md`` keeps one section per machine: a run replaces its own machine's section and
keeps the others, so a GPU run adds its section next to the CPU's.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from .grading import run_grading
from .measure import PARTS, TECHNIQUES, THROUGHPUT_LABS, current_rss_mb, default_steps, run_throughput, thread_counts
from .quality import NOTES_EPOCHS, quality_rows, quality_variants, run_quality_job
from .report import machine, summary, write_outputs


def _job_main(job: dict, rows_to: Path) -> int:
    threads = int(job["opts"]["threads"][job["kind"]])
    torch.set_num_threads(threads)
    import torchvision  # noqa: F401  (in the baseline: every job imports it)

    import aelab  # noqa: F401  (in the baseline too)
    from aelab.runtime import get_device

    base_rss = current_rss_mb()

    device = get_device(job["opts"].get("device") or None)
    kind = job["kind"]
    if kind == "throughput":
        rows = run_throughput(job["lab"], device, job["opts"])
    elif kind == "quality":
        rows = [run_quality_job(job["run"], device, job["opts"], job.get("target"))]
    elif kind == "grading":
        rows = [run_grading(job["lab"], Path(job["opts"]["work"]))]
    else:
        raise ValueError(kind)
    for row in rows:
        row.setdefault("base_rss_mb", base_rss)
        row.setdefault("threads", torch.get_num_threads())  # what the job really ran with
    rows_to.write_text(json.dumps(rows))
    return 0


def _spawn(job: dict, env: dict) -> list[dict]:
    """Run one job in a fresh Python process; a crash becomes a failed row."""
    with tempfile.TemporaryDirectory() as tmp:
        rows_to = Path(tmp) / "rows.json"
        proc = subprocess.run([sys.executable, "-m", "aelab_course.bench", "--job", json.dumps(job), "--rows-to",
                               str(rows_to)], env=env, stderr=subprocess.PIPE, text=True)
        if proc.returncode == 0 and rows_to.is_file():
            return json.loads(rows_to.read_text())
        lines = [line for line in (proc.stderr or "").strip().splitlines() if line.strip()]
        sys.stderr.write(proc.stderr[-3000:] if proc.stderr else "")
        reason = lines[-1][:300] if lines else f"exit {proc.returncode}"
        return [{"part": job["kind"], "lab": job.get("lab", "lab02"),
                 "variant": job.get("run", {}).get("name", "(the whole job)"), "status": f"failed: {reason}"}]


def run(opts: dict) -> list[dict]:
    """Run the selected parts, each measurement in its own process; returns every row."""
    from aelab import progress_bar
    from aelab.runtime import budget, get_device

    device = get_device(opts.get("device") or None)
    info = machine(device)
    base_env = dict(os.environ)
    base_env.setdefault("PYTHONWARNINGS", "ignore")
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    common = {"device": str(device), "machine": info["key"], "budget": budget(),
              "torch": torch.__version__, "run": stamp}
    rows: list[dict] = []

    def part_env(part: str) -> tuple[dict, dict]:
        """The environment of a part's jobs and the columns its rows share (its thread count)."""
        threads = opts["threads"][part]
        return {**base_env, "OMP_NUM_THREADS": str(threads)}, {**common, "threads": threads}

    if "throughput" in opts["parts"]:
        env, shared = part_env("throughput")
        for lab in opts["labs"]:
            if lab not in THROUGHPUT_LABS:
                continue
            steps = opts["steps"] or default_steps(lab, device)
            print(f"[bench] throughput of {lab}: {steps} timed steps a row after {opts['warmup']} warm-up", flush=True)
            rows += [{**shared, **r} for r in _spawn({"kind": "throughput", "lab": lab, "opts": opts}, env)]

    if "quality" in opts["parts"]:
        env, shared = part_env("quality")
        runs = quality_variants(device, opts)
        todo = [q for q in runs if not q["skip"]]
        side_by_side = opts["quality_side_by_side"]
        def job(q: dict, target: float | None = None, quiet: bool = False) -> dict:
            return _spawn({"kind": "quality", "run": q, "target": target, "opts": opts},
                          {**env, "AELAB_PROGRESS": "0"} if quiet else env)[0]

        if side_by_side:
            # The notes' run and the lab's run train at once, one thread each, under the same load;
            # the lab's run goes on to its cap and its time to the target is read off its curve.
            print(f"[bench] time to quality: {todo[0]['name']} | {todo[1]['name']}, side by side "
                  "(the bar is the notes' run)", flush=True)
            with ThreadPoolExecutor(max_workers=2) as pool:
                notes_run = pool.submit(job, todo[0])
                lab_run = pool.submit(job, todo[1], None, True)
                results = [notes_run.result(), lab_run.result()]
            for q in todo[2:]:
                print(f"[bench] time to quality: {q['name']}", flush=True)
                results.append(job(q))
        else:
            print(f"[bench] time to quality: {todo[0]['name']}", flush=True)
            results = [job(todo[0])]
            curve = results[0].get("curve")
            target = curve[-1][1] if curve else None
            for q in todo[1:]:
                print(f"[bench] time to quality: {q['name']}", flush=True)
                results.append(job(q, target) if target is not None else
                               {"part": "quality", "lab": "lab02", "variant": q["name"],
                                "status": "skipped: the notes' run did not finish"})
        quality = quality_rows(results, side_by_side=side_by_side)
        quality += [{"part": "quality", "lab": "lab02", "variant": q["name"], "status": q["skip"]}
                    for q in runs if q["skip"]]
        rows += [{**shared, **r} for r in quality]

    if "grading" in opts["parts"]:
        from ..source import labs as all_labs

        env, shared = part_env("grading")
        chosen = [lab.lab_id for lab in all_labs()
                  if not opts["grading_labs"] or lab.lab_id[:5] in opts["grading_labs"]]
        workers = max(1, opts["grading_jobs"])
        print(f"[bench] autograding the reference submission of {len(chosen)} lab(s), {workers} at a time", flush=True)
        bar = progress_bar(len(chosen), "grading")

        quiet = {**env, "AELAB_PROGRESS": "0"}  # jobs side by side: one bar, this one

        def grade(lab_id: str) -> list[dict]:
            result = _spawn({"kind": "grading", "lab": lab_id, "opts": opts}, quiet)
            bar.update(1)
            return result

        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(grade, chosen))
        bar.close()
        for result in results:
            extra = [f"graded {workers} at a time"] if workers > 1 else []
            rows += [{**shared, **r, "note": "; ".join([r["note"]] * bool(r.get("note")) + extra)} for r in result]
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m aelab_course.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts to run ({', '.join(PARTS)})")
    p.add_argument("--labs", default=",".join(THROUGHPUT_LABS),
                   help="comma-separated labs for the throughput part (lab02..lab05)")
    p.add_argument("--grading-labs", default="", help="comma-separated labs to grade (default: every lab)")
    p.add_argument("--out", default="build", help="folder of bench.csv and bench.md (default: build)")
    p.add_argument("--device", default="", help="force a device (default: AELAB_DEVICE or the fastest)")
    p.add_argument("--steps", type=int, default=None,
                   help="timed steps a throughput row (default on a CPU: 900 for lab02, 450 for lab04, "
                        "120 for the convolutional labs; 500 on a GPU)")
    p.add_argument("--passes", type=int, default=None,
                   help="passes over a lab's throughput rows, each row keeping its median pass "
                        "(default on a CPU: 3 for lab02 and lab04, 1 for the convolutional labs; 1 on a GPU)")
    p.add_argument("--warmup", type=int, default=None, help="warm-up steps before timing (default 10 CPU, 30 GPU)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads of every job (default: OMP_NUM_THREADS if set; else every core for "
                        "throughput, one a run for time to quality side by side (else every core), one for grading)")
    p.add_argument("--techniques", default=",".join(TECHNIQUES),
                   help=f"techniques to measure, comma-separated (of {', '.join(TECHNIQUES)}); 'none' for none")
    p.add_argument("--big-batch", type=int, default=1024, help="the batch size of the big-batch rows (default 1024)")
    p.add_argument("--amp-dtype", choices=("auto", "bf16", "fp16"), default="auto",
                   help="mixed precision type (auto: bf16 on a CPU and on GPUs of compute capability 8.0 or "
                        "more; fp16 with a gradient scaler below, as on a T4)")
    p.add_argument("--compile-mode", default="default", help="torch.compile mode (default, reduce-overhead, ...)")
    p.add_argument("--compile-backend", default="inductor",
                   help="torch.compile backend (default inductor; eager traces without generating code)")
    p.add_argument("--workers-row", action=argparse.BooleanOptionalAction, default=None,
                   help="add classic rows with DataLoader(num_workers=2) (default: on machines with more than 2 cores)")
    p.add_argument("--quality-epochs", type=int, default=NOTES_EPOCHS,
                   help=f"epochs of the course notes' run (default {NOTES_EPOCHS}, the notes')")
    p.add_argument("--quality-cap", type=int, default=None,
                   help="most epochs of the other time-to-quality runs (default 40 on a CPU, 150 on a GPU)")
    p.add_argument("--quality-side-by-side", action=argparse.BooleanOptionalAction, default=None,
                   help="train the notes' run and the lab's run at once, one core each "
                        "(default: on a CPU with 2 cores or more, so that `make bench` fits in 10 minutes)")
    p.add_argument("--grading-jobs", type=int, default=None,
                   help="labs graded at once (default: 2 if the machine has 2 cores or more)")
    p.add_argument("--techniques-on-cpu", action="store_true",
                   help="measure channels_last and mixed precision (and compile) on a CPU too (default: GPU only)")
    p.add_argument("--render", action="store_true",
                   help="measure nothing: rewrite bench.md from the rows already in bench.csv")
    p.add_argument("--quality-limit", type=int, default=None, help=argparse.SUPPRESS)  # tests: a few images
    p.add_argument("--job", help=argparse.SUPPRESS)
    p.add_argument("--rows-to", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def options(args: argparse.Namespace) -> dict:
    from aelab.runtime import get_device

    device = get_device(args.device or None)
    gpu = device.type == "cuda"
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise SystemExit(f"unknown part(s) {', '.join(unknown)}; the parts are {', '.join(PARTS)}")
    techniques = [] if args.techniques.strip() == "none" else \
        [t.strip() for t in args.techniques.split(",") if t.strip()]
    bad = [t for t in techniques if t not in TECHNIQUES]
    if bad:
        raise SystemExit(f"unknown technique(s) {', '.join(bad)}; they are {', '.join(TECHNIQUES)}")
    cores = os.cpu_count() or 1
    side_by_side = args.quality_side_by_side if args.quality_side_by_side is not None else not gpu and cores >= 2
    override = args.threads or int(os.environ.get("OMP_NUM_THREADS", "0") or 0) or None
    threads = thread_counts(override, cores, side_by_side)
    work = Path(args.out).resolve() / "bench-grading"
    return {
        "parts": parts, "labs": [lab.strip()[:5] for lab in args.labs.split(",") if lab.strip()],
        "grading_labs": [lab.strip()[:5] for lab in args.grading_labs.split(",") if lab.strip()],
        "device": args.device, "steps": args.steps, "passes": args.passes,
        "warmup": args.warmup if args.warmup is not None else (30 if gpu else 10), "threads": threads,
        "techniques": techniques, "big_batch": args.big_batch, "amp_dtype": args.amp_dtype,
        "compile_mode": args.compile_mode, "compile_backend": args.compile_backend,
        "num_workers_row": args.workers_row if args.workers_row is not None else cores > 2,
        "quality_epochs": args.quality_epochs, "quality_limit": args.quality_limit,
        "quality_cap": args.quality_cap or (150 if gpu else 40),
        "quality_side_by_side": side_by_side,
        "grading_jobs": args.grading_jobs or (2 if cores >= 2 else 1),
        "techniques_on_cpu": args.techniques_on_cpu, "work": str(work),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.job:
        return _job_main(json.loads(args.job), Path(args.rows_to))
    if args.render:
        from aelab.runtime import get_device

        info = machine(get_device(args.device or None))
        csv_path, md_path = write_outputs(Path(args.out), [], info)
        print(f"[bench] rewrote {md_path} from {csv_path}")
        return 0
    opts = options(args)
    start = time.perf_counter()
    from aelab import show_table
    from aelab.runtime import get_device

    device = get_device(opts["device"] or None)
    info = machine(device)
    threads = ", ".join(f"{part} {opts['threads'][part]}" for part in opts["parts"])
    print(f"[bench] {info['key']}; device {device}; torch {torch.__version__}; threads: {threads}; "
          f"parts: {', '.join(opts['parts'])}", flush=True)
    rows = run(opts)
    csv_path, md_path = write_outputs(Path(args.out), rows, info)
    show_table(summary(rows), title=f"aelab benchmarks on {info['key']}")
    print(f"[bench] wrote {md_path} and {csv_path} in {time.perf_counter() - start:.0f} s", flush=True)
    return 0 if all(not str(r.get("status", "")).startswith("failed") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
