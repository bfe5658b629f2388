"""`make calibrate`: every lab's reference over many seeds, each threshold's worst case and margin.

Each (lab, seed) runs in a process of its own, as plain Python with every test cell, hidden tests
included (aelab_course.runner), on one thread like a grading kernel, at the quick budget (or the
full one with --budget full). The labs record their numbers with aelab.record; autograder/
thresholds.toml says which test applies which bound to which number. The results:

* build/calibration/<budget>/runs/: one CSV of metrics and one JSON of cell results per run;
* build/calibration/<budget>/table.csv: one row per threshold, one column per seed, the worst
  case, the margin;
* with --docs, docs/calibration/<budget>.md: the same tables for readers, with the CPU, the
  versions, the date and the reference's pass rate over the seeds (committed).

A different CPU runs a seed differently, so the seeds stand in for machines as well: a threshold
must hold at every seed with a margin. `--cpu-capability avx2` makes torch (ATEN_CPU_CAPABILITY), MKL
(MKL_ENABLE_INSTRUCTIONS) and oneDNN (ONEDNN_MAX_CPU_ISA) take the kernels of a CPU without AVX-512,
another way to see a different machine's rounding.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import date
from pathlib import Path

from aelab.tracking import progress_bar

from ..paths import AUTOGRADER, BUILD, DOCS
from ..source import Lab
from ..tables import markdown_table, write_csv


def load_thresholds(kind: str = "threshold") -> list[dict]:
    """Every lab's registered thresholds (autograder/thresholds/<lab>.toml), or with kind="claim"
    its claims: the sentences of the lab's text that state a result, each as a bound on a recorded
    number that must hold at every seed like a threshold (test = "(text)")."""
    found = []
    for path in sorted((AUTOGRADER / "thresholds").glob("*.toml")):
        with path.open("rb") as f:
            entries = tomllib.load(f).get(kind, [])
        found += [dict(e, test=e.get("test", "(text)")) for e in entries]
    return found


def cpu_model() -> str:
    """The CPU's model name, with its family and model numbers where the name alone is vague (a
    virtual machine may report just "AMD EPYC"; family 25 with AVX-512 is Zen 4)."""
    try:
        fields = {}
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
        if "model name" in fields:
            return f"{fields['model name']} (family {fields.get('cpu family', '?')}, model {fields.get('model', '?')})"
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    import torch

    return {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "cpu capability": torch.backends.cpu.get_cpu_capability(),
            "date": date.today().isoformat()}


def run_one(lab: Lab, seed: int, budget: str, folder: Path, *, threads: int = 1, capability: str = "",
            timeout: int = 1800) -> dict:
    """One lab at one seed in a fresh process; returns {"lab", "seed", "seconds", "failures", "metrics"}."""
    metrics = folder / f"{lab.short}-seed{seed}.csv"
    result = folder / f"{lab.short}-seed{seed}.json"
    metrics.unlink(missing_ok=True)
    env = dict(os.environ, AELAB_BUDGET=budget, AELAB_SEED=str(seed), AELAB_METRICS=str(metrics), AELAB_PROGRESS="0",
               AELAB_DEVICE=os.environ.get("AELAB_DEVICE", "cpu"), MPLBACKEND="Agg", OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    if capability:
        # The vector instructions torch's own kernels, MKL's matrix products and oneDNN's convolutions
        # may use: "avx2" makes this machine round like an older Intel or AMD CPU without AVX-512.
        env["ATEN_CPU_CAPABILITY"] = capability
        if capability.lower() in ("avx2", "default"):
            env["MKL_ENABLE_INSTRUCTIONS"] = "AVX2" if capability.lower() == "avx2" else "SSE4_2"
            env["ONEDNN_MAX_CPU_ISA"] = env["DNNL_MAX_CPU_ISA"] = "AVX2" if capability.lower() == "avx2" else "SSE41"
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "aelab_course.runner", lab.lab_id, "--out", str(result)], env=env,
                          capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - start
    failures = []
    if result.is_file():
        failures = [f"{c['grade_id']}: {c['error']}" for c in json.loads(result.read_text())["cells"] if c["error"]]
    elif proc.returncode:
        failures = [f"the run crashed: {(proc.stderr or proc.stdout)[-400:]}"]
    values = {}
    if metrics.is_file():
        for row in csv.DictReader(metrics.open()):
            values[row["metric"]] = float(row["value"])
    return {"lab": lab.lab_id, "seed": seed, "seconds": round(seconds, 1), "failures": failures, "metrics": values}


def claim_value(entry: dict, metrics: dict[str, float]) -> float | None:
    """The number an entry bounds at one run: its recorded `metric`, or, for a claim that compares
    two recorded numbers, its `expr` (e.g. "m['probe_ae_accuracy'] - m['probe_pixels_accuracy']")
    evaluated over that run's metrics `m`. None when a number it needs was not recorded."""
    if "expr" not in entry:
        return metrics.get(entry["metric"])
    try:
        return float(eval(entry["expr"], {"__builtins__": {}}, {"m": metrics, "min": min, "max": max, "abs": abs}))
    except KeyError:
        return None


def summarize(runs: list[dict], chosen: list[Lab], thresholds: list[dict]) -> list[dict]:
    """One row per threshold: the value at each seed, the worst, the margin and its share."""
    rows = []
    for t in thresholds:
        if t["lab"] not in {lab.lab_id for lab in chosen}:
            continue
        per_seed = {r["seed"]: claim_value(t, r["metrics"]) for r in runs if r["lab"] == t["lab"]}
        seen = [v for v in per_seed.values() if v is not None]
        row = {"lab": t["lab"], "test": t["test"], "metric": t["metric"], "bound": t["bound"], "threshold": t["value"],
               "claim": t.get("text", "")}
        if seen:
            worst = max(seen) if t["bound"] == "max" else min(seen)
            margin = (t["value"] - worst) if t["bound"] == "max" else (worst - t["value"])
            row.update({"seeds": len(seen), "worst": round(worst, 6), "median": round(statistics.median(seen), 6),
                        "margin": round(margin, 6),
                        "relative margin": round(margin / abs(t["value"]), 4) if t["value"] else ""})
        else:
            row.update({"seeds": 0, "worst": "not recorded", "median": "", "margin": "", "relative margin": ""})
        row.update({f"seed {s}": ("" if v is None else round(v, 6)) for s, v in sorted(per_seed.items())})
        rows.append(row)
    return rows


def run(chosen: list[Lab], *, seeds: list[int], budget: str = "quick", workers: int | None = None,
        threads: int = 1, capability: str = "", resume: bool = False, docs: bool = False,
        out: Path | None = None) -> tuple[list[dict], list[dict]]:
    """Calibrate; returns (threshold rows, run rows)."""
    out = out or BUILD / "calibration" / (budget + (f"-{capability}" if capability else ""))
    folder = out / "runs"
    folder.mkdir(parents=True, exist_ok=True)
    workers = workers or max(1, (os.cpu_count() or 1) // threads)
    jobs = [(lab, seed) for lab in chosen for seed in seeds]
    runs: list[dict] = []
    todo = []
    for lab, seed in jobs:
        done = folder / f"{lab.short}-seed{seed}.done.json"
        if resume and done.is_file():
            runs.append(json.loads(done.read_text()))
        else:
            todo.append((lab, seed))
    bar = progress_bar(len(jobs), "calibration runs")
    bar.update(len(runs))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(run_one, lab, seed, budget, folder, threads=threads, capability=capability): (lab, seed)
                   for lab, seed in todo}
        for future in as_completed(futures):
            lab, seed = futures[future]
            result = future.result()
            (folder / f"{lab.short}-seed{seed}.done.json").write_text(json.dumps(result))
            runs.append(result)
            bar.update(1)
    bar.close()
    runs.sort(key=lambda r: (r["lab"], r["seed"]))
    rows = summarize(runs, chosen, load_thresholds() + load_thresholds("claim"))
    write_csv(out / "table.csv", rows)
    run_rows = [{"lab": r["lab"], "seed": r["seed"], "seconds": r["seconds"], "passed": not r["failures"],
                 "failures": " | ".join(r["failures"])[:500]} for r in runs]
    write_csv(out / "runs.csv", run_rows)
    info = machine() | {"budget": budget, "threads per run": threads, "seeds": f"{min(seeds)}-{max(seeds)}"}
    if capability:
        info["cpu capability"] = f"{capability} (forced with ATEN_CPU_CAPABILITY)"
    (out / "machine.json").write_text(json.dumps(info, indent=1))
    if docs:
        write_docs(rows, run_rows, runs, info, chosen, DOCS / "calibration" / f"{out.name}.md")
    return rows, run_rows


def write_docs(rows: list[dict], run_rows: list[dict], runs: list[dict], info: dict, chosen: list[Lab],
               path: Path) -> Path:
    """The committed, human-readable calibration: per lab, thresholds x seeds, worst case, margin."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"# Calibration of the graded thresholds ({info['budget']} budget)", "",
             "Made by `make calibrate SEEDS=...` (aelab_course.quality.calibrate); rerun it to reproduce.", "",
             markdown_table([{"": k, "value": v} for k, v in info.items()]), ""]
    passed = sum(r["passed"] for r in run_rows)
    lines += [f"**The reference passed every test (hidden ones included) in {passed} of {len(run_rows)} runs.**", ""]
    per_lab = [{"lab": lab.lab_id, "runs": sum(r["lab"] == lab.lab_id for r in run_rows),
                "passed": sum(r["passed"] for r in run_rows if r["lab"] == lab.lab_id),
                "median seconds": round(statistics.median([r["seconds"] for r in run_rows if r["lab"] == lab.lab_id] or [0]), 1)}
               for lab in chosen]
    lines += [markdown_table(per_lab), ""]
    failed = [r for r in run_rows if not r["passed"]]
    if failed:
        lines += ["Runs that failed a test:", ""] + [f"- {r['lab']} seed {r['seed']}: {r['failures']}" for r in failed]
        lines.append("")
    for lab in chosen:
        lab_rows = [r for r in rows if r["lab"] == lab.lab_id]
        if not lab_rows:
            continue
        graded = [r for r in lab_rows if not r["claim"]]
        claims = [r for r in lab_rows if r["claim"]]
        lines += [f"## {lab.lab_id}", "", markdown_table(
            [{k: r[k] for k in ("test", "metric", "bound", "threshold", "worst", "median", "margin",
                                "relative margin")} for r in graded]), ""]
        if claims:
            lines += ["What the lab's text states, checked the same way:", "", markdown_table(
                [{"claim": r["claim"], "metric": r["metric"], "bound": r["bound"], "value": r["threshold"],
                  "worst": r["worst"], "margin": r["margin"]} for r in claims]), ""]
        seeds = sorted({r["seed"] for r in runs if r["lab"] == lab.lab_id})
        table = [{"seed": s, **{r["metric"] + (" (max)" if r["bound"] == "max" else " (min)"): r.get(f"seed {s}", "")
                                for r in lab_rows}} for s in seeds]
        lines += ["<details><summary>every seed</summary>", "", markdown_table(table), "", "</details>", ""]
    path.write_text("\n".join(lines))
    return path
