"""Benchmarks: how fast the labs train and grade, against the way the course notes do it.

``make bench`` (``python -m aelab.bench``) makes one run on whatever machine it is on and writes
``build/bench.csv`` (one row per measurement) and ``build/bench.md`` (the tables). Three parts:

``throughput``  labs 02-05: images per second and epoch time of aelab's in-memory batching
                (``ImageDataset.batches``) against the classic pipeline of the course notes (a
                torchvision Dataset with ``ToTensor`` and a ``DataLoader`` at batch 64), on the
                same model (the lab's) with the same optimizer for the same number of optimizer
                steps; for lab 02 also the lab's model with the notes' optimizer (Adam not fused),
                on a CPU too; on a GPU also each speed-up technique (data on the GPU, big batch
                with a scaled learning rate, channels_last, mixed precision, torch.compile)
                switched on alone, and all together.
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
import contextlib
import csv
import datetime as _dt
import gc
import json
import math
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

PARTS = ("throughput", "quality", "grading")
THROUGHPUT_LABS = ("lab02", "lab03", "lab04", "lab05")
TECHNIQUES = ("data_on_gpu", "big_batch", "channels_last", "amp", "compile", "fused_adam")
CLASSIC_BATCH = 64          # the course notes' DataLoader batch size
NOTES_EPOCHS = 30           # the course notes' number of epochs (lab 02)
FULL_TRAIN_SIZE = {"MNIST": 60_000, "CIFAR-10": 50_000}
CIFAR10_VARIANCE = 0.0633   # lab 05 computes it from the data (train_variance); it scales the loss, not the time
NEEDS_GPU = "skipped: needs a GPU"
TARGETS = {"throughput_cpu": 3.0, "throughput_gpu": 20.0, "quality": 10.0}

COLUMNS = ["part", "lab", "variant", "device", "machine", "budget", "batch_size", "lr", "steps", "images",
           "seconds", "images_per_s", "epoch_s", "ratio", "warmup_s", "epochs", "final_test_mse", "target_mse",
           "cpu_share", "peak_rss_mb", "base_rss_mb", "cuda_max_alloc_mb", "status", "note", "threads", "torch", "run"]


# =============================================================================================
# The labs' models. Lab 02's lives in aelab.zoo; labs 03-05 define theirs in the solution cells,
# so these are benchmark-only copies of the reference answers (same layers, same defaults).

class ConvAutoencoder(nn.Module):
    """Lab 03's resize-convolution autoencoder: 28 -> 14 -> 7 -> latent -> 7 -> 14 -> 28."""

    def __init__(self, latent_dim: int = 32, channels: tuple[int, int] = (16, 32)):
        super().__init__()
        c1, c2 = channels
        self.encoder = nn.Sequential(
            nn.Conv2d(1, c1, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(c1, c2, 3, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(), nn.Linear(c2 * 7 * 7, latent_dim))
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, c2 * 7 * 7), nn.ReLU(), nn.Unflatten(1, (c2, 7, 7)),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c2, c1, 3, padding=1), nn.ReLU(),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c1, 1, 3, padding=1), nn.Sigmoid())

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        z = self.encoder(x)
        return self.decoder(z), z


class VAE(nn.Module):
    """Lab 04's fully connected VAE (hidden (400,) at the quick budget, (512, 512) at the full one)."""

    def __init__(self, latent_dim: int = 20, hidden: tuple[int, ...] = (400,), input_dim: int = 784):
        super().__init__()
        from .generative import mlp

        self.encoder = mlp([input_dim, *hidden])
        self.mu_head = nn.Linear(hidden[-1], latent_dim)
        self.logvar_head = nn.Linear(hidden[-1], latent_dim)
        self.decoder = nn.Sequential(mlp([latent_dim, *reversed(hidden)]), nn.Linear(hidden[0], input_dim),
                                     nn.Sigmoid())

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        h = self.encoder(x)
        mu, logvar = self.mu_head(h), self.logvar_head(h)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        return self.decoder(z), mu, logvar


class _ResidualBlock(nn.Module):
    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.block = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, hidden, 3, padding=1),
                                   nn.ReLU(), nn.Conv2d(hidden, channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x)


class _VectorQuantizer(nn.Module):
    def __init__(self, num_codes: int, code_dim: int, beta: float = 0.25):
        super().__init__()
        self.beta = beta
        self.codebook = nn.Embedding(num_codes, code_dim)
        nn.init.uniform_(self.codebook.weight, -1 / num_codes, 1 / num_codes)

    def forward(self, z_e: Tensor):
        # The nearest-code search stays in float32 under mixed precision: in bf16 the distances
        # ||z||^2 - 2 z.e + ||e||^2 of nearby codes round to the same value and the argmin drifts.
        with torch.autocast(z_e.device.type, enabled=False):
            z_e = z_e.float()
            B, D, H, W = z_e.shape
            flat = z_e.permute(0, 2, 3, 1).reshape(-1, D).detach()
            weight = self.codebook.weight
            distances = (flat ** 2).sum(1, keepdim=True) - 2 * flat @ weight.t() + (weight ** 2).sum(1)
            codes = distances.argmin(dim=1)
            e = self.codebook(codes).view(B, H, W, D).permute(0, 3, 1, 2)
            codebook_loss = F.mse_loss(e, z_e.detach())
            commitment_loss = self.beta * F.mse_loss(z_e, e.detach())
            z_q = z_e + (e - z_e).detach()
        return z_q, codes.view(B, H, W), codebook_loss, commitment_loss


class VQVAE(nn.Module):
    """Lab 05's VQ-VAE: strided 4x4 convolutions 32 -> 8, residual blocks, K codes, and back."""

    def __init__(self, num_codes: int = 512, code_dim: int = 64, hidden: int = 128, num_residual: int = 2):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(3, hidden // 2, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(hidden // 2, hidden, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(hidden, hidden, 3, padding=1),
            *[_ResidualBlock(hidden, hidden // 2) for _ in range(num_residual)], nn.ReLU(),
            nn.Conv2d(hidden, code_dim, 1))
        self.quantizer = _VectorQuantizer(num_codes, code_dim)
        self.decoder = nn.Sequential(
            nn.Conv2d(code_dim, hidden, 3, padding=1),
            *[_ResidualBlock(hidden, hidden // 2) for _ in range(num_residual)], nn.ReLU(),
            nn.ConvTranspose2d(hidden, hidden // 2, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(hidden // 2, 3, 4, stride=2, padding=1))

    def forward(self, x: Tensor):
        z_q, codes, codebook_loss, commitment_loss = self.quantizer(self.encoder(x))
        return self.decoder(z_q), codes, codebook_loss, commitment_loss


# Losses take the model's output and the input batch. They compute in float32 outside autocast
# (binary_cross_entropy refuses to run under autocast).

def _mse_loss(output, x: Tensor) -> Tensor:
    return F.mse_loss(output[0].float(), x.float())


def _vae_loss(output, x: Tensor) -> Tensor:
    recon, mu, logvar = (t.float() for t in output)
    bce = F.binary_cross_entropy(recon, x.float(), reduction="sum") / len(x)
    kl = 0.5 * torch.sum(mu.pow(2) + logvar.exp() - 1.0 - logvar, dim=1).mean()
    return bce + kl


def _vqvae_loss(output, x: Tensor) -> Tensor:
    recon, _, codebook_loss, commitment_loss = output
    return F.mse_loss(recon.float(), x.float()) / CIFAR10_VARIANCE + codebook_loss + commitment_loss


def _adam(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    """Plain Adam, torch's default implementation (for-each on a GPU, one tensor at a time on a
    CPU): the course notes' optimizer."""
    return torch.optim.Adam(model.parameters(), lr=lr)


def _fused_adam(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    """Lab 02's optimizer: Adam with the fused implementation (one kernel for all the parameters)."""
    return torch.optim.Adam(model.parameters(), lr=lr, fused=True)


def _vqvae_adam(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    """Lab 05's optimizer: Adam, with a 10x larger step for the codebook."""
    codebook = [p for name, p in model.named_parameters() if name.startswith("quantizer.")]
    others = [p for name, p in model.named_parameters() if not name.startswith("quantizer.")]
    return torch.optim.Adam([{"params": others}, {"params": codebook, "lr": 10 * lr}], lr=lr)


@dataclass(frozen=True)
class LabSpec:
    """One lab's model and default training settings at a budget."""

    lab: str
    dataset: str               # "MNIST" or "CIFAR-10"
    flatten: bool              # the model takes (N, 784) rows
    conv: bool                 # the model has convolutions (channels_last applies)
    batch_size: int            # the lab's default batch size
    lr: float                  # the lab's default learning rate (Adam)
    model: str                 # in words
    make_model: Callable[[], nn.Module]
    loss: Callable[[object, Tensor], Tensor]
    make_optimizer: Callable[[nn.Module, float], torch.optim.Optimizer] = _adam
    # The course notes' optimizer where it is not the lab's (lab 02: Adam not fused); it gets a
    # throughput row of its own, the "fused_adam" technique switched off.
    notes_optimizer: Callable[[nn.Module, float], torch.optim.Optimizer] | None = None


def lab_specs(budget: str = "quick") -> dict[str, LabSpec]:
    """The model and default batch size and learning rate of labs 02-05 at `budget`, as in solutions/."""
    from .zoo import ClassicAutoencoder

    quick = budget == "quick"
    hidden = (400,) if quick else (512, 512)
    vq = (dict(hidden=32, num_residual=1, code_dim=16, batch_size=64, lr=2e-3) if quick
          else dict(hidden=128, num_residual=2, code_dim=64, batch_size=128, lr=1e-3))
    return {
        # Always name the dropout: ClassicAutoencoder's default is not the benchmark's business.
        "lab02": LabSpec("lab02", "MNIST", True, False, 64, 1e-3, "fully connected AE 784-98-32-196-784, no dropout",
                         lambda: ClassicAutoencoder(32, dropout=0.0), _mse_loss, _fused_adam, notes_optimizer=_adam),
        "lab03": LabSpec("lab03", "MNIST", False, True, 64, 3e-3, "conv AE 16-32 maps, resize-conv decoder",
                         lambda: ConvAutoencoder(32, (16, 32)), _mse_loss),
        "lab04": LabSpec("lab04", "MNIST", True, False, 128, 1e-3, f"VAE hidden {hidden}, latent 20",
                         lambda: VAE(20, hidden), _vae_loss),
        "lab05": LabSpec("lab05", "CIFAR-10", False, True, vq["batch_size"], vq["lr"],
                         f"VQ-VAE hidden {vq['hidden']}, {vq['num_residual']} residual, 512 codes of {vq['code_dim']}",
                         lambda: VQVAE(512, vq["code_dim"], vq["hidden"], vq["num_residual"]), _vqvae_loss,
                         _vqvae_adam),
    }


NOTES_DROPOUT = 0.2  # the course notes' lab 02 model


def notes_lab02_spec() -> LabSpec:
    """Lab 02 as the course notes train it: the same layers with dropout 0.2, plain Adam 1e-3
    (not fused), batch 64. The time-to-quality part's bar."""
    from .zoo import ClassicAutoencoder

    return replace(lab_specs("quick")["lab02"], model="fully connected AE 784-98-32-196-784, dropout 0.2",
                   make_model=lambda: ClassicAutoencoder(32, dropout=NOTES_DROPOUT), make_optimizer=_adam,
                   notes_optimizer=None)


# =============================================================================================
# The classic pipeline: a torchvision Dataset that converts one PIL image at a time with ToTensor,
# and a DataLoader that collates them, as the course notes do.

class ClassicCIFAR10(torch.utils.data.Dataset):
    """torchvision's CIFAR10, over the offline ``cifar10_{train,test}.npz`` arrays.

    Like ``torchvision.datasets.CIFAR10`` it holds the images as one uint8 (N, 32, 32, 3) array
    and makes a PIL image of one of them per ``__getitem__``, then applies ``transform``.
    """

    def __init__(self, root: Path, train: bool = True, transform: Callable | None = None):
        with np.load(Path(root) / "cifar10" / f"cifar10_{'train' if train else 'test'}.npz") as npz:
            self.data = np.ascontiguousarray(npz["images"])
            self.targets = npz["labels"].astype(np.int64).tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        from PIL import Image

        img = Image.fromarray(self.data[index])
        if self.transform is not None:
            img = self.transform(img)
        return img, self.targets[index]


def classic_dataset(dataset: str, train: bool = True) -> torch.utils.data.Dataset:
    """The course notes' Dataset: torchvision's MNIST or CIFAR10 with ``transform=ToTensor()``."""
    from torchvision import datasets, transforms

    from .data import data_root, download_allowed

    root = data_root()
    if dataset == "MNIST":
        return datasets.MNIST(str(root), train=train, transform=transforms.ToTensor(), download=download_allowed())
    if dataset == "CIFAR-10":
        if (root / "cifar10" / "cifar10_train.npz").is_file():
            return ClassicCIFAR10(root, train=train, transform=transforms.ToTensor())
        return datasets.CIFAR10(str(root), train=train, transform=transforms.ToTensor(), download=download_allowed())
    raise ValueError(f"unknown data set {dataset!r}")


def load_dataset(dataset: str):
    from .data import load_cifar10, load_mnist

    return load_mnist() if dataset == "MNIST" else load_cifar10()


def classic_stream(spec: LabSpec, device: torch.device, *, batch_size: int = CLASSIC_BATCH, num_workers: int = 0,
                   seed: int = 0, train: bool = True, shuffle: bool = True, epochs: int | None = None
                   ) -> Iterator[tuple[Tensor, Tensor]]:
    """Batches from ``DataLoader(classic_dataset, batch_size, shuffle)``, moved to `device` (and
    flattened for the fully connected labs) one batch at a time, as the notes' loop does.
    Endless unless `epochs` is given."""
    loader = torch.utils.data.DataLoader(classic_dataset(spec.dataset, train), batch_size=batch_size,
                                         shuffle=shuffle, num_workers=num_workers,
                                         generator=torch.Generator().manual_seed(seed))
    epoch = 0
    while epochs is None or epoch < epochs:
        for images, labels in loader:
            images = images.to(device)
            yield (images.view(len(images), -1) if spec.flatten else images), labels.to(device)
        epoch += 1


def aelab_stream(spec: LabSpec, device: torch.device, *, batch_size: int, data_device: torch.device | None = None,
                 seed: int = 0, drop_partial: bool = False) -> Iterator[tuple[Tensor, Tensor]]:
    """Endless batches of aelab's in-memory pipeline: the whole training split as one uint8 tensor
    on `data_device` (default: `device`), each batch a shuffled slice converted to float. With the
    data on the host and the model on a GPU, each batch is copied over as the classic one is."""
    batches = load_dataset(spec.dataset).batches("train", batch_size=batch_size, flatten=spec.flatten,
                                                 device=data_device or device, seed=seed)
    while True:
        for images, labels in batches:
            if drop_partial and len(images) < batch_size:
                continue  # torch.compile would compile again for the odd shape of the last batch
            yield images.to(device, non_blocking=True), labels.to(device, non_blocking=True)


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
    data_on_device: bool = True
    channels_last: bool = False
    amp: bool = False
    compile: bool = False
    notes_optimizer: bool = False    # the course notes' optimizer instead of the lab's (LabSpec.notes_optimizer)
    needs_gpu: bool = False
    conv_only: bool = False
    technique: str = ""              # the technique this row switches on alone ("" for pipelines)


def amp_dtype(device: torch.device, choice: str = "auto") -> torch.dtype:
    if choice == "bf16":
        return torch.bfloat16
    if choice == "fp16":
        return torch.float16
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


class Trainer:
    """Model, optimizer and one training step. The step is the same for every pipeline; the
    switches add channels_last, autocast (bf16, or fp16 with a gradient scaler) and torch.compile."""

    def __init__(self, spec: LabSpec, device: torch.device, *, lr: float, channels_last: bool = False,
                 amp: bool = False, amp_choice: str = "auto", compile: bool = False, compile_mode: str = "default",
                 notes_optimizer: bool = False):
        self.spec, self.device = spec, device
        self.model = spec.make_model().to(device)
        self.channels_last = channels_last and spec.conv
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        make_optimizer = (spec.notes_optimizer or spec.make_optimizer) if notes_optimizer else spec.make_optimizer
        self.optimizer = make_optimizer(self.model, lr)
        self.dtype = amp_dtype(device, amp_choice) if amp else None
        self.scaler = torch.amp.GradScaler(device.type) if self.dtype == torch.float16 else None
        self.forward = torch.compile(self.model, mode=compile_mode) if compile else self.model

    def step(self, x: Tensor) -> Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        autocast = (torch.autocast(self.device.type, dtype=self.dtype) if self.dtype is not None
                    else contextlib.nullcontext())
        with autocast:
            output = self.forward(x)
        loss = self.spec.loss(output, x)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        return loss.detach()


def optimizer_words(optimizer: torch.optim.Optimizer) -> str:
    """The optimizer in words, read off the object: "Adam, fused" or "Adam, not fused"."""
    fused = bool(optimizer.defaults.get("fused"))
    return f"{type(optimizer).__name__}, {'fused' if fused else 'not fused'}"


def dropout_words(model: nn.Module) -> str:
    """The model's dropout in words, read off its modules: "no dropout" or "dropout 0.2"."""
    rates = sorted({m.p for m in model.modules() if isinstance(m, nn.Dropout) and m.p > 0})
    return "dropout " + ", ".join(f"{p:g}" for p in rates) if rates else "no dropout"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


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


# =============================================================================================
# Part 1: training throughput.

NOT_FUSED_ROW = "aelab, Adam not fused (the notes' optimizer)"


def throughput_variants(spec: LabSpec, *, big_batch: int = 1024, num_workers_row: bool = True) -> list[Variant]:
    """The rows of one lab: the classic pipeline (the baseline of every ratio), aelab's, and each
    technique switched on alone over aelab's default, then all of them together."""
    rows = [Variant("classic: DataLoader + ToTensor", pipeline="classic")]
    if num_workers_row:
        rows.append(Variant("classic, num_workers=2", pipeline="classic", num_workers=2))
    rows.append(Variant("aelab, data on the host", data_on_device=False, needs_gpu=True, technique="data_on_gpu"))
    rows.append(Variant("aelab (lab default)"))
    if spec.notes_optimizer is not None:  # lab 02: what the fused Adam contributes; cheap, so on a CPU too
        rows.append(Variant(NOT_FUSED_ROW, notes_optimizer=True, technique="fused_adam"))
    if spec.batch_size != CLASSIC_BATCH:
        rows.append(Variant(f"aelab at batch {CLASSIC_BATCH}", batch_size=CLASSIC_BATCH))
    scale = math.sqrt(big_batch / spec.batch_size)
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


def default_steps(lab: str, device: torch.device) -> int:
    """Timed steps a throughput row of `lab` when --steps does not say."""
    return 500 if device.type == "cuda" else CPU_STEPS.get(lab, 120)


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


def measure_throughput(spec: LabSpec, variant: Variant, device: torch.device, *, steps: int, warmup: int,
                       amp_choice: str = "auto", compile_mode: str = "default", chunks: int = 3) -> dict:
    """Train `warmup` steps, then time the next steps in `chunks` equal windows (a GPU is
    synchronised at each window's ends). `images_per_s` is the median window's rate, which a
    burst of load from elsewhere on a shared machine moves less than the mean."""
    batch = variant.batch_size or (CLASSIC_BATCH if variant.pipeline == "classic" else spec.batch_size)
    steps = timed_steps(steps, batch, spec.batch_size)
    if batch > spec.batch_size and not variant.compile:
        warmup = max(2, round(warmup * spec.batch_size / batch))  # as many warm-up images, not 16x as many
    chunks = max(1, min(chunks, steps))
    lr = spec.lr * variant.lr_scale
    row = {"lab": spec.lab, "variant": variant.name, "batch_size": batch, "lr": lr, "steps": steps}
    from .runtime import seed_everything

    seed_everything(0)
    with PeakMemory(device) as memory:
        trainer = Trainer(spec, device, lr=lr, channels_last=variant.channels_last, amp=variant.amp,
                          amp_choice=amp_choice, compile=variant.compile, compile_mode=compile_mode,
                          notes_optimizer=variant.notes_optimizer)
        if variant.pipeline == "classic":
            stream = classic_stream(spec, device, batch_size=batch, num_workers=variant.num_workers)
        else:
            stream = aelab_stream(spec, device, batch_size=batch,
                                  data_device=None if variant.data_on_device else torch.device("cpu"),
                                  drop_partial=variant.compile)
        start = time.perf_counter()
        for _ in range(warmup):
            trainer.step(next(stream)[0])
        _sync(device)
        warm = time.perf_counter() - start
        windows = []  # (images, seconds)
        cpu_start = time.process_time()
        bounds = [round(i * steps / chunks) for i in range(chunks + 1)]
        for a, b in zip(bounds[:-1], bounds[1:]):
            images = 0
            start = time.perf_counter()
            for _ in range(b - a):
                x, _ = next(stream)
                loss = trainer.step(x)
                images += len(x)
            _sync(device)
            windows.append((images, time.perf_counter() - start))
        cpu_share = (time.process_time() - cpu_start) / sum(t for _, t in windows)
        final_loss = float(loss)
        trainer_optimizer = trainer.optimizer
        del stream, trainer
    notes = []
    if variant.notes_optimizer:
        notes.append(f"{optimizer_words(trainer_optimizer)} (torch's default), as in the notes")
    if variant.amp:
        notes.append(f"autocast {str(amp_dtype(device, amp_choice)).replace('torch.', '')}")
    if variant.compile:
        notes.append(f"torch.compile mode {compile_mode}; the warm-up includes compiling")
    if variant.num_workers:
        notes.append(f"{variant.num_workers} loader processes")
    if not math.isfinite(final_loss):
        return {**row, "status": f"failed: loss {final_loss}", "note": "; ".join(notes)}
    rates = sorted(n / t for n, t in windows)
    ips = rates[len(rates) // 2]
    images, seconds = sum(n for n, _ in windows), sum(t for _, t in windows)
    if len(rates) > 1:
        notes.append(f"windows {rates[0]:,.0f}-{rates[-1]:,.0f}/s")
    return {**row, "images": images, "seconds": round(seconds, 3), "images_per_s": round(ips, 1),
            "epoch_s": round(FULL_TRAIN_SIZE[spec.dataset] / ips, 2), "warmup_s": round(warm, 2),
            "cpu_share": round(cpu_share, 2),
            "peak_rss_mb": memory.rss_mb, "cuda_max_alloc_mb": memory.cuda_mb, "status": "ok",
            "note": "; ".join(notes)}


def _not_here(variant: Variant, spec: LabSpec, device: torch.device, opts: dict) -> str:
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


def run_throughput(lab: str, device: torch.device, opts: dict) -> list[dict]:
    """Every row of one lab (in one process), the classic baseline first, in `passes` passes
    (each row once a pass; each row keeps its median pass); then the ratios."""
    from .runtime import budget
    from .training import progress_bar

    spec = lab_specs(budget())[lab]
    variants = [_resolve_all_on(v, spec, device, opts) for v in selected_variants(spec, opts)]
    passes = opts.get("passes") or default_passes(lab, device)
    measured: list[list[dict]] = [[] for _ in variants]
    bar = progress_bar(len(variants) * passes, f"throughput {lab}" + (f", {passes} passes" if passes > 1 else ""))
    for _ in range(passes):  # every row once a pass, so that a slow spell hits one pass of one row
        for variant, row_passes in zip(variants, measured):
            if not (row_passes and row_passes[0].get("status") != "ok"):  # skipped or failed: once
                row_passes.append(_throughput_row(lab, spec, variant, device, opts))
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


def _resolve_all_on(variant: Variant, spec: LabSpec, device: torch.device, opts: dict) -> Variant:
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
        used = [t for t in TECHNIQUES if _uses(variant, t, spec)]
        variant = replace(variant, name="all on: " + (", ".join(used) or "none"))
    return variant


def _throughput_row(lab: str, spec: LabSpec, variant: Variant, device: torch.device, opts: dict) -> dict:
    """One measurement of one row (or why it is not measured here)."""
    batch = variant.batch_size or (CLASSIC_BATCH if variant.pipeline == "classic" else spec.batch_size)
    base = {"part": "throughput", "lab": lab, "variant": variant.name, "batch_size": batch,
            "lr": spec.lr * variant.lr_scale}
    reason = _not_here(variant, spec, device, opts)
    if reason:
        return {**base, "status": reason}
    try:
        row = measure_throughput(spec, variant, device, steps=opts["steps"] or default_steps(lab, device),
                                 warmup=opts["warmup"], amp_choice=opts["amp_dtype"],
                                 compile_mode=opts["compile_mode"])
    except Exception as exc:  # a technique that fails here (say, compile without a compiler) is a row
        first_line = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        row = {"status": f"failed: {type(exc).__name__}: {first_line}"}
    return {**base, **row}


def _uses(variant: Variant, technique: str, spec: LabSpec) -> bool:
    if variant.pipeline == "classic":
        return False
    return {"data_on_gpu": variant.data_on_device, "big_batch": (variant.batch_size or 0) > spec.batch_size,
            "channels_last": variant.channels_last and spec.conv, "amp": variant.amp,
            "compile": variant.compile,
            "fused_adam": spec.notes_optimizer is not None and not variant.notes_optimizer}[technique]


# =============================================================================================
# Part 2: time to quality, lab 02.

QUOTED_MSE = 0.018  # where the issue and lab 02's text say the notes' settings (dropout 0.2, plain Adam) level off
SIDE_BY_SIDE = "trained side by side with the notes' run, one thread each; its time is read off its curve"


def _lab02_epoch(trainer: Trainer, batches, *, item_each_step: bool = True) -> float:
    """Lab 02's train_epoch: train mode, one step per batch, the mean loss per image. Like the
    lab's and the notes' loops it reads each loss with .item() (a GPU waits for it every step);
    `item_each_step=False` sums on the device instead, as aelab.train_epoch does."""
    trainer.model.train()
    total, count = 0.0, 0
    for images, _ in batches:
        loss = trainer.step(images)
        total = total + (float(loss) if item_each_step else loss) * len(images)
        count += len(images)
    return float(total) / max(count, 1)


@torch.no_grad()
def _lab02_evaluate(model: nn.Module, batches) -> float:
    """Lab 02's evaluate: eval mode, no graph, the mean MSE per image."""
    model.eval()
    total, count = 0.0, 0
    for images, _ in batches:
        total += F.mse_loss(model(images)[0].float(), images).item() * len(images)
        count += len(images)
    return total / max(count, 1)


class _Loader:
    """A DataLoader whose batches go to the device, flattened, as the notes' loop does it."""

    def __init__(self, dataset, device: torch.device, batch_size: int, shuffle: bool):
        self.loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=shuffle,
                                                  generator=torch.Generator().manual_seed(0))
        self.device = device

    def __iter__(self):
        for images, labels in self.loader:
            yield images.to(self.device).view(len(images), -1), labels.to(self.device)


def quality_run(kind: str, device: torch.device, *, target: float | None = None, max_epochs: int = NOTES_EPOCHS,
                batch_size: int = CLASSIC_BATCH, lr: float = 1e-3, amp: bool = False, compile: bool = False,
                amp_choice: str = "auto", limit: int | None = None) -> dict:
    """Train lab 02's autoencoder and evaluate the test MSE after every epoch.

    kind "notes": the course notes' run, their model and optimizer (``notes_lab02_spec``: dropout
    0.2, plain Adam, not fused) on their pipeline, a DataLoader with ToTensor for the training
    and the test set at the same batch size. kind "aelab": lab 02's defaults (``lab_specs``: no
    dropout, fused Adam) on aelab's in-memory batches (the test set at batch 1000, as in the
    lab). `batch_size`, `lr`, `amp` and `compile` change either. Runs `max_epochs` epochs, or
    stops after the first epoch whose test MSE is at most `target`. Returns the curve: (seconds
    since the start, test MSE) after each epoch, the clock starting before the data files are
    opened; and what was trained, read off the model and optimizer themselves: `dropout` (the
    rates of the model's dropout layers), `fused` (the optimizer's fused flag) and `setup` (both
    in words). `limit` keeps only the first images of each split (for tests).
    """
    from .runtime import seed_everything
    from .training import progress_bar

    if kind not in ("notes", "aelab"):
        raise ValueError(f"kind must be 'notes' or 'aelab', got {kind!r}")
    spec = notes_lab02_spec() if kind == "notes" else lab_specs("quick")["lab02"]
    seed_everything(0)
    with PeakMemory(device) as memory:
        start, cpu_start = time.perf_counter(), time.process_time()
        if kind == "notes":
            train_set, test_set = classic_dataset("MNIST", True), classic_dataset("MNIST", False)
            if limit:
                train_set = torch.utils.data.Subset(train_set, range(limit))
                test_set = torch.utils.data.Subset(test_set, range(limit))
            train = _Loader(train_set, device, batch_size, shuffle=True)
            test = _Loader(test_set, device, batch_size, shuffle=False)
        else:
            data = load_dataset("MNIST")
            train = data.batches("train", batch_size=batch_size, flatten=True, device=device, limit=limit, seed=0)
            test = data.batches("test", batch_size=1000, flatten=True, device=device, limit=limit)
        trainer = Trainer(spec, device, lr=lr, amp=amp, amp_choice=amp_choice, compile=compile)
        curve: list[tuple[float, float]] = []
        bar = progress_bar(max_epochs, f"quality: {kind}, batch {batch_size}")
        for _ in range(max_epochs):
            _lab02_epoch(trainer, train, item_each_step=not (amp or compile))
            mse = _lab02_evaluate(trainer.forward, test)
            _sync(device)
            curve.append((round(time.perf_counter() - start, 3), mse))
            bar.update(1)
            bar.set_postfix({"test MSE": f"{mse:.4f}"})
            if target is not None and mse <= target:
                break
        bar.close()
    cpu_share = (time.process_time() - cpu_start) / max(curve[-1][0], 1e-9)
    dropout = [m.p for m in trainer.model.modules() if isinstance(m, nn.Dropout)]
    return {"curve": curve, "batch_size": batch_size, "lr": lr, "cpu_share": round(cpu_share, 2),
            "peak_rss_mb": memory.rss_mb, "cuda_max_alloc_mb": memory.cuda_mb,
            "dropout": dropout, "fused": bool(trainer.optimizer.defaults.get("fused")),
            "setup": f"{dropout_words(trainer.model)}, {optimizer_words(trainer.optimizer)}"}


LAB_DEFAULT_RUN = "lab default: aelab batches, batch 64, no dropout, fused Adam"


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
                         amp_choice=opts["amp_dtype"], limit=opts.get("quality_limit"), **kwargs)
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


# =============================================================================================
# Part 3: seconds to autograde one (correct) submission of each lab, at the quick budget.

def run_grading(lab_id: str, work: Path) -> dict:
    """Release the lab, make the reference submission (every answer cell as the solution has it),
    and grade it with the course's Grader (nbgrader autograde in a course of its own, quick budget,
    CPU, the grading part's threads: one unless --threads says otherwise); the seconds are those
    of the grading of that one submission."""
    import shutil

    import nbformat

    from .course.grader import Grader, Submission
    from .course.nbgrader_course import Course, correct_submission
    from .course.source import labs

    os.environ["AELAB_BUDGET"] = "quick"  # the grading kernels' budget, whatever this shell says
    lab = labs([lab_id])[0]
    root = work / lab.lab_id / "course"
    shutil.rmtree(root.parent, ignore_errors=True)  # the course, its shards and the submission
    with PeakMemory() as memory:
        grader = Grader(root, workers=1)
        start = time.perf_counter()
        template = grader.template(lab)
        release_s = time.perf_counter() - start
        released = nbformat.read(template / "release" / lab.lab_id / f"{lab.lab_id}.ipynb", as_version=4)
        correct = correct_submission(released, Course(template).source_notebook(lab))
        path = root.parent / "submissions" / "correct" / f"{lab.lab_id}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(correct, path)
        outcome = grader.run([Submission("correct", lab, path)], desc=f"grading {lab.lab_id}", ingest=False)[0]
    row = {"part": "grading", "lab": lab.lab_id, "variant": "reference submission, quick budget",
           "seconds": round(outcome.seconds, 1), "warmup_s": round(release_s, 1), "peak_rss_mb": memory.rss_mb,
           "status": "ok" if outcome.ok else f"failed: {outcome.reason}"}
    if outcome.ok:
        shard = grader.shards / lab.lab_id / "correct"
        scores = Course(shard).test_scores(lab, "correct")
        got, total = sum(s for s, _ in scores.values()), sum(m for _, m in scores.values())
        row["note"] = f"autograded {got:g} of {total:g} points"
    return row


# =============================================================================================
# The machine, the files.

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

Written by `make bench` (`python -m aelab.bench`), with the rows in `build/bench.csv`. One section
per machine: a run replaces its own machine's section and keeps the others. Every ratio in a
section comes from rows of the same run. On a shared machine, other work slows every row down;
the ratios suffer less than the seconds. Each section's header says how many CPU threads each
part ran with (the csv has it per row): the throughput rows use every core (`os.cpu_count()`,
what torch takes by default and what a student's training gets); the time-to-quality runs one
thread each when two train side by side, every core when they run one after another; grading
one. `--threads N` (or `OMP_NUM_THREADS` in the environment) sets them all.

**What the rows measure.**

* *Training throughput* (labs 02-05). Each row builds the lab's model with the lab's optimizer,
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
    switched off: the uint8 tensor stays in host memory and each batch is copied over), *big
    batch* (the learning rate scaled by the square root of the batch ratio, a rule for Adam; the
    row times about as many images as the lab-default row, so fewer steps), *channels_last*
    (convolutional labs only), *mixed precision* (autocast to bf16, or fp16 with a gradient scaler
    where the GPU lacks bf16; losses in float32), *torch.compile* (its compile time is in the
    warm-up column, not in images/s); then *all on*. On a CPU these rows say why they did not run.
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
  or add mixed precision and compile) and evaluate after every epoch; a run's time is the wall
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


def render_section(rows: list[dict], info: dict) -> str:
    """The markdown of one machine's run."""
    first = rows[0] if rows else {}
    lines = [f"## {info['key']}", ""]
    header = [f"CPU {info.get('cpu', '')}"]
    if info.get("gpu"):
        header.append(f"GPU {info['gpu']}")
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
        lab02 = [r for r in through if r["lab"] == "lab02" and r.get("status") == "ok" and _num(r, "ratio")]
        best_default = next((r for r in lab02 if r["variant"] == "aelab (lab default)"), None)
        if best_default:
            target = TARGETS["throughput_gpu" if gpu else "throughput_cpu"]
            best = max(lab02, key=lambda r: _num(r, "ratio"))
            ratio = _num(best_default, "ratio")
            lines += ["", f"Target for lab 02: at least {target:g}× on {'a GPU' if gpu else 'a 2-core CPU'}. "
                          f"aelab at the lab's defaults: {ratio:.1f}× "
                          f"({'met' if ratio >= target else 'not met'}); best row ({best['variant']}): "
                          f"{_num(best, 'ratio'):.1f}×."]
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


# =============================================================================================
# Running: each job in a process of its own.

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


def _job_main(job: dict, rows_to: Path) -> int:
    threads = int(job["opts"]["threads"][job["kind"]])
    torch.set_num_threads(threads)
    import torchvision  # noqa: F401  (in the baseline: every job imports it)

    from . import training  # noqa: F401
    from .runtime import get_device

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
        proc = subprocess.run([sys.executable, "-m", "aelab.bench", "--job", json.dumps(job), "--rows-to",
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
    from .runtime import budget, get_device
    from .training import progress_bar

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
        from .course.source import labs as all_labs

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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m aelab.bench", description=__doc__.split("\n\n")[0])
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
                   help="mixed precision type (auto: bf16 where the GPU has it, else fp16)")
    p.add_argument("--compile-mode", default="default", help="torch.compile mode (default, reduce-overhead, ...)")
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
    from .runtime import get_device

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
        "compile_mode": args.compile_mode,
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
        from .runtime import get_device

        info = machine(get_device(args.device or None))
        csv_path, md_path = write_outputs(Path(args.out), [], info)
        print(f"[bench] rewrote {md_path} from {csv_path}")
        return 0
    opts = options(args)
    start = time.perf_counter()
    from .runtime import get_device
    from .plots import show_table

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
