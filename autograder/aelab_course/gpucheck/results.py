"""The GPU check's results: one JSON file per run (everything) and a readable markdown file made
from it, named ``gpu-check-<UTC date>-<GPU>.{json,md}`` with the run's log beside them; and
`publish`, which copies a run's JSON into docs/gpu/ and writes its markdown there."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

from ..paths import DOCS

DOCS_GPU = DOCS / "gpu"

# The figures issue 13 asks a GPU run to record: (lab, metric, words).
HEADLINE = [
    ("lab04", "vae_test_neg_elbo_nats", "lab 04: test negative ELBO at latent 20 (nats per image)"),
    ("lab05", "test_nmse", "lab 05: normalised test MSE of the final VQ-VAE"),
    ("lab05", "perplexity", "lab 05: codebook perplexity of the final VQ-VAE (of 512)"),
    ("lab05", "train_seconds", "lab 05: training time of the final VQ-VAE (s)"),
]


def _fmt(value) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.4g}"
    return str(value)


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def metric(results: dict, lab: str, name: str):
    """A recorded metric's value (the last one recorded under that name), or None."""
    found = [m["value"] for m in (results["labs"].get(lab) or {}).get("metrics", []) if m.get("metric") == name]
    return found[-1] if found else None


def render_markdown(results: dict) -> str:
    """The results in words and tables."""
    m = results["machine"]
    smoke = results["mode"] == "smoke"
    where = (f"{m.get('gpu')} (compute capability {m.get('capability')}, {m.get('gpu_memory_gib')} GiB, "
             f"driver {m.get('driver') or '?'})" if m.get("gpu") else f"CPU {m.get('cpu', '')}")
    lines = [f"# GPU check: {m.get('gpu') or 'CPU smoke test'}, {results['date']}", "",
             ("Smoke test: CPU, quick budget, each lab on a tiny copy of its data. It shows that the check runs, "
              "not what the labs reach." if smoke else
              "Every lab's reference at the full budget, as plain Python from its source, hidden tests included, "
              "and the benchmark's GPU section."), "",
             f"* Machine: {where}; {m.get('cpu_cores')} CPU cores ({m.get('cpu', '')}).",
             f"* Versions: Python {m.get('python')}, torch {m.get('torch')} (CUDA {m.get('cuda') or '-'}, cuDNN "
             f"{m.get('cudnn') or '-'}), torchvision {m.get('torchvision')}, numpy {m.get('numpy')}, "
             f"matplotlib {m.get('matplotlib')}, scikit-learn {m.get('sklearn')}; commit {m.get('commit') or '?'}.",
             f"* Command: `{' '.join(results['command'])}`",
             f"* Wall time: {results.get('seconds', 0):.0f} s of the {results['budget_s']:.0f} s budget. "
             f"Overall: **{results.get('status', '?')}**."]
    data = results.get("data") or {}
    if data:
        lines.append(f"* Data: MNIST: {data.get('mnist', '')}; CIFAR-10: {data.get('cifar10', '')}"
                     + (f"; {data['smoke']}" if data.get("smoke") else "") + ".")
    lines.append("")

    headline = [(words, metric(results, lab, name)) for lab, name, words in HEADLINE]
    if any(value is not None for _, value in headline) and not smoke:
        lines += ["## Headline figures", "", "| figure | value |", "|---|---|"]
        lines += [f"| {words} | {_fmt(value)} |" for words, value in headline if value is not None]
        lab05 = results["labs"].get("lab05") or {}
        if lab05.get("seconds"):
            lines.append(f"| lab 05: the whole reference (minutes) | {lab05['seconds'] / 60:.1f} |")
        lines.append("")

    lines += ["## Labs", "", "| lab | status | seconds (planned) | points | GPU alloc (MB) | note |",
              "|---|---|---|---|---|---|"]
    for lab, entry in sorted(results["labs"].items()):
        points = (f"{entry['points']:g} of {entry['max_points']:g}" if "points" in entry else "")
        lines.append("| " + " | ".join([
            entry.get("lab_id", lab), f"**{entry['status']}**",
            f"{_fmt(entry.get('seconds'))} ({entry.get('planned_s', '')})", points,
            _fmt(entry.get("cuda_max_alloc_mb")), _cell(entry.get("reason", ""))]) + " |")
    lines.append("")
    for lab, entry in sorted(results["labs"].items()):
        if entry.get("failed_cells"):
            lines += [f"Failing cells of {entry.get('lab_id', lab)}:", ""]
            lines += [f"* `{_cell(f)}`" for f in entry["failed_cells"]]
            lines.append("")

    metrics = [(lab, row) for lab, entry in sorted(results["labs"].items()) for row in entry.get("metrics", [])]
    if metrics:
        lines += ["## Metrics", "", "Every number the labs recorded (`aelab.record`); *at (s)* is when, counted from "
                  "the lab's start.", "", "| lab | metric | value | at (s) |", "|---|---|---|---|"]
        lines += [f"| {lab} | {row.get('metric')} | {_fmt(row.get('value'))} | {_fmt(row.get('seconds'))} |"
                  for lab, row in metrics]
        lines.append("")

    timed = [(lab, c) for lab, entry in sorted(results["labs"].items()) for c in entry.get("cells", [])]
    if timed:
        lines += ["## Cells", "", "Each code cell's seconds (cells under 0.5 s and without an error left out).", "",
                  "| lab | cell | kind | seconds | error |", "|---|---|---|---|---|"]
        lines += [f"| {lab} | {c.get('grade_id')} | {c.get('kind')} | {c.get('seconds', 0):.1f} | "
                  f"{_cell(c.get('error', ''))[:200]} |" for lab, c in timed
                  if c.get("seconds", 0) >= 0.5 or c.get("error")]
        lines.append("")

    bench = results.get("bench")
    if bench:
        lines += ["## Benchmark", "", f"Status **{bench['status']}**" + (f": {bench['reason']}" if bench.get("reason")
                                                                          else "")
                  + (f" ({_fmt(bench.get('seconds'))} s, planned {bench.get('planned_s')})"
                     if bench.get("seconds") is not None else "") + ".", ""]
        target = bench.get("lab02_target")
        if target:
            lines += [f"Lab 02's throughput target: at least {target['target']:g}× the course notes' pipeline. At the "
                      f"lab's defaults: **{target['ratio']:.1f}×** ({'met' if target['met'] else 'not met'}); best "
                      f"row ({target['best_variant']}): {target['best_ratio']:.1f}×.", ""]
        for name in ("failed_rows", "recompiled_rows"):
            if bench.get(name):
                lines += [f"* {_cell(x)}" for x in bench[name]] + [""]
        if bench.get("markdown"):
            lines += ["#" + line if line.startswith("#") else line for line in bench["markdown"].splitlines()]
            lines.append("")

    if results.get("skipped"):
        lines += ["## Not run", ""] + [f"* {s['part']}: {s['reason']}" for s in results["skipped"]] + [""]
    plan = results.get("plan") or []
    if plan:
        lines += ["## The plan", "", "| part | planned (s) | fits if all take their planned time |", "|---|---|---|"]
        lines += [f"| {p['part']} | {p['planned_s']} | {'yes' if p['fits'] else 'no'} |" for p in plan]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def write_results(results: dict, out: Path, stem: str, *, docs: bool | Path = False) -> dict[str, Path]:
    """Write `stem`.json and `stem`.md into `out` (flat: a device run's $OUT returns at most 8
    files, no deeper than 2 folders), and into docs/gpu/ too when `docs`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {"json": out / f"{stem}.json", "md": out / f"{stem}.md", "log": out / f"{stem}.log"}
    results["files"] = {k: v.name for k, v in files.items()}
    files["json"].write_text(json.dumps(results, indent=1, default=str) + "\n")
    files["md"].write_text(render_markdown(results))
    if docs:
        folder = DOCS_GPU if docs is True else Path(docs)
        files.update({f"docs_{k}": v for k, v in publish(files["json"], folder).items()})
    return files


def publish(path: Path, folder: Path = DOCS_GPU) -> dict[str, Path]:
    """Copy a run's results JSON into `folder` (docs/gpu/ by default, to commit) and write its
    markdown beside it; returns both paths."""
    path = Path(path)
    results = json.loads(path.read_text())
    if results.get("kind") != "aelab gpu-check":
        raise ValueError(f"{path} is not the results file of a GPU check")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    if target.resolve() != path.resolve():
        shutil.copyfile(path, target)
    md = target.with_suffix(".md")
    md.write_text(render_markdown(results))
    return {"json": target, "md": md}
