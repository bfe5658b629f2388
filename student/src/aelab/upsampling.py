"""Upsampling, checkerboard artifacts and noise: the plumbing of lab 03.

A transposed convolution with stride s spreads each input pixel over a k x k patch of the
output, s pixels apart. When k is not a multiple of s the patches overlap unevenly, and
some output pixels receive more contributions than their neighbours: a checkerboard
(Odena, Dumoulin & Olah, "Deconvolution and Checkerboard Artifacts", Distill 2016). Nearest
upsampling followed by a stride-1 convolution ("resize-convolution") gives every output pixel
the same number of contributions. The functions here measure and draw that:

* ``resize_conv_counts``: how many kernel taps of a resize-convolution reach each output pixel;
* ``constant_response``: what a stack of (trained or untrained) upsampling layers makes of a
  constant input, and ``checkerboard_score``: how far from flat that output is;
* ``checkerboard_fraction``: how much of the pixel-to-pixel variation of a batch of images (or
  of a decoder's logits) alternates like a checkerboard;
* ``show_patterns``: those patterns side by side, each on its own colour scale;
* ``add_noise``: the corruption of the denoising autoencoder.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import Tensor, nn

from .runtime import evaluating

__all__ = [
    "add_noise", "checkerboard_fraction", "checkerboard_score", "constant_response",
    "resize_conv_counts", "show_patterns",
]


def add_noise(images: Tensor, std: float, *, generator: torch.Generator | None = None, clip: bool = True) -> Tensor:
    """Images plus Gaussian noise of standard deviation `std`, clipped back to [0, 1] by default.

    Returns a new tensor of the same shape, dtype and device; `images` is not changed. With a
    `generator` the noise is drawn from it (on the generator's device, then moved to the
    images'), so a fixed seed gives the same noisy test set on every run of one machine.
    """
    if not isinstance(images, Tensor) or not images.is_floating_point():
        raise TypeError(f"add_noise needs a floating-point tensor, got {type(images).__name__}"
                        + (f" of dtype {images.dtype}" if isinstance(images, Tensor) else ""))
    if not std >= 0:
        raise ValueError(f"std must be >= 0, got {std!r}")
    if generator is None:
        noise = torch.randn_like(images)
    else:
        noise = torch.randn(images.shape, generator=generator, dtype=images.dtype,
                            device=generator.device).to(images.device)
    noisy = images + std * noise
    return noisy.clamp(0.0, 1.0) if clip else noisy


def resize_conv_counts(kernel_size: int, scale: int, size: int) -> Tensor:
    """The same count for a resize-convolution: nearest upsampling by `scale`, then a stride-1
    ``kernel_size`` convolution with 'same' zero padding (kernel_size odd), all weights 1.

    Returns an int64 tensor of shape (size * scale, size * scale). Every interior pixel gets
    kernel_size**2: the count is flat, only the zero-padded border differs.
    """
    _check_positive(kernel_size=kernel_size, scale=scale, size=size)
    if kernel_size % 2 != 1:
        raise ValueError(f"resize_conv_counts needs an odd kernel_size for 'same' padding, got {kernel_size}")
    ones = torch.ones(1, 1, size, size, dtype=torch.float64)
    up = nn.functional.interpolate(ones, scale_factor=scale, mode="nearest")
    weight = torch.ones(1, 1, kernel_size, kernel_size, dtype=torch.float64)
    out = nn.functional.conv2d(up, weight, padding=kernel_size // 2)
    return out[0, 0].round().long()


def constant_response(stages: nn.Module | Sequence[nn.Module], in_shape: Sequence[int], value: float = 1.0) -> Tensor:
    """What `stages` (one module, or several applied in order) make of a constant input.

    The input is one (1, *in_shape) tensor filled with `value`, e.g. in_shape=(32, 7, 7) for a
    decoder's upsampling stages. Returns the output averaged over its channels, as a float32
    (H, W) tensor on the CPU. Modules run in eval mode and are put back in the mode they were in.
    """
    modules = [stages] if isinstance(stages, nn.Module) else list(stages)
    if not modules or not all(isinstance(m, nn.Module) for m in modules):
        raise TypeError("constant_response needs an nn.Module or a non-empty sequence of them")
    if len(in_shape) != 3:
        raise ValueError(f"in_shape must be (channels, height, width), got {tuple(in_shape)}")
    param = next((p for m in modules for p in m.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    with evaluating(*modules):
        x = torch.full((1, *[int(s) for s in in_shape]), float(value), device=device, dtype=dtype)
        for m in modules:
            x = m(x)
    if not isinstance(x, Tensor) or x.ndim != 4:
        raise ValueError(f"the stages must return an (N, C, H, W) tensor, got {_shape_of(x)}")
    return x[0].float().mean(dim=0).cpu()


def checkerboard_score(pattern: Tensor, border: int = 4) -> float:
    """How far the interior of a 2-D pattern is from flat: std / (|mean| + std), in [0, 1].

    The `border` outermost rows and columns are left out, because zero padding changes the
    edges of any convolution's output, flat or not. 0 means perfectly flat; a pattern that
    alternates between a and b scores |a - b| / (|a + b| + |a - b|). Use it on the output of
    ``constant_response``.
    """
    if not isinstance(pattern, Tensor) or pattern.ndim != 2:
        raise ValueError(f"checkerboard_score needs a 2-D tensor, got {_shape_of(pattern)}")
    if border < 0 or min(pattern.shape) <= 2 * border:
        raise ValueError(f"border={border} leaves nothing of a pattern of shape {tuple(pattern.shape)}")
    inner = pattern.detach().cpu().double()[border:pattern.shape[0] - border, border:pattern.shape[1] - border]
    std = float(inner.std(unbiased=False))
    scale = abs(float(inner.mean())) + std
    return 0.0 if scale < 1e-12 else std / scale


_CHECKER = torch.tensor([[1.0, -1.0], [-1.0, 1.0]]) / 4


@torch.no_grad()
def checkerboard_fraction(images: Tensor) -> float:
    """The share of the pixel-to-pixel variation in `images` that alternates like a checkerboard.

    It is 8 * mean(c ** 2) / (mean(dx ** 2) + mean(dy ** 2)), where c is the response to the
    2x2 filter [[1, -1], [-1, 1]] / 4 and dx, dy are the differences between horizontal and
    vertical neighbours. A pure checkerboard scores 1; smooth images, edges and stripes score
    near 0. It does not depend on the scale of the values, so it works on logits as well as on
    pixels. `images` are (N, 1, H, W) or (N, H, W); returns 0.0 for constant images.
    """
    x = images.detach().cpu().double()
    if x.ndim == 3:
        x = x.unsqueeze(1)
    if x.ndim != 4 or x.shape[1] != 1 or min(x.shape[-2:]) < 2:
        raise ValueError(f"checkerboard_fraction needs (N, 1, H, W) or (N, H, W) images with H, W >= 2, "
                         f"got {tuple(images.shape)}")
    checker = nn.functional.conv2d(x, _CHECKER.to(x).view(1, 1, 2, 2)).pow(2).mean()
    variation = (x[..., :, 1:] - x[..., :, :-1]).pow(2).mean() + (x[..., 1:, :] - x[..., :-1, :]).pow(2).mean()
    return 0.0 if float(variation) < 1e-24 else float(8 * checker / variation)


def show_patterns(patterns: Mapping[str, Tensor], *, title: str | None = None, cmap: str = "viridis",
                  score_border: int | None = 4, ncols: int | None = None, scale: float = 2.6) -> None:
    """Draw 1-D count vectors (as bars) or 2-D patterns (as images) side by side.

    Each panel has its own colour scale and colour bar, because an untrained layer's output and
    a count of kernel taps live on very different scales; only the *shape* of each pattern is
    compared. 2-D panels are titled with their ``checkerboard_score`` (unless `score_border` is
    None or the pattern is too small). Panels fill rows of `ncols` (default: all in one row).
    """
    import matplotlib.pyplot as plt

    if not patterns:
        raise ValueError("show_patterns needs at least one pattern")
    ncols = len(patterns) if ncols is None else max(1, min(int(ncols), len(patterns)))
    nrows = -(-len(patterns) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(scale * ncols, (scale + 0.5) * nrows), squeeze=False)
    for ax in axes.flat[len(patterns):]:
        ax.axis("off")
    for ax, (label, pattern) in zip(axes.flat, patterns.items()):
        p = pattern.detach().float().cpu()
        if p.ndim == 1:
            ax.bar(range(len(p)), p.numpy(), color="tab:blue")
            ax.set_xlabel("output position")
            ax.set_title(label, fontsize=9)
            continue
        if p.ndim != 2:
            raise ValueError(f"pattern {label!r} must be 1-D or 2-D, got shape {tuple(p.shape)}")
        image = ax.imshow(p.numpy(), cmap=cmap, interpolation="nearest")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        ax.set_xticks([])
        ax.set_yticks([])
        if score_border is not None and min(p.shape) > 2 * score_border:
            label = f"{label}\ncheckerboard score {checkerboard_score(p, score_border):.3f}"
        ax.set_title(label, fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")


def _shape_of(x: object) -> str:
    return f"a tensor of shape {tuple(x.shape)}" if isinstance(x, Tensor) else f"a {type(x).__name__}"
