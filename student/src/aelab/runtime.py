"""Device, seeding, the training budget, and evaluation mode: the few settings every lab shares."""

from __future__ import annotations

import contextlib
import os
import random
import sys
import warnings
from typing import Iterator, TypeVar

import numpy as np
import torch
from torch import nn

T = TypeVar("T")

BUDGETS = ("quick", "full")
BUDGET_ENV = "AELAB_BUDGET"
DEVICE_ENV = "AELAB_DEVICE"
SEED_ENV = "AELAB_SEED"


class ConfigError(ValueError):
    """A setting (environment variable or argument) has a value aelab cannot use."""


def mps_available() -> bool:
    """Whether Apple's GPU (MPS) is usable."""
    backend = getattr(torch.backends, "mps", None)
    return backend is not None and backend.is_available()


def get_device(prefer: str | None = None) -> torch.device:
    """The fastest device available: CUDA, then Apple's MPS, then the CPU.

    `prefer` (or the environment variable AELAB_DEVICE) forces one, e.g. "cpu".
    """
    choice = (prefer or os.environ.get(DEVICE_ENV) or "").strip()
    if choice:
        if choice.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError(f"device {choice!r} was asked for, but torch sees no CUDA GPU")
        if choice == "mps" and not mps_available():
            raise ConfigError("device 'mps' was asked for, but torch sees no Apple GPU (MPS)")
        try:
            return torch.device(choice)
        except RuntimeError:
            raise ConfigError(f"{DEVICE_ENV}={choice!r} is not a device; use cpu, cuda or mps") from None
    if torch.cuda.is_available():
        return torch.device("cuda")
    if mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int | None = None) -> int:
    """Seed Python, NumPy and torch (CPU and GPU) and return the seed used.

    Without an argument the seed is AELAB_SEED, or 0 (the course measures its thresholds by
    running the reference solutions with many AELAB_SEED values).

    What repeats: on one machine with one torch and one thread count, a CPU run repeats exactly.
    What does not: another CPU, another thread count or another torch version gives a slightly
    different run from the same seed, and a GPU run does not repeat exactly even on one machine
    (several of its kernels, such as the index_add_ that counts codebook usage, add in whatever
    order their threads finish). None of the labs' tests needs an exact repeat: each threshold
    holds over many seeds with a margin.
    """
    if seed is None:
        raw = os.environ.get(SEED_ENV, "0").strip() or "0"
        try:
            seed = int(raw)
        except ValueError:
            raise ConfigError(f"{SEED_ENV}={raw!r} is not an integer") from None
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError(f"seed must be an int, got {type(seed).__name__}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # seeds every CUDA and MPS device too
    return seed


def budget() -> str:
    """The training budget in force: "full" or "quick".

    Set it with the environment variable AELAB_BUDGET. When it is unset, a machine with a GPU
    (CUDA or Apple's MPS) trains at the full budget and a CPU-only machine at the quick one.
    """
    value = os.environ.get(BUDGET_ENV, "").strip().lower()
    if not value:
        return "quick" if get_device().type == "cpu" else "full"
    if value not in BUDGETS:
        raise ConfigError(f"{BUDGET_ENV}={value!r} is not a budget; use one of {', '.join(BUDGETS)}")
    return value


def by_budget(*, quick: T, full: T) -> T:
    """Pick a setting by budget, e.g. ``epochs = by_budget(quick=2, full=30)``."""
    return full if budget() == "full" else quick


def progress_enabled() -> bool:
    """Progress bars are on unless AELAB_PROGRESS=0 (the autograder turns them off)."""
    return os.environ.get("AELAB_PROGRESS", "1") != "0"


@contextlib.contextmanager
def evaluating(*modules: object) -> Iterator[None]:
    """Evaluation mode and no gradient tracking for `modules`, put back as they were afterwards.

    Each argument may be an ``nn.Module`` or a bound method of one (``vae.decode``); anything
    else is ignored. Every helper of aelab that runs a model runs it inside this.
    """
    found: list[tuple[nn.Module, bool]] = []
    for item in modules:
        module = item if isinstance(item, nn.Module) else getattr(item, "__self__", None)
        if isinstance(module, nn.Module) and all(module is not m for m, _ in found):
            found.append((module, module.training))
    try:
        for module, _ in found:
            module.eval()
        with torch.no_grad():
            yield
    finally:
        for module, was_training in found:
            module.train(was_training)


def device_of(item: object, default: torch.device | str | None = None) -> torch.device:
    """The device of a tensor, or of the parameters of a module (or of a bound method's module)."""
    if isinstance(item, torch.Tensor):
        return item.device
    module = item if isinstance(item, nn.Module) else getattr(item, "__self__", None)
    if isinstance(module, nn.Module):
        for tensor in module.parameters():
            return tensor.device
        for tensor in module.buffers():
            return tensor.device
    return torch.device(default) if default is not None else torch.device("cpu")


def warnings_to_stdout() -> None:
    """Show Python warnings on stdout instead of stderr.

    nbgrader scores a test cell 0 if it writes anything to stderr, and torch emits harmless
    warnings on some CPUs. Showing them on stdout keeps them visible without costing points.
    """

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
        sys.stdout.write(warnings.formatwarning(message, category, filename, lineno, line))

    warnings.showwarning = show


def in_colab() -> bool:
    return "google.colab" in sys.modules


def describe() -> str:
    """One paragraph on where this notebook runs: device, budget and how to get a GPU."""
    device = get_device()
    lines = [f"aelab: device {device}, budget {budget()!r} (set {BUDGET_ENV}=quick|full to change)."]
    if device.type == "cuda":
        lines.append(f"GPU: {torch.cuda.get_device_name(device)}.")
    elif device.type == "mps":
        lines.append("GPU: Apple silicon (MPS). Training runs on it at the full budget; set AELAB_BUDGET=quick "
                     "for a short run.")
    elif in_colab():
        lines.append(
            "No GPU: in Colab choose Runtime > Change runtime type > T4 GPU, then run all cells again. "
            "The labs run on a CPU too, at the quick budget."
        )
    else:
        lines.append("No GPU found (neither CUDA nor Apple's MPS): training runs on the CPU at the quick budget "
                     "unless you set AELAB_BUDGET=full.")
    return "\n".join(lines)
