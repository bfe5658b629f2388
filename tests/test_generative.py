"""Unit tests of aelab.generative (lab 04's plumbing): small random tensors, no data files."""

from __future__ import annotations

import matplotlib
import pytest
import torch
from torch import Tensor, nn

from aelab.generative import (interpolate, latent_grid, latent_traversal, linear_path, mlp, plot_beta_sweep,
                              probabilities, sample_prior, show_interpolations, show_manifold, show_samples,
                              show_traversal, tile_images)

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


class Recorder(nn.Module):
    """A decoder from a latent of size `latent` to 28x28 images that records how it was called."""

    def __init__(self, latent: int = 2, pixels: int = 784):
        super().__init__()
        self.linear = nn.Linear(latent, pixels)
        self.dropout = nn.Dropout(0.5)
        self.calls: list[tuple[bool, bool]] = []

    def forward(self, z: Tensor) -> Tensor:
        self.calls.append((self.training, torch.is_grad_enabled()))
        return torch.sigmoid(self.dropout(self.linear(z)))


class TupleEncoder(nn.Module):
    """Returns (mu, logvar) like a VAE's encoder; mu is the first `latent` pixels."""

    def __init__(self, latent: int = 3):
        super().__init__()
        self.latent = latent
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mu = x[:, :self.latent] + self.dummy
        return mu, torch.full_like(mu, -1.0)


# --- mlp ----------------------------------------------------------------------------------------

def test_mlp_layers_and_shapes():
    net = mlp([10, 7, 4])
    kinds = [type(m) for m in net]
    assert kinds == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU]
    assert net(torch.randn(5, 10)).shape == (5, 4)
    assert (net(torch.randn(5, 10)) >= 0).all()


@pytest.mark.parametrize("sizes", [[3], [], [4, 0]])
def test_mlp_rejects_bad_sizes(sizes):
    with pytest.raises(ValueError):
        mlp(sizes)


# --- grid and manifold --------------------------------------------------------------------------

def test_latent_grid_layout():
    grid = latent_grid(5, 3.0)
    assert grid.shape == (25, 2)
    # Reading order: top-left is (-3, +3), top-right (+3, +3), bottom-left (-3, -3).
    assert torch.allclose(grid[0], torch.tensor([-3.0, 3.0]))
    assert torch.allclose(grid[4], torch.tensor([3.0, 3.0]))
    assert torch.allclose(grid[20], torch.tensor([-3.0, -3.0]))
    assert torch.allclose(grid[12], torch.zeros(2))
    assert grid.abs().max() == 3.0


@pytest.mark.parametrize("n, limit", [(1, 3.0), (4, 0.0)])
def test_latent_grid_rejects_bad_arguments(n, limit):
    with pytest.raises(ValueError):
        latent_grid(n, limit)


def test_tile_images_places_each_image():
    images = torch.stack([torch.full((1, 2, 3), v) for v in (0.1, 0.2, 0.3)])
    canvas = tile_images(images, ncols=2)
    assert canvas.shape == (4, 6)
    assert canvas[0, 0] == pytest.approx(0.1) and canvas[0, 3] == pytest.approx(0.2)
    assert canvas[2, 0] == pytest.approx(0.3) and canvas[2, 3] == 0.0  # the empty slot stays black


def test_show_manifold_runs_in_eval_mode_and_restores_training():
    decoder = Recorder(latent=2).train()
    assert show_manifold(decoder, n=4, limit=2.0) is None  # shown once by Jupyter, never echoed
    assert len(plt.gcf().axes) == 1
    assert decoder.calls == [(False, False)]
    assert decoder.training


def test_show_manifold_accepts_a_bound_method():
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.dec = Recorder(latent=2)

        def decode(self, z: Tensor) -> Tensor:
            return self.dec(z)

    model = Model().train()
    show_manifold(model.decode, n=3)
    assert model.dec.calls == [(False, False)]
    assert model.training and model.dec.training


# --- sampling -----------------------------------------------------------------------------------

def test_sample_prior_is_repeatable_and_leaves_the_global_generator_alone():
    decoder = Recorder(latent=4)
    state = torch.get_rng_state()
    a = sample_prior(decoder, 4, n=6, seed=3)
    b = sample_prior(decoder, 4, n=6, seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    assert a.shape == (6, 784)
    assert torch.equal(a, b)
    assert not torch.equal(a, sample_prior(decoder, 4, n=6, seed=4))


def test_sample_prior_temperature_zero_decodes_the_origin():
    decoder = Recorder(latent=3)
    out = sample_prior(decoder, 3, n=2, temperature=0.0)
    with torch.no_grad():
        expected = decoder.eval()(torch.zeros(2, 3))
    assert torch.allclose(out, expected)


def test_show_samples_one_row_per_decoder_and_row():
    assert show_samples({"a": Recorder(5), "b": Recorder(5)}, 5, n=4, rows=2) is None
    fig = plt.gcf()
    rows = {round(ax.get_position().y0, 3) for ax in fig.axes}
    assert len(fig.axes) == 4 * 4 and len(rows) == 4


# --- interpolation ------------------------------------------------------------------------------

def test_linear_path_endpoints_and_midpoint():
    a, b = torch.tensor([0.0, 2.0]), torch.tensor([4.0, -2.0])
    path = linear_path(a, b, steps=5)
    assert path.shape == (5, 2)
    assert torch.equal(path[0], a) and torch.allclose(path[-1], b)
    assert torch.allclose(path[2], torch.tensor([2.0, 0.0]))
    assert torch.allclose(linear_path(a.unsqueeze(0), b.unsqueeze(0), 3)[1], (a + b) / 2)


def test_linear_path_rejects_bad_input():
    with pytest.raises(ValueError):
        linear_path(torch.zeros(2), torch.zeros(2), steps=1)
    with pytest.raises(ValueError):
        linear_path(torch.zeros(2), torch.zeros(3))


def test_interpolate_uses_the_mean_of_a_tuple_encoder():
    encoder, decoder = TupleEncoder(3), nn.Identity()
    x_a, x_b = torch.rand(10), torch.rand(1, 10)
    out = interpolate(encoder, decoder, x_a, x_b, steps=4)
    assert out.shape == (4, 3)
    assert torch.allclose(out[0], x_a[:3]) and torch.allclose(out[-1], x_b[0, :3])
    assert torch.allclose(out[1], x_a[:3] + (x_b[0, :3] - x_a[:3]) / 3, atol=1e-6)


def test_interpolate_puts_modules_in_eval_mode():
    encoder = nn.Sequential(nn.Linear(784, 2), nn.Dropout(0.9)).train()
    decoder = Recorder(2).train()
    x_a, x_b = torch.rand(784), torch.rand(784)
    out = interpolate(encoder, decoder, x_a, x_b, steps=6)
    assert out.shape == (6, 784) and not out.requires_grad
    assert decoder.calls == [(False, False)]
    # Dropout is off in both modules, so the same call twice gives the same images.
    assert torch.equal(out, interpolate(encoder, decoder, x_a, x_b, steps=6))
    assert encoder.training and decoder.training


def test_show_interpolations_one_row_per_model():
    models = {"one": (TupleEncoder(2), Recorder(2)), "two": (TupleEncoder(2), Recorder(2))}
    assert show_interpolations(models, torch.rand(784), torch.rand(784), steps=5) is None
    assert len(plt.gcf().axes) == 2 * 5


# --- traversal ----------------------------------------------------------------------------------

def test_latent_traversal_changes_one_coordinate_only():
    z = torch.tensor([0.5, -1.0, 2.0])
    rows = latent_traversal(nn.Identity(), z, dims=[0, 2], values=[-1.0, 0.0, 1.0])
    assert sorted(rows) == [0, 2]
    assert torch.equal(rows[0][:, 0], torch.tensor([-1.0, 0.0, 1.0]))
    assert torch.equal(rows[0][:, 1:], z[1:].expand(3, 2))
    assert torch.equal(rows[2][:, 2], torch.tensor([-1.0, 0.0, 1.0]))
    assert torch.equal(rows[2][:, :2], z[:2].expand(3, 2))
    assert torch.equal(z, torch.tensor([0.5, -1.0, 2.0]))  # the input is not modified


def test_latent_traversal_rejects_a_dimension_out_of_range():
    with pytest.raises(ValueError):
        latent_traversal(nn.Identity(), torch.zeros(3), dims=[3], values=[0.0])


def test_show_traversal_shape():
    assert show_traversal(Recorder(4), torch.zeros(4), dims=[1, 3], values=[-2.0, 0.0, 2.0]) is None
    assert len(plt.gcf().axes) == 2 * 3


# --- diagnostics --------------------------------------------------------------------------------

def test_plot_beta_sweep_with_beta_zero():
    assert plot_beta_sweep([0.0, 0.5, 1.0, 4.0], [100.0, 110.0, 120.0, 150.0], [240.0, 28.0, 19.0, 5.0]) is None
    fig = plt.gcf()
    assert len(fig.axes) == 2
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["0", "0.5", "1", "4"]
    assert fig.axes[1].get_yscale() == "log"


# --- logits -------------------------------------------------------------------------------------

class LogitVAE(nn.Module):
    """A model whose decode returns logits (large ones, far outside [0, 1]), as lab 04's VAE does."""

    def __init__(self, latent: int = 2):
        super().__init__()
        self.linear = nn.Linear(latent, 784)
        self.dropout = nn.Dropout(0.5)
        self.calls: list[tuple[bool, bool]] = []

    def decode(self, z: Tensor) -> Tensor:
        self.calls.append((self.training, torch.is_grad_enabled()))
        return self.dropout(self.linear(z)) * 50.0


def test_probabilities_is_the_sigmoid_of_the_logits():
    model = LogitVAE().eval()
    z = torch.randn(5, 2)
    with torch.no_grad():
        want = torch.sigmoid(model.decode(z))
        got = probabilities(model.decode)(z)
    assert torch.equal(got, want)
    assert got.min() >= 0 and got.max() <= 1
    assert torch.equal(probabilities(nn.Identity())(torch.tensor([0.0])), torch.tensor([0.5]))
    with pytest.raises(TypeError):
        probabilities(3)


def test_probabilities_keeps_the_model_findable_for_the_helpers():
    model = LogitVAE().train()
    images = sample_prior(probabilities(model.decode), 2, n=4, seed=1)
    assert images.shape == (4, 784) and images.min() >= 0 and images.max() <= 1
    assert model.calls == [(False, False)]  # run in eval mode (dropout off), without a graph ...
    assert model.training                   # ... and put back as it was
    model.eval()
    show_manifold(probabilities(model.decode), n=3)
    assert not model.training               # an eval-mode model stays in eval mode
    meta = LogitVAE().to("meta")
    from aelab.runtime import device_of
    assert device_of(probabilities(meta.decode)).type == "meta"
    assert device_of(probabilities(lambda z: z)).type == "cpu"
