"""The GPU check's run: the parts, the time plan, the processes, and what they leave.

Parts, in the order they run by default (each in a process of its own):

``bench``   the benchmark's GPU section (`python -m aelab_course.bench --only throughput`): lab 02's
            rows by default (each technique on alone, data on the host, Adam not fused, all on)
            and its 20× throughput target; ``--bench-labs`` adds labs 03-05 (a second run).
``labNN``   the lab's reference, as plain Python from its source, at the full budget, hidden tests
            included; every metric it records and each cell's time and failure.

The plan: the whole run must end within the wall-time budget (8 minutes on a lent GPU, whose
lease is 15 minutes in all). Before a part starts, its planned time (PLANNED_S, full budget on
one H200) is set against the time left; a part that would not fit is skipped, and the results
say so and give the command that runs it on its own. A part still running when the time is up
is stopped; the cells it finished are kept.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

from ..paths import BUILD, ROOT

WALL_BUDGET_S = 480          # 8 minutes: the check's share of a 15-minute lease
RESERVE_S = 15               # kept back for writing the results
LABS = ("lab01", "lab02", "lab03", "lab04", "lab05")
ORDER = ("bench", "lab04", "lab05", "lab02", "lab01", "lab03")  # most wanted first
# Planned seconds of each part at the full budget on one H200 (see docs/gpu/README.md for how
# they were reckoned; replace them with the measured ones once a run has been made).
PLANNED_S = {"bench": 80, "lab01": 35, "lab02": 45, "lab03": 100, "lab04": 100, "lab05": 120}
SMOKE_PLANNED_S = {"bench": 40, "lab01": 20, "lab02": 20, "lab03": 25, "lab04": 25, "lab05": 25}
BENCH_LABS = ("lab02",)
SMOKE_TECHNIQUES = "big_batch,channels_last,amp,fused_adam"
TOLERATED_IN_SMOKE = ("CheckFailed", "AssertionError")  # a test's bound on a model trained on tiny data


def plan(parts: list[str], budget_s: float, *, smoke: bool) -> list[dict]:
    """The parts in order with their planned seconds, and whether they fit the budget if every
    part takes its planned time."""
    planned = SMOKE_PLANNED_S if smoke else PLANNED_S
    left = budget_s - RESERVE_S
    rows = []
    for part in parts:
        fits = planned[part] <= left
        rows.append({"part": part, "planned_s": planned[part], "fits": fits})
        if fits:
            left -= planned[part]
    return rows


def child_env(*, smoke: bool, device: str, data: Path | None, threads: int | None) -> dict[str, str]:
    """The environment of the parts' processes."""
    env = dict(os.environ)
    paths = [str(ROOT / "student" / "src"), str(ROOT / "autograder")]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env.update({"PYTHONPATH": os.pathsep.join(paths), "AELAB_PROGRESS": "0", "AELAB_DOWNLOAD": "0",
                "AELAB_BUDGET": "quick" if smoke else "full", "AELAB_DEVICE": device, "MPLBACKEND": "Agg",
                "PYTHONUNBUFFERED": "1", "PYTHONWARNINGS": "ignore"})
    if data is not None:
        env["AELAB_DATA"] = str(Path(data).resolve())
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    env.pop("AELAB_METRICS", None)
    return env


def run_process(command: list[str], env: dict, log, timeout: float) -> tuple[int | None, float]:
    """Run `command` with its output appended to `log`; stop it (and what it started) after
    `timeout` seconds. Returns (exit status, or None when stopped; seconds)."""
    start = time.perf_counter()
    log.write(f"\n$ {' '.join(command)}\n")
    log.flush()
    proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        status = proc.wait(timeout=max(1.0, timeout))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # its own process group: this process started it
        proc.wait()
        status = None
    log.flush()
    return status, time.perf_counter() - start


def lab_points(lab) -> float:
    """The points of the lab's test cells."""
    from ..source import raw_cells

    return sum(float(c.options.get("points", 0)) for c in raw_cells(lab.path) if c.kind == "test")


def read_metrics(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        for key in ("value", "seconds"):
            try:
                row[key] = float(row[key])
            except (KeyError, TypeError, ValueError):
                pass
    return rows


def read_cells(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    cells = []
    for line in path.read_text().splitlines():
        try:
            cells.append(json.loads(line))
        except json.JSONDecodeError:
            pass  # the last line of a process stopped while writing it
    return cells


def error_kind(error: str) -> str:
    return error.split(":", 1)[0].strip()


def classify(cells: list[dict], status: int | None, finished: bool, *, smoke: bool, seconds: float) -> tuple[str, str]:
    """A lab's status and the reason, from its cells and how its process ended: "stopped" at the
    time limit, "crashed" (the process ended without finishing), "failed" (a cell raised; in a
    smoke test a test's bound that fails on the tiny data does not count), or "ok"."""
    errors = [c for c in cells if c.get("error")]
    tolerated = [c for c in errors if smoke and error_kind(c["error"]) in TOLERATED_IN_SMOKE]
    if status is None:
        last = cells[-1]["grade_id"] if cells else "none"
        return "stopped", f"stopped at the time limit after {seconds:.0f} s; {len(cells)} cells finished, the last {last}"
    if status != 0 or not finished:
        return "crashed", f"the process ended with status {status} after {len(cells)} cells (see the log)"
    if len(errors) > len(tolerated):
        return "failed", f"{len(errors) - len(tolerated)} cell(s) failed"
    if tolerated:
        return "ok", f"{len(tolerated)} test cell(s) failed their bounds on the smoke test's tiny data, as expected"
    return "ok", ""


def run_lab(lab, *, work: Path, env: dict, log, timeout: float, smoke: bool, planned: float) -> dict:
    """Run one lab's reference (a `source.Lab`) in a child process; its cells, metrics, time and status."""
    key = lab.short
    cells_path, result_path = work / f"{key}-cells.jsonl", work / f"{key}-result.json"
    metrics_path = work / f"{key}-metrics.csv"
    for path in (cells_path, result_path, metrics_path):
        path.unlink(missing_ok=True)
    job = {"lab": lab.lab_id, "source": str(lab.path), "cells": str(cells_path), "result": str(result_path),
           "smoke": smoke}
    print(f"[gpucheck] {lab.lab_id}: running (planned {planned:.0f} s, stopped after {timeout:.0f} s)", flush=True)
    status, seconds = run_process([sys.executable, "-m", "aelab_course.gpucheck", "--job", json.dumps(job)],
                                  {**env, "AELAB_METRICS": str(metrics_path)}, log, timeout)
    finished = json.loads(result_path.read_text()) if result_path.is_file() else {}
    cells = finished.get("cells") or read_cells(cells_path)
    state, reason = classify(cells, status, bool(finished), smoke=smoke, seconds=seconds)
    entry = {"lab_id": lab.lab_id, "status": state, "reason": reason, "planned_s": planned,
             "seconds": round(seconds, 1), "script_seconds": finished.get("seconds"),
             "points": sum(c.get("points", 0) for c in cells), "max_points": lab_points(lab),
             "failed_cells": [f"{c['grade_id']}: {c['error'][:300]}" for c in cells if c.get("error")],
             "cells": cells, "metrics": read_metrics(metrics_path),
             "cuda_max_alloc_mb": finished.get("cuda_max_alloc_mb"),
             "jupyter_modules": finished.get("jupyter_modules")}
    print(f"[gpucheck] {lab.lab_id}: {state} in {seconds:.0f} s, {entry['points']:g} of "
          f"{entry['max_points']:g} points" + (f"; {reason}" if reason else ""), flush=True)
    return entry


def _number(value: str):
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    return int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number


def run_bench(bench_labs: list[str], *, work: Path, env: dict, log, timeout: float, smoke: bool, device: str,
              planned: float) -> dict:
    """The benchmark's throughput part for `bench_labs` in a child process; its rows and verdict."""
    from ..bench.report import lab02_target

    out = work / "bench"
    for name in ("bench.csv", "bench.md"):
        (out / name).unlink(missing_ok=True)
    command = [sys.executable, "-m", "aelab_course.bench", "--only", "throughput", "--labs", ",".join(bench_labs),
               "--out", str(out), "--device", device]
    if smoke:
        command += ["--steps", "3", "--warmup", "1", "--passes", "1", "--no-workers-row", "--big-batch", "128",
                    "--techniques", SMOKE_TECHNIQUES, "--techniques-on-cpu"]
    print(f"[gpucheck] benchmark ({', '.join(bench_labs)}): running (planned {planned:.0f} s, stopped after "
          f"{timeout:.0f} s)", flush=True)
    status, seconds = run_process(command, env, log, timeout)
    rows = []
    if (out / "bench.csv").is_file():
        with (out / "bench.csv").open(newline="") as f:
            rows = [{k: _number(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]
    section = ""
    if (out / "bench.md").is_file():
        match = re.search(r"<!-- bench section: .*? -->\n(.*?)<!-- end of bench section -->",
                          (out / "bench.md").read_text(), re.S)
        section = match.group(1).strip() if match else ""
    failed = [r for r in rows if str(r.get("status", "")).startswith("failed")]
    recompiled = [r for r in rows if isinstance(r.get("recompiled"), (int, float)) and r["recompiled"] > 0]
    entry = {"labs": bench_labs, "planned_s": planned, "seconds": round(seconds, 1), "rows": rows,
             "markdown": section, "lab02_target": lab02_target(rows, gpu=device.startswith("cuda")) or None,
             "failed_rows": [f"{r.get('lab')} {r.get('variant')}: {r.get('status')}" for r in failed],
             "recompiled_rows": [f"{r.get('lab')} {r.get('variant')}: {r['recompiled']}" for r in recompiled]}
    if status is None:
        entry.update(status="stopped", reason=f"stopped at the time limit after {seconds:.0f} s")
    elif not rows:
        entry.update(status="crashed", reason=f"the benchmark ended with status {status} and wrote no rows (see the log)")
    elif failed or recompiled:
        entry.update(status="failed", reason=f"{len(failed)} row(s) failed, {len(recompiled)} recompiled while timed")
    else:
        entry.update(status="ok", reason="")
    target = entry["lab02_target"]
    print(f"[gpucheck] benchmark: {entry['status']} in {seconds:.0f} s"
          + (f"; lab 02 at its defaults {target['ratio']:.1f}× the classic pipeline (target {target['target']:g}×)"
             if target else ""), flush=True)
    return entry


def machine_info(device: str) -> dict:
    """The machine and the versions, for the results file."""
    import numpy
    import torch

    info = {"device": device, "python": platform.python_version(), "platform": platform.platform(),
            "torch": torch.__version__, "numpy": numpy.__version__, "cuda": torch.version.cuda,
            "cpu_cores": os.cpu_count()}
    for name in ("torchvision", "matplotlib", "sklearn"):
        try:
            info[name] = __import__(name).__version__
        except Exception:  # noqa: BLE001 - a missing package is recorded as missing
            info[name] = None
    try:
        info["cpu"] = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                           if line.startswith("model name"))
    except (OSError, StopIteration):
        info["cpu"] = platform.processor() or platform.machine()
    if device.startswith("cuda") and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=torch.cuda.get_device_name(0), capability="%d.%d" % torch.cuda.get_device_capability(0),
                    gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    multiprocessors=props.multi_processor_count,
                    cudnn=torch.backends.cudnn.version())
        try:
            info["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                            capture_output=True, text=True, timeout=20).stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            info["driver"] = None
    try:
        info["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                        text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        info["commit"] = None
    return info


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "machine"


def run_check(opts: dict) -> dict:
    """Run the selected parts within the budget; returns the results (see results.py)."""
    from . import bundle as bundles

    started = time.time()
    deadline = time.perf_counter() + opts["budget_s"]
    smoke, device = opts["smoke"], opts["device"]
    out, work = Path(opts["out"]), Path(opts["work"])
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    info = machine_info(device)
    name = "cpu-smoke" if smoke else slug(info.get("gpu") or device)
    stem = f"gpu-check-{_dt.datetime.now(_dt.timezone.utc):%Y%m%d-%H%M%S}-{name}"
    results = {"kind": "aelab gpu-check", "version": 1, "mode": "smoke" if smoke else "full",
               "date": _dt.datetime.fromtimestamp(started, _dt.timezone.utc).isoformat(timespec="seconds"),
               "command": opts["command"], "machine": info, "budget_s": opts["budget_s"],
               "plan": plan(opts["parts"], opts["budget_s"], smoke=smoke), "labs": {}, "bench": None,
               "skipped": [], "files": {}}
    log_path = out / f"{stem}.log"
    with log_path.open("w") as log:
        data, no_data = None, ""
        if opts.get("bundle"):
            try:
                results["data"] = bundles.materialize(Path(opts["bundle"]), Path(opts["data_dir"]))
                data = Path(opts["data_dir"])
            except (bundles.BundleError, OSError, ValueError) as exc:
                no_data = f"the data bundle could not be unpacked: {exc}"
                results["data"] = {"error": no_data}
                print(f"[gpucheck] {no_data}", flush=True)
        else:
            source = os.environ.get("AELAB_DATA", "")
            results["data"] = {"data": source or "(aelab's default data folder)",
                               "mnist": "all of MNIST", "cifar10": "the CIFAR-10 of AELAB_DATA"}
        if smoke:
            from .labjob import SMOKE_SIZES

            results["data"]["smoke"] = ("each lab sees only the first images of each split: " + "; ".join(
                f"{k} {a:,} training and {b:,} test" for k, (a, b) in SMOKE_SIZES.items()))
        env = child_env(smoke=smoke, device=device, data=data, threads=opts.get("threads"))
        planned = SMOKE_PLANNED_S if smoke else PLANNED_S
        for part in opts["parts"]:
            left = deadline - time.perf_counter() - RESERVE_S
            rerun = ("--parts bench --bench-labs " + ",".join(opts["bench_labs"]) if part == "bench"
                     else f"--parts labs --labs {part}")
            if planned[part] > left or no_data:
                reason = no_data or (f"planned {planned[part]} s, {max(left, 0):.0f} s left of the "
                                     f"{opts['budget_s']:.0f} s budget; run it on its own: "
                                     f"python -m aelab_course.gpucheck {rerun}")
                print(f"[gpucheck] {part}: skipped: {reason}", flush=True)
                results["skipped"].append({"part": part, "reason": reason})
                if part != "bench":
                    results["labs"][part] = {"status": "skipped", "reason": reason, "planned_s": planned[part]}
                else:
                    results["bench"] = {"status": "skipped", "reason": reason, "planned_s": planned[part]}
                continue
            try:
                if part == "bench":
                    results["bench"] = run_bench(opts["bench_labs"], work=work, env=env, log=log, timeout=left,
                                                 smoke=smoke, device=device, planned=planned[part])
                else:
                    from ..source import labs

                    results["labs"][part] = run_lab(labs([part])[0], work=work, env=env, log=log, timeout=left,
                                                    smoke=smoke, planned=planned[part])
            except Exception as exc:  # noqa: BLE001 - the check's own error: recorded, and the run goes on
                entry = {"status": "crashed", "reason": f"the check itself failed: {type(exc).__name__}: {exc}",
                         "planned_s": planned[part]}
                log.write(traceback.format_exc())
                print(f"[gpucheck] {part}: {entry['reason']}", flush=True)
                if part == "bench":
                    results["bench"] = entry
                else:
                    results["labs"][part] = entry
    results["seconds"] = round(time.time() - started, 1)
    results["status"] = overall_status(results)
    from .results import write_results

    files = write_results(results, out, stem, docs=opts.get("docs"))
    results["paths"] = {k: str(v) for k, v in files.items()}
    return results


def overall_status(results: dict) -> str:
    """"ok" when every part that ran passed; "failed" otherwise (skipped parts do not count), or
    when there was no data."""
    if (results.get("data") or {}).get("error"):
        return "failed"
    ran = [entry for entry in [*results["labs"].values(), results.get("bench") or {}] if entry]
    return "ok" if all(e.get("status") in ("ok", "skipped") for e in ran) else "failed"


def default_out() -> Path:
    return BUILD / "gpu-check"
