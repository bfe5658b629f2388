"""The plumbing of lab 05 (VQ-VAE): data variance, code usage, dead codes, restarting dead codes
during training, decoding grids of codes, and a probe for the memory a function allocates.

The students write the quantizer, its losses, the perplexity and the restart rule; this module
only counts, plots and schedules. Every function works on any device; figures are drawn with
matplotlib, shown once, and never block.

Conventions shared with the lab:

* a quantizer is an ``nn.Module`` whose ``forward(z_e)`` takes encoder outputs (B, D, H, W) and
  returns a tuple ``(z_q, codes, codebook_loss, commitment_loss)`` with ``codes`` (B, H, W) int64;
* codes of a batch of images are a (B, H, W) int64 tensor of indices in ``[0, K)``.
"""

from __future__ import annotations

from typing import Callable, Iterable, Mapping

import numpy as np
import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from .data import ImageDataset
from .runtime import device_of, evaluating

__all__ = [
    "DeadCodeRestarts", "code_counts", "collect_codes", "dead_codes", "largest_intermediate", "pixel_variance",
    "plot_code_usage", "random_codes", "show_code_samples", "train_variance",
]

# restart(codebook (K, D), counts (K,), encoder_outputs (N, D)) -> number of codes restarted
RestartFn = Callable[[Tensor, Tensor, Tensor], int]


# ---------------------------------------------------------------------------------------------
# The data variance, on the scale the errors are measured on.

def pixel_variance(images: Tensor) -> float:
    """The variance of every pixel value of uint8 `images` (any shape), on the [0, 1] scale.

    Exact and cheap for any number of images: it counts the 256 possible values instead of
    converting the images to float (50,000 CIFAR-10 images would take 600 MB as float32).
    The same scale as the batches of `ImageDataset.batches`, so an MSE on those batches divided
    by this number is the normalised MSE of the VQ-VAE papers.
    """
    if not isinstance(images, Tensor) or images.dtype != torch.uint8:
        raise TypeError(f"pixel_variance expects a uint8 tensor, got "
                        f"{images.dtype if isinstance(images, Tensor) else type(images).__name__}")
    if images.numel() == 0:
        raise ValueError("pixel_variance got no pixels")
    counts = torch.bincount(images.reshape(-1).cpu(), minlength=256).double()
    values = torch.arange(256, dtype=torch.float64) / 255.0
    p = counts / counts.sum()
    mean = (p * values).sum()
    return float((p * (values - mean) ** 2).sum())


def train_variance(dataset: ImageDataset) -> float:
    """The variance of the training pixels of `dataset` on the [0, 1] scale (about 0.0633 for CIFAR-10)."""
    return pixel_variance(dataset.train_images)


# ---------------------------------------------------------------------------------------------
# Code usage.

def code_counts(codes: Tensor, num_codes: int) -> Tensor:
    """How often each of the `num_codes` codes occurs in `codes` (any shape): an int64 (K,) tensor on the CPU."""
    if not isinstance(codes, Tensor) or codes.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise TypeError(f"codes must be an integer tensor, got "
                        f"{codes.dtype if isinstance(codes, Tensor) else type(codes).__name__}")
    flat = codes.detach().reshape(-1).long().cpu()
    if flat.numel() and (int(flat.min()) < 0 or int(flat.max()) >= num_codes):
        raise ValueError(f"codes must lie in [0, {num_codes}), got values in "
                         f"[{int(flat.min())}, {int(flat.max())}]")
    return torch.bincount(flat, minlength=num_codes)


def dead_codes(counts: Tensor) -> int:
    """The number of codes never used, from usage counts (K,)."""
    return int((counts.detach().reshape(-1) == 0).sum())


def collect_codes(encode_codes: Callable[[Tensor], Tensor], batches: Iterable) -> Tensor:
    """The codes (N, H, W) of every image in `batches`, on the CPU.

    `encode_codes(images)` maps a batch of images to its (B, H, W) codes, e.g. a VQ-VAE's
    ``encode`` method; its module is put in eval mode for the pass and restored afterwards.
    """
    with evaluating(encode_codes):
        codes = [encode_codes(images).detach().long().cpu() for images, _ in batches]
    if not codes:
        raise ValueError("collect_codes got no batches")
    return torch.cat(codes)


def plot_code_usage(counts: Tensor | Mapping[str, Tensor], *, title: str = "Codebook usage", ax=None) -> None:
    """Usage of each code, most used first, as a share of all positions (log scale).

    Pass one (K,) counts tensor, or a dict of label -> counts to compare models (e.g. before and
    after a remedy). A flat curve means every code is used about equally; a curve that drops to
    nothing marks the dead codes, counted in the legend.
    """
    import matplotlib.pyplot as plt

    series = dict(counts) if isinstance(counts, Mapping) else {"": counts}
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.2))
    else:
        fig = ax.figure
    for label, c in series.items():
        c = c.detach().cpu().double().reshape(-1)
        share = (c / c.sum().clamp_min(1)).sort(descending=True).values.numpy()
        ranks = np.arange(1, len(share) + 1)
        name = f"{label}: " if label else ""
        # Dead codes have share 0, which a log axis cannot show: draw them at the axis floor.
        floor = 0.1 / max(float(c.sum()), 1.0)
        ax.fill_between(ranks, np.maximum(share, floor), floor, step="mid", alpha=0.35)
        ax.step(ranks, np.maximum(share, floor), where="mid",
                label=f"{name}{dead_codes(c)} of {len(share)} codes dead")
        ax.axhline(1.0 / len(share), color="gray", lw=0.8, ls="--")
    ax.set_yscale("log")
    ax.set_xlabel("code, most used first")
    ax.set_ylabel("share of positions")
    ax.set_title(title + " (dashed: uniform use)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()


# ---------------------------------------------------------------------------------------------
# Decoding codes that no image produced.

def random_codes(n: int, grid: tuple[int, int], num_codes: int, *, counts: Tensor | None = None,
                 generator: torch.Generator | None = None) -> Tensor:
    """`n` random code grids (n, H, W), int64 on the CPU.

    Each position is drawn independently: uniformly over the `num_codes` codes, or, given usage
    `counts` (K,), with the frequencies the encoder uses them (the best a model can do that
    knows how often each code occurs but not how codes fit together).
    """
    h, w = grid
    if counts is None:
        return torch.randint(0, num_codes, (n, h, w), generator=generator)
    weights = counts.detach().cpu().double().reshape(-1)
    if len(weights) != num_codes or float(weights.sum()) <= 0:
        raise ValueError(f"counts must be ({num_codes},) with a positive sum")
    return torch.multinomial(weights, n * h * w, replacement=True, generator=generator).reshape(n, h, w)


def show_code_samples(decode_codes: Callable[[Tensor], Tensor], real_codes: Tensor, num_codes: int, *,
                      counts: Tensor | None = None, extra: Mapping[str, Tensor] | None = None, n: int = 8,
                      seed: int = 0, title: str = "Decoding codes: real ones, and random grids of codes") -> None:
    """Decoded grids of codes, one row each: the codes of real images, any `extra` rows (a dict of
    row label -> code grids (N, H, W), e.g. grids drawn from a learned prior), codes drawn
    uniformly at random, and (given usage `counts`) codes drawn with the frequencies the encoder
    uses them.

    `decode_codes(codes (B, H, W) int64) -> images (B, C, H', W')`, e.g. a VQ-VAE's
    ``decode_codes``; `real_codes` (N, H, W) are codes of real images, such as from
    `collect_codes`. The random rows show what a VQ-VAE generates without a learned prior
    over the grid: every code is a real image patch, but nothing makes neighbouring patches agree.
    """
    from .plots import show_images

    device = device_of(decode_codes)
    generator = torch.Generator().manual_seed(seed)
    grid = tuple(real_codes.shape[1:])
    rows = {"real codes": real_codes[:n]}
    for label, codes in (extra or {}).items():
        if tuple(codes.shape[1:]) != grid:
            raise ValueError(f"the {label!r} grids are {tuple(codes.shape[1:])}, the real ones {grid}")
        rows[label] = codes[:n]
    rows["uniform random"] = random_codes(n, grid, num_codes, generator=generator)
    if counts is not None:
        rows["random, usage\nfrequencies"] = random_codes(n, grid, num_codes, counts=counts, generator=generator)
    with evaluating(decode_codes):
        images = {label: decode_codes(codes.to(device)).cpu().float() for label, codes in rows.items()}
    show_images(images, n=n, title=title)


# ---------------------------------------------------------------------------------------------
# Restarting dead codes while training.

class DeadCodeRestarts:
    """Applies a dead-code remedy to a quantizer's codebook every `every` training steps.

    A forward hook on `quantizer` counts the codes it picks in training mode and keeps its
    latest encoder outputs. Wrap the training loss with `wrap`; every `every` training steps,
    before the step's forward pass, it calls ``restart(codebook, counts, encoder_outputs)``
    with the codebook (K, D) as a tensor without gradient tracking (change it in place), the
    usage counts (K,) since the last check, and the latest encoder outputs (N, D); then it
    starts counting again. `restarted` lists how many codes each check moved.

        restarts = DeadCodeRestarts(model.quantizer, model.quantizer.codebook.weight,
                                    restart_dead_codes, every=100)
        train(model, batches, optimizer, epochs=..., loss_fn=restarts.wrap(vqvae_loss))
        restarts.remove()

    (`train` is the course's training loop, from lab 02: any loop that calls the loss once per
    training step in training mode works.)
    """

    def __init__(self, quantizer: nn.Module, codebook: Tensor, restart: RestartFn, *, every: int = 100):
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive int, got {every!r}")
        if codebook.ndim != 2:
            raise ValueError(f"codebook must be (K, D), got shape {tuple(codebook.shape)}")
        self.quantizer = quantizer
        self.codebook = codebook
        self.restart = restart
        self.every = every
        self.num_codes = codebook.shape[0]
        self.counts = torch.zeros(self.num_codes, dtype=torch.long, device=codebook.device)
        self.encoder_outputs: Tensor | None = None
        self.steps = 0
        self.restarted: list[int] = []
        self._handle = quantizer.register_forward_hook(self._watch)

    def _watch(self, module: nn.Module, inputs: tuple, output) -> None:
        if not module.training:
            return
        z_e, codes = inputs[0], output[1]
        # index_add_ rather than bincount: bincount waits for the GPU to find the largest code.
        flat = codes.detach().reshape(-1).to(self.counts.device)
        self.counts.index_add_(0, flat, torch.ones_like(flat, dtype=self.counts.dtype))
        # (B, D, H, W) -> (B*H*W, D): one encoder output per row.
        self.encoder_outputs = z_e.detach().permute(0, 2, 3, 1).reshape(-1, z_e.shape[1])

    def check(self) -> int:
        """Apply the remedy now on the counts so far; returns the number of codes it moved."""
        if self.encoder_outputs is None:
            return 0
        moved = int(self.restart(self.codebook.detach(), self.counts.clone(), self.encoder_outputs))
        self.restarted.append(moved)
        self.counts.zero_()
        return moved

    def wrap(self, loss_fn: Callable[[nn.Module, Tensor, Tensor], Tensor]) -> Callable[[nn.Module, Tensor, Tensor], Tensor]:
        """`loss_fn` with a check every `every` training steps (steps in eval mode do not count)."""

        def loss_with_restarts(model: nn.Module, images: Tensor, labels: Tensor) -> Tensor:
            if model.training:
                if self.steps and self.steps % self.every == 0:
                    self.check()
                self.steps += 1
            return loss_fn(model, images, labels)

        return loss_with_restarts

    @property
    def total_restarted(self) -> int:
        return sum(self.restarted)

    def remove(self) -> None:
        """Detach the hook from the quantizer."""
        self._handle.remove()


# ---------------------------------------------------------------------------------------------
# A probe for the test cells: how large the tensors a function builds get.

class _LargestTensor(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.largest = 0
        self.shape: tuple[int, ...] = ()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, Tensor) and t.numel() > self.largest:
                self.largest, self.shape = t.numel(), tuple(t.shape)
        return out


def largest_intermediate(fn: Callable, *args, **kwargs) -> tuple[object, int, tuple[int, ...]]:
    """Run ``fn(*args, **kwargs)``; return (its result, the element count and the shape of the
    largest tensor any torch operation made along the way).

    It sees every torch function, tensor method and operator called from Python, so it tells
    whether a distance computation built an (N, K, D) tensor or only (N, K) ones.
    """
    with _LargestTensor() as probe:
        result = fn(*args, **kwargs)
    return result, probe.largest, probe.shape
