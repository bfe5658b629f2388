"""The benchmark's plumbing: the pipelines serve the same images, the models come from the labs'
sources, the speed-up switches run and are fair (mixed precision by compute capability, the host
row's pinned non-blocking copies, no recompilation while timed), and the files are written and
merged. No test here looks at a time: speed is what `make bench` measures, not what tests assert.

Most tests train tiny stand-in models, so that they hold while the labs are being rewritten. The
tests that need a lab's own definitions ask for them with `lab_spec_or_skip`, which skips with
the reason while the lab's source lacks a name the benchmark needs (docs/AUTHORING.md, "Names
other tools rely on")."""

from __future__ import annotations

import csv
import math
import re
import types
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aelab.data import ImageDataset, data_root, load_cifar10, load_mnist, to_float
from aelab_course.bench import cli, measure, models, pipelines, quality, report
from aelab_course.bench.measure import NEEDS_GPU, NOT_FUSED_ROW, TECHNIQUES, Trainer
from aelab_course.bench.models import LabNotReady, LabSpec

BENCH = Path(measure.__file__).parent
CPU = torch.device("cpu")


# --- stand-ins ---------------------------------------------------------------------------------

class TinyAE(nn.Module):
    """A fully connected autoencoder on flattened 28x28 images: (reconstruction, latent)."""

    def __init__(self, dropout: float = 0.0):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(784, 16), nn.Tanh(), nn.Dropout(dropout), nn.Linear(16, 4))
        self.decoder = nn.Sequential(nn.Linear(4, 784), nn.Sigmoid())

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        z = self.encoder(x)
        return self.decoder(z), z


class TinyConvAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU())
        self.decoder = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(4, 1, 3, padding=1), nn.Sigmoid())

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        z = self.encoder(x)
        return self.decoder(z), z


class TinyVAE(nn.Module):
    """forward returns (logits, mu, logvar), as lab 04's VAE does."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Linear(784, 8)
        self.decoder = nn.Linear(4, 784)

    def forward(self, x: Tensor):
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        return self.decoder(z), mu, logvar


class TinyVQ(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Conv2d(3, 4, 1)
        self.codebook = nn.Embedding(8, 4)
        self.decoder = nn.Conv2d(4, 3, 1)

    def forward(self, x: Tensor):
        return self.decoder(self.encoder(x)), None


def mse_loss(model: nn.Module, images: Tensor, labels: Tensor) -> Tensor:
    return F.mse_loss(model(images)[0], images)


def standin_spec(lab: str = "lab02", *, conv: bool = False, batch_size: int = 8, notes: bool = True) -> LabSpec:
    return LabSpec(lab, "MNIST", not conv, conv, batch_size, 1e-3, "stand-in",
                   TinyConvAE if conv else TinyAE, mse_loss, models.fused_adam if not conv else models.plain_adam,
                   notes_optimizer=models.plain_adam if notes and not conv else None)


def fake_mnist(n_train: int = 100, n_test: int = 20) -> ImageDataset:
    g = torch.Generator().manual_seed(0)
    return ImageDataset("MNIST", torch.randint(0, 256, (n_train, 1, 28, 28), dtype=torch.uint8, generator=g),
                        torch.randint(0, 10, (n_train,), generator=g),
                        torch.randint(0, 256, (n_test, 1, 28, 28), dtype=torch.uint8, generator=g),
                        torch.randint(0, 10, (n_test,), generator=g), tuple("0123456789"), "test")


def lab_spec_or_skip(lab: str, budget: str = "quick") -> LabSpec:
    """The lab's own spec; the test is skipped, with the reason, while the lab's source lacks it."""
    reason = models.lab_ready(lab)
    if reason:
        pytest.skip(f"needs the lab's own definitions: {reason}")
    return models.lab_spec(lab, budget)


# --- the pipelines -----------------------------------------------------------------------------

def test_classic_dataset_and_in_memory_batches_hold_identical_mnist_images(real_data):
    classic = pipelines.classic_dataset("MNIST", train=True)
    mnist = load_mnist()
    for i in (0, 1, 12345, 59999):
        image, label = classic[i]
        assert torch.equal(image, to_float(mnist.train_images[i])), f"MNIST image {i} differs"
        assert label == int(mnist.train_labels[i])
    # The same first batch from both pipelines, unshuffled and flattened as lab 02 takes it.
    x_classic, y_classic = next(pipelines.classic_stream(standin_spec(), CPU, shuffle=False))
    x_aelab, y_aelab = next(iter(mnist.batches("train", batch_size=64, flatten=True, shuffle=False, device="cpu")))
    assert x_classic.shape == x_aelab.shape == (64, 784)
    assert torch.equal(x_classic, x_aelab) and torch.equal(y_classic, y_aelab)


def test_classic_cifar10_converts_one_pil_image_per_sample_like_torchvision(real_data):
    if not (data_root() / "cifar10" / "cifar10_train.npz").is_file():
        pytest.skip("no CIFAR-10 arrays in the offline copy")
    classic = pipelines.classic_dataset("CIFAR-10", train=False)
    assert isinstance(classic, pipelines.ClassicCIFAR10)
    cifar = load_cifar10()
    for i in (0, 7, len(cifar.test_images) - 1):
        image, label = classic[i]
        assert image.shape == (3, 32, 32)
        assert torch.equal(image, to_float(cifar.test_images[i])), f"CIFAR-10 image {i} differs"
        assert label == int(cifar.test_labels[i])


def test_aelab_stream_drops_the_odd_last_batch_only_when_asked(monkeypatch):
    monkeypatch.setattr(pipelines, "load_dataset", lambda name: fake_mnist(10, 2))
    spec = standin_spec(conv=True)
    stream = pipelines.aelab_stream(spec, CPU, batch_size=4)
    assert [len(next(stream)[0]) for _ in range(3)] == [4, 4, 2]
    kept = pipelines.aelab_stream(spec, CPU, batch_size=4, drop_partial=True)
    assert [len(next(kept)[0]) for _ in range(3)] == [4, 4, 4]


def test_the_host_row_copies_uint8_from_pinned_buffers_without_blocking_and_converts_on_the_device(monkeypatch):
    """Issue 13, item 5: the "data on the host" row is fair: pinned staging buffers (so that
    non_blocking copies are asynchronous), uint8 over the bus (a quarter of float32's bytes),
    float made on the device. The meta device stands in for a GPU."""
    buffers, copies = [], []
    real_buffer, real_copy = pipelines.staging_buffer, pipelines.to_device

    def buffer(shape, dtype, pin):
        buffers.append((dtype, pin))
        return real_buffer(shape, dtype, False)  # pinning needs a CUDA driver; the request is what counts

    def copy(tensor, device):
        copies.append((tensor.dtype, tensor.device.type, device.type))
        return real_copy(tensor, device)

    monkeypatch.setattr(pipelines, "staging_buffer", buffer)
    monkeypatch.setattr(pipelines, "to_device", copy)
    data = fake_mnist(10, 2)
    stream = pipelines.host_batches(data.train_images, data.train_labels, torch.device("meta"), batch_size=4,
                                    flatten=True, pin=True)
    x, y = next(stream)
    assert x.device.type == "meta" and x.dtype == torch.float32 and x.shape == (4, 784)
    assert buffers == [(torch.uint8, True), (torch.int64, True)] * 2, "two pinned buffers, images and labels"
    assert copies[0] == (torch.uint8, "cpu", "meta"), "uint8 crosses the bus; float is made on the device"
    assert y.device.type == "meta"
    # The default: pinned for a CUDA device, not for the CPU.
    buffers.clear()
    next(pipelines.host_batches(data.train_images, data.train_labels, CPU, batch_size=4))
    assert {pin for _, pin in buffers} == {False}
    # non_blocking is asked for.
    seen = {}
    monkeypatch.setattr(pipelines, "to_device", real_copy)
    monkeypatch.setattr(Tensor, "to", lambda self, *a, **k: seen.update(k) or self)
    real_copy(torch.zeros(1), CPU)
    assert seen.get("non_blocking") is True


def test_host_batches_serve_the_shuffled_images_and_keep_earlier_batches_intact():
    data = fake_mnist(10, 2)
    stream = pipelines.host_batches(data.train_images, data.train_labels, CPU, batch_size=4, seed=3)
    batches = [next(stream) for _ in range(4)]  # the two buffers are refilled in turn
    order = torch.randperm(10, generator=torch.Generator().manual_seed(3))
    for (x, y), index in zip(batches[:3], (order[:4], order[4:8], order[8:])):
        assert torch.equal(x, to_float(data.train_images[index])) and torch.equal(y, data.train_labels[index])


# --- the models come from the labs' sources ----------------------------------------------------

def test_a_lab_without_a_needed_name_says_which_one_and_where(monkeypatch):
    from aelab_course import runner

    models.lab_definitions.cache_clear()
    try:
        monkeypatch.setattr(runner, "definitions", lambda lab, **g: types.SimpleNamespace(ConvEncoder=object))
        with pytest.raises(LabNotReady, match=r"lab03: solutions/lab03_conv\.py defines no ConvDecoder, "
                                              r"ConvAutoencoder.*AUTHORING"):
            models.lab_definitions("lab03")
        assert "ConvDecoder" in models.lab_ready("lab03")

        def broken(lab, **g):
            raise ImportError("cannot import name 'x' from 'aelab'")

        models.lab_definitions.cache_clear()
        monkeypatch.setattr(runner, "definitions", broken)
        with pytest.raises(LabNotReady, match=r"lab04: the definitions of solutions/lab04_vae\.py do not load "
                                              r"\(ImportError: cannot import name 'x'"):
            models.lab_definitions("lab04")
        # Lab 05's loss reads DATA_VARIANCE, which the lab computes from the data: the benchmark sets it.
        got = {}
        models.lab_definitions.cache_clear()
        monkeypatch.setattr(runner, "definitions", lambda lab, **g: got.update(g) or types.SimpleNamespace())
        with pytest.raises(LabNotReady):
            models.lab_definitions("lab05")
        assert got == {"DATA_VARIANCE": models.CIFAR10_VARIANCE}
        # A default argument naming a lab's setting (which definitions leave out) gets a stand-in
        # that fails loudly when used.
        calls = []

        def needs_epochs(lab, **g):
            calls.append(dict(g))
            if "EPOCHS" not in g:
                raise NameError("name 'EPOCHS' is not defined", name="EPOCHS")
            return types.SimpleNamespace(VAE=TinyVAE, vae_loss=lambda *a: a)

        models.lab_definitions.cache_clear()
        monkeypatch.setattr(runner, "definitions", needs_epochs)
        assert models.lab_definitions("lab04").VAE is TinyVAE
        unset = calls[-1]["EPOCHS"]
        assert isinstance(unset, models.Unset) and "EPOCHS of lab04_vae.py" in repr(unset)
        with pytest.raises(RuntimeError, match="pass that argument explicitly"):
            range(unset)
    finally:
        models.lab_definitions.cache_clear()


@pytest.mark.parametrize("lab", models.BENCH_LABS)
@pytest.mark.parametrize("budget", ["quick", "full"])
def test_each_lab_model_takes_a_training_step_of_the_benchmark(lab, budget):
    spec = lab_spec_or_skip(lab, budget)
    torch.manual_seed(0)
    trainer = Trainer(spec, CPU, lr=spec.lr)
    shape = (2, 784) if spec.flatten else ((2, 1, 28, 28) if spec.dataset == "MNIST" else (2, 3, 32, 32))
    before = [p.detach().clone() for p in trainer.model.parameters()]
    loss = trainer.step(torch.rand(shape), torch.zeros(2, dtype=torch.long))
    assert loss.dim() == 0 and math.isfinite(float(loss))
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))


def test_lab02_spec_is_the_lab_and_the_notes_spec_is_the_notes():
    spec = lab_spec_or_skip("lab02")
    notes = models.notes_lab02_spec()
    lab_model, notes_model = spec.make_model(), notes.make_model()
    assert _dropout(lab_model) in ([0.0, 0.0], []) and "no dropout" in spec.model
    assert set(_dropout(notes_model)) == {0.2} and "dropout 0.2" in notes.model
    assert (spec.batch_size, spec.lr, spec.flatten) == (notes.batch_size, notes.lr, notes.flatten) == (64, 1e-3, True)
    # The lab: Adam, fused; the notes (and the lab's ablation row): torch's default Adam, not fused.
    assert spec.make_optimizer(lab_model, 1e-3).defaults["fused"] is True
    for optimizer in (notes.make_optimizer(notes_model, 1e-3), spec.notes_optimizer(lab_model, 1e-3)):
        assert type(optimizer) is torch.optim.Adam and not optimizer.defaults["fused"]


def _dropout(model: nn.Module) -> list[float]:
    return [m.p for m in model.modules() if isinstance(m, nn.Dropout)]


def test_the_trainer_takes_the_notes_optimizer_only_when_asked():
    spec = standin_spec()
    assert Trainer(spec, CPU, lr=1e-3).optimizer.defaults["fused"] is True
    ablation = Trainer(spec, CPU, lr=1e-3, notes_optimizer=True)
    assert not ablation.optimizer.defaults["fused"]
    assert math.isfinite(float(ablation.step(torch.rand(8, 784))))
    conv = standin_spec(conv=True)
    assert conv.notes_optimizer is None
    assert Trainer(conv, CPU, lr=1e-3, notes_optimizer=True).optimizer.defaults["lr"] == 1e-3


def test_lab05s_optimizer_gives_the_codebook_a_ten_times_larger_step():
    model = TinyVQ()
    groups = models.vqvae_adam(model, 1e-3).param_groups
    assert [g["lr"] for g in groups] == [1e-3, 1e-2]
    assert groups[1]["params"] == [model.codebook.weight]
    assert len(models.vqvae_adam(TinyAE(), 1e-3).param_groups) == 1, "no codebook: one group"


def test_the_vae_step_computes_the_labs_loss_from_logits_in_float32_without_autocast():
    """Issue 13, BCE on CUDA: lab 04's vae_loss takes logits (binary cross-entropy with logits);
    the step hands it float32 tensors with autocast off, also under mixed precision."""
    seen = []

    def vae_loss(logits, x, mu, logvar, beta=1.0):
        seen.append((logits.dtype, torch.is_autocast_enabled("cpu"), beta))
        recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / len(x)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1).mean()
        return recon + kl, recon, kl

    spec = LabSpec("lab04", "MNIST", True, False, 8, 1e-3, "stand-in VAE", TinyVAE, models.vae_step_loss(vae_loss))
    trainer = Trainer(spec, CPU, lr=1e-3, amp=True, amp_choice="bf16")
    loss = trainer.step(torch.rand(4, 784))
    assert math.isfinite(float(loss)) and loss.dtype == torch.float32
    assert seen == [(torch.float32, False, 1.0)]


def test_no_bench_loss_uses_binary_cross_entropy_on_probabilities():
    """F.binary_cross_entropy on a probability outside [0, 1] or a NaN is a device-side assert on
    CUDA, which poisons the whole runtime: the benchmark uses the with-logits loss only."""
    for path in BENCH.glob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            assert not re.search(r"binary_cross_entropy\((?!_with_logits)", line) or line.lstrip().startswith("#"), \
                f"{path.name}:{number}: {line.strip()}"


# --- mixed precision ---------------------------------------------------------------------------

@pytest.mark.parametrize("capability, expected", [((7, 5), torch.float16), ((7, 0), torch.float16),
                                                  ((8, 0), torch.bfloat16), ((8, 9), torch.bfloat16),
                                                  ((9, 0), torch.bfloat16)])
def test_auto_mixed_precision_follows_the_compute_capability_not_is_bf16_supported(monkeypatch, capability, expected):
    """Issue 13, item 4: a T4 (sm75) says is_bf16_supported() (emulated): it gets fp16 with a
    gradient scaler; sm80 and newer get bf16."""
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    cuda = torch.device("cuda")
    assert measure.amp_dtype(cuda) == expected
    assert measure.amp_dtype(cuda, "bf16") == torch.bfloat16 and measure.amp_dtype(cuda, "fp16") == torch.float16
    words = measure.amp_words(cuda, measure.amp_dtype(cuda))
    assert ("gradient scaler" in words) == (expected == torch.float16)
    if capability < (8, 0):
        assert "emulated" in measure.amp_words(cuda, torch.bfloat16), "bf16 forced on a T4 says what it costs"
    assert measure.amp_dtype(CPU) == torch.bfloat16
    with pytest.raises(ValueError):
        measure.amp_dtype(cuda, "fp8")


def test_fp16_trains_with_a_gradient_scaler_and_bf16_without():
    spec = standin_spec(conv=True)
    fp16 = Trainer(spec, CPU, lr=1e-3, amp=True, amp_choice="fp16")
    assert fp16.dtype == torch.float16 and isinstance(fp16.scaler, torch.amp.GradScaler)
    assert math.isfinite(float(fp16.step(torch.rand(4, 1, 28, 28))))
    bf16 = Trainer(spec, CPU, lr=1e-3, amp=True, amp_choice="bf16")
    assert bf16.dtype == torch.bfloat16 and bf16.scaler is None


def test_channels_last_and_mixed_precision_train_a_conv_model_on_a_cpu():
    torch.manual_seed(0)
    trainer = Trainer(standin_spec(conv=True), CPU, lr=1e-3, channels_last=True, amp=True, amp_choice="bf16")
    conv = next(m for m in trainer.model.modules() if isinstance(m, nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    loss = trainer.step(torch.rand(8, 1, 28, 28))
    assert loss.dtype == torch.float32 and math.isfinite(float(loss))
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))


# --- torch.compile: every shape and mode compiled before the clock -----------------------------

def test_the_warm_up_compiles_every_shape_and_mode_so_nothing_compiles_while_timed():
    """Issue 13, item 6: the last, odd-sized batch and the switch to eval mode each compile a new
    graph. After `warm_up` with those shapes and modes, training and evaluating on them compile
    nothing (Dynamo's graph counter stays put); without it they do, which the counter sees."""
    spec = standin_spec(conv=True)
    example = torch.rand(1, 1, 28, 28)

    def epoch(trainer):
        for size in (8, 8, 3):  # an epoch of 19 images at batch 8
            trainer.step(torch.rand(size, 1, 28, 28))
        trainer.model.eval()
        trainer.evaluate_forward(torch.rand(5, 1, 28, 28))
        trainer.model.train()

    torch.manual_seed(0)
    cold = Trainer(spec, CPU, lr=1e-3, compile=True, compile_backend="eager")
    before = measure.compiled_graphs()
    epoch(cold)
    assert measure.compiled_graphs() - before >= 3, "the counter sees each shape and mode compile"

    torch.manual_seed(0)
    warm = Trainer(spec, CPU, lr=1e-3, compile=True, compile_backend="eager")
    state = {k: v.clone() for k, v in warm.model.state_dict().items()}
    rng = torch.get_rng_state()
    warm.warm_up(example, measure.sizes_of_epoch(19, 8), measure.sizes_of_epoch(5, 1000))
    # The warm-up leaves the model, the optimizer and the generator as they were.
    assert all(torch.equal(state[k], v) for k, v in warm.model.state_dict().items())
    assert not warm.optimizer.state and torch.equal(rng, torch.get_rng_state()) and warm.model.training
    before = measure.compiled_graphs()
    epoch(warm)
    epoch(warm)
    assert measure.compiled_graphs() == before, "nothing compiled after the warm-up"


def test_a_compiled_throughput_row_drops_the_odd_batch_and_compiles_nothing_while_timed(monkeypatch):
    monkeypatch.setattr(pipelines, "load_dataset", lambda name: fake_mnist(20, 4))
    variant = measure.Variant("+ torch.compile", compile=True, technique="compile")
    row = measure.measure_throughput(standin_spec(conv=True), variant, CPU, steps=6, warmup=1,
                                     compile_backend="eager")
    assert row["status"] == "ok" and row["recompiled"] == 0, row
    assert "no recompilation while timed" in row["note"] and "last partial batch dropped" in row["note"]
    assert row["images"] == 6 * 8, "every timed batch full (20 images at batch 8: the 4 left over are dropped)"


def test_sizes_of_an_epoch():
    assert measure.sizes_of_epoch(60_000, 64) == [64, 32]
    assert measure.sizes_of_epoch(10_000, 1000) == [1000]
    assert measure.sizes_of_epoch(60_000, 64, drop_partial=True) == [64]
    assert measure.sizes_of_epoch(5, 1000) == [5]


# --- the rows ----------------------------------------------------------------------------------

def test_rows_say_why_they_did_not_run_on_a_cpu():
    fc, conv = standin_spec(), standin_spec(conv=True)
    rows = {v.technique or v.name: v for v in measure.throughput_variants(fc)}
    opts = {"techniques_on_cpu": False}
    assert measure.not_here(rows["channels_last"], fc, CPU, opts) == "n/a: no convolutions"
    for technique in ("data_on_gpu", "amp", "compile", "all"):
        assert measure.not_here(rows[technique], conv, CPU, opts) == NEEDS_GPU
    assert measure.not_here(rows["big_batch"], conv, CPU, opts) == ""
    # Lab 02's not-fused Adam row is measured on a CPU too.
    assert rows["fused_adam"].name == NOT_FUSED_ROW and rows["fused_adam"].notes_optimizer
    assert measure.not_here(rows["fused_adam"], fc, CPU, opts) == ""
    assert "pinned" in rows["data_on_gpu"].name and not rows["data_on_gpu"].data_on_device
    # A big batch times about as many images as the lab's default row, not 16 times as many.
    assert measure.timed_steps(150, 1024, 64) == 10 and measure.timed_steps(150, 64, 64) == 150


def test_the_not_fused_row_is_lab02s_only_and_switchable():
    opts = {"techniques": list(TECHNIQUES), "big_batch": 1024, "num_workers_row": False}
    names = [v.name for v in measure.selected_variants(standin_spec(), opts)]
    assert names.index(NOT_FUSED_ROW) == names.index("aelab (lab default)") + 1
    assert not any(v.notes_optimizer for v in measure.selected_variants(standin_spec(conv=True), opts))
    without = {**opts, "techniques": [t for t in TECHNIQUES if t != "fused_adam"]}
    assert NOT_FUSED_ROW not in [v.name for v in measure.selected_variants(standin_spec(), without)]
    assert "fused_adam" in cli.options(cli.parse_args(["--device", "cpu"]))["techniques"], "on by default"


def test_a_lab_that_is_not_ready_is_one_failed_row_that_says_why(monkeypatch):
    def not_ready(lab, budget):
        raise LabNotReady("lab03: solutions/lab03_conv.py defines no ConvDecoder")

    monkeypatch.setattr(measure, "lab_spec", not_ready)
    rows = measure.run_throughput("lab03", CPU, {"techniques": [], "big_batch": 64, "num_workers_row": False})
    assert rows == [{"part": "throughput", "lab": "lab03", "variant": "(the whole lab)",
                     "status": "failed: lab03: solutions/lab03_conv.py defines no ConvDecoder"}]


def test_throughput_rows_of_a_stand_in_lab(monkeypatch):
    monkeypatch.setattr(pipelines, "load_dataset", lambda name: fake_mnist(64, 8))
    monkeypatch.setattr(measure, "lab_spec", lambda lab, budget: standin_spec())
    # measure imports classic_stream by name: the stand-in goes where it is looked up (no MNIST read)
    monkeypatch.setattr(measure, "classic_stream", lambda spec, device, **k: pipelines.aelab_stream(
        spec, device, batch_size=k.get("batch_size", 64)))
    opts = {"techniques": ["data_on_gpu", "big_batch", "fused_adam"], "big_batch": 16, "num_workers_row": False, "steps": 3,
            "warmup": 1, "amp_dtype": "auto", "compile_mode": "default", "passes": 1}
    rows = {r["variant"]: r for r in measure.run_throughput("lab02", CPU, opts)}
    assert rows["classic: DataLoader + ToTensor"]["ratio"] == 1.0
    assert rows["aelab (lab default)"]["status"] == "ok" and rows["aelab (lab default)"]["batch_size"] == 8
    assert "the lab's fused Adam" in rows[NOT_FUSED_ROW]["note"]
    assert rows["aelab, data on the host (pinned, non_blocking)"]["status"] == NEEDS_GPU


# --- threads, steps, passes --------------------------------------------------------------------

def test_threads_every_core_for_throughput_one_a_run_side_by_side_and_one_for_grading():
    assert measure.thread_counts(None, 2, True) == {"throughput": 2, "quality": 1, "grading": 1}
    assert measure.thread_counts(None, 8, False) == {"throughput": 8, "quality": 8, "grading": 1}
    assert measure.thread_counts(3, 8, True) == {"throughput": 3, "quality": 3, "grading": 3}


def test_options_take_the_cores_unless_told(monkeypatch):
    import os

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    opts = cli.options(cli.parse_args(["--device", "cpu"]))
    assert opts["quality_side_by_side"] and opts["threads"] == {"throughput": 6, "quality": 1, "grading": 1}
    opts = cli.options(cli.parse_args(["--device", "cpu", "--no-quality-side-by-side"]))
    assert opts["threads"] == {"throughput": 6, "quality": 6, "grading": 1}
    assert set(cli.options(cli.parse_args(["--device", "cpu", "--threads", "3"]))["threads"].values()) == {3}
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert set(cli.options(cli.parse_args(["--device", "cpu"]))["threads"].values()) == {2}
    assert set(cli.options(cli.parse_args(["--device", "cpu", "--threads", "4"]))["threads"].values()) == {4}


def test_cheap_labs_time_more_steps_on_a_cpu_unless_told():
    gpu = torch.device("cuda")
    assert cli.options(cli.parse_args(["--device", "cpu"]))["steps"] is None  # per lab, below
    assert cli.options(cli.parse_args(["--device", "cpu", "--steps", "7"]))["steps"] == 7
    assert measure.default_steps("lab02", CPU) >= 4 * measure.default_steps("lab03", CPU)
    assert measure.default_steps("lab04", CPU) >= 2 * measure.default_steps("lab05", CPU)
    assert {measure.default_steps(lab, gpu) for lab in measure.THROUGHPUT_LABS} == {500}


def test_a_row_keeps_its_median_pass_and_its_largest_memory():
    def row(rate, rss):
        return {"variant": "aelab", "status": "ok", "images_per_s": rate, "peak_rss_mb": rss, "note": "windows"}

    kept = measure.median_pass([row(38_000, 700), row(24_000, 800), row(40_000, 750)])  # one slow spell
    assert kept["images_per_s"] == 38_000 and kept["peak_rss_mb"] == 800
    assert kept["note"].startswith("median of 3 passes (38,000, 24,000, 40,000/s)") and "windows" in kept["note"]
    assert measure.median_pass([row(10, 1), row(30, 1)])["images_per_s"] == 10  # even count: the lower middle
    single = row(5, 1)
    assert measure.median_pass([single]) == single
    skipped = {"variant": "aelab", "status": NEEDS_GPU}
    assert measure.median_pass([skipped]) == skipped
    assert measure.default_passes("lab02", CPU) > 1 == measure.default_passes("lab02", torch.device("cuda"))


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
    rows = quality.quality_rows([notes, lab, slow], side_by_side=False)
    by_name = {r["variant"]: r for r in rows}
    assert by_name["notes"]["final_test_mse"] == 0.019 and by_name["notes"]["seconds"] == 40.0
    assert by_name["notes"]["note"].startswith("dropout 0.2, Adam, not fused")
    assert by_name["lab default: aelab"]["note"] == "no dropout, Adam, fused; stopped at the target"
    own = next(r for r in rows if r["variant"].startswith("course notes' run"))
    assert (own["epochs"], own["seconds"], own["ratio"]) == (2, 20.0, 2.0)
    lab_row = by_name["lab default: aelab"]
    assert (lab_row["epochs"], lab_row["seconds"], lab_row["final_test_mse"], lab_row["ratio"]) == (2, 4.0, 0.0185, 10.0)
    quoted = next(r for r in rows if str(quality.QUOTED_MSE) in r["variant"])
    assert (quoted["epochs"], quoted["seconds"], quoted["ratio"]) == (3, 6.0, round(40 / 6, 2))
    assert by_name["big batch"]["status"] == "target not reached in 2 epochs" and "ratio" not in by_name["big batch"]
    assert "4-epoch wall time" in quoted["note"], "the notes' epochs, as run"
    side = quality.quality_rows([dict(notes, curve=list(notes_curve)), dict(lab, curve=list(lab_curve))],
                                side_by_side=True)
    assert quality.SIDE_BY_SIDE in next(r for r in side if r["variant"] == "lab default: aelab")["note"]


def test_quality_runs_name_what_they_train():
    opts = {"big_batch": 1024, "techniques": list(TECHNIQUES), "quality_epochs": 30, "quality_cap": 40}
    runs = quality.quality_variants(CPU, opts)
    notes, lab = runs[0], runs[1]
    assert notes["kind"] == "notes" and "dropout 0.2" in notes["name"] and "plain Adam" in notes["name"]
    assert notes["max_epochs"] == 30 and not notes["skip"]
    assert lab["kind"] == "aelab" and lab["name"] == quality.LAB_DEFAULT_RUN and not lab["skip"]
    assert "no dropout" in lab["name"] and "fused Adam" in lab["name"]
    assert len(runs) > 2 and all(r["kind"] == "aelab" and r["skip"] == NEEDS_GPU for r in runs[2:])


def test_quality_runs_train_both_pipelines_on_a_few_images(real_data):
    lab_spec_or_skip("lab02")
    notes = quality.quality_run("notes", CPU, max_epochs=2, limit=256)
    lab = quality.quality_run("aelab", CPU, max_epochs=3, limit=256, target=1.0)
    # Read off the model and optimizer each run trained: the notes' (dropout 0.2, plain Adam), the lab's.
    assert (notes["fused"], notes["setup"]) == (False, "dropout 0.2, Adam, not fused")
    assert (lab["fused"], lab["setup"]) == (True, "no dropout, Adam, fused")
    assert len(notes["curve"]) == 2 and all(0 < mse < 0.5 for _, mse in notes["curve"])
    assert len(lab["curve"]) == 1, "a run stops at the first epoch that reaches its target"
    # Compiled: every shape (256 at batch 64, and the 256 test images at batch 1000) up front.
    compiled = quality.quality_run("aelab", CPU, max_epochs=2, limit=200, batch_size=64, compile=True,
                                   compile_backend="eager")
    assert compiled["recompiled"] == 0 and "no recompilation after that" in compiled["setup"]


# --- the files ---------------------------------------------------------------------------------

def test_a_tiny_run_writes_both_files_with_every_column(real_data, tmp_path, monkeypatch):
    import os

    lab_spec_or_skip("lab02")
    monkeypatch.setenv("AELAB_PROGRESS", "0")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 3)  # throughput: every core, as this process counts them
    status = cli.main(["--only", "throughput", "--labs", "lab02", "--steps", "3", "--warmup", "1", "--passes", "1",
                       "--techniques", "big_batch,fused_adam", "--big-batch", "128", "--no-workers-row",
                       "--out", str(tmp_path), "--device", "cpu"])
    assert status == 0
    with (tmp_path / "bench.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == report.COLUMNS
        rows = list(reader)
    by_variant = {r["variant"]: r for r in rows}
    classic = by_variant["classic: DataLoader + ToTensor"]
    aelab_row = by_variant["aelab (lab default)"]
    not_fused = by_variant[NOT_FUSED_ROW]
    for row in (classic, aelab_row, not_fused):
        assert row["status"] == "ok" and row["part"] == "throughput" and row["lab"] == "lab02"
        assert float(row["images_per_s"]) > 0 and float(row["epoch_s"]) > 0 and row["steps"] == "3"
        assert row["device"] == "cpu" and row["machine"].startswith("CPU: ")
        assert row["threads"] == "3", "the job's own torch.get_num_threads()"
    assert "Adam, not fused" in not_fused["note"]
    gain = float(aelab_row["images_per_s"]) / float(not_fused["images_per_s"])
    assert f"the lab's fused Adam: {gain:.2f}× this" in not_fused["note"]
    assert float(classic["ratio"]) == 1.0
    assert any(r["status"] == NEEDS_GPU for r in rows), "GPU rows must say they were skipped"
    md = (tmp_path / "bench.md").read_text()
    assert "### Training throughput" in md and classic["machine"] in md and "skipped: needs a GPU" in md
    assert "CPU threads: throughput: 3 thread(s)." in md and "python -m aelab_course.bench" in md


def test_markdown_merge_replaces_this_machines_section_and_keeps_the_others():
    gpu = "<!-- bench section: GPU: NVIDIA H100 -->\n## GPU: NVIDIA H100\n\n| the GPU run |\n<!-- end of bench section -->\n"
    old_cpu = "<!-- bench section: CPU: X, 2 cores -->\n## CPU: X\n\nold numbers\n<!-- end of bench section -->\n"
    existing = report.PREAMBLE + "\n" + old_cpu + "\n" + gpu
    merged = report.merge_markdown(existing, "CPU: X, 2 cores", "## CPU: X\n\nnew numbers\n")
    assert "| the GPU run |" in merged and "## GPU: NVIDIA H100" in merged
    assert "new numbers" in merged and "old numbers" not in merged
    assert merged.count("# aelab benchmarks") == 1
    assert merged.index("CPU: X") < merged.index("GPU: NVIDIA H100"), "sections keep their order"
    again = report.merge_markdown(merged, "GPU: NVIDIA H100", "## GPU: NVIDIA H100\n\nnewer GPU run\n")
    assert "newer GPU run" in again and "new numbers" in again and "| the GPU run |" not in again


def test_csv_merge_keeps_other_machines_and_parts(tmp_path):
    path = tmp_path / "bench.csv"
    report.merge_csv(path, "GPU: H100", [{"part": "throughput", "lab": "lab02", "machine": "GPU: H100", "ratio": 30}])
    report.merge_csv(path, "CPU: X", [{"part": "throughput", "lab": "lab02", "machine": "CPU: X", "ratio": 3},
                                      {"part": "grading", "lab": "lab02", "machine": "CPU: X", "seconds": 40}])
    merged = report.merge_csv(path, "CPU: X", [{"part": "throughput", "lab": "lab02", "machine": "CPU: X",
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
            {**common, "part": "quality", "lab": "lab02", "variant": quality.LAB_DEFAULT_RUN, "ratio": 2.0,
             "status": "ok", "note": "no dropout, Adam, fused; " + quality.SIDE_BY_SIDE},
            {**common, "part": "grading", "lab": "lab01_pca", "seconds": 40.0, "status": "ok"}]
    text = report.render_section(rows, info)
    assert text.startswith("## CPU: X, 2 cores") and "torch 2.x" in text
    assert ("CPU threads: throughput: 2 thread(s); time to quality: 1 thread per run, side by side; "
            "grading: 1 thread(s).") in text
    assert "The lab's defaults: 2.0× (not met)." in text
    assert "aelab at the lab's defaults: 4.0× (met)" in text
    assert "| lab01_pca | 40 |" in text
    assert report.lab02_target(rows, gpu=True) == {"target": 20.0, "ratio": 4.0, "met": False,
                                                   "best_variant": "aelab (lab default)", "best_ratio": 4.0}
    assert report.lab02_target(rows[2:], gpu=False) == {}
