"""aelab: the helper package of the autoencoder labs.

The notebooks import it for the plumbing: the device and the budget, the data, progress bars and
loss histories, figures, metrics, and the checks of the test cells. What each lab teaches (the
models, the losses, the training loops) is the student's to write: nothing here answers a lab.
"""

import os

# Apple's GPU (MPS) lacks a few operations the labs use (some of torch.linalg): run those on the
# CPU instead of failing. Set before torch is first imported, which the setup cell does through aelab.
os.environ.setdefault("PYTORCH_ENABLE_MPS_FALLBACK", "1")

from . import checks  # noqa: E402
from .data import Batches, DataError, ImageDataset, load_cifar10, load_mnist, to_float
from .metrics import collect_latents, count_parameters, first_output, latent_quality, reconstruction_mse
from .plots import plot_curves, plot_latent_scatter, plot_losses, show_images, show_reconstructions, show_table
from .tracking import BatchIterable, History, LossFn, Stopwatch, progress, progress_bar
from .report import record
from .runtime import (ConfigError, budget, by_budget, describe, device_of, evaluating, get_device, seed_everything,
                      warnings_to_stdout)

__version__ = "0.2.0"


def setup_notebook(lab: str = "", version: str | None = None) -> "torch.device":  # noqa: F821
    """Print where the notebook runs (device, budget, how to get a GPU) and return the device.

    `version` is the aelab version the notebook was released with; another one installed is
    named in a warning (an old install can lack what the notebook uses).
    """
    title = f"{lab}: " if lab else ""
    print(title + describe())
    if version is not None and version != __version__:
        print(f"Warning: this notebook was written for aelab {version}, but aelab {__version__} is installed. "
              f"Install the course's aelab {version} (see the course README) and restart the kernel.")
    return get_device()


# nbgrader scores a test cell 0 for any stderr output, and torch warns harmlessly on some CPUs.
warnings_to_stdout()

__all__ = [
    "BatchIterable", "Batches", "ConfigError", "LossFn", "DataError", "History", "ImageDataset", "Stopwatch", "budget", "by_budget", "checks",
    "collect_latents", "count_parameters", "describe", "device_of", "evaluating", "first_output", "get_device",
    "latent_quality", "load_cifar10", "load_mnist", "plot_curves", "plot_latent_scatter", "plot_losses", "progress",
    "progress_bar", "reconstruction_mse", "record", "seed_everything", "setup_notebook", "show_images",
    "show_reconstructions", "show_table", "to_float", "warnings_to_stdout",
]
