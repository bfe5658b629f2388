"""Unit tests of aelab.prior, the plumbing of lab 05's prior: small random tensors, no data files."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from aelab.prior import CodeBatches, code_batches, context_free_nats, influence_map, plot_influence


# --- batches of code grids ----------------------------------------------------------------------

def test_code_batches_serve_every_grid_once_per_epoch_in_a_new_order():
    codes = torch.arange(10 * 2 * 3).reshape(10, 2, 3)
    batches = code_batches(codes, 4, device="cpu", seed=0)
    assert len(batches) == 3 and batches.num_images == 10 and batches.grid == (2, 3)
    epochs = []
    for _ in range(2):
        seen = [(grids, labels) for grids, labels in batches]
        assert [len(g) for g, _ in seen] == [4, 4, 2]
        assert all(g.dtype == torch.int64 and g.shape[1:] == (2, 3) for g, _ in seen)
        assert all(lab.shape == (len(g),) for g, lab in seen)
        order = torch.cat([g[:, 0, 0] // 6 for g, _ in seen])
        assert sorted(order.tolist()) == list(range(10))
        epochs.append(order.tolist())
    assert epochs[0] != epochs[1]


def test_code_batches_keep_the_order_without_shuffle_and_carry_labels():
    codes = torch.randint(0, 5, (7, 4, 4))
    labels = torch.arange(7)
    batches = CodeBatches(codes, labels, 3, shuffle=False, device="cpu")
    got = list(batches)
    assert torch.equal(torch.cat([g for g, _ in got]), codes)
    assert torch.equal(torch.cat([lab for _, lab in got]), labels)


def test_code_batches_validate_their_input():
    with pytest.raises(TypeError):
        CodeBatches(torch.zeros(3, 4, 4), device="cpu")           # float codes
    with pytest.raises(TypeError):
        CodeBatches(torch.zeros(3, 16, dtype=torch.long), device="cpu")  # not a grid
    with pytest.raises(ValueError):
        CodeBatches(torch.zeros(0, 2, 2, dtype=torch.long), device="cpu")
    with pytest.raises(ValueError):
        CodeBatches(torch.zeros(3, 2, 2, dtype=torch.long), torch.zeros(2), device="cpu")
    with pytest.raises(ValueError):
        CodeBatches(torch.zeros(3, 2, 2, dtype=torch.long), batch_size=0, device="cpu")


# --- the context-free baseline ----------------------------------------------------------------------

def test_context_free_nats_is_the_cross_entropy_of_laplace_smoothed_training_frequencies():
    import math

    train = torch.tensor([[0, 0], [0, 2]])          # counts 3, 0, 1 -> smoothed 4, 1, 2 of 7
    test = torch.tensor([[[0, 1], [2, 2]]])
    expected = -(math.log(4 / 7) + math.log(1 / 7) + 2 * math.log(2 / 7)) / 4
    assert context_free_nats(train, test, 3) == pytest.approx(expected, rel=1e-12)
    # Uniform training codes over K give ln K for any test codes.
    uniform = torch.arange(5).repeat(20)
    assert context_free_nats(uniform, torch.tensor([4, 4, 1]), 5) == pytest.approx(math.log(5))
    with pytest.raises(ValueError):
        context_free_nats(train, torch.tensor([3]), 3)
    with pytest.raises(ValueError):
        context_free_nats(train, torch.zeros(0, dtype=torch.long), 3)


# --- which positions a prior looks at ---------------------------------------------------------------

class _Shifted(nn.Module):
    """A causal toy prior: the logits at (i, j) are a function of the code just before it in
    raster order, and optionally of the code at (i, j) itself (a leak)."""

    def __init__(self, num_codes: int, leak: bool = False):
        super().__init__()
        self.num_codes, self.leak = num_codes, leak
        self.table = nn.Embedding(num_codes, num_codes)

    def forward(self, codes):
        b, h, w = codes.shape
        flat = codes.reshape(b, h * w)
        before = torch.cat([torch.zeros_like(flat[:, :1]), flat[:, :-1]], 1)
        logits = self.table(before)
        if self.leak:
            logits = logits + F.one_hot(flat, self.num_codes).float()
        return logits.permute(0, 2, 1).reshape(b, self.num_codes, h, w)


def test_influence_map_finds_the_previous_position_and_a_leak():
    torch.manual_seed(0)
    prior = _Shifted(6).train()
    seen = influence_map(prior, 6, (2, 0), grid=(4, 4))
    expected = torch.zeros(4, 4, dtype=torch.bool)
    expected[1, 3] = True  # the position just before (2, 0) in raster order
    assert torch.equal(seen, expected)
    assert prior.training  # put back as it was
    leaky = influence_map(_Shifted(6, leak=True), 6, (2, 1), grid=(4, 4))
    assert bool(leaky[2, 1]) and bool(leaky[2, 0]) and int(leaky.sum()) == 2
    with pytest.raises(ValueError):
        influence_map(prior, 6, (4, 0), grid=(4, 4))


def test_plot_influence_draws_one_panel_per_position_and_names_leaks():
    import matplotlib.pyplot as plt

    plt.close("all")
    assert plot_influence(_Shifted(5, leak=True), 5, positions=((1, 1), (3, 3)), grid=(4, 4)) is None
    axes = plt.gcf().axes
    assert len(axes) == 2
    assert "1 not allowed" in axes[0].get_title()
    plt.close("all")
