"""Unit tests of aelab.codebook, lab 05's plumbing: small random tensors, no data files."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from aelab.codebook import (
    DeadCodeRestarts, code_counts, collect_codes, dead_codes, largest_intermediate, pixel_variance,
    plot_code_usage, random_codes, show_code_samples, train_variance,
)
from aelab.data import ImageDataset


# --- the data variance ----------------------------------------------------------------------------

def test_pixel_variance_matches_float64_on_the_unit_scale():
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (20, 3, 8, 8), generator=gen, dtype=torch.uint8)
    expected = (images.double() / 255).var(unbiased=False).item()
    assert pixel_variance(images) == pytest.approx(expected, rel=1e-12)


def test_pixel_variance_is_the_unit_scale_not_the_byte_or_symmetric_scale():
    images = torch.tensor([0, 255], dtype=torch.uint8)
    # Half the pixels at 0, half at 1: variance 0.25 on [0, 1] (it would be 1.0 on [-1, 1]).
    assert pixel_variance(images) == pytest.approx(0.25)
    assert pixel_variance(torch.full((5, 5), 17, dtype=torch.uint8)) == 0.0


def test_pixel_variance_rejects_float_and_empty_input():
    with pytest.raises(TypeError):
        pixel_variance(torch.rand(3, 4))
    with pytest.raises(ValueError):
        pixel_variance(torch.zeros(0, dtype=torch.uint8))


def test_train_variance_reads_the_training_split():
    train = torch.tensor([0, 255, 0, 255], dtype=torch.uint8).reshape(4, 1, 1, 1)
    test = torch.zeros(2, 1, 1, 1, dtype=torch.uint8)
    data = ImageDataset("toy", train, torch.zeros(4, dtype=torch.long), test, torch.zeros(2, dtype=torch.long),
                        classes=("a",), source="memory")
    assert train_variance(data) == pytest.approx(0.25)


# --- code usage -------------------------------------------------------------------------------------

def test_code_counts_and_dead_codes():
    codes = torch.tensor([[[0, 2], [2, 2]], [[4, 0], [2, 0]]])
    counts = code_counts(codes, 6)
    assert counts.dtype == torch.int64 and counts.tolist() == [3, 0, 4, 0, 1, 0]
    assert dead_codes(counts) == 3
    assert dead_codes(torch.ones(7)) == 0


def test_code_counts_rejects_out_of_range_and_float_codes():
    with pytest.raises(ValueError):
        code_counts(torch.tensor([0, 5]), 5)
    with pytest.raises(ValueError):
        code_counts(torch.tensor([-1, 0]), 5)
    with pytest.raises(TypeError):
        code_counts(torch.tensor([0.0, 1.0]), 5)


class _ToyCodes(nn.Module):
    """Codes from the sign of a linear map: (B, 1, 2, 2) images -> (B, 2, 2) codes in {0, 1}."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(1.0))

    def encode(self, images):
        assert not self.training, "collect_codes must put the module in eval mode"
        return (images[:, 0] * self.scale > 0.5).long()


def test_collect_codes_concatenates_batches_in_eval_mode_and_restores_the_mode():
    model = _ToyCodes().train()
    images = torch.rand(5, 1, 2, 2)
    batches = [(images[:3], torch.zeros(3)), (images[3:], torch.zeros(2))]
    codes = collect_codes(model.encode, batches)
    assert codes.shape == (5, 2, 2) and codes.dtype == torch.int64
    assert torch.equal(codes, (images[:, 0] > 0.5).long())
    assert model.training
    with pytest.raises(ValueError):
        collect_codes(model.encode, [])


def test_plot_code_usage_draws_one_curve_per_model_and_counts_dead_codes():
    import matplotlib.pyplot as plt

    plt.close("all")
    # None, so that a cell ending with the call shows the figure once.
    assert plot_code_usage({"before": torch.tensor([5, 0, 0, 1]), "after": torch.tensor([2, 2, 1, 1])}) is None
    ax = plt.gcf().axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["before: 2 of 4 codes dead", "after: 0 of 4 codes dead"]
    assert ax.get_yscale() == "log"
    assert plot_code_usage(torch.tensor([3, 1])) is None
    plt.close("all")


# --- decoding random codes -----------------------------------------------------------------------

def test_random_codes_uniform_and_by_frequency():
    gen = torch.Generator().manual_seed(0)
    uniform = random_codes(4, (3, 5), 7, generator=gen)
    assert uniform.shape == (4, 3, 5) and uniform.dtype == torch.int64
    assert int(uniform.min()) >= 0 and int(uniform.max()) < 7
    weighted = random_codes(50, (2, 2), 4, counts=torch.tensor([0, 10, 0, 0]), generator=gen)
    assert torch.equal(weighted, torch.ones(50, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError):
        random_codes(1, (2, 2), 4, counts=torch.zeros(4))
    with pytest.raises(ValueError):
        random_codes(1, (2, 2), 4, counts=torch.ones(3))


class _ToyDecoder(nn.Module):
    def __init__(self, num_codes=6):
        super().__init__()
        self.table = nn.Embedding(num_codes, 3)

    @torch.no_grad()
    def decode_codes(self, codes):
        # (B, H, W) -> (B, 3, 2H, 2W) images in [0, 1]
        x = torch.sigmoid(self.table(codes)).permute(0, 3, 1, 2)
        return x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)


def test_show_code_samples_draws_a_row_per_kind_and_keeps_the_mode():
    import matplotlib.pyplot as plt

    plt.close("all")
    decoder = _ToyDecoder().train()
    real = torch.randint(0, 6, (10, 4, 4))
    assert show_code_samples(decoder.decode_codes, real, 6, counts=code_counts(real, 6), n=5) is None
    assert len(plt.gcf().axes) == 3 * 5
    assert decoder.training
    show_code_samples(decoder.decode_codes, real, 6, n=3)
    assert len(plt.gcf().axes) == 2 * 3
    # Extra rows (grids from a learned prior) come after the real codes, before the random ones.
    show_code_samples(decoder.decode_codes, real, 6, extra={"prior": real.flip(0)}, n=4)
    labels = [ax.get_ylabel() for ax in plt.gcf().axes[::4]]
    assert labels == ["real codes", "prior", "uniform random"]
    with pytest.raises(ValueError):
        show_code_samples(decoder.decode_codes, real, 6, extra={"prior": torch.zeros(3, 2, 2, dtype=torch.long)})
    plt.close("all")


# --- restarting dead codes during training -------------------------------------------------------

class _ToyQuantizer(nn.Module):
    """Nearest code by brute force; returns (z_q, codes, codebook_loss, commitment_loss) like the lab's."""

    def __init__(self, num_codes=8, dim=2):
        super().__init__()
        self.codebook = nn.Embedding(num_codes, dim)

    def forward(self, z_e):
        b, d, h, w = z_e.shape
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, d)
        codes = torch.cdist(flat, self.codebook.weight).argmin(1)
        e = self.codebook(codes).view(b, h, w, d).permute(0, 3, 1, 2)
        loss = ((e - z_e.detach()) ** 2).mean()
        return z_e + (e - z_e).detach(), codes.view(b, h, w), loss, 0.25 * ((z_e - e.detach()) ** 2).mean()


class _ToyModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Conv2d(1, 2, 1)
        self.quantizer = _ToyQuantizer()

    def forward(self, x):
        z_q, codes, cb, cm = self.quantizer(self.encoder(x))
        return z_q.mean(1, keepdim=True), codes, cb, cm


def _toy_loss(model, images, labels):
    recon, _, cb, cm = model(images)
    return ((recon - images) ** 2).mean() + cb + cm


def test_dead_code_restarts_call_the_remedy_every_n_training_steps_with_the_counts_since_the_last():
    torch.manual_seed(0)
    model = _ToyModel().train()
    calls = []

    def remedy(codebook, counts, encoder_outputs):
        calls.append((counts.clone(), encoder_outputs.clone()))
        assert not codebook.requires_grad
        codebook[0] = encoder_outputs[0]  # in place, as the lab's restart does
        return 1

    restarts = DeadCodeRestarts(model.quantizer, model.quantizer.codebook.weight, remedy, every=3)
    loss_fn = restarts.wrap(_toy_loss)
    x = torch.rand(2, 1, 3, 3)
    for step in range(7):
        loss_fn(model, x, None).backward()
    # Checks happen before steps 4 and 7 (after 3 and 6 training steps).
    assert len(calls) == 2 and restarts.restarted == [1, 1] and restarts.total_restarted == 2
    counts, outputs = calls[0]
    assert counts.sum() == 3 * 2 * 3 * 3  # 3 steps of 2 images of 3x3 positions
    assert outputs.shape == (2 * 3 * 3, 2)
    assert torch.equal(model.quantizer.codebook.weight[0].detach(), calls[1][1][0])
    # Counting restarted after each check: one step so far.
    assert int(restarts.counts.sum()) == 2 * 3 * 3

    # Eval mode neither counts nor advances the schedule.
    model.eval()
    with torch.no_grad():
        loss_fn(model, x, None)
    assert restarts.steps == 7 and int(restarts.counts.sum()) == 2 * 3 * 3

    restarts.remove()
    model.train()
    model(x)
    assert int(restarts.counts.sum()) == 2 * 3 * 3


def test_dead_code_restarts_validate_arguments_and_skip_a_check_before_any_forward():
    q = _ToyQuantizer()
    with pytest.raises(ValueError):
        DeadCodeRestarts(q, q.codebook.weight, lambda *a: 0, every=0)
    with pytest.raises(ValueError):
        DeadCodeRestarts(q, q.codebook.weight[0], lambda *a: 0)
    assert DeadCodeRestarts(q, q.codebook.weight, lambda *a: 5).check() == 0


# --- the memory probe ------------------------------------------------------------------------------

def test_largest_intermediate_sees_a_broadcast_n_by_k_by_d_tensor():
    z, e = torch.randn(10, 4), torch.randn(6, 4)

    def broadcast(z, e):
        return ((z[:, None, :] - e[None]) ** 2).sum(-1)

    def expanded(z, e):
        return z.pow(2).sum(1, keepdim=True) - 2 * z @ e.T + e.pow(2).sum(1)

    d1, big, shape = largest_intermediate(broadcast, z, e)
    d2, small, _ = largest_intermediate(expanded, z, e)
    assert big == 10 * 6 * 4 and shape == (10, 6, 4)
    assert small == 10 * 6
    assert torch.allclose(d1, d2, atol=1e-5)
    _, cdist_size, _ = largest_intermediate(lambda: torch.cdist(z, e) ** 2)
    assert cdist_size == 10 * 6
