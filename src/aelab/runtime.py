"""Device, seeding and the training budget: the few settings every lab shares."""

from __future__ import annotations

import os
import random
import sys
import warnings
from typing import TypeVar

import numpy as np
import torch

T = TypeVar("T")

BUDGETS = ("quick", "full")
BUDGET_ENV = "AELAB_BUDGET"


class ConfigError(ValueError):
    """A setting (environment variable or argument) has a value aelab cannot use."""


def get_device(prefer: str | None = None) -> torch.device:
    """The fastest device available: CUDA, then Apple's MPS, then the CPU.

    `prefer` (or the environment variable AELAB_DEVICE) forces one, e.g. "cpu".
    """
    choice = prefer or os.environ.get("AELAB_DEVICE") or ""
    if choice:
        if choice.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError(f"device {choice!r} was asked for, but torch sees no CUDA GPU")
        return torch.device(choice)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


SEED_ENV = "AELAB_SEED"


def seed_everything(seed: int | None = None) -> int:
    """Seed Python, NumPy and torch (CPU and GPU) and return the seed used.

    Without an argument the seed is AELAB_SEED, or 0 (the course measures its thresholds by
    running the reference solutions with several AELAB_SEED values). Results repeat on one
    machine; CPU and GPU random streams differ, so no test depends on exact random values.
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
    torch.manual_seed(seed)
    return seed


def budget() -> str:
    """The training budget in force: "full" or "quick".

    Set it with the environment variable AELAB_BUDGET. When it is unset, a machine with a
    GPU trains at the full budget and a CPU-only machine at the quick one.
    """
    value = os.environ.get(BUDGET_ENV, "").strip().lower()
    if not value:
        return "full" if torch.cuda.is_available() else "quick"
    if value not in BUDGETS:
        raise ConfigError(f"{BUDGET_ENV}={value!r} is not a budget; use one of {', '.join(BUDGETS)}")
    return value


def by_budget(*, quick: T, full: T) -> T:
    """Pick a setting by budget, e.g. ``epochs = by_budget(quick=2, full=30)``."""
    return full if budget() == "full" else quick


def progress_enabled() -> bool:
    """Progress bars are on unless AELAB_PROGRESS=0 (the autograder turns them off)."""
    return os.environ.get("AELAB_PROGRESS", "1") != "0"


def _warnings_to_stdout() -> None:
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
    elif in_colab():
        lines.append(
            "No GPU: in Colab choose Runtime > Change runtime type > T4 GPU, then run all cells again. "
            "The labs run on a CPU too, at the quick budget."
        )
    else:
        lines.append("No GPU found: training runs on the CPU at the quick budget unless you set AELAB_BUDGET=full.")
    return "\n".join(lines)
