import pytest
import torch
from matplotlib.figure import Figure

from aelab import plots
from aelab.training import History


def test_image_grids_accept_flat_gray_and_color_images():
    flat = torch.rand(12, 784)
    assert isinstance(plots.show_reconstructions(flat, flat, n=5), Figure)
    fig = plots.show_images({"a": torch.rand(4, 3, 8, 8), "b": torch.rand(4, 3, 8, 8)}, n=4)
    assert len(fig.axes) == 8
    with pytest.raises(ValueError, match="image_shape"):
        plots.show_images([torch.rand(2, 10)])


def test_curves_losses_and_scatter():
    history = History(train_loss=[1.0, 0.5], val_loss=[1.1, 0.6])
    assert isinstance(plots.plot_losses(history), Figure)
    assert isinstance(plots.plot_curves([1, 2], {"a": [1, 2], "b": [2, 1]}, xlabel="k", ylabel="mse"), Figure)
    fig = plots.plot_latent_scatter(torch.randn(50, 2), torch.arange(50) % 10)
    assert isinstance(fig, Figure)
    with pytest.raises(ValueError, match="2-D"):
        plots.plot_latent_scatter(torch.randn(5, 3), torch.zeros(5))


def test_show_table_text(capsys):
    text = plots.show_table([{"model": "pca", "mse": 0.0168}, {"model": "ae", "mse": 0.0123456}])
    assert "model | mse" in text and "0.01235" in text
    assert plots.show_table([]) == ""
