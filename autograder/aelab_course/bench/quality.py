"""Part 2 of the benchmark: time to quality, lab 02.

The course notes' run (dropout 0.2, plain Adam, the classic pipeline, batch 64, 30 epochs) sets
the target: the test MSE it ends with. The other runs train lab 02's defaults (no dropout, fused
Adam, aelab's batches) and are timed to their first epoch at or below that target.
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F
from torch import nn

from .measure import NEEDS_GPU, PeakMemory, Trainer, compiled_graphs, dropout_words, optimizer_words, sizes_of_epoch, sync
from .models import NOTES_DROPOUT, lab_spec, notes_lab02_spec
from .pipelines import CLASSIC_BATCH, classic_dataset, load_dataset

NOTES_EPOCHS = 30           # the course notes' number of epochs (lab 02)
EVAL_BATCH = 1000           # lab 02 evaluates the test set at batch 1000
QUOTED_MSE = 0.018  # where the issue and lab 02's text say the notes' settings (dropout 0.2, plain Adam) level off
SIDE_BY_SIDE = "trained side by side with the notes' run, one thread each; its time is read off its curve"
LAB_DEFAULT_RUN = "lab default: aelab batches, batch 64, no dropout, fused Adam"


def lab02_epoch(trainer: Trainer, batches, *, item_each_step: bool = True) -> float:
    """Lab 02's train_epoch: train mode, one step per batch, the mean loss per image. Like the
    lab's and the notes' loops it reads each loss with .item() (a GPU waits for it every step);
    `item_each_step=False` sums on the device instead."""
    trainer.model.train()
    total, count = 0.0, 0
    for images, labels in batches:
        loss = trainer.step(images, labels)
        total = total + (float(loss) if item_each_step else loss) * len(images)
        count += len(images)
    return float(total) / max(count, 1)


def lab02_evaluate(trainer: Trainer, batches) -> float:
    """Lab 02's evaluate: eval mode, no graph, the mean MSE per image."""
    trainer.model.eval()
    total, count = 0.0, 0
    for images, _ in batches:
        output = trainer.evaluate_forward(images)
        total += F.mse_loss(output[0].float(), images).item() * len(images)
        count += len(images)
    return total / max(count, 1)


class Loader:
    """A DataLoader whose batches go to the device, flattened, as the notes' loop does it."""

    def __init__(self, dataset, device: torch.device, batch_size: int, shuffle: bool):
        self.loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=shuffle,
                                                  generator=torch.Generator().manual_seed(0))
        self.device = device
        self.num_images = len(dataset)

    def __iter__(self):
        for images, labels in self.loader:
            yield images.to(self.device).view(len(images), -1), labels.to(self.device)


def quality_run(kind: str, device: torch.device, *, target: float | None = None, max_epochs: int = NOTES_EPOCHS,
                batch_size: int = CLASSIC_BATCH, lr: float = 1e-3, amp: bool = False, compile: bool = False,
                amp_choice: str = "auto", compile_backend: str = "inductor", limit: int | None = None) -> dict:
    """Train lab 02's autoencoder and evaluate the test MSE after every epoch.

    kind "notes": the course notes' run, their model and optimizer (``notes_lab02_spec``: dropout
    0.2, plain Adam, not fused) on their pipeline, a DataLoader with ToTensor for the training
    and the test set at the same batch size. kind "aelab": lab 02's defaults (no dropout, fused
    Adam) on aelab's in-memory batches (the test set at batch 1000, as in the lab). `batch_size`,
    `lr`, `amp` and `compile` change either. Runs `max_epochs` epochs, or stops after the first
    epoch whose test MSE is at most `target`. Returns the curve: (seconds since the start, test
    MSE) after each epoch, the clock starting before the data files are opened; and what was
    trained, read off the model and optimizer themselves: `dropout`, `fused` and `setup` (both in
    words). A compiled run compiles every batch size of an epoch (the last smaller one too) in
    train mode and the evaluation batches in eval mode before the first epoch (inside the clock:
    a student pays it too), and counts what was compiled after that (`recompiled`, 0).
    `limit` keeps only the first images of each split (for tests).
    """
    from aelab import progress_bar
    from aelab.runtime import seed_everything

    if kind not in ("notes", "aelab"):
        raise ValueError(f"kind must be 'notes' or 'aelab', got {kind!r}")
    spec = notes_lab02_spec() if kind == "notes" else lab_spec("lab02", "quick")
    seed_everything(0)
    with PeakMemory(device) as memory:
        start, cpu_start = time.perf_counter(), time.process_time()
        if kind == "notes":
            train_set, test_set = classic_dataset("MNIST", True), classic_dataset("MNIST", False)
            if limit:
                train_set = torch.utils.data.Subset(train_set, range(limit))
                test_set = torch.utils.data.Subset(test_set, range(limit))
            train = Loader(train_set, device, batch_size, shuffle=True)
            test = Loader(test_set, device, batch_size, shuffle=False)
            eval_batch = batch_size
        else:
            data = load_dataset("MNIST")
            train = data.batches("train", batch_size=batch_size, flatten=True, device=device, limit=limit, seed=0)
            test = data.batches("test", batch_size=EVAL_BATCH, flatten=True, device=device, limit=limit)
            eval_batch = EVAL_BATCH
        trainer = Trainer(spec, device, lr=lr, amp=amp, amp_choice=amp_choice, compile=compile,
                          compile_backend=compile_backend)
        compile_s = 0.0
        if compile:
            example = next(iter(test))[0]
            compile_s = trainer.warm_up(example, sizes_of_epoch(train.num_images, batch_size),
                                        sizes_of_epoch(test.num_images, eval_batch))
        graphs = compiled_graphs()
        curve: list[tuple[float, float]] = []
        bar = progress_bar(max_epochs, f"quality: {kind}, batch {batch_size}")
        for _ in range(max_epochs):
            lab02_epoch(trainer, train, item_each_step=not (amp or compile))
            mse = lab02_evaluate(trainer, test)
            sync(device)
            curve.append((round(time.perf_counter() - start, 3), mse))
            bar.update(1)
            bar.set_postfix({"test MSE": f"{mse:.4f}"})
            if target is not None and mse <= target:
                break
        bar.close()
        recompiled = compiled_graphs() - graphs
    cpu_share = (time.process_time() - cpu_start) / max(curve[-1][0], 1e-9)
    dropout = [m.p for m in trainer.model.modules() if isinstance(m, nn.Dropout)]
    result = {"curve": curve, "batch_size": batch_size, "lr": lr, "cpu_share": round(cpu_share, 2),
              "peak_rss_mb": memory.rss_mb, "cuda_max_alloc_mb": memory.cuda_mb,
              "dropout": dropout, "fused": bool(trainer.optimizer.defaults.get("fused")),
              "setup": f"{dropout_words(trainer.model)}, {optimizer_words(trainer.optimizer)}"}
    if compile:
        result["recompiled"] = recompiled
        result["setup"] += (f"; compiled every batch shape in train and eval mode first ({compile_s:.1f} s, "
                            "in the wall time); " + ("no recompilation after that" if recompiled == 0 else
                                                     f"RECOMPILED {recompiled} time(s) while training"))
    return result


def quality_variants(device: torch.device, opts: dict) -> list[dict]:
    """The runs of the time-to-quality part. The first, the course notes' run (dropout 0.2, plain
    Adam, classic pipeline, batch 64), sets the target of the others: its final test MSE. The
    others train lab 02's model and optimizer (no dropout, fused Adam) on aelab's batches."""
    big = opts["big_batch"]
    scale = math.sqrt(big / CLASSIC_BATCH)
    allowed = opts["techniques"]
    runs = [dict(name=f"course notes: DataLoader + ToTensor, batch 64, dropout {NOTES_DROPOUT:g}, plain Adam, "
                      f"{opts['quality_epochs']} epochs", kind="notes", max_epochs=opts["quality_epochs"]),
            dict(name=LAB_DEFAULT_RUN, kind="aelab")]
    fast = [t for t in ("amp", "compile") if t in allowed]
    if fast:
        runs.append(dict(name=f"lab default + {' + '.join(fast)}", kind="aelab", amp="amp" in fast,
                         compile="compile" in fast))
    if "big_batch" in allowed:
        runs.append(dict(name=f"lab + big batch {big}, lr x{scale:.2g}", kind="aelab", batch_size=big,
                         lr=1e-3 * scale))
        if fast:
            runs.append(dict(name=f"lab + big batch {big}, lr x{scale:.2g} + {' + '.join(fast)}", kind="aelab",
                             batch_size=big, lr=1e-3 * scale, amp="amp" in fast, compile="compile" in fast))
    gpu = device.type == "cuda" or opts.get("techniques_on_cpu", False)
    for run in runs[2:]:
        # On a CPU these cost minutes and cannot win: mixed precision and compile need a GPU, and a
        # big batch there gains little speed per image (see the throughput rows) and needs more epochs.
        run["skip"] = "" if gpu else NEEDS_GPU
    runs[0]["skip"] = runs[1]["skip"] = ""
    for run in runs[1:]:
        run["max_epochs"] = opts["quality_cap"]
    return runs


def run_quality_job(run: dict, device: torch.device, opts: dict, target: float | None) -> dict:
    kwargs = {k: run[k] for k in ("batch_size", "lr", "amp", "compile") if k in run}
    result = quality_run(run["kind"], device, target=target, max_epochs=run["max_epochs"],
                         amp_choice=opts["amp_dtype"], compile_backend=opts.get("compile_backend", "inductor"),
                         limit=opts.get("quality_limit"), **kwargs)
    return {"part": "quality", "lab": "lab02", "variant": run["name"], "status": "ok", **result}


def _join(*parts) -> str:
    return "; ".join(str(p) for p in parts if p)


def _first_at_or_below(curve, level: float) -> int | None:
    return next((i for i, (_, mse) in enumerate(curve) if mse <= level), None)


def quality_rows(results: list[dict], *, side_by_side: bool) -> list[dict]:
    """The table's rows from the runs' curves: the notes' wall time and final MSE; for every
    other run the time to its first epoch at or below that MSE, and the ratio."""
    notes, others = results[0], results[1:]
    rows = []
    if notes.get("status") != "ok" or not notes.get("curve"):
        return [{k: v for k, v in r.items() if k != "curve"} for r in results]
    curve = notes.pop("curve")
    wall, target = curve[-1][0], curve[-1][1]
    rows.append({**notes, "epochs": len(curve), "seconds": wall, "final_test_mse": round(target, 5), "ratio": 1.0,
                 "note": _join(notes.get("setup"), "the target of the other runs is its final test MSE")})
    first = _first_at_or_below(curve, target)
    rows.append({"part": "quality", "lab": "lab02", "variant": "course notes' run, at its first epoch at or below "
                 "its final MSE (same run)", "batch_size": notes["batch_size"], "lr": notes["lr"],
                 "epochs": first + 1, "seconds": curve[first][0], "final_test_mse": round(curve[first][1], 5),
                 "target_mse": round(target, 5), "ratio": round(wall / curve[first][0], 2), "status": "ok",
                 "note": f"how much of the gap {len(curve)} epochs make: read off the notes' curve"})
    quoted_notes = _first_at_or_below(curve, QUOTED_MSE)
    for result in others:
        if result.get("status") != "ok" or "curve" not in result:
            rows.append(result)
            continue
        run_curve = result.pop("curve")
        reached = _first_at_or_below(run_curve, target)
        how = _join(result.get("setup"), SIDE_BY_SIDE if side_by_side else "stopped at the target")
        if reached is None:
            rows.append({**result, "epochs": len(run_curve), "seconds": run_curve[-1][0],
                         "final_test_mse": round(run_curve[-1][1], 5), "target_mse": round(target, 5),
                         "status": f"target not reached in {len(run_curve)} epochs", "note": how})
        else:
            rows.append({**result, "epochs": reached + 1, "seconds": run_curve[reached][0],
                         "final_test_mse": round(run_curve[reached][1], 5), "target_mse": round(target, 5),
                         "ratio": round(wall / run_curve[reached][0], 2), "note": how})
        if result["variant"].startswith("lab default:"):
            quoted = _first_at_or_below(run_curve, QUOTED_MSE)
            if quoted is not None:
                notes_note = (f"the notes' run itself got there after epoch {quoted_notes + 1} "
                              f"({curve[quoted_notes][0]:.0f} s)" if quoted_notes is not None else
                              "the notes' run itself never got there")
                rows.append({**result, "variant": f"lab default, until test MSE {QUOTED_MSE} (the level quoted "
                             "for the notes' settings: dropout 0.2, plain Adam, batch 64)", "epochs": quoted + 1,
                             "seconds": run_curve[quoted][0],
                             "final_test_mse": round(run_curve[quoted][1], 5), "target_mse": QUOTED_MSE,
                             "ratio": round(wall / run_curve[quoted][0], 2), "status": "ok",
                             "note": f"ratio: the notes' {len(curve)}-epoch wall time over this; {notes_note}"})
    return rows
