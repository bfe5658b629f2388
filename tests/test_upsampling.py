"""Unit tests of aelab.upsampling, lab 03's plumbing: small tensors and modules, no data files."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import torch
from matplotlib.figure import Figure
from torch import nn

from aelab import upsampling
from aelab.upsampling import (
    add_noise, checkerboard_fraction, checkerboard_score, constant_response, resize_conv_counts, show_patterns,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _checkerboard(size: int = 8) -> torch.Tensor:
    idx = torch.arange(size)
    return ((idx[:, None] + idx[None, :]) % 2).float() * 2 - 1


# --- add_noise ------------------------------------------------------------------------------------

def test_add_noise_keeps_shape_dtype_range_and_leaves_the_input_alone():
    images = torch.rand(4, 1, 6, 6)
    before = images.clone()
    noisy = add_noise(images, 0.5)
    assert noisy.shape == images.shape and noisy.dtype == images.dtype
    assert float(noisy.min()) >= 0.0 and float(noisy.max()) <= 1.0
    assert torch.equal(images, before)
    assert not torch.equal(noisy, images)


def test_add_noise_with_a_generator_repeats_and_has_the_right_spread():
    images = torch.full((200, 1, 10, 10), 0.5)
    a = add_noise(images, 0.1, generator=torch.Generator().manual_seed(3))
    b = add_noise(images, 0.1, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    # 20,000 draws of N(0.5, 0.1^2), far from the clipping bounds: mean and std within ~5 sigma.
    assert float(a.mean()) == pytest.approx(0.5, abs=5 * 0.1 / 20_000 ** 0.5)
    assert float(a.std()) == pytest.approx(0.1, rel=0.03)


def test_add_noise_without_clipping_and_with_zero_std():
    images = torch.zeros(3, 1, 4, 4)
    assert float(add_noise(images, 1.0, clip=False, generator=torch.Generator().manual_seed(0)).min()) < 0
    assert torch.equal(add_noise(images, 0.0), images)


def test_add_noise_rejects_bad_input():
    with pytest.raises(TypeError, match="floating-point"):
        add_noise(torch.zeros(2, 2, dtype=torch.uint8), 0.1)
    with pytest.raises(ValueError, match="std"):
        add_noise(torch.zeros(2, 2), -0.1)


# --- kernel-tap counts ----------------------------------------------------------------------------

# The 1-D count of a stride-2 transposed convolution with a 3-tap kernel on 4 inputs, from the
# definition (input i writes to outputs 2i, 2i+1, 2i+2): the uneven grid. Written out here, because
# computing it is lab 03's overlap_1d stub, which nothing in the package may answer.
_ROW_3_2_4 = torch.tensor([1, 1, 2, 1, 2, 1, 2, 1, 1], dtype=torch.float64)


def test_the_package_does_not_count_transposed_overlaps():
    # overlap_counts(k, s, n)[0] answered lab 03's overlap_1d stub; it was removed on purpose.
    assert not hasattr(upsampling, "overlap_counts")


def test_resize_conv_counts_are_flat_inside():
    counts = resize_conv_counts(3, 2, 5)
    assert counts.shape == (10, 10) and counts.dtype == torch.int64
    assert set(counts[1:-1, 1:-1].unique().tolist()) == {9}
    assert int(counts[0, 0]) == 4 and int(counts[0, 5]) == 6


@pytest.mark.parametrize("call", [lambda: resize_conv_counts(0, 2, 4), lambda: resize_conv_counts(3, 2, 2.5),
                                  lambda: resize_conv_counts(4, 2, 4), lambda: resize_conv_counts(3, 0, 4)])
def test_counts_reject_bad_arguments(call):
    with pytest.raises(ValueError):
        call()


# --- constant_response and checkerboard_score ---------------------------------------------------------

def test_constant_response_of_a_transposed_convolution_is_the_tap_count():
    up = nn.ConvTranspose2d(2, 3, 3, stride=2, bias=False)
    nn.init.ones_(up.weight)
    pattern = constant_response(up, (2, 4, 4), value=0.5)
    # Each output pixel adds 0.5 from 2 input channels per tap; every output channel is the same.
    assert pattern.shape == (9, 9) and pattern.dtype == torch.float32
    assert torch.allclose(pattern, torch.outer(_ROW_3_2_4, _ROW_3_2_4).float())


def test_constant_response_runs_stages_in_order_in_eval_mode_and_restores_modes():
    seen = []

    class Probe(nn.Module):
        def forward(self, x):
            seen.append(self.training)
            return x * 2

    first, second = Probe().train(), nn.Sequential(nn.Dropout(0.9), nn.Upsample(scale_factor=2)).train()
    pattern = constant_response([first, second], (1, 3, 3))
    assert seen == [False]
    assert torch.equal(pattern, torch.full((6, 6), 2.0))  # dropout off: nothing zeroed or rescaled
    assert first.training and second.training and second[0].training


def test_constant_response_uses_the_modules_device_and_rejects_bad_input():
    with pytest.raises(TypeError):
        constant_response([], (1, 2, 2))
    with pytest.raises(ValueError, match="in_shape"):
        constant_response(nn.Identity(), (2, 2))
    with pytest.raises(ValueError, match="N, C, H, W"):
        constant_response(nn.Flatten(), (1, 2, 2))


def test_constant_response_separates_the_two_decoder_designs():
    torch.manual_seed(0)
    transposed = nn.Sequential(nn.ConvTranspose2d(8, 4, 3, 2, 1, 1), nn.ReLU(), nn.ConvTranspose2d(4, 1, 3, 2, 1, 1))
    resize = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(8, 4, 3, padding=1), nn.ReLU(),
                           nn.Upsample(scale_factor=2), nn.Conv2d(4, 1, 3, padding=1))
    assert checkerboard_score(constant_response(transposed, (8, 7, 7))) > 0.1
    assert checkerboard_score(constant_response(resize, (8, 7, 7))) < 1e-6


def test_checkerboard_score_values():
    assert checkerboard_score(torch.full((12, 12), 3.0)) == 0.0
    assert checkerboard_score(torch.zeros(12, 12)) == 0.0
    # Alternating between a = 1 and b = 3: |a - b| / (|a + b| + |a - b|) = 2 / 6.
    assert checkerboard_score(_checkerboard(12) + 2) == pytest.approx(1 / 3)
    assert checkerboard_score(_checkerboard(12)) == pytest.approx(1.0)
    # The border is ignored: a flat interior with a wild frame scores 0.
    framed = torch.ones(12, 12)
    framed[0] = 100
    assert checkerboard_score(framed, border=1) == 0.0
    assert checkerboard_score(framed, border=0) > 0.5


def test_checkerboard_score_rejects_bad_input():
    with pytest.raises(ValueError, match="2-D"):
        checkerboard_score(torch.zeros(1, 8, 8))
    with pytest.raises(ValueError, match="border"):
        checkerboard_score(torch.zeros(8, 8), border=4)


# --- checkerboard_fraction --------------------------------------------------------------------------

def test_checkerboard_fraction_values():
    assert checkerboard_fraction(_checkerboard(8)[None]) == pytest.approx(1.0)
    assert checkerboard_fraction(_checkerboard(8)[None, None] * 50 + 7) == pytest.approx(1.0)  # scale-free
    ramp = torch.linspace(0, 1, 64).reshape(1, 1, 8, 8)
    assert checkerboard_fraction(ramp) < 1e-9
    stripes = (torch.arange(8) % 2).float().repeat(8, 1)[None]
    assert checkerboard_fraction(stripes) == 0.0
    assert checkerboard_fraction(torch.ones(2, 1, 5, 5)) == 0.0
    # White noise sits in between.
    noise = torch.rand(20, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    assert 0.3 < checkerboard_fraction(noise) < 0.7


def test_checkerboard_fraction_rejects_bad_shapes():
    with pytest.raises(ValueError):
        checkerboard_fraction(torch.zeros(2, 3, 8, 8))
    with pytest.raises(ValueError):
        checkerboard_fraction(torch.zeros(8, 8))


# --- show_patterns --------------------------------------------------------------------------------

def test_show_patterns_draws_bars_images_and_scores():
    assert show_patterns({"1-D": torch.tensor([1, 2, 1, 2]), "2-D": torch.outer(_ROW_3_2_4, _ROW_3_2_4),
                          "flat": torch.ones(12, 12)}, title="patterns") is None
    fig = plt.gcf()
    assert isinstance(fig, Figure)
    titles = [ax.get_title() for ax in fig.axes]
    assert "1-D" in titles
    assert any("checkerboard score 0.000" in t for t in titles)


def test_show_patterns_wraps_into_rows_and_can_hide_scores():
    show_patterns({f"p{i}": torch.rand(10, 10) for i in range(5)}, ncols=3, score_border=None)
    fig = plt.gcf()
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert len(panels) == 5 and all("score" not in ax.get_title() for ax in panels)
    with pytest.raises(ValueError):
        show_patterns({})
    with pytest.raises(ValueError, match="1-D or 2-D"):
        show_patterns({"bad": torch.zeros(2, 2, 2)})
