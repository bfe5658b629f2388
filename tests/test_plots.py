import matplotlib.pyplot as plt
import pytest
import torch

from aelab import plots
from aelab.tracking import History


def test_image_grids_accept_flat_gray_and_color_images():
    flat = torch.rand(12, 784)
    assert plots.show_reconstructions(flat, flat, n=5) is None  # shown once: nothing to echo
    plots.show_images({"a": torch.rand(4, 3, 8, 8), "b": torch.rand(4, 3, 8, 8)}, n=4)
    assert len(plt.gcf().axes) == 8
    with pytest.raises(ValueError, match="image_shape"):
        plots.show_images([torch.rand(2, 10)])


def test_curves_losses_and_scatter():
    history = History(train_loss=[1.0, 0.5, 0.4], val_loss=[1.1, 0.6, 0.7], best_epoch=2)
    assert plots.plot_losses(history, val_label="test") is None
    ax = plt.gcf().axes[0]
    assert [t for t in ax.get_xticks() if 1 <= t <= 3] == [1.0, 2.0, 3.0], "epochs are whole numbers"
    assert "test" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert plots.plot_curves([1, 2], {"a": [1, 2], "b": [2, 1]}, xlabel="k", ylabel="mse") is None
    assert plots.plot_latent_scatter(torch.randn(50, 2), torch.arange(50) % 10) is None
    with pytest.raises(ValueError, match="2-D"):
        plots.plot_latent_scatter(torch.randn(5, 3), torch.zeros(5))


def test_show_table_prints_text_and_returns_nothing(capsys):
    assert plots.show_table([{"model": "pca", "mse": 0.0168}, {"model": "ae", "mse": 0.0123456}]) is None
    text = capsys.readouterr().out
    assert "model | mse" in text and "0.01235" in text
    assert plots.table_text([{"a": "<b>"}]).endswith("<b>")
    assert plots.show_table([]) is None and capsys.readouterr().out == ""


def test_every_display_helper_returns_none():
    """A helper that returned its figure would show it twice at the end of a cell."""
    import inspect

    import aelab
    from aelab import codebook, generative, upsampling

    for module in (plots, generative, codebook, upsampling):
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if function.__module__ == module.__name__ and name.startswith(("show_", "plot_")):
                annotation = inspect.signature(function).return_annotation
                assert annotation in (None, "None"), f"{module.__name__}.{name} returns {annotation}"
    assert aelab.record("lab00", "x", 1.0) is None
