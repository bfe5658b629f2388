"""Numbers the labs report: reconstruction error, latent clustering quality, parameter counts."""

from __future__ import annotations

import math
from typing import Callable, Iterable

import numpy as np
import torch
from torch import Tensor, nn

from .runtime import evaluating


def first_output(output: Tensor | tuple | list) -> Tensor:
    """The course's models return a tensor or a tuple that starts with it (the reconstruction, or
    a VAE encoder's mean): that tensor."""
    return output[0] if isinstance(output, (tuple, list)) else output


def reconstruction_mse(model: nn.Module, batches: Iterable) -> float:
    """The mean squared error per pixel between the images of `batches` and the model's
    reconstructions (its output, or the first element of its output), in evaluation mode."""
    squared_error, pixels = 0.0, 0
    with evaluating(model):
        for inputs, _ in batches:
            recon = first_output(model(inputs))
            # Summed on the device, read once at the end: .item() per batch would stall a GPU.
            squared_error = squared_error + (recon.float() - inputs.float()).pow(2).sum()
            pixels += inputs.numel()
    if pixels == 0:
        raise ValueError("reconstruction_mse got no batches")
    return float(squared_error) / pixels


def collect_latents(encode: Callable[[Tensor], Tensor], batches: Iterable) -> tuple[Tensor, Tensor]:
    """Run `encode` over every batch; returns (latents (N, d) on the CPU, labels (N,)).

    Pass a model's encoder (e.g. ``model.encoder``) or any function of a batch of images; an
    encoder that returns a tuple (a VAE's mean and log-variance) contributes its first element.
    A module runs in evaluation mode, without gradients, and is put back as it was.
    """
    latents, labels = [], []
    with evaluating(encode):
        for images, batch_labels in batches:
            z = first_output(encode(images))
            latents.append(z.detach().cpu().float().flatten(1))
            labels.append(batch_labels.cpu())
    if not latents:
        raise ValueError("collect_latents got no batches")
    return torch.cat(latents), torch.cat(labels)


def latent_quality(latents: Tensor | np.ndarray, labels: Tensor | np.ndarray, *, n_clusters: int = 10,
                   max_points: int = 5000, seed: int = 0) -> dict[str, float]:
    """How well the latent space separates the classes, with four scikit-learn measures.

    * ``nmi`` / ``ari``: agreement of k-means clusters (k = `n_clusters`) with the labels,
      1 is perfect and 0 is chance.
    * ``silhouette``: how compact and separate the classes are in the latent space, in [-1, 1].
    * ``knn_accuracy``: accuracy of a 5-nearest-neighbour classifier trained on 80% of the
      points and tested on the other 20%.

    At most `max_points` points are used (the first ones), to keep it fast.
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score
    from sklearn.neighbors import KNeighborsClassifier

    z = _as_numpy(latents, "latents").astype(np.float64)
    y = _as_numpy(labels, "labels").astype(np.int64)
    if z.ndim != 2 or y.ndim != 1 or len(z) != len(y):
        raise ValueError(f"latent_quality needs latents (N, d) and labels (N,), got {z.shape} and {y.shape}")
    if not np.isfinite(z).all():
        raise ValueError("latents contain NaN or infinity")
    z, y = z[:max_points], y[:max_points]
    clusters = KMeans(n_clusters=n_clusters, n_init=4, random_state=seed).fit_predict(z)
    split = int(0.8 * len(z))
    knn = KNeighborsClassifier(n_neighbors=5).fit(z[:split], y[:split])
    return {
        "nmi": float(normalized_mutual_info_score(y, clusters)),
        "ari": float(adjusted_rand_score(y, clusters)),
        "silhouette": float(silhouette_score(z, y, sample_size=min(len(z), 2000), random_state=seed)),
        "knn_accuracy": float(knn.score(z[split:], y[split:])),
    }


def count_parameters(model: nn.Module) -> int:
    """The number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _as_numpy(x, name: str) -> np.ndarray:
    if isinstance(x, Tensor):
        return x.detach().cpu().numpy()
    if isinstance(x, np.ndarray):
        return x
    raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}")


def psnr(mse: float) -> float:
    """Peak signal-to-noise ratio in dB for images in [0, 1]."""
    return float("inf") if mse <= 0 else 10 * math.log10(1.0 / mse)
