"""Plumbing for the generative labs (lab 04's variational autoencoder).

What a lab needs around a trained generative model and would rather not write itself:

* ``mlp``: a stack of Linear + ReLU layers, the body of an encoder or decoder.
* ``latent_grid`` and ``show_manifold``: decode a regular grid of a 2-D latent space.
* ``sample_prior`` and ``show_samples``: decode draws from the prior N(0, I).
* ``linear_path``, ``interpolate`` and ``show_interpolations``: decode the straight line
  between the latents of two images, for several models side by side.
* ``latent_traversal`` and ``show_traversal``: vary one latent coordinate, keep the others.
* ``plot_beta_sweep``: reconstruction and KL against beta.
* ``probabilities``: a decoder that returns logits, seen as one that returns pixel
  probabilities (its sigmoid), for the figures.

Every function that runs a model does so in eval mode (dropout off) without building a graph,
and restores the module's training mode afterwards. An ``encode`` or ``decode`` argument may be
an ``nn.Module`` or a bound method of one (``vae.decode``, ``ae.encoder``); an encoder that
returns a tuple, such as a VAE's ``(mu, logvar)``, contributes its first element.
"""

from __future__ import annotations

import math
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from .plots import as_images, pyplot, show_images
from .runtime import device_of, evaluating

Encode = Callable[[Tensor], "Tensor | tuple[Tensor, ...]"]
Decode = Callable[[Tensor], Tensor]

__all__ = [
    "interpolate", "latent_grid", "latent_traversal", "linear_path", "mlp", "plot_beta_sweep", "probabilities",
    "sample_prior", "show_interpolations", "show_manifold", "show_samples", "show_traversal", "tile_images",
]


# ---------------------------------------------------------------------------------------------
# Building blocks

def mlp(sizes: Sequence[int]) -> nn.Sequential:
    """Fully connected layers ``sizes[0] -> sizes[1] -> ... -> sizes[-1]`` with a ReLU after each.

    ``mlp([784, 400])`` is ``Sequential(Linear(784, 400), ReLU())``. Add the output layer (and its
    activation, if any) yourself: the last layer of an encoder head or a decoder usually needs none
    or a sigmoid, not a ReLU.
    """
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or any(s < 1 for s in sizes):
        raise ValueError(f"mlp needs at least two positive sizes, got {sizes}")
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
    return nn.Sequential(*layers)


class _Probabilities:
    """torch.sigmoid of what `decode` returns. Its ``__self__`` is decode's module, as for a bound
    method, so that the helpers find the device and run the module in eval mode."""

    def __init__(self, decode: Decode):
        self.decode = decode
        module = decode if isinstance(decode, nn.Module) else getattr(decode, "__self__", None)
        self.__self__ = module if isinstance(module, nn.Module) else None

    def __call__(self, z: Tensor) -> Tensor:
        return torch.sigmoid(self.decode(z))


def probabilities(decode: Decode) -> Decode:
    """A decoder that returns logits, as one that returns probabilities: ``torch.sigmoid(decode(z))``.

    The figures show images in [0, 1]. A VAE whose ``decode`` returns logits (as lab 04's does)
    is shown with ``show_samples(probabilities(vae.decode), ...)``. Every helper here finds the
    device of `decode`'s module through the result and runs that module in eval mode, as it does
    for ``vae.decode`` itself.
    """
    if not callable(decode):
        raise TypeError(f"probabilities needs a decoder (a module or a function), got {type(decode).__name__}")
    return _Probabilities(decode)


def _device_of(fn: Callable, default: torch.device | str | None = None) -> torch.device:
    """The device of the parameters behind `fn`, or `default`, or the CPU."""
    return torch.device(default) if default is not None else device_of(fn)


def _first(output: Tensor | tuple[Tensor, ...]) -> Tensor:
    return output[0] if isinstance(output, (tuple, list)) else output


# ---------------------------------------------------------------------------------------------
# The decoded manifold of a 2-D latent space

def latent_grid(n: int = 15, limit: float = 3.0) -> Tensor:
    """An (n * n, 2) grid over [-limit, limit]^2, in reading order for an image grid.

    Row r, column c of the picture is point ``r * n + c``: z1 grows from left to right and z2
    from bottom to top, as on a scatter plot.
    """
    if n < 2 or limit <= 0:
        raise ValueError(f"latent_grid needs n >= 2 and limit > 0, got n={n}, limit={limit}")
    values = torch.linspace(-limit, limit, n)
    z2, z1 = torch.meshgrid(values.flip(0), values, indexing="ij")
    return torch.stack([z1.reshape(-1), z2.reshape(-1)], dim=1)


def tile_images(images: Tensor, ncols: int, image_shape: Sequence[int] | None = None) -> np.ndarray:
    """Tile N images (flattened or (N, C, H, W)) into one array of ceil(N / ncols) rows, for imshow."""
    arrays = as_images(images, image_shape)
    n = len(arrays)
    nrows = math.ceil(n / ncols)
    h, w = arrays.shape[1:3]
    canvas = np.zeros((nrows * h, ncols * w) + arrays.shape[3:], dtype=np.float32)
    for i, image in enumerate(arrays):
        r, c = divmod(i, ncols)
        canvas[r * h:(r + 1) * h, c * w:(c + 1) * w] = image
    return canvas


def show_manifold(decode: Decode, *, n: int = 15, limit: float = 3.0, device: torch.device | str | None = None,
                  image_shape: Sequence[int] | None = None, title: str = "decoded latent grid", ax=None) -> None:
    """Decode an n x n grid of a 2-D latent space over [-limit, limit]^2 and show it as one image.

    The axes are the latent coordinates, so the picture lines up with a scatter of the encoded
    test set over the same range.
    """
    plt = pyplot()
    grid = latent_grid(n, limit)
    with evaluating(decode):
        images = decode(grid.to(_device_of(decode, device))).cpu().float()
    canvas = tile_images(images, n, image_shape)
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 5.5))
    else:
        fig = ax.figure
    half = limit / (n - 1)  # each tile is centred on its grid value
    ax.imshow(canvas, cmap="gray" if canvas.ndim == 2 else None, vmin=0, vmax=1,
              extent=(-limit - half, limit + half, -limit - half, limit + half))
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    ax.set_title(title)
    fig.tight_layout()


# ---------------------------------------------------------------------------------------------
# Samples from the prior

def sample_prior(decode: Decode, latent_dim: int, n: int = 32, *, seed: int | None = 0,
                 device: torch.device | str | None = None, temperature: float = 1.0) -> Tensor:
    """Decode `n` draws z ~ N(0, temperature^2 I) of dimension `latent_dim`; returns (n, ...) on the CPU.

    With a `seed` the draws come from their own generator (the same z for every model, and the
    global random state is left alone); `seed=None` uses the global generator.
    """
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    z = torch.randn(n, latent_dim, generator=generator) * temperature
    with evaluating(decode):
        return decode(z.to(_device_of(decode, device))).cpu().float()


def show_samples(decoders: Mapping[str, Decode] | Decode, latent_dim: int, *, n: int = 10, rows: int = 1,
                 seed: int = 0, device: torch.device | str | None = None, image_shape: Sequence[int] | None = None,
                 title: str = "samples from the prior N(0, I)") -> None:
    """Images decoded from the same prior draws by each decoder: `rows` rows of `n` per decoder."""
    if not isinstance(decoders, Mapping):
        decoders = {"": decoders}
    shown: dict[str, Tensor] = {}
    for name, decode in decoders.items():
        images = sample_prior(decode, latent_dim, n * rows, seed=seed, device=device)
        for r in range(rows):
            # show_images needs a distinct label per row: only a decoder's first row shows its name,
            # the others get labels of blanks of distinct lengths.
            label = name if r == 0 and name else " " * (len(shown) + 1)
            shown[label] = images[r * n:(r + 1) * n]
    show_images(shown, n=n, image_shape=image_shape, title=title)


# ---------------------------------------------------------------------------------------------
# Interpolation

def linear_path(z_a: Tensor, z_b: Tensor, steps: int = 10) -> Tensor:
    """`steps` points on the segment from z_a to z_b (both (d,) or (1, d)), ends included: (steps, d)."""
    if steps < 2:
        raise ValueError(f"a path needs at least 2 steps, got {steps}")
    a, b = z_a.reshape(1, -1), z_b.reshape(1, -1)
    if a.shape != b.shape:
        raise ValueError(f"z_a and z_b differ in size: {tuple(z_a.shape)} vs {tuple(z_b.shape)}")
    t = torch.linspace(0.0, 1.0, steps, device=a.device, dtype=a.dtype).unsqueeze(1)
    return (1 - t) * a + t * b


def interpolate(encode: Encode, decode: Decode, x_a: Tensor, x_b: Tensor, steps: int = 10) -> Tensor:
    """Encode two single images, decode the straight line between their latents: (steps, ...) on the CPU.

    `x_a` and `x_b` are one image each, in the shape the encoder takes without the batch dimension
    (or with a batch dimension of 1). A VAE's encoder contributes its mean.
    """
    device = _device_of(encode)
    with evaluating(encode, decode):
        pair = torch.stack([x_a.reshape(-1) if x_a.ndim == 1 else x_a.squeeze(0),
                            x_b.reshape(-1) if x_b.ndim == 1 else x_b.squeeze(0)]).to(device)
        z = _first(encode(pair))
        return decode(linear_path(z[0], z[1], steps)).cpu().float()


def show_interpolations(models: Mapping[str, tuple[Encode, Decode]], x_a: Tensor, x_b: Tensor, *, steps: int = 10,
                        image_shape: Sequence[int] | None = None, title: str = "interpolation in latent space") -> None:
    """One row per model: the decoded straight line from x_a's latent to x_b's (models: name -> (encode, decode))."""
    rows = {name: interpolate(encode, decode, x_a, x_b, steps) for name, (encode, decode) in models.items()}
    show_images(rows, n=steps, image_shape=image_shape, title=title)


# ---------------------------------------------------------------------------------------------
# Latent traversal

def latent_traversal(decode: Decode, z: Tensor, dims: Sequence[int], values: Sequence[float]) -> dict[int, Tensor]:
    """For each latent dimension in `dims`: decode copies of `z` ((d,) or (1, d)) with that coordinate
    set to each of `values` and the others left alone. Returns dim -> (len(values), ...) on the CPU."""
    base = z.detach().reshape(1, -1)
    column = torch.as_tensor(list(values), dtype=base.dtype, device=base.device)
    out = {}
    with evaluating(decode):
        for dim in dims:
            if not 0 <= dim < base.shape[1]:
                raise ValueError(f"dimension {dim} is outside the latent's {base.shape[1]} dimensions")
            zs = base.repeat(len(column), 1)
            zs[:, dim] = column
            out[int(dim)] = decode(zs).cpu().float()
    return out


def show_traversal(decode: Decode, z: Tensor, dims: Sequence[int], values: Sequence[float], *,
                   image_shape: Sequence[int] | None = None, title: str = "latent traversal") -> None:
    """One row per dimension in `dims`: z with that coordinate swept over `values` (shown in the title)."""
    rows = latent_traversal(decode, z, dims, values)
    span = f"{float(values[0]):+.1f} … {float(values[-1]):+.1f}" if len(values) else ""
    show_images({f"z[{d}]": images for d, images in rows.items()}, n=len(values), image_shape=image_shape,
                title=f"{title} (each row: one coordinate from {span})")


# ---------------------------------------------------------------------------------------------
# Diagnostics

def plot_beta_sweep(betas: Sequence[float], recon: Sequence[float], kl: Sequence[float], *,
                    title: str = "the beta trade-off") -> None:
    """Two panels against beta: the reconstruction term and the KL term, in nats per image.

    The betas are placed evenly, in the order given (a sweep usually doubles beta or includes 0,
    which no log axis shows well); the KL, which spans orders of magnitude, is on a log axis.
    """
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    positions = list(range(len(betas)))
    for ax, values, label, log in ((axes[0], recon, "reconstruction (nats)", False),
                                   (axes[1], kl, "KL (nats)", True)):
        ax.plot(positions, [float(v) for v in values], marker="o")
        ax.set_xticks(positions, [f"{float(b):g}" for b in betas])
        ax.set_xlabel("beta")
        ax.set_ylabel(label)
        if log and all(float(v) > 0 for v in values):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
