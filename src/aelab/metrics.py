"""Numbers the labs report: reconstruction error, latent clustering quality, subspace angles."""

from __future__ import annotations

import math
from typing import Callable, Iterable

import numpy as np
import torch
from torch import Tensor, nn

from .training import model_output_reconstruction


@torch.no_grad()
def reconstruction_mse(model: nn.Module, batches: Iterable) -> float:
    """Mean squared error per pixel between inputs and reconstructions, in eval mode."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for images, _ in batches:
        recon = model_output_reconstruction(model(images))
        total = total + (recon.float() - images.float()).pow(2).sum()
        count += images.numel()
    model.train(was_training)
    if count == 0:
        raise ValueError("reconstruction_mse got no batches")
    return float(total) / count


@torch.no_grad()
def collect_latents(encode: Callable[[Tensor], Tensor], batches: Iterable) -> tuple[Tensor, Tensor]:
    """Run `encode` over every batch; returns (latents (N, d) on the CPU, labels (N,)).

    Pass a model's encoder (e.g. ``model.encoder``) or any function of a batch of images.
    A module is put in eval mode for the pass and restored afterwards.
    """
    module = encode if isinstance(encode, nn.Module) else getattr(encode, "__self__", None)
    was_training = module.training if isinstance(module, nn.Module) else None
    if isinstance(module, nn.Module):
        module.eval()
    latents, labels = [], []
    for images, batch_labels in batches:
        z = encode(images)
        z = z[0] if isinstance(z, (tuple, list)) else z
        latents.append(z.detach().float().flatten(1).cpu())
        labels.append(batch_labels.cpu())
    if isinstance(module, nn.Module):
        module.train(was_training)
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


def principal_angles(a: Tensor, b: Tensor) -> Tensor:
    """Principal angles in degrees between the column spaces of `a` (n, k) and `b` (n, m), ascending.

    0 degrees means the two subspaces share that direction; 90 means orthogonal.
    """
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[0]:
        raise ValueError(f"principal_angles needs two (n, k) matrices with the same n, got {tuple(a.shape)} and {tuple(b.shape)}")
    qa, _ = torch.linalg.qr(a.detach().double().cpu())
    qb, _ = torch.linalg.qr(b.detach().double().cpu())
    cosines = torch.linalg.svdvals(qa.T @ qb).clamp(-1.0, 1.0)
    return torch.rad2deg(torch.arccos(cosines)).float()  # cosines descend, so angles ascend


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
