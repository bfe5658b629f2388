"""The plumbing of lab 05's prior over code grids: batches of code grids, the context-free baseline
a prior must beat, and a figure of which positions a prior looks at.

The students write the prior itself (its masked convolutions or its attention mask), its loss and
its sampler; this module only serves data, measures and draws. Nothing here computes a prior's
loss or draws from one.

Conventions shared with the lab:

* a grid of codes is a (B, H, W) int64 tensor of indices in ``[0, K)``, read in raster order
  (row by row, left to right);
* a prior is an ``nn.Module`` whose ``forward(codes (B, H, W))`` returns logits (B, K, H, W): the
  scores of the code at each position given the codes before it.
"""

from __future__ import annotations

import math
from typing import Iterator, Sequence

import torch
from torch import Tensor, nn

from .runtime import device_of, evaluating, get_device

__all__ = ["CodeBatches", "code_batches", "context_free_nats", "influence_map", "plot_influence"]


# ---------------------------------------------------------------------------------------------
# Batches of code grids, served like the image batches.

class CodeBatches:
    """Iterates over (codes (B, H, W) int64, labels (B,)) batches held on the device.

    The same contract as ``ImageDataset.batches``: each pass is one epoch, the training order is
    reshuffled every epoch from its own generator (seeded with `seed` or from torch's global
    generator), and ``len`` is the number of batches. So the course's training loop trains a prior
    on it exactly as it trains an autoencoder on images.
    """

    def __init__(self, codes: Tensor, labels: Tensor | None = None, batch_size: int = 64, *, shuffle: bool = True,
                 device: torch.device | str | None = None, seed: int | None = None):
        if not isinstance(codes, Tensor) or codes.ndim != 3 or codes.dtype != torch.int64:
            raise TypeError("codes must be an int64 tensor of shape (N, H, W), got "
                            + (f"{codes.dtype} of shape {tuple(codes.shape)}" if isinstance(codes, Tensor)
                               else type(codes).__name__))
        if len(codes) == 0:
            raise ValueError("CodeBatches got no code grids")
        if labels is None:
            labels = torch.zeros(len(codes), dtype=torch.int64)
        if len(labels) != len(codes):
            raise ValueError(f"{len(codes)} code grids but {len(labels)} labels")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self.device = torch.device(device) if device is not None else get_device()
        self.codes = codes.to(self.device)
        self.labels = labels.to(self.device)
        self.batch_size = batch_size
        self.shuffle = shuffle
        if seed is None:
            seed = int(torch.randint(0, 2**31 - 1, (1,)).item())
        self._generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return math.ceil(len(self.codes) / self.batch_size)

    @property
    def num_images(self) -> int:
        """The number of code grids (one per image)."""
        return len(self.codes)

    @property
    def grid(self) -> tuple[int, int]:
        return tuple(self.codes.shape[1:])  # type: ignore[return-value]

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        n = len(self.codes)
        order = torch.randperm(n, generator=self._generator).to(self.device) if self.shuffle else None
        for start in range(0, n, self.batch_size):
            idx = slice(start, start + self.batch_size) if order is None else order[start:start + self.batch_size]
            yield self.codes[idx], self.labels[idx]


def code_batches(codes: Tensor, batch_size: int = 64, *, labels: Tensor | None = None, shuffle: bool = True,
                 device: torch.device | str | None = None, seed: int | None = None) -> CodeBatches:
    """Batches of the code grids `codes` (N, H, W), e.g. from ``aelab.codebook.collect_codes``,
    served from `device` (default: the best one)."""
    return CodeBatches(codes, labels, batch_size, shuffle=shuffle, device=device, seed=seed)


# ---------------------------------------------------------------------------------------------
# The baseline: a prior that knows how often each code occurs, but not how codes fit together.

def context_free_nats(train_codes: Tensor, test_codes: Tensor, num_codes: int) -> float:
    """The negative log-likelihood, in nats per code, of `test_codes` under the best prior that
    ignores the context, fitted on `train_codes`: every position drawn on its own, code k with
    probability (its count in train_codes + 1) / (the number of codes + num_codes).

    The one added to every count (Laplace's rule) keeps a code that never occurred in training
    at a finite cost. A prior scores below this number only by predicting each code from the
    codes before it. Codes of any shape; the result is a Python float.
    """
    train = train_codes.detach().reshape(-1).long().cpu()
    test = test_codes.detach().reshape(-1).long().cpu()
    if test.numel() == 0:
        raise ValueError("context_free_nats got no test codes")
    for name, codes in (("train_codes", train), ("test_codes", test)):
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= num_codes):
            raise ValueError(f"{name} must lie in [0, {num_codes})")
    counts = torch.bincount(train, minlength=num_codes).double() + 1.0
    log_p = counts.log() - counts.sum().log()
    return float(-log_p[test].mean())


# ---------------------------------------------------------------------------------------------
# Which positions a prior looks at.

@torch.no_grad()
def influence_map(prior: nn.Module, num_codes: int, position: tuple[int, int], *, grid: tuple[int, int] = (8, 8),
                  samples: int = 4, seed: int = 0) -> Tensor:
    """Which positions' codes change the prior's logits at `position`: an (H, W) bool tensor on the CPU.

    It draws `samples` random grids and, for each position q in turn, changes the code at q
    (to another random code) and looks whether the logits at `position` move. A causal prior
    shows True only before `position` in raster order; a stack of 3x3 masked convolutions shows
    its receptive field growing up and to the left, with a blind spot to the upper right.
    The prior is run in eval mode and put back as it was.
    """
    h, w = grid
    row, col = position
    if not (0 <= row < h and 0 <= col < w):
        raise ValueError(f"position {position} is outside the {h}x{w} grid")
    device = device_of(prior)
    generator = torch.Generator().manual_seed(seed)
    base = torch.randint(0, num_codes, (samples, h, w), generator=generator)
    shift = torch.randint(1, num_codes, (samples,), generator=generator) if num_codes > 1 else None
    seen = torch.zeros(h, w, dtype=torch.bool)
    with evaluating(prior):
        reference = prior(base.to(device))[:, :, row, col].float().cpu()
        for q in range(h * w):
            qi, qj = divmod(q, w)
            changed = base.clone()
            if shift is not None:
                changed[:, qi, qj] = (changed[:, qi, qj] + shift) % num_codes
            logits = prior(changed.to(device))[:, :, row, col].float().cpu()
            scale = reference.abs().max().clamp_min(1.0)
            seen[qi, qj] = bool(((logits - reference).abs().max() > 1e-5 * scale).item())
    return seen


def plot_influence(prior: nn.Module, num_codes: int, positions: Sequence[tuple[int, int]] = ((3, 4), (7, 7)), *,
                   grid: tuple[int, int] = (8, 8), title: str = "Which codes your prior looks at") -> None:
    """One panel per position: the positions whose code changes the prior's prediction there.

    Dark: seen; white: not seen; the outlined square is the position predicted; a red cross marks
    a position the prior must not see (the position itself or a later one) but does.
    """
    from .plots import pyplot

    plt = pyplot()
    h, w = grid
    fig, axes = plt.subplots(1, len(positions), figsize=(2.6 * len(positions), 2.9), squeeze=False)
    for ax, position in zip(axes[0], positions):
        seen = influence_map(prior, num_codes, tuple(position), grid=grid)
        ax.imshow(seen.float().numpy(), cmap="Greys", vmin=0, vmax=1.4)
        row, col = position
        ax.add_patch(plt.Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="tab:blue", lw=2))
        index = row * w + col
        leaks = [(q // w, q % w) for q in range(index, h * w) if bool(seen[q // w, q % w])]
        for qi, qj in leaks:
            ax.plot(qj, qi, "x", color="red", ms=8, mew=2)
        n_seen = int(seen.sum())
        ax.set_title(f"predicting ({row}, {col}): sees {n_seen}" + (f", {len(leaks)} not allowed" if leaks else ""),
                     fontsize=8)
        ax.set_xticks(range(w))
        ax.set_yticks(range(h))
        ax.tick_params(labelsize=6)
    fig.suptitle(title)
    fig.tight_layout()
