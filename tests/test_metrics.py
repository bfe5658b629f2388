import numpy as np
import pytest
import torch
from torch import nn

from aelab.data import Batches
from aelab.metrics import collect_latents, count_parameters, latent_quality, principal_angles, reconstruction_mse


def test_principal_angles_of_known_subspaces():
    e = torch.eye(4)
    torch.testing.assert_close(principal_angles(e[:, :2], e[:, :2] @ torch.tensor([[2.0, 1.0], [0.0, 3.0]])),
                               torch.zeros(2), atol=1e-3, rtol=0)
    torch.testing.assert_close(principal_angles(e[:, :2], e[:, 2:]), torch.full((2,), 90.0))
    # A plane at 30 degrees to another along one direction, sharing the other.
    c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)
    tilted = torch.tensor([[1.0, 0.0], [0.0, c], [0.0, s], [0.0, 0.0]])
    torch.testing.assert_close(principal_angles(e[:, :2], tilted), torch.tensor([0.0, 30.0]), atol=1e-3, rtol=0)
    with pytest.raises(ValueError):
        principal_angles(torch.zeros(3, 2), torch.zeros(4, 2))


def test_latent_quality_separates_clear_clusters_from_noise():
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(10).repeat_interleave(50)
    centres = torch.randn(10, 8, generator=gen) * 10
    clustered = centres[labels] + torch.randn(500, 8, generator=gen) * 0.1
    good = latent_quality(clustered, labels)
    noise = latent_quality(torch.randn(500, 8, generator=gen), labels)
    assert good["nmi"] > 0.95 and good["ari"] > 0.9 and good["silhouette"] > 0.8
    assert noise["nmi"] < 0.2 and noise["knn_accuracy"] < 0.3
    # Shuffled rows: knn must be tested on held-out points drawn from every class.
    perm = torch.randperm(500, generator=gen)
    assert latent_quality(clustered[perm], labels[perm])["knn_accuracy"] > 0.95


def test_latent_quality_rejects_bad_input():
    with pytest.raises(ValueError, match="NaN"):
        latent_quality(torch.full((20, 2), float("nan")), torch.zeros(20))
    with pytest.raises(ValueError, match="latents"):
        latent_quality(torch.zeros(20, 2), torch.zeros(19))
    with pytest.raises(TypeError):
        latent_quality([[0.0]], [0])


def _batches(n=30):
    images = torch.randint(0, 256, (n, 1, 2, 2), dtype=torch.uint8)
    return Batches(images, torch.arange(n) % 3, 8, flatten=True, device="cpu", shuffle=False)


def test_reconstruction_mse_of_a_perfect_and_a_zero_model():
    batches = _batches()

    class Perfect(nn.Module):
        def forward(self, x):
            return x, x

    class Zero(nn.Module):
        def forward(self, x):
            return torch.zeros_like(x)

    assert reconstruction_mse(Perfect(), batches) == 0.0
    expected = float((batches.images.float() / 255).pow(2).mean())
    assert reconstruction_mse(Zero(), batches) == pytest.approx(expected, rel=1e-5)


def test_collect_latents_puts_a_module_in_eval_and_restores_it():
    encoder = nn.Sequential(nn.Linear(4, 2), nn.Dropout(0.5)).train()
    batches = _batches()
    z1, y = collect_latents(encoder, batches)
    z2, _ = collect_latents(encoder, batches)
    assert z1.shape == (30, 2) and y.shape == (30,)
    torch.testing.assert_close(z1, z2)  # dropout off during collection
    assert encoder.training


def test_count_parameters():
    assert count_parameters(nn.Linear(3, 2)) == 8
