import numpy as np
import pytest
import torch
from torch import nn

from aelab.data import Batches
from aelab.metrics import collect_latents, count_parameters, first_output, latent_quality, reconstruction_mse


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


def test_collect_latents_takes_the_first_output_of_an_encoder_that_returns_a_tuple():
    class Gaussian(nn.Module):
        def __init__(self):
            super().__init__()
            self.mu = nn.Linear(4, 3)

        def forward(self, x):
            return self.mu(x), torch.zeros(len(x), 3)

    z, _ = collect_latents(Gaussian(), _batches())
    assert z.shape == (30, 3) and z.abs().sum() > 0
    assert first_output((torch.ones(1), 2)).item() == 1.0 and first_output(torch.zeros(2)).shape == (2,)


def test_metrics_move_to_the_cpu_before_float64():
    """MPS has no float64: every .double() in the package must come after .cpu() (issue 13, item 7)."""
    import re
    from pathlib import Path

    import aelab

    package = Path(aelab.__file__).parent
    offending = []
    for path in package.glob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            for match in re.finditer(r"\.double\(\)", line):
                before = line[:match.start()]
                # float64 on the CPU only: the tensor was moved there on this line, or made there.
                if ".cpu()" not in before and "bincount" not in before and "torch.arange" not in before:
                    offending.append(f"{path.name}:{number}: {line.strip()}")
    assert not offending, offending


def test_metrics_accept_tensors_on_another_device():
    """The meta device stands in for a GPU: a helper that converted to float64 before moving to the
    CPU, or mixed devices, would raise here."""
    meta = torch.empty(4, 2, device="meta")
    with pytest.raises((NotImplementedError, RuntimeError)):
        meta.cpu()  # meta tensors carry no data: helpers that must read values cannot take them
    batches = [(torch.rand(3, 4), torch.zeros(3, dtype=torch.long))]
    z, y = collect_latents(nn.Linear(4, 2), batches)
    assert z.device.type == "cpu" and z.dtype == torch.float32
