"""The benchmark's plumbing: the two pipelines serve the same images, the benchmark's models are
the labs' reference models, the speed-up switches run, and the files are written and merged.
No test here looks at a time: speed is what `make bench` measures, not what tests assert."""

from __future__ import annotations

import ast
import csv
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aelab import bench
from aelab.data import data_root, load_cifar10, load_mnist, to_float
from aelab.generative import mlp

SOLUTIONS = Path(__file__).resolve().parents[1] / "solutions"


# --- the two pipelines -------------------------------------------------------------------------

def test_classic_dataset_and_in_memory_batches_hold_identical_mnist_images(real_data):
    classic = bench.classic_dataset("MNIST", train=True)
    mnist = load_mnist()
    for i in (0, 1, 12345, 59999):
        image, label = classic[i]
        assert torch.equal(image, to_float(mnist.train_images[i])), f"MNIST image {i} differs"
        assert label == int(mnist.train_labels[i])
    # The same first batch from both pipelines, unshuffled and flattened as lab 02 takes it.
    spec = bench.lab_specs("quick")["lab02"]
    x_classic, y_classic = next(bench.classic_stream(spec, torch.device("cpu"), shuffle=False))
    x_aelab, y_aelab = next(iter(mnist.batches("train", batch_size=64, flatten=True, shuffle=False, device="cpu")))
    assert x_classic.shape == x_aelab.shape == (64, 784)
    assert torch.equal(x_classic, x_aelab) and torch.equal(y_classic, y_aelab)


def test_classic_cifar10_converts_one_pil_image_per_sample_like_torchvision(real_data):
    if not (data_root() / "cifar10" / "cifar10_train.npz").is_file():
        pytest.skip("no CIFAR-10 arrays in the offline copy")
    classic = bench.classic_dataset("CIFAR-10", train=False)
    assert isinstance(classic, bench.ClassicCIFAR10)
    cifar = load_cifar10()
    for i in (0, 7, len(cifar.test_images) - 1):
        image, label = classic[i]
        assert image.shape == (3, 32, 32)
        assert torch.equal(image, to_float(cifar.test_images[i])), f"CIFAR-10 image {i} differs"
        assert label == int(cifar.test_labels[i])


def test_aelab_stream_drops_the_odd_last_batch_only_when_asked():
    images = torch.randint(0, 256, (10, 1, 28, 28), dtype=torch.uint8)

    class Data:
        def batches(self, split, batch_size, flatten, device, seed):
            from aelab.data import Batches

            return Batches(images, torch.zeros(10, dtype=torch.long), batch_size, shuffle=False,
                           flatten=flatten, device=device, seed=seed)

    original = bench.load_dataset
    bench.load_dataset = lambda name: Data()
    try:
        spec = bench.lab_specs("quick")["lab03"]
        sizes = [len(next(s)[0]) for s in [bench.aelab_stream(spec, torch.device("cpu"), batch_size=4)] for _ in range(3)]
        kept = bench.aelab_stream(spec, torch.device("cpu"), batch_size=4, drop_partial=True)
        dropped = [len(next(kept)[0]) for _ in range(3)]
    finally:
        bench.load_dataset = original
    assert sizes == [4, 4, 2]
    assert dropped == [4, 4, 4]


# --- the benchmark's models are the labs' reference models -------------------------------------

def _solution_namespace(filename: str, names: set[str]) -> dict:
    """Execute only the named top-level classes and functions of a solution file."""
    tree = ast.parse((SOLUTIONS / filename).read_text())
    body = [node for node in tree.body
            if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and node.name in names]
    assert {node.name for node in body} == names, f"{filename} no longer defines {names}"
    namespace = {"torch": torch, "nn": nn, "F": F, "Tensor": Tensor, "mlp": mlp}
    exec(compile(ast.Module(body=body, type_ignores=[]), filename, "exec"), namespace)
    return namespace


def _copy_parameters(source: nn.Module, target: nn.Module) -> None:
    pairs = list(zip(source.parameters(), target.parameters(), strict=True))
    with torch.no_grad():
        for p_source, p_target in pairs:
            assert p_source.shape == p_target.shape
            p_target.copy_(p_source)


@pytest.mark.parametrize("budget", ["quick", "full"])
def test_benchmark_models_compute_what_the_labs_reference_models_compute(budget):
    specs = bench.lab_specs(budget)
    torch.manual_seed(0)

    ns = _solution_namespace("lab03_conv.py", {"ConvEncoder", "ResizeConvDecoder", "ConvAutoencoder"})
    reference = ns["ConvAutoencoder"](ns["ConvEncoder"](32, (16, 32)), ns["ResizeConvDecoder"](32, (16, 32)))
    ours = specs["lab03"].make_model()
    _copy_parameters(reference, ours)
    x = torch.rand(3, 1, 28, 28)
    assert torch.allclose(ours(x)[0], reference(x)[0], atol=1e-6)

    ns = _solution_namespace("lab04_vae.py", {"reparameterize", "VAE"})
    hidden = (400,) if budget == "quick" else (512, 512)
    reference, ours = ns["VAE"](20, hidden), specs["lab04"].make_model()
    _copy_parameters(reference, ours)
    x = torch.rand(3, 784)
    torch.manual_seed(1)
    expected = reference(x)
    torch.manual_seed(1)
    for got, want in zip(ours(x), expected):
        assert torch.allclose(got, want, atol=1e-6)

    ns = _solution_namespace("lab05_vqvae.py", {"ResidualBlock", "Encoder", "squared_distances",
                                                 "VectorQuantizer", "Decoder", "VQVAE"})
    config = dict(hidden=32, num_residual=1, code_dim=16) if budget == "quick" else \
        dict(hidden=128, num_residual=2, code_dim=64)
    reference = ns["VQVAE"](512, config["code_dim"], config["hidden"], config["num_residual"])
    ours = specs["lab05"].make_model()
    _copy_parameters(reference, ours)
    x = torch.rand(2, 3, 32, 32)
    for got, want in zip(ours(x), reference(x)):
        assert torch.allclose(got.float(), want.float(), atol=1e-5)
    # Lab 05's optimizer: a 10x step for the codebook.
    groups = specs["lab05"].make_optimizer(ours, 1e-3).param_groups
    assert [g["lr"] for g in groups] == [1e-3, 1e-2]
    assert groups[1]["params"] == [ours.quantizer.codebook.weight]


def _dropout(model: nn.Module) -> list[float]:
    return [m.p for m in model.modules() if isinstance(m, nn.Dropout)]


def test_lab02_spec_is_the_lab_and_the_notes_spec_is_the_notes(monkeypatch):
    from aelab.zoo import ClassicAutoencoder

    # The benchmark names its dropout: whatever ClassicAutoencoder's default is, the specs keep theirs.
    monkeypatch.setattr(ClassicAutoencoder.__init__, "__defaults__", (32, 0.5))
    spec, notes = bench.lab_specs("quick")["lab02"], bench.notes_lab02_spec()
    lab_model, notes_model = spec.make_model(), notes.make_model()
    assert _dropout(lab_model) == [0.0, 0.0] and "no dropout" in spec.model
    assert _dropout(notes_model) == [0.2, 0.2] and "dropout 0.2" in notes.model
    assert (spec.batch_size, spec.lr, spec.flatten) == (notes.batch_size, notes.lr, notes.flatten) == (64, 1e-3, True)
    # The lab: Adam, fused; the notes (and the lab's ablation row): torch's default Adam, not fused.
    lab_adam = spec.make_optimizer(lab_model, 1e-3)
    assert type(lab_adam) is torch.optim.Adam and lab_adam.defaults["fused"] is True
    for optimizer in (notes.make_optimizer(notes_model, 1e-3), spec.notes_optimizer(lab_model, 1e-3)):
        assert type(optimizer) is torch.optim.Adam and not optimizer.defaults["fused"]
        assert optimizer.defaults["lr"] == 1e-3
    # The trainer takes the notes' optimizer only when asked, and the model stays the lab's.
    cpu = torch.device("cpu")
    assert bench.Trainer(spec, cpu, lr=1e-3).optimizer.defaults["fused"] is True
    ablation = bench.Trainer(spec, cpu, lr=1e-3, notes_optimizer=True)
    assert not ablation.optimizer.defaults["fused"] and _dropout(ablation.model) == [0.0, 0.0]
    assert math.isfinite(float(ablation.step(torch.rand(8, 784))))
    # Labs without a notes' optimizer of their own keep theirs.
    lab03 = bench.lab_specs("quick")["lab03"]
    assert lab03.notes_optimizer is None
    assert bench.Trainer(lab03, cpu, lr=1e-3, notes_optimizer=True).optimizer.defaults["lr"] == 1e-3


# --- the switches ------------------------------------------------------------------------------

def test_channels_last_and_mixed_precision_train_a_conv_lab_on_a_cpu():
    spec = bench.lab_specs("quick")["lab03"]
    torch.manual_seed(0)
    trainer = bench.Trainer(spec, torch.device("cpu"), lr=spec.lr, channels_last=True, amp=True, amp_choice="bf16")
    conv = next(m for m in trainer.model.modules() if isinstance(m, nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    loss = trainer.step(torch.rand(8, 1, 28, 28))
    assert loss.dtype == torch.float32 and math.isfinite(float(loss))
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))
    # The VAE's binary cross-entropy refuses autocast: the loss must be computed outside it.
    vae = bench.lab_specs("quick")["lab04"]
    assert math.isfinite(float(bench.Trainer(vae, torch.device("cpu"), lr=1e-3, amp=True,
                                             amp_choice="bf16").step(torch.rand(4, 784))))


def test_rows_say_why_they_did_not_run_on_a_cpu():
    cpu = torch.device("cpu")
    specs = bench.lab_specs("quick")
    rows = {v.technique or v.name: v for v in bench.throughput_variants(specs["lab02"])}
    opts = {"techniques_on_cpu": False}
    assert bench._not_here(rows["channels_last"], specs["lab02"], cpu, opts) == "n/a: no convolutions"
    for technique in ("data_on_gpu", "amp", "compile", "all"):
        assert bench._not_here(rows[technique], specs["lab03"], cpu, opts) == bench.NEEDS_GPU
    assert bench._not_here(rows["big_batch"], specs["lab03"], cpu, opts) == ""
    # Lab 02's not-fused Adam row is measured on a CPU too.
    assert rows["fused_adam"].name == bench.NOT_FUSED_ROW and rows["fused_adam"].notes_optimizer
    assert bench._not_here(rows["fused_adam"], specs["lab02"], cpu, opts) == ""
    # A big batch times about as many images as the lab's default row, not 16 times as many.
    assert bench.timed_steps(150, 1024, 64) == 10 and bench.timed_steps(150, 64, 64) == 150


def test_the_not_fused_row_is_lab02s_only_and_switchable():
    opts = {"techniques": list(bench.TECHNIQUES), "big_batch": 1024, "num_workers_row": False}
    specs = bench.lab_specs("quick")
    names = [v.name for v in bench.selected_variants(specs["lab02"], opts)]
    assert names.index(bench.NOT_FUSED_ROW) == names.index("aelab (lab default)") + 1
    for lab in ("lab03", "lab04", "lab05"):
        assert not any(v.notes_optimizer for v in bench.selected_variants(specs[lab], opts)), lab
    without = {**opts, "techniques": [t for t in bench.TECHNIQUES if t != "fused_adam"]}
    assert bench.NOT_FUSED_ROW not in [v.name for v in bench.selected_variants(specs["lab02"], without)]
    assert "fused_adam" in bench.options(bench.parse_args(["--device", "cpu"]))["techniques"], "on by default"


# --- threads -----------------------------------------------------------------------------------

def test_threads_every_core_for_throughput_one_a_run_side_by_side_and_one_for_grading():
    assert bench.thread_counts(None, 2, True) == {"throughput": 2, "quality": 1, "grading": 1}
    assert bench.thread_counts(None, 8, False) == {"throughput": 8, "quality": 8, "grading": 1}
    assert bench.thread_counts(3, 8, True) == {"throughput": 3, "quality": 3, "grading": 3}


def test_options_take_the_cores_unless_told(monkeypatch):
    import os

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    opts = bench.options(bench.parse_args(["--device", "cpu"]))
    assert opts["quality_side_by_side"] and opts["threads"] == {"throughput": 6, "quality": 1, "grading": 1}
    opts = bench.options(bench.parse_args(["--device", "cpu", "--no-quality-side-by-side"]))
    assert opts["threads"] == {"throughput": 6, "quality": 6, "grading": 1}
    assert set(bench.options(bench.parse_args(["--device", "cpu", "--threads", "3"]))["threads"].values()) == {3}
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert set(bench.options(bench.parse_args(["--device", "cpu"]))["threads"].values()) == {2}
    assert set(bench.options(bench.parse_args(["--device", "cpu", "--threads", "4"]))["threads"].values()) == {4}



def test_cheap_labs_time_more_steps_on_a_cpu_unless_told():
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert bench.options(bench.parse_args(["--device", "cpu"]))["steps"] is None  # per lab, below
    assert bench.options(bench.parse_args(["--device", "cpu", "--steps", "7"]))["steps"] == 7
    # The fully connected labs' steps take milliseconds: their rows time several times more of them.
    assert bench.default_steps("lab02", cpu) >= 4 * bench.default_steps("lab03", cpu)
    assert bench.default_steps("lab04", cpu) >= 2 * bench.default_steps("lab05", cpu)
    assert {bench.default_steps(lab, gpu) for lab in bench.THROUGHPUT_LABS} == {500}


# --- time to quality ---------------------------------------------------------------------------

def test_quality_rows_read_the_time_to_the_notes_final_mse_off_each_curve():
    notes = {"part": "quality", "lab": "lab02", "variant": "notes", "status": "ok", "batch_size": 64, "lr": 1e-3,
             "setup": "dropout 0.2, Adam, not fused",
             "curve": [(10.0, 0.030), (20.0, 0.0170), (30.0, 0.0200), (40.0, 0.0190)]}
    lab = {"part": "quality", "lab": "lab02", "variant": "lab default: aelab", "status": "ok", "batch_size": 64,
           "lr": 1e-3, "setup": "no dropout, Adam, fused",
           "curve": [(2.0, 0.030), (4.0, 0.0185), (6.0, 0.0175), (8.0, 0.010)]}
    slow = {"part": "quality", "lab": "lab02", "variant": "big batch", "status": "ok", "batch_size": 1024,
            "lr": 4e-3, "curve": [(1.0, 0.05), (2.0, 0.04)]}
    notes_curve, lab_curve = list(notes["curve"]), list(lab["curve"])
    rows = bench.quality_rows([notes, lab, slow], side_by_side=False)
    by_name = {r["variant"]: r for r in rows}
    assert by_name["notes"]["final_test_mse"] == 0.019 and by_name["notes"]["seconds"] == 40.0
    assert by_name["notes"]["note"].startswith("dropout 0.2, Adam, not fused")
    assert by_name["lab default: aelab"]["note"] == "no dropout, Adam, fused; stopped at the target"
    own = next(r for r in rows if r["variant"].startswith("course notes' run"))
    assert (own["epochs"], own["seconds"], own["ratio"]) == (2, 20.0, 2.0)
    lab_row = by_name["lab default: aelab"]
    assert (lab_row["epochs"], lab_row["seconds"], lab_row["final_test_mse"], lab_row["ratio"]) == (2, 4.0, 0.0185, 10.0)
    quoted = next(r for r in rows if str(bench.QUOTED_MSE) in r["variant"])
    assert (quoted["epochs"], quoted["seconds"], quoted["ratio"]) == (3, 6.0, round(40 / 6, 2))
    assert by_name["big batch"]["status"] == "target not reached in 2 epochs" and "ratio" not in by_name["big batch"]
    assert "4-epoch wall time" in quoted["note"], "the notes' epochs, as run"
    side = bench.quality_rows([dict(notes, curve=list(notes_curve)), dict(lab, curve=list(lab_curve))],
                              side_by_side=True)
    assert bench.SIDE_BY_SIDE in next(r for r in side if r["variant"] == "lab default: aelab")["note"]


def test_quality_runs_name_what_they_train():
    opts = {"big_batch": 1024, "techniques": list(bench.TECHNIQUES), "quality_epochs": 30, "quality_cap": 40}
    runs = bench.quality_variants(torch.device("cpu"), opts)
    notes, lab = runs[0], runs[1]
    assert notes["kind"] == "notes" and "dropout 0.2" in notes["name"] and "plain Adam" in notes["name"]
    assert notes["max_epochs"] == 30 and not notes["skip"]
    assert lab["kind"] == "aelab" and lab["name"] == bench.LAB_DEFAULT_RUN and not lab["skip"]
    assert lab["name"].startswith("lab default:") and "no dropout" in lab["name"] and "fused Adam" in lab["name"]
    # The other variants (big batch, mixed precision, compile) train the lab's model, on a GPU only.
    assert len(runs) > 2 and all(r["kind"] == "aelab" and r["skip"] == bench.NEEDS_GPU for r in runs[2:])


def test_quality_runs_train_both_pipelines_on_a_few_images(real_data):
    cpu = torch.device("cpu")
    notes = bench.quality_run("notes", cpu, max_epochs=2, limit=256)
    lab = bench.quality_run("aelab", cpu, max_epochs=3, limit=256, target=1.0)
    # Read off the model and optimizer each run trained: the notes' (dropout 0.2, plain Adam), the lab's.
    assert (notes["dropout"], notes["fused"], notes["setup"]) == ([0.2, 0.2], False, "dropout 0.2, Adam, not fused")
    assert (lab["dropout"], lab["fused"], lab["setup"]) == ([0.0, 0.0], True, "no dropout, Adam, fused")
    assert len(notes["curve"]) == 2 and all(0 < mse < 0.5 for _, mse in notes["curve"])
    assert len(lab["curve"]) == 1, "a run stops at the first epoch that reaches its target"
    assert notes["curve"][0][0] < notes["curve"][1][0]


# --- the files ---------------------------------------------------------------------------------

def test_a_tiny_run_writes_both_files_with_every_column(real_data, tmp_path, monkeypatch):
    import os

    monkeypatch.setenv("AELAB_PROGRESS", "0")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 3)  # throughput: every core, as this process counts them
    status = bench.main(["--only", "throughput", "--labs", "lab02", "--steps", "3", "--warmup", "1",
                         "--techniques", "big_batch,fused_adam", "--big-batch", "128", "--no-workers-row",
                         "--out", str(tmp_path), "--device", "cpu"])
    assert status == 0
    with (tmp_path / "bench.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == bench.COLUMNS
        rows = list(reader)
    by_variant = {r["variant"]: r for r in rows}
    classic = by_variant["classic: DataLoader + ToTensor"]
    aelab_row = by_variant["aelab (lab default)"]
    not_fused = by_variant[bench.NOT_FUSED_ROW]
    for row in (classic, aelab_row, not_fused):
        assert row["status"] == "ok" and row["part"] == "throughput" and row["lab"] == "lab02"
        assert float(row["images_per_s"]) > 0 and float(row["epoch_s"]) > 0 and row["steps"] == "3"
        assert row["device"] == "cpu" and row["machine"].startswith("CPU: ")
        assert row["threads"] == "3", "the job's own torch.get_num_threads()"
    # The ablation row trained the notes' Adam (read off the optimizer) and says what fusing gains.
    assert "Adam, not fused" in not_fused["note"]
    gain = float(aelab_row["images_per_s"]) / float(not_fused["images_per_s"])
    assert f"the lab's fused Adam: {gain:.2f}× this" in not_fused["note"]
    assert float(classic["ratio"]) == 1.0
    assert math.isclose(float(aelab_row["ratio"]),
                        float(aelab_row["images_per_s"]) / float(classic["images_per_s"]), rel_tol=0.01)
    assert any(r["status"] == bench.NEEDS_GPU for r in rows), "GPU rows must say they were skipped"
    md = (tmp_path / "bench.md").read_text()
    assert "### Training throughput" in md and classic["machine"] in md and "skipped: needs a GPU" in md
    assert "CPU threads: throughput: 3 thread(s)." in md


def test_markdown_merge_replaces_this_machines_section_and_keeps_the_others():
    gpu = "<!-- bench section: GPU: NVIDIA H100 -->\n## GPU: NVIDIA H100\n\n| the GPU run |\n<!-- end of bench section -->\n"
    old_cpu = "<!-- bench section: CPU: X, 2 cores -->\n## CPU: X\n\nold numbers\n<!-- end of bench section -->\n"
    existing = bench.PREAMBLE + "\n" + old_cpu + "\n" + gpu
    merged = bench.merge_markdown(existing, "CPU: X, 2 cores", "## CPU: X\n\nnew numbers\n")
    assert "| the GPU run |" in merged and "## GPU: NVIDIA H100" in merged
    assert "new numbers" in merged and "old numbers" not in merged
    assert merged.count("# aelab benchmarks") == 1
    assert merged.index("CPU: X") < merged.index("GPU: NVIDIA H100"), "sections keep their order"
    again = bench.merge_markdown(merged, "GPU: NVIDIA H100", "## GPU: NVIDIA H100\n\nnewer GPU run\n")
    assert "newer GPU run" in again and "new numbers" in again and "| the GPU run |" not in again


def test_csv_merge_keeps_other_machines_and_parts(tmp_path):
    path = tmp_path / "bench.csv"
    bench.merge_csv(path, "GPU: H100", [{"part": "throughput", "lab": "lab02", "machine": "GPU: H100", "ratio": 30}])
    bench.merge_csv(path, "CPU: X", [{"part": "throughput", "lab": "lab02", "machine": "CPU: X", "ratio": 3},
                                     {"part": "grading", "lab": "lab02", "machine": "CPU: X", "seconds": 40}])
    merged = bench.merge_csv(path, "CPU: X", [{"part": "throughput", "lab": "lab02", "machine": "CPU: X",
                                               "ratio": 4}])
    assert sorted((r["machine"], r["part"], str(r.get("ratio", ""))) for r in merged) == [
        ("CPU: X", "grading", ""), ("CPU: X", "throughput", "4"), ("GPU: H100", "throughput", "30")]
    with path.open(newline="") as f:
        assert len(list(csv.DictReader(f))) == 3


def test_rendered_section_names_the_machine_and_checks_the_targets():
    info = {"key": "CPU: X, 2 cores", "cpu": "X, 2 cores", "torch": "2.x"}
    common = {"device": "cpu", "machine": info["key"], "budget": "quick", "threads": 1, "run": "today"}
    rows = [{**common, "part": "throughput", "lab": "lab02", "variant": "classic: DataLoader + ToTensor",
             "images_per_s": 7000.0, "ratio": 1.0, "status": "ok", "threads": 2},
            {**common, "part": "throughput", "lab": "lab02", "variant": "aelab (lab default)",
             "images_per_s": 28000.0, "ratio": 4.0, "status": "ok", "threads": "2"},
            {**common, "part": "quality", "lab": "lab02", "variant": bench.LAB_DEFAULT_RUN, "ratio": 2.0,
             "status": "ok", "note": "no dropout, Adam, fused; " + bench.SIDE_BY_SIDE},
            {**common, "part": "grading", "lab": "lab01_pca", "seconds": 40.0, "status": "ok"}]
    text = bench.render_section(rows, info)
    assert text.startswith("## CPU: X, 2 cores") and "torch 2.x" in text
    assert ("CPU threads: throughput: 2 thread(s); time to quality: 1 thread per run, side by side; "
            "grading: 1 thread(s).") in text
    assert "The lab's defaults: 2.0× (not met)." in text
    assert "aelab at the lab's defaults: 4.0× (met)" in text
    assert "| lab01_pca | 40 |" in text


def test_a_row_keeps_its_median_pass_and_its_largest_memory():
    def row(rate, rss):
        return {"variant": "aelab", "status": "ok", "images_per_s": rate, "peak_rss_mb": rss, "note": "windows"}

    kept = bench.median_pass([row(38_000, 700), row(24_000, 800), row(40_000, 750)])  # one slow spell
    assert kept["images_per_s"] == 38_000 and kept["peak_rss_mb"] == 800
    assert kept["note"].startswith("median of 3 passes (38,000, 24,000, 40,000/s)") and "windows" in kept["note"]
    assert bench.median_pass([row(10, 1), row(30, 1)])["images_per_s"] == 10  # even count: the lower middle
    single = row(5, 1)
    assert bench.median_pass([single]) == single  # one pass: the row as measured
    skipped = {"variant": "aelab", "status": bench.NEEDS_GPU}
    assert bench.median_pass([skipped]) == skipped
    assert bench.default_passes("lab02", torch.device("cpu")) > 1 == bench.default_passes("lab02", torch.device("cuda"))
