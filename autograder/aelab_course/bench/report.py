"""The benchmark's files: the tables of ``bench.md`` (one section per machine) and the rows of
``bench.csv``, merged with what earlier runs on other machines wrote."""

from __future__ import annotations

import csv
import math
import os
import platform
import re
from pathlib import Path

import torch

from .measure import PARTS
from .quality import SIDE_BY_SIDE

TARGETS = {"throughput_cpu": 3.0, "throughput_gpu": 20.0, "quality": 10.0}

COLUMNS = ["part", "lab", "variant", "device", "machine", "budget", "batch_size", "lr", "steps", "images",
           "seconds", "images_per_s", "epoch_s", "ratio", "warmup_s", "epochs", "final_test_mse", "target_mse",
           "cpu_share", "peak_rss_mb", "base_rss_mb", "cuda_max_alloc_mb", "status", "note", "threads", "torch", "run",
           "recompiled"]


def machine(device: torch.device) -> dict:
    """What the run ran on: the section key and the words of its header."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = os.cpu_count() or 1
    info = {"cpu": f"{cpu}, {cores} cores", "torch": torch.__version__, "python": platform.python_version()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["capability"] = "sm%d%d" % torch.cuda.get_device_capability(device)
        info["key"] = f"GPU: {info['gpu']}"
    else:
        info["key"] = f"{device.type.upper()}: {info['cpu']}"
    return info


SECTION_START = "<!-- bench section: {key} -->"
SECTION_END = "<!-- end of bench section -->"
_SECTION_RE = re.compile(r"<!-- bench section: (?P<key>.*?) -->\n(?P<body>.*?)<!-- end of bench section -->\n?",
                         re.S)

PREAMBLE = """\
# aelab benchmarks

Written by `make bench` (`python -m aelab_course.bench`), with the rows in `build/bench.csv`. One section
per machine: a run replaces its own machine's section and keeps the others. Every ratio in a
section comes from rows of the same run. On a shared machine, other work slows every row down;
the ratios suffer less than the seconds. Each section's header says how many CPU threads each
part ran with (the csv has it per row): the throughput rows use every core (`os.cpu_count()`,
what torch takes by default and what a student's training gets); the time-to-quality runs one
thread each when two train side by side, every core when they run one after another; grading
one. `--threads N` (or `OMP_NUM_THREADS` in the environment) sets them all.

**What the rows measure.**

* *Training throughput* (labs 02-05). Each row builds the lab's model (taken from the lab's
  solution source, with its loss) with the lab's optimizer,
  learning rate and batch size (at the budget in force: `quick` on a CPU, `full` on a GPU; lab
  02's: no dropout, `Adam(lr=1e-3, fused=True)`, batch 64, in the classic rows too), trains a
  few warm-up steps, then times the same number of optimizer steps in every row of a lab (on a
  CPU 900 for lab 02, 450 for lab 04 and 120 for the convolutional labs, about a second or more
  of the fastest row; 500 on a GPU), in three equal windows (a GPU is synchronised at each
  window's ends). *images/s* is the median window's rate. On a CPU the fully connected labs
  (02, 04) make three passes over their rows, each row once a pass, and each row keeps its
  median pass (the note lists the passes): a shared machine slows down for seconds at a time,
  long enough to cover a whole short row. *epoch (s)* is the full training set (60,000 MNIST or
  50,000 CIFAR-10 images) over images/s, the time one epoch would take. The training step is the same code in every row:
  only the data pipeline, the batch size and the technique switched on (or, for data on the GPU
  and the fused Adam, off) differ.
  * *classic*: the course notes' pipeline, a torchvision Dataset with `transform=ToTensor()`
    (one PIL image converted per sample; for CIFAR-10 over the offline arrays, as torchvision's
    `CIFAR10` does) and `DataLoader(batch_size=64, shuffle=True)`, each batch then moved to the
    device. `num_workers=0`, the default, is the baseline of every ratio; `num_workers=2` (on
    machines with more than two cores) loads in two worker processes.
  * *aelab (lab default)*: `ImageDataset.batches`, the whole split held as one uint8 tensor on the
    device, each batch a shuffled slice converted to float, at the lab's batch size. *aelab at
    batch 64* separates the pipeline's gain from the batch size's where the lab's is not 64.
  * *aelab, Adam not fused (the notes' optimizer)* (lab 02, on a CPU too; technique
    `fused_adam`): the lab's model on aelab's batches at batch 64 with the course notes' plain
    `torch.optim.Adam(lr=1e-3)`, torch's default implementation (for-each on a GPU, one tensor
    at a time on a CPU), instead of the lab's fused one; its note says how many times faster the
    lab-default row is, which is what the fused optimizer contributes.
  * Each technique alone, over *aelab (lab default)*: *data on the host* (data on the GPU
    switched off, done the fair way: the uint8 tensor stays in host memory, each batch is
    gathered as uint8 into one of two pinned buffers, copied with `non_blocking=True` and
    converted to float on the GPU), *big
    batch* (the learning rate scaled by the square root of the batch ratio, a rule for Adam; the
    row times about as many images as the lab-default row, so fewer steps), *channels_last*
    (convolutional labs only), *mixed precision* (autocast to bf16 on GPUs of compute
    capability 8.0 or more, fp16 with a gradient scaler below, as on a T4, where bf16 is only
    emulated; lab 04's loss in float32), *torch.compile* (static shapes, the smaller last batch
    of an epoch dropped, its compile time in the warm-up column, not in images/s; the note says
    whether anything was compiled while the row was timed, which must not happen); then *all
    on*. On a CPU these rows say why they did not run.
  * *× classic* is a row's images/s over the classic row's, same lab, same run.
  * *CPU share* is the CPU time the row's process got over its wall time, summed over its
    threads: up to the thread count on a quiet machine (where the work keeps every thread
    busy), lower where other work took the cores; a starved row is slower than this machine can
    go.
  * *peak RSS* is the process's resident-memory peak while the row ran (torch and torchvision
    alone take most of it); *GPU alloc* is `torch.cuda.max_memory_allocated` during the row.
* *Time to quality* (lab 02). The course notes' run (their model with dropout 0.2, plain
  `torch.optim.Adam(lr=1e-3)`, not fused, the classic pipeline, batch 64, 30 epochs, the test
  set evaluated after every epoch) sets the target: the test MSE it ends with. The other runs
  train with lab 02's defaults (the same layers with no dropout, `Adam(lr=1e-3, fused=True)`,
  aelab's batches at batch 64, test set at batch 1000; the GPU-only variants change the batch
  or add mixed precision and compile; a compiled run compiles every batch shape of training
  and evaluation before its first epoch, inside its wall time) and evaluate after every epoch; a run's time is the wall
  time from its start (before the data files are opened) to the end of its first epoch at or
  below the target. Each row's note says the dropout and optimizer it trained, read off the
  model and optimizer. *× faster* is the notes' wall time over the run's. On a CPU with two
  cores or more the notes' run and the lab's run train at the same time, one thread each (under
  the same load from elsewhere, and so that `make bench` fits in 10 minutes on two cores); the
  lab's run then trains on to its cap and its time is read off its curve. On a GPU the runs
  follow one another and stop at the target. Two more rows read off the same curves: when the
  notes' run itself first reached its final MSE, and when the lab's run reached 0.018, the level
  the issue and lab 02's text quote for the notes' settings (dropout 0.2, plain Adam, batch 64).
* *Autograding*: the reference submission of each lab (every answer cell as the solution has
  it) graded by the course's own `Grader` (real `nbgrader autograde`, quick budget, CPU, one
  thread unless `--threads` says otherwise, no progress bars), each lab in a course of its own:
  the seconds of that one submission. *Release* is the one-off `nbgrader generate_assignment` of
  the lab, not counted.
"""


def _fmt(value, digits: int = 3) -> str:
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}g}"
    return str(value)


def _num(row: dict, key: str):
    value = row.get(key, "")
    if value in ("", None):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _runs(rows: list[dict]) -> str:
    return ", ".join(dict.fromkeys(str(r.get("run", "")) for r in rows))


def threads_words(rows: list[dict]) -> str:
    """Each part's CPU threads, from its rows: "throughput: 2 thread(s); time to quality: 1 thread
    per run, side by side; grading: 1 thread(s)"."""
    names = {"throughput": "throughput", "quality": "time to quality", "grading": "grading"}
    words = []
    for part in PARTS:
        ran = [r for r in rows if r.get("part") == part and _num(r, "threads") is not None]
        counts = sorted({int(_num(r, "threads")) for r in ran})
        if not counts:
            continue
        count = "/".join(str(c) for c in counts)
        if part == "quality" and any(SIDE_BY_SIDE in str(r.get("note", "")) for r in ran):
            words.append(f"{names[part]}: {count} thread{'s' if counts != [1] else ''} per run, side by side")
        else:
            words.append(f"{names[part]}: {count} thread(s)")
    return "; ".join(words)


def lab02_target(rows: list[dict], *, gpu: bool) -> dict:
    """Lab 02's throughput target (3× the classic pipeline on a CPU, 20× on a GPU) read off the
    throughput rows: the lab-default row's ratio and the best row's, or {} when they did not run."""
    lab02 = [r for r in rows if r.get("part") == "throughput" and r.get("lab") == "lab02"
             and r.get("status") == "ok" and _num(r, "ratio")]
    default = next((r for r in lab02 if r["variant"] == "aelab (lab default)"), None)
    if not default:
        return {}
    target = TARGETS["throughput_gpu" if gpu else "throughput_cpu"]
    best = max(lab02, key=lambda r: _num(r, "ratio"))
    ratio = _num(default, "ratio")
    return {"target": target, "ratio": ratio, "met": ratio >= target, "best_variant": best["variant"],
            "best_ratio": _num(best, "ratio")}


def render_section(rows: list[dict], info: dict) -> str:
    """The markdown of one machine's run."""
    first = rows[0] if rows else {}
    lines = [f"## {info['key']}", ""]
    header = [f"CPU {info.get('cpu', '')}"]
    if info.get("gpu"):
        header.append(f"GPU {info['gpu']}" + (f" ({info['capability']})" if info.get("capability") else ""))
    header += [f"torch {info.get('torch', '')}", f"device `{first.get('device', '')}`",
               f"budget `{first.get('budget', '')}`"]
    lines += ["; ".join(header) + ".", ""]
    threads = threads_words(rows)
    if threads:
        lines += [f"CPU threads: {threads}.", ""]
    gpu = str(first.get("device", "")).startswith("cuda")

    through = [r for r in rows if r["part"] == "throughput"]
    if through:
        lines += [f"### Training throughput, labs 02-05 (run {_runs(through)})", "",
                  "| lab | pipeline | batch | lr | images/s | epoch (s) | × classic | warm-up (s) | CPU share "
                  "| peak RSS (MB) | GPU alloc (MB) | note |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in through:
            ok = r.get("status") == "ok"
            ratio = _num(r, "ratio")
            lines.append("| " + " | ".join([
                r["lab"], r["variant"], _fmt(r.get("batch_size")), _fmt(_num(r, "lr"), 2),
                _fmt(_num(r, "images_per_s")) if ok else r.get("status", ""), _fmt(_num(r, "epoch_s")),
                f"**{ratio:.1f}×**" if ok and ratio is not None else "", _fmt(_num(r, "warmup_s")),
                _fmt(_num(r, "cpu_share"), 2), _fmt(_num(r, "peak_rss_mb")), _fmt(_num(r, "cuda_max_alloc_mb")), r.get("note", "")]) + " |")
        verdict = lab02_target(through, gpu=gpu)
        if verdict:
            lines += ["", f"Target for lab 02: at least {verdict['target']:g}× on "
                          f"{'a GPU' if gpu else 'a 2-core CPU'}. aelab at the lab's defaults: {verdict['ratio']:.1f}× "
                          f"({'met' if verdict['met'] else 'not met'}); best row ({verdict['best_variant']}): "
                          f"{verdict['best_ratio']:.1f}×."]
        lines.append("")

    quality = [r for r in rows if r["part"] == "quality"]
    if quality:
        lines += [f"### Time to quality, lab 02 (run {_runs(quality)})", "",
                  "| run | batch | lr | epochs | wall time (s) | test MSE then | target MSE | × faster | "
                  "CPU share | peak RSS (MB) | GPU alloc (MB) | status | note |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in quality:
            ratio = _num(r, "ratio")
            lines.append("| " + " | ".join([
                r["variant"], _fmt(r.get("batch_size")), _fmt(_num(r, "lr"), 2), _fmt(r.get("epochs")),
                _fmt(_num(r, "seconds")), _fmt(_num(r, "final_test_mse"), 4), _fmt(_num(r, "target_mse"), 4),
                f"**{ratio:.1f}×**" if ratio is not None else "", _fmt(_num(r, "cpu_share"), 2),
                _fmt(_num(r, "peak_rss_mb")),
                _fmt(_num(r, "cuda_max_alloc_mb")), r.get("status", ""), r.get("note", "")]) + " |")
        lab = next((r for r in quality if r["variant"].startswith("lab default:")), None)
        if lab:
            ratio = _num(lab, "ratio")
            verdict = (f"{ratio:.1f}× ({'met' if ratio >= TARGETS['quality'] else 'not met'})" if ratio is not None
                       else f"not met ({lab.get('status', '')})")
            lines += ["", f"Target: at least {TARGETS['quality']:g}× less time. The lab's defaults: {verdict}."]
        lines.append("")

    grading = [r for r in rows if r["part"] == "grading"]
    if grading:
        lines += [f"### Autograding one submission (quick budget) (run {_runs(grading)})", "",
                  "| lab | seconds | release (s, one-off) | peak RSS (MB) | status | note |", "|---|---|---|---|---|---|"]
        for r in grading:
            lines.append("| " + " | ".join([r["lab"], _fmt(_num(r, "seconds")), _fmt(_num(r, "warmup_s")),
                                             _fmt(_num(r, "peak_rss_mb")), r.get("status", ""),
                                             r.get("note", "")]) + " |")
        lines.append("")

    memory: dict[str, list] = {}
    for r in rows:
        rss = _num(r, "peak_rss_mb")
        if rss is None:
            continue
        part = memory.setdefault(r["part"], [0.0, None, None])
        part[0] = max(part[0], rss)
        base = _num(r, "base_rss_mb")
        if base is not None:
            part[1] = base if part[1] is None else min(part[1], base)
        alloc = _num(r, "cuda_max_alloc_mb")
        if alloc is not None:
            part[2] = max(part[2] or 0.0, alloc)
    if memory:
        lines += ["### Peak memory per part", "",
                  "| part | peak RSS (MB) | RSS after the imports (MB) | GPU max allocated (MB) |", "|---|---|---|---|"]
        lines += [f"| {part} | {_fmt(rss)} | {_fmt(base)} | {_fmt(alloc)} |" for part, (rss, base, alloc) in memory.items()]
        lines += ["", "Peak RSS: the largest process of the part (grading: the grader, nbgrader or a kernel). "
                      "RSS after the imports: a job's process once torch, torchvision and aelab are loaded, "
                      "before any data or model.", ""]
    return "\n".join(lines).rstrip() + "\n"


def merge_markdown(existing: str, key: str, section: str) -> str:
    """The preamble, then every other machine's section as it was, and this machine's new one."""
    sections = [(m["key"], m["body"]) for m in _SECTION_RE.finditer(existing or "")]
    kept = [(k, body) for k, body in sections if k != key]
    merged = kept + [(key, section)]
    order = {k: i for i, (k, _) in enumerate(sections)}
    merged.sort(key=lambda item: order.get(item[0], len(order)))
    out = [PREAMBLE]
    for k, body in merged:
        out.append(SECTION_START.format(key=k) + "\n" + body.rstrip() + "\n" + SECTION_END + "\n")
    return "\n".join(out)


def merge_csv(path: Path, key: str, rows: list[dict]) -> list[dict]:
    """Rows of other machines, and of this machine's parts that did not run now, then the new rows."""
    old = []
    if path.is_file():
        with path.open(newline="") as f:
            old = list(csv.DictReader(f))
    parts = {r["part"] for r in rows}
    kept = [r for r in old if not (r.get("machine") == key and r.get("part") in parts)]
    merged = kept + rows
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in merged:
            writer.writerow({c: _csv_value(row.get(c, "")) for c in COLUMNS})
    return merged


def _csv_value(value):
    if isinstance(value, float) and math.isnan(value):
        return ""
    return value


def write_outputs(out: Path, rows: list[dict], info: dict) -> tuple[Path, Path]:
    """Merge the rows into bench.csv and this machine's section into bench.md."""
    out.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out / "bench.csv", out / "bench.md"
    merged = merge_csv(csv_path, info["key"], rows)
    mine = [r for r in merged if r.get("machine") == info["key"]]
    order = {p: i for i, p in enumerate(PARTS)}
    mine.sort(key=lambda r: order.get(r["part"], 99))
    existing = md_path.read_text() if md_path.is_file() else ""
    md_path.write_text(merge_markdown(existing, info["key"], render_section(mine, info)))
    return csv_path, md_path


def summary(rows: list[dict]) -> list[dict]:
    """The printed table: one line per row that ran."""
    out = []
    for r in rows:
        entry = {"part": r["part"], "lab": r.get("lab", ""), "variant": r.get("variant", "")}
        if r["part"] == "throughput":
            entry.update({"images/s": r.get("images_per_s", ""), "epoch s": r.get("epoch_s", ""),
                          "x classic": r.get("ratio", "")})
        elif r["part"] == "quality":
            entry.update({"seconds": r.get("seconds", ""), "test MSE": r.get("final_test_mse", ""),
                          "x faster": r.get("ratio", "")})
        else:
            entry.update({"seconds": r.get("seconds", "")})
        entry["status"] = r.get("status", "")
        out.append(entry)
    return out
