"""Measuring: the training step with its speed-up switches, timing, threads, memory, and the
training-throughput part (labs 02-05), one row per pipeline or technique.

The switches and how each one is kept fair:

* *mixed precision* (``amp_dtype``): bf16 on a GPU of compute capability 8.0 or more (Ampere and
  later) and on a CPU; fp16 with a gradient scaler below 8.0 (a T4 is 7.5), where bf16 has no
  tensor cores and is only emulated, whatever ``torch.cuda.is_bf16_supported()`` says;
* *torch.compile* (``Trainer(compile=True)``): static shapes (``dynamic=False``), and every shape
  and mode a run meets is compiled before its clock starts (``warm_up``): the throughput rows drop
  the smaller last batch of an epoch, the time-to-quality runs compile their last batch and the
  evaluation batches up front. Each compiled row checks that nothing was compiled while it was
  timed (``compiled_graphs``) and says so in its note;
* *data on the host*: see `pipelines.host_batches` (pinned staging buffers, non_blocking copies,
  float on the device).
"""

from __future__ import annotations

import contextlib
import copy
import gc
import math
import resource
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import Tensor, nn

from .models import LabSpec, LabNotReady, big_batch_lr_scale, lab_spec
from .pipelines import CLASSIC_BATCH, aelab_stream, classic_stream, host_stream

PARTS = ("throughput", "quality", "grading")
THROUGHPUT_LABS = ("lab02", "lab03", "lab04", "lab05")
TECHNIQUES = ("data_on_gpu", "big_batch", "channels_last", "amp", "compile", "fused_adam")
FULL_TRAIN_SIZE = {"MNIST": 60_000, "CIFAR-10": 50_000}
NEEDS_GPU = "skipped: needs a GPU"
NOT_FUSED_ROW = "aelab, Adam not fused (the notes' optimizer)"


# =============================================================================================
# Mixed precision.

def amp_dtype(device: torch.device, choice: str = "auto") -> torch.dtype:
    """The autocast type of `choice` ("auto", "bf16" or "fp16") on `device`.

    "auto": bf16 on a CPU and on a GPU of compute capability 8.0 or more; fp16 below 8.0. Not
    ``torch.cuda.is_bf16_supported()``: it says True on a T4 (7.5), where bf16 is emulated,
    gets no tensor cores, and Inductor's bf16 kernels are not expected to build."""
    if choice == "bf16":
        return torch.bfloat16
    if choice == "fp16":
        return torch.float16
    if choice != "auto":
        raise ValueError(f"amp choice must be auto, bf16 or fp16, got {choice!r}")
    if device.type == "cuda":
        major, _minor = torch.cuda.get_device_capability(device)
        return torch.bfloat16 if major >= 8 else torch.float16
    return torch.bfloat16


def amp_words(device: torch.device, dtype: torch.dtype) -> str:
    """The autocast type in words, for a row's note."""
    name = str(dtype).replace("torch.", "")
    if dtype == torch.float16:
        return f"autocast {name} with a gradient scaler"
    if device.type == "cuda" and torch.cuda.get_device_capability(device)[0] < 8:
        return f"autocast {name}, forced below compute capability 8.0: emulated, no tensor cores"
    return f"autocast {name}"


# =============================================================================================
# torch.compile: how many graphs were compiled, and compiling every shape before the clock.

def compiled_graphs() -> int:
    """How many graphs torch.compile has compiled in this process so far (Dynamo's counter)."""
    try:
        from torch._dynamo.utils import counters
    except Exception:  # noqa: BLE001 - no Dynamo: nothing is ever compiled
        return 0
    return int(counters["stats"]["unique_graphs"])


def sizes_of_epoch(images: int, batch_size: int, *, drop_partial: bool = False) -> list[int]:
    """The batch sizes an epoch of `images` meets: the full batch and, unless dropped, the last
    smaller one."""
    sizes = [min(batch_size, images)]
    if not drop_partial and images % batch_size and images > batch_size:
        sizes.append(images % batch_size)
    return sizes


# =============================================================================================
# One training step, with the speed-up techniques as switches.

@dataclass(frozen=True)
class Variant:
    """One row of the throughput table: a pipeline and the techniques switched on."""

    name: str
    pipeline: str = "aelab"          # "classic" or "aelab"
    batch_size: int | None = None    # None: the lab's default (classic: 64)
    lr_scale: float = 1.0
    num_workers: int = 0
    data_on_device: bool = True      # False: the "data on the host" row (pipelines.host_batches)
    channels_last: bool = False
    amp: bool = False
    compile: bool = False
    notes_optimizer: bool = False    # the course notes' optimizer instead of the lab's (LabSpec.notes_optimizer)
    needs_gpu: bool = False
    conv_only: bool = False
    technique: str = ""              # the technique this row switches on alone ("" for pipelines)


class Trainer:
    """Model, optimizer and one training step. The step is the same for every pipeline; the
    switches add channels_last, autocast (bf16, or fp16 with a gradient scaler) and torch.compile
    (static shapes; `compile_backend` "inductor", or "eager" to trace without generating code)."""

    def __init__(self, spec: LabSpec, device: torch.device, *, lr: float, channels_last: bool = False,
                 amp: bool = False, amp_choice: str = "auto", compile: bool = False, compile_mode: str = "default",
                 compile_backend: str = "inductor", notes_optimizer: bool = False):
        self.spec, self.device = spec, device
        self.model = spec.make_model().to(device)
        self.channels_last = channels_last and spec.conv
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        make_optimizer = (spec.notes_optimizer or spec.make_optimizer) if notes_optimizer else spec.make_optimizer
        self.optimizer = make_optimizer(self.model, lr)
        self.dtype = amp_dtype(device, amp_choice) if amp else None
        self.scaler = torch.amp.GradScaler(device.type) if self.dtype == torch.float16 else None
        self.compiled = compile
        if compile:
            options = {"mode": compile_mode} if compile_backend == "inductor" else {}
            self.forward = torch.compile(self.model, backend=compile_backend, dynamic=False, **options)
        else:
            self.forward = self.model

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def step(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if y is None:
            y = torch.zeros(len(x), dtype=torch.long, device=x.device)
        with self.autocast():
            loss = self.spec.loss(self.forward, x, y)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        return loss.detach()

    def evaluate_forward(self, x: Tensor):
        """The model's output in evaluation mode without a graph, as an evaluation loop runs it."""
        with torch.no_grad(), self.autocast():
            return self.forward(x)

    def warm_up(self, example: Tensor, train_sizes: list[int], eval_sizes: list[int] = ()) -> float:
        """Run every batch size of `train_sizes` through a training step and of `eval_sizes`
        through an evaluation forward (eval mode, no graph), then put the model, the optimizer,
        the gradient scaler and the random generators back as they were: a compiled model then
        has every graph the run needs before its clock starts, and the run trains the same.
        Returns the seconds it took."""
        start = time.perf_counter()
        state = copy.deepcopy(self.model.state_dict())
        optimizer_state = copy.deepcopy(self.optimizer.state_dict())
        scaler_state = copy.deepcopy(self.scaler.state_dict()) if self.scaler is not None else None
        rng = torch.get_rng_state()
        cuda_rng = torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None
        was_training = self.model.training
        try:
            self.model.train()
            for size in train_sizes:
                self.step(example[:1].expand(size, *example.shape[1:]).clone())
            self.model.eval()
            for size in eval_sizes:
                self.evaluate_forward(example[:1].expand(size, *example.shape[1:]).clone())
        finally:
            self.model.train(was_training)
            self.model.load_state_dict(state)
            self.optimizer.load_state_dict(optimizer_state)
            if scaler_state is not None:
                self.scaler.load_state_dict(scaler_state)
            torch.set_rng_state(rng)
            if cuda_rng is not None:
                torch.cuda.set_rng_state_all(cuda_rng)
        sync(self.device)
        return time.perf_counter() - start


def optimizer_words(optimizer: torch.optim.Optimizer) -> str:
    """The optimizer in words, read off the object: "Adam, fused" or "Adam, not fused"."""
    fused = bool(optimizer.defaults.get("fused"))
    return f"{type(optimizer).__name__}, {'fused' if fused else 'not fused'}"


def dropout_words(model: nn.Module) -> str:
    """The model's dropout in words, read off its modules: "no dropout" or "dropout 0.2"."""
    rates = sorted({m.p for m in model.modules() if isinstance(m, nn.Dropout) and m.p > 0})
    return "dropout " + ", ".join(f"{p:g}" for p in rates) if rates else "no dropout"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# =============================================================================================
# Memory and threads.

class PeakMemory:
    """Peak resident memory of this process while a block runs, and the GPU's maximum allocated.

    On Linux the peak RSS (VmHWM, what ``resource.getrusage`` reports as ru_maxrss) is reset at
    the start, so each row gets its own peak; elsewhere it is the process's peak so far. Processes
    this one started and waited for during the block (DataLoader workers, nbgrader and its
    kernels) count too.
    """

    def __init__(self, device: torch.device | None = None):
        self.device = device
        self.rss_mb = self.cuda_mb = float("nan")

    def __enter__(self) -> "PeakMemory":
        gc.collect()
        self._children_before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            pass
        if self.device is not None and self.device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
        return self

    def __exit__(self, *exc) -> None:
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        if children <= self._children_before:
            children = 0  # no process started in this block outgrew the earlier ones
        per_mb = 2**20 if sys.platform == "darwin" else 2**10  # ru_maxrss is in bytes on macOS, KiB on Linux
        self.rss_mb = round(max(own, children) / per_mb, 1)
        if self.device is not None and self.device.type == "cuda":
            self.cuda_mb = round(torch.cuda.max_memory_allocated(self.device) / 2**20, 1)


def current_rss_mb() -> float:
    """The resident memory of this process now (Linux; NaN elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return float("nan")


def thread_counts(override: int | None, cores: int, quality_side_by_side: bool) -> dict[str, int]:
    """The CPU threads of each part's jobs. Throughput: every core (torch's own default, what a
    student's training gets). Time to quality: one thread a run when the notes' run and the lab's
    run train side by side (each has a core of its own on two cores), else every core. Grading:
    one. `override` (``--threads``, or OMP_NUM_THREADS in the environment) sets them all."""
    if override:
        return {part: override for part in PARTS}
    cores = max(1, cores)
    return {"throughput": cores, "quality": 1 if quality_side_by_side else cores, "grading": 1}


# =============================================================================================
# Part 1: training throughput.

def throughput_variants(spec: LabSpec, *, big_batch: int = 1024, num_workers_row: bool = True) -> list[Variant]:
    """The rows of one lab: the classic pipeline (the baseline of every ratio), aelab's, and each
    technique switched on alone over aelab's default, then all of them together."""
    rows = [Variant("classic: DataLoader + ToTensor", pipeline="classic")]
    if num_workers_row:
        rows.append(Variant("classic, num_workers=2", pipeline="classic", num_workers=2))
    rows.append(Variant("aelab, data on the host (pinned, non_blocking)", data_on_device=False, needs_gpu=True,
                        technique="data_on_gpu"))
    rows.append(Variant("aelab (lab default)"))
    if spec.notes_optimizer is not None:  # lab 02: what the fused Adam contributes; cheap, so on a CPU too
        rows.append(Variant(NOT_FUSED_ROW, notes_optimizer=True, technique="fused_adam"))
    if spec.batch_size != CLASSIC_BATCH:
        rows.append(Variant(f"aelab at batch {CLASSIC_BATCH}", batch_size=CLASSIC_BATCH))
    scale = big_batch_lr_scale(big_batch, spec.batch_size)
    rows += [
        Variant(f"+ big batch {big_batch}, lr x{scale:.2g}", batch_size=big_batch, lr_scale=scale, technique="big_batch"),
        Variant("+ channels_last", channels_last=True, needs_gpu=True, conv_only=True, technique="channels_last"),
        Variant("+ mixed precision", amp=True, needs_gpu=True, technique="amp"),
        Variant("+ torch.compile", compile=True, needs_gpu=True, technique="compile"),
        Variant(f"all on (big batch {big_batch})", batch_size=big_batch, lr_scale=scale, channels_last=spec.conv,
                amp=True, compile=True, needs_gpu=True, technique="all"),
    ]
    return rows


# Timed steps a row on a CPU, per lab (a GPU times 500 everywhere): about a second or more of
# the fastest row, so that a passing hiccup of a shared machine moves one window, not the row.
# At 120 steps lab 02's rows lasted 0.2 s and two runs an hour apart gave 2.3x and 3.6x.
CPU_STEPS = {"lab02": 900, "lab03": 120, "lab04": 450, "lab05": 120}
GPU_STEPS = 500


def default_steps(lab: str, device: torch.device) -> int:
    """Timed steps a throughput row of `lab` when --steps does not say."""
    return GPU_STEPS if device.type == "cuda" else CPU_STEPS.get(lab, 120)


# Passes over a lab's rows on a CPU, per lab (1 on a GPU). A shared machine slows down for
# seconds at a time, long enough to cover a whole row of a fully connected lab: one row of a
# single pass once read 24,000 images/s against 38,000 in the passes around it. Over three
# passes, each row's median pass drops such a burst. The convolutional labs' rows are long and
# their ratios far from any target, so one pass keeps `make bench` under 10 minutes.
CPU_PASSES = {"lab02": 3, "lab03": 1, "lab04": 3, "lab05": 1}


def default_passes(lab: str, device: torch.device) -> int:
    """Passes over the rows of `lab` when --passes does not say."""
    return 1 if device.type == "cuda" else CPU_PASSES.get(lab, 1)


def median_pass(passes: list[dict]) -> dict:
    """One row from the same row's passes: the pass with the median images/s (the lower middle
    of an even count), its peak memory the largest of any pass, and the passes' rates in its note."""
    ok = [r for r in passes if r.get("status") == "ok"]
    if not ok:
        return passes[0]
    ranked = sorted(ok, key=lambda r: r["images_per_s"])
    row = dict(ranked[(len(ranked) - 1) // 2])
    if len(passes) > 1:
        row["peak_rss_mb"] = max(r.get("peak_rss_mb") or 0 for r in ok)
        rates = ", ".join(f"{r['images_per_s']:,.0f}" for r in ok)
        row["note"] = "; ".join(filter(None, [f"median of {len(passes)} passes ({rates}/s)", row.get("note", "")]))
    return row


def timed_steps(steps: int, batch: int, lab_batch: int) -> int:
    """Optimizer steps a row times: `steps`, except at a batch bigger than the lab's, where the
    row times about as many images as the lab-default row (at least 10 steps)."""
    if batch <= lab_batch:
        return steps
    return max(10, round(steps * lab_batch / batch))


def make_stream(spec: LabSpec, variant: Variant, device: torch.device, batch: int):
    """The batches of a row: the classic pipeline, aelab's on the device, or aelab's on the host.
    A compiled row drops the smaller last batch of each epoch (static shapes: one graph)."""
    if variant.pipeline == "classic":
        return classic_stream(spec, device, batch_size=batch, num_workers=variant.num_workers)
    if not variant.data_on_device:
        return host_stream(spec, device, batch_size=batch, drop_partial=variant.compile)
    return aelab_stream(spec, device, batch_size=batch, drop_partial=variant.compile)


def measure_throughput(spec: LabSpec, variant: Variant, device: torch.device, *, steps: int, warmup: int,
                       amp_choice: str = "auto", compile_mode: str = "default", compile_backend: str = "inductor",
                       chunks: int = 3) -> dict:
    """Train `warmup` steps, then time the next steps in `chunks` equal windows (a GPU is
    synchronised at each window's ends). `images_per_s` is the median window's rate, which a
    burst of load from elsewhere on a shared machine moves less than the mean. A compiled row
    counts the graphs compiled while timed (`recompiled`): it must be 0."""
    from aelab.runtime import seed_everything

    batch = variant.batch_size or (CLASSIC_BATCH if variant.pipeline == "classic" else spec.batch_size)
    steps = timed_steps(steps, batch, spec.batch_size)
    if batch > spec.batch_size and not variant.compile:
        warmup = max(2, round(warmup * spec.batch_size / batch))  # as many warm-up images, not 16x as many
    warmup = max(warmup, 2 if variant.compile else 0)  # compiling: the forward and the backward graph
    chunks = max(1, min(chunks, steps))
    lr = spec.lr * variant.lr_scale
    row = {"lab": spec.lab, "variant": variant.name, "batch_size": batch, "lr": lr, "steps": steps}

    seed_everything(0)
    with PeakMemory(device) as memory:
        trainer = Trainer(spec, device, lr=lr, channels_last=variant.channels_last, amp=variant.amp,
                          amp_choice=amp_choice, compile=variant.compile, compile_mode=compile_mode,
                          compile_backend=compile_backend, notes_optimizer=variant.notes_optimizer)
        stream = make_stream(spec, variant, device, batch)
        start = time.perf_counter()
        for _ in range(warmup):
            trainer.step(*next(stream))
        sync(device)
        warm = time.perf_counter() - start
        graphs = compiled_graphs()
        windows = []  # (images, seconds)
        cpu_start = time.process_time()
        bounds = [round(i * steps / chunks) for i in range(chunks + 1)]
        for a, b in zip(bounds[:-1], bounds[1:]):
            images = 0
            start = time.perf_counter()
            for _ in range(b - a):
                x, y = next(stream)
                loss = trainer.step(x, y)
                images += len(x)
            sync(device)
            windows.append((images, time.perf_counter() - start))
        cpu_share = (time.process_time() - cpu_start) / sum(t for _, t in windows)
        recompiled = compiled_graphs() - graphs
        final_loss = float(loss)
        trainer_optimizer = trainer.optimizer
        del stream, trainer
    notes = []
    if variant.notes_optimizer:
        notes.append(f"{optimizer_words(trainer_optimizer)} (torch's default), as in the notes")
    if not variant.data_on_device and variant.pipeline != "classic":
        notes.append("uint8 batches from pinned host buffers, non_blocking copies, float on the device")
    if variant.amp:
        notes.append(amp_words(device, amp_dtype(device, amp_choice)))
    if variant.compile:
        notes.append(f"torch.compile mode {compile_mode}, static shapes, the last partial batch dropped; "
                     "the warm-up includes compiling; "
                     + ("no recompilation while timed" if recompiled == 0 else
                        f"RECOMPILED {recompiled} time(s) while timed"))
    if variant.num_workers:
        notes.append(f"{variant.num_workers} loader processes")
    if not math.isfinite(final_loss):
        return {**row, "status": f"failed: loss {final_loss}", "note": "; ".join(notes), "recompiled": recompiled}
    rates = sorted(n / t for n, t in windows)
    ips = rates[len(rates) // 2]
    images, seconds = sum(n for n, _ in windows), sum(t for _, t in windows)
    if len(rates) > 1:
        notes.append(f"windows {rates[0]:,.0f}-{rates[-1]:,.0f}/s")
    return {**row, "images": images, "seconds": round(seconds, 3), "images_per_s": round(ips, 1),
            "epoch_s": round(FULL_TRAIN_SIZE[spec.dataset] / ips, 2), "warmup_s": round(warm, 2),
            "cpu_share": round(cpu_share, 2), "recompiled": recompiled,
            "peak_rss_mb": memory.rss_mb, "cuda_max_alloc_mb": memory.cuda_mb, "status": "ok",
            "note": "; ".join(notes)}


def not_here(variant: Variant, spec: LabSpec, device: torch.device, opts: dict) -> str:
    """Why a row is not measured on this machine ("" when it is)."""
    if variant.conv_only and not spec.conv:
        return "n/a: no convolutions"
    if device.type != "cuda":
        # On a CPU the data always sits on the device: there is no host-to-device copy to save.
        if variant.technique == "data_on_gpu" or (variant.needs_gpu and not opts.get("techniques_on_cpu")):
            return NEEDS_GPU
    return ""


def selected_variants(spec: LabSpec, opts: dict) -> list[Variant]:
    """The rows of `spec`'s lab that `opts` asks for: the pipelines, each technique of
    ``opts["techniques"]`` and the all-on row."""
    allowed = set(opts["techniques"])
    return [v for v in throughput_variants(spec, big_batch=opts["big_batch"], num_workers_row=opts["num_workers_row"])
            if v.technique in ("", "all") or v.technique in allowed]


def uses(variant: Variant, technique: str, spec: LabSpec) -> bool:
    """Whether `variant` has `technique` switched on."""
    if variant.pipeline == "classic":
        return False
    return {"data_on_gpu": variant.data_on_device, "big_batch": (variant.batch_size or 0) > spec.batch_size,
            "channels_last": variant.channels_last and spec.conv, "amp": variant.amp,
            "compile": variant.compile,
            "fused_adam": spec.notes_optimizer is not None and not variant.notes_optimizer}[technique]


def resolve_all_on(variant: Variant, spec: LabSpec, device: torch.device, opts: dict) -> Variant:
    """The "all on" row with every technique of this run switched on (and no other); other rows as they are."""
    if variant.technique != "all":
        return variant
    allowed = set(opts["techniques"])
    variant = replace(variant, compile="compile" in allowed, amp="amp" in allowed,
                      channels_last=spec.conv and "channels_last" in allowed,
                      data_on_device="data_on_gpu" in allowed or device.type != "cuda",
                      notes_optimizer="fused_adam" not in allowed and spec.notes_optimizer is not None,
                      **({} if "big_batch" in allowed else {"batch_size": None, "lr_scale": 1.0}))
    if device.type == "cuda" or opts.get("techniques_on_cpu"):
        used = [t for t in TECHNIQUES if uses(variant, t, spec)]
        variant = replace(variant, name="all on: " + (", ".join(used) or "none"))
    return variant


def throughput_row(lab: str, spec: LabSpec, variant: Variant, device: torch.device, opts: dict) -> dict:
    """One measurement of one row (or why it is not measured here)."""
    batch = variant.batch_size or (CLASSIC_BATCH if variant.pipeline == "classic" else spec.batch_size)
    base = {"part": "throughput", "lab": lab, "variant": variant.name, "batch_size": batch,
            "lr": spec.lr * variant.lr_scale}
    reason = not_here(variant, spec, device, opts)
    if reason:
        return {**base, "status": reason}
    try:
        row = measure_throughput(spec, variant, device, steps=opts["steps"] or default_steps(lab, device),
                                 warmup=opts["warmup"], amp_choice=opts["amp_dtype"],
                                 compile_mode=opts["compile_mode"],
                                 compile_backend=opts.get("compile_backend", "inductor"))
    except Exception as exc:  # a technique that fails here (say, compile without a compiler) is a row
        first_line = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        row = {"status": f"failed: {type(exc).__name__}: {first_line}"}
    return {**base, **row}


def run_throughput(lab: str, device: torch.device, opts: dict) -> list[dict]:
    """Every row of one lab (in one process), the classic baseline first, in `passes` passes
    (each row once a pass; each row keeps its median pass); then the ratios. A lab whose solution
    source lacks its model is one failed row that says what is missing."""
    from aelab import progress_bar
    from aelab.runtime import budget

    try:
        spec = lab_spec(lab, budget())
    except LabNotReady as exc:
        return [{"part": "throughput", "lab": lab, "variant": "(the whole lab)", "status": f"failed: {exc}"}]
    variants = [resolve_all_on(v, spec, device, opts) for v in selected_variants(spec, opts)]
    passes = opts.get("passes") or default_passes(lab, device)
    measured: list[list[dict]] = [[] for _ in variants]
    bar = progress_bar(len(variants) * passes, f"throughput {lab}" + (f", {passes} passes" if passes > 1 else ""))
    for _ in range(passes):  # every row once a pass, so that a slow spell hits one pass of one row
        for variant, row_passes in zip(variants, measured):
            if not (row_passes and row_passes[0].get("status") != "ok"):  # skipped or failed: once
                row_passes.append(throughput_row(lab, spec, variant, device, opts))
                bar.set_postfix({"images/s": row_passes[-1].get("images_per_s", "-")})
            bar.update(1)
    bar.close()
    rows = [median_pass(row_passes) for row_passes in measured]
    classic = next((r for r in rows if r["variant"].startswith("classic:") and r.get("status") == "ok"), None)
    for row in rows:
        if classic and row.get("status") == "ok":
            row["ratio"] = round(row["images_per_s"] / classic["images_per_s"], 2)
    lab_default = next((r for r in rows if r["variant"] == "aelab (lab default)" and r.get("status") == "ok"), None)
    not_fused = next((r for r in rows if r["variant"] == NOT_FUSED_ROW and r.get("status") == "ok"), None)
    if lab_default and not_fused:  # what the fused optimizer contributes, same run
        gain = lab_default["images_per_s"] / not_fused["images_per_s"]
        not_fused["note"] = "; ".join(filter(None, [not_fused.get("note", ""),
                                                    f"the lab's fused Adam: {gain:.2f}× this"]))
    return rows
